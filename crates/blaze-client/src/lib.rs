//! A Firestore-like Rust client for Blaze.
//!
//! - [`Blaze::connect`], then [`Blaze::collection`] / [`Blaze::doc`] for
//!   references; nested collections with [`DocRef::collection`].
//! - Reads and writes: [`DocRef::get`] (typed through serde),
//!   [`DocRef::create`], [`DocRef::set`], [`DocRef::patch`] (JSON Patch),
//!   [`DocRef::merge`] (merge patch), [`DocRef::update`] (fields by path),
//!   [`DocRef::delete`], with preconditions through [`DocRef::if_exists`] and
//!   [`DocRef::if_version`].
//! - Queries: [`QueryRef`] with every operator of the spec, [`and`] / [`or`],
//!   order, limits, cursors, [`QueryRef::count`].
//! - Realtime: [`DocRef::listen`] and [`QueryRef::listen`] return a
//!   [`Listener`], a `Stream` of snapshots with [`QuerySnapshot::changes`],
//!   that reconnects with backoff and resumes without gaps or duplicates.
//! - [`Blaze::batch`] for atomic batches; [`Blaze::run_transaction`] for
//!   read-then-write transactions retried on conflict.
//! - Identity: [`Credentials`] in [`ConnectOptions`]: an admin key, or a
//!   token provider asked on every connect and before the token expires
//!   (refreshed in-band, spec 13.4); a refused credential fails calls and
//!   listeners with `unauthenticated`.
//! - Files (spec 15) over HTTP: [`Blaze::files`] gives [`Files`]: streamed
//!   uploads and downloads (with ranges), uploads in resumable parts,
//!   metadata, delete, and folder listings.
//! - One error type, [`Error`], with the spec's code in [`Error::code`].
//!
//! The client speaks the WebSocket protocol of `spec/protocol.md`, one
//! connection per collection (spec 10.1), opened lazily and shared.
//!
//! Architecture Invariant: all protocol state lives in a sans-IO `Session`
//! per connection (plain values in, frames and events polled out; no
//! channels, no clock); the tokio task around it only moves frames, routes
//! the session's events to the callers' channels, sleeps and reconnects.
//!
//! A commit is applied at most once: each carries a random commit id, and a
//! commit cut off by a lost connection is re-sent with the same id after the
//! reconnect, which the server answers with the original outcome if it
//! already applied it.

#![warn(missing_docs)]

mod batch;
mod client;
mod connection;
mod credentials;
mod error;
pub mod files;
mod listener;
mod options;
mod query;
mod refs;
mod results;
mod session;
mod snapshot;
mod transaction;

pub use batch::WriteBatch;
pub use blaze_protocol::{
    CommitResult, Direction, ErrorCode, Filter, Op, Precondition, WriteResult,
};
pub use client::Blaze;
pub use credentials::{Credentials, TokenProvider};
pub use error::Error;
pub use files::Files;
pub use listener::{FromResults, ListenEvent, Listener};
pub use options::{ConnectOptions, ReconnectPolicy};
pub use query::{and, field, or, FieldRef, QueryRef};
pub use refs::{CollectionRef, DocRef};
pub use session::ConnectionState;
pub use snapshot::{ChangeKind, DocChange, DocumentSnapshot, QuerySnapshot};
pub use transaction::{Transaction, TRANSACTION_ATTEMPTS};
