//! One client connection's state: its handshake, its listeners, and the
//! frames handed to the driver that it has not reported written yet.

use std::collections::{HashMap, VecDeque};

/// The state the hub keeps for one connection.
#[derive(Default)]
pub(super) struct Connection {
    /// Whether `hello` was accepted.
    pub open: bool,
    /// Live listeners: listen `rid` to target id.
    pub listeners: HashMap<u64, u64>,
    /// Followed targets: target id to how many of this connection's listeners follow it.
    pub follows: HashMap<u64, usize>,
    /// Sizes of the frames handed out and not yet reported written, oldest first.
    pending: VecDeque<usize>,
    /// Their total size in bytes.
    pending_bytes: usize,
}

impl Connection {
    /// The estimated bytes of one listener in a connection's tables.
    pub(super) const LISTENER_BYTES: usize = 64;

    /// The estimated bytes of the connection's own tables.
    pub(super) fn own_bytes(&self) -> usize {
        256 + (self.listeners.len() + self.follows.len()) * Self::LISTENER_BYTES
    }

    /// Records a frame of `len` bytes handed to the driver.
    pub(super) fn push_pending(&mut self, len: usize) {
        self.pending.push_back(len);
        self.pending_bytes += len;
    }

    /// Records that the driver wrote the `frames` oldest pending frames.
    pub(super) fn written(&mut self, frames: usize) {
        for _ in 0..frames {
            match self.pending.pop_front() {
                Some(len) => self.pending_bytes -= len,
                None => break,
            }
        }
    }

    /// Whether the pending frames exceed either bound.
    pub(super) fn over(&self, max_frames: usize, max_bytes: usize) -> bool {
        self.pending.len() > max_frames || self.pending_bytes > max_bytes
    }

    /// Adds listener `rid` following `target`; returns true when the connection did not follow it yet.
    pub(super) fn add_listener(&mut self, rid: u64, target: u64) -> bool {
        self.listeners.insert(rid, target);
        let count = self.follows.entry(target).or_default();
        *count += 1;
        *count == 1
    }

    /// Removes listener `rid`; returns its target and whether the connection no longer follows it.
    pub(super) fn remove_listener(&mut self, rid: u64) -> Option<(u64, bool)> {
        let target = self.listeners.remove(&rid)?;
        let count = self.follows.get_mut(&target)?;
        *count -= 1;
        let last = *count == 0;
        if last {
            self.follows.remove(&target);
        }
        Some((target, last))
    }
}
