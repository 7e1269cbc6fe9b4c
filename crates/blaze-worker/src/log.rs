//! Structured logs: one JSON line per HTTP request and per refused WebSocket
//! frame, with the error code (and, for a storage failure, the detail the
//! client is not told), readable in `wrangler dev` and `wrangler tail`. The
//! lines are built from typed answers and hub events, never from parsing
//! what is sent.

use blaze_core::HubEvent;
use blaze_protocol::ErrorCode;
use serde_json::json;
use worker::console_log;

use crate::http_types::{HttpRequest, HttpResponse};

/// Logs one answered HTTP request.
pub fn log_http(req: &HttpRequest, answer: &HttpResponse, ms: u64) {
    let line = json!({
        "at": "http",
        "method": req.method,
        "path": req.path,
        "status": answer.status,
        "code": answer.error.map(ErrorCode::as_str),
        "detail": answer.detail,
        "ms": ms,
    });
    console_log!("{line}");
}

/// Logs what the hub says happened on a connection of `collection`.
pub fn log_event(collection: &str, event: &HubEvent) {
    let HubEvent::Refused {
        conn,
        rid,
        code,
        detail,
    } = event
    else {
        return;
    };
    let line = json!({
        "at": "ws",
        "collection": collection,
        "conn": conn,
        "rid": rid,
        "code": code.as_str(),
        "detail": detail,
    });
    console_log!("{line}");
}

/// Logs a connection ended because its session could not be saved.
pub fn log_session_failure(collection: &str, conn: u64, detail: &str) {
    let line = json!({
        "at": "session",
        "collection": collection,
        "conn": conn,
        "detail": detail,
    });
    console_log!("{line}");
}
