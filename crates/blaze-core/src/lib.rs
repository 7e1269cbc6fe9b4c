//! Blaze's document engine: documents and versions, writes (set, JSON Patch,
//! merge patch) with preconditions and atomic batches, queries with
//! Firestore's semantics, and the indexes that make them fast.
//!
//! Architecture Invariant: this crate never touches a socket, a clock or a
//! disk. Storage is the [`Storage`] trait; time is an argument. It derives no
//! serde: wire types come from `blaze-protocol`.
//!
//! ```
//! use blaze_core::{Database, Limits, MemoryStorage};
//! use blaze_protocol::{Query, Write, WriteKind};
//! use serde_json::json;
//!
//! let mut db = Database::new(MemoryStorage::new(), Limits::default());
//! let write = Write {
//!     id: "r1".into(),
//!     kind: WriteKind::Set { data: json!({"name": "lobby"}) },
//!     precondition: Default::default(),
//! };
//! let now_ms = 1_700_000_000_000; // time is passed in; the engine never reads a clock
//! let committed = db.commit("rooms", &[write], now_ms)?;
//! assert_eq!(committed.result.seq, 1);
//! let rooms = db.query(&Query::all("rooms"))?;
//! assert_eq!(rooms.docs[0].data["name"], "lobby");
//! # Ok::<(), blaze_core::Error>(())
//! ```

mod database;
mod error;
mod field_path;
mod hub;
mod indexing;
mod json_diff;
mod json_patch;
mod json_size;
mod key_encoding;
mod listener_index;
mod memory_storage;
mod merge_patch;
mod query;
mod query_view;
mod storage;
mod value_order;

pub use blaze_protocol::Limits;
pub use database::{collection_contents, ChangeLogLimits, Committed, Database, QueryOutput};
pub use error::{Error, Rejection, StorageError};
pub use field_path::FieldPath;
pub use hub::{ConnId, Frame, Hub, HubConfig, HubStats, Output, Session, SessionListener};
pub use json_diff::diff;
pub use json_patch::apply_json_patch;
pub use json_size::{check_document, json_depth, serialized_len};
pub use key_encoding::{encode_key, encode_value};
pub use listener_index::ListenerIndex;
pub use memory_storage::MemoryStorage;
pub use merge_patch::apply_merge_patch;
pub use query::{CompiledQuery, Limit};
pub use query_view::{diff_results, results_at, QueryView, ViewChange};
pub use storage::{
    ChangeIter, ChangeRecord, DocChange, DocIter, EntryIter, IndexEntry, KeyRange, Storage,
    StorageCommit, StoredDoc,
};
pub use value_order::{compare_values, values_equal, TypeClass};
