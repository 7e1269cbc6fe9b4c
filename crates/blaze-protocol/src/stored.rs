//! The JSON a server stores: a document side of the change log and a
//! connection's saved session. Existing deployments hold these bytes, so the
//! encoding never changes: fields are declared in the (alphabetical) order
//! they were first written in, and the tests decode today's rows.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

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
/// Object woken from hibernation) can rebuild it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
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
            }
        );
        assert_eq!(serde_json::to_string(&session).unwrap(), stored);
        let waiting = r#"{"listeners":[],"open":true,"waiting":true}"#;
        let held: StoredSession = serde_json::from_str(waiting).unwrap();
        assert!(held.waiting);
        assert_eq!(serde_json::to_string(&held).unwrap(), waiting);
        let fresh = r#"{"listeners":[],"open":false}"#;
        let empty: StoredSession = serde_json::from_str(fresh).unwrap();
        assert_eq!(empty, StoredSession::default());
        assert_eq!(serde_json::to_string(&empty).unwrap(), fresh);
    }

    #[test]
    fn rows_that_are_not_these_shapes_are_errors() {
        assert!(serde_json::from_str::<StoredDocument>(r#"{"data":{}}"#).is_err());
        assert!(serde_json::from_str::<StoredSession>(r#"{"listeners":[[1]]}"#).is_err());
    }
}
