//! Queries: validation ([`CompiledQuery`]), filter evaluation, ordering and
//! cursors, and the index-backed executor.

mod compile;
mod count;
mod execute;
mod filter;
mod position;

pub use compile::CompiledQuery;
pub(crate) use compile::Limit;
pub(crate) use count::count_query;
pub(crate) use execute::{run_query, select, HeldBound};
pub(crate) use filter::field_value;
pub(crate) use position::Position;
