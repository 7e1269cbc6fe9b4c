//! Files on R2 (spec 15), the Worker's part: `/v1/files/{path}` streams
//! bodies between the client and the `FILES` bucket, and asks the object
//! of the file's folder for everything else (who may, and the metadata
//! document). The plain parts are `files_plan.rs`.
//!
//! An upload is never half-written: its metadata is checked against the
//! rules (as the caller) before a byte is read, its body goes to R2 under a
//! fresh key, then the object commits the metadata document pointing at
//! it, and only then is the object key it replaced deleted. A failure
//! before the commit deletes the new key; the path keeps serving the file
//! it served before.

use std::cell::RefCell;
use std::future::Future;
use std::pin::pin;

use blaze_protocol::{CollectionPath, DocSnapshot, ErrorCode, Limits};
use futures_util::future::{select, Either};
use serde_json::{json, Value};
use wasm_bindgen::{JsCast, JsValue};
use worker::{
    console_error, Bucket, Env, Headers, HttpMetadata, Method, Range, Request, RequestInit,
    Response, ResponseBody, Result,
};

use crate::entry::{http_request, respond};
use crate::files_hint::KeyHints;
use crate::files_plan::{
    check_signed, disposition, folder_path, is_uuid, metadata_update, metadata_write, none_match,
    presentation_of, query_param, signed_url, url_key, url_ttl, Bytes, Change, FilePath, SignedFor,
    Upload, DEFAULT_MAX_FILE_BYTES, INTERNAL_FILES, PRESENTATION, REPLACED_KEY,
};
use crate::files_prefixes::PrefixPage;
use crate::files_sweep::{key_prefix, new_key};
use crate::http_types::HttpResponse;

thread_local! {
    /// The keys this isolate last saw file paths name (`files_hint`).
    static HINTS: RefCell<KeyHints> = RefCell::default();
}

/// The routes' prefix.
pub const PREFIX: &str = "/v1/files/";

/// The methods `/v1/files/{path}` answers.
const ALLOW: &str = "GET, HEAD, PUT, POST, PATCH, DELETE, OPTIONS";

/// Answers a request under [`PREFIX`].
pub async fn serve(req: Request, env: &Env) -> Result<Response> {
    let path = req.path();
    let query = req.url()?.query().map(str::to_owned);
    if req.inner().method() == "OPTIONS" {
        // Folder routes (`?prefixes`) too: a browser asks before a GET with a credential.
        return preflight();
    }
    if req.inner().method() == "GET" && query_param(query.as_deref(), "keys").is_some() {
        return keys(&req, env, &path[PREFIX.len()..]).await;
    }
    if req.inner().method() == "GET" && query_param(query.as_deref(), "prefixes").is_some() {
        return prefixes(&req, env, &path[PREFIX.len()..], query.as_deref()).await;
    }
    let file = match FilePath::parse(&path[PREFIX.len()..]) {
        Ok(file) => file,
        Err(refused) => return respond(refused),
    };
    if let Some(id) = query_param(query.as_deref(), "upload") {
        return crate::files_upload::serve(req, env, &file, id).await;
    }
    match req.inner().method().as_str() {
        "PUT" => upload(req, env, &file).await,
        "POST" if query_param(query.as_deref(), "url").is_some() => mint(&req, env, &file).await,
        "POST" if query_param(query.as_deref(), "uploads").is_some() => {
            crate::files_upload::start(&req, env, &file).await
        }
        "GET" => download(&req, env, &file, true).await,
        "HEAD" => download(&req, env, &file, false).await,
        "PATCH" => update(req, env, &file).await,
        "DELETE" => delete(&req, env, &file).await,
        _ => not_allowed(),
    }
}

/// The answer to a method `/v1/files/{path}` does not have.
pub(crate) fn not_allowed() -> Result<Response> {
    respond(
        HttpResponse::rejected(ErrorCode::MethodNotAllowed, "not a method of /v1/files")
            .with_header("Allow", ALLOW.to_owned()),
    )
}

/// A configuration number from the environment.
pub(crate) fn env_number(env: &Env, name: &str) -> Option<u64> {
    env.var(name).ok()?.to_string().parse().ok()
}

/// `PUT`: check, store under a fresh key, commit the metadata, delete what it replaced.
async fn upload(req: Request, env: &Env, file: &FilePath) -> Result<Response> {
    let header = |name: &str| req.headers().get(name).ok().flatten();
    let max = env_number(env, "BLAZE_FILES_MAX_BYTES").unwrap_or(DEFAULT_MAX_FILE_BYTES);
    let announced = Upload::check(
        header("Content-Length").as_deref(),
        header("Content-Type").as_deref(),
        header("X-Blaze-Metadata").as_deref(),
        max,
    )
    .and_then(|upload| upload.presented(header));
    let authorization = header("Authorization");
    // Who may, decided before a byte of the body is read.
    let (upload, key) = match admit(env, file, authorization.as_deref(), announced).await? {
        Ok(admitted) => admitted,
        Err(answer) => return Ok(answer),
    };
    let bucket = env.bucket("FILES")?;
    let stored = match req.inner().body() {
        Some(body) if upload.size > 0 => bucket.put(&key, body),
        _ => bucket.put(&key, Vec::<u8>::new()),
    }
    .http_metadata(r2_metadata(&upload))
    .execute()
    .await;
    let md5 = match stored {
        Ok(Some(object)) if object.size() == upload.size => object.etag(),
        outcome => {
            if let Err(e) = &outcome {
                console_error!("files: storing {} as {key} failed: {e}", file.path);
            }
            let _ = bucket.delete(&key).await;
            let msg = format!(
                "the body ended before its {} bytes; nothing was kept",
                upload.size
            );
            return respond(HttpResponse::rejected(ErrorCode::UploadIncomplete, msg));
        }
    };
    let data = Change::Set(upload.document(file, &key, Some(&md5)));
    let committed = commit(env, file, authorization.as_deref(), "commit", data).await?;
    if committed.status_code() != 200 {
        // Refused since the check (the rules or the document changed): the
        // new bytes go, the path keeps the file it had.
        let _ = bucket.delete(&key).await;
        return Ok(committed);
    }
    hint(file, Some(&key));
    respond(file_answer(finish(&bucket, committed).await?))
}

/// What R2 keeps with the bytes of `upload`: its content type and
/// presentation, so a pinned URL (15.5) serves them from R2 alone.
pub(crate) fn r2_metadata(upload: &Upload) -> HttpMetadata {
    let field = |name: &str| upload.presentation.get(name)?.as_str().map(str::to_owned);
    HttpMetadata {
        content_type: Some(upload.content_type.clone()),
        cache_control: field("cacheControl"),
        content_disposition: field("contentDisposition"),
        content_language: field("contentLanguage"),
        ..HttpMetadata::default()
    }
}

/// The presentation R2 keeps with an object, as [`presentation_of`] reads
/// it from a metadata document.
fn r2_presentation(stored: &HttpMetadata) -> Vec<(&'static str, String)> {
    let fields = [
        &stored.cache_control,
        &stored.content_disposition,
        &stored.content_language,
    ];
    PRESENTATION
        .iter()
        .zip(fields)
        .filter_map(|((_, _, header), value)| Some((*header, value.clone()?)))
        .collect()
}

/// The first steps of an upload, shared by `PUT` and a resumable start:
/// the file its headers announce (`announced`, already checked), a fresh
/// key for its bytes, and the rules asked, as the holder of
/// `authorization`, whether it may be written at `file`. The upload and
/// its key, or the answer to give.
pub(crate) async fn admit(
    env: &Env,
    file: &FilePath,
    authorization: Option<&str>,
    announced: std::result::Result<Upload, HttpResponse>,
) -> Result<std::result::Result<(Upload, String), Response>> {
    let upload = match announced {
        Ok(upload) => upload,
        Err(refused) => return respond(refused).map(Err),
    };
    let key = new_key(&file.folder(), &random_uuid()?);
    let proposed = Change::Set(upload.document(file, &key, None));
    let checked = commit(env, file, authorization, "check", proposed).await?;
    if checked.status_code() != 204 {
        return Ok(Err(checked));
    }
    Ok(Ok((upload, key)))
}

/// `PATCH`: merges `contentType`, `metadata` and the presentation fields
/// into the metadata document as the caller (an `update`); the bytes stay
/// as they are.
async fn update(mut req: Request, env: &Env, file: &FilePath) -> Result<Response> {
    let (plain, refused) = http_request(&mut req, &Limits::default()).await?;
    if let Some(refused) = refused {
        return respond(refused);
    }
    let patch = match metadata_update(&plain.body) {
        Ok(patch) => patch,
        Err(refused) => return respond(refused),
    };
    let authorization = req.headers().get("Authorization")?;
    let change = Change::Merge(patch);
    let committed = commit(env, file, authorization.as_deref(), "commit", change).await?;
    if committed.status_code() != 200 {
        return Ok(committed);
    }
    respond(file_answer(finish(&env.bucket("FILES")?, committed).await?))
}

/// The 200 answer of an upload or update: the file as the object answered
/// it, with its version as `ETag`.
pub(crate) fn file_answer(answer: Value) -> HttpResponse {
    let etag = format!("\"{}\"", answer["version"]);
    HttpResponse::ok(&answer).with_header("ETag", etag)
}

/// `DELETE`: the metadata document first, then its bytes.
async fn delete(req: &Request, env: &Env, file: &FilePath) -> Result<Response> {
    let authorization = req.headers().get("Authorization")?;
    let committed = commit(
        env,
        file,
        authorization.as_deref(),
        "commit",
        Change::Delete,
    )
    .await?;
    if committed.status_code() != 200 {
        return Ok(committed);
    }
    hint(file, None);
    finish(&env.bucket("FILES")?, committed).await?;
    respond(HttpResponse::no_content())
}

/// The body of a metadata commit the object answered 200, after deleting
/// the object key it replaced.
pub(crate) async fn finish(bucket: &Bucket, mut committed: Response) -> Result<Value> {
    if let Some(replaced) = committed.headers().get(REPLACED_KEY)? {
        if let Err(e) = bucket.delete(&replaced).await {
            // Left for the sweep (spec 15.4); the metadata no longer names it.
            console_error!("files: deleting replaced {replaced} failed: {e}");
        }
    }
    committed.json().await
}

/// `GET /v1/files/{folder}/?keys`: the folder's keys in R2, for an admin
/// key only (a diagnostic, spec 15.4), answered by the folder's object.
async fn keys(req: &Request, env: &Env, raw: &str) -> Result<Response> {
    let folder = match folder_path(raw) {
        Ok(folder) => folder,
        Err(refused) => return respond(refused),
    };
    let authorization = req.headers().get("Authorization")?;
    let body = json!({"collection": folder.as_str()}).to_string();
    let path = "/v1/query";
    let keys = [(INTERNAL_FILES, "keys")];
    let authorization = authorization.as_deref();
    ask(
        env,
        &folder,
        path,
        Method::Post,
        authorization,
        &keys,
        Some(body),
    )
    .await
}

/// `GET /v1/files/{folder}/?prefixes`: one page of the folder's subfolders,
/// answered by the folder's object for a caller who may run the folder's
/// listing query (spec 15.2).
async fn prefixes(req: &Request, env: &Env, raw: &str, query: Option<&str>) -> Result<Response> {
    let (folder, page) = match folder_path(raw).and_then(|f| Ok((f, PrefixPage::parse(query)?))) {
        Ok(asked) => asked,
        Err(refused) => return respond(refused),
    };
    let authorization = req.headers().get("Authorization")?;
    let listing = json!({
        "collection": folder.as_str(),
        "order_by": [{"field": "__name__"}],
        "limit": 1,
    });
    let op = page.to_op();
    let internal = [(INTERNAL_FILES, op.as_str())];
    let body = Some(listing.to_string());
    let authorization = authorization.as_deref();
    ask(
        env,
        &folder,
        "/v1/query",
        Method::Post,
        authorization,
        &internal,
        body,
    )
    .await
}

/// The key download URLs are signed with, from the environment.
fn signing_key(env: &Env) -> Option<Vec<u8>> {
    let text = |name: &str| env.secret(name).ok().map(|v| v.to_string());
    let text = |name: &str| text(name).or_else(|| env.var(name).ok().map(|v| v.to_string()));
    url_key(
        text("BLAZE_FILES_URL_SECRET").as_deref(),
        text("BLAZE_HS256_SECRET").as_deref(),
    )
}

/// `POST ?url`: a signed download URL, for a caller the rules let read the
/// file, pinned to the file's bytes when R2 serves them as the metadata
/// document says (spec 15.5).
async fn mint(req: &Request, env: &Env, file: &FilePath) -> Result<Response> {
    let ttl = match url_ttl(req.url()?.query()) {
        Ok(ttl) => ttl,
        Err(refused) => return respond(refused),
    };
    let authorization = req.headers().get("Authorization")?;
    let mut answer = read_metadata(env, file, authorization.as_deref()).await?;
    if answer.status_code() != 200 {
        return Ok(answer);
    }
    let doc: DocSnapshot = answer.json().await?;
    let Some(data) = doc.data.filter(|_| doc.exists) else {
        return respond(HttpResponse::rejected(ErrorCode::NotFound, "no such file"));
    };
    let Some(key) = signing_key(env) else {
        let msg = "no key to sign download URLs with (set BLAZE_FILES_URL_SECRET)";
        return respond(HttpResponse::rejected(ErrorCode::Internal, msg));
    };
    let object = pinnable(env, file, &data).await?;
    let expires = js_sys::Date::now() as u64 + ttl * 1000;
    let url = signed_url(&key, file, expires, object.as_deref());
    respond(HttpResponse::ok(&json!({"url": url, "expires": expires})))
}

/// The UUID of the key the metadata `data` of `file` names, when a URL may
/// be pinned to it: a key of the file's folder whose bytes R2 has with the
/// document's content type and presentation (a `PATCH` may have changed
/// them since).
async fn pinnable(
    env: &Env,
    file: &FilePath,
    data: &serde_json::Map<String, Value>,
) -> Result<Option<String>> {
    let text = |name: &str| data.get(name).and_then(Value::as_str);
    let (Some(key), Some(content_type)) = (text("key"), text("contentType")) else {
        return Ok(None);
    };
    let prefix = key_prefix(&file.folder());
    let Some(uuid) = key.strip_prefix(&prefix).filter(|u| is_uuid(u)) else {
        return Ok(None);
    };
    let stored = env.bucket("FILES")?.head(key).await?;
    let same = stored.is_some_and(|o| {
        let stored = o.http_metadata();
        stored.content_type.as_deref() == Some(content_type)
            && r2_presentation(&stored) == presentation_of(data)
    });
    Ok(same.then(|| uuid.to_owned()))
}

/// The metadata document of `file`, read as the holder of `authorization`
/// (the `get` rule), or as stored when `authorization` is `None` and
/// `internal` (a signed URL, already checked).
async fn read_metadata(
    env: &Env,
    file: &FilePath,
    authorization: Option<&str>,
) -> Result<Response> {
    let path = format!("/v1/docs/{}", file.doc.as_str());
    ask(
        env,
        &file.folder(),
        &path,
        Method::Get,
        authorization,
        &[],
        None,
    )
    .await
}

/// What a download answers before its bytes, from the metadata document
/// or, for a pinned URL, from R2's object.
struct Served {
    size: u64,
    etag: String,
    content_type: String,
    /// Milliseconds since the Unix epoch.
    modified: Option<u64>,
    /// The file's presentation headers (spec 15.2), as (header, value).
    presentation: Vec<(&'static str, String)>,
}

impl Served {
    /// The file's own value for the download header `name`, if it set one.
    fn presented(&self, name: &str) -> Option<&str> {
        let mut set = self.presentation.iter();
        set.find(|(header, _)| *header == name)
            .map(|(_, value)| value.as_str())
    }
}

/// `GET` and `HEAD`: the metadata document as the caller (rules `get`), or
/// as stored for a valid signed URL, then the bytes; a URL pinned to bytes
/// R2 still has is served from R2 alone.
async fn download(req: &Request, env: &Env, file: &FilePath, body: bool) -> Result<Response> {
    let url = req.url()?;
    let signed = check_signed(
        signing_key(env).as_deref(),
        file,
        url.query(),
        js_sys::Date::now() as u64,
    );
    let plain = plain_get(req, body)?;
    let as_stored = match signed {
        Some(Err(refused)) => return respond(refused),
        Some(Ok(SignedFor::Object(uuid))) => match pinned(req, env, file, &uuid, body).await? {
            Some(served) => return Ok(served),
            // Replaced or deleted since it was minted: the path's file.
            None => true,
        },
        Some(Ok(SignedFor::Path)) => true,
        None => false,
    };
    let authorization = req.headers().get("Authorization")?;
    let read = async {
        if as_stored {
            read_stored(env, file).await
        } else {
            read_metadata(env, file, authorization.as_deref()).await
        }
    };
    let bucket = env.bucket("FILES")?;
    let guess = plain.then(|| HINTS.with_borrow(|h| h.guess(&file.path).map(str::to_owned)));
    let (doc, early) = match racing(&bucket, read, guess.flatten()).await? {
        (Read::Answer(answer), _) => return Ok(answer),
        (Read::Doc(doc), early) => (doc, early),
    };
    let data = doc.data.unwrap_or_default();
    let (Some(key), Some(size), Some(version)) = (
        data.get("key").and_then(Value::as_str),
        data.get("size").and_then(Value::as_u64),
        doc.version,
    ) else {
        return respond(HttpResponse::rejected(ErrorCode::NotFound, "no such file"));
    };
    hint(file, Some(key));
    let served = Served {
        size,
        etag: format!("\"{version}\""),
        content_type: data
            .get("contentType")
            .and_then(Value::as_str)
            .unwrap_or("application/octet-stream")
            .to_owned(),
        modified: doc.update_time,
        presentation: presentation_of(&data),
    };
    let (status, headers, range) = match plan(req, file, &served)? {
        Planned::Answer(answer) => return Ok(answer),
        Planned::Bytes(status, headers, range) => (status, headers, range),
    };
    if !body {
        return Ok(Response::empty()?.with_status(status).with_headers(headers));
    }
    if let Some(object) = early {
        return stream(object, status, headers);
    }
    let mut get = bucket.get(key);
    if let Some(range) = range {
        get = get.range(range);
    }
    let Some(object) = get.execute().await? else {
        console_error!("files: {} names {key}, which R2 does not have", file.path);
        return respond(HttpResponse::rejected(ErrorCode::NotFound, "no such file"));
    };
    stream(object, status, headers)
}

/// Records in this isolate's hints that `file` names `key` now, or no key
/// (deleted).
pub(crate) fn hint(file: &FilePath, key: Option<&str>) {
    HINTS.with_borrow_mut(|hints| match key {
        Some(key) => hints.remember(&file.path, key),
        None => hints.forget(&file.path),
    });
}

/// Whether `req` asks for every byte with nothing to compare (no `Range`,
/// no `If-None-Match`): one object store read answers it.
fn plain_get(req: &Request, body: bool) -> Result<bool> {
    Ok(body && !req.headers().has("Range")? && !req.headers().has("If-None-Match")?)
}

/// What the folder's object answered a download's read of the metadata.
enum Read {
    /// The metadata document (200).
    Doc(DocSnapshot),
    /// Any other answer, passed on (403, 404, ...).
    Answer(Response),
}

/// The answer to `ask`, a read of a metadata document.
async fn read_doc(ask: impl Future<Output = Result<Response>>) -> Result<Read> {
    let mut answer = ask.await?;
    if answer.status_code() != 200 {
        return Ok(Read::Answer(answer));
    }
    Ok(Read::Doc(answer.json().await?))
}

/// Whether `read` is a metadata document naming `key`.
fn names(read: &Read, key: &str) -> bool {
    let Read::Doc(doc) = read else {
        return false;
    };
    let named = doc.data.as_ref().and_then(|d| d.get("key"));
    named.and_then(Value::as_str) == Some(key)
}

/// Reads the metadata document (`ask`) while R2 already reads `guess`, the
/// key this isolate last saw at the path (`files_hint`): its object comes
/// back only when the document names that key. An answer other than that
/// document is given at once, without waiting for R2, so a refusal takes
/// no longer, and tells no more, with a hint than without.
async fn racing(
    bucket: &Bucket,
    ask: impl Future<Output = Result<Response>>,
    guess: Option<String>,
) -> Result<(Read, Option<worker::Object>)> {
    let read = pin!(read_doc(ask));
    let Some(key) = guess else {
        return Ok((read.await?, None));
    };
    let fetch = pin!(bucket.get(key.clone()).execute());
    let (read, fetched) = match select(read, fetch).await {
        Either::Left((read, fetch)) => {
            let read = read?;
            if !names(&read, &key) {
                return Ok((read, None));
            }
            (read, fetch.await)
        }
        Either::Right((fetched, read)) => {
            let read = read.await?;
            if !names(&read, &key) {
                discard(fetched);
                return Ok((read, None));
            }
            (read, fetched)
        }
    };
    // A failed early read is only a lost head start: the bytes are read again.
    Ok((read, fetched.ok().flatten()))
}

/// Cancels the body of an object read early and not served.
fn discard(fetched: Result<Option<worker::Object>>) {
    let Ok(Some(object)) = fetched else {
        return;
    };
    let Some(Ok(ResponseBody::Stream(body))) = object.body().map(|b| b.response_body()) else {
        return;
    };
    let body: &JsValue = body.as_ref();
    if let Ok(cancel) = js_sys::Reflect::get(body, &JsValue::from_str("cancel")) {
        if let Ok(cancel) = cancel.dyn_into::<js_sys::Function>() {
            let _ = cancel.call0(body);
        }
    }
}

/// A download through a URL pinned to the bytes of upload `uuid`, from R2
/// alone (the folder's object is not asked); `None` once R2 no longer has
/// them. A plain `GET` is one R2 read; a `HEAD`, a range or a conditional
/// looks at the object first.
async fn pinned(
    req: &Request,
    env: &Env,
    file: &FilePath,
    uuid: &str,
    body: bool,
) -> Result<Option<Response>> {
    let key = new_key(&file.folder(), uuid);
    let bucket = env.bucket("FILES")?;
    let plain = plain_get(req, body)?;
    let object = if plain {
        bucket.get(&key).execute().await?
    } else {
        bucket.head(&key).await?
    };
    let Some(object) = object else {
        return Ok(None);
    };
    let stored = object.http_metadata();
    let served = Served {
        size: object.size(),
        etag: object.http_etag(),
        presentation: r2_presentation(&stored),
        content_type: stored
            .content_type
            .unwrap_or_else(|| "application/octet-stream".to_owned()),
        modified: Some(object.uploaded().as_millis()),
    };
    let (status, headers, range) = match plan(req, file, &served)? {
        Planned::Answer(answer) => return Ok(Some(answer)),
        Planned::Bytes(status, headers, range) => (status, headers, range),
    };
    if !body {
        let answer = Response::empty()?.with_status(status).with_headers(headers);
        return Ok(Some(answer));
    }
    if plain {
        return stream(object, status, headers).map(Some);
    }
    let mut get = bucket.get(&key);
    if let Some(range) = range {
        get = get.range(range);
    }
    match get.execute().await? {
        Some(object) => stream(object, status, headers).map(Some),
        None => Ok(None),
    }
}

/// How a download goes on once the file is known.
enum Planned {
    /// Answered without bytes: 304, or 416.
    Answer(Response),
    /// Bytes to send: the status (200 or 206), the headers, the range.
    Bytes(u16, Headers, Option<Range>),
}

/// The headers of a download of `served`, and what to answer: a 304 for a
/// matching `If-None-Match`, a 416 for a range outside the file, else the
/// bytes (all, or the asked range).
fn plan(req: &Request, file: &FilePath, served: &Served) -> Result<Planned> {
    let header = |name: &str| req.headers().get(name).ok().flatten();
    let headers = Headers::new();
    headers.set("ETag", &served.etag)?;
    let cache = served.presented("Cache-Control");
    headers.set("Cache-Control", cache.unwrap_or("private, max-age=0"))?;
    headers.set("Accept-Ranges", "bytes")?;
    headers.set("Access-Control-Allow-Origin", "*")?;
    headers.set(
        "Access-Control-Expose-Headers",
        "ETag, Content-Length, Content-Range, Content-Disposition, Last-Modified",
    )?;
    if let Some(time) = served.modified {
        let date = js_sys::Date::new(&JsValue::from_f64(time as f64));
        headers.set("Last-Modified", &String::from(date.to_utc_string()))?;
    }
    if none_match(header("If-None-Match").as_deref(), &served.etag) {
        let answer = Response::empty()?.with_status(304).with_headers(headers);
        return Ok(Planned::Answer(answer));
    }
    let asked = disposition(req.url()?.query(), file.name());
    let stored = served.presented("Content-Disposition").map(str::to_owned);
    if let Some(value) = asked.or(stored) {
        headers.set("Content-Disposition", &value)?;
    }
    if let Some(language) = served.presented("Content-Language") {
        headers.set("Content-Language", language)?;
    }
    headers.set("Content-Type", &served.content_type)?;
    let size = served.size;
    let (status, range) = match Bytes::of(header("Range").as_deref(), size) {
        Bytes::All => (200, None),
        Bytes::Part { offset, length } => {
            let last = offset + length - 1;
            headers.set("Content-Range", &format!("bytes {offset}-{last}/{size}"))?;
            (206, Some(Range::OffsetWithLength { offset, length }))
        }
        Bytes::Unsatisfiable => {
            let refused = HttpResponse::rejected(
                ErrorCode::RangeNotSatisfiable,
                format!("the file has {size} bytes"),
            )
            .with_header("Content-Range", format!("bytes */{size}"));
            return Ok(Planned::Answer(respond(refused)?));
        }
    };
    let length = match range {
        Some(Range::OffsetWithLength { length, .. }) => length,
        _ => size,
    };
    headers.set("Content-Length", &length.to_string())?;
    Ok(Planned::Bytes(status, headers, range))
}

/// The answer streaming `object`'s body.
fn stream(object: worker::Object, status: u16, headers: Headers) -> Result<Response> {
    let body = match object.body() {
        Some(body) => body.response_body()?,
        None => ResponseBody::Empty,
    };
    Ok(Response::from_body(body)?
        .with_status(status)
        .with_headers(headers))
}

/// A preflight for the files routes: their methods and headers.
fn preflight() -> Result<Response> {
    let headers = Headers::new();
    headers.set("Access-Control-Allow-Origin", "*")?;
    headers.set("Access-Control-Allow-Methods", ALLOW)?;
    headers.set(
        "Access-Control-Allow-Headers",
        "Content-Type, Authorization, Range, If-None-Match, X-Blaze-Metadata, \
         X-Blaze-Upload-Length, X-Blaze-Content-Type, X-Blaze-Cache-Control, \
         X-Blaze-Content-Disposition, X-Blaze-Content-Language",
    )?;
    headers.set("Access-Control-Max-Age", "86400")?;
    Ok(Response::empty()?.with_status(204).with_headers(headers))
}

/// Asks the folder's object to check or commit (`op`) the `change` of the
/// metadata of `file` as the holder of `authorization`.
pub(crate) async fn commit(
    env: &Env,
    file: &FilePath,
    authorization: Option<&str>,
    op: &str,
    change: Change,
) -> Result<Response> {
    let folder = file.folder();
    let body = json!({"collection": folder.as_str(), "writes": [metadata_write(file, change)]});
    ask(
        env,
        &folder,
        "/v1/commit",
        Method::Post,
        authorization,
        &[(INTERNAL_FILES, op)],
        Some(body.to_string()),
    )
    .await
}

/// One request to the object of `folder`, with the `internal` headers.
pub(crate) async fn ask(
    env: &Env,
    folder: &CollectionPath,
    path: &str,
    method: Method,
    authorization: Option<&str>,
    internal: &[(&str, &str)],
    body: Option<String>,
) -> Result<Response> {
    let stub = env
        .durable_object("COLLECTIONS")?
        .id_from_name(folder.as_str())?
        .get_stub()?;
    let headers = Headers::new();
    if let Some(authorization) = authorization {
        headers.set("Authorization", authorization)?;
    }
    for (name, value) in internal {
        headers.set(name, value)?;
    }
    let mut init = RequestInit::new();
    init.with_method(method).with_headers(headers);
    if let Some(body) = body {
        init.with_body(Some(body.into()));
    }
    let url = format!("https://blaze.internal{path}");
    stub.fetch_with_request(Request::new_with_init(&url, &init)?)
        .await
}

/// The metadata document of `file` as stored, read with the internal
/// header only objects and this Worker send.
async fn read_stored(env: &Env, file: &FilePath) -> Result<Response> {
    let stub = env
        .durable_object("COLLECTIONS")?
        .id_from_name(file.folder().as_str())?
        .get_stub()?;
    let headers = Headers::new();
    headers.set(crate::rules::INTERNAL_READ, "1")?;
    let mut init = RequestInit::new();
    init.with_method(Method::Get).with_headers(headers);
    let url = format!("https://blaze.internal/v1/docs/{}", file.doc.as_str());
    stub.fetch_with_request(Request::new_with_init(&url, &init)?)
        .await
}

/// `crypto.randomUUID()`.
pub(crate) fn random_uuid() -> Result<String> {
    let crypto = js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str("crypto"))?;
    let make: js_sys::Function =
        js_sys::Reflect::get(&crypto, &JsValue::from_str("randomUUID"))?.dyn_into()?;
    make.call0(&crypto)?
        .as_string()
        .ok_or_else(|| worker::Error::RustError("randomUUID gave no string".into()))
}
