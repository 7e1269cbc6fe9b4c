//! Proptest strategies for JSON values (feature `proptest`, and this
//! crate's own tests).

use proptest::prelude::*;
use serde_json::Value;

/// Random nested JSON values (numbers, awkward strings, nested arrays and
/// objects), for property tests here and in the crates that build on this one.
pub fn any_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        prop_oneof![Just(0.0), Just(-0.0), Just(1.5), Just(1.0)].prop_map(Value::from),
        "[a-b\u{0}\u{1}é~/]{0,4}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-b\u{0}.]{0,2}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
