//! Frames: what a client sends and what a server answers.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{ErrorCode, Limits, Query, Write};

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
    },
    /// Read one document.
    Get {
        /// Request id, echoed in the answer.
        rid: u64,
        /// The document path.
        path: String,
    },
    /// Apply an atomic batch of writes to documents of one collection.
    Commit {
        /// Request id, echoed in the answer.
        rid: u64,
        /// The collection path every write's `id` is in.
        collection: String,
        /// The writes, applied in order, all or none.
        writes: Vec<Write>,
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
}

impl ClientMessage {
    /// The `type` names of every client message.
    pub const TYPES: [&'static str; 5] = ["hello", "get", "commit", "query", "count"];
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
    /// Answers any request that failed; nothing was changed.
    Error {
        /// The request id, when the failed frame had a readable one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rid: Option<u64>,
        /// What went wrong.
        error: ErrorBody,
    },
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
