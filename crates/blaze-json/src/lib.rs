//! The JSON algebra both ends of the Blaze protocol share, with no I/O:
//!
//! - [`order`]: the total order and equality over JSON values (spec "Value order");
//! - [`size`]: serialized sizes and depths, and the document limits built on them;
//! - [`patch`], [`merge`], [`diff`]: JSON Patch (RFC 6902), merge patch (RFC 7396),
//!   and the canonical diff a server sends in `modified` changes;
//! - [`field_path`]: field paths (`a.b`, `` a.`b.c` ``);
//! - [`changes`]: applying a listener's `change` entries to its result list
//!   (spec 10.4.3), the one implementation the engine's tests and the Rust
//!   client share.
//!
//! Architecture Invariant: this crate depends only on `blaze-protocol` (for
//! wire types, codes and limits), so a client can use it without the engine.
//! Every failure is a [`Rejection`] with a wire code.

#![warn(missing_docs, unreachable_pub)]

#[cfg(any(test, feature = "proptest"))]
pub mod arbitrary;
pub mod budget;
pub mod changes;
pub mod diff;
pub mod field_path;
pub mod merge;
pub mod order;
pub mod patch;
mod rejection;
pub mod size;

pub use rejection::Rejection;
