//! How many documents a query reads (spec 9.9): `!=` and `not-in` are read
//! from the field's value index around their operands, and an `or` whose
//! every member an index answers from the union of their ranges, so a query
//! that matches few documents reads few, however many the collection holds.
//! Each case fails if the query scans the collection instead.

mod support;

use blaze_core::{Database, Limits, MemoryStorage};
use blaze_protocol::{CollectionPath, Query, Write, WriteKind};
use serde_json::{json, Value};
use support::Probe;

/// Documents in the collection besides the few the cases look for.
const CROWD: usize = 400;

/// The most documents a query that matches `matched` may read: each match
/// twice (filtered, then read as a result), and what the scan in id order
/// reads while the index plan runs (a document per entry it finds).
fn most_read(matched: usize) -> usize {
    3 * matched + 4
}

/// `CROWD` documents `{"n": 5, "tag": "a"}` and four others: `odd` (`n`
/// is 7), `nil` (`n` is null), `bare` (no `n`), `long` (`n` a string
/// longer than the index keeps whole).
fn database() -> Database<Probe> {
    let limits = Limits {
        max_indexed_value_bytes: 16,
        ..Limits::default()
    };
    let mut db = Database::new(Probe::counting(MemoryStorage::new()), limits);
    let long = "z".repeat(40);
    let mut writes: Vec<Write> = (0..CROWD)
        .map(|i| set(&format!("d{i:03}"), json!({"n": 5, "tag": "a"})))
        .collect();
    writes.push(set("odd", json!({"n": 7, "tag": "a"})));
    writes.push(set("nil", json!({"n": null, "tag": "a"})));
    writes.push(set("bare", json!({"tag": "a"})));
    writes.push(set("long", json!({"n": long, "tag": "a"})));
    for chunk in writes.chunks(100) {
        db.commit(&collection(), chunk, 0).expect("stored");
    }
    db
}

fn collection() -> CollectionPath {
    CollectionPath::parse("c").expect("a collection")
}

fn set(id: &str, data: Value) -> Write {
    Write {
        id: id.to_owned(),
        kind: WriteKind::Set { data },
        precondition: Default::default(),
    }
}

/// Runs the query with filter `filter` (and `limit`), and its count:
/// both find `expected`, each reading at most [`most_read`] documents.
fn check(filter: Value, limit: Option<u64>, expected: &[&str]) {
    let db = database();
    let mut query = json!({"collection": "c", "where": filter});
    if let Some(n) = limit {
        query["limit"] = json!(n);
    }
    let query: Query = serde_json::from_value(query).expect("a query");
    let read = db.storage().read.clone();

    read.set(0);
    let docs = db.query(&query).expect("answered").docs;
    let ids: Vec<&str> = docs.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, expected, "{filter}");
    let bound = most_read(expected.len());
    assert!(
        read.get() <= bound,
        "{filter}: {} documents read",
        read.get()
    );

    read.set(0);
    let (_, count) = db.count(&query).expect("counted");
    assert_eq!(count, expected.len() as u64, "count {filter}");
    assert!(read.get() <= bound, "count {filter}: {} read", read.get());
}

#[test]
fn not_equal_reads_the_value_index_around_its_operand() {
    check(
        json!({"field": "n", "op": "!=", "value": 5}),
        None,
        &["long", "odd"],
    );
    check(
        json!({"field": "n", "op": "!=", "value": 5}),
        Some(1),
        &["long"],
    );
    // Documents without the field, or with null, never match.
    check(
        json!({"field": "missing", "op": "!=", "value": 1}),
        None,
        &[],
    );
    check(json!({"field": "tag", "op": "!=", "value": "a"}), None, &[]);
}

#[test]
fn not_in_reads_between_its_operands() {
    check(
        json!({"field": "n", "op": "not-in", "value": [5, 7]}),
        None,
        &["long"],
    );
    check(
        json!({"field": "n", "op": "not-in", "value": [7, null, 5, 5]}),
        None,
        &["long"],
    );
    // An operand longer than the index keeps: its cut key is read and re-checked.
    let long = "z".repeat(40);
    check(
        json!({"field": "n", "op": "not-in", "value": [5, long]}),
        None,
        &["odd"],
    );
    // A document whose value shares the operand's cut key, unequal to it.
    let longer = json!([5, 7, long.clone() + "z"]);
    check(
        json!({"field": "n", "op": "not-in", "value": longer}),
        None,
        &["long"],
    );
}

#[test]
fn an_or_of_indexed_members_reads_the_union_of_their_ranges() {
    let or = |members: Value| json!({ "or": members });
    let n = |op: &str, v: Value| json!({"field": "n", "op": op, "value": v});
    check(
        or(json!([n("==", json!(7)), n("==", json!(8))])),
        None,
        &["odd"],
    );
    check(
        or(json!([n("==", json!(7)), n("!=", json!(5))])),
        None,
        &["long", "odd"],
    );
    let tag_b = json!({"field": "tag", "op": "==", "value": "b"});
    check(or(json!([tag_b, n("in", json!([6, 7]))])), None, &["odd"]);
    // Nested in an `and` beside a condition every document passes.
    let tag_a = json!({"field": "tag", "op": "==", "value": "a"});
    let either = or(json!([n("==", json!(7)), n("==", json!(9))]));
    check(json!({"and": [tag_a, either]}), None, &["odd"]);
}

#[test]
fn an_or_with_a_member_no_index_answers_scans() {
    // `__name__ != "odd"` alone matches all but one: the scan is the plan.
    let db = database();
    let query: Query = serde_json::from_value(json!({"collection": "c", "where": {"or": [
        {"field": "n", "op": "==", "value": 7},
        {"field": "__name__", "op": ">", "value": "d398"}
    ]}}))
    .expect("a query");
    let ids: Vec<String> = db
        .query(&query)
        .expect("answered")
        .docs
        .into_iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(ids, ["d399", "long", "nil", "odd"]);
}
