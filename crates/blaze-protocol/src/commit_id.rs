//! Commit ids: the optional client-chosen name of one commit, which makes a
//! retry safe (spec/protocol.md, "Commit ids").

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest commit id, in characters.
pub const MAX_COMMIT_ID_LEN: usize = 64;

/// A checked commit id: 1 to 64 characters of `A-Z a-z 0-9 - _`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CommitId(String);

/// Why a commit id was refused; answered with `invalid_frame`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("commit_id must be 1 to {MAX_COMMIT_ID_LEN} characters of A-Z a-z 0-9 - _")]
pub struct CommitIdError;

impl CommitId {
    /// Checks `id` against the commit id rules.
    pub fn parse(id: &str) -> Result<Self, CommitIdError> {
        Self::try_from(id.to_owned())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for CommitId {
    type Error = CommitIdError;

    fn try_from(id: String) -> Result<Self, Self::Error> {
        let allowed = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
        if id.is_empty() || id.len() > MAX_COMMIT_ID_LEN || !id.bytes().all(allowed) {
            return Err(CommitIdError);
        }
        Ok(Self(id))
    }
}

impl From<CommitId> for String {
    fn from(id: CommitId) -> Self {
        id.0
    }
}

impl fmt::Display for CommitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(id: &str, ok: bool) {
        assert_eq!(CommitId::parse(id).is_ok(), ok, "{id:?}");
    }

    #[test]
    fn ids_are_1_to_64_characters_of_the_url_safe_alphabet() {
        check("a", true);
        check("Az09-_", true);
        check(&"x".repeat(64), true);
        check("", false);
        check(&"x".repeat(65), false);
        check("a b", false);
        check("a.b", false);
        check("a/b", false);
        check("é", false);
    }

    #[test]
    fn a_bad_id_in_a_commit_frame_is_an_invalid_frame_with_its_rid() {
        let frame =
            r#"{"type":"commit","rid":4,"collection":"c","writes":[],"commit_id":"no spaces"}"#;
        let err = crate::decode_client(frame, &crate::Limits::default()).unwrap_err();
        assert_eq!(
            (err.code, err.rid),
            (crate::ErrorCode::InvalidFrame, Some(4))
        );
    }
}
