//! Driving the real worker: start `wrangler dev` on a free port, talk to it
//! over raw HTTP and WebSockets, and stop it again (no process left behind).

mod availability;
mod http;
mod memory;
mod proxy;
mod runner;
mod server;
mod ws;

pub use availability::worker_available;
pub use http::{http, request, Answer, Body};
pub use memory::{workerd_memory, Rss};
pub use proxy::Proxy;
pub use runner::{e2e, run};
pub use server::{repo_root, WranglerDev, DEV_IDENTITY, OPEN_RULES};
pub use ws::{Incoming, Ws};

use blaze_protocol::{Change, DocSnapshot};
use serde_json::Value;

/// Applies a `changes` array (protocol section 10.4.3) to a result list of
/// DocSnapshots, as JSON, with the one implementation (`blaze_json::changes`);
/// panics if they do not fit.
pub fn apply_changes(docs: &mut Vec<Value>, changes: &Value) {
    let mut list: Vec<DocSnapshot> =
        serde_json::from_value(Value::Array(docs.clone())).expect("documents");
    let changes: Vec<Change> = serde_json::from_value(changes.clone()).expect("changes");
    blaze_json::changes::apply_changes(&mut list, &changes).expect("the changes fit the results");
    *docs = list
        .iter()
        .map(|d| serde_json::to_value(d).expect("a document"))
        .collect();
}
