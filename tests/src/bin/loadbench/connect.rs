//! `loadbench connect`: how long a WebSocket takes from connect to
//! `welcome`, without a credential and with each kind of credential (issue
//! 14). One worker with the local development identity plus two inline JWKS
//! issuers (ES256 and RS256 keys made for the run); each round opens one
//! connection of every kind in turn, so the kinds share the machine's noise,
//! and the figures are medians with their ratio to the anonymous connection.
//! A "first" token is new on every connection, so the worker verifies its
//! signature; a "cached" one is the same token every time, answered from the
//! verifier's cache. With a baseline build (`BLAZE_BASELINE`), a second
//! worker of that build runs beside it, and each round also opens one
//! connection without a credential and one with the admin key there, so a
//! change to connection setup is measured against the build before it.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use blaze_auth::mint;
use blaze_tests::live::WranglerDev;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use super::median;

/// Connections of each kind.
const CONNECTIONS: usize = 200;

/// The development identity's HS256 secret, admin key, issuer and audience.
const SECRET: &str = "blaze-dev-secret-not-for-production";
const ADMIN_KEY: &str = "blaze-dev-admin-key";
const ISSUER: &str = "blaze-dev";
const AUDIENCE: &str = "blaze";

/// A kind of connection: its name and the credential of connection `i`.
struct Kind {
    name: &'static str,
    credential: Box<dyn Fn(usize) -> Option<String>>,
}

/// The kinds (indices into the kinds table) also timed on the baseline build.
const COMPARED: [usize; 2] = [0, 1];

/// Runs the benchmark and prints its table; `baseline` is the wrangler
/// config and label of an earlier build to compare with.
pub fn run(runtime: &tokio::runtime::Runtime, baseline: Option<&(String, String)>) {
    let (es_private, es_public) = mint::generate("ES256");
    let (rs_private, rs_public) = mint::generate("RS256");
    let issuers = json!({
        "hs256": {"issuer": ISSUER, "audience": AUDIENCE},
        "issuers": [
            {"issuer": "bench-es", "audience": AUDIENCE, "jwks": {"keys": [es_public]}},
            {"issuer": "bench-rs", "audience": AUDIENCE, "jwks": {"keys": [rs_public]}},
        ],
    });
    let auth = format!("BLAZE_AUTH:{issuers}");
    let server = WranglerDev::start_with_vars("loadbench-connect", &[&auth]);
    let before = baseline.map(|(config, _)| {
        WranglerDev::start_config_with_vars(config, "loadbench-connect-baseline", &[&auth])
    });
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
        + 3600;
    let claims = move |iss: &str, i: usize| json!({"sub": format!("user{i}"), "iss": iss, "aud": AUDIENCE, "exp": exp});
    let signed = move |key: &Value, iss: &'static str| {
        let key = key.clone();
        move |i: usize| Some(mint::sign(&key, &claims(iss, i)).expect("signs"))
    };
    let hs = move |i: usize| Some(mint::hs256(SECRET.as_bytes(), &claims(ISSUER, i)));
    let kinds = [
        Kind {
            name: "no credential",
            credential: Box::new(|_| None),
        },
        Kind {
            name: "admin key",
            credential: Box::new(|_| Some(ADMIN_KEY.to_owned())),
        },
        Kind {
            name: "HS256, cached",
            credential: Box::new(move |_| hs(usize::MAX)),
        },
        Kind {
            name: "HS256, first",
            credential: Box::new(hs),
        },
        Kind {
            name: "ES256, cached",
            credential: Box::new({
                let s = signed(&es_private, "bench-es");
                move |_| s(usize::MAX)
            }),
        },
        Kind {
            name: "ES256, first",
            credential: Box::new(signed(&es_private, "bench-es")),
        },
        Kind {
            name: "RS256, cached",
            credential: Box::new({
                let s = signed(&rs_private, "bench-rs");
                move |_| s(usize::MAX)
            }),
        },
        Kind {
            name: "RS256, first",
            credential: Box::new(signed(&rs_private, "bench-rs")),
        },
    ];
    // Every credential is made before the clock starts: one row per round.
    let rounds: Vec<Vec<Option<String>>> = (0..CONNECTIONS)
        .map(|i| kinds.iter().map(|k| (k.credential)(i)).collect())
        .collect();
    println!(
        "## connection setup (connect, hello, welcome), {CONNECTIONS} connections of each kind, interleaved"
    );
    let (times, before_times) = runtime.block_on(async {
        let mut times = vec![Vec::new(); kinds.len()];
        let mut before_times = vec![Vec::new(); COMPARED.len()];
        let deadline = Instant::now() + Duration::from_secs(300);
        for round in &rounds {
            for (k, (kind, credential)) in kinds.iter().zip(round).enumerate() {
                if Instant::now() > deadline {
                    return (times, before_times);
                }
                times[k].push(timed(server.port, credential.as_deref(), kind.name).await);
            }
            for (slot, &k) in before_times.iter_mut().zip(&COMPARED) {
                if let Some(before) = &before {
                    let name = kinds[k].name;
                    slot.push(timed(before.port, round[k].as_deref(), name).await);
                }
            }
        }
        (times, before_times)
    });
    let anonymous = median(times[0].clone());
    for (kind, t) in kinds.iter().zip(&times) {
        let ms = median(t.clone());
        println!(
            "{:>24}: median {ms:6.2} ms ({:.2}x no credential), {} connections",
            kind.name,
            ms / anonymous,
            t.len()
        );
    }
    let Some((_, label)) = baseline else { return };
    println!("## the same rounds on {label}'s worker, beside this build's");
    for (t, &k) in before_times.iter().zip(&COMPARED) {
        let (now, then) = (median(times[k].clone()), median(t.clone()));
        println!(
            "{:>24}: median {then:6.2} ms on {label}, {now:6.2} ms on this build ({:.2}x {label}), {} connections",
            kinds[k].name,
            now / then,
            t.len()
        );
    }
}

/// The milliseconds [`setup`] took; panics when no `welcome` came.
async fn timed(port: u16, credential: Option<&str>, kind: &str) -> f64 {
    match setup(port, credential).await {
        Some(took) => took.as_secs_f64() * 1000.0,
        None => panic!("{kind}: no welcome"),
    }
}

/// Connects, says `hello` with `credential` and waits for `welcome`; the
/// time it took, or `None` when the answer is not a welcome.
async fn setup(port: u16, credential: Option<&str>) -> Option<Duration> {
    let started = Instant::now();
    let url = format!("ws://127.0.0.1:{port}/v1/ws/bench-connect");
    let (mut socket, _) = tokio::time::timeout(
        Duration::from_secs(20),
        tokio_tungstenite::connect_async(url),
    )
    .await
    .ok()?
    .ok()?;
    let mut hello = json!({"type": "hello", "protocol": 1});
    if let Some(c) = credential {
        hello["auth"] = json!(c);
    }
    socket.send(Message::text(hello.to_string())).await.ok()?;
    let welcome = loop {
        match tokio::time::timeout(Duration::from_secs(20), socket.next())
            .await
            .ok()??
            .ok()?
        {
            Message::Text(text) => break serde_json::from_str::<Value>(&text).ok()?,
            Message::Close(_) => return None,
            _ => continue,
        }
    };
    let took = started.elapsed();
    let _ = socket.close(None).await;
    (welcome["type"] == "welcome").then_some(took)
}
