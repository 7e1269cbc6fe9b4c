//! Resumable uploads (spec 15.7): parts, resume after a cut, bad parts,
//! owners, aborts, expiry, and the bound on open uploads.

use std::time::Duration;

use blaze_tests::live::{e2e, run, WranglerDev};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{bearer, bytes, get, keys, request, sha, timed, Answer, Body};
use crate::{ADMIN, RULES};

/// Byte `i` of the large file the resumable tests upload.
pub fn big_byte(i: u64) -> u8 {
    (i.wrapping_mul(2_654_435_761) >> 13) as u8 ^ (i >> 20) as u8
}

/// Bytes `range` of that file.
pub fn big_bytes(range: std::ops::Range<u64>) -> Vec<u8> {
    range.map(big_byte).collect()
}

/// `POST ?uploads` for a file of `size` bytes as `auth`.
pub async fn start_upload(
    port: u16,
    path: &str,
    auth: &str,
    size: u64,
    content_type: &str,
) -> Answer {
    let size = size.to_string();
    let headers = [
        ("Authorization", auth),
        ("X-Blaze-Upload-Length", size.as_str()),
        ("X-Blaze-Content-Type", content_type),
    ];
    request(
        port,
        "POST",
        &format!("{path}?uploads"),
        &headers,
        Body::Bytes(b""),
    )
    .await
}

/// `PUT ?upload={id}&part={n}` with `data`.
pub async fn put_part(port: u16, path: &str, auth: &str, id: &str, n: u64, data: &[u8]) -> Answer {
    let url = format!("{path}?upload={id}&part={n}");
    request(
        port,
        "PUT",
        &url,
        &[("Authorization", auth)],
        Body::Bytes(data),
    )
    .await
}

/// A request on upload `id` of `path` with no body.
pub async fn on_upload(port: u16, method: &str, path: &str, auth: &str, id: &str) -> Answer {
    let url = format!("{path}?upload={id}");
    let body = if method == "POST" {
        Body::Bytes(b"")
    } else {
        Body::None
    };
    request(port, method, &url, &[("Authorization", auth)], body).await
}

/// The SHA-256 and length of a download, hashed as it streams in (the file
/// is never held whole).
pub async fn download_sha(port: u16, path: &str) -> (String, u64) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let head = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nAuthorization: {ADMIN}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut raw = Vec::new();
    let mut length = 0u64;
    let mut in_body = false;
    loop {
        let n = stream.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        if in_body {
            hasher.update(&buf[..n]);
            length += n as u64;
            continue;
        }
        raw.extend_from_slice(&buf[..n]);
        if let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
            assert!(head.starts_with("http/1.1 200"), "{head}");
            assert!(!head.contains("transfer-encoding: chunked"), "{head}");
            hasher.update(&raw[split + 4..]);
            length += (raw.len() - split - 4) as u64;
            raw = Vec::new();
            in_body = true;
        }
    }
    let sha = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    (sha, length)
}

/// Resumable uploads (spec 15.7) against the worker: a 150 MB file sent in
/// parts, out of order and with a part sent twice, round-trips byte-exact;
/// a part cut short mid-body is not stored and the upload resumes; parts of
/// the wrong number or length are `invalid_part`; completing with a part
/// missing is `upload_incomplete` and the upload stays; an upload is its
/// owner's for its path only (404 for anyone or anything else); abort; the
/// rules decide at start from the announced size.
#[test]
pub fn resumable_uploads() {
    let Some(_serial) = e2e() else { return };
    let server = WranglerDev::start_with_vars("files-resumable", &[RULES]);
    let port = server.port;
    run(Duration::from_secs(600), async move {
        timed("150 MB in parts", large_file_in_parts(port)).await;
        timed("resume", resume_after_a_cut(port)).await;
        timed("bad parts", bad_parts(port)).await;
        timed("owners", owners_and_abort(port)).await;
        timed("empty", empty_file_in_one_part(port)).await;
        timed("open uploads bounded", open_uploads_bounded(port)).await;
    });
    drop(server);
}

pub async fn large_file_in_parts(port: u16) {
    const SIZE: u64 = 150_000_000;
    let path = "/v1/files/big/large.bin";
    let started = start_upload(port, path, ADMIN, SIZE, "application/x-big").await;
    assert_eq!(started.status, 201, "{:?}", started.json());
    let plan = started.json();
    let id = plan["upload"].as_str().unwrap().to_owned();
    let part_bytes = plan["part_bytes"].as_u64().unwrap();
    let parts = plan["parts"].as_u64().unwrap();
    assert_eq!((part_bytes, parts), (8 * 1024 * 1024, 18));
    let range = |n: u64| (n - 1) * part_bytes..(n * part_bytes).min(SIZE);
    // Part 5 first with other bytes of its length: the last stored wins.
    let wrong = vec![0u8; part_bytes as usize];
    assert_eq!(
        put_part(port, path, ADMIN, &id, 5, &wrong).await.status,
        200
    );
    for n in (1..=parts).rev() {
        let data = big_bytes(range(n));
        let got = put_part(port, path, ADMIN, &id, n, &data).await;
        assert_eq!(got.status, 200, "part {n}: {:?}", got.json());
        assert_eq!(got.json(), json!({"part": n, "size": data.len()}));
    }
    let done = on_upload(port, "POST", path, ADMIN, &id).await;
    assert_eq!(done.status, 200, "{:?}", done.json());
    let meta = done.json();
    assert_eq!(meta["size"], json!(SIZE));
    assert_eq!(meta["contentType"], "application/x-big");
    assert_eq!(
        meta["md5"],
        Value::Null,
        "R2 computes no MD5 of a multipart object"
    );
    let mut whole = Sha256::new();
    for n in 1..=parts {
        whole.update(big_bytes(range(n)));
    }
    let want: String = whole
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(download_sha(port, path).await, (want, SIZE), "byte-exact");
    let gone = on_upload(port, "GET", path, ADMIN, &id).await;
    assert_eq!(
        (gone.status, gone.code().as_deref()),
        (404, Some("not_found")),
        "completed"
    );
    let keys = keys(port, "big/").await;
    assert_eq!(keys.len(), 1, "one object, named: {keys:?}");
    assert!(keys[0].1);
}

pub async fn resume_after_a_cut(port: u16) {
    const SIZE: u64 = 20_000_000;
    let path = "/v1/files/big/resumed.bin";
    let plan = start_upload(port, path, ADMIN, SIZE, "application/octet-stream")
        .await
        .json();
    let id = plan["upload"].as_str().unwrap().to_owned();
    let part_bytes = plan["part_bytes"].as_u64().unwrap();
    assert_eq!(plan["parts"], 3);
    let range = |n: u64| (n - 1) * part_bytes..(n * part_bytes).min(SIZE);
    assert_eq!(
        put_part(port, path, ADMIN, &id, 1, &big_bytes(range(1)))
            .await
            .status,
        200
    );
    // The connection drops halfway through part 2.
    let half = big_bytes(range(2));
    let url = format!("{path}?upload={id}&part=2");
    let body = Body::Short {
        declared: part_bytes,
        sent: &half[..half.len() / 2],
    };
    let cut = request(port, "PUT", &url, &[("Authorization", ADMIN)], body).await;
    assert!(
        (cut.status, cut.code().as_deref()) == (400, Some("upload_incomplete"))
            || cut.status == 503,
        "{} {:?}",
        cut.status,
        cut.json()
    );
    let status = on_upload(port, "GET", path, ADMIN, &id).await;
    assert_eq!(status.status, 200);
    assert_eq!(
        status.json()["stored"],
        json!([1]),
        "the cut part is not stored"
    );
    for n in [3, 2] {
        assert_eq!(
            put_part(port, path, ADMIN, &id, n, &big_bytes(range(n)))
                .await
                .status,
            200
        );
    }
    let done = on_upload(port, "POST", path, ADMIN, &id).await;
    assert_eq!(done.status, 200, "{:?}", done.json());
    let (sha_got, len) = download_sha(port, path).await;
    assert_eq!((sha_got, len), (sha(&big_bytes(0..SIZE)), SIZE));
}

pub async fn bad_parts(port: u16) {
    const SIZE: u64 = 10_000_000;
    let path = "/v1/files/big/bad.bin";
    let plan = start_upload(port, path, ADMIN, SIZE, "application/octet-stream")
        .await
        .json();
    let id = plan["upload"].as_str().unwrap().to_owned();
    let part_bytes = plan["part_bytes"].as_u64().unwrap() as usize;
    assert_eq!(plan["parts"], 2);
    let last = SIZE as usize - part_bytes;
    for (n, len) in [
        (1, part_bytes - 1),
        (1, part_bytes + 1),
        (2, last + 1),
        (3, 10),
        (0, 10),
    ] {
        let got = put_part(port, path, ADMIN, &id, n, &vec![1u8; len]).await;
        assert_eq!(
            (got.status, got.code().as_deref()),
            (400, Some("invalid_part")),
            "part {n}, {len} bytes"
        );
    }
    let chunked = [("Authorization", ADMIN), ("Transfer-Encoding", "chunked")];
    let url = format!("{path}?upload={id}&part=2");
    let got = request(port, "PUT", &url, &chunked, Body::Chunked).await;
    assert_eq!(
        (got.status, got.code().as_deref()),
        (411, Some("length_required"))
    );
    assert_eq!(
        put_part(port, path, ADMIN, &id, 2, &vec![2u8; last])
            .await
            .status,
        200
    );
    let early = on_upload(port, "POST", path, ADMIN, &id).await;
    assert_eq!(
        (early.status, early.code().as_deref()),
        (400, Some("upload_incomplete"))
    );
    let status = on_upload(port, "GET", path, ADMIN, &id).await;
    assert_eq!(status.json()["stored"], json!([2]), "the upload stays");
    let none = get(port, path, &[("Authorization", ADMIN)]).await;
    assert_eq!(none.status, 404, "no file yet");
    // Starts refused before anything is stored.
    let headers = [("Authorization", ADMIN)];
    let no_length = request(
        port,
        "POST",
        &format!("{path}?uploads"),
        &headers,
        Body::Bytes(b""),
    )
    .await;
    assert_eq!(
        (no_length.status, no_length.code().as_deref()),
        (411, Some("length_required"))
    );
    let huge = start_upload(port, path, ADMIN, 6 << 30, "x/y").await;
    assert_eq!(
        (huge.status, huge.code().as_deref()),
        (413, Some("file_too_large"))
    );
    let method = on_upload(port, "PATCH", path, ADMIN, &id).await;
    assert_eq!(method.status, 405);
}

pub async fn owners_and_abort(port: u16) {
    let alice = bearer("alice");
    let bob = bearer("bob");
    let path = "/v1/files/rules/big.png";
    // The rules see the announced size: 5,000 bytes is over alice's limit.
    let refused = start_upload(port, path, &alice, 5_000, "image/png").await;
    assert_eq!(
        (refused.status, refused.code().as_deref()),
        (403, Some("permission_denied"))
    );
    let started = start_upload(port, path, &alice, 500, "image/png").await;
    assert_eq!(started.status, 201, "{:?}", started.json());
    let id = started.json()["upload"].as_str().unwrap().to_owned();
    assert_eq!(started.json()["parts"], 1);
    let data = bytes(500, 3);
    // Anyone else, any other path, or an unknown id: 404.
    let other_path = "/v1/files/rules/other.png";
    for (auth, path, id) in [
        (bob.as_str(), path, id.as_str()),
        (ADMIN, path, id.as_str()),
        (alice.as_str(), other_path, id.as_str()),
        (alice.as_str(), path, "00000000-0000-4000-8000-000000000000"),
    ] {
        for method in ["GET", "POST", "DELETE"] {
            let got = on_upload(port, method, path, auth, id).await;
            assert_eq!(
                (got.status, got.code().as_deref()),
                (404, Some("not_found")),
                "{method} {path}"
            );
        }
        let got = put_part(port, path, auth, id, 1, &data).await;
        assert_eq!(
            (got.status, got.code().as_deref()),
            (404, Some("not_found")),
            "PUT {path}"
        );
    }
    assert_eq!(
        put_part(port, path, &alice, &id, 1, &data).await.status,
        200
    );
    let aborted = on_upload(port, "DELETE", path, &alice, &id).await;
    assert_eq!(aborted.status, 204);
    for method in ["GET", "POST", "DELETE"] {
        let got = on_upload(port, method, path, &alice, &id).await;
        assert_eq!(
            (got.status, got.code().as_deref()),
            (404, Some("not_found")),
            "{method} after abort"
        );
    }
    assert_eq!(
        get(port, path, &[("Authorization", &alice)]).await.status,
        404
    );
    // A whole small upload by alice, then her file is hers.
    let started = start_upload(port, path, &alice, 500, "image/png").await;
    let id = started.json()["upload"].as_str().unwrap().to_owned();
    assert_eq!(
        put_part(port, path, &alice, &id, 1, &data).await.status,
        200
    );
    let done = on_upload(port, "POST", path, &alice, &id).await;
    assert_eq!(done.status, 200, "{:?}", done.json());
    let doc = get(
        port,
        "/v1/docs/_files/rules/_files/big.png",
        &[("Authorization", &alice)],
    )
    .await;
    assert_eq!(doc.json()["data"]["uploadedBy"], "alice");
    let got = get(port, path, &[("Authorization", &bob)]).await;
    assert_eq!(sha(&got.body), sha(&data));
}

pub async fn empty_file_in_one_part(port: u16) {
    let path = "/v1/files/big/empty.bin";
    let started = start_upload(port, path, ADMIN, 0, "x/y").await;
    assert_eq!(started.status, 201, "{:?}", started.json());
    let id = started.json()["upload"].as_str().unwrap().to_owned();
    assert_eq!(started.json()["parts"], 1);
    let part = put_part(port, path, ADMIN, &id, 1, b"").await;
    assert_eq!(part.status, 200, "{:?}", part.json());
    let done = on_upload(port, "POST", path, ADMIN, &id).await;
    assert_eq!(done.status, 200, "{:?}", done.json());
    assert_eq!(done.json()["size"], 0);
    let got = get(port, path, &[("Authorization", ADMIN)]).await;
    assert_eq!((got.status, got.body.len()), (200, 0));
}

/// An upload not completed within `BLAZE_FILES_UPLOAD_TTL` expires: the
/// folder object's alarm aborts it (404 after), and bytes are left nowhere.
#[test]
pub fn resumable_uploads_expire() {
    let Some(_serial) = e2e() else { return };
    let vars = ["BLAZE_FILES_UPLOAD_TTL:2", "BLAZE_FILES_SWEEP_GRACE:1"];
    let server = WranglerDev::start_with_vars("files-expiry", &vars);
    let port = server.port;
    run(Duration::from_secs(60), async move {
        let path = "/v1/files/ttl/t.bin";
        let started = start_upload(port, path, ADMIN, 10, "x/y").await;
        assert_eq!(started.status, 201, "{:?}", started.json());
        let id = started.json()["upload"].as_str().unwrap().to_owned();
        assert_eq!(
            put_part(port, path, ADMIN, &id, 1, b"0123456789")
                .await
                .status,
            200
        );
        assert_eq!(on_upload(port, "GET", path, ADMIN, &id).await.status, 200);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let got = on_upload(port, "GET", path, ADMIN, &id).await;
            if got.status == 404 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the upload did not expire"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let done = on_upload(port, "POST", path, ADMIN, &id).await;
        assert_eq!(done.status, 404, "an expired upload cannot complete");
        assert!(keys(port, "ttl/").await.is_empty(), "no bytes left");
    });
    drop(server);
}

/// One caller may keep at most 100 unfinished uploads in a folder (spec
/// 15.7): bob's 101st start is `resource_exhausted` and stores nothing,
/// while alice, a bystander in the same folder, still starts hers; an abort
/// gives bob room again.
pub async fn open_uploads_bounded(port: u16) {
    let bob = bearer("bob");
    let alice = bearer("alice");
    let mut ids = Vec::new();
    for i in 0..100 {
        let started = start_upload(
            port,
            &format!("/v1/files/rules/open-{i}.png"),
            &bob,
            10,
            "image/png",
        )
        .await;
        assert_eq!(started.status, 201, "start {i}: {:?}", started.json());
        ids.push(started.json()["upload"].as_str().unwrap().to_owned());
    }
    let refused = start_upload(port, "/v1/files/rules/open-100.png", &bob, 10, "image/png").await;
    assert_eq!(
        (refused.status, refused.code().as_deref()),
        (429, Some("resource_exhausted"))
    );
    let hers = start_upload(port, "/v1/files/rules/hers.png", &alice, 10, "image/png").await;
    assert_eq!(
        hers.status,
        201,
        "the bystander starts hers: {:?}",
        hers.json()
    );
    let aborted = on_upload(port, "DELETE", "/v1/files/rules/open-0.png", &bob, &ids[0]).await;
    assert_eq!(aborted.status, 204);
    let again = start_upload(port, "/v1/files/rules/open-100.png", &bob, 10, "image/png").await;
    assert_eq!(
        again.status,
        201,
        "room again after an abort: {:?}",
        again.json()
    );
}
