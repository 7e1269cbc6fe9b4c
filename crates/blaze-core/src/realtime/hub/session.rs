//! Saving and restoring a connection's state, for a driver that loses the
//! hub's memory while the connection stays up (a Durable Object woken from
//! hibernation).

use blaze_protocol::{ErrorCode, Identity};

use super::guard::Read;
use super::target::ListenSpec;
use super::{ConnId, Hub};
use crate::error::{Error, Rejection};
use crate::rules::FetchedDocs;
use crate::store::Storage;

/// What one connection holds, for a driver that must rebuild the hub after
/// losing its memory (a Durable Object woken from hibernation). It holds the
/// connection's verified identity, never its credential.
#[derive(Clone, Debug, PartialEq)]
pub struct SavedSession {
    /// Whether the handshake was done.
    pub open: bool,
    /// Who the connection's credential says it is.
    pub identity: Identity,
    /// The network the driver saw the connection come from, if it told one.
    pub network: Option<String>,
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
            network: None,
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

impl<S: Storage> Hub<S> {
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
            network: c.network.clone(),
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
        // A connection that had not said `hello` when the hub lost its
        // memory is due at once: the hub cannot tell how long it was silent.
        self.handle_open_from(conn, self.now, session.network.clone());
        if let Some(c) = self.conns.get_mut(&conn) {
            c.hello_due = self.now;
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
}
