//! The access rules (spec 14): compiled once per isolate, and the
//! documents of other collections the rules read, fetched from the objects
//! that hold them.
//!
//! The rules are the project's rules file, bundled into the worker when it
//! is built (`build.rs`: `blaze.rules`, or the file `BLAZE_RULES_FILE`
//! names), unless the variable `BLAZE_RULES` is set: then its text, even
//! empty, replaces them (for development and tests; a deployed variable
//! holds at most 5 KB). Never open by omission: without rules, or with rules
//! that do not compile (the compiler's message is logged), every request but
//! an admin's is denied (`permission_denied`).

use std::cell::RefCell;

use blaze_core::{Access, Rules};
use blaze_protocol::DocPath;
use futures_util::future::join_all;
use serde_json::{json, Map, Value};
use worker::{console_error, console_log, Env, Headers, Method, Request, RequestInit};

/// The header that marks an object-to-object read for the rules. The Worker
/// strips it from every request it forwards, so only an object can send it.
pub const INTERNAL_READ: &str = "X-Blaze-Rules-Read";

/// The rules file bundled when the worker was built (empty when there was none).
const BUNDLED: &str = include_str!(concat!(env!("OUT_DIR"), "/bundled.rules"));

/// Why requests are denied when there are no rules.
const MISSING: &str = "this server has no access rules: build it with a rules file \
    (blaze.rules, or BLAZE_RULES_FILE) or set BLAZE_RULES (README, \"Access rules\"); \
    until then only admin keys are served";

thread_local! {
    static ACCESS: RefCell<Option<Access>> = const { RefCell::new(None) };
}

/// The isolate's access rules, compiled from `env` on first use.
pub fn access(env: &Env) -> Access {
    ACCESS.with(|cell| {
        cell.borrow_mut()
            .get_or_insert_with(|| {
                let set = env.var("BLAZE_RULES").ok().map(|v| v.to_string());
                compile(set.unwrap_or_else(|| BUNDLED.to_owned()))
            })
            .clone()
    })
}

fn compile(text: String) -> Access {
    if text.trim().is_empty() {
        console_error!("{}", json!({"at": "rules", "error": MISSING}));
        return Access::Closed(MISSING.to_owned());
    }
    match Rules::compile(&text) {
        Ok(rules) => {
            for warning in rules.warnings() {
                console_log!("{}", json!({"at": "rules", "warning": warning}));
            }
            console_log!("{}", json!({"at": "rules", "compiled": text.len()}));
            Access::Enforced(rules)
        }
        Err(e) => {
            console_error!("{}", json!({"at": "rules", "error": e.0}));
            Access::Closed(format!(
                "the access rules (BLAZE_RULES) do not compile: {}",
                e.0
            ))
        }
    }
}

/// Documents of other collections as read for the rules: each path with
/// its data, `None` when it does not exist (or was not answered).
pub type Fetched = Vec<(DocPath, Option<Map<String, Value>>)>;

/// Fetches each of `paths` from its collection's object: its data, or
/// `None` when it does not exist or could not be read (which the rules see
/// as a missing document, so they deny rather than allow).
pub async fn fetch_docs(env: &Env, paths: Vec<DocPath>) -> Fetched {
    let reads = paths.into_iter().map(|path| async move {
        let data = read(env, &path).await.unwrap_or_else(|e| {
            console_error!(
                "{}",
                json!({"at": "rules_read", "path": path.as_str(), "error": e})
            );
            None
        });
        (path, data)
    });
    join_all(reads).await
}

async fn read(env: &Env, path: &DocPath) -> Result<Option<Map<String, Value>>, String> {
    let namespace = env
        .durable_object("COLLECTIONS")
        .map_err(|e| e.to_string())?;
    let stub = namespace
        .id_from_name(path.collection().as_str())
        .and_then(|id| id.get_stub())
        .map_err(|e| e.to_string())?;
    let headers = Headers::new();
    headers.set(INTERNAL_READ, "1").map_err(|e| e.to_string())?;
    let mut init = RequestInit::new();
    init.with_method(Method::Get).with_headers(headers);
    let url = format!("https://blaze.internal/v1/docs/{}", path.as_str());
    let req = Request::new_with_init(&url, &init).map_err(|e| e.to_string())?;
    let mut answer = stub
        .fetch_with_request(req)
        .await
        .map_err(|e| e.to_string())?;
    if answer.status_code() != 200 {
        return Err(format!("status {}", answer.status_code()));
    }
    let doc: blaze_protocol::DocSnapshot = answer.json().await.map_err(|e| e.to_string())?;
    Ok(doc.data)
}
