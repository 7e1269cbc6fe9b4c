//! `blaze token`: development tokens for `--token` and the demo, signed with
//! the local HS256 secret (by default the development one, spec 13 and the
//! README's "Identity") or a private JWK, and key pairs for a local JWKS.
//! Not an identity provider: production tokens come from one.

use std::time::{SystemTime, UNIX_EPOCH};

use blaze_auth::MIN_HS256_SECRET_BYTES;
use serde_json::{json, Map, Value};

use crate::args::TokenArgs;
use crate::Failure;

/// The HS256 secret of the local development identity (`scripts/run.sh`).
/// Never use it in production.
pub const DEV_SECRET: &str = "blaze-dev-secret-not-for-production";

/// Runs `blaze token`: prints a token, or with `--keygen` a key pair.
pub fn run(args: &TokenArgs) -> Result<(), Failure> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let jwk = match &args.jwk {
        Some(path) => Some(std::fs::read_to_string(path)?),
        None => None,
    };
    let env = |name: &str| std::env::var(name).ok();
    println!("{}", output(args, now, jwk.as_deref(), env)?);
    Ok(())
}

/// What `blaze token` prints at `now` (seconds), given the `--jwk` file's text.
fn output(
    args: &TokenArgs,
    now: u64,
    jwk: Option<&str>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<String, Failure> {
    if let Some(alg) = &args.keygen {
        return keygen(alg);
    }
    let uid = args.uid.as_deref().unwrap_or_default();
    let claims = claims(args, uid, now)?;
    match jwk {
        Some(text) => sign_with_jwk(text, &claims),
        None => {
            let secret = secret(args, env)?;
            Ok(blaze_auth::mint::hs256(secret.as_bytes(), &claims))
        }
    }
}

/// `--keygen ALG`: `{"private": JWK, "public": JWK}`, pretty-printed.
fn keygen(alg: &str) -> Result<String, Failure> {
    if !matches!(alg, "EdDSA" | "ES256" | "RS256") {
        return Err(usage(format!(
            "--keygen takes EdDSA, ES256 or RS256, not {alg:?}"
        )));
    }
    let (private, public) = blaze_auth::mint::generate(alg);
    let pair = json!({"private": private, "public": public});
    Ok(serde_json::to_string_pretty(&pair).expect("JSON values print"))
}

/// The token's claims: `--claims`, then `sub`, `iss`, `aud`, `iat` and `exp`.
fn claims(args: &TokenArgs, uid: &str, now: u64) -> Result<Value, Failure> {
    if uid.is_empty() {
        return Err(usage("--uid must not be empty".into()));
    }
    let mut claims = match &args.claims {
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(claims)) => claims,
            _ => return Err(usage(format!("--claims must be a JSON object, got {text}"))),
        },
        None => Map::new(),
    };
    let ttl = ttl_secs(&args.ttl)?;
    claims.insert("sub".into(), uid.into());
    claims.insert("iss".into(), args.issuer.clone().into());
    claims.insert("aud".into(), args.audience.clone().into());
    claims.insert("iat".into(), now.into());
    claims.insert("exp".into(), (now + ttl).into());
    Ok(Value::Object(claims))
}

/// `90s`, `30m`, `1h`, `7d`, or seconds without a unit; more than zero.
fn ttl_secs(ttl: &str) -> Result<u64, Failure> {
    let (digits, unit) = match ttl.char_indices().last() {
        Some((at, 's')) => (&ttl[..at], 1),
        Some((at, 'm')) => (&ttl[..at], 60),
        Some((at, 'h')) => (&ttl[..at], 3600),
        Some((at, 'd')) => (&ttl[..at], 86_400),
        _ => (ttl, 1),
    };
    match digits.parse::<u64>().ok().and_then(|n| n.checked_mul(unit)) {
        Some(secs) if secs > 0 => Ok(secs),
        _ => Err(usage(format!(
            "--ttl takes a duration such as 90s, 30m, 1h or 7d, not {ttl:?}"
        ))),
    }
}

/// The HS256 secret: `--secret`, `--secret-env` (BLAZE_HS256_SECRET), or the development one.
fn secret(args: &TokenArgs, env: impl Fn(&str) -> Option<String>) -> Result<String, Failure> {
    let secret = if let Some(secret) = &args.secret {
        secret.clone()
    } else if args.secret_env {
        env("BLAZE_HS256_SECRET")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| usage("--secret-env: BLAZE_HS256_SECRET is not set".into()))?
    } else {
        return Ok(DEV_SECRET.to_owned());
    };
    if secret.len() < MIN_HS256_SECRET_BYTES {
        return Err(usage(format!(
            "the HS256 secret has {} bytes; servers refuse secrets under {MIN_HS256_SECRET_BYTES}",
            secret.len()
        )));
    }
    Ok(secret)
}

/// Signs with a private JWK: the file holds the JWK, or `--keygen`'s pair.
fn sign_with_jwk(text: &str, claims: &Value) -> Result<String, Failure> {
    let file: Value = serde_json::from_str(text)
        .map_err(|e| usage(format!("--jwk: the file is not JSON: {e}")))?;
    let jwk = file.get("private").unwrap_or(&file);
    blaze_auth::mint::sign(jwk, claims).map_err(|e| usage(format!("--jwk: {e}")))
}

fn usage(message: String) -> Failure {
    Failure::Usage(message)
}

#[cfg(test)]
mod tests;
