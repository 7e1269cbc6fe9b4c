//! End-to-end tests of commit ids (protocol 8.7) against the real worker
//! under `wrangler dev`: a commit whose answer is lost to a cut connection is
//! retried with its commit id and applied exactly once, over raw WebSockets
//! and HTTP and through `blaze-client`. `scripts/build-worker.sh` must have
//! built the worker.
//!
//! One `wrangler dev` serves the whole binary (one test, one scenario per
//! collection), and is stopped when the test ends.

use std::time::Duration;

use blaze_client::{Blaze, ConnectOptions, DocumentSnapshot, ReconnectPolicy};
use blaze_tests::live::{self, e2e, http, Proxy, WranglerDev, Ws};
use serde_json::{json, Value};

/// The longest the test may take, start of `wrangler dev` included.
const TEST_LIMIT: Duration = Duration::from_secs(180);

/// How long the test waits for one listener event or one write.
const WAIT: Duration = Duration::from_secs(15);

/// How many `add /tags/-` writes the client makes through the cutting proxy.
const WRITES: u64 = 12;

#[test]
fn commits_cut_off_from_their_answers_are_applied_once() {
    let Some(_serial) = e2e() else { return };
    live::run(TEST_LIMIT, async {
        let server = WranglerDev::start("commit-retry");
        raw_retries_answer_the_original_outcome(server.port).await;
        client_retries_after_lost_answers_apply_each_write_once(&server).await;
    });
}

/// A `patch` appending `value` to the document's `tags`: applied twice, it appends twice.
fn push(value: Value) -> Value {
    json!([{"op": "add", "path": "/tags/-", "value": value}])
}

/// The next frame of `ws` of type `kind`, panicking on anything else.
async fn expect(ws: &mut Ws, kind: &str) -> Value {
    let frame = ws.recv().await;
    assert_eq!(frame["type"], kind, "{frame}");
    frame
}

/// Raw protocol: a commit with a commit id, its connection closed before the
/// answer is read; the same frame on a new connection and the same body over
/// HTTP get the original answer, and a listener hears of the commit once.
async fn raw_retries_answer_the_original_outcome(port: u16) {
    const COLLECTION: &str = "retry_raw";
    let created = http(
        port,
        "PUT",
        &format!("/v1/docs/{COLLECTION}/d"),
        &[],
        r#"{"tags":[]}"#,
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.body);

    let mut watcher = Ws::open(port, COLLECTION).await;
    watcher
        .send_json(&json!({"type": "listen", "rid": 1, "query": {"collection": COLLECTION}}))
        .await;
    let snapshot = expect(&mut watcher, "snapshot").await;
    assert_eq!(snapshot["seq"], 1, "{snapshot}");

    let commit = json!({"type": "commit", "rid": 1, "collection": COLLECTION,
        "commit_id": "raw-retry-1", "writes": [{"op": "patch", "id": "d", "patch": push(json!("a"))}]});
    let mut lost = Ws::open(port, COLLECTION).await;
    lost.send_json(&commit).await;
    lost.close().await;

    // The client cannot know whether that commit was applied: it retries.
    let mut retry = Ws::open(port, COLLECTION).await;
    retry.send_json(&commit).await;
    let answer = expect(&mut retry, "committed").await;
    assert_eq!(answer["rid"], 1);
    assert_eq!(
        answer["seq"], 2,
        "the commit is the collection's second: {answer}"
    );
    assert_eq!(answer["writes"], json!([{"id": "d", "exists": true}]));
    retry.send_json(&commit).await;
    assert_eq!(expect(&mut retry, "committed").await, answer);

    let body = json!({"collection": COLLECTION, "commit_id": "raw-retry-1",
        "writes": commit["writes"]});
    let over_http = http(port, "POST", "/v1/commit", &[], &body.to_string()).await;
    assert_eq!(over_http.status, 200, "{}", over_http.body);
    let mut want = answer.clone();
    let fields = want.as_object_mut().expect("an object");
    fields.remove("type");
    fields.remove("rid");
    assert_eq!(over_http.json(), want, "HTTP answers the original outcome");

    let read = http(port, "GET", &format!("/v1/docs/{COLLECTION}/d"), &[], "").await;
    assert_eq!(read.json()["data"], json!({"tags": ["a"]}), "applied once");
    assert_eq!(read.json()["version"], 2);

    // A later commit is the next event: the retries sent the listener nothing.
    let marker = json!({"type": "commit", "rid": 2, "collection": COLLECTION,
        "writes": [{"op": "set", "id": "marker", "data": {}}]});
    retry.send_json(&marker).await;
    assert_eq!(expect(&mut retry, "committed").await["seq"], 3);
    let seqs = [
        expect(&mut watcher, "change").await["seq"].clone(),
        expect(&mut watcher, "change").await["seq"].clone(),
    ];
    assert_eq!(seqs, [json!(2), json!(3)], "one event per applied commit");

    // An invalid commit id is refused before anything is applied.
    let bad = json!({"type": "commit", "rid": 3, "collection": COLLECTION,
        "commit_id": "not valid", "writes": [{"op": "patch", "id": "d", "patch": push(json!("b"))}]});
    retry.send_json(&bad).await;
    let error = expect(&mut retry, "error").await;
    assert_eq!(
        (&error["rid"], &error["error"]["code"]),
        (&json!(3), &json!("invalid_frame"))
    );
    watcher.close().await;
    retry.close().await;
}

/// Client options: quick reconnects, and a request timeout that outlasts them.
fn options() -> ConnectOptions {
    ConnectOptions {
        request_timeout: Duration::from_secs(10),
        reconnect: ReconnectPolicy {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(200),
        },
        ..ConnectOptions::default()
    }
}

/// `blaze-client` appends to one document's array through a proxy that loses
/// every other answer and cuts the connection; the client retries with the
/// commit's id. The array ends with each element once, and a listener on
/// another connection sees each commit once.
async fn client_retries_after_lost_answers_apply_each_write_once(server: &WranglerDev) {
    let proxy = Proxy::start(server.port).await;
    let writer = Blaze::connect_with(&proxy.url(), options())
        .await
        .expect("the client accepts the URL");
    let reader = Blaze::connect_with(&server.url(), options())
        .await
        .expect("the client accepts the URL");
    let doc = writer.doc("retry_client/d");
    let first = doc.set(&json!({"tags": []})).await.expect("created").seq;
    let mut listener = reader.doc("retry_client/d").listen();
    let mut seen = vec![next(&mut listener).await];

    let mut seqs = Vec::new();
    for i in 0..WRITES {
        if i % 2 == 0 {
            proxy.drop_next_answer();
        }
        let write = doc.patch(push(json!(i)).as_array().expect("ops").clone());
        let result = tokio::time::timeout(WAIT, write)
            .await
            .unwrap_or_else(|_| panic!("write {i}: no answer within {WAIT:?}"))
            .unwrap_or_else(|e| panic!("write {i}: {e}"));
        seqs.push(result.seq);
    }
    assert_eq!(
        proxy.answers_dropped() as u64,
        WRITES / 2,
        "every other answer was lost"
    );
    let want_seqs: Vec<u64> = (first + 1..=first + WRITES).collect();
    assert_eq!(seqs, want_seqs, "one sequence number per write");

    let tags: Vec<Value> = (0..WRITES).map(|i| json!(i)).collect();
    let stored = doc.get::<Value>().await.expect("read");
    assert_eq!(
        stored.data,
        Some(json!({ "tags": tags })),
        "each write once"
    );

    while seen.last().and_then(|s| s.version) != Some(first + WRITES) {
        seen.push(next(&mut listener).await);
    }
    let versions: Vec<Option<u64>> = seen.iter().map(|s| s.version).collect();
    let want: Vec<Option<u64>> = (first..=first + WRITES).map(Some).collect();
    assert_eq!(versions, want, "the listener saw each commit once");
    for (n, snapshot) in seen.iter().enumerate() {
        let data = snapshot.data.as_ref().expect("the document exists");
        assert_eq!(data["tags"], json!(tags[..n]), "event {n}");
    }
}

/// The listener's next snapshot.
async fn next(listener: &mut blaze_client::Listener<DocumentSnapshot>) -> DocumentSnapshot {
    tokio::time::timeout(WAIT, listener.next_snapshot())
        .await
        .unwrap_or_else(|_| panic!("no listener event within {WAIT:?}"))
        .expect("the listener is open")
        .expect("the listener is fine")
}
