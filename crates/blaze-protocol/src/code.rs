//! Stable error codes: the one place that maps a failure to what the wire says.

use serde::{Deserialize, Serialize};

/// Every error code of `spec/errors.md`. The snake_case names are stable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame is not valid JSON or not a valid message of this protocol.
    InvalidFrame,
    /// The frame's `type` is not a message type of this protocol.
    UnknownMessageType,
    /// The frame is longer than `Limits::max_frame_bytes`.
    FrameTooLarge,
    /// The frame nests deeper than `Limits::max_frame_depth`.
    FrameTooDeep,
    /// The first frame on a connection was not `hello`.
    HandshakeRequired,
    /// `hello` named a protocol version the server does not speak.
    UnsupportedProtocol,
    /// A collection or document path breaks the path rules.
    InvalidPath,
    /// Document data is not a JSON object.
    InvalidDocument,
    /// A document would be larger than `Limits::max_document_bytes`.
    DocumentTooLarge,
    /// A document would nest deeper than `Limits::max_document_depth`.
    DocumentTooDeep,
    /// A JSON Patch or merge patch is malformed.
    InvalidPatch,
    /// A JSON Patch has more operations than `Limits::max_patch_ops`.
    TooManyPatchOps,
    /// A JSON Patch operation's path (or `from`) does not exist.
    PatchPathNotFound,
    /// A JSON Patch `test` operation did not match.
    PatchTestFailed,
    /// The document does not exist.
    NotFound,
    /// `create` found the document already there.
    AlreadyExists,
    /// A write's `exists` or `version` precondition did not hold.
    PreconditionFailed,
    /// A batch has no writes.
    EmptyBatch,
    /// A batch has more writes than `Limits::max_batch_writes`.
    BatchTooLarge,
    /// A query is malformed or asks for something the engine does not do.
    InvalidQuery,
    /// A field path is malformed.
    InvalidFieldPath,
    /// An `in`, `not-in` or `array-contains-any` list is too long.
    TooManyFilterValues,
    /// A filter has more disjunctions than `Limits::max_disjunctions`.
    TooManyDisjunctions,
    /// `listen` used a `rid` that names a live listener of the connection.
    ListenerExists,
    /// `unlisten` named no live listener of the connection.
    ListenerNotFound,
    /// The connection already holds `Limits::max_listeners` listeners.
    TooManyListeners,
    /// A request on a collection's connection names another collection.
    WrongCollection,
    /// HTTP only: the request's content type is not accepted at that route.
    UnsupportedMediaType,
    /// HTTP only: the method is not allowed at that route.
    MethodNotAllowed,
    /// The server failed (storage); nothing was applied.
    Internal,
    /// A `listen` would take the object's memory budget for clients, or
    /// the connection's share of it, past its bound; nothing else changed.
    ResourceExhausted,
    /// A commit would materialise more than `Limits::max_commit_bytes`; nothing was applied.
    CommitTooLarge,
    /// A query's answer would carry more than `Limits::max_answer_bytes` of
    /// documents; a `limit` and cursors page it.
    AnswerTooLarge,
    /// The credential is missing where one is required, malformed, not
    /// verified by any configured key, or expired.
    Unauthenticated,
    /// The verified identity may not do what the request asks.
    PermissionDenied,
    /// HTTP files only: an upload without `Content-Length`.
    LengthRequired,
    /// HTTP files only: an upload longer than the configured maximum file size.
    FileTooLarge,
    /// HTTP files only: a `Range` that starts at or past the file's end.
    RangeNotSatisfiable,
    /// HTTP files only: the upload's body ended before its `Content-Length`;
    /// nothing was kept.
    UploadIncomplete,
    /// HTTP files only: a part of a resumable upload whose number is not one
    /// of the upload's parts or whose `Content-Length` is not that part's
    /// length; nothing was stored.
    InvalidPart,
}

impl ErrorCode {
    /// Every code, in the order of `spec/errors.md`.
    pub const ALL: [ErrorCode; 40] = [
        Self::InvalidFrame,
        Self::UnknownMessageType,
        Self::FrameTooLarge,
        Self::FrameTooDeep,
        Self::HandshakeRequired,
        Self::UnsupportedProtocol,
        Self::InvalidPath,
        Self::InvalidDocument,
        Self::DocumentTooLarge,
        Self::DocumentTooDeep,
        Self::InvalidPatch,
        Self::TooManyPatchOps,
        Self::PatchPathNotFound,
        Self::PatchTestFailed,
        Self::NotFound,
        Self::AlreadyExists,
        Self::PreconditionFailed,
        Self::EmptyBatch,
        Self::BatchTooLarge,
        Self::InvalidQuery,
        Self::InvalidFieldPath,
        Self::TooManyFilterValues,
        Self::TooManyDisjunctions,
        Self::ListenerExists,
        Self::ListenerNotFound,
        Self::TooManyListeners,
        Self::WrongCollection,
        Self::UnsupportedMediaType,
        Self::MethodNotAllowed,
        Self::Internal,
        Self::ResourceExhausted,
        Self::CommitTooLarge,
        Self::AnswerTooLarge,
        Self::Unauthenticated,
        Self::PermissionDenied,
        Self::LengthRequired,
        Self::FileTooLarge,
        Self::RangeNotSatisfiable,
        Self::UploadIncomplete,
        Self::InvalidPart,
    ];

    /// The stable snake_case name sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidFrame => "invalid_frame",
            Self::UnknownMessageType => "unknown_message_type",
            Self::FrameTooLarge => "frame_too_large",
            Self::FrameTooDeep => "frame_too_deep",
            Self::HandshakeRequired => "handshake_required",
            Self::UnsupportedProtocol => "unsupported_protocol",
            Self::InvalidPath => "invalid_path",
            Self::InvalidDocument => "invalid_document",
            Self::DocumentTooLarge => "document_too_large",
            Self::DocumentTooDeep => "document_too_deep",
            Self::InvalidPatch => "invalid_patch",
            Self::TooManyPatchOps => "too_many_patch_ops",
            Self::PatchPathNotFound => "patch_path_not_found",
            Self::PatchTestFailed => "patch_test_failed",
            Self::NotFound => "not_found",
            Self::AlreadyExists => "already_exists",
            Self::PreconditionFailed => "precondition_failed",
            Self::EmptyBatch => "empty_batch",
            Self::BatchTooLarge => "batch_too_large",
            Self::InvalidQuery => "invalid_query",
            Self::InvalidFieldPath => "invalid_field_path",
            Self::TooManyFilterValues => "too_many_filter_values",
            Self::TooManyDisjunctions => "too_many_disjunctions",
            Self::ListenerExists => "listener_exists",
            Self::ListenerNotFound => "listener_not_found",
            Self::TooManyListeners => "too_many_listeners",
            Self::WrongCollection => "wrong_collection",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Internal => "internal",
            Self::ResourceExhausted => "resource_exhausted",
            Self::CommitTooLarge => "commit_too_large",
            Self::AnswerTooLarge => "answer_too_large",
            Self::Unauthenticated => "unauthenticated",
            Self::PermissionDenied => "permission_denied",
            Self::LengthRequired => "length_required",
            Self::FileTooLarge => "file_too_large",
            Self::RangeNotSatisfiable => "range_not_satisfiable",
            Self::UploadIncomplete => "upload_incomplete",
            Self::InvalidPart => "invalid_part",
        }
    }

    /// The HTTP status the HTTP mapping answers this code with.
    pub fn http_status(self) -> u16 {
        match self {
            Self::InvalidFrame
            | Self::UnknownMessageType
            | Self::FrameTooDeep
            | Self::HandshakeRequired
            | Self::UnsupportedProtocol
            | Self::InvalidPath
            | Self::InvalidDocument
            | Self::DocumentTooDeep
            | Self::InvalidPatch
            | Self::EmptyBatch
            | Self::InvalidQuery
            | Self::InvalidFieldPath
            | Self::TooManyFilterValues
            | Self::TooManyDisjunctions
            | Self::WrongCollection
            | Self::UploadIncomplete
            | Self::InvalidPart => 400,
            Self::NotFound | Self::ListenerNotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::AlreadyExists | Self::PatchTestFailed | Self::ListenerExists => 409,
            Self::PreconditionFailed => 412,
            Self::FrameTooLarge
            | Self::DocumentTooLarge
            | Self::TooManyPatchOps
            | Self::BatchTooLarge
            | Self::CommitTooLarge
            | Self::AnswerTooLarge
            | Self::FileTooLarge => 413,
            Self::LengthRequired => 411,
            Self::RangeNotSatisfiable => 416,
            Self::UnsupportedMediaType => 415,
            Self::PatchPathNotFound => 422,
            Self::TooManyListeners | Self::ResourceExhausted => 429,
            Self::Unauthenticated => 401,
            Self::PermissionDenied => 403,
            Self::Internal => 500,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_str_matches_serde_name_for_every_code() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            let back: ErrorCode = serde_json::from_str(&json).unwrap();
            assert_eq!(back, code);
        }
    }
}
