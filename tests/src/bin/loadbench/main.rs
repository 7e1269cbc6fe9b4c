//! Load benchmark against `wrangler dev` (a binary, not a test): Blaze beside
//! a bare-broadcast Durable Object (`bench/broadcast/`, the floor for this
//! machine) and the same broadcast storing each frame in SQLite first (the
//! stored floor: what a durable write adds), measured in the same run, with
//! Blaze's figures printed as ratios.
//!
//! Run with `bash scripts/loadbench.sh` (builds the worker first; with
//! `BLAZE_BASELINE=<rev>` also another revision's worker, run in the same
//! rounds; `memory` for the worker's memory under 4,000 distinct listeners,
//! see `memory.rs`; `connect` for connection setup with and without a
//! credential, see `connect.rs`; `rules` for the worker with the demo's
//! access rules beside the same worker with open rules, see `rules.rs`; `files`
//! for files beside a bare R2 Worker, see `files.rs`). Every loop
//! is bounded in count and time; both servers listen on 127.0.0.1 only and
//! are stopped at the end.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use blaze_tests::live::WranglerDev;

mod connect;
mod files;
mod memory;
mod rules;

/// The Blaze worker's wrangler config, relative to the repository root.
const BLAZE_CONFIG: &str = "crates/blaze-worker/wrangler.toml";
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;
type Sink = SplitSink<Socket, Message>;
type Source = SplitStream<Socket>;

/// How long any one phase may take before it gives up.
const PHASE_LIMIT: Duration = Duration::from_secs(90);

/// The systems under load.
#[derive(Clone, Copy, PartialEq)]
enum System {
    Blaze,
    Broadcast,
    /// The bare broadcast that first stores each frame in SQLite, so its
    /// broadcast waits for a durable write as Blaze's changes do.
    DurableBroadcast,
    /// Blaze, every connection signed in as alice, on her private todo
    /// `todos/x` (the demo's rules allow it; `rules.rs`).
    BlazeTodos,
}

impl System {
    fn label(self) -> &'static str {
        match self {
            System::Blaze => "blaze",
            System::Broadcast => "bare broadcast",
            System::DurableBroadcast => "bare broadcast, stored",
            System::BlazeTodos => "blaze (alice's todos)",
        }
    }

    fn url(self, port: u16) -> String {
        match self {
            System::Blaze => format!("ws://127.0.0.1:{port}/v1/ws/bench"),
            System::Broadcast => format!("ws://127.0.0.1:{port}/ws"),
            System::DurableBroadcast => format!("ws://127.0.0.1:{port}/durable"),
            System::BlazeTodos => format!("ws://127.0.0.1:{port}/v1/ws/todos"),
        }
    }

    /// The frame that writes message `i`.
    fn write(self, i: u64) -> String {
        let pad = "x".repeat(64);
        match self {
            System::Blaze => json!({"type": "commit", "rid": i, "collection": "bench",
                "writes": [{"op": "set", "id": "x", "data": {"i": i, "pad": pad}}]})
            .to_string(),
            System::Broadcast | System::DurableBroadcast => {
                json!({"i": i, "pad": pad}).to_string()
            }
            System::BlazeTodos => json!({"type": "commit", "rid": i, "collection": "todos",
                "writes": [{"op": "set", "id": "x", "data": {"owner": "alice", "i": i, "pad": pad}}]})
            .to_string(),
        }
    }

    /// Whether it speaks Blaze's protocol (the floors only echo).
    fn is_blaze(self) -> bool {
        matches!(self, System::Blaze | System::BlazeTodos)
    }

    /// The document its listeners follow (Blaze only).
    fn listened(self) -> &'static str {
        match self {
            System::BlazeTodos => "todos/x",
            _ => "bench/x",
        }
    }

    /// The message number a listener's frame carries, if it is a delivery.
    fn delivered(self, frame: &Value) -> Option<u64> {
        match self {
            System::Broadcast | System::DurableBroadcast => frame["i"].as_u64(),
            System::Blaze | System::BlazeTodos if frame["type"] == "change" => {
                let change = &frame["changes"][0];
                change["doc"]["data"]["i"].as_u64().or_else(|| {
                    change["patch"]
                        .as_array()?
                        .iter()
                        .find(|op| op["path"] == "/i")?["value"]
                        .as_u64()
                })
            }
            System::Blaze | System::BlazeTodos => None,
        }
    }

    /// Whether a frame the writer gets acknowledges one of its writes.
    fn is_ack(self, frame: &Value) -> bool {
        match self {
            System::Blaze | System::BlazeTodos => frame["type"] == "committed",
            System::Broadcast | System::DurableBroadcast => frame["i"].is_u64(),
        }
    }
}

/// A client network of its own for each connection, as that many clients
/// on the internet have (`CF-Connecting-IP`, which `wrangler dev` passes
/// on): Blaze counts the connections that do not sign in per network (spec
/// 10.1), the floors ignore the header.
fn next_network() -> HeaderValue {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let [_, b, c, d] = NEXT.fetch_add(1, Ordering::Relaxed).to_be_bytes();
    HeaderValue::from_str(&format!("10.{b}.{c}.{d}")).expect("an address")
}

async fn connect(system: System, port: u16) -> (Sink, Source) {
    let mut request = system.url(port).into_client_request().expect("a URL");
    request
        .headers_mut()
        .insert("CF-Connecting-IP", next_network());
    let (socket, _) = tokio::time::timeout(
        Duration::from_secs(20),
        tokio_tungstenite::connect_async(request),
    )
    .await
    .expect("connects in time")
    .expect("connects");
    let (mut sink, mut source) = socket.split();
    let hello = match system {
        // As the reference clients do: documents a connection already holds
        // are named, not sent again (spec 10.4.9).
        System::Blaze => Some(json!({"type": "hello", "protocol": 1, "held_docs": true})),
        System::BlazeTodos => Some(json!({"type": "hello", "protocol": 1, "auth": rules::alice()})),
        System::Broadcast | System::DurableBroadcast => None,
    };
    if let Some(hello) = hello {
        sink.send(Message::text(hello.to_string()))
            .await
            .expect("hello");
        let welcome: Value = next_frame(&mut source).await.expect("welcome");
        assert_eq!(welcome["type"], "welcome", "signed in: {welcome}");
    }
    (sink, source)
}

/// The next text frame of `source` as a `T`; `None` on a close, an error, a
/// frame that is not a `T`, or no frame within [`PHASE_LIMIT`].
async fn next_frame<T: serde::de::DeserializeOwned>(source: &mut Source) -> Option<T> {
    loop {
        match tokio::time::timeout(PHASE_LIMIT, source.next())
            .await
            .ok()??
            .ok()?
        {
            Message::Text(text) => return serde_json::from_str(&text).ok(),
            Message::Close(_) => return None,
            _ => continue,
        }
    }
}

/// What the listeners saw.
struct Seen {
    deliveries: AtomicUsize,
    /// Listeners that received the last message.
    finished: AtomicUsize,
    latencies_us: std::sync::Mutex<Vec<u64>>,
}

/// Opens `n` listeners; each records, per delivery, the time since its send.
async fn listeners(
    system: System,
    port: u16,
    n: usize,
    last: u64,
    sent_at: Arc<Vec<AtomicU64>>,
    origin: Instant,
) -> Arc<Seen> {
    let seen = Arc::new(Seen {
        deliveries: AtomicUsize::new(0),
        finished: AtomicUsize::new(0),
        latencies_us: std::sync::Mutex::new(Vec::new()),
    });
    let ready = Arc::new(AtomicUsize::new(0));
    for _ in 0..n {
        let (mut sink, mut source) = connect(system, port).await;
        if system.is_blaze() {
            let listen = json!({"type": "listen", "rid": 1, "doc": system.listened()});
            sink.send(Message::text(listen.to_string()))
                .await
                .expect("listen");
            let answer: Value = next_frame(&mut source).await.expect("snapshot");
            assert_eq!(answer["type"], "snapshot", "listened: {answer}");
        }
        ready.fetch_add(1, Ordering::Relaxed);
        let (seen, sent_at) = (seen.clone(), sent_at.clone());
        tokio::spawn(async move {
            let _keep = sink;
            let mut mine = Vec::new();
            while let Some(frame) = next_frame::<Value>(&mut source).await {
                let Some(i) = system.delivered(&frame) else {
                    continue;
                };
                let now = origin.elapsed().as_micros() as u64;
                let sent = sent_at
                    .get(i as usize)
                    .map_or(0, |t| t.load(Ordering::SeqCst));
                mine.push(now.saturating_sub(sent));
                seen.deliveries.fetch_add(1, Ordering::Relaxed);
                if i == last {
                    seen.finished.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            }
            seen.latencies_us.lock().expect("latencies").extend(mine);
        });
    }
    seen
}

/// Sends writes 0..count from one socket, at `rate` per second or as fast as
/// a window of `window` unacknowledged writes allows; returns the acked count.
async fn writer(
    system: System,
    port: u16,
    count: u64,
    rate: Option<f64>,
    window: usize,
    sent_at: Arc<Vec<AtomicU64>>,
    origin: Instant,
) -> u64 {
    let (mut sink, mut source) = connect(system, port).await;
    let slots = Arc::new(Semaphore::new(window));
    let acked = Arc::new(AtomicU64::new(0));
    let reader = {
        let (slots, acked) = (slots.clone(), acked.clone());
        tokio::spawn(async move {
            while acked.load(Ordering::Relaxed) < count {
                let Some(frame) = next_frame::<Value>(&mut source).await else {
                    break;
                };
                if system.is_ack(&frame) {
                    acked.fetch_add(1, Ordering::Relaxed);
                    slots.add_permits(1);
                }
            }
        })
    };
    let mut ticker = rate.map(|r| tokio::time::interval(Duration::from_secs_f64(1.0 / r)));
    for i in 0..count {
        if let Some(t) = ticker.as_mut() {
            t.tick().await;
        }
        slots.acquire().await.expect("semaphore").forget();
        sent_at[i as usize].store(origin.elapsed().as_micros() as u64, Ordering::SeqCst);
        sink.send(Message::text(system.write(i)))
            .await
            .expect("write sent");
    }
    let _ = tokio::time::timeout(PHASE_LIMIT, reader).await;
    acked.load(Ordering::Relaxed)
}

/// One phase's figures.
struct Figures {
    p50_ms: f64,
    p99_ms: f64,
    deliveries_per_s: f64,
    acked_per_s: f64,
}

async fn phase(
    system: System,
    port: u16,
    n_listeners: usize,
    count: u64,
    rate: Option<f64>,
) -> Figures {
    let origin = Instant::now();
    let sent_at: Arc<Vec<AtomicU64>> = Arc::new((0..count).map(|_| AtomicU64::new(0)).collect());
    let seen = listeners(
        system,
        port,
        n_listeners,
        count - 1,
        sent_at.clone(),
        origin,
    )
    .await;
    let started = Instant::now();
    let window = if rate.is_some() { 1024 } else { 64 };
    let acked = writer(system, port, count, rate, window, sent_at, origin).await;
    let acked_in = started.elapsed();
    let deadline = Instant::now() + PHASE_LIMIT;
    while seen.finished.load(Ordering::Relaxed) < n_listeners && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut lat = seen.latencies_us.lock().expect("latencies").clone();
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .map_or(f64::NAN, |us| *us as f64 / 1000.0)
    };
    Figures {
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        deliveries_per_s: seen.deliveries.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64(),
        acked_per_s: acked as f64 / acked_in.as_secs_f64(),
    }
}

/// One worker under load: which protocol it speaks, where, its part in the
/// comparison and its name in the output.
struct Target {
    system: System,
    port: u16,
    role: Role,
    label: String,
}

/// What a target is compared as.
#[derive(Clone, Copy, PartialEq)]
enum Role {
    /// This build.
    Blaze,
    /// Another revision's build (`BLAZE_BASELINE`).
    Baseline,
    /// The bare broadcast: the targets are ratios to it.
    Floor,
    /// The bare broadcast that stores each frame first: what a durable write
    /// costs on this machine, so Blaze's ratio to it is its own cost.
    StoredFloor,
}

/// The index of the target playing `role`, if one does.
fn find(targets: &[Target], role: Role) -> Option<usize> {
    targets.iter().position(|t| t.role == role)
}

/// The median of `v` (the middle element; `v` is not empty).
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Rounds per figure: `BLAZE_BENCH_ROUNDS`, 3 unless set.
fn round_count() -> usize {
    std::env::var("BLAZE_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(3)
}

/// Each figure: [`round_count`] rounds, the targets alternating within each
/// round (each round starting with the next one), so every round measures all
/// of them under the same load of the machine.
async fn rounds(targets: &[Target], n: usize, count: u64, rate: Option<f64>) -> Vec<Vec<Figures>> {
    let mut rounds = Vec::new();
    for k in 0..round_count() {
        // Each round starts with another target, so none always runs first.
        let mut round: Vec<Option<Figures>> = targets.iter().map(|_| None).collect();
        for j in 0..targets.len() {
            let i = (k + j) % targets.len();
            let t = &targets[i];
            round[i] = Some(phase(t.system, t.port, n, count, rate).await);
        }
        rounds.push(round.into_iter().flatten().collect());
    }
    rounds
}

/// Prints, for each pair (a, b) of targets to compare, the median over the
/// rounds of `figure(a) / figure(b)`, with the target it should meet against
/// the floor and against the baseline.
fn print_ratios(
    targets: &[Target],
    rounds: &[Vec<Figures>],
    what: &str,
    figure: fn(&Figures) -> f64,
    floor_target: &str,
    baseline_target: &str,
) {
    let pairs = [
        (Role::Blaze, Role::Floor, floor_target),
        (Role::Baseline, Role::Floor, ""),
        (Role::Blaze, Role::Baseline, baseline_target),
        (Role::StoredFloor, Role::Floor, ""),
        (Role::Blaze, Role::StoredFloor, "; Blaze's own cost"),
    ];
    for (a, b, target) in pairs {
        let (Some(a), Some(b)) = (find(targets, a), find(targets, b)) else {
            continue;
        };
        let ratio = median(
            rounds
                .iter()
                .map(|r| figure(&r[a]) / figure(&r[b]))
                .collect(),
        );
        let name = format!("{} / {}", targets[a].label, targets[b].label);
        println!("{name:>24}: {what} {ratio:.2}x (median of rounds{target})");
    }
}

/// What this build's throughput must keep against the baseline build (issue 13).
const BASELINE_TARGET: &str = "; target >= 0.95x";
/// Latency against the baseline: no target, only not worse.
const BASELINE_LATENCY: &str = "; lower is better";

/// Latency, fan-out and saturation, each against every target.
async fn load(targets: &[Target]) {
    let names = |f: &dyn Fn(&Figures) -> String, round: &[Figures]| {
        targets
            .iter()
            .zip(round)
            .map(|(t, fig)| format!("{} {}", t.label, f(fig)))
            .collect::<Vec<_>>()
            .join(" | ")
    };
    let rs = rounds(targets, 100, 300, Some(50.0)).await;
    let n_rounds = round_count();
    println!(
        "## write -> listener latency, 100 listeners, 50 writes/s, 300 writes; {n_rounds} rounds"
    );
    for r in &rs {
        let show = |f: &Figures| format!("p50 {:>6.2} ms  p99 {:>6.2} ms", f.p50_ms, f.p99_ms);
        println!("{:>24}: {}", "round", names(&show, r));
    }
    // Lower is better for latency: the ratios that must stay low.
    print_ratios(
        targets,
        &rs,
        "p50",
        |f| f.p50_ms,
        "; target <= 1.1x",
        BASELINE_LATENCY,
    );
    print_ratios(
        targets,
        &rs,
        "p99",
        |f| f.p99_ms,
        "; target <= 1.1x",
        BASELINE_LATENCY,
    );
    for (n, count) in [(100usize, 1000u64), (1000, 100)] {
        let rs = rounds(targets, n, count, None).await;
        println!("## deliveries per second at saturation, {n} listeners, {count} writes; {n_rounds} rounds");
        for r in &rs {
            let show = |f: &Figures| format!("{:>8.0} /s", f.deliveries_per_s);
            println!("{:>24}: {}", "round", names(&show, r));
        }
        print_ratios(
            targets,
            &rs,
            "deliveries/s",
            |f| f.deliveries_per_s,
            "; target >= 0.8x",
            BASELINE_TARGET,
        );
    }
    let rs = rounds(targets, 0, 1000, None).await;
    println!("## acknowledged writes per second, one collection, no listeners, 1000 writes, window 64; {n_rounds} rounds");
    for r in &rs {
        let show = |f: &Figures| format!("{:>8.0} /s", f.acked_per_s);
        println!("{:>24}: {}", "round", names(&show, r));
    }
    for (i, t) in targets.iter().enumerate() {
        let acked = median(rs.iter().map(|r| r[i].acked_per_s).collect());
        let note = match t.system {
            System::Blaze | System::BlazeTodos => "each persisted in SQLite before its ack",
            System::Broadcast => "echoes, nothing persisted",
            System::DurableBroadcast => "each stored in SQLite before its echo",
        };
        println!("{:>24}: {acked:>10.0} /s (median; {note})", t.label);
    }
    if let (Some(a), Some(b)) = (find(targets, Role::Blaze), find(targets, Role::Baseline)) {
        let ratio = median(
            rs.iter()
                .map(|r| r[a].acked_per_s / r[b].acked_per_s)
                .collect(),
        );
        let name = format!("{} / {}", targets[a].label, targets[b].label);
        println!(
            "{name:>24}: acknowledged writes/s {ratio:.2}x (median of rounds{BASELINE_TARGET})"
        );
    }
}

/// The baseline build `scripts/loadbench.sh` made for `BLAZE_BASELINE`, if
/// any: its wrangler config and its name.
fn baseline() -> Option<(String, String)> {
    let config = std::env::var("BLAZE_BASELINE_CONFIG").ok()?;
    let label = std::env::var("BLAZE_BASELINE_LABEL").unwrap_or_else(|_| "baseline".into());
    Some((config, label))
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mode = std::env::args().nth(1).unwrap_or_default();
    let baseline = baseline();
    if mode == "connect" {
        println!("# Blaze connection setup benchmark: wrangler dev on 127.0.0.1");
        connect::run(&runtime, baseline.as_ref());
        return;
    }
    if mode == "files" {
        println!("# Blaze files benchmark: wrangler dev on 127.0.0.1, Blaze's files routes beside a bare R2 Worker, same run");
        files::run(&runtime);
        return;
    }
    if mode == "rules" {
        println!("# Blaze access rules benchmark: wrangler dev on 127.0.0.1, the demo's rules beside open rules, same build, same run");
        rules::run(&runtime);
        return;
    }
    if mode == "memory" || mode == "all" {
        println!("# Blaze memory benchmark: wrangler dev on 127.0.0.1, one worker at a time");
        memory::run(&runtime, BLAZE_CONFIG, System::Blaze.label());
        if let Some((config, label)) = &baseline {
            memory::run(&runtime, config, label);
        }
        if mode == "memory" {
            return;
        }
    }
    let blaze = WranglerDev::start("loadbench-blaze");
    let base = baseline
        .as_ref()
        .map(|(config, _)| WranglerDev::start_config(config, "loadbench-baseline"));
    let floor = WranglerDev::start_config("bench/broadcast/wrangler.toml", "loadbench-broadcast");
    println!("# Blaze load benchmark: wrangler dev on 127.0.0.1, Blaze beside a bare-broadcast Durable Object (floor) and one that stores each frame first (stored floor), same run");
    if mode == "writes" {
        // Only the write path, three rounds in a row: shows whether it slows as the change log grows.
        runtime.block_on(async {
            for round in 1..=3 {
                let b = phase(System::Blaze, blaze.port, 0, 1000, None).await;
                println!(
                    "round {round}: {:>8.0} acknowledged writes/s",
                    b.acked_per_s
                );
            }
        });
        return;
    }
    let mut targets = vec![Target {
        system: System::Blaze,
        port: blaze.port,
        role: Role::Blaze,
        label: System::Blaze.label().into(),
    }];
    if let (Some(server), Some((_, label))) = (&base, &baseline) {
        println!("# baseline: the worker built from {label}, in the same rounds");
        targets.push(Target {
            system: System::Blaze,
            port: server.port,
            role: Role::Baseline,
            label: label.clone(),
        });
    }
    targets.push(Target {
        system: System::Broadcast,
        port: floor.port,
        role: Role::Floor,
        label: "floor".into(),
    });
    targets.push(Target {
        system: System::DurableBroadcast,
        port: floor.port,
        role: Role::StoredFloor,
        label: "stored floor".into(),
    });
    runtime.block_on(load(&targets));
    drop(blaze);
    drop(base);
    drop(floor);
}
