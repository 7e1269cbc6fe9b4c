//! Files on R2 (spec 15), the parts that are plain functions: where a
//! file's metadata document lives, what an upload's headers ask for, and
//! which bytes a `Range` names. The runtime wiring is `files.rs`.

use blaze_protocol::{CollectionPath, DocPath, ErrorCode, Write};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{json, Map, Value};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::http_types::{percent_decode, HttpResponse};

/// The collection id that holds a folder's metadata documents (spec 15.2).
pub const FILES: &str = "_files";

/// The default for `BLAZE_FILES_MAX_BYTES`: the Workers request body limit.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 100 * 1024 * 1024;

/// What the Worker asks the folder's object about a file (the header
/// [`INTERNAL_FILES`] on a `POST /v1/commit` of one write).
pub const INTERNAL_FILES: &str = "X-Blaze-Files";

/// The object key of the file a metadata commit replaced or deleted.
pub const REPLACED_KEY: &str = "X-Blaze-Files-Replaced";

/// Whether `collection` holds files' metadata (its first segment is
/// [`FILES`]): only the files routes write it.
pub fn is_metadata(collection: &CollectionPath) -> bool {
    collection.as_str().split('/').next() == Some(FILES)
}

/// A file's path, checked: its folder's segments and its name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilePath {
    /// The path as given, decoded (`avatars/alice.png`).
    pub path: String,
    /// Its metadata document (`_files/avatars/_files/alice.png`).
    pub doc: DocPath,
}

impl FilePath {
    /// Parses the rest of a URL path after `/v1/files/`. Each segment is
    /// percent-decoded on its own (so `%2F` never makes a new segment) and
    /// must be a valid path segment (spec 2.1); the metadata document's
    /// path must be within the path limits.
    pub fn parse(raw: &str) -> Result<Self, HttpResponse> {
        let invalid = |why: &str| {
            HttpResponse::rejected(ErrorCode::InvalidPath, format!("invalid file path: {why}"))
        };
        let mut segments = Vec::new();
        for raw_segment in raw.split('/') {
            let segment = percent_decode(raw_segment).ok_or_else(|| invalid("a bad escape"))?;
            if segment.contains('/') {
                return Err(invalid("an encoded `/`"));
            }
            segments.push(segment);
        }
        let (name, folder) = segments.split_last().expect("split yields one");
        let mut doc = String::from(FILES);
        for segment in folder {
            doc.push('/');
            doc.push_str(segment);
            doc.push('/');
            doc.push_str(FILES);
        }
        doc.push('/');
        doc.push_str(name);
        let doc = DocPath::parse(&doc).map_err(|e| invalid(&e.to_string()))?;
        Ok(Self {
            path: segments.join("/"),
            doc,
        })
    }

    /// The file's name (its last segment).
    pub fn name(&self) -> &str {
        self.doc.id()
    }

    /// The collection of its folder's metadata documents.
    pub fn folder(&self) -> CollectionPath {
        self.doc.collection()
    }
}

/// The metadata collection of a folder path ending in `/` (`avatars/` →
/// `_files/avatars/_files`; the empty path is the root folder, `_files`).
pub fn folder_path(raw: &str) -> Result<CollectionPath, HttpResponse> {
    if !(raw.is_empty() || raw.ends_with('/')) {
        let msg = "invalid folder path: it ends with `/`";
        return Err(HttpResponse::rejected(ErrorCode::InvalidPath, msg));
    }
    // The folder of a file named `k` in it.
    Ok(FilePath::parse(&format!("{raw}k"))?.folder())
}

/// Firebase's settable metadata that shapes a download (spec 15.2): the
/// metadata document's field, the header an upload sets it with, and the
/// header a download answers it in.
pub const PRESENTATION: [(&str, &str, &str); 3] = [
    ("cacheControl", "X-Blaze-Cache-Control", "Cache-Control"),
    (
        "contentDisposition",
        "X-Blaze-Content-Disposition",
        "Content-Disposition",
    ),
    (
        "contentLanguage",
        "X-Blaze-Content-Language",
        "Content-Language",
    ),
];

/// The longest value of a [`PRESENTATION`] field, in bytes.
pub const MAX_PRESENTATION_BYTES: usize = 1024;

/// Whether `value` may be sent as a header value: printable ASCII (so no
/// line break can end the header), not blank, at most [`MAX_PRESENTATION_BYTES`].
fn is_header_value(value: &str) -> bool {
    !value.trim().is_empty()
        && value.len() <= MAX_PRESENTATION_BYTES
        && value.bytes().all(|b| (0x20..0x7f).contains(&b))
}

/// The [`PRESENTATION`] fields of a metadata document's `data` that are
/// set, as (download header, value).
pub fn presentation_of(data: &Map<String, Value>) -> Vec<(&'static str, String)> {
    PRESENTATION
        .iter()
        .filter_map(|(field, _, header)| {
            let value = data.get(*field)?.as_str()?;
            Some((*header, value.to_owned()))
        })
        .collect()
}

/// What an upload's headers say, checked before a byte of its body is read.
#[derive(Clone, Debug, PartialEq)]
pub struct Upload {
    /// `Content-Length`.
    pub size: u64,
    /// `Content-Type`, or `application/octet-stream`.
    pub content_type: String,
    /// `X-Blaze-Metadata`: a JSON object of strings.
    pub metadata: Map<String, Value>,
    /// The [`PRESENTATION`] fields its headers set, by document field.
    pub presentation: Map<String, Value>,
}

impl Upload {
    /// Checks an upload's `Content-Length`, `Content-Type` and
    /// `X-Blaze-Metadata` headers against `max_bytes`.
    pub fn check(
        content_length: Option<&str>,
        content_type: Option<&str>,
        metadata: Option<&str>,
        max_bytes: u64,
    ) -> Result<Self, HttpResponse> {
        let Some(length) = content_length else {
            return Err(HttpResponse::rejected(
                ErrorCode::LengthRequired,
                "an upload needs a Content-Length",
            ));
        };
        let size: u64 = length.trim().parse().map_err(|_| {
            HttpResponse::rejected(ErrorCode::InvalidFrame, "Content-Length is not a number")
        })?;
        if size > max_bytes {
            return Err(HttpResponse::rejected(
                ErrorCode::FileTooLarge,
                format!("{size} bytes, limit {max_bytes}"),
            ));
        }
        let content_type = content_type
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .unwrap_or("application/octet-stream")
            .to_owned();
        let metadata = match metadata {
            None => Map::new(),
            Some(text) => {
                let bad = || {
                    HttpResponse::rejected(
                        ErrorCode::InvalidFrame,
                        "X-Blaze-Metadata must be a JSON object of strings",
                    )
                };
                let value: Value = serde_json::from_str(text).map_err(|_| bad())?;
                match value {
                    Value::Object(map) if map.values().all(Value::is_string) => map,
                    _ => return Err(bad()),
                }
            }
        };
        Ok(Self {
            size,
            content_type,
            metadata,
            presentation: Map::new(),
        })
    }

    /// The upload with the [`PRESENTATION`] fields its headers set
    /// (`header` reads one by name; a blank one is not set); a value that
    /// is not printable ASCII of at most [`MAX_PRESENTATION_BYTES`] is 400
    /// `invalid_frame`.
    pub fn presented(
        mut self,
        header: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, HttpResponse> {
        for (field, name, _) in PRESENTATION {
            let Some(value) = header(name).filter(|v| !v.trim().is_empty()) else {
                continue;
            };
            if !is_header_value(&value) {
                let msg = format!(
                    "{name} must be printable ASCII of at most {MAX_PRESENTATION_BYTES} bytes"
                );
                return Err(HttpResponse::rejected(ErrorCode::InvalidFrame, msg));
            }
            self.presentation
                .insert(field.to_owned(), Value::String(value.trim().to_owned()));
        }
        Ok(self)
    }

    /// The metadata document's data for this upload of `file`, stored
    /// under object `key` (spec 15.2). `uploadedBy` is the object's to set.
    pub fn document(&self, file: &FilePath, key: &str, md5: Option<&str>) -> Value {
        let mut data = json!({
            "name": file.name(),
            "path": file.path,
            "size": self.size,
            "contentType": self.content_type,
            "metadata": self.metadata,
            "key": key,
        });
        if let Some(md5) = md5 {
            data["md5"] = json!(md5);
        }
        for (field, value) in &self.presentation {
            data[field] = value.clone();
        }
        data
    }
}

/// What a metadata commit does to a file's document.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// Writes this data (an upload).
    Set(Value),
    /// Merges this RFC 7396 patch into it (an update of its metadata); a
    /// missing document is `not_found`.
    Merge(Value),
    /// Deletes it.
    Delete,
}

/// The one write a metadata commit for `file` makes.
pub fn metadata_write(file: &FilePath, change: Change) -> Write {
    let write = match change {
        Change::Set(data) => json!({"op": "set", "id": file.name(), "data": data}),
        Change::Merge(patch) => json!({"op": "merge", "id": file.name(), "patch": patch}),
        Change::Delete => json!({"op": "delete", "id": file.name()}),
    };
    serde_json::from_value(write).expect("a set, merge or delete parses")
}

/// Checks the body of an update of a file's metadata (spec 15.3, "Update
/// metadata"): a JSON object with `contentType` (a non-empty string of
/// printable ASCII, as a `Content-Type` header carries), `metadata` (an
/// object of strings, `null` removing that key) and the [`PRESENTATION`]
/// fields (each a header value, or `null` to remove it), at least one and
/// nothing else. Returns the merge patch for the metadata document.
pub fn metadata_update(body: &str) -> Result<Value, HttpResponse> {
    let bad = |why: &str| {
        let msg = format!("an update of a file's metadata is {why}");
        HttpResponse::rejected(ErrorCode::InvalidFrame, msg)
    };
    let shape = "a JSON object with contentType, metadata, cacheControl, \
                 contentDisposition and/or contentLanguage";
    let Ok(Value::Object(update)) = serde_json::from_str::<Value>(body) else {
        return Err(bad(shape));
    };
    let presentation = |k: &str| PRESENTATION.iter().any(|(field, _, _)| *field == k);
    let known = |k: &String| k == "contentType" || k == "metadata" || presentation(k);
    if update.is_empty() || !update.keys().all(known) {
        return Err(bad(shape));
    }
    for (field, value) in update.iter().filter(|(k, _)| presentation(k)) {
        if !(value.is_null() || value.as_str().is_some_and(is_header_value)) {
            return Err(bad(&format!(
                "a {field} of printable ASCII (at most {MAX_PRESENTATION_BYTES} bytes), or null"
            )));
        }
    }
    if let Some(content_type) = update.get("contentType") {
        let valid = content_type
            .as_str()
            .is_some_and(|t| !t.trim().is_empty() && t.bytes().all(|b| (0x20..0x7f).contains(&b)));
        if !valid {
            return Err(bad("a contentType of printable ASCII"));
        }
    }
    if let Some(metadata) = update.get("metadata") {
        let valid = metadata
            .as_object()
            .is_some_and(|m| m.values().all(|v| v.is_string() || v.is_null()));
        if !valid {
            return Err(bad("metadata of strings (null removes a key)"));
        }
    }
    Ok(Value::Object(update))
}

/// The answer to an upload or an update of `data`, the metadata document
/// the commit `seq` at `time` wrote (spec 15.3).
pub fn file_answer(data: &Map<String, Value>, seq: u64, time: u64) -> Value {
    let field = |name: &str| data.get(name).cloned().unwrap_or(Value::Null);
    let mut answer = json!({
        "path": field("path"),
        "name": field("name"),
        "size": field("size"),
        "contentType": field("contentType"),
        "metadata": field("metadata"),
        "md5": field("md5"),
        "version": seq,
        "time": time,
    });
    for (field, _, _) in PRESENTATION {
        if let Some(value) = data.get(field).filter(|v| v.is_string()) {
            answer[field] = value.clone();
        }
    }
    answer
}

/// `data` with `uploadedBy` set to who asks (`uid`; `null` for an admin or
/// an anonymous caller): the object sets it, so no client can claim another.
pub fn stamped(write: &Write, uid: Option<&str>) -> Write {
    let mut value = serde_json::to_value(write).expect("writes serialize");
    if let Some(data) = value.get_mut("data").and_then(Value::as_object_mut) {
        data.insert("uploadedBy".into(), json!(uid));
    }
    serde_json::from_value(value).expect("a stamped write parses")
}

/// Which bytes of a file of `size` bytes a `Range` header asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bytes {
    /// All of them (no `Range`, or one this server ignores: not `bytes=`,
    /// several ranges, or malformed, as RFC 9110 allows).
    All,
    /// `length` bytes from `offset` (206).
    Part {
        /// The first byte.
        offset: u64,
        /// How many.
        length: u64,
    },
    /// None: the range starts at or past the end (416).
    Unsatisfiable,
}

impl Bytes {
    /// Reads `range` for a file of `size` bytes: `bytes=a-b`, `bytes=a-`
    /// and `bytes=-n` (the last `n`).
    pub fn of(range: Option<&str>, size: u64) -> Self {
        let Some(spec) = range.and_then(|r| r.trim().strip_prefix("bytes=")) else {
            return Self::All;
        };
        if spec.contains(',') {
            return Self::All;
        }
        let Some((first, last)) = spec.trim().split_once('-') else {
            return Self::All;
        };
        let number = |s: &str| s.trim().parse::<u64>().ok();
        match (first.trim().is_empty(), number(first), number(last)) {
            // bytes=-n: the last n bytes.
            (true, _, Some(n)) => {
                if n == 0 || size == 0 {
                    Self::Unsatisfiable
                } else {
                    let length = n.min(size);
                    Self::Part {
                        offset: size - length,
                        length,
                    }
                }
            }
            (false, Some(a), end) if last.trim().is_empty() || end.is_some() => {
                if end.is_some_and(|b| b < a) {
                    return Self::All;
                }
                if a >= size {
                    return Self::Unsatisfiable;
                }
                let b = end.map_or(size - 1, |b| b.min(size - 1));
                Self::Part {
                    offset: a,
                    length: b - a + 1,
                }
            }
            _ => Self::All,
        }
    }
}

/// Whether an `If-None-Match` header matches `etag` (or is `*`).
pub fn none_match(header: Option<&str>, etag: &str) -> bool {
    header.is_some_and(|h| {
        h.split(',')
            .map(|t| t.trim().trim_start_matches("W/"))
            .any(|t| t == "*" || t == etag)
    })
}

/// `Content-Disposition` for a download of `name`, when `?download` asks:
/// `attachment` with the name (ASCII, as path segments are).
pub fn disposition(query: Option<&str>, name: &str) -> Option<String> {
    let asked = query?
        .split('&')
        .any(|pair| pair == "download" || pair.starts_with("download="));
    asked.then(|| format!("attachment; filename=\"{name}\""))
}

/// How long a download URL lives by default, and at most (seconds).
pub const DEFAULT_URL_TTL: u64 = 3600;
/// See [`DEFAULT_URL_TTL`].
pub const MAX_URL_TTL: u64 = 7 * 24 * 3600;

/// The key download URLs are signed with: `BLAZE_FILES_URL_SECRET`, else
/// one derived from the HS256 secret (never that secret itself), else none.
pub fn url_key(url_secret: Option<&str>, hs256_secret: Option<&str>) -> Option<Vec<u8>> {
    if let Some(secret) = url_secret.filter(|s| !s.is_empty()) {
        return Some(secret.as_bytes().to_vec());
    }
    let secret = hs256_secret.filter(|s| !s.is_empty())?;
    Some(hmac_sha256(secret.as_bytes(), b"blaze-files-url-key"))
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// The signature of a download URL for `path` that expires at `expires`
/// (milliseconds since the Unix epoch), pinned to the bytes of upload
/// `object` when given, in lower-case hex.
pub fn sign(key: &[u8], path: &str, expires: u64, object: Option<&str>) -> String {
    let mut message = format!("blaze-files-url\n{path}\n{expires}");
    if let Some(object) = object {
        message.push_str(&format!("\n{object}"));
    }
    hmac_sha256(key, message.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `text` is a lower-case UUID as `crypto.randomUUID()` makes them:
/// the last segment of the object keys a signed URL may pin.
pub fn is_uuid(text: &str) -> bool {
    text.len() == 36
        && text.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_digit() || ('a'..='f').contains(&c),
        })
}

/// The value of query parameter `name` (`name` alone is the empty string).
pub fn query_param<'q>(query: Option<&'q str>, name: &str) -> Option<&'q str> {
    query?
        .split('&')
        .find_map(|pair| match pair.split_once('=') {
            Some((k, v)) if k == name => Some(v),
            None if pair == name => Some(""),
            _ => None,
        })
}

/// A download URL's lifetime, from `?ttl=<seconds>`: [`DEFAULT_URL_TTL`]
/// without one, 1 to [`MAX_URL_TTL`] seconds.
pub fn url_ttl(query: Option<&str>) -> Result<u64, HttpResponse> {
    let Some(ttl) = query_param(query, "ttl") else {
        return Ok(DEFAULT_URL_TTL);
    };
    ttl.parse::<u64>()
        .ok()
        .filter(|t| (1..=MAX_URL_TTL).contains(t))
        .ok_or_else(|| {
            let msg = format!("ttl is 1 to {MAX_URL_TTL} seconds");
            HttpResponse::rejected(ErrorCode::InvalidFrame, msg)
        })
}

/// The relative download URL of `file`, signed with `key`, expiring at
/// `expires`, pinned to the bytes stored under upload `object` when given.
/// (Path segments need no escaping in a URL.)
pub fn signed_url(key: &[u8], file: &FilePath, expires: u64, object: Option<&str>) -> String {
    let signature = sign(key, &file.path, expires, object);
    let path = &file.path;
    let pinned = object.map_or(String::new(), |o| format!("&object={o}"));
    format!("/v1/files/{path}?expires={expires}{pinned}&signature={signature}")
}

/// What a valid signed URL downloads (spec 15.5).
#[derive(Debug, PartialEq)]
pub enum SignedFor {
    /// The file at its path, whichever version that is.
    Path,
    /// The bytes of the upload whose key ends in this UUID while they are
    /// stored; the file at its path once they are not.
    Object(String),
}

/// Whether a request's `expires`, `object` and `signature` parameters make
/// a valid download URL for `file` at `now`: `None` when it has neither
/// `expires` nor `signature` (not a signed URL), else what it downloads or
/// the refusal of a tampered or expired one.
pub fn check_signed(
    key: Option<&[u8]>,
    file: &FilePath,
    query: Option<&str>,
    now: u64,
) -> Option<Result<SignedFor, HttpResponse>> {
    let expires = query_param(query, "expires");
    let signature = query_param(query, "signature");
    if expires.is_none() && signature.is_none() {
        return None;
    }
    let refused = |why: &str| HttpResponse::rejected(ErrorCode::PermissionDenied, why.to_owned());
    let invalid = || Some(Err(refused("this download URL is not valid")));
    let (Some(key), Some(expires), Some(signature)) = (key, expires, signature) else {
        return invalid();
    };
    let Ok(at) = expires.parse::<u64>() else {
        return invalid();
    };
    let object = query_param(query, "object");
    if object.is_some_and(|o| !is_uuid(o)) {
        return invalid();
    }
    let want = sign(key, &file.path, at, object);
    if !bool::from(want.as_bytes().ct_eq(signature.as_bytes())) {
        return invalid();
    }
    if at <= now {
        return Some(Err(refused("this download URL has expired")));
    }
    Some(Ok(object.map_or(SignedFor::Path, |o| {
        SignedFor::Object(o.to_owned())
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_paths_map_to_metadata_documents() {
        let check = |raw: &str, want: Result<(&str, &str), ()>| {
            let got = FilePath::parse(raw)
                .map(|f| (f.path.clone(), f.doc.as_str().to_owned()))
                .map_err(|r| assert_eq!(r.error, Some(ErrorCode::InvalidPath), "{raw}"));
            let want = want.map(|(p, d)| (p.to_owned(), d.to_owned()));
            assert_eq!(got, want, "{raw}");
        };
        check("a.png", Ok(("a.png", "_files/a.png")));
        check(
            "avatars/alice.png",
            Ok(("avatars/alice.png", "_files/avatars/_files/alice.png")),
        );
        check("a/b/c", Ok(("a/b/c", "_files/a/_files/b/_files/c")));
        check("r%201", Err(()));
        check("a%2Fb", Err(()));
        check("a/../b", Err(()));
        check("a/./b", Err(()));
        check("%2e%2e/b", Err(()));
        check("a//b", Err(()));
        check("a/", Err(()));
        check("", Err(()));
        check("__name__", Err(()));
        check(&"x".repeat(129), Err(()));
        check(&["d"; 120].join("/"), Err(()));
    }

    #[test]
    fn folder_paths_end_with_a_slash() {
        let folder = |raw: &str| folder_path(raw).map(|c| c.as_str().to_owned());
        assert_eq!(folder("").unwrap(), "_files");
        assert_eq!(folder("a/").unwrap(), "_files/a/_files");
        assert_eq!(folder("a/b/").unwrap(), "_files/a/_files/b/_files");
        for bad in ["a", "a//", "/", "a%2F/"] {
            assert_eq!(
                folder(bad).unwrap_err().error,
                Some(ErrorCode::InvalidPath),
                "{bad}"
            );
        }
    }

    #[test]
    fn uploads_are_checked_from_their_headers() {
        let check = |len: Option<&str>, meta: Option<&str>| {
            Upload::check(len, None, meta, 100).map_err(|r| r.error.unwrap())
        };
        assert_eq!(check(None, None).unwrap_err(), ErrorCode::LengthRequired);
        assert_eq!(
            check(Some("101"), None).unwrap_err(),
            ErrorCode::FileTooLarge
        );
        assert_eq!(check(Some("x"), None).unwrap_err(), ErrorCode::InvalidFrame);
        assert_eq!(
            check(Some("-1"), None).unwrap_err(),
            ErrorCode::InvalidFrame
        );
        assert_eq!(
            check(Some("1"), Some("[1]")).unwrap_err(),
            ErrorCode::InvalidFrame
        );
        assert_eq!(
            check(Some("1"), Some(r#"{"a":1}"#)).unwrap_err(),
            ErrorCode::InvalidFrame
        );
        let ok = check(Some("100"), Some(r#"{"a":"b"}"#)).unwrap();
        assert_eq!(ok.size, 100);
        assert_eq!(ok.content_type, "application/octet-stream");
        assert_eq!(ok.metadata["a"], "b");
    }

    /// Request headers, by name, for [`Upload::presented`].
    fn headers(pairs: &[(&'static str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(&str, String)> = pairs.iter().map(|(n, v)| (*n, (*v).to_owned())).collect();
        move |name| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn presentation_headers_are_header_values() {
        let upload = || Upload::check(Some("3"), Some("image/png"), None, 10).unwrap();
        let set = upload()
            .presented(headers(&[
                ("X-Blaze-Cache-Control", " public, max-age=60 "),
                ("X-Blaze-Content-Language", "de"),
                ("X-Blaze-Content-Disposition", "  "),
            ]))
            .unwrap();
        assert_eq!(
            Value::Object(set.presentation.clone()),
            json!({"cacheControl": "public, max-age=60", "contentLanguage": "de"}),
            "trimmed; a blank one is not set"
        );
        let file = FilePath::parse("a/b.png").unwrap();
        let data = set.document(&file, "o/k", None);
        assert_eq!(data["cacheControl"], "public, max-age=60");
        assert!(data.get("contentDisposition").is_none());
        assert_eq!(
            presentation_of(data.as_object().unwrap()),
            vec![
                ("Cache-Control", "public, max-age=60".to_owned()),
                ("Content-Language", "de".to_owned())
            ]
        );
        let long = "a".repeat(MAX_PRESENTATION_BYTES + 1);
        for bad in [
            ("X-Blaze-Cache-Control", "max-age=1\u{7f}"),
            (
                "X-Blaze-Content-Disposition",
                "inline; filename=\"\u{e9}.png\"",
            ),
            ("X-Blaze-Content-Language", long.as_str()),
        ] {
            let refused = upload().presented(headers(&[bad])).unwrap_err();
            assert_eq!(refused.error, Some(ErrorCode::InvalidFrame), "{bad:?}");
        }
        let exact = &long[1..];
        let at_limit = upload().presented(headers(&[("X-Blaze-Content-Language", exact)]));
        assert_eq!(at_limit.unwrap().presentation["contentLanguage"], exact);
    }

    #[test]
    fn the_object_stamps_the_uploader() {
        let file = FilePath::parse("a/b.png").unwrap();
        let upload = Upload::check(Some("3"), Some("image/png"), None, 10).unwrap();
        let mut data = upload.document(&file, "o/k", Some("abc"));
        data["uploadedBy"] = json!("mallory");
        let write = stamped(&metadata_write(&file, Change::Set(data)), Some("alice"));
        let value = serde_json::to_value(&write).unwrap();
        assert_eq!(value["data"]["uploadedBy"], "alice");
        assert_eq!(value["data"]["key"], "o/k");
        assert_eq!(value["data"]["path"], "a/b.png");
        let delete = metadata_write(&file, Change::Delete);
        let delete = serde_json::to_value(stamped(&delete, None)).unwrap();
        assert_eq!(delete["op"], "delete");
    }

    #[test]
    fn metadata_updates_are_merge_patches_of_their_fields() {
        let patch =
            metadata_update(r#"{"contentType":"text/plain","metadata":{"a":"1","b":null}}"#);
        assert_eq!(
            patch.unwrap(),
            json!({"contentType": "text/plain", "metadata": {"a": "1", "b": null}})
        );
        assert!(metadata_update(r#"{"metadata":{}}"#).is_ok());
        let presentation = r#"{"cacheControl":"public, max-age=60","contentDisposition":null}"#;
        assert_eq!(
            metadata_update(presentation).unwrap(),
            json!({"cacheControl": "public, max-age=60", "contentDisposition": null})
        );
        for bad in [
            "",
            "[]",
            "{}",
            "null",
            r#"{"size":1}"#,
            r#"{"contentType":"a","key":"o/x"}"#,
            r#"{"contentType":""}"#,
            r#"{"contentType":3}"#,
            "{\"contentType\":\"a\\nb\"}",
            r#"{"metadata":null}"#,
            r#"{"metadata":{"a":1}}"#,
            r#"{"metadata":["a"]}"#,
            r#"{"cacheControl":""}"#,
            r#"{"cacheControl":7}"#,
            "{\"contentLanguage\":\"de\\r\\nX-Evil: 1\"}",
            r#"{"contentEncoding":"gzip"}"#,
        ] {
            let refused = metadata_update(bad).unwrap_err();
            assert_eq!(refused.error, Some(ErrorCode::InvalidFrame), "{bad}");
        }
        let file = FilePath::parse("a/b.png").unwrap();
        let merge = metadata_write(&file, Change::Merge(json!({"contentType": "x/y"})));
        let value = serde_json::to_value(stamped(&merge, Some("mallory"))).unwrap();
        assert_eq!(value["op"], "merge");
        assert_eq!(value["patch"], json!({"contentType": "x/y"}), "not stamped");
    }

    #[test]
    fn the_answer_is_the_document_and_its_version() {
        let file = FilePath::parse("a/b.png").unwrap();
        let upload = Upload::check(Some("3"), Some("image/png"), None, 10).unwrap();
        let mut data = upload.document(&file, "o/k", Some("abc"));
        data["uploadedBy"] = json!("alice");
        let answer = file_answer(data.as_object().unwrap(), 7, 1_000);
        assert_eq!(
            answer,
            json!({"path": "a/b.png", "name": "b.png", "size": 3, "contentType": "image/png",
                "metadata": {}, "md5": "abc", "version": 7, "time": 1_000})
        );
        data["cacheControl"] = json!("no-store");
        let answer = file_answer(data.as_object().unwrap(), 8, 2_000);
        assert_eq!(
            answer["cacheControl"], "no-store",
            "a set presentation field"
        );
    }

    #[test]
    fn ranges() {
        let check = |range: &str, size: u64, want: Bytes| {
            assert_eq!(Bytes::of(Some(range), size), want, "{range} of {size}");
        };
        let part = |offset, length| Bytes::Part { offset, length };
        check("bytes=0-0", 10, part(0, 1));
        check("bytes=2-5", 10, part(2, 4));
        check("bytes=2-", 10, part(2, 8));
        check("bytes=5-100", 10, part(5, 5));
        check("bytes=-3", 10, part(7, 3));
        check("bytes=-30", 10, part(0, 10));
        check("bytes=10-", 10, Bytes::Unsatisfiable);
        check("bytes=10-20", 10, Bytes::Unsatisfiable);
        check("bytes=-0", 10, Bytes::Unsatisfiable);
        check("bytes=0-", 0, Bytes::Unsatisfiable);
        check("bytes=5-2", 10, Bytes::All);
        check("bytes=0-1,3-4", 10, Bytes::All);
        check("items=0-1", 10, Bytes::All);
        check("bytes=a-b", 10, Bytes::All);
        check("bytes=-", 10, Bytes::All);
        assert_eq!(Bytes::of(None, 10), Bytes::All);
    }

    #[test]
    fn conditional_and_disposition_headers() {
        assert!(none_match(Some("\"7\""), "\"7\""));
        assert!(none_match(Some("\"6\", W/\"7\""), "\"7\""));
        assert!(none_match(Some("*"), "\"7\""));
        assert!(!none_match(Some("\"6\""), "\"7\""));
        assert!(!none_match(None, "\"7\""));
        assert_eq!(
            disposition(Some("download"), "a.png").as_deref(),
            Some("attachment; filename=\"a.png\"")
        );
        assert_eq!(disposition(Some("x=1"), "a.png"), None);
        assert_eq!(disposition(None, "a.png"), None);
    }

    #[test]
    fn signed_urls_are_refused_when_tampered_or_expired() {
        let key = url_key(None, Some("hs")).unwrap();
        assert_ne!(key, b"hs".to_vec(), "derived, not the HS256 secret");
        assert_eq!(url_key(Some("u"), Some("hs")).unwrap(), b"u".to_vec());
        assert_eq!(url_key(None, None), None);
        let file = FilePath::parse("a/b.png").unwrap();
        let object = "0f8e2c1a-5b7d-4e3f-9a6b-1c2d3e4f5a6b";
        let path_url = signed_url(&key, &file, 2_000, None);
        let pinned_url = signed_url(&key, &file, 2_000, Some(object));
        assert!(pinned_url.contains(&format!("&object={object}&")));
        let pinned = SignedFor::Object(object.to_owned());
        for (url, signed_for) in [(&path_url, SignedFor::Path), (&pinned_url, pinned)] {
            let query = url.split_once('?').unwrap().1;
            let check = |q: &str, now| check_signed(Some(&key), &file, Some(q), now);
            assert_eq!(check(query, 1_999), Some(Ok(signed_for)));
            let code =
                |r: Option<Result<SignedFor, HttpResponse>>| r.unwrap().unwrap_err().error.unwrap();
            let denied = ErrorCode::PermissionDenied;
            assert_eq!(code(check(query, 2_000)), denied, "expired");
            let later = query.replace("expires=2000", "expires=9000");
            assert_eq!(code(check(&later, 1_000)), denied, "extended");
            let other = FilePath::parse("a/c.png").unwrap();
            let moved = check_signed(Some(&key), &other, Some(query), 1_000);
            assert_eq!(code(moved), denied, "another file");
            let wrong_key = check_signed(Some(b"k2"), &file, Some(query), 1_000);
            assert_eq!(code(wrong_key), denied, "another key");
            assert_eq!(code(check("expires=2000", 1_000)), denied);
        }
        // The pinned object is signed too: neither changed nor dropped.
        let query = pinned_url.split_once('?').unwrap().1;
        let check = |q: &str| check_signed(Some(&key), &file, Some(q), 1_000);
        let swapped = query.replace(object, "1f8e2c1a-5b7d-4e3f-9a6b-1c2d3e4f5a6b");
        assert!(matches!(check(&swapped), Some(Err(_))), "another object");
        let dropped = query.replace(&format!("&object={object}"), "");
        assert!(matches!(check(&dropped), Some(Err(_))), "unpinned");
        let escaped = query.replace(object, "../../x");
        assert!(matches!(check(&escaped), Some(Err(_))), "not a UUID");
        let path_query = path_url.split_once('?').unwrap().1;
        let added = path_query.replace("&signature", &format!("&object={object}&signature"));
        assert!(matches!(check(&added), Some(Err(_))), "pinned afterwards");
        assert_eq!(
            check_signed(Some(&key), &file, Some("download"), 1_000),
            None
        );
        assert_eq!(check_signed(Some(&key), &file, None, 1_000), None);
    }

    #[test]
    fn uuids_as_random_uuid_makes_them() {
        assert!(is_uuid("0f8e2c1a-5b7d-4e3f-9a6b-1c2d3e4f5a6b"));
        for not in [
            "",
            "0F8E2C1A-5B7D-4E3F-9A6B-1C2D3E4F5A6B",
            "0f8e2c1a-5b7d-4e3f-9a6b-1c2d3e4f5a6",
            "0f8e2c1a/5b7d-4e3f-9a6b-1c2d3e4f5a6b",
            "0f8e2c1a-5b7d-4e3f-9a6b-1c2d3e4f5a6bb",
        ] {
            assert!(!is_uuid(not), "{not}");
        }
    }

    #[test]
    fn url_lifetimes() {
        assert_eq!(url_ttl(None).unwrap(), DEFAULT_URL_TTL);
        assert_eq!(url_ttl(Some("url")).unwrap(), DEFAULT_URL_TTL);
        assert_eq!(url_ttl(Some("url&ttl=60")).unwrap(), 60);
        for bad in ["ttl=0", "ttl=x", "ttl=604801", "ttl="] {
            assert!(url_ttl(Some(bad)).is_err(), "{bad}");
        }
        assert_eq!(query_param(Some("a=1&url&b"), "url"), Some(""));
        assert_eq!(query_param(Some("a=1&url&b"), "c"), None);
    }
}
