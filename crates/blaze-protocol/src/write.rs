//! Write wire types: one write of a batch, and its precondition.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::null_as_default::null_as_default;

/// One write to one document of the batch's collection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Write {
    /// The document id within the batch's collection.
    pub id: String,
    /// What to do.
    #[serde(flatten)]
    pub kind: WriteKind,
    /// What must hold before the write applies.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Precondition::is_none"
    )]
    pub precondition: Precondition,
}

/// The kinds of write, tagged by `op`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum WriteKind {
    /// Create the document; `already_exists` if it exists.
    Create {
        /// The new contents (a JSON object).
        data: Value,
    },
    /// Create or replace the document.
    Set {
        /// The new contents (a JSON object).
        data: Value,
    },
    /// Update an existing document with a JSON Patch (RFC 6902).
    Patch {
        /// The patch: an array of operations.
        patch: Value,
    },
    /// Update an existing document with a JSON merge patch (RFC 7396).
    Merge {
        /// The merge patch: a JSON object.
        patch: Value,
    },
    /// Delete the document (succeeds when it does not exist, unless a precondition says otherwise).
    Delete,
    /// Change nothing; only check the precondition (a transaction's read of a document it does not write).
    Verify,
}

/// Preconditions checked against the document's state before a write applies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Precondition {
    /// The document must (true) or must not (false) exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exists: Option<bool>,
    /// The document must exist with exactly this version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
}

impl Precondition {
    /// True when no precondition is set.
    pub fn is_none(&self) -> bool {
        self.exists.is_none() && self.version.is_none()
    }
}
