//! The session frame by frame: what goes out, what each answer does, and what
//! a lost connection does to requests and listeners.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};

use super::{Command, ConnectionState, Event, ListenTarget, Request, Session};
use crate::Error;

fn drain(session: &mut Session) -> Vec<Value> {
    std::iter::from_fn(|| session.poll_transmit())
        .map(|f| serde_json::from_str(&f).unwrap())
        .collect()
}

fn snapshot_paths(event: Event) -> (u64, Vec<String>) {
    match event {
        Event::Snapshot(s) => (s.seq, s.docs.iter().map(|d| d.path.clone()).collect()),
        other => panic!("expected a snapshot, got {other:?}"),
    }
}

fn doc(id: &str, version: u64) -> Value {
    json!({"path": format!("c/{id}"), "exists": true, "data": {"v": version}, "version": version, "create_time": 1, "update_time": version})
}

#[test]
fn listeners_resume_from_their_seq_and_reads_survive_a_lost_connection() {
    let mut session = Session::new(Some("token".into()), Arc::new(AtomicU64::new(1)));
    let (events, mut stream) = mpsc::unbounded_channel();
    session.command(Command::Listen(1, ListenTarget::Doc("c/a".into()), events));
    assert_eq!(
        drain(&mut session),
        Vec::<Value>::new(),
        "nothing is sent before welcome"
    );
    assert_eq!(
        session.hello(),
        r#"{"type":"hello","protocol":1,"auth":"token"}"#
    );

    session.connected();
    assert_eq!(
        drain(&mut session),
        [json!({"type": "listen", "rid": 1, "doc": "c/a"})]
    );
    let snap = json!({"type": "snapshot", "rid": 1, "target": 7, "seq": 3, "docs": [doc("a", 3)]});
    session.handle_frame(&snap.to_string()).unwrap();
    assert_eq!(
        snapshot_paths(stream.try_recv().unwrap()),
        (3, vec!["c/a".into()])
    );
    let change = json!({"type": "change", "target": 7, "seq": 5, "changes": [{"type": "removed", "path": "c/a", "old_index": 0}]});
    session.handle_frame(&change.to_string()).unwrap();
    assert_eq!(snapshot_paths(stream.try_recv().unwrap()), (5, vec![]));

    let (get_reply, mut get_answer) = oneshot::channel();
    let (commit_reply, mut commit_answer) = oneshot::channel();
    session.command(Command::Request(Request::Get("c/b".into()), get_reply));
    session.command(Command::Request(
        Request::Commit("c".into(), vec![]),
        commit_reply,
    ));
    let sent = drain(&mut session);
    assert_eq!(sent[0], json!({"type": "get", "rid": 1, "path": "c/b"}));

    session.disconnected(1, "gone");
    assert!(matches!(
        commit_answer.try_recv(),
        Ok(Err(Error::CommitOutcomeUnknown))
    ));
    assert!(
        get_answer.try_recv().is_err(),
        "the read waits for the next connection"
    );
    assert!(matches!(
        stream.try_recv(),
        Ok(Event::State(ConnectionState::Offline { attempt: 1, .. }))
    ));

    session.connected();
    assert!(matches!(
        stream.try_recv(),
        Ok(Event::State(ConnectionState::Online))
    ));
    assert_eq!(
        drain(&mut session),
        [
            json!({"type": "listen", "rid": 1, "doc": "c/a", "since": 5}),
            json!({"type": "get", "rid": 1, "path": "c/b"}),
        ]
    );
    let answer = json!({"type": "doc", "rid": 1, "doc": {"path": "c/b", "exists": false}});
    session.handle_frame(&answer.to_string()).unwrap();
    assert!(matches!(get_answer.try_recv(), Ok(Ok(_))));
    let resumed = json!({"type": "resumed", "rid": 1, "target": 9, "seq": 6, "changes": []});
    session.handle_frame(&resumed.to_string()).unwrap();
    assert!(
        stream.try_recv().is_err(),
        "a resume that missed nothing makes no snapshot"
    );
    let change = json!({"type": "change", "target": 9, "seq": 8, "changes": [{"type": "added", "doc": doc("a", 8), "new_index": 0}]});
    session.handle_frame(&change.to_string()).unwrap();
    assert_eq!(
        snapshot_paths(stream.try_recv().unwrap()),
        (8, vec!["c/a".into()])
    );
}

#[test]
fn a_refused_listen_ends_its_stream_and_a_change_that_does_not_fit_forces_a_fresh_snapshot() {
    let mut session = Session::new(None, Arc::new(AtomicU64::new(1)));
    session.connected();
    let (events, mut stream) = mpsc::unbounded_channel();
    session.command(Command::Listen(4, ListenTarget::Doc("c/a".into()), events));
    let (events, mut other) = mpsc::unbounded_channel();
    session.command(Command::Listen(5, ListenTarget::Doc("c/b".into()), events));
    drain(&mut session);
    let refused = json!({"type": "error", "rid": 4, "error": {"code": "too_many_listeners", "message": "no"}});
    session.handle_frame(&refused.to_string()).unwrap();
    match stream.try_recv() {
        Ok(Event::Failed(e)) => {
            assert_eq!(e.code(), Some(blaze_protocol::ErrorCode::TooManyListeners))
        }
        other => panic!("{other:?}"),
    }

    let snap = json!({"type": "snapshot", "rid": 5, "target": 2, "seq": 3, "docs": []});
    session.handle_frame(&snap.to_string()).unwrap();
    other.try_recv().unwrap();
    let bad = json!({"type": "change", "target": 2, "seq": 4, "changes": [{"type": "removed", "path": "c/b", "old_index": 0}]});
    assert!(matches!(
        session.handle_frame(&bad.to_string()),
        Err(Error::Protocol(_))
    ));
    session.disconnected(1, "protocol");
    session.connected();
    let sent = drain(&mut session);
    assert_eq!(
        sent,
        [json!({"type": "listen", "rid": 5, "doc": "c/b"})],
        "no since: start over"
    );
}

#[test]
fn unlisten_and_timed_out_requests_send_nothing_more() {
    let mut session = Session::new(None, Arc::new(AtomicU64::new(10)));
    let (events, _stream) = mpsc::unbounded_channel();
    session.command(Command::Listen(1, ListenTarget::Doc("c/a".into()), events));
    session.command(Command::Unlisten(1));
    let (reply, answer) = oneshot::channel();
    session.command(Command::Request(Request::Get("c/a".into()), reply));
    drop(answer);
    assert!(
        !session.has_work(),
        "a dropped listener and an abandoned read need no connection"
    );
    session.connected();
    assert_eq!(drain(&mut session), Vec::<Value>::new());
}
