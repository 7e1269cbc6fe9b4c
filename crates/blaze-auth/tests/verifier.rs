//! Behaviour of the verifier beyond the conformance vectors: property tests
//! of claims and times, caching, the JWKS fetch flow and configuration errors.

use blaze_auth::{mint, AuthConfig, Reason, Verdict, Verified, Verifier, JWKS_REFETCH_MS};
use blaze_protocol::Identity;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

const NOW: u64 = 1_764_547_200_000;
const NOW_S: i64 = (NOW / 1000) as i64;
const SECRET: &str = "a-test-secret-that-is-long-enough-32";
const ISSUER: &str = "https://issuer.test";
const AUDIENCE: &str = "app";
const URL: &str = "https://issuer.test/jwks.json";

fn hs_verifier(leeway: u64) -> Verifier {
    let config = json!({"leeway_secs": leeway}).to_string();
    Verifier::new(AuthConfig::from_parts(Some(&config), Some(SECRET), None).unwrap())
}

fn claims(sub: &str, exp: i64) -> Value {
    json!({"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "exp": exp})
}

fn rejected(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Rejected(e) => e.reason(),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn verified(verdict: Verdict) -> Verified {
    match verdict {
        Verdict::Verified(v) => v,
        other => panic!("expected a verified credential, got {other:?}"),
    }
}

/// Arbitrary JSON claim values (bounded depth).
fn claim_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[a-zA-Z0-9 éü😀]{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z]{1,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_claim_sets_round_trip(
        extra in prop::collection::btree_map("[a-z_]{1,10}", claim_value(), 0..6),
        sub in "[^\u{0}]{1,32}".prop_filter("at most 128 bytes", |s| s.len() <= 128),
        lifetime in 1i64..100_000,
        alg in prop_oneof![Just("HS256"), Just("EdDSA"), Just("ES256")],
    ) {
        let mut claims: Map<String, Value> = extra.into_iter().collect();
        for reserved in ["iss", "aud", "nbf"] {
            claims.remove(reserved);
        }
        claims.insert("sub".into(), json!(sub));
        claims.insert("exp".into(), json!(NOW_S + lifetime));
        let claims = Value::Object(claims);
        let (mut verifier, token) = if alg == "HS256" {
            (hs_verifier(60), mint::hs256(SECRET.as_bytes(), &claims))
        } else {
            let (private, public) = mint::generate(alg);
            let mut with_iss = claims.clone();
            with_iss["iss"] = json!(ISSUER);
            with_iss["aud"] = json!(AUDIENCE);
            let config = json!({"issuers": [{"issuer": ISSUER, "audience": AUDIENCE,
                                             "jwks": {"keys": [public]}}]});
            let verifier = Verifier::new(
                AuthConfig::from_parts(Some(&config.to_string()), None, None).unwrap(),
            );
            (verifier, mint::sign(&private, &with_iss).unwrap())
        };
        let got = verified(verifier.verify(&token, NOW));
        let token_claims: Value = {
            let payload = token.split('.').nth(1).unwrap();
            use base64::Engine;
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap();
            serde_json::from_slice(&bytes).unwrap()
        };
        let want = Identity::User {
            uid: sub.clone(),
            claims: token_claims.as_object().unwrap().clone(),
        };
        prop_assert_eq!(got.identity, want);
        prop_assert_eq!(got.expires, Some(((NOW_S + lifetime + 60) * 1000) as u64));
    }

    #[test]
    fn exp_is_valid_exactly_until_exp_plus_leeway(
        leeway in 0u64..=60,
        exp_offset in -200i64..200,
        now_ms_offset in 0u64..1000,
    ) {
        let now = NOW + now_ms_offset;
        let exp = NOW_S + exp_offset;
        let token = mint::hs256(SECRET.as_bytes(), &json!({"sub": "u", "exp": exp}));
        let verdict = hs_verifier(leeway).verify(&token, now);
        let expires = ((exp + leeway as i64) * 1000) as u64;
        if now < expires {
            prop_assert_eq!(verified(verdict).expires, Some(expires));
        } else {
            prop_assert_eq!(rejected(verdict), "expired");
        }
    }

    #[test]
    fn nbf_is_valid_from_nbf_minus_leeway(
        leeway in 0u64..=60,
        nbf_offset in -200i64..200,
        now_ms_offset in 0u64..1000,
    ) {
        let now = NOW + now_ms_offset;
        let nbf = NOW_S + nbf_offset;
        let token = mint::hs256(SECRET.as_bytes(), &json!({"sub": "u", "exp": NOW_S + 3600, "nbf": nbf}));
        let verdict = hs_verifier(leeway).verify(&token, now);
        let valid_from = ((nbf - leeway as i64) * 1000) as u64;
        if now >= valid_from {
            prop_assert!(matches!(verdict, Verdict::Verified(_)));
        } else {
            prop_assert_eq!(rejected(verdict), "not_yet_valid");
        }
    }

    #[test]
    fn any_text_is_refused_or_verified_never_a_panic(text in ".{0,200}", dots in 0usize..4) {
        let mut credential = text;
        for _ in 0..dots {
            credential.push('.');
        }
        let mut verifier = hs_verifier(60);
        let fetches = matches!(verifier.verify(&credential, NOW), Verdict::FetchKeys { .. });
        prop_assert!(!fetches, "no issuer has a URL");
    }
}

#[test]
fn a_cached_token_is_not_verified_again_until_it_expires() {
    let mut verifier = hs_verifier(0);
    let token = mint::hs256(SECRET.as_bytes(), &json!({"sub": "u", "exp": NOW_S + 10}));
    let first = verified(verifier.verify(&token, NOW));
    assert_eq!(verifier.signature_checks(), 1);
    for i in 0..100 {
        assert_eq!(verified(verifier.verify(&token, NOW + i)), first);
    }
    assert_eq!(
        verifier.signature_checks(),
        1,
        "cache hits check no signature"
    );
    assert_eq!(verifier.cached_tokens(), 1);
    // At its expiry the cached identity is not served.
    assert_eq!(rejected(verifier.verify(&token, NOW + 10_000)), "expired");
    assert_eq!(verifier.cached_tokens(), 0);
}

#[test]
fn a_bad_signature_is_checked_once() {
    let mut verifier = hs_verifier(60);
    let token = mint::hs256(
        b"another-secret-another-secret-xx",
        &json!({"sub": "u", "exp": NOW_S + 10}),
    );
    for _ in 0..1000 {
        assert_eq!(rejected(verifier.verify(&token, NOW)), "bad_signature");
    }
    assert_eq!(verifier.signature_checks(), 1);
    assert_eq!(verifier.cached_tokens(), 0);
}

#[test]
fn a_token_differing_in_one_byte_is_not_served_from_the_cache() {
    let mut verifier = hs_verifier(60);
    let token = mint::hs256(SECRET.as_bytes(), &json!({"sub": "u", "exp": NOW_S + 10}));
    verified(verifier.verify(&token, NOW));
    let mut forged = token.clone().into_bytes();
    let last = forged.len() - 1;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    assert!(matches!(
        verifier.verify(&forged, NOW),
        Verdict::Rejected(_)
    ));
    assert_eq!(verifier.signature_checks(), 2);
}

#[test]
fn the_token_cache_is_bounded_evicting_expired_tokens_first_then_the_oldest() {
    let mut verifier = hs_verifier(0);
    let token = |i: usize, exp: i64| {
        mint::hs256(
            SECRET.as_bytes(),
            &json!({"sub": format!("u{i}"), "exp": exp}),
        )
    };
    let short: Vec<String> = (0..5_000).map(|i| token(i, NOW_S + 1)).collect();
    let long: Vec<String> = (5_000..10_000).map(|i| token(i, NOW_S + 3600)).collect();
    for t in short.iter().chain(&long) {
        verified(verifier.verify(t, NOW));
    }
    assert_eq!(verifier.cached_tokens(), 10_000);
    // Later, when the short ones have expired, one more evicts them all.
    verified(verifier.verify(&token(10_000, NOW_S + 3600), NOW + 2_000));
    assert_eq!(verifier.cached_tokens(), 5_001);
    for i in 10_001..15_000 {
        verified(verifier.verify(&token(i, NOW_S + 3600), NOW + 2_000));
    }
    assert_eq!(verifier.cached_tokens(), 10_000);
    // None expired now: the oldest (long[0]) goes.
    verified(verifier.verify(&token(15_000, NOW_S + 3600), NOW + 2_000));
    assert_eq!(verifier.cached_tokens(), 10_000);
    let checks = verifier.signature_checks();
    verified(verifier.verify(&long[1], NOW + 2_000));
    assert_eq!(
        verifier.signature_checks(),
        checks,
        "long[1] is still cached"
    );
    verified(verifier.verify(&long[0], NOW + 2_000));
    assert_eq!(
        verifier.signature_checks(),
        checks + 1,
        "long[0] was evicted"
    );
}

#[test]
fn admin_keys_several_trimmed_no_expiry() {
    let config = AuthConfig::from_parts(None, None, Some(" one-key , two-key,,")).unwrap();
    let mut verifier = Verifier::new(config);
    for key in ["one-key", "two-key"] {
        let v = verified(verifier.verify(key, NOW));
        assert_eq!(v.identity, Identity::Admin);
        assert_eq!(v.expires, None);
    }
    for key in ["one-key ", "two", "", "three-key"] {
        assert_eq!(
            rejected(verifier.verify(key, NOW)),
            "unknown_admin_key_or_token"
        );
    }
}

#[test]
fn no_configuration_refuses_every_credential() {
    let config = AuthConfig::from_parts(None, None, None).unwrap();
    assert!(config.is_empty());
    let mut verifier = Verifier::new(config);
    let token = mint::hs256(SECRET.as_bytes(), &json!({"sub": "u", "exp": NOW_S + 10}));
    assert_eq!(
        rejected(verifier.verify(&token, NOW)),
        "hs256_not_configured"
    );
    assert_eq!(
        rejected(verifier.verify("key", NOW)),
        "unknown_admin_key_or_token"
    );
}

#[test]
fn configuration_errors() {
    let bad = [
        ("not json", "{"),
        ("unknown member", r#"{"leway_secs": 10}"#),
        ("leeway over 60", r#"{"leeway_secs": 61}"#),
        (
            "issuer without audience",
            r#"{"issuers": [{"issuer": "i", "jwks_url": "https://x"}]}"#,
        ),
        (
            "empty audience",
            r#"{"issuers": [{"issuer": "i", "audience": "", "jwks_url": "https://x"}]}"#,
        ),
        (
            "neither jwks nor url",
            r#"{"issuers": [{"issuer": "i", "audience": "a"}]}"#,
        ),
        (
            "plain http elsewhere",
            r#"{"issuers": [{"issuer": "i", "audience": "a", "jwks_url": "http://example.com/k"}]}"#,
        ),
        (
            "jwks not a JWKS",
            r#"{"issuers": [{"issuer": "i", "audience": "a", "jwks": [1]}]}"#,
        ),
        (
            "bad Ed25519 key",
            r#"{"issuers": [{"issuer": "i", "audience": "a", "jwks": {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "AAAA"}]}}]}"#,
        ),
        (
            "bad RSA key",
            r#"{"issuers": [{"issuer": "i", "audience": "a", "jwks": {"keys": [{"kty": "RSA", "n": "AQAB", "e": "AQAB"}]}}]}"#,
        ),
        ("hs256 unknown member", r#"{"hs256": {"iss": "x"}}"#),
    ];
    for (name, config) in bad {
        assert!(
            AuthConfig::from_parts(Some(config), None, None).is_err(),
            "{name}"
        );
    }
    assert!(
        AuthConfig::from_parts(None, Some("short"), None).is_err(),
        "short secret"
    );
    assert!(
        AuthConfig::from_parts(None, None, Some("a.b.c")).is_err(),
        "JWT-shaped admin key"
    );
    // Keys of other types are skipped, local http is allowed, blank config is none.
    let ok = r#"{"issuers": [
        {"issuer": "i", "audience": "a", "jwks": {"keys": [{"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"}, {"kty": "oct", "k": "AA"}]}},
        {"issuer": "j", "audience": "a", "jwks_url": "http://127.0.0.1:8787/jwks"}]}"#;
    assert!(AuthConfig::from_parts(Some(ok), None, None).is_ok());
    assert!(AuthConfig::from_parts(Some("  "), None, None)
        .unwrap()
        .is_empty());
    let message = AuthConfig::from_parts(Some("{"), None, None)
        .unwrap_err()
        .to_string();
    assert!(message.contains("BLAZE_AUTH"), "{message}");
}

#[test]
fn a_refusing_configuration_keeps_admin_keys_and_refuses_tokens() {
    let mut verifier = Verifier::new(AuthConfig::refusing_tokens(Some("k1")));
    assert_eq!(
        verified(verifier.verify("k1", NOW)).identity,
        Identity::Admin
    );
    let token = mint::hs256(SECRET.as_bytes(), &json!({"sub": "u", "exp": NOW_S + 10}));
    assert_eq!(rejected(verifier.verify(&token, NOW)), "config_invalid");
}

#[test]
fn the_credential_bound_is_configurable() {
    let config = AuthConfig::from_parts(None, Some(SECRET), Some("0123456789"))
        .unwrap()
        .with_max_credential_bytes(10);
    let mut verifier = Verifier::new(config);
    assert_eq!(
        verified(verifier.verify("0123456789", NOW)).identity,
        Identity::Admin
    );
    assert_eq!(rejected(verifier.verify("0123456789a", NOW)), "too_large");
}

#[test]
fn error_bodies_say_unauthenticated() {
    let mut verifier = hs_verifier(60);
    let Verdict::Rejected(e) = verifier.verify("x.y.z", NOW) else {
        panic!()
    };
    assert_eq!(e.kind(), Reason::Malformed);
    let body: blaze_protocol::ErrorBody = e.into();
    assert_eq!(body.code, blaze_protocol::ErrorCode::Unauthenticated);
    assert!(!body.message.contains("x.y.z"));
}

/// A verifier trusting the JWKS at `URL` for `ISSUER`.
fn url_verifier() -> Verifier {
    let config = json!({"issuers": [{"issuer": ISSUER, "audience": AUDIENCE, "jwks_url": URL}]});
    Verifier::new(AuthConfig::from_parts(Some(&config.to_string()), None, None).unwrap())
}

/// A key pair with kid `kid`.
fn key(kid: &str) -> (Value, Value) {
    let (mut private, mut public) = mint::generate("EdDSA");
    private["kid"] = json!(kid);
    public["kid"] = json!(kid);
    (private, public)
}

fn jwks(keys: &[&Value]) -> String {
    json!({"keys": keys}).to_string()
}

fn fetch_url(verdict: Verdict) -> String {
    match verdict {
        Verdict::FetchKeys { url } => url,
        other => panic!("expected FetchKeys, got {other:?}"),
    }
}

#[test]
fn jwks_is_fetched_once_then_cached() {
    let (k1, p1) = key("k1");
    let mut verifier = url_verifier();
    let token = mint::sign(&k1, &claims("alice", NOW_S + 3600)).unwrap();
    assert_eq!(fetch_url(verifier.verify(&token, NOW)), URL);
    verifier.handle_jwks(URL, Ok(&jwks(&[&p1])), NOW);
    assert_eq!(
        verified(verifier.verify(&token, NOW)).identity.uid(),
        Some("alice")
    );
    // Another token of the same key: no fetch.
    let bob = mint::sign(&k1, &claims("bob", NOW_S + 3600)).unwrap();
    assert_eq!(
        verified(verifier.verify(&bob, NOW + 1)).identity.uid(),
        Some("bob")
    );
}

#[test]
fn an_unknown_kid_refetches_at_most_once_a_minute() {
    let (k1, p1) = key("k1");
    let (k2, p2) = key("k2");
    let mut verifier = url_verifier();
    let t1 = mint::sign(&k1, &claims("alice", NOW_S + 3600)).unwrap();
    fetch_url(verifier.verify(&t1, NOW));
    verifier.handle_jwks(URL, Ok(&jwks(&[&p1])), NOW);
    let t2 = mint::sign(&k2, &claims("bob", NOW_S + 3600)).unwrap();
    // Within the minute: refused without a fetch, however often.
    for dt in [0, 1_000, JWKS_REFETCH_MS - 1] {
        assert_eq!(rejected(verifier.verify(&t2, NOW + dt)), "unknown_kid");
    }
    // A minute later: one fetch, then the second verify does not ask again.
    let later = NOW + JWKS_REFETCH_MS;
    assert_eq!(fetch_url(verifier.verify(&t2, later)), URL);
    verifier.handle_jwks(URL, Ok(&jwks(&[&p1, &p2])), later);
    assert_eq!(
        verified(verifier.verify(&t2, later)).identity.uid(),
        Some("bob")
    );
}

#[test]
fn a_failed_fetch_keeps_the_last_keys_and_fails_closed() {
    let (k1, p1) = key("k1");
    let (k2, _) = key("k2");
    let mut verifier = url_verifier();
    let t1 = mint::sign(&k1, &claims("alice", NOW_S + 3600)).unwrap();
    fetch_url(verifier.verify(&t1, NOW));
    verifier.handle_jwks(URL, Ok(&jwks(&[&p1])), NOW);
    let later = NOW + JWKS_REFETCH_MS;
    let t2 = mint::sign(&k2, &claims("bob", NOW_S + 3600)).unwrap();
    for (i, failure) in [
        Err("connection refused".to_owned()),
        Ok("<html>"),
        Ok("{\"keys\": 1}"),
    ]
    .into_iter()
    .enumerate()
    {
        fetch_url(verifier.verify(&t2, later));
        verifier.handle_jwks(URL, failure.as_deref().map_err(Clone::clone), later);
        assert_eq!(
            rejected(verifier.verify(&t2, later)),
            "unknown_kid",
            "the second verify does not ask again"
        );
        // A new token of the known key still verifies (not from the cache).
        let fresh = mint::sign(&k1, &claims(&format!("carol{i}"), NOW_S + 7200)).unwrap();
        let checks = verifier.signature_checks();
        assert!(matches!(
            verifier.verify(&fresh, later),
            Verdict::Verified(_)
        ));
        assert_eq!(verifier.signature_checks(), checks + 1);
        verifier.handle_jwks(URL, Ok(&jwks(&[&p1])), later - JWKS_REFETCH_MS);
    }
}

#[test]
fn a_never_fetched_issuer_that_fails_refuses_its_tokens() {
    let (k1, _) = key("k1");
    let mut verifier = url_verifier();
    let t1 = mint::sign(&k1, &claims("alice", NOW_S + 3600)).unwrap();
    fetch_url(verifier.verify(&t1, NOW));
    verifier.handle_jwks(URL, Err("timeout".into()), NOW);
    assert_eq!(rejected(verifier.verify(&t1, NOW)), "unknown_kid");
}

#[test]
fn rotation_old_kid_works_while_listed_new_kid_after_refetch() {
    let (k1, p1) = key("k1");
    let (k2, p2) = key("k2");
    let (k3, p3) = key("k3");
    let mut verifier = url_verifier();
    let t1 = mint::sign(&k1, &claims("alice", NOW_S + 3600)).unwrap();
    fetch_url(verifier.verify(&t1, NOW));
    verifier.handle_jwks(URL, Ok(&jwks(&[&p1, &p2])), NOW);
    verified(verifier.verify(&t1, NOW));
    let t2 = mint::sign(&k2, &claims("bob", NOW_S + 3600)).unwrap();
    verified(verifier.verify(&t2, NOW));
    // The issuer rotates: k1 is gone, k3 is new.
    let t3 = mint::sign(&k3, &claims("carol", NOW_S + 3600)).unwrap();
    let later = NOW + JWKS_REFETCH_MS;
    fetch_url(verifier.verify(&t3, later));
    verifier.handle_jwks(URL, Ok(&jwks(&[&p2, &p3])), later);
    verified(verifier.verify(&t3, later));
    verified(verifier.verify(&t2, later));
    // k1's token, though cached before, is refused now its key is no longer listed.
    assert_eq!(rejected(verifier.verify(&t1, later)), "unknown_kid");
}

#[test]
fn no_fetch_for_a_token_naming_another_issuer() {
    let (k1, _) = key("k1");
    let mut verifier = url_verifier();
    let mut c = claims("alice", NOW_S + 3600);
    c["iss"] = json!("https://elsewhere.test");
    let token = mint::sign(&k1, &c).unwrap();
    assert_eq!(rejected(verifier.verify(&token, NOW)), "unknown_kid");
}

#[test]
fn handle_jwks_of_another_url_changes_nothing() {
    let (k1, p1) = key("k1");
    let mut verifier = url_verifier();
    let token = mint::sign(&k1, &claims("alice", NOW_S + 3600)).unwrap();
    verifier.handle_jwks("https://other.test/jwks", Ok(&jwks(&[&p1])), NOW);
    assert_eq!(fetch_url(verifier.verify(&token, NOW)), URL);
}

#[test]
fn rs256_signs_and_verifies_with_the_vector_test_key() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../spec/vectors/jwt.json");
    let file: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let private = &file["test_keys"]["rsa-1"];
    let config = json!({"issuers": [{"issuer": ISSUER, "audience": AUDIENCE,
                                     "jwks": {"keys": [mint::public_jwk(private)]}}]});
    let mut verifier =
        Verifier::new(AuthConfig::from_parts(Some(&config.to_string()), None, None).unwrap());
    let token = mint::sign(private, &claims("alice", NOW_S + 60)).unwrap();
    assert_eq!(
        verified(verifier.verify(&token, NOW)).identity.uid(),
        Some("alice")
    );
}

#[test]
fn generated_keys_carry_their_thumbprint_as_kid() {
    for alg in ["EdDSA", "ES256"] {
        let (private, public) = mint::generate(alg);
        assert_eq!(private["kid"], json!(mint::thumbprint(&public)));
        assert_eq!(public["alg"], json!(alg));
        assert!(public.get("d").is_none());
        assert!(private.get("d").is_some());
    }
}

#[test]
fn an_inline_issuer_and_a_url_issuer_of_the_same_name() {
    let (k1, p1) = key("k1");
    let (k2, p2) = key("k2");
    let config = json!({"issuers": [
        {"issuer": ISSUER, "audience": AUDIENCE, "jwks": {"keys": [p1]}},
        {"issuer": ISSUER, "audience": AUDIENCE, "jwks_url": URL}]});
    let mut verifier =
        Verifier::new(AuthConfig::from_parts(Some(&config.to_string()), None, None).unwrap());
    let t1 = mint::sign(&k1, &claims("alice", NOW_S + 3600)).unwrap();
    verified(verifier.verify(&t1, NOW));
    let t2 = mint::sign(&k2, &claims("bob", NOW_S + 3600)).unwrap();
    assert_eq!(fetch_url(verifier.verify(&t2, NOW)), URL);
    verifier.handle_jwks(URL, Ok(&jwks(&[&p2])), NOW);
    verified(verifier.verify(&t2, NOW));
}

#[test]
fn the_same_kid_at_two_issuers_is_resolved_by_iss() {
    let (a, pa) = key("same");
    let (b, pb) = key("same");
    let config = json!({"issuers": [
        {"issuer": "https://a.test", "audience": AUDIENCE, "jwks": {"keys": [pa]}},
        {"issuer": "https://b.test", "audience": AUDIENCE, "jwks": {"keys": [pb]}}]});
    let mut verifier =
        Verifier::new(AuthConfig::from_parts(Some(&config.to_string()), None, None).unwrap());
    for (private, iss) in [(&a, "https://a.test"), (&b, "https://b.test")] {
        let mut c = claims("alice", NOW_S + 3600);
        c["iss"] = json!(iss);
        verified(verifier.verify(&mint::sign(private, &c).unwrap(), NOW));
    }
    // b's key claiming to be a's issuer does not verify.
    let mut c = claims("mallory", NOW_S + 3600);
    c["iss"] = json!("https://a.test");
    assert_eq!(
        rejected(verifier.verify(&mint::sign(&b, &c).unwrap(), NOW)),
        "bad_signature"
    );
}
