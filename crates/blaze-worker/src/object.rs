//! `BlazeCollection`: the Durable Object that serves one collection. It holds
//! the hub over [`SqlStore`], accepts WebSockets through the Hibernation API,
//! saves each connection's session beside it, and after waking rebuilds the
//! hub from those sessions before handling the next event.
//!
//! Group commit, adaptive: a WebSocket frame is queued; if no group is
//! running, the queue is handled at once, and the handler then yields one
//! turn of the event loop, while frames that arrive meanwhile, from any
//! connection, queue up and form the next group. A group
//! runs inside one outer `transactionSync`: each commit is a savepoint in it
//! (all or nothing on its own), the group reaches disk in one durable
//! commit, and the output gate holds its answers and broadcasts until then.
//! A group ends early once its answers hold `GROUP_ANSWER_BYTES` or its
//! queries have read `GROUP_ROWS_READ` rows; the queue hands out frames from
//! each connection in turn (`FairQueue`), so one connection's pipeline of
//! expensive requests delays another's frame by about one group.
//! An HTTP request or a close handles the queue first, so arrival order is
//! kept. A session that cannot be saved ends its own connection (1011),
//! never the group or another socket.
//!
//! Identity (spec 13): an HTTP request's `Authorization: Bearer` credential
//! is verified here, before the request is read or written (401 with
//! `WWW-Authenticate: Bearer` when it does not verify); the Worker only
//! routes, so a refused request costs one object call and the isolate's
//! verifier cache makes a known token a hash lookup. A WebSocket's
//! credentials (`hello.auth`, `auth`) come out of the hub as
//! `HubEvent::Verify`; the handler that ran the group verifies them (a JWKS
//! fetch, when one is needed, is awaited there) and hands the result back
//! with `handle_verified`, while the hub holds the connection's later
//! frames in order. Credentials expire: a Durable Object alarm is set at
//! the hub's `poll_timeout`, and `alarm` closes the expired connections
//! (4001 `token_expired`), and those that never said `hello` (4002).
//! Before a socket is accepted, the hub's `admit_connection` may refuse it
//! (429 `resource_exhausted`, past `BLAZE_MAX_CONNECTIONS`, or past an
//! eighth of them from one `CF-Connecting-IP` network without a user's or
//! an admin's credential). A connection's identity, expiry and network are
//! in its saved session, so they survive hibernation; the credential never
//! is.
//!
//! Access rules (spec 14): the hub enforces the isolate's compiled rules
//! (`rules.rs`). When they read documents of other collections, the hub
//! asks for them (`HubEvent::Fetch` for a WebSocket request, `Answer::Fetch`
//! for an HTTP one); they are read from their objects with an internal
//! request the Worker never forwards, and the request is decided again:
//! one round of fetches at a time, every waiting connection's at once, with
//! the frames that arrived meanwhile handled between rounds and a 1 ms
//! yield after each (so the runtime reads its sockets). A
//! listener resting on such documents is checked again every
//! `BLAZE_RULES_RECHECK_MS` (default 60 s): the hub's `poll_timeout` covers
//! it, the alarm asks (`HubEvent::Refetch`) and `handle_refetched` decides.

use std::cell::{RefCell, RefMut};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use blaze_core::{
    Caller, ChangeLogLimits, Database, Frame, Hub, HubConfig, HubEvent, Output, Rejection,
    SavedSession,
};
use blaze_protocol::{CloseCode, CollectionPath, DocPath, Identity, Limits};
use futures_util::future::join_all;
use wasm_bindgen::{JsCast, JsValue};
use worker::{
    durable_object, wasm_bindgen, Delay, DurableObject, Env, Request, Response, Result, State,
    WebSocket, WebSocketIncomingMessage, WebSocketPair,
};

use crate::client_network;
use crate::entry::{http_request, is_upgrade, respond};
use crate::fair_queue::FairQueue;
use crate::files_plan::{self, INTERNAL_FILES};
use crate::files_prefixes::PrefixPage;
use crate::files_sweep::Sweep;
use crate::http_api::{self, Answer, FileOp};
use crate::http_types::{bearer, unauthenticated, HttpRequest, HttpResponse};
use crate::identity;
use crate::log::{log_auth, log_event, log_http, log_session_failure, Who};
use crate::routing::{route, DocMethod, Endpoint};
use crate::rules;
use crate::sql_storage::{transaction_sync, SqlStore};

/// One collection's object.
#[durable_object]
pub struct BlazeCollection {
    state: State,
    env: Env,
    live: Rc<RefCell<Option<Live>>>,
}

/// What the object holds in memory; rebuilt after hibernation.
struct Live {
    collection: String,
    hub: Hub<SqlStore>,
    sockets: HashMap<u64, WebSocket>,
    saved: HashMap<u64, SavedSession>,
    /// Frames received and not yet handled, in arrival order.
    queued: FairQueue<WebSocketIncomingMessage>,
    /// Whether a handler is running groups of `queued` (frames that arrive
    /// meanwhile wait for the next group).
    leader: bool,
    /// Connections whose session could not be saved, to close after the group.
    failed: Vec<u64>,
    /// Credentials the hub asked to verify (`HubEvent::Verify`), oldest first.
    verifying: Vec<(u64, Option<u64>, String)>,
    /// Documents of other collections the hub asked for (`HubEvent::Fetch`), oldest first.
    fetching: Vec<(u64, Vec<DocPath>)>,
    /// Documents of other collections a listener's periodic check asked for
    /// (`HubEvent::Refetch`): connection, listener, paths.
    refetching: Vec<(u64, u64, Vec<DocPath>)>,
    /// Bytes of documents of other collections held for HTTP requests
    /// being decided (each request's are also bounded by the hub).
    http_fetched: usize,
    /// When the Durable Object alarm was last set for (ms), by this memory.
    alarm: Option<u64>,
    /// When the sweep of unnamed file bytes runs (spec 15.4; saved in `meta`).
    sweep: Sweep,
}

mod prefixes;
mod sweep;
mod uploads;

fn now() -> u64 {
    js_sys::Date::now() as u64
}

fn storage_error(e: blaze_core::StorageError) -> worker::Error {
    worker::Error::RustError(e.0)
}

/// A configuration number from the environment (`wrangler.toml` `[vars]`).
fn var(env: &Env, name: &str) -> Option<u64> {
    env.var(name).ok()?.to_string().parse().ok()
}

impl BlazeCollection {
    /// The live state, built on first use: from `collection` (a request's
    /// route) or, after waking, from the collection saved at first use.
    fn live(&self, collection: Option<&str>) -> Result<RefMut<'_, Live>> {
        if self.live.borrow().is_none() {
            let store = SqlStore::open(self.state.storage()).map_err(storage_error)?;
            let collection = match collection {
                Some(c) => {
                    store.set_meta("collection", c).map_err(storage_error)?;
                    c.to_owned()
                }
                None => store
                    .meta("collection")
                    .map_err(storage_error)?
                    .ok_or_else(|| worker::Error::RustError("object has no collection".into()))?,
            };
            let defaults = ChangeLogLimits::default();
            let log = ChangeLogLimits {
                max_entries: var(&self.env, "BLAZE_LOG_MAX_ENTRIES")
                    .unwrap_or(defaults.max_entries),
                max_age_ms: var(&self.env, "BLAZE_LOG_MAX_AGE_MS").unwrap_or(defaults.max_age_ms),
            };
            let path = CollectionPath::parse(&collection)
                .map_err(|e| worker::Error::RustError(e.to_string()))?;
            let db = Database::new(store, Limits::default()).with_change_log(log);
            let defaults = HubConfig::default();
            let config = HubConfig {
                foreign_recheck_ms: var(&self.env, "BLAZE_RULES_RECHECK_MS")
                    .unwrap_or(defaults.foreign_recheck_ms),
                max_connections: var(&self.env, "BLAZE_MAX_CONNECTIONS")
                    .and_then(|n| usize::try_from(n).ok())
                    .unwrap_or(defaults.max_connections),
                ..defaults
            };
            let metadata = files_plan::is_metadata(&path);
            let mut hub = Hub::new(db, config)
                .scoped(path)
                .with_access(rules::access(&self.env));
            if metadata {
                hub = hub.driver_written();
            }
            if let Some(why) = identity::anonymous_refusal(&self.env) {
                hub = hub.refusing_anonymous(why);
            }
            let mut live = Live {
                collection,
                hub,
                sockets: HashMap::new(),
                saved: HashMap::new(),
                queued: FairQueue::default(),
                leader: false,
                failed: Vec::new(),
                verifying: Vec::new(),
                fetching: Vec::new(),
                refetching: Vec::new(),
                http_fetched: 0,
                alarm: None,
                sweep: Sweep::default(),
            };
            live.load_sweep()?;
            live.wake(&self.state)?;
            *self.live.borrow_mut() = Some(live);
        }
        Ok(RefMut::map(self.live.borrow_mut(), |l| {
            l.as_mut().expect("built above")
        }))
    }
}

impl Live {
    /// Rebuilds the connections the runtime kept while the object slept.
    fn wake(&mut self, state: &State) -> Result<()> {
        for ws in state.get_websockets() {
            if let Ok(Some(conn)) = ws.deserialize_attachment::<u64>() {
                self.sockets.insert(conn, ws);
            }
        }
        let sessions = self
            .hub
            .database()
            .storage()
            .sessions()
            .map_err(storage_error)?;
        // The rules' `request.time` for the listeners checked again.
        self.hub.set_now(now());
        for (conn, session) in sessions {
            let restored =
                self.sockets.contains_key(&conn) && self.hub.restore(conn, &session).is_ok();
            if restored {
                self.saved.insert(conn, session);
                continue;
            }
            // A connection that is gone, or a session that no longer restores:
            // the client must reconnect and resume.
            if let Some(ws) = self.sockets.remove(&conn) {
                close(&ws, CloseCode::Internal);
            }
            self.hub.handle_close(conn);
            let store = self.hub.database().storage();
            store.delete_session(conn).map_err(storage_error)?;
        }
        Ok(())
    }

    /// A fresh connection id, unique over the object's life.
    fn next_conn(&self) -> Result<u64> {
        let store = self.hub.database().storage();
        let last: u64 = store
            .meta("last_conn")
            .map_err(storage_error)?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        store
            .set_meta("last_conn", &(last + 1).to_string())
            .map_err(storage_error)?;
        Ok(last + 1)
    }

    /// Saves `conn`'s session if it changed (all or nothing: a savepoint of
    /// its own). A failure is `conn`'s alone: the caller ends that connection.
    fn save(&mut self, conn: u64) -> std::result::Result<(), blaze_core::StorageError> {
        let store = self.hub.database().storage();
        match self.hub.session(conn) {
            Some(session) if self.saved.get(&conn) != Some(&session) => {
                let stored = self.saved.get(&conn).map_or(&[][..], |s| &s.listeners);
                store.save_session(conn, stored, &session)?;
                self.saved.insert(conn, session);
            }
            Some(_) => {}
            // The hub ended the connection; the socket stays until `drain`
            // has sent its last frames and carried out its close.
            None => self
                .unsave(conn)
                .map_err(|e| blaze_core::StorageError(e.to_string()))?,
        }
        Ok(())
    }

    /// Ends `conn` alone after its session could not be saved: the hub
    /// forgets it now, and its socket is closed (1011) by `close_failed`
    /// once the frames already produced for it are sent; every other
    /// connection goes on.
    fn fail(&mut self, conn: u64, error: &blaze_core::StorageError) {
        log_session_failure(&self.collection, conn, &error.0);
        self.hub.handle_close(conn);
        self.failed.push(conn);
    }

    /// Closes the sockets of the connections `fail` ended and forgets them.
    fn close_failed(&mut self) {
        for conn in std::mem::take(&mut self.failed) {
            if let Some(ws) = self.sockets.get(&conn) {
                close(ws, CloseCode::Internal);
            }
            // Its rows are deleted if possible; if not, waking deletes the
            // session of a socket that is gone.
            if let Err(e) = self.forget(conn) {
                log_session_failure(&self.collection, conn, &e.to_string());
            }
        }
    }

    /// Forgets `conn`: its socket and its saved session.
    fn forget(&mut self, conn: u64) -> Result<()> {
        self.sockets.remove(&conn);
        self.unsave(conn)
    }

    /// Deletes `conn`'s saved session, if there is one.
    fn unsave(&mut self, conn: u64) -> Result<()> {
        if self.saved.remove(&conn).is_some() {
            let store = self.hub.database().storage();
            store.delete_session(conn).map_err(storage_error)?;
        }
        Ok(())
    }

    /// Does what the hub asks: send frames, close connections.
    fn drain(&mut self) -> Result<()> {
        // A frame shared by many connections crosses into JavaScript once:
        // the same JS string is handed to every socket.
        let mut shared: Option<(Frame, JsValue)> = None;
        // Every socket's `send` is `WebSocket.prototype.send`: looked up once per drain.
        let mut send: Option<js_sys::Function> = None;
        while let Some(output) = self.hub.poll_output() {
            match output {
                Output::Event(HubEvent::Verify {
                    conn,
                    rid,
                    credential,
                }) => self.verifying.push((conn, rid, credential)),
                Output::Event(HubEvent::Fetch { conn, paths }) => self.fetching.push((conn, paths)),
                Output::Event(HubEvent::Refetch { conn, rid, paths }) => {
                    self.refetching.push((conn, rid, paths))
                }
                Output::Event(event) => log_event(&self.collection, &event),
                Output::Send { conn, frame } => {
                    let text = match &shared {
                        Some((last, text)) if Arc::ptr_eq(last, &frame) => text.clone(),
                        _ => {
                            let text = JsValue::from_str(&frame);
                            shared = Some((frame.clone(), text.clone()));
                            text
                        }
                    };
                    let sent = self
                        .sockets
                        .get(&conn)
                        .map(|ws| send_text(ws, &text, &mut send));
                    // workerd buffers what it is handed and does not say what
                    // it sent (no `bufferedAmount`): the hub counts a frame
                    // unread until the client acknowledges it (spec 10.4.6).
                    if let Some(Err(e)) = sent {
                        // The runtime refused the frame: the client would miss
                        // it without knowing, so it is closed and resumes.
                        worker::console_error!("send to connection {conn} failed: {e:?}");
                        if let Some(ws) = self.sockets.get(&conn) {
                            close(ws, CloseCode::Internal);
                        }
                        self.hub.handle_close(conn);
                        self.forget(conn)?;
                    }
                }
                Output::Close { conn, code } => {
                    if let Some(ws) = self.sockets.get(&conn) {
                        close(ws, code);
                    }
                    self.forget(conn)?;
                }
            }
        }
        Ok(())
    }
}

/// Closes `ws` with `code`'s number and reason; a socket already gone is ignored.
fn close(ws: &WebSocket, code: CloseCode) {
    let _ = ws.close(Some(code.code()), Some(code.reason()));
}

/// `ws.send(text)` with a JS string made once, not once per socket, and the
/// `send` method looked up on the first socket only (one crossing into
/// JavaScript per delivery instead of four).
fn send_text(
    ws: &WebSocket,
    text: &JsValue,
    send: &mut Option<js_sys::Function>,
) -> std::result::Result<(), JsValue> {
    let socket: &worker::web_sys::WebSocket = ws.as_ref();
    let socket: &JsValue = socket.as_ref();
    let method = match send {
        Some(method) => method,
        None => send.insert(js_sys::Reflect::get(socket, &JsValue::from_str("send"))?.dyn_into()?),
    };
    method.call1(socket, text).map(drop)
}

impl DurableObject for BlazeCollection {
    fn new(state: State, env: Env) -> Self {
        Self {
            state,
            env,
            live: Rc::new(RefCell::new(None)),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let started = now();
        let upgrade = is_upgrade(&req);
        let limits = Limits::default();
        let (hreq, refused) = http_request(&mut req, &limits).await?;
        if let Some(refused) = refused {
            // The Worker checks the same; the object does not rely on it.
            log_http(&hreq, &refused, Who::Unknown, now().saturating_sub(started));
            return respond(refused);
        }
        // The same routing as the Worker's, which parses the body once here.
        let endpoint = route(&hreq, upgrade, &limits);
        let Some((endpoint, collection)) =
            endpoint.ok().and_then(|e| e.collection().map(|c| (e, c)))
        else {
            return Response::error("not routed to this object", 400);
        };
        // Another object reading a document for its rules (the Worker strips
        // this header from what it forwards): answered as stored.
        if !upgrade && req.headers().has(rules::INTERNAL_READ)? {
            return self.internal_read(&endpoint, collection.as_str());
        }
        // An HTTP request's credential is verified before anything is read
        // or written (a WebSocket's comes in `hello`).
        let identity = if upgrade {
            Identity::Anonymous
        } else {
            let authorization = req.headers().get("Authorization").ok().flatten();
            match self.identify(authorization.as_deref()).await {
                Ok(identity) => identity,
                Err((refused, reason)) => {
                    let who = Who::Refused(&reason);
                    log_http(&hreq, &refused, who, now().saturating_sub(started));
                    return respond(refused);
                }
            }
        };
        // Frames that arrived before this request are handled before it.
        if self.live.borrow().is_some() {
            self.run_queued()?;
        }
        if upgrade {
            let from = req.headers().get("CF-Connecting-IP").ok().flatten();
            let network = client_network::network(from.as_deref());
            let (answer, opened) = self.upgrade(collection.as_str(), &hreq, network, started)?;
            if opened {
                // Its time to say `hello` may be the hub's next timeout.
                self.schedule_alarm().await?;
            }
            return Ok(answer);
        }
        drop(self.live(Some(collection.as_str()))?);
        let file_op = match req.headers().get(INTERNAL_FILES)?.as_deref() {
            Some("check") => Some(FileOp::Check),
            Some("commit") => Some(FileOp::Commit),
            Some("keys") => return self.keys(&hreq, &identity, started).await,
            Some(op) if op.starts_with("prefixes") => {
                let Some(page) = PrefixPage::from_op(op) else {
                    return Response::error("not a file operation", 400);
                };
                return self
                    .prefixes(page, &endpoint, &hreq, identity, started)
                    .await;
            }
            Some(op) if op.starts_with("upload-") => {
                let answered = self.upload_op(op, &req, &hreq, &endpoint, identity, started);
                let answer = answered.await?;
                self.schedule_alarm().await?;
                return Ok(answer);
            }
            Some(_) => return Response::error("not a file operation", 400),
            None => None,
        };
        let mut caller = Caller::new(identity);
        let mut counted = 0;
        let answer = match (file_op, &endpoint) {
            (
                Some(op),
                Endpoint::Commit {
                    collection, writes, ..
                },
            ) if writes.len() == 1 => {
                let ask = |hub: &mut Hub<SqlStore>, caller: &Caller| {
                    http_api::answer_file(hub, caller, op, collection, &writes[0], now())
                };
                self.answer_http(&mut caller, ask, &mut counted).await
            }
            (Some(_), _) => return Response::error("not a file operation", 400),
            (None, endpoint) if endpoint.writes() && files_plan::is_metadata(&collection) => {
                Ok(HttpResponse::from_error(&blaze_core::Error::Denied(
                    blaze_core::Denial::new("files' metadata is written by the files routes only"),
                )))
            }
            (None, endpoint) => {
                let ask = |hub: &mut Hub<SqlStore>, caller: &Caller| {
                    http_api::answer(hub, caller, endpoint, &hreq, now())
                };
                self.answer_http(&mut caller, ask, &mut counted).await
            }
        };
        if counted > 0 {
            self.live(None)?.http_fetched -= counted;
        }
        let answer = answer?;
        if file_op.is_some() && answer.error.is_none() {
            // Bytes may be stored (a check), or left behind (a commit
            // replacing or deleting a file): the sweep runs after the grace.
            self.sweep_needed()?;
        }
        // Also sets the alarm of an object woken with a sweep due.
        self.schedule_alarm().await?;
        let identity = caller.identity;
        let who = Who::Identity(&identity);
        log_http(&hreq, &answer, who, now().saturating_sub(started));
        respond(answer)
    }

    async fn websocket_message(
        &self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> Result<()> {
        let Some(conn) = ws.deserialize_attachment::<u64>()? else {
            return Ok(());
        };
        let lead = {
            let mut live = self.live(None)?;
            live.queued.push(conn, message);
            !std::mem::replace(&mut live.leader, true)
        };
        if !lead {
            // A group is running or waiting to be durable: this frame is
            // handled with the next group.
            return Ok(());
        }
        let handled = self.run_groups_and_verifications().await;
        if let Ok(mut live) = self.live(None) {
            live.leader = false;
        }
        handled?;
        self.schedule_alarm().await
    }

    async fn alarm(&self) -> Result<Response> {
        self.run_queued()?;
        {
            let mut live = self.live(None)?;
            live.alarm = None;
            live.hub.handle_timeout(now());
            live.drain()?;
        }
        // Listeners due for a check of the documents of other collections
        // their rules read (spec 14.5): fetched, then decided again.
        while self.run_fetches().await? {}
        self.sweep().await?;
        self.schedule_alarm().await?;
        Response::empty()
    }

    async fn websocket_close(
        &self,
        ws: WebSocket,
        _code: usize,
        _reason: String,
        _was_clean: bool,
    ) -> Result<()> {
        self.closed(&ws)
    }

    async fn websocket_error(&self, ws: WebSocket, _error: worker::Error) -> Result<()> {
        self.closed(&ws)
    }
}

/// Most connections whose documents of other collections are fetched in
/// one round (and as many listeners' periodic checks).
const FETCH_ROUND: usize = 16;

/// How long the object yields after a round of fetches, so the runtime
/// reads and writes its sockets between rounds (see `run_fetches`).
const ROUND_YIELD: Duration = Duration::from_millis(1);

/// Most bytes of documents of other collections the object holds for all
/// the HTTP requests it is deciding at once; a request that would pass it
/// is refused with `resource_exhausted` (429).
const HTTP_FETCHED_BUDGET: usize = 16 * 1024 * 1024;

/// The rows read from SQLite after which a group of frames ends and is made
/// durable and sent before the next frame is handled (a frame's own work may
/// pass it): a connection pipelining expensive queries holds the others
/// back for about this much work, not for its whole pipeline.
const GROUP_ROWS_READ: u64 = 10_000;

/// The answer bytes after which a group of frames ends and is made durable
/// and sent before the next frame is handled (a frame's own answer may pass
/// it: one group always handles at least one frame).
const GROUP_ANSWER_BYTES: usize = 1024 * 1024;

impl BlazeCollection {
    /// Answers an HTTP request routed to `endpoint` as `caller`, fetching
    /// the documents of other collections its rules read (into
    /// `caller.fetched`; `counted` of their bytes are added to
    /// `Live::http_fetched`, for the caller to subtract when it is done).
    async fn answer_http(
        &self,
        caller: &mut Caller,
        ask: impl Fn(&mut Hub<SqlStore>, &Caller) -> Answer,
        counted: &mut usize,
    ) -> Result<HttpResponse> {
        loop {
            // The borrow ends before any fetch is awaited.
            let answer = {
                let mut live = self.live(None)?;
                let answer = ask(&mut live.hub, caller);
                live.drain()?;
                answer
            };
            let paths = match answer {
                Answer::Done(answer) => return Ok(answer),
                Answer::Fetch(paths) => paths,
            };
            let docs = rules::fetch_docs(&self.env, paths).await;
            for (path, data) in docs {
                caller.fetched.insert(path, data);
            }
            let mut live = self.live(None)?;
            let held = caller.fetched.bytes();
            if held > *counted {
                live.http_fetched += held - *counted;
                *counted = held;
            }
            if live.http_fetched > HTTP_FETCHED_BUDGET {
                let msg = "too many documents of other collections are being read for \
                    this object's requests; retry later";
                return Ok(HttpResponse::rejected(
                    blaze_protocol::ErrorCode::ResourceExhausted,
                    msg,
                ));
            }
        }
    }

    /// The admin's listing of the folder's keys in R2, with whether each is
    /// named (a diagnostic for tests and operators, spec 15.4); anyone else
    /// is refused.
    async fn keys(
        &self,
        hreq: &HttpRequest,
        identity: &Identity,
        started: u64,
    ) -> Result<Response> {
        let answer = if *identity == Identity::Admin {
            self.list_keys().await?
        } else {
            let why = "only an admin key lists a folder's keys";
            HttpResponse::rejected(blaze_protocol::ErrorCode::PermissionDenied, why)
        };
        log_http(
            hreq,
            &answer,
            Who::Identity(identity),
            now().saturating_sub(started),
        );
        respond(answer)
    }

    /// Answers another object's read of a document for its rules: the
    /// document as stored (`exists: false` when it does not), never checked
    /// against rules (it comes from an object, never from a client).
    fn internal_read(&self, endpoint: &Endpoint, collection: &str) -> Result<Response> {
        let Endpoint::Doc {
            path,
            method: DocMethod::Get,
        } = endpoint
        else {
            return Response::error("not an internal read", 400);
        };
        let mut live = self.live(Some(collection))?;
        // Waking may have ended restored listeners the rules now deny: their
        // frames go out now, not with the next event.
        live.drain()?;
        match live.hub.database().get(path) {
            Ok(doc) => Response::from_json(&doc),
            Err(e) => Response::error(e.to_string(), 500),
        }
    }

    /// The identity of an HTTP request with this `Authorization` header, or
    /// its 401 answer and the reason for the log.
    async fn identify(
        &self,
        authorization: Option<&str>,
    ) -> std::result::Result<Identity, (HttpResponse, String)> {
        let credential = bearer(authorization).map_err(|r| (r, "not_bearer".to_owned()))?;
        let Some(credential) = credential else {
            return match identity::anonymous_refusal(&self.env) {
                Some(why) => Err((unauthenticated(why.message), "anonymous_refused".to_owned())),
                None => Ok(Identity::Anonymous),
            };
        };
        match identity::verify(&self.env, credential).await {
            Ok(verified) => Ok(verified.identity),
            Err(e) => Err((unauthenticated(e.message()), e.reason().to_owned())),
        }
    }

    /// Runs the queued frames in groups, then verifies the credentials and
    /// fetches the documents the hub asked for (one round), and again until
    /// none is left (either can release held frames that ask for more;
    /// frames that arrive meanwhile are handled before the next round).
    async fn run_groups_and_verifications(&self) -> Result<()> {
        loop {
            self.run_groups().await?;
            let verified = self.run_verifications().await?;
            let fetched = self.run_fetches().await?;
            if !verified && !fetched {
                return Ok(());
            }
        }
    }

    /// Fetches the documents of other collections the hub asked for, every
    /// waiting connection's at once, and hands them back; returns whether
    /// there was any. One round only: the frames queued meanwhile, from any
    /// connection, are handled before the next round, so a connection whose
    /// pipelined requests each need a fetch holds the others back for one
    /// round at most, never for its whole pipeline. A round ends with a
    /// [`ROUND_YIELD`] pause, so frames sent meanwhile are read.
    async fn run_fetches(&self) -> Result<bool> {
        // At most FETCH_ROUND connections' requests and listeners' checks a
        // round: the documents in flight stay bounded, the rest wait a round.
        let (asked, rechecks) = {
            let mut live = self.live(None)?;
            let asked = live.fetching.len().min(FETCH_ROUND);
            let rechecks = live.refetching.len().min(FETCH_ROUND);
            (
                live.fetching.drain(..asked).collect::<Vec<_>>(),
                live.refetching.drain(..rechecks).collect::<Vec<_>>(),
            )
        };
        if asked.is_empty() && rechecks.is_empty() {
            return Ok(false);
        }
        let env = &self.env;
        let fetched = join_all(
            asked
                .into_iter()
                .map(|(conn, paths)| async move { (conn, rules::fetch_docs(env, paths).await) }),
        );
        let refetched = join_all(rechecks.into_iter().map(|(conn, rid, paths)| async move {
            (conn, rid, rules::fetch_docs(env, paths).await)
        }));
        let (fetched, refetched) = futures_util::future::join(fetched, refetched).await;
        self.hand_fetched(fetched, refetched)?;
        // A round's fetches are calls into objects of the same process under
        // `wrangler dev`: rounds back to back never leave the runtime idle,
        // and it reads sockets only then (measured: another connection's
        // frame waited 2-3 s, and answers as long, until a flood of fetching
        // reads ended). A timer of 1 ms lets it read and write them between
        // rounds; `Delay::from(Duration::ZERO)` did not.
        Delay::from(ROUND_YIELD).await;
        Ok(true)
    }

    /// Hands one round's fetched documents to the hub, saves the sessions
    /// they changed and sends what it produced.
    fn hand_fetched(
        &self,
        fetched: Vec<(u64, rules::Fetched)>,
        refetched: Vec<(u64, u64, rules::Fetched)>,
    ) -> Result<()> {
        let mut live = self.live(None)?;
        for (conn, docs) in fetched {
            live.hub.handle_fetched(conn, docs, now());
            if let Err(e) = live.save(conn) {
                live.fail(conn, &e);
            }
        }
        for (conn, rid, docs) in refetched {
            live.hub.handle_refetched(conn, rid, docs, now());
            if let Err(e) = live.save(conn) {
                live.fail(conn, &e);
            }
        }
        live.drain()?;
        live.close_failed();
        Ok(())
    }

    /// Verifies each credential the hub asked for, oldest first, and hands
    /// the result back; returns whether there was any.
    async fn run_verifications(&self) -> Result<bool> {
        let mut any = false;
        loop {
            let next = {
                let mut live = self.live(None)?;
                (!live.verifying.is_empty()).then(|| live.verifying.remove(0))
            };
            let Some((conn, rid, credential)) = next else {
                return Ok(any);
            };
            any = true;
            let verified = identity::verify(&self.env, &credential).await;
            self.settle(conn, rid, verified)?;
        }
    }

    /// Settles at once every credential the hub asked for that needs no
    /// JWKS fetch (admin keys, HS256, known keys, cached tokens), so their
    /// `welcome` goes out with the group that asked, without waiting a
    /// turn; the others are left for [`Self::run_verifications`].
    fn settle_known(&self) -> Result<()> {
        let asked = std::mem::take(&mut self.live(None)?.verifying);
        let mut waiting = Vec::new();
        for (conn, rid, credential) in asked {
            match identity::verify_now(&self.env, &credential) {
                Some(verified) => self.settle(conn, rid, verified)?,
                None => waiting.push((conn, rid, credential)),
            }
        }
        // Verifications asked for meanwhile (by frames the settled ones
        // released) come after the ones still waiting.
        let mut live = self.live(None)?;
        waiting.append(&mut live.verifying);
        live.verifying = waiting;
        Ok(())
    }

    /// Hands the hub the outcome of verifying `conn`'s credential (for its
    /// `hello`, or its `auth` `rid`), logs it, saves the connection and
    /// sends what the hub produced.
    fn settle(
        &self,
        conn: u64,
        rid: Option<u64>,
        verified: std::result::Result<blaze_auth::Verified, blaze_auth::AuthError>,
    ) -> Result<()> {
        let mut live = self.live(None)?;
        let result = match verified {
            Ok(verified) => {
                log_auth(
                    &live.collection,
                    conn,
                    rid,
                    Who::Identity(&verified.identity),
                );
                Ok((verified.identity, verified.expires))
            }
            Err(e) => {
                log_auth(&live.collection, conn, rid, Who::Refused(e.reason()));
                Err(Rejection::new(e.code(), e.message()))
            }
        };
        live.hub.handle_verified(conn, rid, result, now());
        if let Err(e) = live.save(conn) {
            live.fail(conn, &e);
        }
        live.drain()?;
        live.close_failed();
        Ok(())
    }

    /// Accepts a WebSocket to `collection` from `network`, or answers the
    /// refusal when the hub has the most connections open already, or that
    /// network its share of them (spec 10.1); says whether a socket opened.
    fn upgrade(
        &self,
        collection: &str,
        hreq: &HttpRequest,
        network: Option<String>,
        started: u64,
    ) -> Result<(Response, bool)> {
        let mut live = self.live(Some(collection))?;
        if let Err(refused) = live.hub.admit_connection(network.as_deref()) {
            let refused = HttpResponse::rejected(refused.code, refused.message);
            log_http(hreq, &refused, Who::Unknown, now().saturating_sub(started));
            return Ok((respond(refused)?, false));
        }
        let pair = WebSocketPair::new()?;
        let conn = live.next_conn()?;
        self.state.accept_web_socket(&pair.server);
        pair.server.serialize_attachment(conn)?;
        live.sockets.insert(conn, pair.server);
        live.hub.handle_open_from(conn, now(), network);
        if let Err(e) = live.save(conn) {
            live.fail(conn, &e);
            live.close_failed();
        }
        Ok((Response::from_websocket(pair.client)?, true))
    }

    /// Sets the Durable Object alarm at the earliest credential expiry of
    /// the connections or the next run of the files sweep, when it is not
    /// set for that time already.
    async fn schedule_alarm(&self) -> Result<()> {
        let due = {
            let mut live = self.live(None)?;
            let due = match (live.hub.poll_timeout(), live.sweep.due) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            // An alarm set for this time or earlier will do: when it runs,
            // it sets the next one.
            if due.is_none() || live.alarm.is_some_and(|at| Some(at) <= due) {
                return Ok(());
            }
            live.alarm = due;
            due
        };
        if let Some(at) = due {
            let offset = Duration::from_millis(at.saturating_sub(now()));
            self.state.storage().set_alarm(offset).await?;
        }
        Ok(())
    }

    /// Adaptive group commit: handles the queue at once (a lone frame is not
    /// kept waiting for a timer), then yields one turn of the event loop;
    /// frames that arrived meanwhile, from any connection, form the next
    /// group, one durable commit for all of them, and so on until a turn
    /// brings none. Under low load every frame is its own group; under load,
    /// groups grow with the arrival rate. No group waits for the previous
    /// one to be durable: the output gate holds each group's answers until
    /// its own commit is, while the next group already runs.
    ///
    /// A group cut short (by its answers, or its work) leaves frames queued:
    /// the handler then pauses [`ROUND_YIELD`], so the runtime reads the
    /// sockets and a frame another connection sent meanwhile takes its turn
    /// in the next group (the queue is fair), not after the whole pipeline.
    async fn run_groups(&self) -> Result<()> {
        loop {
            if !self.live(None)?.queued.is_empty() {
                self.run_group()?;
            }
            self.settle_known()?;
            let pause = if self.live(None)?.queued.is_empty() {
                Duration::ZERO
            } else {
                ROUND_YIELD
            };
            Delay::from(pause).await;
            if self.live(None)?.queued.is_empty() {
                return Ok(());
            }
        }
    }

    /// Handles every queued frame, in groups: each group inside one outer
    /// `transactionSync`, so its commits (savepoints inside it) reach disk in
    /// one durable commit; then sends what they produced. A group ends early
    /// once its answers hold [`GROUP_ANSWER_BYTES`] or its queries have read
    /// [`GROUP_ROWS_READ`] rows, so the frames one group
    /// keeps in memory until they are durable stay bounded whatever its
    /// clients ask for (forty first snapshots of 1 MB each are not held at
    /// once). If a commit fails, nothing is sent: the in-memory state is
    /// dropped and every socket is closed, so clients reconnect and resume
    /// from what is stored.
    fn run_queued(&self) -> Result<()> {
        while !self.live(None)?.queued.is_empty() {
            self.run_group()?;
        }
        Ok(())
    }

    /// One group of [`BlazeCollection::run_queued`].
    fn run_group(&self) -> Result<()> {
        let storage = self.state.storage();
        let cell = self.live.clone();
        let group = transaction_sync(&storage, move || {
            let mut live = cell.borrow_mut();
            let live = live.as_mut().expect("built before queueing");
            // At least one frame, whatever was handed out or read before.
            let first = live.hub.answer_bytes();
            let read = live.hub.database().storage().rows_read();
            while live.hub.answer_bytes() - first < GROUP_ANSWER_BYTES
                && live.hub.database().storage().rows_read() - read < GROUP_ROWS_READ
            {
                let Some((conn, message)) = live.queued.pop() else {
                    break;
                };
                match message {
                    WebSocketIncomingMessage::String(text) => {
                        live.hub.handle_frame(conn, &text, now())
                    }
                    WebSocketIncomingMessage::Binary(_) => live.hub.handle_binary(conn),
                }
                // A commit's failure is its request's (the hub answers it);
                // a session's is its connection's.
                if let Err(e) = live.save(conn) {
                    live.fail(conn, &e);
                }
            }
            Ok(())
        });
        if let Err(e) = group {
            let live = self.live.borrow_mut().take();
            for ws in live.into_iter().flat_map(|l| l.sockets.into_values()) {
                close(&ws, CloseCode::Internal);
            }
            return Err(storage_error(e));
        }
        let mut live = self.live(None)?;
        live.drain()?;
        live.close_failed();
        Ok(())
    }

    fn closed(&self, ws: &WebSocket) -> Result<()> {
        let Some(conn) = ws.deserialize_attachment::<u64>()? else {
            return Ok(());
        };
        self.run_queued()?;
        let mut live = self.live(None)?;
        live.hub.handle_close(conn);
        live.forget(conn)?;
        close(ws, CloseCode::Normal);
        live.drain()
    }
}
