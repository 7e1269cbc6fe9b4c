//! The Worker's router: which Durable Object a request goes to. Each
//! collection path is its own object, named by the path (spec section 11.1).

use blaze_protocol::{CollectionPath, CommitBody, DocPath, ErrorCode, Limits, PathError, Query};

use crate::http_types::{parse_body, percent_decode, HttpRequest, HttpResponse};

/// Where a request goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// A CORS preflight, answered by the Worker.
    Preflight,
    /// `GET /v1/health`, answered by the Worker.
    Health,
    /// Forwarded to the object of this collection path.
    Object(String),
}

/// Routes `req`; `upgrade` says whether it asks for a WebSocket. Requests the
/// Worker refuses itself get their error answer.
pub fn route(req: &HttpRequest, upgrade: bool, limits: &Limits) -> Result<Route, HttpResponse> {
    if req.method == "OPTIONS" {
        return Ok(Route::Preflight);
    }
    let path = req.path.as_str();
    if path == "/v1/health" {
        allow(req, &["GET"])?;
        return Ok(Route::Health);
    }
    if let Some(rest) = path.strip_prefix("/v1/docs/") {
        allow(req, &["GET", "PUT", "PATCH", "DELETE"])?;
        let path = decode(rest)?;
        let doc = DocPath::parse(&path).map_err(invalid_path)?;
        return Ok(Route::Object(doc.collection().to_string()));
    }
    if let Some(rest) = path.strip_prefix("/v1/ws/") {
        allow(req, &["GET"])?;
        let path = decode(rest)?;
        let collection = CollectionPath::parse(&path).map_err(invalid_path)?;
        if !upgrade {
            let msg = "this route needs a WebSocket upgrade";
            return Err(HttpResponse::rejected(ErrorCode::InvalidFrame, msg));
        }
        return Ok(Route::Object(collection.to_string()));
    }
    let collection = match path {
        "/v1/ws" => {
            let msg = "connect to /v1/ws/{collection path}";
            return Err(HttpResponse::rejected(ErrorCode::InvalidPath, msg));
        }
        "/v1/commit" => {
            allow(req, &["POST"])?;
            parse_body::<CommitBody>(&req.body, limits)?.collection
        }
        "/v1/query" | "/v1/count" => {
            allow(req, &["POST"])?;
            parse_body::<Query>(&req.body, limits)?.collection
        }
        _ => {
            let msg = format!("no route {path}");
            return Err(HttpResponse::rejected(ErrorCode::NotFound, msg));
        }
    };
    Ok(Route::Object(collection.to_string()))
}

/// Refuses a method the route does not support: 405 with `Allow`.
pub fn allow(req: &HttpRequest, methods: &[&str]) -> Result<(), HttpResponse> {
    if methods.contains(&req.method.as_str()) {
        return Ok(());
    }
    let msg = format!("{} is not allowed here", req.method);
    Err(HttpResponse::rejected(ErrorCode::MethodNotAllowed, msg)
        .with_header("Allow", format!("{}, OPTIONS", methods.join(", "))))
}

/// Percent-decodes the path part of a route.
pub fn decode(rest: &str) -> Result<String, HttpResponse> {
    percent_decode(rest)
        .ok_or_else(|| HttpResponse::rejected(ErrorCode::InvalidPath, "bad percent-encoding"))
}

/// The answer to a path that breaks the path rules (`invalid_path`).
pub fn invalid_path(e: PathError) -> HttpResponse {
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
            Ok(Route::Object(c)) => Ok(c),
            Ok(Route::Health) => Ok("health".into()),
            Ok(Route::Preflight) => Ok("preflight".into()),
            Err(r) => Err((r.status, r.error_code().unwrap_or_default())),
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
        check("GET", "/v2/health", "", false, Err((404, "not_found")));
        check("GET", "/", "", false, Err((404, "not_found")));
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
