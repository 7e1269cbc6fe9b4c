//! The session with the channels its ids stand for: each request id maps to
//! the caller's reply, each listener id to its stream, and every event the
//! session polls out is routed to its receiver.

use std::collections::HashMap;

use blaze_protocol::{AuthState, ServerMessage};
use tokio::sync::{mpsc, oneshot};

use crate::session::{
    Event, ListenTarget, ListenerId, ListenerUpdate, Request, RequestId, Session,
};
use crate::Error;

/// Where a request's answer goes.
pub(crate) type Reply = oneshot::Sender<Result<ServerMessage, Error>>;

/// What the API sends a connection task.
pub(crate) enum Command {
    /// Send a request; answer through the reply.
    Request(Request, Reply),
    /// Start a listener; the number is the API's handle for it, unique per
    /// client, to stop it with.
    Listen(u64, ListenTarget, mpsc::UnboundedSender<ListenerUpdate>),
    /// Stop the listener with this handle (its stream was dropped).
    Unlisten(u64),
}

/// A [`Session`] and the receivers of its answers and listener updates.
pub(crate) struct RoutedSession {
    session: Session,
    replies: HashMap<RequestId, Reply>,
    listeners: HashMap<ListenerId, mpsc::UnboundedSender<ListenerUpdate>>,
    handles: HashMap<u64, ListenerId>,
}

impl RoutedSession {
    /// Routes the events of `session`.
    pub(crate) fn new(session: Session) -> Self {
        Self {
            session,
            replies: HashMap::new(),
            listeners: HashMap::new(),
            handles: HashMap::new(),
        }
    }

    /// The `hello` frame that opens every connection.
    pub(crate) fn hello(&self) -> String {
        self.session.hello()
    }

    /// The next frame to send, if any.
    pub(crate) fn poll_transmit(&mut self) -> Option<String> {
        self.session.poll_transmit()
    }

    /// The credential for the next `hello`: see [`Session::set_credential`].
    pub(crate) fn set_credential(&mut self, token: Option<String>) {
        self.session.set_credential(token);
    }

    /// When the credential is due for a refresh: see [`Session::poll_timeout`].
    pub(crate) fn poll_timeout(&self) -> Option<u64> {
        self.session.poll_timeout()
    }

    /// The time is `now`: see [`Session::handle_timeout`].
    pub(crate) fn handle_timeout(&mut self, now: u64) -> bool {
        self.session.handle_timeout(now)
    }

    /// A fresh token for the connection: see [`Session::refresh`].
    pub(crate) fn refresh(&mut self, token: Result<Option<String>, String>, now: u64) {
        self.session.refresh(token, now);
    }

    /// The credential failed: see [`Session::auth_failed`].
    pub(crate) fn auth_failed(&mut self, message: &str) {
        self.session.auth_failed(message);
        self.route();
    }

    /// The connection was dropped at `now` for a protocol error (`why`):
    /// after a few in a row, everything pending fails (`Session::protocol_failed`).
    pub(crate) fn protocol_failed(&mut self, why: &str, now: u64) {
        self.session.protocol_failed(why, now);
        self.route();
    }

    /// Takes in a command from the API.
    pub(crate) fn command(&mut self, command: Command) {
        match command {
            Command::Request(request, reply) => {
                if !reply.is_closed() {
                    let id = self.session.request(request);
                    self.replies.insert(id, reply);
                }
            }
            Command::Listen(handle, target, updates) => {
                let id = self.session.listen(target);
                self.listeners.insert(id, updates);
                self.handles.insert(handle, id);
            }
            Command::Unlisten(handle) => {
                if let Some(id) = self.handles.remove(&handle) {
                    self.listeners.remove(&id);
                    self.session.unlisten(id);
                }
            }
        }
    }

    /// Whether a connection is needed, once requests whose caller stopped
    /// waiting are forgotten.
    pub(crate) fn has_work(&mut self) -> bool {
        self.forget_abandoned();
        self.session.has_work()
    }

    /// The handshake is done: see [`Session::connected`]. Requests whose
    /// caller stopped waiting are not sent again.
    pub(crate) fn connected(&mut self, auth: Option<&AuthState>, now: u64) {
        self.forget_abandoned();
        self.session.connected(auth, now);
        self.route();
    }

    /// The connection is lost: see [`Session::disconnected`].
    pub(crate) fn disconnected(&mut self, attempt: u32, reason: &str) {
        self.session.disconnected(attempt, reason);
        self.route();
    }

    /// A server frame: see [`Session::handle_frame`].
    pub(crate) fn handle_frame(&mut self, text: &str) -> Result<(), Error> {
        let handled = self.session.handle_frame(text);
        self.route();
        handled
    }

    /// Cancels the requests whose caller timed out (its reply is closed).
    fn forget_abandoned(&mut self) {
        let session = &mut self.session;
        self.replies.retain(|id, reply| {
            let waiting = !reply.is_closed();
            if !waiting {
                session.cancel(*id);
            }
            waiting
        });
    }

    /// Hands every event of the session to its receiver.
    fn route(&mut self) {
        while let Some(event) = self.session.poll_event() {
            match event {
                Event::Answer { request, result } => {
                    if let Some(reply) = self.replies.remove(&request) {
                        let _ = reply.send(result);
                    }
                }
                Event::Listener { id, update } => {
                    let failed = matches!(update, ListenerUpdate::Failed(_));
                    if let Some(updates) = self.listeners.get(&id) {
                        let _ = updates.send(update);
                    }
                    if failed {
                        self.listeners.remove(&id);
                        self.handles.retain(|_, listener| *listener != id);
                    }
                }
            }
        }
    }
}
