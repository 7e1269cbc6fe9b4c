//! Which index entries a document has: automatic single-field indexes.
//!
//! Every field reachable through nested objects (not through arrays) gets an
//! entry in its value index `v:<field path>` with the key encoding of its
//! value, and every distinct element of an array-valued field gets an entry in
//! its membership index `a:<field path>`. Index names use the canonical field
//! path text, so `a.b` and `` a.`b` `` name one index.
//!
//! Entries are bounded ([`IndexBounds`], from `Limits`): a key longer than
//! `max_indexed_value_bytes` is cut to that length (queries re-check the
//! documents a cut key finds), and an array of more than
//! `max_indexed_array_elements` elements gets one [`UNINDEXED`] marker entry in
//! its membership index instead of one per element (an `array-contains` query
//! also reads the markers and re-checks those documents).

use std::collections::BTreeSet;

use serde_json::{Map, Value};

pub(crate) mod key_encoding;

use blaze_json::budget::CommitBudget;
use blaze_json::field_path::FieldPath;
use blaze_json::Rejection;
use blaze_protocol::Limits;

use crate::store::{IndexEntry, StorageBatch};
use key_encoding::encode_key_bounded;

/// The key of the membership entry that marks an array too long to index by
/// element: empty, so it equals no value's key (every encoding has a tag byte).
pub(crate) const UNINDEXED: &[u8] = &[];

/// How far index entries go: the index half of `Limits`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexBounds {
    /// Longest key stored whole (at least 1).
    pub max_key_bytes: usize,
    /// Most elements of one array indexed one by one.
    pub max_array_elements: usize,
}

impl IndexBounds {
    /// The bounds `limits` announce.
    pub fn of(limits: &Limits) -> Self {
        Self {
            max_key_bytes: limits.max_indexed_value_bytes.max(1),
            max_array_elements: limits.max_indexed_array_elements,
        }
    }

    /// The index key of `v` and whether it was cut (then it stands for every
    /// value whose key starts with it, and a match must be re-checked).
    pub fn key(&self, v: &Value) -> (Vec<u8>, bool) {
        encode_key_bounded(v, self.max_key_bytes)
    }
}

/// The value index of `field`: ordered by the field's value.
pub(crate) fn value_index(field: &FieldPath) -> String {
    format!("v:{}", field.canonical())
}

/// Whether `index` is a value index (one entry per document having the field).
pub(crate) fn is_value_index(index: &str) -> bool {
    index.starts_with("v:")
}

/// The membership index of `field`: one entry per array element.
pub(crate) fn contains_index(field: &FieldPath) -> String {
    format!("a:{}", field.canonical())
}

/// Every index entry of the document `id` with contents `data`.
pub(crate) fn entries(
    id: &str,
    data: &Map<String, Value>,
    bounds: IndexBounds,
) -> BTreeSet<IndexEntry> {
    let mut out = BTreeSet::new();
    let mut path = Vec::new();
    walk(id, data, bounds, &mut path, &mut out);
    out
}

fn walk(
    id: &str,
    object: &Map<String, Value>,
    bounds: IndexBounds,
    path: &mut Vec<String>,
    out: &mut BTreeSet<IndexEntry>,
) {
    for (key, value) in object {
        path.push(key.clone());
        let field = FieldPath::from_segments(path.clone());
        out.insert(IndexEntry {
            index: value_index(&field),
            key: bounds.key(value).0,
            id: id.to_owned(),
        });
        match value {
            Value::Array(items) => {
                let index = contains_index(&field);
                let mut entry = |key| {
                    out.insert(IndexEntry {
                        index: index.clone(),
                        key,
                        id: id.to_owned(),
                    });
                };
                if items.len() > bounds.max_array_elements {
                    entry(UNINDEXED.to_vec());
                } else {
                    items.iter().for_each(|item| entry(bounds.key(item).0));
                }
            }
            Value::Object(inner) => walk(id, inner, bounds, path, out),
            _ => {}
        }
        path.pop();
    }
}

/// What one entry is charged beyond its bytes, so that none is free; kept
/// low so that replacing a document of the most fields the size limit allows
/// (old and new entries both built) fits the default commit budget with room.
const ENTRY_OVERHEAD: usize = 8;

/// Bytes the entries in `set` hold, charged to a commit's budget.
fn entry_bytes(set: &BTreeSet<IndexEntry>) -> usize {
    set.iter()
        .map(|e| ENTRY_OVERHEAD + e.index.len() + e.key.len() + e.id.len())
        .sum()
}

/// Adds to `commit` the index changes that take a document from `old` to
/// `new` contents, charging the entries it builds to `budget`.
pub(crate) fn diff_into(
    id: &str,
    old: Option<&Map<String, Value>>,
    new: Option<&Map<String, Value>>,
    bounds: IndexBounds,
    commit: &mut StorageBatch,
    budget: &mut CommitBudget,
) -> Result<(), Rejection> {
    let old = old.map(|d| entries(id, d, bounds)).unwrap_or_default();
    budget.charge(entry_bytes(&old))?;
    let new = new.map(|d| entries(id, d, bounds)).unwrap_or_default();
    budget.charge(entry_bytes(&new))?;
    commit.index_removes.extend(old.difference(&new).cloned());
    commit.index_adds.extend(new.difference(&old).cloned());
    Ok(())
}
