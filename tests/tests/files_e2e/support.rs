//! What the scenarios share: development tokens, HTTP requests with
//! binary answers, byte helpers, and views of the bucket and folders.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use blaze_auth::mint;
use blaze_tests::live::{self, run, Ws};
pub use blaze_tests::live::{request, Body};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{ADMIN, SECRET};

pub fn bearer(uid: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let claims =
        json!({"iss": "blaze-dev", "aud": "blaze", "sub": uid, "iat": now, "exp": now + 3600});
    format!("Bearer {}", mint::hs256(SECRET.as_bytes(), &claims))
}

/// An HTTP answer with a binary body.
pub type Answer = live::Answer<Vec<u8>>;

pub fn sha(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Deterministic bytes of every value.
pub fn bytes(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 8) as u8)
        .collect()
}

/// The blobs the simulated bucket holds.
pub fn blobs(state: &Path) -> usize {
    let dir = state.join("v3/r2/blaze-files/blobs");
    std::fs::read_dir(dir).map_or(0, |d| d.count())
}

pub async fn put(port: u16, path: &str, auth: &str, content_type: &str, data: &[u8]) -> Answer {
    let headers = [("Authorization", auth), ("Content-Type", content_type)];
    request(port, "PUT", path, &headers, Body::Bytes(data)).await
}

pub async fn get(port: u16, path: &str, headers: &[(&str, &str)]) -> Answer {
    request(port, "GET", path, headers, Body::None).await
}

/// Runs `scenario`, printing how long it took.
pub async fn timed(name: &str, scenario: impl std::future::Future<Output = ()>) {
    let started = std::time::Instant::now();
    scenario.await;
    println!("{name}: {:?}", started.elapsed());
}

pub async fn patch(port: u16, path: &str, auth: &str, body: &str) -> Answer {
    let headers = [
        ("Authorization", auth),
        ("Content-Type", "application/json"),
    ];
    request(port, "PATCH", path, &headers, Body::Bytes(body.as_bytes())).await
}

/// Sends an upload and reads what comes back, whatever happens to the
/// server meanwhile: the status, or `None` if the connection died.
pub async fn upload_raw(port: u16, path: String, data: Vec<u8>) -> Option<u16> {
    send_raw(port, "PUT", path, data).await
}

/// A `DELETE` as [`upload_raw`] sends an upload.
pub async fn delete_raw(port: u16, path: String) -> Option<u16> {
    send_raw(port, "DELETE", path, Vec::new()).await
}

/// `method path` as the admin with `data` as the body, on a connection of
/// its own; the answer's status, or `None` when the server died first.
pub async fn send_raw(port: u16, method: &str, path: String, data: Vec<u8>) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         Authorization: {ADMIN}\r\nContent-Length: {}\r\n\r\n",
        data.len()
    );
    stream.write_all(head.as_bytes()).await.ok()?;
    stream.write_all(&data).await.ok()?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.ok()?;
    let line = String::from_utf8_lossy(&answer);
    line.split(' ').nth(1)?.parse().ok()
}

/// The keys of folder `folder` (`a/`) in R2, through the admin diagnostic:
/// (key, named by a metadata document).
pub async fn keys(port: u16, folder: &str) -> Vec<(String, bool)> {
    let got = get(
        port,
        &format!("/v1/files/{folder}?keys"),
        &[("Authorization", ADMIN)],
    )
    .await;
    assert_eq!(got.status, 200, "{:?}", got.json());
    let keys = got.json()["keys"].as_array().cloned().unwrap_or_default();
    keys.iter()
        .map(|k| (k["key"].as_str().unwrap().to_owned(), k["named"] == true))
        .collect()
}

/// The metadata documents of folder `collection`.
pub async fn folder_docs(port: u16, collection: &str) -> Vec<Value> {
    let query = json!({"collection": collection}).to_string();
    let headers = [("Authorization", ADMIN)];
    let got = request(
        port,
        "POST",
        "/v1/query",
        &headers,
        Body::Bytes(query.as_bytes()),
    )
    .await;
    assert_eq!(got.status, 200, "{:?}", got.json());
    got.json()["docs"].as_array().cloned().unwrap_or_default()
}

/// [`run`] for a body with a result.
pub fn run_returning<T: Send + 'static>(
    body: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    run(Duration::from_secs(60), async move {
        let _ = tx.send(body.await);
    });
    rx.recv().expect("the body ran")
}

/// Names of the `added` documents in the `change` frames `frames`.
pub fn added(frames: &[Value]) -> Vec<String> {
    frames
        .iter()
        .filter(|f| f["type"] == "change")
        .flat_map(|f| f["changes"].as_array().cloned().unwrap_or_default())
        .filter(|c| c["type"] == "added")
        .filter_map(|c| c["doc"]["path"].as_str().map(str::to_owned))
        .collect()
}

/// An admin's WebSocket listening to the folder whose metadata collection
/// is `collection`, and the listener's first snapshot.
pub async fn folder_listener(port: u16, collection: &str) -> (Ws, Value) {
    let mut ws = Ws::raw(port, collection).await;
    let hello = json!({"type": "hello", "protocol": 1, "auth": "blaze-dev-admin-key"});
    ws.send_json(&hello).await;
    let welcome = ws.recv().await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    let listen = json!({"type": "listen", "query": {"collection": collection}});
    let snapshot = ws.request(listen, &mut Vec::new()).await;
    assert_eq!(snapshot["type"], "snapshot", "{snapshot}");
    (ws, snapshot)
}
