//! Blaze wire protocol, version 1: the message types of `spec/protocol.md`,
//! their limits, document paths, the error codes of `spec/errors.md`, the
//! close codes, the HTTP answer bodies ([`http`]) and what a server stores
//! ([`stored`]).
//!
//! Architecture Invariant: this crate does no I/O and is the only crate that
//! derives serde for wire types. Decoding untrusted text returns an error and
//! never panics.

mod close;
mod code;
mod codec;
mod commit_id;
mod depth;
pub mod http;
mod identity;
mod limits;
mod message;
mod negative_zero;
mod null_as_default;
mod outside_strings;
mod path;
mod query;
pub mod stored;
mod write;

pub use close::CloseCode;
pub use code::ErrorCode;
pub use codec::{decode_body, decode_client, decode_server, encode, DecodeError};
pub use commit_id::{CommitId, CommitIdError, MAX_COMMIT_ID_LEN};
pub use depth::json_depth;
pub use identity::{AuthState, Identity};
pub use limits::Limits;
pub use message::{
    Change, ClientMessage, CommitBody, CommitResult, DocSnapshot, ErrorBody, ServerMessage,
    WriteResult,
};
pub use path::{check_id, CollectionPath, DocPath, PathError};
pub use query::{Cursor, Direction, FieldFilter, Filter, Op, OrderBy, Query};
pub use write::{Precondition, Write, WriteKind};

/// The protocol version this crate speaks; a `hello` must name it.
pub const PROTOCOL_VERSION: u32 = 1;
