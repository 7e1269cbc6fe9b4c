//! Splitting a JWT into its parts (spec 13.2 steps 1 and 2).

use serde_json::{Map, Value};

use crate::b64;
use crate::error::Reason;

/// The algorithms Blaze accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Alg {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// ECDSA on P-256 with SHA-256.
    Es256,
    /// Ed25519.
    EdDsa,
    /// HMAC with SHA-256, against the shared secret.
    Hs256,
}

impl Alg {
    /// The algorithm a header's `alg` names, if it is accepted.
    fn parse(name: &str) -> Option<Self> {
        match name {
            "RS256" => Some(Self::Rs256),
            "ES256" => Some(Self::Es256),
            "EdDSA" => Some(Self::EdDsa),
            "HS256" => Some(Self::Hs256),
            _ => None,
        }
    }

    /// The JOSE name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
            Self::Hs256 => "HS256",
        }
    }
}

/// Whether a credential has the shape of a JWT (three `.`-separated segments);
/// anything else is an admin key.
pub(crate) fn looks_like_jwt(credential: &str) -> bool {
    credential.split('.').count() == 3
}

/// A decoded, not yet verified JWT.
#[derive(Debug)]
pub(crate) struct Token<'a> {
    /// The header's `alg`.
    pub(crate) alg: Alg,
    /// The header's `kid`, when present.
    pub(crate) kid: Option<String>,
    /// The claims object.
    pub(crate) claims: Map<String, Value>,
    /// `header.payload`: what the signature signs.
    pub(crate) signing_input: &'a [u8],
    /// The decoded signature.
    pub(crate) signature: Vec<u8>,
}

/// Decodes a JWT's three segments and checks its `alg`.
pub(crate) fn parse(jwt: &str) -> Result<Token<'_>, Reason> {
    let mut parts = jwt.splitn(3, '.');
    let (Some(header), Some(payload), Some(signature)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(Reason::Malformed);
    };
    if signature.contains('.') {
        return Err(Reason::Malformed);
    }
    let header = json_object(header)?;
    let claims = json_object(payload)?;
    let signature = b64::decode(signature).ok_or(Reason::Malformed)?;
    // No extension is understood, so a token that marks one critical is refused (RFC 7515 4.1.11).
    if header.contains_key("crit") {
        return Err(Reason::Malformed);
    }
    let alg = match header.get("alg") {
        Some(Value::String(name)) => Alg::parse(name).ok_or(Reason::AlgNotAllowed)?,
        Some(_) => return Err(Reason::Malformed),
        None => return Err(Reason::AlgNotAllowed),
    };
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err(Reason::Malformed),
    };
    let signed_len = jwt.rfind('.').expect("three segments");
    Ok(Token {
        alg,
        kid,
        claims,
        signing_input: &jwt.as_bytes()[..signed_len],
        signature,
    })
}

/// A base64url segment holding a JSON object.
fn json_object(segment: &str) -> Result<Map<String, Value>, Reason> {
    let bytes = b64::decode(segment).ok_or(Reason::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| Reason::Malformed)
}
