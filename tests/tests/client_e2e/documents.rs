//! Documents: every write, its preconditions and errors, typed data,
//! subcollections and invalid paths.

use std::time::{Duration, Instant};

use blaze_client::{
    Blaze, CollectionRef, ConnectOptions, Credentials, DocRef, DocumentSnapshot, Error, ErrorCode,
    WriteResult,
};
use blaze_tests::live::{e2e, WranglerDev};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::support::{
    code, connect, holds, ids, options, raw, refused, run, unused_port, within, DEV_ADMIN_KEY,
};

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

/// The `writes` of a one-write commit to `r1`.
fn r1_exists(exists: bool) -> Vec<WriteResult> {
    vec![WriteResult {
        id: "r1".into(),
        exists,
    }]
}

#[test]
fn documents_every_write_precondition_and_error() {
    let Some(_serial) = e2e() else { return };
    run(async {
        urls_are_checked_and_a_missing_server_times_out().await;
        let server = WranglerDev::start("client-docs");
        let db = connect(&server.url()).await;
        assert!(
            matches!(&db.options().credentials, Credentials::Fixed(key) if key == DEV_ADMIN_KEY)
        );
        let rooms = db.collection("rooms");
        let r1 = rooms.doc("r1");
        assert_eq!(
            (r1.id(), r1.path(), r1.parent().path()),
            ("r1", "rooms/r1", "rooms")
        );
        let created = create_and_get(&r1).await;
        let room = typed_set_and_get(&r1, created).await;
        let patched = json_patch(&rooms, &r1, &room).await;
        let merged = merge_patch(&rooms, &r1, patched).await;
        let updated = update_fields(&rooms, &r1).await;
        let (r1_seq, r2_seq) = preconditions(&rooms, &r1, merged, &updated).await;
        let last = delete_and_create_again(&r1, r1_seq, r2_seq).await;
        subcollections(&db, &rooms, &r1, last).await;
        invalid_paths(&db, &rooms).await;
    });
}

/// The URL is checked; a server that is not there is a timeout.
async fn urls_are_checked_and_a_missing_server_times_out() {
    assert!(matches!(
        Blaze::connect("ftp://127.0.0.1:1").await,
        Err(Error::Usage(_))
    ));
    let closed_port = unused_port();
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
}

/// get of a missing document; create; a second create. Returns the create's time.
async fn create_and_get(r1: &DocRef) -> u64 {
    let missing = raw(r1).await;
    assert!(!missing.exists());
    assert_eq!(
        (missing.path.as_str(), missing.version, missing.create_time),
        ("rooms/r1", None, None)
    );
    let c1 = r1.create(&json!({"name": "lobby", "n": 1})).await.unwrap();
    assert_eq!(c1.seq, 1);
    assert_eq!(c1.writes, r1_exists(true));
    let first = raw(r1).await;
    assert_eq!(first.data, Some(json!({"name": "lobby", "n": 1})));
    assert_eq!(
        (first.version, first.create_time, first.update_time),
        (Some(1), Some(c1.time), Some(c1.time))
    );
    refused(
        "a second create",
        r1.create(&json!({"name": "other"})),
        ErrorCode::AlreadyExists,
    )
    .await;
    assert_eq!(raw(r1).await, first, "a failed create changes nothing");
    c1.time
}

/// Typed set and get through serde.
async fn typed_set_and_get(r1: &DocRef, created: u64) -> Room {
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
        (Some(2), Some(created), Some(c2.time)),
        "set keeps create_time"
    );
    holds(
        r1,
        Some(json!({"name": "lobby", "members": ["ann", "bob"], "capacity": 10})),
    )
    .await;
    room
}

/// JSON Patch, and patches that fail. Returns the patch's seq.
async fn json_patch(rooms: &CollectionRef, r1: &DocRef, room: &Room) -> u64 {
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
    let before = raw(r1).await;
    let failed_test = r1.patch(vec![
        json!({"op": "replace", "path": "/capacity", "value": 99}),
        json!({"op": "test", "path": "/name", "value": "hall"}),
    ]);
    refused("a failed test", failed_test, ErrorCode::PatchTestFailed).await;
    refused(
        "removing a missing member",
        r1.patch(vec![json!({"op": "remove", "path": "/nope"})]),
        ErrorCode::PatchPathNotFound,
    )
    .await;
    refused(
        "patching a missing document",
        rooms.doc("ghost").patch(vec![]),
        ErrorCode::NotFound,
    )
    .await;
    assert_eq!(raw(r1).await, before, "failed patches change nothing");
    c3.seq
}

/// Merge patch: objects merge, arrays replace, null deletes. Returns its seq.
async fn merge_patch(rooms: &CollectionRef, r1: &DocRef, patched: u64) -> u64 {
    let c4 = r1
        .merge(&json!({"topic": {"title": "Rust"}, "members": ["dee"], "capacity": null}))
        .await
        .unwrap();
    assert_eq!(c4.seq, patched + 1);
    let merged = raw(r1).await;
    assert_eq!(
        merged.data,
        Some(json!({"name": "lobby", "members": ["dee"], "topic": {"title": "Rust"}}))
    );
    assert_eq!(merged.version, Some(c4.seq));
    assert!(
        matches!(r1.get::<Room>().await, Err(Error::Data(_))),
        "data without `capacity` does not fit Room"
    );
    refused(
        "merging into a missing document",
        rooms.doc("ghost").merge(&json!({"a": 1})),
        ErrorCode::NotFound,
    )
    .await;
    c4.seq
}

/// Fields by path: nested, backquoted, null deletes, parents created.
/// Returns the document as the update left it.
async fn update_fields(rooms: &CollectionRef, r1: &DocRef) -> DocumentSnapshot {
    let c5 = r1
        .update([
            ("topic.subtitle", json!("async")),
            ("topic.`a.b`", json!(1)),
            ("name", Value::Null),
            ("stats.visits", json!(3)),
        ])
        .await
        .unwrap();
    let updated = raw(r1).await;
    assert_eq!(
        updated.data,
        Some(json!({
            "members": ["dee"],
            "topic": {"title": "Rust", "subtitle": "async", "a.b": 1},
            "stats": {"visits": 3}
        }))
    );
    assert_eq!(updated.version, Some(c5.seq));
    refused(
        "a bad field path",
        r1.update([("a..b", json!(1))]),
        ErrorCode::InvalidFieldPath,
    )
    .await;
    refused(
        "updating a missing document",
        rooms.doc("ghost").update([("a", json!(1))]),
        ErrorCode::NotFound,
    )
    .await;
    updated
}

/// Preconditions that fail change nothing and use no sequence number; ones
/// that hold let the write through. Returns the seqs of the last writes to
/// r1 and to r2.
async fn preconditions(
    rooms: &CollectionRef,
    r1: &DocRef,
    merged: u64,
    updated: &DocumentSnapshot,
) -> (u64, u64) {
    let updated_seq = updated.version.expect("a version");
    let ghost = rooms.doc("ghost");
    let attempts = [
        r1.clone().if_exists(false).set(&json!({"x": 1})).await,
        r1.clone().if_version(merged).merge(&json!({"x": 1})).await,
        r1.clone()
            .if_version(updated_seq)
            .if_exists(false)
            .delete()
            .await,
        r1.clone().if_version(updated_seq + 1).patch(vec![]).await,
        ghost.clone().if_exists(true).delete().await,
        ghost.clone().if_version(1).set(&json!({"x": 1})).await,
    ];
    for (i, attempt) in attempts.into_iter().enumerate() {
        assert_eq!(code(attempt), ErrorCode::PreconditionFailed, "attempt {i}");
    }
    assert_eq!(raw(r1).await, *updated);
    assert!(!raw(&ghost).await.exists());
    let c6 = r1
        .clone()
        .if_exists(true)
        .if_version(updated_seq)
        .merge(&json!({"x": 1}))
        .await
        .unwrap();
    assert_eq!(c6.seq, updated_seq + 1);
    let c7 = rooms
        .doc("r2")
        .if_exists(false)
        .set(&json!({"name": "hall"}))
        .await
        .unwrap();
    assert_eq!(c7.seq, c6.seq + 1);
    assert_eq!(raw(&rooms.doc("r2")).await.version, Some(c7.seq));
    (c6.seq, c7.seq)
}

/// Delete, delete of a missing document, and creating it again. Returns the
/// last commit's seq.
async fn delete_and_create_again(r1: &DocRef, r1_seq: u64, last: u64) -> u64 {
    let c8 = r1.clone().if_version(r1_seq).delete().await.unwrap();
    assert_eq!((c8.seq, c8.writes.clone()), (last + 1, r1_exists(false)));
    assert!(!raw(r1).await.exists());
    let c9 = r1.delete().await.unwrap();
    assert_eq!(
        (c9.seq, c9.writes.clone()),
        (c8.seq + 1, r1_exists(false)),
        "deleting a missing document succeeds and still commits"
    );
    let c10 = r1.create(&json!({"name": "again"})).await.unwrap();
    let again = raw(r1).await;
    assert_eq!(
        (again.version, again.create_time),
        (Some(c10.seq), Some(c10.time)),
        "a document written again after a delete gets a new create_time"
    );
    c10.seq
}

/// Subcollections: their own sequence numbers, not in the parent's queries.
async fn subcollections(db: &Blaze, rooms: &CollectionRef, r1: &DocRef, last: u64) {
    let messages = r1.collection("messages");
    assert_eq!(messages.path(), "rooms/r1/messages");
    let m1 = messages.doc("m1");
    assert_eq!(m1.path(), "rooms/r1/messages/m1");
    let cm = m1.set(&json!({"text": "hi"})).await.unwrap();
    assert_eq!(cm.seq, 1, "a subcollection is its own sequence");
    let added = messages.add(&json!({"text": "yo"})).await.unwrap();
    assert_eq!(added.id().len(), 20);
    holds(&added, Some(json!({"text": "yo"}))).await;
    holds(&db.doc("rooms/r1/messages/m1"), Some(json!({"text": "hi"}))).await;
    let all_messages = messages.get().await.unwrap();
    assert_eq!(all_messages.len(), 2);
    assert_eq!(all_messages.seq, 2);
    let all_rooms = rooms.get().await.unwrap();
    assert_eq!(ids(&all_rooms.docs), ["r1", "r2"]);
    assert_eq!(all_rooms.seq, last);
    assert_eq!(rooms.count().await.unwrap(), 2);
}

/// Invalid paths, checked whatever the call.
async fn invalid_paths(db: &Blaze, rooms: &CollectionRef) {
    use ErrorCode::InvalidPath;
    refused(
        "get of a collection",
        db.doc("rooms").get::<Value>(),
        InvalidPath,
    )
    .await;
    refused(
        "set of a collection",
        db.doc("rooms/r1/messages").set(&json!({})),
        InvalidPath,
    )
    .await;
    refused("delete of ..", db.doc("rooms/..").delete(), InvalidPath).await;
    refused(
        "create with a space",
        rooms.doc("a b").create(&json!({})),
        InvalidPath,
    )
    .await;
    refused(
        "query of a document",
        db.collection("rooms/r1").get(),
        InvalidPath,
    )
    .await;
    refused("count of nothing", db.collection("").count(), InvalidPath).await;
    let mut bad_listener = db.doc("rooms/__x__").listen();
    let first = within("a refused listener", bad_listener.next()).await;
    assert_eq!(code(first.expect("an error item")), InvalidPath);
    assert!(within("the end", bad_listener.next()).await.is_none());
    assert_eq!(rooms.count().await.unwrap(), 2, "nothing was written");
}
