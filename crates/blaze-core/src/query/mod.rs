//! Queries: validation ([`CompiledQuery`]), filter evaluation, ordering and
//! cursors, and the index-backed executor.

mod compile;
mod execute;
mod filter;
mod position;

pub use compile::{CompiledQuery, Limit};
pub use execute::{run_query, select};
pub use filter::field_value;
