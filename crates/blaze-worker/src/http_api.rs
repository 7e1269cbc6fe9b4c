//! The HTTP mapping of spec section 11, inside a collection's object: each
//! route becomes a read or a one-batch commit on the hub, so HTTP writes
//! reach WebSocket listeners like any other commit.

use blaze_core::{Hub, Storage};
use blaze_protocol::{CommitBody, DocPath, ErrorCode, Precondition, Query, Write, WriteKind};
use serde_json::{json, Value};

use crate::http_types::{parse_body, HttpRequest, HttpResponse};
use crate::routing::{allow, decode, invalid_path};

/// Answers one HTTP request at time `now` (milliseconds since the Unix epoch).
pub fn handle<S: Storage>(hub: &mut Hub<S>, req: &HttpRequest, now: u64) -> HttpResponse {
    answer(hub, req, now).unwrap_or_else(|refused| refused)
}

fn answer<S: Storage>(
    hub: &mut Hub<S>,
    req: &HttpRequest,
    now: u64,
) -> Result<HttpResponse, HttpResponse> {
    let limits = hub.database().limits().clone();
    match req.path.as_str() {
        "/v1/commit" => {
            allow(req, &["POST"])?;
            let body: CommitBody = parse_body(&req.body, &limits)?;
            let result = hub
                .handle_commit(&body.collection, &body.writes, now)
                .map_err(|e| HttpResponse::from_error(&e))?;
            Ok(HttpResponse::ok(&json!(result)))
        }
        "/v1/query" | "/v1/count" => {
            allow(req, &["POST"])?;
            let query: Query = parse_body(&req.body, &limits)?;
            let out = hub
                .query(&query)
                .map_err(|e| HttpResponse::from_error(&e))?;
            if req.path == "/v1/count" {
                return Ok(HttpResponse::ok(
                    &json!({"seq": out.seq, "count": out.docs.len()}),
                ));
            }
            let docs: Vec<_> = out
                .docs
                .iter()
                .map(|d| d.snapshot(&query.collection))
                .collect();
            Ok(HttpResponse::ok(&json!({"seq": out.seq, "docs": docs})))
        }
        path => match path.strip_prefix("/v1/docs/") {
            Some(rest) => document(hub, req, &decode(rest)?, now),
            None => Err(HttpResponse::rejected(
                ErrorCode::NotFound,
                format!("no route {path}"),
            )),
        },
    }
}

fn document<S: Storage>(
    hub: &mut Hub<S>,
    req: &HttpRequest,
    path: &str,
    now: u64,
) -> Result<HttpResponse, HttpResponse> {
    allow(req, &["GET", "PUT", "PATCH", "DELETE"])?;
    let doc = DocPath::parse(path).map_err(invalid_path)?;
    let limits = hub.database().limits().clone();
    let kind =
        match req.method.as_str() {
            "GET" => {
                let snapshot = hub.get(&doc).map_err(|e| HttpResponse::from_error(&e))?;
                return match snapshot.version {
                    Some(version) => Ok(HttpResponse::ok(&json!(snapshot))
                        .with_header("ETag", format!("\"{version}\""))),
                    None => Err(HttpResponse::rejected(
                        ErrorCode::NotFound,
                        format!("{path} does not exist"),
                    )),
                };
            }
            "PUT" => {
                let data: Value = parse_body(&req.body, &limits)?;
                if req.if_none_match.as_deref().map(str::trim) == Some("*") {
                    WriteKind::Create { data }
                } else {
                    WriteKind::Set { data }
                }
            }
            "PATCH" => {
                let patch: Value = parse_body(&req.body, &limits)?;
                if !(patch.is_array() || patch.is_object()) {
                    let msg = "a PATCH body is a JSON Patch (array) or a merge patch (object)";
                    return Err(HttpResponse::rejected(ErrorCode::InvalidFrame, msg));
                }
                match media_type(req.content_type.as_deref()).as_deref() {
                    Some("application/json-patch+json") => WriteKind::Patch { patch },
                    Some("application/merge-patch+json") => WriteKind::Merge { patch },
                    _ => return Err(HttpResponse::rejected(
                        ErrorCode::UnsupportedMediaType,
                        "PATCH takes application/json-patch+json or application/merge-patch+json",
                    )),
                }
            }
            _ => WriteKind::Delete,
        };
    let write = Write {
        id: doc.id().to_owned(),
        kind,
        precondition: if_match(req.if_match.as_deref())?,
    };
    let result = hub
        .handle_commit(&doc.collection(), &[write], now)
        .map_err(|e| HttpResponse::from_error(&e))?;
    let answer = HttpResponse::ok(&json!(result));
    Ok(match req.method.as_str() {
        "DELETE" => answer,
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
