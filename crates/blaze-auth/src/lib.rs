//! Blaze's credential verifier (spec section 13): a credential (a JWT or an
//! admin key) in, a verified [`blaze_protocol::Identity`] or a refusal out.
//!
//! JWTs are RS256, ES256 or EdDSA verified against JWKS keys (inline, or
//! fetched by the driver from a URL), or HS256 against a shared secret.
//! Verified tokens are cached by their SHA-256 until they expire.
//!
//! Architecture Invariant: no I/O and no clock. Time is an argument
//! (milliseconds since the Unix epoch); a JWKS URL to fetch is an output
//! ([`Verdict::FetchKeys`]) and its body an input ([`Verifier::handle_jwks`]).
//! Builds for wasm32-unknown-unknown without randomness (only the `mint`
//! feature, which signs tokens, uses it).

mod b64;
mod cache;
mod claims;
mod config;
mod error;
mod jwk;
#[cfg(feature = "mint")]
pub mod mint;
mod token;
mod verifier;

pub use claims::MAX_SUB_BYTES;
pub use config::{AuthConfig, MAX_LEEWAY_SECS, MIN_HS256_SECRET_BYTES};
pub use error::{AuthError, ConfigError, Reason};
pub use verifier::{Verdict, Verified, Verifier, JWKS_REFETCH_MS};
