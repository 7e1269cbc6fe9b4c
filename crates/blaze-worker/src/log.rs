//! Structured logs: one JSON line per HTTP request, per WebSocket
//! credential verified or refused, and per refused WebSocket frame, with the
//! identity (kind and `uid`, never the credential), the error code (and, for
//! a storage failure, the detail the client is not told, for a refused
//! credential its reason), readable in `wrangler dev` and `wrangler tail`.
//! The lines are built from typed answers and hub events, never from
//! parsing what is sent.

use blaze_core::HubEvent;
use blaze_protocol::{ErrorCode, Identity};
use serde_json::json;
use worker::console_log;

use crate::http_types::{HttpRequest, HttpResponse};

/// Who made a request, as its log line says.
#[derive(Clone, Copy)]
pub enum Who<'a> {
    /// Not known: the request was answered before its credential was read.
    Unknown,
    /// The verified identity.
    Identity(&'a Identity),
    /// Its credential was refused, for this reason.
    Refused(&'a str),
}

impl Who<'_> {
    /// The identity kind, the `uid` and the reason of a refusal.
    fn fields(self) -> (Option<&'static str>, Option<String>, Option<String>) {
        match self {
            Who::Unknown => (None, None, None),
            Who::Identity(identity) => (
                Some(identity.kind()),
                identity.uid().map(str::to_owned),
                None,
            ),
            Who::Refused(reason) => (None, None, Some(reason.to_owned())),
        }
    }
}

/// Logs one answered HTTP request.
pub fn log_http(req: &HttpRequest, answer: &HttpResponse, who: Who, ms: u64) {
    let (identity, uid, auth_failure) = who.fields();
    let line = json!({
        "at": "http",
        "method": req.method,
        "path": req.path,
        "status": answer.status,
        "code": answer.error.map(ErrorCode::as_str),
        "detail": answer.detail,
        "identity": identity,
        "uid": uid,
        "auth_failure": auth_failure,
        "ms": ms,
    });
    console_log!("{line}");
}

/// Logs a WebSocket credential verified or refused (`rid` is the `auth`
/// request's, `None` for `hello`'s).
pub fn log_auth(collection: &str, conn: u64, rid: Option<u64>, who: Who) {
    let (identity, uid, auth_failure) = who.fields();
    let line = json!({
        "at": "ws_auth",
        "collection": collection,
        "conn": conn,
        "rid": rid,
        "identity": identity,
        "uid": uid,
        "auth_failure": auth_failure,
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
