//! Verification benchmark: prints the time to verify one token per
//! algorithm, uncached (each token seen for the first time: parse, key
//! lookup, signature, claims) and cached (the same token again), plus the
//! refusal of a token whose bad signature was already seen.
//!
//! Run with `cargo bench -p blaze-auth`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use blaze_auth::{mint, AuthConfig, Verdict, Verifier};
use serde_json::{json, Value};

const NOW: u64 = 1_764_547_200_000;
const SECRET: &str = "blaze-dev-secret-not-for-production";
const ISSUER: &str = "https://issuer.example.com";
const AUDIENCE: &str = "blaze-app";

/// The 2048-bit RSA test key of the conformance vectors.
fn rsa_key() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../spec/vectors/jwt.json");
    let file: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    file["test_keys"]["rsa-1"].clone()
}

fn claims(i: usize) -> Value {
    json!({"iss": ISSUER, "aud": AUDIENCE, "sub": format!("user-{i}"),
           "exp": NOW / 1000 + 3600, "role": "editor"})
}

/// A verifier trusting `public` (a JWK), the HS256 secret and no admin key.
fn verifier(public: Option<&Value>) -> Verifier {
    let keys: Vec<&Value> = public.into_iter().collect();
    let config =
        json!({"issuers": [{"issuer": ISSUER, "audience": AUDIENCE, "jwks": {"keys": keys}}]});
    Verifier::new(AuthConfig::from_parts(Some(&config.to_string()), Some(SECRET), None).unwrap())
}

/// Mean time per call of `verify` over `tokens`, after checking each verifies
/// (at most the cache's 10,000 tokens, so that a second pass is all hits).
fn per_token(verifier: &mut Verifier, tokens: &[String]) -> Duration {
    let start = Instant::now();
    for token in tokens {
        let verdict = verifier.verify(black_box(token), NOW);
        assert!(matches!(verdict, Verdict::Verified(_)), "{verdict:?}");
    }
    start.elapsed() / tokens.len() as u32
}

fn main() {
    println!("## Token verification (blaze-auth), mean per token");
    println!("| alg | uncached | cached | bad signature, seen before |");
    println!("| --- | ---: | ---: | ---: |");
    let (ed_private, ed_public) = mint::generate("EdDSA");
    let (es_private, es_public) = mint::generate("ES256");
    let rsa_private = rsa_key();
    let rsa_public = mint::public_jwk(&rsa_private);
    let algs: [(&str, Option<&Value>, Option<&Value>, usize); 4] = [
        ("HS256", None, None, 5_000),
        ("EdDSA", Some(&ed_private), Some(&ed_public), 2_000),
        ("ES256", Some(&es_private), Some(&es_public), 1_000),
        ("RS256 (2048)", Some(&rsa_private), Some(&rsa_public), 1_000),
    ];
    for (name, private, public, n) in algs {
        let sign = |i: usize| match private {
            Some(key) => mint::sign(key, &claims(i)).unwrap(),
            None => mint::hs256(SECRET.as_bytes(), &claims(i)),
        };
        let tokens: Vec<String> = (0..n).map(sign).collect();
        let mut v = verifier(public);
        let uncached = per_token(&mut v, &tokens);
        assert_eq!(v.signature_checks(), n as u64);
        let cached = per_token(&mut v, &tokens);
        assert_eq!(
            v.signature_checks(),
            n as u64,
            "the second pass is served from the cache"
        );
        let bad = {
            let token = &tokens[0];
            let forged = format!("{}A", &token[..token.len() - 1]);
            let forged = if forged == *token {
                format!("{}B", &token[..token.len() - 1])
            } else {
                forged
            };
            let mut v = verifier(public);
            v.verify(&forged, NOW);
            let start = Instant::now();
            for _ in 0..n {
                black_box(v.verify(black_box(&forged), NOW));
            }
            start.elapsed() / n as u32
        };
        println!("| {name} | {uncached:.2?} | {cached:.2?} | {bad:.2?} |");
    }
    let admin = AuthConfig::from_parts(None, None, Some("key-one,key-two,key-three")).unwrap();
    let mut v = Verifier::new(admin);
    let start = Instant::now();
    for _ in 0..20_000 {
        assert!(matches!(
            v.verify(black_box("key-three"), NOW),
            Verdict::Verified(_)
        ));
    }
    println!(
        "| admin key (3 configured) | {:.2?} | - | - |",
        start.elapsed() / 20_000
    );
}
