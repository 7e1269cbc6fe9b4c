//! `loadbench files`: upload and download throughput and time to first byte
//! of Blaze's files routes (spec 15) beside a bare JavaScript Worker that
//! streams the same bodies into and out of the same local R2 simulation
//! (`bench/files/`), in the same rounds; then the peak memory of each
//! worker's `workerd` while a 150 MB file is uploaded and downloaded in one
//! request each. Blaze's downloads are measured twice: with a credential
//! (the folder's object reads the metadata document and asks the rules
//! first) and through signed URLs pinned to the bytes (spec 15.5: R2
//! alone), each against the bare worker's; with a credential also against
//! the bare worker asking a Durable Object for the key before it reads R2
//! (one round trip, the least a design pays that keeps metadata in a
//! Durable Object: Blaze's own cost is the ratio to it). Each round alternates which
//! system goes first; figures are medians of the per-round ratios. Every download is checked by
//! SHA-256 against what was uploaded, so a fast wrong answer cannot pass.

use std::time::{Duration, Instant};

use blaze_tests::live::{workerd_memory, WranglerDev};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{median, round_count};

/// The development admin key: Blaze's uploads are an admin's.
const ADMIN: &str = "Bearer blaze-dev-admin-key";
/// Files per round and their size.
const FILES: usize = 8;
const FILE_BYTES: usize = 8 << 20;
/// Small-file downloads per round, for the time to first byte.
const SMALL_GETS: usize = 30;
const SMALL_BYTES: usize = 1024;
/// The file of the memory figure: over one request's default limit, so
/// Blaze's worker is started with a larger `BLAZE_FILES_MAX_BYTES`.
const BIG_BYTES: usize = 150_000_000;
/// Bytes written to the socket per call while uploading.
const CHUNK: usize = 1 << 20;

/// One of the systems under test.
#[derive(Clone, Copy)]
struct System {
    label: &'static str,
    port: u16,
    blaze: bool,
    /// The bare worker's path prefix: `/consulted` asks its Durable Object
    /// before R2 (downloads only).
    prefix: &'static str,
}

impl System {
    /// The request target of file `name`.
    fn target(&self, name: &str) -> String {
        if self.blaze {
            format!("/v1/files/bench/{name}")
        } else {
            format!("{}/bench/{name}", self.prefix)
        }
    }

    /// The headers every request carries.
    fn auth(&self) -> Option<&'static str> {
        self.blaze.then_some(ADMIN)
    }
}

/// What one exchange measured.
struct Exchange {
    status: u16,
    /// From the first byte sent to the first byte of the answer.
    first_byte: Duration,
    /// The SHA-256 of the answer's body.
    sha: [u8; 32],
    body_len: usize,
}

/// Deterministic bytes of file `seed`, `len` long, produced chunk by chunk.
fn chunk(seed: u64, offset: usize, len: usize) -> Vec<u8> {
    (offset..offset + len)
        .map(|i| ((i as u64).wrapping_mul(2_654_435_761) ^ seed.wrapping_mul(97)) as u8)
        .collect()
}

/// The SHA-256 of file `seed` of `len` bytes.
fn expected_sha(seed: u64, len: usize) -> [u8; 32] {
    let mut hash = Sha256::new();
    let mut at = 0;
    while at < len {
        let n = CHUNK.min(len - at);
        hash.update(chunk(seed, at, n));
        at += n;
    }
    hash.finalize().into()
}

/// Sends `method target` with a body of file `seed` (`len` bytes) and reads
/// the whole answer, hashing its body.
async fn exchange(
    system: System,
    method: &str,
    target: &str,
    body: Option<(u64, usize)>,
) -> Exchange {
    let mut stream = TcpStream::connect(("127.0.0.1", system.port))
        .await
        .expect("the worker accepts");
    let _ = stream.set_nodelay(true);
    let mut head =
        format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    if let Some(auth) = system.auth() {
        head.push_str(&format!("Authorization: {auth}\r\n"));
    }
    let (seed, len) = body.unwrap_or((0, 0));
    if body.is_some() {
        head.push_str("Content-Type: application/octet-stream\r\n");
        head.push_str(&format!("Content-Length: {len}\r\n"));
    }
    head.push_str("\r\n");
    let started = Instant::now();
    stream.write_all(head.as_bytes()).await.expect("sends");
    let mut at = 0;
    while at < len {
        let n = CHUNK.min(len - at);
        stream
            .write_all(&chunk(seed, at, n))
            .await
            .expect("sends the body");
        at += n;
    }
    read_answer(&mut stream, started).await
}

/// Reads an answer with a `Content-Length` (or up to the end of the stream).
async fn read_answer(stream: &mut TcpStream, started: Instant) -> Exchange {
    let mut buf = vec![0u8; 256 * 1024];
    let mut head = Vec::new();
    let mut first_byte = None;
    let (status, length, mut rest) = loop {
        let n = stream.read(&mut buf).await.expect("reads the answer");
        assert!(n > 0, "the worker closed before answering");
        first_byte.get_or_insert_with(|| started.elapsed());
        head.extend_from_slice(&buf[..n]);
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            let text = String::from_utf8_lossy(&head[..end]).to_ascii_lowercase();
            let status = text
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .expect("a status line");
            let length = text
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            break (status, length, head[end + 4..].to_vec());
        }
    };
    let mut hash = Sha256::new();
    let mut body_len = rest.len();
    hash.update(&rest);
    rest.clear();
    while length.is_none_or(|l| body_len < l) {
        let n = stream.read(&mut buf).await.expect("reads the body");
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        body_len += n;
    }
    Exchange {
        status,
        first_byte: first_byte.unwrap_or_default(),
        sha: hash.finalize().into(),
        body_len,
    }
}

/// Uploads file `seed` as `name`; panics unless it is stored.
async fn upload(system: System, name: &str, seed: u64, len: usize) -> Exchange {
    let answer = exchange(system, "PUT", &system.target(name), Some((seed, len))).await;
    assert_eq!(answer.status, 200, "{}: upload of {name}", system.label);
    answer
}

/// Downloads `name`; panics unless it is file `seed` of `len` bytes, whole.
async fn download(system: System, name: &str, seed: u64, len: usize) -> Exchange {
    download_from(system, &system.target(name), name, seed, len).await
}

/// [`download`] from request target `target`.
async fn download_from(
    system: System,
    target: &str,
    name: &str,
    seed: u64,
    len: usize,
) -> Exchange {
    let answer = exchange(system, "GET", target, None).await;
    assert_eq!(answer.status, 200, "{}: download of {name}", system.label);
    assert_eq!(answer.body_len, len, "{}: length of {name}", system.label);
    assert!(
        answer.sha == expected_sha(seed, len),
        "{}: {name} came back different",
        system.label
    );
    answer
}

/// A signed download URL of Blaze's file `name` (spec 15.5), minted as the admin.
async fn mint(system: System, name: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", system.port))
        .await
        .expect("the worker accepts");
    let head = format!(
        "POST {}?url HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         Authorization: {ADMIN}\r\nContent-Length: 0\r\n\r\n",
        system.target(name)
    );
    stream.write_all(head.as_bytes()).await.expect("sends");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("reads");
    let text = String::from_utf8_lossy(&raw);
    let body = text.split_once("\r\n\r\n").expect("an answer").1;
    let minted: serde_json::Value = serde_json::from_str(body).expect("a minted URL");
    minted["url"].as_str().expect("a URL").to_owned()
}

/// Downloads of one round: throughput and times to first byte.
struct Downloads {
    mb_s: f64,
    /// Median time to first byte of a large download, in ms.
    large_ttfb_ms: f64,
    /// Median time to first byte of a small download, in ms.
    small_ttfb_ms: f64,
}

/// One round's figures of one system.
struct Round {
    upload_mb_s: f64,
    /// With a credential (the bare worker: its only way).
    plain: Downloads,
    /// Blaze's through signed URLs.
    signed: Option<Downloads>,
}

/// Downloads round `k`'s files (uploaded already), from their paths or,
/// with `signed`, through URLs minted beforehand.
async fn downloads(system: System, k: usize, signed: bool) -> Downloads {
    let mut targets = Vec::new();
    let small = format!("r{k}-small.bin");
    for name in (0..FILES)
        .map(|i| format!("r{k}-f{i}.bin"))
        .chain([small.clone()])
    {
        let target = if signed {
            mint(system, &name).await
        } else {
            system.target(&name)
        };
        targets.push((name, target));
    }
    let small_target = targets.pop().expect("the small file").1;
    let mb = (FILES * FILE_BYTES) as f64 / 1e6;
    let started = Instant::now();
    let mut large = Vec::new();
    for (i, (name, target)) in targets.iter().enumerate() {
        let seed = (k * FILES + i) as u64;
        let got = download_from(system, target, name, seed, FILE_BYTES).await;
        large.push(got.first_byte.as_secs_f64() * 1e3);
    }
    let mb_s = mb / started.elapsed().as_secs_f64();
    let mut ttfb = Vec::new();
    for _ in 0..SMALL_GETS {
        let got = download_from(system, &small_target, &small, 7, SMALL_BYTES).await;
        ttfb.push(got.first_byte.as_secs_f64() * 1e3);
    }
    Downloads {
        mb_s,
        large_ttfb_ms: median(large),
        small_ttfb_ms: median(ttfb),
    }
}

/// One round on `system`: uploads, then downloads (Blaze's twice).
async fn round(system: System, k: usize) -> Round {
    let mb = (FILES * FILE_BYTES) as f64 / 1e6;
    let started = Instant::now();
    for i in 0..FILES {
        upload(
            system,
            &format!("r{k}-f{i}.bin"),
            (k * FILES + i) as u64,
            FILE_BYTES,
        )
        .await;
    }
    let upload_mb_s = mb / started.elapsed().as_secs_f64();
    upload(system, &format!("r{k}-small.bin"), 7, SMALL_BYTES).await;
    let plain = downloads(system, k, false).await;
    let signed = if system.blaze {
        Some(downloads(system, k, true).await)
    } else {
        None
    };
    Round {
        upload_mb_s,
        plain,
        signed,
    }
}

/// The peak memory (VmHWM) of `system`'s `workerd` above what it was
/// before a 150 MB upload, after the upload and after its download.
async fn big_file_memory(system: System) -> Option<(f64, f64)> {
    // Warm up: the first request loads the worker.
    upload(system, "warm.bin", 1, SMALL_BYTES).await;
    let before = workerd_memory(system.port)?;
    upload(system, "big.bin", 3, BIG_BYTES).await;
    let uploaded = workerd_memory(system.port)?;
    download(system, "big.bin", 3, BIG_BYTES).await;
    let downloaded = workerd_memory(system.port)?;
    println!(
        "{:>24}: workerd VmHWM {:.0} MB idle, {:.0} MB after a {} MB upload, {:.0} MB after its download",
        system.label,
        before.peak_mib(),
        uploaded.peak_mib(),
        BIG_BYTES / 1_000_000,
        downloaded.peak_mib()
    );
    Some((
        uploaded.peak_mib() - before.peak_mib(),
        downloaded.peak_mib() - before.peak_mib(),
    ))
}

/// Runs the benchmark and prints its figures.
pub fn run(runtime: &tokio::runtime::Runtime) {
    let big = format!("BLAZE_FILES_MAX_BYTES:{}", 200 << 20);
    let blaze_server = WranglerDev::start_with_vars("loadbench-files", &[&big]);
    let floor_server =
        WranglerDev::start_config("bench/files/wrangler.toml", "loadbench-files-floor");
    let blaze = System {
        label: "blaze",
        port: blaze_server.port,
        blaze: true,
        prefix: "",
    };
    let floor = System {
        label: "bare R2 worker",
        port: floor_server.port,
        blaze: false,
        prefix: "",
    };
    let consulted = System {
        label: "bare R2 worker + DO",
        prefix: "/consulted",
        ..floor
    };
    runtime.block_on(async {
        println!(
            "## peak memory while one request uploads, then one downloads, {} MB",
            BIG_BYTES / 1_000_000
        );
        let memory = [big_file_memory(blaze).await, big_file_memory(floor).await];
        for (system, figure) in [blaze, floor].iter().zip(memory) {
            match figure {
                Some((up, down)) => println!(
                    "{:>24}: VmHWM +{up:.0} MB above idle after the upload, +{down:.0} MB after the download",
                    system.label
                ),
                None => println!("{:>24}: workerd's memory is not readable here", system.label),
            }
        }
        println!(
            "## {FILES} files of {} MiB up then down, one request at a time; {SMALL_GETS} downloads of {SMALL_BYTES} B; {} rounds",
            FILE_BYTES >> 20,
            round_count()
        );
        let mut ratios: [Vec<f64>; 13] = Default::default();
        for k in 0..round_count() {
            let (b, f) = if k % 2 == 0 {
                let b = round(blaze, k).await;
                (b, round(floor, k).await)
            } else {
                let f = round(floor, k).await;
                (round(blaze, k).await, f)
            };
            // The bare worker's files of this round, through its Durable Object.
            let c = downloads(consulted, k, false).await;
            let signed = b.signed.as_ref().expect("Blaze's signed downloads");
            for (label, up, d) in [
                ("blaze", Some(b.upload_mb_s), &b.plain),
                ("blaze, signed URL", None, signed),
                ("bare R2 worker", Some(f.upload_mb_s), &f.plain),
                ("bare R2 worker + DO", None, &c),
            ] {
                let up = up.map_or("      -".to_owned(), |u| format!("{u:>6.1}"));
                println!(
                    "{:>31}: upload {up} MB/s | download {:>6.1} MB/s | first byte: {:>5.1} ms ({} MiB), {:>5.1} ms ({SMALL_BYTES} B)",
                    format!("round {k}: {label}"),
                    d.mb_s,
                    d.large_ttfb_ms,
                    FILE_BYTES >> 20,
                    d.small_ttfb_ms
                );
            }
            ratios[0].push(b.upload_mb_s / f.upload_mb_s);
            for (at, d, base) in [
                (1, &b.plain, &f.plain),
                (4, signed, &f.plain),
                (7, &b.plain, &c),
                (10, &c, &f.plain),
            ] {
                ratios[at].push(d.mb_s / base.mb_s);
                ratios[at + 1].push(base.large_ttfb_ms / d.large_ttfb_ms);
                ratios[at + 2].push(base.small_ttfb_ms / d.small_ttfb_ms);
            }
        }
        let ratios = ratios.map(median);
        let target = "target >= 0.8x";
        println!("    blaze / bare R2 worker: upload throughput {:.2}x (median of rounds; {target})", ratios[0]);
        for (at, pair, how, target) in [
            (1, "blaze / bare R2 worker", "with a credential", target),
            (4, "blaze / bare R2 worker", "through a signed URL", target),
            (7, "blaze / bare R2 worker + DO", "with a credential", "Blaze's own cost"),
            (10, "bare R2 worker + DO / bare R2 worker", "", "one Durable Object round trip"),
        ] {
            let how = if how.is_empty() { String::new() } else { format!(", {how}") };
            println!("    {pair}{how}: download throughput {:.2}x (median of rounds; {target})", ratios[at]);
            println!("    {pair}{how}: first-byte speed, {} MiB download {:.2}x (the second's time / the first's; {target})", FILE_BYTES >> 20, ratios[at + 1]);
            println!("    {pair}{how}: first-byte speed, {SMALL_BYTES} B download {:.2}x (the second's time / the first's; {target})", ratios[at + 2]);
        }
    });
}
