//! The total order over JSON values (`spec/protocol.md`, "Value order"):
//! null < false < true < numbers < strings < arrays < objects.

use std::cmp::Ordering;

use serde_json::{Map, Value};

/// The type classes, in their order. Range filters only match within one class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TypeClass {
    /// `null`.
    Null,
    /// `false` and `true`.
    Bool,
    /// Every number, integer or not.
    Number,
    /// Strings.
    String,
    /// Arrays.
    Array,
    /// Objects.
    Object,
}

impl TypeClass {
    /// The class of `v`.
    pub fn of(v: &Value) -> Self {
        match v {
            Value::Null => Self::Null,
            Value::Bool(_) => Self::Bool,
            Value::Number(_) => Self::Number,
            Value::String(_) => Self::String,
            Value::Array(_) => Self::Array,
            Value::Object(_) => Self::Object,
        }
    }
}

/// A number as the f64 it orders as; `-0.0` is `0.0`.
pub fn number_key(n: &serde_json::Number) -> f64 {
    let f = n.as_f64().unwrap_or(0.0);
    if f == 0.0 {
        0.0
    } else {
        f
    }
}

/// Compares two values in the spec's total order.
pub fn compare_values(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Number(x), Value::Number(y)) => number_key(x).total_cmp(&number_key(y)),
        (Value::String(x), Value::String(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Value::Array(x), Value::Array(y)) => compare_arrays(x, y),
        (Value::Object(x), Value::Object(y)) => compare_objects(x, y),
        _ => TypeClass::of(a).cmp(&TypeClass::of(b)),
    }
}

fn compare_arrays(x: &[Value], y: &[Value]) -> Ordering {
    x.iter()
        .zip(y)
        .map(|(a, b)| compare_values(a, b))
        .find(|o| o.is_ne())
        .unwrap_or_else(|| x.len().cmp(&y.len()))
}

fn compare_objects(x: &Map<String, Value>, y: &Map<String, Value>) -> Ordering {
    x.iter()
        .zip(y)
        .map(|((ka, va), (kb, vb))| {
            ka.as_bytes()
                .cmp(kb.as_bytes())
                .then_with(|| compare_values(va, vb))
        })
        .find(|o| o.is_ne())
        .unwrap_or_else(|| x.len().cmp(&y.len()))
}

/// Equality under the total order (`1 == 1.0`, deep for arrays and objects).
pub fn values_equal(a: &Value, b: &Value) -> bool {
    compare_values(a, b) == Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arbitrary::any_value;
    use proptest::prelude::*;
    use serde_json::json;
    use Ordering::*;

    fn check(a: Value, b: Value, want: Ordering) {
        assert_eq!(compare_values(&a, &b), want, "{a} vs {b}");
        assert_eq!(compare_values(&b, &a), want.reverse(), "{b} vs {a}");
    }

    #[test]
    fn orders_classes_and_values() {
        let ladder = [
            json!(null),
            json!(false),
            json!(true),
            json!(-5),
            json!(0.5),
            json!(2),
            json!(""),
            json!("a"),
            json!("é"),
            json!([]),
            json!([1]),
            json!([1, 0]),
            json!([2]),
            json!({}),
            json!({"a": 2}),
            json!({"a": 2, "b": 0}),
            json!({"b": 0}),
        ];
        for (i, a) in ladder.iter().enumerate() {
            for (j, b) in ladder.iter().enumerate() {
                check(a.clone(), b.clone(), i.cmp(&j));
            }
        }
        check(json!(1), json!(1.0), Equal);
        check(json!(-0.0), json!(0), Equal);
        check(json!([1, {"x": 1.0}]), json!([1.0, {"x": 1}]), Equal);
        check(json!("Z"), json!("a"), Less);
    }

    #[test]
    fn orders_within_classes() {
        // Numbers: numerically as f64, whatever their JSON spelling.
        check(json!(-1e300), json!(i64::MIN), Less);
        check(json!(i64::MIN), json!(-1), Less);
        check(json!(-1), json!(-1e-300), Less);
        check(json!(-1e-300), json!(-0.0), Less);
        check(json!(0.0), json!(5e-324), Less);
        check(json!(1), json!(1.5), Less);
        check(json!(u64::MAX), json!(1e300), Less);
        check(json!(u64::MAX), json!(u64::MAX as f64), Equal);
        check(json!(i64::MIN), json!(i64::MIN as f64), Equal);
        check(json!(-0.0), json!(0.0), Equal);
        // Strings: UTF-8 bytes, not UTF-16 units nor chars' case.
        check(json!("B"), json!("a"), Less);
        check(json!("a"), json!("ab"), Less);
        check(json!("ab"), json!("é"), Less);
        check(json!("z"), json!("é"), Less);
        check(json!("\u{ffff}"), json!("\u{1F600}"), Less);
        check(json!(""), json!("\u{0}"), Less);
        check(json!("a\u{0}"), json!("a\u{1}"), Less);
        // Arrays: element by element, a prefix first.
        check(json!([1, 0]), json!([1, "a"]), Less);
        check(json!([null]), json!([[]]), Less);
        check(json!([1, 2]), json!([1.0, 2.0]), Equal);
        // Objects: key, then value, entry by entry; a prefix first.
        check(json!({"a": 1}), json!({"a": 2}), Less);
        check(json!({"a": 9}), json!({"b": 0}), Less);
        check(json!({"a": null, "c": 0}), json!({"b": null}), Less);
        check(json!({"a": 1, "b": 9}), json!({"a": 2}), Less);
        check(json!({"x": {"y": 1}}), json!({"x": {"y": 1.0}}), Equal);
    }

    proptest! {
        #[test]
        fn is_a_total_order(a in any_value(), b in any_value(), c in any_value()) {
            prop_assert_eq!(compare_values(&a, &a), Equal);
            prop_assert_eq!(compare_values(&a, &b), compare_values(&b, &a).reverse());
            if compare_values(&a, &b).is_le() && compare_values(&b, &c).is_le() {
                prop_assert!(compare_values(&a, &c).is_le());
            }
        }
    }
}
