//! The access rules in the hub (spec 14), attacked through every way data
//! leaves it: `get`, `query`, `count`, query and document listeners, resume
//! with `since`, writes and their errors, documents of other collections,
//! restore after a redeploy. Two users (alice, bob), an anonymous connection
//! and an admin, on a virtual clock. Alice's documents carry a marker value
//! that must never appear in any frame sent to bob.

use std::collections::BTreeMap;

use blaze_core::{
    Access, Caller, Database, Error, Hub, HubConfig, HubEvent, Limits, MemoryStorage, Output, Rules,
};
use blaze_protocol::{CollectionPath, CommitId, DocPath, ErrorCode, Identity, Query, Write};
use serde_json::{json, Map, Value};

const ALICE: u64 = 1;
const BOB: u64 = 2;
const ANON: u64 = 3;
const ADMIN: u64 = 4;
const NOW: u64 = 1_700_000_000_000;
/// A value only alice's documents hold.
const SECRET: &str = "alice-secret-7f3a";
/// The fixed message of every `permission_denied`.
const DENIED: &str = "the access rules do not allow this request";

/// The demo's rules: private todos by `owner`.
const TODOS: &str = include_str!("../../../blaze.rules");

/// Rules that read other documents: a team whose roster (and member
/// documents) live in the same collection as its notes, and rooms whose
/// members live in another collection than their messages.
const TEAM_AND_ROOMS: &str = r#"
rules_version = '2';
service cloud.firestore {
  match /databases/{database}/documents {
    function member() {
      return exists(/databases/$(database)/documents/team/$('member-' + request.auth.uid));
    }
    match /team/{doc} {
      allow get: if resource.data.public == true || member();
      allow list: if get(/databases/$(database)/documents/team/roster).data.members.hasAny([request.auth.uid]);
    }
    match /rooms/{room}/messages/{msg} {
      allow read: if exists(/databases/$(database)/documents/rooms/$(room)/members/$(request.auth.uid));
      allow create: if request.resource.data.author == request.auth.uid
        && get(/databases/$(database)/documents/rooms/$(room)/members/$(request.auth.uid)).data.role == 'writer';
    }
    match /rooms/{room}/members/{uid} {
      allow read: if request.auth.uid == uid;
    }
    match /ledger/{id} {
      allow read: if request.auth != null;
      allow create: if id == 'total' && request.auth != null
        || getAfter(/databases/$(database)/documents/ledger/total).data.n == request.resource.data.n;
    }
  }
}
"#;

fn rules(text: &str) -> Access {
    Access::Enforced(Rules::compile(text).expect("the rules compile"))
}

fn user(uid: &str) -> Identity {
    let claims = json!({"sub": uid}).as_object().unwrap().clone();
    Identity::User {
        uid: uid.into(),
        claims,
    }
}

fn collection(path: &str) -> CollectionPath {
    CollectionPath::parse(path).unwrap()
}

fn doc(path: &str) -> DocPath {
    DocPath::parse(path).unwrap()
}

fn writes(value: Value) -> Vec<Write> {
    serde_json::from_value(value).unwrap()
}

fn query(value: Value) -> Query {
    serde_json::from_value(value).unwrap()
}

/// A hub with four connections signed in, and every frame each was sent.
struct World {
    hub: Hub<MemoryStorage>,
    now: u64,
    /// Every frame sent, by connection, as text.
    sent: BTreeMap<u64, Vec<String>>,
    /// The `Fetch` events, in order.
    fetches: Vec<(u64, Vec<DocPath>)>,
}

impl World {
    fn new(access: Access) -> Self {
        Self::over(Hub::new(db(), HubConfig::default()).with_access(access))
    }

    fn over(hub: Hub<MemoryStorage>) -> Self {
        let mut world = World {
            hub,
            now: NOW,
            sent: BTreeMap::new(),
            fetches: Vec::new(),
        };
        world.sign_in(ALICE, Some(user("alice")));
        world.sign_in(BOB, Some(user("bob")));
        world.sign_in(ANON, None);
        world.sign_in(ADMIN, Some(Identity::Admin));
        world
    }

    fn sign_in(&mut self, conn: u64, identity: Option<Identity>) {
        self.hub.handle_open(conn, 0);
        match identity {
            Some(identity) => {
                let hello = r#"{"type":"hello","protocol":1,"auth":"token"}"#;
                self.hub.handle_frame(conn, hello, self.now);
                self.hub
                    .handle_verified(conn, None, Ok((identity, None)), self.now);
            }
            None => self
                .hub
                .handle_frame(conn, r#"{"type":"hello","protocol":1}"#, self.now),
        }
        let welcome = self.drain();
        assert_eq!(welcome[&conn].len(), 1, "welcome");
    }

    /// Hands out everything the hub produced: the frames by connection
    /// (also kept in `sent`), fetches recorded.
    fn drain(&mut self) -> BTreeMap<u64, Vec<Value>> {
        let mut out: BTreeMap<u64, Vec<Value>> = BTreeMap::new();
        while let Some(output) = self.hub.poll_output() {
            match output {
                Output::Send { conn, frame } => {
                    self.sent.entry(conn).or_default().push(frame.to_string());
                    out.entry(conn)
                        .or_default()
                        .push(serde_json::from_str(&frame).unwrap());
                }
                Output::Close { conn, code } => panic!("{conn} closed: {code:?}"),
                Output::Event(HubEvent::Fetch { conn, paths }) => self.fetches.push((conn, paths)),
                Output::Event(_) => {}
            }
        }
        out
    }

    /// Sends `frame` on `conn`; returns the frames `conn` got for it.
    fn ask(&mut self, conn: u64, frame: Value) -> Vec<Value> {
        self.now += 1;
        self.hub.handle_frame(conn, &frame.to_string(), self.now);
        self.drain().remove(&conn).unwrap_or_default()
    }

    /// Sends `frame` on `conn`; returns its one answer.
    fn one(&mut self, conn: u64, frame: Value) -> Value {
        let mut got = self.ask(conn, frame.clone());
        assert_eq!(got.len(), 1, "one answer to {frame}: {got:?}");
        got.remove(0)
    }

    /// An admin's commit through the HTTP-facing API; the frames it made, by connection.
    fn admin_writes(&mut self, coll: &str, w: Value) -> BTreeMap<u64, Vec<Value>> {
        self.now += 1;
        self.hub
            .handle_commit(&Caller::admin(), &collection(coll), &writes(w), self.now)
            .unwrap();
        self.drain()
    }

    /// Every frame bob was ever sent holds nothing of alice's.
    fn assert_bob_saw_nothing_of_alice(&self) {
        for frame in self.sent.get(&BOB).into_iter().flatten() {
            assert!(!frame.contains(SECRET), "bob was sent {frame}");
        }
    }
}

fn db() -> Database<MemoryStorage> {
    Database::new(MemoryStorage::new(), Limits::default())
}

fn get(rid: u64, path: &str) -> Value {
    json!({"type": "get", "rid": rid, "path": path})
}

fn listen_query(rid: u64, q: Value) -> Value {
    json!({"type": "listen", "rid": rid, "query": q})
}

fn listen_doc(rid: u64, path: &str) -> Value {
    json!({"type": "listen", "rid": rid, "doc": path})
}

fn commit(rid: u64, coll: &str, w: Value) -> Value {
    json!({"type": "commit", "rid": rid, "collection": coll, "writes": w})
}

fn owned_by(uid: &str) -> Value {
    json!({"collection": "todos", "where": {"field": "owner", "op": "==", "value": uid}})
}

/// `frame` is the `permission_denied` error of request `rid`, with the fixed message.
fn assert_denied(frame: &Value, rid: u64) {
    assert_eq!(
        *frame,
        json!({"type": "error", "rid": rid,
               "error": {"code": "permission_denied", "message": DENIED}}),
    );
}

fn assert_denied_at(frame: &Value, rid: u64, index: u64) {
    assert_eq!(
        *frame,
        json!({"type": "error", "rid": rid,
               "error": {"code": "permission_denied", "message": DENIED, "write_index": index}}),
    );
}

fn code(frame: &Value) -> &str {
    frame["error"]["code"].as_str().unwrap_or("")
}

/// Alice's todos a1 (with the secret) and a2, bob's b1: written by the admin.
fn todos_world() -> World {
    let mut w = World::new(rules(TODOS));
    w.admin_writes(
        "todos",
        json!([
            {"op": "set", "id": "a1", "data": {"owner": "alice", "title": SECRET, "n": 1}},
            {"op": "set", "id": "a2", "data": {"owner": "alice", "title": "groceries", "n": 2}},
            {"op": "set", "id": "b1", "data": {"owner": "bob", "title": "bob's", "n": 3}},
        ]),
    );
    w
}

// 1. get

#[test]
fn a_denied_get_is_the_same_error_whether_the_document_exists_or_not() {
    let mut w = todos_world();
    let exists = w.one(BOB, get(1, "todos/a1"));
    let missing = w.one(BOB, get(1, "todos/nothing"));
    assert_denied(&exists, 1);
    assert_eq!(exists, missing, "existence must not show");
    assert_denied(&w.one(ANON, get(2, "todos/a1")), 2);
    let own = w.one(BOB, get(3, "todos/b1"));
    assert_eq!(own["doc"]["data"]["owner"], "bob");
    let hers = w.one(ALICE, get(4, "todos/a1"));
    assert_eq!(hers["doc"]["data"]["title"], SECRET);
    // Over HTTP too.
    let bob = Caller::new(user("bob"));
    for path in ["todos/a1", "todos/nothing"] {
        let e = w.hub.get(&bob, &doc(path)).unwrap_err();
        assert_eq!(e.code(), ErrorCode::PermissionDenied);
        assert_eq!(e.to_body().message, DENIED);
    }
    w.assert_bob_saw_nothing_of_alice();
    for frame in w.sent.get(&BOB).into_iter().flatten() {
        assert!(!frame.contains("todos/a1"), "bob was sent {frame}");
    }
}

// 2. query and count

#[test]
fn queries_and_counts_are_allowed_only_when_their_filters_prove_the_list_rule() {
    let mut w = todos_world();
    let eq = |f: &str, v: Value| json!({"field": f, "op": "==", "value": v});
    let owner_in = |v: Value| json!({"field": "owner", "op": "in", "value": v});
    let cases: Vec<(Value, Result<usize, ()>)> = vec![
        (json!({"collection": "todos"}), Err(())),
        (
            json!({"collection": "todos", "where": {"field": "owner", "op": "!=", "value": "bob"}}),
            Err(()),
        ),
        (
            json!({"collection": "todos", "where": owner_in(json!(["alice", "bob"]))}),
            Err(()),
        ),
        (
            json!({"collection": "todos", "where": {"or": [eq("owner", json!("alice")), eq("n", json!(3))]}}),
            Err(()),
        ),
        (
            json!({"collection": "todos", "where": {"field": "n", "op": ">", "value": 0}}),
            Err(()),
        ),
        (owned_by("bob"), Ok(1)),
        (
            json!({"collection": "todos", "where": owner_in(json!(["bob"]))}),
            Ok(1),
        ),
        (
            json!({"collection": "todos", "where": {"and": [eq("owner", json!("bob")), eq("n", json!(3))]}}),
            Ok(1),
        ),
        (
            json!({"collection": "todos", "where": {"and": [eq("owner", json!("bob")), eq("n", json!(1))]}}),
            Ok(0),
        ),
        (
            json!({"collection": "todos", "where": {"or": [
                {"and": [eq("owner", json!("bob")), eq("n", json!(3))]},
                {"and": [eq("owner", json!("bob")), eq("n", json!(1))]}]}}),
            Ok(1),
        ),
        (
            json!({"collection": "todos", "where": eq("owner", json!("bob")),
                   "order_by": [{"field": "n", "direction": "desc"}], "limit": 5,
                   "start_at": [10]}),
            Ok(1),
        ),
    ];
    let mut rid = 100;
    for (q, expected) in cases {
        rid += 1;
        let answer = w.one(BOB, json!({"type": "query", "rid": rid, "query": q}));
        let counted = w.one(BOB, json!({"type": "count", "rid": rid, "query": q}));
        match expected {
            Err(()) => {
                assert_denied(&answer, rid);
                assert_denied(&counted, rid);
                let caller = Caller::new(user("bob"));
                let e = w.hub.query(&caller, &query(q.clone())).unwrap_err();
                assert_eq!(e.code(), ErrorCode::PermissionDenied, "{q}");
                let e = w.hub.count(&caller, &query(q.clone())).unwrap_err();
                assert_eq!(e.code(), ErrorCode::PermissionDenied, "{q}");
            }
            Ok(n) => {
                assert_eq!(answer["type"], "query_result", "{q}: {answer}");
                let docs = answer["docs"].as_array().unwrap();
                assert_eq!(docs.len(), n, "{q}");
                assert!(docs.iter().all(|d| d["data"]["owner"] == "bob"));
                assert_eq!(counted["count"], n, "{q}");
            }
        }
    }
    w.assert_bob_saw_nothing_of_alice();
}

#[test]
fn an_allowed_querys_order_limit_and_cursors_show_only_the_askers_documents() {
    let mut w = todos_world();
    // Alice's documents sort all around bob's: a window over bob's
    // documents still holds only his.
    w.admin_writes(
        "todos",
        json!([
            {"op": "set", "id": "a0", "data": {"owner": "alice", "title": SECRET, "n": 0}},
            {"op": "set", "id": "a4", "data": {"owner": "alice", "title": SECRET, "n": 4}},
            {"op": "set", "id": "b5", "data": {"owner": "bob", "title": "bob's", "n": 5}},
        ]),
    );
    let windows = [
        json!({"order_by": [{"field": "n"}], "limit": 1}),
        json!({"order_by": [{"field": "n", "direction": "desc"}], "limit": 1}),
        json!({"order_by": [{"field": "n"}], "limit_to_last": 1}),
        json!({"order_by": [{"field": "n"}], "start_after": [0], "limit": 1}),
        json!({"order_by": [{"field": "n"}], "start_at": [4], "end_at": [4]}),
        json!({"order_by": [{"field": "title"}]}),
    ];
    let mut expected = vec![vec![3], vec![5], vec![5], vec![3], vec![], vec![3, 5]];
    for (window, want) in windows.iter().zip(expected.drain(..)) {
        let mut q = window.clone();
        q["collection"] = json!("todos");
        q["where"] = json!({"field": "owner", "op": "==", "value": "bob"});
        let answer = w.one(BOB, json!({"type": "query", "rid": 1, "query": q}));
        let got: Vec<i64> = answer["docs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["data"]["n"].as_i64().unwrap())
            .collect();
        assert_eq!(got, want, "{q}");
    }
    w.assert_bob_saw_nothing_of_alice();
}

// 3. query listeners

#[test]
fn a_document_given_to_bob_leaves_alices_listener_and_bob_never_sees_her_data() {
    let mut w = todos_world();
    let snapshot = w.one(ALICE, listen_query(1, owned_by("alice")));
    assert_eq!(snapshot["type"], "snapshot");
    assert_eq!(snapshot["docs"].as_array().unwrap().len(), 2);
    let mine = w.one(BOB, listen_query(1, owned_by("bob")));
    assert_eq!(mine["docs"].as_array().unwrap().len(), 1);
    // Bob listening to alice's todos, or to everything, is refused.
    assert_denied(&w.one(BOB, listen_query(2, owned_by("alice"))), 2);
    assert_denied(
        &w.one(BOB, listen_query(3, json!({"collection": "todos"}))),
        3,
    );
    // Alice changes her todo, then the admin gives it to bob.
    let frames = w.ask(
        ALICE,
        commit(
            2,
            "todos",
            json!([{"op": "merge", "id": "a1", "patch": {"n": 10}}]),
        ),
    );
    assert_eq!(frames.len(), 2, "change and committed: {frames:?}");
    let frames = w.admin_writes(
        "todos",
        json!([{"op": "set", "id": "a1", "data": {"owner": "bob", "title": "now bob's", "n": 11}}]),
    );
    let alice = &frames[&ALICE];
    assert_eq!(alice.len(), 1);
    assert_eq!(
        alice[0]["changes"],
        json!([{"type": "removed", "path": "todos/a1", "old_index": 0}])
    );
    // Bob's own listener gets it with its new data only.
    let bob = &frames[&BOB];
    assert_eq!(bob.len(), 1);
    assert_eq!(bob[0]["changes"][0]["doc"]["data"]["title"], "now bob's");
    // Deleting alice's other todo tells bob nothing.
    let frames = w.admin_writes("todos", json!([{"op": "delete", "id": "a2"}]));
    assert!(!frames.contains_key(&BOB), "{frames:?}");
    assert_eq!(frames[&ALICE].len(), 1);
    w.assert_bob_saw_nothing_of_alice();
}

// 4. document listeners

#[test]
fn a_document_listener_ends_before_the_change_that_denies_it() {
    let mut w = todos_world();
    let snapshot = w.one(ALICE, listen_doc(7, "todos/a2"));
    assert_eq!(snapshot["docs"][0]["data"]["owner"], "alice");
    // A second listener on another of her documents keeps going.
    w.one(ALICE, listen_doc(8, "todos/a1"));
    let frames = w.admin_writes(
        "todos",
        json!([
            {"op": "set", "id": "a2", "data": {"owner": "bob", "title": "bob's now"}},
            {"op": "merge", "id": "a1", "patch": {"n": 5}},
        ]),
    );
    let alice = &frames[&ALICE];
    assert_eq!(alice.len(), 2, "{alice:?}");
    assert_denied(&alice[0], 7);
    assert_eq!(alice[1]["type"], "change");
    assert_eq!(alice[1]["changes"][0]["path"], "todos/a1");
    assert!(!alice[1].to_string().contains("bob's now"));
    // Nothing more for the ended listener; unlisten says it is gone.
    let frames = w.admin_writes(
        "todos",
        json!([{"op": "set", "id": "a2", "data": {"owner": "alice", "title": "back"}}]),
    );
    assert!(!frames.contains_key(&ALICE), "{frames:?}");
    let gone = w.one(ALICE, json!({"type": "unlisten", "rid": 9, "listener": 7}));
    assert_eq!(code(&gone), "listener_not_found");
    assert_eq!(w.hub.stats().listeners, 1);
}

#[test]
fn a_document_listener_whose_document_is_deleted_ends_when_the_rules_read_its_data() {
    let mut w = todos_world();
    w.one(ALICE, listen_doc(1, "todos/a2"));
    let frames = w.admin_writes("todos", json!([{"op": "delete", "id": "a2"}]));
    let alice = &frames[&ALICE];
    assert_eq!(alice.len(), 1, "{alice:?}");
    assert_denied(&alice[0], 1);
}

// 5. listeners resting on documents looked up in the same collection

fn team_world() -> World {
    let mut w = World::new(rules(TEAM_AND_ROOMS));
    w.admin_writes(
        "team",
        json!([
            {"op": "set", "id": "roster", "data": {"members": ["alice", "bob"]}},
            {"op": "set", "id": "member-alice", "data": {}},
            {"op": "set", "id": "member-bob", "data": {}},
            {"op": "set", "id": "plan", "data": {"text": SECRET}},
            {"op": "set", "id": "news", "data": {"public": true, "text": "hello"}},
        ]),
    );
    w
}

#[test]
fn removing_the_member_document_a_listener_rests_on_ends_it() {
    let mut w = team_world();
    assert_eq!(w.one(BOB, listen_doc(1, "team/plan"))["type"], "snapshot");
    assert_eq!(w.one(ALICE, listen_doc(1, "team/plan"))["type"], "snapshot");
    let frames = w.admin_writes("team", json!([{"op": "delete", "id": "member-bob"}]));
    assert_denied(&frames[&BOB][0], 1);
    assert_eq!(frames[&BOB].len(), 1);
    assert!(
        !frames.contains_key(&ALICE),
        "alice's membership did not change"
    );
    let frames = w.admin_writes(
        "team",
        json!([{"op": "merge", "id": "plan", "patch": {"more": SECRET}}]),
    );
    assert!(!frames.contains_key(&BOB));
    assert_eq!(frames[&ALICE].len(), 1);
    assert_denied(&w.one(BOB, get(2, "team/plan")), 2);
    w.sent.remove(&ALICE);
    for frame in &w.sent[&BOB][2..] {
        assert!(
            !frame.contains(SECRET),
            "after removal bob was sent {frame}"
        );
    }
}

#[test]
fn a_listener_allowed_without_a_lookup_is_watched_on_the_lookup_it_comes_to_rest_on() {
    let mut w = team_world();
    // Public: allowed without reading the member document.
    assert_eq!(w.one(BOB, listen_doc(1, "team/news"))["type"], "snapshot");
    // No longer public: bob still reads it, as a member.
    let frames = w.admin_writes(
        "team",
        json!([{"op": "set", "id": "news", "data": {"public": false, "text": SECRET}}]),
    );
    assert_eq!(frames[&BOB][0]["type"], "change");
    // Now his membership is what lets him read it: removing it ends the listener.
    let frames = w.admin_writes("team", json!([{"op": "delete", "id": "member-bob"}]));
    assert_eq!(frames.get(&BOB).map(Vec::len), Some(1), "{frames:?}");
    assert_denied(&frames[&BOB][0], 1);
    let frames = w.admin_writes(
        "team",
        json!([{"op": "merge", "id": "news", "patch": {"text": "more"}}]),
    );
    assert!(!frames.contains_key(&BOB), "{frames:?}");
}

#[test]
fn a_query_listener_resting_on_a_looked_up_roster_ends_when_the_roster_drops_the_user() {
    let mut w = team_world();
    let all = json!({"collection": "team"});
    assert_eq!(w.one(BOB, listen_query(1, all.clone()))["type"], "snapshot");
    assert_eq!(
        w.one(ALICE, listen_query(1, all.clone()))["type"],
        "snapshot"
    );
    let seen_as_member = w.sent[&BOB].len();
    let frames = w.admin_writes(
        "team",
        json!([{"op": "set", "id": "roster", "data": {"members": ["alice"]}}]),
    );
    // Bob's listener ends before the roster's change frame; alice gets it.
    assert_eq!(frames[&BOB].len(), 1, "{frames:?}");
    assert_denied(&frames[&BOB][0], 1);
    assert_eq!(frames[&ALICE][0]["type"], "change");
    // Alice and bob shared the target: it stays, with alice alone.
    assert_eq!(w.hub.stats().targets, 1);
    let frames = w.admin_writes(
        "team",
        json!([{"op": "set", "id": "later", "data": {"text": SECRET}}]),
    );
    assert!(!frames.contains_key(&BOB));
    assert_denied(&w.one(BOB, listen_query(2, all)), 2);
    for frame in &w.sent[&BOB][seen_as_member..] {
        assert!(
            !frame.contains(SECRET),
            "after removal bob was sent {frame}"
        );
    }
}

// 6. resume with `since`

#[test]
fn a_resume_is_checked_like_a_listen_and_carries_only_allowed_documents() {
    let mut w = todos_world();
    let snapshot = w.one(BOB, listen_query(1, owned_by("bob")));
    let since = snapshot["seq"].as_u64().unwrap();
    w.one(BOB, json!({"type": "unlisten", "rid": 2, "listener": 1}));
    // Meanwhile: alice's todos change, one becomes bob's, one of bob's becomes alice's.
    w.admin_writes(
        "todos",
        json!([
            {"op": "merge", "id": "a2", "patch": {"title": SECRET}},
            {"op": "set", "id": "a9", "data": {"owner": "alice", "title": SECRET}},
        ]),
    );
    w.admin_writes(
        "todos",
        json!([
            {"op": "set", "id": "a1", "data": {"owner": "bob", "title": "given"}},
            {"op": "set", "id": "b1", "data": {"owner": "alice", "title": SECRET}},
        ]),
    );
    let mut denied = owned_by("alice");
    denied["collection"] = json!("todos");
    let refused = w.one(
        BOB,
        json!({"type": "listen", "rid": 3, "query": denied, "since": since}),
    );
    assert_denied(&refused, 3);
    let refused = w.one(
        BOB,
        json!({"type": "listen", "rid": 4, "doc": "todos/a2", "since": since}),
    );
    assert_denied(&refused, 4);
    let resumed = w.one(
        BOB,
        json!({"type": "listen", "rid": 5, "query": owned_by("bob"), "since": since}),
    );
    assert_eq!(resumed["type"], "resumed");
    let changes = resumed["changes"].as_array().unwrap();
    let kinds: Vec<(&str, &str)> = changes
        .iter()
        .map(|c| {
            let path = c["path"].as_str().or(c["doc"]["path"].as_str()).unwrap();
            (c["type"].as_str().unwrap(), path)
        })
        .collect();
    assert_eq!(kinds, [("removed", "todos/b1"), ("added", "todos/a1")]);
    w.assert_bob_saw_nothing_of_alice();
}

#[test]
fn a_document_listener_resumed_across_an_owner_change_is_not_told_the_former_state() {
    let mut w = todos_world();
    w.admin_writes(
        "todos",
        json!([{"op": "set", "id": "a7", "data": {"owner": "alice", "n": 1, "title": "kept",
                                                  SECRET: "alice's field"}}]),
    );
    // Bob learns a sequence number from a listener of his own.
    let since = w.one(BOB, listen_query(1, owned_by("bob")))["seq"]
        .as_u64()
        .unwrap();
    // The admin hands a7 to bob, dropping alice's field.
    w.admin_writes(
        "todos",
        json!([{"op": "set", "id": "a7", "data": {"owner": "bob", "n": 1, "title": "kept"}}]),
    );
    // A resume from when it was alice's must not diff from her version:
    // bob gets the document as it is, as a fresh snapshot.
    let answer = w.one(
        BOB,
        json!({"type": "listen", "rid": 2, "doc": "todos/a7", "since": since}),
    );
    assert_eq!(answer["type"], "snapshot", "{answer}");
    assert_eq!(answer["reset"], true);
    assert_eq!(answer["docs"][0]["data"]["owner"], "bob");
    w.assert_bob_saw_nothing_of_alice();
    // A resume from when it was already bob's is a diff as usual.
    let since = answer["seq"].as_u64().unwrap();
    w.admin_writes(
        "todos",
        json!([{"op": "merge", "id": "a7", "patch": {"n": 2}}]),
    );
    let answer = w.one(
        BOB,
        json!({"type": "listen", "rid": 3, "doc": "todos/a7", "since": since}),
    );
    assert_eq!(answer["type"], "resumed", "{answer}");
    assert_eq!(answer["changes"][0]["type"], "modified");
}

// 7. writes

#[test]
fn write_rules_see_the_stored_and_the_written_document() {
    let mut w = todos_world();
    let cases: Vec<(u64, Value, Result<(), u64>)> = vec![
        // Create: as yourself only.
        (
            BOB,
            json!([{"op": "create", "id": "b2", "data": {"owner": "bob"}}]),
            Ok(()),
        ),
        (
            BOB,
            json!([{"op": "create", "id": "b3", "data": {"owner": "alice"}}]),
            Err(0),
        ),
        (
            ANON,
            json!([{"op": "create", "id": "x1", "data": {"owner": null}}]),
            Err(0),
        ),
        // Update: the stored and the new owner must both be you.
        (
            BOB,
            json!([{"op": "merge", "id": "b2", "patch": {"n": 1}}]),
            Ok(()),
        ),
        (
            BOB,
            json!([{"op": "merge", "id": "b2", "patch": {"owner": "alice"}}]),
            Err(0),
        ),
        (
            BOB,
            json!([{"op": "merge", "id": "a1", "patch": {"owner": "bob"}}]),
            Err(0),
        ),
        (
            BOB,
            json!([{"op": "set", "id": "a1", "data": {"owner": "bob"}}]),
            Err(0),
        ),
        (
            BOB,
            json!([{"op": "patch", "id": "a1", "patch": [{"op": "replace", "path": "/n", "value": 0}]}]),
            Err(0),
        ),
        // Delete: your own only.
        (BOB, json!([{"op": "delete", "id": "a1"}]), Err(0)),
        (BOB, json!([{"op": "delete", "id": "b2"}]), Ok(())),
        // A batch: all or nothing, the first denied write named.
        (
            BOB,
            json!([
                {"op": "set", "id": "b4", "data": {"owner": "bob"}},
                {"op": "set", "id": "b5", "data": {"owner": "bob"}},
                {"op": "merge", "id": "a2", "patch": {"title": "mine"}},
                {"op": "delete", "id": "a1"},
            ]),
            Err(2),
        ),
        (
            ALICE,
            json!([{"op": "merge", "id": "a1", "patch": {"n": 7}}]),
            Ok(()),
        ),
    ];
    let mut rid = 10;
    for (conn, batch, expected) in cases {
        rid += 1;
        let before = w.hub.database().get(&doc("todos/a1")).unwrap();
        let answer = w.one(conn, commit(rid, "todos", batch.clone()));
        match expected {
            Ok(()) => assert_eq!(answer["type"], "committed", "{batch}: {answer}"),
            Err(index) => {
                assert_denied_at(&answer, rid, index);
                assert_eq!(w.hub.database().get(&doc("todos/a1")).unwrap(), before);
            }
        }
    }
    for id in ["b4", "b5", "b3", "x1"] {
        let path = doc(&format!("todos/{id}"));
        assert!(!w.hub.database().get(&path).unwrap().exists, "{id}");
    }
    w.assert_bob_saw_nothing_of_alice();
}

#[test]
fn permission_denied_wins_over_every_failure_that_tells_about_the_document() {
    let mut w = todos_world();
    let a1 = w.hub.database().get(&doc("todos/a1")).unwrap();
    let version = a1.version.unwrap();
    let test_op = |value: Value| {
        json!([{"op": "patch", "id": "a1",
                "patch": [{"op": "test", "path": "/title", "value": value},
                          {"op": "replace", "path": "/owner", "value": "bob"}]}])
    };
    // Bob probing alice's a1 (exists) and nothing (does not) in every way
    // gets the same answer.
    let probes = [
        json!([{"op": "create", "id": "a1", "data": {"owner": "bob"}}]),
        json!([{"op": "create", "id": "a1", "data": {"owner": "alice"}}]),
        json!([{"op": "merge", "id": "nothing", "patch": {"owner": "bob"}}]),
        json!([{"op": "patch", "id": "nothing", "patch": []}]),
        json!([{"op": "set", "id": "a1", "data": {"owner": "bob"}, "precondition": {"version": version}}]),
        json!([{"op": "set", "id": "a1", "data": {"owner": "bob"}, "precondition": {"version": version + 1}}]),
        json!([{"op": "set", "id": "a1", "data": {"owner": "bob"}, "precondition": {"exists": false}}]),
        json!([{"op": "delete", "id": "a1", "precondition": {"exists": true}}]),
        json!([{"op": "delete", "id": "nothing", "precondition": {"exists": true}}]),
        json!([{"op": "set", "id": "nothing", "data": {"owner": "bob"}, "precondition": {"exists": true}}]),
        json!([{"op": "verify", "id": "a1"}]),
        json!([{"op": "verify", "id": "nothing"}]),
        json!([{"op": "verify", "id": "a1", "precondition": {"version": version}}]),
        test_op(json!(SECRET)),
        test_op(json!("wrong guess")),
        json!([{"op": "patch", "id": "a1", "patch": [{"op": "test", "path": "/title", "value": SECRET}]}]),
        json!([{"op": "patch", "id": "a1", "patch": [{"op": "remove", "path": "/absent"}]}]),
        // Preceded by one of bob's own writes: the index is the probe's.
        json!([{"op": "set", "id": "b9", "data": {"owner": "bob"}},
               {"op": "create", "id": "a1", "data": {"owner": "bob"}}]),
    ];
    for (rid, probe) in probes.iter().enumerate() {
        let rid = rid as u64 + 1;
        let answer = w.one(BOB, commit(rid, "todos", probe.clone()));
        let index = probe.as_array().unwrap().len() as u64 - 1;
        assert_eq!(
            answer,
            json!({"type": "error", "rid": rid,
                   "error": {"code": "permission_denied", "message": DENIED, "write_index": index}}),
            "{probe}"
        );
        // The same through the HTTP-facing API.
        let e = w
            .hub
            .handle_commit(
                &Caller::new(user("bob")),
                &collection("todos"),
                &writes(probe.clone()),
                w.now,
            )
            .unwrap_err();
        assert_eq!(
            e.to_body(),
            serde_json::from_value(answer["error"].clone()).unwrap()
        );
    }
    assert_eq!(w.hub.database().get(&doc("todos/a1")).unwrap(), a1);
    assert!(!w.hub.database().get(&doc("todos/b9")).unwrap().exists);
    // A writer who may read the document is told why it failed.
    let answer = w.one(
        ALICE,
        commit(
            50,
            "todos",
            json!([{"op": "create", "id": "a1", "data": {"owner": "alice"}}]),
        ),
    );
    assert_eq!(code(&answer), "already_exists");
    let answer = w.one(
        ALICE,
        commit(
            51,
            "todos",
            json!([{"op": "set", "id": "a1", "data": {"owner": "alice"},
                                     "precondition": {"version": version + 1}}]),
        ),
    );
    assert_eq!(code(&answer), "precondition_failed");
    let answer = w.one(ALICE, commit(52, "todos", test_op(json!("wrong"))));
    assert_ne!(code(&answer), "permission_denied", "{answer}");
    assert_eq!(answer["error"]["write_index"], 0);
    let answer = w.one(
        ALICE,
        commit(53, "todos", json!([{"op": "verify", "id": "a1"}])),
    );
    assert_eq!(answer["type"], "committed");
    w.assert_bob_saw_nothing_of_alice();
}

#[test]
fn a_commit_id_is_answered_only_to_the_caller_whose_commit_it_was() {
    let mut w = todos_world();
    let alices = json!([{"op": "create", "id": "a3", "data": {"owner": "alice", "title": SECRET}}]);
    let with_id = |rid: u64, batch: &Value| {
        let mut frame = commit(rid, "todos", batch.clone());
        frame["commit_id"] = json!("order-7");
        frame
    };
    let first = w.one(ALICE, with_id(1, &alices));
    assert_eq!(first["type"], "committed", "{first}");
    let seq = first["seq"].as_u64().unwrap();
    let a3 = w.hub.database().get(&doc("todos/a3")).unwrap();
    // Her retry is answered with her commit, and writes nothing.
    let retry = w.one(ALICE, with_id(2, &alices));
    assert_eq!(retry["seq"], seq, "{retry}");
    assert_eq!(w.hub.database().get(&doc("todos/a3")).unwrap(), a3);
    // Bob sending her id is not answered with her commit: his is checked
    // by the rules as his own, on the WebSocket and over HTTP alike.
    assert_denied_at(&w.one(BOB, with_id(3, &alices)), 3, 0);
    let id = CommitId::parse("order-7").unwrap();
    let over_http = w.hub.handle_commit_with_id(
        &Caller::new(user("bob")),
        &collection("todos"),
        &writes(alices.clone()),
        Some(&id),
        w.now,
    );
    assert_eq!(over_http.unwrap_err().code(), ErrorCode::PermissionDenied);
    assert_denied_at(&w.one(ANON, with_id(4, &alices)), 4, 0);
    // The id is his to use for a commit of his own, and an admin's commit
    // with it is checked anew (here: a3 exists, so `create` fails).
    let bobs = json!([{"op": "create", "id": "b5", "data": {"owner": "bob"}}]);
    let his = w.one(BOB, with_id(5, &bobs));
    assert_eq!(his["type"], "committed", "{his}");
    assert!(his["seq"].as_u64().unwrap() > seq);
    assert!(w.hub.database().get(&doc("todos/b5")).unwrap().exists);
    assert_eq!(code(&w.one(ADMIN, with_id(6, &alices))), "already_exists");
    // Each retry still gets its own caller's answer.
    assert_eq!(w.one(BOB, with_id(7, &bobs))["seq"], his["seq"]);
    assert_eq!(w.one(ALICE, with_id(8, &alices))["seq"], seq);
    assert_eq!(w.hub.database().get(&doc("todos/a3")).unwrap(), a3);
    w.assert_bob_saw_nothing_of_alice();
}

#[test]
fn get_after_sees_the_whole_batch() {
    let mut w = World::new(rules(TEAM_AND_ROOMS));
    let cases = [
        (
            json!([{"op": "create", "id": "entry", "data": {"n": 5}}]),
            Some(0),
        ),
        (
            json!([{"op": "create", "id": "entry", "data": {"n": 5}},
                   {"op": "create", "id": "total", "data": {"n": 4}}]),
            Some(0),
        ),
        (
            json!([{"op": "create", "id": "entry", "data": {"n": 5}},
                   {"op": "create", "id": "total", "data": {"n": 5}}]),
            None,
        ),
    ];
    for (rid, (batch, denied)) in cases.into_iter().enumerate() {
        let rid = rid as u64 + 1;
        let answer = w.one(ALICE, commit(rid, "ledger", batch));
        match denied {
            Some(index) => assert_denied_at(&answer, rid, index),
            None => assert_eq!(answer["type"], "committed", "{answer}"),
        }
    }
}

// 8. documents of other collections

/// A hub serving only room r1's messages: its members live in another
/// collection, which the driver fetches.
fn rooms_world() -> World {
    let hub = Hub::new(db(), HubConfig::default())
        .scoped(collection("rooms/r1/messages"))
        .with_access(rules(TEAM_AND_ROOMS));
    let mut w = World::over(hub);
    w.admin_writes(
        "rooms/r1/messages",
        json!([{"op": "set", "id": "m1", "data": {"author": "alice", "text": SECRET}}]),
    );
    w
}

fn members() -> Vec<(DocPath, Option<Map<String, Value>>)> {
    vec![
        (
            doc("rooms/r1/members/alice"),
            json!({"role": "writer"}).as_object().cloned(),
        ),
        (doc("rooms/r1/members/bob"), None),
    ]
}

/// The driver's answer for `paths`, from `members()`.
fn answer_for(paths: &[DocPath]) -> Vec<(DocPath, Option<Map<String, Value>>)> {
    let known = members();
    paths
        .iter()
        .map(|p| {
            let data = known
                .iter()
                .find(|(k, _)| k == p)
                .and_then(|(_, d)| d.clone());
            (p.clone(), data)
        })
        .collect()
}

#[test]
fn a_request_reading_another_collection_waits_for_its_documents() {
    let mut w = rooms_world();
    // Alice's get: asks for her member document; her next frame waits.
    assert!(w.ask(ALICE, get(1, "rooms/r1/messages/m1")).is_empty());
    assert_eq!(
        w.fetches,
        [(ALICE, vec![doc("rooms/r1/members/alice")])],
        "one fetch, of alice's member document"
    );
    assert!(
        w.ask(ALICE, get(2, "rooms/r1/messages/m1")).is_empty(),
        "held"
    );
    w.now += 1;
    let fetched = answer_for(&w.fetches[0].1);
    w.hub.handle_fetched(ALICE, fetched, w.now);
    let frames = w.drain().remove(&ALICE).unwrap();
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0]["rid"], 1);
    assert_eq!(frames[0]["doc"]["data"]["text"], SECRET);
    // The held get asks again (fetched documents are kept for one request).
    assert_eq!(w.fetches.len(), 2);
    let fetched = answer_for(&w.fetches[1].1);
    w.hub.handle_fetched(ALICE, fetched, w.now);
    assert_eq!(w.drain()[&ALICE][0]["rid"], 2);
    // Bob: not a member, denied once the document is fetched.
    w.fetches.clear();
    assert!(w.ask(BOB, get(3, "rooms/r1/messages/m1")).is_empty());
    let fetched = answer_for(&w.fetches[0].1);
    w.hub.handle_fetched(BOB, fetched, w.now);
    assert_denied(&w.drain()[&BOB][0], 3);
    // A write reading another collection: alice is a writer, bob is not.
    w.fetches.clear();
    let message = json!([{"op": "create", "id": "m2", "data": {"author": "alice"}}]);
    assert!(w
        .ask(ALICE, commit(4, "rooms/r1/messages", message))
        .is_empty());
    let fetched = answer_for(&w.fetches[0].1);
    w.hub.handle_fetched(ALICE, fetched, w.now);
    assert_eq!(w.drain()[&ALICE][0]["type"], "committed");
    w.fetches.clear();
    let message = json!([{"op": "create", "id": "m3", "data": {"author": "bob"}}]);
    assert!(w
        .ask(BOB, commit(5, "rooms/r1/messages", message))
        .is_empty());
    let fetched = answer_for(&w.fetches[0].1);
    w.hub.handle_fetched(BOB, fetched, w.now);
    assert_denied_at(&w.drain()[&BOB][0], 5, 0);
    w.assert_bob_saw_nothing_of_alice();
}

#[test]
fn a_listen_reading_another_collection_starts_once_its_documents_are_fetched() {
    let mut w = rooms_world();
    let messages = json!({"collection": "rooms/r1/messages"});
    for (conn, rid) in [(ALICE, 1), (BOB, 2)] {
        w.fetches.clear();
        assert!(w.ask(conn, listen_query(rid, messages.clone())).is_empty());
        let (asker, paths) = w.fetches.pop().expect("a fetch");
        assert_eq!(asker, conn);
        w.hub.handle_fetched(conn, answer_for(&paths), w.now);
        let frames = w.drain().remove(&conn).unwrap();
        if conn == ALICE {
            assert_eq!(frames[0]["type"], "snapshot");
            assert_eq!(frames[0]["docs"][0]["data"]["text"], SECRET);
        } else {
            assert_denied(&frames[0], rid);
        }
    }
    assert_eq!(w.hub.stats().listeners, 1);
    let frames = w.admin_writes(
        "rooms/r1/messages",
        json!([{"op": "set", "id": "m9", "data": {"text": SECRET}}]),
    );
    assert_eq!(frames[&ALICE].len(), 1);
    assert!(!frames.contains_key(&BOB));
    w.assert_bob_saw_nothing_of_alice();
}

/// The hub's `Refetch` events, drained (other outputs dropped).
fn refetches(w: &mut World) -> Vec<(u64, u64, Vec<DocPath>)> {
    let mut asked = Vec::new();
    while let Some(output) = w.hub.poll_output() {
        if let Output::Event(HubEvent::Refetch { conn, rid, paths }) = output {
            asked.push((conn, rid, paths));
        }
    }
    asked
}

#[test]
fn a_listener_resting_on_another_collection_is_checked_again_every_interval() {
    let mut w = rooms_world();
    let interval = HubConfig::default().foreign_recheck_ms;
    let messages = json!({"collection": "rooms/r1/messages"});
    assert!(w.ask(ALICE, listen_query(1, messages)).is_empty());
    let (_, paths) = w.fetches.pop().expect("a fetch");
    w.hub.handle_fetched(ALICE, answer_for(&paths), w.now);
    assert_eq!(w.drain()[&ALICE][0]["type"], "snapshot");
    let listened_at = w.now;
    // Due one interval after it was allowed; nothing is asked before.
    assert_eq!(w.hub.poll_timeout(), Some(listened_at + interval));
    w.hub.handle_timeout(listened_at + interval - 1);
    assert!(refetches(&mut w).is_empty());
    // Then its member document is fetched again, and nothing of the
    // connection waits meanwhile.
    w.now = listened_at + interval;
    w.hub.handle_timeout(w.now);
    let asked = refetches(&mut w);
    assert_eq!(asked, [(ALICE, 1, vec![doc("rooms/r1/members/alice")])]);
    assert_eq!(
        w.hub.poll_timeout(),
        None,
        "not due while the fetch is under way"
    );
    // Its next request is not held behind the recheck: it asks for its own fetch.
    assert!(w.ask(ALICE, get(2, "rooms/r1/messages/m1")).is_empty());
    let (_, paths) = w.fetches.pop().expect("the get's own fetch");
    w.hub.handle_fetched(ALICE, answer_for(&paths), w.now);
    assert_eq!(w.drain()[&ALICE][0]["doc"]["data"]["text"], SECRET);
    w.fetches.clear();
    // Still a member: the listener goes on, due again an interval later.
    w.hub
        .handle_refetched(ALICE, 1, answer_for(&asked[0].2), w.now);
    assert!(w.drain().is_empty());
    assert_eq!(w.hub.poll_timeout(), Some(w.now + interval));
    let frames = w.admin_writes(
        "rooms/r1/messages",
        json!([{"op": "set", "id": "m2", "data": {"text": "still here"}}]),
    );
    assert_eq!(frames[&ALICE][0]["type"], "change");
    // Removed from the room meanwhile: at the next check the listener ends
    // with permission_denied, and hears nothing more.
    w.now += interval;
    w.hub.handle_timeout(w.now);
    let asked = refetches(&mut w);
    assert_eq!(asked.len(), 1);
    let gone = vec![(doc("rooms/r1/members/alice"), None)];
    w.hub.handle_refetched(ALICE, 1, gone, w.now);
    let frames = w.drain().remove(&ALICE).expect("an error");
    assert_denied(&frames[0], 1);
    assert_eq!(w.hub.stats().listeners, 0);
    assert_eq!(w.hub.poll_timeout(), None);
    let frames = w.admin_writes(
        "rooms/r1/messages",
        json!([{"op": "set", "id": "m3", "data": {"text": SECRET}}]),
    );
    assert!(!frames.contains_key(&ALICE));
    // A late or repeated answer changes nothing.
    w.hub
        .handle_refetched(ALICE, 1, answer_for(&asked[0].2), w.now);
    assert!(w.drain().is_empty());
}

#[test]
fn documents_of_other_collections_count_against_the_memory_budget() {
    // A connection's share of 64 KiB: one request may hold 32 KiB of
    // fetched documents, and its listeners keep what their rules read.
    let config = HubConfig {
        memory_budget: 64 * 1024 * 1024,
        connection_budget: 64 * 1024,
        ..HubConfig::default()
    };
    let hub = Hub::new(db(), config)
        .scoped(collection("rooms/r1/messages"))
        .with_access(rules(TEAM_AND_ROOMS));
    let mut w = World::over(hub);
    w.admin_writes(
        "rooms/r1/messages",
        json!([{"op": "set", "id": "m1", "data": {"author": "alice", "text": SECRET}}]),
    );
    let member_of = |kb: usize| {
        let pad = "x".repeat(kb * 1024);
        vec![(
            doc("rooms/r1/members/bob"),
            json!({"role": "writer", "pad": pad}).as_object().cloned(),
        )]
    };
    // A member document too large for one request: refused with the
    // memory code, and the connection goes on.
    assert!(w.ask(BOB, get(1, "rooms/r1/messages/m1")).is_empty());
    w.fetches.clear();
    w.hub.handle_fetched(BOB, member_of(40), w.now);
    let frames = w.drain().remove(&BOB).expect("an answer");
    assert_eq!(code(&frames[0]), "resource_exhausted", "{frames:?}");
    // Listeners keep the 10 KiB member document each: the sixth would pass
    // the connection's share and is refused; the five go on.
    let mut refused = 0;
    for rid in 10..20 {
        let listen = listen_query(
            rid,
            json!({"collection": "rooms/r1/messages", "where": {"field": "n", "op": "==", "value": rid}}),
        );
        assert!(w.ask(BOB, listen).is_empty());
        w.fetches.clear();
        w.hub.handle_fetched(BOB, member_of(10), w.now);
        let frames = w.drain().remove(&BOB).expect("an answer");
        match frames[0]["type"].as_str() {
            Some("snapshot") => assert_eq!(refused, 0, "refused ones stay refused"),
            _ => {
                assert_eq!(code(&frames[0]), "resource_exhausted", "{frames:?}");
                refused += 1;
            }
        }
    }
    let listening = w.hub.stats().listeners;
    assert!((3..=6).contains(&listening), "{listening} listeners kept");
    assert_eq!(refused, 10 - listening);
    // Alice, a bystander, is unaffected.
    assert!(w.ask(ALICE, get(30, "rooms/r1/messages/m1")).is_empty());
    let (_, paths) = w.fetches.pop().expect("alice's fetch");
    w.hub.handle_fetched(ALICE, answer_for(&paths), w.now);
    assert_eq!(w.drain()[&ALICE][0]["doc"]["data"]["text"], SECRET);
    // Over HTTP, a caller holding too much is refused the same way.
    let mut caller = Caller::new(user("bob"));
    for (path, data) in member_of(40) {
        caller.fetched.insert(path, data);
    }
    let error = w
        .hub
        .get(&caller, &doc("rooms/r1/messages/m1"))
        .unwrap_err();
    assert_eq!(error.code(), ErrorCode::ResourceExhausted);
}

#[test]
fn in_a_hub_holding_every_collection_a_listener_ends_when_its_member_document_goes() {
    let mut w = World::new(rules(TEAM_AND_ROOMS));
    w.admin_writes(
        "rooms/r1/members",
        json!([{"op": "set", "id": "bob", "data": {"role": "reader"}}]),
    );
    w.admin_writes(
        "rooms/r1/messages",
        json!([{"op": "set", "id": "m1", "data": {"text": "hi"}}]),
    );
    let messages = json!({"collection": "rooms/r1/messages"});
    assert_eq!(w.one(BOB, listen_query(1, messages))["type"], "snapshot");
    assert_eq!(
        w.one(BOB, listen_doc(2, "rooms/r1/messages/m1"))["type"],
        "snapshot"
    );
    assert!(w.fetches.is_empty(), "every collection is local");
    let frames = w.admin_writes("rooms/r1/members", json!([{"op": "delete", "id": "bob"}]));
    let bob = &frames[&BOB];
    assert_eq!(bob.len(), 2, "{bob:?}");
    assert_denied(&bob[0], 1);
    assert_denied(&bob[1], 2);
    let frames = w.admin_writes(
        "rooms/r1/messages",
        json!([{"op": "set", "id": "m2", "data": {"text": SECRET}}]),
    );
    assert!(!frames.contains_key(&BOB));
    assert_eq!(w.hub.stats().listeners, 0);
}

#[test]
fn a_driver_answering_the_wrong_documents_cannot_keep_a_request_waiting_forever() {
    let mut w = rooms_world();
    assert!(w.ask(BOB, get(1, "rooms/r1/messages/m1")).is_empty());
    let mut rounds = 0;
    let mut answered = None;
    while let Some((conn, _)) = w.fetches.pop() {
        assert_eq!(conn, BOB);
        rounds += 1;
        assert!(rounds <= 50, "still fetching after {rounds} rounds");
        // Always the wrong document: alice's, which would allow.
        let wrong = vec![(
            doc("rooms/r1/members/alice"),
            json!({"role": "writer"}).as_object().cloned(),
        )];
        w.now += 1;
        w.hub.handle_fetched(BOB, wrong, w.now);
        answered = w.drain().remove(&BOB);
    }
    assert_denied(&answered.expect("the request is answered")[0], 1);
    assert!(w.fetches.is_empty());
    // The connection works again.
    w.fetches.clear();
    assert!(w.ask(BOB, get(2, "rooms/r1/messages/m1")).is_empty());
    assert_eq!(w.fetches.len(), 1);
    // An answer nobody waits for is ignored.
    w.hub.handle_fetched(ALICE, members(), w.now);
    assert!(w.drain().is_empty());
    w.assert_bob_saw_nothing_of_alice();
}

#[test]
fn the_http_facing_api_asks_for_documents_of_other_collections_then_answers() {
    let mut w = rooms_world();
    let m1 = doc("rooms/r1/messages/m1");
    let messages = json!({"collection": "rooms/r1/messages"});
    for (uid, allowed) in [("alice", true), ("bob", false)] {
        let mut caller = Caller::new(user(uid));
        let need = match w.hub.get(&caller, &m1) {
            Err(Error::NeedDocuments(paths)) => paths,
            other => panic!("{other:?}"),
        };
        assert_eq!(need, [doc(&format!("rooms/r1/members/{uid}"))]);
        assert!(matches!(
            w.hub.query(&caller, &query(messages.clone())),
            Err(Error::NeedDocuments(_))
        ));
        assert!(matches!(
            w.hub.count(&caller, &query(messages.clone())),
            Err(Error::NeedDocuments(_))
        ));
        for (path, data) in answer_for(&need) {
            caller.fetched.insert(path, data);
        }
        let got = w.hub.get(&caller, &m1);
        let listed = w.hub.query(&caller, &query(messages.clone()));
        let counted = w.hub.count(&caller, &query(messages.clone()));
        if allowed {
            assert_eq!(got.unwrap().data.unwrap()["text"], SECRET);
            assert_eq!(listed.unwrap().docs.len(), 1);
            assert_eq!(counted.unwrap().1, 1);
        } else {
            for e in [got.unwrap_err(), listed.unwrap_err(), counted.unwrap_err()] {
                assert_eq!(e.code(), ErrorCode::PermissionDenied);
            }
        }
        let message = writes(json!([{"op": "create", "id": format!("by-{uid}"),
                                      "data": {"author": uid}}]));
        let messages_coll = collection("rooms/r1/messages");
        let mut fresh = Caller::new(user(uid));
        assert!(matches!(
            w.hub.handle_commit(&fresh, &messages_coll, &message, w.now),
            Err(Error::NeedDocuments(_))
        ));
        fresh.fetched = caller.fetched.clone();
        let result = w.hub.handle_commit(&fresh, &messages_coll, &message, w.now);
        assert_eq!(result.is_ok(), allowed, "{result:?}");
    }
}

#[test]
fn an_http_caller_whose_driver_keeps_fetching_the_wrong_documents_is_denied() {
    let w = rooms_world();
    let m1 = doc("rooms/r1/messages/m1");
    let mut caller = Caller::new(user("bob"));
    let mut rounds = 0;
    let denied = loop {
        rounds += 1;
        assert!(rounds <= 50, "still asking after {rounds} rounds");
        match w.hub.get(&caller, &m1) {
            Err(Error::NeedDocuments(_)) => {
                // The wrong document, each round another.
                let wrong = doc(&format!("rooms/r1/members/someone-{rounds}"));
                caller.fetched.insert(wrong, None);
            }
            other => break other.unwrap_err(),
        }
    };
    assert_eq!(denied.code(), ErrorCode::PermissionDenied);
}

// 9. restore after a redeploy

#[test]
fn a_restored_session_ends_the_listeners_the_new_rules_deny() {
    let mut w = todos_world();
    w.one(BOB, listen_query(1, owned_by("bob")));
    w.one(BOB, listen_doc(2, "todos/b1"));
    let session = w.hub.session(BOB).unwrap();
    assert_eq!(session.listeners.len(), 2);
    // The new rules let owners read their documents one by one, but no longer list them.
    let stricter = TODOS.replace("allow read, delete: if", "allow get, delete: if");
    assert_ne!(stricter, TODOS);
    let db = std::mem::replace(&mut w.hub, Hub::new(db(), HubConfig::default())).into_database();
    let mut hub = Hub::new(db, HubConfig::default()).with_access(rules(&stricter));
    hub.restore(BOB, &session).unwrap();
    w.hub = hub;
    let frames = w.drain();
    assert_eq!(frames[&BOB].len(), 1, "{frames:?}");
    assert_denied(&frames[&BOB][0], 1);
    assert_eq!(w.hub.stats().listeners, 1);
    let frames = w.admin_writes(
        "todos",
        json!([{"op": "merge", "id": "b1", "patch": {"n": 30}}]),
    );
    assert_eq!(frames[&BOB].len(), 1);
    assert_eq!(frames[&BOB][0]["type"], "change");
    assert_eq!(frames[&BOB][0]["target"], session.listeners[1].target);
}

#[test]
fn a_refreshed_credential_with_other_claims_ends_the_listeners_they_no_longer_allow() {
    let editors = r#"
rules_version = '2';
service cloud.firestore {
  match /databases/{database}/documents {
    match /drafts/{id} {
      allow read: if request.auth.token.role == 'editor';
    }
    match /notes/{id} {
      allow read: if request.auth != null;
    }
  }
}"#;
    let mut w = World::new(rules(editors));
    w.admin_writes(
        "drafts",
        json!([{"op": "set", "id": "d1", "data": {"text": SECRET}}]),
    );
    w.admin_writes("notes", json!([{"op": "set", "id": "n1", "data": {}}]));
    let with_role = |role: &str| {
        let claims = json!({"sub": "bob", "role": role});
        Identity::User {
            uid: "bob".into(),
            claims: claims.as_object().unwrap().clone(),
        }
    };
    w.now += 1;
    w.hub.handle_open(9, 0);
    w.hub
        .handle_frame(9, r#"{"type":"hello","protocol":1,"auth":"t"}"#, w.now);
    w.hub
        .handle_verified(9, None, Ok((with_role("editor"), None)), w.now);
    w.drain();
    let drafts = json!({"collection": "drafts"});
    assert_eq!(w.one(9, listen_query(1, drafts))["type"], "snapshot");
    assert_eq!(w.one(9, listen_doc(2, "drafts/d1"))["type"], "snapshot");
    assert_eq!(w.one(9, listen_doc(3, "notes/n1"))["type"], "snapshot");
    let refresh = |w: &mut World, rid: u64, role: &str| {
        w.ask(9, json!({"type": "auth", "rid": rid, "auth": "t2"}));
        w.now += 1;
        w.hub
            .handle_verified(9, Some(rid), Ok((with_role(role), None)), w.now);
        w.drain().remove(&9).unwrap_or_default()
    };
    // Still an editor: nothing ends.
    let frames = refresh(&mut w, 10, "editor");
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0]["type"], "authenticated");
    // No longer one: the drafts listeners end, the notes listener stays.
    let frames = refresh(&mut w, 11, "viewer");
    assert_eq!(frames.len(), 3, "{frames:?}");
    assert_eq!(frames[0]["type"], "authenticated");
    assert_denied(&frames[1], 1);
    assert_denied(&frames[2], 2);
    assert_eq!(w.hub.stats().listeners, 1);
    let frames = w.admin_writes(
        "drafts",
        json!([{"op": "merge", "id": "d1", "patch": {"more": SECRET}}]),
    );
    assert!(!frames.contains_key(&9), "{frames:?}");
    let frames = w.admin_writes(
        "notes",
        json!([{"op": "merge", "id": "n1", "patch": {"a": 1}}]),
    );
    assert_eq!(frames[&9].len(), 1);
}

#[test]
fn a_restore_checks_the_rules_at_the_time_it_is_given() {
    let until = r#"
rules_version = '2';
service cloud.firestore {
  match /databases/{database}/documents {
    match /offers/{id} {
      allow read: if request.time.toMillis() < resource.data.until;
    }
  }
}"#;
    let mut w = World::new(rules(until));
    let until_ms = w.now + 1_000;
    w.admin_writes(
        "offers",
        json!([{"op": "set", "id": "o1", "data": {"until": until_ms}}]),
    );
    assert_eq!(w.one(BOB, listen_doc(1, "offers/o1"))["type"], "snapshot");
    let session = w.hub.session(BOB).unwrap();
    let restore_at = |now: u64| {
        // The same documents, in a hub that lost its memory.
        let mut db = db();
        let offer = writes(json!([{"op": "set", "id": "o1", "data": {"until": until_ms}}]));
        db.commit(&collection("offers"), &offer, NOW).unwrap();
        let mut hub = Hub::new(db, HubConfig::default()).with_access(rules(until));
        hub.set_now(now);
        hub.restore(BOB, &session).unwrap();
        std::iter::from_fn(|| hub.poll_output()).count()
    };
    assert_eq!(restore_at(until_ms - 1), 0, "still valid: restored quietly");
    // Past `until`: the listener ends (an event and its error frame).
    assert_eq!(restore_at(until_ms), 2);
}

#[test]
fn a_restore_that_needs_documents_of_other_collections_fails_leaving_nothing_behind() {
    let mut w = rooms_world();
    for (rid, listen) in [
        (1, listen_doc(1, "rooms/r1/messages/m1")),
        (
            2,
            listen_query(2, json!({"collection": "rooms/r1/messages"})),
        ),
    ] {
        w.fetches.clear();
        w.ask(ALICE, listen);
        let (_, paths) = w.fetches.pop().unwrap();
        w.hub.handle_fetched(ALICE, answer_for(&paths), w.now);
        assert_eq!(w.drain()[&ALICE][0]["rid"], rid);
    }
    let session = w.hub.session(ALICE).unwrap();
    assert_eq!(session.listeners.len(), 2);
    // New rules: no document reads at all, lists still resting on members.
    let new_rules = TEAM_AND_ROOMS.replace(
        "allow read: if exists(/databases/$(database)/documents/rooms/$(room)/members/$(request.auth.uid));",
        "allow get: if false;\n      allow list: if exists(/databases/$(database)/documents/rooms/$(room)/members/$(request.auth.uid));",
    );
    assert_ne!(new_rules, TEAM_AND_ROOMS);
    let db = std::mem::replace(&mut w.hub, Hub::new(db(), HubConfig::default())).into_database();
    let mut hub = Hub::new(db, HubConfig::default())
        .scoped(collection("rooms/r1/messages"))
        .with_access(rules(&new_rules));
    let e = hub.restore(ALICE, &session).unwrap_err();
    assert!(matches!(e, Error::NeedDocuments(_)), "{e:?}");
    assert_eq!(
        hub.poll_output(),
        None,
        "nothing sent for a connection not restored"
    );
    assert_eq!(hub.stats(), Default::default());
}

// 10. admin, anonymous, closed and open

#[test]
fn admins_skip_the_rules_and_anonymous_callers_have_no_auth() {
    let mut w = todos_world();
    let all = json!({"collection": "todos"});
    let answer = w.one(ADMIN, json!({"type": "query", "rid": 1, "query": all}));
    assert_eq!(answer["docs"].as_array().unwrap().len(), 3);
    assert_eq!(
        w.one(ADMIN, listen_query(2, all.clone()))["type"],
        "snapshot"
    );
    assert_eq!(w.one(ADMIN, get(3, "todos/a1"))["doc"]["exists"], true);
    let answer = w.ask(
        ADMIN,
        commit(
            4,
            "todos",
            json!([{"op": "set", "id": "z", "data": {"owner": "nobody"}}]),
        ),
    );
    let kinds: Vec<&Value> = answer.iter().map(|f| &f["type"]).collect();
    assert_eq!(kinds, ["change", "committed"]);
    // Anonymous: `request.auth == null`.
    let public = r#"
rules_version = '2';
service cloud.firestore {
  match /databases/{database}/documents {
    match /notes/{id} {
      allow read: if request.auth == null;
      allow write: if request.auth != null && request.auth.uid == 'alice';
    }
  }
}"#;
    let mut w = World::new(rules(public));
    let answer = w.one(
        ALICE,
        commit(1, "notes", json!([{"op": "set", "id": "n", "data": {}}])),
    );
    assert_eq!(answer["type"], "committed");
    assert_eq!(w.one(ANON, get(2, "notes/n"))["doc"]["exists"], true);
    assert_denied(&w.one(ALICE, get(3, "notes/n")), 3);
    assert_denied_at(
        &w.one(
            ANON,
            commit(4, "notes", json!([{"op": "set", "id": "n", "data": {}}])),
        ),
        4,
        0,
    );
}

#[test]
fn closed_access_denies_everyone_but_admins_and_open_access_denies_nobody() {
    let mut w = World::new(Access::Closed("BLAZE_RULES does not compile".into()));
    let set = json!([{"op": "set", "id": "a1", "data": {"owner": "alice"}}]);
    for conn in [ALICE, BOB, ANON] {
        assert_denied(&w.one(conn, get(1, "todos/a1")), 1);
        assert_denied(
            &w.one(
                conn,
                json!({"type": "query", "rid": 2, "query": owned_by("alice")}),
            ),
            2,
        );
        assert_denied(&w.one(conn, listen_query(3, owned_by("alice"))), 3);
        assert_denied_at(&w.one(conn, commit(4, "todos", set.clone())), 4, 0);
        for frame in w.sent[&conn].iter() {
            assert!(
                !frame.contains("BLAZE_RULES"),
                "the reason stays in the log"
            );
        }
    }
    assert_eq!(
        w.one(ADMIN, commit(5, "todos", set.clone()))["type"],
        "committed"
    );
    assert_eq!(w.one(ADMIN, get(6, "todos/a1"))["doc"]["exists"], true);
    let mut w = World::new(Access::Open);
    assert_eq!(w.one(BOB, commit(1, "todos", set))["type"], "committed");
    let everything = json!({"type": "query", "rid": 2, "query": {"collection": "todos"}});
    assert_eq!(w.one(ANON, everything)["docs"][0]["data"]["owner"], "alice");
    assert_eq!(w.one(BOB, listen_doc(3, "todos/a1"))["type"], "snapshot");
}

// 11. hostile load

#[test]
fn a_thousand_denied_listens_leave_nothing_behind_and_a_bystander_keeps_its_changes() {
    let mut w = todos_world();
    w.one(ALICE, listen_query(1, owned_by("alice")));
    let before = w.hub.stats();
    for rid in 1..=1000u64 {
        let listen = if rid % 2 == 0 {
            listen_query(rid, owned_by("alice"))
        } else {
            listen_doc(rid, &format!("todos/a{}", rid % 3))
        };
        assert_denied(&w.one(BOB, listen), rid);
        w.hub.handle_frame(
            BOB,
            &json!({"type": "ack", "frames": rid}).to_string(),
            w.now,
        );
    }
    assert_eq!(w.hub.stats(), before);
    let frames = w.admin_writes(
        "todos",
        json!([{"op": "merge", "id": "a1", "patch": {"n": 99}}]),
    );
    assert_eq!(frames[&ALICE].len(), 1);
    assert!(!frames.contains_key(&BOB));
    w.assert_bob_saw_nothing_of_alice();
}

#[test]
fn listeners_watched_for_rechecks_leave_nothing_behind_when_they_end() {
    let mut w = team_world();
    let before = w.hub.stats();
    assert_eq!(before.watches, 0);
    for rid in 1..=500u64 {
        let listen = if rid % 2 == 0 {
            listen_doc(rid, "team/plan")
        } else {
            listen_query(rid, json!({"collection": "team"}))
        };
        assert_eq!(w.one(BOB, listen)["type"], "snapshot");
        w.hub.handle_frame(
            BOB,
            &json!({"type": "ack", "frames": rid}).to_string(),
            w.now,
        );
    }
    // A query listener rests on the roster, a document listener on its
    // document and the member document.
    assert_eq!(w.hub.stats().watches, 250 + 250 * 2);
    // Half unlistened, the rest ended by the rules.
    for rid in (2..=500u64).step_by(4) {
        w.one(
            BOB,
            json!({"type": "unlisten", "rid": 1000 + rid, "listener": rid}),
        );
    }
    assert_eq!(w.hub.stats().watches, 250 + 125 * 2);
    w.admin_writes(
        "team",
        json!([{"op": "set", "id": "roster", "data": {"members": ["alice"]}},
               {"op": "delete", "id": "member-bob"}]),
    );
    assert_eq!(w.hub.stats(), before);
    // A connection that closes leaves nothing either.
    assert_eq!(w.one(ALICE, listen_doc(1, "team/plan"))["type"], "snapshot");
    assert_eq!(w.hub.stats().watches, 2);
    w.hub.handle_close(ALICE);
    assert_eq!(w.hub.stats().watches, 0);
}

#[test]
fn a_query_past_the_limits_is_refused_before_the_rules_try_to_prove_it() {
    let mut w = todos_world();
    // 10 `in` filters of 10 values: 10^10 disjunctions once expanded.
    let mut filters = vec![json!({"field": "owner", "op": "==", "value": "bob"})];
    for f in 0..10 {
        let values: Vec<i64> = (0..10).collect();
        filters.push(json!({"field": format!("f{f}"), "op": "in", "value": values}));
    }
    let q = json!({"collection": "todos", "where": {"and": filters}});
    let started = std::time::Instant::now();
    for (rid, frame) in [
        json!({"type": "query", "rid": 1, "query": q}),
        json!({"type": "count", "rid": 2, "query": q}),
        listen_query(3, q.clone()),
    ]
    .into_iter()
    .enumerate()
    {
        let answer = w.one(BOB, frame);
        assert_eq!(answer["rid"], rid as u64 + 1);
        assert_eq!(code(&answer), "too_many_disjunctions", "{answer}");
    }
    let caller = Caller::new(user("bob"));
    let e = w.hub.query(&caller, &query(q.clone())).unwrap_err();
    assert_eq!(e.code(), ErrorCode::TooManyDisjunctions);
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn a_session_waiting_for_documents_of_other_collections_does_not_restore() {
    let mut w = rooms_world();
    assert!(w.ask(BOB, get(1, "rooms/r1/messages/m1")).is_empty());
    assert_eq!(w.fetches.len(), 1);
    let session = w.hub.session(BOB).unwrap();
    assert!(session.waiting, "its request lives only in memory");
}
