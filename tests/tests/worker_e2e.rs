//! End-to-end tests: the real worker under `wrangler dev` (the real workerd
//! runtime, SQLite-backed Durable Objects), driven over real HTTP and
//! WebSockets. `scripts/test.sh` builds the worker first.
//!
//! Each test starts its own `wrangler dev` on a free port with its own state
//! directory, and kills its process group when done. They run one at a time.

use std::time::Duration;

use blaze_tests::live::{self, apply_changes, e2e, http, Answer, WranglerDev, Ws};
use serde_json::{json, Value};

/// A bad HTTP request: method, path, headers, body, and the status and code it must get.
type HttpCase = (
    &'static str,
    String,
    Vec<(&'static str, &'static str)>,
    String,
    u16,
    &'static str,
);

/// The longest any one test may take, start of `wrangler dev` included.
const TEST_LIMIT: Duration = Duration::from_secs(300);

/// Runs a test body within [`TEST_LIMIT`].
fn run(body: impl std::future::Future<Output = ()> + Send + 'static) {
    live::run(TEST_LIMIT, body)
}

async fn put(port: u16, path: &str, body: Value) -> Answer {
    http(
        port,
        "PUT",
        &format!("/v1/docs/{path}"),
        &[],
        &body.to_string(),
    )
    .await
}

async fn get(port: u16, path: &str) -> Answer {
    http(port, "GET", &format!("/v1/docs/{path}"), &[], "").await
}

async fn post(port: u16, route: &str, body: Value) -> Answer {
    http(port, "POST", route, &[], &body.to_string()).await
}

#[test]
fn http_crud_preconditions_batches_and_cors() {
    let Some(_serial) = e2e() else { return };
    run(async {
        let server = WranglerDev::start("http");
        let port = server.port;

        let health = http(port, "GET", "/v1/health", &[], "").await;
        assert_eq!((health.status, health.json()), (200, json!({"ok": true})));

        let created = put(port, "rooms/r1", json!({"name": "lobby", "n": 1})).await;
        assert_eq!(created.status, 200, "{}", created.body);
        assert_eq!(created.header("etag"), Some("\"1\""));
        assert_eq!(created.header("access-control-allow-origin"), Some("*"));
        let read = get(port, "rooms/r1").await;
        assert_eq!(read.json()["data"], json!({"name": "lobby", "n": 1}));
        assert_eq!(read.header("etag"), Some("\"1\""));

        let merge = [
            ("Content-Type", "application/merge-patch+json"),
            ("If-Match", "\"1\""),
        ];
        let merged = http(
            port,
            "PATCH",
            "/v1/docs/rooms/r1",
            &merge,
            r#"{"n":2,"name":null}"#,
        )
        .await;
        assert_eq!((merged.status, merged.header("etag")), (200, Some("\"2\"")));
        let stale = http(port, "PATCH", "/v1/docs/rooms/r1", &merge, r#"{"n":3}"#).await;
        assert_eq!(
            (stale.status, stale.code().as_deref()),
            (412, Some("precondition_failed"))
        );
        let json_patch = [("Content-Type", "application/json-patch+json")];
        let patched = http(
            port,
            "PATCH",
            "/v1/docs/rooms/r1",
            &json_patch,
            r#"[{"op":"add","path":"/tags","value":["x"]}]"#,
        )
        .await;
        assert_eq!(patched.status, 200, "{}", patched.body);
        assert_eq!(
            get(port, "rooms/r1").await.json()["data"],
            json!({"n": 2, "tags": ["x"]})
        );
        let create_again = http(
            port,
            "PUT",
            "/v1/docs/rooms/r1",
            &[("If-None-Match", "*")],
            "{}",
        )
        .await;
        assert_eq!(
            (create_again.status, create_again.code().as_deref()),
            (409, Some("already_exists"))
        );

        // An atomic batch: all or nothing.
        let bad_batch = json!({"collection": "rooms", "writes": [
        {"op": "set", "id": "r2", "data": {"n": 9}},
        {"op": "patch", "id": "r1", "patch": [{"op": "test", "path": "/n", "value": 99}]}]});
        let refused = post(port, "/v1/commit", bad_batch).await;
        assert_eq!(
            (
                refused.status,
                refused.json()["error"]["write_index"].clone()
            ),
            (409, json!(1))
        );
        assert_eq!(
            get(port, "rooms/r2").await.status,
            404,
            "no write of a failed batch lands"
        );
        let good_batch = json!({"collection": "rooms", "writes": [
        {"op": "set", "id": "r2", "data": {"n": 9}}, {"op": "delete", "id": "r1"}]});
        let committed = post(port, "/v1/commit", good_batch).await;
        assert_eq!(
            (committed.status, committed.json()["seq"].clone()),
            (200, json!(4))
        );
        let count = post(port, "/v1/count", json!({"collection": "rooms"})).await;
        assert_eq!(count.json(), json!({"seq": 4, "count": 1}));
        let query = post(
            port,
            "/v1/query",
            json!({"collection": "rooms", "where": {"field": "n", "op": ">", "value": 5}}),
        )
        .await;
        assert_eq!(query.json()["docs"][0]["path"], "rooms/r2");

        let deleted = http(
            port,
            "DELETE",
            "/v1/docs/rooms/r2",
            &[("If-Match", "*")],
            "",
        )
        .await;
        assert_eq!((deleted.status, deleted.header("etag")), (200, None));
        assert_eq!(
            get(port, "rooms/r2").await.code().as_deref(),
            Some("not_found")
        );

        let preflight = http(port, "OPTIONS", "/v1/docs/rooms/r1", &[], "").await;
        assert_eq!(preflight.status, 204);
        assert!(preflight
            .header("access-control-allow-methods")
            .is_some_and(|m| m.contains("PATCH")));
        let wrong_method = http(port, "POST", "/v1/docs/rooms/r1", &[], "{}").await;
        assert_eq!(
            (wrong_method.status, wrong_method.header("allow")),
            (405, Some("GET, PUT, PATCH, DELETE, OPTIONS"))
        );
        assert_eq!(http(port, "GET", "/v1/nope", &[], "").await.status, 404);
        // Subcollections are their own objects.
        assert_eq!(
            put(port, "rooms/r1/messages/m1", json!({"t": "hi"}))
                .await
                .json()["seq"],
            json!(1)
        );
    });
}

#[test]
fn websocket_requests_and_listeners_across_connections() {
    let Some(_serial) = e2e() else { return };
    run(async {
        let server = WranglerDev::start("ws");
        let port = server.port;
        let mut writer = Ws::open(port, "todos").await;
        let mut watcher = Ws::open(port, "todos").await;
        let mut skipped = Vec::new();

        let query = json!({"collection": "todos", "where": {"field": "done", "op": "==", "value": false}, "order_by": [{"field": "rank"}]});
        let snap = watcher
            .request(json!({"type": "listen", "query": query}), &mut skipped)
            .await;
        assert_eq!(
            (snap["type"].clone(), snap["docs"].clone()),
            (json!("snapshot"), json!([]))
        );
        let doc_snap = watcher
            .request(json!({"type": "listen", "doc": "todos/a"}), &mut skipped)
            .await;
        assert_eq!(doc_snap["type"], "snapshot");
        let (query_target, doc_target) = (snap["target"].clone(), doc_snap["target"].clone());
        let mut view: Vec<Value> = Vec::new();
        let mut doc_view: Vec<Value> = Vec::new();

        let commit =
            |writes: Value| json!({"type": "commit", "collection": "todos", "writes": writes});
        let steps = [
            commit(
                json!([{"op": "set", "id": "a", "data": {"title": "milk", "done": false, "rank": 2}},
                      {"op": "set", "id": "b", "data": {"title": "eggs", "done": false, "rank": 1}}]),
            ),
            commit(json!([{"op": "merge", "id": "a", "patch": {"rank": 0}}])),
            commit(json!([{"op": "merge", "id": "b", "patch": {"done": true}}])),
            commit(json!([{"op": "delete", "id": "a"}])),
        ];
        for (i, step) in steps.into_iter().enumerate() {
            let ack = writer.request(step, &mut skipped).await;
            assert_eq!(ack["type"], "committed", "{ack}");
            let seq = ack["seq"].clone();
            assert_eq!(seq, json!(i + 1));
            // The other connection gets each change, for each target it follows.
            let mut targets_seen = Vec::new();
            while let Some(change) = watcher.try_recv(Duration::from_millis(500)).await {
                assert_eq!(
                    (change["type"].clone(), change["seq"].clone()),
                    (json!("change"), seq.clone())
                );
                if change["target"] == query_target {
                    apply_changes(&mut view, &change["changes"]);
                } else {
                    assert_eq!(change["target"], doc_target);
                    apply_changes(&mut doc_view, &change["changes"]);
                }
                targets_seen.push(change["target"].clone());
            }
            let now = writer
                .request(json!({"type": "query", "query": query}), &mut skipped)
                .await;
            assert_eq!(Value::Array(view.clone()), now["docs"], "after step {i}");
            let doc_now = writer
                .request(json!({"type": "get", "path": "todos/a"}), &mut skipped)
                .await;
            let want_doc: Vec<Value> = if doc_now["doc"]["exists"] == json!(true) {
                vec![doc_now["doc"].clone()]
            } else {
                vec![]
            };
            assert_eq!(doc_view, want_doc, "document listener after step {i}");
            assert!(
                !targets_seen.is_empty(),
                "step {i} changed what the watcher follows"
            );
        }
        // HTTP writes reach WebSocket listeners too.
        put(
            port,
            "todos/c",
            json!({"title": "jam", "done": false, "rank": 5}),
        )
        .await;
        let change = watcher.recv().await;
        assert_eq!(
            (change["type"].clone(), change["changes"][0]["type"].clone()),
            (json!("change"), json!("added"))
        );

        // Reads and errors on the connection.
        let count = writer
            .request(
                json!({"type": "count", "query": {"collection": "todos"}}),
                &mut skipped,
            )
            .await;
        assert_eq!(count["count"], json!(2));
        let wrong = writer
            .request(json!({"type": "get", "path": "users/u1"}), &mut skipped)
            .await;
        assert_eq!(wrong["error"]["code"], "wrong_collection");
        let unlisten = watcher
            .request(json!({"type": "unlisten", "listener": 1}), &mut skipped)
            .await;
        assert_eq!(unlisten["type"], "unlistened");
        assert!(
            skipped.iter().all(|f| f["type"] == "change"),
            "only change frames interleave: {skipped:?}"
        );
        writer.close().await;
        watcher.close().await;
    });
}

/// Every class of bad input: an error with its code, the data untouched, the connection open.
#[test]
fn bad_input_gets_its_code_and_changes_nothing() {
    let Some(_serial) = e2e() else { return };
    run(async {
        let server = WranglerDev::start("bad");
        let port = server.port;
        put(port, "c/d", json!({"n": 1})).await;
        let before = get(port, "c/d").await.body;

        let deep = |levels: usize| {
            let mut v = json!(1);
            for _ in 0..levels {
                v = json!({"a": v});
            }
            v
        };
        let big = "x".repeat(4 * 1024 * 1024 + 1);
        let http_cases: Vec<HttpCase> = vec![
            (
                "PUT",
                "/v1/docs/c/d".into(),
                vec![],
                "{not json".into(),
                400,
                "invalid_frame",
            ),
            (
                "PUT",
                "/v1/docs/c/d".into(),
                vec![],
                "[1,2]".into(),
                400,
                "invalid_document",
            ),
            (
                "PUT",
                "/v1/docs/c/d".into(),
                vec![],
                format!("\"{big}\""),
                413,
                "frame_too_large",
            ),
            (
                "PUT",
                "/v1/docs/c/d".into(),
                vec![],
                deep(70).to_string(),
                400,
                "frame_too_deep",
            ),
            (
                "PUT",
                "/v1/docs/c/d".into(),
                vec![],
                deep(40).to_string(),
                400,
                "document_too_deep",
            ),
            (
                "PUT",
                "/v1/docs/c/d".into(),
                vec![],
                json!({"s": "y".repeat(1024 * 1024)}).to_string(),
                413,
                "document_too_large",
            ),
            (
                "PUT",
                "/v1/docs/c/..".into(),
                vec![],
                "{}".into(),
                400,
                "invalid_path",
            ),
            (
                "GET",
                "/v1/docs/c".into(),
                vec![],
                String::new(),
                400,
                "invalid_path",
            ),
            (
                "PATCH",
                "/v1/docs/c/d".into(),
                vec![("Content-Type", "application/json-patch+json")],
                r#"[{"op":"jump","path":"/n"}]"#.into(),
                400,
                "invalid_patch",
            ),
            (
                "PATCH",
                "/v1/docs/c/d".into(),
                vec![("Content-Type", "application/json-patch+json")],
                r#"[{"op":"remove","path":"/zz"}]"#.into(),
                422,
                "patch_path_not_found",
            ),
            (
                "PATCH",
                "/v1/docs/c/d".into(),
                vec![("Content-Type", "text/plain")],
                "{}".into(),
                415,
                "unsupported_media_type",
            ),
            (
                "POST",
                "/v1/commit".into(),
                vec![],
                r#"{"collection":"c","writes":[{"op":"fly","id":"d"}]}"#.into(),
                400,
                "invalid_frame",
            ),
            (
                "POST",
                "/v1/query".into(),
                vec![],
                r#"{"collection":"c","where":{"and":[]}}"#.into(),
                400,
                "invalid_query",
            ),
        ];
        for (method, path, headers, body, status, code) in &http_cases {
            let answer = http(port, method, path, headers, body).await;
            assert_eq!(
                (answer.status, answer.code().as_deref()),
                (*status, Some(*code)),
                "{method} {path}"
            );
        }
        assert_eq!(
            get(port, "c/d").await.body,
            before,
            "HTTP errors changed nothing"
        );

        let mut ws = Ws::open(port, "c").await;
        let ws_cases: Vec<(String, &str)> = vec![
        ("{not json".into(), "invalid_frame"),
        (r#"{"type":"teleport","rid":1}"#.into(), "unknown_message_type"),
        (r#"{"type":"get","rid":2,"path":"c/.."}"#.into(), "invalid_path"),
        (format!(r#"{{"type":"get","rid":3,"path":"{big}"}}"#), "frame_too_large"),
        (json!({"type": "commit", "rid": 4, "collection": "c", "writes": [{"op": "set", "id": "d", "data": deep(70)}]}).to_string(), "frame_too_deep"),
        (json!({"type": "commit", "rid": 5, "collection": "c", "writes": [{"op": "set", "id": "d", "data": deep(40)}]}).to_string(), "document_too_deep"),
        (json!({"type": "commit", "rid": 6, "collection": "c", "writes": [{"op": "patch", "id": "d", "patch": {"op": "x"}}]}).to_string(), "invalid_patch"),
        (json!({"type": "commit", "rid": 7, "collection": "c", "writes": [{"op": "create", "id": "d", "data": {}}]}).to_string(), "already_exists"),
        (json!({"type": "listen", "rid": 8}).to_string(), "invalid_frame"),
        (json!({"type": "hello", "protocol": 1}).to_string(), "invalid_frame"),
    ];
        for (frame, code) in &ws_cases {
            ws.send_text(frame).await;
            let label = &frame[..frame.len().min(80)];
            let answer = ws
                .try_recv(Duration::from_secs(10))
                .await
                .unwrap_or_else(|| panic!("no answer to {label}"));
            assert_eq!(
                answer["error"]["code"],
                json!(code),
                "{}",
                &frame[..frame.len().min(80)]
            );
        }
        ws.send_binary(b"\x00\x01").await;
        assert_eq!(ws.recv().await["error"]["code"], "invalid_frame");
        let mut skipped = Vec::new();
        let still_open = ws
            .request(json!({"type": "get", "path": "c/d"}), &mut skipped)
            .await;
        assert_eq!(
            still_open["doc"]["data"],
            json!({"n": 1}),
            "the connection survives, the data is untouched"
        );
        assert_eq!(get(port, "c/d").await.body, before);

        let mut rude = Ws::raw(port, "c").await;
        rude.send_text(r#"{"type":"get","rid":1,"path":"c/d"}"#)
            .await;
        assert_eq!(rude.recv().await["error"]["code"], "handshake_required");
        assert!(
            server.log_text().contains(r#""code":"invalid_frame""#),
            "errors are logged with their code"
        );
    });
}

/// Two connections each send a burst without waiting (the object handles
/// frames that arrive together as one group, in one durable transaction):
/// every frame is answered in order, a failing commit changes nothing while
/// its neighbours land, reads see the writes sent before them, and a listener
/// gets each landed commit once, in sequence order.
#[test]
fn pipelined_bursts_answer_in_order_and_each_commit_stands_alone() {
    let Some(_serial) = e2e() else { return };
    run(async {
        let server = WranglerDev::start("burst");
        let port = server.port;
        let mut listener = Ws::open(port, "burst").await;
        let mut skipped = Vec::new();
        let snap = listener
            .request(
                json!({"type": "listen", "query": {"collection": "burst"}}),
                &mut skipped,
            )
            .await;
        assert_eq!(snap["docs"], json!([]));
        let mut a = Ws::open(port, "burst").await;
        let mut b = Ws::open(port, "burst").await;
        let create = |rid: u64, id: String| json!({"type": "commit", "rid": rid, "collection": "burst", "writes": [{"op": "create", "id": id, "data": {"rid": rid}}]});
        // On `a`, rid r does, by r % 4: 0 create a{r}; 1 create a{r-1} again
        // (already_exists); 2 get a{r-2}, written two frames before; 3 a bad frame.
        const ROUNDS: u64 = 30;
        for r in 0..ROUNDS * 4 {
            let frame = match r % 4 {
                0 => create(r, format!("a{r}")),
                1 => create(r, format!("a{}", r - 1)),
                2 => json!({"type": "get", "rid": r, "path": format!("burst/a{}", r - 2)}),
                _ => {
                    json!({"type": "commit", "rid": r, "collection": "burst", "writes": [{"op": "teleport", "id": "x"}]})
                }
            };
            a.send_json(&frame).await;
            b.send_json(&create(r, format!("b{r}"))).await;
        }
        let mut landed = Vec::new();
        for r in 0..ROUNDS * 4 {
            let got = a.recv().await;
            assert_eq!(got["rid"], json!(r), "answers come in request order: {got}");
            match r % 4 {
                0 => {
                    assert_eq!(got["type"], "committed", "{got}");
                    landed.push((format!("a{r}"), got["seq"].as_u64().unwrap()));
                }
                1 => assert_eq!(got["error"]["code"], "already_exists", "{got}"),
                2 => assert_eq!(
                    (got["type"].clone(), got["doc"]["data"].clone()),
                    (json!("doc"), json!({"rid": r - 2})),
                    "a read sees the write sent before it"
                ),
                _ => assert_eq!(got["type"], "error", "{got}"),
            }
            let got = b.recv().await;
            assert_eq!(
                (got["rid"].clone(), got["type"].clone()),
                (json!(r), json!("committed")),
                "{got}"
            );
            landed.push((format!("b{r}"), got["seq"].as_u64().unwrap()));
        }
        landed.sort_by_key(|(_, seq)| *seq);
        let seqs: Vec<u64> = landed.iter().map(|(_, s)| *s).collect();
        assert_eq!(
            seqs,
            (1..=landed.len() as u64).collect::<Vec<_>>(),
            "one sequence number per landed commit, no gaps"
        );
        // The listener sees each landed commit once, in order, and ends with exactly the stored state.
        let mut view: Vec<Value> = Vec::new();
        let mut seen = Vec::new();
        while seen.len() < landed.len() {
            let change = listener.recv().await;
            assert_eq!(change["type"], "change", "{change}");
            seen.push(change["seq"].as_u64().unwrap());
            apply_changes(&mut view, &change["changes"]);
        }
        assert_eq!(seen, seqs);
        let all = post(port, "/v1/query", json!({"collection": "burst"}))
            .await
            .json();
        assert_eq!(Value::Array(view), all["docs"]);
        let mut stored: Vec<String> = all["docs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["path"].as_str().unwrap()["burst/".len()..].to_owned())
            .collect();
        let mut expected: Vec<String> = landed.into_iter().map(|(id, _)| id).collect();
        stored.sort();
        expected.sort();
        assert_eq!(
            stored, expected,
            "exactly the acknowledged commits are stored"
        );
    });
}

#[test]
fn sigkill_loses_no_acknowledged_write() {
    let Some(_serial) = e2e() else { return };
    run(async {
        let mut server = WranglerDev::start("kill");
        // A listener that sees the start of the stream, then loses the server.
        let mut listener = Ws::open(server.port, "log").await;
        let mut skipped = Vec::new();
        let snap = listener
            .request(
                json!({"type": "listen", "query": {"collection": "log"}}),
                &mut skipped,
            )
            .await;
        let mut view: Vec<Value> = snap["docs"].as_array().unwrap().clone();
        let mut seen = snap["seq"].as_u64().unwrap();
        let mut ws = Ws::open(server.port, "log").await;
        const SENT: u64 = 400;
        for i in 1..=SENT {
            let frame = json!({"type": "commit", "rid": i, "collection": "log", "writes": [{"op": "create", "id": format!("w{i:04}"), "data": {"i": i}}]});
            ws.send_json(&frame).await;
        }
        let mut acked = Vec::new();
        while acked.len() < 100 {
            let ack = ws.recv().await;
            assert_eq!(ack["type"], "committed", "{ack}");
            acked.push((
                ack["writes"][0]["id"].as_str().unwrap().to_owned(),
                ack["seq"].as_u64().unwrap(),
            ));
        }
        while seen < 50 {
            let change = listener.recv().await;
            apply_changes(&mut view, &change["changes"]);
            seen = change["seq"].as_u64().unwrap();
        }
        server.kill();
        drop(ws);
        drop(listener);
        let state = server.state().to_path_buf();
        let restarted = WranglerDev::start_with_state(state);
        let all = post(restarted.port, "/v1/query", json!({"collection": "log"}))
            .await
            .json();
        let stored: Vec<(String, u64)> = all["docs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                (
                    d["path"].as_str().unwrap()["log/".len()..].to_owned(),
                    d["version"].as_u64().unwrap(),
                )
            })
            .collect();
        for (id, seq) in &acked {
            assert!(
                stored.contains(&(id.clone(), *seq)),
                "acknowledged {id}@{seq} was lost"
            );
        }
        // What survived is a prefix of the commits: no holes.
        let seqs: Vec<u64> = stored.iter().map(|(_, s)| *s).collect();
        assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
        assert_eq!(all["seq"].as_u64(), Some(seqs.len() as u64));
        // The listener resumes on the restarted server and ends with exactly its state.
        let mut again = Ws::open(restarted.port, "log").await;
        let resumed = again
            .request(
                json!({"type": "listen", "query": {"collection": "log"}, "since": seen}),
                &mut skipped,
            )
            .await;
        assert_eq!(resumed["type"], "resumed", "{resumed}");
        apply_changes(&mut view, &resumed["changes"]);
        assert_eq!(
            Value::Array(view),
            all["docs"],
            "resumed view equals the stored state"
        );
        println!(
            "{} acknowledged before SIGKILL, {} stored after restart, {SENT} sent",
            acked.len(),
            seqs.len()
        );
    });
}

#[test]
fn a_dropped_listener_resumes_and_misses_nothing() {
    let Some(_serial) = e2e() else { return };
    run(async {
        let server = WranglerDev::start("resume");
        let port = server.port;
        let mut writer = Ws::open(port, "feed").await;
        let mut skipped = Vec::new();
        let write = |id: &str, data: Value| json!({"type": "commit", "collection": "feed", "writes": [{"op": "set", "id": id, "data": data}]});
        for i in 0..5 {
            writer
                .request(
                    write(&format!("p{i}"), json!({"ts": i, "text": "hello"})),
                    &mut skipped,
                )
                .await;
        }
        let query = json!({"collection": "feed", "order_by": [{"field": "ts", "direction": "desc"}], "limit": 3});
        let mut listener = Ws::open(port, "feed").await;
        let snap = listener
            .request(json!({"type": "listen", "query": query}), &mut skipped)
            .await;
        let mut view: Vec<Value> = snap["docs"].as_array().unwrap().clone();
        let mut seq = snap["seq"].as_u64().unwrap();
        writer
            .request(write("p9", json!({"ts": 9})), &mut skipped)
            .await;
        let change = listener.recv().await;
        apply_changes(&mut view, &change["changes"]);
        seq = seq.max(change["seq"].as_u64().unwrap());
        drop(listener); // the connection drops without a goodbye

        // Missed while away: a move, a delete, an insert into the window, a write outside it.
        writer
            .request(write("p0", json!({"ts": 20})), &mut skipped)
            .await;
        writer.request(json!({"type": "commit", "collection": "feed", "writes": [{"op": "delete", "id": "p9"}]}), &mut skipped).await;
        writer
            .request(write("p7", json!({"ts": 7})), &mut skipped)
            .await;
        writer
            .request(
                write("p1", json!({"ts": 1, "text": "edited"})),
                &mut skipped,
            )
            .await;

        let mut again = Ws::open(port, "feed").await;
        let resumed = again
            .request(
                json!({"type": "listen", "query": query, "since": seq}),
                &mut skipped,
            )
            .await;
        assert_eq!(resumed["type"], "resumed", "{resumed}");
        apply_changes(&mut view, &resumed["changes"]);
        let now = writer
            .request(json!({"type": "query", "query": query}), &mut skipped)
            .await;
        assert_eq!(
            Value::Array(view.clone()),
            now["docs"],
            "the resumed view equals the server's"
        );
        assert!(resumed["seq"].as_u64() > Some(seq));
        writer
            .request(write("p8", json!({"ts": 8})), &mut skipped)
            .await;
        let live = again.recv().await;
        assert!(
            live["seq"].as_u64() > resumed["seq"].as_u64(),
            "no duplicate after resuming"
        );
        apply_changes(&mut view, &live["changes"]);
        let now = writer
            .request(json!({"type": "query", "query": query}), &mut skipped)
            .await;
        assert_eq!(Value::Array(view), now["docs"]);
    });
}

/// With a change log of three commits, a listener that missed at most three
/// resumes with the changes; one that missed more gets a reset and a fresh snapshot.
#[test]
fn resume_resets_when_the_log_no_longer_reaches_back() {
    let Some(_serial) = e2e() else { return };
    run(async {
        let server = WranglerDev::start_with_vars("trim", &["BLAZE_LOG_MAX_ENTRIES:3"]);
        let port = server.port;
        let mut ws = Ws::open(port, "t").await;
        let mut skipped = Vec::new();
        let set = |n: u64| json!({"type": "commit", "collection": "t", "writes": [{"op": "set", "id": "a", "data": {"n": n}}]});
        for n in 1..=6 {
            let ack = ws.request(set(n), &mut skipped).await;
            assert_eq!(ack["seq"], json!(n));
        }
        let listen = |since: u64| json!({"type": "listen", "doc": "t/a", "since": since});
        let near = ws.request(listen(3), &mut skipped).await;
        assert_eq!(
            near["type"], "resumed",
            "3 commits back is within the log: {near}"
        );
        assert_eq!(
            near["changes"][0]["patch"],
            json!([{"op": "replace", "path": "/n", "value": 6}])
        );
        let far = ws.request(listen(2), &mut skipped).await;
        assert_eq!(
            (far["type"].clone(), far["reset"].clone()),
            (json!("snapshot"), json!(true)),
            "{far}"
        );
        assert_eq!(far["docs"][0]["data"], json!({"n": 6}));
    });
}
