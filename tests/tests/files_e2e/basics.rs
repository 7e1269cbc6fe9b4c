//! Uploads and downloads: byte-exact round trips, replacement and
//! deletion, ranges and conditional requests, bad requests, a body cut short.

use std::path::Path;

use blaze_tests::live::Ws;
use serde_json::{json, Value};

use crate::support::{blobs, bytes, get, put, request, sha, Body};
use crate::{ADMIN, MAX_BYTES};

pub async fn round_trips(port: u16, state: &Path) {
    for (n, name) in [(0usize, "empty"), (1, "one"), (5_000_000, "five-mb")] {
        let data = bytes(n, 7);
        let path = format!("/v1/files/trips/{name}.bin");
        let put = put(port, &path, ADMIN, "application/x-test", &data).await;
        assert_eq!(put.status, 200, "{name}: {:?}", put.json());
        let meta = put.json();
        assert_eq!(meta["size"], json!(n));
        assert_eq!(meta["path"], json!(format!("trips/{name}.bin")));
        assert_eq!(meta["contentType"], "application/x-test");
        let got = get(port, &path, &[("Authorization", ADMIN)]).await;
        assert_eq!(got.status, 200);
        assert_eq!(sha(&got.body), sha(&data), "{name}: byte-exact");
        assert_eq!(got.header("content-type"), Some("application/x-test"));
        assert_eq!(got.header("etag"), put.header("etag"));
        let head = request(port, "HEAD", &path, &[("Authorization", ADMIN)], Body::None).await;
        assert_eq!(head.status, 200);
        assert_eq!(head.header("content-length"), Some(n.to_string().as_str()));
        assert!(head.body.is_empty());
    }
    // The metadata document names the bytes and is an ordinary document.
    let doc = get(
        port,
        "/v1/docs/_files/trips/_files/one.bin",
        &[("Authorization", ADMIN)],
    )
    .await;
    assert_eq!(doc.status, 200);
    assert!(doc.json()["data"]["key"]
        .as_str()
        .unwrap()
        .starts_with("o/_files/trips/_files/"));
    assert_eq!(doc.json()["data"]["uploadedBy"], Value::Null, "the admin");
    assert_eq!(blobs(state), 3);
}

pub async fn replace_and_delete(port: u16, state: &Path) {
    let path = "/v1/files/replace/a.bin";
    let before = blobs(state);
    put(
        port,
        path,
        ADMIN,
        "application/octet-stream",
        &bytes(3000, 1),
    )
    .await;
    let v2 = bytes(2000, 2);
    let second = put(port, path, ADMIN, "application/octet-stream", &v2).await;
    assert_eq!(second.status, 200);
    assert_eq!(
        blobs(state),
        before + 1,
        "the replaced bytes left the bucket"
    );
    let got = get(port, path, &[("Authorization", ADMIN)]).await;
    assert_eq!(sha(&got.body), sha(&v2));
    let deleted = request(
        port,
        "DELETE",
        path,
        &[("Authorization", ADMIN)],
        Body::None,
    )
    .await;
    assert_eq!(deleted.status, 204);
    assert_eq!(blobs(state), before, "the deleted bytes left the bucket");
    let gone = get(port, path, &[("Authorization", ADMIN)]).await;
    assert_eq!(
        (gone.status, gone.code().as_deref()),
        (404, Some("not_found"))
    );
    let again = request(
        port,
        "DELETE",
        path,
        &[("Authorization", ADMIN)],
        Body::None,
    )
    .await;
    assert_eq!(
        (again.status, again.code().as_deref()),
        (404, Some("not_found"))
    );
}

pub async fn ranges_and_conditionals(port: u16) {
    let path = "/v1/files/ranges/r.bin";
    let data = bytes(1000, 3);
    let put = put(port, path, ADMIN, "image/png", &data).await;
    let etag = put.header("etag").unwrap().to_owned();
    let auth = ("Authorization", ADMIN);
    for (range, from, to) in [
        ("bytes=0-0", 0, 0),
        ("bytes=10-19", 10, 19),
        ("bytes=990-", 990, 999),
        ("bytes=-5", 995, 999),
        ("bytes=900-5000", 900, 999),
    ] {
        let got = get(port, path, &[auth, ("Range", range)]).await;
        assert_eq!(got.status, 206, "{range}");
        assert_eq!(got.body, &data[from..=to], "{range}");
        let want = format!("bytes {from}-{to}/1000");
        assert_eq!(got.header("content-range"), Some(want.as_str()));
    }
    for range in ["bytes=1000-", "bytes=-0"] {
        let got = get(port, path, &[auth, ("Range", range)]).await;
        assert_eq!(
            (got.status, got.code().as_deref()),
            (416, Some("range_not_satisfiable"))
        );
        assert_eq!(got.header("content-range"), Some("bytes */1000"));
    }
    let several = get(port, path, &[auth, ("Range", "bytes=0-1,5-6")]).await;
    assert_eq!((several.status, several.body.len()), (200, 1000));
    let cached = get(port, path, &[auth, ("If-None-Match", &etag)]).await;
    assert_eq!(cached.status, 304);
    assert!(cached.body.is_empty());
    let stale = get(port, path, &[auth, ("If-None-Match", "\"999\"")]).await;
    assert_eq!(stale.status, 200);
    let download = get(port, &format!("{path}?download"), &[auth]).await;
    assert_eq!(
        download.header("content-disposition"),
        Some("attachment; filename=\"r.bin\"")
    );
}

pub async fn bad_requests(port: u16) {
    let auth = ("Authorization", ADMIN);
    // (`..` and `%2e%2e` never reach the worker: the runtime resolves them
    // in the URL first, so they name another route or file path, never a
    // segment `..`; files_plan's unit tests refuse them as segments.)
    for path in [
        "/v1/files/a%2Fb",
        "/v1/files/a//b",
        "/v1/files/a/",
        "/v1/files/__x__",
        "/v1/files/sp%20ace",
        &format!("/v1/files/{}", "n".repeat(129)),
    ] {
        let got = request(port, "PUT", path, &[auth], Body::Bytes(b"x")).await;
        assert_eq!(
            (got.status, got.code().as_deref()),
            (400, Some("invalid_path")),
            "{path}"
        );
    }
    // No Content-Length: refused, nothing read.
    let chunked = [auth, ("Transfer-Encoding", "chunked")];
    let got = request(port, "PUT", "/v1/files/bad/c", &chunked, Body::Chunked).await;
    assert_eq!(
        (got.status, got.code().as_deref()),
        (411, Some("length_required"))
    );
    // Over the maximum: refused by its Content-Length (the worker answers
    // before reading; wrangler dev's own proxy in front of workerd sometimes
    // turns such an answer into a 503, as in hostile_http_e2e), nothing stored.
    let big = vec![7u8; MAX_BYTES as usize + 1];
    let got = request(port, "PUT", "/v1/files/bad/big", &[auth], Body::Bytes(&big)).await;
    assert!(
        (got.status, got.code().as_deref()) == (413, Some("file_too_large")) || got.status == 503,
        "{} {:?}",
        got.status,
        got.json()
    );
    let none = get(port, "/v1/files/bad/big", &[auth]).await;
    assert_eq!(none.status, 404, "nothing was stored");
    let meta = [auth, ("X-Blaze-Metadata", "{\"n\":1}")];
    let got = request(port, "PUT", "/v1/files/bad/m", &meta, Body::Bytes(b"x")).await;
    assert_eq!(
        (got.status, got.code().as_deref()),
        (400, Some("invalid_frame"))
    );
    let got = request(port, "PROPFIND", "/v1/files/bad/m", &[auth], Body::None).await;
    assert_eq!(
        (got.status, got.code().as_deref()),
        (405, Some("method_not_allowed"))
    );
    assert_eq!(
        got.header("allow"),
        Some("GET, HEAD, PUT, POST, PATCH, DELETE, OPTIONS")
    );
    // Metadata is the server's to write, even for the admin.
    let forged = json!({"key": "o/forged", "size": 1});
    let got = request(
        port,
        "PUT",
        "/v1/docs/_files/bad/_files/forged",
        &[auth],
        Body::Bytes(forged.to_string().as_bytes()),
    )
    .await;
    assert_eq!(
        (got.status, got.code().as_deref()),
        (403, Some("permission_denied"))
    );
    let commit =
        json!({"collection": "_files/bad/_files", "writes": [{"op": "delete", "id": "m"}]});
    let got = request(
        port,
        "POST",
        "/v1/commit",
        &[auth],
        Body::Bytes(commit.to_string().as_bytes()),
    )
    .await;
    assert_eq!(
        (got.status, got.code().as_deref()),
        (403, Some("permission_denied"))
    );
    let mut ws = Ws::open(port, "_files/bad/_files").await;
    let rid = ws.rid();
    let frame = json!({"type": "commit", "rid": rid, "collection": "_files/bad/_files",
        "writes": [{"op": "set", "id": "w", "data": {"key": "o/forged"}}]});
    let answer = ws.request(frame, &mut Vec::new()).await;
    assert_eq!(answer["error"]["code"], "permission_denied", "{answer}");
    let got = get(port, "/v1/files/bad/w", &[auth]).await;
    assert_eq!(got.status, 404, "nothing was written");
    ws.close().await;
}

pub async fn cut_short(port: u16) {
    let path = "/v1/files/short/s.bin";
    let old = bytes(4000, 9);
    put(port, path, ADMIN, "application/octet-stream", &old).await;
    let body = Body::Short {
        declared: 100_000,
        sent: &bytes(1000, 1),
    };
    let got = request(port, "PUT", path, &[("Authorization", ADMIN)], body).await;
    // The client that cut its body is gone: the worker answers 400
    // `upload_incomplete`, which wrangler dev's proxy may turn into a 503.
    assert!(
        (got.status, got.code().as_deref()) == (400, Some("upload_incomplete"))
            || got.status == 503,
        "{} {:?}",
        got.status,
        got.json()
    );
    // The bytes of the cut upload are not asserted gone: when the client
    // goes away the runtime may cancel the Worker before it deletes them,
    // and the simulator keeps a partial blob. Nothing names them, so no
    // reader can see them; removing them is the sweep's job (spec 15.4,
    // `orphans_are_swept_and_files_stay_whole_across_a_sigkill`). The path
    // must still serve the old file, whole.
    let read = get(port, path, &[("Authorization", ADMIN)]).await;
    assert_eq!(sha(&read.body), sha(&old), "the old file is still served");
}
