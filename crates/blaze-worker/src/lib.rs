//! Blaze on Cloudflare: a Worker that routes each request to the Durable
//! Object of its collection, and the object that hosts `blaze-core`'s hub
//! over SQLite storage and hibernatable WebSockets.
//!
//! The routing and the HTTP mapping are plain functions over plain types
//! ([`http_types`]), tested natively; only the wasm32 build holds the
//! runtime wiring.
//!
//! Architecture Invariant: nothing here decides what a request means. The
//! hub answers every frame and commit; this crate moves bytes between it,
//! the sockets and SQLite, and logs.

pub mod client_network;
pub mod fair_queue;
pub mod files_hint;
pub mod files_plan;
pub mod files_prefixes;
pub mod files_sweep;
pub mod http_api;
pub mod http_types;
pub mod resumable;
pub mod routing;

#[cfg(target_arch = "wasm32")]
mod entry;
#[cfg(target_arch = "wasm32")]
mod files;
#[cfg(target_arch = "wasm32")]
mod files_upload;
#[cfg(target_arch = "wasm32")]
mod identity;
#[cfg(target_arch = "wasm32")]
mod log;
#[cfg(target_arch = "wasm32")]
mod object;
#[cfg(target_arch = "wasm32")]
mod rules;
#[cfg(target_arch = "wasm32")]
mod sql_storage;
