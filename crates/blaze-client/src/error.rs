//! The client's one error type, split by cause: what the server (or the
//! spec's rules, checked locally) rejected, what the caller misused, and what
//! the network did.

use blaze_json::Rejection;
use blaze_protocol::{ErrorBody, ErrorCode, PathError};

/// Everything a client call can fail with. Match on [`Error::code`] for the
/// spec's stable codes (`spec/errors.md`).
///
/// ```no_run
/// # async fn demo(db: blaze_client::Blaze) -> Result<(), blaze_client::Error> {
/// use blaze_client::ErrorCode;
/// match db.doc("rooms/r1").create(&serde_json::json!({"name": "lobby"})).await {
///     Ok(_) => println!("created"),
///     Err(e) if e.code() == Some(ErrorCode::AlreadyExists) => println!("someone was first"),
///     Err(e) => return Err(e),
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request broke a rule of the protocol: the server answered an
    /// `error` frame, or the client saw the same rule broken before sending
    /// (an invalid path is `invalid_path` either way). Nothing was changed.
    #[error("{code}: {message}")]
    Rejected {
        /// The stable code.
        code: ErrorCode,
        /// The server's (or client's) explanation; for people, not for matching.
        message: String,
        /// For a failed batch, the index of the write that failed.
        write_index: Option<usize>,
    },
    /// The caller used the API in a way it does not support (for example a
    /// batch that spans two collections). Nothing was sent.
    #[error("invalid use of the client: {0}")]
    Usage(String),
    /// The server could not be reached, or the connection failed.
    #[error("connection failed: {0}")]
    Connection(String),
    /// A commit got no answer, and the client can no longer retry it: the
    /// request timeout passed (across reconnects, if any) or the client shut
    /// down. It may or may not have been applied. (A commit cut off by a lost
    /// connection is re-sent with its commit id after the reconnect, which
    /// the server never applies twice, so that alone is not this error.)
    #[error("the commit got no answer in time; it may or may not have been applied")]
    CommitOutcomeUnknown,
    /// A read got no answer within the configured request timeout (a commit
    /// reports [`Error::CommitOutcomeUnknown`] instead).
    #[error("no answer within the request timeout")]
    Timeout,
    /// An HTTP error answer (files, spec 15) whose code this client does not
    /// know (a code newer than it, such as `invalid_part` of spec 15.7), or
    /// that had no error object (something in front of the server): the
    /// status, the code as sent (empty without one) and the message (or the
    /// start of the body).
    #[error("HTTP {status} {code}: {message}")]
    Http {
        /// The HTTP status.
        status: u16,
        /// The error code as the server sent it; empty when there was none.
        code: String,
        /// The server's explanation, or the start of the body.
        message: String,
    },
    /// Document data could not be converted to or from the caller's type.
    #[error("document data does not fit the type: {0}")]
    Data(#[from] serde_json::Error),
    /// The server sent something this client cannot follow (a protocol violation).
    #[error("protocol violation by the server: {0}")]
    Protocol(String),
    /// A transaction kept conflicting with other writers and gave up.
    #[error("transaction gave up after {attempts} attempts: {last}")]
    TransactionContention {
        /// How many times the transaction ran.
        attempts: u32,
        /// The last conflict.
        last: Box<Error>,
    },
}

impl Error {
    /// The spec's error code, when the failure has one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Error::Rejected { code, .. } => Some(*code),
            Error::TransactionContention { last, .. } => last.code(),
            _ => None,
        }
    }

    /// True for a conflict a transaction retries: a precondition or existence
    /// check that failed because another writer got there first.
    pub fn is_conflict(&self) -> bool {
        matches!(
            self.code(),
            Some(ErrorCode::PreconditionFailed | ErrorCode::AlreadyExists)
        )
    }

    pub(crate) fn rejected(code: ErrorCode, message: impl Into<String>) -> Self {
        Error::Rejected {
            code,
            message: message.into(),
            write_index: None,
        }
    }
}

impl From<ErrorBody> for Error {
    fn from(body: ErrorBody) -> Self {
        Error::Rejected {
            code: body.code,
            message: body.message,
            write_index: body.write_index,
        }
    }
}

/// A request the client refuses before sending, with the server's code.
impl From<Rejection> for Error {
    fn from(r: Rejection) -> Self {
        Error::Rejected {
            code: r.code,
            message: r.message,
            write_index: r.write_index,
        }
    }
}

/// A path that breaks the path rules: `invalid_path`, through [`Rejection`]'s mapping.
impl From<PathError> for Error {
    fn from(e: PathError) -> Self {
        Rejection::from(e).into()
    }
}
