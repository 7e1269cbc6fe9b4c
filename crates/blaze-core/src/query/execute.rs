//! Running a compiled query against storage, from the indexes.
//!
//! Two kinds of plan race each other, one index entry per step each:
//! - the ordered scan walks the value index of the first `order_by` key (or
//!   the documents in id order) in result order, filters each document and
//!   stops once it has `limit` results or passes the end cursor;
//! - a candidate scan per indexable conjunct of the filter (`==`, `in`,
//!   `array-contains(-any)`, ranges, and `!=` / `not-in` as the value index
//!   around their operands) collects the ids that conjunct allows, then
//!   filters, sorts and limits them; an `or` whose every member has such a
//!   conjunct is one candidate scan over the union of their ranges.
//!
//! The first plan to finish answers, so a query costs at most (plans) times
//! its cheapest plan: O(log n + k) when a selective conjunct or a limit bounds
//! the work, whichever of the two it is.
//!
//! Index entries are bounded (`index::IndexBounds`): a cut key stands for
//! every value it starts, so the ordered scan sorts each run of equal keys
//! by the whole values, a range over a cut operand includes its ends, and a
//! membership lookup also reads the [`UNINDEXED`] markers. Every plan
//! re-checks the documents it finds, so results stay exact.

use std::collections::BTreeSet;
use std::ops::Bound;

use blaze_json::size::{object_len, serialized_len};
use blaze_protocol::{Direction, ErrorCode, Op};
use serde_json::{Map, Value};

use super::compile::{CompiledQuery, Limit};
use super::filter::CompiledFilter;
use super::position::Position;
use blaze_json::field_path::FieldPath;
use blaze_json::order::TypeClass;

use crate::error::{Error, Rejection};
use crate::index::{contains_index, value_index, IndexBounds, UNINDEXED};
use crate::store::{DocIter, EntryIter, KeyRange, Storage, StoredDoc};

/// How many bytes of documents (compact JSON) a query may hold while it
/// runs, and the code it is refused with past them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HeldBound {
    /// The most bytes held at once: the results, and the sort keys of the
    /// documents waiting to be ordered.
    pub(crate) bytes: usize,
    /// The refusal's code.
    pub(crate) code: ErrorCode,
}

/// What a running query holds, charged against its bound.
struct Held {
    bound: Option<HeldBound>,
    bytes: usize,
}

impl Held {
    /// Adds `size()` bytes, computed only under a bound (an unbounded
    /// query measures nothing); returns what was added.
    fn charge(&mut self, size: impl FnOnce() -> usize) -> Result<usize, Error> {
        let Some(bound) = self.bound else {
            return Ok(0);
        };
        let n = size();
        self.bytes = self.bytes.saturating_add(n);
        if self.bytes > bound.bytes {
            let msg = format!(
                "the query would hold more than {} bytes of documents: page it with a limit and cursors",
                bound.bytes
            );
            return Err(Rejection::new(bound.code, msg).into());
        }
        Ok(n)
    }

    fn release(&mut self, n: usize) {
        self.bytes = self.bytes.saturating_sub(n);
    }
}

/// What a query holds for one result document.
fn doc_bytes(doc: &StoredDoc) -> usize {
    doc.id.len() + object_len(&doc.data)
}

/// What a query holds for one sort key besides its id (ids are held anyway).
fn position_bytes(p: &Position) -> usize {
    p.values.iter().map(serialized_len).sum()
}

/// Whether a scan keeps the documents it finds or only counts them.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Keep {
    Docs,
    Count,
}

/// Runs `query` and returns its results in query order. Past `bound` (the
/// results, and the sort keys of documents found by an index lookup and
/// waiting to be ordered), it stops with the bound's code.
pub(crate) fn run_query<S: Storage>(
    storage: &S,
    query: &CompiledQuery,
    bound: Option<HeldBound>,
) -> Result<Vec<StoredDoc>, Error> {
    Ok(scan(storage, query, bound, Keep::Docs)?.0)
}

/// The number of results of `query`, found as [`run_query`] finds them but
/// holding no document.
pub(crate) fn count_by_scan<S: Storage>(storage: &S, query: &CompiledQuery) -> Result<u64, Error> {
    Ok(scan(storage, query, None, Keep::Count)?.1 as u64)
}

/// The results (when kept) and their number.
fn scan<S: Storage>(
    storage: &S,
    query: &CompiledQuery,
    bound: Option<HeldBound>,
    keep: Keep,
) -> Result<(Vec<StoredDoc>, usize), Error> {
    let mut ordered = OrderedScan::new(storage, query, bound, keep)?;
    let mut candidates = candidate_scans(storage, query)?;
    loop {
        if ordered.step()? {
            return Ok(ordered.finish());
        }
        for i in 0..candidates.len() {
            if candidates[i].step()? {
                let held = Held { bound, bytes: 0 };
                return candidates.swap_remove(i).finish(storage, query, held, keep);
            }
        }
    }
}

/// Whether the ordered scan runs in result order (`true`) or backwards, for `limit_to_last`.
fn forward(query: &CompiledQuery) -> bool {
    !matches!(query.limit, Some(Limit::Last(_)))
}

pub(crate) fn wanted(query: &CompiledQuery) -> Option<usize> {
    query.limit.map(|(Limit::First(n) | Limit::Last(n))| n)
}

enum Source<'a> {
    Docs(DocIter<'a>),
    Entries(EntryIter<'a>),
}

/// Where a document found in scan order goes.
enum Place {
    /// Before the start cursor: skipped.
    Skip,
    /// A result.
    Take,
    /// Past the end cursor: the scan is done.
    Done,
}

struct OrderedScan<'a, S> {
    storage: &'a S,
    query: &'a CompiledQuery,
    source: Source<'a>,
    forward: bool,
    grouped: bool,
    group_key: Option<Vec<u8>>,
    /// The sort keys of the documents sharing `group_key` that pass the
    /// filter; their documents are read again when they are placed.
    group: Vec<Position>,
    group_bytes: usize,
    keep: Keep,
    held: Held,
    results: Vec<StoredDoc>,
    found: usize,
}

impl<'a, S: Storage> OrderedScan<'a, S> {
    fn new(
        storage: &'a S,
        query: &'a CompiledQuery,
        bound: Option<HeldBound>,
        keep: Keep,
    ) -> Result<Self, Error> {
        let forward = forward(query);
        let seek_cursor = if forward { &query.start } else { &query.end };
        let seek = seek_cursor.as_ref().and_then(|c| c.values.first());
        let first = query.order.first().filter(|(f, _)| !f.is_document_id());
        let direction = query.order.first().map_or(query.id_direction, |(_, d)| *d);
        let reverse = (direction == Direction::Desc) == forward;
        let source = match first {
            Some((field, _)) => {
                let range = seek_range(seek.map(|v| query.index_bounds.key(v).0), reverse);
                Source::Entries(storage.scan_index(
                    &query.collection,
                    &value_index(field),
                    range,
                    reverse,
                )?)
            }
            None => {
                let range = seek_range(seek.and_then(Value::as_str), reverse);
                Source::Docs(storage.scan(&query.collection, range, reverse)?)
            }
        };
        Ok(Self {
            storage,
            query,
            source,
            forward,
            // Entries that share a key (one value, or values whose keys were
            // cut to the same bytes) are sorted by the whole order.
            grouped: first.is_some(),
            group_key: None,
            group: Vec::new(),
            group_bytes: 0,
            keep,
            held: Held { bound, bytes: 0 },
            results: Vec::new(),
            found: 0,
        })
    }

    /// Takes one entry; returns true once the scan is done.
    fn step(&mut self) -> Result<bool, Error> {
        match &mut self.source {
            Source::Docs(docs) => match docs.next().transpose()? {
                Some(doc) => self.consider(doc),
                None => Ok(true),
            },
            Source::Entries(entries) => match entries.next().transpose()? {
                Some((key, id)) => self.take_entry(key, id),
                None => {
                    self.flush_group()?;
                    Ok(true)
                }
            },
        }
    }

    /// The results in query order (when kept) and their number.
    fn finish(&mut self) -> (Vec<StoredDoc>, usize) {
        let mut results = std::mem::take(&mut self.results);
        if !self.forward {
            results.reverse();
        }
        (results, self.found)
    }

    fn take_entry(&mut self, key: Vec<u8>, id: String) -> Result<bool, Error> {
        let Some(doc) = self.storage.get(&self.query.collection, &id)? else {
            return Ok(false);
        };
        if !self.grouped {
            return self.consider(doc);
        }
        if self.group_key.as_ref() != Some(&key) {
            if self.flush_group()? {
                return Ok(true);
            }
            self.group_key = Some(key);
        }
        if let Some(position) = self.passes(&doc) {
            self.group_bytes += self.held.charge(|| position_bytes(&position))?;
            self.group.push(position);
        }
        Ok(false)
    }

    /// Sorts the documents that share one first-key value and places them in
    /// order; returns true once the scan is done.
    fn flush_group(&mut self) -> Result<bool, Error> {
        let mut group = std::mem::take(&mut self.group);
        self.held.release(std::mem::take(&mut self.group_bytes));
        group.sort_by(|a, b| {
            let o = self.query.compare(a, b);
            if self.forward {
                o
            } else {
                o.reverse()
            }
        });
        for p in group {
            match self.place(&p) {
                Place::Done => return Ok(true),
                Place::Skip => continue,
                Place::Take => {}
            }
            let doc = match self.keep {
                Keep::Count => None,
                Keep::Docs => match self.storage.get(&self.query.collection, &p.id)? {
                    Some(doc) => Some(doc),
                    // Read a moment ago in the same call: not gone.
                    None => continue,
                },
            };
            if self.take(doc)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The document's sort key, when it passes the filter and has one.
    fn passes(&self, doc: &StoredDoc) -> Option<Position> {
        let q = self.query;
        if !q
            .filter
            .as_ref()
            .is_none_or(|f| f.matches(&doc.id, &doc.data))
        {
            return None;
        }
        q.position(&doc.id, &doc.data)
    }

    /// Where the document at `p`, found in scan order, goes.
    fn place(&self, p: &Position) -> Place {
        let q = self.query;
        let (before_first, past_last) = if self.forward {
            (!q.after_start(p), !q.before_end(p))
        } else {
            (!q.before_end(p), !q.after_start(p))
        };
        if past_last {
            Place::Done
        } else if before_first {
            Place::Skip
        } else {
            Place::Take
        }
    }

    /// Adds a result (`None` when counting); returns true once the limit is reached.
    fn take(&mut self, doc: Option<StoredDoc>) -> Result<bool, Error> {
        if let Some(doc) = doc {
            self.held.charge(|| doc_bytes(&doc))?;
            self.results.push(doc);
        }
        self.found += 1;
        Ok(wanted(self.query).is_some_and(|n| self.found >= n))
    }

    /// Filters one document in scan order; returns true once the scan is done.
    fn consider(&mut self, doc: StoredDoc) -> Result<bool, Error> {
        let Some(p) = self.passes(&doc) else {
            return Ok(false);
        };
        match self.place(&p) {
            Place::Done => Ok(true),
            Place::Skip => Ok(false),
            Place::Take => self.take((self.keep == Keep::Docs).then_some(doc)),
        }
    }
}

/// The scan range that starts at `seek` (inclusive) in the scan's direction.
fn seek_range<K>(seek: Option<K>, reverse: bool) -> (Bound<K>, Bound<K>) {
    match (seek, reverse) {
        (None, _) => (Bound::Unbounded, Bound::Unbounded),
        (Some(k), false) => (Bound::Included(k), Bound::Unbounded),
        (Some(k), true) => (Bound::Unbounded, Bound::Included(k)),
    }
}

/// Ids allowed by one conjunct, gathered from index ranges.
struct CandidateScan<'a> {
    sources: Vec<EntryIter<'a>>,
    ids: BTreeSet<String>,
}

impl CandidateScan<'_> {
    /// Takes one entry; returns true once every source is exhausted.
    fn step(&mut self) -> Result<bool, Error> {
        while let Some(source) = self.sources.last_mut() {
            match source.next().transpose()? {
                Some((_, id)) => {
                    self.ids.insert(id);
                    return Ok(false);
                }
                None => {
                    self.sources.pop();
                }
            }
        }
        Ok(true)
    }

    /// Filters the candidates, keeping only their sort keys, orders and
    /// limits them; then reads the results (when kept) again.
    fn finish<S: Storage>(
        self,
        storage: &S,
        q: &CompiledQuery,
        mut held: Held,
        keep: Keep,
    ) -> Result<(Vec<StoredDoc>, usize), Error> {
        let mut hits = Vec::new();
        for id in self.ids {
            let Some(doc) = storage.get(&q.collection, &id)? else {
                continue;
            };
            if !q
                .filter
                .as_ref()
                .is_none_or(|f| f.matches(&doc.id, &doc.data))
            {
                continue;
            }
            let Some(p) = q.position(&doc.id, &doc.data) else {
                continue;
            };
            if q.after_start(&p) && q.before_end(&p) {
                held.charge(|| position_bytes(&p))?;
                hits.push(p);
            }
        }
        hits.sort_by(|a, b| q.compare(a, b));
        match q.limit {
            Some(Limit::First(n)) => hits.truncate(n),
            Some(Limit::Last(n)) => {
                hits.drain(..hits.len().saturating_sub(n));
            }
            None => {}
        }
        let found = hits.len();
        if keep == Keep::Count {
            return Ok((Vec::new(), found));
        }
        // The sort keys go as their documents come.
        held.release(held.bytes);
        let mut docs = Vec::with_capacity(found);
        for p in hits {
            // Read a moment ago in the same call: not gone.
            if let Some(doc) = storage.get(&q.collection, &p.id)? {
                held.charge(|| doc_bytes(&doc))?;
                docs.push(doc);
            }
        }
        Ok((docs, found))
    }
}

/// The results `q` gives from `docs` (each document once, in any order):
/// filtered, cut by the cursors, sorted and cut by the limit.
pub(crate) fn select(
    q: &CompiledQuery,
    docs: impl IntoIterator<Item = StoredDoc>,
) -> Vec<StoredDoc> {
    let mut hits: Vec<(Position, StoredDoc)> = docs
        .into_iter()
        .filter(|doc| {
            q.filter
                .as_ref()
                .is_none_or(|f| f.matches(&doc.id, &doc.data))
        })
        .filter_map(|doc| q.position(&doc.id, &doc.data).map(|p| (p, doc)))
        .filter(|(p, _)| q.after_start(p) && q.before_end(p))
        .collect();
    hits.sort_by(|(a, _), (b, _)| q.compare(a, b));
    let mut docs: Vec<StoredDoc> = hits.into_iter().map(|(_, d)| d).collect();
    match q.limit {
        Some(Limit::First(n)) => docs.truncate(n),
        Some(Limit::Last(n)) => {
            docs.drain(..docs.len().saturating_sub(n));
        }
        None => {}
    }
    docs
}

fn candidate_scans<'a, S: Storage>(
    storage: &'a S,
    q: &CompiledQuery,
) -> Result<Vec<CandidateScan<'a>>, Error> {
    let Some(filter) = &q.filter else {
        return Ok(Vec::new());
    };
    let mut scans = Vec::new();
    for ranges in covering_ranges(filter, q.index_bounds) {
        let sources = ranges
            .into_iter()
            .map(|(index, r)| storage.scan_index(&q.collection, &index, r, false))
            .collect::<Result<_, _>>()?;
        scans.push(CandidateScan {
            sources,
            ids: BTreeSet::new(),
        });
    }
    Ok(scans)
}

/// Sets of index ranges, each holding the id of every document that passes
/// `filter` (and maybe others, re-checked): one per indexable conjunct of an
/// `and`; for an `or`, one joining a set of each member (none when a member
/// has none), preferring a member's set of single keys.
fn covering_ranges(filter: &CompiledFilter, bounds: IndexBounds) -> Vec<Vec<(String, KeyRange)>> {
    match filter {
        CompiledFilter::Field { field, op, value } => conjunct_ranges(field, *op, value, bounds)
            .map(|c| c.ranges)
            .into_iter()
            .collect(),
        CompiledFilter::And(all) => all
            .iter()
            .flat_map(|f| covering_ranges(f, bounds))
            .collect(),
        CompiledFilter::Or(any) => {
            let mut joined = Vec::new();
            for member in any {
                let best = covering_ranges(member, bounds)
                    .into_iter()
                    .min_by_key(|set| (!set.iter().all(|(_, r)| is_point(r)), set.len()));
                match best {
                    Some(set) => joined.extend(set),
                    None => return Vec::new(),
                }
            }
            vec![joined]
        }
    }
}

/// Whether `range` holds one key.
fn is_point(range: &KeyRange) -> bool {
    matches!(range, (Bound::Included(a), Bound::Included(b)) if a == b)
}

/// The index ranges that hold the ids of the documents passing one conjunct.
pub(crate) struct Conjunct {
    /// Index name and key range pairs. When `exact`, ranges of a value index
    /// share no key, so each document has at most one entry in all of them.
    pub(crate) ranges: Vec<(String, KeyRange)>,
    /// Whether the ranges hold exactly those ids (no operand key was cut);
    /// otherwise they hold more, to be re-checked. Membership ranges may also
    /// hold [`UNINDEXED`] markers, which a caller must look for itself.
    pub(crate) exact: bool,
}

/// The index ranges that hold the ids of the documents passing
/// `field op value`; `None` when no index answers it (the id).
pub(crate) fn conjunct_ranges(
    field: &FieldPath,
    op: Op,
    value: &Value,
    bounds: IndexBounds,
) -> Option<Conjunct> {
    if field.is_document_id() {
        return None;
    }
    let values = || value.as_array().map_or(&[][..], Vec::as_slice).iter();
    let mut exact = true;
    let mut key = |v: &Value| {
        let (key, cut) = bounds.key(v);
        exact &= !cut;
        key
    };
    let marker = || (contains_index(field), point(UNINDEXED.to_vec()));
    let ranges = match op {
        Op::Eq => vec![(value_index(field), point(key(value)))],
        Op::In => {
            // Each key once: a value index's ranges then share no key.
            let keys: BTreeSet<Vec<u8>> = values().map(&mut key).collect();
            keys.into_iter()
                .map(|k| (value_index(field), point(k)))
                .collect()
        }
        Op::ArrayContains => vec![(contains_index(field), point(key(value))), marker()],
        Op::ArrayContainsAny => values()
            .map(|v| (contains_index(field), point(key(v))))
            .chain([marker()])
            .collect(),
        Op::Lt | Op::Le | Op::Gt | Op::Ge => {
            let (operand, cut) = bounds.key(value);
            exact &= !cut;
            vec![(value_index(field), range(op, value, operand, cut))]
        }
        Op::Ne | Op::NotIn => {
            let excluded = match op {
                Op::Ne => std::slice::from_ref(value),
                _ => value.as_array().map_or(&[][..], Vec::as_slice),
            };
            let (ranges, whole) = all_but(bounds, excluded);
            exact &= whole;
            let index = value_index(field);
            ranges.into_iter().map(|r| (index.clone(), r)).collect()
        }
    };
    Some(Conjunct { ranges, exact })
}

/// The value index ranges holding every key but `null`'s and those of
/// `excluded` (`!=`, `not-in`: the field exists, is not null and equals none
/// of them), in key order; and whether they hold exactly those documents. A
/// cut key is included on both of its sides, as other values share it.
fn all_but(bounds: IndexBounds, excluded: &[Value]) -> (Vec<KeyRange>, bool) {
    let mut keys: Vec<(Vec<u8>, bool)> = excluded
        .iter()
        .filter(|v| !v.is_null())
        .map(|v| bounds.key(v))
        .collect();
    keys.sort();
    keys.dedup_by(|later, kept| {
        let same = later.0 == kept.0;
        kept.1 |= same && later.1;
        same
    });
    let exact = keys.iter().all(|(_, cut)| !cut);
    let mut ranges = Vec::with_capacity(keys.len() + 1);
    let mut low = Bound::Excluded(bounds.key(&Value::Null).0);
    for (key, cut) in keys {
        let edge = if cut {
            Bound::Included(key)
        } else {
            Bound::Excluded(key)
        };
        ranges.push((low, edge.clone()));
        low = edge;
    }
    ranges.push((low, Bound::Unbounded));
    (ranges, exact)
}

/// The range of exactly one key.
fn point(key: Vec<u8>) -> KeyRange {
    (Bound::Included(key.clone()), Bound::Included(key))
}

/// The key range of a range filter: from the operand's key (`key`, of `v`) to
/// the edge of its type class; a cut key includes its end, since values on
/// either side of the operand share it.
fn range(op: Op, v: &Value, key: Vec<u8>, cut: bool) -> KeyRange {
    let (low, high) = class_bounds(TypeClass::of(v));
    match (op, cut) {
        (Op::Gt, false) => (Bound::Excluded(key), Bound::Excluded(high)),
        (Op::Gt | Op::Ge, _) => (Bound::Included(key), Bound::Excluded(high)),
        (Op::Lt, false) => (Bound::Included(low), Bound::Excluded(key)),
        _ => (Bound::Included(low), Bound::Included(key)),
    }
}
/// Keys of every value of `class` lie in `[low, high)`: each class's encodings
/// start with their own tag bytes, and classes are contiguous in tag order.
fn class_bounds(class: TypeClass) -> (Vec<u8>, Vec<u8>) {
    let (first, last) = match class {
        TypeClass::Null => (Value::Null, Value::Null),
        TypeClass::Bool => (Value::Bool(false), Value::Bool(true)),
        TypeClass::Number => (Value::from(0), Value::from(0)),
        TypeClass::String => (Value::from(""), Value::from("")),
        TypeClass::Array => (Value::Array(vec![]), Value::Array(vec![])),
        TypeClass::Object => (Value::Object(Map::new()), Value::Object(Map::new())),
    };
    let tag = |v: &Value| {
        crate::index::key_encoding::encode_key(v)
            .first()
            .copied()
            .unwrap_or(0)
    };
    (vec![tag(&first)], vec![tag(&last).saturating_add(1)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A bound on the key of a value.
    enum B {
        In(Value),
        Ex(Value),
        Open,
    }

    /// `all_but` over `excluded`, keys cut at `max_key_bytes`, gives
    /// `expected` (bounds written as the values whose keys they are) and
    /// whether it is `exact`.
    fn check(excluded: Value, max_key_bytes: usize, expected: &[(B, B)], exact: bool) {
        let bounds = IndexBounds {
            max_key_bytes,
            max_array_elements: 10,
        };
        let key = |b: &B| match b {
            B::In(v) => Bound::Included(bounds.key(v).0),
            B::Ex(v) => Bound::Excluded(bounds.key(v).0),
            B::Open => Bound::Unbounded,
        };
        let want: Vec<KeyRange> = expected.iter().map(|(l, h)| (key(l), key(h))).collect();
        let list = excluded.as_array().expect("a list");
        assert_eq!(all_but(bounds, list), (want, exact), "{excluded}");
    }

    #[test]
    fn all_but_leaves_out_null_and_each_operand() {
        use B::{Ex, In, Open};
        let null = || json!(null);
        check(
            json!([5]),
            64,
            &[(Ex(null()), Ex(json!(5))), (Ex(json!(5)), Open)],
            true,
        );
        check(json!([null]), 64, &[(Ex(null()), Open)], true);
        // Sorted, each key once (1 and 1.0 are one value).
        check(
            json!([7, null, 1, 1.0, "a"]),
            64,
            &[
                (Ex(null()), Ex(json!(1))),
                (Ex(json!(1)), Ex(json!(7))),
                (Ex(json!(7)), Ex(json!("a"))),
                (Ex(json!("a")), Open),
            ],
            true,
        );
        // A cut key (past 12 bytes: the strings, not the number's 9) is kept
        // on both sides; two operands sharing it are one.
        let (long, longer) = ("z".repeat(20), "z".repeat(21));
        check(
            json!([longer, 5, long]),
            12,
            &[
                (Ex(null()), Ex(json!(5))),
                (Ex(json!(5)), In(json!(long))),
                (In(json!(long)), Open),
            ],
            false,
        );
    }
}
