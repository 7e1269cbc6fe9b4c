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
pub use http::{http, Answer};
pub use memory::{workerd_memory, Rss};
pub use proxy::Proxy;
pub use runner::{e2e, run};
pub use server::{repo_root, WranglerDev};
pub use ws::{Incoming, Ws};

use serde_json::Value;

/// Applies a `changes` array (protocol section 10.4.3) to a result list of DocSnapshots.
pub fn apply_changes(docs: &mut Vec<Value>, changes: &Value) {
    for change in changes.as_array().expect("changes is an array") {
        let index = |k: &str| change[k].as_u64().expect("an index") as usize;
        match change["type"].as_str() {
            Some("added") => docs.insert(index("new_index"), change["doc"].clone()),
            Some("removed") => {
                let gone = docs.remove(index("old_index"));
                assert_eq!(gone["path"], change["path"], "removed the wrong document");
            }
            Some("modified") => {
                let mut doc = docs.remove(index("old_index"));
                assert_eq!(doc["path"], change["path"], "modified the wrong document");
                let data = doc["data"].as_object().cloned().unwrap_or_default();
                let patched = blaze_json::patch::apply_json_patch(
                    &data,
                    &change["patch"],
                    &blaze_protocol::Limits::default(),
                )
                .expect("the patch applies");
                doc["data"] = Value::Object(patched);
                for k in ["version", "create_time", "update_time"] {
                    doc[k] = change[k].clone();
                }
                docs.insert(index("new_index"), doc);
            }
            other => panic!("unknown change type {other:?}"),
        }
    }
}
