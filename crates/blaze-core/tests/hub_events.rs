//! The hub's events: what a driver logs, told beside the frames, so it never
//! parses a frame it is handed.

mod support;

use blaze_core::{Database, Hub, HubConfig, HubEvent, Limits, MemoryStorage, Output, Storage};
use blaze_protocol::{CloseCode, ErrorCode};
use serde_json::Value;
use support::Probe;

fn drain<S: Storage>(hub: &mut Hub<S>) -> Vec<Output> {
    std::iter::from_fn(|| hub.poll_output()).collect()
}

#[test]
fn a_refused_handshake_is_told_then_sent_then_closed() {
    let mut hub = Hub::new(
        Database::new(MemoryStorage::new(), Limits::default()),
        HubConfig::default(),
    );
    hub.handle_open(1, 0);
    hub.handle_frame(1, r#"{"type":"hello","protocol":9}"#, 0);
    let out = drain(&mut hub);
    assert_eq!(out.len(), 3, "{out:?}");
    assert_eq!(
        out[0],
        Output::Event(HubEvent::Refused {
            conn: 1,
            rid: None,
            code: ErrorCode::UnsupportedProtocol,
            detail: None,
        })
    );
    assert!(
        matches!(&out[1], Output::Send { conn: 1, frame } if frame.contains("unsupported_protocol"))
    );
    assert_eq!(
        out[2],
        Output::Close {
            conn: 1,
            code: CloseCode::UnsupportedProtocol
        }
    );
}

#[test]
fn a_storage_failure_keeps_its_detail_off_the_wire() {
    let mut hub = Hub::new(
        Database::new(
            Probe::failing_commits(MemoryStorage::new()),
            Limits::default(),
        ),
        HubConfig::default(),
    );
    hub.handle_open(1, 0);
    hub.handle_frame(1, r#"{"type":"hello","protocol":1}"#, 0);
    drain(&mut hub);
    let commit = r#"{"type":"commit","rid":7,"collection":"rooms","writes":[{"op":"set","id":"r1","data":{}}]}"#;
    hub.handle_frame(1, commit, 0);
    let out = drain(&mut hub);
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(
        out[0],
        Output::Event(HubEvent::Refused {
            conn: 1,
            rid: Some(7),
            code: ErrorCode::Internal,
            detail: Some("sqlite: disk I/O error".into()),
        })
    );
    let Output::Send { conn: 1, frame } = &out[1] else {
        panic!("an error frame: {out:?}");
    };
    let frame: Value = serde_json::from_str(frame).unwrap();
    assert_eq!(frame["error"]["code"], "internal");
    assert!(!frame.to_string().contains("sqlite"), "{frame}");
}
