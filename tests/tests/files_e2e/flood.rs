//! A flood of racing and stalled uploads beside a bystander on the same
//! folder.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::support::{added, blobs, bytes, folder_docs, folder_listener, get, put, sha};
use crate::ADMIN;

/// A client allowed to upload floods one folder: 40 uploads racing on one
/// path, 8 at a time, then 24 uploads that announce 7 MB, send 64 KB and
/// stall. Meanwhile a bystander on the same folder keeps working: its
/// listener sees each of its own uploads, its file reads back whole, and
/// its uploads are stored. Afterwards the raced path holds one whole
/// version and one blob, and no stalled upload left a file.
pub async fn flood_with_bystander(port: u16, state: &Path) {
    const FOLDER: &str = "_files/flood/_files";
    let keep = bytes(5000, 3);
    put(
        port,
        "/v1/files/flood/keep.bin",
        ADMIN,
        "application/octet-stream",
        &keep,
    )
    .await;
    let before = blobs(state);
    let (mut ws, snapshot) = folder_listener(port, FOLDER).await;
    assert_eq!(
        snapshot["docs"].as_array().map(Vec::len),
        Some(1),
        "{snapshot}"
    );

    // Phase 1: the race on one path, with the bystander uploading beside it
    // and a reader downloading it meanwhile. Each download's bytes must be
    // those of the upload its ETag (the document's version) names: the
    // Worker's key hints (spec 15.3) go stale in this race and must never
    // serve another upload's bytes.
    let versions: Vec<Vec<u8>> = (0..40u8).map(|i| bytes(200_000, i)).collect();
    let hot = "/v1/files/flood/hot.bin";
    let mut uploaded = Vec::new();
    let racing = AtomicBool::new(true);
    let race = async {
        for batch in versions.chunks(8) {
            let puts = batch
                .iter()
                .map(|v| put(port, hot, ADMIN, "application/octet-stream", v));
            for (answer, v) in futures_util::future::join_all(puts).await.iter().zip(batch) {
                assert_eq!(answer.status, 200, "{:?}", answer.json());
                uploaded.push((
                    answer.json()["version"].as_u64().expect("a version"),
                    sha(v),
                ));
            }
        }
        racing.store(false, Ordering::Relaxed);
    };
    let reads = async {
        let mut seen = Vec::new();
        while racing.load(Ordering::Relaxed) || seen.is_empty() {
            let read = get(port, hot, &[("Authorization", ADMIN)]).await;
            if read.status == 200 {
                let etag = read.header("etag").expect("an ETag").trim_matches('"');
                seen.push((etag.parse::<u64>().expect("a version"), sha(&read.body)));
            }
        }
        seen
    };
    let bystander = async {
        for k in 0..3 {
            let path = format!("/v1/files/flood/b-{k}.bin");
            let answer = put(
                port,
                &path,
                ADMIN,
                "application/octet-stream",
                &bytes(1000, k),
            )
            .await;
            assert_eq!(
                answer.status,
                200,
                "the bystander's upload: {:?}",
                answer.json()
            );
            let read = get(
                port,
                "/v1/files/flood/keep.bin",
                &[("Authorization", ADMIN)],
            )
            .await;
            assert_eq!(
                sha(&read.body),
                sha(&keep),
                "the bystander's file reads back whole"
            );
        }
    };
    let ((), seen, ()) = tokio::join!(race, reads, bystander);
    let last = get(port, hot, &[("Authorization", ADMIN)]).await;
    let winner = uploaded.iter().max().expect("uploads");
    assert_eq!(
        (last.header("etag"), sha(&last.body)),
        (Some(format!("\"{}\"", winner.0).as_str()), winner.1.clone()),
        "the raced path serves the last commit's bytes"
    );
    for (version, got) in &seen {
        let named = uploaded.iter().find(|(v, _)| v == version);
        assert_eq!(
            named.map(|(_, s)| s),
            Some(got),
            "a download during the race served version {version}'s bytes"
        );
    }
    assert_eq!(
        blobs(state),
        before + 4,
        "hot.bin and b-0..b-2: each replaced blob was deleted"
    );

    // Phase 2: stalled uploads hold requests open; the folder's object is not involved while they stream.
    let mut stalled = Vec::new();
    for i in 0..24 {
        let mut stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connects");
        let head = format!(
            "PUT /v1/files/flood/stall-{i}.bin HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {ADMIN}\r\nContent-Length: 7000000\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.expect("sends");
        stream.write_all(&bytes(65_536, i)).await.expect("sends");
        stalled.push(stream);
    }
    for k in 3..5 {
        let path = format!("/v1/files/flood/b-{k}.bin");
        let answer = put(
            port,
            &path,
            ADMIN,
            "application/octet-stream",
            &bytes(1000, k),
        )
        .await;
        assert_eq!(
            answer.status, 200,
            "the bystander's upload beside stalled ones"
        );
    }
    let doc = get(
        port,
        "/v1/docs/_files/flood/_files/keep.bin",
        &[("Authorization", ADMIN)],
    )
    .await;
    assert_eq!(doc.status, 200, "the folder's object answers reads");
    drop(stalled);

    // The bystander's listener saw each of its uploads; no stalled upload became a file.
    let mut frames = Vec::new();
    let mine: Vec<String> = (0..5)
        .map(|k| format!("_files/flood/_files/b-{k}.bin"))
        .collect();
    while !mine.iter().all(|p| added(&frames).contains(p)) {
        frames.push(ws.recv().await);
    }
    let mut names: Vec<String> = folder_docs(port, FOLDER)
        .await
        .iter()
        .filter_map(|d| d["data"]["name"].as_str().map(str::to_owned))
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["b-0.bin", "b-1.bin", "b-2.bin", "b-3.bin", "b-4.bin", "hot.bin", "keep.bin"]
    );
    assert!(
        !added(&frames).iter().any(|p| p.contains("stall-")),
        "no stalled upload was committed"
    );
    ws.close().await;
}
