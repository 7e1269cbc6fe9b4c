//! The router: what a request asks for, as one typed [`Endpoint`] that both
//! processes use. The Worker routes a request to learn which Durable Object
//! answers it (each collection path is its own object, named by the path,
//! spec section 11.1) and answers health checks and preflights itself; the
//! object routes the request it is forwarded again and answers the endpoint.
//!
//! Each process parses a body once. The Worker parses a commit or query body
//! whole, not just its `collection`: the route's refusals keep their order
//! (a body of the wrong shape is `invalid_frame` before its path is
//! `invalid_path`) and a bad request never wakes an object. The object
//! parses the forwarded bytes again rather than trusting a digest from the
//! Worker: passing the parsed body on would mean encoding and decoding it
//! again anyway, and the object then needs nothing but the request.

use blaze_protocol::http::HealthAnswer;
use blaze_protocol::{
    CollectionPath, CommitBody, CommitId, DocPath, ErrorCode, Limits, PathError, Query, Write,
};

use crate::http_types::{parse_body, percent_decode, HttpRequest, HttpResponse, PREFLIGHT};

/// What a request asks for, checked: its method, its paths and (for the
/// `POST` routes) its body.
#[derive(Clone, Debug, PartialEq)]
pub enum Endpoint {
    /// A CORS preflight, answered by the Worker.
    Preflight,
    /// `GET /v1/health`, answered by the Worker.
    Health,
    /// `/v1/docs/{path}`: a read or a one-write commit (its body, if any, is
    /// read when answering, with the headers that say what it is).
    Doc {
        /// The document.
        path: DocPath,
        /// What to do with it.
        method: DocMethod,
    },
    /// `POST /v1/commit`.
    Commit {
        /// The collection the batch writes to.
        collection: CollectionPath,
        /// The writes.
        writes: Vec<Write>,
        /// The client's commit id, if it chose one (spec 8.7).
        commit_id: Option<CommitId>,
    },
    /// `POST /v1/query`.
    Query {
        /// The collection queried.
        collection: CollectionPath,
        /// The query.
        query: Query,
    },
    /// `POST /v1/count`.
    Count {
        /// The collection queried.
        collection: CollectionPath,
        /// The query whose results are counted.
        query: Query,
    },
    /// `GET /v1/ws/{collection}` with a WebSocket upgrade.
    Listen(CollectionPath),
}

/// The methods of `/v1/docs/{path}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DocMethod {
    /// Read it.
    Get,
    /// Create or replace it.
    Put,
    /// Patch it (JSON Patch or merge patch, by content type).
    Patch,
    /// Delete it.
    Delete,
}

impl Endpoint {
    /// Whether it writes: a commit, or a document's `PUT`, `PATCH` or `DELETE`.
    pub fn writes(&self) -> bool {
        match self {
            Endpoint::Commit { .. } => true,
            Endpoint::Doc { method, .. } => *method != DocMethod::Get,
            _ => false,
        }
    }

    /// The collection whose object answers; `None` when the Worker answers itself.
    pub fn collection(&self) -> Option<CollectionPath> {
        match self {
            Self::Preflight | Self::Health => None,
            Self::Doc { path, .. } => Some(path.collection()),
            Self::Commit { collection, .. }
            | Self::Query { collection, .. }
            | Self::Count { collection, .. }
            | Self::Listen(collection) => Some(collection.clone()),
        }
    }

    /// The Worker's own answer, for the endpoints no object serves.
    pub fn local_answer(&self) -> Option<HttpResponse> {
        match self {
            Self::Health => Some(HttpResponse::ok(&HealthAnswer { ok: true })),
            Self::Preflight => {
                let mut answer = HttpResponse::no_content();
                for (name, value) in PREFLIGHT {
                    answer = answer.with_header(name, value.to_owned());
                }
                Some(answer)
            }
            _ => None,
        }
    }
}

/// Routes `req`; `upgrade` says whether it asks for a WebSocket. A request
/// that is refused gets its error answer.
pub fn route(req: &HttpRequest, upgrade: bool, limits: &Limits) -> Result<Endpoint, HttpResponse> {
    if req.method == "OPTIONS" {
        return Ok(Endpoint::Preflight);
    }
    let path = req.path.as_str();
    if path == "/v1/health" {
        allow(req, &["GET"])?;
        return Ok(Endpoint::Health);
    }
    if let Some(rest) = path.strip_prefix("/v1/docs/") {
        allow(req, &["GET", "PUT", "PATCH", "DELETE"])?;
        let path = DocPath::parse(&decode(rest)?).map_err(invalid_path)?;
        let method = match req.method.as_str() {
            "GET" => DocMethod::Get,
            "PUT" => DocMethod::Put,
            "PATCH" => DocMethod::Patch,
            _ => DocMethod::Delete,
        };
        return Ok(Endpoint::Doc { path, method });
    }
    if let Some(rest) = path.strip_prefix("/v1/ws/") {
        allow(req, &["GET"])?;
        // The path is checked before the upgrade (spec 10.1).
        let collection = CollectionPath::parse(&decode(rest)?).map_err(invalid_path)?;
        if !upgrade {
            let msg = "this route needs a WebSocket upgrade";
            return Err(HttpResponse::rejected(ErrorCode::InvalidFrame, msg));
        }
        return Ok(Endpoint::Listen(collection));
    }
    match path {
        "/v1/ws" => {
            let msg = "connect to /v1/ws/{collection path}";
            Err(HttpResponse::rejected(ErrorCode::InvalidPath, msg))
        }
        "/v1/commit" => {
            allow(req, &["POST"])?;
            let body: CommitBody = parse_body(&req.body, limits)?;
            Ok(Endpoint::Commit {
                collection: body.collection,
                writes: body.writes,
                commit_id: body.commit_id,
            })
        }
        "/v1/query" | "/v1/count" => {
            allow(req, &["POST"])?;
            let query: Query = parse_body(&req.body, limits)?;
            let collection = query.collection.clone();
            Ok(match path {
                "/v1/query" => Endpoint::Query { collection, query },
                _ => Endpoint::Count { collection, query },
            })
        }
        _ => {
            let msg = format!("no route {path}");
            Err(HttpResponse::rejected(ErrorCode::NotFound, msg))
        }
    }
}

/// Refuses a method the route does not support: 405 with `Allow`.
fn allow(req: &HttpRequest, methods: &[&str]) -> Result<(), HttpResponse> {
    if methods.contains(&req.method.as_str()) {
        return Ok(());
    }
    let msg = format!("{} is not allowed here", req.method);
    Err(HttpResponse::rejected(ErrorCode::MethodNotAllowed, msg)
        .with_header("Allow", format!("{}, OPTIONS", methods.join(", "))))
}

/// Percent-decodes the path part of a route.
fn decode(rest: &str) -> Result<String, HttpResponse> {
    percent_decode(rest)
        .ok_or_else(|| HttpResponse::rejected(ErrorCode::InvalidPath, "bad percent-encoding"))
}

/// The answer to a path that breaks the path rules (`invalid_path`, through
/// the one mapping of `PathError` to a rejection).
fn invalid_path(e: PathError) -> HttpResponse {
    HttpResponse::from_error(&e.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(method: &str, path: &str, body: &str, upgrade: bool, want: Result<&str, (u16, &str)>) {
        let req = HttpRequest {
            method: method.into(),
            path: path.into(),
            body: body.into(),
            ..HttpRequest::default()
        };
        let got = match route(&req, upgrade, &Limits::default()) {
            Ok(Endpoint::Health) => Ok("health".into()),
            Ok(Endpoint::Preflight) => Ok("preflight".into()),
            Ok(endpoint) => Ok(endpoint.collection().expect("an object's").to_string()),
            Err(r) => Err((r.status, r.error.map_or("", ErrorCode::as_str).to_owned())),
        };
        let want = want.map(str::to_owned).map_err(|(s, c)| (s, c.to_owned()));
        assert_eq!(got, want, "{method} {path} {body}");
    }

    #[test]
    fn routes() {
        check("GET", "/v1/health", "", false, Ok("health"));
        check("OPTIONS", "/anything", "", false, Ok("preflight"));
        check("GET", "/v1/docs/rooms/r1", "", false, Ok("rooms"));
        check(
            "PUT",
            "/v1/docs/rooms/r1/messages/m1",
            "",
            false,
            Ok("rooms/r1/messages"),
        );
        check("GET", "/v1/docs/rooms%2Fr1", "", false, Ok("rooms"));
        check(
            "GET",
            "/v1/docs/rooms",
            "",
            false,
            Err((400, "invalid_path")),
        );
        check(
            "GET",
            "/v1/docs/rooms/a%zz",
            "",
            false,
            Err((400, "invalid_path")),
        );
        check(
            "POST",
            "/v1/docs/rooms/r1",
            "",
            false,
            Err((405, "method_not_allowed")),
        );
        check(
            "POST",
            "/v1/health",
            "",
            false,
            Err((405, "method_not_allowed")),
        );
        check("GET", "/v1/ws/rooms", "", true, Ok("rooms"));
        check(
            "GET",
            "/v1/ws/rooms/r1/messages",
            "",
            true,
            Ok("rooms/r1/messages"),
        );
        check(
            "GET",
            "/v1/ws/rooms",
            "",
            false,
            Err((400, "invalid_frame")),
        );
        check(
            "GET",
            "/v1/ws/rooms/r1",
            "",
            true,
            Err((400, "invalid_path")),
        );
        // The path is checked before the upgrade (spec 10.1).
        check(
            "GET",
            "/v1/ws/rooms/r1",
            "",
            false,
            Err((400, "invalid_path")),
        );
        check("GET", "/v1/ws", "", true, Err((400, "invalid_path")));
        check(
            "POST",
            "/v1/commit",
            r#"{"collection":"rooms","writes":[]}"#,
            false,
            Ok("rooms"),
        );
        check(
            "POST",
            "/v1/commit",
            r#"{"collection":"rooms/r1","writes":[]}"#,
            false,
            Err((400, "invalid_path")),
        );
        check(
            "POST",
            "/v1/commit",
            r#"{"writes":[]}"#,
            false,
            Err((400, "invalid_frame")),
        );
        check(
            "GET",
            "/v1/commit",
            "",
            false,
            Err((405, "method_not_allowed")),
        );
        check(
            "POST",
            "/v1/query",
            r#"{"collection":"a/b/c"}"#,
            false,
            Ok("a/b/c"),
        );
        check(
            "POST",
            "/v1/count",
            "nope",
            false,
            Err((400, "invalid_frame")),
        );
        // An unknown method is refused, never read as another one.
        check(
            "PROPFIND",
            "/v1/docs/rooms/r1",
            "",
            false,
            Err((405, "method_not_allowed")),
        );
        // The runtime resolves `..` and `.` before the router sees a path;
        // what reaches it encoded is a segment the path rules refuse,
        // never another document.
        for path in [
            "/v1/docs/rooms%2F..%2Fcanary/c5",
            "/v1/docs/x/%2e%2e/canary/c5",
            "/v1/docs/x%2F%2E%2E%2Fcanary%2Fc5",
            "/v1/docs/rooms/%2E",
            "/v1/docs/rooms%2F.%2Fr1",
        ] {
            check("PUT", path, "", false, Err((400, "invalid_path")));
        }
        check(
            "GET",
            "/v1/ws/rooms%2F..%2Fx",
            "",
            true,
            Err((400, "invalid_path")),
        );
        check("GET", "/v2/health", "", false, Err((404, "not_found")));
        check("GET", "/", "", false, Err((404, "not_found")));
    }

    #[test]
    fn endpoints_carry_what_was_parsed() {
        let req = |method: &str, path: &str, body: &str| HttpRequest {
            method: method.into(),
            path: path.into(),
            body: body.into(),
            ..HttpRequest::default()
        };
        let limits = Limits::default();
        assert_eq!(
            route(&req("PATCH", "/v1/docs/rooms%2Fr-1", ""), false, &limits),
            Ok(Endpoint::Doc {
                path: DocPath::parse("rooms/r-1").unwrap(),
                method: DocMethod::Patch
            })
        );
        let count = route(
            &req("POST", "/v1/count", r#"{"collection":"a/b/c","limit":2}"#),
            false,
            &limits,
        );
        let Ok(Endpoint::Count { collection, query }) = count else {
            panic!("a count: {count:?}");
        };
        assert_eq!(collection.as_str(), "a/b/c");
        assert_eq!(query.limit, Some(2));
    }

    #[test]
    fn the_worker_answers_health_and_preflights() {
        let health = Endpoint::Health.local_answer().unwrap();
        assert_eq!(
            (health.status, health.body.as_str()),
            (200, r#"{"ok":true}"#)
        );
        let preflight = Endpoint::Preflight.local_answer().unwrap();
        assert_eq!((preflight.status, preflight.body.as_str()), (204, ""));
        assert_eq!(preflight.headers.len(), PREFLIGHT.len());
        let listen = Endpoint::Listen(CollectionPath::parse("rooms").unwrap());
        assert_eq!(listen.local_answer(), None);
    }

    #[test]
    fn method_not_allowed_names_the_allowed_ones() {
        let req = HttpRequest {
            method: "POST".into(),
            path: "/v1/docs/a/b".into(),
            ..HttpRequest::default()
        };
        let answer = route(&req, false, &Limits::default()).unwrap_err();
        assert_eq!(
            answer.headers,
            vec![("Allow", "GET, PUT, PATCH, DELETE, OPTIONS".to_owned())]
        );
    }
}
