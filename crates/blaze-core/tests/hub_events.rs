//! The hub's events: what a driver logs, told beside the frames, so it never
//! parses a frame it is handed.

use std::ops::Bound;

use blaze_core::{
    CommitKey, Database, DocIter, EntryIter, Hub, HubConfig, HubEvent, KeyRange, Limits, LogIter,
    MemoryStorage, Output, Storage, StorageBatch, StorageError, StoredDoc,
};
use blaze_protocol::{CloseCode, CollectionPath, CommitResult, ErrorCode};
use serde_json::Value;

/// Memory storage whose commits fail.
struct FailingCommits(MemoryStorage);

impl Storage for FailingCommits {
    fn seq(&self, c: &CollectionPath) -> Result<u64, StorageError> {
        self.0.seq(c)
    }
    fn get(&self, c: &CollectionPath, id: &str) -> Result<Option<StoredDoc>, StorageError> {
        self.0.get(c, id)
    }
    fn scan(
        &self,
        c: &CollectionPath,
        range: (Bound<&str>, Bound<&str>),
        reverse: bool,
    ) -> Result<DocIter<'_>, StorageError> {
        self.0.scan(c, range, reverse)
    }
    fn scan_index(
        &self,
        c: &CollectionPath,
        index: &str,
        range: KeyRange,
        reverse: bool,
    ) -> Result<EntryIter<'_>, StorageError> {
        self.0.scan_index(c, index, range, reverse)
    }
    fn log(&self, c: &CollectionPath, after: u64) -> Result<LogIter<'_>, StorageError> {
        self.0.log(c, after)
    }
    fn remembered(
        &self,
        c: &CollectionPath,
        key: &CommitKey,
    ) -> Result<Option<CommitResult>, StorageError> {
        self.0.remembered(c, key)
    }
    fn apply(&mut self, _: &CollectionPath, _: StorageBatch) -> Result<(), StorageError> {
        Err(StorageError("sqlite: disk I/O error".into()))
    }
}

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
        Database::new(FailingCommits(MemoryStorage::new()), Limits::default()),
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
