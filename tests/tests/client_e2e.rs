//! End-to-end tests of the Rust client (`crates/blaze-client`) against the
//! real worker under `wrangler dev`: documents, queries, listeners, batches,
//! transactions, and listeners that survive cut connections and a server
//! restart. `scripts/build-worker.sh` must have built the worker.
//!
//! Each test starts its own `wrangler dev` on a free port with its own state
//! directory, and kills its process group when done. They run one at a time.

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use blaze_client::Direction::{Asc, Desc};
use blaze_client::{
    and, field, or, Blaze, ChangeKind, CollectionRef, ConnectOptions, ConnectionState, DocChange,
    DocRef, DocumentSnapshot, Error, ErrorCode, ListenEvent, Listener, QueryRef, QuerySnapshot,
    ReconnectPolicy, WriteResult, TRANSACTION_ATTEMPTS,
};
use blaze_tests::live::{self, e2e, Proxy, WranglerDev};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The longest any one test may take, start of `wrangler dev` included.
const TEST_LIMIT: Duration = Duration::from_secs(120);

/// How long a test waits for one listener event or one spawned task.
const WAIT: Duration = Duration::from_secs(15);

/// Runs a test body within [`TEST_LIMIT`].
fn run(body: impl Future<Output = ()> + Send + 'static) {
    live::run(TEST_LIMIT, body)
}

/// Options for every client here: short timeouts, quick reconnects, and a
/// credential (which a server without authentication ignores).
fn options() -> ConnectOptions {
    ConnectOptions {
        auth: Some("test-token".into()),
        connect_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(10),
        reconnect: ReconnectPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(500),
        },
    }
}

async fn connect(url: &str) -> Blaze {
    Blaze::connect_with(url, options())
        .await
        .expect("the client accepts the URL")
}

/// `f`, or a panic naming `what` after [`WAIT`].
async fn within<F: Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(WAIT, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing within {WAIT:?}"))
}

/// The spec error code of a call that must fail.
fn code<T: std::fmt::Debug>(result: Result<T, Error>) -> ErrorCode {
    match result {
        Err(e) => e
            .code()
            .unwrap_or_else(|| panic!("an error without a code: {e:?}")),
        Ok(v) => panic!("expected an error, got {v:?}"),
    }
}

/// The document as raw JSON.
async fn raw(doc: &DocRef) -> DocumentSnapshot {
    doc.get::<Value>()
        .await
        .unwrap_or_else(|e| panic!("get {}: {e}", doc.path()))
}

fn ids(docs: &[DocumentSnapshot]) -> Vec<&str> {
    docs.iter().map(DocumentSnapshot::id).collect()
}

/// The next snapshot of a listener, skipping state events.
async fn next_snap<S: blaze_client::FromResults>(listener: &mut Listener<S>, what: &str) -> S {
    within(what, listener.next_snapshot())
        .await
        .unwrap_or_else(|| panic!("{what}: the listener ended"))
        .unwrap_or_else(|e| panic!("{what}: the listener failed: {e}"))
}

/// Applies a snapshot's changes to the previous results, as spec 10.4.3 says
/// (removals first, each index counted on the list as left by the changes
/// before it), checking every index names the right document.
fn apply(previous: &[DocumentSnapshot], changes: &[DocChange]) -> Vec<DocumentSnapshot> {
    let mut docs = previous.to_vec();
    let mut seen_other = false;
    for change in changes {
        match change.kind {
            ChangeKind::Removed => {
                assert!(!seen_other, "a removal after an addition or modification");
                assert_eq!(change.new_index, None);
                let at = change.old_index.expect("a removal has an old index");
                let gone = docs.remove(at);
                assert_eq!(
                    gone, change.doc,
                    "a removal carries the document as last seen"
                );
            }
            ChangeKind::Added => {
                seen_other = true;
                assert_eq!(change.old_index, None);
                let at = change.new_index.expect("an addition has a new index");
                assert!(at <= docs.len(), "added past the end");
                docs.insert(at, change.doc.clone());
            }
            ChangeKind::Modified => {
                seen_other = true;
                let from = change.old_index.expect("a modification has an old index");
                let to = change.new_index.expect("a modification has a new index");
                let old = docs.remove(from);
                assert_eq!(old.path, change.doc.path, "modified the wrong document");
                assert!(to <= docs.len(), "moved past the end");
                docs.insert(to, change.doc.clone());
            }
        }
    }
    docs
}

/// A change as (kind, id, old index, new index), for comparing with expectations.
type Shape<'a> = (ChangeKind, &'a str, Option<usize>, Option<usize>);

/// A listener test step: a write (id, op, data) and the changes it makes.
type Step<'a> = ((&'a str, &'a str, Value), Vec<Shape<'a>>);

/// A batch that must fail: how to build it, the failing write's index, the code.
type FailingBatch<'a> = (
    Box<dyn Fn(&mut blaze_client::WriteBatch) + Send + Sync + 'a>,
    usize,
    ErrorCode,
);

/// Builds a query over a collection.
type MakeQuery = fn(CollectionRef) -> QueryRef;

/// A listener with its view, and the same query on another client for fresh reads.
type Watched = (&'static str, QueryRef, Listener<QuerySnapshot>, Tracker);

fn shapes(changes: &[DocChange]) -> Vec<Shape<'_>> {
    changes
        .iter()
        .map(|c| (c.kind, c.doc.id(), c.old_index, c.new_index))
        .collect()
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Topic {
    title: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Room {
    name: String,
    members: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    topic: Option<Topic>,
    capacity: u32,
}

#[test]
fn documents_every_write_precondition_and_error() {
    let Some(_serial) = e2e() else { return };
    run(async {
        // The URL is checked; a server that is not there is a timeout.
        assert!(matches!(
            Blaze::connect("ftp://127.0.0.1:1").await,
            Err(Error::Usage(_))
        ));
        let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let impatient = ConnectOptions {
            request_timeout: Duration::from_millis(400),
            ..options()
        };
        let nowhere = Blaze::connect_with(&format!("http://127.0.0.1:{closed_port}/"), impatient)
            .await
            .expect("connecting is lazy");
        assert_eq!(
            nowhere.options().request_timeout,
            Duration::from_millis(400)
        );
        let started = Instant::now();
        let outcome = within(
            "a request to nowhere",
            nowhere.doc("rooms/r1").get::<Value>(),
        )
        .await;
        assert!(matches!(outcome, Err(Error::Timeout)), "{outcome:?}");
        assert!(
            started.elapsed() >= Duration::from_millis(400)
                && started.elapsed() < Duration::from_secs(5),
            "the request timeout is kept: {:?}",
            started.elapsed()
        );
        drop(nowhere);

        let server = WranglerDev::start("client-docs");
        let db = connect(&server.url()).await;
        assert_eq!(db.options().auth.as_deref(), Some("test-token"));
        let rooms = db.collection("rooms");
        let r1 = rooms.doc("r1");
        assert_eq!(
            (r1.id(), r1.path(), r1.parent().path()),
            ("r1", "rooms/r1", "rooms")
        );

        // get of a missing document; create; a second create.
        let missing = raw(&r1).await;
        assert!(!missing.exists());
        assert_eq!(
            (missing.path.as_str(), missing.version, missing.create_time),
            ("rooms/r1", None, None)
        );
        let c1 = r1.create(&json!({"name": "lobby", "n": 1})).await.unwrap();
        assert_eq!(c1.seq, 1);
        let r1_exists = |exists| {
            vec![WriteResult {
                id: "r1".into(),
                exists,
            }]
        };
        assert_eq!(c1.writes, r1_exists(true));
        let first = raw(&r1).await;
        assert_eq!(first.data, Some(json!({"name": "lobby", "n": 1})));
        assert_eq!(
            (first.version, first.create_time, first.update_time),
            (Some(1), Some(c1.time), Some(c1.time))
        );
        assert_eq!(
            code(r1.create(&json!({"name": "other"})).await),
            ErrorCode::AlreadyExists
        );
        assert_eq!(raw(&r1).await, first, "a failed create changes nothing");

        // Typed set and get through serde.
        let room = Room {
            name: "lobby".into(),
            members: vec!["ann".into(), "bob".into()],
            topic: None,
            capacity: 10,
        };
        let c2 = r1.set(&room).await.unwrap();
        assert_eq!(c2.seq, 2, "the failed create used no sequence number");
        let typed = r1.get::<Room>().await.unwrap();
        assert_eq!(typed.data.as_ref(), Some(&room));
        assert_eq!(
            (typed.version, typed.create_time, typed.update_time),
            (Some(2), Some(c1.time), Some(c2.time)),
            "set keeps create_time"
        );
        assert_eq!(
            raw(&r1).await.data,
            Some(json!({"name": "lobby", "members": ["ann", "bob"], "capacity": 10})),
            "set replaces the whole document"
        );

        // JSON Patch.
        let c3 = r1
            .patch(vec![
                json!({"op": "test", "path": "/name", "value": "lobby"}),
                json!({"op": "add", "path": "/members/-", "value": "cy"}),
                json!({"op": "replace", "path": "/capacity", "value": 12}),
            ])
            .await
            .unwrap();
        let patched = r1.get::<Room>().await.unwrap();
        assert_eq!(patched.version, Some(c3.seq));
        assert_eq!(
            patched.data,
            Some(Room {
                members: vec!["ann".into(), "bob".into(), "cy".into()],
                capacity: 12,
                ..room.clone()
            })
        );
        let before = raw(&r1).await;
        let failed_test = r1
            .patch(vec![
                json!({"op": "replace", "path": "/capacity", "value": 99}),
                json!({"op": "test", "path": "/name", "value": "hall"}),
            ])
            .await;
        assert_eq!(code(failed_test), ErrorCode::PatchTestFailed);
        assert_eq!(
            code(
                r1.patch(vec![json!({"op": "remove", "path": "/nope"})])
                    .await
            ),
            ErrorCode::PatchPathNotFound
        );
        assert_eq!(
            code(rooms.doc("ghost").patch(vec![]).await),
            ErrorCode::NotFound
        );
        assert_eq!(raw(&r1).await, before, "failed patches change nothing");

        // Merge patch: objects merge, arrays replace, null deletes.
        let c4 = r1
            .merge(&json!({"topic": {"title": "Rust"}, "members": ["dee"], "capacity": null}))
            .await
            .unwrap();
        assert_eq!(c4.seq, c3.seq + 1);
        let merged = raw(&r1).await;
        assert_eq!(
            merged.data,
            Some(json!({"name": "lobby", "members": ["dee"], "topic": {"title": "Rust"}}))
        );
        assert_eq!(merged.version, Some(c4.seq));
        assert!(
            matches!(r1.get::<Room>().await, Err(Error::Data(_))),
            "data without `capacity` does not fit Room"
        );
        assert_eq!(
            code(rooms.doc("ghost").merge(&json!({"a": 1})).await),
            ErrorCode::NotFound
        );

        // Fields by path: nested, backquoted, null deletes, parents created.
        let c5 = r1
            .update([
                ("topic.subtitle", json!("async")),
                ("topic.`a.b`", json!(1)),
                ("name", Value::Null),
                ("stats.visits", json!(3)),
            ])
            .await
            .unwrap();
        let updated = raw(&r1).await;
        assert_eq!(
            updated.data,
            Some(json!({
                "members": ["dee"],
                "topic": {"title": "Rust", "subtitle": "async", "a.b": 1},
                "stats": {"visits": 3}
            }))
        );
        assert_eq!(updated.version, Some(c5.seq));
        assert_eq!(
            code(r1.update([("a..b", json!(1))]).await),
            ErrorCode::InvalidFieldPath
        );
        assert_eq!(
            code(rooms.doc("ghost").update([("a", json!(1))]).await),
            ErrorCode::NotFound
        );

        // Preconditions that fail change nothing and use no sequence number.
        let ghost = rooms.doc("ghost");
        let attempts = [
            r1.clone().if_exists(false).set(&json!({"x": 1})).await,
            r1.clone().if_version(c4.seq).merge(&json!({"x": 1})).await,
            r1.clone()
                .if_version(c5.seq)
                .if_exists(false)
                .delete()
                .await,
            r1.clone().if_version(c5.seq + 1).patch(vec![]).await,
            ghost.clone().if_exists(true).delete().await,
            ghost.clone().if_version(1).set(&json!({"x": 1})).await,
        ];
        for (i, attempt) in attempts.into_iter().enumerate() {
            assert_eq!(code(attempt), ErrorCode::PreconditionFailed, "attempt {i}");
        }
        assert_eq!(raw(&r1).await, updated);
        assert!(!raw(&ghost).await.exists());
        let c6 = r1
            .clone()
            .if_exists(true)
            .if_version(c5.seq)
            .merge(&json!({"x": 1}))
            .await
            .unwrap();
        assert_eq!(c6.seq, c5.seq + 1);
        let c7 = rooms
            .doc("r2")
            .if_exists(false)
            .set(&json!({"name": "hall"}))
            .await
            .unwrap();
        assert_eq!(c7.seq, c6.seq + 1);
        assert_eq!(raw(&rooms.doc("r2")).await.version, Some(c7.seq));

        // Delete, delete of a missing document, and creating it again.
        let c8 = r1.clone().if_version(c6.seq).delete().await.unwrap();
        assert_eq!((c8.seq, c8.writes.clone()), (c7.seq + 1, r1_exists(false)));
        assert!(!raw(&r1).await.exists());
        let c9 = r1.delete().await.unwrap();
        assert_eq!(
            (c9.seq, c9.writes.clone()),
            (c8.seq + 1, r1_exists(false)),
            "deleting a missing document succeeds and still commits"
        );
        let c10 = r1.create(&json!({"name": "again"})).await.unwrap();
        let again = raw(&r1).await;
        assert_eq!(
            (again.version, again.create_time),
            (Some(c10.seq), Some(c10.time)),
            "a document written again after a delete gets a new create_time"
        );

        // Subcollections: their own sequence numbers, not in the parent's queries.
        let messages = r1.collection("messages");
        assert_eq!(messages.path(), "rooms/r1/messages");
        let m1 = messages.doc("m1");
        assert_eq!(m1.path(), "rooms/r1/messages/m1");
        let cm = m1.set(&json!({"text": "hi"})).await.unwrap();
        assert_eq!(cm.seq, 1, "a subcollection is its own sequence");
        let added = messages.add(&json!({"text": "yo"})).await.unwrap();
        assert_eq!(added.id().len(), 20);
        assert_eq!(raw(&added).await.data, Some(json!({"text": "yo"})));
        assert_eq!(
            raw(&db.doc("rooms/r1/messages/m1")).await.data,
            Some(json!({"text": "hi"}))
        );
        let all_messages = messages.get().await.unwrap();
        assert_eq!(all_messages.len(), 2);
        assert_eq!(all_messages.seq, 2);
        let all_rooms = rooms.get().await.unwrap();
        assert_eq!(ids(&all_rooms.docs), ["r1", "r2"]);
        assert_eq!(all_rooms.seq, c10.seq);
        assert_eq!(rooms.count().await.unwrap(), 2);

        // Invalid paths, checked whatever the call.
        assert_eq!(
            code(db.doc("rooms").get::<Value>().await),
            ErrorCode::InvalidPath
        );
        assert_eq!(
            code(db.doc("rooms/r1/messages").set(&json!({})).await),
            ErrorCode::InvalidPath
        );
        assert_eq!(
            code(db.doc("rooms/..").delete().await),
            ErrorCode::InvalidPath
        );
        assert_eq!(
            code(rooms.doc("a b").create(&json!({})).await),
            ErrorCode::InvalidPath
        );
        assert_eq!(
            code(db.collection("rooms/r1").get().await),
            ErrorCode::InvalidPath
        );
        assert_eq!(
            code(db.collection("").count().await),
            ErrorCode::InvalidPath
        );
        let mut bad_listener = db.doc("rooms/__x__").listen();
        let first = within("a refused listener", bad_listener.next()).await;
        assert_eq!(code(first.expect("an error item")), ErrorCode::InvalidPath);
        assert!(within("the end", bad_listener.next()).await.is_none());
        assert_eq!(rooms.count().await.unwrap(), 2, "nothing was written");
    });
}

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
        let items_ref = db.collection("items");
        let mut batch = db.batch();
        for (id, data) in items() {
            batch.set(&items_ref.doc(id), &data);
        }
        assert_eq!(batch.len(), 9);
        let loaded = batch.commit().await.unwrap();
        // A document of another collection, which no query here may see.
        db.doc("other/a").set(&json!({"n": 1})).await.unwrap();

        let q = || db.collection("items");
        let numbers = || q().where_("n", ">", -1000).order_by("n", Asc);
        // Each expectation was worked out by hand from `items()` and the spec
        // (missing fields never match; ranges stay in their type class; ties
        // break by id in the last order_by key's direction).
        let cases: Vec<(&str, QueryRef, Vec<&str>)> = vec![
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
        ];
        let mut failures = Vec::new();
        for (label, query, want) in &cases {
            let got = query.get().await.unwrap_or_else(|e| panic!("{label}: {e}"));
            assert_eq!(got.seq, loaded.seq, "{label}");
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

        // Query results carry the documents as `get` reads them.
        let c = q().where_("s", "==", "cherry").get().await.unwrap();
        assert_eq!(c.docs, vec![raw(&items_ref.doc("c")).await]);
        assert_eq!(c.docs[0].version, Some(loaded.seq));
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

        // Bad queries: refused locally or by the server, with their codes.
        let bad: Vec<(&str, QueryRef, ErrorCode)> = vec![
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
        ];
        for (label, query, want) in bad {
            assert_eq!(code(query.get().await), want, "{label}: get");
            assert_eq!(code(query.count().await), want, "{label}: count");
            let mut listener = query.listen();
            let first = within(label, listener.next()).await.expect("an item");
            assert_eq!(code(first), want, "{label}: listen");
            assert!(
                within(label, listener.next()).await.is_none(),
                "{label}: the stream ends"
            );
        }
        assert_eq!(q().count().await.unwrap(), 9, "bad queries changed nothing");
    });
}

#[test]
fn listeners_follow_writes_of_another_client() {
    let Some(_serial) = e2e() else { return };
    run(async {
        let server = WranglerDev::start("client-listen");
        let db = connect(&server.url()).await;
        let writer = connect(&server.url()).await;
        let board = writer.collection("board");
        let query = db
            .collection("board")
            .where_("score", ">=", 10)
            .order_by("score", Desc)
            .limit(3);

        let mut listener = query.listen();
        let mut twin = query.listen(); // the same target on the same connection
        let mut doc_listener = db.doc("board/b").listen();
        // More listeners, checked against a fresh query after every commit.
        let board_of = |db: &Blaze| db.collection("board");
        let others: Vec<(&'static str, MakeQuery)> = vec![
            ("limit_to_last", |c| {
                c.order_by("score", Asc).limit_to_last(2)
            }),
            ("cursors", |c| {
                c.order_by("score", Asc)
                    .start_after(vec![json!(10)])
                    .end_at(vec![json!(30)])
            }),
            ("or", |c| {
                c.filter(or([field("score").lt(10), field("label").eq("x")]))
            }),
            ("all", |c| c.query()),
        ];
        let mut others: Vec<Watched> = others
            .into_iter()
            .map(|(name, make)| {
                let listener = make(board_of(&db)).listen();
                (name, make(board_of(&writer)), listener, Tracker::new(name))
            })
            .collect();
        for (name, _, listener, view) in &mut others {
            view.event(within(name, listener.next()).await);
            assert_eq!(view.seq, Some(0));
        }
        let first = match within("the first event", listener.next()).await {
            Some(Ok(ListenEvent::Snapshot(first))) => first,
            other => panic!("the first event is a snapshot, not {other:?}"),
        };
        assert_eq!((first.seq, first.len(), first.reset), (0, 0, false));
        assert!(next_snap(&mut twin, "twin").await.is_empty());
        let b_missing = next_snap(&mut doc_listener, "document listener").await;
        assert!(!b_missing.exists());
        assert_eq!(b_missing.path, "board/b");

        use ChangeKind::{Added, Modified, Removed};
        let set = |id: &'static str, data: Value| (id, "set", data);
        let merge = |id: &'static str, data: Value| (id, "merge", data);
        // (write, the changes it makes to the query's results, or none).
        let steps: Vec<Step> = vec![
            (
                set("a", json!({"score": 10})),
                vec![(Added, "a", None, Some(0))],
            ),
            (
                set("b", json!({"score": 20})),
                vec![(Added, "b", None, Some(0))],
            ),
            (set("c", json!({"score": 5})), vec![]), // does not match
            (
                set("c", json!({"score": 15})),
                vec![(Added, "c", None, Some(1))],
            ),
            (
                set("d", json!({"score": 30})), // pushes a out of the window
                vec![(Removed, "a", Some(2), None), (Added, "d", None, Some(0))],
            ),
            (merge("a", json!({"score": 12})), vec![]), // still outside the window
            (
                merge("c", json!({"score": 40})),
                vec![(Modified, "c", Some(2), Some(0))],
            ),
            (
                merge("b", json!({"label": "x"})),
                vec![(Modified, "b", Some(2), Some(2))],
            ),
            (
                ("d", "delete", Value::Null), // a comes back into the window
                vec![(Removed, "d", Some(1), None), (Added, "a", None, Some(2))],
            ),
            (
                merge("b", json!({"score": 1})),
                vec![(Removed, "b", Some(1), None)],
            ),
            // Ties with a on score; desc order puts the greater id first.
            (
                set("e", json!({"score": 12})),
                vec![(Added, "e", None, Some(1))],
            ),
        ];
        let mut docs = first.docs.clone();
        for (i, ((id, op, data), want)) in steps.into_iter().enumerate() {
            let doc = board.doc(id);
            let commit = match op {
                "set" => doc.set(&data).await,
                "merge" => doc.merge(&data).await,
                _ => doc.delete().await,
            }
            .unwrap_or_else(|e| panic!("step {i}: {e}"));
            for (name, query, listener, view) in &mut others {
                // A listener whose results changed has one snapshot for this
                // commit; one whose results did not has none, which its next
                // snapshot's seq shows.
                let fresh = query.get().await.unwrap();
                if fresh.docs != view.docs {
                    while view.seq != Some(commit.seq) {
                        view.event(within(name, listener.next()).await);
                    }
                    assert_eq!(view.docs, fresh.docs, "step {i}: {name}");
                }
            }
            if id == "b" {
                let seen = next_snap(&mut doc_listener, "document listener").await;
                assert_eq!(seen, raw(&doc).await, "step {i}: the document listener");
                assert_eq!(seen.version, Some(commit.seq));
            }
            if want.is_empty() {
                continue; // the next snapshot's seq shows none came for this commit
            }
            let snap = next_snap(&mut listener, "query listener").await;
            assert_eq!(
                snap.seq, commit.seq,
                "step {i}: one snapshot per commit that changes the results"
            );
            assert_eq!(shapes(snap.changes()), want, "step {i}: changes");
            assert!(!snap.reset);
            assert_eq!(
                apply(&docs, snap.changes()),
                snap.docs,
                "step {i}: changes applied"
            );
            let fresh = query.get().await.unwrap();
            assert_eq!(
                snap.docs, fresh.docs,
                "step {i}: the listener equals a fresh query"
            );
            // The written document has the commit's seq as its version; others
            // entering the window keep theirs.
            for change in snap.changes().iter().filter(|c| c.kind != Removed) {
                let version = raw(&board.doc(change.doc.id())).await.version;
                assert_eq!(change.doc.version, version, "step {i}");
                if change.doc.id() == id {
                    assert_eq!(version, Some(commit.seq), "step {i}");
                }
            }
            assert_eq!(next_snap(&mut twin, "twin").await, snap, "step {i}: twin");
            docs = snap.docs;
        }
        assert_eq!(ids(&docs), ["c", "e", "a"]);
        let snapshots: Vec<(&str, usize)> = others.iter().map(|o| (o.0, o.3.snapshots)).collect();
        // Worked out by hand from the steps: the first snapshot, plus one per
        // commit that changed the results (limit_to_last: steps 1 2 4 5 7 9 10
        // 11; cursors: all but 1 and 3; or: 3 4 8 10; all: every one).
        assert_eq!(
            snapshots,
            [
                ("limit_to_last", 9),
                ("cursors", 10),
                ("or", 5),
                ("all", 12)
            ],
            "snapshots per listener, the first included"
        );

        // Deleting the document: the document listener sees it go.
        let gone = board.doc("b").delete().await.unwrap();
        let seen = next_snap(&mut doc_listener, "document listener").await;
        assert!(!seen.exists());
        // b had left the query already: nothing for it, so the next query
        // snapshot is for the next commit that matters.
        drop(twin);
        let last = board.doc("f").set(&json!({"score": 99})).await.unwrap();
        assert!(last.seq > gone.seq);
        let snap = next_snap(&mut listener, "query listener").await;
        assert_eq!(snap.seq, last.seq);
        assert_eq!(
            shapes(snap.changes()),
            vec![(Removed, "a", Some(2), None), (Added, "f", None, Some(0))]
        );
        assert_eq!(apply(&docs, snap.changes()), snap.docs);

        // Listening to a collection never written.
        let mut empty = db.collection("nothing").where_("x", "==", 1).listen();
        let none = next_snap(&mut empty, "empty query").await;
        assert_eq!((none.seq, none.len()), (0, 0));
    });
}

#[test]
fn batches_are_atomic_and_name_the_failing_write() {
    let Some(_serial) = e2e() else { return };
    run(async {
        let server = WranglerDev::start("client-batch");
        let db = connect(&server.url()).await;
        let c = db.collection("c");
        c.doc("old").set(&json!({"n": 0})).await.unwrap();
        c.doc("keep").set(&json!({"n": 1})).await.unwrap();

        let mut batch = db.batch();
        assert!(batch.is_empty());
        batch
            .create(&c.doc("a"), &json!({"n": 1}))
            .update(&c.doc("a"), [("m.k", json!(2))])
            .patch(
                &c.doc("a"),
                vec![json!({"op": "add", "path": "/p", "value": true})],
            )
            .merge(&c.doc("keep"), &json!({"n": null, "k": 1}))
            .set(&c.doc("b"), &json!({"n": 2}))
            .delete(&c.doc("old"))
            // Written earlier in this batch: its version is already the batch's seq.
            .verify(&c.doc("keep").if_version(3));
        assert_eq!(batch.len(), 7);
        let done = batch.commit().await.unwrap();
        assert_eq!(done.seq, 3);
        let exists: Vec<(&str, bool)> = done
            .writes
            .iter()
            .map(|w| (w.id.as_str(), w.exists))
            .collect();
        assert_eq!(
            exists,
            [
                ("a", true),
                ("a", true),
                ("a", true),
                ("keep", true),
                ("b", true),
                ("old", false),
                ("keep", true)
            ]
        );
        let a = raw(&c.doc("a")).await;
        assert_eq!(a.data, Some(json!({"n": 1, "m": {"k": 2}, "p": true})));
        assert_eq!(
            (a.version, a.create_time, a.update_time),
            (Some(3), Some(done.time), Some(done.time))
        );
        assert_eq!(raw(&c.doc("keep")).await.data, Some(json!({"k": 1})));
        assert_eq!(raw(&c.doc("b")).await.version, Some(3));
        assert!(!raw(&c.doc("old")).await.exists());
        let state = c.get().await.unwrap();
        assert_eq!(ids(&state.docs), ["a", "b", "keep"]);

        // One failing write fails the batch; nothing of it lands.
        let failing: Vec<FailingBatch> = vec![
            (
                Box::new(|b| {
                    b.set(&c.doc("x"), &json!({"n": 9}))
                        .create(&c.doc("a"), &json!({}));
                }),
                1,
                ErrorCode::AlreadyExists,
            ),
            (
                Box::new(|b| {
                    b.set(&c.doc("x"), &json!({}))
                        .delete(&c.doc("a"))
                        .merge(&c.doc("a"), &json!({"n": 1}));
                }),
                2,
                ErrorCode::NotFound,
            ),
            (
                Box::new(|b| {
                    b.delete(&c.doc("b"))
                        .set(&c.doc("x"), &json!({}))
                        .verify(&c.doc("keep").if_version(2));
                }),
                2,
                ErrorCode::PreconditionFailed,
            ),
            (
                Box::new(|b| {
                    b.set(&c.doc("x"), &json!({})).patch(
                        &c.doc("b"),
                        vec![json!({"op": "test", "path": "/n", "value": 3})],
                    );
                }),
                1,
                ErrorCode::PatchTestFailed,
            ),
        ];
        for (i, (build, index, want)) in failing.into_iter().enumerate() {
            let mut batch = db.batch();
            build(&mut batch);
            match batch.commit().await {
                Err(Error::Rejected {
                    code, write_index, ..
                }) => {
                    assert_eq!((code, write_index), (want, Some(index)), "batch {i}");
                }
                other => panic!("batch {i}: {other:?}"),
            }
        }
        assert_eq!(
            c.get().await.unwrap(),
            state,
            "failed batches changed nothing"
        );

        // Batches the client refuses before sending.
        let mut two = db.batch();
        two.set(&c.doc("a"), &json!({}))
            .set(&db.doc("d/a"), &json!({}));
        assert!(matches!(two.commit().await, Err(Error::Usage(_))));
        assert_eq!(code(db.batch().commit().await), ErrorCode::EmptyBatch);
        let mut bad_id = db.batch();
        bad_id
            .set(&c.doc("a"), &json!({}))
            .set(&c.doc("__x__"), &json!({}));
        assert_eq!(code(bad_id.commit().await), ErrorCode::InvalidPath);

        let next = c.doc("x").set(&json!({})).await.unwrap();
        assert_eq!(
            next.seq,
            state.seq + 1,
            "no failed batch used a sequence number"
        );
    });
}

#[test]
fn transactions_retry_until_every_increment_lands() {
    let Some(_serial) = e2e() else { return };
    run(async {
        let server = WranglerDev::start("client-tx");
        let setup = connect(&server.url()).await;
        setup.doc("counters/c").set(&json!({"n": 0})).await.unwrap();

        const TASKS: u64 = 2;
        const INCREMENTS: u64 = 5;
        let runs = Arc::new(AtomicU32::new(0));
        let mut tasks = Vec::new();
        for t in 0..TASKS {
            let db = connect(&server.url()).await;
            let runs = runs.clone();
            tasks.push(tokio::spawn(async move {
                let counter = db.doc("counters/c");
                let mut seen = Vec::new();
                for _ in 0..INCREMENTS {
                    let n = db
                        .run_transaction(|tx| {
                            let counter = counter.clone();
                            let runs = runs.clone();
                            async move {
                                runs.fetch_add(1, Ordering::SeqCst);
                                let now = tx.get::<Value>(&counter).await?;
                                let n = now.data.and_then(|d| d["n"].as_u64()).unwrap_or(0) + 1;
                                tx.update(
                                    &counter,
                                    [("n", json!(n)), (format!("by.t{t}").as_str(), json!(true))],
                                )?;
                                Ok(n)
                            }
                        })
                        .await
                        .unwrap_or_else(|e| panic!("task {t}: {e}"));
                    seen.push(n);
                }
                seen
            }));
        }
        let mut all = Vec::new();
        for task in tasks {
            all.extend(
                within("a transaction task", task)
                    .await
                    .expect("the task succeeds"),
            );
        }
        all.sort_unstable();
        let total = TASKS * INCREMENTS;
        assert_eq!(
            all,
            (1..=total).collect::<Vec<_>>(),
            "each increment saw a distinct value"
        );
        let counter = raw(&setup.doc("counters/c")).await;
        assert_eq!(counter.data.as_ref().unwrap()["n"], json!(total));
        assert_eq!(
            counter.version,
            Some(1 + total),
            "one commit per increment, no more"
        );
        println!(
            "{total} increments took {} transaction runs",
            runs.load(Ordering::SeqCst)
        );

        // A conflict is retried: the body runs again on the new data.
        let db = connect(&server.url()).await;
        let other = connect(&server.url()).await;
        db.doc("t/x").set(&json!({"v": 1})).await.unwrap();
        let attempts = Arc::new(AtomicU32::new(0));
        let copied = db
            .run_transaction(|tx| {
                let (db, other, attempts) = (db.clone(), other.clone(), attempts.clone());
                async move {
                    let x = tx.get::<Value>(&db.doc("t/x")).await?;
                    let y = tx.get::<Value>(&db.doc("t/y")).await?;
                    assert!(!y.exists());
                    if attempts.fetch_add(1, Ordering::SeqCst) == 0 {
                        // Another writer changes x after it was read.
                        other.doc("t/x").set(&json!({"v": 2})).await?;
                    }
                    let v = x.data.unwrap()["v"].clone();
                    tx.set(&db.doc("t/y"), &json!({"v": v}))?;
                    Ok(v)
                }
            })
            .await
            .unwrap();
        assert_eq!((copied, attempts.load(Ordering::SeqCst)), (json!(2), 2));
        assert_eq!(raw(&db.doc("t/y")).await.data, Some(json!({"v": 2})));

        // Endless contention gives up after TRANSACTION_ATTEMPTS runs, writing nothing.
        let attempts = Arc::new(AtomicU32::new(0));
        let outcome = db
            .run_transaction(|tx| {
                let (db, other, attempts) = (db.clone(), other.clone(), attempts.clone());
                async move {
                    attempts.fetch_add(1, Ordering::SeqCst);
                    tx.get::<Value>(&db.doc("t/x")).await?;
                    other
                        .doc("t/x")
                        .merge(&json!({"bump": attempts.load(Ordering::SeqCst)}))
                        .await?;
                    tx.set(&db.doc("t/z"), &json!({"never": true}))?;
                    Ok(())
                }
            })
            .await;
        match outcome {
            Err(e @ Error::TransactionContention { .. }) => {
                assert_eq!(e.code(), Some(ErrorCode::PreconditionFailed))
            }
            other => panic!("expected contention, got {other:?}"),
        }
        assert_eq!(attempts.load(Ordering::SeqCst), TRANSACTION_ATTEMPTS);
        assert!(!raw(&db.doc("t/z")).await.exists());

        // A body that fails commits nothing and is not retried.
        let attempts = Arc::new(AtomicU32::new(0));
        let failed: Result<(), Error> = db
            .run_transaction(|tx| {
                let (db, attempts) = (db.clone(), attempts.clone());
                async move {
                    attempts.fetch_add(1, Ordering::SeqCst);
                    tx.set(&db.doc("t/w"), &json!({}))?;
                    Err(Error::Usage("the body gives up".into()))
                }
            })
            .await;
        assert!(matches!(failed, Err(Error::Usage(_))));
        assert_eq!(attempts.load(Ordering::SeqCst), 1);
        assert!(!raw(&db.doc("t/w")).await.exists());
        // A transaction spans one collection.
        let across: Result<(), Error> = db
            .run_transaction(|tx| {
                let db = db.clone();
                async move {
                    tx.get::<Value>(&db.doc("t/x")).await?;
                    tx.get::<Value>(&db.doc("counters/c")).await?;
                    Ok(())
                }
            })
            .await;
        assert!(matches!(across, Err(Error::Usage(_))), "{across:?}");
    });
}

/// One query listener's view, checked at every event.
struct Tracker {
    name: &'static str,
    docs: Vec<DocumentSnapshot>,
    seq: Option<u64>,
    snapshots: usize,
    resets: usize,
    /// The largest seq step between two snapshots (more than one commit
    /// caught up at once, as after a reconnect).
    max_jump: u64,
    offline: usize,
    online: usize,
    is_offline: bool,
}

impl Tracker {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            docs: Vec::new(),
            seq: None,
            snapshots: 0,
            resets: 0,
            max_jump: 0,
            offline: 0,
            online: 0,
            is_offline: false,
        }
    }

    fn event(&mut self, event: Option<Result<ListenEvent<QuerySnapshot>, Error>>) {
        let name = self.name;
        let event = event
            .unwrap_or_else(|| panic!("{name}: the stream ended"))
            .unwrap_or_else(|e| panic!("{name}: the listener failed: {e}"));
        match event {
            ListenEvent::Snapshot(snap) => {
                if let Some(seq) = self.seq {
                    assert!(
                        snap.seq > seq,
                        "{name}: seq went from {seq} to {}: a snapshot seen twice",
                        snap.seq
                    );
                    self.max_jump = self.max_jump.max(snap.seq - seq);
                }
                assert_eq!(
                    apply(&self.docs, snap.changes()),
                    snap.docs,
                    "{name}: the changes at seq {} do not give the snapshot",
                    snap.seq
                );
                self.resets += usize::from(snap.reset);
                self.snapshots += 1;
                self.seq = Some(snap.seq);
                self.docs = snap.docs;
            }
            ListenEvent::State(ConnectionState::Offline { .. }) => {
                self.offline += 1;
                self.is_offline = true;
            }
            ListenEvent::State(ConnectionState::Online) => {
                assert!(self.is_offline, "{name}: online without being offline");
                self.online += 1;
                self.is_offline = false;
            }
        }
    }
}

/// A small deterministic generator (the tests need no randomness crate).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

#[test]
fn listeners_resume_exactly_across_cut_connections() {
    let Some(_serial) = e2e() else { return };
    run(async {
        let server = WranglerDev::start("client-cut");
        let proxy = Arc::new(Proxy::start(server.port).await);
        let db = connect(&proxy.url()).await;
        let writer = connect(&server.url()).await;
        let all_query = |db: &Blaze| db.collection("stream").query();
        let top_query = |db: &Blaze| {
            db.collection("stream")
                .where_("keep", "==", true)
                .order_by("n", Desc)
                .limit(6)
        };
        let mut all = all_query(&db).listen();
        let mut top = top_query(&db).listen();
        let mut one = db.doc("stream/s03").listen();
        let (mut all_view, mut top_view) = (Tracker::new("all"), Tracker::new("top"));
        all_view.event(within("all", all.next()).await);
        top_view.event(within("top", top.next()).await);
        let mut one_view = next_snap(&mut one, "document listener").await;
        assert_eq!((all_view.seq, top_view.seq), (Some(0), Some(0)));
        assert_eq!(proxy.live(), 1, "one connection for the collection");

        const WRITES: u64 = 200;
        const CUT_AT: [u64; 4] = [40, 80, 120, 160];
        let mut feed = {
            let (proxy, writer) = (proxy.clone(), writer.clone());
            tokio::spawn(async move {
                let mut rng = Lcg(7);
                let mut cuts = Vec::new();
                let mut seq = 0;
                for i in 0..WRITES {
                    if CUT_AT.contains(&i) {
                        assert!(proxy.wait_live(WAIT).await, "the client reconnected");
                        cuts.push(proxy.cut());
                    }
                    let doc = writer.doc(&format!("stream/s{:02}", rng.below(20)));
                    let result = match rng.below(10) {
                        0..=1 => doc.delete().await,
                        2..=3 => doc.merge(&json!({"n": rng.below(50), "w": i})).await,
                        _ => {
                            let data =
                                json!({"n": rng.below(50), "keep": rng.below(5) > 0, "w": i});
                            doc.set(&data).await
                        }
                    };
                    match result {
                        Ok(commit) => {
                            seq += 1;
                            assert_eq!(commit.seq, seq, "write {i}");
                        }
                        Err(e) => assert_eq!(e.code(), Some(ErrorCode::NotFound), "write {i}: {e}"),
                    }
                    if i % 10 == 0 {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
                // A last write that changes both queries' results.
                let marker = writer
                    .doc("stream/zz")
                    .set(&json!({"n": 1000, "keep": true}))
                    .await
                    .unwrap();
                (marker.seq, cuts)
            })
        };

        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let mut finished: Option<(u64, Vec<usize>)> = None;
        loop {
            if let Some((last, _)) = &finished {
                if all_view.seq == Some(*last) && top_view.seq == Some(*last) {
                    break;
                }
            }
            tokio::select! {
                event = all.next() => all_view.event(event),
                event = top.next() => top_view.event(event),
                event = one.next() => match event.expect("the document stream").expect("no error") {
                    ListenEvent::Snapshot(doc) => one_view = doc,
                    ListenEvent::State(_) => {}
                },
                done = &mut feed, if finished.is_none() => {
                    finished = Some(done.expect("the writer succeeds"));
                }
                _ = tokio::time::sleep_until(deadline) => panic!(
                    "the listeners did not catch up: all at {:?}, top at {:?}, writer done: {:?}",
                    all_view.seq, top_view.seq, finished.as_ref().map(|f| f.0)
                ),
            }
        }
        let (last, cuts) = finished.unwrap();
        assert!(
            cuts.iter().all(|&n| n >= 1),
            "every cut closed a connection: {cuts:?}"
        );
        // Fresh reads, on the writer's direct connection.
        for (view, query) in [
            (&all_view, all_query(&writer)),
            (&top_view, top_query(&writer)),
        ] {
            let fresh = query.get().await.unwrap();
            assert_eq!(fresh.seq, last);
            assert_eq!(
                view.docs, fresh.docs,
                "{}: the final view equals a fresh query",
                view.name
            );
            assert!(
                view.offline >= CUT_AT.len() && view.online >= CUT_AT.len(),
                "{}: {} offline and {} online events for {} cuts",
                view.name,
                view.offline,
                view.online,
                CUT_AT.len()
            );
            assert!(!view.is_offline);
            assert_eq!(
                view.resets, 0,
                "{}: the change log covers every gap",
                view.name
            );
            println!(
                "{}: {} snapshots (largest seq step {}), {} offline / {} online events, {} docs",
                view.name,
                view.snapshots,
                view.max_jump,
                view.offline,
                view.online,
                view.docs.len()
            );
        }
        assert_eq!(
            all_view.docs.len(),
            db.collection("stream").count().await.unwrap() as usize
        );
        // The document listener ends at the document's current state.
        let want = raw(&writer.doc("stream/s03")).await;
        while one_view != want {
            one_view = next_snap(&mut one, "document listener").await;
        }
        assert!(proxy.live() >= 1);
    });
}

#[test]
fn listeners_resume_after_a_server_restart() {
    let Some(_serial) = e2e() else { return };
    run(async {
        let mut server = WranglerDev::start("client-restart");
        let proxy = Proxy::start(server.port).await;
        let db = connect(&proxy.url()).await;
        let query = db
            .collection("log")
            .where_("i", ">=", 0)
            .order_by("i", Desc)
            .limit(12);
        let mut listener = query.listen();
        let mut view = Tracker::new("log");
        view.event(within("first snapshot", listener.next()).await);

        let writer = connect(&server.url()).await;
        for i in 0..30u64 {
            let commit = writer
                .doc(&format!("log/w{i:02}"))
                .create(&json!({"i": i}))
                .await
                .unwrap();
            assert_eq!(commit.seq, i + 1);
        }
        while view.seq != Some(30) {
            view.event(within("catching up before the restart", listener.next()).await);
        }
        drop(writer);

        tokio::task::block_in_place(|| server.kill());
        while !view.is_offline {
            view.event(within("the listener sees the server go", listener.next()).await);
        }
        let restarted = tokio::task::block_in_place(|| {
            WranglerDev::start_with_state(server.state().to_path_buf())
        });
        assert_ne!(restarted.port, server.port);

        // Writes on the restarted server while the listener still cannot reach it.
        let writer = connect(&restarted.url()).await;
        for i in 30..40u64 {
            let commit = writer
                .doc(&format!("log/w{i:02}"))
                .create(&json!({"i": i}))
                .await
                .unwrap();
            assert_eq!(commit.seq, i + 1, "the restarted server kept the sequence");
        }
        for i in 0..10u64 {
            writer.doc(&format!("log/w{i:02}")).delete().await.unwrap();
        }
        let missed = writer
            .doc("log/w39")
            .merge(&json!({"i": 100, "late": true}))
            .await
            .unwrap();
        assert_eq!(missed.seq, 51);
        assert!(view.is_offline);

        // Now the listener can reach it: one snapshot catches it up.
        proxy.set_upstream(restarted.port);
        let snapshots = view.snapshots;
        while view.seq == Some(30) {
            view.event(within("catching up after the restart", listener.next()).await);
        }
        assert_eq!(view.seq, Some(missed.seq), "caught up in one snapshot");
        assert_eq!(
            (view.snapshots, view.resets, view.online),
            (snapshots + 1, 0, 1)
        );
        let fresh = query.get().await.unwrap();
        assert_eq!(fresh.seq, missed.seq);
        assert_eq!(
            view.docs, fresh.docs,
            "the resumed view equals a fresh query"
        );

        // And it follows live changes again.
        let live = writer
            .doc("log/w38")
            .merge(&json!({"i": 99}))
            .await
            .unwrap();
        while view.seq != Some(live.seq) {
            view.event(within("a live change after the restart", listener.next()).await);
        }
        let fresh = query.get().await.unwrap();
        assert_eq!(view.docs, fresh.docs);
        assert_eq!(ids(&view.docs)[..3], ["w39", "w38", "w37"]);
        assert_eq!(db.collection("log").count().await.unwrap(), 30);
        println!(
            "restart: {} snapshots, {} resets, {} offline / {} online events",
            view.snapshots, view.resets, view.offline, view.online
        );
    });
}

/// With a change log of three commits, a listener kept offline (the proxy
/// points at a closed port) over at most three commits resumes with the
/// changes; over more it gets a reset snapshot, whose changes (computed by
/// the client) still turn its old results into the new ones.
#[test]
fn a_listener_offline_past_the_change_log_gets_a_reset() {
    let Some(_serial) = e2e() else { return };
    run(async {
        let server = WranglerDev::start_with_vars("client-reset", &["BLAZE_LOG_MAX_ENTRIES:3"]);
        let proxy = Proxy::start(server.port).await;
        let writer = connect(&server.url()).await;
        let r = writer.collection("r");
        for (i, id) in ["a", "b", "c", "d", "e", "f"].into_iter().enumerate() {
            r.doc(id).set(&json!({"n": i + 1})).await.unwrap();
        }
        let db = connect(&proxy.url()).await;
        let query = |db: &Blaze| db.collection("r").order_by("n", Asc).limit(4);
        let mut listener = query(&db).listen();
        let mut doc_listener = db.doc("r/a").listen();
        let mut view = Tracker::new("r");
        view.event(within("first snapshot", listener.next()).await);
        assert_eq!(
            (view.seq, ids(&view.docs)),
            (Some(6), vec!["a", "b", "c", "d"])
        );
        assert!(next_snap(&mut doc_listener, "document listener")
            .await
            .exists());
        let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();

        use ChangeKind::{Added, Modified, Removed};
        // (writes while offline, whether the resume is a reset, the changes).
        type Write = (&'static str, Option<Value>);
        let phases: Vec<(Vec<Write>, bool, Vec<Shape>)> = vec![
            (
                vec![("b", Some(json!({"n": 10})))],
                false,
                vec![(Removed, "b", Some(1), None), (Added, "e", None, Some(3))],
            ),
            (
                vec![
                    ("a", None),
                    ("g", Some(json!({"n": 0}))),
                    ("c", Some(json!({"n": 3, "x": 1}))),
                    ("e", Some(json!({"n": 2}))),
                    ("h", Some(json!({"n": 100}))),
                ],
                true,
                vec![
                    (Removed, "a", Some(0), None),
                    (Added, "g", None, Some(0)),
                    (Modified, "e", Some(3), Some(1)),
                    (Modified, "c", Some(2), Some(2)),
                ],
            ),
        ];
        for (phase, (writes, reset, want)) in phases.into_iter().enumerate() {
            proxy.set_upstream(closed_port);
            assert_eq!(proxy.cut(), 1, "phase {phase}: one connection to cut");
            while !view.is_offline {
                view.event(within("going offline", listener.next()).await);
            }
            let mut last = 0;
            for (id, data) in writes {
                last = match data {
                    Some(data) => r.doc(id).set(&data).await,
                    None => r.doc(id).delete().await,
                }
                .unwrap()
                .seq;
            }
            proxy.set_upstream(server.port);
            let before = view.docs.clone();
            let snap = loop {
                match within("resuming", listener.next()).await {
                    Some(Ok(ListenEvent::Snapshot(snap))) => break snap,
                    other => view.event(other),
                }
            };
            assert!(view.online > phase, "phase {phase}: online again");
            assert_eq!((snap.seq, snap.reset), (last, reset), "phase {phase}");
            assert_eq!(shapes(snap.changes()), want, "phase {phase}");
            view.event(Some(Ok(ListenEvent::Snapshot(snap.clone()))));
            assert_eq!(apply(&before, snap.changes()), snap.docs);
            let fresh = query(&writer).get().await.unwrap();
            assert_eq!(
                (fresh.seq, &fresh.docs),
                (last, &view.docs),
                "phase {phase}"
            );
        }
        assert_eq!(ids(&view.docs), ["g", "e", "c", "d"]);
        let gone = next_snap(&mut doc_listener, "document listener").await;
        assert!(!gone.exists(), "the document listener saw the delete");
    });
}

/// The test proxy itself (no worker): it forwards, switches upstream, cuts
/// live connections, and stops everything when dropped.
#[test]
fn the_proxy_forwards_cuts_switches_and_stops_when_dropped() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    /// An upstream that greets each connection with `tag`, then echoes.
    async fn upstream(tag: u8) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    socket.write_all(&[tag]).await.ok();
                    let (mut r, mut w) = socket.split();
                    tokio::io::copy(&mut r, &mut w).await.ok();
                });
            }
        });
        port
    }
    async fn open(port: u16) -> (TcpStream, u8) {
        let mut socket = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let mut tag = [0];
        within("the greeting", socket.read_exact(&mut tag))
            .await
            .unwrap();
        (socket, tag[0])
    }
    async fn closed(socket: &mut TcpStream) -> bool {
        let mut buf = [0; 8];
        matches!(
            within("the close", socket.read(&mut buf)).await,
            Ok(0) | Err(_)
        )
    }

    run(async {
        let (one, two) = (upstream(1).await, upstream(2).await);
        let proxy = Proxy::start(one).await;
        let (mut a, tag) = open(proxy.port).await;
        assert_eq!(tag, 1);
        a.write_all(b"ping").await.unwrap();
        let mut echo = [0; 4];
        within("the echo", a.read_exact(&mut echo)).await.unwrap();
        assert_eq!(&echo, b"ping");
        let (mut b, _) = open(proxy.port).await;
        assert!(proxy.wait_live(WAIT).await);
        assert_eq!(proxy.cut(), 2);
        assert!(
            closed(&mut a).await && closed(&mut b).await,
            "cut closes both"
        );

        proxy.set_upstream(two);
        let (mut c, tag) = open(proxy.port).await;
        assert_eq!(tag, 2, "new connections go to the new upstream");
        let port = proxy.port;
        drop(proxy);
        assert!(
            closed(&mut c).await,
            "dropping the proxy closes its connections"
        );
        let deadline = Instant::now() + WAIT;
        while TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            assert!(
                Instant::now() < deadline,
                "the proxy still accepts after drop"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
}
