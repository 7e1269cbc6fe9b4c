//! The server's identity configuration (spec 13.3): issuers, the HS256
//! secret, the admin keys.

use std::fmt;

use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::ConfigError;
use crate::jwk::{parse_jwks, Jwk};
use crate::token::looks_like_jwt;

/// The largest leeway for `exp` and `nbf`, and the default.
pub const MAX_LEEWAY_SECS: u64 = 60;

/// The shortest HS256 secret accepted, in bytes (RFC 7518 3.2: at least the hash's size).
pub const MIN_HS256_SECRET_BYTES: usize = 32;

/// Where an issuer's keys come from.
#[derive(Clone, Debug)]
pub(crate) enum KeySource {
    /// An inline JWKS, parsed.
    Inline(Vec<Jwk>),
    /// A JWKS URL the driver fetches.
    Url(String),
}

/// A JWKS issuer: tokens its keys verify must carry its `iss` and `aud`.
#[derive(Clone, Debug)]
pub(crate) struct Issuer {
    /// The required `iss`.
    pub(crate) issuer: String,
    /// The required `aud`.
    pub(crate) audience: String,
    /// Its keys.
    pub(crate) keys: KeySource,
}

/// The HS256 shared secret and the claims its tokens must carry.
#[derive(Clone)]
pub(crate) struct Hs256 {
    /// The secret's bytes.
    pub(crate) secret: Vec<u8>,
    /// The required `iss`, when configured.
    pub(crate) issuer: Option<String>,
    /// The required `aud`, when configured.
    pub(crate) audience: Option<String>,
}

/// A parsed identity configuration; build a [`crate::Verifier`] from it.
#[derive(Clone)]
pub struct AuthConfig {
    pub(crate) leeway_secs: u64,
    pub(crate) issuers: Vec<Issuer>,
    pub(crate) hs256: Option<Hs256>,
    /// SHA-256 of each admin key (compared in constant time).
    pub(crate) admin_keys: Vec<[u8; 32]>,
    pub(crate) max_credential_bytes: usize,
    /// The configuration did not parse: every token is refused.
    pub(crate) tokens_refused: bool,
}

/// The JSON of spec 13.3.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigJson {
    #[serde(default)]
    leeway_secs: Option<u64>,
    #[serde(default)]
    issuers: Vec<IssuerJson>,
    #[serde(default)]
    hs256: Option<Hs256Json>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IssuerJson {
    issuer: String,
    audience: String,
    #[serde(default)]
    jwks_url: Option<String>,
    #[serde(default)]
    jwks: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Hs256Json {
    #[serde(default)]
    issuer: Option<String>,
    #[serde(default)]
    audience: Option<String>,
}

impl AuthConfig {
    /// `config`: the JSON of spec 13.3 (None or blank = no issuers);
    /// `hs256_secret`: the shared secret (None or empty = HS256 refused);
    /// `admin_keys`: comma-separated admin keys (None or empty = none).
    pub fn from_parts(
        config: Option<&str>,
        hs256_secret: Option<&str>,
        admin_keys: Option<&str>,
    ) -> Result<AuthConfig, ConfigError> {
        let parsed = match config.map(str::trim).filter(|c| !c.is_empty()) {
            None => ConfigJson {
                leeway_secs: None,
                issuers: Vec::new(),
                hs256: None,
            },
            Some(text) => serde_json::from_str(text)
                .map_err(|e| ConfigError::new(format!("BLAZE_AUTH is not valid JSON: {e}")))?,
        };
        let leeway_secs = parsed.leeway_secs.unwrap_or(MAX_LEEWAY_SECS);
        if leeway_secs > MAX_LEEWAY_SECS {
            return Err(ConfigError::new(format!(
                "leeway_secs is at most {MAX_LEEWAY_SECS}"
            )));
        }
        let issuers = parsed
            .issuers
            .into_iter()
            .map(issuer)
            .collect::<Result<Vec<_>, _>>()?;
        let secret = hs256_secret.filter(|s| !s.is_empty());
        if secret.is_some_and(|s| s.len() < MIN_HS256_SECRET_BYTES) {
            return Err(ConfigError::new(format!(
                "BLAZE_HS256_SECRET is at least {MIN_HS256_SECRET_BYTES} bytes"
            )));
        }
        let hs256 = secret.map(|secret| {
            let claims = parsed.hs256.as_ref();
            Hs256 {
                secret: secret.as_bytes().to_vec(),
                issuer: claims.and_then(|c| c.issuer.clone()),
                audience: claims.and_then(|c| c.audience.clone()),
            }
        });
        Ok(AuthConfig {
            leeway_secs,
            issuers,
            hs256,
            admin_keys: admin_key_hashes(admin_keys)?,
            max_credential_bytes: blaze_protocol::Limits::default().max_credential_bytes,
            tokens_refused: false,
        })
    }

    /// The configuration to run with when [`AuthConfig::from_parts`] failed
    /// (spec 13.3: never open): the admin keys that parse still work, every
    /// token is refused with `config_invalid`.
    pub fn refusing_tokens(admin_keys: Option<&str>) -> AuthConfig {
        AuthConfig {
            leeway_secs: MAX_LEEWAY_SECS,
            issuers: Vec::new(),
            hs256: None,
            admin_keys: admin_key_hashes(admin_keys).unwrap_or_default(),
            max_credential_bytes: blaze_protocol::Limits::default().max_credential_bytes,
            tokens_refused: true,
        }
    }

    /// Replaces the credential size bound (default: `Limits::default().max_credential_bytes`).
    pub fn with_max_credential_bytes(mut self, bytes: usize) -> Self {
        self.max_credential_bytes = bytes;
        self
    }

    /// Whether anything but the anonymous identity can be verified: an
    /// issuer, an HS256 secret or an admin key is configured.
    pub fn is_empty(&self) -> bool {
        self.issuers.is_empty() && self.hs256.is_none() && self.admin_keys.is_empty()
    }

    /// The leeway applied to `exp` and `nbf`, in seconds.
    pub fn leeway_secs(&self) -> u64 {
        self.leeway_secs
    }
}

impl fmt::Debug for AuthConfig {
    /// Never shows a secret or an admin key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field("leeway_secs", &self.leeway_secs)
            .field(
                "issuers",
                &self.issuers.iter().map(|i| &i.issuer).collect::<Vec<_>>(),
            )
            .field("hs256", &self.hs256.is_some())
            .field("admin_keys", &self.admin_keys.len())
            .field("max_credential_bytes", &self.max_credential_bytes)
            .field("tokens_refused", &self.tokens_refused)
            .finish()
    }
}

/// A JWKS issuer: `issuer` and `audience` non-empty, exactly one of `jwks` and `jwks_url`.
fn issuer(json: IssuerJson) -> Result<Issuer, ConfigError> {
    if json.issuer.is_empty() || json.audience.is_empty() {
        return Err(ConfigError::new(
            "every issuer needs a non-empty \"issuer\" and \"audience\"",
        ));
    }
    let name = &json.issuer;
    let keys = match (json.jwks, json.jwks_url) {
        (Some(jwks), None) => {
            let keys = parse_jwks(&jwks)
                .map_err(|e| ConfigError::new(format!("issuer {name}: {}", e.0)))?
                .into_iter()
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ConfigError::new(format!("issuer {name}: {}", e.0)))?;
            KeySource::Inline(keys)
        }
        (None, Some(url)) if url_allowed(&url) => KeySource::Url(url),
        (None, Some(_)) => {
            return Err(ConfigError::new(format!(
            "issuer {name}: jwks_url is an https:// URL (http:// only on 127.0.0.1 or localhost)"
        )))
        }
        _ => {
            return Err(ConfigError::new(format!(
                "issuer {name}: give exactly one of \"jwks\" and \"jwks_url\""
            )))
        }
    };
    Ok(Issuer {
        issuer: json.issuer,
        audience: json.audience,
        keys,
    })
}

/// An `https://` URL, or an `http://` one on the local machine (for tests and development).
fn url_allowed(url: &str) -> bool {
    if url.starts_with("https://") {
        return true;
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
    host == "127.0.0.1" || host == "localhost"
}

/// The SHA-256 of each comma-separated admin key (blank entries skipped).
fn admin_key_hashes(keys: Option<&str>) -> Result<Vec<[u8; 32]>, ConfigError> {
    keys.unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(|k| {
            if looks_like_jwt(k) {
                Err(ConfigError::new(
                    "an admin key must not have the shape of a JWT (three dot-separated segments)",
                ))
            } else {
                Ok(Sha256::digest(k.as_bytes()).into())
            }
        })
        .collect()
}
