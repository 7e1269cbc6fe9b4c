//! Size and depth of JSON values, and the document checks built on them.

use blaze_protocol::{ErrorCode, Limits};
use serde_json::{Map, Value};

use crate::Rejection;

/// Bytes of `s` as a JSON string literal, quotes included, escaped as serde_json does.
pub(crate) fn string_len(s: &str) -> usize {
    2 + s
        .bytes()
        .map(|b| match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
            0..=0x1f => 6,
            _ => 1,
        })
        .sum::<usize>()
}

/// Bytes of `v` as compact JSON: exactly `serde_json::to_string(v).len()`.
pub fn serialized_len(v: &Value) -> usize {
    match v {
        Value::Null => 4,
        Value::Bool(b) => {
            if *b {
                4
            } else {
                5
            }
        }
        Value::Number(n) => n.to_string().len(),
        Value::String(s) => string_len(s),
        Value::Array(items) => {
            2 + items.iter().map(serialized_len).sum::<usize>() + items.len().saturating_sub(1)
        }
        Value::Object(m) => object_len(m),
    }
}

/// Bytes of an object as compact JSON.
pub fn object_len(m: &Map<String, Value>) -> usize {
    2 + m.iter().map(|(k, v)| member_len(k, v)).sum::<usize>() + m.len().saturating_sub(1)
}

/// Bytes of one object member `"key":value`, without its comma.
pub(crate) fn member_len(key: &str, value: &Value) -> usize {
    string_len(key) + 1 + serialized_len(value)
}

/// Nesting depth: a scalar is 0, an array or object is 1 + its deepest child.
pub fn json_depth(v: &Value) -> usize {
    match v {
        Value::Array(items) => 1 + items.iter().map(json_depth).max().unwrap_or(0),
        Value::Object(m) => 1 + m.values().map(json_depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Checks a document's measured depth and size against the limits.
pub(crate) fn check_limits(depth: usize, size: usize, limits: &Limits) -> Result<(), Rejection> {
    if depth > limits.max_document_depth {
        let msg = format!(
            "document nests {depth} deep, limit {}",
            limits.max_document_depth
        );
        return Err(Rejection::new(ErrorCode::DocumentTooDeep, msg));
    }
    if size > limits.max_document_bytes {
        let msg = format!(
            "document has {size} bytes, limit {}",
            limits.max_document_bytes
        );
        return Err(Rejection::new(ErrorCode::DocumentTooLarge, msg));
    }
    Ok(())
}

/// Checks that `data` is an object within the document size and depth limits.
pub fn check_document(data: Value, limits: &Limits) -> Result<Map<String, Value>, Rejection> {
    let depth = json_depth(&data);
    let Value::Object(doc) = data else {
        return Err(Rejection::new(
            ErrorCode::InvalidDocument,
            "a document must be a JSON object",
        ));
    };
    let size = object_len(&doc);
    check_limits(depth, size, limits)?;
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arbitrary::any_value;
    use proptest::prelude::*;
    use serde_json::json;

    /// Strings full of what JSON escapes: quotes, backslashes, control characters, and non-ASCII.
    fn awkward_string() -> impl Strategy<Value = String> {
        "[\u{0}-\u{1f}\"\\\\a\u{e9}\u{7f}\u{2028}\u{1F600}/]{0,8}"
    }

    proptest! {
        #[test]
        fn size_equals_serde_json_length(v in any_value(), s in awkward_string(), k in awkward_string()) {
            let s = Value::String(s);
            let wrapped = json!({k: [s.clone(), v.clone()]});
            for v in [v, s, wrapped] {
                prop_assert_eq!(serialized_len(&v), serde_json::to_string(&v).unwrap().len());
            }
        }

        #[test]
        fn depth_is_the_nesting_of_the_value(v in any_value()) {
            let wrapped = json!({"a": [v.clone()]});
            prop_assert_eq!(json_depth(&wrapped), json_depth(&v) + 2);
            prop_assert_eq!(json_depth(&json!([v.clone(), 1])), json_depth(&v) + 1);
        }
    }

    #[test]
    fn sizes_of_escapes_and_numbers() {
        let len = |v: Value| serialized_len(&v);
        assert_eq!(len(json!("\"\\\n\u{8}\u{c}\r\t")), 2 + 7 * 2);
        assert_eq!(len(json!("\u{0}\u{1f}")), 2 + 2 * 6);
        assert_eq!(len(json!("\u{7f}\u{e9}\u{1F600}")), 2 + 1 + 2 + 4);
        assert_eq!(len(json!([1.5, -0.0, 1e300, u64::MAX, i64::MIN])), 59); // 1e+300
        assert_eq!(len(json!({"": null, "a": [true, false, {}, []]})), 32);
        assert_eq!(json_depth(&json!(1)), 0);
        assert_eq!(json_depth(&json!([])), 1);
        assert_eq!(json_depth(&json!([[1], {"a": {}}])), 3);
    }

    #[test]
    fn limits_are_inclusive() {
        let doc = json!({"a": {"b": "xyz"}});
        let exact = Limits {
            max_document_bytes: serialized_len(&doc),
            max_document_depth: 2,
            ..Limits::default()
        };
        assert!(check_document(doc.clone(), &exact).is_ok());
        let code = |limits: Limits| check_document(doc.clone(), &limits).err().map(|r| r.code);
        assert_eq!(
            code(Limits {
                max_document_bytes: exact.max_document_bytes - 1,
                ..exact.clone()
            }),
            Some(ErrorCode::DocumentTooLarge)
        );
        assert_eq!(
            code(Limits {
                max_document_depth: 1,
                ..exact.clone()
            }),
            Some(ErrorCode::DocumentTooDeep)
        );
        // Depth is checked before size.
        assert_eq!(
            code(Limits {
                max_document_depth: 1,
                max_document_bytes: 0,
                ..exact
            }),
            Some(ErrorCode::DocumentTooDeep)
        );
    }

    #[test]
    fn checks_documents() {
        let limits = Limits {
            max_document_bytes: 20,
            max_document_depth: 2,
            ..Limits::default()
        };
        let code = |v: Value| check_document(v, &limits).err().map(|r| r.code);
        assert_eq!(code(json!({"a": {"b": 1}})), None);
        assert_eq!(code(json!([1])), Some(ErrorCode::InvalidDocument));
        assert_eq!(
            code(json!({"a": {"b": [1]}})),
            Some(ErrorCode::DocumentTooDeep)
        );
        assert_eq!(
            code(json!({"a": "0123456789abcdef"})),
            Some(ErrorCode::DocumentTooLarge)
        );
        assert_eq!(json_depth(&json!({"a": []})), 2);
    }
}
