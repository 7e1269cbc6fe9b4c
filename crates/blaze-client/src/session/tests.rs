//! The session frame by frame, with no runtime: what goes out, what each
//! answer does, and what a lost connection does to requests and listeners.

use serde_json::{json, Value};

use super::{
    ConnectionState, Event, ListenTarget, ListenerId, ListenerUpdate, Request, RequestId, Session,
};
use crate::Error;

fn doc_path(path: &str) -> blaze_protocol::DocPath {
    blaze_protocol::DocPath::parse(path).unwrap()
}

fn coll(path: &str) -> blaze_protocol::CollectionPath {
    blaze_protocol::CollectionPath::parse(path).unwrap()
}

fn drain(session: &mut Session) -> Vec<Value> {
    std::iter::from_fn(|| session.poll_transmit())
        .map(|f| serde_json::from_str(&f).unwrap())
        .collect()
}

fn events(session: &mut Session) -> Vec<Event> {
    std::iter::from_fn(|| session.poll_event()).collect()
}

fn receive(session: &mut Session, frame: Value) {
    session.handle_frame(&frame.to_string()).unwrap();
}

/// The one event the session has, as a listener update of `listener`.
fn update(session: &mut Session, listener: ListenerId) -> ListenerUpdate {
    match <[Event; 1]>::try_from(events(session)) {
        Ok([Event::Listener { id, update }]) if id == listener => update,
        other => panic!("expected one update of {listener:?}, got {other:?}"),
    }
}

/// The one event the session has, as the answer to `request`.
fn answer(session: &mut Session, request: RequestId) -> Result<Value, Error> {
    match <[Event; 1]>::try_from(events(session)) {
        Ok([Event::Answer { request: r, result }]) if r == request => {
            result.map(|m| serde_json::from_str(&blaze_protocol::encode(&m)).unwrap())
        }
        other => panic!("expected the answer to {request:?}, got {other:?}"),
    }
}

fn snapshot_paths(update: ListenerUpdate) -> (u64, Vec<String>) {
    match update {
        ListenerUpdate::Snapshot(s) => (s.seq, s.docs.iter().map(|d| d.path.clone()).collect()),
        other => panic!("expected a snapshot, got {other:?}"),
    }
}

fn doc(id: &str, version: u64) -> Value {
    json!({"path": format!("c/{id}"), "exists": true, "data": {"v": version}, "version": version, "create_time": 1, "update_time": version})
}

fn committed(rid: &Value, seq: u64) -> Value {
    json!({"type": "committed", "rid": rid, "seq": seq, "time": 1000 + seq, "writes": [{"id": "a", "exists": true}]})
}

#[test]
fn listeners_resume_from_their_seq_and_reads_survive_a_lost_connection() {
    let mut session = Session::new(Some("token".into()), 1);
    let listener = session.listen(ListenTarget::Doc(doc_path("c/a")));
    assert_eq!(
        drain(&mut session),
        Vec::<Value>::new(),
        "nothing is sent before welcome"
    );
    assert_eq!(
        session.hello(),
        r#"{"type":"hello","protocol":1,"auth":"token","held_docs":true}"#
    );

    session.connected(None, 0);
    assert_eq!(
        drain(&mut session),
        [json!({"type": "listen", "rid": 1, "doc": "c/a"})]
    );
    assert!(events(&mut session).is_empty(), "no state change to report");
    receive(
        &mut session,
        json!({"type": "snapshot", "rid": 1, "target": 7, "seq": 3, "docs": [doc("a", 3)]}),
    );
    assert_eq!(
        snapshot_paths(update(&mut session, listener)),
        (3, vec!["c/a".into()])
    );
    receive(
        &mut session,
        json!({"type": "change", "target": 7, "seq": 5, "changes": [{"type": "removed", "path": "c/a", "old_index": 0}]}),
    );
    assert_eq!(snapshot_paths(update(&mut session, listener)), (5, vec![]));

    let get = session.request(Request::Get(doc_path("c/b")));
    assert_eq!(
        drain(&mut session),
        [json!({"type": "get", "rid": 2, "path": "c/b"})]
    );

    session.disconnected(1, "gone");
    assert!(matches!(
        update(&mut session, listener),
        ListenerUpdate::State(ConnectionState::Offline { attempt: 1, .. })
    ));
    assert_eq!(session.poll_transmit(), None);

    session.connected(None, 0);
    assert!(matches!(
        update(&mut session, listener),
        ListenerUpdate::State(ConnectionState::Online)
    ));
    assert_eq!(
        drain(&mut session),
        [
            json!({"type": "listen", "rid": 1, "doc": "c/a", "since": 5}),
            json!({"type": "get", "rid": 2, "path": "c/b"}),
        ],
        "the read is sent again with its rid"
    );
    receive(
        &mut session,
        json!({"type": "doc", "rid": 2, "doc": {"path": "c/b", "exists": false}}),
    );
    assert_eq!(answer(&mut session, get).unwrap()["doc"]["exists"], false);
    receive(
        &mut session,
        json!({"type": "resumed", "rid": 1, "target": 9, "seq": 6, "changes": []}),
    );
    assert!(
        events(&mut session).is_empty(),
        "a resume that missed nothing makes no snapshot"
    );
    receive(
        &mut session,
        json!({"type": "change", "target": 9, "seq": 8, "changes": [{"type": "added", "doc": doc("a", 8), "new_index": 0}]}),
    );
    assert_eq!(
        snapshot_paths(update(&mut session, listener)),
        (8, vec!["c/a".into()])
    );
    receive(
        &mut session,
        json!({"type": "change", "target": 7, "seq": 9, "changes": [{"type": "removed", "path": "c/a", "old_index": 0}]}),
    );
    assert!(
        events(&mut session).is_empty(),
        "the old connection's target number means nothing now"
    );
}

#[test]
fn a_commit_cut_off_by_a_lost_connection_is_sent_again_with_its_commit_id() {
    let mut session = Session::new(None, 42);
    session.connected(None, 0);
    let write = json!({"op": "set", "id": "a", "data": {"n": 1}});
    let writes = vec![serde_json::from_value(write.clone()).unwrap()];
    let commit = session.request(Request::Commit(coll("c"), writes));
    let sent = drain(&mut session);
    let [frame] = <[Value; 1]>::try_from(sent).unwrap();
    let id = frame["commit_id"].as_str().expect("a commit id").to_owned();
    assert_eq!(
        frame,
        json!({"type": "commit", "rid": 1, "collection": "c", "commit_id": id, "writes": [write]})
    );
    assert_eq!(id.len(), super::commit_id::LENGTH);

    let other = session.request(Request::Commit(coll("c"), vec![]));
    let second = drain(&mut session);
    assert_ne!(
        second[0]["commit_id"], frame["commit_id"],
        "every commit has its own id"
    );

    session.disconnected(1, "gone");
    assert!(
        events(&mut session).is_empty(),
        "the commits wait for the next connection"
    );
    let read = session.request(Request::Get(doc_path("c/a")));
    session.disconnected(2, "refused");
    session.connected(None, 0);
    assert_eq!(
        drain(&mut session),
        [
            frame.clone(),
            second[0].clone(),
            json!({"type": "get", "rid": 3, "path": "c/a"})
        ],
        "the same frames, in the order they were made"
    );

    // The server remembers the first commit's id and answers its original outcome.
    receive(&mut session, committed(&frame["rid"], 4));
    let result = answer(&mut session, commit).unwrap();
    assert_eq!(
        (result["seq"].clone(), result["time"].clone()),
        (json!(4), json!(1004))
    );
    receive(
        &mut session,
        json!({"type": "error", "rid": 2, "error": {"code": "empty_batch", "message": "no writes"}}),
    );
    let error = answer(&mut session, other).unwrap_err();
    assert_eq!(error.code(), Some(blaze_protocol::ErrorCode::EmptyBatch));
    receive(
        &mut session,
        json!({"type": "doc", "rid": 3, "doc": {"path": "c/a", "exists": false}}),
    );
    assert!(answer(&mut session, read).is_ok());

    session.disconnected(1, "gone");
    session.connected(None, 0);
    assert_eq!(
        drain(&mut session),
        Vec::<Value>::new(),
        "answered requests are not sent again"
    );
    assert!(!session.has_work());
}

#[test]
fn a_refused_listen_ends_its_stream_and_a_change_that_does_not_fit_forces_a_fresh_snapshot() {
    let mut session = Session::new(None, 1);
    session.connected(None, 0);
    let refused = session.listen(ListenTarget::Doc(doc_path("c/a")));
    let other = session.listen(ListenTarget::Doc(doc_path("c/b")));
    drain(&mut session);
    receive(
        &mut session,
        json!({"type": "error", "rid": 1, "error": {"code": "too_many_listeners", "message": "no"}}),
    );
    match update(&mut session, refused) {
        ListenerUpdate::Failed(e) => {
            assert_eq!(e.code(), Some(blaze_protocol::ErrorCode::TooManyListeners))
        }
        other => panic!("{other:?}"),
    }

    receive(
        &mut session,
        json!({"type": "snapshot", "rid": 2, "target": 2, "seq": 3, "docs": []}),
    );
    update(&mut session, other);
    let bad = json!({"type": "change", "target": 2, "seq": 4, "changes": [{"type": "removed", "path": "c/b", "old_index": 0}]});
    assert!(matches!(
        session.handle_frame(&bad.to_string()),
        Err(Error::Protocol(_))
    ));
    session.disconnected(1, "protocol");
    assert!(matches!(
        update(&mut session, other),
        ListenerUpdate::State(ConnectionState::Offline { .. })
    ));
    session.connected(None, 0);
    assert_eq!(
        drain(&mut session),
        [json!({"type": "listen", "rid": 2, "doc": "c/b"})],
        "no since: start over; the refused listener is gone"
    );
}

#[test]
fn unlisten_and_cancelled_requests_send_nothing_more() {
    let mut session = Session::new(None, 1);
    let listener = session.listen(ListenTarget::Doc(doc_path("c/a")));
    session.unlisten(listener);
    let read = session.request(Request::Get(doc_path("c/a")));
    let commit = session.request(Request::Commit(coll("c"), vec![]));
    session.cancel(read);
    session.cancel(commit);
    assert!(
        !session.has_work(),
        "a dropped listener and abandoned requests need no connection"
    );
    session.connected(None, 0);
    assert_eq!(drain(&mut session), Vec::<Value>::new());

    let listener = session.listen(ListenTarget::Doc(doc_path("c/a")));
    let read = session.request(Request::Get(doc_path("c/a")));
    assert_eq!(drain(&mut session).len(), 2);
    session.cancel(read);
    session.unlisten(listener);
    assert_eq!(
        drain(&mut session),
        [json!({"type": "unlisten", "rid": 6, "listener": 4})]
    );
    receive(
        &mut session,
        json!({"type": "doc", "rid": 5, "doc": {"path": "c/a", "exists": false}}),
    );
    receive(
        &mut session,
        json!({"type": "snapshot", "rid": 4, "target": 1, "seq": 1, "docs": []}),
    );
    receive(&mut session, json!({"type": "unlistened", "rid": 6}));
    assert!(
        events(&mut session).is_empty(),
        "answers nobody waits for are dropped"
    );
}

#[test]
fn a_server_that_breaks_the_protocol_is_reported() {
    let mut session = Session::new(None, 1);
    session.connected(None, 0);
    for frame in [
        "not json".to_owned(),
        json!({"type": "error", "error": {"code": "internal", "message": "?"}}).to_string(),
    ] {
        assert!(
            matches!(session.handle_frame(&frame), Err(Error::Protocol(_))),
            "{frame}"
        );
    }
}

#[test]
fn what_is_read_is_acknowledged_every_64_frames_and_every_64_kib() {
    let mut s = Session::new(None, 1);
    s.connected(None, 0);
    let change = json!({"type": "unlistened", "rid": 1});
    // `welcome` and 62 more frames: not yet due.
    for _ in 0..62 {
        receive(&mut s, change.clone());
    }
    assert_eq!(drain(&mut s), Vec::<Value>::new());
    receive(&mut s, change.clone());
    assert_eq!(drain(&mut s), [json!({"type": "ack", "frames": 64})]);
    // One frame of 64 KiB is due at once, and counts from the connection's start.
    let big = json!({"type": "unlistened", "rid": 1, "pad": "x".repeat(64 * 1024)});
    receive(&mut s, big);
    assert_eq!(drain(&mut s), [json!({"type": "ack", "frames": 65})]);
    // A new connection counts from its own `welcome`.
    s.disconnected(1, "lost");
    s.connected(None, 0);
    for _ in 0..63 {
        receive(&mut s, change.clone());
    }
    assert_eq!(drain(&mut s), [json!({"type": "ack", "frames": 64})]);
}

fn auth_state(expires: u64) -> blaze_protocol::AuthState {
    blaze_protocol::AuthState {
        kind: "user".into(),
        uid: Some("alice".into()),
        expires: Some(expires),
    }
}

#[test]
fn a_renewable_credential_is_refreshed_in_band_before_it_expires() {
    let mut session = Session::new(Some("t1".into()), 1).renewable();
    let listener = session.listen(ListenTarget::Doc(doc_path("c/a")));
    assert_eq!(session.poll_timeout(), None, "offline: nothing is due");
    let now = 1_000_000;
    session.connected(Some(&auth_state(now + 600_000)), now);
    drain(&mut session);
    let due = now + 540_000;
    assert_eq!(session.poll_timeout(), Some(due), "a minute before expiry");
    assert!(!session.handle_timeout(due - 1), "not due yet");
    assert!(session.handle_timeout(due), "ask the provider");
    assert_eq!(session.poll_timeout(), None, "while the provider works");
    assert!(!session.handle_timeout(due + 10));

    session.refresh(Ok(Some("t2".into())), due + 20);
    let sent = drain(&mut session);
    assert_eq!(sent, [json!({"type": "auth", "rid": 2, "auth": "t2"})]);
    assert_eq!(session.poll_timeout(), None, "while the server verifies");
    // A token good for 100 s more: refreshed after 80 of them.
    let expires = due + 20 + 100_000;
    receive(
        &mut session,
        json!({"type": "authenticated", "rid": 2, "auth": {"kind": "user", "uid": "alice", "expires": expires}}),
    );
    assert!(
        events(&mut session).is_empty(),
        "nothing for the application"
    );
    assert_eq!(session.poll_timeout(), Some(due + 20 + 80_000));
    assert_eq!(
        session.hello(),
        r#"{"type":"hello","protocol":1,"auth":"t2","held_docs":true}"#,
        "a later connection says hello with the fresh token"
    );

    // A refused refresh keeps the connection; the server closes it at expiry.
    assert!(session.handle_timeout(due + 20 + 80_000));
    session.refresh(Ok(Some("t3".into())), due + 20 + 80_000);
    assert_eq!(drain(&mut session)[0]["rid"], 3);
    receive(
        &mut session,
        json!({"type": "error", "rid": 3, "error": {"code": "unauthenticated", "message": "another user"}}),
    );
    assert!(events(&mut session).is_empty(), "the listener lives on");
    assert_eq!(session.poll_timeout(), None);

    session.disconnected(1, "the credential expired");
    assert!(matches!(
        update(&mut session, listener),
        ListenerUpdate::State(ConnectionState::Offline { .. })
    ));
    assert_eq!(session.poll_timeout(), None);
}

#[test]
fn a_provider_without_a_token_sends_nothing_and_a_fixed_credential_is_never_due() {
    let mut session = Session::new(Some("t1".into()), 1).renewable();
    session.listen(ListenTarget::Doc(doc_path("c/a")));
    session.connected(Some(&auth_state(10_000)), 0);
    drain(&mut session);
    assert!(session.handle_timeout(10_000));
    session.refresh(Err("offline".into()), 10_000);
    assert_eq!(drain(&mut session), Vec::<Value>::new());
    assert_eq!(
        session.poll_timeout(),
        None,
        "not asked again on this connection"
    );

    let mut fixed = Session::new(Some("key".into()), 1);
    fixed.listen(ListenTarget::Doc(doc_path("c/a")));
    fixed.connected(Some(&auth_state(10_000)), 0);
    assert_eq!(fixed.poll_timeout(), None);
    assert!(!fixed.handle_timeout(20_000));
}

fn unauthenticated(error: &Error) -> bool {
    error.code() == Some(blaze_protocol::ErrorCode::Unauthenticated)
}

#[test]
fn refusals_in_a_row_fail_requests_and_listeners_with_unauthenticated() {
    let mut session = Session::new(None, 1).renewable();
    let listener = session.listen(ListenTarget::Doc(doc_path("c/a")));
    let get = session.request(Request::Get(doc_path("c/b")));
    for attempt in 1..super::credential::AUTH_ATTEMPTS {
        session.disconnected(attempt, "refused");
        events(&mut session);
        session.auth_failed("refused");
        assert!(
            events(&mut session).is_empty(),
            "attempt {attempt} is retried"
        );
    }
    // A connection that gets in starts the count again.
    session.connected(None, 0);
    events(&mut session);
    for attempt in 1..super::credential::AUTH_ATTEMPTS {
        session.auth_failed("refused");
        assert!(
            events(&mut session).is_empty(),
            "attempt {attempt} is retried"
        );
    }
    session.auth_failed("the token provider failed: no user");
    let failed = events(&mut session);
    assert_eq!(failed.len(), 2);
    for event in failed {
        match event {
            Event::Answer { request, result } => {
                assert_eq!(request, get);
                assert!(unauthenticated(&result.unwrap_err()));
            }
            Event::Listener {
                id,
                update: ListenerUpdate::Failed(error),
            } => {
                assert_eq!(id, listener);
                assert!(unauthenticated(&error), "{error}");
                assert!(error.to_string().contains("no user"), "{error}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(!session.has_work(), "nothing left to reconnect for");

    let mut fixed = Session::new(Some("key".into()), 1);
    let get = fixed.request(Request::Get(doc_path("c/b")));
    fixed.auth_failed("refused");
    assert!(
        unauthenticated(&answer(&mut fixed, get).unwrap_err()),
        "a fixed credential is not retried"
    );
}

/// Connects `session` at `welcomed`, lets it answer its listen with a held
/// entry naming nothing (a protocol error) at `broke`, and drops the
/// connection as the driver does.
fn broken_connection(session: &mut Session, attempt: u32, welcomed: u64, broke: u64) {
    session.connected(None, welcomed);
    let listen = drain(session)
        .into_iter()
        .find(|f| f["type"] == "listen")
        .expect("the listen is sent again");
    let why = protocol_error(
        session,
        snapshot(listen["rid"].as_u64().unwrap(), 1, 3, vec![held("a", 3)]),
    );
    session.disconnected(attempt, &why);
    session.protocol_failed(&why, broke);
}

#[test]
fn protocol_errors_in_a_row_fail_requests_and_listeners_and_a_minute_starts_over() {
    use super::protocol_errors::{PROTOCOL_ERROR_ATTEMPTS, PROTOCOL_ERROR_WINDOW_MS};
    let mut session = Session::new(None, 1);
    let listener = session.listen(ListenTarget::Doc(doc_path("c/a")));
    let get = session.request(Request::Get(doc_path("c/b")));
    // Connections open for a minute each: never gives up.
    let mut now = 0;
    for attempt in 1..=PROTOCOL_ERROR_ATTEMPTS + 2 {
        broken_connection(&mut session, attempt, now, now + PROTOCOL_ERROR_WINDOW_MS);
        now += 2 * PROTOCOL_ERROR_WINDOW_MS;
        let failed = events(&mut session).into_iter().any(|e| {
            matches!(
                e,
                Event::Answer { .. }
                    | Event::Listener {
                        update: ListenerUpdate::Failed(_),
                        ..
                    }
            )
        });
        assert!(!failed, "attempt {attempt} is retried");
    }
    // The last of those was the first in a row; quick ones follow: the
    // third in a row fails everything with the protocol error.
    for attempt in 2..=PROTOCOL_ERROR_ATTEMPTS {
        broken_connection(&mut session, attempt, now, now + 10);
        now += 20;
        let failed: Vec<Event> = events(&mut session)
            .into_iter()
            .filter(|e| {
                !matches!(
                    e,
                    Event::Listener {
                        update: ListenerUpdate::State(_),
                        ..
                    }
                )
            })
            .collect();
        if attempt < PROTOCOL_ERROR_ATTEMPTS {
            assert!(
                failed.is_empty(),
                "attempt {attempt} is retried: {failed:?}"
            );
            continue;
        }
        assert_eq!(failed.len(), 2, "{failed:?}");
        for event in failed {
            let error = match event {
                Event::Answer { request, result } if request == get => result.unwrap_err(),
                Event::Listener {
                    id,
                    update: ListenerUpdate::Failed(error),
                } if id == listener => error,
                other => panic!("unexpected {other:?}"),
            };
            assert!(
                matches!(&error, Error::Protocol(why) if why.contains("held")),
                "{error}"
            );
        }
    }
    assert!(!session.has_work(), "nothing left to reconnect for");
}

fn denied(rid: u64) -> Value {
    json!({"type": "error", "rid": rid, "error": {"code": "permission_denied", "message": "the access rules do not allow this request"}})
}

fn permission_denied(error: &Error) -> bool {
    error.code() == Some(blaze_protocol::ErrorCode::PermissionDenied)
}

#[test]
fn a_listener_the_server_ends_with_permission_denied_fails_and_is_not_resumed() {
    let mut session = Session::new(Some("alice".into()), 1);
    session.connected(None, 0);
    let ended = session.listen(ListenTarget::Doc(doc_path("c/a")));
    let query = blaze_protocol::Query::all(coll("c"));
    let kept = session.listen(ListenTarget::Query(Box::new(query)));
    drain(&mut session);
    receive(
        &mut session,
        json!({"type": "snapshot", "rid": 1, "target": 1, "seq": 3, "docs": [doc("a", 3)]}),
    );
    update(&mut session, ended);
    receive(
        &mut session,
        json!({"type": "snapshot", "rid": 2, "target": 2, "seq": 3, "docs": []}),
    );
    update(&mut session, kept);

    // The rules deny it now (its document changed owner): the server ends it
    // with an error carrying its `listen` rid, before that commit's changes.
    receive(&mut session, denied(1));
    match update(&mut session, ended) {
        ListenerUpdate::Failed(error) => assert!(permission_denied(&error), "{error}"),
        other => panic!("expected the listener to fail, got {other:?}"),
    }
    receive(
        &mut session,
        json!({"type": "change", "target": 1, "seq": 4, "changes": [{"type": "modified", "path": "c/a", "patch": [{"op": "replace", "path": "/v", "value": 4}], "version": 4, "create_time": 1, "update_time": 4, "old_index": 0, "new_index": 0}]}),
    );
    assert!(
        events(&mut session).is_empty(),
        "nothing more reaches an ended listener"
    );

    session.disconnected(1, "gone");
    assert!(matches!(
        update(&mut session, kept),
        ListenerUpdate::State(ConnectionState::Offline { .. })
    ));
    session.connected(None, 0);
    update(&mut session, kept);
    assert_eq!(
        drain(&mut session),
        [json!({"type": "listen", "rid": 2, "query": {"collection": "c"}, "since": 3})],
        "the ended listener is not listened to again"
    );
}

#[test]
fn a_listen_refused_at_once_with_permission_denied_fails_its_listener() {
    let mut session = Session::new(None, 1);
    session.connected(None, 0);
    let listener = session.listen(ListenTarget::Query(Box::new(blaze_protocol::Query::all(
        coll("todos"),
    ))));
    drain(&mut session);
    receive(&mut session, denied(1));
    match update(&mut session, listener) {
        ListenerUpdate::Failed(error) => assert!(permission_denied(&error), "{error}"),
        other => panic!("expected the listener to fail, got {other:?}"),
    }
    assert!(!session.has_work(), "nothing left to reconnect for");
}

#[test]
fn denied_reads_and_commits_answer_permission_denied_with_the_write_index() {
    let mut session = Session::new(Some("bob".into()), 1);
    session.connected(None, 0);
    let query = blaze_protocol::Query::all(coll("todos"));
    let get = session.request(Request::Get(doc_path("todos/a")));
    let list = session.request(Request::Query(Box::new(query.clone())));
    let count = session.request(Request::Count(Box::new(query)));
    let writes = [
        json!({"op": "set", "id": "b", "data": {"owner": "bob"}}),
        json!({"op": "delete", "id": "a"}),
    ];
    let writes = writes
        .into_iter()
        .map(|w| serde_json::from_value(w).unwrap())
        .collect();
    let commit = session.request(Request::Commit(coll("todos"), writes));
    assert_eq!(drain(&mut session).len(), 4);

    for (rid, request) in [(1, get), (2, list), (3, count)] {
        receive(&mut session, denied(rid));
        let error = answer(&mut session, request).unwrap_err();
        assert!(permission_denied(&error), "{error}");
    }
    receive(
        &mut session,
        json!({"type": "error", "rid": 4, "error": {"code": "permission_denied", "message": "the access rules do not allow this request", "write_index": 1}}),
    );
    match answer(&mut session, commit).unwrap_err() {
        Error::Rejected {
            code: blaze_protocol::ErrorCode::PermissionDenied,
            write_index: Some(1),
            ..
        } => {}
        other => panic!("expected permission_denied at write 1, got {other:?}"),
    }
    assert!(!session.has_work());
}

/// A held entry (spec 10.4.9): `c/{id}` at `version`, named instead of sent.
fn held(id: &str, version: u64) -> Value {
    json!({"path": format!("c/{id}"), "exists": true, "version": version, "held": true})
}

/// The documents of a snapshot update, in the shape of [`doc`].
fn snapshot_docs(update: ListenerUpdate) -> Vec<Value> {
    match update {
        ListenerUpdate::Snapshot(s) => s
            .docs
            .iter()
            .map(|d| json!({"path": d.path, "exists": d.exists(), "data": d.data, "version": d.version, "create_time": d.create_time, "update_time": d.update_time}))
            .collect(),
        other => panic!("expected a snapshot, got {other:?}"),
    }
}

fn snapshot(rid: u64, target: u64, seq: u64, docs: Vec<Value>) -> Value {
    json!({"type": "snapshot", "rid": rid, "target": target, "seq": seq, "docs": docs})
}

fn all(collection: &str) -> ListenTarget {
    ListenTarget::Query(Box::new(blaze_protocol::Query::all(coll(collection))))
}

fn protocol_error(session: &mut Session, frame: Value) -> String {
    match session.handle_frame(&frame.to_string()) {
        Err(Error::Protocol(why)) => why,
        other => panic!("expected a protocol error for {frame}, got {other:?}"),
    }
}

#[test]
fn every_hello_takes_held_entries() {
    let hello: Value = serde_json::from_str(&Session::new(None, 1).hello()).unwrap();
    assert_eq!(
        hello,
        json!({"type": "hello", "protocol": 1, "held_docs": true})
    );
}

#[test]
fn held_entries_are_replaced_by_the_copy_another_listener_holds() {
    let mut session = Session::new(None, 1);
    session.connected(None, 0);
    let list = session.listen(all("c"));
    let one = session.listen(ListenTarget::Doc(doc_path("c/b")));
    let view = session.listen(all("c"));
    drain(&mut session);
    receive(
        &mut session,
        snapshot(1, 1, 4, vec![doc("a", 3), doc("b", 4)]),
    );
    update(&mut session, list);

    receive(&mut session, snapshot(2, 2, 4, vec![held("b", 4)]));
    assert_eq!(snapshot_docs(update(&mut session, one)), [doc("b", 4)]);
    // Held and whole entries mixed keep their order; the copy may come from
    // any listener holding that version.
    receive(
        &mut session,
        snapshot(3, 1, 5, vec![doc("0", 5), held("a", 3), held("b", 4)]),
    );
    assert_eq!(
        snapshot_docs(update(&mut session, view)),
        [doc("0", 5), doc("a", 3), doc("b", 4)]
    );
    // What a listener holds after resolving is its own: later changes apply.
    receive(
        &mut session,
        json!({"type": "change", "target": 2, "seq": 6, "changes": [{"type": "modified", "path": "c/b", "patch": [{"op": "replace", "path": "/v", "value": 6}], "version": 6, "create_time": 1, "update_time": 6, "old_index": 0, "new_index": 0}]}),
    );
    assert_eq!(snapshot_docs(update(&mut session, one)), [doc("b", 6)]);
}

#[test]
fn a_held_entry_nobody_holds_is_a_protocol_error_and_the_listener_resumes() {
    let mut session = Session::new(None, 1);
    session.connected(None, 0);
    let list = session.listen(all("c"));
    let one = session.listen(ListenTarget::Doc(doc_path("c/a")));
    drain(&mut session);
    receive(&mut session, snapshot(1, 1, 3, vec![doc("a", 3)]));
    update(&mut session, list);
    receive(&mut session, snapshot(2, 2, 3, vec![doc("a", 3)]));
    update(&mut session, one);

    let mut other = Session::new(None, 1);
    other.connected(None, 0);
    let fresh = other.listen(all("c"));
    drain(&mut other);
    for bad in [
        snapshot(1, 1, 3, vec![held("a", 3)]),
        json!({"type": "snapshot", "rid": 1, "target": 1, "seq": 3, "docs": [{"path": "c/a", "exists": true, "held": true}]}),
    ] {
        protocol_error(&mut other, bad);
    }
    assert!(events(&mut other).is_empty(), "nothing reaches the stream");
    other.disconnected(1, "protocol");
    assert!(matches!(
        update(&mut other, fresh),
        ListenerUpdate::State(ConnectionState::Offline { .. })
    ));

    // A version nobody holds, a path nobody holds: the frame is refused whole.
    let reset = |docs| json!({"type": "snapshot", "rid": 2, "target": 2, "seq": 5, "reset": true, "docs": docs});
    let why = protocol_error(&mut session, reset(json!([held("a", 2)])));
    assert!(why.contains("c/a") && why.contains('2'), "{why}");
    protocol_error(&mut session, reset(json!([doc("x", 5), held("z", 3)])));
    assert!(events(&mut session).is_empty());
    session.disconnected(1, "protocol");
    events(&mut session);
    session.connected(None, 0);
    events(&mut session);
    assert_eq!(
        drain(&mut session),
        [
            json!({"type": "listen", "rid": 1, "query": {"collection": "c"}, "since": 3}),
            json!({"type": "listen", "rid": 2, "doc": "c/a", "since": 3}),
        ],
        "the results held before the bad frame resume"
    );
    // Results from the previous connection are held on no connection the
    // server knows of: only listeners answered on this one count.
    protocol_error(&mut session, snapshot(2, 5, 5, vec![held("a", 3)]));
}

#[test]
fn a_stopped_listener_lends_its_documents_until_its_unlisten_is_answered() {
    let mut session = Session::new(None, 1);
    session.connected(None, 0);
    let stopped = session.listen(all("c"));
    let one = session.listen(ListenTarget::Doc(doc_path("c/a")));
    session.listen(all("c"));
    assert_eq!(drain(&mut session).len(), 3);
    receive(
        &mut session,
        snapshot(1, 1, 3, vec![doc("a", 3), doc("z", 2)]),
    );
    update(&mut session, stopped);

    // The application drops the first listener; the server has not read the
    // `unlisten` yet, and answers the other listens it already had.
    session.unlisten(stopped);
    assert_eq!(
        drain(&mut session),
        [json!({"type": "unlisten", "rid": 4, "listener": 1})]
    );
    receive(
        &mut session,
        json!({"type": "change", "target": 1, "seq": 5, "changes": [{"type": "modified", "path": "c/a", "patch": [{"op": "replace", "path": "/v", "value": 5}], "version": 5, "create_time": 1, "update_time": 5, "old_index": 0, "new_index": 0}]}),
    );
    assert!(
        events(&mut session).is_empty(),
        "a stopped listener's changes reach nobody"
    );
    receive(&mut session, snapshot(2, 2, 5, vec![held("a", 5)]));
    assert_eq!(
        snapshot_docs(update(&mut session, one)),
        [doc("a", 5)],
        "the copy as the stopped listener holds it now, changes applied"
    );

    receive(&mut session, json!({"type": "unlistened", "rid": 4}));
    // Now `c/z` is held by no listener of the connection.
    let why = protocol_error(
        &mut session,
        snapshot(3, 1, 5, vec![held("a", 5), held("z", 2)]),
    );
    assert!(why.contains("c/z"), "{why}");
    assert!(events(&mut session).is_empty());
    session.disconnected(1, "protocol");
    events(&mut session);
    session.connected(None, 0);
    events(&mut session);
    assert_eq!(
        drain(&mut session),
        [
            json!({"type": "listen", "rid": 2, "doc": "c/a", "since": 5}),
            json!({"type": "listen", "rid": 3, "query": {"collection": "c"}}),
        ]
    );
}

#[test]
fn a_snapshot_for_a_listener_no_longer_wanted_is_kept_until_its_unlisten_is_answered() {
    let mut session = Session::new(None, 1);
    session.connected(None, 0);
    let stopped = session.listen(all("c"));
    let one = session.listen(ListenTarget::Doc(doc_path("c/a")));
    session.unlisten(stopped);
    assert_eq!(
        drain(&mut session),
        [
            json!({"type": "listen", "rid": 1, "query": {"collection": "c"}}),
            json!({"type": "listen", "rid": 2, "doc": "c/a"}),
            json!({"type": "unlisten", "rid": 3, "listener": 1}),
        ]
    );
    receive(
        &mut session,
        snapshot(1, 1, 3, vec![doc("a", 3), doc("b", 3)]),
    );
    assert!(events(&mut session).is_empty(), "nobody wants it any more");
    receive(&mut session, snapshot(2, 2, 3, vec![held("a", 3)]));
    assert_eq!(snapshot_docs(update(&mut session, one)), [doc("a", 3)]);
    receive(&mut session, json!({"type": "unlistened", "rid": 3}));
    protocol_error(&mut session, snapshot(2, 2, 3, vec![held("b", 3)]));
}

#[test]
fn the_end_of_a_stopped_listener_is_an_error_ending_it_or_a_refused_unlisten_or_a_lost_connection()
{
    let setup = || {
        let mut session = Session::new(None, 1);
        session.connected(None, 0);
        let stopped = session.listen(all("c"));
        let other = session.listen(all("d"));
        drain(&mut session);
        receive(&mut session, snapshot(1, 1, 3, vec![doc("a", 3)]));
        receive(&mut session, snapshot(2, 2, 3, vec![]));
        events(&mut session);
        session.unlisten(stopped);
        assert_eq!(
            drain(&mut session),
            [json!({"type": "unlisten", "rid": 3, "listener": 1})]
        );
        (session, other)
    };
    // The server still holds it when it reads a held entry: resolved.
    let (mut session, other) = setup();
    receive(&mut session, snapshot(2, 2, 3, vec![held("a", 3)]));
    assert_eq!(snapshot_docs(update(&mut session, other)), [doc("a", 3)]);

    // The rules ended it (10.4.5) before the server read the `unlisten`:
    // its documents are named no more, and the refused `unlisten` that
    // follows tells nobody anything.
    let (mut session, _) = setup();
    receive(&mut session, denied(1));
    protocol_error(&mut session, snapshot(2, 2, 3, vec![held("a", 3)]));
    receive(
        &mut session,
        json!({"type": "error", "rid": 3, "error": {"code": "listener_not_found", "message": "no listener 1 on this connection"}}),
    );
    assert!(events(&mut session).is_empty(), "nobody is told");
    assert!(session.retired.is_empty() && session.unlistens.is_empty());

    // The `unlisten` refused alone also ends it.
    let (mut session, _) = setup();
    receive(
        &mut session,
        json!({"type": "error", "rid": 3, "error": {"code": "listener_not_found", "message": "no listener 1 on this connection"}}),
    );
    protocol_error(&mut session, snapshot(2, 2, 3, vec![held("a", 3)]));

    // A lost connection forgets it; the next connection never names it.
    let (mut session, _) = setup();
    session.disconnected(1, "gone");
    session.connected(None, 0);
    events(&mut session);
    assert_eq!(
        drain(&mut session),
        [json!({"type": "listen", "rid": 2, "query": {"collection": "d"}, "since": 3})]
    );
    protocol_error(&mut session, snapshot(2, 2, 3, vec![held("a", 3)]));
    assert!(session.retired.is_empty() && session.unlistens.is_empty());
}
