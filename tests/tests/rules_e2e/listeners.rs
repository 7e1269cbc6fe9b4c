//! Live listeners and resumes: a document that leaves bob's results is a
//! bare `removed`, whatever happened to it; a document listener whose
//! document bob may no longer read ends with `permission_denied`; a resume
//! after missed changes hands over the allowed ones only.

use std::collections::HashMap;

use blaze_tests::live::apply_changes;
use serde_json::{json, Value};

use crate::support::{admin_commit, assert_denied, assert_ws_denied, ids, User};

/// Result lists by target, kept up to date from `change` frames.
#[derive(Default)]
struct Views(HashMap<u64, Vec<Value>>);

impl Views {
    /// Starts following the listener a `snapshot` answered.
    fn start(&mut self, snapshot: &Value) -> u64 {
        assert_eq!(snapshot["type"], "snapshot", "{snapshot}");
        let target = snapshot["target"].as_u64().expect("a target");
        let docs = snapshot["docs"].as_array().expect("docs").clone();
        self.0.insert(target, docs);
        target
    }

    /// Applies every `change` frame of `frames`; returns the others.
    fn apply(&mut self, frames: Vec<Value>) -> Vec<Value> {
        let mut others = Vec::new();
        for frame in frames {
            if frame["type"] != "change" {
                others.push(frame);
                continue;
            }
            let target = frame["target"].as_u64().expect("a target");
            let view = self.0.get_mut(&target).expect("a known target");
            apply_changes(view, &frame["changes"]);
        }
        others
    }

    fn ids(&self, target: u64) -> Vec<String> {
        ids(&Value::Array(self.0[&target].clone()))
    }
}

/// The kinds and ids of a `change` frame's changes.
fn kinds(frame: &Value) -> Vec<(String, String)> {
    frame["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| {
            let path = c["path"]
                .as_str()
                .or(c["doc"]["path"].as_str())
                .unwrap_or("");
            let id = path.rsplit('/').next().unwrap_or_default().to_owned();
            (c["type"].as_str().unwrap_or("").to_owned(), id)
        })
        .collect()
}

/// Bob's query and document listeners while alice's documents appear and
/// his leave: deleted, no longer matching, given to alice. He hears
/// `removed` and nothing more; his document listener on a document given to
/// alice ends with `permission_denied`, ahead of that commit's changes; no
/// frame bob receives carries alice's secret.
pub async fn live_removals(port: u16) {
    let secret = "SECRET-live-77d2";
    let coll = "runs/live/todos";
    let mut writes = Vec::new();
    for i in 1..=5 {
        writes.push(json!({"op": "set", "id": format!("b{i}"),
            "data": {"owner": "bob", "status": "open", "n": i}}));
    }
    admin_commit(port, coll, Value::Array(writes)).await;
    let alice = User::new(port, "alice");
    let bob = User::new(port, "bob").never_sees(secret);
    let owned = |uid: &str| json!({"collection": coll, "where": {"field": "owner", "op": "==", "value": uid}});
    let open = json!({"collection": coll, "where": {"and": [
        {"field": "owner", "op": "==", "value": "bob"},
        {"field": "status", "op": "==", "value": "open"}]}});

    let mut alice_ws = alice.ws(coll).await;
    let mut alice_views = Views::default();
    let alice_target = alice_views.start(&alice_ws.listen(owned("alice")).await);
    let mut queries = bob.ws(coll).await;
    let mut views = Views::default();
    let all = views.start(&queries.listen(owned("bob")).await);
    let opened = views.start(&queries.listen(open.clone()).await);
    // A listener on b3 beside the query listeners, to see the order of frames.
    let beside = queries.listen_doc(&format!("{coll}/b3")).await;
    let beside_rid = beside["rid"].as_u64().expect("a rid");
    let mut docs = bob.ws(coll).await;
    let b3 = docs.listen_doc(&format!("{coll}/b3")).await;
    let b3_rid = b3["rid"].as_u64().expect("a rid");
    assert_eq!(b3["docs"][0]["data"]["n"], 3, "{b3}");
    let b5 = docs.listen_doc(&format!("{coll}/b5")).await;
    let b5_rid = b5["rid"].as_u64().expect("a rid");
    assert_eq!(b5["docs"][0]["data"]["n"], 5, "{b5}");
    assert_eq!(views.ids(all), ["b1", "b2", "b3", "b4", "b5"]);

    // Alice writes hers: bob hears nothing of it.
    let created = alice
        .create(
            &format!("{coll}/a1"),
            json!({"owner": "alice", "secret": secret}),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.body);
    // b1 is closed: it leaves bob's open ones, stays in all of his.
    admin_commit(
        port,
        coll,
        json!([{"op": "merge", "id": "b1", "patch": {"status": "done"}}]),
    )
    .await;
    // b2 is deleted.
    admin_commit(port, coll, json!([{"op": "delete", "id": "b2"}])).await;
    // b4 is given to alice, with her secret: it leaves both of bob's lists.
    admin_commit(
        port,
        coll,
        json!([{"op": "set", "id": "b4", "data": {"owner": "alice", "status": "open", "secret": secret}}]),
    )
    .await;
    // b3 too: bob's listeners on it end.
    let given = admin_commit(
        port,
        coll,
        json!([{"op": "merge", "id": "b3", "patch": {"owner": "alice", "secret": secret}}]),
    )
    .await;
    // b5 is deleted: a missing document is denied too (its rule reads `resource.data`).
    admin_commit(port, coll, json!([{"op": "delete", "id": "b5"}])).await;
    // Changes to the documents bob lost reach none of his listeners.
    admin_commit(
        port,
        coll,
        json!([{"op": "merge", "id": "b3", "patch": {"n": 33}}, {"op": "merge", "id": "b4", "patch": {"n": 44}}]),
    )
    .await;

    let frames = queries.sync().await;
    let heard = |target: u64| -> Vec<Vec<(String, String)>> {
        frames
            .iter()
            .filter(|f| f["target"] == json!(target))
            .map(kinds)
            .collect()
    };
    let removed = |id: &str| vec![("removed".to_owned(), id.to_owned())];
    let modified = |id: &str| vec![("modified".to_owned(), id.to_owned())];
    let lost = [removed("b2"), removed("b4"), removed("b3"), removed("b5")];
    let mut want_all = vec![modified("b1")];
    want_all.extend(lost.iter().cloned());
    let mut want_open = vec![removed("b1")];
    want_open.extend(lost.iter().cloned());
    assert_eq!(heard(all), want_all, "{frames:?}");
    assert_eq!(heard(opened), want_open, "{frames:?}");
    for frame in frames.iter().filter(|f| f["type"] == "change") {
        for change in frame["changes"].as_array().expect("changes") {
            if change["type"] == "removed" {
                let keys: Vec<&String> = change.as_object().expect("a change").keys().collect();
                assert_eq!(
                    keys,
                    ["old_index", "path", "type"],
                    "a bare removal: {change}"
                );
            }
        }
    }
    // The listener on b3 ended with its error before that commit's changes.
    let ended = frames
        .iter()
        .position(|f| f["rid"] == json!(beside_rid))
        .expect("the end of the listener on b3");
    let commit = frames
        .iter()
        .position(|f| f["seq"] == given["seq"])
        .expect("the changes of the commit that gave b3 away");
    assert!(ended < commit, "{frames:?}");
    let others = views.apply(frames);
    assert_eq!(others.len(), 1, "{others:?}");
    assert_ws_denied(&others[0], None, "the listener on b3 beside the queries");
    assert_eq!(views.ids(all), ["b1"]);
    assert!(views.ids(opened).is_empty());

    // The document listeners: each ends with its own error, sent before the
    // commit's other frames; nothing of b3 after it.
    let frames = docs.sync().await;
    assert_eq!(frames.len(), 2, "{frames:?}");
    assert_ws_denied(&frames[0], None, "b3's listener");
    assert_eq!(frames[0]["rid"], json!(b3_rid));
    assert_ws_denied(&frames[1], None, "b5's listener");
    assert_eq!(frames[1]["rid"], json!(b5_rid));
    // Ended: unlisten finds no such listener.
    let gone = docs
        .ask(json!({"type": "unlisten", "listener": b3_rid}))
        .await;
    assert_eq!(gone["error"]["code"], "listener_not_found", "{gone}");

    // Alice heard hers and the ones she was given, and equals what is stored.
    let frames = alice_ws.sync().await;
    assert!(alice_views.apply(frames).is_empty());
    let stored = User::admin(port).query(owned("alice")).await.json();
    assert_eq!(
        Value::Array(alice_views.0[&alice_target].clone()),
        stored["docs"]
    );
    assert_eq!(ids(&stored["docs"]), ["a1", "b3", "b4"]);
    for ws in [queries, docs, alice_ws] {
        ws.close().await;
    }
}

/// A resume with `since` after missed changes: bob's query listener gets
/// the changes to his own results only (bare `removed` for what he lost),
/// and ends equal to what the rules let him read; a resume the rules no
/// longer allow (a document now alice's, an unprovable query) is
/// `permission_denied`.
pub async fn resume_since(port: u16) {
    let secret = "SECRET-resume-c3e8";
    let coll = "runs/resume/todos";
    admin_commit(
        port,
        coll,
        json!([
            {"op": "set", "id": "a0", "data": {"owner": "alice", "secret": secret}},
            {"op": "set", "id": "b1", "data": {"owner": "bob", "n": 1}},
            {"op": "set", "id": "b2", "data": {"owner": "bob", "n": 2}},
            {"op": "set", "id": "b3", "data": {"owner": "bob", "n": 3}},
        ]),
    )
    .await;
    let alice = User::new(port, "alice");
    let bob = User::new(port, "bob").never_sees(secret);
    let bobs = json!({"collection": coll, "where": {"field": "owner", "op": "==", "value": "bob"}});

    let mut ws = bob.ws(coll).await;
    let mut views = Views::default();
    let snapshot = ws.listen(bobs.clone()).await;
    let target = views.start(&snapshot);
    let since = snapshot["seq"].as_u64().expect("a seq");
    let doc = ws.listen_doc(&format!("{coll}/b1")).await;
    let doc_since = doc["seq"].as_u64().expect("a seq");
    ws.close().await;

    // What bob misses.
    let created = alice
        .create(
            &format!("{coll}/a1"),
            json!({"owner": "alice", "secret": secret}),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.body);
    admin_commit(
        port,
        coll,
        json!([{"op": "merge", "id": "b1", "patch": {"owner": "alice", "secret": secret}}]),
    )
    .await;
    admin_commit(port, coll, json!([{"op": "delete", "id": "b2"}])).await;
    admin_commit(
        port,
        coll,
        json!([{"op": "merge", "id": "b3", "patch": {"n": 30}}]),
    )
    .await;
    let merged = alice
        .merge(&format!("{coll}/a1"), json!({"note": secret}))
        .await;
    assert_eq!(merged.status, 200, "{}", merged.body);
    let last = merged.json()["seq"].as_u64().expect("a seq");

    let mut ws = bob.ws(coll).await;
    let resumed = ws
        .ask(json!({"type": "listen", "query": bobs, "since": since}))
        .await;
    assert_eq!(resumed["type"], "resumed", "{resumed}");
    assert_eq!(resumed["seq"].as_u64(), Some(last));
    let kinds = kinds(&resumed);
    let kind = |k: &str, id: &str| (k.to_owned(), id.to_owned());
    assert_eq!(
        kinds,
        [
            kind("removed", "b1"),
            kind("removed", "b2"),
            kind("modified", "b3")
        ],
        "{resumed}"
    );
    apply_changes(
        views.0.get_mut(&target).expect("the view"),
        &resumed["changes"],
    );
    let stored = User::admin(port).query(bobs.clone()).await.json();
    assert_eq!(Value::Array(views.0[&target].clone()), stored["docs"]);

    let doc = ws
        .ask(json!({"type": "listen", "doc": format!("{coll}/b1"), "since": doc_since}))
        .await;
    assert_ws_denied(&doc, None, "resuming b1, now alice's");
    let everything = ws
        .ask(json!({"type": "listen", "query": {"collection": coll}, "since": since}))
        .await;
    assert_ws_denied(&everything, None, "resuming an unfiltered query");
    let rest = ws.sync().await;
    assert!(rest.is_empty(), "{rest:?}");
    ws.close().await;
}

/// A permission that rests on a document of the same collection (an access
/// document read with `exists()`): removing it ends bob's document and
/// query listeners with `permission_denied`, before the changes of the
/// commit that removed it, and what that commit wrote never reaches him.
pub async fn revoked_in_the_same_object(port: u16) {
    let secret = "SECRET-revoked-6a41";
    let coll = "runs/revoked/boards";
    admin_commit(
        port,
        coll,
        json!([
            {"op": "set", "id": "bob", "data": {"access": true}},
            {"op": "set", "id": "plan", "data": {"text": "draft"}},
        ]),
    )
    .await;
    let bob = User::new(port, "bob").never_sees(secret);
    let plan = format!("{coll}/plan");
    let mut ws = bob.ws(coll).await;
    let doc = ws.listen_doc(&plan).await;
    assert_eq!(doc["docs"][0]["data"]["text"], "draft", "{doc}");
    let query = ws.listen(json!({"collection": coll})).await;
    assert_eq!(ids(&query["docs"]), ["bob", "plan"], "{query}");
    let rids = [doc["rid"].clone(), query["rid"].clone()];
    assert_eq!(bob.get(&plan).await.status, 200);
    assert_denied(
        &User::new(port, "alice").get(&plan).await,
        None,
        "alice has no access",
    );

    // One commit takes bob's access away and writes the secret.
    admin_commit(
        port,
        coll,
        json!([{"op": "delete", "id": "bob"}, {"op": "set", "id": "plan", "data": {"text": secret}}]),
    )
    .await;
    let frames = ws.sync().await;
    assert_eq!(frames.len(), 2, "{frames:?}");
    for (frame, rid) in frames.iter().zip(&rids) {
        assert_ws_denied(frame, None, "a listener that lost its access");
        assert_eq!(frame["rid"], *rid, "{frame}");
    }
    assert_denied(&bob.get(&plan).await, None, "bob without access");
    let again = ws.listen_doc(&plan).await;
    assert_ws_denied(&again, None, "listening again without access");
    ws.close().await;
}
