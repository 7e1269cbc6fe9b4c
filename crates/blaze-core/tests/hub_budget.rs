//! The hub's memory budget (spec 10.4.8): a `listen` past the object's
//! budget, or past its connection's share, is refused with
//! `resource_exhausted`, and nothing else changes; its results are read
//! only until they pass the share, and a resume whose changes are more than
//! the share is answered with a snapshot (spec 10.4.4).

mod support;

use blaze_core::{Database, Hub, HubConfig, Limits, MemoryStorage, Output, Storage};
use blaze_protocol::CollectionPath;
use serde_json::{json, Value};
use support::Probe;

const MIB: usize = 1024 * 1024;

/// A hub over four documents of about 100 KB each, in collection `c`.
fn hub(config: HubConfig) -> Hub<MemoryStorage> {
    hub_of(config, 4)
}

/// A hub over `docs` documents of about 100 KB each (`n` = 0, 1, …), in collection `c`.
fn hub_of(config: HubConfig, docs: u64) -> Hub<MemoryStorage> {
    hub_over(MemoryStorage::new(), config, docs)
}

/// [`hub_of`] over `storage`.
fn hub_over<S: Storage>(storage: S, config: HubConfig, docs: u64) -> Hub<S> {
    let mut hub = Hub::new(Database::new(storage, Limits::default()), config);
    let big = "x".repeat(100_000);
    let writes: Vec<blaze_protocol::Write> = (0..docs)
        .map(|i| blaze_protocol::Write {
            id: format!("big{i}"),
            kind: blaze_protocol::WriteKind::Set {
                data: json!({ "n": i, "text": big }),
            },
            precondition: Default::default(),
        })
        .collect();
    hub.handle_commit(
        &blaze_core::Caller::admin(),
        &CollectionPath::parse("c").unwrap(),
        &writes,
        0,
    )
    .unwrap();
    hub
}

fn open<S: Storage>(hub: &mut Hub<S>, conn: u64) {
    hub.handle_open(conn, 0);
    hub.handle_frame(conn, r#"{"type":"hello","protocol":1}"#, 0);
}

/// Listens on `conn` to the distinct query `n != 1000 + value` (every document).
fn listen(hub: &mut Hub<MemoryStorage>, conn: u64, rid: u64, value: u64) {
    listen_where(hub, conn, rid, "!=", 1000 + value);
}

/// Listens on `conn` to the query `n <op> value`.
fn listen_where<S: Storage>(hub: &mut Hub<S>, conn: u64, rid: u64, op: &str, value: u64) {
    let frame = format!(
        r#"{{"type":"listen","rid":{rid},"query":{{"collection":"c","where":{{"field":"n","op":"{op}","value":{value}}}}}}}"#
    );
    hub.handle_frame(conn, &frame, 0);
}

/// The frames sent to each connection since the last call, parsed; panics on a close.
fn drain<S: Storage>(hub: &mut Hub<S>) -> Vec<(u64, Value)> {
    let mut sent = Vec::new();
    while let Some(output) = hub.poll_output() {
        match output {
            Output::Send { conn, frame } => {
                sent.push((conn, serde_json::from_str(&frame).unwrap()));
            }
            Output::Close { .. } => panic!("nobody is closed: {output:?}"),
            Output::Event(_) => {}
        }
    }
    sent
}

fn error_code(frame: &Value) -> Option<&str> {
    frame["error"]["code"].as_str()
}

/// An edit of `big0`, committed by `conn`; returns the connections told of it.
fn edit(hub: &mut Hub<MemoryStorage>, conn: u64, rid: u64) -> Vec<u64> {
    let frame = format!(
        r#"{{"type":"commit","rid":{rid},"collection":"c","writes":[{{"op":"patch","id":"big0","patch":[{{"op":"replace","path":"/n","value":{}}}]}}]}}"#,
        100 + rid
    );
    hub.handle_frame(conn, &frame, 0);
    let sent = drain(hub);
    assert!(
        sent.iter()
            .any(|(c, f)| *c == conn && f["type"] == "committed"),
        "the commit is acknowledged"
    );
    sent.iter()
        .filter(|(_, f)| f["type"] == "change")
        .map(|(c, _)| *c)
        .collect()
}

#[test]
fn a_connection_past_its_share_is_refused_and_keeps_its_listeners() {
    let config = HubConfig {
        memory_budget: 64 * MIB,
        connection_budget: MIB,
        ..HubConfig::default()
    };
    let mut hub = hub_of(config, 16);
    open(&mut hub, 1);
    open(&mut hub, 2);
    listen_where(&mut hub, 1, 1, "==", 0);
    drain(&mut hub);
    // Each listener holds one ~100 KB body of its own: ten fit in 1 MiB,
    // the eleventh does not.
    let mut refused = None;
    for rid in 1..=16 {
        listen_where(&mut hub, 2, rid, "==", rid - 1);
        let sent = drain(&mut hub);
        if let Some((_, frame)) = sent.iter().find(|(_, f)| error_code(f).is_some()) {
            assert_eq!(error_code(frame), Some("resource_exhausted"), "{frame}");
            assert_eq!(frame["rid"], rid);
            refused = Some(rid);
            break;
        }
    }
    assert_eq!(
        refused,
        Some(11),
        "the eleventh body is past the connection's share"
    );
    assert_eq!(
        hub.stats().listeners,
        11,
        "the bystander's and the ten first"
    );
    // The refusal disturbed nothing: the bystander and the attacker's
    // listener on `big0` still hear commits.
    let mut told = edit(&mut hub, 1, 100);
    told.sort();
    assert_eq!(told, [1, 2]);
}

#[test]
fn listeners_of_one_connection_on_the_same_bodies_count_them_once() {
    let config = HubConfig {
        memory_budget: 64 * MIB,
        connection_budget: MIB,
        ..HubConfig::default()
    };
    let mut hub = hub(config);
    open(&mut hub, 1);
    drain(&mut hub);
    // Forty distinct queries over the same four ~100 KB bodies: counted in
    // full they would be 16 MB, far past the 1 MiB share; the connection
    // holds 400 KB of bodies however many of its listeners hold them.
    for rid in 1..=40 {
        listen(&mut hub, 1, rid, rid);
        let sent = drain(&mut hub);
        assert!(
            sent.len() == 1 && error_code(&sent[0].1).is_none(),
            "listen {rid} is answered with its snapshot"
        );
        // The client reads what it is sent (welcome and each snapshot).
        let ack = format!(r#"{{"type":"ack","frames":{}}}"#, rid + 1);
        hub.handle_frame(1, &ack, 0);
    }
    assert_eq!(hub.stats().listeners, 40);
    assert_eq!(
        edit(&mut hub, 1, 100).len(),
        40,
        "every listener hears the edit"
    );
}

#[test]
fn shared_bodies_count_once_against_the_object_budget() {
    let config = HubConfig {
        memory_budget: MIB,
        connection_budget: MIB,
        ..HubConfig::default()
    };
    let mut hub = hub(config);
    open(&mut hub, 1);
    listen(&mut hub, 1, 1, 0);
    drain(&mut hub);
    // One distinct listen per connection: each adds its ids and tables, and
    // shares the ~400 KB of bodies, so hundreds fit before the budget.
    let mut accepted = 0u64;
    let mut refused = false;
    for conn in 2..3_000u64 {
        open(&mut hub, conn);
        listen(&mut hub, conn, 1, conn);
        let sent = drain(&mut hub);
        if let Some((_, frame)) = sent.iter().find(|(_, f)| error_code(f).is_some()) {
            assert_eq!(error_code(frame), Some("resource_exhausted"), "{frame}");
            refused = true;
            break;
        }
        accepted += 1;
    }
    assert!(refused, "the object's budget refuses a listen in the end");
    assert!(
        accepted > 100,
        "bodies are counted once: {accepted} listens fit"
    );
    let told = edit(&mut hub, 1, 100);
    assert_eq!(
        told.len() as u64,
        accepted + 1,
        "every accepted listener hears the edit"
    );
}

#[test]
fn connections_past_the_most_are_refused_and_the_open_ones_keep_working() {
    let config = HubConfig {
        max_connections: 3,
        ..HubConfig::default()
    };
    let mut hub = hub(config);
    for conn in 1..=3 {
        assert!(hub.admit_connection(None).is_ok(), "connection {conn} fits");
        open(&mut hub, conn);
        listen_where(&mut hub, conn, 1, "==", 0);
    }
    drain(&mut hub);
    let refused = hub.admit_connection(None).expect_err("a fourth is refused");
    assert_eq!(refused.code.as_str(), "resource_exhausted");
    // The refusal disturbed nobody: every listener hears an edit.
    assert_eq!(edit(&mut hub, 1, 2), vec![1, 2, 3]);
    // A closed connection frees its place.
    hub.handle_close(2);
    assert!(hub.admit_connection(None).is_ok(), "a place is free again");
    open(&mut hub, 4);
    assert!(hub.admit_connection(None).is_err(), "and taken again");
}

#[test]
fn a_connection_silent_past_its_time_to_say_hello_is_closed_and_frees_its_place() {
    let config = HubConfig {
        max_connections: 2,
        hello_timeout_ms: 10_000,
        ..HubConfig::default()
    };
    let mut hub = hub(config);
    open(&mut hub, 1);
    listen_where(&mut hub, 1, 1, "==", 0);
    hub.handle_open(2, 5_000);
    drain(&mut hub);
    assert_eq!(hub.poll_timeout(), Some(15_000), "the silent one's time");
    assert!(hub.admit_connection(None).is_err(), "both places are taken");
    hub.handle_timeout(14_999);
    assert!(drain(&mut hub).is_empty(), "not yet");
    hub.handle_timeout(15_000);
    let mut outputs = Vec::new();
    while let Some(output) = hub.poll_output() {
        outputs.push(output);
    }
    let error = outputs.iter().find_map(|o| match o {
        Output::Send { conn: 2, frame } => Some(serde_json::from_str::<Value>(frame).unwrap()),
        _ => None,
    });
    assert_eq!(
        error.as_ref().and_then(error_code),
        Some("handshake_required")
    );
    assert!(
        outputs
            .iter()
            .any(|o| matches!(o, Output::Close { conn: 2, .. })),
        "{outputs:?}"
    );
    assert!(hub.admit_connection(None).is_ok(), "its place is free");
    assert_eq!(hub.poll_timeout(), None, "nothing else is due");
    // The connection that said hello keeps its listener.
    assert_eq!(edit(&mut hub, 1, 2), vec![1]);
    // A connection that says hello in time is not closed at its time.
    hub.handle_open(3, 20_000);
    hub.handle_frame(3, r#"{"type":"hello","protocol":1}"#, 29_000);
    drain(&mut hub);
    assert_eq!(hub.poll_timeout(), None);
    hub.handle_timeout(40_000);
    assert!(drain(&mut hub).is_empty(), "nobody is closed");
}

#[test]
fn a_silent_connection_restored_after_the_hub_lost_its_memory_is_due_at_once() {
    let mut before = hub(HubConfig::default());
    before.handle_open(1, 0);
    let saved = before
        .session(1)
        .expect("a session for the silent connection");
    let mut after = hub(HubConfig::default());
    after.set_now(50_000);
    after.restore(1, &saved).expect("restores");
    assert_eq!(after.poll_timeout(), Some(50_000));
    after.handle_timeout(50_000);
    let mut closed = false;
    while let Some(output) = after.poll_output() {
        closed |= matches!(output, Output::Close { conn: 1, .. });
    }
    assert!(closed, "closed with handshake_required");
}

#[test]
fn a_listen_past_the_share_is_refused_once_its_results_pass_it_before_the_rest_are_read() {
    let config = HubConfig {
        connection_budget: MIB,
        ..HubConfig::default()
    };
    let storage = Probe::counting(MemoryStorage::new());
    let read = storage.read.clone();
    let mut hub = hub_over(storage, config, 40);
    open(&mut hub, 1);
    drain(&mut hub);
    read.set(0);
    // 40 documents of 100 KB, every one a result: the first ten pass 1 MiB.
    listen_where(&mut hub, 1, 1, "!=", 1000);
    let sent = drain(&mut hub);
    assert_eq!(
        error_code(&sent[0].1),
        Some("resource_exhausted"),
        "{sent:?}"
    );
    assert!(read.get() <= 12, "{} documents read for 1 MiB", read.get());
    assert_eq!(hub.stats().targets, 0);
    // A narrower listen fits, and is answered.
    listen_where(&mut hub, 1, 2, "<", 5);
    let sent = drain(&mut hub);
    assert_eq!(sent[0].1["type"], "snapshot");
    assert_eq!(sent[0].1["docs"].as_array().map(Vec::len), Some(5));
}

/// Edits `big0`'s text `times` times (each change log entry holds about
/// 200 KB: the document before and after); returns the last seq.
fn rewrite_big0(hub: &mut Hub<MemoryStorage>, times: u64) -> u64 {
    let mut last = 0;
    for i in 0..times {
        let text = format!("{i}").repeat(100_000);
        let writes = vec![blaze_protocol::Write {
            id: "big0".into(),
            kind: blaze_protocol::WriteKind::Merge {
                patch: json!({ "text": text }),
            },
            precondition: Default::default(),
        }];
        let done = hub
            .handle_commit(
                &blaze_core::Caller::admin(),
                &CollectionPath::parse("c").unwrap(),
                &writes,
                1,
            )
            .unwrap();
        last = done.seq;
    }
    drain(hub);
    last
}

#[test]
fn a_resume_whose_changes_pass_the_share_is_answered_with_a_reset_snapshot() {
    let config = HubConfig {
        connection_budget: MIB,
        ..HubConfig::default()
    };
    let mut hub = hub_of(config, 4);
    open(&mut hub, 1);
    drain(&mut hub);
    let since = hub
        .database()
        .storage()
        .seq(&CollectionPath::parse("c").unwrap())
        .unwrap();
    // Two edits (about 400 KB of changes): resumed.
    rewrite_big0(&mut hub, 2);
    let resume = |rid: u64| {
        format!(
            r#"{{"type":"listen","rid":{rid},"since":{since},"query":{{"collection":"c","where":{{"field":"n","op":"==","value":0}}}}}}"#
        )
    };
    hub.handle_frame(1, &resume(1), 1);
    let sent = drain(&mut hub);
    assert_eq!(sent[0].1["type"], "resumed", "{}", sent[0].1["type"]);
    assert_eq!(sent[0].1["changes"].as_array().map(Vec::len), Some(1));
    // Six more (2 MB of changes since `since`): a snapshot with `reset`,
    // the document as it is now.
    let last = rewrite_big0(&mut hub, 6);
    hub.handle_frame(1, &resume(2), 1);
    let sent = drain(&mut hub);
    let answer = &sent[0].1;
    assert_eq!(
        (answer["type"].as_str(), answer["reset"].as_bool()),
        (Some("snapshot"), Some(true)),
        "{}",
        answer["type"]
    );
    assert_eq!(answer["seq"], last);
    assert_eq!(answer["docs"][0]["version"], last);
}
