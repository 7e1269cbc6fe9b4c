//! The folder object's record of resumable uploads (spec 15.7): the
//! Worker streams parts to R2 and asks here, with its internal headers,
//! to record an upload, check that an id is the caller's for the path,
//! record a stored part, forget an aborted upload, and commit a completed
//! one's metadata document as it forgets it. Expired uploads are aborted
//! by the sweep's runs of the alarm (`expire_uploads`).

use blaze_core::{Caller, Hub};
use blaze_protocol::Identity;
use serde_json::json;
use worker::{console_error, Request, Response, Result};

use super::{now, storage_error, BlazeCollection};
use crate::entry::respond;
use crate::http_api::{self, FileOp};
use crate::http_types::{HttpRequest, HttpResponse};
use crate::log::{log_http, Who};
use crate::resumable::{
    no_upload, owner, too_many_uploads, Resumable, UploadRef, INTERNAL_UPLOAD, MAX_OPEN_UPLOADS,
};
use crate::routing::Endpoint;
use crate::sql_storage::SqlStore;

impl BlazeCollection {
    /// Answers the Worker's upload operation `op` as `identity`.
    pub(super) async fn upload_op(
        &self,
        op: &str,
        req: &Request,
        hreq: &HttpRequest,
        endpoint: &Endpoint,
        identity: Identity,
        started: u64,
    ) -> Result<Response> {
        let header = req.headers().get(INTERNAL_UPLOAD)?.unwrap_or_default();
        let caller = owner(&identity);
        let answer = if op == "upload-start" {
            let mut upload: Resumable = serde_json::from_str(&header)?;
            upload.owner = caller;
            self.start_upload(&upload)?
        } else {
            let asked: UploadRef = serde_json::from_str(&header)?;
            let recorded = {
                let live = self.live(None)?;
                let store = live.hub.database().storage();
                store.upload(&asked.id).map_err(storage_error)?
            };
            match recorded.filter(|u| u.belongs(&caller, &asked.path)) {
                None => no_upload(),
                Some(upload) => {
                    self.on_upload(op, &upload, &asked, endpoint, identity.clone())
                        .await?
                }
            }
        };
        log_http(
            hreq,
            &answer,
            Who::Identity(&identity),
            now().saturating_sub(started),
        );
        respond(answer)
    }

    /// Records `upload`, unless its owner has [`MAX_OPEN_UPLOADS`] here already.
    fn start_upload(&self, upload: &Resumable) -> Result<HttpResponse> {
        {
            let mut live = self.live(None)?;
            let store = live.hub.database().storage();
            if store.open_uploads(&upload.owner).map_err(storage_error)? >= MAX_OPEN_UPLOADS {
                return Ok(too_many_uploads());
            }
            store.put_upload(upload).map_err(storage_error)?;
            // Its expiry is a run of the sweep's alarm.
            live.sweep.needed(upload.expires);
        }
        self.sweep_needed()?;
        Ok(HttpResponse::no_content())
    }

    /// `op` on `upload`, which is the caller's.
    async fn on_upload(
        &self,
        op: &str,
        upload: &Resumable,
        asked: &UploadRef,
        endpoint: &Endpoint,
        identity: Identity,
    ) -> Result<HttpResponse> {
        match op {
            "upload-get" => {
                let live = self.live(None)?;
                let parts = live.hub.database().storage().upload_parts(&upload.id);
                let parts = parts.map_err(storage_error)?;
                Ok(HttpResponse::ok(&json!({"record": upload, "parts": parts})))
            }
            "upload-part" => {
                let Some((part, etag)) = &asked.part else {
                    return Ok(no_upload());
                };
                let live = self.live(None)?;
                let stored = live
                    .hub
                    .database()
                    .storage()
                    .put_part(&upload.id, *part, etag);
                stored.map_err(storage_error)?;
                Ok(HttpResponse::no_content())
            }
            "upload-abort" => {
                let live = self.live(None)?;
                let forgotten = live.hub.database().storage().delete_upload(&upload.id);
                forgotten.map_err(storage_error)?;
                Ok(HttpResponse::no_content())
            }
            "upload-done" => {
                let Endpoint::Commit {
                    collection, writes, ..
                } = endpoint
                else {
                    return Ok(no_upload());
                };
                let Some(write) = writes.first() else {
                    return Ok(no_upload());
                };
                let mut caller = Caller::new(identity);
                let mut counted = 0;
                let ask = |hub: &mut Hub<SqlStore>, caller: &Caller| {
                    http_api::answer_file(hub, caller, FileOp::Commit, collection, write, now())
                };
                let answer = self.answer_http(&mut caller, ask, &mut counted).await;
                let mut live = self.live(None)?;
                if counted > 0 {
                    live.http_fetched -= counted;
                }
                // Committed or refused, the upload is over: its parts are
                // one object now, which the Worker deletes if refused.
                let store = live.hub.database().storage();
                if let Err(e) = store.delete_upload(&upload.id) {
                    console_error!("files: forgetting upload {} failed: {e}", upload.id);
                }
                drop(live);
                self.sweep_needed()?;
                answer
            }
            _ => Ok(no_upload()),
        }
    }

    /// Aborts the uploads expired at `now` in R2 and forgets them; the
    /// sweep runs again at the next expiry.
    pub(super) async fn expire_uploads(&self, now: u64) -> Result<()> {
        let (expired, next) = {
            let live = self.live(None)?;
            let store = live.hub.database().storage();
            store.expired_uploads(now).map_err(storage_error)?
        };
        if let Some(next) = next {
            self.live(None)?.sweep.needed(next);
        }
        if expired.is_empty() {
            return Ok(());
        }
        let bucket = self.env.bucket("FILES")?;
        for upload in expired {
            // Already completed or aborted in R2: nothing left to abort.
            if let Ok(r2) = bucket.resume_multipart_upload(&upload.key, &upload.r2_id) {
                let _ = r2.abort().await;
            }
            let live = self.live(None)?;
            let store = live.hub.database().storage();
            store.delete_upload(&upload.id).map_err(storage_error)?;
        }
        Ok(())
    }
}
