//! The sweep of unnamed bytes, across SIGKILLs of the runtime.

use std::time::Duration;

use blaze_tests::live::{e2e, run, WranglerDev};
use serde_json::json;

use crate::support::{
    bytes, delete_raw, folder_docs, get, keys, put, run_returning, sha, upload_raw,
};
use crate::ADMIN;

/// What a file at `path` was uploaded with, in the SIGKILL test: the
/// bytes are a function of the path, so any document must name exactly them.
pub fn sent_for(path: &str) -> Vec<u8> {
    let seed = path
        .bytes()
        .fold(0u8, |a, b| a.wrapping_mul(31).wrapping_add(b));
    bytes(100_000 + path.len() * 1000, seed)
}

/// Bytes orphaned by SIGKILLs in the middle of uploads, replacements and
/// deletes are swept by the folder object's alarm (spec 15.4), paged (two
/// keys a run here), while every file whose metadata document exists stays
/// whole: after the sweep, the folder's keys are exactly those its
/// documents name, and each document's bytes are the bytes its upload sent.
/// Uploads start 5 ms apart, with deletes and replacements among them, and
/// the server is killed while they run (60 to 180 ms after the first,
/// varying by round), at least twice and until some kill has left bytes
/// that no document names (up to ten kills). A key found unnamed after a
/// restart stays unnamed (no live request can commit it), so every such key
/// is collected, and the sweep must remove each of them, whichever round
/// left it and even if an alarm removed it before the kills ended.
#[test]
pub fn orphans_are_swept_and_files_stay_whole_across_a_sigkill() {
    let Some(_serial) = e2e() else { return };
    let vars = ["BLAZE_FILES_SWEEP_GRACE:10", "BLAZE_FILES_SWEEP_PAGE:2"];
    let mut server = WranglerDev::start_with_vars("files-sweep", &vars);
    let port = server.port;
    run(Duration::from_secs(60), async move {
        // Files stored before anything goes wrong.
        for i in 0..3 {
            let path = format!("/v1/files/sweep/before{i}.bin");
            let put = put(port, &path, ADMIN, "application/x-test", &sent_for(&path)).await;
            assert_eq!(put.status, 200);
        }
    });
    let mut orphans = std::collections::BTreeSet::new();
    let mut killed = Vec::new();
    for kill in 0..10 {
        let port = server.port;
        // The requests stay connected until the kill, which falls among
        // them (at a different moment each round): the runtime does not
        // cancel them first.
        let sending = std::thread::spawn(move || {
            run(Duration::from_secs(60), async move {
                let mut sent = Vec::new();
                for i in 0..40 {
                    let path = format!("/v1/files/sweep/k{kill}-{i}.bin");
                    let data = sent_for(&path);
                    sent.push(tokio::spawn(upload_raw(port, path, data)));
                    // Beside the uploads: deletes of the last round's files and
                    // replacements of the first files (with the same bytes, so
                    // whichever commit wins, the file's bytes are known).
                    if kill > 0 && i % 4 == 0 {
                        let gone = format!("/v1/files/sweep/k{}-{i}.bin", kill - 1);
                        sent.push(tokio::spawn(delete_raw(port, gone)));
                    }
                    if i % 8 == 1 {
                        let again = format!("/v1/files/sweep/before{}.bin", i % 3);
                        let data = sent_for(&again);
                        sent.push(tokio::spawn(upload_raw(port, again, data)));
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                for answer in sent {
                    let _ = answer.await;
                }
            })
        });
        std::thread::sleep(Duration::from_millis(60 + 30 * (kill % 5) as u64));
        server.kill();
        sending.join().expect("the requests ran");
        let state = server.state().to_path_buf();
        let restarted = WranglerDev::start_with_state_and_vars(state, &vars);
        // Dropping a killed server deletes the state: kept until the end.
        killed.push(std::mem::replace(&mut server, restarted));
        let port = server.port;
        let unnamed = run_returning(async move {
            let listed = keys(port, "sweep/").await;
            let unnamed = listed.into_iter().filter(|(_, named)| !named);
            unnamed.map(|(key, _)| key).collect::<Vec<_>>()
        });
        println!("kill {kill}: {} keys named by nothing", unnamed.len());
        orphans.extend(unnamed);
        // At least two kills, so that deletes of the first round's files run into the second.
        if !orphans.is_empty() && kill > 0 {
            break;
        }
    }
    assert!(!orphans.is_empty(), "no kill left an orphan to sweep");
    let port = server.port;
    let orphans_seen = orphans.len();
    run(Duration::from_secs(120), async move {
        let denied = get(port, "/v1/files/sweep/?keys", &[]).await;
        assert_eq!(
            (denied.status, denied.code().as_deref()),
            (403, Some("permission_denied"))
        );
        // The alarm set by the uploads sweeps them once they are 10 s old.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let after = loop {
            let now = keys(port, "sweep/").await;
            let swept = now
                .iter()
                .all(|(key, named)| *named && !orphans.contains(key));
            if swept {
                break now;
            }
            assert!(std::time::Instant::now() < deadline, "not swept: {now:?}");
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        let docs = folder_docs(port, "_files/sweep/_files").await;
        let mut named: Vec<&str> = docs
            .iter()
            .map(|d| d["data"]["key"].as_str().unwrap())
            .collect();
        named.sort();
        let mut left: Vec<&str> = after.iter().map(|(k, _)| k.as_str()).collect();
        left.sort();
        assert_eq!(
            left, named,
            "the folder's keys are exactly those its documents name"
        );
        assert!(
            docs.len() >= 3,
            "the files stored before the kills are kept"
        );
        for doc in &docs {
            let path = format!("/v1/files/{}", doc["data"]["path"].as_str().unwrap());
            let data = sent_for(&path);
            let got = get(port, &path, &[("Authorization", ADMIN)]).await;
            assert_eq!(got.status, 200, "{path}");
            assert_eq!(doc["data"]["size"], json!(data.len()), "{path}");
            assert_eq!(sha(&got.body), sha(&data), "{path}: whole");
        }
        println!("{} files whole, {orphans_seen} orphans swept", docs.len());
    });
    drop(server);
    drop(killed);
}
