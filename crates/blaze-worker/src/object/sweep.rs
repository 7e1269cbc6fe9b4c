//! The folder object's sweep of bytes no metadata document names (spec
//! 15.4): each run of the alarm that finds the sweep due aborts the expired
//! resumable uploads, then lists one page of the folder's keys in R2 and
//! deletes the old ones nothing names. When it
//! runs is `files_sweep::Sweep`, kept in `meta` so it survives hibernation.

use blaze_protocol::CollectionPath;
use serde_json::{json, Value};
use worker::{console_error, Bucket, Object, Result};

use super::{now, storage_error, var, BlazeCollection, Live};
use crate::files_sweep::{
    judge, key_prefix, naming, Verdict, DEFAULT_GRACE_SECONDS, DEFAULT_PAGE, META_KEY,
};
use crate::http_types::HttpResponse;

impl Live {
    /// The sweep's state as saved (none yet: nothing to do).
    pub(super) fn load_sweep(&mut self) -> Result<()> {
        let store = self.hub.database().storage();
        let saved = store.meta(META_KEY).map_err(storage_error)?;
        self.sweep = saved
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default();
        Ok(())
    }

    fn save_sweep(&self) -> Result<()> {
        let text = serde_json::to_string(&self.sweep)?;
        let store = self.hub.database().storage();
        store.set_meta(META_KEY, &text).map_err(storage_error)
    }

    /// The collection this object serves.
    pub(super) fn folder(&self) -> Result<CollectionPath> {
        CollectionPath::parse(&self.collection).map_err(|e| worker::Error::RustError(e.to_string()))
    }

    /// Whether a metadata document of the folder, or an unfinished
    /// resumable upload, names `key`.
    fn names(&self, key: &str) -> Result<bool> {
        let found = self.hub.database().query(&naming(&self.folder()?, key));
        let found = found.map_err(|e| worker::Error::RustError(e.to_string()))?;
        let store = self.hub.database().storage();
        Ok(!found.docs.is_empty() || store.upload_names(key).map_err(storage_error)?)
    }
}

impl BlazeCollection {
    fn grace_ms(&self) -> u64 {
        var(&self.env, "BLAZE_FILES_SWEEP_GRACE").unwrap_or(DEFAULT_GRACE_SECONDS) * 1000
    }

    /// Notes that a file operation may have left bytes behind: a sweep is
    /// due once the grace period is over.
    pub(super) fn sweep_needed(&self) -> Result<()> {
        let at = now() + self.grace_ms();
        let mut live = self.live(None)?;
        live.sweep.needed(at);
        live.save_sweep()
    }

    /// One run of the sweep, if it is due: a page of the folder's keys is
    /// listed, and those that are old and named by nothing are deleted.
    pub(super) async fn sweep(&self) -> Result<()> {
        let started = now();
        let (prefix, cursor) = {
            let mut live = self.live(None)?;
            if !live.sweep.is_due(started) {
                return Ok(());
            }
            let cursor = live.sweep.begin(started);
            (key_prefix(&live.folder()?), cursor)
        };
        let page = var(&self.env, "BLAZE_FILES_SWEEP_PAGE").map_or(DEFAULT_PAGE, |p| p as u32);
        let swept = async {
            self.expire_uploads(started).await?;
            let bucket = self.env.bucket("FILES")?;
            self.sweep_page(&bucket, prefix, cursor, page, started)
                .await
        }
        .await;
        let mut live = self.live(None)?;
        match swept {
            Ok(next) => live.sweep.end(next, now()),
            Err(e) => {
                console_error!("files: the sweep of {} failed: {e}", live.collection);
                live.sweep.failed(now());
            }
        }
        live.save_sweep()
    }

    /// Lists one page of keys under `prefix` from `cursor` and deletes the
    /// orphans among them; returns where the listing goes on.
    async fn sweep_page(
        &self,
        bucket: &Bucket,
        prefix: String,
        cursor: Option<String>,
        page: u32,
        now: u64,
    ) -> Result<Option<String>> {
        let listed = list(bucket, prefix, cursor, page).await?;
        let mut orphans = Vec::new();
        {
            let mut live = self.live(None)?;
            let grace = self.grace_ms();
            for object in listed.objects() {
                let key = object.key();
                match judge(live.names(&key)?, uploaded(&object), now, grace) {
                    Verdict::Named => {}
                    Verdict::Young(at) => live.sweep.needed(at),
                    Verdict::Orphan => orphans.push(key),
                }
            }
        }
        if !orphans.is_empty() {
            worker::console_log!("files: sweeping {} unnamed keys", orphans.len());
            bucket.delete_multiple(orphans).await?;
        }
        Ok(listed.truncated().then(|| listed.cursor()).flatten())
    }

    /// The admin's listing of the folder's keys, each with whether a
    /// metadata document names it (a diagnostic, spec 15.4).
    pub(super) async fn list_keys(&self) -> Result<HttpResponse> {
        let folder = self.live(None)?.folder()?;
        let bucket = self.env.bucket("FILES")?;
        let mut keys = Vec::<Value>::new();
        let mut cursor = None;
        loop {
            let listed = list(&bucket, key_prefix(&folder), cursor, DEFAULT_PAGE).await?;
            let live = self.live(None)?;
            for object in listed.objects() {
                let key = object.key();
                keys.push(json!({"key": key, "size": object.size(),
                    "uploaded": uploaded(&object), "named": live.names(&key)?}));
            }
            cursor = listed.truncated().then(|| listed.cursor()).flatten();
            if cursor.is_none() {
                return Ok(HttpResponse::ok(&json!({"keys": keys})));
            }
        }
    }
}

/// One page of the keys directly under `prefix` (not a subfolder's).
async fn list(
    bucket: &Bucket,
    prefix: String,
    cursor: Option<String>,
    page: u32,
) -> Result<worker::Objects> {
    let mut list = bucket.list().prefix(prefix).delimiter("/").limit(page);
    if let Some(cursor) = cursor {
        list = list.cursor(cursor);
    }
    list.execute().await
}

/// When R2 says `object` was stored (ms since the Unix epoch).
fn uploaded(object: &Object) -> u64 {
    object.uploaded().as_millis()
}
