//! JSON merge patch (RFC 7396).
use blaze_protocol::Limits;
use serde_json::{Map, Value};
use crate::Rejection;

/// Applies a merge patch to a copy of `doc`.
pub fn apply_merge_patch(doc: &Map<String, Value>, patch: &Value, limits: &Limits) -> Result<Map<String, Value>, Rejection> { let _ = (doc, patch, limits); todo!() }
