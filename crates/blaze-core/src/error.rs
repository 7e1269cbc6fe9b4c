//! Errors, split by cause: a request the peer got wrong (or that the current
//! state refuses), a request the access rules deny, a storage failure, and
//! rules that need documents the driver must fetch first. [`Error::code`] is
//! the one place that maps them to wire codes.

pub use blaze_json::Rejection;
use blaze_protocol::{DocPath, ErrorBody, ErrorCode, PathError};

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
    /// The access rules deny the request (spec 14); the peer is told
    /// `permission_denied` and nothing more.
    #[error(transparent)]
    Denied(#[from] Denial),
    /// Not an answer: the rules read documents of other collections, which
    /// the driver must fetch and hand back before the request is decided
    /// again (spec 14.5). It reaches a peer only through a driver's bug, as
    /// `internal`.
    #[error("the rules need {} documents of other collections", .0.len())]
    NeedDocuments(Vec<DocPath>),
}

/// A request the access rules deny.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("permission denied: {reason}")]
pub struct Denial {
    /// The rules' explanation (which statements failed and how), for the
    /// server's log and `blaze rules test`: it may quote document values,
    /// so it is never sent to a peer.
    pub reason: String,
    /// For a batch, the index of the write denied.
    pub write_index: Option<usize>,
}

impl Denial {
    /// A denial with `reason`.
    pub fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            write_index: None,
        }
    }
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
            Error::Denied(_) => ErrorCode::PermissionDenied,
            Error::Storage(_) | Error::NeedDocuments(_) => ErrorCode::Internal,
        }
    }

    /// The same error, naming write `index` of a batch.
    pub(crate) fn at_write(self, index: usize) -> Self {
        match self {
            Error::Rejected(r) => Error::Rejected(r.at_write(index)),
            Error::Denied(d) => Error::Denied(Denial {
                write_index: Some(index),
                ..d
            }),
            other => other,
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
            Error::Denied(d) => ErrorBody {
                code: ErrorCode::PermissionDenied,
                message: DENIED_MESSAGE.to_owned(),
                write_index: d.write_index,
            },
            Error::Storage(_) | Error::NeedDocuments(_) => ErrorBody {
                code: ErrorCode::Internal,
                message: INTERNAL_MESSAGE.to_owned(),
                write_index: None,
            },
        }
    }

    /// What the server's log needs beyond the wire body: the storage
    /// failure's text or the rules' reason for a denial, which are never
    /// sent to peers.
    pub fn detail(&self) -> Option<String> {
        match self {
            Error::Rejected(_) => None,
            Error::Storage(e) => Some(e.0.clone()),
            Error::Denied(d) => Some(d.reason.clone()),
            Error::NeedDocuments(paths) => Some(format!("documents not fetched: {paths:?}")),
        }
    }
}

/// The message of every `internal` error body.
const INTERNAL_MESSAGE: &str = "the server failed; nothing was applied";

/// The message of every `permission_denied` error body: the same whether
/// the document exists or not, and whatever it holds.
const DENIED_MESSAGE: &str = "the access rules do not allow this request";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_failures_keep_their_text_off_the_wire() {
        let error = Error::from(StorageError("sqlite: disk I/O error at /data/x".into()));
        let body = error.to_body();
        assert_eq!(body.code, ErrorCode::Internal);
        assert!(!body.message.contains("sqlite"), "{}", body.message);
        assert_eq!(
            error.detail().as_deref(),
            Some("sqlite: disk I/O error at /data/x")
        );
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
