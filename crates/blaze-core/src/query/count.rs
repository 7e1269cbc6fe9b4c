//! Counting a query's results without building them.
//!
//! A query with no filter and no field to order by counts the collection's
//! documents, and one decided by the value index ranges of a single
//! conjunct counts their entries, without reading them
//! (`Storage::count_docs`, `Storage::count_entries`).
//!
//! Each conjunct an index answers (`==`, `in`, `array-contains(-any)`,
//! ranges, `!=`, `not-in`) gives the exact set of ids that pass it, read
//! from index entries alone; the count walks their intersection (or, for a
//! single conjunct on a value index, just counts its entries). When those
//! entries decide the whole filter (such conjuncts and conditions on the id,
//! every `order_by` field known to exist), no document is loaded. Otherwise
//! each id of the intersection is loaded and the rest of the filter
//! evaluated. A filter with an `or`, or without any such conjunct (on the id
//! alone), is counted by the query's own plans (an `or` of indexed members
//! from the union of their ranges). A query with cursors compares whole
//! positions, so it runs as a query. Entries decide nothing when an
//! operand's key was cut or a membership index holds an `UNINDEXED` marker
//! (index bounds): then documents are loaded too.

use std::collections::BTreeSet;
use std::ops::Bound;

use blaze_json::field_path::FieldPath;
use blaze_protocol::Op;
use serde_json::{Map, Value};

use super::compile::CompiledQuery;
use super::execute::{conjunct_ranges, count_by_scan, wanted, Conjunct};
use super::filter::CompiledFilter;
use crate::error::Error;
use crate::index::{contains_index, is_value_index, value_index, UNINDEXED};
use crate::store::Storage;

/// The number of results `q` has.
pub(crate) fn count_query<S: Storage>(storage: &S, q: &CompiledQuery) -> Result<u64, Error> {
    if q.start.is_some() || q.end.is_some() {
        return count_by_scan(storage, q);
    }
    let matched = count_matches(storage, q)?;
    Ok(wanted(q).map_or(matched, |n| matched.min(n as u64)))
}

/// The number of documents that pass the filter and have every `order_by` field.
fn count_matches<S: Storage>(storage: &S, q: &CompiledQuery) -> Result<u64, Error> {
    let conjuncts = q
        .filter
        .as_ref()
        .map(CompiledFilter::conjuncts)
        .unwrap_or_default();
    if !q.filter.as_ref().is_none_or(is_conjunction) {
        // An `or` somewhere: counted as the query finds its results (an
        // `or` of indexed members from the union of their ranges).
        return count_by_scan(storage, q);
    }
    let mut sources = Vec::new();
    let mut on_id = Vec::new();
    let mut decided = true;
    for &(field, op, value) in &conjuncts {
        if field.is_document_id() {
            on_id.push(CompiledFilter::Field {
                field: field.clone(),
                op,
                value: value.clone(),
            });
            continue;
        }
        match conjunct_ranges(field, op, value, q.index_bounds) {
            Some(Conjunct { ranges, exact }) => {
                let membership = matches!(op, Op::ArrayContains | Op::ArrayContainsAny);
                if !exact || (membership && has_unindexed(storage, q, field)?) {
                    decided = false;
                }
                sources.push(ranges);
            }
            None => decided = false,
        }
    }
    let ordered_by_a_field = q.order.iter().any(|(f, _)| !f.is_document_id());
    if q.filter.is_none() && !ordered_by_a_field {
        // No filter, no field to order by: every document is a result.
        return Ok(storage.count_docs(&q.collection)?);
    }
    if sources.is_empty() {
        // No index narrows it down: counted as the query finds its results.
        return count_by_scan(storage, q);
    }
    if decided {
        // Every conjunct on a field requires it to exist; an `order_by`
        // field no conjunct names must be looked up in its value index.
        for (field, _) in &q.order {
            let named = conjuncts.iter().any(|(f, _, _)| *f == field);
            if !field.is_document_id() && !named {
                let every = (Bound::Unbounded, Bound::Unbounded);
                sources.push(vec![(value_index(field), every)]);
            }
        }
        if let ([only], true) = (&mut sources[..], on_id.is_empty()) {
            if only.iter().all(|(index, _)| is_value_index(index)) {
                // A value index holds one entry per document, and one
                // conjunct's ranges of it share no key: count their entries.
                let mut n = 0;
                for (index, range) in std::mem::take(only) {
                    n += storage.count_entries(&q.collection, &index, range)?;
                }
                return Ok(n);
            }
        }
    }
    let mut sets = sources
        .into_iter()
        .map(|ranges| ids_in(storage, q, ranges))
        .collect::<Result<Vec<_>, _>>()?;
    sets.sort_by_key(BTreeSet::len);
    let (smallest, others) = sets.split_first().expect("at least one set");
    let on_id = CompiledFilter::And(on_id);
    let no_data = Map::new();
    let mut n = 0;
    for id in smallest {
        if !others.iter().all(|s| s.contains(id)) || !on_id.matches(id, &no_data) {
            continue;
        }
        if decided {
            n += 1;
        } else if let Some(doc) = storage.get(&q.collection, id)? {
            n += u64::from(passes(q, &doc.id, &doc.data));
        }
    }
    Ok(n)
}

/// Whether some document's array at `field` is too long to be indexed by element.
fn has_unindexed<S: Storage>(
    storage: &S,
    q: &CompiledQuery,
    field: &FieldPath,
) -> Result<bool, Error> {
    let marker = UNINDEXED.to_vec();
    let range = (Bound::Included(marker.clone()), Bound::Included(marker));
    let mut entries = storage.scan_index(&q.collection, &contains_index(field), range, false)?;
    Ok(entries.next().transpose()?.is_some())
}

/// Whether a document is a result of `q`, cursors and limit aside.
fn passes(q: &CompiledQuery, id: &str, data: &Map<String, Value>) -> bool {
    q.filter.as_ref().is_none_or(|f| f.matches(id, data)) && q.position(id, data).is_some()
}

/// Whether `filter` is a conjunction of field filters (no `or` anywhere).
fn is_conjunction(filter: &CompiledFilter) -> bool {
    match filter {
        CompiledFilter::And(all) => all.iter().all(is_conjunction),
        CompiledFilter::Or(_) => false,
        CompiledFilter::Field { .. } => true,
    }
}

/// The ids with an entry in any of `ranges`.
fn ids_in<S: Storage>(
    storage: &S,
    q: &CompiledQuery,
    ranges: Vec<(String, crate::store::KeyRange)>,
) -> Result<BTreeSet<String>, Error> {
    let mut ids = BTreeSet::new();
    for (index, range) in ranges {
        for entry in storage.scan_index(&q.collection, &index, range, false)? {
            ids.insert(entry?.1);
        }
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_and_trees_are_conjunctions() {
        let leaf = || CompiledFilter::Field {
            field: blaze_json::field_path::FieldPath::parse("a").unwrap(),
            op: Op::Eq,
            value: Value::from(1),
        };
        assert!(is_conjunction(&CompiledFilter::And(vec![
            leaf(),
            CompiledFilter::And(vec![leaf()])
        ])));
        assert!(!is_conjunction(&CompiledFilter::And(vec![
            leaf(),
            CompiledFilter::Or(vec![leaf()])
        ])));
    }
}
