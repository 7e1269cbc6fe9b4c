use super::*;
use crate::value_order::tests::any_value;
use proptest::prelude::*;
use serde_json::json;

fn check(doc: Value, patch: Value, want: Result<Value, ErrorCode>) {
    let limits = Limits::default();
    let got = apply_json_patch(doc.as_object().unwrap(), &patch, &limits);
    assert_eq!(
        got.map(Value::Object).map_err(|r| r.code),
        want,
        "{doc} + {patch}"
    );
}

#[test]
fn rfc6902_appendix_a() {
    check(
        json!({"foo": "bar"}),
        json!([{"op": "add", "path": "/baz", "value": "qux"}]),
        Ok(json!({"baz": "qux", "foo": "bar"})),
    );
    check(
        json!({"foo": ["bar", "baz"]}),
        json!([{"op": "add", "path": "/foo/1", "value": "qux"}]),
        Ok(json!({"foo": ["bar", "qux", "baz"]})),
    );
    check(
        json!({"baz": "qux", "foo": "bar"}),
        json!([{"op": "remove", "path": "/baz"}]),
        Ok(json!({"foo": "bar"})),
    );
    check(
        json!({"foo": ["bar", "qux", "baz"]}),
        json!([{"op": "remove", "path": "/foo/1"}]),
        Ok(json!({"foo": ["bar", "baz"]})),
    );
    check(
        json!({"baz": "qux", "foo": "bar"}),
        json!([{"op": "replace", "path": "/baz", "value": "boo"}]),
        Ok(json!({"baz": "boo", "foo": "bar"})),
    );
    check(
        json!({"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}}),
        json!([{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}]),
        Ok(json!({"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}})),
    );
    check(
        json!({"foo": ["all", "grass", "cows", "eat"]}),
        json!([{"op": "move", "from": "/foo/1", "path": "/foo/3"}]),
        Ok(json!({"foo": ["all", "cows", "eat", "grass"]})),
    );
    check(
        json!({"baz": "qux", "foo": ["a", 2, "c"]}),
        json!([{"op": "test", "path": "/baz", "value": "qux"}, {"op": "test", "path": "/foo/1", "value": 2}]),
        Ok(json!({"baz": "qux", "foo": ["a", 2, "c"]})),
    );
    check(
        json!({"baz": "qux"}),
        json!([{"op": "test", "path": "/baz", "value": "bar"}]),
        Err(ErrorCode::PatchTestFailed),
    );
    check(
        json!({"foo": "bar"}),
        json!([{"op": "add", "path": "/child", "value": {"grandchild": {}}}]),
        Ok(json!({"foo": "bar", "child": {"grandchild": {}}})),
    );
    check(
        json!({"foo": "bar"}),
        json!([{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}]),
        Ok(json!({"foo": "bar", "baz": "qux"})),
    );
    check(
        json!({"foo": "bar"}),
        json!([{"op": "add", "path": "/baz/bat", "value": "qux"}]),
        Err(ErrorCode::PatchPathNotFound),
    );
    check(
        json!({"/": 9, "~1": 10}),
        json!([{"op": "test", "path": "/~01", "value": 10}]),
        Ok(json!({"/": 9, "~1": 10})),
    );
    check(
        json!({"/": 9, "~1": 10}),
        json!([{"op": "test", "path": "/~01", "value": "10"}]),
        Err(ErrorCode::PatchTestFailed),
    );
    check(
        json!({"foo": ["bar"]}),
        json!([{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}]),
        Ok(json!({"foo": ["bar", ["abc", "def"]]})),
    );
}

#[test]
fn edge_cases() {
    let doc = || json!({"a": [1, 2], "b": {"c": 1}, "n": 1});
    let op = |o: Value| json!([o]);
    // Numbers compare numerically in test (RFC 6902 section 4.6).
    check(
        doc(),
        op(json!({"op": "test", "path": "/n", "value": 1.0})),
        Ok(doc()),
    );
    // Pointers and indexes.
    check(
        doc(),
        op(json!({"op": "add", "path": "a", "value": 1})),
        Err(ErrorCode::InvalidPatch),
    );
    check(
        doc(),
        op(json!({"op": "test", "path": "/~2", "value": 1})),
        Err(ErrorCode::InvalidPatch),
    );
    check(
        doc(),
        op(json!({"op": "remove", "path": "/a/01"})),
        Err(ErrorCode::PatchPathNotFound),
    );
    check(
        doc(),
        op(json!({"op": "remove", "path": "/a/-"})),
        Err(ErrorCode::PatchPathNotFound),
    );
    check(
        doc(),
        op(json!({"op": "add", "path": "/a/3", "value": 0})),
        Err(ErrorCode::PatchPathNotFound),
    );
    check(
        doc(),
        op(json!({"op": "add", "path": "/a/2", "value": 0})),
        Ok(json!({"a": [1, 2, 0], "b": {"c": 1}, "n": 1})),
    );
    check(
        doc(),
        op(json!({"op": "replace", "path": "/zz", "value": 0})),
        Err(ErrorCode::PatchPathNotFound),
    );
    check(
        doc(),
        op(json!({"op": "add", "path": "/n/x", "value": 0})),
        Err(ErrorCode::PatchPathNotFound),
    );
    // The root.
    check(
        doc(),
        op(json!({"op": "remove", "path": ""})),
        Err(ErrorCode::InvalidPatch),
    );
    check(
        doc(),
        op(json!({"op": "replace", "path": "", "value": [1]})),
        Err(ErrorCode::InvalidDocument),
    );
    check(
        doc(),
        op(json!({"op": "add", "path": "", "value": {"x": 1}})),
        Ok(json!({"x": 1})),
    );
    check(
        doc(),
        op(json!({"op": "copy", "from": "", "path": "/self"})),
        Ok(json!({"a": [1, 2], "b": {"c": 1}, "n": 1, "self": doc()})),
    );
    // Moves.
    check(
        doc(),
        op(json!({"op": "move", "from": "/b", "path": "/b/c/d"})),
        Err(ErrorCode::InvalidPatch),
    );
    check(
        doc(),
        op(json!({"op": "move", "from": "", "path": "/x"})),
        Err(ErrorCode::InvalidPatch),
    );
    check(
        doc(),
        op(json!({"op": "move", "from": "/b", "path": "/b"})),
        Ok(doc()),
    );
    check(
        doc(),
        op(json!({"op": "move", "from": "/q", "path": "/q"})),
        Err(ErrorCode::PatchPathNotFound),
    );
    check(
        doc(),
        op(json!({"op": "move", "from": "/b/c", "path": "/b"})),
        Ok(json!({"a": [1, 2], "b": 1, "n": 1})),
    );
    // Malformed operations, and their atomicity: an early valid op is not kept.
    check(doc(), json!({"op": "add"}), Err(ErrorCode::InvalidPatch));
    check(
        doc(),
        op(json!({"op": "add", "path": "/x"})),
        Err(ErrorCode::InvalidPatch),
    );
    check(
        doc(),
        op(json!({"op": "jump", "path": "/x"})),
        Err(ErrorCode::InvalidPatch),
    );
    check(
        doc(),
        op(json!({"op": "copy", "path": "/x"})),
        Err(ErrorCode::InvalidPatch),
    );
    check(
        doc(),
        json!([{"op": "add", "path": "/x", "value": 1}, {"op": "remove", "path": "/nope"}]),
        Err(ErrorCode::PatchPathNotFound),
    );
    check(
        doc(),
        op(json!({"op": "add", "path": "/x", "value": null})),
        Ok(json!({"a": [1, 2], "b": {"c": 1}, "n": 1, "x": null})),
    );
}

#[test]
fn limits_hold_after_every_operation() {
    let limits = Limits {
        max_document_bytes: 30,
        max_document_depth: 3,
        max_patch_ops: 2,
        ..Limits::default()
    };
    let apply = |patch: Value| apply_json_patch(&Map::new(), &patch, &limits).map_err(|r| r.code);
    let big = json!("0123456789012345678901234567890");
    // Too large in the middle, fine at the end: still refused.
    assert_eq!(
        apply(json!([{"op": "add", "path": "/a", "value": big}, {"op": "remove", "path": "/a"}])),
        Err(ErrorCode::DocumentTooLarge)
    );
    assert_eq!(
        apply(
            json!([{"op": "add", "path": "/a", "value": {"b": {"c": {}}}}, {"op": "remove", "path": "/a"}])
        ),
        Err(ErrorCode::DocumentTooDeep)
    );
    assert_eq!(
        apply(json!([{"op": "add", "path": "/a", "value": {"b": {"c": 1}}}])).map(Value::Object),
        Ok(json!({"a": {"b": {"c": 1}}}))
    );
    assert_eq!(
        apply(
            json!([{"op": "test", "path": "", "value": {}}, {"op": "test", "path": "", "value": {}}, {"op": "test", "path": "", "value": {}}])
        ),
        Err(ErrorCode::TooManyPatchOps)
    );
    assert_eq!(apply(json!({})), Err(ErrorCode::InvalidPatch));
}

/// Pointers into `v` that exist, escaped.
fn pointers(v: &Value, prefix: String, out: &mut Vec<String>) {
    out.push(prefix.clone());
    match v {
        Value::Object(m) => m.iter().for_each(|(k, c)| {
            pointers(
                c,
                format!("{prefix}/{}", k.replace('~', "~0").replace('/', "~1")),
                out,
            )
        }),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, c)| pointers(c, format!("{prefix}/{i}"), out)),
        _ => {}
    }
}

const JUNK: [&str; 10] = [
    "/-", "/a/-", "/~2", "/~", "/00", "/0/-", "", "a", "/\u{0}", "/~1~0",
];

fn patch_for(doc: &Value) -> impl Strategy<Value = Value> {
    let mut paths = Vec::new();
    pointers(doc, String::new(), &mut paths);
    let real = paths.clone();
    paths.extend(real.iter().map(|p| format!("{p}/-")));
    paths.extend(real.iter().map(|p| format!("{p}/x")));
    paths.extend(JUNK.iter().map(|s| s.to_string()));
    let path = prop::sample::select(paths);
    let kinds = prop::sample::select(vec![
        "add", "remove", "replace", "move", "copy", "test", "bad",
    ]);
    let op = (kinds, path.clone(), path, any_value(), any::<bool>()).prop_map(
        |(kind, path, from, value, drop_value)| {
            let mut op = json!({"op": kind, "path": path, "from": from, "value": value});
            if drop_value {
                op.as_object_mut().unwrap().remove("value");
            }
            op
        },
    );
    prop::collection::vec(op, 0..6).prop_map(Value::Array)
}

fn doc_and_patch() -> impl Strategy<Value = (Map<String, Value>, Value)> {
    prop::collection::btree_map("[a-c~/]{0,2}", any_value(), 0..4)
        .prop_map(|m| m.into_iter().collect::<Map<String, Value>>())
        .prop_flat_map(|doc| {
            let patch = patch_for(&Value::Object(doc.clone()));
            (Just(doc), patch)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn errors_leave_the_document_untouched((doc, patch) in doc_and_patch(), tiny in any::<bool>()) {
        let limits = if tiny {
            Limits { max_document_bytes: 120, max_document_depth: 3, ..Limits::default() }
        } else {
            Limits::default()
        };
        let before = serde_json::to_string(&doc).unwrap();
        match apply_json_patch(&doc, &patch, &limits) {
            Ok(out) => {
                let out = Value::Object(out);
                prop_assert!(json_depth(&out) <= limits.max_document_depth);
                prop_assert!(serialized_len(&out) <= limits.max_document_bytes);
            }
            Err(r) => prop_assert!(r.message.starts_with("op ") || r.code != ErrorCode::PatchPathNotFound),
        }
        prop_assert_eq!(serde_json::to_string(&doc).unwrap(), before);
    }

    #[test]
    fn running_size_and_depth_match_after_every_operation((doc, patch) in doc_and_patch()) {
        let limits = Limits { max_document_bytes: 150, max_document_depth: 4, ..Limits::default() };
        let mut patched = Patched { size: object_len(&doc), root: Value::Object(doc), limits: &limits };
        for op in patch.as_array().unwrap() {
            let Ok(op) = parse_operation(op) else { continue };
            if patched.apply(op).is_err() {
                continue;
            }
            prop_assert_eq!(patched.size, serialized_len(&patched.root));
        }
    }
}
