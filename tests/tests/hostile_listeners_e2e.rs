//! Hostile listeners against the real worker under `wrangler dev` (issue 13,
//! findings 1 and 6): an attacker's hundreds of distinct listens over a few
//! 256 KB documents share their bodies, so the worker's memory stays bounded;
//! listens that would hold distinct bodies past a connection's share of the
//! memory budget are refused with `resource_exhausted`; and 1,000 distinct
//! non-indexable listeners leave a bystander's commits fast. In both, a
//! bystander on the same collection keeps its listener and its answers, and
//! nothing stored changes but what the bystander wrote.
//! `scripts/build-worker.sh` must have built the worker.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use blaze_auth::mint;

use blaze_tests::live::{self, e2e, http, workerd_memory, Incoming, WranglerDev, Ws};
use serde_json::{json, Value};

/// The longest the test may take, start of `wrangler dev` included.
const TEST_LIMIT: Duration = Duration::from_secs(300);

/// The bound on the worker's resident memory during the attack.
const RSS_BOUND_KIB: u64 = 256 * 1024;

#[test]
fn hostile_listeners_are_bounded_and_bystanders_keep_working() {
    let Some(_serial) = e2e() else { return };
    live::run(TEST_LIMIT, async {
        let server = WranglerDev::start("hostile-listeners");
        distinct_listens_over_big_documents(server.port).await;
        distinct_bodies_past_the_share(server.port).await;
        non_indexable_listeners_leave_commits_fast(server.port).await;
    });
}

/// The most connections of one collection in `connections_past_the_most`'s worker.
const MAX_CONNECTIONS: usize = 8;

#[test]
fn connections_past_the_most_are_refused_and_bystanders_keep_working() {
    let Some(_serial) = e2e() else { return };
    live::run(TEST_LIMIT, async {
        let most = format!("BLAZE_MAX_CONNECTIONS:{MAX_CONNECTIONS}");
        let server = WranglerDev::start_with_vars("hostile-connections", &[&most]);
        connections_past_the_most(server.port).await;
    });
}

/// Tells the server the client read the first `frames` frames of `ws`
/// (welcome included), as a prompt reader does (spec 10.4.6).
async fn ack(ws: &mut Ws, frames: u64) {
    ws.send_json(&json!({"type": "ack", "frames": frames}))
        .await;
}

/// A `listen` request for `query` on `ws`; returns the answer to it,
/// dropping any other frame that arrives first.
async fn listen(ws: &mut Ws, query: Value) -> Value {
    ws.request(json!({"type": "listen", "query": query}), &mut Vec::new())
        .await
}

/// What a commit on `ws` got: the time from send to its answer, and the frames that came before the answer (the writer's own listeners
/// hear a write just before its acknowledgement).
struct Committed {
    took: Duration,
    before: Vec<Value>,
}

/// A commit of `writes` on `ws`.
async fn commit(ws: &mut Ws, collection: &str, writes: Value) -> Committed {
    let started = Instant::now();
    let frame = json!({"type": "commit", "collection": collection, "writes": writes});
    let mut before = Vec::new();
    let answer = ws.request(frame, &mut before).await;
    assert_eq!(answer["type"], "committed", "{answer}");
    Committed {
        took: started.elapsed(),
        before,
    }
}

/// The `change` frame the writer of `committed` heard.
async fn own_change(ws: &mut Ws, committed: &Committed) -> Value {
    let frame = match committed.before.iter().find(|f| f["type"] == "change") {
        Some(change) => change.clone(),
        None => ws.recv().await,
    };
    assert_eq!(frame["type"], "change", "{frame}");
    frame
}

/// The next `change` frame on `ws`, skipping nothing else.
async fn expect_change(ws: &mut Ws) -> Value {
    let frame = ws.recv().await;
    assert_eq!(frame["type"], "change", "{frame}");
    frame
}

fn rss(port: u16) -> live::Rss {
    workerd_memory(port).expect("the workerd process of this wrangler dev")
}

/// Finding 1: distinct listens (different filter values) over four 256 KB
/// documents, from many connections.
async fn distinct_listens_over_big_documents(port: u16) {
    const COLLECTION: &str = "hostile_big";
    const CONNECTIONS: u64 = 40;
    const LISTENS: u64 = 12;
    let blob = "x".repeat(256 * 1024 - 64);
    for i in 0..4 {
        let path = format!("/v1/docs/{COLLECTION}/big{i}");
        let body = json!({"n": i, "blob": blob}).to_string();
        let put = http(port, "PUT", &path, &[], &body).await;
        assert_eq!(put.status, 200, "{}", put.body);
    }
    let mut bystander = Ws::open(port, COLLECTION).await;
    let all = listen(&mut bystander, json!({"collection": COLLECTION})).await;
    assert_eq!(all["type"], "snapshot", "{all}");
    assert_eq!(all["docs"].as_array().map(Vec::len), Some(4));
    let idle = rss(port);

    let (mut accepted, mut refused) = (0u64, 0u64);
    let mut attackers = Vec::new();
    for k in 0..CONNECTIONS {
        let mut ws = Ws::open(port, COLLECTION).await;
        for j in 0..LISTENS {
            let value = 10_000 + k * 100 + j;
            let query = json!({"collection": COLLECTION,
                "where": {"field": "n", "op": "!=", "value": value}});
            let answer = listen(&mut ws, query).await;
            ack(&mut ws, j + 2).await;
            match answer["type"].as_str() {
                Some("snapshot") => accepted += 1,
                Some("error") => {
                    assert_eq!(answer["error"]["code"], "resource_exhausted", "{answer}");
                    refused += 1;
                }
                _ => panic!("a snapshot or an error: {answer}"),
            }
        }
        attackers.push(ws);
    }
    let attacked = rss(port);
    println!(
        "finding 1: {accepted} distinct listens accepted, {refused} refused; workerd RSS {} MiB idle, {} MiB after, peak {} MiB",
        idle.now_kib / 1024,
        attacked.now_kib / 1024,
        attacked.peak_kib / 1024
    );
    assert_eq!(
        (accepted, refused),
        (CONNECTIONS * LISTENS, 0),
        "listeners share the four bodies: each connection holds 1 MB of them however many of its listeners do"
    );
    assert!(
        attacked.now_kib < RSS_BOUND_KIB,
        "workerd holds {} KiB after the attack",
        attacked.now_kib
    );

    // The bystander writes and hears its write; so does an attacker.
    let patch = json!([{"op": "patch", "id": "big0",
        "patch": [{"op": "replace", "path": "/n", "value": 7}]}]);
    let committed = commit(&mut bystander, COLLECTION, patch).await;
    let change = own_change(&mut bystander, &committed).await;
    assert_eq!(change["changes"][0]["path"], format!("{COLLECTION}/big0"));
    let heard = expect_change(&mut attackers[0]).await;
    assert_eq!(heard["changes"][0]["path"], format!("{COLLECTION}/big0"));

    // Nothing stored changed but the bystander's write.
    for i in 0..4 {
        let got = http(
            port,
            "GET",
            &format!("/v1/docs/{COLLECTION}/big{i}"),
            &[],
            "",
        )
        .await;
        assert_eq!(got.status, 200, "{}", got.body);
        let doc = got.json();
        let (n, version) = if i == 0 { (7, 2) } else { (i, 1) };
        assert_eq!(doc["data"]["n"], n, "big{i}");
        assert_eq!(doc["data"]["blob"].as_str().map(str::len), Some(blob.len()));
        assert_eq!(doc["version"].as_u64().map(|v| v >= version), Some(true));
    }
    for ws in attackers {
        ws.close().await;
    }
    bystander.close().await;
}

/// Finding 1, with distinct bodies: one connection listens to one ~900 KB
/// document after another; past its share (8 MiB) of the memory budget the
/// listens are refused, the connection keeps working, and a bystander on the
/// same collection is not disturbed.
async fn distinct_bodies_past_the_share(port: u16) {
    const COLLECTION: &str = "hostile_distinct";
    const DOCS: u64 = 12;
    let blob = "y".repeat(900 * 1024);
    for i in 0..DOCS {
        let path = format!("/v1/docs/{COLLECTION}/d{i}");
        let body = json!({"n": i, "blob": blob}).to_string();
        let put = http(port, "PUT", &path, &[], &body).await;
        assert_eq!(put.status, 200, "{}", put.body);
    }
    let mut bystander = Ws::open(port, COLLECTION).await;
    let first = json!({"collection": COLLECTION, "where": {"field": "n", "op": "==", "value": 0}});
    let answer = listen(&mut bystander, first).await;
    assert_eq!(answer["type"], "snapshot", "{answer}");

    let mut attacker = Ws::open(port, COLLECTION).await;
    let mut outcomes = Vec::new();
    for i in 0..DOCS {
        let query =
            json!({"collection": COLLECTION, "where": {"field": "n", "op": "==", "value": i}});
        let answer = listen(&mut attacker, query).await;
        ack(&mut attacker, i + 2).await;
        outcomes.push(answer["type"].as_str().unwrap_or("?").to_owned());
        if answer["type"] == "error" {
            assert_eq!(answer["error"]["code"], "resource_exhausted", "{answer}");
        }
    }
    let accepted = outcomes.iter().filter(|o| *o == "snapshot").count();
    println!("distinct bodies: {accepted} of {DOCS} listens of ~900 KB bodies accepted on one connection");
    assert!(
        (8..DOCS as usize).contains(&accepted)
            && outcomes[..accepted].iter().all(|o| o == "snapshot"),
        "about 8 MiB of distinct bodies fit in the connection's share, then every listen is refused: {outcomes:?}"
    );

    // A refused connection keeps working: it can unlisten and listen again.
    let rid = attacker.rid();
    attacker
        .send_json(&json!({"type": "unlisten", "rid": rid, "listener": 1}))
        .await;
    let unlistened = attacker.recv().await;
    assert_eq!(unlistened["rid"], rid, "{unlistened}");
    assert_ne!(unlistened["type"], "error", "{unlistened}");
    let last =
        json!({"collection": COLLECTION, "where": {"field": "n", "op": "==", "value": DOCS - 1}});
    let again = listen(&mut attacker, last).await;
    assert_eq!(
        again["type"], "snapshot",
        "room again after an unlisten: {again}"
    );

    // The bystander writes and hears its write.
    let patch = json!([{"op": "patch", "id": "d0",
        "patch": [{"op": "replace", "path": "/n", "value": 100}]}]);
    let committed = commit(&mut bystander, COLLECTION, patch).await;
    let change = own_change(&mut bystander, &committed).await;
    assert_eq!(change["changes"][0]["path"], format!("{COLLECTION}/d0"));
    attacker.close().await;
    bystander.close().await;
}

/// Finding 6: 1,000 distinct listeners on `n != i` with `limit i`, which no
/// index answers, then a bystander's commit round trip.
async fn non_indexable_listeners_leave_commits_fast(port: u16) {
    const COLLECTION: &str = "hostile_ne";
    const DOCS: u64 = 300;
    const CONNECTIONS: u64 = 10;
    const PER_CONNECTION: u64 = 100;
    let mut bystander = Ws::open(port, COLLECTION).await;
    let writes: Vec<Value> = (0..DOCS)
        .map(|i| json!({"op": "set", "id": format!("d{i:04}"), "data": {"n": i}}))
        .collect();
    commit(&mut bystander, COLLECTION, json!(writes)).await;
    let mine = listen(
        &mut bystander,
        json!({"collection": COLLECTION, "where": {"field": "n", "op": "==", "value": 5}}),
    )
    .await;
    assert_eq!(mine["type"], "snapshot", "{mine}");
    let edit = |v: u64| json!([{"op": "set", "id": "d0005", "data": {"n": 5, "v": v}}]);
    let mut quiet = Duration::MAX;
    for v in 0..5 {
        let committed = commit(&mut bystander, COLLECTION, edit(v)).await;
        own_change(&mut bystander, &committed).await;
        quiet = quiet.min(committed.took);
    }

    let mut attackers = Vec::new();
    for k in 0..CONNECTIONS {
        let mut ws = Ws::open(port, COLLECTION).await;
        for j in 1..=PER_CONNECTION {
            let i = k * PER_CONNECTION + j;
            let query = json!({"collection": COLLECTION, "limit": i,
                "where": {"field": "n", "op": "!=", "value": i}});
            let answer = listen(&mut ws, query).await;
            assert_eq!(answer["type"], "snapshot", "{answer}");
        }
        attackers.push(ws);
    }
    let mut loaded = Duration::MAX;
    for v in 5..10 {
        let committed = commit(&mut bystander, COLLECTION, edit(v)).await;
        own_change(&mut bystander, &committed).await;
        loaded = loaded.min(committed.took);
    }
    println!(
        "finding 6: bystander commit round trip {:.1} ms with no other listener, {:.1} ms with {} distinct non-indexable listeners (best of 5)",
        quiet.as_secs_f64() * 1e3,
        loaded.as_secs_f64() * 1e3,
        CONNECTIONS * PER_CONNECTION
    );
    assert!(
        loaded < Duration::from_secs(2),
        "a commit takes {loaded:?} with 1,000 listeners"
    );
    // The attackers' listeners heard the edits too (d0005 is in every window past 5).
    let heard = expect_change(&mut attackers[CONNECTIONS as usize - 1]).await;
    assert_eq!(heard["changes"][0]["path"], format!("{COLLECTION}/d0005"));
    for ws in attackers {
        ws.close().await;
    }
    bystander.close().await;
}

/// Connections an attacker opens and never says hello on: past the most one
/// collection keeps open, an upgrade is refused 429 `resource_exhausted`
/// before a socket opens; the bystander keeps its listener and its writes,
/// another collection and HTTP are not affected, a closed connection frees
/// its place, and the silent ones are closed after 10 s, which frees theirs;
/// one user past an eighth of the places is refused at `hello`, and so is
/// one client network past an eighth of them in connections that do not
/// sign in, before a socket opens. Each client comes from a network of its
/// own (`CF-Connecting-IP`, which `wrangler dev` passes on) unless it says.
async fn connections_past_the_most(port: u16) {
    const COLLECTION: &str = "hostile_sockets";
    let net = |k: usize| format!("198.51.100.{k}");
    let mut bystander = Ws::open_from(port, COLLECTION, Some(&net(1))).await;
    let answer = listen(&mut bystander, json!({"collection": COLLECTION})).await;
    assert_eq!(answer["type"], "snapshot", "{answer}");
    let mut attackers = Vec::new();
    for k in 1..MAX_CONNECTIONS {
        let from = format!("203.0.113.{k}");
        attackers.push(Ws::raw_from(port, COLLECTION, Some(&from)).await);
    }
    // Refused to the client library and to a plain HTTP upgrade alike,
    // which reads the error body.
    for k in 20..22 {
        let refused = Ws::try_raw(port, COLLECTION, Some(&net(k))).await.err();
        assert_eq!(refused, Some(429), "a connection past {MAX_CONNECTIONS}");
    }
    let upgrade = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Sec-WebSocket-Version", "13"),
    ];
    let path = format!("/v1/ws/{COLLECTION}");
    let refused = http(port, "GET", &path, &upgrade, "").await;
    assert_eq!(
        (refused.status, refused.code().as_deref()),
        (429, Some("resource_exhausted")),
        "{}",
        refused.body
    );

    // The bystander writes and hears its write; HTTP reads it.
    let set = json!([{"op": "set", "id": "b1", "data": {"by": "bystander"}}]);
    let committed = commit(&mut bystander, COLLECTION, set).await;
    let change = own_change(&mut bystander, &committed).await;
    let added = &change["changes"][0];
    assert_eq!(added["type"], "added", "{change}");
    assert_eq!(added["doc"]["path"], format!("{COLLECTION}/b1"), "{change}");
    let got = http(port, "GET", &format!("/v1/docs/{COLLECTION}/b1"), &[], "").await;
    assert_eq!(got.status, 200, "{}", got.body);
    assert_eq!(got.json()["data"], json!({"by": "bystander"}));
    // The bound is one collection's: another collection opens as usual.
    Ws::open(port, "hostile_sockets_other").await.close().await;

    // A closed connection frees its place (the close reaches the object
    // shortly after the client sees it).
    attackers.pop().expect("an attacker").close_and_wait().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut newcomer = loop {
        match Ws::try_raw(port, COLLECTION, Some(&net(2))).await {
            Ok(ws) => break ws,
            Err(429) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(status) => panic!("the freed place is not given: {status}"),
        }
    };
    newcomer
        .send_json(&json!({"type": "hello", "protocol": 1}))
        .await;
    assert_eq!(newcomer.recv().await["type"], "welcome");
    let query = json!({"collection": COLLECTION}).to_string();
    let listing = http(port, "POST", "/v1/query", &[], &query).await;
    assert_eq!(listing.status, 200, "{}", listing.body);
    let docs = listing.json()["docs"].as_array().map(Vec::len);
    assert_eq!(
        docs,
        Some(1),
        "nothing stored but the bystander's write: {}",
        listing.body
    );

    // The silent sockets are closed 10 s after they opened (4002
    // `handshake_required`), which frees their places.
    for mut ws in attackers {
        let error = ws.next_incoming(Duration::from_secs(20)).await;
        let Some(Incoming::Text(error)) = error else {
            panic!("an error frame first: {error:?}");
        };
        let error: Value = serde_json::from_str(&error).expect("JSON");
        assert_eq!(error["error"]["code"], "handshake_required", "{error}");
        let closed = ws.next_incoming(Duration::from_secs(5)).await;
        assert!(
            matches!(closed, Some(Incoming::Closed { code: 4002, .. })),
            "{closed:?}"
        );
    }
    let mut joined = Vec::new();
    for k in 2..MAX_CONNECTIONS {
        joined.push(Ws::open_from(port, COLLECTION, Some(&net(10 + k))).await);
    }
    // The bystander still hears writes, now from a newcomer.
    let set = json!([{"op": "set", "id": "b2", "data": {"by": "newcomer"}}]);
    commit(&mut newcomer, COLLECTION, set).await;
    let heard = expect_change(&mut bystander).await;
    assert_eq!(
        heard["changes"][0]["doc"]["path"],
        format!("{COLLECTION}/b2")
    );
    for ws in joined {
        ws.close_and_wait().await;
    }

    // A user past an eighth of the places (here one) is refused at `hello`;
    // her open connection and other users are not affected.
    let mut first = signed_in(port, COLLECTION, "mallory").await;
    assert_eq!(first.recv().await["type"], "welcome");
    let mut second = signed_in(port, COLLECTION, "mallory").await;
    let refused = second.recv().await;
    assert_eq!(refused["error"]["code"], "resource_exhausted", "{refused}");
    let closed = second.next_incoming(Duration::from_secs(5)).await;
    assert!(
        matches!(closed, Some(Incoming::Closed { code: 4002, .. })),
        "{closed:?}"
    );
    let mut alice = signed_in(port, COLLECTION, "alice").await;
    assert_eq!(alice.recv().await["type"], "welcome");

    // One network past an eighth of the places (here one) in connections
    // that do not sign in is refused before a socket opens, to the client
    // library and to a plain upgrade alike; other networks are not, and an
    // IPv6 client's whole /64 is one network.
    let attacker = "203.0.113.99";
    let mut silent = Ws::raw_from(port, COLLECTION, Some(attacker)).await;
    let refused = Ws::try_raw(port, COLLECTION, Some(attacker)).await.err();
    assert_eq!(refused, Some(429), "a second socket from {attacker}");
    let from = [upgrade.as_slice(), &[("CF-Connecting-IP", attacker)]].concat();
    let refused = http(port, "GET", &path, &from, "").await;
    assert_eq!(
        (refused.status, refused.code().as_deref()),
        (429, Some("resource_exhausted")),
        "{}",
        refused.body
    );
    let v6 = Ws::raw_from(port, COLLECTION, Some("2001:db8:0:1::1")).await;
    let refused = Ws::try_raw(port, COLLECTION, Some("2001:db8:0:1:ffff::2")).await;
    assert_eq!(refused.err(), Some(429), "the same /64");
    // Signing in leaves the network's count: its next socket opens.
    silent
        .send_json(&json!({"type": "hello", "protocol": 1, "auth": dev_token("bob")}))
        .await;
    assert_eq!(silent.recv().await["type"], "welcome");
    let again = Ws::raw_from(port, COLLECTION, Some(attacker)).await;

    // Through all of it the bystander hears writes, and mallory's first
    // connection still commits.
    let set = json!([{"op": "set", "id": "m1", "data": {"by": "mallory"}}]);
    commit(&mut first, COLLECTION, set).await;
    let heard = expect_change(&mut bystander).await;
    assert_eq!(
        heard["changes"][0]["doc"]["path"],
        format!("{COLLECTION}/m1")
    );
    for ws in [first, alice, newcomer, bystander, silent, v6, again] {
        ws.close().await;
    }
}

/// A connection to `collection` that says `hello` with a development token
/// of `uid` (its `welcome` or refusal not read).
async fn signed_in(port: u16, collection: &str, uid: &str) -> Ws {
    let mut ws = Ws::raw(port, collection).await;
    ws.send_json(&json!({"type": "hello", "protocol": 1, "auth": dev_token(uid)}))
        .await;
    ws
}

/// A development token of `uid`, valid for an hour.
fn dev_token(uid: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let claims =
        json!({"iss": "blaze-dev", "aud": "blaze", "sub": uid, "iat": now, "exp": now + 3600});
    mint::hs256(b"blaze-dev-secret-not-for-production", &claims)
}
