//! The session transcripts of `spec/vectors/session/`, replayed against the
//! real worker under `wrangler dev`, as `spec/vectors/README.md` ("Replaying
//! the transcripts against a live server") describes: a fresh namespace per
//! case, one WebSocket per connection, outputs compared per connection after
//! a `get` barrier, and the transcript's `now` bound to the server's times.
//!
//! Cases run on one `wrangler dev` per change log configuration (set with
//! `--var BLAZE_LOG_MAX_ENTRIES:…`). Skipped, each with its reason printed:
//! cases marked `in_process_only`, and cases with `limits` (the
//! worker has no setting for them).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use blaze_tests::live::{self, e2e, http, Incoming, WranglerDev, Ws};
use blaze_tests::session::{connection_collection, expected_outputs, frame_text, received};
use blaze_tests::{load_cases, session_files};
use serde_json::{json, Value};

/// The longest the whole run may take, starts of `wrangler dev` included.
const RUN_LIMIT: Duration = Duration::from_secs(600);

/// How long to wait for one frame.
const WAIT: Duration = Duration::from_secs(10);

/// The `rid` of the barrier `get`; no transcript uses it.
const BARRIER_RID: u64 = 999_999;

/// Members holding document contents or patches, never renamed or bound.
const OPAQUE: [&str; 4] = ["data", "value", "patch", "where"];

/// Members holding a server time.
const TIMES: [&str; 3] = ["time", "create_time", "update_time"];

#[test]
fn session_transcripts_against_the_live_worker() {
    let Some(_serial) = e2e() else { return };
    live::run(RUN_LIMIT, async {
        let mut groups: BTreeMap<Vec<String>, Vec<(String, Value)>> = BTreeMap::new();
        let mut skipped = Vec::new();
        for file in session_files() {
            for case in load_cases(&file) {
                let name = format!("{file}: {}", case["name"].as_str().unwrap_or("?"));
                match worker_vars(&case) {
                    Ok(vars) => groups.entry(vars).or_default().push((name, case)),
                    Err(reason) => skipped.push(format!("{name}: {reason}")),
                }
            }
        }
        let (mut run, mut failures, mut next) = (0, Vec::new(), 0);
        for (group, (vars, cases)) in groups.into_iter().enumerate() {
            let vars: Vec<&str> = vars.iter().map(String::as_str).collect();
            let server = WranglerDev::start_with_vars(&format!("sessions-{group}"), &vars);
            for (name, case) in cases {
                next += 1;
                run += 1;
                let mut replay = Replay::new(server.port, format!("t/s{next}/"));
                if let Err(e) = replay.case(&case).await {
                    failures.push(format!("{name}: {e}"));
                }
            }
        }
        println!(
            "session transcripts against wrangler dev: {run} run, {} skipped, {} failed",
            skipped.len(),
            failures.len()
        );
        for reason in &skipped {
            println!("  skipped {reason}");
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
        assert!(run >= 25, "most transcripts run live ({run})");
    });
}

/// The `--var`s that configure the worker as `case` says, or why it cannot be.
fn worker_vars(case: &Value) -> Result<Vec<String>, String> {
    if let Some(reason) = case["in_process_only"].as_str() {
        return Err(format!("in process only: {reason}"));
    }
    if let Some(v) = case.get("limits") {
        return Err(format!(
            "needs limits {v}: the worker has no setting for limits"
        ));
    }
    let log = &case["log"];
    let mut vars = Vec::new();
    if let Some(n) = log["max_entries"].as_u64() {
        vars.push(format!("BLAZE_LOG_MAX_ENTRIES:{n}"));
    }
    if let Some(n) = log["max_age_ms"].as_u64() {
        vars.push(format!("BLAZE_LOG_MAX_AGE_MS:{n}"));
    }
    Ok(vars)
}

/// Prefixes every collection and document path in `value` (README: "A fresh namespace per case").
fn rename(value: &mut Value, prefix: &str) {
    match value {
        Value::Object(members) => {
            for (key, member) in members.iter_mut() {
                match (key.as_str(), member) {
                    (k, _) if OPAQUE.contains(&k) => {}
                    ("collection" | "path" | "doc", Value::String(path)) => {
                        if !path.starts_with('/') {
                            *path = format!("{prefix}{path}");
                        }
                    }
                    (_, member) => rename(member, prefix),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| rename(item, prefix)),
        _ => {}
    }
}

/// Prefixes the paths of a frame sent as raw text (to spell its numbers
/// exactly) where they appear as compact JSON members.
fn rename_raw(frame: &mut Value, prefix: &str) {
    if let Value::String(text) = frame {
        for key in ["collection", "path", "doc"] {
            let member = format!("\"{key}\":\"");
            *text = text.replace(&member, &format!("{member}{prefix}"));
        }
    }
}

/// Replaces each transcript time in `want` by the server time it is bound
/// to, binding it to the time at the same place in `got` on first sight.
fn bind_times(want: &mut Value, got: &Value, times: &mut HashMap<u64, u64>) {
    match (want, got) {
        (Value::Object(want), Value::Object(got)) => {
            for (key, member) in want.iter_mut() {
                let (Some(seen), false) = (got.get(key), OPAQUE.contains(&key.as_str())) else {
                    continue;
                };
                match (member.as_u64(), seen.as_u64()) {
                    (Some(t), Some(server)) if TIMES.contains(&key.as_str()) => {
                        *member = json!(*times.entry(t).or_insert(server));
                    }
                    _ => bind_times(member, seen, times),
                }
            }
        }
        (Value::Array(want), Value::Array(got)) => {
            for (w, g) in want.iter_mut().zip(got) {
                bind_times(w, g, times);
            }
        }
        _ => {}
    }
}

/// One transcript connection: its socket (none once closed) and collection.
struct Conn {
    ws: Option<Ws>,
    collection: String,
    greeted: bool,
}

/// The replay of one case.
struct Replay {
    port: u16,
    prefix: String,
    conns: BTreeMap<u64, Conn>,
    times: HashMap<u64, u64>,
}

impl Replay {
    fn new(port: u16, prefix: String) -> Self {
        Self {
            port,
            prefix,
            conns: BTreeMap::new(),
            times: HashMap::new(),
        }
    }

    async fn case(&mut self, case: &Value) -> Result<(), String> {
        let steps = case["steps"].as_array().ok_or("steps must be an array")?;
        for (i, step) in steps.iter().enumerate() {
            let mut want = expected_outputs(case, step);
            want.iter_mut().for_each(|o| rename(o, &self.prefix));
            self.step(step, &want, i).await?;
        }
        Ok(())
    }

    /// Feeds one step and checks each connection's outputs.
    async fn step(&mut self, step: &Value, want: &[Value], i: usize) -> Result<(), String> {
        let by = self
            .feed(step)
            .await
            .map_err(|e| format!("step {i}: {e}"))?;
        let others: Vec<u64> = self
            .conns
            .keys()
            .copied()
            .filter(|c| Some(*c) != by)
            .collect();
        for conn in by.into_iter().chain(others) {
            let got = self.outputs(conn, want).await?;
            let mut mine: Value = want
                .iter()
                .filter(|o| o["send"] == conn || o["close"] == conn)
                .cloned()
                .collect();
            let got = Value::Array(got);
            bind_times(&mut mine, &got, &mut self.times);
            if got != mine {
                return Err(format!(
                    "step {i} ({step}), connection {conn}:\n  got  {got}\n  want {mine}"
                ));
            }
        }
        Ok(())
    }

    /// Sends a step's input; returns the connection that sent it, if any.
    async fn feed(&mut self, step: &Value) -> Result<Option<u64>, String> {
        let conn = |key: &str| step[key].as_u64();
        if let Some(c) = conn("open") {
            let collection = format!("{}{}", self.prefix, connection_collection(step)?);
            let ws = Ws::raw(self.port, &collection).await;
            let conn = Conn {
                ws: Some(ws),
                collection,
                greeted: false,
            };
            self.conns.insert(c, conn);
            return Ok(Some(c));
        }
        if let Some(commit) = step.get("http_commit") {
            let mut body = commit.clone();
            rename(&mut body, &self.prefix);
            let answer = http(self.port, "POST", "/v1/commit", &[], &body.to_string()).await;
            let got = match answer.code() {
                Some(code) => json!({"error": code}),
                None => json!({"seq": answer.json()["seq"]}),
            };
            if step.get("result").is_some_and(|want| *want != got) {
                return Err(format!(
                    "http_commit gave {got}, expected {}",
                    step["result"]
                ));
            }
            if let Some(time) = answer.json()["time"].as_u64() {
                let now = step["now"].as_u64().unwrap_or(1000);
                self.times.entry(now).or_insert(time);
            }
            return Ok(None);
        }
        let (c, what) = ["recv", "binary", "close"]
            .into_iter()
            .find_map(|key| Some((conn(key)?, key)))
            .ok_or_else(|| format!("no input in {step}"))?;
        let connection = self
            .conns
            .get_mut(&c)
            .ok_or_else(|| format!("connection {c} was never opened"))?;
        // A connection the server closed gets nothing more.
        let Some(ws) = connection.ws.as_mut() else {
            return Ok(Some(c));
        };
        match what {
            "recv" => {
                let mut frame = step["frame"].clone();
                rename(&mut frame, &self.prefix);
                rename_raw(&mut frame, &self.prefix);
                ws.send_text(&frame_text(&frame)).await;
            }
            "binary" => ws.send_binary(&[0xb1, 0xa2]).await,
            _ => {
                if let Some(ws) = connection.ws.take() {
                    ws.close_and_wait().await;
                }
            }
        }
        Ok(Some(c))
    }

    /// Everything connection `conn` receives for the current step: up to its
    /// close when `want` closes it, else up to the answer of a barrier `get`
    /// (once it has said hello), else nothing.
    async fn outputs(&mut self, conn: u64, want: &[Value]) -> Result<Vec<Value>, String> {
        let connection = self.conns.get_mut(&conn).expect("an open connection");
        let closes = want.iter().any(|o| o["close"] == conn);
        let greets = want
            .iter()
            .any(|o| o["send"] == conn && o["frame"]["type"] == "welcome");
        connection.greeted |= greets;
        let Some(ws) = connection.ws.as_mut() else {
            return Ok(Vec::new());
        };
        if !closes && !connection.greeted {
            return Ok(Vec::new());
        }
        if !closes {
            let path = format!("{}/barrier", connection.collection);
            let barrier = json!({"type": "get", "rid": BARRIER_RID, "path": path});
            ws.send_json(&barrier).await;
        }
        let mut got = Vec::new();
        loop {
            match ws.next_incoming(WAIT).await {
                None => return Err(format!("connection {conn}: nothing within {WAIT:?}")),
                Some(Incoming::Text(text)) => {
                    let frame = received(&text)?;
                    if frame["rid"] == BARRIER_RID {
                        return Ok(got);
                    }
                    got.push(json!({"send": conn, "frame": frame}));
                }
                Some(Incoming::Closed { code, reason }) => {
                    got.push(json!({"close": conn, "code": code, "reason": reason}));
                    connection.ws = None;
                    return Ok(got);
                }
            }
        }
    }
}
