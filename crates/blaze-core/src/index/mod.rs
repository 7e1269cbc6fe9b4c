//! Which index entries a document has: automatic single-field indexes.
//!
//! Every field reachable through nested objects (not through arrays) gets an
//! entry in its value index `v:<field path>` with the key encoding of its
//! value, and every distinct element of an array-valued field gets an entry in
//! its membership index `a:<field path>`. Index names use the canonical field
//! path text, so `a.b` and `` a.`b` `` name one index.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

pub(crate) mod key_encoding;

use blaze_json::field_path::FieldPath;

use crate::store::{IndexEntry, StorageBatch};
use key_encoding::encode_key;

/// The value index of `field`: ordered by the field's value.
pub(crate) fn value_index(field: &FieldPath) -> String {
    format!("v:{}", field.canonical())
}

/// The membership index of `field`: one entry per array element.
pub(crate) fn contains_index(field: &FieldPath) -> String {
    format!("a:{}", field.canonical())
}

/// Every index entry of the document `id` with contents `data`.
pub(crate) fn entries(id: &str, data: &Map<String, Value>) -> BTreeSet<IndexEntry> {
    let mut out = BTreeSet::new();
    let mut path = Vec::new();
    walk(id, data, &mut path, &mut out);
    out
}

fn walk(
    id: &str,
    object: &Map<String, Value>,
    path: &mut Vec<String>,
    out: &mut BTreeSet<IndexEntry>,
) {
    for (key, value) in object {
        path.push(key.clone());
        let field = FieldPath::from_segments(path.clone());
        out.insert(IndexEntry {
            index: value_index(&field),
            key: encode_key(value),
            id: id.to_owned(),
        });
        match value {
            Value::Array(items) => {
                let index = contains_index(&field);
                for item in items {
                    out.insert(IndexEntry {
                        index: index.clone(),
                        key: encode_key(item),
                        id: id.to_owned(),
                    });
                }
            }
            Value::Object(inner) => walk(id, inner, path, out),
            _ => {}
        }
        path.pop();
    }
}

/// Adds to `commit` the index changes that take a document from `old` to `new` contents.
pub(crate) fn diff_into(
    id: &str,
    old: Option<&Map<String, Value>>,
    new: Option<&Map<String, Value>>,
    commit: &mut StorageBatch,
) {
    let old = old.map(|d| entries(id, d)).unwrap_or_default();
    let new = new.map(|d| entries(id, d)).unwrap_or_default();
    commit.index_removes.extend(old.difference(&new).cloned());
    commit.index_adds.extend(new.difference(&old).cloned());
}
