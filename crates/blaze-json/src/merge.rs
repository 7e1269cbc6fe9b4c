//! JSON merge patch (RFC 7396) on a copy of the document.

use blaze_protocol::{ErrorCode, Limits};
use serde_json::{Map, Value};

use crate::size::{check_limits, json_depth, object_len};
use crate::Rejection;

/// Applies a merge patch (which must be an object) to a copy of `doc`, then
/// checks the result against the document limits. `doc` is never changed.
pub fn apply_merge_patch(
    doc: &Map<String, Value>,
    patch: &Value,
    limits: &Limits,
) -> Result<Map<String, Value>, Rejection> {
    let Value::Object(patch) = patch else {
        return Err(Rejection::new(
            ErrorCode::InvalidPatch,
            "a merge patch must be a JSON object",
        ));
    };
    let mut out = doc.clone();
    merge_into(&mut out, patch);
    let depth = 1 + out.values().map(json_depth).max().unwrap_or(0);
    check_limits(depth, object_len(&out), limits)?;
    Ok(out)
}

fn merge_into(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (key, value) in patch {
        match value {
            Value::Null => {
                target.remove(key);
            }
            Value::Object(inner) => {
                let slot = target
                    .entry(key.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                if !slot.is_object() {
                    *slot = Value::Object(Map::new());
                }
                if let Value::Object(slot) = slot {
                    merge_into(slot, inner);
                }
            }
            other => {
                target.insert(key.clone(), other.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arbitrary::any_value;
    use crate::size::serialized_len;
    use proptest::prelude::*;
    use serde_json::json;

    /// RFC 7396 section 2, written as directly as possible.
    fn reference(target: Value, patch: &Value) -> Value {
        let Value::Object(p) = patch else {
            return patch.clone();
        };
        let mut t = match target {
            Value::Object(t) => t,
            _ => Map::new(),
        };
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                let old = t.remove(k).unwrap_or(Value::Null);
                t.insert(k.clone(), reference(old, v));
            }
        }
        Value::Object(t)
    }

    fn check(doc: Value, patch: Value, want: Result<Value, ErrorCode>) {
        let got = apply_merge_patch(doc.as_object().unwrap(), &patch, &Limits::default());
        assert_eq!(
            got.map(Value::Object).map_err(|r| r.code),
            want,
            "{doc} + {patch}"
        );
    }

    #[test]
    fn rfc7396_examples() {
        check(json!({"a": "b"}), json!({"a": "c"}), Ok(json!({"a": "c"})));
        check(
            json!({"a": "b"}),
            json!({"b": "c"}),
            Ok(json!({"a": "b", "b": "c"})),
        );
        check(json!({"a": "b"}), json!({"a": null}), Ok(json!({})));
        check(
            json!({"a": "b", "b": "c"}),
            json!({"a": null}),
            Ok(json!({"b": "c"})),
        );
        check(
            json!({"a": ["b"]}),
            json!({"a": "c"}),
            Ok(json!({"a": "c"})),
        );
        check(
            json!({"a": "c"}),
            json!({"a": ["b"]}),
            Ok(json!({"a": ["b"]})),
        );
        check(
            json!({"a": {"b": "c"}}),
            json!({"a": {"b": "d", "c": null}}),
            Ok(json!({"a": {"b": "d"}})),
        );
        check(
            json!({"a": [{"b": "c"}]}),
            json!({"a": [1]}),
            Ok(json!({"a": [1]})),
        );
        check(
            json!({"e": null}),
            json!({"a": 1}),
            Ok(json!({"e": null, "a": 1})),
        );
        check(
            json!({}),
            json!({"a": {"bb": {"ccc": null}}}),
            Ok(json!({"a": {"bb": {}}})),
        );
        check(
            json!({"a": "foo"}),
            json!(["c"]),
            Err(ErrorCode::InvalidPatch),
        );
        check(
            json!({"a": "foo"}),
            json!(null),
            Err(ErrorCode::InvalidPatch),
        );
    }

    #[test]
    fn limits_hold_on_the_result() {
        let limits = Limits {
            max_document_bytes: 16,
            max_document_depth: 2,
            ..Limits::default()
        };
        let code = |patch: Value| {
            apply_merge_patch(&Map::new(), &patch, &limits)
                .err()
                .map(|r| r.code)
        };
        assert_eq!(code(json!({"a": {"b": 1}})), None);
        assert_eq!(
            code(json!({"a": {"b": {}}})),
            Some(ErrorCode::DocumentTooDeep)
        );
        assert_eq!(
            code(json!({"a": "0123456789ab"})),
            Some(ErrorCode::DocumentTooLarge)
        );
    }

    fn any_object() -> impl Strategy<Value = Map<String, Value>> {
        prop::collection::btree_map("[a-b\u{0}.]{0,2}", any_value(), 0..4)
            .prop_map(|m| m.into_iter().collect())
    }

    fn any_patch() -> impl Strategy<Value = Value> {
        prop_oneof![3 => any_object().prop_map(Value::Object), 1 => any_value()]
    }

    proptest! {
        #[test]
        fn equals_the_rfc_reference(doc in any_object(), patch in any_patch()) {
            let before = doc.clone();
            let want = patch
                .is_object()
                .then(|| reference(Value::Object(doc.clone()), &patch));
            match apply_merge_patch(&doc, &patch, &Limits::default()) {
                Ok(out) => prop_assert_eq!(Some(Value::Object(out)), want),
                Err(r) => {
                    prop_assert_eq!(r.code, ErrorCode::InvalidPatch);
                    prop_assert!(want.is_none());
                }
            }
            prop_assert_eq!(doc, before);
        }

        #[test]
        fn limits_are_checked_on_the_reference_result(
            doc in any_object(),
            patch in any_object(),
            max_document_bytes in 2usize..120,
            max_document_depth in 1usize..5,
        ) {
            let limits = Limits { max_document_bytes, max_document_depth, ..Limits::default() };
            let want = reference(Value::Object(doc.clone()), &Value::Object(patch.clone()));
            let code = if json_depth(&want) > max_document_depth {
                Some(ErrorCode::DocumentTooDeep)
            } else if serialized_len(&want) > max_document_bytes {
                Some(ErrorCode::DocumentTooLarge)
            } else {
                None
            };
            match apply_merge_patch(&doc, &Value::Object(patch), &limits) {
                Ok(out) => {
                    prop_assert_eq!(code, None);
                    prop_assert_eq!(Value::Object(out), want);
                }
                Err(r) => prop_assert_eq!(Some(r.code), code),
            }
        }
    }
}
