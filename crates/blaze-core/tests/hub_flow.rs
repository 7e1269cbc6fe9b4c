//! Flow control of the hub (spec 10.4.6): output counts as unread until the
//! client acknowledges it; a connection past half of the bound has its
//! requests held and answered in order as acks arrive; one past the bound
//! (unread frames, or held requests) is closed with 4008; and no connection
//! waits for another.

use blaze_core::{Database, Hub, HubConfig, Limits, MemoryStorage, Output};
use blaze_protocol::{decode_server, CloseCode, ServerMessage};

const NOW: u64 = 1_000;

fn hub() -> Hub<MemoryStorage> {
    Hub::new(
        Database::new(MemoryStorage::new(), Limits::default()),
        HubConfig::default(),
    )
}

fn open(hub: &mut Hub<MemoryStorage>, conn: u64) {
    hub.handle_open(conn, 0);
    hub.handle_frame(conn, r#"{"type":"hello","protocol":1}"#, NOW);
}

fn get(rid: u64) -> String {
    format!(r#"{{"type":"get","rid":{rid},"path":"c/d"}}"#)
}

/// What the hub did for one connection, in order.
#[derive(Debug, Default)]
struct Seen {
    /// The `rid` of each answer, and `None` for frames without one.
    rids: Vec<Option<u64>>,
    closed: Option<CloseCode>,
}

fn drain(hub: &mut Hub<MemoryStorage>, conn: u64, seen: &mut Seen) {
    while let Some(output) = hub.poll_output() {
        match output {
            Output::Send { conn: c, frame } if c == conn => {
                let rid = match decode_server(&frame, &Limits::default()).unwrap() {
                    ServerMessage::Doc { rid, .. } => Some(rid),
                    _ => None,
                };
                seen.rids.push(rid);
            }
            Output::Close { conn: c, code } if c == conn => seen.closed = Some(code),
            _ => {}
        }
    }
}

#[test]
fn a_burst_is_answered_in_order_without_a_close_when_the_client_acks() {
    let mut hub = hub();
    open(&mut hub, 1);
    // 4,200 requests arrive before the client has read anything (one group).
    for rid in 1..=4200 {
        hub.handle_frame(1, &get(rid), NOW);
    }
    let mut seen = Seen::default();
    drain(&mut hub, 1, &mut seen);
    // Half of the 4,096-frame bound went out (welcome included); the rest wait.
    assert_eq!(seen.rids.len(), 2049);
    // The client reads and acks every 64 frames, as the reference clients do.
    let mut acked = 0;
    while acked < seen.rids.len() {
        acked = (acked + 64).min(seen.rids.len());
        hub.handle_frame(1, &format!(r#"{{"type":"ack","frames":{acked}}}"#), NOW);
        drain(&mut hub, 1, &mut seen);
    }
    assert_eq!(seen.closed, None);
    let answered: Vec<u64> = seen.rids.iter().flatten().copied().collect();
    assert_eq!(answered, (1..=4200).collect::<Vec<u64>>());
}

/// A hub over the same database with its memory lost, as a Durable Object
/// woken from hibernation (or reset) rebuilds it from the saved sessions;
/// returns it and the connections whose sessions restored.
fn rebuilt(hub: Hub<MemoryStorage>, conns: &[u64]) -> (Hub<MemoryStorage>, Vec<u64>) {
    let sessions: Vec<_> = conns
        .iter()
        .map(|&c| (c, hub.session(c).unwrap()))
        .collect();
    let mut hub = Hub::new(hub.into_database(), HubConfig::default());
    let restored = sessions
        .iter()
        .filter(|(conn, session)| hub.restore(*conn, session).is_ok())
        .map(|(conn, _)| *conn)
        .collect();
    (hub, restored)
}

#[test]
fn a_connection_with_held_requests_does_not_restore_after_the_memory_is_lost() {
    let mut hub = hub();
    open(&mut hub, 1);
    open(&mut hub, 2);
    hub.handle_frame(
        2,
        r#"{"type":"listen","rid":1,"query":{"collection":"c"}}"#,
        NOW,
    );
    // Connection 1 pipelines a burst: its last requests are held.
    for rid in 1..=2100 {
        hub.handle_frame(1, &get(rid), NOW);
    }
    let mut seen = Seen::default();
    drain(&mut hub, 1, &mut seen);
    assert_eq!(seen.rids.len(), 2049);
    assert!(hub.session(1).unwrap().waiting);
    assert!(!hub.session(2).unwrap().waiting);
    // The held requests are lost with the memory: no ack could ever have
    // them answered, so connection 1 must be closed (and resume) rather
    // than restored; connection 2 restores.
    let (_, restored) = rebuilt(hub, &[1, 2]);
    assert_eq!(restored, [2]);
}

#[test]
fn a_connection_whose_held_requests_were_answered_restores() {
    let mut hub = hub();
    open(&mut hub, 1);
    for rid in 1..=2100 {
        hub.handle_frame(1, &get(rid), NOW);
    }
    hub.handle_frame(1, r#"{"type":"ack","frames":2049}"#, NOW);
    let mut seen = Seen::default();
    drain(&mut hub, 1, &mut seen);
    // welcome and every answer
    assert_eq!(seen.rids.len(), 1 + 2100);
    assert!(!hub.session(1).unwrap().waiting);
    let (_, restored) = rebuilt(hub, &[1]);
    assert_eq!(restored, [1]);
}

#[test]
fn a_reader_that_never_acks_is_closed_once_its_held_requests_pass_the_bound() {
    let mut hub = hub();
    open(&mut hub, 1);
    let mut seen = Seen::default();
    let mut sent = 0;
    for rid in 1..=10_000 {
        hub.handle_frame(1, &get(rid), NOW);
        sent = rid;
        drain(&mut hub, 1, &mut seen);
        if seen.closed.is_some() {
            break;
        }
    }
    assert_eq!(seen.closed, Some(CloseCode::SlowConsumer));
    // 2,048 answers (with welcome, half the bound), then 4,097 held requests.
    assert_eq!(seen.rids.len(), 2049);
    assert_eq!(sent, 2048 + 4097);
}

#[test]
fn a_slow_reader_delays_no_one_else_and_is_closed_when_its_changes_pass_the_bound() {
    let mut hub = Hub::new(
        Database::new(
            MemoryStorage::new(),
            Limits {
                max_unread_frames: 8,
                ..Limits::default()
            },
        ),
        HubConfig::default(),
    );
    let listen = r#"{"type":"listen","rid":1,"query":{"collection":"c"}}"#;
    open(&mut hub, 1);
    hub.handle_frame(1, listen, NOW);
    // Connection 1 stops reading: its further requests are held.
    for rid in 10..20 {
        hub.handle_frame(1, &get(rid), NOW);
    }
    open(&mut hub, 2);
    hub.handle_frame(2, listen, NOW);
    let (mut slow, mut prompt) = (Seen::default(), Seen::default());
    while let Some(output) = hub.poll_output() {
        match output {
            Output::Send { conn: 1, .. } => slow.rids.push(None),
            Output::Send { conn: 2, .. } => prompt.rids.push(None),
            _ => {}
        }
    }
    // welcome, snapshot, three answers (unread 5 > 8 / 2): the others wait.
    assert_eq!(slow.rids.len(), 5);
    let mut acked = 2;
    hub.handle_frame(2, r#"{"type":"ack","frames":2}"#, NOW);
    for n in 0..5 {
        // Connection 2 commits; both listeners get the change at once.
        let commit = format!(
            r#"{{"type":"commit","rid":{},"collection":"c","writes":[{{"op":"set","id":"d{n}","data":{{}}}}]}}"#,
            100 + n
        );
        hub.handle_frame(2, &commit, NOW);
        let before = prompt.rids.len();
        let mut to_slow = 0;
        while let Some(output) = hub.poll_output() {
            match output {
                Output::Send { conn: 1, .. } => to_slow += 1,
                Output::Send { conn: 2, .. } => prompt.rids.push(None),
                Output::Close { conn: 1, code } => slow.closed = Some(code),
                Output::Close { conn: 2, code } => prompt.closed = Some(code),
                _ => {}
            }
        }
        // The change and the answer, for connection 2, whatever connection 1 does.
        assert_eq!(prompt.rids.len() - before, 2);
        acked += 2;
        hub.handle_frame(2, &format!(r#"{{"type":"ack","frames":{acked}}}"#), NOW);
        // Connection 1 has 5 unread: changes 1 to 3 fit the bound of 8, the 4th closes it.
        match n {
            0..=2 => assert_eq!((to_slow, slow.closed), (1, None)),
            3 => assert_eq!((to_slow, slow.closed), (1, Some(CloseCode::SlowConsumer))),
            _ => assert_eq!(to_slow, 0),
        }
    }
    assert_eq!(prompt.closed, None);
}

#[test]
fn answer_bytes_count_the_answers_handed_out_until_the_outputs_are_drained() {
    let mut hub = hub();
    open(&mut hub, 1);
    open(&mut hub, 2);
    let welcomes = hub.answer_bytes();
    assert!(welcomes > 0, "each welcome answers a hello");
    drain(&mut hub, 1, &mut Seen::default());
    assert_eq!(hub.answer_bytes(), 0, "nothing waits once drained");
    hub.handle_frame(
        2,
        r#"{"type":"listen","rid":1,"query":{"collection":"c"}}"#,
        NOW,
    );
    let snapshot = hub.answer_bytes();
    drain(&mut hub, 2, &mut Seen::default());
    let commit = r#"{"type":"commit","rid":2,"collection":"c","writes":[{"op":"set","id":"d","data":{"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}}]}"#;
    hub.handle_frame(1, commit, NOW);
    let mut frames = Vec::new();
    let counted = hub.answer_bytes();
    while let Some(output) = hub.poll_output() {
        if let Output::Send { conn, frame } = output {
            frames.push((conn, frame.len()));
        }
    }
    // The listener's `change` is shared by every connection that follows the
    // target, so it is not an answer; the writer's `committed` is.
    assert_eq!(frames.len(), 2);
    let committed: usize = frames.iter().filter(|(c, _)| *c == 1).map(|(_, n)| n).sum();
    assert_eq!(counted, committed);
    assert!(snapshot > 0 && counted > 0);
}
