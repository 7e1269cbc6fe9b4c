//! Listeners: a query listener, a twin on the same target, a document
//! listener and more queries follow the writes of another client exactly.

use blaze_client::Direction::{Asc, Desc};
use blaze_client::{
    field, or, Blaze, ChangeKind, CollectionRef, DocumentSnapshot, ListenEvent, Listener, QueryRef,
    QuerySnapshot,
};
use blaze_tests::live::{e2e, WranglerDev};
use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::support::{apply, connect, ids, next_snap, raw, run, shapes, within, Shape, Tracker};

use ChangeKind::{Added, Modified, Removed};

/// A listener test step: a write (id, op, data) and the changes it makes.
type Step<'a> = ((&'a str, &'a str, Value), Vec<Shape<'a>>);

/// Builds a query over a collection.
type MakeQuery = fn(CollectionRef) -> QueryRef;

/// A listener with its view, and the same query on another client for fresh reads.
type Watched = (&'static str, QueryRef, Listener<QuerySnapshot>, Tracker);

/// The listeners of one client to collection `board`.
struct Listeners {
    /// The main query: `score >= 10`, by score descending, 3 at most.
    query: QueryRef,
    listener: Listener<QuerySnapshot>,
    /// The same target on the same connection.
    twin: Listener<QuerySnapshot>,
    /// Document `board/b`.
    doc_listener: Listener<DocumentSnapshot>,
    /// More queries, checked against a fresh query after every commit.
    others: Vec<Watched>,
}

#[test]
fn listeners_follow_writes_of_another_client() {
    let Some(_serial) = e2e() else { return };
    run(async {
        let server = WranglerDev::start("client-listen");
        let db = connect(&server.url()).await;
        let writer = connect(&server.url()).await;
        let board = writer.collection("board");
        let mut l = listen(&db, &writer);
        let first = first_events(&mut l).await;
        let docs = each_write_changes_exactly_what_it_should(&board, &mut l, first).await;
        a_deleted_document_and_the_next_commit(&board, l, docs).await;
        a_collection_never_written(&db).await;
    });
}

/// Starts every listener of `db`; `writer` makes the fresh queries.
fn listen(db: &Blaze, writer: &Blaze) -> Listeners {
    let query = db
        .collection("board")
        .where_("score", ">=", 10)
        .order_by("score", Desc)
        .limit(3);
    let listener = query.listen();
    let twin = query.listen();
    let doc_listener = db.doc("board/b").listen();
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
    let others: Vec<Watched> = others
        .into_iter()
        .map(|(name, make)| {
            let listener = make(board_of(db)).listen();
            (name, make(board_of(writer)), listener, Tracker::new(name))
        })
        .collect();
    Listeners {
        query,
        listener,
        twin,
        doc_listener,
        others,
    }
}

/// Every listener starts with an empty snapshot at seq 0; returns the main one's.
async fn first_events(l: &mut Listeners) -> Vec<DocumentSnapshot> {
    for (name, _, listener, view) in &mut l.others {
        view.event(within(name, listener.next()).await);
        assert_eq!(view.seq, Some(0));
    }
    let first = match within("the first event", l.listener.next()).await {
        Some(Ok(ListenEvent::Snapshot(first))) => first,
        other => panic!("the first event is a snapshot, not {other:?}"),
    };
    assert_eq!((first.seq, first.len(), first.reset), (0, 0, false));
    assert!(next_snap(&mut l.twin, "twin").await.is_empty());
    let b_missing = next_snap(&mut l.doc_listener, "document listener").await;
    assert!(!b_missing.exists());
    assert_eq!(b_missing.path, "board/b");
    first.docs
}

/// The writes, each with the changes it makes to the main query's results
/// (or none).
fn steps() -> Vec<Step<'static>> {
    let set = |id: &'static str, data: Value| (id, "set", data);
    let merge = |id: &'static str, data: Value| (id, "merge", data);
    vec![
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
    ]
}

/// Runs [`steps`]: after each commit every listener shows exactly its
/// changes. Returns the main listener's results at the end.
async fn each_write_changes_exactly_what_it_should(
    board: &CollectionRef,
    l: &mut Listeners,
    first: Vec<DocumentSnapshot>,
) -> Vec<DocumentSnapshot> {
    let mut docs = first;
    for (i, ((id, op, data), want)) in steps().into_iter().enumerate() {
        let doc = board.doc(id);
        let commit = match op {
            "set" => doc.set(&data).await,
            "merge" => doc.merge(&data).await,
            _ => doc.delete().await,
        }
        .unwrap_or_else(|e| panic!("step {i}: {e}"));
        others_equal_a_fresh_query(&mut l.others, commit.seq, i).await;
        if id == "b" {
            let seen = next_snap(&mut l.doc_listener, "document listener").await;
            assert_eq!(seen, raw(&doc).await, "step {i}: the document listener");
            assert_eq!(seen.version, Some(commit.seq));
        }
        if want.is_empty() {
            continue; // the next snapshot's seq shows none came for this commit
        }
        let snap = next_snap(&mut l.listener, "query listener").await;
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
        let fresh = l.query.get().await.unwrap();
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
        assert_eq!(next_snap(&mut l.twin, "twin").await, snap, "step {i}: twin");
        docs = snap.docs;
    }
    assert_eq!(ids(&docs), ["c", "e", "a"]);
    let snapshots: Vec<(&str, usize)> = l.others.iter().map(|o| (o.0, o.3.snapshots)).collect();
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
    docs
}

/// A listener whose results changed has one snapshot for commit `seq`; one
/// whose results did not has none, which its next snapshot's seq shows.
async fn others_equal_a_fresh_query(others: &mut [Watched], seq: u64, step: usize) {
    for (name, query, listener, view) in others {
        let fresh = query.get().await.unwrap();
        if fresh.docs != view.docs {
            while view.seq != Some(seq) {
                view.event(within(name, listener.next()).await);
            }
            assert_eq!(view.docs, fresh.docs, "step {step}: {name}");
        }
    }
}

/// Deleting the document: the document listener sees it go. b had left the
/// query already: nothing for it, so the next query snapshot is for the next
/// commit that matters.
async fn a_deleted_document_and_the_next_commit(
    board: &CollectionRef,
    mut l: Listeners,
    docs: Vec<DocumentSnapshot>,
) {
    let gone = board.doc("b").delete().await.unwrap();
    let seen = next_snap(&mut l.doc_listener, "document listener").await;
    assert!(!seen.exists());
    drop(l.twin);
    let last = board.doc("f").set(&json!({"score": 99})).await.unwrap();
    assert!(last.seq > gone.seq);
    let snap = next_snap(&mut l.listener, "query listener").await;
    assert_eq!(snap.seq, last.seq);
    assert_eq!(
        shapes(snap.changes()),
        vec![(Removed, "a", Some(2), None), (Added, "f", None, Some(0))]
    );
    assert_eq!(apply(&docs, snap.changes()), snap.docs);
}

/// Listening to a collection never written.
async fn a_collection_never_written(db: &Blaze) {
    let mut empty = db.collection("nothing").where_("x", "==", 1).listen();
    let none = next_snap(&mut empty, "empty query").await;
    assert_eq!((none.seq, none.len()), (0, 0));
}
