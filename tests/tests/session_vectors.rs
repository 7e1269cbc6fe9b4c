//! Runs the session transcripts of `spec/vectors/session/` against the hub:
//! each step is one input, followed by the exact outputs it must produce.

use blaze_core::{ChangeLogLimits, Database, Hub, HubConfig, MemoryStorage, Output};
use blaze_protocol::{decode_body, CollectionPath, CommitBody};
use blaze_tests::{case_limits, run_all, session_files};
use serde_json::{json, Value};

#[test]
fn session_vectors() {
    for file in session_files() {
        run_all(&file, run_session);
    }
}

fn config(case: &Value) -> HubConfig {
    let mut config = HubConfig::default();
    let queue = &case["queue"];
    if let Some(n) = queue["max_pending_frames"].as_u64() {
        config.max_pending_frames = n as usize;
    }
    if let Some(n) = queue["max_pending_bytes"].as_u64() {
        config.max_pending_bytes = n as usize;
    }
    config
}

fn log_limits(case: &Value) -> ChangeLogLimits {
    let mut log = ChangeLogLimits::default();
    if let Some(n) = case["log"]["max_entries"].as_u64() {
        log.max_entries = n;
    }
    if let Some(n) = case["log"]["max_age_ms"].as_u64() {
        log.max_age_ms = n;
    }
    log
}

fn run_session(case: &Value) -> Result<(), String> {
    let db =
        Database::new(MemoryStorage::new(), case_limits(case)).with_change_log(log_limits(case));
    let mut hub = Hub::new(db, config(case));
    if let Some(scope) = case["scope"].as_str() {
        hub = hub.scoped(CollectionPath::parse(scope).map_err(|e| e.to_string())?);
    }
    let steps = case["steps"].as_array().ok_or("steps must be an array")?;
    for (i, step) in steps.iter().enumerate() {
        let conn = |key: &str| step[key].as_u64();
        let now = step["now"].as_u64().unwrap_or(1000);
        if let Some(c) = conn("open") {
            hub.handle_open(c);
        } else if let Some(c) = conn("recv") {
            let text = match &step["frame"] {
                Value::String(raw) => raw.clone(),
                frame => frame.to_string(),
            };
            hub.handle_frame(c, &text, now);
        } else if let Some(c) = conn("binary") {
            hub.handle_binary(c);
        } else if let Some(c) = conn("written") {
            hub.handle_written(c, step["frames"].as_u64().unwrap_or(0) as usize);
        } else if let Some(c) = conn("close") {
            hub.handle_close(c);
        } else if let Some(commit) = step.get("http_commit") {
            // Decoded as the worker decodes a `POST /v1/commit` body.
            let got = match decode_body::<CommitBody>(&commit.to_string(), &case_limits(case)) {
                Err(e) => json!({"error": e.code.as_str()}),
                Ok(body) => match hub.handle_commit(&body.collection, &body.writes, now) {
                    Ok(result) => json!({"seq": result.seq}),
                    Err(e) => json!({"error": e.code().as_str()}),
                },
            };
            if step.get("result").is_some_and(|want| *want != got) {
                return Err(format!(
                    "step {i}: http_commit gave {got}, expected {}",
                    step["result"]
                ));
            }
        } else {
            return Err(format!("step {i}: no input in {step}"));
        }
        let mut got = Vec::new();
        while let Some(output) = hub.poll_output() {
            got.push(match output {
                Output::Send { conn, frame } => {
                    let mut frame: Value =
                        serde_json::from_str(&frame).map_err(|e| e.to_string())?;
                    if let Some(error) = frame.get_mut("error").and_then(Value::as_object_mut) {
                        error.remove("message");
                    }
                    json!({"send": conn, "frame": frame})
                }
                Output::Close { conn, code, reason } => {
                    json!({"close": conn, "code": code, "reason": reason})
                }
            });
        }
        let want = step.get("out").cloned().unwrap_or(json!([]));
        if Value::Array(got.clone()) != want {
            return Err(format!(
                "step {i} ({step}):\n  got  {}\n  want {want}",
                Value::Array(got)
            ));
        }
    }
    Ok(())
}
