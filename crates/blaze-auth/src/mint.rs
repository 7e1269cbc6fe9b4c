//! Signing tokens and making key pairs, for the CLI's `blaze token`, tests
//! and the conformance vectors. Not used by servers (needs randomness for
//! [`generate`]).

use std::fmt;

use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use rsa::BoxedUint;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::b64;

/// A private JWK that cannot sign.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MintError(String);

impl fmt::Display for MintError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot sign: {}", self.0)
    }
}

impl std::error::Error for MintError {}

/// An HS256 token for `claims`, signed with `secret`.
pub fn hs256(secret: &[u8], claims: &Value) -> String {
    hs256_with_header(secret, &json!({"alg": "HS256", "typ": "JWT"}), claims)
}

/// A token with exactly `header` and `claims`, MACed with HMAC-SHA-256
/// under `secret` whatever the header says (for tests of forged tokens).
pub fn hs256_with_header(secret: &[u8], header: &Value, claims: &Value) -> String {
    use hmac::{KeyInit, Mac};
    let input = signing_input(header, claims);
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(input.as_bytes());
    join(&input, &mac.finalize().into_bytes())
}

/// A token for `claims` signed by `jwk_private` (an Ed25519, P-256 or RSA
/// private JWK); the header has the key's `alg` and `kid`.
pub fn sign(jwk_private: &Value, claims: &Value) -> Result<String, MintError> {
    let key = SigningKey::parse(jwk_private)?;
    let mut header = json!({"alg": key.alg(), "typ": "JWT"});
    if let Some(kid) = jwk_private.get("kid").and_then(Value::as_str) {
        header["kid"] = json!(kid);
    }
    Ok(key.sign_token(&header, claims))
}

/// A token with exactly `header` and `claims`, signed by `jwk_private`
/// whatever the header says (for tests of forged tokens).
pub fn sign_with_header(
    jwk_private: &Value,
    header: &Value,
    claims: &Value,
) -> Result<String, MintError> {
    Ok(SigningKey::parse(jwk_private)?.sign_token(header, claims))
}

/// A new key pair for `alg` (`"EdDSA"`, `"ES256"` or `"RS256"`, 2048 bits)
/// as (private JWK, public JWK), each with `alg`, `use: sig` and a `kid`
/// (the key's RFC 7638 thumbprint).
///
/// # Panics
///
/// For any other `alg`, or when the system has no randomness.
pub fn generate(alg: &str) -> (Value, Value) {
    let mut private = match alg {
        "EdDSA" => {
            let key = ed25519_dalek::SigningKey::from_bytes(&random_32());
            json!({"kty": "OKP", "crv": "Ed25519",
                "x": b64::encode(&key.verifying_key().to_bytes()), "d": b64::encode(&key.to_bytes())})
        }
        "ES256" => {
            let key = loop {
                if let Ok(key) = p256::ecdsa::SigningKey::from_slice(&random_32()) {
                    break key;
                }
            };
            let point = key.verifying_key().to_sec1_point(false);
            let (x, y) = (
                point.x().expect("uncompressed"),
                point.y().expect("uncompressed"),
            );
            json!({"kty": "EC", "crv": "P-256", "x": b64::encode(x), "y": b64::encode(y),
                "d": b64::encode(&key.to_bytes())})
        }
        "RS256" => {
            let mut rng = rsa::rand_core::UnwrapErr(getrandom::SysRng);
            let key = rsa::PrivateKey::new(&mut rng, 2048).expect("RSA key generation");
            let big = |n: &BoxedUint| b64::encode(&n.to_be_bytes_trimmed_vartime());
            let primes = key.primes();
            json!({"kty": "RSA", "n": big(key.n()), "e": big(key.e()), "d": big(key.d()),
                "p": big(&primes[0]), "q": big(&primes[1])})
        }
        other => panic!("mint::generate: unsupported alg {other:?} (EdDSA, ES256, RS256)"),
    };
    private["kid"] = json!(thumbprint(&public_jwk(&private)));
    private["alg"] = json!(alg);
    private["use"] = json!("sig");
    let public = public_jwk(&private);
    (private, public)
}

/// The public half of a JWK: the private members (`d`, `p`, `q`, `dp`,
/// `dq`, `qi`, `oth`) removed.
pub fn public_jwk(jwk: &Value) -> Value {
    let mut public = jwk.clone();
    if let Some(members) = public.as_object_mut() {
        for private in ["d", "p", "q", "dp", "dq", "qi", "oth"] {
            members.remove(private);
        }
    }
    public
}

/// The RFC 7638 thumbprint of a public JWK (base64url of the SHA-256 of its
/// required members in lexicographic order).
pub fn thumbprint(jwk: &Value) -> String {
    let required: &[&str] = match jwk.get("kty").and_then(Value::as_str) {
        Some("RSA") => &["e", "kty", "n"],
        Some("EC") => &["crv", "kty", "x", "y"],
        _ => &["crv", "kty", "x"],
    };
    let members: Map<String, Value> = required
        .iter()
        .map(|m| (m.to_string(), jwk.get(*m).cloned().unwrap_or(Value::Null)))
        .collect();
    let canonical = serde_json::to_string(&members).expect("a JSON object");
    b64::encode(&Sha256::digest(canonical.as_bytes()))
}

/// A private key that signs.
enum SigningKey {
    Ed25519(ed25519_dalek::SigningKey),
    P256(p256::ecdsa::SigningKey),
    Rsa(Box<rsa::PrivateKey>),
}

impl SigningKey {
    fn parse(jwk: &Value) -> Result<Self, MintError> {
        let text = |name: &str| jwk.get(name).and_then(Value::as_str);
        let bytes = |name: &str| {
            text(name)
                .and_then(b64::decode)
                .ok_or_else(|| MintError(format!("the private JWK has no base64url \"{name}\"")))
        };
        match (text("kty"), text("crv")) {
            (Some("OKP"), Some("Ed25519")) => {
                let d = <[u8; 32]>::try_from(bytes("d")?.as_slice())
                    .map_err(|_| MintError("Ed25519 d is 32 bytes".into()))?;
                Ok(Self::Ed25519(ed25519_dalek::SigningKey::from_bytes(&d)))
            }
            (Some("EC"), Some("P-256")) => p256::ecdsa::SigningKey::from_slice(&bytes("d")?)
                .map(Self::P256)
                .map_err(|_| MintError("not a P-256 private key".into())),
            (Some("RSA"), _) => {
                let big = |name: &str| bytes(name).map(|b| BoxedUint::from_be_slice_vartime(&b));
                rsa::PrivateKey::from_components(
                    big("n")?,
                    big("e")?,
                    big("d")?,
                    vec![big("p")?, big("q")?],
                )
                .map(|k| Self::Rsa(Box::new(k)))
                .map_err(|e| MintError(format!("not an RSA private key ({e})")))
            }
            _ => Err(MintError(
                "the key is not an Ed25519 (OKP), P-256 (EC) or RSA private JWK".into(),
            )),
        }
    }

    fn alg(&self) -> &'static str {
        match self {
            Self::Ed25519(_) => "EdDSA",
            Self::P256(_) => "ES256",
            Self::Rsa(_) => "RS256",
        }
    }

    fn sign_token(&self, header: &Value, claims: &Value) -> String {
        let input = signing_input(header, claims);
        let message = input.as_bytes();
        let signature = match self {
            Self::Ed25519(key) => {
                use ed25519_dalek::Signer;
                key.sign(message).to_bytes().to_vec()
            }
            Self::P256(key) => {
                use p256::ecdsa::signature::Signer;
                let sig: p256::ecdsa::Signature = key.sign(message);
                sig.to_bytes().to_vec()
            }
            Self::Rsa(key) => key
                .pkcs1v15_sign::<Sha256>(message)
                .expect("a validated RSA key signs"),
        };
        join(&input, &signature)
    }
}

/// `base64url(header).base64url(claims)`.
fn signing_input(header: &Value, claims: &Value) -> String {
    let part = |v: &Value| b64::encode(serde_json::to_string(v).expect("JSON").as_bytes());
    format!("{}.{}", part(header), part(claims))
}

/// The token: signing input, `.`, base64url signature.
fn join(input: &str, signature: &[u8]) -> String {
    format!("{input}.{}", b64::encode(signature))
}

/// 32 random bytes from the system.
fn random_32() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the system's randomness");
    bytes
}
