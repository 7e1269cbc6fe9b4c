//! Metadata as data: presentation fields, a live folder, `PATCH` of a
//! file's metadata.

use std::path::Path;

use serde_json::json;

use crate::access::mint_url;
use crate::resumable::{on_upload, put_part};
use crate::support::{
    bearer, blobs, bytes, folder_listener, get, patch, put, request, sha, Answer, Body,
};
use crate::ADMIN;

/// Firebase's settable `cacheControl`, `contentDisposition` and
/// `contentLanguage` (spec 15.2): set by an upload's headers (one at once or
/// in parts), answered by every download (with a credential, through a
/// pinned URL from R2 alone, through an unpinned one), changed and removed
/// by `PATCH`; a value that is not a short printable-ASCII header value is
/// `invalid_frame` and changes nothing.
pub async fn presentation(port: u16, state: &Path) {
    let path = "/v1/files/present/logo.svg";
    let data = bytes(900, 12);
    let disposition = "inline; filename=\"logo.svg\"";
    let set = [
        ("X-Blaze-Cache-Control", "public, max-age=86400"),
        ("X-Blaze-Content-Disposition", disposition),
        ("X-Blaze-Content-Language", "en"),
    ];
    let mut headers = vec![("Authorization", ADMIN), ("Content-Type", "image/svg+xml")];
    headers.extend(set);
    let first = request(port, "PUT", path, &headers, Body::Bytes(&data)).await;
    assert_eq!(first.status, 200, "{:?}", first.json());
    let answer = first.json();
    assert_eq!(answer["cacheControl"], "public, max-age=86400");
    assert_eq!(answer["contentDisposition"], disposition);
    assert_eq!(answer["contentLanguage"], "en");
    let presented =
        |got: &Answer, cache: &str, disposition: Option<&str>, language: Option<&str>| {
            assert_eq!(
                got.header("cache-control"),
                Some(cache),
                "{:?}",
                got.headers
            );
            assert_eq!(got.header("content-disposition"), disposition);
            assert_eq!(got.header("content-language"), language);
        };
    let admin = [("Authorization", ADMIN)];
    let got = get(port, path, &admin).await;
    assert_eq!((got.status, sha(&got.body)), (200, sha(&data)));
    presented(&got, "public, max-age=86400", Some(disposition), Some("en"));
    let etag = got.header("etag").unwrap().to_owned();
    let cached = get(port, path, &[admin[0], ("If-None-Match", &etag)]).await;
    assert_eq!(cached.status, 304);
    assert_eq!(
        cached.header("cache-control"),
        Some("public, max-age=86400")
    );
    let attachment = get(port, &format!("{path}?download"), &admin).await;
    assert_eq!(
        attachment.header("content-disposition"),
        Some("attachment; filename=\"logo.svg\""),
        "?download wins"
    );
    let mint = || mint_url(port, path, ADMIN);
    let url = mint().await;
    assert!(url.contains("&object="), "pinned: {url}");
    let got = get(port, &url, &[]).await;
    assert_eq!((got.status, sha(&got.body)), (200, sha(&data)));
    presented(&got, "public, max-age=86400", Some(disposition), Some("en"));
    // Changed and removed: the document says so at once, and a URL minted
    // now is unpinned (R2 keeps what the upload set) and serves the change.
    let body = r#"{"cacheControl":null,"contentDisposition":null,"contentLanguage":"de"}"#;
    let updated = patch(port, path, ADMIN, body).await;
    assert_eq!(updated.status, 200, "{:?}", updated.json());
    assert!(updated.json().get("cacheControl").is_none(), "removed");
    assert_eq!(updated.json()["contentLanguage"], "de");
    let got = get(port, path, &admin).await;
    presented(&got, "private, max-age=0", None, Some("de"));
    let url = mint().await;
    assert!(!url.contains("object="), "unpinned: {url}");
    let got = get(port, &url, &[]).await;
    assert_eq!((got.status, sha(&got.body)), (200, sha(&data)));
    presented(&got, "private, max-age=0", None, Some("de"));
    // Hostile values: over-long, or a line break that would end the header,
    // while a bystander listens to the folder.
    let (mut bystander, _) = folder_listener(port, "_files/present/_files").await;
    let blobs_before = blobs(state);
    let long = "a".repeat(1025);
    let mut headers = vec![("Authorization", ADMIN), ("Content-Type", "image/svg+xml")];
    headers.push(("X-Blaze-Cache-Control", &long));
    let refused = request(port, "PUT", path, &headers, Body::Bytes(&data)).await;
    assert_eq!(
        (refused.status, refused.code().as_deref()),
        (400, Some("invalid_frame"))
    );
    for body in [
        r#"{"cacheControl":"no-store\r\nSet-Cookie: session=stolen"}"#,
        r#"{"contentLanguage":""}"#,
        r#"{"contentEncoding":"gzip"}"#,
    ] {
        let refused = patch(port, path, ADMIN, body).await;
        assert_eq!(
            (refused.status, refused.code().as_deref()),
            (400, Some("invalid_frame")),
            "{body}"
        );
    }
    assert_eq!(blobs(state), blobs_before, "nothing stored");
    let got = get(port, path, &admin).await;
    assert_eq!(
        got.header("etag"),
        Some(updated.header("etag").unwrap()),
        "unchanged"
    );
    presented(&got, "private, max-age=0", None, Some("de"));
    // The bystander saw nothing of the refused writes: its next change is
    // the next write that was allowed.
    let allowed = patch(port, path, ADMIN, r#"{"contentLanguage":"fr"}"#).await;
    assert_eq!(allowed.status, 200, "{:?}", allowed.json());
    let change = loop {
        let frame = bystander.recv().await;
        if frame["type"] == "change" {
            break frame;
        }
    };
    let changes = change["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{change}");
    assert_eq!(changes[0]["type"], "modified", "{change}");
    assert_eq!(
        changes[0]["patch"],
        json!([{"op": "replace", "path": "/contentLanguage", "value": "fr"}]),
        "{change}"
    );
    bystander.close().await;
    // A resumable upload takes them from its start.
    let path = "/v1/files/present/big.bin";
    let start = [
        ("Authorization", ADMIN),
        ("X-Blaze-Upload-Length", "900"),
        ("X-Blaze-Cache-Control", "no-store"),
    ];
    let started = request(
        port,
        "POST",
        &format!("{path}?uploads"),
        &start,
        Body::Bytes(b""),
    )
    .await;
    assert_eq!(started.status, 201, "{:?}", started.json());
    let id = started.json()["upload"].as_str().unwrap().to_owned();
    assert_eq!(put_part(port, path, ADMIN, &id, 1, &data).await.status, 200);
    let done = on_upload(port, "POST", path, ADMIN, &id).await;
    assert_eq!(done.status, 200, "{:?}", done.json());
    assert_eq!(done.json()["cacheControl"], "no-store");
    let got = get(port, path, &admin).await;
    assert_eq!((got.status, sha(&got.body)), (200, sha(&data)));
    presented(&got, "no-store", None, None);
}

pub async fn live_folder(port: u16) {
    let (mut ws, _) = folder_listener(port, "_files/live/_files").await;
    let path = "/v1/files/live/f.txt";
    let mut kinds = Vec::new();
    put(port, path, ADMIN, "text/plain", b"one").await;
    put(port, path, ADMIN, "text/plain", b"two!").await;
    request(
        port,
        "DELETE",
        path,
        &[("Authorization", ADMIN)],
        Body::None,
    )
    .await;
    while kinds.len() < 3 {
        let frame = ws.recv().await;
        if frame["type"] == "change" {
            for change in frame["changes"].as_array().unwrap() {
                kinds.push(change["type"].as_str().unwrap().to_owned());
            }
        }
    }
    assert_eq!(kinds, ["added", "modified", "removed"]);
    ws.close().await;
}

pub async fn update_metadata(port: u16, state: &Path) {
    let path = "/v1/files/meta/m.bin";
    let data = bytes(3000, 11);
    let headers = [
        ("Authorization", ADMIN),
        ("Content-Type", "text/csv"),
        ("X-Blaze-Metadata", r#"{"a":"1","b":"2"}"#),
    ];
    let first = request(port, "PUT", path, &headers, Body::Bytes(&data)).await;
    assert_eq!(first.status, 200, "{:?}", first.json());
    let blobs_before = blobs(state);
    let body = r#"{"contentType":"text/plain","metadata":{"b":null,"c":"3"}}"#;
    let updated = patch(port, path, ADMIN, body).await;
    assert_eq!(updated.status, 200, "{:?}", updated.json());
    let answer = updated.json();
    assert_eq!(answer["metadata"], json!({"a": "1", "c": "3"}), "merged");
    assert_eq!(answer["contentType"], "text/plain");
    assert_eq!(answer["path"], "meta/m.bin");
    assert_eq!(answer["size"], first.json()["size"]);
    assert_eq!(answer["md5"], first.json()["md5"]);
    assert!(answer["version"].as_u64() > first.json()["version"].as_u64());
    let etag = format!("\"{}\"", answer["version"]);
    assert_eq!(updated.header("etag"), Some(etag.as_str()));
    assert_eq!(blobs(state), blobs_before, "no byte was stored or deleted");
    let got = get(port, path, &[("Authorization", ADMIN)]).await;
    assert_eq!(got.header("content-type"), Some("text/plain"));
    assert_eq!(got.header("etag"), Some(etag.as_str()));
    assert_eq!(sha(&got.body), sha(&data), "the same bytes");
    // Bad bodies change nothing.
    for bad in [
        "",
        "not json",
        "{}",
        r#"{"size":1}"#,
        r#"{"key":"o/x"}"#,
        r#"{"contentType":7}"#,
        r#"{"metadata":{"a":1}}"#,
        r#"{"metadata":null}"#,
    ] {
        let got = patch(port, path, ADMIN, bad).await;
        assert_eq!(
            (got.status, got.code().as_deref()),
            (400, Some("invalid_frame")),
            "{bad}"
        );
    }
    let unchanged = get(port, path, &[("Authorization", ADMIN)]).await;
    assert_eq!(unchanged.header("etag"), Some(etag.as_str()));
    let missing = patch(port, "/v1/files/meta/none.bin", ADMIN, body).await;
    assert_eq!(
        (missing.status, missing.code().as_deref()),
        (404, Some("not_found"))
    );
    // Under the rules: an update of the metadata document as the caller.
    let alice = bearer("alice");
    let bob = bearer("bob");
    let mine = "/v1/files/rules/meta.png";
    assert_eq!(
        put(port, mine, &alice, "image/png", &bytes(50, 1))
            .await
            .status,
        200
    );
    let by_bob = patch(port, mine, &bob, r#"{"metadata":{"x":"y"}}"#).await;
    assert_eq!(
        (by_bob.status, by_bob.code().as_deref()),
        (403, Some("permission_denied"))
    );
    let by_alice = patch(port, mine, &alice, r#"{"metadata":{"x":"y"}}"#).await;
    assert_eq!(by_alice.status, 200, "{:?}", by_alice.json());
    assert_eq!(by_alice.json()["metadata"], json!({"x": "y"}));
    let doc = get(
        port,
        "/v1/docs/_files/rules/_files/meta.png",
        &[("Authorization", &alice)],
    )
    .await;
    assert_eq!(doc.json()["data"]["uploadedBy"], "alice", "kept");
    // A missing file is 404 only to a caller who may read it.
    let nobody = patch(port, "/v1/files/rules/none.png", "", body).await;
    assert_eq!(
        (nobody.status, nobody.code().as_deref()),
        (403, Some("permission_denied"))
    );
    let reader = patch(port, "/v1/files/rules/none.png", &alice, body).await;
    assert_eq!(
        (reader.status, reader.code().as_deref()),
        (404, Some("not_found"))
    );
}
