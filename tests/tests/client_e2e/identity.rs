//! Identity (spec 13) through the Rust client, against a worker that
//! verifies credentials: a token provider whose short-lived tokens are
//! refreshed in band while a listener misses nothing, and credentials the
//! worker refuses surfacing as `unauthenticated` with nothing written.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use blaze_auth::mint;
use blaze_client::{Blaze, ConnectOptions, Credentials, Direction, ErrorCode};
use blaze_tests::live::{e2e, WranglerDev};
use serde_json::json;

use crate::support::{connect, next_snap, options, run, within};

/// The local development identity's HS256 secret (`live::DEV_IDENTITY`).
const SECRET: &str = "blaze-dev-secret-not-for-production";

/// `BLAZE_AUTH` with no leeway, so a token expires at its own `exp`.
const NO_LEEWAY: &str =
    r#"BLAZE_AUTH:{"leeway_secs":0,"hs256":{"issuer":"blaze-dev","audience":"blaze"}}"#;

/// An HS256 development token for `uid`, valid for `ttl` seconds, signed with `secret`.
fn token(secret: &str, uid: &str, ttl: u64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let claims =
        json!({"sub": uid, "iss": "blaze-dev", "aud": "blaze", "iat": now, "exp": now + ttl});
    mint::hs256(secret.as_bytes(), &claims)
}

/// Options whose credential is a provider of `ttl`-second tokens for
/// `uid` signed with `secret`, counting its calls in `calls`.
fn provider(
    secret: &'static str,
    uid: &'static str,
    ttl: u64,
    calls: Arc<AtomicU64>,
) -> ConnectOptions {
    ConnectOptions {
        credentials: Credentials::token_provider(move || {
            calls.fetch_add(1, Ordering::SeqCst);
            let token = token(secret, uid, ttl);
            async move { Ok::<_, String>(Some(token)) }
        }),
        ..options()
    }
}

/// The worker's `ws_auth` log lines for alice, in order.
fn alice_auth_lines(log: &str) -> Vec<serde_json::Value> {
    log.lines()
        .filter_map(|line| line.find(r#"{"at":"ws_auth""#).map(|at| &line[at..]))
        .filter_map(|json| serde_json::from_str::<serde_json::Value>(json).ok())
        .filter(|l| l["uid"] == "alice")
        .collect()
}

#[test]
fn short_lived_tokens_are_refreshed_in_band_and_the_listener_misses_nothing() {
    let Some(_serial) = e2e() else { return };
    run(async {
        let server = WranglerDev::start_with_vars("client-identity", &[NO_LEEWAY]);
        let calls = Arc::new(AtomicU64::new(0));
        // Tokens of 4 s: the client refreshes at about 80% of their life.
        let options = provider(SECRET, "alice", 4, calls.clone());
        let db = Blaze::connect_with(&server.url(), options)
            .await
            .expect("a URL");
        let admin = connect(&server.url()).await;
        let feed = admin.collection("feed");
        let mut listener = db.collection("feed").order_by("n", Direction::Asc).listen();
        assert!(next_snap(&mut listener, "first snapshot")
            .await
            .docs
            .is_empty());
        // Ten seconds of writes, one every 500 ms: past two token lifetimes.
        for n in 0..20u64 {
            feed.doc(&format!("m{n:02}"))
                .set(&json!({"n": n}))
                .await
                .expect("admin writes");
            let seen = within("the write reaches the listener", async {
                loop {
                    let snap = next_snap(&mut listener, "listener").await;
                    if snap.docs.len() as u64 == n + 1 {
                        return snap;
                    }
                }
            })
            .await;
            let ns: Vec<u64> = seen
                .docs
                .iter()
                .map(|d| d.data.as_ref().and_then(|v| v["n"].as_u64()).unwrap())
                .collect();
            assert_eq!(ns, (0..=n).collect::<Vec<_>>(), "every write, in order");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let asked = calls.load(Ordering::SeqCst);
        assert!(
            asked >= 3,
            "the provider was asked again before each expiry: {asked} calls"
        );
        // In band: the worker's log shows alice's `hello` and then `auth`
        // requests (with a rid), all on one connection, and no expiry close.
        let alice = within("the worker logs the refreshes", async {
            loop {
                let lines = alice_auth_lines(&server.log_text());
                if lines.len() >= 3 {
                    return lines;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await;
        assert!(alice[0]["rid"].is_null(), "first the hello: {alice:?}");
        assert!(
            alice[1..].iter().all(|l| l["rid"].is_u64()),
            "then auth requests: {alice:?}"
        );
        assert!(
            alice.iter().all(|l| l["conn"] == alice[0]["conn"]),
            "one connection: {alice:?}"
        );
        // The connection survived its tokens' expiries: a read still works.
        let got: blaze_client::DocumentSnapshot =
            db.doc("feed/m00").get().await.expect("a read as alice");
        assert_eq!(got.data.as_ref().map(|v| v["n"].clone()), Some(json!(0)));
    });
}

#[test]
fn refused_credentials_surface_unauthenticated_and_write_nothing() {
    let Some(_serial) = e2e() else { return };
    run(async {
        let server = WranglerDev::start("client-refused");
        let admin = connect(&server.url()).await;
        let wrong_key = ConnectOptions {
            credentials: Credentials::Fixed("not-the-admin-key".into()),
            ..options()
        };
        let calls = Arc::new(AtomicU64::new(0));
        let forged = provider(
            "a-secret-that-is-at-least-32-bytes-long",
            "mallory",
            600,
            calls.clone(),
        );
        for (name, options) in [("a wrong admin key", wrong_key), ("a forged token", forged)] {
            let db = Blaze::connect_with(&server.url(), options)
                .await
                .expect("a URL");
            let written = within(name, db.doc("vault/v").set(&json!({"by": name}))).await;
            let error = written.expect_err(name);
            assert_eq!(
                error.code(),
                Some(ErrorCode::Unauthenticated),
                "{name}: {error}"
            );
        }
        let asked = calls.load(Ordering::SeqCst);
        assert!(
            (1..=3).contains(&asked),
            "the provider is not asked forever: {asked} calls"
        );
        let vault: blaze_client::DocumentSnapshot =
            admin.doc("vault/v").get().await.expect("the admin reads");
        assert!(!vault.exists(), "nothing was written");
    });
}
