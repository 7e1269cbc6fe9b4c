//! One collection connection's protocol state as a plain state machine, in
//! the style of quinn-proto. Input through methods that take plain values
//! (`request`, `cancel`, `listen`, `unlisten`, `connected`, `handle_frame`,
//! `disconnected`, `refresh`, `auth_failed`); output through polling:
//! `poll_transmit` for frames to send, `poll_event` for answers and listener
//! updates, each keyed by an id the session allocated, and `poll_timeout`
//! for when the credential is due for a refresh (`handle_timeout`). No
//! channels, no clock, no I/O: time is an argument (milliseconds since the
//! Unix epoch) and the randomness of commit ids comes from a seed, so any
//! driver (tokio, blocking, wasm) can run it and tests drive it frame by
//! frame.
//!
//! Every `hello` says `held_docs: true` (spec 10.4.9): a `snapshot` may name a
//! document another listener of the connection holds at the same version
//! instead of sending it again, and the session replaces such a held entry
//! with its copy before the snapshot goes anywhere. So the results of a
//! listener the application stopped are kept, and follow their target's
//! changes, until the server answers its `unlisten`.

mod commit_id;
mod credential;
mod protocol_errors;

use std::collections::{BTreeMap, HashMap, VecDeque};

use blaze_protocol::{
    decode_server, encode, AuthState, ClientMessage, CollectionPath, DocPath, DocSnapshot,
    ErrorCode, Limits, Query, ServerMessage, Write, PROTOCOL_VERSION,
};

use credential::{Credential, Refresh};
use protocol_errors::ProtocolErrors;

use crate::results::Results;
use crate::snapshot::QuerySnapshot;
use crate::Error;

/// A request the session tracks until its answer; also its `rid` on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct RequestId(u64);

/// A listener the session tracks; also the `rid` of its `listen` frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct ListenerId(u64);

/// A request that expects one answer.
#[derive(Clone, Debug)]
pub(crate) enum Request {
    /// Read one document.
    Get(DocPath),
    /// Commit a batch to the collection.
    Commit(CollectionPath, Vec<Write>),
    /// Run a query.
    Query(Box<Query>),
    /// Count a query's results.
    Count(Box<Query>),
}

/// What a listener follows.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ListenTarget {
    /// One document, by path.
    Doc(DocPath),
    /// A query.
    Query(Box<Query>),
}

/// The state of a listener's connection, as its stream reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectionState {
    /// The connection is back; the listener is resuming, and its next
    /// snapshot catches it up.
    Online,
    /// The connection is lost; reconnect attempt `attempt` is next.
    Offline {
        /// How many attempts have failed since the connection was last up.
        attempt: u32,
        /// Why the last connection or attempt failed.
        reason: String,
    },
}

/// What happened to one listener.
#[derive(Debug)]
pub(crate) enum ListenerUpdate {
    /// New results.
    Snapshot(QuerySnapshot),
    /// The connection went down or came back.
    State(ConnectionState),
    /// The server refused the listener; the session has forgotten it.
    Failed(Error),
}

/// What the session has for its driver, from [`Session::poll_event`].
#[derive(Debug)]
pub(crate) enum Event {
    /// The answer to a request; the session has forgotten the request.
    Answer {
        /// The request answered.
        request: RequestId,
        /// The server's answer, or the error it sent.
        result: Result<ServerMessage, Error>,
    },
    /// News for a listener.
    Listener {
        /// The listener concerned.
        id: ListenerId,
        /// What happened.
        update: ListenerUpdate,
    },
}

struct Listener {
    target: ListenTarget,
    results: Results,
    /// The server's target number on the current connection, once answered.
    server_target: Option<u64>,
}

/// A client acknowledges what it has read (spec 10.4.6) at the latest when
/// this many frames arrived since its last `ack`...
const ACK_FRAMES: u64 = 64;
/// ... or when the frames since its last `ack` hold this many bytes.
const ACK_BYTES: usize = 64 * 1024;

/// What the client has read on the current connection, for its `ack`s.
#[derive(Default)]
struct ReadCount {
    /// Frames read since the connection opened, `welcome` included.
    frames: u64,
    /// Frames read since the last `ack`.
    unacked_frames: u64,
    /// Their bytes.
    unacked_bytes: usize,
}

impl ReadCount {
    /// Counts a frame of `len` bytes; returns the `ack` to send, when one is due.
    fn read(&mut self, len: usize) -> Option<String> {
        self.frames += 1;
        self.unacked_frames += 1;
        self.unacked_bytes += len;
        if self.unacked_frames < ACK_FRAMES && self.unacked_bytes < ACK_BYTES {
            return None;
        }
        self.unacked_frames = 0;
        self.unacked_bytes = 0;
        Some(encode(&ClientMessage::Ack {
            frames: self.frames,
        }))
    }
}

/// One collection connection's state across reconnects.
pub(crate) struct Session {
    credential: Credential,
    rng: fastrand::Rng,
    /// The next request or listener id.
    next_id: u64,
    online: bool,
    /// Whether listeners were told the connection is down.
    reported_offline: bool,
    /// Requests not answered yet, in the order they were made, each with its
    /// encoded frame: sent when a connection is up, and sent again unchanged
    /// (same `rid`, same `commit_id`) on each new connection until answered.
    requests: BTreeMap<RequestId, String>,
    listeners: BTreeMap<ListenerId, Listener>,
    /// Listeners the application stopped on the current connection whose
    /// `unlisten` is not answered yet: until it is (or an `error` ends
    /// them), the server may name their documents in held entries (spec
    /// 10.4.9), so their results are kept, take their snapshot if one is
    /// still coming, and follow their target's changes. Nothing of them
    /// reaches the application. Forgotten when the connection drops.
    retired: BTreeMap<ListenerId, Listener>,
    /// The `unlisten`s in flight on the current connection: rid → listener.
    unlistens: BTreeMap<u64, ListenerId>,
    transmits: VecDeque<String>,
    events: VecDeque<Event>,
    /// What was read on the current connection.
    read: ReadCount,
    /// Protocol errors in a row ([`Session::protocol_failed`]).
    protocol_errors: ProtocolErrors,
}

/// Server frames are not bounded by the client frame limits (spec section 4).
fn server_limits() -> Limits {
    Limits {
        max_frame_bytes: usize::MAX,
        max_frame_depth: usize::MAX,
        ..Limits::default()
    }
}

impl Session {
    /// A session that sends `auth` in each `hello` and draws commit ids from
    /// a generator seeded with `seed` (give each session a random one). Its
    /// credential is fixed unless made [`Session::renewable`].
    pub(crate) fn new(auth: Option<String>, seed: u64) -> Self {
        Self {
            credential: Credential::new(auth, false),
            rng: fastrand::Rng::with_seed(seed),
            next_id: 1,
            online: false,
            reported_offline: false,
            requests: BTreeMap::new(),
            listeners: BTreeMap::new(),
            retired: BTreeMap::new(),
            unlistens: BTreeMap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            read: ReadCount::default(),
            protocol_errors: ProtocolErrors::default(),
        }
    }

    /// The driver has a token provider: the session asks for a fresh token
    /// before the credential expires ([`Session::poll_timeout`]), and takes a
    /// few refusals before it gives up ([`Session::auth_failed`]).
    pub(crate) fn renewable(mut self) -> Self {
        self.credential.renewable = true;
        self
    }

    /// The credential for the next `hello`, fresh from the provider.
    pub(crate) fn set_credential(&mut self, token: Option<String>) {
        self.credential.token = token;
    }

    /// Whether a connection is needed: a listener is live or a request waits.
    pub(crate) fn has_work(&self) -> bool {
        !self.listeners.is_empty() || !self.requests.is_empty()
    }

    /// The `hello` frame that opens every connection. It takes held
    /// snapshot entries (spec 10.4.9), which `handle_frame` resolves.
    pub(crate) fn hello(&self) -> String {
        encode(&ClientMessage::Hello {
            protocol: PROTOCOL_VERSION,
            auth: self.credential.token.clone(),
            held_docs: true,
            rid: None,
        })
    }

    fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Takes a request; its answer comes out of [`Session::poll_event`] as an
    /// [`Event::Answer`] with the returned id. A commit gets a fresh random
    /// `commit_id`, so re-sending it after a reconnect cannot apply it twice.
    pub(crate) fn request(&mut self, request: Request) -> RequestId {
        let rid = self.next_id();
        let frame = match request {
            Request::Get(path) => ClientMessage::Get { rid, path },
            Request::Commit(collection, writes) => ClientMessage::Commit {
                rid,
                collection,
                writes,
                commit_id: Some(commit_id::random(&mut self.rng)),
            },
            Request::Query(query) => ClientMessage::Query { rid, query: *query },
            Request::Count(query) => ClientMessage::Count { rid, query: *query },
        };
        let frame = encode(&frame);
        if self.online {
            self.transmits.push_back(frame.clone());
        }
        self.requests.insert(RequestId(rid), frame);
        RequestId(rid)
    }

    /// The caller stopped waiting for `request` (it timed out): it is not
    /// sent again, and its answer, if one comes, is dropped.
    pub(crate) fn cancel(&mut self, request: RequestId) {
        self.requests.remove(&request);
    }

    /// Starts a listener; its updates come out of [`Session::poll_event`].
    pub(crate) fn listen(&mut self, target: ListenTarget) -> ListenerId {
        let id = ListenerId(self.next_id());
        let listener = Listener {
            target,
            results: Results::default(),
            server_target: None,
        };
        if self.online {
            self.transmits.push_back(listen_frame(id, &listener));
        }
        self.listeners.insert(id, listener);
        id
    }

    /// Stops a listener (its stream was dropped). Online, its results are
    /// kept out of sight until the `unlisten` is answered, for the held
    /// entries that may still name them (spec 10.4.9).
    pub(crate) fn unlisten(&mut self, id: ListenerId) {
        let Some(listener) = self.listeners.remove(&id) else {
            return;
        };
        if self.online {
            let rid = self.next_id();
            let frame = ClientMessage::Unlisten {
                rid,
                listener: id.0,
            };
            self.transmits.push_back(encode(&frame));
            self.unlistens.insert(rid, id);
            self.retired.insert(id, listener);
        }
    }

    /// The server answered `welcome` (with `auth`, its view of the
    /// credential) at `now`: listeners resume from their sequence numbers,
    /// then every unanswered request goes out, in the order they were made.
    pub(crate) fn connected(&mut self, auth: Option<&AuthState>, now: u64) {
        self.online = true;
        self.protocol_errors.welcomed(now);
        self.credential
            .connected(auth.and_then(|auth| auth.expires), now);
        // `welcome` is the connection's first frame: read, not acknowledged yet.
        self.read = ReadCount::default();
        self.read.frames = 1;
        self.read.unacked_frames = 1;
        let back = std::mem::take(&mut self.reported_offline);
        for (id, listener) in &self.listeners {
            if back {
                let update = ListenerUpdate::State(ConnectionState::Online);
                self.events.push_back(Event::Listener { id: *id, update });
            }
            self.transmits.push_back(listen_frame(*id, listener));
        }
        self.transmits.extend(self.requests.values().cloned());
    }

    /// The connection (or an attempt to open one) failed. Unanswered
    /// requests, commits included, wait for the next connection (a commit is
    /// re-sent with its `commit_id`, which the server answers with the
    /// original outcome if it applied it); listeners are told.
    pub(crate) fn disconnected(&mut self, attempt: u32, reason: &str) {
        self.online = false;
        self.credential.disconnected();
        self.transmits.clear();
        // Held entries name only what is held on the same connection.
        self.retired.clear();
        self.unlistens.clear();
        self.reported_offline = !self.listeners.is_empty();
        for (id, listener) in &mut self.listeners {
            listener.server_target = None;
            let state = ConnectionState::Offline {
                attempt,
                reason: reason.to_owned(),
            };
            let update = ListenerUpdate::State(state);
            self.events.push_back(Event::Listener { id: *id, update });
        }
    }

    /// The credential could not be had or was refused: the provider failed,
    /// or the server closed the connection with 4001 (spec 13.5). A fixed
    /// credential is not tried again, and a provider's only a few times in a
    /// row: then every request and listener fails with `unauthenticated`
    /// (`message` says why) and the session has no work left, so the driver
    /// stops reconnecting until the application asks for something again.
    pub(crate) fn auth_failed(&mut self, message: &str) {
        if !self.credential.failed() {
            return;
        }
        self.fail_all(|| Error::rejected(ErrorCode::Unauthenticated, message));
    }

    /// The connection was dropped at `now` because the server broke the
    /// protocol (`why`, from [`Session::handle_frame`]). After a few in a
    /// row (`protocol_errors`), every request and listener fails with
    /// [`Error::Protocol`] and the session has no work left, so the driver
    /// stops reconnecting until the application asks for something again.
    pub(crate) fn protocol_failed(&mut self, why: &str, now: u64) {
        if self.protocol_errors.broke(now) {
            self.fail_all(|| Error::Protocol(why.to_owned()));
        }
    }

    /// Fails every request and listener with `error()`.
    fn fail_all(&mut self, error: impl Fn() -> Error) {
        for request in std::mem::take(&mut self.requests).into_keys() {
            let result = Err(error());
            self.events.push_back(Event::Answer { request, result });
        }
        for id in std::mem::take(&mut self.listeners).into_keys() {
            let update = ListenerUpdate::Failed(error());
            self.events.push_back(Event::Listener { id, update });
        }
    }

    /// When the credential is next due for a refresh (then call
    /// [`Session::handle_timeout`]); `None` while none is due: offline, a
    /// credential that does not expire or cannot be renewed, or a refresh
    /// under way.
    pub(crate) fn poll_timeout(&self) -> Option<u64> {
        if self.online {
            self.credential.poll_timeout()
        } else {
            None
        }
    }

    /// The time is `now`. True when the driver should ask its provider for a
    /// fresh token and hand the outcome to [`Session::refresh`].
    pub(crate) fn handle_timeout(&mut self, now: u64) -> bool {
        match self.poll_timeout() {
            Some(due) if due <= now => {
                self.credential.refresh = Refresh::Fetching;
                true
            }
            _ => false,
        }
    }

    /// The provider's answer at `now` to [`Session::handle_timeout`]: a token
    /// goes out in an `auth` frame (spec 13.4) and becomes the credential of
    /// later `hello`s. Without one, nothing is sent: the server closes the
    /// connection when the credential expires (4001), and the driver asks the
    /// provider again before it reconnects.
    pub(crate) fn refresh(&mut self, token: Result<Option<String>, String>, now: u64) {
        self.credential.refresh = Refresh::Idle;
        self.credential.refresh_at = None;
        let Ok(Some(token)) = token else { return };
        self.credential.token = Some(token.clone());
        if self.online {
            let rid = self.next_id();
            let frame = ClientMessage::Auth { rid, auth: token };
            self.transmits.push_back(encode(&frame));
            self.credential.refresh = Refresh::Sent { rid, at: now };
        }
    }

    /// The next frame to send, if any.
    pub(crate) fn poll_transmit(&mut self) -> Option<String> {
        self.transmits.pop_front()
    }

    /// The next answer or listener update, if any.
    pub(crate) fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Handles one server frame after `welcome`. An error means the server
    /// broke the protocol; the driver then drops the connection, and
    /// listeners whose results no longer fit start over with a fresh snapshot.
    /// Every frame counts towards the next `ack` (spec 10.4.6), which
    /// comes out of [`Session::poll_transmit`] once 64 frames or 64 KiB
    /// were read since the last one.
    pub(crate) fn handle_frame(&mut self, text: &str) -> Result<(), Error> {
        if let Some(ack) = self.read.read(text.len()) {
            self.transmits.push_back(ack);
        }
        let message = decode_server(text, &server_limits())
            .map_err(|e| Error::Protocol(format!("undecodable frame: {e:?}")))?;
        match message {
            ServerMessage::Snapshot {
                rid,
                target,
                seq,
                reset,
                docs,
            } => {
                let id = ListenerId(rid);
                let wanted = self.listeners.contains_key(&id) || self.retired.contains_key(&id);
                let docs = if wanted && docs.iter().any(|d| d.held) {
                    self.resolve_held(id, docs)?
                } else {
                    docs
                };
                if let Some(listener) = self.listeners.get_mut(&id) {
                    listener.server_target = Some(target);
                    let changes = listener.results.replace(seq, docs);
                    let snapshot = listener.results.query_snapshot(changes, reset);
                    let update = ListenerUpdate::Snapshot(snapshot);
                    self.events.push_back(Event::Listener { id, update });
                } else if let Some(listener) = self.retired.get_mut(&id) {
                    // Answers a listener being unlistened: kept for held entries.
                    listener.server_target = Some(target);
                    listener.results.replace(seq, docs);
                }
            }
            ServerMessage::Resumed {
                rid,
                target,
                seq,
                changes,
            } => {
                let id = ListenerId(rid);
                if let Some(listener) = self.listeners.get_mut(&id) {
                    listener.server_target = Some(target);
                    apply(id, listener, seq, &changes, &mut self.events)?;
                } else if let Some(listener) = self.retired.get_mut(&id) {
                    listener.server_target = Some(target);
                    if listener.results.apply(seq, &changes).is_err() {
                        // Nobody wants it: not worth a reconnect. A held
                        // entry naming its documents is then unresolvable.
                        self.retired.remove(&id);
                    }
                }
            }
            ServerMessage::Change {
                target,
                seq,
                changes,
            } => {
                for (id, listener) in &mut self.listeners {
                    if listener.server_target == Some(target) {
                        apply(*id, listener, seq, &changes, &mut self.events)?;
                    }
                }
                // Listeners being unlistened follow too (held entries name
                // their results as they are now); one that no longer fits
                // is dropped, as in `resumed`.
                self.retired.retain(|_, listener| {
                    listener.server_target != Some(target)
                        || listener.results.apply(seq, &changes).is_ok()
                });
            }
            ServerMessage::Authenticated { rid, auth } => {
                if let Refresh::Sent { rid: sent, at } = self.credential.refresh {
                    if sent == rid {
                        self.credential.connected(auth.expires, at);
                    }
                }
            }
            ServerMessage::Error {
                rid: Some(rid),
                error,
            } => {
                let (request, id) = (RequestId(rid), ListenerId(rid));
                if matches!(self.credential.refresh, Refresh::Sent { rid: sent, .. } if sent == rid)
                {
                    // Refused (spec 13.4): the connection keeps its credential
                    // until it expires, and the next one gets a fresh token.
                    self.credential.refresh = Refresh::Idle;
                } else if self.requests.remove(&request).is_some() {
                    let result = Err(error.into());
                    self.events.push_back(Event::Answer { request, result });
                } else if self.listeners.remove(&id).is_some() {
                    let update = ListenerUpdate::Failed(error.into());
                    self.events.push_back(Event::Listener { id, update });
                } else if let Some(listener) = self.unlistens.remove(&rid) {
                    // An `unlisten` refused (the listener had ended): its end.
                    self.retired.remove(&listener);
                } else {
                    // The server ended a listener being unlistened (10.4.5).
                    self.retired.remove(&id);
                }
            }
            ServerMessage::Error { rid: None, error } => {
                return Err(Error::Protocol(format!(
                    "error without a request id: {}",
                    error.message
                )))
            }
            ServerMessage::Unlistened { rid } => {
                // The listener's end: its documents are named no more.
                if let Some(listener) = self.unlistens.remove(&rid) {
                    self.retired.remove(&listener);
                }
            }
            ServerMessage::Welcome { .. } => {}
            answer @ (ServerMessage::Doc { rid, .. }
            | ServerMessage::Committed { rid, .. }
            | ServerMessage::QueryResult { rid, .. }
            | ServerMessage::CountResult { rid, .. }) => {
                let request = RequestId(rid);
                if self.requests.remove(&request).is_some() {
                    let result = Ok(answer);
                    self.events.push_back(Event::Answer { request, result });
                }
            }
        }
        Ok(())
    }

    /// `docs` of a snapshot for listener `id` with each held entry (spec
    /// 10.4.9) replaced by the copy another listener answered on this
    /// connection holds at the same path and version: a live one, or one
    /// whose `unlisten` is in flight. One pass over their results per frame
    /// that has held entries, stopping once every entry is found. An entry
    /// nobody holds is the server's error.
    fn resolve_held(
        &self,
        id: ListenerId,
        docs: Vec<DocSnapshot>,
    ) -> Result<Vec<DocSnapshot>, Error> {
        let mut copies: HashMap<(&str, u64), Option<&DocSnapshot>> = HashMap::new();
        for doc in docs.iter().filter(|d| d.held) {
            let version = doc.version.ok_or_else(|| {
                Error::Protocol(format!("held entry {} without a version", doc.path))
            })?;
            copies.insert((doc.path.as_str(), version), None);
        }
        let mut missing = copies.len();
        let holders = self
            .listeners
            .iter()
            .chain(&self.retired)
            .filter(|(other, listener)| **other != id && listener.server_target.is_some())
            .flat_map(|(_, listener)| listener.results.docs());
        for doc in holders {
            if missing == 0 {
                break;
            }
            let Some(version) = doc.version else { continue };
            if let Some(slot @ None) = copies.get_mut(&(doc.path.as_str(), version)) {
                *slot = Some(doc);
                missing -= 1;
            }
        }
        let mut found = Vec::with_capacity(copies.len());
        for doc in docs.iter().filter(|d| d.held) {
            let key = (doc.path.as_str(), doc.version.unwrap_or_default());
            match copies.get(&key).copied().flatten() {
                Some(copy) => found.push(copy.clone()),
                None => {
                    return Err(Error::Protocol(format!(
                        "held entry {} at version {} is held by no other listener",
                        key.0, key.1
                    )))
                }
            }
        }
        let mut found = found.into_iter();
        Ok(docs
            .into_iter()
            .map(|doc| {
                if doc.held {
                    found.next().expect("one copy per held entry")
                } else {
                    doc
                }
            })
            .collect())
    }
}

fn listen_frame(id: ListenerId, listener: &Listener) -> String {
    let (doc, query) = match &listener.target {
        ListenTarget::Doc(path) => (Some(path.clone()), None),
        ListenTarget::Query(query) => (None, Some((**query).clone())),
    };
    encode(&ClientMessage::Listen {
        rid: id.0,
        doc,
        query,
        since: listener.results.seq(),
    })
}

fn apply(
    id: ListenerId,
    listener: &mut Listener,
    seq: u64,
    changes: &[blaze_protocol::Change],
    events: &mut VecDeque<Event>,
) -> Result<(), Error> {
    match listener.results.apply(seq, changes) {
        Ok(changes) => {
            // A resume that missed nothing has no changes, and makes no snapshot.
            if !changes.is_empty() {
                let snapshot = listener.results.query_snapshot(changes, false);
                let update = ListenerUpdate::Snapshot(snapshot);
                events.push_back(Event::Listener { id, update });
            }
            Ok(())
        }
        Err(why) => {
            listener.results.forget_seq();
            Err(Error::Protocol(why))
        }
    }
}

#[cfg(test)]
mod hub_tests;
#[cfg(test)]
mod tests;
