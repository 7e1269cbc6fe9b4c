//! The one error of this crate: a request refused for what it asked for.

use blaze_protocol::{ErrorCode, PathError};

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

/// The one mapping of a path that breaks the path rules to the wire: `invalid_path`.
impl From<PathError> for Rejection {
    fn from(e: PathError) -> Self {
        Self::new(ErrorCode::InvalidPath, e.to_string())
    }
}
