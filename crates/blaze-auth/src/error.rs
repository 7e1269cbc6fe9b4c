//! Why a credential or a configuration was refused.

use std::fmt;

use blaze_protocol::{ErrorBody, ErrorCode};

/// Each class of refusal, with a stable name for logs and vectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Not three base64url segments, or a header or claims that are not JSON
    /// objects, or a header field of the wrong type.
    Malformed,
    /// Longer than `max_credential_bytes`.
    TooLarge,
    /// The header's `alg` is not one of RS256, ES256, EdDSA, HS256.
    AlgNotAllowed,
    /// The key named by the token is not of the type `alg` needs (or its own
    /// `alg` differs).
    AlgKeyMismatch,
    /// No `kid`, and not exactly one configured key of the token's type.
    MissingKid,
    /// No configured or fetched key has the token's `kid`.
    UnknownKid,
    /// The signature does not verify.
    BadSignature,
    /// `exp` is missing or not a number.
    MissingExp,
    /// `exp + leeway` is not after now.
    Expired,
    /// `nbf - leeway` is after now (or `nbf` is not a number).
    NotYetValid,
    /// `iss` is not the issuer whose key verified the token.
    WrongIssuer,
    /// `aud` does not name the issuer's audience.
    WrongAudience,
    /// `sub` is missing, not a string, empty or longer than 128 bytes.
    MissingSub,
    /// An HS256 token, and no shared secret is configured.
    Hs256NotConfigured,
    /// Not a JWT, and not one of the admin keys.
    UnknownAdminKeyOrToken,
    /// The server's identity configuration did not parse: every token is
    /// refused until it is fixed.
    ConfigInvalid,
}

impl Reason {
    /// Every class, in declaration order.
    pub const ALL: [Reason; 16] = [
        Self::Malformed,
        Self::TooLarge,
        Self::AlgNotAllowed,
        Self::AlgKeyMismatch,
        Self::MissingKid,
        Self::UnknownKid,
        Self::BadSignature,
        Self::MissingExp,
        Self::Expired,
        Self::NotYetValid,
        Self::WrongIssuer,
        Self::WrongAudience,
        Self::MissingSub,
        Self::Hs256NotConfigured,
        Self::UnknownAdminKeyOrToken,
        Self::ConfigInvalid,
    ];

    /// The stable snake_case name, for logs and the conformance vectors.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::TooLarge => "too_large",
            Self::AlgNotAllowed => "alg_not_allowed",
            Self::AlgKeyMismatch => "alg_key_mismatch",
            Self::MissingKid => "missing_kid",
            Self::UnknownKid => "unknown_kid",
            Self::BadSignature => "bad_signature",
            Self::MissingExp => "missing_exp",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::WrongIssuer => "wrong_issuer",
            Self::WrongAudience => "wrong_audience",
            Self::MissingSub => "missing_sub",
            Self::Hs256NotConfigured => "hs256_not_configured",
            Self::UnknownAdminKeyOrToken => "unknown_admin_key_or_token",
            Self::ConfigInvalid => "config_invalid",
        }
    }

    /// A sentence for the client (never contains the credential).
    fn explanation(self) -> &'static str {
        match self {
            Self::Malformed => "the token is not a well-formed JWT (three base64url segments, JSON header and claims)",
            Self::TooLarge => "the credential is longer than max_credential_bytes",
            Self::AlgNotAllowed => "the token's alg is not one of RS256, ES256, EdDSA, HS256",
            Self::AlgKeyMismatch => "the token's alg does not match the type of its key",
            Self::MissingKid => "the token has no kid and several keys could verify it",
            Self::UnknownKid => "no key with the token's kid is configured",
            Self::BadSignature => "the token's signature does not verify",
            Self::MissingExp => "the token has no numeric exp claim",
            Self::Expired => "the token has expired",
            Self::NotYetValid => "the token is not valid yet (nbf)",
            Self::WrongIssuer => "the token's iss is not the issuer of its key",
            Self::WrongAudience => "the token's aud does not name this server's audience",
            Self::MissingSub => "the token's sub is missing, empty or longer than 128 bytes",
            Self::Hs256NotConfigured => "HS256 tokens are not accepted: no shared secret is configured",
            Self::UnknownAdminKeyOrToken => "the credential is neither a JWT nor a known admin key",
            Self::ConfigInvalid => "the server's identity configuration is invalid (BLAZE_AUTH); tokens are refused until it is fixed",
        }
    }
}

/// A refused credential. Its code is always `unauthenticated`; nothing in it
/// contains the credential.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuthError {
    reason: Reason,
}

impl AuthError {
    /// A refusal of class `reason`.
    pub fn new(reason: Reason) -> Self {
        Self { reason }
    }

    /// The class of refusal.
    pub fn kind(&self) -> Reason {
        self.reason
    }

    /// The stable name of the class, for logs (e.g. `expired`).
    pub fn reason(&self) -> &'static str {
        self.reason.as_str()
    }

    /// The message for the client's error frame or HTTP body.
    pub fn message(&self) -> String {
        format!("unauthenticated: {}", self.reason.explanation())
    }

    /// The error code: always `unauthenticated`.
    pub fn code(&self) -> ErrorCode {
        ErrorCode::Unauthenticated
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for AuthError {}

impl From<AuthError> for ErrorBody {
    fn from(e: AuthError) -> Self {
        ErrorBody {
            code: e.code(),
            message: e.message(),
            write_index: None,
        }
    }
}

/// A configuration that cannot be used (spec 13.3): the message says what
/// is wrong, and never contains a secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError(pub(crate) String);

impl ConfigError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid identity configuration: {}", self.0)
    }
}

impl std::error::Error for ConfigError {}
