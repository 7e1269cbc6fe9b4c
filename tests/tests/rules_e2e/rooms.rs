//! A rule that reads a document of another collection: a room's messages
//! (one object) are read by the members listed in the room (a document of
//! the `rooms` object), fetched object to object for HTTP and WebSocket
//! requests alike.

use serde_json::json;

use crate::support::{admin_commit, assert_denied, assert_ws_denied, ids, stored, User};

/// A member reads and posts messages, a non-member is denied; once bob is
/// removed from the room, his next request, re-listen and resume are
/// denied. A listener already running is not stopped by the change itself
/// (the room lives in another object): its documents are fetched and the
/// rules checked again every `BLAZE_RULES_RECHECK_MS` (2 s for this worker),
/// so it ends with `permission_denied` within that (spec 14.5).
pub async fn membership(port: u16) {
    let secret = "SECRET-rooms-12fa";
    let rooms = "runs/rooms/rooms";
    let open = format!("{rooms}/r1/messages");
    let closed = format!("{rooms}/r2/messages");
    admin_commit(
        port,
        rooms,
        json!([
            {"op": "set", "id": "r1", "data": {"members": ["alice", "bob"]}},
            {"op": "set", "id": "r2", "data": {"members": ["alice"], "topic": secret}},
        ]),
    )
    .await;
    admin_commit(
        port,
        &open,
        json!([{"op": "set", "id": "m1", "data": {"author": "alice", "text": "hi"}}]),
    )
    .await;
    admin_commit(
        port,
        &closed,
        json!([{"op": "set", "id": "m1", "data": {"author": "alice", "text": secret}}]),
    )
    .await;
    let alice = User::new(port, "alice");
    let bob = User::new(port, "bob").never_sees(secret);
    let carol = User::new(port, "carol").never_sees(secret);

    // The rooms themselves: read by members, listed by a query that proves it.
    assert_eq!(bob.get(&format!("{rooms}/r1")).await.status, 200);
    assert_denied(&bob.get(&format!("{rooms}/r2")).await, None, "bob gets r2");
    let mine = json!({"collection": rooms, "where": {"field": "members", "op": "array-contains", "value": "bob"}});
    assert_eq!(ids(&bob.query(mine).await.json()["docs"]), ["r1"]);
    assert_denied(
        &bob.query(json!({"collection": rooms})).await,
        None,
        "all rooms",
    );

    // Messages over HTTP: each answer needs the room, from the rooms object.
    let got = bob.get(&format!("{open}/m1")).await;
    assert_eq!(got.json()["data"]["text"], "hi", "{}", got.body);
    let all = |coll: &str| json!({"collection": coll});
    assert_eq!(ids(&bob.query(all(&open)).await.json()["docs"]), ["m1"]);
    assert_eq!(bob.count(all(&open)).await.json()["count"], 1);
    for (name, answer) in [
        ("get", bob.get(&format!("{closed}/m1")).await),
        ("get missing", bob.get(&format!("{closed}/zz")).await),
        ("query", bob.query(all(&closed)).await),
        ("count", bob.count(all(&closed)).await),
        ("carol's query", carol.query(all(&open)).await),
        ("carol's get", carol.get(&format!("{open}/m1")).await),
    ] {
        assert_denied(&answer, None, name);
    }
    let posted = bob
        .create(
            &format!("{open}/b1"),
            json!({"author": "bob", "text": "yo"}),
        )
        .await;
    assert_eq!(posted.status, 200, "{}", posted.body);
    let forged = bob
        .create(
            &format!("{open}/b2"),
            json!({"author": "alice", "text": "x"}),
        )
        .await;
    assert_denied(&forged, Some(0), "posting as alice");
    let outside = bob
        .create(
            &format!("{closed}/b1"),
            json!({"author": "bob", "text": "x"}),
        )
        .await;
    assert_denied(&outside, Some(0), "posting in r2");

    // Over the WebSocket: the object asks the rooms object, then answers.
    let mut inside = bob.ws(&open).await;
    let snapshot = inside.listen(all(&open)).await;
    assert_eq!(ids(&snapshot["docs"]), ["b1", "m1"], "{snapshot}");
    let since = snapshot["seq"].as_u64().expect("a seq");
    let mut outside = bob.ws(&closed).await;
    assert_ws_denied(&outside.listen(all(&closed)).await, None, "listen in r2");
    let got = outside
        .ask(json!({"type": "get", "path": format!("{closed}/m1")}))
        .await;
    assert_ws_denied(&got, None, "get in r2");
    let post = json!({"type": "commit", "collection": closed,
                      "writes": [{"op": "create", "id": "b3", "data": {"author": "bob"}}]});
    assert_ws_denied(&outside.ask(post).await, Some(0), "post in r2");
    let mut carols = carol.ws(&open).await;
    assert_ws_denied(&carols.listen(all(&open)).await, None, "carol listens");
    carols.close().await;

    // Alice posts: bob, a member, hears it.
    let said = alice
        .create(
            &format!("{open}/m2"),
            json!({"author": "alice", "text": "one"}),
        )
        .await;
    assert_eq!(said.status, 200, "{}", said.body);
    let change = inside.next().await;
    assert_eq!(
        change["changes"][0]["doc"]["data"]["text"], "one",
        "{change}"
    );
    let seen = change["seq"].as_u64().expect("a seq");
    assert!(seen > since);

    // Bob leaves the room.
    admin_commit(
        port,
        rooms,
        json!([{"op": "set", "id": "r1", "data": {"members": ["alice"]}}]),
    )
    .await;
    // The running listener rests on a document of another object: it may
    // hear what is said before its next check, then it ends with
    // permission_denied (its own id) and hears nothing more.
    let listener = snapshot["rid"].as_u64().expect("the listener's id");
    let said = alice
        .create(
            &format!("{open}/m3"),
            json!({"author": "alice", "text": "two"}),
        )
        .await;
    assert_eq!(said.status, 200, "{}", said.body);
    let ended = loop {
        let frame = inside.next().await;
        if frame["type"] == "error" {
            break frame;
        }
        assert_eq!(
            frame["changes"][0]["doc"]["data"]["text"], "two",
            "only what was said before the check: {frame}"
        );
    };
    assert_eq!(ended["rid"], listener, "{ended}");
    assert_ws_denied(&ended, None, "the listener's periodic check");
    let said = alice
        .create(
            &format!("{open}/m4"),
            json!({"author": "alice", "text": "three"}),
        )
        .await;
    assert_eq!(said.status, 200, "{}", said.body);
    let after = inside.sync().await;
    assert!(after.is_empty(), "nothing after the end: {after:?}");
    // Every new request fetches the room again: denied.
    let again = inside.listen(all(&open)).await;
    assert_ws_denied(&again, None, "re-listen after leaving");
    let got = inside
        .ask(json!({"type": "get", "path": format!("{open}/m1")}))
        .await;
    assert_ws_denied(&got, None, "get after leaving");
    inside.close().await;
    let mut back = bob.ws(&open).await;
    let resumed = back
        .ask(json!({"type": "listen", "query": all(&open), "since": seen}))
        .await;
    assert_ws_denied(&resumed, None, "resume after leaving");
    back.close().await;
    assert_denied(
        &bob.get(&format!("{open}/m1")).await,
        None,
        "HTTP get after leaving",
    );
    assert_denied(
        &bob.query(all(&open)).await,
        None,
        "HTTP query after leaving",
    );
    let late = bob
        .create(&format!("{open}/b4"), json!({"author": "bob", "text": "x"}))
        .await;
    assert_denied(&late, Some(0), "posting after leaving");
    // Alice, still a member, reads all of it.
    assert_eq!(
        ids(&alice.query(all(&open)).await.json()["docs"]),
        ["b1", "m1", "m2", "m3", "m4"]
    );
    let sync = outside.sync().await;
    assert!(sync.is_empty(), "{sync:?}");
    outside.close().await;
    // Nothing bob was denied was written.
    assert_eq!(ids(&stored(port, &closed).await["docs"]), ["m1"]);
}
