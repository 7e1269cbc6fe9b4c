//! SIGKILLs in the middle of completing resumable uploads.

use std::time::Duration;

use blaze_tests::live::{e2e, run, WranglerDev};

use crate::resumable::{on_upload, put_part, start_upload};
use crate::support::{bytes, folder_docs, get, keys, put, run_returning, send_raw, sha};
use crate::ADMIN;

/// One resumable upload of the mid-complete SIGKILL test: its path, its
/// id, the bytes it sends, and the bytes the path held before (if any).
pub struct Completing {
    path: String,
    id: String,
    new: Vec<u8>,
    old: Option<Vec<u8>>,
}

/// Starts round `round`'s uploads in folder `mid/`, every part stored:
/// the even ones replace a file uploaded first, the odd ones are new paths.
pub async fn uploads_to_complete(port: u16, round: usize) -> Vec<Completing> {
    let mut uploads = Vec::new();
    for i in 0..16 {
        let path = format!("/v1/files/mid/r{round}-{i}.bin");
        let old = (i % 2 == 0).then(|| bytes(60_000 + i * 100, (round * 16 + i) as u8));
        if let Some(old) = &old {
            assert_eq!(put(port, &path, ADMIN, "x/old", old).await.status, 200);
        }
        let new = bytes(90_000 + i * 1000, (round * 16 + i) as u8 ^ 0x5a);
        let started = start_upload(port, &path, ADMIN, new.len() as u64, "x/new").await;
        assert_eq!(started.status, 201, "{:?}", started.json());
        let id = started.json()["upload"].as_str().unwrap().to_owned();
        assert_eq!(put_part(port, &path, ADMIN, &id, 1, &new).await.status, 200);
        uploads.push(Completing { path, id, new, old });
    }
    uploads
}

/// What a path serves after the kill: the SHA-256 of its bytes, or `None`
/// when it has no file (404). A metadata document whose bytes are missing
/// fails here.
pub async fn served(port: u16, path: &str) -> Option<String> {
    let got = get(port, path, &[("Authorization", ADMIN)]).await;
    match got.status {
        404 => None,
        200 => Some(sha(&got.body)),
        other => panic!("{path}: {other} {:?}", got.json()),
    }
}

/// A SIGKILL in the middle of completing resumable uploads (spec 15.4,
/// 15.7): sixteen completions start 3 ms apart and the server is killed
/// while they run (30 ms after the first, later each round, up to eight rounds, until a
/// kill has caught an upload whose parts R2 had joined but whose metadata
/// was not committed). After each restart every path serves its old file
/// or its new one, whole (a new path: nothing or the new file), and a
/// completion answered 200 before the kill serves the new one. Half of the
/// uploads cut short are completed again at once (200, then the new file),
/// the other half expire and leave their paths as they were; after the
/// sweep the folder's keys are exactly those its documents name.
#[test]
pub fn a_sigkill_mid_complete_leaves_the_old_file_or_the_new_one() {
    let Some(_serial) = e2e() else { return };
    let vars = ["BLAZE_FILES_UPLOAD_TTL:20", "BLAZE_FILES_SWEEP_GRACE:2"];
    let mut server = WranglerDev::start_with_vars("files-mid-complete", &vars);
    let mut killed = Vec::new();
    let mut caught = std::collections::BTreeSet::new();
    let mut left = Vec::new();
    for round in 0..8 {
        let port = server.port;
        let uploads = std::sync::Arc::new(run_returning(uploads_to_complete(port, round)));
        let sent = uploads.clone();
        let completing = std::thread::spawn(move || {
            run_returning(async move {
                let mut answers = Vec::new();
                for u in sent.iter() {
                    let url = format!("{}?upload={}", u.path, u.id);
                    answers.push(tokio::spawn(send_raw(port, "POST", url, Vec::new())));
                    tokio::time::sleep(Duration::from_millis(3)).await;
                }
                let mut statuses = Vec::new();
                for answer in answers {
                    statuses.push(answer.await.ok().flatten());
                }
                statuses
            })
        });
        std::thread::sleep(Duration::from_millis(30 + 30 * round as u64));
        server.kill();
        let statuses = completing.join().expect("the completions ran");
        let answered = statuses.iter().filter(|s| **s == Some(200)).count();
        let state = server.state().to_path_buf();
        let restarted = WranglerDev::start_with_state_and_vars(state, &vars);
        killed.push(std::mem::replace(&mut server, restarted));
        let port = server.port;
        let uploads = std::sync::Arc::try_unwrap(uploads).ok().unwrap();
        let (cut, joined) = run_returning(async move {
            let named: Vec<String> = folder_docs(port, "_files/mid/_files")
                .await
                .iter()
                .map(|d| d["data"]["key"].as_str().unwrap().to_owned())
                .collect();
            // Keys an unfinished upload names but no document: joined, not committed.
            let joined: Vec<String> = keys(port, "mid/")
                .await
                .into_iter()
                .filter(|(key, by_something)| *by_something && !named.contains(key))
                .map(|(key, _)| key)
                .collect();
            let mut cut = Vec::new();
            for (i, (u, status)) in uploads.into_iter().zip(statuses).enumerate() {
                let now = served(port, &u.path).await;
                let new = Some(sha(&u.new));
                let old = u.old.as_deref().map(sha);
                assert!(now == new || now == old, "{}: neither old nor new", u.path);
                if status == Some(200) {
                    assert_eq!(now, new, "{}: acknowledged, then lost", u.path);
                }
                if on_upload(port, "GET", &u.path, ADMIN, &u.id).await.status != 200 {
                    assert_eq!(now, new, "{}: its upload is done, so is its file", u.path);
                    continue;
                }
                assert_eq!(now, old, "{}: unfinished, yet changed", u.path);
                if i % 2 == 1 {
                    cut.push(u);
                    continue;
                }
                let done = on_upload(port, "POST", &u.path, ADMIN, &u.id).await;
                assert_eq!(done.status, 200, "{}: {:?}", u.path, done.json());
                assert_eq!(
                    served(port, &u.path).await,
                    new,
                    "{}: completed again",
                    u.path
                );
            }
            (cut, joined)
        });
        println!(
            "round {round}: {answered} completions answered, {} keys joined but not committed, \
             {} uploads left to expire",
            joined.len(),
            cut.len()
        );
        caught.extend(joined);
        left.extend(cut);
        if !caught.is_empty() && round > 0 {
            break;
        }
    }
    assert!(
        !caught.is_empty(),
        "no kill fell between R2's join and the commit"
    );
    let port = server.port;
    run(Duration::from_secs(120), async move {
        // The others expire (20 s), then their joined bytes are swept (2 s).
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let now = keys(port, "mid/").await;
            let mut expired = true;
            for u in &left {
                expired &= on_upload(port, "GET", &u.path, ADMIN, &u.id).await.status == 404;
            }
            if expired && now.iter().all(|(_, named)| *named) {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "not swept: {now:?}");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        for u in &left {
            let now = served(port, &u.path).await;
            let old = u.old.as_deref().map(sha);
            assert_eq!(now, old, "{}: an expired upload changed it", u.path);
        }
        let docs = folder_docs(port, "_files/mid/_files").await;
        let mut named: Vec<String> = docs
            .iter()
            .map(|d| d["data"]["key"].as_str().unwrap().to_owned())
            .collect();
        named.sort();
        let mut stored: Vec<String> = keys(port, "mid/").await.into_iter().map(|k| k.0).collect();
        stored.sort();
        assert_eq!(
            stored, named,
            "the folder's keys are exactly those its documents name"
        );
        println!("{} expired, {} files whole", left.len(), docs.len());
    });
    drop(server);
    drop(killed);
}
