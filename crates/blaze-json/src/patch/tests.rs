use super::*;
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

#[test]
fn pointer_and_validation_rules() {
    let doc = || json!({"a": [1, 2], "b": {"c": 1}, "~1": 0});
    let op = |o: Value| json!([o]);
    let ok_with = |extra: Value| {
        let mut d = doc();
        d.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        Ok(d)
    };
    // On an object any token is a member name, `-` and leading zeros included.
    check(
        doc(),
        op(json!({"op": "add", "path": "/-", "value": 1})),
        ok_with(json!({"-": 1})),
    );
    check(
        doc(),
        op(json!({"op": "add", "path": "/01", "value": 1})),
        ok_with(json!({"01": 1})),
    );
    check(
        doc(),
        op(json!({"op": "test", "path": "/~01", "value": 0})),
        Ok(doc()),
    );
    check(
        doc(),
        op(json!({"op": "add", "path": "/", "value": 1})),
        ok_with(json!({"": 1})),
    );
    check(
        doc(),
        op(json!({"op": "add", "path": "/a~", "value": 1})),
        Err(ErrorCode::InvalidPatch),
    );
    // On an array only canonical indexes designate elements.
    for bad in [
        "/a/+1",
        "/a/1e0",
        "/a/ 1",
        "/a/",
        "/a/2",
        "/a/-",
        "/a/-/x",
        "/a/99999999999999999999999",
    ] {
        check(
            doc(),
            op(json!({"op": "remove", "path": bad})),
            Err(ErrorCode::PatchPathNotFound),
        );
        check(
            doc(),
            op(json!({"op": "replace", "path": bad, "value": 0})),
            Err(ErrorCode::PatchPathNotFound),
        );
        check(
            doc(),
            op(json!({"op": "test", "path": bad, "value": 0})),
            Err(ErrorCode::PatchPathNotFound),
        );
    }
    check(
        doc(),
        op(json!({"op": "add", "path": "/a/-/x", "value": 0})),
        Err(ErrorCode::PatchPathNotFound),
    );
    check(
        doc(),
        op(json!({"op": "add", "path": "/a/01", "value": 0})),
        Err(ErrorCode::PatchPathNotFound),
    );
    check(
        doc(),
        op(json!({"op": "add", "path": "/a/0", "value": 0})),
        ok_with(json!({"a": [0, 1, 2]})),
    );
    check(
        doc(),
        op(json!({"op": "replace", "path": "/a/1", "value": 7})),
        ok_with(json!({"a": [1, 7]})),
    );
    check(
        doc(),
        op(json!({"op": "remove", "path": "/a/1"})),
        ok_with(json!({"a": [1]})),
    );
    check(
        doc(),
        op(json!({"op": "copy", "from": "/b", "path": "/a/-"})),
        ok_with(json!({"a": [1, 2, {"c": 1}]})),
    );
    check(
        doc(),
        op(json!({"op": "move", "from": "/a/0", "path": "/a/-"})),
        ok_with(json!({"a": [2, 1]})),
    );
    check(
        doc(),
        op(json!({"op": "copy", "from": "/a/-", "path": "/x"})),
        Err(ErrorCode::PatchPathNotFound),
    );
    check(
        doc(),
        op(json!({"op": "move", "from": "/a/5", "path": "/x"})),
        Err(ErrorCode::PatchPathNotFound),
    );
    // Moves next to, not into, themselves are fine.
    check(
        doc(),
        op(json!({"op": "move", "from": "/b", "path": "/bc"})),
        Ok(json!({"a": [1, 2], "bc": {"c": 1}, "~1": 0})),
    );
    check(
        doc(),
        op(json!({"op": "move", "from": "/a", "path": "/a/0"})),
        Err(ErrorCode::InvalidPatch),
    );
    // test: null is a value, deep equality, the whole document, a missing location.
    check(
        json!({"x": null}),
        op(json!({"op": "test", "path": "/x", "value": null})),
        Ok(json!({"x": null})),
    );
    check(
        doc(),
        op(json!({"op": "test", "path": "", "value": {"~1": 0.0, "b": {"c": 1.0}, "a": [1, 2]}})),
        Ok(doc()),
    );
    check(
        doc(),
        op(json!({"op": "test", "path": "/a", "value": [1, 2, 3]})),
        Err(ErrorCode::PatchTestFailed),
    );
    check(
        doc(),
        op(json!({"op": "test", "path": "/b", "value": {"c": 1, "d": 1}})),
        Err(ErrorCode::PatchTestFailed),
    );
    check(
        doc(),
        op(json!({"op": "test", "path": "/zz", "value": null})),
        Err(ErrorCode::PatchPathNotFound),
    );
    // Malformed members.
    for bad in [
        json!(1),
        json!({"path": "/x", "value": 1}),
        json!({"op": 1, "path": "/x", "value": 1}),
        json!({"op": "ADD", "path": "/x", "value": 1}),
        json!({"op": "add", "path": 1, "value": 1}),
        json!({"op": "move", "from": 1, "path": "/x"}),
        json!({"op": "move", "path": "/x"}),
        json!({"op": "test", "path": "/x"}),
        json!({"op": "replace", "path": "/b"}),
    ] {
        check(doc(), op(bad), Err(ErrorCode::InvalidPatch));
    }
    // Validated first: a malformed op wins over an earlier op that would fail,
    // and the op count is checked before anything else.
    check(
        doc(),
        json!([{"op": "remove", "path": "/nope"}, {"op": "add", "path": "x", "value": 1}]),
        Err(ErrorCode::InvalidPatch),
    );
    let many = Value::Array(vec![json!({"op": "bad"}); 501]);
    check(doc(), many, Err(ErrorCode::TooManyPatchOps));
    check(doc(), json!([]), Ok(doc()));
}

#[test]
fn errors_name_the_failing_operation() {
    let doc = json!({"a": {"b": 1}});
    let message = |patch: Value| {
        apply_json_patch(doc.as_object().unwrap(), &patch, &Limits::default())
            .unwrap_err()
            .message
    };
    let test = json!({"op": "test", "path": "/a/b", "value": 1});
    let missing = json!({"op": "remove", "path": "/a/~1~0"});
    assert_eq!(
        message(json!([test, test, test, missing])),
        "op 3: path /a/~1~0 not found"
    );
    assert!(message(json!([test, {"op": "add"}])).starts_with("op 1: "));
}

/// Random JSON values: floats and integers, strings that need escaping, and
/// keys holding `~`, `/`, `-` and digits.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        (-1000i64..1000).prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        Just(json!(1.0)),
        "[a\"\\\\\u{1}\n\u{e9}~/]{0,4}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(any_key(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn any_key() -> impl Strategy<Value = String> {
    "[a~/0-]{0,2}"
}

fn any_doc() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map(any_key(), any_json(), 0..4).prop_map(|m| m.into_iter().collect())
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

const JUNK: [&str; 11] = [
    "/-", "/a/-", "/~2", "/~", "/00", "/0/-", "", "a", "/\u{0}", "/~1~0", "/-/-",
];

/// Suffixes that turn an existing pointer into a child, an append point, or nonsense.
const SUFFIXES: [&str; 7] = ["/-", "/x", "/0", "/00", "/01", "/-/x", "/~1"];

/// Paths for a patch on `doc`: existing ones, their children and junk.
fn paths_for(doc: &Value) -> Vec<String> {
    let mut real = Vec::new();
    pointers(doc, String::new(), &mut real);
    let derived = real
        .iter()
        .flat_map(|p| SUFFIXES.iter().map(move |s| format!("{p}{s}")));
    let junk = JUNK.iter().map(|s| s.to_string());
    real.iter().cloned().chain(derived).chain(junk).collect()
}

/// One to two operations: any of the six ops (and a bad one), with or without
/// its `value`, a move into its own child, or an add undone by a remove.
fn ops_for(doc: &Value) -> impl Strategy<Value = Vec<Value>> {
    let path = prop::sample::select(paths_for(doc));
    // Well-formed ops mostly, so most patches get applied.
    let ops = ["add", "remove", "replace", "move", "copy", "test"];
    let special = ["bad", "into_child", "bounce", "bounce"];
    let kinds = prop::sample::select([&ops[..], &ops, &ops, &special].concat());
    (
        kinds,
        path.clone(),
        path,
        any_json(),
        prop::bool::weighted(0.1),
    )
        .prop_map(|(kind, path, from, value, drop_value)| match kind {
            "into_child" => vec![json!({"op": "move", "from": from, "path": format!("{from}/0")})],
            "bounce" => vec![
                json!({"op": "add", "path": "/tmp", "value": value}),
                json!({"op": "remove", "path": "/tmp"}),
            ],
            _ => {
                let mut op = json!({"op": kind, "path": path, "from": from, "value": value});
                if drop_value {
                    op.as_object_mut().unwrap().remove("value");
                }
                vec![op]
            }
        })
}

fn patch_for(doc: &Value) -> impl Strategy<Value = Value> {
    prop::collection::vec(ops_for(doc), 0..6)
        .prop_map(|ops| Value::Array(ops.into_iter().flatten().collect()))
}

fn doc_and_patch() -> impl Strategy<Value = (Map<String, Value>, Value)> {
    any_doc().prop_flat_map(|doc| {
        let patch = patch_for(&Value::Object(doc.clone()));
        (Just(doc), patch)
    })
}

/// Limits the document is just within: a little room in size and depth.
fn tight_limits(doc: &Map<String, Value>, bytes: usize, depth: usize, ops: usize) -> Limits {
    let doc = Value::Object(doc.clone());
    Limits {
        max_document_bytes: serialized_len(&doc) + bytes,
        max_document_depth: json_depth(&doc) + depth,
        max_patch_ops: ops,
        ..Limits::default()
    }
}

/// What applying `patch` must give: the operations run without limits, the
/// document measured in full after each one. An error is the failing
/// operation's index (none for the op count) and code.
fn reference_outcome(
    doc: &Map<String, Value>,
    patch: &Value,
    limits: &Limits,
) -> Result<Value, (Option<usize>, ErrorCode)> {
    let ops = patch.as_array().expect("generated patches are arrays");
    if ops.len() > limits.max_patch_ops {
        return Err((None, ErrorCode::TooManyPatchOps));
    }
    let fail = |i: usize| move |r: Rejection| (Some(i), r.code);
    let ops = ops
        .iter()
        .enumerate()
        .map(|(i, op)| parse_operation(op).map_err(fail(i)))
        .collect::<Result<Vec<_>, _>>()?;
    let unlimited = Limits {
        max_document_bytes: usize::MAX,
        max_document_depth: usize::MAX,
        max_commit_bytes: usize::MAX,
        ..limits.clone()
    };
    let mut budget = CommitBudget::new(&unlimited);
    let mut patched = Patched {
        size: object_len(doc),
        root: Value::Object(doc.clone()),
        limits: &unlimited,
        budget: &mut budget,
    };
    for (i, op) in ops.into_iter().enumerate() {
        patched.apply(op).map_err(fail(i))?;
        let (depth, size) = (json_depth(&patched.root), serialized_len(&patched.root));
        assert_eq!(patched.size, size, "running size after op {i}");
        check_limits(depth, size, limits).map_err(fail(i))?;
    }
    Ok(patched.root)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn errors_leave_the_document_untouched((doc, patch) in doc_and_patch(), tiny in any::<bool>()) {
        let limits = if tiny {
            Limits { max_document_bytes: 200, max_document_depth: 4, ..Limits::default() }
        } else {
            Limits::default()
        };
        let before = doc.clone();
        match apply_json_patch(&doc, &patch, &limits) {
            Ok(out) => {
                let out = Value::Object(out);
                prop_assert!(json_depth(&out) <= limits.max_document_depth);
                prop_assert!(serialized_len(&out) <= limits.max_document_bytes);
            }
            Err(r) => prop_assert!(r.message.starts_with("op ") || r.code != ErrorCode::PatchPathNotFound),
        }
        prop_assert_eq!(doc, before);
    }

    #[test]
    fn limits_hold_after_every_operation_like_the_reference(
        (doc, patch) in doc_and_patch(),
        bytes in 0usize..40,
        depth in 0usize..2,
        ops in 3usize..12,
    ) {
        let limits = tight_limits(&doc, bytes, depth, ops);
        let want = reference_outcome(&doc, &patch, &limits);
        match (apply_json_patch(&doc, &patch, &limits), want) {
            (Ok(out), Ok(want)) => prop_assert_eq!(Value::Object(out), want),
            (Err(r), Err((index, code))) => {
                prop_assert_eq!(r.code, code, "{}", r.message);
                if let Some(i) = index {
                    let prefix = format!("op {i}: ");
                    prop_assert!(r.message.starts_with(&prefix), "{}", r.message);
                }
            }
            (got, want) => prop_assert!(false, "got {:?}, want {:?}", got, want),
        }
    }

    #[test]
    fn running_size_and_depth_match_after_every_operation((doc, patch) in doc_and_patch()) {
        let limits = Limits { max_document_bytes: 150, max_document_depth: 4, ..Limits::default() };
        let start_depth = json_depth(&Value::Object(doc.clone()));
        let mut budget = CommitBudget::new(&limits);
        let mut patched = Patched { size: object_len(&doc), root: Value::Object(doc), limits: &limits, budget: &mut budget };
        for op in patch.as_array().unwrap() {
            let Ok(op) = parse_operation(op) else { continue };
            // A failed operation may leave the copy half-changed, but consistent.
            let _ = patched.apply(op);
            prop_assert_eq!(patched.size, serialized_len(&patched.root));
            prop_assert!(json_depth(&patched.root) <= limits.max_document_depth.max(start_depth));
        }
    }
}
