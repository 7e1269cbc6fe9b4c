//! A query listener's view: its ordered results, kept current commit by
//! commit, and the changes between two views in Firestore's `docChanges`
//! form.
//!
//! Applying a view's changes in order to the old result list gives the new
//! one: first every `Removed` (its `old_index` counts the list as left by the
//! changes before it), then, in new result order, every `Added` (inserted at
//! `new_index`) and `Modified` (taken from `old_index`, patched, put back at
//! `new_index`). A `limit` window is recomputed from the indexes, so a
//! document leaving it pulls the next one in, as Firestore does.

use std::collections::{HashMap, HashSet};

use blaze_json::diff::diff;
use blaze_protocol::{Change, CollectionPath};

use crate::error::Error;
use crate::query::{run_query, select, CompiledQuery, Limit};
use crate::store::{CommitRecord, Storage, StoredDoc};

/// A listener's current results for one query.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryView {
    query: CompiledQuery,
    docs: Vec<StoredDoc>,
}

impl QueryView {
    /// Runs `query` for the first snapshot.
    pub fn open<S: Storage>(storage: &S, query: CompiledQuery) -> Result<Self, Error> {
        let docs = run_query(storage, &query)?;
        Ok(Self { query, docs })
    }

    /// The current results, in query order.
    pub fn docs(&self) -> &[StoredDoc] {
        &self.docs
    }

    /// The query.
    pub fn query(&self) -> &CompiledQuery {
        &self.query
    }

    /// Whether a commit can change the results: it wrote a document that is
    /// in them, or one that matches the filter now.
    pub fn may_change(&self, record: &CommitRecord) -> bool {
        let held: HashSet<&str> = self.docs.iter().map(|d| d.id.as_str()).collect();
        record.docs.iter().any(|c| {
            held.contains(c.id.as_str())
                || c.after.as_ref().is_some_and(|d| {
                    self.query
                        .filter
                        .as_ref()
                        .is_none_or(|f| f.matches(&d.id, &d.data))
                })
        })
    }

    /// Brings the view up to date after `record` was committed to `storage`
    /// (the view must have seen every earlier commit); returns its changes
    /// (empty when the commit did not affect it).
    pub fn refresh<S: Storage>(
        &mut self,
        storage: &S,
        record: &CommitRecord,
    ) -> Result<Vec<Change>, Error> {
        if !self.may_change(record) {
            return Ok(Vec::new());
        }
        let new = match self.query.limit {
            // Without a limit the results are every matching document: those
            // the commit did not touch stay as they are, so the new results
            // come from the old ones and the written documents, with no read.
            None => {
                let written: HashSet<&str> = record.docs.iter().map(|c| c.id.as_str()).collect();
                let kept = self
                    .docs
                    .iter()
                    .filter(|d| !written.contains(d.id.as_str()))
                    .cloned();
                let after = record.docs.iter().filter_map(|c| c.after.clone());
                select(&self.query, kept.chain(after))
            }
            Some(_) => run_query(storage, &self.query)?,
        };
        let changes = diff_results(&self.query.collection, &self.docs, &new);
        self.docs = new;
        Ok(changes)
    }
}

/// The results `query` had at an earlier sequence number N, rebuilt from the
/// current state of `storage` and `log`: the change log entries after N,
/// oldest first (as `Database::log_since(N)` gives them).
///
/// Only documents the log touched can differ from their state at N, and at
/// most `touched` of them can rank ahead of an untouched result, so the query
/// run now with its limit widened by that count holds every untouched result
/// the window had at N. The touched documents' states at N (each one's
/// `before` in the first entry that touched it) are added, and the window is
/// cut again.
pub fn results_at<S: Storage>(
    storage: &S,
    query: &CompiledQuery,
    log: &[CommitRecord],
) -> Result<Vec<StoredDoc>, Error> {
    let mut then: HashMap<&str, Option<&StoredDoc>> = HashMap::new();
    for change in log.iter().flat_map(|r| &r.docs) {
        then.entry(change.id.as_str())
            .or_insert(change.before.as_ref());
    }
    let widened = CompiledQuery {
        limit: query.limit.map(|limit| match limit {
            Limit::First(n) => Limit::First(n.saturating_add(then.len())),
            Limit::Last(n) => Limit::Last(n.saturating_add(then.len())),
        }),
        ..query.clone()
    };
    let untouched = run_query(storage, &widened)?
        .into_iter()
        .filter(|d| !then.contains_key(d.id.as_str()));
    let touched = then.values().flatten().map(|d| (*d).clone());
    Ok(select(query, untouched.chain(touched)))
}

/// The changes (in wire form) that turn the result list `old` into `new`,
/// both of documents of `collection`.
pub fn diff_results(
    collection: &CollectionPath,
    old: &[StoredDoc],
    new: &[StoredDoc],
) -> Vec<Change> {
    let kept: HashSet<&str> = new.iter().map(|d| d.id.as_str()).collect();
    let mut changes = Vec::new();
    // The list as the changes so far have left it.
    let mut list: Vec<&StoredDoc> = Vec::with_capacity(old.len());
    for doc in old {
        if kept.contains(doc.id.as_str()) {
            list.push(doc);
        } else {
            changes.push(Change::Removed {
                path: format!("{collection}/{}", doc.id),
                old_index: list.len(),
            });
        }
    }
    for (new_index, doc) in new.iter().enumerate() {
        match list.iter().position(|d| d.id == doc.id) {
            Some(old_index) => {
                let before = list.remove(old_index);
                if before.version != doc.version || old_index != new_index {
                    changes.push(Change::Modified {
                        path: format!("{collection}/{}", doc.id),
                        patch: diff(&before.data, &doc.data),
                        version: doc.version,
                        create_time: doc.create_time,
                        update_time: doc.update_time,
                        old_index,
                        new_index,
                    });
                }
            }
            None => changes.push(Change::Added {
                doc: doc.snapshot(collection),
                new_index,
            }),
        }
        list.insert(new_index, doc);
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coll(path: &str) -> CollectionPath {
        CollectionPath::parse(path).unwrap()
    }
    use crate::{Database, Limits, MemoryStorage};
    use blaze_json::changes::apply_changes;
    use blaze_protocol::{
        Direction, DocSnapshot, FieldFilter, Filter, Op, OrderBy, Query, Write, WriteKind,
    };
    use proptest::prelude::*;
    use serde_json::json;
    use serde_json::Value;

    /// The wire form of a result list.
    fn snapshots(docs: &[StoredDoc]) -> Vec<DocSnapshot> {
        let c = CollectionPath::parse("c").unwrap();
        docs.iter().map(|d| d.snapshot(&c)).collect()
    }

    /// The list `old` with `changes` applied (spec 10.4.3, `blaze_json::changes`).
    fn replay(old: &[StoredDoc], changes: &[Change]) -> Vec<DocSnapshot> {
        let mut list = snapshots(old);
        apply_changes(&mut list, changes).expect("the changes fit the old results");
        list
    }

    fn query() -> impl Strategy<Value = Query> {
        let filter =
            prop::option::of((prop::sample::select(vec![Op::Eq, Op::Gt, Op::Ne]), 0i64..3))
                .prop_map(|f| {
                    f.map(|(op, v)| {
                        Filter::Field(FieldFilter {
                            field: "a".into(),
                            op,
                            value: json!(v),
                        })
                    })
                });
        let order = prop::sample::select(vec![
            None,
            Some(("a", false)),
            Some(("b", true)),
            Some(("b", false)),
        ]);
        let limit = prop::option::of((1u64..4, any::<bool>()));
        (filter, order, limit).prop_map(|(filter, order, limit)| {
            let mut q = Query::all(coll("c"));
            q.filter = filter;
            if let Some((field, desc)) = order {
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
            match limit {
                Some((n, false)) => q.limit = Some(n),
                Some((n, true)) => q.limit_to_last = Some(n),
                None => {}
            }
            q
        })
    }

    fn write() -> impl Strategy<Value = Write> {
        let data = (
            prop::option::of(0i64..3),
            prop::option::of(0i64..3),
            0i64..2,
        )
            .prop_map(|(a, b, x)| {
                let mut m = serde_json::Map::new();
                a.map(|v| m.insert("a".into(), json!(v)));
                b.map(|v| m.insert("b".into(), json!(v)));
                m.insert("x".into(), json!(x));
                Value::Object(m)
            });
        let kind = prop_oneof![3 => data.prop_map(|data| WriteKind::Set { data }), 1 => Just(WriteKind::Delete)];
        (0u8..8, kind).prop_map(|(n, kind)| Write {
            id: format!("d{n}"),
            kind,
            precondition: Default::default(),
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn views_follow_commits_and_their_changes_replay(q in query(), batches in prop::collection::vec(prop::collection::vec(write(), 1..3), 1..25)) {
            let mut db = Database::new(MemoryStorage::new(), Limits::default());
            let compiled = CompiledQuery::compile(&q, db.limits()).unwrap();
            let mut view = QueryView::open(db.storage(), compiled.clone()).unwrap();
            for (t, batch) in batches.iter().enumerate() {
                let done = db.commit(&coll("c"), batch, t as u64).unwrap();
                let before = view.docs().to_vec();
                let changes = view.refresh(db.storage(), &done.record).unwrap();
                let fresh = run_query(db.storage(), &compiled).unwrap();
                prop_assert_eq!(view.docs(), &fresh[..]);
                prop_assert_eq!(replay(&before, &changes), snapshots(&fresh));
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn results_at_an_earlier_seq_are_rebuilt_exactly(q in query(), batches in prop::collection::vec(prop::collection::vec(write(), 1..3), 1..25)) {
            let mut db = Database::new(MemoryStorage::new(), Limits::default());
            let compiled = CompiledQuery::compile(&q, db.limits()).unwrap();
            let mut history = vec![run_query(db.storage(), &compiled).unwrap()];
            for (t, batch) in batches.iter().enumerate() {
                db.commit(&coll("c"), batch, t as u64).unwrap();
                history.push(run_query(db.storage(), &compiled).unwrap());
            }
            for (n, want) in history.iter().enumerate() {
                let log = db.log_since(&coll("c"), n as u64).unwrap().unwrap();
                prop_assert_eq!(&results_at(db.storage(), &compiled, &log).unwrap(), want, "at seq {}", n);
            }
        }
    }

    #[test]
    fn a_document_leaving_a_limit_window_pulls_the_next_one_in() {
        let mut db = Database::new(MemoryStorage::new(), Limits::default());
        let set = |id: &str, n: i64| Write {
            id: id.into(),
            kind: WriteKind::Set {
                data: json!({ "n": n }),
            },
            precondition: Default::default(),
        };
        db.commit(&coll("c"), &[set("a", 1), set("b", 2), set("c", 3)], 0)
            .unwrap();
        let mut q = Query::all(coll("c"));
        q.order_by.push(OrderBy {
            field: "n".into(),
            direction: Direction::Asc,
        });
        q.limit = Some(2);
        let mut view = QueryView::open(
            db.storage(),
            CompiledQuery::compile(&q, db.limits()).unwrap(),
        )
        .unwrap();
        let delete = Write {
            id: "a".into(),
            kind: WriteKind::Delete,
            precondition: Default::default(),
        };
        let done = db.commit(&coll("c"), &[delete], 1).unwrap();
        let changes = view.refresh(db.storage(), &done.record).unwrap();
        let summary: Vec<(String, &str, usize)> = changes
            .iter()
            .map(|c| match c {
                Change::Removed { path, old_index } => (path.clone(), "removed", *old_index),
                Change::Added { doc, new_index } => (doc.path.clone(), "added", *new_index),
                Change::Modified {
                    path, new_index, ..
                } => (path.clone(), "modified", *new_index),
            })
            .collect();
        assert_eq!(
            summary,
            [("c/a".into(), "removed", 0), ("c/c".into(), "added", 1)]
        );
    }
}
