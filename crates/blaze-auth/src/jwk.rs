//! Public keys of a JWKS document (RFC 7517): RSA, EC P-256 and OKP Ed25519.

use rsa::BoxedUint;
use serde_json::{Map, Value};

use crate::b64;
use crate::token::Alg;

/// The RSA modulus sizes accepted, in bits.
const RSA_BITS: std::ops::RangeInclusive<usize> = 2048..=4096;

/// A verification key of one of the supported types.
#[derive(Clone, Debug)]
pub(crate) enum PublicKey {
    /// `kty: RSA`, for RS256.
    Rsa(Box<rsa::PublicKey>),
    /// `kty: EC, crv: P-256`, for ES256.
    P256(p256::ecdsa::VerifyingKey),
    /// `kty: OKP, crv: Ed25519`, for EdDSA.
    Ed25519(ed25519_dalek::VerifyingKey),
}

impl PublicKey {
    /// The one algorithm this key verifies.
    pub(crate) fn alg(&self) -> Alg {
        match self {
            Self::Rsa(_) => Alg::Rs256,
            Self::P256(_) => Alg::Es256,
            Self::Ed25519(_) => Alg::EdDsa,
        }
    }

    /// Whether `signature` signs `message` under this key.
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            Self::Rsa(key) => key
                .pkcs1v15_verify::<sha2::Sha256>(message, signature)
                .is_ok(),
            Self::P256(key) => {
                use p256::ecdsa::signature::Verifier;
                p256::ecdsa::Signature::from_slice(signature)
                    .is_ok_and(|sig| key.verify(message, &sig).is_ok())
            }
            Self::Ed25519(key) => <&[u8; 64]>::try_from(signature).is_ok_and(|bytes| {
                let sig = ed25519_dalek::Signature::from_bytes(bytes);
                key.verify_strict(message, &sig).is_ok()
            }),
        }
    }
}

/// One key of a JWKS.
#[derive(Clone, Debug)]
pub(crate) struct Jwk {
    /// Its `kid`, when it has one.
    pub(crate) kid: Option<String>,
    /// Its own `alg`, when it has one (must equal the token's).
    pub(crate) alg: Option<String>,
    /// The key itself.
    pub(crate) key: PublicKey,
}

/// A JWKS key of a supported type that is not a valid key.
#[derive(Debug)]
pub(crate) struct BadKey(pub(crate) String);

/// The keys of a JWKS document (`{"keys": [...]}`): signature keys of a
/// supported type, each parsed or an error when it is invalid; keys of other
/// types or curves, and keys whose `use` is not `sig`, are skipped. A
/// document of another shape is an error.
pub(crate) fn parse_jwks(jwks: &Value) -> Result<Vec<Result<Jwk, BadKey>>, BadKey> {
    let keys = jwks
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| BadKey("a JWKS is an object with a \"keys\" array".into()))?;
    let mut out = Vec::new();
    for key in keys {
        match key.as_object() {
            Some(key) => out.extend(parse_jwk(key).transpose()),
            None => out.push(Err(BadKey("each JWKS key is an object".into()))),
        }
    }
    Ok(out)
}

/// One key: `None` when it is of a type Blaze does not verify with.
fn parse_jwk(key: &Map<String, Value>) -> Result<Option<Jwk>, BadKey> {
    let text = |name: &str| key.get(name).and_then(Value::as_str);
    let kid = optional_string(key, "kid")?;
    if key.get("use").is_some_and(|u| u != "sig") {
        return Ok(None);
    }
    let alg = optional_string(key, "alg")?;
    let label = kid.as_deref().unwrap_or("(no kid)");
    let bytes = |name: &str| {
        text(name)
            .and_then(b64::decode)
            .ok_or_else(|| BadKey(format!("key {label}: \"{name}\" is not base64url")))
    };
    let public = match (text("kty"), text("crv")) {
        (Some("RSA"), _) => {
            let n = BoxedUint::from_be_slice_vartime(&bytes("n")?);
            let e = BoxedUint::from_be_slice_vartime(&bytes("e")?);
            let rsa = rsa::PublicKey::new_with_size_limits(n, e, RSA_BITS)
                .map_err(|e| BadKey(format!("key {label}: not a usable RSA key ({e})")))?;
            PublicKey::Rsa(Box::new(rsa))
        }
        (Some("EC"), Some("P-256")) => {
            let (x, y) = (bytes("x")?, bytes("y")?);
            if x.len() != 32 || y.len() != 32 {
                return Err(BadKey(format!("key {label}: P-256 x and y are 32 bytes")));
            }
            let point = [&[4u8][..], &x, &y].concat();
            let ec = p256::ecdsa::VerifyingKey::from_sec1_bytes(&point)
                .map_err(|_| BadKey(format!("key {label}: not a P-256 point")))?;
            PublicKey::P256(ec)
        }
        (Some("OKP"), Some("Ed25519")) => {
            let x = bytes("x")?;
            let x = <[u8; 32]>::try_from(x.as_slice())
                .map_err(|_| BadKey(format!("key {label}: Ed25519 x is 32 bytes")))?;
            let ed = ed25519_dalek::VerifyingKey::from_bytes(&x)
                .map_err(|_| BadKey(format!("key {label}: not an Ed25519 key")))?;
            PublicKey::Ed25519(ed)
        }
        _ => return Ok(None),
    };
    Ok(Some(Jwk {
        kid,
        alg,
        key: public,
    }))
}

/// A member that must be a string when present.
fn optional_string(key: &Map<String, Value>, name: &str) -> Result<Option<String>, BadKey> {
    match key.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(BadKey(format!("a JWKS key's \"{name}\" is a string"))),
    }
}
