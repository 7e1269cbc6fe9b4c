//! `Files::upload_resumable` and its steps (spec 15.7) against a fake server
//! on a loopback socket that keeps parts in memory, checks their lengths
//! (`invalid_part`) and can cut a part mid-way (it reads half the body, then
//! drops the connection without an answer): the parts sent, the retry after
//! asking which parts are stored, progress, and the bytes completed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use blaze_client::files::Files;
use blaze_client::{Blaze, ConnectOptions, Credentials, ReconnectPolicy};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

const PART: u64 = 1000;

#[derive(Default)]
struct State {
    /// Each request as `METHOD part` or `METHOD route`.
    log: Vec<String>,
    /// Upload id → (size, stored parts).
    uploads: HashMap<String, (u64, BTreeMap<u64, Vec<u8>>)>,
    /// Parts whose next attempt is cut mid-way.
    cut: HashSet<u64>,
    /// The bytes of the last completed upload.
    completed: Option<Vec<u8>>,
}

type Shared = Arc<Mutex<State>>;

async fn fake_server(state: Shared) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            tokio::spawn(serve(socket, state.clone()));
        }
    });
    url
}

async fn serve(socket: TcpStream, state: Shared) {
    let mut conn = BufReader::new(socket);
    let mut request_line = String::new();
    conn.read_line(&mut request_line).await.unwrap();
    let mut parts = request_line.split_whitespace();
    let (method, target) = (
        parts.next().unwrap().to_owned(),
        parts.next().unwrap().to_owned(),
    );
    let mut headers = HashMap::new();
    loop {
        let mut line = String::new();
        conn.read_line(&mut line).await.unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').unwrap();
        headers.insert(name.to_ascii_lowercase(), value.trim().to_owned());
    }
    let length: u64 = headers
        .get("content-length")
        .map_or(0, |v| v.parse().unwrap());
    let query: HashMap<&str, &str> = target
        .split_once('?')
        .map(|(_, q)| {
            q.split('&')
                .map(|kv| kv.split_once('=').unwrap_or((kv, "")))
                .collect()
        })
        .unwrap_or_default();
    let part: Option<u64> = query.get("part").map(|n| n.parse().unwrap());
    state.lock().unwrap().log.push(match part {
        Some(n) => format!("{method} {n}"),
        None => format!(
            "{method} {}",
            target
                .split_once('?')
                .map_or("", |(_, q)| q.split('=').next().unwrap())
        ),
    });

    let (status, body) = if method == "POST" && query.contains_key("uploads") {
        let size: u64 = headers["x-blaze-upload-length"].parse().unwrap();
        let mut state = state.lock().unwrap();
        let id = format!("u{}", state.uploads.len() + 1);
        state.uploads.insert(id.clone(), (size, BTreeMap::new()));
        (201, describe(&id, size, &BTreeMap::new()))
    } else {
        let id = query["upload"].to_owned();
        let Some((size, _)) = state
            .lock()
            .unwrap()
            .uploads
            .get(&id)
            .map(|(s, p)| (*s, p.len()))
        else {
            return answer(
                conn,
                404,
                json!({"error": {"code": "not_found", "message": "no upload"}}),
            )
            .await;
        };
        let parts = size.div_ceil(PART).max(1);
        match (method.as_str(), part) {
            ("PUT", Some(n)) => {
                let expected = if n < parts {
                    PART
                } else {
                    size - PART * (parts - 1)
                };
                if length != expected {
                    return answer(
                        conn,
                        400,
                        json!({"error": {"code": "invalid_part", "message": "wrong length"}}),
                    )
                    .await;
                }
                if state.lock().unwrap().cut.remove(&n) {
                    let mut half = vec![0; (length / 2) as usize];
                    let _ = conn.read_exact(&mut half).await;
                    return; // dropped: no answer, nothing stored
                }
                let mut bytes = vec![0; length as usize];
                conn.read_exact(&mut bytes).await.unwrap();
                state
                    .lock()
                    .unwrap()
                    .uploads
                    .get_mut(&id)
                    .unwrap()
                    .1
                    .insert(n, bytes);
                (200, json!({"part": n, "size": length}))
            }
            ("GET", None) => {
                let state = state.lock().unwrap();
                (200, describe(&id, size, &state.uploads[&id].1))
            }
            ("POST", None) => {
                let mut state = state.lock().unwrap();
                let (_, stored) = state.uploads.remove(&id).unwrap();
                let bytes: Vec<u8> = stored.into_values().flatten().collect();
                state.completed = Some(bytes);
                (
                    200,
                    json!({"path": "a.bin", "name": "a.bin", "size": size, "contentType": "application/octet-stream",
                             "metadata": {}, "md5": null, "version": 7, "time": 1}),
                )
            }
            _ => (
                405,
                json!({"error": {"code": "method_not_allowed", "message": "no"}}),
            ),
        }
    };
    answer(conn, status, body).await
}

fn describe(id: &str, size: u64, stored: &BTreeMap<u64, Vec<u8>>) -> Value {
    json!({"upload": id, "size": size, "part_bytes": PART, "parts": size.div_ceil(PART).max(1),
           "expires": 1, "stored": stored.keys().collect::<Vec<_>>()})
}

async fn answer(mut conn: BufReader<TcpStream>, status: u16, body: Value) {
    let body = body.to_string();
    let head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let _ = conn
        .get_mut()
        .write_all(format!("{head}{body}").as_bytes())
        .await;
}

async fn files(url: &str) -> Files {
    let options = ConnectOptions {
        credentials: Credentials::Fixed("k".into()),
        reconnect: ReconnectPolicy {
            initial: Duration::from_millis(2),
            max: Duration::from_millis(10),
        },
        ..ConnectOptions::default()
    };
    Blaze::connect_with(url, options)
        .await
        .unwrap()
        .files()
        .unwrap()
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

#[tokio::test]
async fn a_part_cut_mid_way_is_resent_after_asking_the_stored_parts() {
    let state = Shared::default();
    state.lock().unwrap().cut.insert(2);
    let files = files(&fake_server(state.clone()).await).await;
    let bytes = pattern(2500);
    let mut upload = files
        .start_upload("a.bin", 2500, &Default::default())
        .await
        .unwrap();
    assert_eq!((upload.parts, upload.part_bytes), (3, PART));
    let mut progress = Vec::new();
    let mut source = std::io::Cursor::new(bytes.clone());
    let done = files
        .upload_resumable(&mut upload, &mut source, |u| {
            progress.push(u.stored_bytes())
        })
        .await
        .unwrap();
    assert_eq!(done.size, 2500);
    assert_eq!(
        progress,
        [1000, 2000, 2500],
        "monotonic, ending at the size"
    );
    let state = state.lock().unwrap();
    assert_eq!(
        state.completed.as_deref(),
        Some(bytes.as_slice()),
        "the completed bytes are the input"
    );
    assert_eq!(
        state.log,
        [
            "POST uploads",
            "PUT 1",
            "PUT 2",
            "GET upload",
            "PUT 2",
            "PUT 3",
            "POST upload"
        ]
    );
}

#[tokio::test]
async fn a_resumed_upload_sends_only_the_missing_parts() {
    let state = Shared::default();
    let files = files(&fake_server(state.clone()).await).await;
    let bytes = pattern(3000);
    let mut started = files
        .start_upload("a.bin", 3000, &Default::default())
        .await
        .unwrap();
    files
        .upload_part(&mut started, 2, &mut &bytes[1000..2000])
        .await
        .unwrap();

    let mut resumed = files.resume_upload("a.bin", &started.id).await.unwrap();
    assert_eq!(resumed.missing(), [1, 3]);
    let mut source = std::io::Cursor::new(bytes.clone());
    files
        .upload_resumable(&mut resumed, &mut source, |_| {})
        .await
        .unwrap();
    let state = state.lock().unwrap();
    assert_eq!(state.completed.as_deref(), Some(bytes.as_slice()));
    assert_eq!(
        state.log,
        [
            "POST uploads",
            "PUT 2",
            "GET upload",
            "PUT 1",
            "PUT 3",
            "POST upload"
        ]
    );
}

#[tokio::test]
async fn an_invalid_part_fails_at_once_and_a_gone_upload_is_not_found() {
    let state = Shared::default();
    let files = files(&fake_server(state.clone()).await).await;
    let mut upload = files
        .start_upload("a.bin", 2500, &Default::default())
        .await
        .unwrap();
    upload.part_bytes = 900; // a client that got the lengths wrong
    let mut source = std::io::Cursor::new(pattern(2500));
    match files
        .upload_resumable(&mut upload, &mut source, |_| {})
        .await
    {
        Err(e) => assert_eq!(
            e.code(),
            Some(blaze_client::ErrorCode::InvalidPart),
            "{e:?}"
        ),
        other => panic!("expected invalid_part, got {other:?}"),
    }
    assert_eq!(
        state.lock().unwrap().log,
        ["POST uploads", "PUT 1"],
        "not retried"
    );
    let gone = files.resume_upload("a.bin", "u9").await.unwrap_err();
    assert_eq!(gone.code(), Some(blaze_client::ErrorCode::NotFound));
}
