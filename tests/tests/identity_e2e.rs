//! Identity end to end (spec 13), against the real worker under `wrangler
//! dev` configured with the local development identity (HS256 secret, admin
//! key), an inline JWKS issuer, a `jwks_url` issuer served by a small HTTP
//! server on 127.0.0.1 inside this test, and an issuer whose URL is down:
//! each credential kind over HTTP and WebSocket, each rejection class,
//! JWKS rotation, a token expiring during a live listen, in-band refresh,
//! and a storm of invalid connections beside a valid listener.
//!
//! One `wrangler dev` for the whole binary: the scenarios run in one test,
//! in order. The verifier refetches a JWKS at most once a minute, so the
//! rotation's second half runs a minute after its first fetch, once the
//! other scenarios are done.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use blaze_auth::mint;
use blaze_tests::live::{self, apply_changes, e2e, http, Answer, Incoming, WranglerDev, Ws};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The development identity of `scripts/run.sh` (issue 14's contract).
const SECRET: &str = "blaze-dev-secret-not-for-production";
const ADMIN_KEY: &str = "blaze-dev-admin-key";

/// The whole binary's time limit, `wrangler dev`'s start and the minute of
/// the JWKS refetch interval included.
const RUN_LIMIT: Duration = Duration::from_secs(240);

/// How long to wait for one frame.
const WAIT: Duration = Duration::from_secs(10);

/// The verifier's refetch interval for a JWKS URL, plus a margin.
const REFETCH_AFTER: Duration = Duration::from_secs(62);

fn unix_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64
}

/// Claims for `uid` from `iss`, valid for `ttl` seconds from now.
fn claims(iss: &str, uid: &str, ttl: i64) -> Value {
    let now = unix_secs();
    json!({"iss": iss, "aud": "blaze", "sub": uid, "iat": now, "exp": now + ttl})
}

/// A development HS256 token for `uid`, valid for `ttl` seconds.
fn hs(uid: &str, ttl: i64) -> String {
    mint::hs256(SECRET.as_bytes(), &claims("blaze-dev", uid, ttl))
}

/// A token for `uid` of issuer `iss`, signed by `key`, valid for an hour.
fn signed(key: &Value, iss: &str, uid: &str) -> String {
    mint::sign(key, &claims(iss, uid, 3600)).expect("the key signs")
}

/// A key pair for `alg` under the key id `kid`.
fn key_pair(alg: &str, kid: &str) -> (Value, Value) {
    let (mut private, mut public) = mint::generate(alg);
    private["kid"] = json!(kid);
    public["kid"] = json!(kid);
    (private, public)
}

/// A JWKS served over HTTP on 127.0.0.1, replaceable at any time, counting
/// its fetches; stopped (connections refused) by [`JwksServer::stop`] or drop.
struct JwksServer {
    keys: Arc<Mutex<String>>,
    fetches: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl JwksServer {
    fn start(listener: std::net::TcpListener, keys: &[&Value]) -> Self {
        listener.set_nonblocking(true).expect("non-blocking");
        let listener = TcpListener::from_std(listener).expect("a tokio listener");
        let served = Arc::new(Mutex::new(String::new()));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (body, count) = (served.clone(), fetches.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let body = body.lock().unwrap().clone();
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(answer.as_bytes()).await;
                });
            }
        });
        let server = Self {
            keys: served,
            fetches,
            task,
        };
        server.serve(keys);
        server
    }

    /// Serves `keys` from now on.
    fn serve(&self, keys: &[&Value]) {
        *self.keys.lock().unwrap() = json!({ "keys": keys }).to_string();
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    /// Stops listening: fetches are refused from now on.
    fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    listener.local_addr().expect("an address").port()
}

/// Every key the test uses, and the worker's identity configuration.
struct Keys {
    /// Inline issuer `blaze-inline`: two Ed25519 keys (so a token without
    /// `kid` is ambiguous) and a P-256 key.
    ed: Value,
    ed2: Value,
    es: Value,
    /// `jwks_url` issuer `blaze-remote`: `r1` (RS256) first, then `r2` (ES256) too.
    r1: Value,
    r1_public: Value,
    r2: Value,
    r2_public: Value,
    /// Listed nowhere.
    stranger: Value,
}

impl Keys {
    fn new() -> Self {
        let (ed, _) = key_pair("EdDSA", "ed1");
        let (ed2, _) = key_pair("EdDSA", "ed2");
        let (es, _) = key_pair("ES256", "es1");
        let (r1, r1_public) = key_pair("RS256", "r1");
        let (r2, r2_public) = key_pair("ES256", "r2");
        let (stranger, _) = key_pair("ES256", "r9");
        Self {
            ed,
            ed2,
            es,
            r1,
            r1_public,
            r2,
            r2_public,
            stranger,
        }
    }

    /// `BLAZE_AUTH`: leeway 0, so expiries in this test are the tokens' own.
    fn config(&self, jwks_port: u16, down_port: u16) -> String {
        let inline: Vec<Value> = [&self.ed, &self.ed2, &self.es]
            .into_iter()
            .map(mint::public_jwk)
            .collect();
        json!({
            "leeway_secs": 0,
            "issuers": [
                {"issuer": "blaze-inline", "audience": "blaze", "jwks": {"keys": inline}},
                {"issuer": "blaze-remote", "audience": "blaze",
                 "jwks_url": format!("http://127.0.0.1:{jwks_port}/jwks")},
                {"issuer": "blaze-down", "audience": "blaze",
                 "jwks_url": format!("http://127.0.0.1:{down_port}/jwks")},
            ],
            "hs256": {"issuer": "blaze-dev", "audience": "blaze"},
        })
        .to_string()
    }
}

fn bearer(credential: &str) -> String {
    format!("Bearer {credential}")
}

async fn get_doc(port: u16, path: &str, credential: Option<&str>) -> Answer {
    let auth = credential.map(bearer);
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    http(port, "GET", &format!("/v1/docs/{path}"), &headers, "").await
}

async fn put_doc(port: u16, path: &str, credential: Option<&str>) -> Answer {
    let auth = credential.map(bearer);
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    http(
        port,
        "PUT",
        &format!("/v1/docs/{path}"),
        &headers,
        r#"{"n":1}"#,
    )
    .await
}

/// Commits `{"n": n}` to `collection/id` as the admin; returns its seq.
async fn commit(port: u16, collection: &str, id: &str, n: u64) -> u64 {
    commit_timed(port, collection, id, n).await.0
}

/// [`commit`], returning its seq and its time (the server's clock).
async fn commit_timed(port: u16, collection: &str, id: &str, n: u64) -> (u64, u64) {
    let body =
        json!({"collection": collection, "writes": [{"op": "set", "id": id, "data": {"n": n}}]});
    let auth = bearer(ADMIN_KEY);
    let answer = http(
        port,
        "POST",
        "/v1/commit",
        &[("Authorization", &auth)],
        &body.to_string(),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let committed = answer.json();
    (
        committed["seq"].as_u64().expect("a seq"),
        committed["time"].as_u64().expect("a time"),
    )
}

/// The admin's view of every document of `collection`, in id order.
async fn contents(port: u16, collection: &str) -> Value {
    let auth = bearer(ADMIN_KEY);
    let body = json!({"collection": collection}).to_string();
    let answer = http(
        port,
        "POST",
        "/v1/query",
        &[("Authorization", &auth)],
        &body,
    )
    .await;
    answer.json()["docs"].clone()
}

fn hello(credential: Option<&str>) -> Value {
    match credential {
        Some(c) => json!({"type": "hello", "protocol": 1, "auth": c}),
        None => json!({"type": "hello", "protocol": 1}),
    }
}

/// Connects to `collection` with `credential` and returns the socket and its welcome.
async fn connect(port: u16, collection: &str, credential: Option<&str>) -> (Ws, Value) {
    let mut ws = Ws::raw(port, collection).await;
    ws.send_json(&hello(credential)).await;
    let welcome = ws.recv().await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    (ws, welcome)
}

/// The rest of a connection refused at `hello`: its frames, then its close.
async fn refusal(ws: &mut Ws) -> (Vec<Value>, Option<(u16, String)>) {
    let mut frames = Vec::new();
    while let Some(incoming) = ws.next_incoming(WAIT).await {
        match incoming {
            Incoming::Text(text) => frames.push(serde_json::from_str(&text).expect("JSON")),
            Incoming::Closed { code, reason } => return (frames, Some((code, reason))),
        }
    }
    (frames, None)
}

/// Checks that `credential` is refused over HTTP (401, nothing written) and
/// at `hello` (error and close 4001, a pipelined commit not applied).
async fn assert_refused(port: u16, name: &str, credential: &str) {
    let answer = put_doc(port, &format!("refused/{name}"), Some(credential)).await;
    assert_eq!(
        (answer.status, answer.code().as_deref()),
        (401, Some("unauthenticated")),
        "{name} over HTTP: {}",
        answer.body
    );
    assert_eq!(answer.header("www-authenticate"), Some("Bearer"), "{name}");
    if credential.is_empty() {
        return; // an empty `hello.auth` is a credential, not its absence
    }
    assert!(
        !answer.body.contains(credential),
        "{name}: the token is echoed"
    );
    let mut ws = Ws::raw(port, "refused").await;
    ws.send_json(&hello(Some(credential))).await;
    let write = json!({"type": "commit", "rid": 1, "collection": "refused",
                       "writes": [{"op": "set", "id": format!("ws-{name}"), "data": {}}]});
    ws.send_json(&write).await;
    let (frames, closed) = refusal(&mut ws).await;
    let codes: Vec<&str> = frames
        .iter()
        .map(|f| f["error"]["code"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(codes, ["unauthenticated"], "{name} at hello: {frames:?}");
    assert_eq!(
        closed,
        Some((4001, "unauthenticated".to_owned())),
        "{name} at hello"
    );
}

#[test]
fn identity_end_to_end() {
    let Some(_serial) = e2e() else { return };
    let keys = Keys::new();
    let jwks_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let jwks_port = jwks_listener.local_addr().expect("an address").port();
    let config = keys.config(jwks_port, closed_port());
    let vars = [
        format!("BLAZE_AUTH:{config}"),
        format!("BLAZE_HS256_SECRET:{SECRET}"),
        format!("BLAZE_ADMIN_KEYS:other-admin-key,{ADMIN_KEY}"),
    ];
    live::run(RUN_LIMIT, async move {
        let jwks = JwksServer::start(jwks_listener, &[&keys.r1_public]);
        let vars: Vec<&str> = vars.iter().map(String::as_str).collect();
        let server = WranglerDev::start_with_vars("identity", &vars);
        let port = server.port;

        // The remote issuer's keys are fetched on first use.
        let remote = signed(&keys.r1, "blaze-remote", "rita");
        let answer = put_doc(port, "kinds/remote-first", Some(&remote)).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let first_fetch = Instant::now();
        assert_eq!(jwks.fetches(), 1);

        credential_kinds(port, &keys).await;
        rejection_classes(port, &keys).await;
        expiry_during_a_listen(port).await;
        refresh_in_band(port).await;
        refused_refreshes_close_the_connection(port).await;
        invalid_storm(port, &keys).await;
        rotation(port, &keys, &jwks, first_fetch).await;
        drop(server);
    });
}

/// Each credential kind reads and writes over HTTP, and opens a WebSocket
/// whose `welcome` names it.
async fn credential_kinds(port: u16, keys: &Keys) {
    // (name, credential, identity kind, uid)
    let kinds = [
        ("anonymous", None, "anonymous", None),
        ("admin", Some(ADMIN_KEY.to_owned()), "admin", None),
        ("hs256", Some(hs("alice", 3600)), "user", Some("alice")),
        (
            "eddsa",
            Some(signed(&keys.ed, "blaze-inline", "ed")),
            "user",
            Some("ed"),
        ),
        (
            "es256",
            Some(signed(&keys.es, "blaze-inline", "eve")),
            "user",
            Some("eve"),
        ),
        (
            "rs256",
            Some(signed(&keys.r1, "blaze-remote", "rob")),
            "user",
            Some("rob"),
        ),
    ];
    for (name, credential, kind, uid) in kinds {
        let credential = credential.as_deref();
        let path = format!("kinds/{name}");
        let written = put_doc(port, &path, credential).await;
        assert_eq!(written.status, 200, "{name}: {}", written.body);
        let read = get_doc(port, &path, credential).await;
        assert_eq!(read.json()["data"], json!({"n": 1}), "{name}");

        let (mut ws, welcome) = connect(port, "kinds", credential).await;
        match kind {
            "anonymous" => assert!(welcome.get("auth").is_none(), "{welcome}"),
            _ => {
                assert_eq!(welcome["auth"]["kind"], kind, "{welcome}");
                assert_eq!(welcome["auth"]["uid"].as_str(), uid, "{welcome}");
                let expires = welcome["auth"]["expires"].as_u64();
                assert_eq!(expires.is_some(), kind == "user", "{welcome}");
            }
        }
        let got = ws
            .request(json!({"type": "get", "path": path}), &mut Vec::new())
            .await;
        assert_eq!(got["doc"]["data"], json!({"n": 1}), "{name}: {got}");
        ws.close().await;
    }
    let (_, welcome) = connect(port, "kinds", Some(&hs("alice", 3600))).await;
    let exp = welcome["auth"]["expires"].as_u64().unwrap();
    assert!(
        exp.abs_diff(1000 * (unix_secs() as u64 + 3600)) < 5_000,
        "{welcome}"
    );
}

/// Every class of refused credential gets `unauthenticated` and changes nothing.
async fn rejection_classes(port: u16, keys: &Keys) {
    let inline = |claims: Value| mint::sign(&keys.ed, &claims).unwrap();
    let hs_claims = |c: Value| mint::hs256(SECRET.as_bytes(), &c);
    let mut missing_sub = claims("blaze-dev", "x", 3600);
    missing_sub.as_object_mut().unwrap().remove("sub");
    let mut not_yet = claims("blaze-dev", "x", 3600);
    not_yet["nbf"] = json!(unix_secs() + 600);
    let alg_none = {
        let token = mint::hs256_with_header(
            SECRET.as_bytes(),
            &json!({"alg": "none", "typ": "JWT"}),
            &claims("blaze-dev", "x", 3600),
        );
        let mut parts: Vec<&str> = token.split('.').collect();
        parts[2] = "";
        parts.join(".")
    };
    // HS256 MACed with a public key's bytes, naming that key: algorithm confusion.
    let es_public = mint::public_jwk(&keys.es).to_string();
    let confused = mint::hs256_with_header(
        es_public.as_bytes(),
        &json!({"alg": "HS256", "kid": "es1"}),
        &claims("blaze-inline", "x", 3600),
    );
    let mismatched = mint::sign_with_header(
        &keys.es,
        &json!({"alg": "EdDSA", "kid": "es1"}),
        &claims("blaze-inline", "x", 3600),
    )
    .unwrap();
    let no_kid = mint::sign_with_header(
        &keys.ed,
        &json!({"alg": "EdDSA"}),
        &claims("blaze-inline", "x", 3600),
    )
    .unwrap();
    let forged = mint::sign_with_header(
        &keys.stranger,
        &json!({"alg": "ES256", "kid": "es1"}),
        &claims("blaze-inline", "x", 3600),
    )
    .unwrap();
    let cases: Vec<(&str, String)> = vec![
        ("not a key", "not-an-admin-key".into()),
        ("empty bearer", String::new()),
        ("malformed", "a.b.c".into()),
        ("alg none", alg_none),
        (
            "wrong secret",
            mint::hs256(
                b"another-secret-of-at-least-32-bytes!",
                &claims("blaze-dev", "x", 3600),
            ),
        ),
        ("expired", hs("x", -120)),
        ("not yet valid", hs_claims(not_yet)),
        ("wrong issuer", hs_claims(claims("someone-else", "x", 3600))),
        ("wrong audience", {
            let mut c = claims("blaze-dev", "x", 3600);
            c["aud"] = json!("another-app");
            hs_claims(c)
        }),
        ("missing sub", hs_claims(missing_sub)),
        ("unknown kid", signed(&keys.stranger, "blaze-inline", "x")),
        ("forged signature", forged),
        ("alg confusion", confused),
        ("alg and key type mismatch", mismatched),
        ("missing kid among several keys", no_kid),
        (
            "wrong issuer for the key",
            inline(claims("blaze-dev", "x", 3600)),
        ),
        ("jwks url down", signed(&keys.stranger, "blaze-down", "x")),
        (
            "oversized",
            format!(
                "{}.{}.{}",
                "e".repeat(4000),
                "e".repeat(4000),
                "e".repeat(400)
            ),
        ),
    ];
    for (name, credential) in &cases {
        assert_refused(port, &name.replace(' ', "-"), credential).await;
    }
    // Another scheme, or a Bearer without a credential.
    for header in ["Basic YWRtaW46YWRtaW4=", "Bearer", "Bearer "] {
        let answer = http(
            port,
            "GET",
            "/v1/docs/kinds/admin",
            &[("Authorization", header)],
            "",
        )
        .await;
        assert_eq!(answer.status, 401, "{header:?}: {}", answer.body);
    }
    // Nothing was written by any of them.
    assert_eq!(contents(port, "refused").await, json!([]));
}

/// A token that expires during a live listen: no change after its expiry,
/// close 4001 `token_expired`, then a fresh token resumes exactly.
async fn expiry_during_a_listen(port: u16) {
    let collection = "expiring";
    let token = hs("alice", 3);
    let (mut ws, welcome) = connect(port, collection, Some(&token)).await;
    let expires = welcome["auth"]["expires"].as_u64().unwrap();
    let listen = json!({"type": "listen", "query": {"collection": collection}});
    let snapshot = ws.request(listen.clone(), &mut Vec::new()).await;
    let mut view: Vec<Value> = snapshot["docs"].as_array().unwrap().clone();
    let before = commit(port, collection, "a", 1).await;
    let change = ws.recv().await;
    assert_eq!(change["seq"].as_u64(), Some(before), "{change}");
    apply_changes(&mut view, &change["changes"]);

    // Commits until the connection is closed; none after the expiry may reach it.
    let mut seqs = Vec::new();
    let closed = loop {
        seqs.push(commit_timed(port, collection, "b", seqs.len() as u64).await);
        match ws.next_incoming(Duration::from_millis(300)).await {
            Some(Incoming::Text(text)) => {
                let frame: Value = serde_json::from_str(&text).unwrap();
                let seq = frame["seq"].as_u64().unwrap();
                let (_, committed_at) = seqs.iter().find(|(s, _)| *s == seq).unwrap();
                assert!(
                    *committed_at < expires,
                    "a change committed after expiry: {frame}"
                );
                apply_changes(&mut view, &frame["changes"]);
            }
            Some(Incoming::Closed { code, reason }) => break (code, reason),
            None => assert!(now_ms() < expires + 5_000, "not closed 5 s after expiry"),
        }
    };
    assert_eq!(closed, (4001, "token_expired".to_owned()));
    let seen = view_seq(&view);
    let missed = commit(port, collection, "c", 99).await;

    // A fresh token, and the listener resumes from what it saw.
    let (mut again, _) = connect(port, collection, Some(&hs("alice", 3600))).await;
    let mut resume = listen;
    resume["since"] = json!(seen);
    let resumed = again.request(resume, &mut Vec::new()).await;
    assert_eq!(resumed["type"], "resumed", "{resumed}");
    assert_eq!(resumed["seq"].as_u64(), Some(missed));
    apply_changes(&mut view, &resumed["changes"]);
    assert_eq!(Value::Array(view), contents(port, collection).await);
    again.close().await;
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as u64
}

/// The highest version in a result list: the last seq its listener saw
/// (every commit of these tests writes a listed document).
fn view_seq(view: &[Value]) -> u64 {
    view.iter()
        .filter_map(|d| d["version"].as_u64())
        .max()
        .unwrap_or(0)
}

/// An `auth` before expiry keeps the connection past its first token's
/// expiry with every change delivered; an `auth` for another user is refused.
async fn refresh_in_band(port: u16) {
    let collection = "refreshing";
    let (mut ws, welcome) = connect(port, collection, Some(&hs("bob", 3))).await;
    let first_expiry = welcome["auth"]["expires"].as_u64().unwrap();
    let listen = json!({"type": "listen", "query": {"collection": collection}});
    ws.request(listen, &mut Vec::new()).await;
    let committer = tokio::spawn(async move {
        let mut seqs = Vec::new();
        for n in 0..30 {
            seqs.push(commit(port, collection, &format!("d{}", n % 5), n).await);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        seqs
    });
    let mut changes = Vec::new();
    let other = ws
        .request(
            json!({"type": "auth", "auth": hs("carol", 3600)}),
            &mut changes,
        )
        .await;
    assert_eq!(other["error"]["code"], "unauthenticated", "{other}");
    let fresh = ws
        .request(
            json!({"type": "auth", "auth": hs("bob", 3600)}),
            &mut changes,
        )
        .await;
    assert_eq!(fresh["type"], "authenticated", "{fresh}");
    assert_eq!(fresh["auth"]["uid"], "bob");
    assert!(fresh["auth"]["expires"].as_u64() > Some(first_expiry + 3_000));
    let seqs = committer.await.expect("the committer");
    assert!(
        now_ms() > first_expiry + 1_000,
        "the first token expired meanwhile"
    );
    let last = *seqs.last().unwrap();
    while changes.last().and_then(|c: &Value| c["seq"].as_u64()) != Some(last) {
        changes.push(ws.recv().await);
    }
    let got: Vec<u64> = changes.iter().filter_map(|c| c["seq"].as_u64()).collect();
    assert_eq!(got, seqs, "every change, in order, across the refresh");
    ws.close().await;
}

/// A connection that keeps sending forged tokens in `auth` (each could cost
/// a signature check) is closed at the fourth refusal in a row; a bystander
/// on the same collection keeps its listener.
async fn refused_refreshes_close_the_connection(port: u16) {
    let collection = "forger";
    let (mut bystander, _) = connect(port, collection, Some(&hs("bea", 3600))).await;
    let listen = json!({"type": "listen", "query": {"collection": collection}});
    let snapshot = bystander.request(listen, &mut Vec::new()).await;
    assert_eq!(snapshot["type"], "snapshot", "{snapshot}");

    let (mut forger, _) = connect(port, collection, Some(&hs("fred", 3600))).await;
    for n in 1..=3u64 {
        let forged = mint::hs256(
            b"not-the-secret-but-32-bytes-long!!",
            &claims("blaze-dev", "fred", 3600 + n as i64),
        );
        let answer = forger
            .request(json!({"type": "auth", "auth": forged}), &mut Vec::new())
            .await;
        assert_eq!(
            answer["error"]["code"], "unauthenticated",
            "refusal {n}: {answer}"
        );
    }
    let fourth = mint::hs256(
        b"not-the-secret-but-32-bytes-long!!",
        &claims("blaze-dev", "fred", 7200),
    );
    forger
        .send_json(&json!({"type": "auth", "rid": 99, "auth": fourth}))
        .await;
    let (frames, closed) = refusal(&mut forger).await;
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(
        (
            frames[0]["rid"].as_u64(),
            frames[0]["error"]["code"].as_str()
        ),
        (Some(99), Some("unauthenticated"))
    );
    assert_eq!(closed, Some((4001, "unauthenticated".to_owned())));

    // The bystander hears the next commit.
    let seq = commit(port, collection, "after", 1).await;
    let change = bystander.recv().await;
    assert_eq!(change["seq"].as_u64(), Some(seq), "{change}");
    bystander.close().await;
}

/// 1,000 connections with invalid tokens (64 at a time) while a valid
/// listener gets every change; the timing is printed.
async fn invalid_storm(port: u16, keys: &Keys) {
    let collection = "storm";
    let (mut listener, _) = connect(port, collection, Some(&hs("lena", 3600))).await;
    let listen = json!({"type": "listen", "query": {"collection": collection}});
    listener.request(listen, &mut Vec::new()).await;

    // The listener's deliveries with no storm, for comparison.
    let mut quiet = Vec::new();
    for n in 0..10u64 {
        let sent = Instant::now();
        let seq = commit(port, collection, "q", n).await;
        let change = listener.recv().await;
        assert_eq!(change["seq"].as_u64(), Some(seq), "{change}");
        quiet.push(sent.elapsed());
    }
    quiet.sort();

    let started = Instant::now();
    let gate = Arc::new(tokio::sync::Semaphore::new(64));
    let mut attackers = Vec::new();
    for i in 0..1000 {
        let token = match i % 2 {
            0 => mint::hs256(
                b"not-the-secret-but-32-bytes-long!!",
                &claims("blaze-dev", &format!("m{i}"), 3600),
            ),
            _ => mint::sign_with_header(
                &keys.stranger,
                &json!({"alg": "ES256", "kid": "es1"}),
                &claims("blaze-inline", &format!("m{i}"), 3600),
            )
            .unwrap(),
        };
        let gate = gate.clone();
        attackers.push(tokio::spawn(async move {
            let _slot = gate.acquire_owned().await.expect("the gate");
            let mut ws = Ws::raw(port, collection).await;
            ws.send_json(&hello(Some(&token))).await;
            refusal(&mut ws).await.1
        }));
    }
    let mut latencies = Vec::new();
    let mut seqs = Vec::new();
    while !attackers.iter().all(|a| a.is_finished()) || seqs.len() < 10 {
        let sent = Instant::now();
        let seq = commit(port, collection, "d", seqs.len() as u64).await;
        let change = listener.recv().await;
        assert_eq!(change["seq"].as_u64(), Some(seq), "{change}");
        latencies.push(sent.elapsed());
        seqs.push(seq);
    }
    let storm = started.elapsed();
    for attacker in attackers {
        let closed = attacker.await.expect("an attacker");
        assert_eq!(closed, Some((4001, "unauthenticated".to_owned())));
    }
    latencies.sort();
    let median = latencies[latencies.len() / 2];
    println!(
        "1,000 invalid connections refused in {storm:?}; meanwhile {} commits each reached the valid listener (commit to change: median {median:?}, max {:?}; with no storm: median {:?}, {:.2}x)",
        seqs.len(),
        latencies.last().unwrap(),
        quiet[quiet.len() / 2],
        median.as_secs_f64() / quiet[quiet.len() / 2].as_secs_f64()
    );
    listener.close().await;
}

/// JWKS rotation: a minute after the first fetch, a new `kid` is fetched
/// and accepted while the old key, still listed, keeps verifying; with the
/// server down, the known keys still verify and nothing else gets in.
async fn rotation(port: u16, keys: &Keys, jwks: &JwksServer, first_fetch: Instant) {
    jwks.serve(&[&keys.r1_public, &keys.r2_public]);
    // Before the interval, an unknown kid is refused without a fetch.
    let early = signed(&keys.r2, "blaze-remote", "nina");
    if first_fetch.elapsed() < Duration::from_secs(55) {
        let answer = get_doc(port, "kinds/admin", Some(&early)).await;
        assert_eq!(answer.status, 401, "{}", answer.body);
        assert_eq!(jwks.fetches(), 1);
    }
    let wait = REFETCH_AFTER.saturating_sub(first_fetch.elapsed());
    println!("waiting {wait:?} for the JWKS refetch interval");
    tokio::time::sleep(wait).await;
    let rotated = signed(&keys.r2, "blaze-remote", "nina");
    let answer = get_doc(port, "kinds/admin", Some(&rotated)).await;
    assert_eq!(
        answer.status, 200,
        "the new kid is fetched: {}",
        answer.body
    );
    assert_eq!(jwks.fetches(), 2);
    let old = signed(&keys.r1, "blaze-remote", "rita");
    assert_eq!(get_doc(port, "kinds/admin", Some(&old)).await.status, 200);
    let (ws, welcome) = connect(port, "kinds", Some(&rotated)).await;
    assert_eq!(welcome["auth"]["uid"], "nina");
    ws.close().await;

    jwks.stop();
    let old = signed(&keys.r1, "blaze-remote", "rosa");
    assert_eq!(get_doc(port, "kinds/admin", Some(&old)).await.status, 200);
    let stranger = signed(&keys.stranger, "blaze-remote", "mallory");
    assert_refused(port, "server-down", &stranger).await;
    let forged = mint::sign_with_header(
        &keys.stranger,
        &json!({"alg": "ES256", "kid": "r2"}),
        &claims("blaze-remote", "mallory", 3600),
    )
    .unwrap();
    assert_refused(port, "forged-while-down", &forged).await;
}
