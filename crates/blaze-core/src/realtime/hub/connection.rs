//! One client connection's state: its handshake and identity, its
//! listeners, the frames sent to it that it has not acknowledged reading
//! yet, and the requests it made that wait until it has read enough
//! (protocol section 10.4.6) or until its credential is verified (section 13).

use std::collections::{HashMap, VecDeque};

use blaze_protocol::Identity;

use super::guard::{Fetching, Recheck};

/// A credential of the connection that the driver is verifying.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Verifying {
    /// `hello`'s: the connection opens once it is verified.
    Hello,
    /// The `auth` request with this `rid`.
    Auth(u64),
}

/// The state the hub keeps for one connection.
pub(super) struct Connection {
    /// Whether `hello` was accepted.
    pub open: bool,
    /// When the connection is closed if its first frame has not come
    /// (milliseconds since the Unix epoch; spec 10.1).
    pub hello_due: u64,
    /// Who the connection's credential says it is.
    pub identity: Identity,
    /// The network the driver saw the connection come from, if it told
    /// one: a network's connections not identified as a user's or an
    /// admin's are counted against its share (spec 10.1).
    pub network: Option<String>,
    /// When that credential expires (milliseconds since the Unix epoch), if it does.
    pub expires: Option<u64>,
    /// A credential being verified: the connection's later frames are held until it is.
    pub verifying: Option<Verifying>,
    /// Whether `hello` said the client takes held `snapshot` entries (spec 10.4.9).
    pub held_docs: bool,
    /// `auth` requests refused in a row (spec 13.4: past
    /// [`Connection::MAX_REFUSED_AUTHS`] the connection is closed).
    pub refused_auths: u32,
    /// Live listeners: listen `rid` to target id.
    pub listeners: HashMap<u64, u64>,
    /// Followed targets: target id to how many of this connection's listeners follow it.
    pub follows: HashMap<u64, usize>,
    /// How many frames were handed out for this connection since it opened.
    sent: u64,
    /// How many of them the client acknowledged reading.
    acked: u64,
    /// Sizes of the frames handed out and not acknowledged yet, oldest first.
    unread: VecDeque<usize>,
    /// Their total size in bytes.
    unread_bytes: usize,
    /// A request waiting for documents of other collections (spec 14.5):
    /// later frames are held until it is answered.
    pub fetching: Option<Fetching>,
    /// Listeners checked again when a document they depend on changes, by rid.
    pub checks: HashMap<u64, Recheck>,
    /// The bytes of documents of other collections those checks keep.
    pub kept_bytes: usize,
    /// Request frames held while the connection has too much unread, in arrival order.
    held: VecDeque<String>,
    /// Their total size in bytes.
    held_bytes: usize,
}

/// A connection's flow-control bounds: the announced limits on unread output.
#[derive(Clone, Copy)]
pub(super) struct FlowBounds {
    /// Most frames unread before the connection is closed.
    pub frames: usize,
    /// Most bytes unread before the connection is closed.
    pub bytes: usize,
}

impl Connection {
    /// Most `auth` requests refused in a row before the connection is closed
    /// with 4001 `unauthenticated`: each may cost a signature check, so a
    /// client may not make the object verify forged tokens without end.
    pub(super) const MAX_REFUSED_AUTHS: u32 = 3;
}

impl Connection {
    /// A connection just opened from `network`, closed at `hello_due` if it
    /// says nothing.
    pub(super) fn new(hello_due: u64, network: Option<String>) -> Self {
        Self {
            open: false,
            hello_due,
            identity: Identity::Anonymous,
            network,
            expires: None,
            verifying: None,
            held_docs: false,
            refused_auths: 0,
            listeners: HashMap::new(),
            follows: HashMap::new(),
            sent: 0,
            acked: 0,
            unread: VecDeque::new(),
            unread_bytes: 0,
            fetching: None,
            checks: HashMap::new(),
            kept_bytes: 0,
            held: VecDeque::new(),
            held_bytes: 0,
        }
    }
}

impl Connection {
    /// Whether the connection's credential has expired at `now`: nothing
    /// more may be sent to it (spec 13.5).
    pub(super) fn expired(&self, now: u64) -> bool {
        self.expires.is_some_and(|expires| now >= expires)
    }

    /// Whether the connection is still waiting for its first frame at
    /// `now`, past its due time.
    pub(super) fn silent_past(&self, now: u64) -> bool {
        self.waiting_for_hello() && now >= self.hello_due
    }

    /// Whether no first frame has been read: neither open nor verifying a
    /// credential.
    pub(super) fn waiting_for_hello(&self) -> bool {
        !self.open && self.verifying.is_none()
    }

    /// The estimated bytes of one listener in a connection's tables.
    pub(super) const LISTENER_BYTES: usize = 64;

    /// The estimated bytes of the connection's own tables, with the
    /// documents of other collections it keeps for the rules (its listeners'
    /// and a waiting request's).
    pub(super) fn own_bytes(&self) -> usize {
        256 + (self.listeners.len() + self.follows.len()) * Self::LISTENER_BYTES
            + self.kept_bytes
            + self.fetching.as_ref().map_or(0, |f| f.fetched.bytes())
    }

    /// Records a frame of `len` bytes handed to the driver.
    pub(super) fn push_unread(&mut self, len: usize) {
        self.sent += 1;
        self.unread.push_back(len);
        self.unread_bytes += len;
    }

    /// The client read the first `frames` frames sent to it. A count at or
    /// below an earlier one changes nothing; one above what was sent (a
    /// client counting across a server restart) counts as everything.
    pub(super) fn ack(&mut self, frames: u64) {
        let frames = frames.min(self.sent);
        while self.acked < frames {
            self.acked += 1;
            if let Some(len) = self.unread.pop_front() {
                self.unread_bytes -= len;
            }
        }
    }

    /// Whether the unread frames exceed either bound: the connection must close.
    pub(super) fn over(&self, bounds: FlowBounds) -> bool {
        self.unread.len() > bounds.frames || self.unread_bytes > bounds.bytes
    }

    /// Whether requests must wait: some already do, a credential is being
    /// verified, or the unread frames exceed half of either bound.
    pub(super) fn busy(&self, bounds: FlowBounds) -> bool {
        !self.held.is_empty()
            || self.verifying.is_some()
            || self.fetching.is_some()
            || self.unread.len() > bounds.frames / 2
            || self.unread_bytes > bounds.bytes / 2
    }

    /// Holds a request frame until the client has read enough; returns
    /// false when the held requests then exceed either bound.
    pub(super) fn hold(&mut self, text: &str, bounds: FlowBounds) -> bool {
        self.held_bytes += text.len();
        self.held.push_back(text.to_owned());
        self.held.len() <= bounds.frames && self.held_bytes <= bounds.bytes
    }

    /// Whether requests are held.
    pub(super) fn holds(&self) -> bool {
        !self.held.is_empty()
    }

    /// The oldest held request, if no credential is being verified and the
    /// unread frames are back within half of both bounds.
    pub(super) fn release(&mut self, bounds: FlowBounds) -> Option<String> {
        if self.verifying.is_some()
            || self.fetching.is_some()
            || self.unread.len() > bounds.frames / 2
            || self.unread_bytes > bounds.bytes / 2
        {
            return None;
        }
        let text = self.held.pop_front()?;
        self.held_bytes -= text.len();
        Some(text)
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
