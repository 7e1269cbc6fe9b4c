//! Errors, split by cause: a request the peer got wrong (or that the current
//! state refuses), and a storage failure. [`Error::code`] is the one place
//! that maps them to wire codes.

use blaze_protocol::{ErrorBody, ErrorCode};

/// A request refused because of what it asked for or the state it met.
/// Nothing was changed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Rejection {
    /// The wire code.
    pub code: ErrorCode,
    /// A human-readable explanation.
    pub message: String,
    /// For a batch, which write failed.
    pub write_index: Option<usize>,
}

impl Rejection {
    /// A rejection with `code` and `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            write_index: None,
        }
    }

    /// The same rejection, blamed on write `index` of a batch.
    pub fn at_write(mut self, index: usize) -> Self {
        self.write_index = Some(index);
        self
    }
}

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
