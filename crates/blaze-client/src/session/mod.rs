//! One collection connection's protocol state, without I/O: requests waiting
//! for a connection or an answer, listeners and their results, and the frames
//! to send. The driver feeds it events (`command`, `handle_frame`,
//! `connected`, `disconnected`) and drains `poll_transmit`; answers and
//! listener events leave through channels. Tests drive it frame by frame.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use blaze_protocol::{
    decode_server, encode, ClientMessage, Limits, Query, ServerMessage, Write, PROTOCOL_VERSION,
};
use tokio::sync::{mpsc, oneshot};

use crate::results::Results;
use crate::snapshot::QuerySnapshot;
use crate::Error;

/// A request that expects one answer.
#[derive(Clone, Debug)]
pub(crate) enum Request {
    /// Read one document.
    Get(String),
    /// Commit a batch to the collection.
    Commit(String, Vec<Write>),
    /// Run a query.
    Query(Box<Query>),
    /// Count a query's results.
    Count(Box<Query>),
}

impl Request {
    fn frame(&self, rid: u64) -> ClientMessage {
        match self.clone() {
            Request::Get(path) => ClientMessage::Get { rid, path },
            Request::Commit(collection, writes) => ClientMessage::Commit {
                rid,
                collection,
                writes,
            },
            Request::Query(query) => ClientMessage::Query { rid, query: *query },
            Request::Count(query) => ClientMessage::Count { rid, query: *query },
        }
    }
}

/// Where a request's answer goes.
pub(crate) type Reply = oneshot::Sender<Result<ServerMessage, Error>>;

/// What a listener follows.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ListenTarget {
    /// One document, by path.
    Doc(String),
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

/// What a listener's stream receives from the session.
#[derive(Debug)]
pub(crate) enum Event {
    /// New results.
    Snapshot(QuerySnapshot),
    /// The connection went down or came back.
    State(ConnectionState),
    /// The server refused the listener; the stream ends.
    Failed(Error),
}

/// What the API sends the driver.
pub(crate) enum Command {
    /// Send a request; answer through the reply.
    Request(Request, Reply),
    /// Start listener `id`.
    Listen(u64, ListenTarget, mpsc::UnboundedSender<Event>),
    /// Stop listener `id` (its stream was dropped).
    Unlisten(u64),
}

struct Listener {
    target: ListenTarget,
    results: Results,
    /// The server's target number on the current connection, once answered.
    server_target: Option<u64>,
    events: mpsc::UnboundedSender<Event>,
}

/// One collection connection's state across reconnects.
pub(crate) struct Session {
    auth: Option<String>,
    ids: Arc<AtomicU64>,
    online: bool,
    /// Whether listeners were told the connection is down.
    reported_offline: bool,
    queued: VecDeque<(u64, Request, Reply)>,
    in_flight: HashMap<u64, (Request, Reply)>,
    listeners: BTreeMap<u64, Listener>,
    outbox: VecDeque<String>,
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
    /// A session that sends `auth` in each `hello` and takes request ids from `ids`.
    pub(crate) fn new(auth: Option<String>, ids: Arc<AtomicU64>) -> Self {
        Self {
            auth,
            ids,
            online: false,
            reported_offline: false,
            queued: VecDeque::new(),
            in_flight: HashMap::new(),
            listeners: BTreeMap::new(),
            outbox: VecDeque::new(),
        }
    }

    /// Whether a connection is needed: a listener is live or a request waits.
    pub(crate) fn has_work(&mut self) -> bool {
        self.queued.retain(|(_, _, reply)| !reply.is_closed());
        !self.listeners.is_empty() || !self.queued.is_empty() || !self.in_flight.is_empty()
    }

    /// The `hello` frame that opens every connection.
    pub(crate) fn hello(&self) -> String {
        encode(&ClientMessage::Hello {
            protocol: PROTOCOL_VERSION,
            auth: self.auth.clone(),
        })
    }

    /// Takes in a command from the API.
    pub(crate) fn command(&mut self, command: Command) {
        match command {
            Command::Request(request, reply) => {
                let rid = self.ids.fetch_add(1, Ordering::Relaxed);
                match self.online {
                    true => self.send_request(rid, request, reply),
                    false => self.queued.push_back((rid, request, reply)),
                }
            }
            Command::Listen(id, target, events) => {
                let listener = Listener {
                    target,
                    results: Results::default(),
                    server_target: None,
                    events,
                };
                if self.online {
                    self.outbox.push_back(listen_frame(id, &listener));
                }
                self.listeners.insert(id, listener);
            }
            Command::Unlisten(id) => {
                if self.listeners.remove(&id).is_some() && self.online {
                    let rid = self.ids.fetch_add(1, Ordering::Relaxed);
                    let frame = ClientMessage::Unlisten { rid, listener: id };
                    self.outbox.push_back(encode(&frame));
                }
            }
        }
    }

    fn send_request(&mut self, rid: u64, request: Request, reply: Reply) {
        if reply.is_closed() {
            return; // the caller gave up (timed out) before it was sent
        }
        self.outbox.push_back(encode(&request.frame(rid)));
        self.in_flight.insert(rid, (request, reply));
    }

    /// The server answered `welcome`: listeners resume from their sequence
    /// numbers and waiting requests go out, in the order they were made.
    pub(crate) fn connected(&mut self) {
        self.online = true;
        let state = std::mem::take(&mut self.reported_offline).then_some(ConnectionState::Online);
        for (id, listener) in &self.listeners {
            if let Some(state) = &state {
                let _ = listener.events.send(Event::State(state.clone()));
            }
            self.outbox.push_back(listen_frame(*id, listener));
        }
        while let Some((rid, request, reply)) = self.queued.pop_front() {
            self.send_request(rid, request, reply);
        }
    }

    /// The connection (or an attempt to open one) failed. Reads in flight
    /// wait for the next connection; commits in flight fail with
    /// [`Error::CommitOutcomeUnknown`]; listeners are told.
    pub(crate) fn disconnected(&mut self, attempt: u32, reason: &str) {
        self.online = false;
        self.outbox.clear();
        let mut in_flight: Vec<_> = self.in_flight.drain().collect();
        in_flight.sort_by_key(|(rid, _)| std::cmp::Reverse(*rid));
        for (rid, (request, reply)) in in_flight {
            match request {
                Request::Commit(..) => {
                    let _ = reply.send(Err(Error::CommitOutcomeUnknown));
                }
                _ => self.queued.push_front((rid, request, reply)),
            }
        }
        self.reported_offline = !self.listeners.is_empty();
        for listener in self.listeners.values_mut() {
            listener.server_target = None;
            let state = ConnectionState::Offline {
                attempt,
                reason: reason.to_owned(),
            };
            let _ = listener.events.send(Event::State(state));
        }
    }

    /// The next frame to send, if any.
    pub(crate) fn poll_transmit(&mut self) -> Option<String> {
        self.outbox.pop_front()
    }

    /// Handles one server frame after `welcome`. An error means the server
    /// broke the protocol; the driver then drops the connection, and
    /// listeners whose results no longer fit start over with a fresh snapshot.
    pub(crate) fn handle_frame(&mut self, text: &str) -> Result<(), Error> {
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
                if let Some(listener) = self.listeners.get_mut(&rid) {
                    listener.server_target = Some(target);
                    let changes = listener.results.replace(seq, docs);
                    let snapshot = listener.results.query_snapshot(changes, reset);
                    let _ = listener.events.send(Event::Snapshot(snapshot));
                }
            }
            ServerMessage::Resumed {
                rid,
                target,
                seq,
                changes,
            } => {
                if let Some(listener) = self.listeners.get_mut(&rid) {
                    listener.server_target = Some(target);
                    apply(listener, seq, &changes)?;
                }
            }
            ServerMessage::Change {
                target,
                seq,
                changes,
            } => {
                for listener in self.listeners.values_mut() {
                    if listener.server_target == Some(target) {
                        apply(listener, seq, &changes)?;
                    }
                }
            }
            ServerMessage::Error {
                rid: Some(rid),
                error,
            } => {
                if let Some((_, reply)) = self.in_flight.remove(&rid) {
                    let _ = reply.send(Err(error.into()));
                } else if let Some(listener) = self.listeners.remove(&rid) {
                    let _ = listener.events.send(Event::Failed(error.into()));
                }
            }
            ServerMessage::Error { rid: None, error } => {
                return Err(Error::Protocol(format!(
                    "error without a request id: {}",
                    error.message
                )))
            }
            ServerMessage::Unlistened { .. } | ServerMessage::Welcome { .. } => {}
            answer @ (ServerMessage::Doc { rid, .. }
            | ServerMessage::Committed { rid, .. }
            | ServerMessage::QueryResult { rid, .. }
            | ServerMessage::CountResult { rid, .. }) => {
                if let Some((_, reply)) = self.in_flight.remove(&rid) {
                    let _ = reply.send(Ok(answer));
                }
            }
        }
        Ok(())
    }
}

fn listen_frame(id: u64, listener: &Listener) -> String {
    let (doc, query) = match &listener.target {
        ListenTarget::Doc(path) => (Some(path.clone()), None),
        ListenTarget::Query(query) => (None, Some((**query).clone())),
    };
    encode(&ClientMessage::Listen {
        rid: id,
        doc,
        query,
        since: listener.results.seq(),
    })
}

fn apply(
    listener: &mut Listener,
    seq: u64,
    changes: &[blaze_protocol::Change],
) -> Result<(), Error> {
    match listener.results.apply(seq, changes) {
        Ok(changes) => {
            // A resume that missed nothing has no changes, and makes no snapshot.
            if !changes.is_empty() {
                let snapshot = listener.results.query_snapshot(changes, false);
                let _ = listener.events.send(Event::Snapshot(snapshot));
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
mod tests;
