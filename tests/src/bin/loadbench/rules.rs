//! The cost of access rules under load: the same worker build twice, one
//! with open rules (everything allowed) and one with the demo's rules
//! (`blaze.rules`: private todos), under the same workload, in the same
//! rounds: every connection is alice, writing and listening to her todo
//! `todos/x`. With the demo's rules each write is checked (`create` /
//! `update`), each listen proved once (`get`), and each listener checked
//! again when its document changes (it could have changed owner).

use std::time::{SystemTime, UNIX_EPOCH};

use blaze_auth::mint;
use blaze_tests::live::{repo_root, WranglerDev};
use serde_json::json;

use super::{median, phase, round_count, System};

/// Writes alice's todo once on `port`, so her listeners are allowed (the
/// demo's rules let only its owner read a todo, and a missing one has none).
async fn seed(port: u16) {
    let no_listeners = phase(System::BlazeTodos, port, 0, 1, None).await;
    assert!(no_listeners.acked_per_s > 0.0, "alice's todo is written");
}

/// The development HS256 secret (`live::DEV_IDENTITY`).
const SECRET: &str = "blaze-dev-secret-not-for-production";

/// A development token for alice, valid for two hours.
pub(super) fn alice() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let claims =
        json!({"iss": "blaze-dev", "aud": "blaze", "sub": "alice", "iat": now, "exp": now + 7200});
    mint::hs256(SECRET.as_bytes(), &claims)
}

/// Every connection here is alice's, and one user may hold an eighth of a
/// collection's connections (spec 10.1): a bound whose eighth holds the
/// 1,000 listeners' connections.
const ONE_USERS_CONNECTIONS: &str = "BLAZE_MAX_CONNECTIONS:16384";

/// Runs the rounds and prints the figures as ratios (demo rules / open rules).
pub(super) fn run(runtime: &tokio::runtime::Runtime) {
    let text = std::fs::read_to_string(repo_root().join("blaze.rules")).expect("blaze.rules");
    let open = WranglerDev::start_with_vars("loadbench-open-rules", &[ONE_USERS_CONNECTIONS]);
    let rules = format!("BLAZE_RULES:{text}");
    let ruled =
        WranglerDev::start_with_vars("loadbench-demo-rules", &[&rules, ONE_USERS_CONNECTIONS]);
    let servers = [("open rules", open.port), ("demo rules", ruled.port)];
    let rounds = round_count();
    runtime.block_on(async {
        for (_, port) in servers {
            seed(port).await;
        }
        let cases: [(&str, usize, u64); 3] = [
            (
                "deliveries per second at saturation, 100 listeners, 1000 writes",
                100,
                1000,
            ),
            (
                "deliveries per second at saturation, 1000 listeners, 100 writes",
                1000,
                100,
            ),
            (
                "acknowledged writes per second, no listeners, 1000 writes, window 64",
                0,
                1000,
            ),
        ];
        for (what, listeners, writes) in cases {
            println!("## {what}; {rounds} rounds");
            let mut ratios = Vec::new();
            for k in 0..rounds {
                let mut figures = [0.0f64; 2];
                // Each round starts with the other server, so neither always runs first.
                for j in 0..2 {
                    let i = (k + j) % 2;
                    let f = phase(System::BlazeTodos, servers[i].1, listeners, writes, None).await;
                    figures[i] = if listeners == 0 {
                        f.acked_per_s
                    } else {
                        f.deliveries_per_s
                    };
                }
                println!(
                    "{:>24}: {} {:>8.0} /s | {} {:>8.0} /s",
                    "round", servers[0].0, figures[0], servers[1].0, figures[1]
                );
                ratios.push(figures[1] / figures[0]);
            }
            println!(
                "{:>24}: {:.2}x (median of rounds; target >= 0.85x)",
                "demo rules / open rules",
                median(ratios)
            );
        }
    });
    drop(open);
    drop(ruled);
}
