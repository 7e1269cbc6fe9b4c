//! The verifier: credential in, identity or refusal out (spec 13.1, 13.2).

use blaze_protocol::Identity;
use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

use crate::cache::{BadSignatures, KeyRef, TokenHash, VerifiedCache};
use crate::cache::{BAD_SIGNATURE_CAPACITY, VERIFIED_CAPACITY};
use crate::claims::{self, Expected};
use crate::config::{AuthConfig, KeySource};
use crate::error::{AuthError, Reason};
use crate::jwk::{parse_jwks, Jwk};
use crate::token::{self, Alg, Token};

/// How long after a JWKS fetch an unknown `kid` may trigger another, in ms.
pub const JWKS_REFETCH_MS: u64 = 60_000;

/// A verified credential.
#[derive(Clone, Debug, PartialEq)]
pub struct Verified {
    /// Who the credential is.
    pub identity: Identity,
    /// When it expires, in ms since the Unix epoch (`exp + leeway`); `None` for an admin key.
    pub expires: Option<u64>,
}

/// The outcome of [`Verifier::verify`].
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// The credential is valid.
    Verified(Verified),
    /// The credential is refused (`unauthenticated`).
    Rejected(AuthError),
    /// Fetch this JWKS URL, hand it to [`Verifier::handle_jwks`], then call
    /// `verify` again (asked at most once a minute per issuer; the second
    /// `verify` never asks again for that token).
    FetchKeys {
        /// The issuer's `jwks_url`.
        url: String,
    },
}

/// A JWKS issuer's keys as currently known.
struct IssuerKeys {
    issuer: String,
    audience: String,
    url: Option<String>,
    keys: Vec<Jwk>,
    /// When the driver last answered a fetch of `url` (success or failure).
    last_fetch: Option<u64>,
}

/// Verifies credentials; holds the keys, the fetched JWKS and the caches.
/// One per process (or isolate).
pub struct Verifier {
    config: AuthConfig,
    issuers: Vec<IssuerKeys>,
    verified: VerifiedCache,
    bad_signatures: BadSignatures,
    signature_checks: u64,
}

impl std::fmt::Debug for Verifier {
    /// The configuration (no secret) and the cache sizes; never a token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("config", &self.config)
            .field("cached_tokens", &self.verified.len())
            .field("signature_checks", &self.signature_checks)
            .finish_non_exhaustive()
    }
}

/// The key chosen for a token.
#[derive(Clone, Copy)]
enum Chosen {
    /// The HS256 secret.
    Secret,
    /// Key `.1` of JWKS issuer `.0`.
    Jwk(usize, usize),
}

impl Verifier {
    /// A verifier with `config`'s keys and empty caches.
    pub fn new(config: AuthConfig) -> Self {
        let issuers = config
            .issuers
            .iter()
            .map(|i| {
                let (url, keys) = match &i.keys {
                    KeySource::Inline(keys) => (None, keys.clone()),
                    KeySource::Url(url) => (Some(url.clone()), Vec::new()),
                };
                IssuerKeys {
                    issuer: i.issuer.clone(),
                    audience: i.audience.clone(),
                    url,
                    keys,
                    last_fetch: None,
                }
            })
            .collect();
        Self {
            config,
            issuers,
            verified: VerifiedCache::new(VERIFIED_CAPACITY),
            bad_signatures: BadSignatures::new(BAD_SIGNATURE_CAPACITY),
            signature_checks: 0,
        }
    }

    /// Verifies a credential (admin key or JWT) at `now` (ms since the Unix epoch).
    pub fn verify(&mut self, credential: &str, now: u64) -> Verdict {
        match self.verify_inner(credential, now) {
            Ok(verified) => Verdict::Verified(verified),
            Err(Refusal::Reject(reason)) => Verdict::Rejected(AuthError::new(reason)),
            Err(Refusal::Fetch(url)) => Verdict::FetchKeys { url },
        }
    }

    /// The driver fetched `url` (a JWKS) at `now`: `Ok(body)` or `Err(reason)`.
    /// A body that is not a JWKS counts as a failure; on failure the last
    /// good keys are kept.
    pub fn handle_jwks(&mut self, url: &str, body: Result<&str, String>, now: u64) {
        let keys: Option<Vec<Jwk>> = body
            .ok()
            .and_then(|b| serde_json::from_str(b).ok())
            .and_then(|v| parse_jwks(&v).ok())
            .map(|keys| keys.into_iter().filter_map(Result::ok).collect());
        for (index, issuer) in self.issuers.iter_mut().enumerate() {
            if issuer.url.as_deref() != Some(url) {
                continue;
            }
            issuer.last_fetch = Some(now);
            if let Some(keys) = &keys {
                issuer.keys = keys.clone();
                let listed: Vec<Option<String>> = keys.iter().map(|k| k.kid.clone()).collect();
                self.verified
                    .drop_unlisted(index, |k| k.kid.is_some() && listed.contains(&k.kid));
                self.bad_signatures.clear();
            }
        }
    }

    /// How many signatures this verifier has checked (cache hits check none).
    pub fn signature_checks(&self) -> u64 {
        self.signature_checks
    }

    /// How many verified tokens are cached.
    pub fn cached_tokens(&self) -> usize {
        self.verified.len()
    }

    fn verify_inner(&mut self, credential: &str, now: u64) -> Result<Verified, Refusal> {
        if credential.len() > self.config.max_credential_bytes {
            return Err(Refusal::Reject(Reason::TooLarge));
        }
        let hash: TokenHash = Sha256::digest(credential.as_bytes()).into();
        if !token::looks_like_jwt(credential) {
            return self.admin_key(&hash);
        }
        if self.config.tokens_refused {
            return Err(Refusal::Reject(Reason::ConfigInvalid));
        }
        if let Some(verified) = self.verified.get(&hash, now) {
            return Ok(verified);
        }
        if self.bad_signatures.contains(&hash) {
            return Err(Refusal::Reject(Reason::BadSignature));
        }
        let token = token::parse(credential).map_err(Refusal::Reject)?;
        let chosen = self.choose_key(&token, now)?;
        self.signature_checks += 1;
        if !self.signature_verifies(&token, chosen) {
            self.bad_signatures.insert(hash);
            return Err(Refusal::Reject(Reason::BadSignature));
        }
        let (uid, expires) =
            claims::check(&token.claims, &self.expected(chosen), now).map_err(Refusal::Reject)?;
        let verified = Verified {
            identity: Identity::User {
                uid: uid.to_owned(),
                claims: token.claims.clone(),
            },
            expires: Some(expires),
        };
        let key_ref = match chosen {
            Chosen::Secret => None,
            Chosen::Jwk(issuer, k) => Some(KeyRef {
                issuer,
                kid: self.issuers[issuer].keys[k].kid.clone(),
            }),
        };
        self.verified.insert(hash, verified.clone(), key_ref, now);
        Ok(verified)
    }

    /// Whether the chosen key verifies the token's signature.
    fn signature_verifies(&self, token: &Token<'_>, chosen: Chosen) -> bool {
        match chosen {
            Chosen::Secret => self.hs256_verifies(token),
            Chosen::Jwk(i, k) => self.issuers[i].keys[k]
                .key
                .verify(token.signing_input, &token.signature),
        }
    }

    /// What the claims of a token verified by `chosen` must satisfy.
    fn expected(&self, chosen: Chosen) -> Expected<'_> {
        let leeway_secs = self.config.leeway_secs;
        match chosen {
            Chosen::Secret => {
                let hs = self.config.hs256.as_ref().expect("chosen only when set");
                Expected {
                    issuer: hs.issuer.as_deref(),
                    audience: hs.audience.as_deref(),
                    leeway_secs,
                }
            }
            Chosen::Jwk(i, _) => Expected {
                issuer: Some(&self.issuers[i].issuer),
                audience: Some(&self.issuers[i].audience),
                leeway_secs,
            },
        }
    }

    /// An admin key, compared in constant time (as SHA-256 digests) with every configured key.
    fn admin_key(&self, hash: &TokenHash) -> Result<Verified, Refusal> {
        let found = self
            .config
            .admin_keys
            .iter()
            .fold(Choice::from(0), |found, key| found | key.ct_eq(hash));
        if bool::from(found) {
            Ok(Verified {
                identity: Identity::Admin,
                expires: None,
            })
        } else {
            Err(Refusal::Reject(Reason::UnknownAdminKeyOrToken))
        }
    }

    /// The key that must verify `token` (spec 13.2 step 3), or why there is none.
    fn choose_key(&self, token: &Token<'_>, now: u64) -> Result<Chosen, Refusal> {
        if token.alg == Alg::Hs256 {
            return match self.config.hs256 {
                Some(_) => Ok(Chosen::Secret),
                None => Err(Refusal::Reject(Reason::Hs256NotConfigured)),
            };
        }
        // A token can only verify under the issuer its `iss` names, so when
        // that is a configured issuer only its keys are candidates.
        let iss = token.claims.get("iss").and_then(|v| v.as_str());
        let named = self.issuers.iter().any(|i| Some(i.issuer.as_str()) == iss);
        let mut candidates = self
            .issuers
            .iter()
            .enumerate()
            .filter(|(_, i)| !named || Some(i.issuer.as_str()) == iss)
            .flat_map(|(i, issuer)| issuer.keys.iter().enumerate().map(move |k| (i, k)));
        let (index, (key_index, jwk)) = match &token.kid {
            Some(kid) => match candidates.find(|(_, (_, k))| k.kid.as_ref() == Some(kid)) {
                Some(found) => found,
                None => return Err(self.fetch_or(token, now, Reason::UnknownKid)),
            },
            None => {
                let mut of_type = candidates.filter(|(_, (_, k))| k.key.alg() == token.alg);
                match (of_type.next(), of_type.next()) {
                    (Some(only), None) => only,
                    (Some(_), Some(_)) => return Err(Refusal::Reject(Reason::MissingKid)),
                    (None, _) => return Err(self.fetch_or(token, now, Reason::UnknownKid)),
                }
            }
        };
        let alg_matches =
            jwk.key.alg() == token.alg && jwk.alg.as_deref().is_none_or(|a| a == token.alg.name());
        if !alg_matches {
            return Err(Refusal::Reject(Reason::AlgKeyMismatch));
        }
        Ok(Chosen::Jwk(index, key_index))
    }

    /// No known key: fetch the JWKS of the issuer the token names, when it
    /// has a URL and was not fetched in the last minute; else refuse.
    fn fetch_or(&self, token: &Token<'_>, now: u64, reason: Reason) -> Refusal {
        let iss = token.claims.get("iss").and_then(|v| v.as_str());
        let due = self.issuers.iter().find(|i| {
            Some(i.issuer.as_str()) == iss
                && i.url.is_some()
                && i.last_fetch
                    .is_none_or(|at| now >= at.saturating_add(JWKS_REFETCH_MS))
        });
        match due.and_then(|i| i.url.clone()) {
            Some(url) => Refusal::Fetch(url),
            None => Refusal::Reject(reason),
        }
    }

    /// Whether an HS256 token's MAC is right (compared in constant time).
    fn hs256_verifies(&self, token: &Token<'_>) -> bool {
        let hs = self.config.hs256.as_ref().expect("chosen only when set");
        let mut mac =
            hmac::Hmac::<Sha256>::new_from_slice(&hs.secret).expect("HMAC takes any key length");
        mac.update(token.signing_input);
        mac.verify_slice(&token.signature).is_ok()
    }
}

/// Why `verify_inner` did not verify.
enum Refusal {
    Reject(Reason),
    Fetch(String),
}
