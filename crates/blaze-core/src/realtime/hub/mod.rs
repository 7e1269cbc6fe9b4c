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
mod guard;
mod target;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use blaze_protocol::{
    decode_client, encode, AuthState, ClientMessage, CloseCode, CollectionPath, CommitId,
    CommitResult, DocPath, DocSnapshot, ErrorBody, ErrorCode, Identity, Query, ServerMessage,
    Write, PROTOCOL_VERSION,
};

use crate::database::{CommitOutcome, Database, Guard, QueryOutput};
use crate::error::{Denial, Error, Rejection};
use crate::realtime::bodies::Bodies;
use crate::realtime::listener_index::ListenerIndex;
use crate::realtime::view::{diff_results, results_at, QueryView};
use crate::rules::{Access, FetchedDocs};
use crate::store::{CommitRecord, Storage};
use connection::{Connection, FlowBounds, Verifying};
pub use guard::Caller;
use guard::Read;
use target::{ListenSpec, Subscribers, Target};

/// A connection id, chosen by the driver; unique among open connections.
pub type ConnId = u64;

/// An encoded text frame, shared by every connection it goes to.
pub type Frame = Arc<str>;

/// What the driver must do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Send `frame` as one text message on `conn`.
    Send {
        /// The connection.
        conn: ConnId,
        /// The frame.
        frame: Frame,
    },
    /// Close `conn` with `code` (its number and reason); the hub has forgotten it.
    Close {
        /// The connection.
        conn: ConnId,
        /// Why (section 10.1 of the spec).
        code: CloseCode,
    },
    /// Something happened that the driver may log; there is nothing to do.
    Event(HubEvent),
}

/// What happened, told to the driver as an [`Output::Event`] (str0m-style: a
/// separate output rather than a field on [`Output::Send`], so the frames stay
/// plain). [`HubEvent::Refused`] is for logs; [`HubEvent::Verify`] and
/// [`HubEvent::Fetch`] ask the driver for an answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HubEvent {
    /// `conn` sent a credential (spec 13): `hello.auth` (`rid` is `None`) or
    /// an `auth` request (`rid` is its id). The driver verifies it and
    /// answers with [`Hub::handle_verified`] with the same `conn` and `rid`;
    /// until then the connection's later frames are held. A driver must
    /// never log `credential`.
    Verify {
        /// The connection.
        conn: ConnId,
        /// The `auth` request's id; `None` for `hello`'s credential.
        rid: Option<u64>,
        /// The credential, at most `max_credential_bytes` long.
        credential: String,
    },
    /// Listener `rid` of `conn` rests on documents of other collections and
    /// its permission is due to be checked again (spec 14.5): the driver
    /// fetches `paths` and answers with [`Hub::handle_refetched`]. Nothing
    /// of the connection waits meanwhile.
    Refetch {
        /// The connection.
        conn: ConnId,
        /// The listener.
        rid: u64,
        /// The documents to fetch.
        paths: Vec<DocPath>,
    },
    /// The access rules of `conn`'s current request read documents of
    /// other collections (spec 14.5). The driver fetches them (from the
    /// objects that hold them) and answers with [`Hub::handle_fetched`];
    /// until then the connection's later frames are held.
    Fetch {
        /// The connection.
        conn: ConnId,
        /// The documents to fetch.
        paths: Vec<DocPath>,
    },
    /// A frame of `conn` was refused: the next output is the `Send` of its
    /// `error` frame.
    Refused {
        /// The connection.
        conn: ConnId,
        /// The refused request's id, when it had one.
        rid: Option<u64>,
        /// The error code the peer is sent.
        code: ErrorCode,
        /// What the peer is not told: a storage failure's text, for the server's log.
        detail: Option<String>,
    },
}

/// The hub's configuration beyond the announced [`Limits`](blaze_protocol::Limits)
/// (the bounds on each connection's unread output are limits: clients are
/// told them): the memory it may hold for its clients (spec 10.4.8), and how
/// often a listener resting on documents of other collections is checked
/// again (spec 14.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HubConfig {
    /// Most estimated bytes of views, targets and listener tables, all
    /// connections together (each shared document body counted once).
    pub memory_budget: usize,
    /// Most estimated bytes one connection's listeners hold (their targets
    /// and the bodies of their results, counted in full).
    pub connection_budget: usize,
    /// How long (ms) a listener whose access rules read documents of other
    /// collections keeps its permission before those documents are fetched
    /// and the rules checked again.
    pub foreign_recheck_ms: u64,
}

impl Default for HubConfig {
    /// A 64 MiB memory budget, 8 MiB (1/8) of it per connection; documents
    /// of other collections checked again every minute.
    fn default() -> Self {
        Self {
            memory_budget: 64 * 1024 * 1024,
            connection_budget: 8 * 1024 * 1024,
            foreign_recheck_ms: 60_000,
        }
    }
}

/// What one connection holds, for a driver that must rebuild the hub after
/// losing its memory (a Durable Object woken from hibernation). It holds the
/// connection's verified identity, never its credential.
#[derive(Clone, Debug, PartialEq)]
pub struct SavedSession {
    /// Whether the handshake was done.
    pub open: bool,
    /// Who the connection's credential says it is.
    pub identity: Identity,
    /// When that credential expires (milliseconds since the Unix epoch), if it does.
    pub expires: Option<u64>,
    /// Whether the client takes held `snapshot` entries (spec 10.4.9).
    pub held_docs: bool,
    /// The connection's listeners.
    pub listeners: Vec<SavedListener>,
    /// Whether requests of the connection were held unanswered (spec
    /// 10.4.6), its credential was being verified, or a request waited for
    /// documents of other collections (spec 14.5). They live only in
    /// memory, so such a session does not restore: the driver closes the
    /// connection and the client resumes.
    pub waiting: bool,
}

impl Default for SavedSession {
    /// A connection that has not sent `hello`: anonymous, nothing held.
    fn default() -> Self {
        Self {
            open: false,
            identity: Identity::Anonymous,
            expires: None,
            held_docs: false,
            listeners: Vec::new(),
            waiting: false,
        }
    }
}

/// One listener of a [`SavedSession`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedListener {
    /// The listener's id (its `listen` rid).
    pub rid: u64,
    /// The target it follows, as the client knows it.
    pub target: u64,
    /// What it listens to, as an opaque key the hub can read back.
    pub key: String,
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

/// How many documents of other targets [`Hub`] reads, per document of a
/// snapshot, to find the ones the connection already holds (spec 10.4.9).
const HELD_SCAN_PER_DOC: usize = 4;
/// How many more it may read for one snapshot, whatever its size.
const HELD_SCAN_BASE: usize = 1024;

/// The realtime state machine over one database.
///
/// ```
/// use blaze_core::{Database, Hub, HubConfig, Limits, MemoryStorage, Output};
///
/// let db = Database::new(MemoryStorage::new(), Limits::default());
/// let mut hub = Hub::new(db, HubConfig::default());
/// let now_ms = 1_700_000_000_000;
/// hub.handle_open(1);
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

    /// What connection `conn` holds, to save beside it; `None` if it is not open.
    pub fn session(&self, conn: ConnId) -> Option<SavedSession> {
        let c = self.conns.get(&conn)?;
        let mut listeners: Vec<SavedListener> = c
            .listeners
            .iter()
            .map(|(&rid, &target)| SavedListener {
                rid,
                target,
                key: self.targets[&target].key.to_string(),
            })
            .collect();
        listeners.sort_by_key(|l| l.rid);
        Some(SavedSession {
            open: c.open,
            identity: c.identity.clone(),
            expires: c.expires,
            held_docs: c.held_docs,
            listeners,
            waiting: c.holds() || c.verifying.is_some() || c.fetching.is_some(),
        })
    }

    /// Opens `conn` again with a saved [`SavedSession`], after the hub lost its
    /// memory but the connection stayed up. The targets are rebuilt from the
    /// current state under the ids the client knows; the only frames
    /// produced end listeners the access rules now deny (`permission_denied`
    /// with the listener's id), checked at the latest time the hub was
    /// given (`request.time`: call [`Hub::set_now`] first on a new hub).
    /// A session that was waiting for held requests is refused: they were
    /// lost with the memory, and its client would wait for their answers
    /// forever.
    pub fn restore(&mut self, conn: ConnId, session: &SavedSession) -> Result<(), Error> {
        if session.waiting {
            let msg = "requests held for this connection were lost with the server's memory";
            return Err(Rejection::new(ErrorCode::Internal, msg).into());
        }
        // The rules may have changed since (a redeploy): a listener they now
        // deny ends (spec 14.3); one whose permission needs documents of
        // other collections fails the restore, and its client resumes,
        // which fetches them. Every listener is decided before anything is
        // restored, so a failed restore leaves nothing behind.
        let fetched = FetchedDocs::new();
        let mut allowed = Vec::new();
        let mut denied = Vec::new();
        for l in &session.listeners {
            let spec = ListenSpec::from_key(&l.key, self.db.limits())?;
            let what = match &spec.doc {
                Some(doc) => Read::Doc(doc),
                None => Read::Query(&spec.source),
            };
            match self.check_read(&session.identity, &fetched, &what, self.now) {
                Ok(rests_on) => allowed.push((l, spec, rests_on)),
                Err(Error::Denied(why)) => denied.push((l.rid, Error::Denied(why))),
                Err(other) => return Err(other),
            }
        }
        self.handle_open(conn);
        if let Some(c) = self.conns.get_mut(&conn) {
            c.open = session.open;
            c.identity = session.identity.clone();
            c.expires = session.expires;
            c.held_docs = session.held_docs;
        }
        for (l, spec, rests_on) in allowed {
            let (doc, query) = (spec.doc.clone(), spec.source.clone());
            let target = match self.target_for(spec, Some(l.target)) {
                Ok(target) => target,
                Err(e) => {
                    self.forget(conn);
                    return Err(e);
                }
            };
            self.subscribe(conn, l.rid, target);
            let what = match &doc {
                Some(doc) => Read::Doc(doc),
                None => Read::Query(&query),
            };
            self.watch(conn, l.rid, &what, rests_on, fetched.clone());
        }
        for (rid, error) in denied {
            self.send_error(conn, Some(rid), &error);
        }
        Ok(())
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

    /// A connection opened; it must send `hello` first. Reusing the id of an
    /// open connection drops that connection's state.
    pub fn handle_open(&mut self, conn: ConnId) {
        self.forget(conn);
        self.conns.insert(conn, Connection::default());
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

    /// The driver verified the credential of [`HubEvent::Verify`] for `conn`
    /// and `rid` at `now`: `Ok` with the identity and when it expires (ms),
    /// or the rejection to send (`unauthenticated`). For `hello`'s
    /// credential, `Ok` opens the connection (`welcome` with its `auth`) and
    /// a rejection is answered with an `error` and close 4001
    /// `unauthenticated`. For an `auth` request, a credential of the same
    /// kind and `uid` replaces the connection's (`authenticated`), and its
    /// listeners are checked against the access rules with the new claims
    /// (those now denied end with `permission_denied`); any other is
    /// refused and the connection keeps its credential. Then the frames
    /// held meanwhile are answered. An answer nobody waits for (the
    /// connection closed, or another `rid`) is ignored.
    pub fn handle_verified(
        &mut self,
        conn: ConnId,
        rid: Option<u64>,
        result: Result<(Identity, Option<u64>), Rejection>,
        now: u64,
    ) {
        self.now = now;
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let awaited = match (c.verifying, rid) {
            (Some(Verifying::Hello), None) => true,
            (Some(Verifying::Auth(want)), Some(got)) => want == got,
            _ => false,
        };
        if !awaited {
            return;
        }
        c.verifying = None;
        match (rid, result) {
            (None, Ok((identity, expires))) => {
                let auth = AuthState::of(&identity, expires);
                c.open = true;
                c.identity = identity;
                c.expires = expires;
                self.welcome(conn, Some(auth));
            }
            (None, Err(refused)) => {
                self.send_error(conn, None, &refused.into());
                self.close(conn, CloseCode::Unauthenticated);
            }
            (Some(rid), Ok((identity, expires)))
                if identity.kind() == c.identity.kind() && identity.uid() == c.identity.uid() =>
            {
                let auth = AuthState::of(&identity, expires);
                c.identity = identity;
                c.expires = expires;
                c.refused_auths = 0;
                self.send(conn, frame(&ServerMessage::Authenticated { rid, auth }));
                // Its claims may differ: the listeners are proved again (spec 14.3).
                self.recheck_connection(conn);
            }
            (Some(rid), verified) => {
                let refused = verified.err().unwrap_or_else(|| {
                    let msg = "the credential is for another identity; reconnect to change it";
                    Rejection::new(ErrorCode::Unauthenticated, msg)
                });
                c.refused_auths += 1;
                let too_many = c.refused_auths > Connection::MAX_REFUSED_AUTHS;
                self.send_error(conn, Some(rid), &refused.into());
                if too_many {
                    self.close(conn, CloseCode::Unauthenticated);
                    return;
                }
            }
        }
        self.release_held(conn, now);
    }

    /// When [`Hub::handle_timeout`] must next be called: the earliest expiry
    /// of a connection's credential (milliseconds since the Unix epoch).
    pub fn poll_timeout(&self) -> Option<u64> {
        let expiry = self.conns.values().filter_map(|c| c.expires).min();
        expiry.into_iter().chain(self.refetch_due()).min()
    }

    /// Time passed to `now`: every connection whose credential has expired
    /// is closed with 4001 `token_expired`.
    pub fn handle_timeout(&mut self, now: u64) {
        self.now = now;
        let mut expired: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.expired(now))
            .map(|(&conn, _)| conn)
            .collect();
        expired.sort_unstable();
        for conn in expired {
            self.close(conn, CloseCode::TokenExpired);
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
    /// whose id the collection remembers is answered with its original result,
    /// writes nothing and sends no listener anything (see
    /// [`Database::commit_with_id`]).
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
        let outcome = self
            .db
            .commit_guarded(collection, writes, commit_id, now, guard);
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

    fn handshake(&mut self, conn: ConnId, message: Option<ClientMessage>) {
        if let (Some(ClientMessage::Hello { held_docs, .. }), Some(c)) =
            (&message, self.conns.get_mut(&conn))
        {
            c.held_docs = *held_docs;
        }
        match message {
            Some(ClientMessage::Hello {
                protocol,
                auth: Some(credential),
                ..
            }) if protocol == PROTOCOL_VERSION => {
                if let Err(refused) = self.check_credential(&credential) {
                    self.send_error(conn, None, &refused.into());
                    return self.close(conn, CloseCode::Unauthenticated);
                }
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.verifying = Some(Verifying::Hello);
                }
                self.outputs.push_back(Output::Event(HubEvent::Verify {
                    conn,
                    rid: None,
                    credential,
                }));
            }
            Some(ClientMessage::Hello { protocol, .. }) if protocol == PROTOCOL_VERSION => {
                if let Some(refused) = self.anonymous_refused.clone() {
                    self.send_error(conn, None, &refused.into());
                    return self.close(conn, CloseCode::Unauthenticated);
                }
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.open = true;
                }
                self.welcome(conn, None);
            }
            Some(ClientMessage::Hello { protocol, .. }) => self.refuse_handshake(
                conn,
                ErrorCode::UnsupportedProtocol,
                &format!(
                    "protocol {protocol} is not spoken; this server speaks {PROTOCOL_VERSION}"
                ),
            ),
            _ => self.refuse_handshake(
                conn,
                ErrorCode::HandshakeRequired,
                "the first frame must be hello",
            ),
        }
    }

    fn welcome(&mut self, conn: ConnId, auth: Option<AuthState>) {
        let welcome = ServerMessage::Welcome {
            protocol: PROTOCOL_VERSION,
            limits: self.db.limits().clone(),
            auth,
        };
        self.send(conn, frame(&welcome));
    }

    /// A credential longer than `max_credential_bytes` is refused unread (spec 13.1).
    fn check_credential(&self, credential: &str) -> Result<(), Rejection> {
        let max = self.db.limits().max_credential_bytes;
        if credential.len() > max {
            let msg = format!("the credential is longer than {max} bytes");
            return Err(Rejection::new(ErrorCode::Unauthenticated, msg));
        }
        Ok(())
    }

    /// An `auth` request: asks the driver to verify its credential (the
    /// answer comes with [`Hub::handle_verified`]). An anonymous connection
    /// has no identity to refresh: it signs in by reconnecting (spec 13.4).
    fn refresh(&mut self, conn: ConnId, rid: u64, credential: String) -> Result<(), Rejection> {
        self.check_credential(&credential)?;
        let Some(c) = self.conns.get_mut(&conn) else {
            return Ok(());
        };
        if c.identity == Identity::Anonymous {
            let msg =
                "an anonymous connection keeps its identity; reconnect with hello.auth to sign in";
            return Err(Rejection::new(ErrorCode::Unauthenticated, msg));
        }
        c.verifying = Some(Verifying::Auth(rid));
        self.outputs.push_back(Output::Event(HubEvent::Verify {
            conn,
            rid: Some(rid),
            credential,
        }));
        Ok(())
    }

    fn refuse_handshake(&mut self, conn: ConnId, code: ErrorCode, message: &str) {
        self.send_error(conn, None, &Rejection::new(code, message).into());
        let close = match code {
            ErrorCode::UnsupportedProtocol => CloseCode::UnsupportedProtocol,
            _ => CloseCode::HandshakeRequired,
        };
        self.close(conn, close);
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

    #[allow(clippy::too_many_arguments)]
    fn listen(
        &mut self,
        conn: ConnId,
        rid: u64,
        doc: Option<&DocPath>,
        query: Option<&Query>,
        since: Option<u64>,
        identity: &Identity,
        fetched: &FetchedDocs,
    ) -> Result<ServerMessage, Error> {
        // The query's rules come before the connection's state (spec 10.1, "Order of checks").
        let spec = ListenSpec::parse(doc, query, self.db.limits())?;
        // Then the access rules, proved once for the listener's life (spec 14.3).
        let source = spec.source.clone();
        let what = match doc {
            Some(doc) => Read::Doc(doc),
            None => Read::Query(&source),
        };
        let allowed = self.check_read(identity, fetched, &what, self.now)?;
        let held = self.conns.get(&conn).map_or(0, |c| c.listeners.len());
        if self
            .conns
            .get(&conn)
            .is_some_and(|c| c.listeners.contains_key(&rid))
        {
            let msg = format!("listener {rid} exists on this connection");
            return Err(Rejection::new(ErrorCode::ListenerExists, msg).into());
        }
        if held >= self.db.limits().max_listeners {
            let msg = format!("{held} listeners, limit {}", self.db.limits().max_listeners);
            return Err(Rejection::new(ErrorCode::TooManyListeners, msg).into());
        }
        let target_id = self.target_for(spec, None)?;
        // The documents of other collections it would keep count too.
        if let Err(refused) = self.within_budget(conn, target_id, fetched.bytes()) {
            self.drop_if_unused(target_id);
            return Err(refused.into());
        }
        // A document listener resumes only from a state of its document the
        // rules let it read: a diff from any other would tell what it held.
        let resume_as = doc.map(|doc| (identity, fetched, doc));
        let answer = self.first_answer(conn, rid, target_id, since, resume_as);
        match answer {
            Ok(answer) => {
                self.subscribe(conn, rid, target_id);
                self.watch(conn, rid, &what, allowed, fetched.clone());
                Ok(answer)
            }
            Err(e) => {
                self.drop_if_unused(target_id);
                Err(e)
            }
        }
    }

    /// Whether one more listener of `conn` on `target_id` (already made),
    /// keeping `extra` bytes more, keeps the hub within its memory budget
    /// and `conn` within its share.
    fn within_budget(
        &mut self,
        conn: ConnId,
        target_id: u64,
        extra: usize,
    ) -> Result<(), Rejection> {
        let follows = |c: &Connection, t: &u64| c.follows.contains_key(t);
        let new_target = !self
            .conns
            .get(&conn)
            .is_some_and(|c| follows(c, &target_id));
        let held_bodies = self.bodies.held_bytes();
        let total = held_bodies
            + self.targets.values().map(|t| t.own_bytes()).sum::<usize>()
            + self
                .conns
                .values()
                .map(Connection::own_bytes)
                .sum::<usize>()
            + Connection::LISTENER_BYTES
            + extra;
        // The connection's share: its tables and result lists, plus the
        // bodies its results hold. Counting those bodies exactly (each once)
        // would take a walk over every result per listen; their sum counted
        // in full, capped by every body the hub holds (the connection cannot
        // hold more than all of them), never counts less than they are, and
        // costs one step per target.
        let new = self.targets.get(&target_id).filter(|_| new_target);
        let followed = self.conns.get(&conn).into_iter().flat_map(|c| {
            c.follows
                .keys()
                .filter_map(|t| self.targets.get(t))
                .chain(new)
        });
        let (tables, bodies) = followed.fold((0, 0), |(tables, bodies), t| {
            (
                tables + t.own_bytes() + t.view.id_bytes(),
                bodies + t.view.body_bytes(),
            )
        });
        let share = self.conns.get(&conn).map_or(0, Connection::own_bytes)
            + Connection::LISTENER_BYTES
            + extra
            + tables
            + bodies.min(held_bodies);
        let refuse = |what: &str, held: usize, budget: usize| {
            let msg =
                format!("the listen would hold about {held} bytes of {what}, budget {budget}");
            Err(Rejection::new(ErrorCode::ResourceExhausted, msg))
        };
        if total > self.config.memory_budget {
            return refuse("this object's", total, self.config.memory_budget);
        }
        if share > self.config.connection_budget {
            return refuse("this connection's", share, self.config.connection_budget);
        }
        Ok(())
    }

    /// Adds listener `rid` of `conn` on `target_id`.
    fn subscribe(&mut self, conn: ConnId, rid: u64, target_id: u64) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.add_listener(rid, target_id) {
            if let Some(t) = self.targets.get_mut(&target_id) {
                t.subscribers.insert(conn);
            }
        }
    }

    /// The target for `spec`: the existing one, or a new one with a fresh
    /// view, numbered `id` when given (a restore) or with the next number.
    fn target_for(&mut self, spec: ListenSpec, id: Option<u64>) -> Result<u64, Error> {
        match (self.target_by_key.get(spec.key.as_str()), id) {
            (Some(&found), None) => return Ok(found),
            (_, Some(want)) if self.targets.contains_key(&want) => {
                if *self.targets[&want].key == *spec.key {
                    return Ok(want);
                }
                let msg = format!("target {want} is taken by another listen");
                return Err(Rejection::new(ErrorCode::InvalidFrame, msg).into());
            }
            _ => {}
        }
        let collection = spec.query.collection.to_string();
        let view = QueryView::open(self.db.storage(), spec.query, &mut self.bodies)?;
        let id = id.unwrap_or(self.next_target);
        self.next_target = self.next_target.max(id + 1);
        self.target_index
            .entry(collection)
            .or_default()
            .insert(id, view.query());
        let key: Arc<str> = spec.key.into();
        self.target_by_key.entry(key.clone()).or_insert(id);
        self.targets.insert(
            id,
            Box::new(Target {
                key,
                view,
                subscribers: Subscribers::default(),
            }),
        );
        Ok(id)
    }

    /// The answer to a `listen` on `target_id`: a snapshot, or the changes
    /// since `since`. For a document listener, `doc_reader` is who asks (with
    /// the documents fetched for them) and the document: changes are
    /// answered only from a state of it they may read, else a snapshot
    /// with `reset`.
    fn first_answer(
        &self,
        conn: ConnId,
        rid: u64,
        target_id: u64,
        since: Option<u64>,
        doc_reader: Option<(&Identity, &FetchedDocs, &DocPath)>,
    ) -> Result<ServerMessage, Error> {
        let target = &self.targets[&target_id];
        let collection = &target.view.query().collection;
        let seq = self.db.storage().seq(collection)?;
        let log = match since {
            Some(since) if since <= seq => self.db.log_since(collection, since)?,
            _ => None,
        };
        let then = match log {
            Some(log) => Some(results_at(self.db.storage(), target.view.query(), &log)?),
            None => None,
        };
        let then = then.filter(|then| {
            doc_reader.is_none_or(|(identity, fetched, doc)| {
                self.may_read_state(identity, fetched, doc, then.first())
            })
        });
        Ok(match then {
            Some(then) => {
                let changes = diff_results(collection, &then, target.view.docs());
                ServerMessage::Resumed {
                    rid,
                    target: target_id,
                    seq,
                    changes,
                }
            }
            None => ServerMessage::Snapshot {
                rid,
                target: target_id,
                seq,
                reset: since.is_some(),
                docs: self.snapshot_docs(conn, target_id),
            },
        })
    }

    /// The `docs` of a snapshot of `target_id` for `conn`: every document,
    /// in query order, each one the connection already holds at the same
    /// version (spec 10.4.9) named by a held entry when it takes them.
    fn snapshot_docs(&self, conn: ConnId, target_id: u64) -> Vec<DocSnapshot> {
        let view = &self.targets[&target_id].view;
        let collection = &view.query().collection;
        let held = self.held_elsewhere(conn, target_id);
        let docs = view.docs().iter().zip(held);
        docs.map(|(d, held)| match held {
            true => DocSnapshot::held(format!("{collection}/{}", d.id), d.version),
            false => d.snapshot(collection),
        })
        .collect()
    }

    /// For each document of `target_id`'s results, whether another target
    /// that `conn` follows (and so holds, spec 10.4.9) has it at the same
    /// version. The search reads at most [`HELD_SCAN_PER_DOC`] documents of
    /// other targets per result, plus [`HELD_SCAN_BASE`]: a document not
    /// found within that is simply sent whole.
    fn held_elsewhere(&self, conn: ConnId, target_id: u64) -> Vec<bool> {
        let view = &self.targets[&target_id].view;
        let docs = view.docs();
        let mut held = vec![false; docs.len()];
        let Some(c) = self.conns.get(&conn).filter(|c| c.held_docs) else {
            return held;
        };
        if c.follows.contains_key(&target_id) {
            // Another listener of the connection follows this very target.
            held.fill(true);
            return held;
        }
        let collection = &view.query().collection;
        let mut wanted: HashMap<&str, (u64, usize)> = docs
            .iter()
            .enumerate()
            .map(|(i, d)| (d.id.as_str(), (d.version, i)))
            .collect();
        let mut budget = HELD_SCAN_BASE + HELD_SCAN_PER_DOC * docs.len();
        for other in c.follows.keys().filter_map(|t| self.targets.get(t)) {
            if other.view.query().collection != *collection {
                continue;
            }
            for d in other.view.docs() {
                if wanted.is_empty() || budget == 0 {
                    return held;
                }
                budget -= 1;
                if let Some(&(version, i)) = wanted.get(d.id.as_str()) {
                    if version == d.version {
                        held[i] = true;
                        wanted.remove(d.id.as_str());
                    }
                }
            }
        }
        held
    }

    fn unlisten(&mut self, conn: ConnId, listener: u64) -> Result<(), Error> {
        self.unwatch(conn, listener);
        let removed = self
            .conns
            .get_mut(&conn)
            .and_then(|c| c.remove_listener(listener));
        let Some((target_id, last)) = removed else {
            let msg = format!("no listener {listener} on this connection");
            return Err(Rejection::new(ErrorCode::ListenerNotFound, msg).into());
        };
        if last {
            self.unsubscribe(conn, target_id);
        }
        Ok(())
    }

    fn unsubscribe(&mut self, conn: ConnId, target_id: u64) {
        if let Some(t) = self.targets.get_mut(&target_id) {
            t.subscribers.remove(conn);
        }
        self.drop_if_unused(target_id);
    }

    fn drop_if_unused(&mut self, target_id: u64) {
        let Some(target) = self.targets.get(&target_id) else {
            return;
        };
        if !target.subscribers.is_empty() {
            return;
        }
        let target = self.targets.remove(&target_id).expect("present");
        if self.target_by_key.get(&target.key) == Some(&target_id) {
            self.target_by_key.remove(&target.key);
        }
        let collection = target.view.query().collection.to_string();
        if let Some(index) = self.target_index.get_mut(&collection) {
            index.remove(target_id);
            if index.is_empty() {
                self.target_index.remove(&collection);
            }
        }
    }

    /// Refreshes every target `record` can affect and hands each one's
    /// `change` frame, encoded once, to its subscribers.
    fn fan_out(&mut self, collection: &str, record: &CommitRecord) {
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
