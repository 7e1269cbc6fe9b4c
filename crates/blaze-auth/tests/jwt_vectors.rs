//! Runs every case of `spec/vectors/jwt.json` against the verifier.

use blaze_auth::{AuthConfig, Verdict, Verifier};
use serde_json::{json, Value};

fn cases() -> Vec<Value> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../spec/vectors/jwt.json");
    let file: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    file["cases"].as_array().unwrap().clone()
}

/// The verdict of one case, as the JSON its `expect` has.
fn run(case: &Value) -> Value {
    let config = (!case["config"].is_null()).then(|| case["config"].to_string());
    let secret = case["hs256_secret"].as_str();
    let admin = case["admin_keys"].as_str();
    let config = AuthConfig::from_parts(config.as_deref(), secret, admin)
        .unwrap_or_else(|_| AuthConfig::refusing_tokens(admin));
    let mut verifier = Verifier::new(config);
    match verifier.verify(
        case["token"].as_str().unwrap(),
        case["now"].as_u64().unwrap(),
    ) {
        Verdict::Verified(v) => json!({"identity": v.identity, "expires": v.expires}),
        Verdict::Rejected(e) => json!({"error": e.code().as_str(), "reason": e.reason()}),
        Verdict::FetchKeys { url } => json!({"fetch": url}),
    }
}

#[test]
fn every_jwt_vector() {
    let cases = cases();
    assert!(cases.len() > 50, "the vector file lost its cases");
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| {
            let got = run(case);
            (got != case["expect"])
                .then(|| format!("{}: expected {}, got {got}", case["name"], case["expect"]))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_refusal_class_but_internal_ones_has_a_vector() {
    let reasons: std::collections::HashSet<String> = cases()
        .iter()
        .filter_map(|c| c["expect"]["reason"].as_str().map(str::to_owned))
        .collect();
    for reason in blaze_auth::Reason::ALL {
        assert!(
            reasons.contains(reason.as_str()),
            "no vector for {}",
            reason.as_str()
        );
    }
}

#[test]
fn messages_never_contain_the_token() {
    for case in cases() {
        let token = case["token"].as_str().unwrap();
        let config = AuthConfig::from_parts(
            None,
            case["hs256_secret"].as_str(),
            case["admin_keys"].as_str(),
        )
        .unwrap();
        if let Verdict::Rejected(e) = Verifier::new(config).verify(token, 0) {
            if token.len() >= 8 {
                assert!(!e.message().contains(token), "{}", case["name"]);
                assert!(!format!("{e:?}").contains(token), "{}", case["name"]);
            }
        }
    }
}
