//! Blaze wire protocol, version 1: the message types of `spec/protocol.md`,
//! their limits, document paths and the error codes of `spec/errors.md`.
//!
//! Architecture Invariant: this crate does no I/O and is the only crate that
//! derives serde for wire types. Decoding untrusted text returns an error and
//! never panics.

mod code;
mod codec;
mod depth;
mod limits;
mod message;
mod null_as_default;
mod path;
mod query;
mod write;

pub use code::ErrorCode;
pub use codec::{decode_body, decode_client, decode_server, encode, DecodeError};
pub use depth::json_depth;
pub use limits::Limits;
pub use message::{
    Change, ClientMessage, CommitBody, CommitResult, DocSnapshot, ErrorBody, ServerMessage,
    WriteResult,
};
pub use path::{CollectionPath, DocPath, PathError};
pub use query::{Cursor, Direction, FieldFilter, Filter, Op, OrderBy, Query};
pub use write::{Precondition, Write, WriteKind};

/// The protocol version this crate speaks; a `hello` must name it.
pub const PROTOCOL_VERSION: u32 = 1;

/// WebSocket close code: the handshake failed (`handshake_required` or `unsupported_protocol`).
pub const CLOSE_HANDSHAKE: u16 = 4002;

/// WebSocket close code: the client fell too far behind reading its frames (reason `slow_consumer`).
pub const CLOSE_SLOW_CONSUMER: u16 = 4008;
