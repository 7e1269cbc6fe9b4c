//! Listening: opening a listener on a shared target (made on first use),
//! its first answer (a snapshot, or the changes since a resumed `seq`),
//! the memory budget a listen must fit (spec 10.4.8), and ending it.

use std::collections::HashMap;
use std::sync::Arc;

use blaze_protocol::{DocPath, DocSnapshot, ErrorCode, Identity, Query, ServerMessage};

use super::connection::Connection;
use super::guard::Read;
use super::target::{ListenSpec, Subscribers, Target};
use super::{ConnId, Hub};
use crate::error::{Error, Rejection};
use crate::query::HeldBound;
use crate::realtime::view::{diff_results, results_at, QueryView};
use crate::rules::FetchedDocs;
use crate::store::Storage;

/// How many documents of other targets [`Hub`] reads, per document of a
/// snapshot, to find the ones the connection already holds (spec 10.4.9).
const HELD_SCAN_PER_DOC: usize = 4;
/// How many more it may read for one snapshot, whatever its size.
const HELD_SCAN_BASE: usize = 1024;

impl<S: Storage> Hub<S> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn listen(
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
    pub(super) fn subscribe(&mut self, conn: ConnId, rid: u64, target_id: u64) {
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
    pub(super) fn target_for(&mut self, spec: ListenSpec, id: Option<u64>) -> Result<u64, Error> {
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
        // A new listen's results must fit the connection's share (checked
        // exactly after): reading stops past it, before the memory is spent.
        // A restored one is not refused (spec 10.4.8).
        let bound = id.is_none().then_some(HeldBound {
            bytes: self.config.connection_budget,
            code: ErrorCode::ResourceExhausted,
        });
        let view = QueryView::open(self.db.storage(), spec.query, &mut self.bodies, bound)?;
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
        // Rebuilding the results at `since` reads the changes since and the
        // results now: past the connection's share of the memory budget, a
        // snapshot with `reset` answers instead, from what the target holds
        // (spec 10.4.4).
        let share = self.config.connection_budget;
        let log = match since {
            Some(since) if since <= seq => self.db.log_since_within(collection, since, share)?,
            _ => None,
        };
        let bound = HeldBound {
            bytes: share,
            code: ErrorCode::ResourceExhausted,
        };
        let then = match log {
            Some(log) => {
                match results_at(self.db.storage(), target.view.query(), &log, Some(bound)) {
                    Ok(then) => Some(then),
                    Err(e) if e.code() == ErrorCode::ResourceExhausted => None,
                    Err(e) => return Err(e),
                }
            }
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

    pub(super) fn unlisten(&mut self, conn: ConnId, listener: u64) -> Result<(), Error> {
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

    pub(super) fn unsubscribe(&mut self, conn: ConnId, target_id: u64) {
        if let Some(t) = self.targets.get_mut(&target_id) {
            t.subscribers.remove(conn);
        }
        self.drop_if_unused(target_id);
    }

    pub(super) fn drop_if_unused(&mut self, target_id: u64) {
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
}
