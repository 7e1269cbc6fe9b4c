//! Model-based test of the realtime hub: random interleavings of writes,
//! listens, unlistens, disconnects and resumes across several connections.
//! After every step, each listener's accumulated view (its snapshot plus
//! every change applied in order) must equal its query run from scratch; the
//! sequence numbers it saw must strictly increase; it must get an event for
//! exactly the commits that changed its results; and a resume must reset
//! exactly when the change log no longer reaches back. Every commit carries a
//! commit id, and a retry of an earlier commit (from any connection) is
//! answered with its original outcome, writing nothing and telling no
//! listener, exactly while the change log still reaches back to it. Every
//! other client takes held snapshot entries (spec 10.4.9), resolved only from
//! its listeners answered on the same connection.

use std::collections::BTreeSet;

use blaze_core::{
    ChangeLogLimits, Database, Hub, HubConfig, Limits, MemoryStorage, Output, SavedSession,
};
use blaze_json::changes::apply_changes;
use blaze_protocol::{
    decode_server, encode, Change, ClientMessage, CommitId, Direction, DocSnapshot, FieldFilter,
    Filter, Op, OrderBy, Query, ServerMessage, Write, WriteKind,
};
use proptest::prelude::*;
use serde_json::{json, Value};

const COLLECTION: &str = "m";

/// The one collection every step works on.
fn collection() -> blaze_protocol::CollectionPath {
    blaze_protocol::CollectionPath::parse(COLLECTION).unwrap()
}
const LOG_ENTRIES: u64 = 4;
const CONNS: usize = 3;

/// What a listener listens to: a document id or a query.
#[derive(Clone, Debug)]
enum Subject {
    Doc(&'static str),
    Query(Box<Query>),
}

fn eq(field: &str, value: Value) -> Filter {
    Filter::Field(FieldFilter {
        field: field.into(),
        op: Op::Eq,
        value,
    })
}

fn subjects() -> Vec<Subject> {
    let order = |field: &str, direction| OrderBy {
        field: field.into(),
        direction,
    };
    let mut by_room = Query::all(collection());
    by_room.filter = Some(eq("room", json!(0)));
    let mut top_two = Query::all(collection());
    top_two.filter = Some(eq("room", json!(1)));
    top_two.order_by = vec![order("n", Direction::Desc)];
    top_two.limit = Some(2);
    let mut last_in = Query::all(collection());
    last_in.filter = Some(Filter::Field(FieldFilter {
        field: "room".into(),
        op: Op::In,
        value: json!([1, 2]),
    }));
    last_in.order_by = vec![order("n", Direction::Asc)];
    last_in.limit_to_last = Some(1);
    let mut range = Query::all(collection());
    range.filter = Some(Filter::Field(FieldFilter {
        field: "n".into(),
        op: Op::Ge,
        value: json!(2),
    }));
    range.order_by = vec![order("n", Direction::Asc)];
    range.start_after = Some(vec![json!(2), json!("d1")]);
    vec![
        Subject::Query(Box::new(Query::all(collection()))),
        Subject::Query(Box::new(by_room)),
        Subject::Query(Box::new(top_two)),
        Subject::Query(Box::new(last_in)),
        Subject::Query(Box::new(range)),
        Subject::Doc("d1"),
        Subject::Doc("d3"),
    ]
}

impl Subject {
    /// The query whose from-scratch results the listener must hold.
    fn query(&self) -> Query {
        match self {
            Subject::Query(q) => (**q).clone(),
            Subject::Doc(id) => {
                let mut q = Query::all(collection());
                q.filter = Some(eq("__name__", json!(id)));
                q
            }
        }
    }
}

#[derive(Clone, Debug)]
enum Step {
    Set {
        conn: usize,
        id: u8,
        room: u8,
        n: u8,
    },
    Patch {
        conn: usize,
        id: u8,
        n: u8,
    },
    Delete {
        conn: usize,
        id: u8,
    },
    HttpSet {
        id: u8,
        room: u8,
    },
    Listen {
        conn: usize,
        subject: usize,
    },
    Unlisten {
        conn: usize,
        pick: usize,
    },
    /// Sends an earlier commit again, with its commit id.
    Retry {
        conn: usize,
        pick: usize,
    },
    Disconnect {
        conn: usize,
    },
    Reconnect {
        conn: usize,
    },
    /// The server loses its memory with every connection still up, and
    /// rebuilds the hub from each connection's saved session.
    Hibernate,
}

fn step() -> impl Strategy<Value = Step> {
    let conn = 0..CONNS;
    prop_oneof![
        4 => (conn.clone(), 0..6u8, 0..3u8, 0..5u8).prop_map(|(conn, id, room, n)| Step::Set { conn, id, room, n }),
        2 => (conn.clone(), 0..6u8, 0..5u8).prop_map(|(conn, id, n)| Step::Patch { conn, id, n }),
        1 => (conn.clone(), 0..6u8).prop_map(|(conn, id)| Step::Delete { conn, id }),
        1 => (0..6u8, 0..3u8).prop_map(|(id, room)| Step::HttpSet { id, room }),
        3 => (conn.clone(), 0..7usize).prop_map(|(conn, subject)| Step::Listen { conn, subject }),
        1 => (conn.clone(), 0..8usize).prop_map(|(conn, pick)| Step::Unlisten { conn, pick }),
        2 => (conn.clone(), 0..64usize).prop_map(|(conn, pick)| Step::Retry { conn, pick }),
        1 => conn.clone().prop_map(|conn| Step::Disconnect { conn }),
        1 => conn.prop_map(|conn| Step::Reconnect { conn }),
        1 => Just(Step::Hibernate),
    ]
}

/// A listener as its client holds it.
#[derive(Debug)]
struct Listener {
    rid: u64,
    subject: usize,
    target: Option<u64>,
    docs: Vec<DocSnapshot>,
    last_seq: Option<u64>,
    /// Sequence numbers of the events it got during the current step.
    events: Vec<u64>,
    /// Whether its last (re)listen was answered with a reset.
    reset: bool,
}

/// One simulated client.
#[derive(Debug, Default)]
struct Client {
    conn: Option<u64>,
    /// Whether its `hello` says it takes held snapshot entries.
    held_docs: bool,
    /// How many held entries it resolved.
    held: usize,
    listeners: Vec<Listener>,
    next_rid: u64,
    acks: Vec<u64>,
    errors: Vec<String>,
}

/// A commit some client sent: its id, its write, and the sequence number it
/// was applied at (`None`: rejected, so the server does not remember it).
#[derive(Clone, Debug)]
struct Sent {
    id: CommitId,
    write: Write,
    applied: Option<u64>,
}

struct World {
    hub: Hub<MemoryStorage>,
    clients: Vec<Client>,
    subjects: Vec<Subject>,
    next_conn: u64,
    now: u64,
    sent: Vec<Sent>,
}

fn relaxed() -> Limits {
    Limits {
        max_frame_bytes: usize::MAX,
        max_frame_depth: usize::MAX,
        ..Limits::default()
    }
}

fn apply(docs: &mut Vec<DocSnapshot>, changes: &[Change]) {
    apply_changes(docs, changes).expect("the changes fit the listener's results");
}

impl World {
    fn new() -> Self {
        let db = Database::new(MemoryStorage::new(), Limits::default()).with_change_log(
            ChangeLogLimits {
                max_entries: LOG_ENTRIES,
                max_age_ms: u64::MAX,
            },
        );
        let mut world = Self {
            hub: Hub::new(db, HubConfig::default()),
            clients: (0..CONNS)
                .map(|c| Client {
                    held_docs: c % 2 == 1,
                    ..Client::default()
                })
                .collect(),
            subjects: subjects(),
            next_conn: 1,
            now: 1_000,
            sent: Vec::new(),
        };
        for c in 0..CONNS {
            world.connect(c);
        }
        world
    }

    fn connect(&mut self, c: usize) {
        let conn = self.next_conn;
        self.next_conn += 1;
        self.clients[c].conn = Some(conn);
        self.hub.handle_open(conn, 0);
        self.send(
            c,
            &ClientMessage::Hello {
                protocol: 1,
                auth: None,
                held_docs: self.clients[c].held_docs,
                rid: None,
            },
        );
    }

    fn send(&mut self, c: usize, message: &ClientMessage) {
        let conn = self.clients[c].conn.expect("connected");
        self.now += 1;
        self.hub.handle_frame(conn, &encode(message), self.now);
        self.drain();
    }

    fn rid(&mut self, c: usize) -> u64 {
        self.clients[c].next_rid += 1;
        self.clients[c].next_rid
    }

    fn drain(&mut self) {
        while let Some(output) = self.hub.poll_output() {
            let (conn, frame) = match output {
                Output::Send { conn, frame } => (conn, frame),
                Output::Close { conn, code } => {
                    panic!("connection {conn} closed: {code:?}")
                }
                Output::Event(_) => continue,
            };
            let client = self
                .clients
                .iter_mut()
                .find(|c| c.conn == Some(conn))
                .expect("frames go to open connections");
            let message = decode_server(&frame, &relaxed()).expect("server frames decode");
            receive(client, message);
        }
    }

    fn current(&self, subject: usize) -> (u64, Vec<DocSnapshot>) {
        let query = self.subjects[subject].query();
        let out = self.hub.database().query(&query).expect("query runs");
        let collection = collection();
        (
            out.seq,
            out.docs.iter().map(|d| d.snapshot(&collection)).collect(),
        )
    }

    fn seq(&self) -> u64 {
        self.hub
            .database()
            .query(&Query::all(collection()))
            .unwrap()
            .seq
    }

    fn write(&mut self, c: usize, write: Write) {
        let connected = self.clients[c].conn.is_some();
        if !connected {
            return;
        }
        let id = CommitId::parse(&format!("k{}", self.sent.len())).unwrap();
        let applied = self.commit(c, &id, &write);
        self.sent.push(Sent { id, write, applied });
    }

    /// Sends one commit with `id`; returns the seq it was answered with.
    fn commit(&mut self, c: usize, id: &CommitId, write: &Write) -> Option<u64> {
        let rid = self.rid(c);
        self.send(
            c,
            &ClientMessage::Commit {
                rid,
                collection: collection(),
                writes: vec![write.clone()],
                commit_id: Some(id.clone()),
            },
        );
        let client = &self.clients[c];
        assert_eq!(client.acks.len() + client.errors.len(), 1, "one answer");
        client.acks.first().copied()
    }

    /// Sends the earlier commit `pick` again from connection `c`.
    fn retry(&mut self, c: usize, pick: usize) {
        if self.clients[c].conn.is_none() || self.sent.is_empty() {
            return;
        }
        let pick = pick % self.sent.len();
        let Sent { id, write, applied } = self.sent[pick].clone();
        let seq = self.seq();
        let remembered = applied.filter(|&s| seq - s < LOG_ENTRIES);
        let answer = self.commit(c, &id, &write);
        match remembered {
            Some(s) => {
                assert_eq!(answer, Some(s), "a remembered commit answers its seq");
                assert_eq!(self.seq(), seq, "a remembered commit writes nothing");
            }
            None => {
                if let Some(new) = answer {
                    assert_eq!(new, seq + 1, "a forgotten commit is applied anew");
                }
                self.sent[pick].applied = answer;
            }
        }
    }

    fn run(&mut self, step: &Step) {
        for client in &mut self.clients {
            for l in &mut client.listeners {
                l.events.clear();
            }
            client.acks.clear();
            client.errors.clear();
        }
        let before: Vec<Vec<DocSnapshot>> = (0..self.subjects.len())
            .map(|s| self.current(s).1)
            .collect();
        let seq_before = self.seq();
        match *step {
            Step::Set { conn, id, room, n } => self.write(
                conn,
                Write {
                    id: format!("d{id}"),
                    kind: WriteKind::Set {
                        data: json!({"room": room, "n": n}),
                    },
                    precondition: Default::default(),
                },
            ),
            Step::Patch { conn, id, n } => self.write(
                conn,
                Write {
                    id: format!("d{id}"),
                    kind: WriteKind::Patch {
                        patch: json!([{"op": "add", "path": "/n", "value": n}]),
                    },
                    precondition: Default::default(),
                },
            ),
            Step::Delete { conn, id } => self.write(
                conn,
                Write {
                    id: format!("d{id}"),
                    kind: WriteKind::Delete,
                    precondition: Default::default(),
                },
            ),
            Step::HttpSet { id, room } => {
                self.now += 1;
                let write = Write {
                    id: format!("d{id}"),
                    kind: WriteKind::Set {
                        data: json!({"room": room, "n": 1, "via": "http"}),
                    },
                    precondition: Default::default(),
                };
                self.hub
                    .handle_commit(
                        &blaze_core::Caller::admin(),
                        &collection(),
                        &[write],
                        self.now,
                    )
                    .unwrap();
                self.drain();
            }
            Step::Listen { conn, subject } => {
                if self.clients[conn].conn.is_some() {
                    let rid = self.rid(conn);
                    self.clients[conn].listeners.push(Listener {
                        rid,
                        subject,
                        target: None,
                        docs: Vec::new(),
                        last_seq: None,
                        events: Vec::new(),
                        reset: false,
                    });
                    let message = self.listen_message(rid, subject, None);
                    self.send(conn, &message);
                }
            }
            Step::Unlisten { conn, pick } => {
                let client = &self.clients[conn];
                if client.conn.is_some() && !client.listeners.is_empty() {
                    let listener = client.listeners[pick % client.listeners.len()].rid;
                    let rid = self.rid(conn);
                    self.send(conn, &ClientMessage::Unlisten { rid, listener });
                    self.clients[conn].listeners.retain(|l| l.rid != listener);
                }
            }
            Step::Retry { conn, pick } => self.retry(conn, pick),
            Step::Disconnect { conn } => {
                if let Some(id) = self.clients[conn].conn.take() {
                    self.hub.handle_close(id);
                    self.drain();
                }
            }
            Step::Hibernate => {
                let sessions: Vec<(u64, SavedSession)> = self
                    .clients
                    .iter()
                    .filter_map(|c| c.conn)
                    .map(|conn| {
                        (
                            conn,
                            self.hub
                                .session(conn)
                                .expect("open connections have sessions"),
                        )
                    })
                    .collect();
                let placeholder = Hub::new(
                    Database::new(MemoryStorage::new(), Limits::default()),
                    HubConfig::default(),
                );
                let db = std::mem::replace(&mut self.hub, placeholder).into_database();
                self.hub = Hub::new(db, HubConfig::default());
                for (conn, session) in &sessions {
                    self.hub.restore(*conn, session).expect("sessions restore");
                }
                self.drain();
            }
            Step::Reconnect { conn } => {
                if self.clients[conn].conn.is_none() {
                    self.connect(conn);
                    let current = self.seq();
                    let held: Vec<(u64, usize, Option<u64>)> = self.clients[conn]
                        .listeners
                        .iter()
                        .map(|l| (l.rid, l.subject, l.last_seq))
                        .collect();
                    self.clients[conn].listeners.iter_mut().for_each(|l| {
                        l.target = None;
                        l.reset = false;
                    });
                    for (rid, subject, since) in held {
                        let message = self.listen_message(rid, subject, since);
                        self.send(conn, &message);
                        let l = listener(&mut self.clients[conn], rid);
                        let must_reset = since.is_some_and(|s| current - s > LOG_ENTRIES);
                        assert_eq!(l.reset, must_reset, "resume from {since:?} at {current}");
                    }
                }
            }
        }
        self.check(step, seq_before, &before);
    }

    fn listen_message(&self, rid: u64, subject: usize, since: Option<u64>) -> ClientMessage {
        let (doc, query) = match &self.subjects[subject] {
            Subject::Doc(id) => (Some(collection().doc(id).unwrap()), None),
            Subject::Query(q) => (None, Some((**q).clone())),
        };
        ClientMessage::Listen {
            rid,
            doc,
            query,
            since,
        }
    }

    fn check(&self, step: &Step, seq_before: u64, before: &[Vec<DocSnapshot>]) {
        let seq = self.seq();
        let mut keys = BTreeSet::new();
        let mut listeners = 0;
        for (c, client) in self.clients.iter().enumerate() {
            if client.conn.is_none() {
                continue;
            }
            for l in &client.listeners {
                listeners += 1;
                keys.insert(l.subject);
                let (_, now) = self.current(l.subject);
                assert!(
                    l.target.is_some(),
                    "client {c} listener {} has no answer",
                    l.rid
                );
                assert_eq!(l.docs, now, "client {c} listener {} after {step:?}", l.rid);
                assert!(
                    l.last_seq.is_some_and(|last| last <= seq),
                    "listener {} is ahead",
                    l.rid
                );
                let owed = seq != seq_before && before[l.subject] != now && l.last_seq.is_some();
                let fresh = matches!(step, Step::Listen { .. } | Step::Reconnect { .. });
                if !fresh {
                    let want: Vec<u64> = if owed { vec![seq] } else { vec![] };
                    assert_eq!(
                        l.events, want,
                        "client {c} listener {} events after {step:?}",
                        l.rid
                    );
                }
            }
            if let Step::Set { conn, .. } | Step::Delete { conn, .. } = step {
                if *conn == c {
                    assert_eq!(client.acks, vec![seq], "the writer's ack names the commit");
                }
            }
        }
        let stats = self.hub.stats();
        assert_eq!(stats.listeners, listeners, "hub listeners after {step:?}");
        assert_eq!(stats.targets, keys.len(), "hub targets after {step:?}");
        let open = self.clients.iter().filter(|c| c.conn.is_some()).count();
        assert_eq!(stats.connections, open);
    }
}

fn listener(client: &mut Client, rid: u64) -> &mut Listener {
    client
        .listeners
        .iter_mut()
        .find(|l| l.rid == rid)
        .expect("a listener with this rid")
}

/// The client side of the protocol: applies one server frame.
fn receive(client: &mut Client, message: ServerMessage) {
    let see = |l: &mut Listener, seq: u64| {
        if let Some(last) = l.last_seq {
            assert!(
                seq >= last,
                "listener {} went back from {last} to {seq}",
                l.rid
            );
        }
        l.last_seq = Some(seq);
    };
    match message {
        ServerMessage::Snapshot {
            rid,
            target,
            seq,
            reset,
            docs,
        } => {
            let docs = resolve_held(client, rid, docs);
            let l = listener(client, rid);
            if reset {
                l.last_seq = None;
            }
            see(l, seq);
            l.target = Some(target);
            l.docs = docs;
            l.reset = reset;
        }
        ServerMessage::Resumed {
            rid,
            target,
            seq,
            changes,
        } => {
            let l = listener(client, rid);
            see(l, seq);
            l.target = Some(target);
            apply(&mut l.docs, &changes);
        }
        ServerMessage::Change {
            target,
            seq,
            changes,
        } => {
            let mut followers = 0;
            for l in client
                .listeners
                .iter_mut()
                .filter(|l| l.target == Some(target))
            {
                followers += 1;
                assert!(
                    l.last_seq.is_none_or(|last| seq > last),
                    "seq must increase"
                );
                see(l, seq);
                l.events.push(seq);
                apply(&mut l.docs, &changes);
            }
            assert!(followers > 0, "a change for a target nobody follows");
        }
        ServerMessage::Committed { result, .. } => client.acks.push(result.seq),
        ServerMessage::Error { error, .. } => client.errors.push(error.code.to_string()),
        ServerMessage::Welcome { .. } | ServerMessage::Unlistened { .. } => {}
        other => panic!("unexpected frame {other:?}"),
    }
}

/// `docs` of a snapshot for listener `rid` with each held entry replaced by
/// the document another listener of the client, answered on this connection,
/// holds at that version (spec 10.4.9).
fn resolve_held(client: &mut Client, rid: u64, docs: Vec<DocSnapshot>) -> Vec<DocSnapshot> {
    let mut resolved = Vec::with_capacity(docs.len());
    for doc in docs {
        if !doc.held {
            resolved.push(doc);
            continue;
        }
        assert!(
            client.held_docs,
            "held entries only for clients that take them"
        );
        let found = client
            .listeners
            .iter()
            .filter(|l| l.rid != rid && l.target.is_some())
            .flat_map(|l| &l.docs)
            .find(|d| d.path == doc.path && d.version == doc.version)
            .unwrap_or_else(|| {
                panic!(
                    "held {} v{:?} is held by no listener",
                    doc.path, doc.version
                )
            });
        resolved.push(found.clone());
        client.held += 1;
    }
    resolved
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn listeners_track_their_queries_exactly(steps in proptest::collection::vec(step(), 1..60)) {
        let mut world = World::new();
        for step in &steps {
            world.run(step);
        }
    }
}

#[test]
fn every_listener_shares_one_target_and_one_frame() {
    let mut world = World::new();
    for c in 0..CONNS {
        world.run(&Step::Listen {
            conn: c,
            subject: 1,
        });
        world.run(&Step::Listen {
            conn: c,
            subject: 1,
        });
    }
    assert_eq!(world.hub.stats().targets, 1);
    world.now += 1;
    let write = Write {
        id: "d0".into(),
        kind: WriteKind::Set {
            data: json!({"room": 0, "n": 1}),
        },
        precondition: Default::default(),
    };
    world
        .hub
        .handle_commit(
            &blaze_core::Caller::admin(),
            &collection(),
            &[write],
            world.now,
        )
        .unwrap();
    let mut frames = Vec::new();
    while let Some(Output::Send { frame, .. }) = world.hub.poll_output() {
        frames.push(frame);
    }
    assert_eq!(
        frames.len(),
        CONNS,
        "one frame per connection, not per listener"
    );
    assert!(
        frames
            .windows(2)
            .all(|w| std::sync::Arc::ptr_eq(&w[0], &w[1])),
        "one shared frame"
    );
}

#[test]
fn held_entries_name_what_the_connection_already_holds() {
    let mut world = World::new();
    for (id, room) in [(0, 0), (1, 0), (2, 1)] {
        world.run(&Step::Set {
            conn: 0,
            id,
            room,
            n: 1,
        });
    }
    // Client 1 takes held entries, client 0 does not: both listen to every
    // document, then to room 0, then to room 0 again.
    for subject in [0, 1, 1] {
        for conn in [0, 1] {
            world.run(&Step::Listen { conn, subject });
        }
    }
    assert_eq!(
        world.clients[0].held, 0,
        "nothing held for a client that did not ask"
    );
    assert_eq!(world.clients[1].held, 4, "room 0's two documents, twice");
    assert_eq!(
        world.clients[1].listeners[1].docs,
        world.clients[0].listeners[1].docs
    );
}
