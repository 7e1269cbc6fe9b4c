//! Which query listeners a changed document can affect, without visiting
//! every listener.
//!
//! A listener whose query has a top-level `==` (or `in`) conjunct is filed
//! under that field and the key encoding of each allowed value; the rest are
//! unindexed. A document change can only affect a listener whose query
//! matched the document before or matches it after, so the candidates for a
//! change are the listeners filed under the old and new values of each
//! indexed field, plus the unindexed ones. With thousands of `roomId == X`
//! listeners, a write to room X finds its own listeners in O(log n).

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;

use blaze_protocol::Op;
use serde_json::{Map, Value};

use crate::query::field_value;
use blaze_json::field_path::FieldPath;

use crate::index::key_encoding::encode_key;
use crate::query::CompiledQuery;

/// Where one listener is filed.
enum Filing {
    Indexed(FieldPath, Vec<Vec<u8>>),
    Unindexed,
}

/// Listeners of one collection, filed by their equality conjuncts.
pub struct ListenerIndex<K> {
    by_field: HashMap<FieldPath, HashMap<Vec<u8>, BTreeSet<K>>>,
    unindexed: BTreeSet<K>,
    filings: HashMap<K, Filing>,
}

impl<K> Default for ListenerIndex<K> {
    fn default() -> Self {
        Self {
            by_field: HashMap::new(),
            unindexed: BTreeSet::new(),
            filings: HashMap::new(),
        }
    }
}

/// The conjunct to file a query under: its first `==`, else its first `in`.
fn filing(query: &CompiledQuery) -> Filing {
    let conjuncts = query
        .filter
        .as_ref()
        .map(|f| f.conjuncts())
        .unwrap_or_default();
    let pick = |want: Op| conjuncts.iter().find(|(_, op, _)| *op == want);
    match (pick(Op::Eq), pick(Op::In)) {
        (Some((field, _, value)), _) => Filing::Indexed((*field).clone(), vec![encode_key(value)]),
        (None, Some((field, _, Value::Array(values)))) => {
            Filing::Indexed((*field).clone(), values.iter().map(encode_key).collect())
        }
        _ => Filing::Unindexed,
    }
}

impl<K: Copy + Ord + Hash> ListenerIndex<K> {
    /// Files listener `key` with its query (replacing any earlier filing of `key`).
    pub fn insert(&mut self, key: K, query: &CompiledQuery) {
        self.remove(key);
        let filing = filing(query);
        match &filing {
            Filing::Indexed(field, values) => {
                let slots = self.by_field.entry(field.clone()).or_default();
                for value in values {
                    slots.entry(value.clone()).or_default().insert(key);
                }
            }
            Filing::Unindexed => {
                self.unindexed.insert(key);
            }
        }
        self.filings.insert(key, filing);
    }

    /// Forgets listener `key`.
    pub fn remove(&mut self, key: K) {
        match self.filings.remove(&key) {
            Some(Filing::Indexed(field, values)) => {
                let Some(slots) = self.by_field.get_mut(&field) else {
                    return;
                };
                for value in values {
                    if let Some(keys) = slots.get_mut(&value) {
                        keys.remove(&key);
                        if keys.is_empty() {
                            slots.remove(&value);
                        }
                    }
                }
                if slots.is_empty() {
                    self.by_field.remove(&field);
                }
            }
            Some(Filing::Unindexed) => {
                self.unindexed.remove(&key);
            }
            None => {}
        }
    }

    /// How many listeners are filed.
    pub fn len(&self) -> usize {
        self.filings.len()
    }

    /// True when no listener is filed.
    pub fn is_empty(&self) -> bool {
        self.filings.is_empty()
    }

    /// Every listener the change of document `id` from `old` to `new` can affect.
    /// It may hold listeners the change does not affect; it never misses one.
    pub fn candidates(
        &self,
        id: &str,
        old: Option<&Map<String, Value>>,
        new: Option<&Map<String, Value>>,
    ) -> BTreeSet<K> {
        let mut out = self.unindexed.clone();
        for (field, slots) in &self.by_field {
            for data in [old, new].into_iter().flatten() {
                let Some(value) = field_value(field, id, data) else {
                    continue;
                };
                if let Some(keys) = slots.get(&encode_key(&value)) {
                    out.extend(keys);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coll(path: &str) -> CollectionPath {
        CollectionPath::parse(path).unwrap()
    }
    use blaze_protocol::Limits;
    use blaze_protocol::{CollectionPath, FieldFilter, Filter, Query};
    use proptest::prelude::*;
    use serde_json::json;

    fn scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            (0i64..3).prop_map(Value::from),
            Just(json!(1.0)),
            Just(json!("d1")),
            Just(Value::Null),
            Just(json!([1]))
        ]
    }

    fn leaf() -> impl Strategy<Value = Filter> {
        let field = prop::sample::select(vec!["a", "b.c", "__name__"]);
        let op = prop::sample::select(vec![Op::Eq, Op::In, Op::Ne, Op::Gt, Op::ArrayContains]);
        (field, op, scalar(), prop::collection::vec(scalar(), 1..3)).prop_map(
            |(field, op, v, list)| {
                let fix = |v: Value| if field == "__name__" { json!("d1") } else { v };
                let op = if field == "__name__" && op == Op::ArrayContains {
                    Op::Eq
                } else {
                    op
                };
                let value = if op == Op::In {
                    Value::Array(list.into_iter().map(fix).collect())
                } else {
                    fix(v)
                };
                let value = if op == Op::Gt && value.is_null() {
                    json!(0)
                } else {
                    value
                };
                Filter::Field(FieldFilter {
                    field: field.into(),
                    op,
                    value,
                })
            },
        )
    }

    fn filter() -> impl Strategy<Value = Option<Filter>> {
        let tree = leaf().prop_recursive(2, 6, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 1..3).prop_map(|and| Filter::And { and }),
                prop::collection::vec(inner, 1..3).prop_map(|or| Filter::Or { or }),
            ]
        });
        prop::option::of(tree)
    }

    fn doc() -> impl Strategy<Value = Option<Map<String, Value>>> {
        prop::option::of(
            (prop::option::of(scalar()), prop::option::of(scalar())).prop_map(|(a, c)| {
                let mut m = Map::new();
                a.map(|v| m.insert("a".into(), v));
                c.map(|v| m.insert("b".into(), json!({"c": v})));
                m
            }),
        )
    }

    proptest! {
        #[test]
        fn never_misses_an_affected_listener(filters in prop::collection::vec(filter(), 1..12), removed in prop::collection::vec(any::<bool>(), 12), id in prop::sample::select(vec!["d1", "d2"]), old in doc(), new in doc()) {
            let mut index = ListenerIndex::default();
            let mut live = Vec::new();
            for (key, filter) in filters.into_iter().enumerate() {
                let mut q = Query::all(coll("c"));
                q.filter = filter;
                let q = CompiledQuery::compile(&q, &Limits::default()).unwrap();
                index.insert(key, &q);
                if removed[key] {
                    index.remove(key);
                } else {
                    live.push((key, q));
                }
            }
            prop_assert_eq!(index.len(), live.len());
            let candidates = index.candidates(id, old.as_ref(), new.as_ref());
            let matches = |q: &CompiledQuery, d: &Option<Map<String, Value>>| d.as_ref().is_some_and(|d| q.filter.as_ref().is_none_or(|f| f.matches(id, d)));
            for (key, q) in &live {
                if matches(q, &old) || matches(q, &new) {
                    prop_assert!(candidates.contains(key), "listener {} missed", key);
                }
            }
            prop_assert!(candidates.iter().all(|k| live.iter().any(|(l, _)| l == k)), "a removed listener is still filed");
        }
    }

    #[test]
    fn a_room_write_finds_only_that_rooms_listeners() {
        let mut index = ListenerIndex::default();
        for room in 0..1000 {
            let mut q = Query::all(coll("messages"));
            q.filter = Some(Filter::Field(FieldFilter {
                field: "roomId".into(),
                op: Op::Eq,
                value: json!(format!("r{room}")),
            }));
            index.insert(
                room,
                &CompiledQuery::compile(&q, &Limits::default()).unwrap(),
            );
        }
        let new = json!({"roomId": "r7", "text": "hi"});
        assert_eq!(
            index.candidates("m1", None, new.as_object()),
            BTreeSet::from([7])
        );
    }
}
