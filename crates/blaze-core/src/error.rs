//! Errors, split by cause: a request the peer got wrong (or that the current
//! state refuses), and a storage failure. [`Error::code`] is the one place
//! that maps them to wire codes.

pub use blaze_json::Rejection;
use blaze_protocol::{ErrorBody, ErrorCode, PathError};

/// The storage backend failed. Nothing was applied.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("storage failed: {0}")]
pub struct StorageError(pub String);

/// Every error the engine returns.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Bad input or a state conflict; the peer is told [`Rejection::code`].
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// The storage backend failed; the peer is told `internal`.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// A path that breaks the path rules: `invalid_path`, through [`Rejection`]'s mapping.
impl From<PathError> for Error {
    fn from(e: PathError) -> Self {
        Error::Rejected(e.into())
    }
}

impl Error {
    /// The wire code for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Rejected(r) => r.code,
            Error::Storage(_) => ErrorCode::Internal,
        }
    }

    /// The wire error object for this error. A storage failure's text stays
    /// on the server (see [`Error::detail`]): the peer reads a generic message.
    pub fn to_body(&self) -> ErrorBody {
        match self {
            Error::Rejected(r) => ErrorBody {
                code: r.code,
                message: r.message.clone(),
                write_index: r.write_index,
            },
            Error::Storage(_) => ErrorBody {
                code: ErrorCode::Internal,
                message: INTERNAL_MESSAGE.to_owned(),
                write_index: None,
            },
        }
    }

    /// What the server's log needs beyond the wire body: the storage
    /// failure's text, which is never sent to peers.
    pub fn detail(&self) -> Option<&str> {
        match self {
            Error::Rejected(_) => None,
            Error::Storage(e) => Some(&e.0),
        }
    }
}

/// The message of every `internal` error body.
const INTERNAL_MESSAGE: &str = "the server failed; nothing was applied";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_failures_keep_their_text_off_the_wire() {
        let error = Error::from(StorageError("sqlite: disk I/O error at /data/x".into()));
        let body = error.to_body();
        assert_eq!(body.code, ErrorCode::Internal);
        assert!(!body.message.contains("sqlite"), "{}", body.message);
        assert_eq!(error.detail(), Some("sqlite: disk I/O error at /data/x"));
    }

    #[test]
    fn rejections_go_out_whole() {
        let error = Error::from(Rejection::new(
            ErrorCode::NotFound,
            "rooms/r1 does not exist",
        ));
        assert_eq!(error.to_body().message, "rooms/r1 does not exist");
        assert_eq!(error.detail(), None);
    }
}
