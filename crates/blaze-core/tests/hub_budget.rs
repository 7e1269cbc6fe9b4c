//! The hub's memory budget (spec 10.4.8): a `listen` past the object's
//! budget, or past its connection's share, is refused with
//! `resource_exhausted`, and nothing else changes.

use blaze_core::{Database, Hub, HubConfig, Limits, MemoryStorage, Output};
use blaze_protocol::CollectionPath;
use serde_json::{json, Value};

const MIB: usize = 1024 * 1024;

/// A hub over four documents of about 100 KB each, in collection `c`.
fn hub(config: HubConfig) -> Hub<MemoryStorage> {
    let mut hub = Hub::new(
        Database::new(MemoryStorage::new(), Limits::default()),
        config,
    );
    let big = "x".repeat(100_000);
    let writes: Vec<blaze_protocol::Write> = (0..4)
        .map(|i| blaze_protocol::Write {
            id: format!("big{i}"),
            kind: blaze_protocol::WriteKind::Set {
                data: json!({ "n": i, "text": big }),
            },
            precondition: Default::default(),
        })
        .collect();
    hub.handle_commit(&CollectionPath::parse("c").unwrap(), &writes, 0)
        .unwrap();
    hub
}

fn open(hub: &mut Hub<MemoryStorage>, conn: u64) {
    hub.handle_open(conn);
    hub.handle_frame(conn, r#"{"type":"hello","protocol":1}"#, 0);
}

/// Listens on `conn` to the distinct query `n != 1000 + value` (every document).
fn listen(hub: &mut Hub<MemoryStorage>, conn: u64, rid: u64, value: u64) {
    let value = 1000 + value;
    let frame = format!(
        r#"{{"type":"listen","rid":{rid},"query":{{"collection":"c","where":{{"field":"n","op":"!=","value":{value}}}}}}}"#
    );
    hub.handle_frame(conn, &frame, 0);
}

/// The frames sent to each connection since the last call, parsed; panics on a close.
fn drain(hub: &mut Hub<MemoryStorage>) -> Vec<(u64, Value)> {
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
    };
    let mut hub = hub(config);
    open(&mut hub, 1);
    open(&mut hub, 2);
    listen(&mut hub, 1, 1, 0);
    drain(&mut hub);
    // Each listener holds the four ~100 KB bodies (counted in full for its
    // connection): two fit in 1 MiB, the third does not.
    let mut refused = None;
    for rid in 1..=10 {
        listen(&mut hub, 2, rid, rid);
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
        Some(3),
        "the third listen is past the connection's share"
    );
    assert_eq!(
        hub.stats().listeners,
        3,
        "the bystander's and the two first"
    );
    // The refusal disturbed nothing: the bystander and both of the
    // attacker's listeners still hear commits.
    let mut told = edit(&mut hub, 1, 100);
    told.sort();
    assert_eq!(told, [1, 2, 2]);
}

#[test]
fn shared_bodies_count_once_against_the_object_budget() {
    let config = HubConfig {
        memory_budget: MIB,
        connection_budget: MIB,
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
