//! Fan-out: after a commit, refreshing every target it can affect and
//! handing each one's `change` frame, encoded once, to its subscribers.

use std::collections::BTreeSet;

use blaze_protocol::{CloseCode, ServerMessage};

use super::{frame, Hub, Output};
use crate::store::{CommitRecord, Storage};

impl<S: Storage> Hub<S> {
    /// Refreshes every target `record` can affect and hands each one's
    /// `change` frame, encoded once, to its subscribers.
    pub(super) fn fan_out(&mut self, collection: &str, record: &CommitRecord) {
        self.recheck_written(collection, record);
        let Some(index) = self.target_index.get(collection) else {
            return;
        };
        let mut hit = BTreeSet::new();
        for change in &record.docs {
            let found = index.candidates(
                &change.id,
                change.before.as_ref().map(|d| &d.data),
                change.after.as_ref().map(|d| &d.data),
            );
            // The first set is taken whole, not inserted element by element.
            if hit.is_empty() {
                hit = found;
            } else {
                hit.extend(found);
            }
        }
        let bounds = self.bounds();
        let now = self.now;
        let mut failed = Vec::new();
        let mut slow = Vec::new();
        let mut expired = BTreeSet::new();
        for target_id in hit {
            let Some(target) = self.targets.get_mut(&target_id) else {
                continue;
            };
            let changes = match target
                .view
                .refresh(self.db.storage(), record, &mut self.bodies)
            {
                Ok(changes) => changes,
                Err(_) => {
                    // The view can no longer be kept exact: its subscribers must resume.
                    failed.extend(target.subscribers.iter().copied());
                    continue;
                }
            };
            if changes.is_empty() {
                continue;
            }
            let event = ServerMessage::Change {
                target: target_id,
                seq: record.seq,
                changes,
            };
            let shared = frame(&event);
            for &conn in &target.subscribers {
                if let Some(c) = self.conns.get_mut(&conn) {
                    if c.expired(now) {
                        expired.insert(conn);
                        continue;
                    }
                    c.push_unread(shared.len());
                    if c.over(bounds) {
                        slow.push(conn);
                    }
                }
                self.outputs.push_back(Output::Send {
                    conn,
                    frame: shared.clone(),
                });
            }
        }
        for conn in expired {
            self.close(conn, CloseCode::TokenExpired);
        }
        for conn in failed {
            self.close(conn, CloseCode::Internal);
        }
        for conn in slow {
            self.close(conn, CloseCode::SlowConsumer);
        }
    }
}
