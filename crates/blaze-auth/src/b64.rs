//! Strict base64url without padding (RFC 7515 section 2), as JWTs and JWKs use.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// Decodes base64url without padding; padding, other alphabets and
/// non-canonical trailing bits are refused.
pub(crate) fn decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

/// Encodes bytes as base64url without padding.
#[cfg(feature = "mint")]
pub(crate) fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}
