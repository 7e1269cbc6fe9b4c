//! Plain HTTP requests and answers, free of any runtime's types, so the
//! routing and the HTTP mapping can be tested natively.

use blaze_core::Error;
use blaze_protocol::http::ErrorAnswer;
use blaze_protocol::{decode_body, ErrorBody, ErrorCode, Limits};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// What the HTTP mapping needs of a request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpRequest {
    /// The method, upper case.
    pub method: String,
    /// The URL path, not yet percent-decoded.
    pub path: String,
    /// The `Content-Type` header.
    pub content_type: Option<String>,
    /// The `If-Match` header.
    pub if_match: Option<String>,
    /// The `If-None-Match` header.
    pub if_none_match: Option<String>,
    /// The body as text (empty when there is none).
    pub body: String,
}

/// An answer, before CORS headers are added.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Headers besides `Content-Type: application/json` and CORS.
    pub headers: Vec<(&'static str, String)>,
    /// The JSON body (empty for 204).
    pub body: String,
    /// The error code of an error answer, for logs (the body says the same).
    pub error: Option<ErrorCode>,
    /// What the client is not told: a storage failure's text, for the log.
    pub detail: Option<String>,
}

impl HttpResponse {
    /// A 200 answer with `body` as JSON.
    pub fn ok(body: &impl Serialize) -> Self {
        Self {
            status: 200,
            headers: Vec::new(),
            body: serde_json::to_string(body).expect("answer bodies serialize"),
            error: None,
            detail: None,
        }
    }

    /// A 204 answer: no body.
    pub fn no_content() -> Self {
        Self {
            status: 204,
            headers: Vec::new(),
            body: String::new(),
            error: None,
            detail: None,
        }
    }

    /// The same answer with one more header.
    pub fn with_header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    /// The error answer for a wire error object: its code's status and `{"error": ...}`.
    pub fn error(body: ErrorBody) -> Self {
        let code = body.code;
        Self {
            error: Some(code),
            ..Self::ok(&ErrorAnswer { error: body })
        }
        .with_status(code.http_status())
    }

    fn with_status(self, status: u16) -> Self {
        Self { status, ..self }
    }

    /// The error answer for `code` with `message`.
    pub fn rejected(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::error(ErrorBody {
            code,
            message: message.into(),
            write_index: None,
        })
    }

    /// The error answer for an engine error, with its detail for the log.
    pub fn from_error(error: &Error) -> Self {
        Self {
            detail: error.detail(),
            ..Self::error(error.to_body())
        }
    }
}

/// The credential of an `Authorization` header (spec 13.1): `None` without
/// the header (the anonymous identity), the credential of `Bearer
/// <credential>` (the scheme in any case), and a 401 for anything else (an
/// empty credential, another scheme).
pub fn bearer(header: Option<&str>) -> Result<Option<&str>, HttpResponse> {
    let Some(header) = header else {
        return Ok(None);
    };
    let credential = header
        .trim()
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, credential)| credential.trim())
        .filter(|credential| !credential.is_empty());
    match credential {
        Some(credential) => Ok(Some(credential)),
        None => Err(unauthenticated(
            "the Authorization header must be Bearer <credential>",
        )),
    }
}

/// A 401 `unauthenticated` answer with `WWW-Authenticate: Bearer` (spec 13.6).
pub fn unauthenticated(message: impl Into<String>) -> HttpResponse {
    HttpResponse::rejected(ErrorCode::Unauthenticated, message)
        .with_header("WWW-Authenticate", "Bearer".to_owned())
}

/// The CORS headers every answer carries (protocol section 11).
pub const CORS: [(&str, &str); 2] = [
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Expose-Headers", "ETag"),
];

/// The extra headers of an answer to a preflight `OPTIONS` request.
pub const PREFLIGHT: [(&str, &str); 2] = [
    (
        "Access-Control-Allow-Methods",
        "GET, PUT, PATCH, DELETE, POST, OPTIONS",
    ),
    (
        "Access-Control-Allow-Headers",
        "Content-Type, If-Match, If-None-Match, Authorization",
    ),
];

/// Reads a request body as `T`, with the frame limits of section 11: too
/// long is `frame_too_large`, too deep `frame_too_deep`, not JSON or not of
/// the route's shape `invalid_frame`, a collection path that breaks the path
/// rules `invalid_path`.
pub fn parse_body<T: DeserializeOwned>(body: &str, limits: &Limits) -> Result<T, HttpResponse> {
    decode_body(body, limits)
        .map_err(|e| HttpResponse::rejected(e.code, format!("body: {}", e.message)))
}

/// The answer to a body longer than the frame limit (`frame_too_large`, 413).
pub fn body_too_large(limits: &Limits) -> HttpResponse {
    let msg = format!("body: longer than {} bytes", limits.max_frame_bytes);
    HttpResponse::rejected(ErrorCode::FrameTooLarge, msg)
}

/// Refuses a body whose `Content-Length` already says it is over the frame
/// limit, before a byte of it is read. A length that is not a number is
/// left to the runtime (the body is then read up to the limit).
pub fn check_declared_length(
    content_length: Option<&str>,
    limits: &Limits,
) -> Result<(), HttpResponse> {
    match content_length.and_then(|v| v.trim().parse::<u64>().ok()) {
        Some(n) if n > limits.max_frame_bytes as u64 => Err(body_too_large(limits)),
        _ => Ok(()),
    }
}

/// A body's bytes as text: invalid UTF-8 or a leading byte-order mark is
/// `invalid_frame` (a body is JSON in UTF-8, RFC 8259 section 8.1, and is
/// never silently repaired).
pub fn body_text(bytes: Vec<u8>) -> Result<String, HttpResponse> {
    let text = String::from_utf8(bytes)
        .map_err(|_| HttpResponse::rejected(ErrorCode::InvalidFrame, "body: not UTF-8"))?;
    if text.starts_with('\u{feff}') {
        let msg = "body: starts with a byte-order mark";
        return Err(HttpResponse::rejected(ErrorCode::InvalidFrame, msg));
    }
    Ok(text)
}

/// Percent-decodes a URL path segment run; `None` when an escape is malformed or the result is not UTF-8.
pub fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        let check = |input: &str, want: Option<&str>| {
            assert_eq!(percent_decode(input).as_deref(), want, "{input}");
        };
        check("rooms/r1", Some("rooms/r1"));
        check("rooms/r%201", Some("rooms/r 1"));
        check("a%2Fb", Some("a/b"));
        check("%C3%A9", Some("é"));
        check("%", None);
        check("%2", None);
        check("%zz", None);
        check("%FF", None);
    }

    #[test]
    fn declared_lengths_over_the_limit_are_refused_before_reading() {
        let limits = Limits {
            max_frame_bytes: 20,
            ..Limits::default()
        };
        let check = |header: Option<&str>| {
            check_declared_length(header, &limits)
                .err()
                .map(|r| (r.status, r.error))
        };
        assert_eq!(check(None), None);
        assert_eq!(check(Some("20")), None);
        assert_eq!(check(Some(" 0 ")), None);
        assert_eq!(check(Some("nonsense")), None);
        assert_eq!(
            check(Some("21")),
            Some((413, Some(ErrorCode::FrameTooLarge)))
        );
        assert_eq!(
            check(Some("99999999999999999999")),
            None,
            "not a u64: read and bounded while streaming"
        );
    }

    #[test]
    fn bodies_are_utf8_without_a_byte_order_mark() {
        let code = |bytes: &[u8]| body_text(bytes.to_vec()).err().and_then(|r| r.error);
        assert_eq!(
            body_text(br#"{"a":"\u00e9"}"#.to_vec()).as_deref(),
            Ok(r#"{"a":"\u00e9"}"#)
        );
        assert_eq!(
            body_text("{\"a\":\"é\"}".into()).as_deref(),
            Ok("{\"a\":\"é\"}")
        );
        assert_eq!(code(b"{\"a\":\"\xff\"}"), Some(ErrorCode::InvalidFrame));
        assert_eq!(code(b"{\"a\":\"\xc3\"}"), Some(ErrorCode::InvalidFrame));
        assert_eq!(code(b"\xef\xbb\xbf{}"), Some(ErrorCode::InvalidFrame));
        // A byte-order mark inside a string is just a character.
        assert_eq!(code("{\"a\":\"\u{feff}\"}".as_bytes()), None);
    }

    #[test]
    fn body_limits_in_order() {
        let limits = Limits {
            max_frame_bytes: 20,
            max_frame_depth: 2,
            ..Limits::default()
        };
        let code = |body: &str| {
            parse_body::<serde_json::Value>(body, &limits)
                .err()
                .and_then(|r| r.error)
        };
        assert_eq!(code(&"x".repeat(21)), Some(ErrorCode::FrameTooLarge));
        assert_eq!(code("[[[1]]]"), Some(ErrorCode::FrameTooDeep));
        assert_eq!(code("{nope"), Some(ErrorCode::InvalidFrame));
        assert_eq!(code("[[1]]"), None);
    }

    #[test]
    fn bearer_credentials_and_the_401_of_anything_else() {
        assert_eq!(bearer(None), Ok(None));
        assert_eq!(bearer(Some("Bearer abc.def.ghi")), Ok(Some("abc.def.ghi")));
        assert_eq!(bearer(Some("bearer  key ")), Ok(Some("key")));
        for bad in ["Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "abc", ""] {
            let refused = bearer(Some(bad)).unwrap_err();
            assert_eq!(refused.status, 401, "{bad:?}");
            assert_eq!(refused.error, Some(ErrorCode::Unauthenticated));
            assert!(refused
                .headers
                .contains(&("WWW-Authenticate", "Bearer".to_owned())));
        }
    }

    #[test]
    fn storage_failures_are_internal_with_the_detail_for_the_log_only() {
        let error = Error::from(blaze_core::StorageError("sqlite: disk full".into()));
        let answer = HttpResponse::from_error(&error);
        assert_eq!(answer.status, 500);
        assert_eq!(answer.error, Some(ErrorCode::Internal));
        assert_eq!(answer.detail.as_deref(), Some("sqlite: disk full"));
        assert!(!answer.body.contains("sqlite"), "{}", answer.body);
        let body: ErrorAnswer = serde_json::from_str(&answer.body).unwrap();
        assert_eq!(body.error.code, ErrorCode::Internal);
    }
}
