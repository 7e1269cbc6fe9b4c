//! Files on R2 end to end (spec 15): the real worker under `wrangler dev`
//! with its simulated R2 bucket, rules for files on their metadata
//! documents, alice and bob with development tokens. Byte-exact round trips
//! (SHA-256), replacement and deletion (the replaced bytes leave the
//! bucket), ranges and conditional requests, bad paths and headers, an
//! upload cut short (nothing kept, the old file still served), uploads the
//! rules refuse before a byte is read, signed download URLs (tampered,
//! moved, expired), updates of metadata (`PATCH`), a live folder listener,
//! a flood of racing and stalled uploads beside a bystander on the same
//! folder, 10,000 files listed page by page, their subfolders paged and
//! flooded beside a bystander. One worker serves every
//! scenario, each in a folder of its own. Beside it, on workers of their
//! own: the sweep of orphaned bytes across SIGKILLs, resumable uploads,
//! their expiry, and SIGKILLs in the middle of completing them.

mod access;
mod basics;
mod flood;
mod listing;
mod metadata;
mod mid_complete;
mod resumable;
mod support;
mod sweep;

use std::time::Duration;

use blaze_tests::live::{e2e, run, WranglerDev};

use crate::access::{rules, signed_urls, storage_form_rules};
use crate::basics::{
    bad_requests, cut_short, ranges_and_conditionals, replace_and_delete, round_trips,
};
use crate::flood::flood_with_bystander;
use crate::listing::{prefixes_flood, subfolders, ten_thousand};
use crate::metadata::{live_folder, presentation, update_metadata};
use crate::support::timed;

const ADMIN: &str = "Bearer blaze-dev-admin-key";

const SECRET: &str = "blaze-dev-secret-not-for-production";

/// The server's maximum file size in this test.
const MAX_BYTES: u64 = 8_000_000;

/// Rules for files as spec 15.5 shows them, on `rules/…` only (the other
/// folders are the admin's): signed-in users read, upload images under
/// 1,000 bytes as themselves, and replace or delete only their own.
const RULES: &str = "BLAZE_RULES:rules_version = '2'; service cloud.firestore { \
  match /databases/{database}/documents { \
    match /_files/rules/_files/{name} { \
      allow read: if request.auth != null; \
      allow create: if request.auth != null \
        && request.resource.data.uploadedBy == request.auth.uid \
        && request.resource.data.size < 1000 \
        && request.resource.data.contentType.matches('image/.*'); \
      allow update: if resource.data.uploadedBy == request.auth.uid \
        && request.resource.data.uploadedBy == request.auth.uid \
        && request.resource.data.size < 1000; \
      allow delete: if resource.data.uploadedBy == request.auth.uid; \
    } \
    match /_files/live/_files/{name} { allow read: if request.auth != null; } \
  } } \
  service firebase.storage { match /b/{bucket}/o { \
    match /storage-form/{uid}/{name} { \
      allow read: if request.auth != null; \
      allow create, update: if request.auth != null && request.auth.uid == uid \
        && request.resource.size < 1000 \
        && request.resource.contentType.matches('image/.*'); \
      allow delete: if request.auth.uid == uid && resource.size < 1000; \
    } \
  } }";

#[test]
fn files_on_r2() {
    let Some(_serial) = e2e() else { return };
    let max = format!("BLAZE_FILES_MAX_BYTES:{MAX_BYTES}");
    let server = WranglerDev::start_with_vars("files-e2e", &[RULES, &max]);
    let port = server.port;
    let state = server.state().to_path_buf();
    run(Duration::from_secs(420), async move {
        timed("round trips", round_trips(port, &state)).await;
        timed("replace and delete", replace_and_delete(port, &state)).await;
        timed("ranges", ranges_and_conditionals(port)).await;
        timed("bad requests", bad_requests(port)).await;
        timed("cut short", cut_short(port)).await;
        timed("rules", rules(port, &state)).await;
        timed(
            "rules, Firebase Storage's form",
            storage_form_rules(port, &state),
        )
        .await;
        timed("signed URLs", signed_urls(port)).await;
        timed("update metadata", update_metadata(port, &state)).await;
        timed("presentation", presentation(port, &state)).await;
        timed("live folder", live_folder(port)).await;
        timed("flood with a bystander", flood_with_bystander(port, &state)).await;
        timed("10,000 files listed", ten_thousand(port)).await;
        timed("subfolders among 10,000 files", subfolders(port)).await;
        timed("a flood of subfolder pages", prefixes_flood(port)).await;
    });
    drop(server);
}
