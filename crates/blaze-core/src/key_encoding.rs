//! Order-preserving byte encoding of JSON values.
use serde_json::Value;

/// Appends the encoding of `v` to `out`.
pub fn encode_value(v: &Value, out: &mut Vec<u8>) { let _ = (v, out); todo!() }

/// The encoding of `v`.
pub fn encode_key(v: &Value) -> Vec<u8> { let mut out = Vec::new(); encode_value(v, &mut out); out }
