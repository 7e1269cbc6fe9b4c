//! Load benchmark against `wrangler dev` (a binary, not a test): Blaze beside
//! a bare-broadcast Durable Object (`bench/broadcast/`, the floor for this
//! machine), measured in the same run, with Blaze's figures printed as ratios.
//!
//! Run with `bash scripts/loadbench.sh` (builds the worker first). Every loop
//! is bounded in count and time; both servers listen on 127.0.0.1 only and
//! are stopped at the end.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use blaze_tests::live::WranglerDev;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;
type Sink = SplitSink<Socket, Message>;
type Source = SplitStream<Socket>;

/// How long any one phase may take before it gives up.
const PHASE_LIMIT: Duration = Duration::from_secs(90);

/// The two systems under load.
#[derive(Clone, Copy, PartialEq)]
enum System {
    Blaze,
    Broadcast,
}

impl System {
    fn label(self) -> &'static str {
        match self {
            System::Blaze => "blaze",
            System::Broadcast => "bare broadcast",
        }
    }

    fn url(self, port: u16) -> String {
        match self {
            System::Blaze => format!("ws://127.0.0.1:{port}/v1/ws/bench"),
            System::Broadcast => format!("ws://127.0.0.1:{port}/ws"),
        }
    }

    /// The frame that writes message `i`.
    fn write(self, i: u64) -> String {
        let pad = "x".repeat(64);
        match self {
            System::Blaze => json!({"type": "commit", "rid": i, "collection": "bench",
                "writes": [{"op": "set", "id": "x", "data": {"i": i, "pad": pad}}]})
            .to_string(),
            System::Broadcast => json!({"i": i, "pad": pad}).to_string(),
        }
    }

    /// The message number a listener's frame carries, if it is a delivery.
    fn delivered(self, frame: &Value) -> Option<u64> {
        match self {
            System::Broadcast => frame["i"].as_u64(),
            System::Blaze if frame["type"] == "change" => {
                let change = &frame["changes"][0];
                change["doc"]["data"]["i"].as_u64().or_else(|| {
                    change["patch"]
                        .as_array()?
                        .iter()
                        .find(|op| op["path"] == "/i")?["value"]
                        .as_u64()
                })
            }
            System::Blaze => None,
        }
    }

    /// Whether a frame the writer gets acknowledges one of its writes.
    fn is_ack(self, frame: &Value) -> bool {
        match self {
            System::Blaze => frame["type"] == "committed",
            System::Broadcast => frame["i"].is_u64(),
        }
    }
}

async fn connect(system: System, port: u16) -> (Sink, Source) {
    let (socket, _) = tokio::time::timeout(
        Duration::from_secs(20),
        tokio_tungstenite::connect_async(system.url(port)),
    )
    .await
    .expect("connects in time")
    .expect("connects");
    let (mut sink, mut source) = socket.split();
    if system == System::Blaze {
        sink.send(Message::text(
            json!({"type": "hello", "protocol": 1}).to_string(),
        ))
        .await
        .expect("hello");
        next_json(&mut source).await.expect("welcome");
    }
    (sink, source)
}

async fn next_json(source: &mut Source) -> Option<Value> {
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
        if system == System::Blaze {
            let listen = json!({"type": "listen", "rid": 1, "doc": "bench/x"});
            sink.send(Message::text(listen.to_string()))
                .await
                .expect("listen");
            next_json(&mut source).await.expect("snapshot");
        }
        ready.fetch_add(1, Ordering::Relaxed);
        let (seen, sent_at) = (seen.clone(), sent_at.clone());
        tokio::spawn(async move {
            let _keep = sink;
            let mut mine = Vec::new();
            while let Some(frame) = next_json(&mut source).await {
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
                let Some(frame) = next_json(&mut source).await else {
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

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let blaze = WranglerDev::start("loadbench-blaze");
    let floor = WranglerDev::start_config("bench/broadcast/wrangler.toml", "loadbench-broadcast");
    println!("# Blaze load benchmark: wrangler dev on 127.0.0.1, Blaze beside a bare-broadcast Durable Object, same run");
    if std::env::args().nth(1).as_deref() == Some("writes") {
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
    runtime.block_on(async {
        let systems = [(System::Blaze, blaze.port), (System::Broadcast, floor.port)];
        // Each figure: three rounds, Blaze and the floor alternating, and the
        // median of the three ratios (this machine is shared and noisy).
        let run = |n, count, rate| async move {
            let mut rounds = Vec::new();
            for _ in 0..3 {
                let b = phase(systems[0].0, systems[0].1, n, count, rate).await;
                let f = phase(systems[1].0, systems[1].1, n, count, rate).await;
                rounds.push((b, f));
            }
            rounds
        };
        let median = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let rounds = run(100, 300, Some(50.0)).await;
        println!("## write -> listener latency, 100 listeners, 50 writes/s, 300 writes; 3 rounds");
        for (b, f) in &rounds {
            println!("{:>15}: p50 {:>6.2} ms  p99 {:>6.2} ms | floor p50 {:>6.2} ms  p99 {:>6.2} ms", "round", b.p50_ms, b.p99_ms, f.p50_ms, f.p99_ms);
        }
        let p50 = median(rounds.iter().map(|(b, f)| b.p50_ms / f.p50_ms).collect());
        let p99 = median(rounds.iter().map(|(b, f)| b.p99_ms / f.p99_ms).collect());
        println!("{:>15}: p50 {p50:.2}x  p99 {p99:.2}x (median of rounds; target p99 <= 1.5x)", "blaze / floor");
        for (n, count) in [(100usize, 1000u64), (1000, 100)] {
            let rounds = run(n, count, None).await;
            println!("## deliveries per second at saturation, {n} listeners, {count} writes; 3 rounds");
            for (b, f) in &rounds {
                println!("{:>15}: blaze {:>8.0} /s | floor {:>8.0} /s", "round", b.deliveries_per_s, f.deliveries_per_s);
            }
            let ratio = median(rounds.iter().map(|(b, f)| b.deliveries_per_s / f.deliveries_per_s).collect());
            println!("{:>15}: {ratio:.2}x (median of rounds; target >= 0.8x)", "blaze / floor");
        }
        let rounds = run(0, 1000, None).await;
        println!("## acknowledged writes per second, one collection, no listeners, 1000 writes, window 64; 3 rounds");
        let acked = median(rounds.iter().map(|(b, _)| b.acked_per_s).collect());
        let echoes = median(rounds.iter().map(|(_, f)| f.acked_per_s).collect());
        println!("{:>15}: {acked:>10.0} /s (median; each persisted in SQLite before its ack)", System::Blaze.label());
        println!("{:>15}: {echoes:>10.0} /s (median; echoes, nothing persisted)", System::Broadcast.label());
    });
    drop(blaze);
    drop(floor);
}
