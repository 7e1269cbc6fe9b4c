//! Structured logs: one JSON line per HTTP request and per WebSocket error,
//! with the error code, readable in `wrangler dev` and `wrangler tail`.

use serde_json::{json, Value};
use worker::console_log;

use crate::http_types::{HttpRequest, HttpResponse};

/// Logs one answered HTTP request.
pub fn log_http(req: &HttpRequest, answer: &HttpResponse, ms: u64) {
    let line = json!({
        "at": "http",
        "method": req.method,
        "path": req.path,
        "status": answer.status,
        "code": answer.error_code(),
        "ms": ms,
    });
    console_log!("{line}");
}

/// Logs an `error` frame sent to connection `conn`.
pub fn log_ws(collection: &str, conn: u64, frame: &str) {
    let parsed: Value = serde_json::from_str(frame).unwrap_or_default();
    let line = json!({
        "at": "ws",
        "collection": collection,
        "conn": conn,
        "rid": parsed["rid"],
        "code": parsed["error"]["code"],
    });
    console_log!("{line}");
}
