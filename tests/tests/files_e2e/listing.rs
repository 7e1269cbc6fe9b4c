//! Listing: 10,000 files paged by `__name__`, their subfolders
//! (`?prefixes`) paged and flooded beside a bystander.

use blaze_tests::live::workerd_memory;
use serde_json::json;

use crate::support::{added, bearer, bytes, folder_listener, get, put, request, sha, Answer, Body};
use crate::ADMIN;

/// 10,000 files in one folder, listed 500 at a time by `__name__` with
/// `start_after` (spec 15.2): every file exactly once, in name order.
pub async fn ten_thousand(port: u16) {
    use futures_util::StreamExt;
    const FILES: usize = 10_000;
    const PAGE: usize = 500;
    let names: Vec<String> = (0..FILES).map(|i| format!("f{i:05}.bin")).collect();
    let uploads = futures_util::stream::iter(0..FILES)
        .map(|i| async move {
            let path = format!("/v1/files/many/f{i:05}.bin");
            let data = [(i % 251) as u8];
            put(port, &path, ADMIN, "application/octet-stream", &data)
                .await
                .status
        })
        .buffer_unordered(16)
        .collect::<Vec<u16>>()
        .await;
    assert!(uploads.iter().all(|&s| s == 200), "every upload is stored");
    let mut listed: Vec<String> = Vec::new();
    let mut pages = 0;
    loop {
        let mut query = json!({
            "collection": "_files/many/_files",
            "order_by": [{"field": "__name__"}],
            "limit": PAGE,
        });
        if let Some(last) = listed.last() {
            query["start_after"] = json!([last]);
        }
        let body = query.to_string();
        let headers = [
            ("Authorization", ADMIN),
            ("Content-Type", "application/json"),
        ];
        let answer = request(
            port,
            "POST",
            "/v1/query",
            &headers,
            Body::Bytes(body.as_bytes()),
        )
        .await;
        assert_eq!(answer.status, 200, "{:?}", answer.json());
        let docs = answer.json()["docs"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        pages += 1;
        listed.extend(
            docs.iter()
                .map(|d| d["data"]["name"].as_str().unwrap().to_owned()),
        );
        if docs.len() < PAGE {
            break;
        }
        assert!(pages <= FILES / PAGE + 1, "paging ends");
    }
    assert_eq!(
        listed, names,
        "every file once, in name order, in {pages} pages"
    );
}

/// One page of `folder`'s subfolders (`?prefixes`) as `auth`: the answer.
pub async fn prefixes_page(port: u16, folder: &str, query: &str, auth: &str) -> Answer {
    let path = format!("/v1/files/{folder}?prefixes{query}");
    let headers: &[(&str, &str)] = if auth.is_empty() {
        &[]
    } else {
        &[("Authorization", auth)]
    };
    get(port, &path, headers).await
}

/// Every subfolder of `folder`, `max` a page, and how many pages it took.
pub async fn all_prefixes(port: u16, folder: &str, max: usize) -> (Vec<String>, usize) {
    let mut names = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let position = after.as_deref().map_or(String::new(), |a| {
            format!("&after={}", a.replace('/', "%2F").replace('+', "%2B"))
        });
        let query = format!("&max={max}{position}");
        let answer = prefixes_page(port, folder, &query, ADMIN).await;
        assert_eq!(answer.status, 200, "{:?}", answer.json());
        let page = answer.json();
        let got = page["prefixes"].as_array().unwrap();
        assert!(got.len() <= max, "a page holds at most max names");
        names.extend(got.iter().map(|n| n.as_str().unwrap().to_owned()));
        pages += 1;
        assert!(pages < 100, "paging ends");
        match page["after"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => return (names, pages),
        }
    }
}

/// A folder's subfolders (spec 15.2, `?prefixes`) among the 10,000 files
/// of `many`: each once, paged past the folder's own keys, a folder that
/// shares a file's name included, a nested one only as its top folder;
/// gone once its last file is deleted; never named to a caller the rules
/// do not let list the folder; positions a page did not answer refused.
pub async fn subfolders(port: u16) {
    for path in [
        "many/sub-a/x.bin",
        "many/f05000.bin/y.bin",
        "many/zz/deep/z.bin",
        "many/zz/w.bin",
        "many/a+b/v.bin",
    ] {
        let put = put(
            port,
            &format!("/v1/files/{path}"),
            ADMIN,
            "text/plain",
            b"s",
        )
        .await;
        assert_eq!(put.status, 200, "{path}: {:?}", put.json());
    }
    let expected = ["a+b", "f05000.bin", "sub-a", "zz"];
    let (names, pages) = all_prefixes(port, "many/", 1000).await;
    assert_eq!(names, expected, "each subfolder once");
    assert!(
        pages >= 10,
        "10,000 keys are looked at 1,000 a page: {pages}"
    );
    let (names, _) = all_prefixes(port, "many/", 1).await;
    assert_eq!(names, expected, "a page of one: no gap, no duplicate");
    let (nested, _) = all_prefixes(port, "many/zz/", 10).await;
    assert_eq!(nested, ["deep"]);
    let (root, _) = all_prefixes(port, "", 1000).await;
    assert!(root.iter().any(|n| n == "many"), "{root:?}");
    let (none, _) = all_prefixes(port, "many/sub-a/", 10).await;
    assert!(none.is_empty(), "a folder of files only has no subfolders");

    // The last file of a subfolder deleted: the subfolder is gone.
    let deleted = request(
        port,
        "DELETE",
        "/v1/files/many/sub-a/x.bin",
        &[("Authorization", ADMIN)],
        Body::None,
    )
    .await;
    assert_eq!(deleted.status, 204, "{:?}", deleted.json());
    let (names, _) = all_prefixes(port, "many/", 1000).await;
    assert_eq!(names, ["a+b", "f05000.bin", "zz"]);

    // Whoever may not run the folder's listing learns no name.
    let bob = bearer("bob");
    for auth in [bob.as_str(), ""] {
        let denied = prefixes_page(port, "many/", "", auth).await;
        assert_eq!(denied.status, 403, "{:?}", denied.json());
        assert_eq!(denied.code().as_deref(), Some("permission_denied"));
        assert!(!String::from_utf8_lossy(&denied.body).contains("zz"));
    }
    // `live` may be listed by any signed-in caller.
    let put_live = put(
        port,
        "/v1/files/live/inner/l.bin",
        ADMIN,
        "text/plain",
        b"l",
    )
    .await;
    assert_eq!(put_live.status, 200);
    let allowed = prefixes_page(port, "live/", "", &bob).await;
    assert_eq!(allowed.status, 200, "{:?}", allowed.json());
    assert_eq!(
        allowed.json(),
        json!({"prefixes": ["inner"], "after": null})
    );

    // Positions and sizes a page never answers are refused.
    for query in [
        "&max=0",
        "&max=1001",
        "&after=..",
        "&after=a%2Fb",
        "&after=",
        "&after=%2F",
    ] {
        let refused = prefixes_page(port, "many/", query, ADMIN).await;
        assert_eq!(refused.status, 400, "{query}: {:?}", refused.json());
        assert_eq!(refused.code().as_deref(), Some("invalid_frame"), "{query}");
    }
    let not_folder = prefixes_page(port, "many", "", ADMIN).await;
    assert_eq!(not_folder.code().as_deref(), Some("invalid_path"));
    // A browser's preflight of the folder route is answered.
    let preflight = request(
        port,
        "OPTIONS",
        "/v1/files/many/?prefixes&max=10",
        &[
            ("Origin", "http://127.0.0.1:5173"),
            ("Access-Control-Request-Method", "GET"),
            ("Access-Control-Request-Headers", "authorization"),
        ],
        Body::None,
    )
    .await;
    assert_eq!(preflight.status, 204);
    assert_eq!(preflight.header("access-control-allow-origin"), Some("*"));
    let allowed = preflight
        .header("access-control-allow-headers")
        .unwrap_or("");
    assert!(allowed.contains("Authorization"), "{allowed}");
}

/// Where the flood's pages start: the start, past keys all over the
/// folder's (its `<uuid>`s), past a subfolder, past the last.
pub const FLOOD_POSITIONS: [&str; 6] = [
    "",
    "&after=3",
    "&after=8f",
    "&after=c",
    "&after=sub-a%2F",
    "&after=zzz",
];

/// A flood of `?prefixes` (spec 15.2) beside a bystander on the same
/// folder: 240 full pages of the 10,000-key folder, 16 at a time, from
/// positions all over it, half of them from a caller the rules deny. Every
/// allowed page answers, every refused one is 403 and names nothing;
/// meanwhile the bystander's uploads into a subfolder are stored, its
/// listener sees each, its subfolder's own page answers; afterwards the
/// folder's subfolders are what they were. The runtime's memory is
/// printed, but says little about the folder's object: the process also
/// runs `wrangler dev`'s R2 simulation, whose memory grows with every
/// listing (bench/RESULTS.md, twelfth session).
pub async fn prefixes_flood(port: u16) {
    use futures_util::StreamExt;
    const ZZ: &str = "_files/many/_files/zz/_files";
    let memory = |when: &str| match workerd_memory(port) {
        Some(rss) => println!(
            "workerd {when}: VmRSS {} KiB, VmHWM {} KiB",
            rss.now_kib, rss.peak_kib
        ),
        None => println!("workerd {when}: memory not readable"),
    };
    memory("before the flood of subfolder pages");
    let (before, _) = all_prefixes(port, "many/", 1000).await;
    let (mut ws, snapshot) = folder_listener(port, ZZ).await;
    assert_eq!(
        snapshot["docs"].as_array().map(Vec::len),
        Some(1),
        "{snapshot}"
    );

    let bob = bearer("bob");
    let attack = futures_util::stream::iter(0..240usize)
        .map(|i| {
            let bob = bob.clone();
            async move {
                let position = FLOOD_POSITIONS[i % FLOOD_POSITIONS.len()];
                if i % 2 == 0 {
                    let query = format!("&max=1000{position}");
                    let page = prefixes_page(port, "many/", &query, ADMIN).await;
                    assert_eq!(page.status, 200, "{query}: {:?}", page.json());
                    let names = page.json()["prefixes"].as_array().map(Vec::len);
                    assert!(names.is_some_and(|n| n <= 4), "{query}: {:?}", page.json());
                } else {
                    let denied = prefixes_page(port, "many/", position, &bob).await;
                    assert_eq!(denied.status, 403, "{position}: {:?}", denied.json());
                    assert_eq!(denied.code().as_deref(), Some("permission_denied"));
                    assert!(!String::from_utf8_lossy(&denied.body).contains("zz"));
                }
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>();
    let bystander = async {
        for k in 0..4u8 {
            let path = format!("/v1/files/many/zz/b-{k}.bin");
            let data = bytes(2000, k);
            let answer = put(port, &path, ADMIN, "application/octet-stream", &data).await;
            assert_eq!(
                answer.status,
                200,
                "the bystander's upload: {:?}",
                answer.json()
            );
            let read = get(port, &path, &[("Authorization", ADMIN)]).await;
            assert_eq!(
                sha(&read.body),
                sha(&data),
                "the bystander's file reads back whole"
            );
            let own = prefixes_page(port, "many/zz/", "", ADMIN).await;
            assert_eq!(own.json(), json!({"prefixes": ["deep"], "after": null}));
        }
    };
    let (pages, ()) = tokio::join!(attack, bystander);
    assert_eq!(pages.len(), 240, "every page of the flood was answered");
    memory("after the flood of subfolder pages");

    let mine: Vec<String> = (0..4).map(|k| format!("{ZZ}/b-{k}.bin")).collect();
    let mut frames = Vec::new();
    while !mine.iter().all(|p| added(&frames).contains(p)) {
        frames.push(ws.recv().await);
    }
    ws.close().await;
    let (after, _) = all_prefixes(port, "many/", 1000).await;
    assert_eq!(after, before, "the folder's subfolders are what they were");
}
