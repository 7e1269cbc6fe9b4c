//! A worker is never open by omission (spec 13.3): without `BLAZE_AUTH`, or
//! with one that does not parse, only admin keys are accepted; tokens and
//! requests without a credential are refused with `unauthenticated`, over
//! HTTP and WebSocket, and the message names the setting. `BLAZE_AUTH=none`
//! is the explicit switch that serves requests without a credential.

use std::time::Duration;

use blaze_auth::mint;
use blaze_tests::live::{self, e2e, http, Incoming, WranglerDev, Ws};
use serde_json::{json, Value};

const SECRET: &str = "blaze-dev-secret-not-for-production";
const ADMIN_KEY: &str = "blaze-dev-admin-key";

/// Opens a WebSocket and says `hello` with `credential`; returns the frames
/// it gets and how it is closed, if it is within 10 s.
async fn hello(port: u16, credential: Option<&str>) -> (Vec<Value>, Option<(u16, String)>) {
    let mut ws = Ws::raw(port, "guarded").await;
    let mut hello = json!({"type": "hello", "protocol": 1});
    if let Some(c) = credential {
        hello["auth"] = json!(c);
    }
    ws.send_json(&hello).await;
    let mut frames = Vec::new();
    while let Some(incoming) = ws.next_incoming(Duration::from_secs(10)).await {
        match incoming {
            Incoming::Text(text) => {
                let frame: Value = serde_json::from_str(&text).expect("JSON");
                let welcomed = frame["type"] == "welcome";
                frames.push(frame);
                if welcomed {
                    return (frames, None);
                }
            }
            Incoming::Closed { code, reason } => return (frames, Some((code, reason))),
        }
    }
    (frames, None)
}

#[test]
fn a_configuration_that_does_not_parse_admits_only_admin_keys() {
    let Some(_serial) = e2e() else { return };
    live::run(Duration::from_secs(120), async {
        let vars = [
            "BLAZE_AUTH:{\"issuers\": [".to_owned(),
            format!("BLAZE_HS256_SECRET:{SECRET}"),
            format!("BLAZE_ADMIN_KEYS:{ADMIN_KEY}"),
        ];
        let vars: Vec<&str> = vars.iter().map(String::as_str).collect();
        let server = WranglerDev::start_with_vars("broken-identity", &vars);
        let port = server.port;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let token = mint::hs256(
            SECRET.as_bytes(),
            &json!({"sub": "alice", "exp": now + 3600}),
        );
        only_admin_keys(&server).await;
        // A token that would verify under a valid configuration is refused too.
        let user = format!("Bearer {token}");
        let answer = http(
            port,
            "PUT",
            "/v1/docs/guarded/d",
            &[("Authorization", &user)],
            "{}",
        )
        .await;
        assert_eq!(
            (answer.status, answer.code().as_deref()),
            (401, Some("unauthenticated")),
            "{}",
            answer.body
        );
        let (frames, closed) = hello(port, Some(&token)).await;
        assert_eq!(frames[0]["error"]["code"], "unauthenticated", "{frames:?}");
        assert_eq!(closed, Some((4001, "unauthenticated".to_owned())));
        let (frames, closed) = hello(port, Some(ADMIN_KEY)).await;
        assert_eq!(closed, None);
        assert_eq!(frames[0]["auth"], json!({"kind": "admin"}));
        // The log reaches the file through wrangler, a little later.
        let logged = || server.log_text().contains(r#""at":"auth_config""#);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !logged() && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(logged(), "the configuration error is logged");
    });
}

/// Checks that `server` refuses anonymous requests with a message naming
/// `BLAZE_AUTH`, over HTTP and at `hello`, while the admin key writes and
/// nothing is read anonymously.
async fn only_admin_keys(server: &WranglerDev) {
    let port = server.port;
    let answer = http(port, "PUT", "/v1/docs/guarded/d", &[], "{}").await;
    assert_eq!(
        (answer.status, answer.code().as_deref()),
        (401, Some("unauthenticated")),
        "{}",
        answer.body
    );
    assert!(answer.body.contains("BLAZE_AUTH"), "{}", answer.body);
    let (frames, closed) = hello(port, None).await;
    assert_eq!(frames[0]["error"]["code"], "unauthenticated", "{frames:?}");
    assert_eq!(closed, Some((4001, "unauthenticated".to_owned())));
    let admin = format!("Bearer {ADMIN_KEY}");
    let written = http(
        port,
        "PUT",
        "/v1/docs/guarded/d",
        &[("Authorization", &admin)],
        "{}",
    )
    .await;
    assert_eq!(written.status, 200, "{}", written.body);
    let read = http(port, "GET", "/v1/docs/guarded/d", &[], "").await;
    assert_eq!(
        read.status, 401,
        "nothing is read anonymously: {}",
        read.body
    );
}

#[test]
fn no_identity_configuration_admits_only_admin_keys() {
    let Some(_serial) = e2e() else { return };
    live::run(Duration::from_secs(120), async {
        // BLAZE_AUTH empty: as if it were not set at all.
        let vars = ["BLAZE_AUTH:", "BLAZE_HS256_SECRET:"];
        let server = WranglerDev::start_with_vars("no-identity", &vars);
        only_admin_keys(&server).await;
    });
}

#[test]
fn blaze_auth_none_serves_requests_without_a_credential() {
    let Some(_serial) = e2e() else { return };
    live::run(Duration::from_secs(120), async {
        let vars = ["BLAZE_AUTH:none", "BLAZE_HS256_SECRET:"];
        let server = WranglerDev::start_with_vars("identity-none", &vars);
        let port = server.port;
        let written = http(port, "PUT", "/v1/docs/open/d", &[], r#"{"a":1}"#).await;
        assert_eq!(written.status, 200, "{}", written.body);
        let (frames, closed) = hello(port, None).await;
        assert_eq!(
            (frames[0]["type"].as_str(), closed),
            (Some("welcome"), None)
        );
        // No issuer and no secret: a token verifies nowhere.
        let token = mint::hs256(
            b"any-secret-of-at-least-32-bytes!!",
            &json!({"sub": "x", "exp": 4_000_000_000u64}),
        );
        let (frames, closed) = hello(port, Some(&token)).await;
        assert_eq!(frames[0]["error"]["code"], "unauthenticated", "{frames:?}");
        assert_eq!(closed, Some((4001, "unauthenticated".to_owned())));
    });
}
