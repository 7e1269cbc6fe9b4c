//! The session against the engine's own realtime hub (`blaze_core::Hub`), in
//! process, with frames in flight both ways: random listens, unlistens,
//! writes, partial deliveries and reconnects. The hub names a document
//! another listener of the connection holds in a held entry (spec 10.4.9),
//! also while that listener's `unlisten` is on its way, so the session must
//! resolve every held entry: it never reports a protocol error, and once every
//! frame is delivered each listener holds exactly its query's results and
//! nothing of a stopped listener is kept.

use std::cell::Cell;
use std::collections::VecDeque;

use blaze_core::{Caller, Database, Hub, HubConfig, Limits, MemoryStorage, Output};
use blaze_protocol::{
    decode_server, CollectionPath, Direction, DocSnapshot, FieldFilter, Filter, Op, OrderBy, Query,
    ServerMessage, Write, WriteKind,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Value};

use super::{Event, ListenTarget, ListenerId, ListenerUpdate, Session};

fn collection() -> CollectionPath {
    CollectionPath::parse("m").unwrap()
}

fn eq(field: &str, value: Value) -> Filter {
    Filter::Field(FieldFilter {
        field: field.into(),
        op: Op::Eq,
        value,
    })
}

/// What listeners follow: overlapping queries over one collection, and two
/// documents (checked as the query on their `__name__`).
fn subjects() -> Vec<(ListenTarget, Query)> {
    let order = |field: &str, direction| OrderBy {
        field: field.into(),
        direction,
    };
    let all = Query::all(collection());
    let mut room0 = Query::all(collection());
    room0.filter = Some(eq("room", json!(0)));
    let mut top_two = Query::all(collection());
    top_two.filter = Some(eq("room", json!(1)));
    top_two.order_by = vec![order("n", Direction::Desc)];
    top_two.limit = Some(2);
    let mut from_two = Query::all(collection());
    from_two.filter = Some(Filter::Field(FieldFilter {
        field: "n".into(),
        op: Op::Ge,
        value: json!(2),
    }));
    from_two.order_by = vec![order("n", Direction::Asc)];
    let mut subjects: Vec<(ListenTarget, Query)> = [all, room0, top_two, from_two]
        .into_iter()
        .map(|q| (ListenTarget::Query(Box::new(q.clone())), q))
        .collect();
    for id in ["d1", "d3"] {
        let mut by_name = Query::all(collection());
        by_name.filter = Some(eq("__name__", json!(id)));
        subjects.push((ListenTarget::Doc(collection().doc(id).unwrap()), by_name));
    }
    subjects
}

#[derive(Clone, Debug)]
enum Step {
    Set {
        id: u8,
        room: u8,
        n: u8,
    },
    Delete {
        id: u8,
    },
    Listen {
        subject: usize,
    },
    Unlisten {
        pick: usize,
    },
    /// The hub reads up to this many of the session's frames.
    Up(usize),
    /// The session reads up to this many of the hub's frames.
    Down(usize),
    /// Every frame in flight is delivered, and the listeners checked.
    Settle,
    Reconnect,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..6u8, 0..3u8, 0..5u8).prop_map(|(id, room, n)| Step::Set { id, room, n }),
        1 => (0..6u8).prop_map(|id| Step::Delete { id }),
        4 => (0..6usize).prop_map(|subject| Step::Listen { subject }),
        3 => (0..8usize).prop_map(|pick| Step::Unlisten { pick }),
        4 => (1..4usize).prop_map(Step::Up),
        4 => (1..6usize).prop_map(Step::Down),
        1 => Just(Step::Settle),
        1 => Just(Step::Reconnect),
    ]
}

struct World {
    hub: Hub<MemoryStorage>,
    session: Session,
    subjects: Vec<(ListenTarget, Query)>,
    conn: u64,
    now: u64,
    /// Frames the session sent that the hub has not read yet.
    up: VecDeque<String>,
    /// Frames the hub sent that the session has not read yet.
    down: VecDeque<String>,
    /// The application's listeners, with their subjects.
    live: Vec<(ListenerId, usize)>,
    /// Held entries the session read.
    held: usize,
    /// Of those, the ones only a stopped listener (its `unlisten` in flight)
    /// could resolve.
    held_by_stopped: usize,
}

impl World {
    fn new() -> Self {
        let db = Database::new(MemoryStorage::new(), Limits::default());
        let mut world = Self {
            hub: Hub::new(db, HubConfig::default()),
            session: Session::new(None, 7),
            subjects: subjects(),
            conn: 0,
            now: 1_000,
            up: VecDeque::new(),
            down: VecDeque::new(),
            live: Vec::new(),
            held: 0,
            held_by_stopped: 0,
        };
        world.connect();
        world
    }

    fn connect(&mut self) {
        self.conn += 1;
        self.now += 1;
        self.hub.handle_open(self.conn, 0);
        self.hub
            .handle_frame(self.conn, &self.session.hello(), self.now);
        self.pump();
        let welcome = self.down.pop_front().expect("welcome");
        let message = decode_server(&welcome, &super::server_limits()).unwrap();
        assert!(
            matches!(message, ServerMessage::Welcome { .. }),
            "{welcome}"
        );
        self.session.connected(None, self.now);
        self.collect();
    }

    /// Takes the hub's frames for the current connection.
    fn pump(&mut self) {
        while let Some(output) = self.hub.poll_output() {
            match output {
                Output::Send { conn, frame } if conn == self.conn => {
                    self.down.push_back(frame.to_string())
                }
                Output::Send { .. } | Output::Event(_) => {}
                Output::Close { conn, code } => panic!("connection {conn} closed: {code:?}"),
            }
        }
    }

    /// Takes the session's frames and events.
    fn collect(&mut self) {
        while let Some(frame) = self.session.poll_transmit() {
            self.up.push_back(frame);
        }
        while let Some(event) = self.session.poll_event() {
            if let Event::Listener {
                id,
                update: ListenerUpdate::Failed(error),
            } = event
            {
                panic!("listener {id:?} failed: {error}");
            }
        }
    }

    fn commit(&mut self, write: Write) {
        self.now += 1;
        self.hub
            .handle_commit(&Caller::admin(), &collection(), &[write], self.now)
            .expect("the commit applies");
        self.pump();
    }

    fn deliver_up(&mut self, count: usize) {
        for _ in 0..count {
            let Some(frame) = self.up.pop_front() else {
                return;
            };
            self.now += 1;
            self.hub.handle_frame(self.conn, &frame, self.now);
            self.pump();
        }
    }

    fn deliver_down(&mut self, count: usize) {
        for _ in 0..count {
            let Some(frame) = self.down.pop_front() else {
                return;
            };
            self.count_held(&frame);
            if let Err(error) = self.session.handle_frame(&frame) {
                panic!("the session refused {frame}: {error}");
            }
            self.collect();
        }
    }

    /// Counts the held entries of a snapshot about to be read, and those of
    /// them no listener the application still has could resolve.
    fn count_held(&mut self, frame: &str) {
        let Ok(ServerMessage::Snapshot { rid, docs, .. }) =
            decode_server(frame, &super::server_limits())
        else {
            return;
        };
        let holds = |doc: &DocSnapshot| {
            self.session
                .listeners
                .iter()
                .filter(|(id, l)| id.0 != rid && l.server_target.is_some())
                .any(|(_, l)| {
                    l.results
                        .docs()
                        .iter()
                        .any(|d| d.path == doc.path && d.version == doc.version)
                })
        };
        for doc in docs.iter().filter(|d| d.held) {
            self.held += 1;
            if !holds(doc) {
                self.held_by_stopped += 1;
            }
        }
    }

    fn settle(&mut self) {
        while !self.up.is_empty() || !self.down.is_empty() {
            self.deliver_up(usize::MAX);
            self.deliver_down(usize::MAX);
        }
        self.check();
    }

    fn check(&self) {
        for (id, subject) in &self.live {
            let listener = &self.session.listeners[id];
            let query = &self.subjects[*subject].1;
            let want: Vec<DocSnapshot> = self
                .hub
                .database()
                .query(query)
                .expect("the query runs")
                .docs
                .iter()
                .map(|d| d.snapshot(&collection()))
                .collect();
            assert_eq!(listener.results.docs(), want, "listener {id:?}");
            assert!(listener.server_target.is_some(), "listener {id:?}");
        }
        assert_eq!(self.session.listeners.len(), self.live.len());
        assert!(
            self.session.retired.is_empty() && self.session.unlistens.is_empty(),
            "every unlisten is answered: nothing of a stopped listener is kept"
        );
        assert_eq!(self.hub.stats().listeners, self.live.len());
    }

    fn run(&mut self, step: &Step) {
        match *step {
            Step::Set { id, room, n } => self.commit(Write {
                id: format!("d{id}"),
                kind: WriteKind::Set {
                    data: json!({"room": room, "n": n}),
                },
                precondition: Default::default(),
            }),
            Step::Delete { id } => self.commit(Write {
                id: format!("d{id}"),
                kind: WriteKind::Delete,
                precondition: Default::default(),
            }),
            Step::Listen { subject } => {
                let target = self.subjects[subject].0.clone();
                let id = self.session.listen(target);
                self.live.push((id, subject));
                self.collect();
            }
            Step::Unlisten { pick } => {
                if !self.live.is_empty() {
                    let (id, _) = self.live.remove(pick % self.live.len());
                    self.session.unlisten(id);
                    self.collect();
                }
            }
            Step::Up(count) => self.deliver_up(count),
            Step::Down(count) => self.deliver_down(count),
            Step::Settle => self.settle(),
            Step::Reconnect => {
                self.hub.handle_close(self.conn);
                self.pump();
                self.up.clear();
                self.down.clear();
                self.session.disconnected(1, "reconnect");
                self.collect();
                self.connect();
            }
        }
    }
}

#[test]
fn every_held_entry_the_hub_sends_is_resolved_even_with_unlistens_in_flight() {
    let config = Config {
        cases: 256,
        failure_persistence: None,
        ..Config::default()
    };
    let (held, held_by_stopped) = (Cell::new(0), Cell::new(0));
    TestRunner::new(config)
        .run(&prop::collection::vec(step(), 1..60), |steps| {
            let mut world = World::new();
            for step in &steps {
                world.run(step);
            }
            world.settle();
            held.set(held.get() + world.held);
            held_by_stopped.set(held_by_stopped.get() + world.held_by_stopped);
            Ok(())
        })
        .unwrap();
    assert!(held.get() > 0, "the hub sent held entries");
    assert!(
        held_by_stopped.get() > 0,
        "some named only what a stopped listener held"
    );
}

#[test]
fn a_snapshot_sent_before_the_hub_reads_an_unlisten_names_the_stopped_listeners_documents() {
    let mut world = World::new();
    for (id, room) in [(0, 0), (1, 0), (2, 1)] {
        world.run(&Step::Set { id, room, n: 1 });
    }
    world.run(&Step::Listen { subject: 0 });
    world.settle();
    // The hub answers a second listener while the first is still live...
    world.run(&Step::Listen { subject: 1 });
    world.deliver_up(usize::MAX);
    // ... and the application drops the first before the answer arrives.
    world.run(&Step::Unlisten { pick: 0 });
    world.deliver_down(usize::MAX);
    assert_eq!(world.held, 2, "room 0's two documents");
    assert_eq!(world.held_by_stopped, 2);
    world.settle();
    assert_eq!(world.live.len(), 1);
}
