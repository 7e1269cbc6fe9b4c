//! Deployments: a worker without rules, or with rules that do not compile,
//! serves admins only (the compile error in its log); a redeploy with other
//! rules applies them to listeners that resume.

use std::time::{Duration, Instant};

use blaze_tests::live::WranglerDev;
use serde_json::{json, Value};

use crate::support::{admin_commit, assert_denied, assert_ws_denied, ids, User, RULES};

/// Waits until `server`'s log holds `needle` (wrangler writes it a little
/// after the request that caused it); panics after 10 s.
async fn wait_for_log(server: &WranglerDev, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = server.log_text();
        if log.contains(needle) {
            return log;
        }
        assert!(
            Instant::now() < deadline,
            "{needle:?} not in the log:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A worker that has no usable rules: every non-admin request, HTTP or
/// WebSocket, is `permission_denied`; the admin reads and writes.
pub async fn serves_admins_only(server: &WranglerDev, logged: &str) {
    let port = server.port;
    let coll = "todos";
    let admin = User::admin(port);
    let written = admin
        .put(&format!("{coll}/a1"), json!({"owner": "alice"}))
        .await;
    assert_eq!(written.status, 200, "{}", written.body);
    let read = admin.get(&format!("{coll}/a1")).await;
    assert_eq!(read.json()["data"]["owner"], "alice", "{}", read.body);
    let log = wait_for_log(server, logged).await;
    assert!(log.contains(r#""at":"rules""#), "{log}");

    for user in [User::new(port, "alice"), User::anonymous(port)] {
        assert_denied(&user.get(&format!("{coll}/a1")).await, None, "get");
        let mine =
            json!({"collection": coll, "where": {"field": "owner", "op": "==", "value": "alice"}});
        assert_denied(&user.query(mine.clone()).await, None, "query");
        assert_denied(&user.count(mine.clone()).await, None, "count");
        let put = user
            .put(&format!("{coll}/a2"), json!({"owner": "alice"}))
            .await;
        assert_eq!(
            put.code().as_deref(),
            Some("permission_denied"),
            "{}",
            put.body
        );
        let mut ws = user.ws(coll).await;
        let got = ws
            .ask(json!({"type": "get", "path": format!("{coll}/a1")}))
            .await;
        assert_ws_denied(&got, None, "ws get");
        assert_ws_denied(&ws.listen(mine).await, None, "ws listen");
        let commit = json!({"type": "commit", "collection": coll,
                            "writes": [{"op": "set", "id": "a3", "data": {"owner": "alice"}}]});
        let answer = ws.ask(commit).await;
        assert_eq!(answer["error"]["code"], "permission_denied", "{answer}");
        ws.close().await;
    }
    // The admin's WebSocket works, and nothing else was written.
    let mut ws = admin.ws(coll).await;
    let snapshot = ws.listen(json!({"collection": coll})).await;
    assert_eq!(ids(&snapshot["docs"]), ["a1"], "{snapshot}");
    ws.close().await;
}

/// Redeploys `server` (stopped, then started on its state with `rules`):
/// alice's listeners on her todos resume under the new rules, which deny
/// listing todos and still allow getting one: the query listener's resume
/// is `permission_denied`, the document listener's resumes.
pub async fn redeploy(mut server: WranglerDev) {
    let port = server.port;
    let coll = "runs/redeploy/todos";
    admin_commit(
        port,
        coll,
        json!([
            {"op": "set", "id": "a1", "data": {"owner": "alice", "n": 1}},
            {"op": "set", "id": "a2", "data": {"owner": "alice", "n": 2}},
        ]),
    )
    .await;
    let alice = User::new(port, "alice");
    let hers =
        json!({"collection": coll, "where": {"field": "owner", "op": "==", "value": "alice"}});
    let mut ws = alice.ws(coll).await;
    let query = ws.listen(hers.clone()).await;
    assert_eq!(ids(&query["docs"]), ["a1", "a2"], "{query}");
    let doc = ws.listen_doc(&format!("{coll}/a1")).await;
    assert_eq!(doc["type"], "snapshot", "{doc}");
    let (query_since, doc_since) = (query["seq"].clone(), doc["seq"].clone());

    let old = "allow read, delete: if signedIn() && resource.data.owner";
    assert!(RULES.contains(old));
    let rules = RULES.replace(
        old,
        "allow get, delete: if signedIn() && resource.data.owner",
    );
    server.kill();
    drop(ws);
    let var = format!("BLAZE_RULES:{rules}");
    let after = WranglerDev::start_with_state_and_vars(server.state().to_path_buf(), &[&var]);
    let port = after.port;
    let alice = User::new(port, "alice");
    // What changed meanwhile, written under the new rules.
    let written = alice.merge(&format!("{coll}/a1"), json!({"n": 10})).await;
    assert_eq!(written.status, 200, "{}", written.body);

    let mut ws = alice.ws(coll).await;
    let resumed = ws
        .ask(json!({"type": "listen", "query": hers, "since": query_since}))
        .await;
    assert_ws_denied(&resumed, None, "resuming the query under the new rules");
    let resumed = ws
        .ask(json!({"type": "listen", "doc": format!("{coll}/a1"), "since": doc_since}))
        .await;
    assert_eq!(resumed["type"], "resumed", "{resumed}");
    let changes: &Value = &resumed["changes"];
    assert_eq!(
        changes[0]["patch"],
        json!([{"op": "replace", "path": "/n", "value": 10}]),
        "{resumed}"
    );
    ws.close().await;
    assert_denied(
        &alice.query(hers).await,
        None,
        "querying under the new rules",
    );
    assert_eq!(alice.get(&format!("{coll}/a2")).await.status, 200);
    drop(after);
    drop(server);
}
