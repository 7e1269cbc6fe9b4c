//! Runs the session transcripts of `spec/vectors/session/` in process: each
//! collection is served by its own scoped [`Hub`] (as each Durable Object
//! serves one collection), and each step is one input followed by the exact
//! outputs it must produce. `session_live.rs` replays them against the worker.

use std::collections::HashMap;

use blaze_core::{
    ChangeLogLimits, Database, Hub, HubConfig, HubEvent, MemoryStorage, Output, Rejection,
};
use blaze_protocol::{decode_body, CollectionPath, CommitBody, ErrorCode};
use blaze_tests::session::{connection_collection, expected_outputs, frame_text, received};
use blaze_tests::{case_limits, run_all, session_files};
use serde_json::{json, Value};

#[test]
fn session_vectors() {
    for file in session_files() {
        run_all(&file, run_session);
    }
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

/// One server per collection, each configured as the case says, and which
/// collection each connection is for.
struct Servers<'a> {
    case: &'a Value,
    hubs: HashMap<String, Hub<MemoryStorage>>,
    conns: HashMap<u64, String>,
}

impl Servers<'_> {
    /// The server of `collection`, started empty on first use.
    fn of(&mut self, collection: &str) -> Result<&mut Hub<MemoryStorage>, String> {
        if !self.hubs.contains_key(collection) {
            let path = CollectionPath::parse(collection).map_err(|e| e.to_string())?;
            let db = Database::new(MemoryStorage::new(), case_limits(self.case))
                .with_change_log(log_limits(self.case));
            let hub = Hub::new(db, HubConfig::default()).scoped(path);
            self.hubs.insert(collection.to_owned(), hub);
        }
        Ok(self.hubs.get_mut(collection).expect("just added"))
    }

    /// The server connection `conn` was opened on.
    fn of_conn(&mut self, conn: u64) -> Result<&mut Hub<MemoryStorage>, String> {
        let collection = self
            .conns
            .get(&conn)
            .cloned()
            .ok_or_else(|| format!("connection {conn} was never opened"))?;
        self.of(&collection)
    }
}

/// Feeds one step's input to its server and returns that server's outputs.
fn feed(servers: &mut Servers, step: &Value) -> Result<Vec<Value>, String> {
    let conn = |key: &str| step[key].as_u64();
    let now = step["now"].as_u64().unwrap_or(1000);
    let hub = if let Some(c) = conn("open") {
        let collection = connection_collection(step)?.to_owned();
        servers.conns.insert(c, collection.clone());
        let hub = servers.of(&collection)?;
        hub.handle_open(c, 0);
        hub
    } else if let Some(c) = conn("recv") {
        let hub = servers.of_conn(c)?;
        hub.handle_frame(c, &frame_text(&step["frame"]), now);
        hub
    } else if let Some(c) = conn("binary") {
        let hub = servers.of_conn(c)?;
        hub.handle_binary(c);
        hub
    } else if let Some(c) = conn("close") {
        let hub = servers.of_conn(c)?;
        hub.handle_close(c);
        hub
    } else if let Some(commit) = step.get("http_commit") {
        // Decoded as the worker decodes a `POST /v1/commit` body: one the
        // Worker refuses reaches no collection's server.
        let (got, hub) =
            match decode_body::<CommitBody>(&commit.to_string(), &case_limits(servers.case)) {
                Err(e) => (json!({"error": e.code.as_str()}), None),
                Ok(body) => {
                    let hub = servers.of(body.collection.as_str())?;
                    let id = body.commit_id.as_ref();
                    // Sent with no credential, as the connections' frames are.
                    let anonymous = blaze_core::Caller::new(blaze_protocol::Identity::Anonymous);
                    let got = match hub.handle_commit_with_id(
                        &anonymous,
                        &body.collection,
                        &body.writes,
                        id,
                        now,
                    ) {
                        Ok(result) => json!({"seq": result.seq}),
                        Err(e) => json!({"error": e.code().as_str()}),
                    };
                    (got, Some(hub))
                }
            };
        if step.get("result").is_some_and(|want| *want != got) {
            return Err(format!(
                "http_commit gave {got}, expected {}",
                step["result"]
            ));
        }
        let Some(hub) = hub else {
            return Ok(Vec::new());
        };
        hub
    } else {
        return Err(format!("no input in {step}"));
    };
    let mut got = Vec::new();
    while let Some(output) = hub.poll_output() {
        got.push(match output {
            Output::Send { conn, frame } => json!({"send": conn, "frame": received(&frame)?}),
            Output::Close { conn, code } => {
                json!({"close": conn, "code": code.code(), "reason": code.reason()})
            }
            // The servers of the transcripts have no identity configuration:
            // no credential verifies.
            Output::Event(HubEvent::Verify { conn, rid, .. }) => {
                let refused = Rejection::new(ErrorCode::Unauthenticated, "no credential verifies");
                hub.handle_verified(conn, rid, Err(refused), now);
                continue;
            }
            // Other events are for the server's log; the vectors hold what goes on the wire.
            Output::Event(_) => continue,
        });
    }
    Ok(got)
}

fn run_session(case: &Value) -> Result<(), String> {
    let mut servers = Servers {
        case,
        hubs: HashMap::new(),
        conns: HashMap::new(),
    };
    let steps = case["steps"].as_array().ok_or("steps must be an array")?;
    for (i, step) in steps.iter().enumerate() {
        let got = feed(&mut servers, step).map_err(|e| format!("step {i}: {e}"))?;
        let want = expected_outputs(case, step);
        if got != want {
            return Err(format!(
                "step {i} ({step}):\n  got  {}\n  want {}",
                Value::Array(got),
                Value::Array(want)
            ));
        }
    }
    Ok(())
}
