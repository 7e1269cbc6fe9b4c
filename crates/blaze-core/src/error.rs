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

    /// The wire error object for this error.
    pub fn to_body(&self) -> ErrorBody {
        match self {
            Error::Rejected(r) => ErrorBody {
                code: r.code,
                message: r.message.clone(),
                write_index: r.write_index,
            },
            Error::Storage(e) => ErrorBody {
                code: ErrorCode::Internal,
                message: e.to_string(),
                write_index: None,
            },
        }
    }
}
