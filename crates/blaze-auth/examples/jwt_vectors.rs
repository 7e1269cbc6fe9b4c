//! Writes `spec/vectors/jwt.json`, the JWT conformance vectors.
//!
//! `cargo run -p blaze-auth --features mint --example jwt_vectors`
//! rewrites the file from the test keys already in it (the output is the
//! same every time: every signature scheme used is deterministic); with
//! `--new-keys` it makes new test keys first. The expectations are written
//! by hand below, not computed by the verifier.

use std::path::PathBuf;

use blaze_auth::mint;
use serde_json::{json, Map, Value};

/// The time of every case, in ms (2025-12-01T00:00:00Z), unless a case says otherwise.
const NOW: u64 = 1_764_547_200_000;
/// `NOW` in seconds.
const NOW_S: i64 = (NOW / 1000) as i64;
const ISSUER: &str = "https://issuer.example.com";
const AUDIENCE: &str = "blaze-app";
const SECRET: &str = "blaze-dev-secret-not-for-production";
const ADMIN_KEYS: &str = "admin-key-one, admin-key-two";

/// The private test keys, by kid.
struct Keys(Map<String, Value>);

impl Keys {
    fn private(&self, kid: &str) -> &Value {
        &self.0[kid]
    }
    fn public(&self, kid: &str) -> Value {
        mint::public_jwk(self.private(kid))
    }
    fn sign(&self, kid: &str, claims: &Value) -> String {
        mint::sign(self.private(kid), claims).unwrap()
    }
    fn sign_with_header(&self, kid: &str, header: Value, claims: &Value) -> String {
        mint::sign_with_header(self.private(kid), &header, claims).unwrap()
    }
}

fn new_keys() -> Keys {
    let mut keys = Map::new();
    for (kid, alg) in [
        ("ed-1", "EdDSA"),
        ("ed-2", "EdDSA"),
        ("es-1", "ES256"),
        ("rsa-1", "RS256"),
    ] {
        let (mut private, _) = mint::generate(alg);
        private["kid"] = json!(kid);
        keys.insert(kid.into(), private);
    }
    Keys(keys)
}

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../spec/vectors/jwt.json")
}

/// The JWKS issuer's configuration with the public keys `kids`, plus HS256 claims.
fn config(keys: &Keys, kids: &[&str]) -> Value {
    json!({
        "leeway_secs": 60,
        "issuers": [{"issuer": ISSUER, "audience": AUDIENCE,
                     "jwks": {"keys": kids.iter().map(|k| keys.public(k)).collect::<Vec<_>>()}}],
        "hs256": {"issuer": "blaze-dev", "audience": "blaze"}
    })
}

/// Claims of a valid JWKS token for `sub`, expiring in an hour.
fn claims(sub: &str) -> Value {
    json!({"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "iat": NOW_S, "exp": NOW_S + 3600,
           "role": "editor"})
}

/// Claims of a valid HS256 token.
fn hs_claims(sub: &str) -> Value {
    json!({"iss": "blaze-dev", "aud": "blaze", "sub": sub, "iat": NOW_S, "exp": NOW_S + 3600})
}

/// `claims` with `changes` merged in (a `null` removes the member).
fn with(claims: &Value, changes: Value) -> Value {
    let mut out = claims.clone();
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            out.as_object_mut().unwrap().remove(k);
        } else {
            out[k] = v.clone();
        }
    }
    out
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

struct Cases {
    keys: Keys,
    default_config: Value,
    out: Vec<Value>,
}

impl Cases {
    /// A case with the default configuration and time.
    fn add(&mut self, name: &str, token: String, expect: Value) {
        let config = self.default_config.clone();
        self.add_full(name, Some(config), NOW, token, expect);
    }

    fn add_full(
        &mut self,
        name: &str,
        config: Option<Value>,
        now: u64,
        token: String,
        expect: Value,
    ) {
        self.out.push(json!({
            "name": name, "config": config, "hs256_secret": SECRET, "admin_keys": ADMIN_KEYS,
            "now": now, "token": token, "expect": expect,
        }));
    }

    /// The last case runs with no HS256 secret.
    fn without_secret(&mut self) {
        self.out.last_mut().unwrap()["hs256_secret"] = Value::Null;
    }
}

/// A verified user: its `sub` and whole claims, valid until `exp + 60` s
/// (for an integer `exp`; other cases set `expires` themselves).
fn user(claims: &Value) -> Value {
    let exp = claims["exp"].as_i64().unwrap_or(0);
    json!({"identity": {"kind": "user", "uid": claims["sub"], "claims": claims},
           "expires": (exp + 60) * 1000})
}

fn refused(reason: &str) -> Value {
    json!({"error": "unauthenticated", "reason": reason})
}

fn main() {
    let keys = if std::env::args().any(|a| a == "--new-keys") {
        new_keys()
    } else {
        let text =
            std::fs::read_to_string(path()).expect("spec/vectors/jwt.json (or pass --new-keys)");
        let file: Value = serde_json::from_str(&text).unwrap();
        Keys(file["test_keys"].as_object().unwrap().clone())
    };
    let default_config = config(&keys, &["ed-1", "es-1", "rsa-1"]);
    let mut c = Cases {
        keys,
        default_config,
        out: Vec::new(),
    };

    // Each algorithm, valid.
    let alice = claims("alice");
    for (name, kid) in [("EdDSA", "ed-1"), ("ES256", "es-1"), ("RS256", "rsa-1")] {
        let token = c.keys.sign(kid, &alice);
        c.add(&format!("{name} token verifies"), token, user(&alice));
    }
    let hs = hs_claims("alice");
    c.add(
        "HS256 token verifies",
        mint::hs256(SECRET.as_bytes(), &hs),
        user(&hs),
    );

    // Admin keys.
    let admin = json!({"identity": {"kind": "admin"}, "expires": null});
    c.add("admin key", "admin-key-one".into(), admin.clone());
    c.add("second admin key (rotation)", "admin-key-two".into(), admin);
    c.add(
        "unknown admin key",
        "admin-key-three".into(),
        refused("unknown_admin_key_or_token"),
    );
    c.add(
        "admin key with surrounding spaces is another key",
        " admin-key-one".into(),
        refused("unknown_admin_key_or_token"),
    );
    c.add(
        "empty credential",
        String::new(),
        refused("unknown_admin_key_or_token"),
    );
    c.add(
        "two segments are not a JWT",
        "a.b".into(),
        refused("unknown_admin_key_or_token"),
    );
    c.add(
        "four segments are not a JWT",
        "a.b.c.d".into(),
        refused("unknown_admin_key_or_token"),
    );

    // Algorithm attacks.
    let header = |alg: &str, kid: Option<&str>| {
        let mut h = json!({"alg": alg, "typ": "JWT"});
        if let Some(kid) = kid {
            h["kid"] = json!(kid);
        }
        h
    };
    let unsigned = |header: &Value, claims: &Value| {
        format!(
            "{}.{}.",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        )
    };
    c.add(
        "alg none",
        unsigned(&json!({"alg": "none", "typ": "JWT"}), &alice),
        refused("alg_not_allowed"),
    );
    c.add(
        "alg None (case)",
        unsigned(&json!({"alg": "None"}), &alice),
        refused("alg_not_allowed"),
    );
    c.add(
        "alg missing",
        unsigned(&json!({"typ": "JWT", "kid": "ed-1"}), &alice),
        refused("alg_not_allowed"),
    );
    let hs512 = mint::hs256_with_header(SECRET.as_bytes(), &header("HS512", None), &hs);
    c.add(
        "alg HS512 (not accepted)",
        hs512,
        refused("alg_not_allowed"),
    );
    let ps256 = c
        .keys
        .sign_with_header("rsa-1", header("PS256", Some("rsa-1")), &alice);
    c.add(
        "alg PS256 (not accepted)",
        ps256,
        refused("alg_not_allowed"),
    );
    let rsa_public = serde_json::to_string(&c.keys.public("rsa-1")).unwrap();
    let n = c.keys.public("rsa-1")["n"].as_str().unwrap().to_owned();
    let confused = mint::hs256_with_header(
        rsa_public.as_bytes(),
        &header("HS256", Some("rsa-1")),
        &alice,
    );
    c.add(
        "RS/HS confusion: HS256 MACed with the RSA public JWK, secret configured",
        confused.clone(),
        refused("bad_signature"),
    );
    c.add(
        "RS/HS confusion: HS256 MACed with the RSA public JWK, no secret configured",
        confused,
        refused("hs256_not_configured"),
    );
    c.without_secret();
    let confused_n = mint::hs256_with_header(n.as_bytes(), &header("HS256", Some("rsa-1")), &alice);
    c.add(
        "RS/HS confusion: HS256 MACed with the RSA modulus text",
        confused_n,
        refused("bad_signature"),
    );
    let es_as_rs = c
        .keys
        .sign_with_header("rsa-1", header("RS256", Some("es-1")), &alice);
    c.add(
        "RS256 token naming an EC key",
        es_as_rs,
        refused("alg_key_mismatch"),
    );
    let ed_as_es = c
        .keys
        .sign_with_header("es-1", header("ES256", Some("ed-1")), &alice);
    c.add(
        "ES256 token naming an Ed25519 key",
        ed_as_es,
        refused("alg_key_mismatch"),
    );
    let mut rsa_with_alg = c.keys.public("rsa-1");
    rsa_with_alg["alg"] = json!("RS512");
    let cfg = json!({"issuers": [{"issuer": ISSUER, "audience": AUDIENCE, "jwks": {"keys": [rsa_with_alg]}}]});
    let token = c.keys.sign("rsa-1", &alice);
    c.add_full(
        "the key's own alg differs from the token's",
        Some(cfg),
        NOW,
        token,
        refused("alg_key_mismatch"),
    );

    // kid.
    let no_kid = c
        .keys
        .sign_with_header("ed-1", header("EdDSA", None), &alice);
    c.add(
        "no kid, exactly one key of the type",
        no_kid.clone(),
        user(&alice),
    );
    let two_ed = config(&c.keys, &["ed-1", "ed-2", "es-1"]);
    c.add_full(
        "no kid, two keys of the type",
        Some(two_ed.clone()),
        NOW,
        no_kid,
        refused("missing_kid"),
    );
    let ed2 = c.keys.sign("ed-2", &alice);
    c.add_full(
        "kid picks the second of two keys",
        Some(two_ed),
        NOW,
        ed2.clone(),
        user(&alice),
    );
    c.add("unknown kid", ed2, refused("unknown_kid"));
    let kid_number = c
        .keys
        .sign_with_header("ed-1", json!({"alg": "EdDSA", "kid": 1}), &alice);
    c.add("kid not a string", kid_number, refused("malformed"));
    c.add_full(
        "JWKS token, no issuers configured",
        None,
        NOW,
        c.keys.sign("ed-1", &alice),
        refused("unknown_kid"),
    );

    // Signatures.
    let good = c.keys.sign("ed-1", &alice);
    let parts: Vec<&str> = good.split('.').collect();
    let bob = with(&alice, json!({"sub": "bob"}));
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64(bob.to_string().as_bytes()),
        parts[2]
    );
    c.add("tampered claims", tampered, refused("bad_signature"));
    let other_key = c
        .keys
        .sign_with_header("ed-2", header("EdDSA", Some("ed-1")), &alice);
    c.add("signed by another key", other_key, refused("bad_signature"));
    for (name, kid) in [("ES256", "es-1"), ("RS256", "rsa-1")] {
        let token = c.keys.sign(kid, &alice);
        let (head, sig) = token.rsplit_once('.').unwrap();
        let mut sig =
            base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, sig).unwrap();
        sig[10] ^= 1;
        c.add(
            &format!("{name} signature with a flipped bit"),
            format!("{head}.{}", b64(&sig)),
            refused("bad_signature"),
        );
    }
    c.add(
        "empty signature",
        format!("{}.{}.", parts[0], parts[1]),
        refused("bad_signature"),
    );
    let wrong_secret = mint::hs256(b"another-secret-of-at-least-32-bytes!", &hs);
    c.add(
        "HS256 with another secret",
        wrong_secret,
        refused("bad_signature"),
    );

    // Malformed.
    c.add(
        "header not base64url",
        format!("e!J.{}.{}", parts[1], parts[2]),
        refused("malformed"),
    );
    c.add(
        "base64 with padding",
        format!("{}=.{}.{}", parts[0], parts[1], parts[2]),
        refused("malformed"),
    );
    c.add(
        "standard base64 alphabet",
        format!("{}.{}.+{}", parts[0], parts[1], &parts[2][1..]),
        refused("malformed"),
    );
    c.add(
        "header not JSON",
        format!("{}.{}.{}", b64(b"{alg"), parts[1], parts[2]),
        refused("malformed"),
    );
    c.add(
        "header a JSON array",
        format!("{}.{}.{}", b64(b"[\"EdDSA\"]"), parts[1], parts[2]),
        refused("malformed"),
    );
    c.add(
        "claims a JSON string",
        format!("{}.{}.{}", parts[0], b64(b"\"alice\""), parts[2]),
        refused("malformed"),
    );
    c.add(
        "claims not JSON",
        format!("{}.{}.{}", parts[0], b64(b"sub=alice"), parts[2]),
        refused("malformed"),
    );
    c.add("empty segments", "..".into(), refused("malformed"));
    let crit = c.keys.sign_with_header(
        "ed-1",
        json!({"alg": "EdDSA", "kid": "ed-1", "crit": ["exp"]}),
        &alice,
    );
    c.add("crit header", crit, refused("malformed"));
    let big = with(&alice, json!({"padding": "x".repeat(8192)}));
    c.add(
        "oversized token (over 8192 bytes)",
        c.keys.sign("ed-1", &big),
        refused("too_large"),
    );
    c.add(
        "oversized admin key",
        "k".repeat(8193),
        refused("too_large"),
    );

    // Time.
    let exp_at = |exp: i64| with(&alice, json!({"exp": exp}));
    let expired = exp_at(NOW_S - 61);
    c.add(
        "expired beyond the leeway",
        c.keys.sign("ed-1", &expired),
        refused("expired"),
    );
    let in_leeway = exp_at(NOW_S - 30);
    c.add(
        "expired within the leeway",
        c.keys.sign("ed-1", &in_leeway),
        user(&in_leeway),
    );
    let edge = exp_at(NOW_S - 60);
    let edge_token = c.keys.sign("ed-1", &edge);
    c.add(
        "exp + leeway is exactly now",
        edge_token.clone(),
        refused("expired"),
    );
    c.add_full(
        "exp + leeway is 1 ms after now",
        Some(c.default_config.clone()),
        NOW - 1,
        edge_token,
        user(&edge),
    );
    c.add(
        "exp missing",
        c.keys.sign("ed-1", &with(&alice, json!({"exp": null}))),
        refused("missing_exp"),
    );
    c.add(
        "exp a string",
        c.keys
            .sign("ed-1", &with(&alice, json!({"exp": "2030-01-01"}))),
        refused("missing_exp"),
    );
    let fractional = exp_at(NOW_S - 60);
    let fractional = with(&fractional, json!({"exp": (NOW_S - 60) as f64 + 0.5}));
    let mut frac_expect = user(&fractional);
    frac_expect["expires"] = json!(NOW + 500);
    c.add(
        "fractional exp",
        c.keys.sign("ed-1", &fractional),
        frac_expect,
    );
    let nbf_late = with(&alice, json!({"nbf": NOW_S + 61}));
    c.add(
        "nbf beyond the leeway",
        c.keys.sign("ed-1", &nbf_late),
        refused("not_yet_valid"),
    );
    let nbf_edge = with(&alice, json!({"nbf": NOW_S + 60}));
    c.add(
        "nbf - leeway is exactly now",
        c.keys.sign("ed-1", &nbf_edge),
        user(&nbf_edge),
    );
    let nbf_text = with(&alice, json!({"nbf": "soon"}));
    c.add(
        "nbf a string",
        c.keys.sign("ed-1", &nbf_text),
        refused("not_yet_valid"),
    );
    let mut strict = c.default_config.clone();
    strict["leeway_secs"] = json!(0);
    c.add_full(
        "leeway 0: expired one second ago",
        Some(strict),
        NOW,
        c.keys.sign("ed-1", &exp_at(NOW_S - 1)),
        refused("expired"),
    );
    let mut too_lenient = c.default_config.clone();
    too_lenient["leeway_secs"] = json!(120);
    c.add_full(
        "configuration that does not parse (leeway over 60): tokens refused",
        Some(too_lenient.clone()),
        NOW,
        c.keys.sign("ed-1", &alice),
        refused("config_invalid"),
    );
    c.add_full(
        "configuration that does not parse: admin keys still work",
        Some(too_lenient),
        NOW,
        "admin-key-one".into(),
        json!({"identity": {"kind": "admin"}, "expires": null}),
    );

    // Issuer and audience.
    c.add(
        "wrong iss",
        c.keys.sign(
            "ed-1",
            &with(&alice, json!({"iss": "https://evil.example.com"})),
        ),
        refused("wrong_issuer"),
    );
    c.add(
        "iss missing",
        c.keys.sign("ed-1", &with(&alice, json!({"iss": null}))),
        refused("wrong_issuer"),
    );
    c.add(
        "wrong aud",
        c.keys
            .sign("ed-1", &with(&alice, json!({"aud": "other-app"}))),
        refused("wrong_audience"),
    );
    c.add(
        "aud missing",
        c.keys.sign("ed-1", &with(&alice, json!({"aud": null}))),
        refused("wrong_audience"),
    );
    let aud_array = with(&alice, json!({"aud": ["other-app", AUDIENCE]}));
    c.add(
        "aud array containing the audience",
        c.keys.sign("ed-1", &aud_array),
        user(&aud_array),
    );
    c.add(
        "aud array without the audience",
        c.keys
            .sign("ed-1", &with(&alice, json!({"aud": ["other-app"]}))),
        refused("wrong_audience"),
    );
    c.add(
        "HS256 with the wrong iss",
        mint::hs256(SECRET.as_bytes(), &with(&hs, json!({"iss": ISSUER}))),
        refused("wrong_issuer"),
    );
    c.add(
        "HS256 with the wrong aud",
        mint::hs256(SECRET.as_bytes(), &with(&hs, json!({"aud": AUDIENCE}))),
        refused("wrong_audience"),
    );
    let bare_hs = json!({"sub": "carol", "exp": NOW_S + 60});
    let no_hs_claims = json!({"leeway_secs": 60});
    c.add_full(
        "HS256 without iss/aud when none are configured",
        Some(no_hs_claims),
        NOW,
        mint::hs256(SECRET.as_bytes(), &bare_hs),
        user(&bare_hs),
    );
    c.add(
        "HS256 with no secret configured",
        mint::hs256(SECRET.as_bytes(), &hs),
        refused("hs256_not_configured"),
    );
    c.without_secret();

    // Subject.
    c.add(
        "sub missing",
        c.keys.sign("ed-1", &with(&alice, json!({"sub": null}))),
        refused("missing_sub"),
    );
    c.add(
        "sub empty",
        c.keys.sign("ed-1", &with(&alice, json!({"sub": ""}))),
        refused("missing_sub"),
    );
    c.add(
        "sub a number",
        c.keys.sign("ed-1", &with(&alice, json!({"sub": 42}))),
        refused("missing_sub"),
    );
    c.add(
        "sub of 129 bytes",
        c.keys
            .sign("ed-1", &with(&alice, json!({"sub": "u".repeat(129)}))),
        refused("missing_sub"),
    );
    let long_sub = with(&alice, json!({"sub": "u".repeat(128)}));
    c.add(
        "sub of 128 bytes",
        c.keys.sign("ed-1", &long_sub),
        user(&long_sub),
    );
    let nested = with(
        &alice,
        json!({"org": {"id": "acme", "roles": ["admin", "billing"]}}),
    );
    c.add(
        "nested claims are kept whole",
        c.keys.sign("es-1", &nested),
        user(&nested),
    );

    let file = json!({
        "description": "JWT and admin key verification (protocol section 13.2): a configuration, secrets, a time and a credential give an identity or an unauthenticated error with a reason. test_keys are the private keys the tokens were signed with: test keys, never to be trusted anywhere else.",
        "test_keys": Value::Object(c.keys.0.clone()),
        "cases": c.out,
    });
    let mut text = serde_json::to_string_pretty(&file).unwrap();
    text.push('\n');
    std::fs::write(path(), text).unwrap();
    eprintln!("wrote {}", path().display());
}
