//! The hub's side of the access rules (spec 14): who asks, checking reads,
//! queries and listens before they are answered, fetching documents of
//! other collections through the driver, and checking a listener again when
//! a document its permission rests on changes.

use std::collections::{BTreeSet, HashMap};

use blaze_protocol::{CollectionPath, DocPath, ErrorCode, Identity, Query};
use serde_json::{Map, Value};

use super::target::ListenSpec;
use super::{ConnId, Hub, HubEvent, Output};
use crate::error::{Denial, Error, Rejection};
use crate::query::CompiledQuery;
use crate::rules::{Access, Allowed, Asker, FetchedDocs};
use crate::store::{CommitRecord, Storage, StoredDoc};

/// Who makes a request outside a connection (an HTTP request), and the
/// documents of other collections fetched for it so far.
#[derive(Clone, Debug, PartialEq)]
pub struct Caller {
    /// The verified identity.
    pub identity: Identity,
    /// Documents of other collections the rules asked for (see
    /// [`Error::NeedDocuments`]): add them and ask again.
    pub fetched: FetchedDocs,
}

impl Caller {
    /// `identity`, with nothing fetched.
    pub fn new(identity: Identity) -> Self {
        Self {
            identity,
            fetched: FetchedDocs::new(),
        }
    }

    /// An admin: the rules are skipped (tools, tests, trusted servers).
    pub fn admin() -> Self {
        Self::new(Identity::Admin)
    }
}

/// What a read asks for, as the rules check it.
#[derive(Clone, Debug)]
pub(super) enum Read<'a> {
    /// One document: the `get` rule.
    Doc(&'a DocPath),
    /// A query, a count or a query listener: the `list` rule, proved from the query.
    Query(&'a Query),
}

/// A request of a connection waiting for documents of other collections.
pub(super) struct Fetching {
    /// The request frame, answered again once they come.
    pub(super) text: String,
    /// What was fetched for it so far.
    pub(super) fetched: FetchedDocs,
    /// The documents asked for and not answered yet.
    pub(super) asked: Vec<DocPath>,
}

/// A listener checked again when a document it depends on changes: its
/// own document (a document listener), or one its rules looked up.
pub(super) struct Recheck {
    /// The document a document listener follows.
    pub(super) doc: Option<DocPath>,
    /// The query a query listener follows.
    pub(super) query: Option<Query>,
    /// The documents of this object its permission rests on.
    pub(super) watched: Vec<DocPath>,
    /// Documents of other collections as fetched when it was last allowed
    /// (spec 14.5: they are checked again on resume and every
    /// `foreign_recheck_ms`, not on their change).
    pub(super) fetched: FetchedDocs,
    /// The documents of other collections its permission rests on.
    pub(super) foreign: Vec<DocPath>,
    /// When they are to be fetched and the rules checked again (ms);
    /// `None` while a fetch is under way, or when there are none.
    pub(super) due: Option<u64>,
}

/// Most documents of other collections fetched for one request: the rules'
/// own budget allows 20 lookups, so more means a driver answering wrongly.
const MAX_FETCHED: usize = 40;

/// `decision`, denied instead of asking for more documents when `fetched`
/// and those would pass [`MAX_FETCHED`]: each round of fetching adds at
/// least one document, so a request cannot wait for them without end.
pub(super) fn bounded_fetches<T>(
    decision: Result<T, Error>,
    fetched: &FetchedDocs,
) -> Result<T, Error> {
    match decision {
        Err(Error::NeedDocuments(paths)) if fetched.len() + paths.len() > MAX_FETCHED => {
            Err(Denial::new("the rules looked up too many documents").into())
        }
        other => other,
    }
}

impl<S: Storage> Hub<S> {
    /// The same hub enforcing `access` on every request of a non-admin
    /// identity (spec 14).
    pub fn with_access(self, access: Access) -> Self {
        Self { access, ..self }
    }

    /// Whether `identity` may read `what`, with `fetched` documents of other collections.
    pub(super) fn check_read(
        &self,
        identity: &Identity,
        fetched: &FetchedDocs,
        what: &Read<'_>,
        now: u64,
    ) -> Result<Allowed, Error> {
        if matches!(self.access, Access::Open) || *identity == Identity::Admin {
            return Ok(Allowed::default());
        }
        self.within_fetched_bytes(fetched)?;
        let asker = Asker {
            storage: self.db.storage(),
            local: self.scope.as_ref(),
            identity,
            now,
            fetched,
        };
        let decision = match what {
            Read::Doc(path) => {
                let stored = self.db.storage().get(&path.collection(), path.id())?;
                self.access.allow_get(&asker, path, stored.as_ref())
            }
            Read::Query(query) => self.access.allow_list(&asker, query),
        };
        bounded_fetches(decision, fetched)
    }

    /// Whether `identity` may run `query` (a query or a count). A query the
    /// engine would refuse is refused first, as a listen's is: its error
    /// says nothing about stored documents, and the proof never sees a
    /// query past the limits.
    pub(super) fn check_query(
        &self,
        identity: &Identity,
        fetched: &FetchedDocs,
        query: &Query,
        now: u64,
    ) -> Result<Allowed, Error> {
        if !matches!(self.access, Access::Open) && *identity != Identity::Admin {
            CompiledQuery::compile(query, self.db.limits())?;
        }
        self.check_read(identity, fetched, &Read::Query(query), now)
    }

    /// Whether `identity` could read document `path` in state `then` (as
    /// it was at an earlier sequence number): a resume diffs from it only
    /// then. Documents of other collections not fetched count as a denial.
    pub(super) fn may_read_state(
        &self,
        identity: &Identity,
        fetched: &FetchedDocs,
        path: &DocPath,
        then: Option<&StoredDoc>,
    ) -> bool {
        if matches!(self.access, Access::Open) || *identity == Identity::Admin {
            return true;
        }
        let asker = Asker {
            storage: self.db.storage(),
            local: self.scope.as_ref(),
            identity,
            now: self.now,
            fetched,
        };
        self.access.allow_get(&asker, path, then).is_ok()
    }

    /// Refuses a request for which more documents of other collections were
    /// fetched than one request may hold (half a connection's memory share),
    /// or when the documents every connection holds for the rules would
    /// pass a quarter of the hub's budget: `resource_exhausted`, as any
    /// memory bound (spec 14.5).
    pub(super) fn within_fetched_bytes(&self, fetched: &FetchedDocs) -> Result<(), Error> {
        let refuse = |what: &str, held: usize, budget: usize| {
            let msg = format!("the rules' documents of other collections would hold about {held} bytes of {what}, budget {budget}");
            Err(Rejection::new(ErrorCode::ResourceExhausted, msg).into())
        };
        let one = self.config.connection_budget / 2;
        if fetched.bytes() > one {
            return refuse("one request's", fetched.bytes(), one);
        }
        if fetched.is_empty() {
            return Ok(());
        }
        let all = self.config.memory_budget / 4;
        let held = self
            .conns
            .values()
            .map(|c| c.kept_bytes + c.fetching.as_ref().map_or(0, |f| f.fetched.bytes()))
            .sum::<usize>();
        if held + fetched.bytes() > all {
            return refuse("this object's", held + fetched.bytes(), all);
        }
        Ok(())
    }

    /// The driver's answer to [`HubEvent::Fetch`] for `conn`: each document
    /// asked for, with its data or `None` when it does not exist (or the
    /// other collection refused to say). The waiting request is decided
    /// again; then the frames held meanwhile are answered. Documents not
    /// asked for are ignored; an answer that leaves one asked for out
    /// denies the request (a driver answering wrongly cannot keep it
    /// waiting). An answer nobody waits for is ignored.
    pub fn handle_fetched(
        &mut self,
        conn: ConnId,
        docs: Vec<(DocPath, Option<Map<String, Value>>)>,
        now: u64,
    ) {
        self.now = now;
        let Some(fetching) = self.conns.get_mut(&conn).and_then(|c| c.fetching.as_mut()) else {
            return;
        };
        for (path, data) in docs {
            if let Some(at) = fetching.asked.iter().position(|p| *p == path) {
                fetching.asked.swap_remove(at);
                fetching.fetched.insert(path, data);
            }
        }
        let text = fetching.text.clone();
        let decoded = blaze_protocol::decode_client(&text, self.db.limits());
        if fetching.asked.is_empty() {
            self.answer(conn, &text, decoded, now);
        } else {
            let unanswered = std::mem::take(&mut fetching.asked);
            if let Some(c) = self.conns.get_mut(&conn) {
                c.fetching = None;
            }
            let rid = decoded.ok().as_ref().and_then(super::request_id);
            let why = format!("the driver did not fetch {unanswered:?}");
            self.send_error(conn, rid, &Denial::new(why).into());
        }
        if self.conns.get(&conn).is_some_and(|c| c.fetching.is_none()) {
            self.release_held(conn, now);
        }
    }

    /// Holds request `text` of `conn` until the driver fetches `paths`
    /// (to add to what was `fetched` for it).
    pub(super) fn fetch(
        &mut self,
        conn: ConnId,
        text: &str,
        fetched: FetchedDocs,
        paths: Vec<DocPath>,
    ) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.fetching = Some(Fetching {
                text: text.to_owned(),
                fetched,
                asked: paths.clone(),
            });
        }
        self.outputs
            .push_back(Output::Event(HubEvent::Fetch { conn, paths }));
    }

    /// Records listener `rid` of `conn` for checking again when a document
    /// its permission rests on changes: a document listener's own document
    /// (rules may read `resource`), and the documents of this object its
    /// rules looked up. Nothing is recorded when no rules apply.
    pub(super) fn watch(
        &mut self,
        conn: ConnId,
        rid: u64,
        what: &Read<'_>,
        allowed: Allowed,
        fetched: FetchedDocs,
    ) {
        let enforced = matches!(self.access, Access::Enforced(_))
            && self
                .conns
                .get(&conn)
                .is_some_and(|c| c.identity != Identity::Admin);
        if !enforced {
            return;
        }
        let (doc, query) = match what {
            Read::Doc(path) => (Some((*path).clone()), None),
            Read::Query(query) => (None, Some((*query).clone())),
        };
        let local = |p: &DocPath| self.scope.as_ref().is_none_or(|s| *s == p.collection());
        let foreign: Vec<DocPath> = allowed
            .looked_up
            .iter()
            .filter(|p| !local(p))
            .cloned()
            .collect();
        let watched = self.rests_on(what, allowed);
        if watched.is_empty() && foreign.is_empty() {
            return;
        }
        let due = (!foreign.is_empty()).then(|| self.now + self.config.foreign_recheck_ms);
        // Only the documents of other collections the decision read are
        // kept (and counted in the connection's memory share).
        let mut fetched = fetched;
        fetched.retain(|p| foreign.contains(p));
        for path in &watched {
            self.rechecks
                .entry(path.clone())
                .or_default()
                .insert((conn, rid));
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            c.kept_bytes += fetched.bytes();
            let check = Recheck {
                doc,
                query,
                watched,
                fetched,
                foreign,
                due,
            };
            if let Some(old) = c.checks.insert(rid, check) {
                c.kept_bytes -= old.fetched.bytes();
            }
        }
    }

    /// The documents of this object a listener of `what`, `allowed` so,
    /// rests on: those its rules looked up, and a document listener's own.
    fn rests_on(&self, what: &Read<'_>, allowed: Allowed) -> Vec<DocPath> {
        let local = |p: &DocPath| self.scope.as_ref().is_none_or(|s| *s == p.collection());
        let mut watched: Vec<DocPath> = allowed.looked_up.into_iter().filter(local).collect();
        if let Read::Doc(path) = what {
            watched.push((*path).clone());
        }
        watched.sort();
        watched.dedup();
        watched
    }

    /// Forgets the recheck record of listener `rid` of `conn`.
    pub(super) fn unwatch(&mut self, conn: ConnId, rid: u64) {
        let Some(check) = self.conns.get_mut(&conn).and_then(|c| {
            let check = c.checks.remove(&rid)?;
            c.kept_bytes -= check.fetched.bytes();
            Some(check)
        }) else {
            return;
        };
        self.drop_watches(conn, rid, &check.watched);
    }

    /// Removes `(conn, rid)` from the recheck index under each of `watched`.
    pub(super) fn drop_watches(&mut self, conn: ConnId, rid: u64, watched: &[DocPath]) {
        for path in watched {
            if let Some(set) = self.rechecks.get_mut(path) {
                set.remove(&(conn, rid));
                if set.is_empty() {
                    self.rechecks.remove(path);
                }
            }
        }
    }

    /// Checks again every listener whose permission rests on a document
    /// `record` wrote in `collection`, against the state after it; each one
    /// now denied ends with an `error` (`permission_denied`, its rid) before
    /// any frame of this commit is handed out.
    pub(super) fn recheck_written(&mut self, collection: &str, record: &CommitRecord) {
        if self.rechecks.is_empty() {
            return;
        }
        let Ok(collection) = CollectionPath::parse(collection) else {
            return;
        };
        let mut due = BTreeSet::new();
        for change in &record.docs {
            if let Ok(path) = collection.doc(&change.id) {
                if let Some(listeners) = self.rechecks.get(&path) {
                    due.extend(listeners.iter().copied());
                }
            }
        }
        // Listeners of one identity on one document or query share a
        // decision (the state is the same for all of them): a document
        // followed by many listeners of few users costs a decision per user.
        let mut decided = Decisions::default();
        for (conn, rid) in due {
            let Some(c) = self.conns.get(&conn) else {
                continue;
            };
            let Some(check) = c.checks.get(&rid) else {
                continue;
            };
            let (doc, query) = (check.doc.clone(), check.query.clone());
            let fetched = check.fetched.clone();
            let what = match (&doc, &query) {
                (Some(doc), _) => Read::Doc(doc),
                (None, Some(query)) => Read::Query(query),
                (None, None) => continue,
            };
            let shared = fetched.is_empty();
            let known = shared.then(|| decided.find(&c.identity, &what)).flatten();
            let verdict = match known {
                Some(verdict) => verdict,
                None => {
                    let verdict = self.check_read(&c.identity, &fetched, &what, self.now);
                    if shared {
                        decided.add(&c.identity, &what, &verdict);
                    }
                    verdict
                }
            };
            self.settle_recheck(conn, rid, &what, verdict, fetched);
        }
    }

    /// Checks every listener of `conn` again (its identity changed: a
    /// refreshed credential may carry other claims); each one now denied
    /// ends with an `error` (`permission_denied`, its rid).
    pub(super) fn recheck_connection(&mut self, conn: ConnId) {
        if !matches!(self.access, Access::Enforced(_)) {
            return;
        }
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let mut listeners: Vec<(u64, u64)> = c.listeners.iter().map(|(&r, &t)| (r, t)).collect();
        listeners.sort_unstable();
        for (rid, target) in listeners {
            let Some(c) = self.conns.get(&conn) else {
                return;
            };
            let fetched = c.checks.get(&rid).map(|k| k.fetched.clone());
            let spec = self
                .targets
                .get(&target)
                .map(|t| ListenSpec::from_key(&t.key, self.db.limits()));
            let Some(Ok(spec)) = spec else {
                continue;
            };
            let query = spec.doc.is_none().then_some(spec.source);
            self.recheck(conn, rid, spec.doc, query, fetched.unwrap_or_default());
        }
    }

    /// Checks listener `rid` of `conn` (of document `doc`, or of `query`)
    /// again with the documents of other collections `fetched` for it:
    /// allowed, it is watched on the documents the decision read now;
    /// denied, it ends.
    fn recheck(
        &mut self,
        conn: ConnId,
        rid: u64,
        doc: Option<DocPath>,
        query: Option<Query>,
        fetched: FetchedDocs,
    ) {
        let Some(identity) = self.conns.get(&conn).map(|c| c.identity.clone()) else {
            return;
        };
        let what = match (&doc, &query) {
            (Some(doc), _) => Read::Doc(doc),
            (None, Some(query)) => Read::Query(query),
            (None, None) => return,
        };
        let verdict = self.check_read(&identity, &fetched, &what, self.now);
        self.settle_recheck(conn, rid, &what, verdict, fetched);
    }

    /// Carries out the `verdict` of checking listener `rid` of `conn` (on
    /// `what`, with `fetched`) again: allowed, it is watched on the
    /// documents the decision read now; denied, it ends.
    fn settle_recheck(
        &mut self,
        conn: ConnId,
        rid: u64,
        what: &Read<'_>,
        verdict: Result<Allowed, Error>,
        fetched: FetchedDocs,
    ) {
        match verdict {
            // Still allowed, perhaps resting on other documents now: those
            // are the ones watched from here on.
            Ok(allowed) => {
                let watched = self.rests_on(what, allowed.clone());
                let check = self.conns.get(&conn).and_then(|c| c.checks.get(&rid));
                if check.is_none_or(|check| check.watched != watched) {
                    self.unwatch(conn, rid);
                    self.watch(conn, rid, what, allowed, fetched);
                }
            }
            // Documents of other collections it now needs were not fetched:
            // the listener ends the same way (spec 14.5).
            Err(Error::NeedDocuments(_)) => {
                let why = "the permission now rests on documents of other collections";
                self.end_listener(conn, rid, &Denial::new(why).into());
            }
            Err(error) => self.end_listener(conn, rid, &error),
        }
    }

    /// The earliest time a listener resting on documents of other
    /// collections is due to be checked again.
    pub(super) fn refetch_due(&self) -> Option<u64> {
        self.conns
            .values()
            .flat_map(|c| c.checks.values().filter_map(|k| k.due))
            .min()
    }

    /// Asks the driver for the documents of other collections of every
    /// listener due at `now` ([`HubEvent::Refetch`]).
    pub(super) fn refetch_due_listeners(&mut self, now: u64) {
        let mut due: Vec<(ConnId, u64)> = self
            .conns
            .iter()
            .flat_map(|(&conn, c)| {
                c.checks
                    .iter()
                    .filter(move |(_, k)| k.due.is_some_and(|d| d <= now))
                    .map(move |(&rid, _)| (conn, rid))
            })
            .collect();
        due.sort_unstable();
        for (conn, rid) in due {
            let Some(check) = self
                .conns
                .get_mut(&conn)
                .and_then(|c| c.checks.get_mut(&rid))
            else {
                continue;
            };
            check.due = None;
            let paths = check.foreign.clone();
            self.outputs
                .push_back(Output::Event(HubEvent::Refetch { conn, rid, paths }));
        }
    }

    /// The driver's answer to [`HubEvent::Refetch`] for listener `rid` of
    /// `conn`: each document asked for, with its data or `None`. The
    /// listener's rules are checked again with them and the state of this
    /// object: allowed, it goes on (due again after `foreign_recheck_ms`);
    /// denied, it ends with `permission_denied`. Rules that now need more
    /// documents of other collections ask for them too, up to the bound of a
    /// request. An answer nobody waits for is ignored.
    pub fn handle_refetched(
        &mut self,
        conn: ConnId,
        rid: u64,
        docs: Vec<(DocPath, Option<Map<String, Value>>)>,
        now: u64,
    ) {
        self.now = self.now.max(now);
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let Some(check) = c.checks.get(&rid) else {
            return;
        };
        if check.due.is_some() || check.foreign.is_empty() {
            return; // not waiting for this answer
        }
        let mut fetched = FetchedDocs::new();
        for (path, data) in docs {
            fetched.insert(path, data);
        }
        let (doc, query) = (check.doc.clone(), check.query.clone());
        let what = match (&doc, &query) {
            (Some(doc), _) => Read::Doc(doc),
            (None, Some(query)) => Read::Query(query),
            (None, None) => return,
        };
        match self.check_read(&c.identity, &fetched, &what, self.now) {
            // More of them than were asked for (bounded: `check_read`
            // denies past MAX_FETCHED).
            Err(Error::NeedDocuments(more)) => {
                let mut paths: Vec<DocPath> = fetched.paths().cloned().collect();
                paths.extend(more);
                self.outputs
                    .push_back(Output::Event(HubEvent::Refetch { conn, rid, paths }));
            }
            Ok(allowed) => {
                self.unwatch(conn, rid);
                self.watch(conn, rid, &what, allowed, fetched);
            }
            Err(error) => self.end_listener(conn, rid, &error),
        }
    }

    /// Ends listener `rid` of `conn` with `error`, sent with the listener's id.
    pub(super) fn end_listener(&mut self, conn: ConnId, rid: u64, error: &Error) {
        if self.unlisten(conn, rid).is_ok() {
            self.send_error(conn, Some(rid), error);
        }
    }
}

/// Decisions of one recheck pass, by identity and what it reads.
#[derive(Default)]
struct Decisions {
    /// By the identity's uid (empty for others): each identity, what it read, the verdict.
    by_uid: HashMap<String, Vec<Decided>>,
}

/// One decision of a recheck pass.
struct Decided {
    identity: Identity,
    doc: Option<DocPath>,
    query: Option<Query>,
    verdict: Result<Allowed, Error>,
}

impl Decisions {
    fn key(identity: &Identity) -> String {
        identity.uid().unwrap_or_default().to_owned()
    }

    /// The verdict already reached for `identity` reading `what`, if any.
    fn find(&self, identity: &Identity, what: &Read<'_>) -> Option<Result<Allowed, Error>> {
        let found = self.by_uid.get(&Self::key(identity))?.iter().find(|d| {
            d.identity == *identity
                && match what {
                    Read::Doc(doc) => d.doc.as_ref() == Some(*doc),
                    Read::Query(query) => d.query.as_ref() == Some(*query),
                }
        })?;
        Some(found.verdict.clone())
    }

    /// Records the verdict for `identity` reading `what`.
    fn add(&mut self, identity: &Identity, what: &Read<'_>, verdict: &Result<Allowed, Error>) {
        let (doc, query) = match what {
            Read::Doc(doc) => (Some((*doc).clone()), None),
            Read::Query(query) => (None, Some((*query).clone())),
        };
        self.by_uid
            .entry(Self::key(identity))
            .or_default()
            .push(Decided {
                identity: identity.clone(),
                doc,
                query,
                verdict: verdict.clone(),
            });
    }
}
