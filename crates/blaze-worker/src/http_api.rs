//! The HTTP mapping of spec section 11, inside a collection's object: each
//! [`Endpoint`] becomes a read or a one-batch commit on the hub, so HTTP
//! writes reach WebSocket listeners like any other commit.

use blaze_core::{Caller, Hub, Storage};
use blaze_protocol::http::{CountAnswer, QueryAnswer};
use blaze_protocol::{
    CollectionPath, DocPath, ErrorCode, Identity, Precondition, Write, WriteKind,
};
use serde_json::Value;

use crate::files_plan::{file_answer, stamped, REPLACED_KEY};
use crate::http_types::{parse_body, HttpRequest, HttpResponse};
use crate::routing::{DocMethod, Endpoint};

/// What answering an HTTP request came to.
pub enum Answer {
    /// The response.
    Done(HttpResponse),
    /// The access rules read documents of other collections: fetch them
    /// into the caller's `fetched` and answer again (spec 14.5).
    Fetch(Vec<DocPath>),
}

/// Answers `endpoint`, routed from `req`, as `caller` at time `now`
/// (milliseconds since the Unix epoch).
pub fn answer<S: Storage>(
    hub: &mut Hub<S>,
    caller: &Caller,
    endpoint: &Endpoint,
    req: &HttpRequest,
    now: u64,
) -> Answer {
    hub.set_now(now);
    match respond(hub, caller, endpoint, req, now) {
        Ok(response) => Answer::Done(response),
        Err(Refusal::Fetch(paths)) => Answer::Fetch(paths),
        Err(Refusal::Response(response)) => Answer::Done(response),
    }
}

/// Why a request was not answered with success.
enum Refusal {
    Response(HttpResponse),
    Fetch(Vec<DocPath>),
}

impl From<HttpResponse> for Refusal {
    fn from(response: HttpResponse) -> Self {
        Refusal::Response(response)
    }
}

impl From<blaze_core::Error> for Refusal {
    fn from(e: blaze_core::Error) -> Self {
        match e {
            blaze_core::Error::NeedDocuments(paths) => Refusal::Fetch(paths),
            e => Refusal::Response(HttpResponse::from_error(&e)),
        }
    }
}

fn respond<S: Storage>(
    hub: &mut Hub<S>,
    caller: &Caller,
    endpoint: &Endpoint,
    req: &HttpRequest,
    now: u64,
) -> Result<HttpResponse, Refusal> {
    match endpoint {
        Endpoint::Preflight | Endpoint::Health => {
            Ok(endpoint.local_answer().expect("answered locally"))
        }
        Endpoint::Listen(_) => Err(HttpResponse::rejected(
            ErrorCode::InvalidFrame,
            "this route needs a WebSocket upgrade",
        )
        .into()),
        Endpoint::Commit {
            collection,
            writes,
            commit_id,
        } => {
            let result =
                hub.handle_commit_with_id(caller, collection, writes, commit_id.as_ref(), now)?;
            Ok(HttpResponse::ok(&result))
        }
        Endpoint::Query { collection, query } => {
            let out = hub.query(caller, query)?;
            let docs = out.docs.iter().map(|d| d.snapshot(collection)).collect();
            Ok(HttpResponse::ok(&QueryAnswer { seq: out.seq, docs }))
        }
        Endpoint::Count { query, .. } => {
            let (seq, count) = hub.count(caller, query)?;
            Ok(HttpResponse::ok(&CountAnswer { seq, count }))
        }
        Endpoint::Doc { path, method } => document(hub, caller, req, path, *method, now),
    }
}

fn document<S: Storage>(
    hub: &mut Hub<S>,
    caller: &Caller,
    req: &HttpRequest,
    doc: &DocPath,
    method: DocMethod,
    now: u64,
) -> Result<HttpResponse, Refusal> {
    let path = doc.as_str();
    let limits = hub.database().limits().clone();
    let kind = match method {
        DocMethod::Get => {
            let snapshot = hub.get(caller, doc)?;
            return match snapshot.version {
                Some(version) => {
                    Ok(HttpResponse::ok(&snapshot).with_header("ETag", format!("\"{version}\"")))
                }
                None => Err(HttpResponse::rejected(
                    ErrorCode::NotFound,
                    format!("{path} does not exist"),
                )
                .into()),
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
                return Err(HttpResponse::rejected(ErrorCode::InvalidFrame, msg).into());
            }
            match media_type(req.content_type.as_deref()).as_deref() {
                Some("application/json-patch+json") => WriteKind::Patch { patch },
                Some("application/merge-patch+json") => WriteKind::Merge { patch },
                _ => {
                    return Err(HttpResponse::rejected(
                        ErrorCode::UnsupportedMediaType,
                        "PATCH takes application/json-patch+json or application/merge-patch+json",
                    )
                    .into())
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
    let result = hub.handle_commit(caller, &doc.collection(), &[write], now)?;
    let answer = HttpResponse::ok(&result);
    Ok(match method {
        DocMethod::Delete => answer,
        _ => answer.with_header("ETag", format!("\"{}\"", result.seq)),
    })
}

/// What the Worker asks a folder's object about a file's metadata (spec 15).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileOp {
    /// May the caller make this write? Nothing is written (before an upload
    /// stores its bytes).
    Check,
    /// Make it, answering with the object key of the file it replaced or
    /// deleted (header [`REPLACED_KEY`]).
    Commit,
}

/// Answers the Worker's `op` on `collection` with the one metadata `write`,
/// as `caller`: `uploadedBy` is set to the caller's uid here, whatever the
/// write says. Deleting a file that does not exist is 404 `not_found` (once
/// the rules allow the delete); so is merging into one (an update of its
/// metadata), to a caller who may read it. A committed write that leaves the
/// document is answered with the file's answer (spec 15.3).
pub fn answer_file<S: Storage>(
    hub: &mut Hub<S>,
    caller: &Caller,
    op: FileOp,
    collection: &CollectionPath,
    write: &Write,
    now: u64,
) -> Answer {
    hub.set_now(now);
    match file(hub, caller, op, collection, write, now) {
        Ok(response) => Answer::Done(response),
        Err(Refusal::Fetch(paths)) => Answer::Fetch(paths),
        Err(Refusal::Response(response)) => Answer::Done(response),
    }
}

fn file<S: Storage>(
    hub: &mut Hub<S>,
    caller: &Caller,
    op: FileOp,
    collection: &CollectionPath,
    write: &Write,
    now: u64,
) -> Result<HttpResponse, Refusal> {
    let uid = match &caller.identity {
        Identity::User { uid, .. } => Some(uid.as_str()),
        Identity::Admin | Identity::Anonymous => None,
    };
    let write = stamped(write, uid);
    let writes = std::slice::from_ref(&write);
    hub.check_commit(caller, collection, writes, now)?;
    if op == FileOp::Check {
        return Ok(HttpResponse::no_content());
    }
    let doc = collection
        .doc(&write.id)
        .map_err(|e| HttpResponse::rejected(ErrorCode::InvalidPath, e.to_string()))?;
    let stored = hub.database().get(&doc)?;
    if !stored.exists && matches!(write.kind, WriteKind::Delete) {
        let msg = format!("no file has the metadata document {}", doc.as_str());
        return Err(HttpResponse::rejected(ErrorCode::NotFound, msg).into());
    }
    let result = hub.handle_commit(caller, collection, writes, now)?;
    let before = stored.data.as_ref().and_then(|d| d.get("key"));
    let after = hub.database().get(&doc)?.data;
    // The key the commit stopped naming (an update of metadata names the same).
    let replaced = before
        .filter(|&key| after.as_ref().and_then(|d| d.get("key")) != Some(key))
        .and_then(Value::as_str);
    let answer = match &after {
        Some(data) => HttpResponse::ok(&file_answer(data, result.seq, result.time)),
        None => HttpResponse::ok(&result),
    }
    .with_header("ETag", format!("\"{}\"", result.seq));
    Ok(match replaced {
        Some(key) => answer.with_header(REPLACED_KEY, key.to_owned()),
        None => answer,
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
