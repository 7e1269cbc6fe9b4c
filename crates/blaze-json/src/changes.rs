//! Applying a listener's changes to its result list (spec 10.4.3): every
//! `removed` (its `old_index` counts the list as the changes before it left
//! it), then, in new result order, each `added` (inserted at `new_index`)
//! and `modified` (taken from `old_index`, patched, put back at `new_index`).
//!
//! This is the one implementation: the engine's tests check the changes its
//! views produce with it, and the Rust client keeps its listeners' results
//! with it.

use blaze_protocol::{Change, DocSnapshot, Limits};
use serde_json::Value;

use crate::patch::apply_json_patch;

/// Why a change does not fit the result list it is applied to (a server bug
/// or a lost frame).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// `new_index` lies outside the list.
    #[error("index {0} is outside the results")]
    IndexOutOfRange(usize),
    /// The document at `old_index` is not the one the change names.
    #[error("{path} is not at index {index} of the results")]
    NotAt {
        /// The path the change names.
        path: String,
        /// The index it names.
        index: usize,
    },
    /// The listed document has no data to patch.
    #[error("{0} has no data to patch")]
    NoData(String),
    /// The patch does not apply to the listed document.
    #[error("the patch of {path} does not apply: {message}")]
    Patch {
        /// The document's path.
        path: String,
        /// Why not.
        message: String,
    },
}

/// Applies `changes` in order to `docs`; on an error, `docs` is left as it was.
pub fn apply_changes(docs: &mut Vec<DocSnapshot>, changes: &[Change]) -> Result<(), ApplyError> {
    let mut working = docs.clone();
    for change in changes {
        apply_change(&mut working, change)?;
    }
    *docs = working;
    Ok(())
}

/// Applies one change to `docs`; returns the document it added or modified
/// (as it is now) or removed (as it was). On an error, `docs` may have lost
/// the document the change named: apply to a copy when that matters.
pub fn apply_change(
    docs: &mut Vec<DocSnapshot>,
    change: &Change,
) -> Result<DocSnapshot, ApplyError> {
    match change {
        Change::Added { doc, new_index } => {
            check_index(*new_index, docs.len())?;
            docs.insert(*new_index, doc.clone());
            Ok(doc.clone())
        }
        Change::Removed { path, old_index } => take(docs, path, *old_index),
        Change::Modified {
            path,
            patch,
            version,
            create_time,
            update_time,
            old_index,
            new_index,
        } => {
            let mut doc = take(docs, path, *old_index)?;
            check_index(*new_index, docs.len())?;
            let data = doc
                .data
                .as_ref()
                .ok_or_else(|| ApplyError::NoData(path.clone()))?;
            let patched = apply_json_patch(data, &Value::Array(patch.clone()), &unbounded())
                .map_err(|e| ApplyError::Patch {
                    path: path.clone(),
                    message: e.message,
                })?;
            doc.data = Some(patched);
            doc.version = Some(*version);
            doc.create_time = Some(*create_time);
            doc.update_time = Some(*update_time);
            docs.insert(*new_index, doc.clone());
            Ok(doc)
        }
    }
}

/// Limits for applying what a server sent: it already enforced its own.
fn unbounded() -> Limits {
    Limits {
        max_document_bytes: usize::MAX,
        max_document_depth: usize::MAX,
        max_patch_ops: usize::MAX,
        ..Limits::default()
    }
}

/// An insertion index is valid up to and including the list's length.
fn check_index(index: usize, len: usize) -> Result<(), ApplyError> {
    match index <= len {
        true => Ok(()),
        false => Err(ApplyError::IndexOutOfRange(index)),
    }
}

fn take(docs: &mut Vec<DocSnapshot>, path: &str, index: usize) -> Result<DocSnapshot, ApplyError> {
    match docs.get(index) {
        Some(doc) if doc.path == path => Ok(docs.remove(index)),
        _ => Err(ApplyError::NotAt {
            path: path.to_owned(),
            index,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(id: &str, n: i64, version: u64) -> DocSnapshot {
        DocSnapshot {
            path: format!("c/{id}"),
            exists: true,
            data: json!({ "n": n }).as_object().cloned(),
            version: Some(version),
            create_time: Some(1),
            update_time: Some(version),
            held: false,
        }
    }

    fn ids(docs: &[DocSnapshot]) -> Vec<&str> {
        docs.iter().map(|d| d.path.as_str()).collect()
    }

    fn check(changes: Value, want: Result<&[&str], ApplyError>) {
        let changes: Vec<Change> = serde_json::from_value(changes).unwrap();
        let mut docs = vec![doc("a", 1, 1), doc("b", 2, 1), doc("c", 3, 1)];
        let before = docs.clone();
        let got = apply_changes(&mut docs, &changes);
        match want {
            Ok(want) => {
                assert_eq!(got, Ok(()));
                assert_eq!(ids(&docs), want);
            }
            Err(e) => {
                assert_eq!(got, Err(e));
                assert_eq!(docs, before, "a failed apply changes nothing");
            }
        }
    }

    #[test]
    fn applies_the_spec_order() {
        check(json!([]), Ok(&["c/a", "c/b", "c/c"]));
        check(
            json!([{"type": "removed", "path": "c/a", "old_index": 0},
                   {"type": "added", "doc": {"path": "c/d", "exists": true, "data": {}}, "new_index": 2}]),
            Ok(&["c/b", "c/c", "c/d"]),
        );
        // Moved to the front by a write, with its patch.
        check(
            json!([{"type": "modified", "path": "c/c", "patch": [{"op": "replace", "path": "/n", "value": 0}],
                    "version": 2, "create_time": 1, "update_time": 2, "old_index": 2, "new_index": 0}]),
            Ok(&["c/c", "c/a", "c/b"]),
        );
    }

    #[test]
    fn refuses_changes_that_do_not_fit() {
        check(
            json!([{"type": "removed", "path": "c/b", "old_index": 0}]),
            Err(ApplyError::NotAt {
                path: "c/b".into(),
                index: 0,
            }),
        );
        check(
            json!([{"type": "added", "doc": {"path": "c/d", "exists": true, "data": {}}, "new_index": 4}]),
            Err(ApplyError::IndexOutOfRange(4)),
        );
        check(
            json!([{"type": "removed", "path": "c/a", "old_index": 0},
                   {"type": "modified", "path": "c/b", "patch": [{"op": "remove", "path": "/zz"}],
                    "version": 2, "create_time": 1, "update_time": 2, "old_index": 0, "new_index": 0}]),
            Err(ApplyError::Patch {
                path: "c/b".into(),
                message: "op 0: path /zz not found".into(),
            }),
        );
    }

    #[test]
    fn a_modified_document_takes_the_new_metadata() {
        let mut docs = vec![doc("a", 1, 1)];
        let change: Change = serde_json::from_value(json!({"type": "modified", "path": "c/a",
            "patch": [{"op": "replace", "path": "/n", "value": 5}],
            "version": 7, "create_time": 1, "update_time": 9, "old_index": 0, "new_index": 0}))
        .unwrap();
        let after = apply_change(&mut docs, &change).unwrap();
        assert_eq!(
            after,
            DocSnapshot {
                update_time: Some(9),
                ..doc("a", 5, 7)
            }
        );
        assert_eq!(docs, [after]);
    }
}
