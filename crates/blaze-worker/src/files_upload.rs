//! Resumable uploads (spec 15.7), the Worker's part: parts stream to an R2
//! multipart upload, and the folder's object keeps the record of the
//! upload (`object/uploads.rs`): who owns it, which parts are stored with
//! their etags. Completing asks the rules again, joins the parts into one
//! object under the upload's fresh key, and commits the metadata document
//! as an upload does. The plain parts are `resumable.rs`.

use blaze_protocol::ErrorCode;
use serde::Deserialize;
use serde_json::json;
use worker::{console_error, Bucket, Env, Method, Request, Response, Result, UploadedPart};

use crate::entry::respond;
use crate::files::{
    admit, ask, commit, env_number, file_answer, finish, hint, not_allowed, r2_metadata,
    random_uuid,
};
use crate::files_plan::{query_param, Change, FilePath, Upload, INTERNAL_FILES};
use crate::http_types::HttpResponse;
use crate::resumable::{
    check_start, part_bytes, Resumable, UploadRef, DEFAULT_MAX_UPLOAD_BYTES, DEFAULT_TTL_SECONDS,
    INTERNAL_UPLOAD,
};

/// `POST ?uploads`: checks the announced file against the rules, starts an
/// R2 multipart upload under a fresh key and records it in the folder's object.
pub async fn start(req: &Request, env: &Env, file: &FilePath) -> Result<Response> {
    let header = |name: &str| req.headers().get(name).ok().flatten();
    let max = env_number(env, "BLAZE_FILES_MAX_UPLOAD_BYTES").unwrap_or(DEFAULT_MAX_UPLOAD_BYTES);
    let announced = check_start(
        header("X-Blaze-Upload-Length").as_deref(),
        header("X-Blaze-Content-Type").as_deref(),
        header("X-Blaze-Metadata").as_deref(),
        max,
    )
    .and_then(|upload| upload.presented(header));
    let authorization = header("Authorization");
    let (upload, key) = match admit(env, file, authorization.as_deref(), announced).await? {
        Ok(admitted) => admitted,
        Err(answer) => return Ok(answer),
    };
    let bucket = env.bucket("FILES")?;
    let multipart = bucket
        .create_multipart_upload(&key)
        .http_metadata(r2_metadata(&upload))
        .execute()
        .await?;
    let ttl = env_number(env, "BLAZE_FILES_UPLOAD_TTL").unwrap_or(DEFAULT_TTL_SECONDS);
    let record = Resumable {
        id: random_uuid()?,
        path: file.path.clone(),
        owner: String::new(),
        size: upload.size,
        part_bytes: part_bytes(upload.size),
        content_type: upload.content_type,
        metadata: upload.metadata,
        presentation: upload.presentation,
        r2_id: multipart.upload_id().await,
        key,
        expires: js_sys::Date::now() as u64 + ttl * 1000,
    };
    let text = serde_json::to_string(&record)?;
    let recorded = tell(
        env,
        file,
        authorization.as_deref(),
        "upload-start",
        &text,
        None,
    )
    .await?;
    if recorded.status_code() != 204 {
        let _ = multipart.abort().await;
        return Ok(recorded);
    }
    let mut answer = HttpResponse::ok(&record.answer(None));
    answer.status = 201;
    respond(answer)
}

/// The routes of upload `id` of `file`: a part, a look, completion, abort.
pub async fn serve(req: Request, env: &Env, file: &FilePath, id: &str) -> Result<Response> {
    let authorization = req.headers().get("Authorization")?;
    let auth = authorization.as_deref();
    let method = req.inner().method();
    if !matches!(method.as_str(), "PUT" | "GET" | "POST" | "DELETE") {
        return not_allowed();
    }
    let asked = UploadRef {
        id: id.to_owned(),
        path: file.path.clone(),
        part: None,
    };
    let (upload, parts) = match look(env, file, auth, &asked).await? {
        Ok(found) => found,
        Err(refused) => return Ok(refused),
    };
    let bucket = env.bucket("FILES")?;
    match method.as_str() {
        "PUT" => put_part(req, env, file, &bucket, &upload, asked).await,
        "GET" => {
            let stored: Vec<u16> = parts.iter().map(|(n, _)| *n).collect();
            respond(HttpResponse::ok(&upload.answer(Some(&stored))))
        }
        "POST" => complete(env, file, auth, &bucket, &upload, parts, &asked).await,
        _ => {
            // Parts gone from R2 first: a crash before the record is
            // forgotten leaves a record the expiry removes.
            if let Ok(multipart) = bucket.resume_multipart_upload(&upload.key, &upload.r2_id) {
                let _ = multipart.abort().await;
            }
            let text = serde_json::to_string(&asked)?;
            tell(env, file, auth, "upload-abort", &text, None).await
        }
    }
}

/// `PUT ?upload={id}&part={n}`: the part's number and length checked, its
/// body streamed to R2, its etag recorded.
async fn put_part(
    req: Request,
    env: &Env,
    file: &FilePath,
    bucket: &Bucket,
    upload: &Resumable,
    mut asked: UploadRef,
) -> Result<Response> {
    let query = req.url()?.query().map(str::to_owned);
    let length = req.headers().get("Content-Length")?;
    let (n, length) =
        match upload.check_part(query_param(query.as_deref(), "part"), length.as_deref()) {
            Ok(part) => part,
            Err(refused) => return respond(refused),
        };
    let multipart = bucket.resume_multipart_upload(&upload.key, &upload.r2_id)?;
    let stored = match req.inner().body() {
        Some(body) if length > 0 => multipart.upload_part(n, body).await,
        _ => multipart.upload_part(n, Vec::<u8>::new()).await,
    };
    let etag = match stored {
        Ok(part) => part.etag(),
        Err(e) => {
            console_error!("files: part {n} of upload {} failed: {e}", upload.id);
            let msg = format!("part {n} ended before its {length} bytes; it was not stored");
            return respond(HttpResponse::rejected(ErrorCode::UploadIncomplete, msg));
        }
    };
    asked.part = Some((n, etag));
    let text = serde_json::to_string(&asked)?;
    let auth = req.headers().get("Authorization")?;
    let recorded = tell(env, file, auth.as_deref(), "upload-part", &text, None).await?;
    if recorded.status_code() != 204 {
        return Ok(recorded);
    }
    respond(HttpResponse::ok(&json!({"part": n, "size": length})))
}

/// `POST ?upload={id}`: every part stored, the rules asked again, the parts
/// joined into one object, the metadata committed as the record is forgotten.
async fn complete(
    env: &Env,
    file: &FilePath,
    auth: Option<&str>,
    bucket: &Bucket,
    upload: &Resumable,
    parts: Vec<(u16, String)>,
    asked: &UploadRef,
) -> Result<Response> {
    let stored: Vec<u16> = parts.iter().map(|(n, _)| *n).collect();
    let missing = upload.missing(&stored);
    if !missing.is_empty() {
        let msg = format!("parts {missing:?} are not stored yet; the upload stays");
        return respond(HttpResponse::rejected(ErrorCode::UploadIncomplete, msg));
    }
    let data = Upload {
        size: upload.size,
        content_type: upload.content_type.clone(),
        metadata: upload.metadata.clone(),
        presentation: upload.presentation.clone(),
    }
    .document(file, &upload.key, None);
    let checked = commit(env, file, auth, "check", Change::Set(data.clone())).await?;
    if checked.status_code() != 204 {
        return Ok(checked);
    }
    let multipart = bucket.resume_multipart_upload(&upload.key, &upload.r2_id)?;
    let parts = parts
        .into_iter()
        .map(|(n, etag)| UploadedPart::new(n, etag));
    if let Err(e) = multipart.complete(parts).await {
        // Completed already by a request that did not get to commit (a
        // crash): the object is there, whole.
        let joined = bucket.head(&upload.key).await?;
        if joined.is_none_or(|object| object.size() != upload.size) {
            console_error!("files: completing upload {} failed: {e}", upload.id);
            let msg = "the parts could not be joined; retry";
            return respond(HttpResponse::rejected(ErrorCode::Internal, msg));
        }
    }
    let text = serde_json::to_string(asked)?;
    let write = Some(Change::Set(data));
    let committed = tell(env, file, auth, "upload-done", &text, write).await?;
    match committed.status_code() {
        200 => {
            hint(file, Some(&upload.key));
            respond(file_answer(finish(bucket, committed).await?))
        }
        // Completed and committed by another request meanwhile, or aborted
        // or expired: the bytes are left to the sweep.
        404 => Ok(committed),
        _ => {
            // Refused since the check: the joined bytes go.
            let _ = bucket.delete(&upload.key).await;
            Ok(committed)
        }
    }
}

/// What the folder's object answers about an upload it records.
#[derive(Deserialize)]
struct Recorded {
    record: Resumable,
    parts: Vec<(u16, String)>,
}

/// The upload `asked` names, with its stored parts, if it is the caller's
/// for this path; else the answer to give (404).
async fn look(
    env: &Env,
    file: &FilePath,
    auth: Option<&str>,
    asked: &UploadRef,
) -> Result<std::result::Result<(Resumable, Vec<(u16, String)>), Response>> {
    let text = serde_json::to_string(asked)?;
    let mut answer = tell(env, file, auth, "upload-get", &text, None).await?;
    if answer.status_code() != 200 {
        return Ok(Err(answer));
    }
    let recorded: Recorded = answer.json().await?;
    Ok(Ok((recorded.record, recorded.parts)))
}

/// Asks the folder's object to do upload operation `op` on `upload` (a
/// record or an [`UploadRef`], as JSON) for the holder of `auth`; `write`
/// is the metadata commit of a completion.
async fn tell(
    env: &Env,
    file: &FilePath,
    auth: Option<&str>,
    op: &str,
    upload: &str,
    write: Option<Change>,
) -> Result<Response> {
    let folder = file.folder();
    let internal = [(INTERNAL_FILES, op), (INTERNAL_UPLOAD, upload)];
    let (path, body) = match write {
        Some(change) => {
            let write = crate::files_plan::metadata_write(file, change);
            let body = json!({"collection": folder.as_str(), "writes": [write]});
            ("/v1/commit", body)
        }
        None => ("/v1/query", json!({"collection": folder.as_str()})),
    };
    let body = Some(body.to_string());
    ask(env, &folder, path, Method::Post, auth, &internal, body).await
}
