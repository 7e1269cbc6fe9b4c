//! Hard limits, checked before anything is stored. The server sends them in `welcome`.

use serde::{Deserialize, Serialize};

/// The limits a server enforces; every one has its own error code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Longest frame (UTF-8 bytes) the server decodes: `frame_too_large`.
    pub max_frame_bytes: usize,
    /// Deepest nesting of arrays and objects in a frame: `frame_too_deep`.
    pub max_frame_depth: usize,
    /// Largest document, as compact JSON bytes: `document_too_large`.
    pub max_document_bytes: usize,
    /// Deepest nesting of a document (the document object is depth 1): `document_too_deep`.
    pub max_document_depth: usize,
    /// Most operations in one JSON Patch: `too_many_patch_ops`.
    pub max_patch_ops: usize,
    /// Most writes in one batch: `batch_too_large`.
    pub max_batch_writes: usize,
    /// Most values in an `in` or `array-contains-any` list: `too_many_filter_values`.
    pub max_in_values: usize,
    /// Most values in a `not-in` list: `too_many_filter_values`.
    pub max_not_in_values: usize,
    /// Most disjunctions of a filter in disjunctive normal form: `too_many_disjunctions`.
    pub max_disjunctions: usize,
    /// Most listeners one connection holds at once: `too_many_listeners`.
    pub max_listeners: usize,
    /// Most frames sent to a connection and not yet acknowledged (`ack`,
    /// section 10.4.6); beyond it the connection is closed with 4008
    /// `slow_consumer`, and past half of it the connection's requests wait.
    /// (Defaulted when absent, as in a `welcome` from an older server.)
    #[serde(default = "later::max_unread_frames")]
    pub max_unread_frames: usize,
    /// Most bytes of such frames, with the same rules as `max_unread_frames`.
    #[serde(default = "later::max_unread_bytes")]
    pub max_unread_bytes: usize,
    /// Longest index key (bytes of a value's key encoding) stored whole; longer
    /// keys are cut to this many bytes and queries re-check the documents they find.
    /// (Defaulted when absent, as in a `welcome` from an older server.)
    #[serde(default = "later::max_indexed_value_bytes")]
    pub max_indexed_value_bytes: usize,
    /// Most elements of one array indexed one by one for `array-contains`; a
    /// longer array gets one "unindexed" marker entry instead.
    #[serde(default = "later::max_indexed_array_elements")]
    pub max_indexed_array_elements: usize,
    /// Most bytes one commit may materialise (documents read and staged, their
    /// index entries, values a patch adds, copies or replaces): `commit_too_large`.
    #[serde(default = "later::max_commit_bytes")]
    pub max_commit_bytes: usize,
    /// Longest credential (`hello.auth`, `auth.auth`, `Authorization`) read;
    /// a longer one is `unauthenticated` without being parsed.
    #[serde(default = "later::max_credential_bytes")]
    pub max_credential_bytes: usize,
    /// Most bytes of documents (compact JSON) one query answer carries, or a
    /// query holds while it runs: `answer_too_large`.
    #[serde(default = "later::max_answer_bytes")]
    pub max_answer_bytes: usize,
}

/// Defaults of the limits added after protocol 1 was first published, for a
/// `welcome` that does not name them.
mod later {
    pub(super) fn max_unread_frames() -> usize {
        super::Limits::default().max_unread_frames
    }

    pub(super) fn max_unread_bytes() -> usize {
        super::Limits::default().max_unread_bytes
    }

    pub(super) fn max_indexed_value_bytes() -> usize {
        super::Limits::default().max_indexed_value_bytes
    }

    pub(super) fn max_indexed_array_elements() -> usize {
        super::Limits::default().max_indexed_array_elements
    }

    pub(super) fn max_commit_bytes() -> usize {
        super::Limits::default().max_commit_bytes
    }

    pub(super) fn max_credential_bytes() -> usize {
        super::Limits::default().max_credential_bytes
    }

    pub(super) fn max_answer_bytes() -> usize {
        super::Limits::default().max_answer_bytes
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame_bytes: 4 * 1024 * 1024,
            max_frame_depth: 64,
            max_document_bytes: 1024 * 1024,
            max_document_depth: 32,
            max_patch_ops: 500,
            max_batch_writes: 500,
            max_in_values: 30,
            max_not_in_values: 10,
            max_disjunctions: 30,
            max_listeners: 1000,
            max_unread_frames: 4096,
            max_unread_bytes: 16 * 1024 * 1024,
            max_indexed_value_bytes: 1500,
            max_indexed_array_elements: 1000,
            max_commit_bytes: 16 * 1024 * 1024,
            max_credential_bytes: 8 * 1024,
            max_answer_bytes: 8 * 1024 * 1024,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_without_the_later_fields_take_their_defaults() {
        let mut text = serde_json::to_value(Limits::default()).unwrap();
        let fields = text.as_object_mut().unwrap();
        for later in [
            "max_unread_frames",
            "max_unread_bytes",
            "max_indexed_value_bytes",
            "max_indexed_array_elements",
            "max_commit_bytes",
            "max_credential_bytes",
            "max_answer_bytes",
        ] {
            fields.remove(later).unwrap();
        }
        fields.insert("max_listeners".into(), 5.into());
        let limits: Limits = serde_json::from_value(text).unwrap();
        assert_eq!(
            limits,
            Limits {
                max_listeners: 5,
                ..Limits::default()
            }
        );
    }
}
