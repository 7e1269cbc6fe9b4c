//! The HTTP mapping of spec section 11, inside a collection's object: each
//! [`Endpoint`] becomes a read or a one-batch commit on the hub, so HTTP
//! writes reach WebSocket listeners like any other commit.

use blaze_core::{Hub, Storage};
use blaze_protocol::http::{CountAnswer, QueryAnswer};
use blaze_protocol::{DocPath, ErrorCode, Precondition, Write, WriteKind};
use serde_json::Value;

use crate::http_types::{parse_body, HttpRequest, HttpResponse};
use crate::routing::{DocMethod, Endpoint};

/// Answers `endpoint`, routed from `req`, at time `now` (milliseconds since the Unix epoch).
pub fn answer<S: Storage>(
    hub: &mut Hub<S>,
    endpoint: &Endpoint,
    req: &HttpRequest,
    now: u64,
) -> HttpResponse {
    respond(hub, endpoint, req, now).unwrap_or_else(|refused| refused)
}

fn respond<S: Storage>(
    hub: &mut Hub<S>,
    endpoint: &Endpoint,
    req: &HttpRequest,
    now: u64,
) -> Result<HttpResponse, HttpResponse> {
    let engine = |e: blaze_core::Error| HttpResponse::from_error(&e);
    match endpoint {
        Endpoint::Preflight | Endpoint::Health => {
            Ok(endpoint.local_answer().expect("answered locally"))
        }
        Endpoint::Listen(_) => Err(HttpResponse::rejected(
            ErrorCode::InvalidFrame,
            "this route needs a WebSocket upgrade",
        )),
        Endpoint::Commit {
            collection,
            writes,
            commit_id,
        } => {
            let result = hub
                .handle_commit_with_id(collection, writes, commit_id.as_ref(), now)
                .map_err(engine)?;
            Ok(HttpResponse::ok(&result))
        }
        Endpoint::Query { collection, query } => {
            let out = hub.query(query).map_err(engine)?;
            let docs = out.docs.iter().map(|d| d.snapshot(collection)).collect();
            Ok(HttpResponse::ok(&QueryAnswer { seq: out.seq, docs }))
        }
        Endpoint::Count { query, .. } => {
            let (seq, count) = hub.count(query).map_err(engine)?;
            Ok(HttpResponse::ok(&CountAnswer { seq, count }))
        }
        Endpoint::Doc { path, method } => document(hub, req, path, *method, now),
    }
}

fn document<S: Storage>(
    hub: &mut Hub<S>,
    req: &HttpRequest,
    doc: &DocPath,
    method: DocMethod,
    now: u64,
) -> Result<HttpResponse, HttpResponse> {
    let path = doc.as_str();
    let limits = hub.database().limits().clone();
    let kind = match method {
        DocMethod::Get => {
            let snapshot = hub.get(doc).map_err(|e| HttpResponse::from_error(&e))?;
            return match snapshot.version {
                Some(version) => {
                    Ok(HttpResponse::ok(&snapshot).with_header("ETag", format!("\"{version}\"")))
                }
                None => Err(HttpResponse::rejected(
                    ErrorCode::NotFound,
                    format!("{path} does not exist"),
                )),
            };
        }
        DocMethod::Put => {
            let data: Value = parse_body(&req.body, &limits)?;
            if req.if_none_match.as_deref().map(str::trim) == Some("*") {
                WriteKind::Create { data }
            } else {
                WriteKind::Set { data }
            }
        }
        DocMethod::Patch => {
            let patch: Value = parse_body(&req.body, &limits)?;
            if !(patch.is_array() || patch.is_object()) {
                let msg = "a PATCH body is a JSON Patch (array) or a merge patch (object)";
                return Err(HttpResponse::rejected(ErrorCode::InvalidFrame, msg));
            }
            match media_type(req.content_type.as_deref()).as_deref() {
                Some("application/json-patch+json") => WriteKind::Patch { patch },
                Some("application/merge-patch+json") => WriteKind::Merge { patch },
                _ => {
                    return Err(HttpResponse::rejected(
                        ErrorCode::UnsupportedMediaType,
                        "PATCH takes application/json-patch+json or application/merge-patch+json",
                    ))
                }
            }
        }
        DocMethod::Delete => WriteKind::Delete,
    };
    let write = Write {
        id: doc.id().to_owned(),
        kind,
        precondition: if_match(req.if_match.as_deref())?,
    };
    let result = hub
        .handle_commit(&doc.collection(), &[write], now)
        .map_err(|e| HttpResponse::from_error(&e))?;
    let answer = HttpResponse::ok(&result);
    Ok(match method {
        DocMethod::Delete => answer,
        _ => answer.with_header("ETag", format!("\"{}\"", result.seq)),
    })
}

/// The media type of a `Content-Type`, lower case, without parameters.
fn media_type(content_type: Option<&str>) -> Option<String> {
    let media = content_type?.split(';').next()?.trim();
    Some(media.to_ascii_lowercase())
}

/// The precondition an `If-Match` header asks for.
fn if_match(header: Option<&str>) -> Result<Precondition, HttpResponse> {
    let Some(value) = header.map(str::trim) else {
        return Ok(Precondition::default());
    };
    if value == "*" {
        return Ok(Precondition {
            exists: Some(true),
            version: None,
        });
    }
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|v| v.parse().ok())
        .map(|version| Precondition {
            exists: None,
            version: Some(version),
        })
        .ok_or_else(|| {
            HttpResponse::rejected(
                ErrorCode::PreconditionFailed,
                format!("If-Match {value} can never match a version"),
            )
        })
}

#[cfg(test)]
mod tests;
