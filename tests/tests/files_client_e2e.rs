//! The Rust client's files API (`blaze_client::Files`, spec 15) end to end:
//! the real worker under `wrangler dev` with its simulated R2 bucket, as the
//! development admin. Streamed round trips checked by SHA-256 (0 B, 1 B,
//! 5 MB), a range download, a folder of 250 files listed in pages of 100
//! without a gap or a duplicate, delete, resumable uploads in parts (spec
//! 15.7) and metadata updates (`PATCH`). One worker serves every scenario,
//! each in a folder of its own.

use std::collections::BTreeMap;
use std::time::Duration;

use blaze_client::files::{
    ByteRange, Files, ListPage, MetadataUpdate, Presentation, PresentationField, UploadMetadata,
};
use blaze_client::{Blaze, ConnectOptions, Credentials, Error, ErrorCode};
use blaze_tests::live::{e2e, run, WranglerDev};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

const ADMIN_KEY: &str = "blaze-dev-admin-key";

async fn files(port: u16) -> Files {
    let options = ConnectOptions {
        credentials: Credentials::Fixed(ADMIN_KEY.into()),
        request_timeout: Duration::from_secs(20),
        ..ConnectOptions::default()
    };
    let db = Blaze::connect_with(&format!("http://127.0.0.1:{port}"), options)
        .await
        .expect("a client");
    db.files().expect("files over http")
}

/// Bytes that differ from one position to the next (not all zero).
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1] ^ seed)
        .collect()
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn download_all(files: &Files, path: &str, range: Option<ByteRange>) -> Vec<u8> {
    let mut stream = files.download(path, range).await.expect("download");
    let mut all = Vec::new();
    while let Some(chunk) = stream.next().await {
        all.extend_from_slice(&chunk.expect("a chunk"));
    }
    all
}

fn code<T: std::fmt::Debug>(result: Result<T, Error>) -> Option<ErrorCode> {
    result.expect_err("an error").code()
}

#[test]
fn files_through_the_rust_client() {
    let Some(_serial) = e2e() else { return };
    let server = WranglerDev::start("files-client-e2e");
    let port = server.port;
    run(Duration::from_secs(240), async move {
        let files = files(port).await;
        round_trips(&files).await;
        range_download(&files).await;
        list_in_pages(&files).await;
        delete(&files).await;
        resumable(&files).await;
        update_metadata(&files).await;
    });
    drop(server);
}

/// 0 B, 1 B and 5 MB up (streamed from a reader) and down (as a stream), byte for byte.
async fn round_trips(files: &Files) {
    let mut metadata = BTreeMap::new();
    metadata.insert("note".to_owned(), "naïve ☃".to_owned());
    for (name, bytes) in [
        ("empty.bin", Vec::new()),
        ("one.bin", vec![0xa5]),
        ("five.bin", pattern(5_000_000, 7)),
    ] {
        let path = format!("rt/{name}");
        let uploaded = files
            .upload(
                &path,
                &mut bytes.as_slice(),
                bytes.len() as u64,
                &UploadMetadata {
                    content_type: Some("application/x-test".to_owned()),
                    metadata: metadata.clone(),
                    ..UploadMetadata::default()
                },
            )
            .await
            .unwrap_or_else(|e| panic!("upload {name}: {e}"));
        assert_eq!(
            (uploaded.path.as_str(), uploaded.size),
            (path.as_str(), bytes.len() as u64)
        );
        assert_eq!(uploaded.metadata, metadata);
        let down = download_all(files, &path, None).await;
        assert_eq!(down.len(), bytes.len(), "{name}");
        assert_eq!(sha256(&down), sha256(&bytes), "{name} round trip");
        let meta = files.metadata(&path).await.expect("metadata");
        assert_eq!(
            (
                meta.name.as_str(),
                meta.size,
                meta.content_type.as_str(),
                meta.version
            ),
            (
                name,
                bytes.len() as u64,
                "application/x-test",
                uploaded.version
            )
        );
        assert_eq!(meta.metadata, metadata);
        assert!(
            uploaded.md5.is_some(),
            "a single upload has the object store's MD5"
        );
        assert_eq!(meta.md5.as_deref(), uploaded.md5.as_deref());
    }
    // A reader shorter than the length announced: refused, nothing kept.
    let short = files
        .upload(
            "rt/short.bin",
            &mut [1u8, 2, 3].as_slice(),
            10,
            &UploadMetadata::default(),
        )
        .await;
    assert!(short.is_err(), "a short reader fails the upload");
    assert_eq!(
        code(files.metadata("rt/short.bin").await),
        Some(ErrorCode::NotFound)
    );
}

async fn range_download(files: &Files) {
    let bytes = pattern(1000, 3);
    files
        .upload(
            "ranges/r.bin",
            &mut bytes.as_slice(),
            1000,
            &UploadMetadata::default(),
        )
        .await
        .expect("upload");
    let slice = files
        .download(
            "ranges/r.bin",
            Some(ByteRange::Slice {
                offset: 100,
                len: 50,
            }),
        )
        .await
        .expect("a range");
    assert_eq!(slice.content_range.as_deref(), Some("bytes 100-149/1000"));
    assert_eq!(
        download_all(
            files,
            "ranges/r.bin",
            Some(ByteRange::Slice {
                offset: 100,
                len: 50
            })
        )
        .await,
        &bytes[100..150]
    );
    assert_eq!(
        download_all(files, "ranges/r.bin", Some(ByteRange::From(990))).await,
        &bytes[990..]
    );
    assert_eq!(
        download_all(files, "ranges/r.bin", Some(ByteRange::Suffix(7))).await,
        &bytes[993..]
    );
    assert_eq!(
        code(
            files
                .download("ranges/r.bin", Some(ByteRange::From(1000)))
                .await
                .map(|_| ())
        ),
        Some(ErrorCode::RangeNotSatisfiable)
    );
    assert_eq!(
        code(files.download("ranges/missing.bin", None).await.map(|_| ())),
        Some(ErrorCode::NotFound)
    );
}

/// 250 files and 2 subfolders in pages of 100 entries, in name order, each
/// once (a nested subfolder under its own folder only).
async fn list_in_pages(files: &Files) {
    let names: Vec<String> = (0..250).map(|i| format!("f{i:03}.txt")).collect();
    for chunk in names.chunks(25) {
        let uploads = chunk.iter().map(|name| async move {
            files
                .upload(
                    &format!("many/{name}"),
                    &mut name.as_bytes(),
                    name.len() as u64,
                    &UploadMetadata::typed("text/plain"),
                )
                .await
                .unwrap_or_else(|e| panic!("upload {name}: {e}"))
        });
        futures_util::future::join_all(uploads).await;
    }
    for nested in [
        "many/sub/nested.txt",
        "many/sub/deeper/d.txt",
        "many/a-b/x.txt",
    ] {
        files
            .upload(nested, &mut [1u8].as_slice(), 1, &UploadMetadata::default())
            .await
            .expect("upload");
    }
    let mut pages: Vec<ListPage> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = files
            .list("many", 100, cursor.as_deref())
            .await
            .expect("a page");
        cursor = page.next_cursor.clone();
        pages.push(page);
        assert!(pages.len() <= 3, "at most three pages");
        if cursor.is_none() {
            break;
        }
    }
    // 252 entries, 100 a page in name order: `a-b` first, `sub` last.
    assert_eq!(
        pages
            .iter()
            .map(|p| (p.items.len(), p.prefixes.len()))
            .collect::<Vec<_>>(),
        [(99, 1), (100, 0), (51, 1)]
    );
    let listed: Vec<&str> = pages
        .iter()
        .flat_map(|p| p.items.iter().map(|f| f.name.as_str()))
        .collect();
    assert_eq!(listed, names, "every file once, in order");
    assert!(pages
        .iter()
        .flat_map(|p| &p.items)
        .all(|f| f.size == f.name.len() as u64));
    let folders: Vec<&str> = pages
        .iter()
        .flat_map(|p| p.prefixes.iter().map(String::as_str))
        .collect();
    assert_eq!(folders, ["many/a-b", "many/sub"], "each subfolder once");
    let all = files.list_all("many").await.expect("every page");
    let all_names: Vec<&str> = all.items.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(all_names, names, "list_all: every file");
    assert_eq!(
        all.prefixes,
        ["many/a-b", "many/sub"],
        "list_all: every subfolder"
    );
    assert_eq!(all.next_cursor, None);
    let bad = files.list("many", 10, Some("..|!")).await;
    assert!(matches!(bad, Err(blaze_client::Error::Usage(_))), "{bad:?}");
    let sub = files
        .list("many/sub", 10, None)
        .await
        .expect("the subfolder");
    assert_eq!(
        sub.items
            .iter()
            .map(|f| f.path.as_str())
            .collect::<Vec<_>>(),
        ["many/sub/nested.txt"]
    );
    assert_eq!(sub.prefixes, ["many/sub/deeper"]);
    assert_eq!(sub.next_cursor, None);
}

async fn delete(files: &Files) {
    files
        .upload(
            "gone/a.txt",
            &mut b"bye".as_slice(),
            3,
            &UploadMetadata::default(),
        )
        .await
        .expect("upload");
    files.delete("gone/a.txt").await.expect("delete");
    assert_eq!(
        code(files.metadata("gone/a.txt").await),
        Some(ErrorCode::NotFound)
    );
    assert_eq!(
        code(files.download("gone/a.txt", None).await.map(|_| ())),
        Some(ErrorCode::NotFound)
    );
    assert_eq!(
        code(files.delete("gone/a.txt").await),
        Some(ErrorCode::NotFound)
    );
    assert!(files
        .list("gone", 10, None)
        .await
        .expect("list")
        .items
        .is_empty());
}

/// Spec 15.7: 17 MiB in parts; a part sent, then resumed from the stored parts; abort.
async fn resumable(files: &Files) {
    let bytes = pattern(17 * 1024 * 1024 + 3, 9);
    let len = bytes.len() as u64;
    let started = files
        .start_upload("parts/big.bin", len, &UploadMetadata::typed("video/mp4"))
        .await;
    let mut upload = started.expect("start");
    assert!(
        upload.parts >= 2,
        "{} parts of {}",
        upload.parts,
        upload.part_bytes
    );
    // Send only the first part, then resume as a new process would: by asking the server.
    let (offset, part_len) = upload.part_span(1);
    let mut first = &bytes[offset as usize..(offset + part_len) as usize];
    files
        .upload_part(&mut upload, 1, &mut first)
        .await
        .expect("part 1");
    let mut resumed = files
        .resume_upload("parts/big.bin", &upload.id)
        .await
        .expect("resume");
    assert_eq!(resumed.stored.iter().copied().collect::<Vec<_>>(), [1]);
    let mut progress = Vec::new();
    let mut source = std::io::Cursor::new(bytes.clone());
    let done = files
        .upload_resumable(&mut resumed, &mut source, |u| {
            progress.push(u.stored_bytes())
        })
        .await
        .expect("the rest");
    assert_eq!(done.size, len);
    assert!(progress.windows(2).all(|w| w[0] < w[1]), "{progress:?}");
    assert_eq!(progress.last(), Some(&len));
    assert_eq!(
        sha256(&download_all(files, "parts/big.bin", None).await),
        sha256(&bytes)
    );
    assert_eq!(
        code(files.resume_upload("parts/big.bin", &upload.id).await),
        Some(ErrorCode::NotFound),
        "a completed upload is gone"
    );

    let aborted = files
        .start_upload("parts/aborted.bin", 10, &UploadMetadata::default())
        .await
        .expect("start");
    files.abort_upload(&aborted).await.expect("abort");
    assert_eq!(
        code(files.resume_upload("parts/aborted.bin", &aborted.id).await),
        Some(ErrorCode::NotFound)
    );
    assert_eq!(
        code(files.metadata("parts/aborted.bin").await),
        Some(ErrorCode::NotFound)
    );
}

async fn update_metadata(files: &Files) {
    let mut metadata = BTreeMap::new();
    metadata.insert("keep".to_owned(), "1".to_owned());
    metadata.insert("drop".to_owned(), "2".to_owned());
    let first = files
        .upload(
            "meta/m.txt",
            &mut b"same".as_slice(),
            4,
            &UploadMetadata {
                content_type: Some("text/plain".to_owned()),
                metadata,
                presentation: Presentation {
                    cache_control: Some("public, max-age=60".to_owned()),
                    ..Presentation::default()
                },
            },
        )
        .await
        .expect("upload");
    assert_eq!(
        first.presentation.cache_control.as_deref(),
        Some("public, max-age=60")
    );
    let download = files.download("meta/m.txt", None).await.expect("download");
    assert_eq!(
        download.cache_control.as_deref(),
        Some("public, max-age=60"),
        "the download answers it"
    );
    drop(download);
    let changes = MetadataUpdate {
        content_type: Some("text/markdown".to_owned()),
        metadata: BTreeMap::from([
            ("drop".to_owned(), None),
            ("added".to_owned(), Some("3".to_owned())),
        ]),
        presentation: BTreeMap::from([
            (PresentationField::CacheControl, None),
            (PresentationField::ContentLanguage, Some("de".to_owned())),
        ]),
    };
    let updated = files.update_metadata("meta/m.txt", &changes).await;
    let updated = updated.expect("update");
    assert!(updated.version > first.version);
    let meta = files.metadata("meta/m.txt").await.expect("metadata");
    assert_eq!(meta.content_type, "text/markdown");
    assert_eq!(
        meta.presentation,
        Presentation {
            content_language: Some("de".to_owned()),
            ..Presentation::default()
        },
        "cacheControl removed, contentLanguage set"
    );
    assert_eq!(
        meta.metadata.into_iter().collect::<Vec<_>>(),
        [
            ("added".to_owned(), "3".to_owned()),
            ("keep".to_owned(), "1".to_owned())
        ]
    );
    assert_eq!(download_all(files, "meta/m.txt", None).await, b"same");
}
