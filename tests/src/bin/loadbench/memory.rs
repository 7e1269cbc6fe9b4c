//! `loadbench memory`: the worker's memory under many distinct listeners
//! (issue 13). One collection holds about 1 MB (100 documents of 10 KB), and
//! 4,000 listeners on 40 connections each follow a query of their own (a
//! different `n < value` bound, every one matching all 100 documents); the
//! `workerd` process's `VmRSS` and `VmHWM` are read before and after, round
//! by round. A worker started for this alone; the rounds stop early once the
//! worker is more than `BLAZE_BENCH_MEMORY_CAP_MB` (default 2048) above idle,
//! so a worker that copies every result cannot take the machine with it.
//! The connections say `held_docs` (spec 10.4.9), as the reference clients
//! do: each connection is sent the 1 MB once, not once per listener.
//!
//! Each open WebSocket costs a `workerd` about 560 KB outside the V8 heap
//! (the runtime's socket; a bare broadcast object's cost the same), which
//! the process keeps and reuses after the socket closes. So the run is made
//! twice, each on a worker of its own: from a cold process, where the 40
//! connections' own 20-odd MB count, and from one warmed by 40 connections
//! opened and closed before the collection is filled, where they do not.

use std::time::{Duration, Instant};

use blaze_tests::live::{workerd_memory, Rss, WranglerDev};
use futures_util::SinkExt;
use serde::Deserialize;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use super::{connect, next_frame, Sink, Source, System};

/// Documents in the collection, and the bytes of each one's padding.
const DOCS: usize = 100;
const DOC_PAD_BYTES: usize = 10_000;
/// Listeners, over this many connections, opened in this many rounds.
const LISTENERS: usize = 4_000;
const CONNECTIONS: usize = 40;
const ROUNDS: usize = 10;
/// The target: peak memory with all listeners open, above idle.
const TARGET_MB: f64 = 64.0;

/// The head of a server frame: its type, rid and error code (the documents
/// of a snapshot are skipped, not built).
#[derive(Deserialize)]
struct Head {
    #[serde(rename = "type")]
    kind: String,
    rid: Option<u64>,
    error: Option<ErrorHead>,
}

#[derive(Deserialize)]
struct ErrorHead {
    code: String,
}

/// How one listen was answered.
enum Answer {
    Snapshot,
    Refused(String),
    /// No answer: the connection closed or the time ran out.
    Lost,
}

/// Measures the worker of wrangler config `config` (`label` names it),
/// cold, then warmed.
pub fn run(runtime: &tokio::runtime::Runtime, config: &str, label: &str) {
    run_one(runtime, config, label, false);
    run_one(runtime, config, label, true);
}

/// One run on a worker of its own; when `warm`, [`CONNECTIONS`] connections
/// are opened and closed before the collection is filled.
fn run_one(runtime: &tokio::runtime::Runtime, config: &str, label: &str, warm: bool) {
    let slug = if warm { "warm" } else { "cold" };
    let server = WranglerDev::start_config(config, &format!("loadbench-memory-{label}-{slug}"));
    let label = match warm {
        true => format!("{label}, warmed"),
        false => label.to_owned(),
    };
    let cap_mb: f64 = std::env::var("BLAZE_BENCH_MEMORY_CAP_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2048.0);
    println!(
        "## {label}: worker memory, {LISTENERS} distinct query listeners on {CONNECTIONS} connections, \
         {DOCS} documents of {} KB (each listener's results: all of them); stops at +{cap_mb:.0} MB",
        DOC_PAD_BYTES / 1000
    );
    let started = workerd_memory(server.port).expect("a workerd under wrangler dev");
    println!("{:>24}: {}", "started", show(started, None));
    runtime.block_on(async {
        if warm {
            drop(open(server.port).await);
            tokio::time::sleep(Duration::from_secs(2)).await;
            let warmed = workerd_memory(server.port).expect("the worker is up");
            let step = format!("{CONNECTIONS} opened, closed");
            println!("{step:>24}: {}", show(warmed, Some(started)));
        }
        measure(&server, started, cap_mb, &label).await
    });
}

async fn measure(server: &WranglerDev, started: Rss, cap_mb: f64, label: &str) {
    let deadline = Instant::now() + Duration::from_secs(600);
    fill(server.port).await;
    let idle = workerd_memory(server.port).expect("the worker is up after the fill");
    println!(
        "{:>24}: {}",
        "idle, collection filled",
        show(idle, Some(started))
    );
    let mut conns = open(server.port).await;
    if let Some(open) = workerd_memory(server.port) {
        let label = format!("{CONNECTIONS} connections open");
        println!("{label:>24}: {}", show(open, Some(idle)));
    }
    let (mut opened, mut refused, mut lost) = (0usize, Vec::<String>::new(), 0usize);
    let mut last = idle;
    let per_round = LISTENERS / ROUNDS / CONNECTIONS;
    for round in 0..ROUNDS {
        let mut tasks = Vec::new();
        for (c, (mut sink, mut source, mut read)) in conns.drain(..).enumerate() {
            let first = round * LISTENERS / ROUNDS + c * per_round;
            tasks.push(tokio::spawn(async move {
                let mut answers = Vec::new();
                for i in first..first + per_round {
                    answers.push(listen(&mut sink, &mut source, i, &mut read).await);
                }
                (sink, source, read, answers)
            }));
        }
        for task in tasks {
            let (sink, source, read, answers) = task.await.expect("listener task");
            conns.push((sink, source, read));
            for answer in answers {
                match answer {
                    Answer::Snapshot => opened += 1,
                    Answer::Refused(code) => refused.push(code),
                    Answer::Lost => lost += 1,
                }
            }
        }
        let Some(now) = workerd_memory(server.port) else {
            println!(
                "{:>24}: the workerd process is gone (killed or aborted)",
                ""
            );
            break;
        };
        last = now;
        let asked = (round + 1) * LISTENERS / ROUNDS;
        println!(
            "{:>24}: {} | {opened} open, {} refused, {lost} unanswered",
            format!("{asked} listens"),
            show(now, Some(idle)),
            refused.len()
        );
        if now.now_mib() - idle.now_mib() > cap_mb || Instant::now() > deadline {
            println!(
                "{:>24}: stopped early (above +{cap_mb:.0} MB or over 10 minutes)",
                ""
            );
            break;
        }
    }
    let above_rss = last.now_mib() - idle.now_mib();
    let above_hwm = last.peak_mib() - idle.now_mib();
    let per_listener_kb = if opened > 0 {
        above_rss * 1024.0 / opened as f64
    } else {
        f64::NAN
    };
    refused.sort();
    refused.dedup();
    println!(
        "{:>24}: {opened} listeners open: VmRSS +{above_rss:.0} MB, VmHWM +{above_hwm:.0} MB above idle \
         ({per_listener_kb:.0} KB per listener; target peak < +{TARGET_MB:.0} MB with all {LISTENERS}); refusal codes: {}",
        format!("{label} result"),
        if refused.is_empty() { "none".to_string() } else { refused.join(", ") }
    );
    if opened < LISTENERS && opened > 0 {
        println!(
            "{:>24}: all {LISTENERS} at that rate: about +{:.0} MB (extrapolated, not measured)",
            "",
            per_listener_kb * LISTENERS as f64 / 1024.0
        );
    }
}

/// [`CONNECTIONS`] connections to the worker on `port`, each with the
/// frames read on it so far (its welcome).
async fn open(port: u16) -> Vec<(Sink, Source, u64)> {
    let mut conns = Vec::new();
    for _ in 0..CONNECTIONS {
        let (sink, source) = connect(System::Blaze, port).await;
        conns.push((sink, source, 1u64));
    }
    conns
}

/// "VmRSS … MB (+… MB), VmHWM … MB" of `now`, with `over`'s RSS as the base.
fn show(now: Rss, over: Option<Rss>) -> String {
    let delta = over.map_or(String::new(), |base| {
        format!(" (+{:.0})", now.now_mib() - base.now_mib())
    });
    format!(
        "VmRSS {:>6.0} MB{delta}, VmHWM {:>6.0} MB (workerd pid {})",
        now.now_mib(),
        now.peak_mib(),
        now.pid
    )
}

/// Writes the collection `bench` (the one [`connect`]'s socket serves): documents d000..d099, each `{"n": i, "pad": …}`.
async fn fill(port: u16) {
    let (mut sink, mut source) = connect(System::Blaze, port).await;
    let pad = "x".repeat(DOC_PAD_BYTES);
    for batch in 0..DOCS / 10 {
        let writes: Vec<_> = (batch * 10..batch * 10 + 10)
            .map(|i| json!({"op": "set", "id": format!("d{i:03}"), "data": {"n": i, "pad": pad}}))
            .collect();
        let commit =
            json!({"type": "commit", "rid": batch, "collection": "bench", "writes": writes});
        sink.send(Message::text(commit.to_string()))
            .await
            .expect("fill commit sent");
        let head = next_frame::<Head>(&mut source)
            .await
            .expect("fill commit answered");
        let code = head.error.map(|e| e.code);
        assert_eq!(
            head.kind, "committed",
            "the fill commit is refused: {code:?}"
        );
    }
}

/// Listens with query number `i`, waits for its answer, and acknowledges
/// every frame read so far (`read`, counted from the connection's start), as
/// a prompt client does (spec 10.4.6).
async fn listen(sink: &mut Sink, source: &mut Source, i: usize, read: &mut u64) -> Answer {
    let rid = i as u64 + 1;
    let query =
        json!({"collection": "bench", "where": {"field": "n", "op": "<", "value": DOCS + i}});
    let frame = json!({"type": "listen", "rid": rid, "query": query});
    if sink.send(Message::text(frame.to_string())).await.is_err() {
        return Answer::Lost;
    }
    let answer = loop {
        let Some(head) = next_frame::<Head>(source).await else {
            return Answer::Lost;
        };
        *read += 1;
        match (head.kind.as_str(), head.rid) {
            ("snapshot", Some(r)) if r == rid => break Answer::Snapshot,
            ("error", Some(r)) if r == rid => {
                break Answer::Refused(head.error.map_or("?".into(), |e| e.code))
            }
            _ => continue,
        }
    };
    let ack = json!({"type": "ack", "frames": *read});
    if sink.send(Message::text(ack.to_string())).await.is_err() {
        return Answer::Lost;
    }
    answer
}
