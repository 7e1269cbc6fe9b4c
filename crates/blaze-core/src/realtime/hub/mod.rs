//! The realtime hub: a sans-IO state machine that serves the WebSocket
//! protocol of `spec/protocol.md` section 10 over a [`Database`].
//!
//! Input goes in through `handle_*` (a connection opened, a frame arrived,
//! a connection closed), with the time as an argument;
//! output comes out of [`Hub::poll_output`] until it returns `None`: frames to
//! send, connections to close, and events that say what happened (for logs),
//! so a driver never reads the frames it is handed. Writes are persisted through the
//! [`Storage`] trait before any frame about them is produced.
//!
//! Listeners of the same document or query share one *target*: one view,
//! refreshed once per commit, whose `change` frame is encoded once and handed
//! to every subscribed connection as a pointer ([`Frame`] is an `Arc<str>`).
//! Targets are filed in a [`ListenerIndex`] by their equality conjuncts, so a
//! commit visits only the targets it can affect.
//!
//! Flow control (spec 10.4.6): each connection counts the frames handed out
//! for it until the client acknowledges reading them (`ack`). Past half of
//! the `max_unread_*` limits its further requests are held, in order, and
//! answered as acks arrive; past the limits (unread frames, or held
//! requests) it is closed with 4008 `slow_consumer`.
//!
//! Identity (spec 13): the hub never sees a clock or a key. A `hello` or
//! `auth` carrying a credential becomes [`HubEvent::Verify`]; the driver
//! verifies it and answers with [`Hub::handle_verified`], and the
//! connection's later frames are held (in the same queue as flow control's)
//! until then. A connection's credential may expire: the hub keeps the
//! latest `now` it was given and never sends a frame to a connection at or
//! past its expiry, closing it with 4001 `token_expired` instead;
//! [`Hub::poll_timeout`] says when to call [`Hub::handle_timeout`].

mod connection;
mod fan_out;
mod guard;
mod handshake;
mod listen;
mod output;
mod session;
mod target;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use blaze_protocol::{
    decode_client, encode, ClientMessage, CloseCode, CollectionPath, CommitId, CommitResult,
    DocPath, DocSnapshot, ErrorBody, ErrorCode, Identity, Query, ServerMessage, Write,
};

use crate::database::{CommitOutcome, Database, Guard, QueryOutput};
use crate::error::{Denial, Error, Rejection};
use crate::realtime::bodies::Bodies;
use crate::realtime::listener_index::ListenerIndex;
use crate::rules::{Access, FetchedDocs};
use crate::store::{CommitKey, Storage};
use connection::{Connection, FlowBounds};
pub use guard::Caller;
use guard::Read;
pub use output::{HubEvent, Output};
pub use session::{SavedListener, SavedSession};
use target::Target;

/// A connection id, chosen by the driver; unique among open connections.
pub type ConnId = u64;

/// An encoded text frame, shared by every connection it goes to.
pub type Frame = Arc<str>;

/// The hub's configuration beyond the announced [`Limits`](blaze_protocol::Limits)
/// (the bounds on each connection's unread output are limits: clients are
/// told them): the memory it may hold for its clients (spec 10.4.8), how
/// many connections it keeps open at once (spec 10.1), and how often a listener resting on documents of other collections is checked
/// again (spec 14.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HubConfig {
    /// Most estimated bytes of views, targets and listener tables, all
    /// connections together (each shared document body counted once).
    pub memory_budget: usize,
    /// Most estimated bytes one connection's listeners hold (their targets
    /// and the bodies of their results, counted in full).
    pub connection_budget: usize,
    /// Most connections open at once; one more is refused before it opens
    /// (see [`Hub::admit_connection`]). One user may hold an eighth of them
    /// (rounded up): past that, their `hello` is refused; so may one
    /// client network in connections without a user's or an admin's credential:
    /// past that, one more is refused before it opens.
    pub max_connections: usize,
    /// How long (ms) a connection may stay open without its first frame
    /// (`hello`) before it is closed with 4002 `handshake_required`.
    pub hello_timeout_ms: u64,
    /// How long (ms) a listener whose access rules read documents of other
    /// collections keeps its permission before those documents are fetched
    /// and the rules checked again.
    pub foreign_recheck_ms: u64,
}

impl Default for HubConfig {
    /// A 64 MiB memory budget, 8 MiB (1/8) of it per connection; 4,096
    /// connections, each saying `hello` within 10 s; documents of other
    /// collections checked again every minute.
    fn default() -> Self {
        Self {
            memory_budget: 64 * 1024 * 1024,
            connection_budget: 8 * 1024 * 1024,
            max_connections: 4096,
            hello_timeout_ms: 10_000,
            foreign_recheck_ms: 60_000,
        }
    }
}

/// How much the hub holds (for tests and monitoring).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HubStats {
    /// Open connections.
    pub connections: usize,
    /// Live listeners, over all connections.
    pub listeners: usize,
    /// Distinct targets those listeners follow.
    pub targets: usize,
    /// (document, listener) pairs watched to check the listener again
    /// against the access rules when the document changes (spec 14.3).
    pub watches: usize,
}

/// The realtime state machine over one database.
///
/// ```
/// use blaze_core::{Database, Hub, HubConfig, Limits, MemoryStorage, Output};
///
/// let db = Database::new(MemoryStorage::new(), Limits::default());
/// let mut hub = Hub::new(db, HubConfig::default());
/// let now_ms = 1_700_000_000_000;
/// hub.handle_open(1, now_ms);
/// hub.handle_frame(1, r#"{"type":"hello","protocol":1}"#, now_ms);
/// hub.handle_frame(1, r#"{"type":"listen","rid":1,"query":{"collection":"rooms"}}"#, now_ms);
/// hub.handle_frame(1, r#"{"type":"commit","rid":2,"collection":"rooms","writes":[{"op":"set","id":"r1","data":{}}]}"#, now_ms);
/// let mut frames = Vec::new();
/// while let Some(output) = hub.poll_output() {
///     if let Output::Send { conn, frame } = output {
///         frames.push(frame); // a real driver writes it to `conn`'s socket
///     }
/// }
/// let kinds: Vec<&str> = frames.iter().map(|f| &f[..f.find(',').unwrap()]).collect();
/// assert_eq!(kinds, [r#"{"type":"welcome""#, r#"{"type":"snapshot""#, r#"{"type":"change""#, r#"{"type":"committed""#]);
/// ```
pub struct Hub<S> {
    db: Database<S>,
    config: HubConfig,
    scope: Option<CollectionPath>,
    conns: HashMap<ConnId, Connection>,
    targets: HashMap<u64, Box<Target>>,
    target_by_key: HashMap<Arc<str>, u64>,
    target_index: HashMap<String, ListenerIndex<u64>>,
    next_target: u64,
    outputs: VecDeque<Output>,
    /// The bytes of the answers among `outputs` (see [`Hub::answer_bytes`]).
    answer_bytes: usize,
    bodies: Bodies,
    /// The latest time the driver gave (milliseconds since the Unix epoch).
    now: u64,
    /// Why a `hello` without a credential is refused, when it is.
    anonymous_refused: Option<Rejection>,
    /// The access rules (spec 14).
    access: Access,
    /// Listeners to check again when a document changes, by that document.
    rechecks: HashMap<DocPath, BTreeSet<(ConnId, u64)>>,
    /// Whether only the driver writes (see [`Hub::driver_written`]).
    driver_written: bool,
}

impl<S: Storage> Hub<S> {
    /// A hub serving `db`.
    pub fn new(db: Database<S>, config: HubConfig) -> Self {
        Self {
            db,
            config,
            scope: None,
            conns: HashMap::new(),
            targets: HashMap::new(),
            target_by_key: HashMap::new(),
            target_index: HashMap::new(),
            next_target: 1,
            outputs: VecDeque::new(),
            answer_bytes: 0,
            bodies: Bodies::new(),
            now: 0,
            anonymous_refused: None,
            access: Access::Open,
            rechecks: HashMap::new(),
            driver_written: false,
        }
    }

    /// The same hub refusing `hello` without a credential with `why` (an
    /// `unauthenticated` rejection) and close 4001: for a server whose
    /// identity configuration is broken, which must not be open.
    pub fn refusing_anonymous(self, why: Rejection) -> Self {
        Self {
            anonymous_refused: Some(why),
            ..self
        }
    }

    /// The same hub refusing every `commit` frame with `permission_denied`:
    /// for a collection only the driver writes (through
    /// [`Hub::handle_commit`]), such as the metadata of stored files.
    pub fn driver_written(self) -> Self {
        Self {
            driver_written: true,
            ..self
        }
    }

    /// The same hub serving only `collection`: a request naming any other
    /// collection is refused with `wrong_collection` (a server that keeps
    /// each collection in its own object).
    pub fn scoped(self, collection: CollectionPath) -> Self {
        Self {
            scope: Some(collection),
            ..self
        }
    }

    /// Gives the database back, dropping every connection's state (as a
    /// Durable Object that hibernates loses its memory).
    pub fn into_database(self) -> Database<S> {
        self.db
    }

    /// The database, for reads that need no connection (such as HTTP `GET`).
    pub fn database(&self) -> &Database<S> {
        &self.db
    }

    /// What the hub holds now.
    pub fn stats(&self) -> HubStats {
        HubStats {
            connections: self.conns.len(),
            listeners: self.conns.values().map(|c| c.listeners.len()).sum(),
            targets: self.targets.len(),
            watches: self.rechecks.values().map(BTreeSet::len).sum(),
        }
    }

    /// The next thing the driver must do; call until `None` after every `handle_*`.
    pub fn poll_output(&mut self) -> Option<Output> {
        let output = self.outputs.pop_front();
        if output.is_none() {
            self.answer_bytes = 0;
        }
        output
    }

    /// The bytes of the answers to requests (every frame but `change`
    /// frames, which are shared between connections) handed out since
    /// [`Hub::poll_output`] last returned `None`. A driver that holds the
    /// outputs of a group of frames until they are durable can end the group
    /// early when this grows, so that what one group holds stays bounded
    /// whatever its clients ask for.
    pub fn answer_bytes(&self) -> usize {
        self.answer_bytes
    }

    /// Whether one more connection may open from `network` (the client
    /// network the driver saw it come from, if it can tell): `resource_exhausted`
    /// when [`HubConfig::max_connections`] are open, or when that network
    /// holds its share of them (an eighth, rounded up) in connections not
    /// identified as a user's or an admin's (spec 10.1). The driver asks
    /// before it accepts a socket and answers a refusal instead of opening
    /// one; the open connections are not disturbed.
    pub fn admit_connection(&self, network: Option<&str>) -> Result<(), Rejection> {
        let max = self.config.max_connections;
        if self.conns.len() >= max {
            let msg = format!("this collection has {max} connections open, its most");
            return Err(Rejection::new(ErrorCode::ResourceExhausted, msg));
        }
        let Some(network) = network else {
            return Ok(());
        };
        let unidentified = |c: &&Connection| {
            c.identity == Identity::Anonymous && c.network.as_deref() == Some(network)
        };
        let open = self.conns.values().filter(unidentified).count();
        if open < self.share() {
            return Ok(());
        }
        let msg = format!(
            "this network has {open} connections to this collection without a user's or an admin's credential, its most"
        );
        Err(Rejection::new(ErrorCode::ResourceExhausted, msg))
    }

    /// Most connections one user, or one network's unidentified
    /// connections, may hold: an eighth of [`HubConfig::max_connections`],
    /// rounded up.
    fn share(&self) -> usize {
        self.config.max_connections.div_ceil(8)
    }

    /// A connection opened at `now` (milliseconds since the Unix epoch); it
    /// must send `hello` first, within [`HubConfig::hello_timeout_ms`].
    /// Reusing the id of an open connection drops that connection's state.
    pub fn handle_open(&mut self, conn: ConnId, now: u64) {
        self.handle_open_from(conn, now, None);
    }

    /// [`Hub::handle_open`] for a connection the driver saw come from
    /// `network` (the one it gave [`Hub::admit_connection`]).
    pub fn handle_open_from(&mut self, conn: ConnId, now: u64, network: Option<String>) {
        self.forget(conn);
        let hello_due = now.saturating_add(self.config.hello_timeout_ms);
        self.conns.insert(conn, Connection::new(hello_due, network));
    }

    /// A connection closed (by the peer or the transport): its listeners are freed.
    pub fn handle_close(&mut self, conn: ConnId) {
        self.forget(conn);
    }

    /// A binary frame arrived on `conn`: the protocol speaks text only.
    pub fn handle_binary(&mut self, conn: ConnId) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let error = Rejection::new(ErrorCode::InvalidFrame, "binary frames are not accepted");
        if c.open || c.verifying.is_some() {
            self.send_error(conn, None, &error.into());
        } else {
            self.refuse_handshake(conn, ErrorCode::HandshakeRequired, "expected hello");
        }
    }

    /// A text frame arrived on `conn` at time `now` (milliseconds since the
    /// Unix epoch). A connection whose credential has expired is closed
    /// (4001 `token_expired`) and the frame is not read.
    pub fn handle_frame(&mut self, conn: ConnId, text: &str, now: u64) {
        self.now = now;
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        if c.expired(now) {
            return self.close(conn, CloseCode::TokenExpired);
        }
        let starting = !c.open && c.verifying.is_none();
        let decoded = decode_client(text, self.db.limits());
        if starting {
            return self.handshake(conn, decoded.ok());
        }
        if let Ok(ClientMessage::Ack { frames }) = decoded {
            return self.ack(conn, frames, now);
        }
        let bounds = self.bounds();
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.busy(bounds) {
            if !c.hold(text, bounds) {
                self.close(conn, CloseCode::SlowConsumer);
            }
            return;
        }
        self.answer(conn, text, decoded, now);
    }

    /// The client of `conn` read its first `frames` frames: answers the
    /// requests held for it while its unread output allows.
    fn ack(&mut self, conn: ConnId, frames: u64, now: u64) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.ack(frames);
        }
        self.release_held(conn, now);
    }

    /// Answers the requests held for `conn`, in order, while it is neither
    /// verifying a credential nor reading too slowly.
    fn release_held(&mut self, conn: ConnId, now: u64) {
        let bounds = self.bounds();
        while let Some(text) = self.conns.get_mut(&conn).and_then(|c| c.release(bounds)) {
            let decoded = decode_client(&text, self.db.limits());
            self.answer(conn, &text, decoded, now);
        }
    }

    /// When [`Hub::handle_timeout`] must next be called: the earliest expiry
    /// of a connection's credential or of its time to say `hello`
    /// (milliseconds since the Unix epoch).
    pub fn poll_timeout(&self) -> Option<u64> {
        let expiry = self.conns.values().filter_map(|c| c.expires);
        let hello = self.conns.values().filter(|c| c.waiting_for_hello());
        let hello = hello.map(|c| c.hello_due);
        expiry.chain(hello).chain(self.refetch_due()).min()
    }

    /// Time passed to `now`: every connection whose credential has expired
    /// is closed with 4001 `token_expired`, and every connection that has
    /// not sent its first frame in time with 4002 `handshake_required`.
    pub fn handle_timeout(&mut self, now: u64) {
        self.now = now;
        let due = |pick: fn(&Connection, u64) -> bool| {
            let mut conns: Vec<ConnId> = self
                .conns
                .iter()
                .filter(|(_, c)| pick(c, now))
                .map(|(&conn, _)| conn)
                .collect();
            conns.sort_unstable();
            conns
        };
        let (expired, silent) = (due(Connection::expired), due(Connection::silent_past));
        for conn in expired {
            self.close(conn, CloseCode::TokenExpired);
        }
        let msg = format!("no hello within {} ms", self.config.hello_timeout_ms);
        for conn in silent {
            self.refuse_handshake(conn, ErrorCode::HandshakeRequired, &msg);
        }
        self.refetch_due_listeners(now);
    }

    /// Answers one decoded request frame (`text`) of an open connection,
    /// with the documents of other collections fetched for it so far.
    fn answer(
        &mut self,
        conn: ConnId,
        text: &str,
        decoded: Result<ClientMessage, blaze_protocol::DecodeError>,
        now: u64,
    ) {
        let message = match decoded {
            Ok(message) => message,
            Err(e) => {
                let error = Rejection::new(e.code, e.message).into();
                return self.send_error(conn, e.rid, &error);
            }
        };
        let rid = request_id(&message);
        let fetched = self
            .conns
            .get_mut(&conn)
            .and_then(|c| c.fetching.take())
            .map(|f| f.fetched)
            .unwrap_or_default();
        match self.request(conn, message.clone(), &fetched, now) {
            Ok(()) => {}
            Err(Error::NeedDocuments(paths)) => self.fetch(conn, text, fetched, paths),
            Err(error) => self.send_error(conn, rid, &error),
        }
    }

    /// The announced bounds on each connection's unread output.
    fn bounds(&self) -> FlowBounds {
        let limits = self.db.limits();
        FlowBounds {
            frames: limits.max_unread_frames,
            bytes: limits.max_unread_bytes,
        }
    }

    /// Commits `writes` to `collection` at `now` and delivers the changes to
    /// every affected listener, for drivers that take writes outside a
    /// connection (such as HTTP).
    pub fn handle_commit(
        &mut self,
        caller: &Caller,
        collection: &CollectionPath,
        writes: &[Write],
        now: u64,
    ) -> Result<CommitResult, Error> {
        self.handle_commit_with_id(caller, collection, writes, None, now)
    }

    /// [`Hub::handle_commit`] with the client's optional commit id: a commit
    /// whose id the collection remembers from the same caller is answered
    /// with its original result, writes nothing and sends no listener
    /// anything (see [`Database::commit_with_id`]).
    pub fn handle_commit_with_id(
        &mut self,
        caller: &Caller,
        collection: &CollectionPath,
        writes: &[Write],
        commit_id: Option<&CommitId>,
        now: u64,
    ) -> Result<CommitResult, Error> {
        self.commit_as(
            &caller.identity,
            &caller.fetched,
            collection,
            writes,
            commit_id,
            now,
        )
    }

    /// Whether `caller` may commit `writes` to `collection` now: every check
    /// of [`Hub::handle_commit`] (limits, preconditions, rules), nothing
    /// written and nothing sent. A driver asks before work it would have to
    /// undo, such as storing a file whose metadata the rules might refuse.
    pub fn check_commit(
        &mut self,
        caller: &Caller,
        collection: &CollectionPath,
        writes: &[Write],
        now: u64,
    ) -> Result<(), Error> {
        self.now = now;
        self.check_scope(collection)?;
        if !caller.fetched.is_empty() {
            self.within_fetched_bytes(&caller.fetched)?;
        }
        let guard = Guard {
            access: &self.access,
            identity: &caller.identity,
            local: self.scope.as_ref(),
            fetched: &caller.fetched,
        };
        let guard = (!matches!(self.access, Access::Open)).then_some(&guard);
        let checked = self.db.check_guarded(collection, writes, now, guard);
        guard::bounded_fetches(checked, &caller.fetched)
    }

    /// Commits as `identity`, checked against the access rules.
    fn commit_as(
        &mut self,
        identity: &Identity,
        fetched: &FetchedDocs,
        collection: &CollectionPath,
        writes: &[Write],
        commit_id: Option<&CommitId>,
        now: u64,
    ) -> Result<CommitResult, Error> {
        self.now = now;
        self.check_scope(collection)?;
        if !fetched.is_empty() {
            self.within_fetched_bytes(fetched)?;
        }
        let guard = Guard {
            access: &self.access,
            identity,
            local: self.scope.as_ref(),
            fetched,
        };
        let guard = (!matches!(self.access, Access::Open)).then_some(&guard);
        let key = commit_id.map(|id| CommitKey::new(id, identity));
        let outcome = self
            .db
            .commit_guarded(collection, writes, key.as_ref(), now, guard);
        match guard::bounded_fetches(outcome, fetched)? {
            CommitOutcome::Applied(committed) => {
                self.fan_out(collection.as_str(), &committed.record);
                Ok(committed.result)
            }
            CommitOutcome::Replayed(result) => Ok(result),
        }
    }

    /// Reads one document as `caller`, for drivers that read outside a
    /// connection (such as HTTP). A document the rules deny is
    /// `permission_denied` whether or not it exists.
    pub fn get(&self, caller: &Caller, path: &DocPath) -> Result<DocSnapshot, Error> {
        self.check_scope(&path.collection())?;
        self.check_read(
            &caller.identity,
            &caller.fetched,
            &Read::Doc(path),
            self.now,
        )?;
        self.db.get(path)
    }

    /// Runs a query as `caller`, for drivers that read outside a connection
    /// (such as HTTP): allowed only when the rules' `list` holds for every
    /// document it could return.
    pub fn query(&self, caller: &Caller, query: &Query) -> Result<QueryOutput, Error> {
        self.check_scope(&query.collection)?;
        self.check_query(&caller.identity, &caller.fetched, query, self.now)?;
        self.db.query(query)
    }

    /// Counts a query's results as `caller`, for drivers that read outside
    /// a connection (such as HTTP); returns `(seq, count)`. The rules are
    /// those of the query.
    pub fn count(&self, caller: &Caller, query: &Query) -> Result<(u64, u64), Error> {
        self.check_scope(&query.collection)?;
        self.check_query(&caller.identity, &caller.fetched, query, self.now)?;
        self.db.count(query)
    }

    /// Sets the time the hub reads by (milliseconds since the Unix epoch),
    /// for drivers that call [`Hub::get`], [`Hub::query`] or [`Hub::count`]:
    /// the rules' `request.time`.
    pub fn set_now(&mut self, now: u64) {
        self.now = self.now.max(now);
    }

    /// Refuses a request for a collection this hub does not serve.
    fn check_scope(&self, named: &CollectionPath) -> Result<(), Rejection> {
        match &self.scope {
            Some(scope) if scope != named => Err(Rejection::new(
                ErrorCode::WrongCollection,
                format!("this connection serves {scope}, not {named}"),
            )),
            _ => Ok(()),
        }
    }

    fn request(
        &mut self,
        conn: ConnId,
        message: ClientMessage,
        fetched: &FetchedDocs,
        now: u64,
    ) -> Result<(), Error> {
        if let Some(named) = named_collection(&message) {
            self.check_scope(&named)?;
        }
        let identity = self
            .conns
            .get(&conn)
            .map_or(Identity::Anonymous, |c| c.identity.clone());
        let check = |hub: &Self, what: Read<'_>| hub.check_read(&identity, fetched, &what, now);
        let answer = match message {
            ClientMessage::Hello { .. } => {
                return Err(Rejection::new(ErrorCode::InvalidFrame, "second hello").into())
            }
            ClientMessage::Auth { rid, auth } => return Ok(self.refresh(conn, rid, auth)?),
            // Acks are taken before requests (`handle_frame`) and never held.
            ClientMessage::Ack { .. } => return Ok(()),
            ClientMessage::Get { rid, path } => {
                check(self, Read::Doc(&path))?;
                ServerMessage::Doc {
                    rid,
                    doc: self.db.get(&path)?,
                }
            }
            ClientMessage::Commit { .. } if self.driver_written => {
                return Err(Error::Denied(Denial::new(
                    "this collection is written by the server only",
                )));
            }
            ClientMessage::Commit {
                rid,
                collection,
                writes,
                commit_id,
            } => ServerMessage::Committed {
                rid,
                result: self.commit_as(
                    &identity,
                    fetched,
                    &collection,
                    &writes,
                    commit_id.as_ref(),
                    now,
                )?,
            },
            ClientMessage::Query { rid, query } => {
                self.check_query(&identity, fetched, &query, now)?;
                let out = self.db.query(&query)?;
                ServerMessage::QueryResult {
                    rid,
                    seq: out.seq,
                    docs: out
                        .docs
                        .iter()
                        .map(|d| d.snapshot(&query.collection))
                        .collect(),
                }
            }
            ClientMessage::Count { rid, query } => {
                self.check_query(&identity, fetched, &query, now)?;
                let (seq, count) = self.db.count(&query)?;
                ServerMessage::CountResult { rid, seq, count }
            }
            ClientMessage::Listen {
                rid,
                doc,
                query,
                since,
            } => self.listen(
                conn,
                rid,
                doc.as_ref(),
                query.as_ref(),
                since,
                &identity,
                fetched,
            )?,
            ClientMessage::Unlisten { rid, listener } => {
                self.unlisten(conn, listener)?;
                ServerMessage::Unlistened { rid }
            }
        };
        self.send(conn, frame(&answer));
        Ok(())
    }

    /// Hands `frame` to `conn`, unless its credential has expired: then it
    /// is closed instead (spec 13.5).
    fn send(&mut self, conn: ConnId, frame: Frame) {
        let bounds = self.bounds();
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.expired(self.now) {
            return self.close(conn, CloseCode::TokenExpired);
        }
        c.push_unread(frame.len());
        let over = c.over(bounds);
        self.answer_bytes += frame.len();
        self.outputs.push_back(Output::Send { conn, frame });
        if over {
            self.close(conn, CloseCode::SlowConsumer);
        }
    }

    fn send_error(&mut self, conn: ConnId, rid: Option<u64>, error: &Error) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        if c.expired(self.now) {
            return self.close(conn, CloseCode::TokenExpired);
        }
        let body: ErrorBody = error.to_body();
        self.outputs.push_back(Output::Event(HubEvent::Refused {
            conn,
            rid,
            code: body.code,
            detail: error.detail(),
        }));
        self.send(conn, frame(&ServerMessage::Error { rid, error: body }));
    }

    fn close(&mut self, conn: ConnId, code: CloseCode) {
        if self.conns.contains_key(&conn) {
            self.forget(conn);
            self.outputs.push_back(Output::Close { conn, code });
        }
    }

    /// Drops a connection's state and every listener it held.
    fn forget(&mut self, conn: ConnId) {
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        for (rid, check) in &c.checks {
            self.drop_watches(conn, *rid, &check.watched);
        }
        for target_id in c.follows.into_keys() {
            self.unsubscribe(conn, target_id);
        }
    }
}

fn frame(message: &ServerMessage) -> Frame {
    Frame::from(encode(message))
}

fn request_id(message: &ClientMessage) -> Option<u64> {
    match message {
        ClientMessage::Hello { rid, .. } => *rid,
        ClientMessage::Ack { .. } => None,
        ClientMessage::Get { rid, .. }
        | ClientMessage::Commit { rid, .. }
        | ClientMessage::Query { rid, .. }
        | ClientMessage::Count { rid, .. }
        | ClientMessage::Listen { rid, .. }
        | ClientMessage::Unlisten { rid, .. }
        | ClientMessage::Auth { rid, .. } => Some(*rid),
    }
}

/// The collection a request names, if any.
fn named_collection(message: &ClientMessage) -> Option<CollectionPath> {
    match message {
        ClientMessage::Hello { .. }
        | ClientMessage::Unlisten { .. }
        | ClientMessage::Ack { .. }
        | ClientMessage::Auth { .. } => None,
        ClientMessage::Get { path, .. }
        | ClientMessage::Listen {
            doc: Some(path), ..
        } => Some(path.collection()),
        ClientMessage::Listen { query, .. } => Some(query.as_ref()?.collection.clone()),
        ClientMessage::Commit { collection, .. } => Some(collection.clone()),
        ClientMessage::Query { query, .. } | ClientMessage::Count { query, .. } => {
            Some(query.collection.clone())
        }
    }
}
