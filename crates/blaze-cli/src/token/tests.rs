//! Minted tokens verified by the server's own verifier (`blaze-auth`), with
//! the configuration of the local development identity.

use blaze_auth::{AuthConfig, Verdict, Verifier};
use blaze_protocol::Identity;
use clap::Parser;
use serde_json::{json, Value};

use super::*;
use crate::args::{Cli, Command};

const NOW: u64 = 1_764_000_000;

fn token_args(args: &[&str]) -> TokenArgs {
    let cli = Cli::try_parse_from(["blaze", "token"].iter().chain(args)).unwrap();
    match cli.command {
        Command::Token(args) => args,
        other => panic!("parsed {other:?}"),
    }
}

fn mint(args: &[&str], jwk: Option<&str>) -> Result<String, Failure> {
    output(&token_args(args), NOW, jwk, |name| {
        (name == "BLAZE_HS256_SECRET").then(|| "secret-from-the-environment-0123456789".to_owned())
    })
}

const DEV_CONFIG: &str = r#"{"hs256": {"issuer": "blaze-dev", "audience": "blaze"}}"#;

fn verify(config: &str, secret: Option<&str>, token: &str, now_secs: u64) -> Verdict {
    let config = AuthConfig::from_parts(Some(config), secret, None).unwrap();
    Verifier::new(config).verify(token, now_secs * 1000)
}

fn user(verdict: Verdict) -> (String, Value, Option<u64>) {
    match verdict {
        Verdict::Verified(verified) => match verified.identity {
            Identity::User { uid, claims } => (uid, Value::Object(claims), verified.expires),
            other => panic!("not a user: {other:?}"),
        },
        Verdict::Rejected(error) => panic!("rejected: {}", error.message()),
        Verdict::FetchKeys { url } => panic!("asked to fetch {url}"),
    }
}

#[test]
fn a_development_token_verifies_with_the_dev_secret_until_its_ttl() {
    let token = mint(
        &[
            "--uid",
            "alice",
            "--claims",
            r#"{"role": "admin"}"#,
            "--ttl",
            "30m",
        ],
        None,
    )
    .unwrap();
    let (uid, claims, expires) = user(verify(DEV_CONFIG, Some(DEV_SECRET), &token, NOW));
    assert_eq!(uid, "alice");
    assert_eq!(
        claims,
        json!({"role": "admin", "sub": "alice", "iss": "blaze-dev", "aud": "blaze", "iat": NOW, "exp": NOW + 1800})
    );
    assert!(expires.is_some());
    assert!(
        matches!(
            verify(DEV_CONFIG, Some(DEV_SECRET), &token, NOW + 1800 + 61),
            Verdict::Rejected(_)
        ),
        "expired after its ttl and the leeway"
    );
    assert!(
        matches!(
            verify(
                DEV_CONFIG,
                Some("another-secret-0123456789abcdef-0123456789"),
                &token,
                NOW
            ),
            Verdict::Rejected(_)
        ),
        "signed with the development secret only"
    );
}

#[test]
fn the_secret_issuer_and_audience_can_be_chosen() {
    let token = mint(
        &[
            "--uid",
            "bob",
            "--secret-env",
            "--issuer",
            "me",
            "--audience",
            "app",
        ],
        None,
    )
    .unwrap();
    let config = r#"{"hs256": {"issuer": "me", "audience": "app"}}"#;
    let secret = "secret-from-the-environment-0123456789";
    assert_eq!(user(verify(config, Some(secret), &token, NOW)).0, "bob");
    let token = mint(&["--uid", "bob", "--secret", secret], None).unwrap();
    assert_eq!(user(verify(DEV_CONFIG, Some(secret), &token, NOW)).0, "bob");
}

#[test]
fn a_token_signed_with_a_generated_key_verifies_against_its_public_jwk() {
    for alg in ["EdDSA", "ES256"] {
        let pair: Value = serde_json::from_str(&mint(&["--keygen", alg], None).unwrap()).unwrap();
        let config = json!({"issuers": [{"issuer": "blaze-dev", "audience": "blaze", "jwks": {"keys": [pair["public"]]}}]});
        // The file may hold the pair as printed, or the private JWK alone.
        for file in [pair.to_string(), pair["private"].to_string()] {
            let token = mint(&["--uid", "carol", "--jwk", "key.json"], Some(&file)).unwrap();
            assert_eq!(
                user(verify(&config.to_string(), None, &token, NOW)).0,
                "carol",
                "{alg}"
            );
        }
        assert!(
            pair["public"].get("d").is_none(),
            "{alg}: the public JWK holds no private part"
        );
    }
}

#[test]
fn bad_arguments_are_usage_errors() {
    for args in [
        &["--uid", "a", "--claims", "[1]"][..],
        &["--uid", "a", "--claims", "{"],
        &["--uid", "a", "--ttl", "soon"],
        &["--uid", "a", "--ttl", "0s"],
        &["--uid", ""],
        &["--keygen", "HS256"],
        &["--uid", "a", "--secret", "too-short"],
    ] {
        assert!(
            matches!(mint(args, None), Err(Failure::Usage(_))),
            "{args:?}"
        );
    }
    assert!(matches!(
        mint(&["--uid", "a", "--jwk", "k.json"], Some("not json")),
        Err(Failure::Usage(_))
    ));
    let no_secret = output(
        &token_args(&["--uid", "a", "--secret-env"]),
        NOW,
        None,
        |_| None,
    );
    assert!(matches!(no_secret, Err(Failure::Usage(_))));
    for args in [
        &[][..],
        &["--uid", "a", "--keygen", "EdDSA"],
        &["--uid", "a", "--secret", "s", "--secret-env"],
        &["--keygen", "EdDSA", "--claims", "{}"],
    ] {
        assert!(
            Cli::try_parse_from(["blaze", "token"].iter().chain(args)).is_err(),
            "{args:?}"
        );
    }
}

#[test]
fn durations() {
    assert_eq!(ttl_secs("90s").ok(), Some(90));
    assert_eq!(ttl_secs("30m").ok(), Some(1800));
    assert_eq!(ttl_secs("1h").ok(), Some(3600));
    assert_eq!(ttl_secs("7d").ok(), Some(604_800));
    assert_eq!(ttl_secs("45").ok(), Some(45));
}
