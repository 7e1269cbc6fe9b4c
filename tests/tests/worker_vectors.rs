//! The spec's conformance vectors, run against the live worker under
//! `wrangler dev`: `codec.json` over a WebSocket, `query.json` and
//! `write.json` over HTTP, each case in a fresh collection `t/<n>/c`.
//!
//! Skipped, with reasons: cases with `limits` overrides (the live server runs
//! the default limits); `codec.json` cases whose frame is a valid `hello`
//! (on an open connection a second `hello` is refused, by design). The
//! session transcripts run live in `session_live.rs`.

use std::sync::atomic::{AtomicUsize, Ordering};

use blaze_tests::live::{e2e, http, WranglerDev, Ws};
use blaze_tests::load_cases;
use serde_json::{json, Map, Value};

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// The rid of [`BARRIER`].
const BARRIER_RID: u64 = 4_000_000_000;

/// A request answered at once (`listener_not_found`, with its rid) whatever
/// the connection holds: sent after a frame that is answered by nothing.
const BARRIER: &str = r#"{"type":"unlisten","rid":4000000000,"listener":4000000000}"#;

/// A collection path no other case uses, in place of `c`.
fn fresh() -> String {
    format!("t/{}/c", NEXT.fetch_add(1, Ordering::Relaxed))
}

fn rename(collection: &str, fresh: &str) -> String {
    match collection {
        "c" => fresh.to_owned(),
        other => match other.strip_prefix("c/") {
            Some(rest) => format!("{fresh}/{rest}"),
            None => other.to_owned(),
        },
    }
}

async fn commit(port: u16, collection: &str, writes: Value) -> Value {
    let body = json!({"collection": collection, "writes": writes}).to_string();
    let answer = http(port, "POST", "/v1/commit", &[], &body).await;
    answer.json()
}

fn sets(docs: &Map<String, Value>) -> Value {
    docs.iter()
        .map(|(id, data)| json!({"op": "set", "id": id, "data": data}))
        .collect()
}

/// Runs every case of `file` with `check`; returns (run, skipped) and panics listing failures.
async fn run_file<F, Fut>(file: &str, check: F) -> (usize, usize)
where
    F: Fn(Value) -> Fut,
    Fut: std::future::Future<Output = Option<Result<(), String>>>,
{
    let mut failures = Vec::new();
    let (mut run, mut skipped) = (0, 0);
    for case in load_cases(file) {
        let name = case["name"].as_str().unwrap_or("?").to_owned();
        match check(case).await {
            None => skipped += 1,
            Some(Ok(())) => run += 1,
            Some(Err(e)) => {
                run += 1;
                failures.push(format!("{name}: {e}"));
            }
        }
    }
    println!(
        "{file} against wrangler dev: {run} run, {skipped} skipped, {} failed",
        failures.len()
    );
    assert!(failures.is_empty(), "{file}:\n{}", failures.join("\n"));
    (run, skipped)
}

#[test]
fn conformance_vectors_against_the_live_worker() {
    let Some(_serial) = e2e() else { return };
    let server = WranglerDev::start("vectors");
    let port = server.port;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_stack_size(16 * 1024 * 1024)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let (queries, _) = run_file("query.json", |case| async move {
            if case.get("limits").is_some() {
                return None;
            }
            let c = fresh();
            let docs = case["docs"].as_object().cloned().unwrap_or_default();
            if !docs.is_empty() {
                commit(port, &c, sets(&docs)).await;
            }
            let mut query = case["query"].clone();
            query["collection"] = json!(rename(query["collection"].as_str().unwrap_or(""), &c));
            let route = if case["count"] == json!(true) {
                "/v1/count"
            } else {
                "/v1/query"
            };
            let answer = http(port, "POST", route, &[], &query.to_string()).await;
            let want = &case["expect"];
            let got = match answer.code() {
                Some(code) => json!({"error": code}),
                None if route == "/v1/count" => json!({"count": answer.json()["count"]}),
                None => {
                    let prefix = format!("{}/", query["collection"].as_str().unwrap_or(""));
                    let ids: Vec<Value> = answer.json()["docs"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|d| {
                            json!(d["path"].as_str().unwrap_or("").trim_start_matches(&prefix))
                        })
                        .collect();
                    json!({"ids": ids})
                }
            };
            Some(if &got == want {
                Ok(())
            } else {
                Err(format!("got {got}, expected {want}"))
            })
        })
        .await;
        assert!(queries > 150, "most query cases run live");

        let (writes, _) = run_file("write.json", |case| async move {
            if case.get("limits").is_some() {
                return None;
            }
            let base = fresh();
            let collection = rename(case["collection"].as_str().unwrap_or(""), &base);
            let before = case["before"].as_object().cloned().unwrap_or_default();
            if !before.is_empty() {
                commit(port, &collection, sets(&before)).await;
            }
            let outcome = commit(port, &collection, case["writes"].clone()).await;
            let all = http(
                port,
                "POST",
                "/v1/query",
                &[],
                &json!({"collection": collection}).to_string(),
            )
            .await
            .json();
            let prefix = format!("{collection}/");
            let mut after = Map::new();
            let mut versions = Map::new();
            for d in all["docs"].as_array().into_iter().flatten() {
                let id = d["path"]
                    .as_str()
                    .unwrap_or("")
                    .trim_start_matches(&prefix)
                    .to_owned();
                after.insert(id.clone(), d["data"].clone());
                versions.insert(id, d["version"].clone());
            }
            let want = &case["expect"];
            let result = match want.get("error") {
                Some(code) => {
                    if outcome["error"]["code"] != *code {
                        Err(format!("got {outcome}, expected error {code}"))
                    } else if want
                        .get("write_index")
                        .is_some_and(|i| *i != outcome["error"]["write_index"])
                    {
                        Err(format!(
                            "write_index {}, expected {}",
                            outcome["error"]["write_index"], want["write_index"]
                        ))
                    } else if after != before && all.get("docs").is_some() {
                        Err("a failed batch changed the stored data".into())
                    } else {
                        Ok(())
                    }
                }
                None if outcome.get("error").is_some() => Err(format!("got {outcome}")),
                None => {
                    let versions_ok = want["versions"]
                        .as_object()
                        .is_none_or(|w| w.iter().all(|(id, v)| versions.get(id) == Some(v)));
                    if Value::Object(after.clone()) != want["after"] {
                        Err(format!("after {after:?}, expected {}", want["after"]))
                    } else if !versions_ok {
                        Err(format!(
                            "versions {versions:?}, expected {}",
                            want["versions"]
                        ))
                    } else {
                        Ok(())
                    }
                }
            };
            Some(result)
        })
        .await;
        assert!(writes > 60, "most write cases run live");

        let decode_codes = [
            "invalid_frame",
            "unknown_message_type",
            "frame_too_large",
            "frame_too_deep",
        ];
        let ws = std::sync::Arc::new(tokio::sync::Mutex::new(Ws::open(port, "c").await));
        let (frames, _) = run_file("codec.json", |case| {
            let ws = ws.clone();
            async move {
                let want = case["expect"].clone();
                if case.get("limits").is_some() || want["type"] == "hello" {
                    return None;
                }
                let mut ws = ws.lock().await;
                ws.send_text(case["frame"].as_str().unwrap_or("")).await;
                if want["type"] == "ack" {
                    // An `ack` is answered by nothing: the next answer must be
                    // the barrier's (an `unlisten` of no listener), not an error.
                    ws.send_text(BARRIER).await;
                }
                // A case's answer, past the `change` frames of a listener an
                // earlier case opened (they carry no rid and answer nothing).
                let answer = loop {
                    let frame = ws.recv().await;
                    if frame["type"] != "change" {
                        break frame;
                    }
                };
                if want["type"] == "ack" {
                    let barrier = answer["rid"] == BARRIER_RID;
                    return Some(match barrier {
                        true => Ok(()),
                        false => Err(format!("the ack was answered: {answer}")),
                    });
                }
                let code = answer["error"]["code"].as_str().unwrap_or("");
                Some(match want.get("error") {
                    Some(w) if w != code => Err(format!("got {answer}, expected {w}")),
                    Some(_) if want.get("rid").is_some_and(|r| *r != answer["rid"]) => {
                        Err(format!("rid {}, expected {}", answer["rid"], want["rid"]))
                    }
                    Some(_) => Ok(()),
                    None if decode_codes.contains(&code) => {
                        Err(format!("decoded as {code}: {answer}"))
                    }
                    None => Ok(()),
                })
            }
        })
        .await;
        assert!(frames > 60, "most codec cases run live");
    });
}
