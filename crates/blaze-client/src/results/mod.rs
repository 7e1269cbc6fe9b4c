//! One listener's result list, kept exact by applying the server's changes
//! (spec 10.4.3), or replaced by a snapshot. Pure: no I/O, no clock.

use blaze_protocol::{Change, DocSnapshot, Limits};
use serde_json::Value;

use crate::snapshot::{ChangeKind, DocChange, DocumentSnapshot, QuerySnapshot};

/// A listener's current results and the sequence number they are at.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Results {
    docs: Vec<DocumentSnapshot>,
    seq: Option<u64>,
}

/// Limits for checking server data: a client takes whatever the server stored.
fn unbounded() -> Limits {
    Limits {
        max_frame_bytes: usize::MAX,
        max_frame_depth: usize::MAX,
        max_document_bytes: usize::MAX,
        max_document_depth: usize::MAX,
        max_patch_ops: usize::MAX,
        ..Limits::default()
    }
}

impl Results {
    /// The sequence number to resume from, once the listener has had a snapshot.
    pub(crate) fn seq(&self) -> Option<u64> {
        self.seq
    }

    /// Forgets everything, so the next listen starts without `since`.
    pub(crate) fn forget_seq(&mut self) {
        self.seq = None;
    }

    /// Replaces the results with a server snapshot; returns the changes from
    /// the old results to the new ones (all `Added` the first time).
    pub(crate) fn replace(&mut self, seq: u64, docs: Vec<DocSnapshot>) -> Vec<DocChange> {
        let new: Vec<DocumentSnapshot> = docs.into_iter().map(DocumentSnapshot::from).collect();
        let mut changes = Vec::new();
        let mut working = std::mem::take(&mut self.docs);
        let mut i = 0;
        while i < working.len() {
            if new.iter().any(|d| d.path == working[i].path) {
                i += 1;
            } else {
                let doc = working.remove(i);
                changes.push(change(ChangeKind::Removed, doc, Some(i), None));
            }
        }
        for (index, doc) in new.iter().enumerate() {
            match working.iter().position(|d| d.path == doc.path) {
                Some(at) => {
                    let old = working.remove(at);
                    working.insert(index, doc.clone());
                    if old != *doc || at != index {
                        let kind = ChangeKind::Modified;
                        changes.push(change(kind, doc.clone(), Some(at), Some(index)));
                    }
                }
                None => {
                    working.insert(index, doc.clone());
                    changes.push(change(ChangeKind::Added, doc.clone(), None, Some(index)));
                }
            }
        }
        self.docs = new;
        self.seq = Some(seq);
        changes
    }

    /// Applies a `change` or `resumed` frame's changes, in order. On a change
    /// that does not fit the results (a server bug or a lost frame), the
    /// results are left as they were and the error says why.
    pub(crate) fn apply(&mut self, seq: u64, changes: &[Change]) -> Result<Vec<DocChange>, String> {
        let mut docs = self.docs.clone();
        let mut out = Vec::with_capacity(changes.len());
        for entry in changes {
            match entry {
                Change::Added { doc, new_index } => {
                    check_index(*new_index, docs.len() + 1)?;
                    let doc = DocumentSnapshot::from(doc.clone());
                    docs.insert(*new_index, doc.clone());
                    out.push(change(ChangeKind::Added, doc, None, Some(*new_index)));
                }
                Change::Modified {
                    path,
                    patch,
                    version,
                    create_time,
                    update_time,
                    old_index,
                    new_index,
                } => {
                    let old = take(&mut docs, path, *old_index)?;
                    check_index(*new_index, docs.len() + 1)?;
                    let Some(Value::Object(data)) = &old.data else {
                        return Err(format!("{path} has no data to patch"));
                    };
                    let patch = Value::Array(patch.clone());
                    let data = blaze_core::apply_json_patch(data, &patch, &unbounded())
                        .map_err(|e| format!("patch of {path} does not apply: {}", e.message))?;
                    let doc = DocumentSnapshot {
                        path: path.clone(),
                        data: Some(Value::Object(data)),
                        version: Some(*version),
                        create_time: Some(*create_time),
                        update_time: Some(*update_time),
                    };
                    docs.insert(*new_index, doc.clone());
                    let kind = ChangeKind::Modified;
                    out.push(change(kind, doc, Some(*old_index), Some(*new_index)));
                }
                Change::Removed { path, old_index } => {
                    let old = take(&mut docs, path, *old_index)?;
                    out.push(change(ChangeKind::Removed, old, Some(*old_index), None));
                }
            }
        }
        if self.seq.is_some_and(|at| seq < at) {
            return Err(format!("seq went back from {:?} to {seq}", self.seq));
        }
        self.docs = docs;
        self.seq = Some(seq);
        Ok(out)
    }

    /// A query snapshot of the current results with the given changes.
    pub(crate) fn query_snapshot(&self, changes: Vec<DocChange>, reset: bool) -> QuerySnapshot {
        QuerySnapshot {
            docs: self.docs.clone(),
            seq: self.seq.unwrap_or(0),
            changes,
            reset,
        }
    }
}

fn change(
    kind: ChangeKind,
    doc: DocumentSnapshot,
    old_index: Option<usize>,
    new_index: Option<usize>,
) -> DocChange {
    DocChange {
        kind,
        doc,
        old_index,
        new_index,
    }
}

fn check_index(index: usize, bound: usize) -> Result<(), String> {
    match index < bound {
        true => Ok(()),
        false => Err(format!("index {index} is outside the results")),
    }
}

fn take(
    docs: &mut Vec<DocumentSnapshot>,
    path: &str,
    index: usize,
) -> Result<DocumentSnapshot, String> {
    match docs.get(index) {
        Some(doc) if doc.path == path => Ok(docs.remove(index)),
        _ => Err(format!("{path} is not at index {index} of the results")),
    }
}

#[cfg(test)]
mod tests;
