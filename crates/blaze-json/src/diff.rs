//! A JSON Patch (RFC 6902) that turns one document into another.
//!
//! Change events carry this patch instead of the whole new document, so
//! editing one field of a large document costs about the size of that field
//! per listener. Objects are compared member by member, recursively; any
//! other differing value (including an array) is replaced whole.

use serde_json::{json, Map, Value};

/// The operations that turn `old` into `new`; empty when they are equal.
pub fn diff(old: &Map<String, Value>, new: &Map<String, Value>) -> Vec<Value> {
    let mut ops = Vec::new();
    diff_objects(old, new, &mut String::new(), &mut ops);
    ops
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn diff_objects(
    old: &Map<String, Value>,
    new: &Map<String, Value>,
    path: &mut String,
    ops: &mut Vec<Value>,
) {
    for key in old.keys().filter(|k| !new.contains_key(*k)) {
        ops.push(json!({"op": "remove", "path": format!("{path}/{}", escape(key))}));
    }
    for (key, value) in new {
        let len = path.len();
        path.push('/');
        path.push_str(&escape(key));
        match (old.get(key), value) {
            (None, _) => ops.push(json!({"op": "add", "path": path.as_str(), "value": value})),
            (Some(Value::Object(a)), Value::Object(b)) => diff_objects(a, b, path, ops),
            (Some(a), b) if identical(a, b) => {}
            (Some(_), _) => {
                ops.push(json!({"op": "replace", "path": path.as_str(), "value": value}))
            }
        }
        path.truncate(len);
    }
}

/// Equal as JSON text: stricter than `==`, which holds `-0.0` equal to `0.0`
/// (and stricter than the value order, which holds `1` equal to `1.0`).
fn identical(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(f), Some(g)) if x.is_f64() && y.is_f64() => f.to_bits() == g.to_bits(),
            _ => x == y && x.is_f64() == y.is_f64(),
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| identical(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((ka, va), (kb, vb))| ka == kb && identical(va, vb))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arbitrary::any_value;
    use crate::patch::apply_json_patch;
    use blaze_protocol::Limits;
    use proptest::prelude::*;

    fn object() -> impl Strategy<Value = Map<String, Value>> {
        prop::collection::btree_map("[a-c~/]{0,2}", any_value(), 0..5)
            .prop_map(|m| m.into_iter().collect())
    }

    #[test]
    fn touches_only_what_changed() {
        let old = json!({"a": {"b": 1, "c": [1, 2]}, "d": "x", "gone": true});
        let new = json!({"a": {"b": 2, "c": [1, 2]}, "d": "x", "new/key": null});
        let ops = diff(old.as_object().unwrap(), new.as_object().unwrap());
        assert_eq!(
            Value::Array(ops),
            json!([
                {"op": "remove", "path": "/gone"},
                {"op": "replace", "path": "/a/b", "value": 2},
                {"op": "add", "path": "/new~1key", "value": null}
            ])
        );
    }

    proptest! {
        #[test]
        fn applying_the_diff_gives_the_new_document(old in object(), new in object()) {
            let ops = Value::Array(diff(&old, &new));
            let limits = Limits { max_patch_ops: usize::MAX, ..Limits::default() };
            let patched = apply_json_patch(&old, &ops, &limits).unwrap();
            prop_assert_eq!(serde_json::to_string(&patched).unwrap(), serde_json::to_string(&new).unwrap());
            prop_assert_eq!(identical(&Value::Object(old), &Value::Object(new)), ops.as_array().unwrap().is_empty());
        }
    }
}
