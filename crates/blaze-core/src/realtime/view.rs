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

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use blaze_json::diff::diff;
use blaze_json::order::compare_values;
use blaze_protocol::{Change, CollectionPath, Cursor, Direction};
use serde_json::Value;

use crate::error::Error;
use crate::query::{run_query, select, CompiledQuery, HeldBound, Limit, Position};
use crate::realtime::bodies::Bodies;
use crate::store::{CommitRecord, Storage, StoredDoc};

/// A listener's current results for one query: shared document bodies, in
/// query order.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryView {
    query: CompiledQuery,
    docs: Vec<Arc<StoredDoc>>,
    /// The estimated bytes of the results' bodies, each counted in full.
    body_bytes: usize,
}

impl QueryView {
    /// Runs `query` for the first snapshot, its documents interned in
    /// `bodies`; past `bound` it stops with the bound's code.
    pub(crate) fn open<S: Storage>(
        storage: &S,
        query: CompiledQuery,
        bodies: &mut Bodies,
        bound: Option<HeldBound>,
    ) -> Result<Self, Error> {
        let found = run_query(storage, &query, bound)?;
        // Collected into a new vector of its own size (collecting in place
        // would keep the documents' larger buffer).
        let mut docs = Vec::with_capacity(found.len());
        docs.extend(
            found
                .into_iter()
                .map(|d| bodies.intern(&query.collection, d)),
        );
        let body_bytes = docs
            .iter()
            .map(|d| bodies.size_of(&query.collection, d))
            .sum();
        Ok(Self {
            query,
            docs,
            body_bytes,
        })
    }

    /// The estimated bytes of the bodies of its results (each counted in
    /// full, though shared with other views).
    pub fn body_bytes(&self) -> usize {
        self.body_bytes
    }

    /// The bytes of its result list (one shared pointer per result).
    pub fn id_bytes(&self) -> usize {
        self.docs.capacity() * std::mem::size_of::<Arc<StoredDoc>>()
    }

    /// The current results, in query order.
    pub fn docs(&self) -> &[Arc<StoredDoc>] {
        &self.docs
    }

    /// The query.
    pub fn query(&self) -> &CompiledQuery {
        &self.query
    }

    /// Brings the view up to date after `record` was committed to `storage`
    /// (the view must have seen every earlier commit); returns its changes
    /// (empty when the commit did not affect it).
    ///
    /// The view is maintained from the commit's written documents: each
    /// one's state before is found in the results by binary search on its
    /// position, and its state after (a body shared through `bodies`) is
    /// inserted at its position. A full `limit` window only takes documents
    /// up to its old edge; when documents left it, just enough documents
    /// past the new edge are read from `storage` to fill it again.
    pub fn refresh<S: Storage>(
        &mut self,
        storage: &S,
        record: &CommitRecord,
        bodies: &mut Bodies,
    ) -> Result<Vec<Change>, Error> {
        let q = &self.query;
        let full = q.limit.is_some_and(|l| self.docs.len() >= window(l));
        // The old window's far edge: a full window knows nothing past it.
        let edge = match q.limit {
            Some(Limit::First(_)) if full => self.docs.last().map(|d| (&**d, Ordering::Greater)),
            Some(Limit::Last(_)) if full => self.docs.first().map(|d| (&**d, Ordering::Less)),
            _ => None,
        };
        // Old indexes of the written documents that were results, and the
        // written documents that are results now with their old-list
        // insertion points.
        let mut leaving = Vec::new();
        let mut entering = Vec::new();
        // A document past a full window's edge is not in it: no search.
        let within = |d: &StoredDoc| edge.is_none_or(|(e, past)| order(q, d, e) != past);
        for write in &record.docs {
            let mut was = None;
            if let Some(d) = write.before.as_ref().filter(|d| qualifies(q, d)) {
                if within(d) {
                    if let Ok(i) = self.docs.binary_search_by(|r| order(q, r, d)) {
                        leaving.push(i);
                        was = Some((i, d));
                    }
                }
            }
            if let Some(doc) = write.after.as_ref().filter(|d| qualifies(q, d)) {
                if within(doc) {
                    // A write that keeps its position goes back where it was.
                    let i = match was {
                        Some((i, d)) if order(q, d, doc).is_eq() => i,
                        _ => self
                            .docs
                            .binary_search_by(|r| order(q, r, doc))
                            .unwrap_or_else(|i| i),
                    };
                    entering.push((i, doc));
                }
            }
        }
        if leaving.is_empty() && entering.is_empty() {
            return Ok(Vec::new());
        }
        // The span of the old list the commit changes: from the first
        // touched index to the last, or to the end when the window's size
        // changes (from the start for a `limit_to_last` window).
        let touched = leaving
            .iter()
            .map(|&i| (i, i + 1))
            .chain(entering.iter().map(|(i, _)| (*i, *i)));
        let (mut lo, mut hi) =
            touched.fold((usize::MAX, 0), |(lo, hi), (a, b)| (lo.min(a), hi.max(b)));
        let len = self.docs.len() - leaving.len() + entering.len();
        let resized = q
            .limit
            .is_some_and(|l| len > window(l) || (full && len < window(l)));
        if resized {
            hi = self.docs.len();
            if let Some(Limit::Last(_)) = q.limit {
                lo = 0;
            }
        }
        let mut span = self.docs[lo..hi].to_vec();
        leaving.sort_unstable();
        for i in leaving.into_iter().rev() {
            span.remove(i - lo);
        }
        for (_, doc) in entering {
            let i = span
                .binary_search_by(|r| order(q, r, doc))
                .unwrap_or_else(|i| i);
            span.insert(i, bodies.intern_ref(&q.collection, doc));
        }
        // Only a resized window's span reaches its end (both ends for
        // `limit_to_last`), so `lo + span.len()` is then the new length.
        match q.limit.filter(|_| resized) {
            Some(Limit::First(n)) if lo + span.len() > n => span.truncate(n - lo),
            Some(Limit::Last(n)) if span.len() > n => {
                span.drain(..span.len() - n);
            }
            Some(limit) if lo + span.len() < window(limit) => {
                let missing = window(limit) - lo - span.len();
                let beside = match limit {
                    Limit::First(_) => span.last().or(lo.checked_sub(1).map(|i| &self.docs[i])),
                    Limit::Last(_) => span.first(),
                };
                let refill = refill_query(q, limit, missing, beside.map(|d| &**d));
                let more = run_query(storage, &refill, None)?
                    .into_iter()
                    .map(|d| bodies.intern(&q.collection, d));
                match limit {
                    Limit::First(_) => span.extend(more),
                    Limit::Last(_) => {
                        span.splice(0..0, more);
                    }
                }
            }
            _ => {}
        }
        // The patch of a document written by this commit is made once and
        // shared by every view it changes.
        let mut patch =
            |a: &StoredDoc, b: &StoredDoc| bodies.patch(&q.collection, record.seq, a, b);
        let mut changes = diff_with(&q.collection, &self.docs[lo..hi], &span, &mut patch);
        shift(&mut changes, lo);
        let size = |docs: &[Arc<StoredDoc>]| -> usize {
            docs.iter().map(|d| bodies.size_of(&q.collection, d)).sum()
        };
        self.body_bytes = self.body_bytes + size(&span) - size(&self.docs[lo..hi]);
        self.docs.splice(lo..hi, span);
        Ok(changes)
    }
}

/// The size of a limit window.
fn window(limit: Limit) -> usize {
    match limit {
        Limit::First(n) | Limit::Last(n) => n,
    }
}

/// The position of a document the view holds (it has every `order_by` field).
fn at(q: &CompiledQuery, doc: &StoredDoc) -> Position {
    q.position(&doc.id, &doc.data)
        .expect("a result has every order_by field")
}

/// Whether the document is a result of `q` ignoring the limit.
fn qualifies(q: &CompiledQuery, doc: &StoredDoc) -> bool {
    let has_order = q
        .order
        .iter()
        .all(|(field, _)| field.is_document_id() || field.get(&doc.data).is_some());
    if !has_order
        || !q
            .filter
            .as_ref()
            .is_none_or(|f| f.matches(&doc.id, &doc.data))
    {
        return false;
    }
    if q.start.is_none() && q.end.is_none() {
        return true;
    }
    q.position(&doc.id, &doc.data)
        .is_some_and(|p| q.after_start(&p) && q.before_end(&p))
}

/// Compares two documents that have every `order_by` field in query order,
/// without copying their values.
fn order(q: &CompiledQuery, a: &StoredDoc, b: &StoredDoc) -> Ordering {
    let directed = |o: Ordering, direction: Direction| match direction {
        Direction::Asc => o,
        Direction::Desc => o.reverse(),
    };
    for (field, direction) in &q.order {
        let o = if field.is_document_id() {
            a.id.as_bytes().cmp(b.id.as_bytes())
        } else {
            match (field.get(&a.data), field.get(&b.data)) {
                (Some(va), Some(vb)) => compare_values(va, vb),
                _ => unreachable!("a result has every order_by field"),
            }
        };
        let o = directed(o, *direction);
        if o.is_ne() {
            return o;
        }
    }
    directed(a.id.as_bytes().cmp(b.id.as_bytes()), q.id_direction)
}

/// The query reading the `missing` documents a `limit` window lacks: those
/// past `edge`, the last document still in it (the first, for
/// `limit_to_last`; `None` when none is left).
fn refill_query(
    q: &CompiledQuery,
    limit: Limit,
    missing: usize,
    edge: Option<&StoredDoc>,
) -> CompiledQuery {
    let beside = |doc: &StoredDoc| {
        let p = at(q, doc);
        let mut values = p.values;
        values.push(Value::String(p.id));
        Cursor {
            values,
            inclusive: false,
        }
    };
    let mut refill = q.clone();
    match limit {
        Limit::First(_) => {
            refill.limit = Some(Limit::First(missing));
            if let Some(last) = edge {
                refill.start = Some(beside(last));
            }
        }
        Limit::Last(_) => {
            refill.limit = Some(Limit::Last(missing));
            if let Some(first) = edge {
                refill.end = Some(beside(first));
            }
        }
    }
    refill
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
/// cut again. Past `bound`, the query run now stops with the bound's code.
pub(crate) fn results_at<S: Storage>(
    storage: &S,
    query: &CompiledQuery,
    log: &[CommitRecord],
    bound: Option<HeldBound>,
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
    let untouched = run_query(storage, &widened, bound)?
        .into_iter()
        .filter(|d| !then.contains_key(d.id.as_str()));
    let touched = then.values().flatten().map(|d| (*d).clone());
    Ok(select(query, untouched.chain(touched)))
}

/// The changes (in wire form) that turn the result list `old` into `new`,
/// both of documents of `collection`.
///
/// Simulated on the list as the changes so far leave it: after the removals,
/// step k has placed `new[..k]` in front of the kept old documents not yet
/// placed, so a kept document's index is k plus the number of unplaced ones
/// ahead of it (a Fenwick tree over the kept documents counts those), and the
/// whole diff costs O(n log n). A common prefix and suffix of the same
/// bodies (shared views' bodies compared by address) change nothing, so only
/// the part between them is diffed, its indexes shifted by the prefix.
pub fn diff_results<A: Borrow<StoredDoc>, B: Borrow<StoredDoc>>(
    collection: &CollectionPath,
    old: &[A],
    new: &[B],
) -> Vec<Change> {
    diff_with(collection, old, new, &mut |a, b| diff(&a.data, &b.data))
}

/// A document's JSON Patch from one state to another.
type PatchOf<'p> = dyn FnMut(&StoredDoc, &StoredDoc) -> Vec<Value> + 'p;

/// [`diff_results`], its patches made by `patch`.
fn diff_with<A: Borrow<StoredDoc>, B: Borrow<StoredDoc>>(
    collection: &CollectionPath,
    old: &[A],
    new: &[B],
    patch: &mut PatchOf<'_>,
) -> Vec<Change> {
    let same = |a: &A, b: &B| std::ptr::eq(a.borrow(), b.borrow());
    let prefix = old.iter().zip(new).take_while(|(a, b)| same(a, b)).count();
    let (old, new) = (&old[prefix..], &new[prefix..]);
    let suffix = old
        .iter()
        .rev()
        .zip(new.iter().rev())
        .take_while(|(a, b)| same(a, b))
        .count();
    let (old, new) = (&old[..old.len() - suffix], &new[..new.len() - suffix]);
    let mut changes = diff_middle(collection, old, new, patch);
    shift(&mut changes, prefix);
    changes
}

/// The change of a document kept from `before` to `after` (the same bodies
/// have no patch).
fn modified(
    collection: &CollectionPath,
    before: &StoredDoc,
    after: &StoredDoc,
    old_index: usize,
    new_index: usize,
    patch: &mut PatchOf<'_>,
) -> Change {
    let patch = if std::ptr::eq(before, after) {
        Vec::new()
    } else {
        patch(before, after)
    };
    Change::Modified {
        path: format!("{collection}/{}", after.id),
        patch,
        version: after.version,
        create_time: after.create_time,
        update_time: after.update_time,
        old_index,
        new_index,
    }
}

/// Shifts the indexes of `changes` by `by`: the changes of a part of a list
/// that starts at index `by`, as changes of the whole list.
fn shift(changes: &mut [Change], by: usize) {
    if by == 0 {
        return;
    }
    for change in changes {
        match change {
            Change::Removed { old_index, .. } => *old_index += by,
            Change::Added { new_index, .. } => *new_index += by,
            Change::Modified {
                old_index,
                new_index,
                ..
            } => {
                *old_index += by;
                *new_index += by;
            }
        }
    }
}

/// [`diff_results`] without the trimming.
fn diff_middle<A: Borrow<StoredDoc>, B: Borrow<StoredDoc>>(
    collection: &CollectionPath,
    old: &[A],
    new: &[B],
    patch: &mut PatchOf<'_>,
) -> Vec<Change> {
    let same_ids = old.len() == new.len()
        && old
            .iter()
            .zip(new)
            .all(|(a, b)| a.borrow().id == b.borrow().id);
    if same_ids {
        // The common case of documents modified in place: each keeps its index.
        return old
            .iter()
            .map(Borrow::borrow)
            .zip(new.iter().map(Borrow::borrow))
            .enumerate()
            .filter(|(_, (a, b))| a.version != b.version)
            .map(|(i, (a, b))| modified(collection, a, b, i, i, patch))
            .collect();
    }
    let in_new: HashSet<&str> = new.iter().map(|d| d.borrow().id.as_str()).collect();
    let mut changes = Vec::new();
    let mut kept: Vec<&StoredDoc> = Vec::with_capacity(old.len());
    for doc in old.iter().map(Borrow::borrow) {
        if in_new.contains(doc.id.as_str()) {
            kept.push(doc);
        } else {
            changes.push(Change::Removed {
                path: format!("{collection}/{}", doc.id),
                old_index: kept.len(),
            });
        }
    }
    let rank: HashMap<&str, usize> = kept
        .iter()
        .enumerate()
        .map(|(i, d)| (d.id.as_str(), i))
        .collect();
    let mut unplaced = Unplaced::new(kept.len());
    for (new_index, doc) in new.iter().map(Borrow::borrow).enumerate() {
        match rank.get(doc.id.as_str()) {
            Some(&k) => {
                let before = kept[k];
                let old_index = new_index + unplaced.before(k);
                unplaced.place(k);
                if before.version != doc.version || old_index != new_index {
                    changes.push(modified(
                        collection, before, doc, old_index, new_index, patch,
                    ));
                }
            }
            None => changes.push(Change::Added {
                doc: doc.snapshot(collection),
                new_index,
            }),
        }
    }
    changes
}

/// Which of n kept documents are not placed yet: a Fenwick tree of ones.
struct Unplaced(Vec<usize>);

impl Unplaced {
    fn new(n: usize) -> Self {
        let mut tree = vec![0; n + 1];
        for i in 1..=n {
            tree[i] += 1;
            let parent = i + (i & i.wrapping_neg());
            if parent <= n {
                tree[parent] += tree[i];
            }
        }
        Self(tree)
    }

    /// How many of the documents before `k` are unplaced.
    fn before(&self, k: usize) -> usize {
        let mut i = k;
        let mut sum = 0;
        while i > 0 {
            sum += self.0[i];
            i -= i & i.wrapping_neg();
        }
        sum
    }

    /// Marks document `k` placed.
    fn place(&mut self, k: usize) {
        let mut i = k + 1;
        while i < self.0.len() {
            self.0[i] -= 1;
            i += i & i.wrapping_neg();
        }
    }
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
    fn snapshots<D: Borrow<StoredDoc>>(docs: &[D]) -> Vec<DocSnapshot> {
        let c = CollectionPath::parse("c").unwrap();
        docs.iter().map(|d| d.borrow().snapshot(&c)).collect()
    }

    /// The documents of a view, owned.
    fn owned(docs: &[Arc<StoredDoc>]) -> Vec<StoredDoc> {
        docs.iter().map(|d| (**d).clone()).collect()
    }

    /// The list `old` with `changes` applied (spec 10.4.3, `blaze_json::changes`).
    fn replay(old: &[Arc<StoredDoc>], changes: &[Change]) -> Vec<DocSnapshot> {
        let mut list = snapshots(old);
        apply_changes(&mut list, changes).expect("the changes fit the old results");
        list
    }

    /// The changes between two result lists as the first implementation
    /// computed them (quadratic, by simulation on the list): the incremental
    /// views must give exactly these.
    fn reference_diff(old: &[StoredDoc], new: &[StoredDoc]) -> Vec<Change> {
        let collection = coll("c");
        let kept: HashSet<&str> = new.iter().map(|d| d.id.as_str()).collect();
        let mut changes = Vec::new();
        let mut list: Vec<&StoredDoc> = Vec::new();
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
                    doc: doc.snapshot(&collection),
                    new_index,
                }),
            }
            list.insert(new_index, doc);
        }
        changes
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
        // A cursor: which one (start_at, start_after, end_at, end_before) and its value.
        let cursor = prop::option::of((0u8..4, 0i64..8));
        (filter, order, limit, cursor).prop_map(|(filter, order, limit, cursor)| {
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
            if let Some((which, v)) = cursor {
                // On the order_by key's value, or on the id when there is none.
                let value = match order {
                    Some(_) => json!(v % 3),
                    None => json!(format!("d{v}")),
                };
                let slot = match which {
                    0 => &mut q.start_at,
                    1 => &mut q.start_after,
                    2 => &mut q.end_at,
                    _ => &mut q.end_before,
                };
                *slot = Some(vec![value]);
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
        fn views_follow_commits_and_their_changes_replay(q in query(), batches in prop::collection::vec(prop::collection::vec(write(), 1..6), 1..25)) {
            let mut db = Database::new(MemoryStorage::new(), Limits::default());
            let compiled = CompiledQuery::compile(&q, db.limits()).unwrap();
            let mut bodies = Bodies::new();
            let mut view = QueryView::open(db.storage(), compiled.clone(), &mut bodies, None).unwrap();
            for (t, batch) in batches.iter().enumerate() {
                let done = db.commit(&coll("c"), batch, t as u64).unwrap();
                let before = view.docs().to_vec();
                let changes = view.refresh(db.storage(), &done.record, &mut bodies).unwrap();
                let fresh = run_query(db.storage(), &compiled, None).unwrap();
                prop_assert_eq!(owned(view.docs()), fresh.clone());
                prop_assert_eq!(&changes, &reference_diff(&owned(&before), &fresh));
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
            let mut history = vec![run_query(db.storage(), &compiled, None).unwrap()];
            for (t, batch) in batches.iter().enumerate() {
                db.commit(&coll("c"), batch, t as u64).unwrap();
                history.push(run_query(db.storage(), &compiled, None).unwrap());
            }
            for (n, want) in history.iter().enumerate() {
                let log = db.log_since(&coll("c"), n as u64).unwrap().unwrap();
                prop_assert_eq!(&results_at(db.storage(), &compiled, &log, None).unwrap(), want, "at seq {}", n);
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
        let mut bodies = Bodies::new();
        let mut view = QueryView::open(
            db.storage(),
            CompiledQuery::compile(&q, db.limits()).unwrap(),
            &mut bodies,
            None,
        )
        .unwrap();
        let delete = Write {
            id: "a".into(),
            kind: WriteKind::Delete,
            precondition: Default::default(),
        };
        let done = db.commit(&coll("c"), &[delete], 1).unwrap();
        let changes = view
            .refresh(db.storage(), &done.record, &mut bodies)
            .unwrap();
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
