//! Who may do what: rules on files (both forms), signed and pinned
//! download URLs.

use std::path::Path;
use std::time::Duration;

use crate::support::{bearer, blobs, bytes, get, patch, put, request, sha, Answer, Body};

pub async fn rules(port: u16, state: &Path) {
    let alice = bearer("alice");
    let bob = bearer("bob");
    let path = "/v1/files/rules/a.png";
    let ok = put(port, path, &alice, "image/png", &bytes(100, 4)).await;
    assert_eq!(ok.status, 200, "{:?}", ok.json());
    let doc = get(
        port,
        "/v1/docs/_files/rules/_files/a.png",
        &[("Authorization", &alice)],
    )
    .await;
    assert_eq!(doc.json()["data"]["uploadedBy"], "alice");
    let before = blobs(state);
    // Refused on type and size from the headers, before the body is read:
    // nothing reaches the bucket.
    for (content_type, size) in [("text/html", 10), ("image/png", 5_000)] {
        let headers = [
            ("Authorization", alice.as_str()),
            ("Content-Type", content_type),
        ];
        let body = bytes(size, 8);
        let got = request(
            port,
            "PUT",
            "/v1/files/rules/b.png",
            &headers,
            Body::Bytes(&body),
        )
        .await;
        assert_eq!(
            (got.status, got.code().as_deref()),
            (403, Some("permission_denied"))
        );
    }
    // A claimed uploader is overwritten by the server: bob cannot pose as alice.
    let headers = [
        ("Authorization", bob.as_str()),
        ("Content-Type", "image/png"),
        ("X-Blaze-Metadata", "{\"uploadedBy\":\"alice\"}"),
    ];
    let got = request(port, "PUT", path, &headers, Body::Bytes(&bytes(10, 5))).await;
    assert_eq!(
        (got.status, got.code().as_deref()),
        (403, Some("permission_denied"))
    );
    let deleted = request(port, "DELETE", path, &[("Authorization", &bob)], Body::None).await;
    assert_eq!(
        (deleted.status, deleted.code().as_deref()),
        (403, Some("permission_denied"))
    );
    // alice's upload left this isolate a key hint for the path (spec 15.3):
    // a refused read still gets its code, and none of the bytes.
    let anonymous = get(port, path, &[]).await;
    assert_eq!(
        (anonymous.status, anonymous.code().as_deref()),
        (403, Some("permission_denied"))
    );
    let elsewhere = put(port, "/v1/files/other/x.png", &alice, "image/png", b"x").await;
    assert_eq!(elsewhere.status, 403);
    assert_eq!(blobs(state), before, "no refused upload stored a byte");
    let read = get(port, path, &[("Authorization", &bob)]).await;
    assert_eq!(
        sha(&read.body),
        sha(&bytes(100, 4)),
        "alice's file is intact"
    );
    let mine = request(
        port,
        "DELETE",
        path,
        &[("Authorization", &alice)],
        Body::None,
    )
    .await;
    assert_eq!(mine.status, 204);
}

pub async fn signed_urls(port: u16) {
    let alice = bearer("alice");
    let path = "/v1/files/rules/u.png";
    let data = bytes(500, 6);
    assert_eq!(
        put(port, path, &alice, "image/png", &data).await.status,
        200
    );
    let mint = |auth: String, query: &'static str| async move {
        let headers = [("Authorization", auth.as_str())];
        request(
            port,
            "POST",
            &format!("{path}?{query}"),
            &headers,
            Body::Bytes(b""),
        )
        .await
    };
    let minted = mint(alice.clone(), "url&ttl=60").await;
    assert_eq!(minted.status, 200, "{:?}", minted.json());
    let url = minted.json()["url"].as_str().unwrap().to_owned();
    let fetched = get(port, &url, &[]).await;
    assert_eq!(fetched.status, 200, "no credential needed");
    assert_eq!(sha(&fetched.body), sha(&data));
    let denied = |a: Answer| (a.status, a.code());
    let want = (403, Some("permission_denied".to_owned()));
    let mut tampered = url.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == '0' { '1' } else { '0' });
    assert_eq!(denied(get(port, &tampered, &[]).await), want, "tampered");
    let moved = url.replace("/u.png", "/a.png");
    assert_eq!(denied(get(port, &moved, &[]).await), want, "another file");
    let later = url.replace("expires=", "expires=9");
    assert_eq!(denied(get(port, &later, &[]).await), want, "extended");
    let short = mint(alice.clone(), "url&ttl=1").await.json()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(denied(get(port, &short, &[]).await), want, "expired");
    // Minted only for a caller the rules let read the file.
    let anonymous = request(port, "POST", &format!("{path}?url"), &[], Body::Bytes(b"")).await;
    assert_eq!(denied(anonymous), want);
    let missing = request(
        port,
        "POST",
        "/v1/files/rules/none.png?url",
        &[("Authorization", &alice)],
        Body::Bytes(b""),
    )
    .await;
    assert_eq!(missing.status, 404);
    pinned_urls(port, &alice).await;
}

/// A URL pinned to the file's bytes (spec 15.5) is served from R2 alone,
/// with ranges and conditionals; once the file is replaced or deleted it
/// serves the path's file (the new one, or 404); after a `PATCH` of the
/// content type, URLs are minted unpinned and serve the new type; the
/// pinned object cannot be changed or dropped.
/// A download URL for `path` minted as the holder of `auth` (200 expected).
pub async fn mint_url(port: u16, path: &str, auth: &str) -> String {
    let headers = [("Authorization", auth)];
    let url = format!("{path}?url");
    let minted = request(port, "POST", &url, &headers, Body::Bytes(b"")).await;
    assert_eq!(minted.status, 200, "{:?}", minted.json());
    minted.json()["url"].as_str().unwrap().to_owned()
}

pub async fn pinned_urls(port: u16, alice: &str) {
    let path = "/v1/files/rules/pinned.png";
    let first = bytes(700, 8);
    assert_eq!(
        put(port, path, alice, "image/png", &first).await.status,
        200
    );
    let mint = || mint_url(port, path, alice);
    let url = mint().await;
    let object = url
        .split("&object=")
        .nth(1)
        .expect("pinned")
        .split('&')
        .next()
        .unwrap()
        .to_owned();
    let got = get(port, &url, &[]).await;
    assert_eq!((got.status, sha(&got.body)), (200, sha(&first)));
    assert_eq!(got.header("content-type"), Some("image/png"));
    let etag = got.header("etag").unwrap().to_owned();
    let not_modified = get(port, &url, &[("If-None-Match", &etag)]).await;
    assert_eq!(not_modified.status, 304);
    let part = get(port, &url, &[("Range", "bytes=10-19")]).await;
    assert_eq!((part.status, part.body.as_slice()), (206, &first[10..20]));
    assert_eq!(part.header("content-range"), Some("bytes 10-19/700"));
    let beyond = get(port, &url, &[("Range", "bytes=700-")]).await;
    assert_eq!(
        (beyond.status, beyond.code().as_deref()),
        (416, Some("range_not_satisfiable"))
    );
    let head = request(port, "HEAD", &url, &[], Body::None).await;
    assert_eq!(
        (head.status, head.header("content-length")),
        (200, Some("700"))
    );
    // Its object is signed: another one, or none, is refused.
    let other = url.replace(&object[..8], "00000000");
    let unpinned = url.replace(&format!("&object={object}"), "");
    for forged in [other, unpinned] {
        let refused = get(port, &forged, &[]).await;
        assert_eq!(
            (refused.status, refused.code().as_deref()),
            (403, Some("permission_denied"))
        );
    }
    // Replaced: the old bytes are gone, and the URL serves the new file.
    let second = bytes(800, 9);
    assert_eq!(
        put(port, path, alice, "image/png", &second).await.status,
        200
    );
    let got = get(port, &url, &[]).await;
    assert_eq!(
        (got.status, sha(&got.body)),
        (200, sha(&second)),
        "the path's file"
    );
    // A content type changed by PATCH: minted unpinned, served as the document says.
    let body = r#"{"contentType": "image/webp"}"#;
    assert_eq!(patch(port, path, alice, body).await.status, 200);
    let url = mint().await;
    assert!(!url.contains("object="), "{url}");
    let got = get(port, &url, &[]).await;
    assert_eq!(
        (got.status, got.header("content-type")),
        (200, Some("image/webp"))
    );
    // Deleted: 404 through a pinned URL minted before.
    assert_eq!(
        patch(port, path, alice, r#"{"contentType": "image/png"}"#)
            .await
            .status,
        200
    );
    let url = mint().await;
    assert!(url.contains("object="), "{url}");
    let gone = request(
        port,
        "DELETE",
        path,
        &[("Authorization", alice)],
        Body::None,
    )
    .await;
    assert_eq!(gone.status, 204);
    let got = get(port, &url, &[]).await;
    assert_eq!(
        (got.status, got.code().as_deref()),
        (404, Some("not_found"))
    );
}

/// Rules in Firebase Storage's form (`service firebase.storage`, spec 15.6)
/// beside the document form in one file: `request.resource.size` and
/// `.contentType` refuse an upload before a byte is stored, the path's
/// `{uid}` decides who writes, `resource.size` who deletes.
pub async fn storage_form_rules(port: u16, state: &Path) {
    let alice = bearer("alice");
    let bob = bearer("bob");
    let path = "/v1/files/storage-form/alice/a.png";
    let ok = put(port, path, &alice, "image/png", &bytes(500, 4)).await;
    assert_eq!(ok.status, 200, "{:?}", ok.json());
    let read = get(port, path, &[("Authorization", &bob)]).await;
    assert_eq!(read.status, 200, "a signed-in user reads it");
    // alice's upload left this isolate a key hint for the path (spec 15.3):
    // a refused read still gets its code, and none of the bytes.
    let anonymous = get(port, path, &[]).await;
    assert_eq!(
        (anonymous.status, anonymous.code().as_deref()),
        (403, Some("permission_denied"))
    );
    let before = blobs(state);
    for (auth, content_type, size) in [
        (&alice, "text/html", 10),
        (&alice, "image/png", 5_000),
        (&bob, "image/png", 10),
    ] {
        let got = put(port, path, auth, content_type, &bytes(size, 8)).await;
        assert_eq!(
            (got.status, got.code().as_deref()),
            (403, Some("permission_denied")),
            "{content_type} {size}"
        );
    }
    assert_eq!(blobs(state), before, "nothing refused reached the bucket");
    let denied = request(port, "DELETE", path, &[("Authorization", &bob)], Body::None).await;
    assert_eq!(denied.status, 403);
    let deleted = request(
        port,
        "DELETE",
        path,
        &[("Authorization", &alice)],
        Body::None,
    )
    .await;
    assert_eq!(deleted.status, 204);
}
