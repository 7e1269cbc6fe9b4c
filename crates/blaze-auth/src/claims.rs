//! The claims checks of spec 13.2 step 5.

use serde_json::{Map, Value};

use crate::error::Reason;

/// The longest `sub` accepted, in bytes.
pub const MAX_SUB_BYTES: usize = 128;

/// What a token's claims must satisfy.
pub(crate) struct Expected<'a> {
    /// The required `iss`, if any.
    pub(crate) issuer: Option<&'a str>,
    /// The required `aud` (or member of an `aud` array), if any.
    pub(crate) audience: Option<&'a str>,
    /// The leeway for `exp` and `nbf`, in seconds.
    pub(crate) leeway_secs: u64,
}

/// Checks the claims at `now` (ms); on success, the `sub` and the expiry in
/// ms (`exp + leeway`).
pub(crate) fn check<'c>(
    claims: &'c Map<String, Value>,
    expected: &Expected<'_>,
    now: u64,
) -> Result<(&'c str, u64), Reason> {
    let leeway_ms = expected.leeway_secs as f64 * 1000.0;
    let now = now as f64;
    let exp = seconds(claims.get("exp")).ok_or(Reason::MissingExp)?;
    let expires = (exp * 1000.0 + leeway_ms).floor();
    if now >= expires {
        return Err(Reason::Expired);
    }
    if let Some(nbf) = claims.get("nbf") {
        let nbf = seconds(Some(nbf)).ok_or(Reason::NotYetValid)?;
        if nbf * 1000.0 - leeway_ms > now {
            return Err(Reason::NotYetValid);
        }
    }
    if let Some(issuer) = expected.issuer {
        if claims.get("iss").and_then(Value::as_str) != Some(issuer) {
            return Err(Reason::WrongIssuer);
        }
    }
    if let Some(audience) = expected.audience {
        let names_it = match claims.get("aud") {
            Some(Value::String(aud)) => aud == audience,
            Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(audience)),
            _ => false,
        };
        if !names_it {
            return Err(Reason::WrongAudience);
        }
    }
    let sub = match claims.get("sub") {
        Some(Value::String(sub)) if !sub.is_empty() && sub.len() <= MAX_SUB_BYTES => sub,
        _ => return Err(Reason::MissingSub),
    };
    // `expires` is positive here (now >= 0 is before it); `as` saturates huge values.
    Ok((sub, expires as u64))
}

/// A NumericDate (seconds since the epoch): a finite JSON number.
fn seconds(value: Option<&Value>) -> Option<f64> {
    value?.as_f64().filter(|s| s.is_finite())
}
