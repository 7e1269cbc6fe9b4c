//! Blaze's document engine: documents and versions, writes (set, JSON Patch,
//! merge patch) with preconditions and atomic batches, queries with
//! Firestore's semantics, the indexes that make them fast, and the realtime
//! [`Hub`] that serves listeners.
//!
//! The layers, from the bottom:
//! - `store`: the [`Storage`] trait (an ordered key-value store per
//!   collection) and [`MemoryStorage`];
//! - `index`: which index entries a document has, and the order-preserving
//!   key encoding;
//! - `query`: compiling, filtering, ordering and running queries over the indexes;
//! - [`Database`]: commits (atomic batches), reads and the change log;
//! - `realtime`: the sans-IO [`Hub`], its shared listen targets and their views;
//! - `rules`: the access rules ([`Access`], [`Rules`]), checked by the hub
//!   for every identity but an admin.
//!
//! JSON itself (value order, sizes, JSON Patch, merge patch, diff, field
//! paths) is the `blaze-json` crate, shared with the client.
//!
//! Architecture Invariant: this crate never touches a socket, a clock or a
//! disk. Storage is the [`Storage`] trait; time is an argument. It derives no
//! serde: wire types come from `blaze-protocol`.
//!
//! API Boundary: what this file exports is the embedder's API. The
//! `testing` module is for this crate's benchmarks and tests only.
//!
//! ```
//! use blaze_core::{Database, Limits, MemoryStorage};
//! use blaze_protocol::{CollectionPath, Query, Write, WriteKind};
//! use serde_json::json;
//!
//! let mut db = Database::new(MemoryStorage::new(), Limits::default());
//! let rooms = CollectionPath::parse("rooms")?; // checked once; an invalid path is `invalid_path`
//! let write = Write {
//!     id: "r1".into(),
//!     kind: WriteKind::Set { data: json!({"name": "lobby"}) },
//!     precondition: Default::default(),
//! };
//! let now_ms = 1_700_000_000_000; // time is passed in; the engine never reads a clock
//! let committed = db.commit(&rooms, &[write], now_ms)?;
//! assert_eq!(committed.result.seq, 1);
//! let found = db.query(&Query::all(rooms))?;
//! assert_eq!(found.docs[0].data["name"], "lobby");
//! # Ok::<(), blaze_core::Error>(())
//! ```

#![warn(missing_docs, unreachable_pub)]

mod database;
mod error;
mod index;
mod query;
mod realtime;
mod rules;
mod store;

pub use blaze_protocol::Limits;
pub use database::{
    collection_contents, ChangeLogLimits, CommitOutcome, Committed, Database, QueryOutput,
};
pub use error::{Denial, Error, Rejection, StorageError};
pub use realtime::{
    Caller, ConnId, Frame, Hub, HubConfig, HubEvent, HubStats, Output, SavedListener, SavedSession,
};
pub use rules::{
    Access, Evaluated, Explanation, FetchedDocs, Held, Rules, RulesError, StagedWrite,
};
pub use store::{
    CommitKey, CommitRecord, DocIter, DocWrite, EntryIter, IndexEntry, KeyRange, LogIter,
    MemoryStorage, RememberedCommit, Storage, StorageBatch, StoredDoc,
};

/// Internals for this crate's benchmarks and tests; not part of the API.
#[doc(hidden)]
pub mod testing {
    pub use crate::index::key_encoding::{encode_key, encode_key_bounded};
    pub use crate::index::IndexBounds;
    pub use crate::query::CompiledQuery;
    pub use crate::realtime::{diff_results, Bodies, ListenerIndex, QueryView};
}
