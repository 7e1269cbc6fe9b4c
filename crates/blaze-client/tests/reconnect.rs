//! The client against a scripted fake server over real loopback WebSockets:
//! reconnect with backoff, re-authentication, resume from the last seq, reset,
//! what happens to requests in flight (commits are re-sent with their
//! commit id), credentials (in-band refresh, close 4001, refusals), and a
//! server that breaks the protocol on every connection. The only waits are
//! the client's own timers (backoff) and the frames themselves.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use blaze_client::{
    Blaze, ChangeKind, ConnectOptions, ConnectionState, Credentials, Error, ListenEvent,
    QuerySnapshot, ReconnectPolicy,
};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

type Ws = WebSocketStream<TcpStream>;

/// Every wait in these tests is bounded, so a broken client fails instead of hanging.
const BOUND: Duration = Duration::from_secs(10);

async fn accept(listener: &TcpListener) -> Ws {
    let (tcp, _) = tokio::time::timeout(BOUND, listener.accept())
        .await
        .expect("client connects")
        .unwrap();
    tokio_tungstenite::accept_async(tcp).await.unwrap()
}

async fn expect(ws: &mut Ws) -> Value {
    loop {
        match tokio::time::timeout(BOUND, ws.next())
            .await
            .expect("client sends a frame")
        {
            Some(Ok(Message::Text(text))) => return serde_json::from_str(&text).unwrap(),
            Some(Ok(_)) => continue,
            other => panic!("expected a frame, got {other:?}"),
        }
    }
}

async fn send(ws: &mut Ws, frame: Value) {
    ws.send(Message::text(frame.to_string())).await.unwrap();
}

/// Accepts a connection and completes the handshake, checking the credential.
async fn handshake(listener: &TcpListener) -> Ws {
    let mut ws = accept(listener).await;
    assert_eq!(
        expect(&mut ws).await,
        json!({"type": "hello", "protocol": 1, "auth": "secret", "held_docs": true})
    );
    send(
        &mut ws,
        json!({"type": "welcome", "protocol": 1, "limits": blaze_protocol_limits()}),
    )
    .await;
    ws
}

fn blaze_protocol_limits() -> Value {
    json!({"max_frame_bytes": 4194304, "max_frame_depth": 64, "max_document_bytes": 1048576,
           "max_document_depth": 32, "max_patch_ops": 500, "max_batch_writes": 500, "max_in_values": 30,
           "max_not_in_values": 10, "max_disjunctions": 30, "max_listeners": 1000,
           "max_unread_frames": 4096, "max_unread_bytes": 16777216})
}

fn doc(id: &str, n: u64) -> Value {
    json!({"path": format!("c/{id}"), "exists": true, "data": {"n": n}, "version": n, "create_time": 1, "update_time": n})
}

async fn client() -> (Blaze, TcpListener) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let options = ConnectOptions {
        credentials: Credentials::Fixed("secret".into()),
        reconnect: ReconnectPolicy {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(50),
        },
        ..ConnectOptions::default()
    };
    (Blaze::connect_with(&url, options).await.unwrap(), listener)
}

async fn next<S: blaze_client::FromResults>(
    listener: &mut blaze_client::Listener<S>,
) -> ListenEvent<S> {
    tokio::time::timeout(BOUND, listener.next())
        .await
        .expect("an event")
        .expect("stream open")
        .unwrap()
}

fn paths(snapshot: &QuerySnapshot) -> Vec<&str> {
    snapshot.docs.iter().map(|d| d.path.as_str()).collect()
}

fn snapshot(event: ListenEvent<QuerySnapshot>) -> QuerySnapshot {
    match event {
        ListenEvent::Snapshot(s) => s,
        other => panic!("expected a snapshot, got {other:?}"),
    }
}

#[tokio::test]
async fn a_listener_resumes_from_its_last_seq_after_the_server_drops_it() {
    let (db, server) = client().await;
    let mut listener = db.collection("c").listen();

    let mut ws = handshake(&server).await;
    let listen = expect(&mut ws).await;
    let rid = listen["rid"].clone();
    assert_eq!(
        listen,
        json!({"type": "listen", "rid": rid, "query": {"collection": "c"}})
    );
    send(
        &mut ws,
        json!({"type": "snapshot", "rid": rid, "target": 1, "seq": 3, "docs": [doc("a", 3)]}),
    )
    .await;
    send(&mut ws, json!({"type": "change", "target": 1, "seq": 4, "changes": [{"type": "added", "doc": doc("b", 4), "new_index": 1}]})).await;
    assert_eq!(paths(&snapshot(next(&mut listener).await)), ["c/a"]);
    let second = snapshot(next(&mut listener).await);
    assert_eq!((second.seq, paths(&second)), (4, vec!["c/a", "c/b"]));
    drop(ws);

    assert!(matches!(
        next(&mut listener).await,
        ListenEvent::State(ConnectionState::Offline { attempt: 1, .. })
    ));
    let mut ws = handshake(&server).await; // the client re-authenticates
    assert_eq!(
        expect(&mut ws).await,
        json!({"type": "listen", "rid": rid, "query": {"collection": "c"}, "since": 4})
    );
    send(
        &mut ws,
        json!({"type": "resumed", "rid": rid, "target": 2, "seq": 6, "changes": [
        {"type": "removed", "path": "c/a", "old_index": 0},
        {"type": "modified", "path": "c/b", "patch": [{"op": "replace", "path": "/n", "value": 6}],
         "version": 6, "create_time": 1, "update_time": 6, "old_index": 0, "new_index": 0}]}),
    )
    .await;
    assert_eq!(
        next(&mut listener).await,
        ListenEvent::State(ConnectionState::Online)
    );
    let resumed = snapshot(next(&mut listener).await);
    assert_eq!((resumed.seq, paths(&resumed)), (6, vec!["c/b"]));
    assert_eq!(resumed.docs[0].data, Some(json!({"n": 6})));
    let kinds: Vec<_> = resumed
        .changes()
        .iter()
        .map(|c| (c.kind, c.old_index, c.new_index))
        .collect();
    assert_eq!(
        kinds,
        [
            (ChangeKind::Removed, Some(0), None),
            (ChangeKind::Modified, Some(0), Some(0))
        ]
    );

    // The new connection's target number is the one that counts.
    send(&mut ws, json!({"type": "change", "target": 2, "seq": 7, "changes": [{"type": "removed", "path": "c/b", "old_index": 0}]})).await;
    assert_eq!(snapshot(next(&mut listener).await).seq, 7);

    drop(listener);
    let unlisten = expect(&mut ws).await;
    assert_eq!(
        (unlisten["type"].as_str(), &unlisten["listener"]),
        (Some("unlisten"), &rid)
    );
}

#[tokio::test]
async fn a_reset_replaces_the_results_and_reports_the_difference() {
    let (db, server) = client().await;
    let mut listener = db.collection("c").listen();
    let mut ws = handshake(&server).await;
    let rid = expect(&mut ws).await["rid"].clone();
    send(&mut ws, json!({"type": "snapshot", "rid": rid, "target": 1, "seq": 4, "docs": [doc("a", 3), doc("b", 4)]})).await;
    snapshot(next(&mut listener).await);
    ws.close(None).await.unwrap();

    assert!(matches!(
        next(&mut listener).await,
        ListenEvent::State(ConnectionState::Offline { .. })
    ));
    let mut ws = handshake(&server).await;
    assert_eq!(expect(&mut ws).await["since"], 4);
    send(&mut ws, json!({"type": "snapshot", "rid": rid, "target": 5, "seq": 90, "reset": true, "docs": [doc("b", 4), doc("c", 90)]})).await;
    assert_eq!(
        next(&mut listener).await,
        ListenEvent::State(ConnectionState::Online)
    );
    let reset = snapshot(next(&mut listener).await);
    assert!(reset.reset);
    assert_eq!((reset.seq, paths(&reset)), (90, vec!["c/b", "c/c"]));
    let kinds: Vec<_> = reset
        .changes()
        .iter()
        .map(|c| (c.kind, c.doc.path.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [(ChangeKind::Removed, "c/a"), (ChangeKind::Added, "c/c")],
        "b did not change"
    );
}

#[tokio::test]
async fn requests_in_flight_are_resent_and_a_commit_keeps_its_commit_id() {
    let (db, server) = client().await;
    let doc_ref = db.doc("c/a");
    let read = tokio::spawn({
        let doc_ref = doc_ref.clone();
        async move { doc_ref.get::<Value>().await }
    });
    let mut ws = handshake(&server).await;
    let get = expect(&mut ws).await;
    assert_eq!(get["type"], "get");
    let write = tokio::spawn({
        let doc_ref = doc_ref.clone();
        async move { doc_ref.set(&json!({"n": 1})).await }
    });
    let commit = expect(&mut ws).await;
    assert_eq!(commit["type"], "commit");
    // The fake server applies the commit and remembers its id, then the
    // connection drops before the answer goes out.
    let commit_id = commit["commit_id"]
        .as_str()
        .expect("a commit id")
        .to_owned();
    assert!(
        commit_id.len() >= 22
            && commit_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{commit_id}"
    );
    drop(ws);

    let mut ws = handshake(&server).await;
    assert_eq!(
        expect(&mut ws).await,
        get,
        "the read is sent again, with its rid"
    );
    let retry = expect(&mut ws).await;
    assert_eq!(
        retry, commit,
        "the commit is sent again, with its rid and commit id"
    );
    // A commit id it remembers: answered with the original outcome, not applied again.
    assert_eq!(retry["commit_id"], commit_id.as_str());
    send(
        &mut ws,
        json!({"type": "doc", "rid": get["rid"], "doc": doc("a", 2)}),
    )
    .await;
    send(
        &mut ws,
        json!({"type": "committed", "rid": retry["rid"], "seq": 2, "time": 1002, "writes": [{"id": "a", "exists": true}]}),
    )
    .await;
    let snapshot = tokio::time::timeout(BOUND, read)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        (snapshot.version, snapshot.data),
        (Some(2), Some(json!({"n": 2})))
    );
    let committed = tokio::time::timeout(BOUND, write)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!((committed.seq, committed.time), (2, 1002));

    let again = tokio::spawn(async move { doc_ref.set(&json!({"n": 3})).await });
    let next_commit = expect(&mut ws).await;
    assert_ne!(
        next_commit["commit_id"], commit["commit_id"],
        "a new commit has a new id"
    );
    send(
        &mut ws,
        json!({"type": "committed", "rid": next_commit["rid"], "seq": 3, "time": 1003, "writes": [{"id": "a", "exists": true}]}),
    )
    .await;
    let committed = tokio::time::timeout(BOUND, again).await.unwrap().unwrap();
    assert_eq!(committed.unwrap().seq, 3);
}

#[tokio::test]
async fn a_commit_unanswered_within_the_request_timeout_has_an_unknown_outcome_and_is_not_resent() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let options = ConnectOptions {
        credentials: Credentials::Fixed("secret".into()),
        request_timeout: Duration::from_millis(300),
        reconnect: ReconnectPolicy {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(50),
        },
        ..ConnectOptions::default()
    };
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let db = Blaze::connect_with(&url, options).await.unwrap();
    let write = tokio::spawn({
        let db = db.clone();
        async move { db.doc("c/a").set(&json!({"n": 1})).await }
    });
    let mut ws = handshake(&listener).await;
    assert_eq!(expect(&mut ws).await["type"], "commit");
    let outcome = tokio::time::timeout(BOUND, write).await.unwrap().unwrap();
    assert!(
        matches!(outcome, Err(Error::CommitOutcomeUnknown)),
        "{outcome:?}"
    );

    drop(ws);
    let read = tokio::spawn(async move { db.doc("c/b").get::<Value>().await });
    let mut ws = handshake(&listener).await;
    let get = expect(&mut ws).await;
    assert_eq!(
        (get["type"].as_str(), get["path"].as_str()),
        (Some("get"), Some("c/b")),
        "the abandoned commit is not sent again"
    );
    send(
        &mut ws,
        json!({"type": "doc", "rid": get["rid"], "doc": {"path": "c/b", "exists": false}}),
    )
    .await;
    let snapshot = tokio::time::timeout(BOUND, read).await.unwrap().unwrap();
    assert!(!snapshot.unwrap().exists());
}

#[tokio::test]
async fn a_server_that_is_down_is_retried_with_backoff_until_it_is_back() {
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let options = ConnectOptions {
        credentials: Credentials::Fixed("secret".into()),
        reconnect: ReconnectPolicy {
            initial: Duration::from_millis(5),
            max: Duration::from_millis(40),
        },
        ..ConnectOptions::default()
    };
    let db = Blaze::connect_with(&format!("http://127.0.0.1:{port}"), options)
        .await
        .unwrap();
    let mut listener = db.doc("c/a").listen();
    for want in 1..=3 {
        match next(&mut listener).await {
            ListenEvent::State(ConnectionState::Offline { attempt, .. }) => {
                assert_eq!(attempt, want)
            }
            other => panic!("expected offline, got {other:?}"),
        }
    }
    let server = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let mut ws = handshake(&server).await;
    let listen = expect(&mut ws).await;
    assert_eq!(listen["doc"], "c/a");
    assert!(
        listen.get("since").is_none(),
        "no snapshot yet, so nothing to resume from"
    );
    send(
        &mut ws,
        json!({"type": "snapshot", "rid": listen["rid"], "target": 1, "seq": 0, "docs": []}),
    )
    .await;
    loop {
        match next(&mut listener).await {
            ListenEvent::State(ConnectionState::Offline { .. }) => {}
            ListenEvent::State(ConnectionState::Online) => {}
            ListenEvent::Snapshot(doc) => {
                assert!(!doc.exists());
                assert_eq!(doc.path, "c/a");
                break;
            }
        }
    }
}

#[tokio::test]
async fn a_refused_listen_ends_the_stream_with_the_spec_code() {
    let (db, server) = client().await;
    let mut listener = db.collection("c").where_("n", ">", 1).listen();
    let mut ws = handshake(&server).await;
    let rid = expect(&mut ws).await["rid"].clone();
    send(&mut ws, json!({"type": "error", "rid": rid, "error": {"code": "too_many_listeners", "message": "full"}})).await;
    let error = tokio::time::timeout(BOUND, listener.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert_eq!(
        error.code(),
        Some(blaze_client::ErrorCode::TooManyListeners)
    );
    assert!(tokio::time::timeout(BOUND, listener.next())
        .await
        .unwrap()
        .is_none());
    let bad = db
        .collection("c")
        .where_("n", "~", 1)
        .listen()
        .next()
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(bad.code(), Some(blaze_client::ErrorCode::InvalidQuery));
}

/// A provider that hands out `t1`, `t2`, ... and counts its calls.
fn numbered_tokens() -> (Credentials, Arc<AtomicU32>) {
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    let credentials = Credentials::token_provider(move || {
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        async move { Ok::<_, String>(Some(format!("t{n}"))) }
    });
    (credentials, calls)
}

async fn client_with(credentials: Credentials, url: &str) -> Blaze {
    let options = ConnectOptions {
        credentials,
        reconnect: ReconnectPolicy {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(50),
        },
        ..ConnectOptions::default()
    };
    Blaze::connect_with(url, options).await.unwrap()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Accepts a connection whose `hello` carries `token`, and welcomes it as
/// alice until `expires`.
async fn welcome_user(listener: &TcpListener, token: &str, expires: u64) -> Ws {
    let mut ws = accept(listener).await;
    assert_eq!(
        expect(&mut ws).await,
        json!({"type": "hello", "protocol": 1, "auth": token, "held_docs": true})
    );
    send(
        &mut ws,
        json!({"type": "welcome", "protocol": 1, "limits": blaze_protocol_limits(),
        "auth": {"kind": "user", "uid": "alice", "expires": expires}}),
    )
    .await;
    ws
}

async fn close_4001(ws: &mut Ws, reason: &str) {
    let frame = CloseFrame {
        code: CloseCode::from(4001),
        reason: reason.into(),
    };
    ws.close(Some(frame)).await.unwrap();
}

/// Accepts a connection whose `hello` carries `token` and refuses it (spec 13.5).
async fn refuse(listener: &TcpListener, token: &str) {
    let mut ws = accept(listener).await;
    assert_eq!(expect(&mut ws).await["auth"], token);
    send(&mut ws, json!({"type": "error", "error": {"code": "unauthenticated", "message": "invalid signature"}})).await;
    close_4001(&mut ws, "unauthenticated").await;
}

fn is_unauthenticated(error: &Error) -> bool {
    error.code() == Some(blaze_client::ErrorCode::Unauthenticated)
}

#[tokio::test]
async fn a_token_is_refreshed_in_band_before_it_expires_and_fetched_afresh_after_4001() {
    let server = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (credentials, calls) = numbered_tokens();
    let db = client_with(
        credentials,
        &format!("ws://{}", server.local_addr().unwrap()),
    )
    .await;
    let mut listener = db.collection("c").listen();

    // A token with 600 ms left is refreshed after 80% of them.
    let mut ws = welcome_user(&server, "t1", now_ms() + 600).await;
    let rid = expect(&mut ws).await["rid"].clone();
    send(
        &mut ws,
        json!({"type": "snapshot", "rid": rid, "target": 1, "seq": 3, "docs": [doc("a", 3)]}),
    )
    .await;
    assert_eq!(snapshot(next(&mut listener).await).seq, 3);
    let refresh = expect(&mut ws).await;
    assert_eq!(
        (refresh["type"].as_str(), refresh["auth"].as_str()),
        (Some("auth"), Some("t2"))
    );
    let expires = now_ms() + 3_600_000;
    send(
        &mut ws,
        json!({"type": "authenticated", "rid": refresh["rid"],
        "auth": {"kind": "user", "uid": "alice", "expires": expires}}),
    )
    .await;
    send(&mut ws, json!({"type": "change", "target": 1, "seq": 4, "changes": [{"type": "added", "doc": doc("b", 4), "new_index": 1}]})).await;
    assert_eq!(snapshot(next(&mut listener).await).seq, 4, "no gap");
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    // The server says the credential expired: a fresh token, and an exact resume.
    close_4001(&mut ws, "token_expired").await;
    assert!(matches!(
        next(&mut listener).await,
        ListenEvent::State(ConnectionState::Offline { attempt: 1, .. })
    ));
    let mut ws = welcome_user(&server, "t3", expires).await;
    assert_eq!(
        expect(&mut ws).await,
        json!({"type": "listen", "rid": rid, "query": {"collection": "c"}, "since": 4})
    );
    send(&mut ws, json!({"type": "resumed", "rid": rid, "target": 2, "seq": 5, "changes": [{"type": "removed", "path": "c/a", "old_index": 0}]})).await;
    assert_eq!(
        next(&mut listener).await,
        ListenEvent::State(ConnectionState::Online)
    );
    let resumed = snapshot(next(&mut listener).await);
    assert_eq!((resumed.seq, paths(&resumed)), (5, vec!["c/b"]));
}

#[tokio::test]
async fn a_server_that_keeps_refusing_fresh_tokens_fails_the_listener_with_unauthenticated() {
    let server = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (credentials, calls) = numbered_tokens();
    let db = client_with(
        credentials,
        &format!("ws://{}", server.local_addr().unwrap()),
    )
    .await;
    let mut listener = db.doc("c/a").listen();
    for token in ["t1", "t2", "t3"] {
        refuse(&server, token).await;
    }
    let error = loop {
        match tokio::time::timeout(BOUND, listener.next()).await.unwrap() {
            Some(Ok(ListenEvent::State(ConnectionState::Offline { .. }))) => {}
            Some(Err(error)) => break error,
            other => panic!("expected the listener to fail, got {other:?}"),
        }
    };
    assert!(is_unauthenticated(&error), "{error}");
    assert!(error.to_string().contains("invalid signature"), "{error}");
    assert!(tokio::time::timeout(BOUND, listener.next())
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "three tokens, then it stops"
    );

    // New work connects again, with a fresh token.
    let read = tokio::spawn(async move { db.doc("c/b").get::<Value>().await });
    let mut ws = welcome_user(&server, "t4", now_ms() + 3_600_000).await;
    let get = expect(&mut ws).await;
    send(
        &mut ws,
        json!({"type": "doc", "rid": get["rid"], "doc": {"path": "c/b", "exists": false}}),
    )
    .await;
    assert!(!tokio::time::timeout(BOUND, read)
        .await
        .unwrap()
        .unwrap()
        .unwrap()
        .exists());
}

#[tokio::test]
async fn a_provider_that_fails_surfaces_unauthenticated_without_connecting() {
    // Nothing listens here: a client that tried to connect would be retrying forever.
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let credentials =
        Credentials::token_provider(|| async { Err::<Option<String>, _>("signed out") });
    let db = client_with(credentials, &format!("http://127.0.0.1:{port}")).await;
    let error = tokio::time::timeout(BOUND, db.doc("c/a").get::<Value>())
        .await
        .unwrap()
        .unwrap_err();
    assert!(is_unauthenticated(&error), "{error}");
    assert!(error.to_string().contains("signed out"), "{error}");
}

#[tokio::test]
async fn a_refused_admin_key_fails_calls_at_once() {
    let server = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", server.local_addr().unwrap());
    let db = client_with(Credentials::Fixed("wrong".into()), &url).await;
    let read = tokio::spawn(async move { db.doc("c/a").get::<Value>().await });
    refuse(&server, "wrong").await;
    let error = tokio::time::timeout(BOUND, read)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(is_unauthenticated(&error), "{error}");
}

#[tokio::test]
async fn a_server_that_breaks_the_protocol_three_times_in_a_row_fails_the_listener_and_is_left_alone(
) {
    let (db, server) = client().await;
    let mut listener = db.collection("c").where_("n", ">", 1).listen();
    for round in 0..3 {
        let mut ws = handshake(&server).await;
        assert_eq!(expect(&mut ws).await["type"], "listen", "round {round}");
        send(&mut ws, json!({"type": "no_such_frame"})).await;
        // The client drops the connection with close 4000 (spec 10).
        let closed = loop {
            match tokio::time::timeout(BOUND, ws.next())
                .await
                .expect("closed")
            {
                Some(Ok(Message::Close(frame))) => break frame,
                Some(Ok(_)) => continue,
                other => panic!("expected a close, got {other:?}"),
            }
        };
        assert_eq!(closed.map(|f| u16::from(f.code)), Some(4000));
    }
    // Offline and online again twice, then the failure.
    let error = loop {
        match tokio::time::timeout(BOUND, listener.next()).await {
            Ok(Some(Ok(ListenEvent::State(_)))) => continue,
            Ok(Some(Err(error))) => break error,
            other => panic!("expected states then a failure, got {other:?}"),
        }
    };
    assert!(matches!(error, Error::Protocol(_)), "{error:?}");
    assert!(tokio::time::timeout(BOUND, listener.next())
        .await
        .unwrap()
        .is_none());
    // Nothing pending: no fourth connection, though backoff would allow many.
    let idle = tokio::time::timeout(Duration::from_millis(500), server.accept()).await;
    assert!(idle.is_err(), "the client rests");
    // A new listener connects again, and a working server serves it.
    let mut again = db.collection("c").where_("n", ">", 1).listen();
    let mut ws = handshake(&server).await;
    let listen = expect(&mut ws).await;
    assert_eq!(listen["type"], "listen");
    send(
        &mut ws,
        json!({"type": "snapshot", "rid": listen["rid"], "target": 1, "seq": 1, "docs": [doc("a", 2)]}),
    )
    .await;
    let first = loop {
        match next(&mut again).await {
            ListenEvent::State(_) => continue,
            event => break snapshot(event),
        }
    };
    assert_eq!(paths(&first), ["c/a"]);
}
