//! The Worker's entry point: answers health checks and preflights, refuses
//! what it can, serves files (`files.rs`), and forwards everything else to
//! the collection's object.

use worker::{event, Context, Env, Headers, Request, RequestInit, Response, Result};

use futures_util::StreamExt;

use crate::http_types::{
    body_text, body_too_large, check_declared_length, HttpRequest, HttpResponse, CORS,
};
use crate::log::{log_http, Who};
use crate::routing::route;
use blaze_protocol::Limits;

/// Whether `req` asks for a WebSocket.
pub fn is_upgrade(req: &Request) -> bool {
    req.headers()
        .get("Upgrade")
        .ok()
        .flatten()
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// The plain form of `req`, reading its body (a WebSocket upgrade has none)
/// within the frame limit, and the refusal of a body that breaks it: over
/// the limit by its `Content-Length` (refused before a byte is read) or
/// while streaming (reading stops at the limit, so no more than the limit
/// is ever buffered), not UTF-8, or with a byte-order mark.
pub async fn http_request(
    req: &mut Request,
    limits: &Limits,
) -> Result<(HttpRequest, Option<HttpResponse>)> {
    let header = |name: &str| req.headers().get(name).ok().flatten();
    let mut plain = HttpRequest {
        // The method as sent: `Request::method` reads an unknown one as GET.
        method: req.inner().method(),
        path: req.path(),
        content_type: header("Content-Type"),
        if_match: header("If-Match"),
        if_none_match: header("If-None-Match"),
        body: String::new(),
    };
    if matches!(plain.method.as_str(), "GET" | "HEAD" | "OPTIONS") || req.inner().body().is_none() {
        return Ok((plain, None));
    }
    if let Err(refused) = check_declared_length(header("Content-Length").as_deref(), limits) {
        return Ok((plain, Some(refused)));
    }
    let mut bytes = Vec::new();
    let mut stream = req.stream()?;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if bytes.len() + chunk.len() > limits.max_frame_bytes {
            return Ok((plain, Some(body_too_large(limits))));
        }
        bytes.extend_from_slice(&chunk);
    }
    match body_text(bytes) {
        Ok(body) => plain.body = body,
        Err(refused) => return Ok((plain, Some(refused))),
    }
    Ok((plain, None))
}

/// The runtime answer for a plain one, with the CORS headers.
pub fn respond(answer: HttpResponse) -> Result<Response> {
    let headers = Headers::new();
    if !answer.body.is_empty() {
        headers.set("Content-Type", "application/json")?;
    }
    for (name, value) in CORS {
        headers.set(name, value)?;
    }
    for (name, value) in &answer.headers {
        headers.set(name, value)?;
    }
    // A 204 must have no body at all, not an empty one.
    let response = if answer.body.is_empty() {
        Response::empty()?
    } else {
        Response::ok(answer.body)?
    };
    Ok(response.with_status(answer.status).with_headers(headers))
}

#[event(fetch)]
async fn fetch(mut req: Request, env: Env, _ctx: Context) -> Result<Response> {
    // Files stream their bodies: routed before anything is read.
    if req.path().starts_with(crate::files::PREFIX) {
        return crate::files::serve(req, &env).await;
    }
    let upgrade = is_upgrade(&req);
    let limits = Limits::default();
    let (plain, refused) = http_request(&mut req, &limits).await?;
    let endpoint = match refused.map_or_else(|| route(&plain, upgrade, &limits), Err) {
        Ok(endpoint) => endpoint,
        Err(refused) => {
            log_http(&plain, &refused, Who::Unknown, 0);
            return respond(refused);
        }
    };
    let Some(collection) = endpoint.collection() else {
        let answer = endpoint.local_answer().expect("the Worker answers it");
        log_http(&plain, &answer, Who::Unknown, 0);
        return respond(answer);
    };
    let stub = env
        .durable_object("COLLECTIONS")?
        .id_from_name(collection.as_str())?
        .get_stub()?;
    // Only an object may send the rules' internal read header.
    let headers = req.headers().clone();
    headers.delete(crate::rules::INTERNAL_READ)?;
    headers.delete(crate::files_plan::INTERNAL_FILES)?;
    headers.delete(crate::resumable::INTERNAL_UPLOAD)?;
    let mut init = RequestInit::new();
    init.with_method(req.method()).with_headers(headers.clone());
    if !plain.body.is_empty() {
        init.with_body(Some(plain.body.clone().into()));
    }
    let forwarded = if upgrade {
        // The upgrade goes on as received (an object never honours the
        // internal header on an upgrade).
        req
    } else {
        Request::new_with_init(req.url()?.as_ref(), &init)?
    };
    stub.fetch_with_request(forwarded).await
}
