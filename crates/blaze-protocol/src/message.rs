//! Frames: what a client sends and what a server answers.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{AuthState, CollectionPath, CommitId, DocPath, ErrorCode, Limits, Query, Write};

/// A `rid` member where none is required: the number when it is an unsigned integer.
fn readable_rid<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<u64>, D::Error> {
    Ok(Value::deserialize(deserializer)?.as_u64())
}

/// A frame from client to server, tagged by `type`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// The first frame of every connection.
    Hello {
        /// The protocol version the client speaks; must be 1.
        protocol: u32,
        /// An optional credential, checked by the server's auth (if any).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        auth: Option<String>,
        /// The client accepts held entries in `snapshot` frames (spec
        /// 10.4.9): documents it already holds, named instead of sent again.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        held_docs: bool,
        /// `hello` needs no `rid`; one that is an unsigned integer is echoed
        /// by an error answering this frame (a second `hello`), anything else is ignored.
        #[serde(
            default,
            deserialize_with = "readable_rid",
            skip_serializing_if = "Option::is_none"
        )]
        rid: Option<u64>,
    },
    /// Read one document.
    Get {
        /// Request id, echoed in the answer.
        rid: u64,
        /// The document path.
        path: DocPath,
    },
    /// Apply an atomic batch of writes to documents of one collection.
    Commit {
        /// Request id, echoed in the answer.
        rid: u64,
        /// The collection path every write's `id` is in.
        collection: CollectionPath,
        /// The writes, applied in order, all or none.
        writes: Vec<Write>,
        /// An optional client-chosen id (1 to 64 of `A-Z a-z 0-9 - _`) that
        /// makes a retry safe: a commit whose id the server remembers is not
        /// applied again, its original outcome is answered instead.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        commit_id: Option<CommitId>,
    },
    /// Run a query.
    Query {
        /// Request id, echoed in the answer.
        rid: u64,
        /// The query.
        query: Query,
    },
    /// Count a query's results.
    Count {
        /// Request id, echoed in the answer.
        rid: u64,
        /// The query.
        query: Query,
    },
    /// Start a listener on one document (`doc`) or one query (`query`); exactly one of the two.
    /// The listen's `rid` names the listener on this connection until `unlisten`.
    Listen {
        /// Request id, echoed in the answer; also the listener's id.
        rid: u64,
        /// A document path to listen to.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        doc: Option<DocPath>,
        /// A query to listen to.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        query: Option<Query>,
        /// Resume: the last sequence number the client saw for this listen target.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<u64>,
    },
    /// Stop a listener of this connection.
    Unlisten {
        /// Request id, echoed in the answer.
        rid: u64,
        /// The `rid` of the `listen` that started the listener.
        listener: u64,
    },
    /// Flow control (spec 10.4.6): the client has read the first `frames`
    /// frames the server sent on this connection, `welcome` included. Not answered.
    Ack {
        /// How many frames the client has read, counted from the connection's start.
        frames: u64,
    },
    /// Replaces the connection's credential without reconnecting (spec 13.4),
    /// e.g. before the current token expires. Answered with `authenticated`.
    Auth {
        /// Request id, echoed in the answer.
        rid: u64,
        /// The new credential.
        auth: String,
    },
}

impl ClientMessage {
    /// The `type` names of every client message.
    pub const TYPES: [&'static str; 9] = [
        "hello", "get", "commit", "query", "count", "listen", "unlisten", "ack", "auth",
    ];
}

/// A frame from server to client, tagged by `type`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// Answers `hello`.
    Welcome {
        /// The protocol version the server speaks.
        protocol: u32,
        /// The limits the server enforces.
        limits: Limits,
        /// The verified credential, when `hello` carried one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        auth: Option<AuthState>,
    },
    /// Answers `auth`: the new credential is the connection's from now on.
    Authenticated {
        /// The request id.
        rid: u64,
        /// The verified credential.
        auth: AuthState,
    },
    /// Answers `get`.
    Doc {
        /// The request id.
        rid: u64,
        /// The document (with `exists: false` when there is none).
        doc: DocSnapshot,
    },
    /// Answers a successful `commit`.
    Committed {
        /// The request id.
        rid: u64,
        /// The commit's sequence number and each write's result.
        #[serde(flatten)]
        result: CommitResult,
    },
    /// Answers `query`.
    QueryResult {
        /// The request id.
        rid: u64,
        /// The collection's commit sequence number the result is consistent with.
        seq: u64,
        /// The matching documents, in query order.
        docs: Vec<DocSnapshot>,
    },
    /// Answers `count`.
    CountResult {
        /// The request id.
        rid: u64,
        /// The collection's commit sequence number the count is consistent with.
        seq: u64,
        /// How many documents the query returns.
        count: u64,
    },
    /// Answers `listen` with the listener's full state.
    Snapshot {
        /// The request id (the listener's id).
        rid: u64,
        /// The target whose `change` frames this listener follows.
        target: u64,
        /// The collection's commit sequence number the state is consistent with.
        seq: u64,
        /// True when the `listen` asked to resume but the change log no longer
        /// reaches back to `since`: the client must drop what it held.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        reset: bool,
        /// The matching documents, in query order.
        docs: Vec<DocSnapshot>,
    },
    /// Answers a `listen` with `since` that the change log could serve.
    Resumed {
        /// The request id (the listener's id).
        rid: u64,
        /// The target whose `change` frames this listener follows.
        target: u64,
        /// The sequence number the listener is at after applying `changes`.
        seq: u64,
        /// The changes from the results at `since` to the results at `seq`.
        changes: Vec<Change>,
    },
    /// A commit changed the results of a listen target.
    Change {
        /// The target: every listener of this connection that follows it applies the change.
        target: u64,
        /// The commit's sequence number.
        seq: u64,
        /// The changes, to apply in order.
        changes: Vec<Change>,
    },
    /// Answers `unlisten`.
    Unlistened {
        /// The request id.
        rid: u64,
    },
    /// Answers any request that failed; nothing was changed.
    Error {
        /// The request id, when the failed frame had a readable one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rid: Option<u64>,
        /// What went wrong.
        error: ErrorBody,
    },
}

/// The body of HTTP `POST /v1/commit`: a `commit` without `type` and `rid`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CommitBody {
    /// The collection path every write's `id` is in.
    pub collection: CollectionPath,
    /// The writes, applied in order, all or none.
    pub writes: Vec<Write>,
    /// An optional client-chosen commit id, as on the `commit` frame.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_id: Option<CommitId>,
}

/// A document as the server reports it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DocSnapshot {
    /// The full document path.
    pub path: String,
    /// Whether the document exists; when false, the other fields are absent.
    pub exists: bool,
    /// The contents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Map<String, Value>>,
    /// The sequence number of the commit that last wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// When it was created (milliseconds since the Unix epoch, server time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_time: Option<u64>,
    /// When it was last written (milliseconds since the Unix epoch, server time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_time: Option<u64>,
    /// A held entry of a `snapshot` (spec 10.4.9): the client already holds
    /// this document at `version` in another listener's results, so `data`
    /// and the times are absent and are taken from there.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub held: bool,
}

impl DocSnapshot {
    /// The held entry naming `path` at `version` (spec 10.4.9).
    pub fn held(path: String, version: u64) -> Self {
        Self {
            path,
            exists: true,
            data: None,
            version: Some(version),
            create_time: None,
            update_time: None,
            held: true,
        }
    }
}

/// One entry of a listener's changes, as Firestore's `docChanges`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Change {
    /// A document entered the results.
    Added {
        /// The document.
        doc: DocSnapshot,
        /// Its index in the results after this change.
        new_index: usize,
    },
    /// A document in the results was written, and may have moved.
    Modified {
        /// The full document path.
        path: String,
        /// A JSON Patch (RFC 6902) from the previous data to the new data.
        patch: Vec<Value>,
        /// The new version.
        version: u64,
        /// The creation time.
        create_time: u64,
        /// The new update time.
        update_time: u64,
        /// Its index before this change.
        old_index: usize,
        /// Its index after this change.
        new_index: usize,
    },
    /// A document left the results: deleted, or no longer matching or in the window.
    Removed {
        /// The full document path.
        path: String,
        /// Its index before this change.
        old_index: usize,
    },
}

/// The outcome of a committed batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitResult {
    /// The collection's new commit sequence number; every written document now has this version.
    pub seq: u64,
    /// The commit time (milliseconds since the Unix epoch).
    pub time: u64,
    /// One result per write, in order.
    pub writes: Vec<WriteResult>,
}

/// The outcome of one write of a committed batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteResult {
    /// The document id.
    pub id: String,
    /// Whether the document exists after the write.
    pub exists: bool,
}

/// The error object of `error` frames and HTTP error bodies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The stable code; clients match on this, never on `message`.
    pub code: ErrorCode,
    /// A human-readable explanation.
    pub message: String,
    /// For a failed batch, the index of the write that failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_index: Option<usize>,
}
