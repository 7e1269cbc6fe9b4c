//! Property test: index-backed query results (and counts) equal a
//! brute-force scan-filter-sort reference, after random writes that keep the
//! indexes busy; also with index bounds so small (`max_indexed_value_bytes`,
//! `max_indexed_array_elements`) that keys are cut and arrays go unindexed.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use blaze_core::{Database, Limits, MemoryStorage};
use blaze_json::order::{compare_values, values_equal, TypeClass};
use blaze_protocol::{
    CollectionPath, Direction, FieldFilter, Filter, Op, OrderBy, Query, Write, WriteKind,
};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

const FIELDS: [&str; 5] = ["a", "b", "tags", "n.k", "__name__"];

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        (0i64..3).prop_map(Value::from),
        prop_oneof![Just(0.5), Just(-1.5), Just(2.0)].prop_map(Value::from),
        prop_oneof![Just("x"), Just("y"), Just(""), Just("d3")].prop_map(Value::from),
        // Long strings sharing a prefix: their keys tie once cut.
        prop_oneof![
            Just("shared-prefix"),
            Just("shared-prefix-1"),
            Just("shared-prefix-2")
        ]
        .prop_map(Value::from),
    ]
}

fn field_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => scalar(),
        1 => prop::collection::vec(scalar(), 0..3).prop_map(Value::Array),
        1 => scalar().prop_map(|v| json!({ "k": v })),
    ]
}

fn document() -> impl Strategy<Value = Map<String, Value>> {
    (
        prop::option::of(field_value()),
        prop::option::of(field_value()),
        prop::option::of(prop::collection::vec(scalar(), 0..3)),
        prop::option::of(scalar()),
    )
        .prop_map(|(a, b, tags, k)| {
            let mut m = Map::new();
            a.map(|v| m.insert("a".into(), v));
            b.map(|v| m.insert("b".into(), v));
            tags.map(|v| m.insert("tags".into(), Value::Array(v)));
            k.map(|v| m.insert("n".into(), json!({ "k": v })));
            m
        })
}

/// One step of history: set document `id` (Some) or delete it (None).
fn history() -> impl Strategy<Value = Vec<(u8, Option<Map<String, Value>>)>> {
    prop::collection::vec((0u8..16, prop::option::weighted(0.85, document())), 1..60)
}

fn leaf() -> impl Strategy<Value = Filter> {
    let ops = prop::sample::select(vec![
        Op::Eq,
        Op::Ne,
        Op::Lt,
        Op::Le,
        Op::Gt,
        Op::Ge,
        Op::In,
        Op::NotIn,
        Op::ArrayContains,
        Op::ArrayContainsAny,
    ]);
    (
        prop::sample::select(FIELDS.to_vec()),
        ops,
        scalar(),
        prop::collection::vec(scalar(), 1..4),
    )
        .prop_map(|(field, op, v, list)| {
            // Keep queries valid: ids compare with strings, ranges never with null.
            let fix = |v: Value| match (field, &v) {
                ("__name__", _) => json!(format!("d{}", v.as_i64().unwrap_or(5).rem_euclid(16))),
                (_, Value::Null) if matches!(op, Op::Lt | Op::Le | Op::Gt | Op::Ge) => json!(0),
                _ => v,
            };
            let op = match (field, op) {
                ("__name__", Op::ArrayContains | Op::ArrayContainsAny) => Op::Eq,
                _ => op,
            };
            let (v, list) = (fix(v), list.into_iter().map(fix).collect());
            let value = match op {
                Op::In | Op::NotIn | Op::ArrayContainsAny => Value::Array(list),
                _ => v,
            };
            Filter::Field(FieldFilter {
                field: field.into(),
                op,
                value,
            })
        })
}

fn filter() -> impl Strategy<Value = Filter> {
    leaf().prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..4).prop_map(|and| Filter::And { and }),
            prop::collection::vec(inner, 1..3).prop_map(|or| Filter::Or { or }),
        ]
    })
}

fn query() -> impl Strategy<Value = Query> {
    let order = prop::collection::vec((prop::sample::select(FIELDS.to_vec()), any::<bool>()), 0..3);
    let cursor = || prop::option::of((any::<bool>(), prop::collection::vec(scalar(), 1..3)));
    (
        prop::option::of(filter()),
        order,
        prop::option::of((1u64..6, any::<bool>())),
        cursor(),
        cursor(),
    )
        .prop_map(|(filter, order, limit, start, end)| {
            let mut q = Query::all(CollectionPath::parse("c").unwrap());
            q.filter = filter;
            for (field, desc) in order {
                if q.order_by.iter().all(|o| o.field != field) {
                    let direction = if desc {
                        Direction::Desc
                    } else {
                        Direction::Asc
                    };
                    q.order_by.push(OrderBy {
                        field: field.into(),
                        direction,
                    });
                }
            }
            match limit {
                Some((n, false)) => q.limit = Some(n),
                Some((n, true)) => q.limit_to_last = Some(n),
                None => {}
            }
            // Cursor values: a prefix of the order keys; an id where the spec wants one.
            let fit = |values: Vec<Value>, q: &Query| -> Vec<Value> {
                values
                    .into_iter()
                    .take(q.order_by.len().max(1))
                    .enumerate()
                    .map(|(i, v)| match q.order_by.get(i) {
                        Some(o) if o.field != "__name__" => v,
                        _ => json!(format!("d{}", i + 3)),
                    })
                    .collect()
            };
            match start {
                Some((true, v)) => q.start_at = Some(fit(v, &q)),
                Some((false, v)) => q.start_after = Some(fit(v, &q)),
                None => {}
            }
            match end {
                Some((true, v)) => q.end_at = Some(fit(v, &q)),
                Some((false, v)) => q.end_before = Some(fit(v, &q)),
                None => {}
            }
            q
        })
}

// ---- the reference model: plain scans, written from the spec's rules ----

fn get(id: &str, data: &Map<String, Value>, field: &str) -> Option<Value> {
    if field == "__name__" {
        return Some(json!(id));
    }
    let mut cur = data.get(field.split('.').next()?)?;
    for key in field.split('.').skip(1) {
        cur = cur.as_object()?.get(key)?;
    }
    Some(cur.clone())
}

fn leaf_ref(found: &Value, op: Op, x: &Value) -> bool {
    let list = x.as_array().cloned().unwrap_or_default();
    let member = |v: &Value| list.iter().any(|o| values_equal(v, o));
    let ranged = |want: &[Ordering]| {
        TypeClass::of(found) == TypeClass::of(x) && want.contains(&compare_values(found, x))
    };
    match op {
        Op::Eq => values_equal(found, x),
        Op::Ne => !found.is_null() && !values_equal(found, x),
        Op::Lt => ranged(&[Ordering::Less]),
        Op::Le => ranged(&[Ordering::Less, Ordering::Equal]),
        Op::Gt => ranged(&[Ordering::Greater]),
        Op::Ge => ranged(&[Ordering::Greater, Ordering::Equal]),
        Op::In => member(found),
        Op::NotIn => !found.is_null() && !member(found),
        Op::ArrayContains => found
            .as_array()
            .is_some_and(|a| a.iter().any(|v| values_equal(v, x))),
        Op::ArrayContainsAny => found.as_array().is_some_and(|a| a.iter().any(member)),
    }
}

fn matches_ref(f: &Filter, id: &str, data: &Map<String, Value>) -> bool {
    match f {
        Filter::And { and } => and.iter().all(|f| matches_ref(f, id, data)),
        Filter::Or { or } => or.iter().any(|f| matches_ref(f, id, data)),
        Filter::Field(f) => get(id, data, &f.field).is_some_and(|v| leaf_ref(&v, f.op, &f.value)),
    }
}

fn dir(o: Ordering, d: Direction) -> Ordering {
    if d == Direction::Desc {
        o.reverse()
    } else {
        o
    }
}

/// Position of a result against `other` (a full key or a cursor prefix) in query order.
fn cmp_key(q: &Query, id: &str, vals: &[Value], other: &[Value]) -> Ordering {
    let id_dir = q.order_by.last().map_or(Direction::Asc, |o| o.direction);
    for (i, o) in other.iter().enumerate() {
        let c = match (vals.get(i), q.order_by.get(i)) {
            (Some(v), Some(ob)) => dir(compare_values(v, o), ob.direction),
            _ => dir(
                id.as_bytes().cmp(o.as_str().unwrap_or("").as_bytes()),
                id_dir,
            ),
        };
        if c.is_ne() {
            return c;
        }
    }
    Ordering::Equal
}

fn reference(q: &Query, docs: &BTreeMap<String, Map<String, Value>>) -> Vec<String> {
    let mut rows: Vec<(String, Vec<Value>)> = docs
        .iter()
        .filter(|(id, d)| q.filter.as_ref().is_none_or(|f| matches_ref(f, id, d)))
        .filter_map(|(id, d)| {
            let vals: Option<Vec<Value>> =
                q.order_by.iter().map(|o| get(id, d, &o.field)).collect();
            vals.map(|v| (id.clone(), v))
        })
        .collect();
    rows.sort_by(|(ia, va), (ib, vb)| {
        let mut full = vb.clone();
        full.push(json!(ib));
        cmp_key(q, ia, va, &full)
    });
    let keep = |(id, v): &(String, Vec<Value>)| {
        let start_ok = match (&q.start_at, &q.start_after) {
            (Some(c), _) => cmp_key(q, id, v, c).is_ge(),
            (_, Some(c)) => cmp_key(q, id, v, c).is_gt(),
            _ => true,
        };
        let end_ok = match (&q.end_at, &q.end_before) {
            (Some(c), _) => cmp_key(q, id, v, c).is_le(),
            (_, Some(c)) => cmp_key(q, id, v, c).is_lt(),
            _ => true,
        };
        start_ok && end_ok
    };
    let mut ids: Vec<String> = rows
        .iter()
        .filter(|r| keep(r))
        .map(|(id, _)| id.clone())
        .collect();
    if let Some(n) = q.limit {
        ids.truncate(n as usize);
    }
    if let Some(n) = q.limit_to_last {
        ids.drain(..ids.len().saturating_sub(n as usize));
    }
    ids
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn indexed_queries_equal_the_reference(steps in history(), queries in prop::collection::vec(query(), 1..6)) {
        // Random trees can exceed the disjunction limit; this test is about plans, not limits.
        let limits = Limits { max_disjunctions: 100_000, ..Limits::default() };
        check_queries(limits, steps, queries)?;
    }

    #[test]
    fn queries_beyond_the_index_bounds_equal_the_reference(
        steps in history(),
        queries in prop::collection::vec(query(), 1..6),
        max_key in 1usize..14,
        max_elements in 0usize..3,
    ) {
        let limits = Limits {
            max_disjunctions: 100_000,
            max_indexed_value_bytes: max_key,
            max_indexed_array_elements: max_elements,
            ..Limits::default()
        };
        check_queries(limits, steps, queries)?;
    }
}

/// Applies `steps`, then checks every query and count of `queries` against the reference.
fn check_queries(
    limits: Limits,
    steps: Vec<(u8, Option<Map<String, Value>>)>,
    queries: Vec<Query>,
) -> Result<(), TestCaseError> {
    let mut db = Database::new(MemoryStorage::new(), limits);
    let mut model = BTreeMap::new();
    for (t, (n, doc)) in steps.into_iter().enumerate() {
        let id = format!("d{n}");
        let kind = match &doc {
            Some(d) => WriteKind::Set {
                data: Value::Object(d.clone()),
            },
            None => WriteKind::Delete,
        };
        db.commit(
            &CollectionPath::parse("c").unwrap(),
            &[Write {
                id: id.clone(),
                kind,
                precondition: Default::default(),
            }],
            t as u64,
        )
        .unwrap();
        match doc {
            Some(d) => model.insert(id, d),
            None => model.remove(&id),
        };
    }
    for q in queries {
        let want = reference(&q, &model);
        let got: Vec<String> = db
            .query(&q)
            .unwrap()
            .docs
            .into_iter()
            .map(|d| d.id)
            .collect();
        prop_assert_eq!(&got, &want, "query {}", serde_json::to_string(&q).unwrap());
        // Counting reads the indexes, not the results: the same number.
        let (_, count) = db.count(&q).unwrap();
        prop_assert_eq!(
            count,
            want.len() as u64,
            "count {}",
            serde_json::to_string(&q).unwrap()
        );
        // Cursors make a count run the query: without them, the index path.
        let mut uncut = q.clone();
        (
            uncut.start_at,
            uncut.start_after,
            uncut.end_at,
            uncut.end_before,
        ) = (None, None, None, None);
        let (_, count) = db.count(&uncut).unwrap();
        let want = reference(&uncut, &model).len() as u64;
        prop_assert_eq!(
            count,
            want,
            "count {}",
            serde_json::to_string(&uncut).unwrap()
        );
    }
    Ok(())
}
