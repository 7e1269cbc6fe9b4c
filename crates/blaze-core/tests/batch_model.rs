//! Property test: batches are all-or-nothing and follow the spec's write
//! rules, checked against a plain in-memory model.

use std::collections::BTreeMap;

use blaze_core::{collection_contents, Database, Limits, MemoryStorage, Storage};
use blaze_json::merge::apply_merge_patch;
use blaze_json::patch::apply_json_patch;
use blaze_json::size::check_document;
use blaze_protocol::{CollectionPath, ErrorCode, Precondition, Write, WriteKind};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

type Model = BTreeMap<String, (Map<String, Value>, u64)>;

fn small_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        (0i64..5).prop_map(Value::from),
        "[a-c]{0,3}".prop_map(Value::from),
        Just(json!({"x": 1})),
        Just(Value::Null),
    ]
}

fn data() -> impl Strategy<Value = Value> {
    prop::collection::btree_map("[a-c]", small_value(), 0..4)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
}

fn patch() -> impl Strategy<Value = Value> {
    let op = (
        prop::sample::select(vec![
            "add", "remove", "replace", "test", "move", "copy", "bogus",
        ]),
        "/[a-c]?(/x)?",
        "/[a-c]",
        small_value(),
    )
        .prop_map(
            |(op, path, from, value)| json!({"op": op, "path": path, "from": from, "value": value}),
        );
    prop::collection::vec(op, 0..4).prop_map(Value::Array)
}

fn write() -> impl Strategy<Value = Write> {
    let kind = prop_oneof![
        data().prop_map(|data| WriteKind::Create { data }),
        data().prop_map(|data| WriteKind::Set { data }),
        Just(WriteKind::Set { data: json!([1]) }),
        patch().prop_map(|patch| WriteKind::Patch { patch }),
        data().prop_map(|patch| WriteKind::Merge { patch }),
        Just(WriteKind::Delete),
        Just(WriteKind::Verify),
    ];
    let pre = (
        prop::option::weighted(0.2, any::<bool>()),
        prop::option::weighted(0.2, 1u64..3),
    )
        .prop_map(|(exists, version)| Precondition { exists, version });
    (
        prop::sample::select(vec!["a", "b", "c", "bad id"]),
        kind,
        pre,
    )
        .prop_map(|(id, kind, precondition)| Write {
            id: id.into(),
            kind,
            precondition,
        })
}

/// The model's outcome of one write, or the error code it gets.
fn model_write(model: &mut Model, w: &Write, seq: u64, limits: &Limits) -> Result<(), ErrorCode> {
    if w.id.contains(' ') {
        return Err(ErrorCode::InvalidPath);
    }
    let current = model.get(&w.id).map(|(d, v)| (d.clone(), *v));
    if let Some(want) = w.precondition.exists {
        if want != current.is_some() {
            return Err(ErrorCode::PreconditionFailed);
        }
    }
    if let Some(want) = w.precondition.version {
        if current.as_ref().map(|c| c.1) != Some(want) {
            return Err(ErrorCode::PreconditionFailed);
        }
    }
    let existing = || current.clone().map(|c| c.0).ok_or(ErrorCode::NotFound);
    let next = match &w.kind {
        WriteKind::Create { .. } if current.is_some() => return Err(ErrorCode::AlreadyExists),
        WriteKind::Create { data } | WriteKind::Set { data } => {
            Some(check_document(data.clone(), limits).map_err(|r| r.code)?)
        }
        WriteKind::Patch { patch } => {
            Some(apply_json_patch(&existing()?, patch, limits).map_err(|r| r.code)?)
        }
        WriteKind::Merge { patch } => {
            Some(apply_merge_patch(&existing()?, patch, limits).map_err(|r| r.code)?)
        }
        WriteKind::Delete => None,
        WriteKind::Verify => return Ok(()),
    };
    match next {
        Some(d) => model.insert(w.id.clone(), (d, seq)),
        None => model.remove(&w.id),
    };
    Ok(())
}

fn snapshot(db: &Database<MemoryStorage>, c: &CollectionPath) -> (String, u64, usize, usize) {
    let contents = collection_contents(db.storage(), c).unwrap();
    let versions: Vec<_> = contents
        .keys()
        .map(|id| db.get(&c.doc(id).unwrap()).unwrap().version)
        .collect();
    let text = format!("{}{versions:?}", serde_json::to_string(&contents).unwrap());
    let log = db.log_since(c, 0).unwrap().map_or(0, |l| l.len());
    (
        text,
        db.storage().seq(c).unwrap(),
        db.storage().index_entry_count(c),
        log,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn batches_are_atomic_and_match_the_model(batches in prop::collection::vec(prop::collection::vec(write(), 1..5), 1..6)) {
        let c = CollectionPath::parse("c").unwrap();
        let mut db = Database::new(MemoryStorage::new(), Limits::default());
        let mut model = Model::new();
        for (t, batch) in batches.iter().enumerate() {
            let before = snapshot(&db, &c);
            let seq = before.1 + 1;
            let mut staged = model.clone();
            let want = batch.iter().enumerate().try_for_each(|(i, w)| model_write(&mut staged, w, seq, db.limits()).map_err(|code| (code, i)));
            match (db.commit(&c, batch, t as u64), want) {
                (Ok(done), Ok(())) => {
                    prop_assert_eq!((done.result.seq, done.record.seq), (seq, seq));
                    // The change log entry says what each written document was and became;
                    // a document the batch only verified is not in it.
                    let written: std::collections::BTreeSet<&str> = batch.iter().filter(|w| w.kind != WriteKind::Verify).map(|w| w.id.as_str()).collect();
                    prop_assert_eq!(done.record.docs.iter().map(|c| c.id.as_str()).collect::<std::collections::BTreeSet<_>>(), written);
                    for change in &done.record.docs {
                        prop_assert_eq!(change.before.as_ref().map(|d| &d.data), model.get(&change.id).map(|(d, _)| d));
                        prop_assert_eq!(change.after.as_ref().map(|d| &d.data), staged.get(&change.id).map(|(d, _)| d));
                    }
                    prop_assert_eq!(db.log_since(&c, seq - 1).unwrap(), Some(vec![done.record]));
                    model = staged;
                }
                (Err(e), Err((code, index))) => {
                    prop_assert_eq!(e.code(), code);
                    prop_assert_eq!(e.to_body().write_index, Some(index));
                    prop_assert_eq!(snapshot(&db, &c), before, "a failed batch changed storage");
                }
                (got, want) => prop_assert!(false, "engine {:?}, model {:?}", got, want),
            }
            let stored = collection_contents(db.storage(), &c).unwrap();
            let expected: Map<String, Value> = model.iter().map(|(id, (d, _))| (id.clone(), Value::Object(d.clone()))).collect();
            prop_assert_eq!(stored, expected);
            for (id, (_, version)) in &model {
                prop_assert_eq!(db.get(&c.doc(id).unwrap()).unwrap().version, Some(*version));
            }
        }
    }
}
