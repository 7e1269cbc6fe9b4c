//! The JSON a server stores: a document side of the change log and a
//! connection's saved session. Existing deployments hold these bytes, so the
//! encoding never changes: fields are declared in the (alphabetical) order
//! they were first written in, and the tests decode today's rows.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::Identity;

/// A document as the change log stores one side of a write (its id is a column).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredDocument {
    /// When it was created (milliseconds since the Unix epoch).
    pub create_time: u64,
    /// Its contents.
    #[serde(default)]
    pub data: Map<String, Value>,
    /// When it was last written.
    pub update_time: u64,
    /// Its version: the sequence number of its last write.
    pub version: u64,
}

/// A connection's state, saved so a server that loses its memory (a Durable
/// Object woken from hibernation) can rebuild it. It holds the connection's
/// verified identity, never its credential.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StoredSession {
    /// The connection's listeners.
    #[serde(default)]
    pub listeners: Vec<StoredListener>,
    /// Whether the handshake was done.
    #[serde(default)]
    pub open: bool,
    /// Whether requests were held unanswered (such a session does not
    /// restore); left out when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub waiting: bool,
    /// When the connection's credential expires (milliseconds since the
    /// Unix epoch); left out when it does not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<u64>,
    /// The connection's verified identity; left out for the anonymous one
    /// (as every session stored before identities existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Identity>,
    /// Whether the client takes held `snapshot` entries (spec 10.4.9); left
    /// out when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub held_docs: bool,
    /// The network the connection came from (spec 10.1), if the server
    /// knew it; left out when it did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
}

/// One listener of a [`StoredSession`], stored as `[rid, target, key]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredListener(
    /// The listener's id (its `listen` rid).
    pub u64,
    /// The target it follows, as the client knows it.
    pub u64,
    /// What it listens to, as the hub's opaque key.
    pub String,
);

/// One listener saved as rows of its own (table `listeners`), so a
/// connection's session grows by rows, never past one row's size: the
/// listener's key is split into parts of at most [`KEY_PART_BYTES`], each
/// a row keyed `(conn, rid, part)`. Old databases hold listeners inside
/// their [`StoredSession`] row; both are read.
pub const KEY_PART_BYTES: usize = 512 * 1024;

/// Splits a listener key into the parts stored in its rows, each at most
/// [`KEY_PART_BYTES`] long and cut on a character boundary.
pub fn key_parts(key: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut rest = key;
    while rest.len() > KEY_PART_BYTES {
        let mut cut = KEY_PART_BYTES;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let (part, tail) = rest.split_at(cut);
        parts.push(part);
        rest = tail;
    }
    parts.push(rest);
    parts
}

/// One row of the `listeners` table: one part of one listener's key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredListenerPart {
    /// The listener's id (its `listen` rid).
    pub rid: u64,
    /// The part's position in the key, from 0.
    pub part: u64,
    /// The target it follows, as the client knows it.
    pub target: u64,
    /// This part of the key.
    pub key: String,
}

/// Joins one connection's rows, read in `(rid, part)` order, back into its
/// listeners: a row with part 0 starts a listener, the next parts extend it.
pub fn join_key_parts(rows: impl IntoIterator<Item = StoredListenerPart>) -> Vec<StoredListener> {
    let mut listeners: Vec<StoredListener> = Vec::new();
    for row in rows {
        match listeners.last_mut() {
            Some(last) if last.0 == row.rid && row.part > 0 => last.2.push_str(&row.key),
            _ => listeners.push(StoredListener(row.rid, row.target, row.key)),
        }
    }
    listeners
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn documents_keep_their_stored_bytes() {
        // As written by the change log before this type existed.
        let stored =
            r#"{"create_time":5,"data":{"a":[1,{"b":null}],"n":1.5},"update_time":9,"version":3}"#;
        let doc: StoredDocument = serde_json::from_str(stored).unwrap();
        assert_eq!(
            doc,
            StoredDocument {
                create_time: 5,
                data: json!({"a": [1, {"b": null}], "n": 1.5})
                    .as_object()
                    .unwrap()
                    .clone(),
                update_time: 9,
                version: 3,
            }
        );
        assert_eq!(serde_json::to_string(&doc).unwrap(), stored);
    }

    #[test]
    fn sessions_keep_their_stored_bytes() {
        let stored = r#"{"listeners":[[1,4,"q:{\"collection\":\"rooms\"}"],[2,5,"d:rooms/r1"]],"open":true}"#;
        let session: StoredSession = serde_json::from_str(stored).unwrap();
        assert_eq!(
            session,
            StoredSession {
                listeners: vec![
                    StoredListener(1, 4, r#"q:{"collection":"rooms"}"#.into()),
                    StoredListener(2, 5, "d:rooms/r1".into()),
                ],
                open: true,
                waiting: false,
                expires: None,
                identity: None,
                held_docs: false,
                network: None,
            }
        );
        assert_eq!(serde_json::to_string(&session).unwrap(), stored);
        let taking = r#"{"listeners":[],"open":true,"held_docs":true}"#;
        let takes: StoredSession = serde_json::from_str(taking).unwrap();
        assert!(
            takes.held_docs,
            "a client taking held entries still does after a wake"
        );
        assert_eq!(serde_json::to_string(&takes).unwrap(), taking);
        let waiting = r#"{"listeners":[],"open":true,"waiting":true}"#;
        let held: StoredSession = serde_json::from_str(waiting).unwrap();
        assert!(held.waiting);
        assert_eq!(serde_json::to_string(&held).unwrap(), waiting);
        let from = r#"{"listeners":[],"open":false,"network":"203.0.113.66"}"#;
        let from_network: StoredSession = serde_json::from_str(from).unwrap();
        assert_eq!(from_network.network.as_deref(), Some("203.0.113.66"));
        assert_eq!(serde_json::to_string(&from_network).unwrap(), from);
        let fresh = r#"{"listeners":[],"open":false}"#;
        let empty: StoredSession = serde_json::from_str(fresh).unwrap();
        assert_eq!(empty, StoredSession::default());
        assert_eq!(serde_json::to_string(&empty).unwrap(), fresh);
    }

    #[test]
    fn sessions_keep_their_identity_and_expiry() {
        let stored = r#"{"listeners":[],"open":true,"expires":1764552000000,"identity":{"kind":"user","uid":"alice","claims":{"role":"admin","sub":"alice"}}}"#;
        let session: StoredSession = serde_json::from_str(stored).unwrap();
        assert_eq!(session.expires, Some(1_764_552_000_000));
        assert_eq!(
            session.identity,
            Some(Identity::User {
                uid: "alice".into(),
                claims: json!({"sub": "alice", "role": "admin"})
                    .as_object()
                    .unwrap()
                    .clone(),
            })
        );
        assert_eq!(serde_json::to_string(&session).unwrap(), stored);
        let admin = r#"{"listeners":[],"open":true,"identity":{"kind":"admin"}}"#;
        let session: StoredSession = serde_json::from_str(admin).unwrap();
        assert_eq!(session.identity, Some(Identity::Admin));
        assert_eq!(serde_json::to_string(&session).unwrap(), admin);
    }

    #[test]
    fn keys_split_into_bounded_parts_that_join_back() {
        assert_eq!(key_parts(""), vec![""]);
        assert_eq!(key_parts("d:rooms/r1"), vec!["d:rooms/r1"]);
        let exact = "x".repeat(KEY_PART_BYTES);
        assert_eq!(key_parts(&exact), vec![exact.as_str()]);
        // Multi-byte characters are never cut.
        let long = format!("q:{}", "é".repeat(KEY_PART_BYTES));
        let parts = key_parts(&long);
        assert_eq!(parts.len(), 3);
        assert!(parts.iter().all(|p| p.len() <= KEY_PART_BYTES));
        assert_eq!(parts.concat(), long);
    }

    #[test]
    fn listener_rows_join_back_into_listeners() {
        let long = format!("q:{}", "é".repeat(KEY_PART_BYTES));
        let listeners = vec![
            StoredListener(1, 4, "d:rooms/r1".into()),
            StoredListener(2, 5, long),
            StoredListener(3, 5, String::new()),
        ];
        let rows: Vec<StoredListenerPart> = listeners
            .iter()
            .flat_map(|StoredListener(rid, target, key)| {
                key_parts(key)
                    .into_iter()
                    .enumerate()
                    .map(|(part, key)| StoredListenerPart {
                        rid: *rid,
                        part: part as u64,
                        target: *target,
                        key: key.to_owned(),
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(rows.len(), 5);
        assert_eq!(join_key_parts(rows), listeners);
    }

    #[test]
    fn rows_that_are_not_these_shapes_are_errors() {
        assert!(serde_json::from_str::<StoredDocument>(r#"{"data":{}}"#).is_err());
        assert!(serde_json::from_str::<StoredSession>(r#"{"listeners":[[1]]}"#).is_err());
    }
}
