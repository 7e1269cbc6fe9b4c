//! Hostile readers under `wrangler dev` (issue 13, finding 4): flow control
//! by acknowledgement (protocol 10.4.6). A client that reads promptly and
//! acks, as the reference clients do, is paced and never closed, whatever
//! burst it sends; one that never reads is closed with 4008 once its held
//! requests pass the bound, and the worker's memory stays bounded. In each
//! test a bystander's listener on the same collection keeps receiving. A
//! connection pipelining expensive counts holds another connection's commit
//! back for a group or two, not for its whole pipeline (the queue is fair
//! and a group ends after `GROUP_ROWS_READ` rows).

use std::time::{Duration, Instant};

use blaze_tests::live::{self, e2e, http, workerd_memory, Incoming, WranglerDev, Ws};
use serde_json::{json, Value};

/// The longest any one test may take, start of `wrangler dev` included.
const TEST_LIMIT: Duration = Duration::from_secs(300);
/// How long a reader waits for one frame.
const WAIT: Duration = Duration::from_secs(30);
/// The size of the big document: the 1 MiB document limit, less a little.
const BIG: usize = 1024 * 1024 - 64;

/// A connection that reads like a reference client: it counts the frames it
/// reads (`welcome` included) and acks every 64 frames or 64 KiB.
struct Acking {
    ws: Ws,
    frames: u64,
    unacked_frames: u64,
    unacked_bytes: usize,
}

impl Acking {
    async fn open(port: u16, collection: &str) -> Self {
        Self {
            ws: Ws::open(port, collection).await,
            frames: 1,
            unacked_frames: 1,
            unacked_bytes: 0,
        }
    }

    /// The next text frame, acknowledged when due; panics on a close or after [`WAIT`].
    async fn next(&mut self) -> Value {
        let text = match self.ws.next_incoming(WAIT).await {
            Some(Incoming::Text(text)) => text,
            other => panic!("expected a frame after {} read, got {other:?}", self.frames),
        };
        self.frames += 1;
        self.unacked_frames += 1;
        self.unacked_bytes += text.len();
        if self.unacked_frames >= 64 || self.unacked_bytes >= 64 * 1024 {
            self.unacked_frames = 0;
            self.unacked_bytes = 0;
            let ack = json!({"type": "ack", "frames": self.frames});
            self.ws.send_json(&ack).await;
        }
        serde_json::from_str(&text).expect("JSON frame")
    }
}

/// A bystander listening to the whole collection `c`, after its snapshot.
async fn bystander(port: u16) -> Acking {
    let mut b = Acking::open(port, "c").await;
    let listen = json!({"type": "listen", "rid": 1, "query": {"collection": "c"}});
    b.ws.send_json(&listen).await;
    assert_eq!(b.next().await["type"], "snapshot");
    b
}

/// Reads `b`'s `change` frames until one has sequence number `seq`; returns
/// how many document changes they carried.
async fn changes_until(b: &mut Acking, seq: u64) -> usize {
    let mut changes = 0;
    loop {
        let frame = b.next().await;
        assert_eq!(frame["type"], "change", "{frame}");
        changes += frame["changes"].as_array().map_or(0, Vec::len);
        if frame["seq"].as_u64() >= Some(seq) {
            return changes;
        }
    }
}

async fn put_big(port: u16) {
    let body = json!({"s": "x".repeat(BIG - 8)}).to_string();
    let put = http(port, "PUT", "/v1/docs/c/big", &[], &body).await;
    assert_eq!(put.status, 200, "{}", put.body);
}

async fn put_small(port: u16, id: &str) -> u64 {
    let put = http(port, "PUT", &format!("/v1/docs/c/{id}"), &[], "{}").await;
    assert_eq!(put.status, 200, "{}", put.body);
    let seq = http(port, "POST", "/v1/count", &[], r#"{"collection":"c"}"#).await;
    seq.json()["seq"].as_u64().expect("a seq")
}

fn kib(memory: Option<live::Rss>) -> (u64, u64) {
    let memory = memory.expect("the workerd of this wrangler dev is found in /proc");
    (memory.now_kib, memory.peak_kib)
}

#[test]
fn a_burst_of_4200_commits_is_answered_in_order_and_a_bystanders_listener_keeps_up() {
    let Some(_serial) = e2e() else { return };
    live::run(TEST_LIMIT, async {
        let server = WranglerDev::start("flow-burst");
        let port = server.port;
        let mut watcher = bystander(port).await;
        let watch = tokio::spawn(async move { changes_until(&mut watcher, 4200).await });
        let mut attacker = Acking::open(port, "c").await;
        let started = Instant::now();
        for rid in 1..=4200 {
            let commit = json!({"type": "commit", "rid": rid, "collection": "c",
                "writes": [{"op": "set", "id": format!("d{rid}"), "data": {"i": rid}}]});
            attacker.ws.send_json(&commit).await;
        }
        for rid in 1..=4200u64 {
            let answer = attacker.next().await;
            assert_eq!(
                (answer["type"].as_str(), answer["rid"].as_u64()),
                (Some("committed"), Some(rid)),
                "{answer}"
            );
        }
        let seen = watch.await.expect("the bystander keeps listening");
        assert_eq!(seen, 4200, "the bystander saw every document added");
        println!(
            "4,200 pipelined commits answered in order in {:?}, no close",
            started.elapsed()
        );
    });
}

#[test]
fn twenty_pipelined_gets_of_a_1_mib_document_are_all_answered_while_a_bystander_is_served() {
    let Some(_serial) = e2e() else { return };
    live::run(TEST_LIMIT, async {
        let server = WranglerDev::start("flow-big-gets");
        let port = server.port;
        put_big(port).await;
        let mut watcher = bystander(port).await;
        let mut attacker = Acking::open(port, "c").await;
        for rid in 1..=20 {
            let get = json!({"type": "get", "rid": rid, "path": "c/big"});
            attacker.ws.send_json(&get).await;
        }
        // While the reader has about 8 MiB unread, the bystander is not delayed.
        for n in 0..5 {
            let seq = put_small(port, &format!("other{n}")).await;
            assert_eq!(changes_until(&mut watcher, seq).await, 1);
        }
        for rid in 1..=20u64 {
            let answer = attacker.next().await;
            assert_eq!(answer["rid"].as_u64(), Some(rid), "{}", answer["type"]);
            let s = answer["doc"]["data"]["s"].as_str().map_or(0, str::len);
            assert_eq!(s, BIG - 8);
        }
        let (rss, hwm) = kib(workerd_memory(port));
        println!("20 gets of a 1 MiB document answered; workerd VmRSS {rss} KiB, VmHWM {hwm} KiB");
    });
}

#[test]
fn a_client_that_never_reads_is_closed_with_4008_and_the_worker_stays_bounded() {
    let Some(_serial) = e2e() else { return };
    live::run(TEST_LIMIT, async {
        let server = WranglerDev::start("flow-never-reads");
        let port = server.port;
        put_big(port).await;
        let mut watcher = bystander(port).await;
        let (rss_before, hwm_before) = kib(workerd_memory(port));
        // 8 answers of 1 MiB fill half of max_unread_bytes; 4,097 held
        // requests then pass max_unread_frames. A few more follow.
        let mut attacker = Ws::open(port, "c").await;
        let get = json!({"type": "get", "rid": 1, "path": "c/big"}).to_string();
        for _ in 0..8200 {
            attacker.send_text(&get).await;
        }
        let mut docs = 0;
        let close = loop {
            match attacker.next_incoming(WAIT).await {
                Some(Incoming::Text(_)) => docs += 1,
                Some(Incoming::Closed { code, reason }) => break (code, reason),
                None => panic!("the connection ended without a close after {docs} frames"),
            }
        };
        assert_eq!(
            close,
            (4008, "slow_consumer".to_owned()),
            "after {docs} frames"
        );
        assert!(docs <= 9, "{docs} answers of 1 MiB went out unread");
        let (rss, hwm) = kib(workerd_memory(port));
        println!(
            "never-reading client closed 4008 after {docs} answers; workerd VmRSS {rss_before} -> {rss} KiB, VmHWM {hwm_before} -> {hwm} KiB"
        );
        assert!(
            hwm.saturating_sub(hwm_before) < 128 * 1024,
            "the worker's peak grew by {} KiB",
            hwm - hwm_before
        );
        // The bystander is still served, and nothing stored changed.
        let seq = put_small(port, "after").await;
        assert_eq!(changes_until(&mut watcher, seq).await, 1);
        let big = http(port, "GET", "/v1/docs/c/big", &[], "").await;
        assert_eq!(big.json()["version"], json!(1));
    });
}

/// Counts pipelined by the attacker of the fairness test.
const COUNTS: usize = 60;

#[test]
fn a_pipeline_of_expensive_counts_holds_another_connections_commit_back_for_a_group_or_two() {
    let Some(_serial) = e2e() else { return };
    live::run(TEST_LIMIT, async {
        let server = WranglerDev::start("flow-fair");
        let port = server.port;
        for chunk in 0..10 {
            let writes: Vec<Value> = (chunk * 500..(chunk + 1) * 500)
                .map(|i| json!({"op": "set", "id": format!("d{i:05}"), "data": {"i": i, "n": 5}}))
                .collect();
            let body = json!({"collection": "c", "writes": writes}).to_string();
            let commit = http(port, "POST", "/v1/commit", &[], &body).await;
            assert_eq!(commit.status, 200, "{}", commit.body);
        }
        // Each count reads every one of the 5,000 documents (or twice as
        // many index entries): an `or` of two members matching all.
        let every = json!({"or": [{"field": "i", "op": ">=", "value": 0},
                                  {"field": "n", "op": "==", "value": 5}]});
        let mut attacker = Acking::open(port, "c").await;
        let mut bystander = Ws::open(port, "c").await;
        for rid in 1..=COUNTS {
            let count = json!({"type": "count", "rid": rid,
                               "query": {"collection": "c", "where": every}});
            attacker.ws.send_json(&count).await;
        }
        let first = attacker.next().await;
        assert_eq!(first["count"], 5000, "{first}");
        // Once the attacker's answers flow, the bystander adds a document
        // every count matches: the counts handled before it say 5,000.
        let started = Instant::now();
        let add = json!({"type": "commit", "collection": "c",
                         "writes": [{"op": "set", "id": "late", "data": {"i": 1_000_000}}]});
        let committed = bystander.request(add, &mut Vec::new()).await;
        assert_eq!(committed["type"], "committed", "{committed}");
        let took = started.elapsed();
        let mut before = 0;
        for rid in 2..=COUNTS as u64 {
            let answer = attacker.next().await;
            assert_eq!(answer["rid"].as_u64(), Some(rid), "{answer}");
            match answer["count"].as_u64() {
                Some(5000) => before += 1,
                Some(5001) => {}
                other => panic!("count {other:?}"),
            }
        }
        println!(
            "{COUNTS} pipelined counts over 5,000 documents; the bystander's commit answered in {took:?}, after {before} of the {} counts still waiting",
            COUNTS - 1
        );
        assert!(
            before < (COUNTS - 1) / 2,
            "the commit waited for {before} counts"
        );
    });
}
