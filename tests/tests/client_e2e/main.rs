//! End-to-end tests of the Rust client (`crates/blaze-client`) against the
//! real worker under `wrangler dev`, one module per area: documents,
//! queries, batches, transactions, listeners, and listeners that resume
//! across cut connections, a server restart and a reset. One test binary:
//! its tests run one at a time, each with its own `wrangler dev` on a free
//! port and its own state directory, killed when it ends. Without a built
//! worker they are skipped (see `blaze_tests::live::worker_available`).
//!
//! Run one area: `cargo test -p blaze-tests --test client_e2e documents`.

mod batches;
mod documents;
mod identity;
mod listeners;
mod proxy;
mod queries;
mod resume;
mod support;
mod transactions;
