//! An order-preserving, prefix-free byte encoding of JSON values: for all
//! values `a`, `b`, `encode_key(a).cmp(&encode_key(b)) == compare_values(a, b)`,
//! and no encoding is a proper prefix of another, so a key can be followed by
//! more key parts (a document id) and still sort correctly.
//!
//! Scheme (copied in `spec/protocol.md`, "Index key encoding"):
//! - null: `0x10`; false: `0x20`; true: `0x21`;
//! - number: `0x30` + the 8 big-endian bytes of the f64 (`-0.0` as `0.0`),
//!   with every bit flipped if negative, else only the sign bit flipped;
//! - string: `0x40` + its UTF-8 bytes with `0x00` written `0x00 0xFF`, then `0x00 0x01`;
//! - array: `0x50` + each element's encoding, then `0x00`;
//! - object: `0x60` + for each entry in key order `0x01` + the key escaped and
//!   terminated as a string's bytes + the value's encoding, then `0x00`.

use serde_json::Value;

use blaze_json::order::number_key;

/// Appends the encoding of `v` to `out`, or at least its bytes up to one past
/// `cap` (the total length of `out`): a container stops early once `out` is
/// longer than `cap`, so a cut key costs O(cap) plus one scalar, not O(value).
fn encode_value(v: &Value, out: &mut Vec<u8>, cap: usize) {
    match v {
        Value::Null => out.push(0x10),
        Value::Bool(b) => out.push(if *b { 0x21 } else { 0x20 }),
        Value::Number(n) => {
            let bits = number_key(n).to_bits();
            let ordered = if bits >> 63 == 1 {
                !bits
            } else {
                bits ^ (1 << 63)
            };
            out.push(0x30);
            out.extend_from_slice(&ordered.to_be_bytes());
        }
        Value::String(s) => {
            out.push(0x40);
            encode_str(s, out);
        }
        Value::Array(items) => {
            out.push(0x50);
            for item in items {
                encode_value(item, out, cap);
                if out.len() > cap {
                    return;
                }
            }
            out.push(0x00);
        }
        Value::Object(entries) => {
            out.push(0x60);
            for (key, value) in entries {
                out.push(0x01);
                encode_str(key, out);
                encode_value(value, out, cap);
                if out.len() > cap {
                    return;
                }
            }
            out.push(0x00);
        }
    }
}

fn encode_str(s: &str, out: &mut Vec<u8>) {
    for &b in s.as_bytes() {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0x00, 0x01]);
}

/// The encoding of `v`.
pub fn encode_key(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    encode_value(v, &mut out, usize::MAX);
    out
}

/// The first `max` bytes of the encoding of `v`, and whether it was cut
/// (the whole encoding is longer than `max`). Cutting keeps the order
/// weakly (`a < b` gives `cut(a) <= cut(b)`), and since the encoding is
/// prefix-free, an uncut key never equals a cut one and compares with it as
/// the whole encodings do.
pub fn encode_key_bounded(v: &Value, max: usize) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    encode_value(v, &mut out, max);
    let cut = out.len() > max;
    out.truncate(max);
    (out, cut)
}

#[cfg(test)]
mod tests {
    use super::*;
    use blaze_json::arbitrary::any_value;
    use blaze_json::order::compare_values;
    use proptest::prelude::*;

    /// Any finite number, from every corner of the f64, i64 and u64 ranges.
    fn any_number() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            prop::num::f64::ANY
                .prop_filter("JSON numbers are finite", |f| f.is_finite())
                .prop_map(Value::from),
            (-1000i64..1000).prop_map(|i| Value::from(i as f64 / 8.0)),
        ]
    }

    /// Nested values mixing [`any_value`] with numbers of any size.
    fn wide_value() -> impl Strategy<Value = Value> {
        let item = prop_oneof![any_number(), any_value()];
        prop_oneof![
            any_number(),
            any_value(),
            prop::collection::vec(item.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a\u{0}\u{1}é]{0,2}", item, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn number_bytes_order_equals_value_order(a in any_number(), b in any_number()) {
            prop_assert_eq!(encode_key(&a).cmp(&encode_key(&b)), compare_values(&a, &b));
        }

        #[test]
        fn wide_values_order_and_are_prefix_free(
            a in wide_value(),
            b in wide_value(),
            s1 in prop::collection::vec(any::<u8>(), 0..3),
            s2 in prop::collection::vec(any::<u8>(), 0..3),
        ) {
            let order = compare_values(&a, &b);
            let (mut ka, mut kb) = (encode_key(&a), encode_key(&b));
            prop_assert_eq!(ka.cmp(&kb), order);
            if order.is_ne() {
                ka.extend(s1);
                kb.extend(s2);
                prop_assert_eq!(ka.cmp(&kb), order);
            }
        }

        #[test]
        fn cut_keys_are_prefixes_that_keep_the_order(a in wide_value(), b in wide_value(), max in 1usize..24) {
            let (ka, cut_a) = encode_key_bounded(&a, max);
            let whole = encode_key(&a);
            prop_assert_eq!(cut_a, whole.len() > max);
            prop_assert_eq!(&ka[..], &whole[..whole.len().min(max)]);
            let (kb, cut_b) = encode_key_bounded(&b, max);
            let order = compare_values(&a, &b);
            if order.is_lt() {
                prop_assert!(ka <= kb);
            }
            if !cut_a || !cut_b {
                // An uncut key never ties with another value's key, and orders as the value.
                prop_assert_eq!(ka.cmp(&kb), order);
            }
        }

        #[test]
        fn byte_order_equals_value_order(a in any_value(), b in any_value()) {
            prop_assert_eq!(encode_key(&a).cmp(&encode_key(&b)), compare_values(&a, &b));
        }

        #[test]
        fn keys_are_prefix_free(a in any_value(), b in any_value(), s1 in prop::collection::vec(any::<u8>(), 0..3), s2 in prop::collection::vec(any::<u8>(), 0..3)) {
            let order = compare_values(&a, &b);
            prop_assume!(order.is_ne());
            let (mut ka, mut kb) = (encode_key(&a), encode_key(&b));
            ka.extend(s1);
            kb.extend(s2);
            prop_assert_eq!(ka.cmp(&kb), order);
        }
    }

    #[test]
    fn matches_the_spec_examples() {
        use serde_json::json;
        let hex = |v: Value| {
            encode_key(&v)
                .iter()
                .map(|b| format!("{b:02X}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(hex(json!(null)), "10");
        assert_eq!(hex(json!(false)), "20");
        assert_eq!(hex(json!(true)), "21");
        assert_eq!(hex(json!("a")), "40 61 00 01");
        assert_eq!(hex(json!("\u{0}")), "40 00 FF 00 01");
        assert_eq!(hex(json!([true])), "50 21 00");
        assert_eq!(hex(json!({"k": null})), "60 01 6B 00 01 10 00");
        assert_eq!(hex(json!(1)), "30 BF F0 00 00 00 00 00 00");
        assert_eq!(hex(json!(0)), "30 80 00 00 00 00 00 00 00");
        assert_eq!(hex(json!(-1.0)), "30 40 0F FF FF FF FF FF FF");
    }

    #[test]
    fn appends_to_existing_bytes() {
        let mut out = vec![0xAA];
        encode_value(&serde_json::json!([null]), &mut out, usize::MAX);
        assert_eq!(out, [0xAA, 0x50, 0x10, 0x00]);
    }

    #[test]
    fn equal_numbers_encode_equally() {
        assert_eq!(
            encode_key(&serde_json::json!(1)),
            encode_key(&serde_json::json!(1.0))
        );
        assert_eq!(
            encode_key(&serde_json::json!(-0.0)),
            encode_key(&serde_json::json!(0))
        );
    }
}
