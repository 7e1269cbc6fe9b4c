//! Hostile end-to-end tests (issue 13, findings 3 and 5) under `wrangler dev`:
//! what one document, query answer or commit may cost the engine. An innocent
//! bystander shares the collection with the attacker and keeps its listener
//! and its answers throughout; the worker's memory is printed before and after.

use std::time::{Duration, Instant};

use blaze_tests::live::{self, e2e, http, workerd_memory, Answer, WranglerDev, Ws};
use serde_json::{json, Value};

/// The longest the test may take, start of `wrangler dev` included.
const TEST_LIMIT: Duration = Duration::from_secs(600);

/// A generous bound on how long a refused amplifying batch may take.
const REFUSAL_LIMIT: Duration = Duration::from_secs(2);

const COLLECTION: &str = "hostile";

async fn post(port: u16, route: &str, body: &Value) -> Answer {
    http(port, "POST", route, &[], &body.to_string()).await
}

async fn query(port: u16, filter: Value) -> Answer {
    let body = json!({"collection": COLLECTION, "where": filter});
    post(port, "/v1/query", &body).await
}

/// The ids of a query answer's documents.
fn ids(answer: &Answer) -> Vec<String> {
    assert_eq!(
        answer.status,
        200,
        "{}",
        &answer.body[..answer.body.len().min(300)]
    );
    answer.json()["docs"]
        .as_array()
        .expect("docs")
        .iter()
        .map(|d| d["path"].as_str().expect("a path").to_owned())
        .collect()
}

fn memory(server: &WranglerDev, when: &str) {
    match workerd_memory(server.port) {
        Some(m) => println!(
            "workerd {when}: VmRSS {} KiB, VmHWM {} KiB",
            m.now_kib, m.peak_kib
        ),
        None => println!("workerd {when}: memory not readable"),
    }
}

/// A batch of `docs` documents, each set to a 600-byte object then doubled
/// ten times by JSON Patch `copy` into itself: each ends near 600 KB, so the
/// batch (about 1 KB per document on the wire) materialises `docs` × 600 KB.
fn amplifying_batch(docs: usize) -> Value {
    let writes: Vec<Value> = (0..docs)
        .flat_map(|i| {
            let id = format!("amp{i}");
            let copies: Vec<Value> = (0..10)
                .map(|k| json!({"op": "copy", "from": "/a", "path": format!("/a/k{k}")}))
                .collect();
            [
                json!({"op": "set", "id": id, "data": {"a": {"s": "x".repeat(600)}}}),
                json!({"op": "patch", "id": id, "patch": copies}),
            ]
        })
        .collect();
    json!({"collection": COLLECTION, "writes": writes})
}

/// The bystander commits one document and sees it arrive on its listener.
async fn bystander_still_served(bystander: &mut Ws, watcher: &mut Ws, id: &str) {
    let mut skipped = Vec::new();
    let write = json!({"type": "commit", "collection": COLLECTION,
        "writes": [{"op": "set", "id": id, "data": {"who": "bystander"}}]});
    let ack = bystander.request(write, &mut skipped).await;
    assert_eq!(ack["type"], "committed", "{ack}");
    let change = watcher
        .try_recv(Duration::from_secs(10))
        .await
        .expect("the bystander's listener gets the change");
    assert_eq!(change["type"], "change", "{change}");
    assert_eq!(
        change["changes"][0]["doc"]["path"],
        format!("{COLLECTION}/{id}"),
        "{change}"
    );
}

#[test]
fn big_documents_big_query_values_and_amplifying_batches() {
    let Some(_serial) = e2e() else { return };
    live::run(TEST_LIMIT, async {
        let server = WranglerDev::start("hostile-documents");
        let port = server.port;
        memory(&server, "at start");
        answers_past_the_bound(&server).await;

        let mut bystander = Ws::open(port, COLLECTION).await;
        let mut watcher = Ws::open(port, COLLECTION).await;
        let mut skipped = Vec::new();
        let listen = json!({"type": "listen", "query": {"collection": COLLECTION,
            "where": {"field": "who", "op": "==", "value": "bystander"}}});
        let snap = watcher.request(listen, &mut skipped).await;
        assert_eq!(snap["type"], "snapshot", "{snap}");
        bystander_still_served(&mut bystander, &mut watcher, "b0").await;

        // Finding 3: a 600 KB document of 300,000 numbers stores and is queryable.
        let mut nums: Vec<Value> = (0..299_999).map(|i| json!(i % 10)).collect();
        nums.push(json!("needle"));
        let big = json!({"nums": nums, "tag": "big"});
        let stored = http(
            port,
            "PUT",
            &format!("/v1/docs/{COLLECTION}/big"),
            &[],
            &big.to_string(),
        )
        .await;
        assert_eq!(stored.status, 200, "{}", stored.body);
        let big_path = format!("{COLLECTION}/big");
        let contains = json!({"field": "nums", "op": "array-contains", "value": "needle"});
        assert_eq!(
            ids(&query(port, contains).await),
            std::slice::from_ref(&big_path)
        );
        let missing = json!({"field": "nums", "op": "array-contains", "value": "hay"});
        assert!(ids(&query(port, missing).await).is_empty());
        let equal = json!({"field": "nums", "op": "==", "value": big["nums"]});
        assert_eq!(
            ids(&query(port, equal).await),
            std::slice::from_ref(&big_path)
        );
        let mut other = big["nums"].clone();
        other[0] = json!(9);
        let unequal = json!({"field": "nums", "op": "==", "value": other});
        assert!(ids(&query(port, unequal).await).is_empty());
        memory(&server, "after the 600 KB document");

        // A 900 KB string value stores and is found by equality; a
        // multi-megabyte `==` value is answered (its index key is cut), never 500.
        let long = "s".repeat(900_000);
        let stored = http(
            port,
            "PUT",
            &format!("/v1/docs/{COLLECTION}/long"),
            &[],
            &json!({"s": long}).to_string(),
        )
        .await;
        assert_eq!(stored.status, 200, "{}", stored.body);
        let found = query(port, json!({"field": "s", "op": "==", "value": long})).await;
        assert_eq!(ids(&found), [format!("{COLLECTION}/long")]);
        let huge = "s".repeat(3_000_000);
        let answer = query(port, json!({"field": "s", "op": "==", "value": huge})).await;
        assert!(ids(&answer).is_empty());
        let huge_array: Vec<Value> = (0..400_000).map(|i| json!(i % 10)).collect();
        let answer = query(
            port,
            json!({"field": "nums", "op": "==", "value": huge_array}),
        )
        .await;
        assert!(ids(&answer).is_empty());
        bystander_still_served(&mut bystander, &mut watcher, "b1").await;
        memory(&server, "after the big query values");

        // One batch of three 900 KB documents (a 2.7 MB frame) stores and reads back.
        let writes: Vec<Value> = (0..3)
            .map(|i| json!({"op": "set", "id": format!("wide{i}"), "data": {"s": "w".repeat(900_000), "i": i}}))
            .collect();
        let batch = json!({"collection": COLLECTION, "writes": writes});
        let stored = post(port, "/v1/commit", &batch).await;
        assert_eq!(stored.status, 200, "{}", stored.body);
        let wide = query(port, json!({"field": "i", "op": ">=", "value": 0})).await;
        assert_eq!(ids(&wide).len(), 3);
        memory(&server, "after a batch of three 900 KB documents");

        // A 1 MiB document of 90,000 fields: one value entry each, written in chunks.
        let fields: serde_json::Map<String, Value> = (0..90_000)
            .map(|i| (format!("f{i:05}"), json!(i % 7)))
            .collect();
        let started = Instant::now();
        let stored = http(
            port,
            "PUT",
            &format!("/v1/docs/{COLLECTION}/fields"),
            &[],
            &Value::Object(fields).to_string(),
        )
        .await;
        println!(
            "a document of 90,000 fields stored in {:?}",
            started.elapsed()
        );
        assert_eq!(stored.status, 200, "{}", stored.body);
        let found = query(
            port,
            json!({"field": "f89999", "op": "==", "value": 89_999 % 7}),
        )
        .await;
        assert_eq!(ids(&found), [format!("{COLLECTION}/fields")]);
        memory(&server, "after a document of 90,000 fields");

        // Finding 5: amplifying batches are refused in milliseconds, nothing stored.
        let before = post(port, "/v1/query", &json!({"collection": COLLECTION})).await;
        for docs in [40, 100] {
            let batch = amplifying_batch(docs);
            let text = batch.to_string();
            let started = Instant::now();
            let refused = http(port, "POST", "/v1/commit", &[], &text).await;
            let took = started.elapsed();
            println!(
                "amplifying batch of {docs} documents ({} bytes): {} {:?} in {took:?}",
                text.len(),
                refused.status,
                refused.code()
            );
            assert_eq!(
                (refused.status, refused.code().as_deref()),
                (413, Some("commit_too_large")),
                "{}",
                refused.body
            );
            assert!(took < REFUSAL_LIMIT, "refused in {took:?}");
            memory(&server, &format!("after the batch of {docs}"));
        }
        let after = post(port, "/v1/query", &json!({"collection": COLLECTION})).await;
        assert_eq!(after.json(), before.json(), "nothing stored changed");
        bystander_still_served(&mut bystander, &mut watcher, "b2").await;
        memory(&server, "at the end");
        bystander.close().await;
        watcher.close().await;
    });
}

/// Documents of about 1 MB in the collection `answers`: 40 of them, five
/// times `max_answer_bytes` (8 MiB).
const ANSWERS: &str = "answers";
const ANSWER_DOCS: usize = 40;

/// Spec 9.5: a query over 40 MB of documents (asked for whole over HTTP and
/// WebSocket, and listened to) is refused before it is read, and a listener
/// resumed from before those 40 MB of changes gets a snapshot (10.4.4), so
/// the worker's peak memory stays well under a Durable Object's 128 MB;
/// pages of it, and a count, are answered; a bystander keeps its listener.
async fn answers_past_the_bound(server: &WranglerDev) {
    let port = server.port;
    let pad = "x".repeat(1_000_000);
    for i in 0..ANSWER_DOCS {
        let body = json!({"n": i, "pad": pad}).to_string();
        let put = http(
            port,
            "PUT",
            &format!("/v1/docs/{ANSWERS}/d{i:02}"),
            &[],
            &body,
        )
        .await;
        assert_eq!(put.status, 200, "{}", put.body);
    }
    let mut watcher = Ws::open(port, ANSWERS).await;
    let mut skipped = Vec::new();
    let listen = json!({"type": "listen", "doc": format!("{ANSWERS}/d00")});
    assert_eq!(
        watcher.request(listen, &mut skipped).await["type"],
        "snapshot"
    );
    let before = workerd_memory(port).map(|m| m.peak_kib);

    let whole = json!({"collection": ANSWERS});
    let started = Instant::now();
    let refused = post(port, "/v1/query", &whole).await;
    let took = started.elapsed();
    assert_eq!(
        (refused.status, refused.code().as_deref()),
        (413, Some("answer_too_large")),
        "{}",
        refused.body
    );
    let ordered = json!({"collection": ANSWERS, "order_by": [{"field": "n", "direction": "desc"}]});
    let mut attacker = Ws::open(port, ANSWERS).await;
    for query in [&whole, &ordered] {
        let answer = attacker
            .request(json!({"type": "query", "query": query}), &mut skipped)
            .await;
        assert_eq!(answer["error"]["code"], "answer_too_large", "{query}");
    }
    let listened = attacker
        .request(json!({"type": "listen", "query": whole}), &mut skipped)
        .await;
    assert_eq!(
        listened["error"]["code"], "resource_exhausted",
        "{listened}"
    );
    // A narrow listener resumed from seq 0: the 40 MB of changes since are
    // not read; a snapshot with `reset` answers (spec 10.4.4).
    let narrow = json!({"collection": ANSWERS, "where": {"field": "n", "op": "==", "value": 3}});
    let resumed = attacker
        .request(
            json!({"type": "listen", "query": narrow, "since": 0}),
            &mut skipped,
        )
        .await;
    assert_eq!(
        (resumed["type"].as_str(), resumed["reset"].as_bool()),
        (Some("snapshot"), Some(true)),
        "{}",
        resumed["type"]
    );
    assert_eq!(resumed["docs"][0]["path"], format!("{ANSWERS}/d03"));
    let after = workerd_memory(port).map(|m| m.peak_kib);
    if let (Some(before), Some(after)) = (before, after) {
        println!(
            "40 MB asked for whole (HTTP, WebSocket, listen, resume from 0): refused or reset, the first in {took:?}; workerd VmHWM {before} -> {after} KiB"
        );
        assert!(
            after.saturating_sub(before) < 64 * 1024,
            "the worker's peak grew by {} KiB",
            after - before
        );
    }

    // Pages of 7 documents (7 MB), then a count: all 40, each once.
    let mut seen = Vec::new();
    let mut after_id: Option<String> = None;
    while seen.len() < ANSWER_DOCS {
        let mut page =
            json!({"collection": ANSWERS, "order_by": [{"field": "__name__"}], "limit": 7});
        if let Some(id) = &after_id {
            page["start_after"] = json!([id]);
        }
        let answer = post(port, "/v1/query", &page).await;
        assert_eq!(answer.status, 200, "{}", answer.status);
        let got = ids(&answer);
        assert!(!got.is_empty(), "a page after {after_id:?} is empty");
        after_id = got
            .last()
            .map(|p| p.rsplit('/').next().unwrap_or_default().to_owned());
        seen.extend(got);
    }
    let want: Vec<String> = (0..ANSWER_DOCS)
        .map(|i| format!("{ANSWERS}/d{i:02}"))
        .collect();
    assert_eq!(seen, want);
    let count = post(port, "/v1/count", &whole).await;
    assert_eq!(count.json()["count"], ANSWER_DOCS, "{}", count.body);

    // The bystander's listener still hears its document change.
    let write = json!({"type": "commit", "collection": ANSWERS,
        "writes": [{"op": "merge", "id": "d00", "patch": {"n": -1}}]});
    assert_eq!(
        attacker.request(write, &mut skipped).await["type"],
        "committed"
    );
    let change = watcher
        .try_recv(Duration::from_secs(10))
        .await
        .expect("the bystander's listener gets the change");
    assert_eq!(change["type"], "change", "{change}");
    attacker.close().await;
    watcher.close().await;
}
