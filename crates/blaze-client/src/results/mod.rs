//! One listener's result list, kept exact by applying the server's changes
//! (spec 10.4.3), or replaced by a snapshot. Pure: no I/O, no clock.

use blaze_json::changes::apply_change;
use blaze_protocol::{Change, DocSnapshot};

use crate::snapshot::{ChangeKind, DocChange, DocumentSnapshot, QuerySnapshot};

/// A listener's current results and the sequence number they are at.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Results {
    docs: Vec<DocSnapshot>,
    seq: Option<u64>,
}

impl Results {
    /// The sequence number to resume from, once the listener has had a snapshot.
    pub(crate) fn seq(&self) -> Option<u64> {
        self.seq
    }

    /// The documents, in query order.
    pub(crate) fn docs(&self) -> &[DocSnapshot] {
        &self.docs
    }

    /// Forgets everything, so the next listen starts without `since`.
    pub(crate) fn forget_seq(&mut self) {
        self.seq = None;
    }

    /// Replaces the results with a server snapshot; returns the changes from
    /// the old results to the new ones (all `Added` the first time).
    pub(crate) fn replace(&mut self, seq: u64, new: Vec<DocSnapshot>) -> Vec<DocChange> {
        let mut changes = Vec::new();
        let mut working = std::mem::take(&mut self.docs);
        let mut i = 0;
        while i < working.len() {
            if new.iter().any(|d| d.path == working[i].path) {
                i += 1;
            } else {
                let doc = working.remove(i);
                changes.push(change(ChangeKind::Removed, doc.into(), Some(i), None));
            }
        }
        for (index, doc) in new.iter().enumerate() {
            match working.iter().position(|d| d.path == doc.path) {
                Some(at) => {
                    let old = working.remove(at);
                    working.insert(index, doc.clone());
                    if old != *doc || at != index {
                        let kind = ChangeKind::Modified;
                        changes.push(change(kind, doc.clone().into(), Some(at), Some(index)));
                    }
                }
                None => {
                    working.insert(index, doc.clone());
                    let kind = ChangeKind::Added;
                    changes.push(change(kind, doc.clone().into(), None, Some(index)));
                }
            }
        }
        self.docs = new;
        self.seq = Some(seq);
        changes
    }

    /// Applies a `change` or `resumed` frame's changes, in order
    /// (`blaze_json::changes`). On a change that does not fit the results (a
    /// server bug or a lost frame), the results are left as they were and the
    /// error says why.
    pub(crate) fn apply(&mut self, seq: u64, changes: &[Change]) -> Result<Vec<DocChange>, String> {
        if self.seq.is_some_and(|at| seq < at) {
            return Err(format!("seq went back from {:?} to {seq}", self.seq));
        }
        let mut docs = self.docs.clone();
        let mut out = Vec::with_capacity(changes.len());
        for entry in changes {
            let doc = apply_change(&mut docs, entry).map_err(|e| e.to_string())?;
            let (kind, old_index, new_index) = match entry {
                Change::Added { new_index, .. } => (ChangeKind::Added, None, Some(*new_index)),
                Change::Modified {
                    old_index,
                    new_index,
                    ..
                } => (ChangeKind::Modified, Some(*old_index), Some(*new_index)),
                Change::Removed { old_index, .. } => (ChangeKind::Removed, Some(*old_index), None),
            };
            out.push(change(kind, doc.into(), old_index, new_index));
        }
        self.docs = docs;
        self.seq = Some(seq);
        Ok(out)
    }

    /// A query snapshot of the current results with the given changes.
    pub(crate) fn query_snapshot(&self, changes: Vec<DocChange>, reset: bool) -> QuerySnapshot {
        QuerySnapshot {
            docs: self
                .docs
                .iter()
                .cloned()
                .map(DocumentSnapshot::from)
                .collect(),
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

#[cfg(test)]
mod tests;
