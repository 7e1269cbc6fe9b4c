//! The handshake (`hello`, `welcome`) and the connection's credential:
//! asking the driver to verify it, taking its answer, and refreshing it
//! with `auth` (spec 10.1 and 13).

use blaze_protocol::{
    AuthState, ClientMessage, CloseCode, ErrorCode, Identity, ServerMessage, PROTOCOL_VERSION,
};

use super::connection::{Connection, Verifying};
use super::{frame, ConnId, Hub, HubEvent, Output};
use crate::error::Rejection;
use crate::store::Storage;

impl<S: Storage> Hub<S> {
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
        // A user past its share of the collection's connections is refused
        // at its `hello` (spec 10.1).
        let crowded = match (&result, rid) {
            (Ok((identity, _)), None) => self.user_share_taken(identity),
            _ => None,
        };
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
        if let Some(msg) = crowded {
            return self.refuse_handshake(conn, ErrorCode::ResourceExhausted, &msg);
        }
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

    pub(super) fn handshake(&mut self, conn: ConnId, message: Option<ClientMessage>) {
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

    /// Why one more connection of `identity` would take it past a user's
    /// share of the collection's connections (an eighth of
    /// [`HubConfig::max_connections`](super::HubConfig::max_connections),
    /// rounded up); `None` when it fits, or when `identity` is not a user's.
    fn user_share_taken(&self, identity: &Identity) -> Option<String> {
        let uid = identity.uid()?;
        let share = self.share();
        let mine = |c: &&Connection| c.open && c.identity.uid() == Some(uid);
        let open = self.conns.values().filter(mine).count();
        let msg = format!("this user has {open} connections to this collection, its most");
        (open >= share).then_some(msg)
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
    pub(super) fn refresh(
        &mut self,
        conn: ConnId,
        rid: u64,
        credential: String,
    ) -> Result<(), Rejection> {
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

    pub(super) fn refuse_handshake(&mut self, conn: ConnId, code: ErrorCode, message: &str) {
        self.send_error(conn, None, &Rejection::new(code, message).into());
        let close = match code {
            ErrorCode::UnsupportedProtocol => CloseCode::UnsupportedProtocol,
            _ => CloseCode::HandshakeRequired,
        };
        self.close(conn, close);
    }
}
