//! Queries: every operator, order, limits, cursors and count, checked against
//! expectations worked out by hand, and bad queries refused everywhere.

use blaze_client::Direction::{Asc, Desc};
use blaze_client::{and, field, or, Blaze, ChangeKind, ErrorCode, QueryRef};
use blaze_tests::live::{e2e, WranglerDev};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::support::{code, connect, ids, raw, refused, run, within};

/// The query test's data set (collection `items`).
fn items() -> Vec<(&'static str, Value)> {
    vec![
        (
            "a",
            json!({"n": 1, "s": "apple", "tags": ["red", "fruit"], "group": "x"}),
        ),
        (
            "b",
            json!({"n": 2, "s": "banana", "tags": ["yellow", "fruit"], "group": "y"}),
        ),
        (
            "c",
            json!({"n": 3, "s": "cherry", "tags": ["red"], "group": "x"}),
        ),
        ("d", json!({"n": 4, "s": "date", "tags": [], "group": "z"})),
        ("e", json!({"n": 5, "s": "elder", "group": "y"})),
        (
            "f",
            json!({"n": null, "s": "fig", "tags": ["green", "fruit"], "group": "x"}),
        ),
        ("g", json!({"s": "grape", "tags": ["green"], "group": "y"})),
        (
            "h",
            json!({"n": "7", "s": "honeydew", "tags": ["green", "fruit"], "group": "z"}),
        ),
        (
            "i",
            json!({"n": 3, "s": "ice", "tags": ["blue"], "group": "z"}),
        ),
    ]
}

#[test]
fn queries_every_operator_order_limit_cursor_and_count() {
    let Some(_serial) = e2e() else { return };
    run(async {
        let server = WranglerDev::start("client-queries");
        let db = connect(&server.url()).await;
        let loaded = load_items(&db).await;
        every_operator_order_limit_and_cursor(&db, loaded).await;
        results_hold_the_documents_as_get_reads_them(&db, loaded).await;
        bad_queries_are_refused_by_get_count_and_listen(&db).await;
    });
}

/// Stores `items()` in one batch, and a document of another collection
/// (which no query here may see). Returns the batch's seq.
async fn load_items(db: &Blaze) -> u64 {
    let items_ref = db.collection("items");
    let mut batch = db.batch();
    for (id, data) in items() {
        batch.set(&items_ref.doc(id), &data);
    }
    assert_eq!(batch.len(), 9);
    let loaded = batch.commit().await.unwrap();
    db.doc("other/a").set(&json!({"n": 1})).await.unwrap();
    loaded.seq
}

/// Every operator, order, limit and cursor, with the ids it must give.
fn expectations(db: &Blaze) -> Vec<(&'static str, QueryRef, Vec<&'static str>)> {
    let q = || db.collection("items");
    let numbers = || q().where_("n", ">", -1000).order_by("n", Asc);
    // Each expectation was worked out by hand from `items()` and the spec
    // (missing fields never match; ranges stay in their type class; ties
    // break by id in the last order_by key's direction).
    vec![
        (
            "all, by id",
            q().query(),
            vec!["a", "b", "c", "d", "e", "f", "g", "h", "i"],
        ),
        ("==", q().where_("n", "==", 3), vec!["c", "i"]),
        ("== null", q().where_("n", "==", Value::Null), vec!["f"]),
        (
            "!=",
            q().where_("n", "!=", 3),
            vec!["a", "b", "d", "e", "h"],
        ),
        ("<", q().where_("n", "<", 3), vec!["a", "b"]),
        ("<=", q().where_("n", "<=", 3), vec!["a", "b", "c", "i"]),
        (">", q().where_("n", ">", 3), vec!["d", "e"]),
        (">=", q().where_("n", ">=", 3), vec!["c", "d", "e", "i"]),
        ("> string", q().where_("n", ">", "0"), vec!["h"]),
        (
            "in",
            q().where_("n", "in", json!([1, 5, "7"])),
            vec!["a", "e", "h"],
        ),
        (
            "not-in",
            q().where_("n", "not-in", json!([1, 2])),
            vec!["c", "d", "e", "h", "i"],
        ),
        (
            "array-contains",
            q().where_("tags", "array-contains", "fruit"),
            vec!["a", "b", "f", "h"],
        ),
        (
            "array-contains-any",
            q().where_("tags", "array-contains-any", json!(["red", "green"])),
            vec!["a", "c", "f", "g", "h"],
        ),
        (
            "field().eq",
            q().filter(field("group").eq("x")),
            vec!["a", "c", "f"],
        ),
        (
            "field().in_ on __name__",
            q().filter(field("__name__").in_(json!(["i", "a", "zz"]))),
            vec!["a", "i"],
        ),
        (
            "two where_ AND",
            q().where_("group", "==", "x").where_("n", ">=", 2),
            vec!["c"],
        ),
        (
            "and()",
            q().filter(and([
                field("tags").array_contains("fruit"),
                field("n").lt(3),
            ])),
            vec!["a", "b"],
        ),
        (
            "or()",
            q().filter(or([
                field("group").eq("z"),
                field("tags").array_contains("yellow"),
            ])),
            vec!["b", "d", "h", "i"],
        ),
        (
            "or(and(), le)",
            q().filter(or([
                and([field("group").eq("y"), field("n").ge(5)]),
                field("s").le("banana"),
            ])),
            vec!["a", "b", "e"],
        ),
        (
            "order asc",
            q().order_by("n", Asc),
            vec!["f", "a", "b", "c", "i", "d", "e", "h"],
        ),
        (
            "order desc",
            q().order_by("n", Desc),
            vec!["h", "e", "d", "i", "c", "b", "a", "f"],
        ),
        (
            "two keys",
            q().order_by("group", Asc).order_by("n", Desc),
            vec!["c", "a", "f", "e", "b", "h", "d", "i"],
        ),
        (
            "limit",
            q().order_by("s", Asc).limit(3),
            vec!["a", "b", "c"],
        ),
        (
            "limit_to_last",
            q().order_by("s", Asc).limit_to_last(2),
            vec!["h", "i"],
        ),
        (
            "limit desc",
            q().order_by("n", Desc).limit(2),
            vec!["h", "e"],
        ),
        ("numbers", numbers(), vec!["a", "b", "c", "i", "d", "e"]),
        (
            "start_at",
            numbers().start_at(vec![json!(3)]),
            vec!["c", "i", "d", "e"],
        ),
        (
            "start_after",
            numbers().start_after(vec![json!(3)]),
            vec!["d", "e"],
        ),
        (
            "start_after with id",
            numbers().start_after(vec![json!(3), json!("c")]),
            vec!["i", "d", "e"],
        ),
        (
            "end_at",
            numbers().end_at(vec![json!(3)]),
            vec!["a", "b", "c", "i"],
        ),
        (
            "end_before",
            numbers().end_before(vec![json!(3)]),
            vec!["a", "b"],
        ),
        (
            "start_at + end_before",
            numbers()
                .start_at(vec![json!(2)])
                .end_before(vec![json!(4)]),
            vec!["b", "c", "i"],
        ),
        (
            "cursor then limit",
            numbers().start_after(vec![json!(1)]).limit(2),
            vec!["b", "c"],
        ),
        (
            "desc cursor",
            q().order_by("n", Desc)
                .start_after(vec![json!(4)])
                .end_at(vec![json!(2)]),
            vec!["i", "c", "b"],
        ),
        (
            "id cursor",
            q().query().start_after(vec![json!("g")]),
            vec!["h", "i"],
        ),
    ]
}

/// Each query's ids, and its count, at the seq of the load.
async fn every_operator_order_limit_and_cursor(db: &Blaze, loaded: u64) {
    let cases = expectations(db);
    let mut failures = Vec::new();
    for (label, query, want) in &cases {
        let got = query.get().await.unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(got.seq, loaded, "{label}");
        assert!(got.changes().iter().all(|c| c.kind == ChangeKind::Added));
        if ids(&got.docs) != *want {
            failures.push(format!("{label}: got {:?}, want {want:?}", ids(&got.docs)));
        }
        let count = query
            .count()
            .await
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        if count != want.len() as u64 {
            failures.push(format!("{label}: count {count}, want {}", want.len()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Query results carry the documents as `get` reads them, and decode typed.
async fn results_hold_the_documents_as_get_reads_them(db: &Blaze, loaded: u64) {
    let q = || db.collection("items");
    let c = q().where_("s", "==", "cherry").get().await.unwrap();
    assert_eq!(c.docs, vec![raw(&q().doc("c")).await]);
    assert_eq!(c.docs[0].version, Some(loaded));
    #[derive(Deserialize, Debug, PartialEq)]
    struct Named {
        s: String,
    }
    let named: Vec<String> = q()
        .order_by("s", Desc)
        .limit(2)
        .get()
        .await
        .unwrap()
        .decode::<Named>()
        .unwrap()
        .into_iter()
        .map(|d| d.data.unwrap().s)
        .collect();
    assert_eq!(named, ["ice", "honeydew"]);
}

/// Bad queries: refused locally or by the server, with their codes, by
/// `get`, `count` and `listen` alike; they change nothing.
async fn bad_queries_are_refused_by_get_count_and_listen(db: &Blaze) {
    let q = || db.collection("items");
    for (label, query, want) in bad_queries(db) {
        refused(&format!("{label}: get"), query.get(), want).await;
        refused(&format!("{label}: count"), query.count(), want).await;
        let mut listener = query.listen();
        let first = within(label, listener.next()).await.expect("an item");
        assert_eq!(code(first), want, "{label}: listen");
        assert!(
            within(label, listener.next()).await.is_none(),
            "{label}: the stream ends"
        );
    }
    assert_eq!(q().count().await.unwrap(), 9, "bad queries changed nothing");
}

/// Queries the client or the server must refuse, with their codes.
fn bad_queries(db: &Blaze) -> Vec<(&'static str, QueryRef, ErrorCode)> {
    let q = || db.collection("items");
    vec![
        (
            "unknown operator",
            q().where_("n", "~=", 1),
            ErrorCode::InvalidQuery,
        ),
        ("empty and", q().filter(and([])), ErrorCode::InvalidQuery),
        (
            "empty in",
            q().where_("n", "in", json!([])),
            ErrorCode::InvalidQuery,
        ),
        (
            "range on null",
            q().where_("n", "<", Value::Null),
            ErrorCode::InvalidQuery,
        ),
        (
            "both limits",
            q().limit(1).limit_to_last(1),
            ErrorCode::InvalidQuery,
        ),
        ("zero limit", q().limit(0), ErrorCode::InvalidQuery),
        (
            "same key twice",
            q().order_by("n", Asc).order_by("n", Desc),
            ErrorCode::InvalidQuery,
        ),
        (
            "long cursor",
            q().query().start_at(vec![json!("a"), json!("b")]),
            ErrorCode::InvalidQuery,
        ),
        (
            "bad field path",
            q().where_("a..b", "==", 1),
            ErrorCode::InvalidFieldPath,
        ),
        (
            "too many not-in values",
            q().where_("n", "not-in", (0..11).collect::<Vec<_>>()),
            ErrorCode::TooManyFilterValues,
        ),
    ]
}
