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

use serde_json::Value;

use crate::query::{run_query, select};
use crate::storage::{ChangeRecord, Storage, StoredDoc};
use crate::{diff, CompiledQuery, Error, Limit};

/// One entry of a change event.
#[derive(Clone, Debug, PartialEq)]
pub enum ViewChange {
    /// A document entered the results at `new_index`.
    Added {
        /// The document.
        doc: StoredDoc,
        /// Its index in the new results.
        new_index: usize,
    },
    /// A document in the results was written (and may have moved).
    Modified {
        /// The document id.
        id: String,
        /// The JSON Patch from its previous data to its new data.
        patch: Vec<Value>,
        /// Its new version.
        version: u64,
        /// Its creation time (new if it was deleted and created again in one commit).
        create_time: u64,
        /// Its new update time.
        update_time: u64,
        /// Its index before this change.
        old_index: usize,
        /// Its index after this change.
        new_index: usize,
    },
    /// A document left the results (deleted, or no longer matching or in the window).
    Removed {
        /// The document id.
        id: String,
        /// Its index before this change.
        old_index: usize,
    },
}

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
    pub fn may_change(&self, record: &ChangeRecord) -> bool {
        let held: HashSet<&str> = self.docs.iter().map(|d| d.id.as_str()).collect();
        record.changes.iter().any(|c| {
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
        record: &ChangeRecord,
    ) -> Result<Vec<ViewChange>, Error> {
        if !self.may_change(record) {
            return Ok(Vec::new());
        }
        let new = match self.query.limit {
            // Without a limit the results are every matching document: those
            // the commit did not touch stay as they are, so the new results
            // come from the old ones and the written documents, with no read.
            None => {
                let written: HashSet<&str> = record.changes.iter().map(|c| c.id.as_str()).collect();
                let kept = self
                    .docs
                    .iter()
                    .filter(|d| !written.contains(d.id.as_str()))
                    .cloned();
                let after = record.changes.iter().filter_map(|c| c.after.clone());
                select(&self.query, kept.chain(after))
            }
            Some(_) => run_query(storage, &self.query)?,
        };
        let changes = diff_results(&self.docs, &new);
        self.docs = new;
        Ok(changes)
    }
}

/// The results `query` had at an earlier sequence number N, rebuilt from the
/// current state of `storage` and `log`: the change log entries after N,
/// oldest first (as `Database::changes_since(N)` gives them).
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
    log: &[ChangeRecord],
) -> Result<Vec<StoredDoc>, Error> {
    let mut then: HashMap<&str, Option<&StoredDoc>> = HashMap::new();
    for change in log.iter().flat_map(|r| &r.changes) {
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

/// The changes that turn the result list `old` into `new`.
pub fn diff_results(old: &[StoredDoc], new: &[StoredDoc]) -> Vec<ViewChange> {
    let kept: HashSet<&str> = new.iter().map(|d| d.id.as_str()).collect();
    let mut changes = Vec::new();
    // The list as the changes so far have left it.
    let mut list: Vec<&StoredDoc> = Vec::with_capacity(old.len());
    for doc in old {
        if kept.contains(doc.id.as_str()) {
            list.push(doc);
        } else {
            changes.push(ViewChange::Removed {
                id: doc.id.clone(),
                old_index: list.len(),
            });
        }
    }
    for (new_index, doc) in new.iter().enumerate() {
        match list.iter().position(|d| d.id == doc.id) {
            Some(old_index) => {
                let before = list.remove(old_index);
                if before.version != doc.version || old_index != new_index {
                    changes.push(ViewChange::Modified {
                        id: doc.id.clone(),
                        patch: diff(&before.data, &doc.data),
                        version: doc.version,
                        create_time: doc.create_time,
                        update_time: doc.update_time,
                        old_index,
                        new_index,
                    });
                }
            }
            None => changes.push(ViewChange::Added {
                doc: doc.clone(),
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
    use crate::{apply_json_patch, Database, Limits, MemoryStorage};
    use blaze_protocol::{Direction, FieldFilter, Filter, Op, OrderBy, Query, Write, WriteKind};
    use proptest::prelude::*;
    use serde_json::json;

    /// Applies changes to a result list by the rules of the module doc.
    fn replay(old: &[StoredDoc], changes: &[ViewChange]) -> Vec<StoredDoc> {
        let mut list = old.to_vec();
        for change in changes {
            match change {
                ViewChange::Removed { id, old_index } => {
                    assert_eq!(&list.remove(*old_index).id, id);
                }
                ViewChange::Added { doc, new_index } => list.insert(*new_index, doc.clone()),
                ViewChange::Modified {
                    id,
                    patch,
                    version,
                    create_time,
                    update_time,
                    old_index,
                    new_index,
                } => {
                    let mut doc = list.remove(*old_index);
                    assert_eq!(&doc.id, id);
                    doc.data = apply_json_patch(
                        &doc.data,
                        &Value::Array(patch.clone()),
                        &Limits::default(),
                    )
                    .unwrap();
                    (doc.version, doc.create_time, doc.update_time) =
                        (*version, *create_time, *update_time);
                    list.insert(*new_index, doc);
                }
            }
        }
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
            let mut q = Query::all("c");
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
                let done = db.commit("c", batch, t as u64).unwrap();
                let before = view.docs().to_vec();
                let changes = view.refresh(db.storage(), &done.changes).unwrap();
                let fresh = run_query(db.storage(), &compiled).unwrap();
                prop_assert_eq!(view.docs(), &fresh[..]);
                prop_assert_eq!(replay(&before, &changes), fresh);
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
                db.commit("c", batch, t as u64).unwrap();
                history.push(run_query(db.storage(), &compiled).unwrap());
            }
            for (n, want) in history.iter().enumerate() {
                let log = db.changes_since("c", n as u64).unwrap().unwrap();
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
        db.commit("c", &[set("a", 1), set("b", 2), set("c", 3)], 0)
            .unwrap();
        let mut q = Query::all("c");
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
        let done = db.commit("c", &[delete], 1).unwrap();
        let changes = view.refresh(db.storage(), &done.changes).unwrap();
        let summary: Vec<(String, &str, usize)> = changes
            .iter()
            .map(|c| match c {
                ViewChange::Removed { id, old_index } => (id.clone(), "removed", *old_index),
                ViewChange::Added { doc, new_index } => (doc.id.clone(), "added", *new_index),
                ViewChange::Modified { id, new_index, .. } => (id.clone(), "modified", *new_index),
            })
            .collect();
        assert_eq!(
            summary,
            [("a".into(), "removed", 0), ("c".into(), "added", 1)]
        );
    }
}
