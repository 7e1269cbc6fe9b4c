//! Listeners under the demo's rules against a reference model: random
//! private todos (an owner among three users, a number, a marker naming
//! the owner), each user listening to a random query the rules allow
//! (`owner == me`, or a form proving the same, with extra filters, an order
//! and a limit) and to one document, and random admin writes that change
//! numbers, delete documents and hand them from one owner to another. After
//! every write, each query listener's results (its snapshot with every
//! change applied) equal the reference's (the documents filtered, sorted
//! and cut); each document listener lives exactly while its document is the
//! user's (refused at once otherwise, ended by `permission_denied` when it
//! no longer is, nothing for it afterwards) and holds it; and no frame a
//! user was ever sent names another owner's marker.

use std::collections::BTreeMap;

use blaze_core::{Access, Caller, Database, Hub, HubConfig, Limits, MemoryStorage, Output, Rules};
use blaze_json::changes::apply_changes;
use blaze_protocol::{CollectionPath, DocSnapshot, ErrorCode, Identity, ServerMessage, Write};
use proptest::prelude::*;
use serde_json::{json, Value};

const USERS: [&str; 3] = ["alice", "bob", "carol"];
const IDS: usize = 6;
const NOW: u64 = 1_700_000_000_000;

/// The marker only `owner`'s documents hold.
fn marker(owner: &str) -> String {
    format!("private-to-{owner}")
}

/// A comparison on field `n` beside the owner's equality.
#[derive(Clone, Copy, Debug)]
enum Extra {
    None,
    Eq(i64),
    Lt(i64),
    Ge(i64),
    Ne(i64),
}

/// How the owner's equality is written: each proves the `list` rule.
#[derive(Clone, Copy, Debug)]
enum Form {
    Eq,
    InMe,
    /// `or` of two branches, each with the owner's equality.
    OrBoth,
}

#[derive(Clone, Debug)]
struct Shape {
    form: Form,
    extra: Extra,
    desc: bool,
    limit: Option<u64>,
}

#[derive(Clone, Debug)]
enum Step {
    Set { id: usize, owner: usize, n: i64 },
    Merge { id: usize, n: i64 },
    Delete { id: usize },
}

fn shape() -> impl Strategy<Value = Shape> {
    let form = prop_oneof![Just(Form::Eq), Just(Form::InMe), Just(Form::OrBoth)];
    let extra = prop_oneof![
        Just(Extra::None),
        (0..4i64).prop_map(Extra::Eq),
        (0..4i64).prop_map(Extra::Lt),
        (0..4i64).prop_map(Extra::Ge),
        (0..4i64).prop_map(Extra::Ne),
    ];
    (form, extra, any::<bool>(), proptest::option::of(1..4u64)).prop_map(
        |(form, extra, desc, limit)| Shape {
            form,
            extra,
            desc,
            limit,
        },
    )
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0..IDS, 0..USERS.len(), 0..4i64).prop_map(|(id, owner, n)| Step::Set { id, owner, n }),
        2 => (0..IDS, 0..4i64).prop_map(|(id, n)| Step::Merge { id, n }),
        1 => (0..IDS).prop_map(|id| Step::Delete { id }),
    ]
}

fn id(i: usize) -> String {
    format!("t{i}")
}

impl Shape {
    /// The query `uid` listens to.
    fn query(&self, uid: &str) -> Value {
        let owner = |op: &str, value: Value| json!({"field": "owner", "op": op, "value": value});
        let n = |op: &str, k: i64| json!({"field": "n", "op": op, "value": k});
        let mine = match self.form {
            Form::Eq => owner("==", json!(uid)),
            Form::InMe => owner("in", json!([uid])),
            // n < 2 or n >= 2, both mine: every document of mine.
            Form::OrBoth => json!({"or": [
                {"and": [owner("==", json!(uid)), n("<", 2)]},
                {"and": [owner("==", json!(uid)), n(">=", 2)]},
            ]}),
        };
        let filter = match self.extra {
            Extra::None => mine,
            Extra::Eq(k) => json!({"and": [mine, n("==", k)]}),
            Extra::Lt(k) => json!({"and": [mine, n("<", k)]}),
            Extra::Ge(k) => json!({"and": [mine, n(">=", k)]}),
            Extra::Ne(k) => json!({"and": [mine, n("!=", k)]}),
        };
        let direction = if self.desc { "desc" } else { "asc" };
        let mut query = json!({
            "collection": "todos",
            "where": filter,
            "order_by": [{"field": "n", "direction": direction}],
        });
        if let Some(limit) = self.limit {
            query["limit"] = json!(limit);
        }
        query
    }

    /// The reference: `uid`'s documents that pass the extra filter, in
    /// order, cut to the limit, as (id, n).
    fn expected(&self, uid: &str, docs: &BTreeMap<usize, (usize, i64)>) -> Vec<(String, i64)> {
        let mut found: Vec<(String, i64)> = docs
            .iter()
            .filter(|(_, (owner, _))| USERS[*owner] == uid)
            .filter(|(_, (_, n))| match self.extra {
                Extra::None => true,
                Extra::Eq(k) => *n == k,
                Extra::Lt(k) => *n < k,
                Extra::Ge(k) => *n >= k,
                Extra::Ne(k) => *n != k,
            })
            .map(|(i, (_, n))| (id(*i), *n))
            .collect();
        found.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
        if self.desc {
            found.reverse();
        }
        if let Some(limit) = self.limit {
            found.truncate(limit as usize);
        }
        found
    }
}

/// One listener as its client holds it.
#[derive(Clone, Debug, Default)]
struct Listener {
    target: Option<u64>,
    docs: Vec<DocSnapshot>,
    /// Ended by an `error` frame (refused, or ended by the rules).
    ended: bool,
}

/// The query listener's rid; the document listener's is [`DOC_RID`].
const QUERY_RID: u64 = 1;
const DOC_RID: u64 = 2;

struct World {
    hub: Hub<MemoryStorage>,
    now: u64,
    /// Each user's listeners, by rid.
    listeners: Vec<BTreeMap<u64, Listener>>,
    /// Every frame each user was sent.
    sent: Vec<Vec<String>>,
    /// The reference: document index to (owner index, n).
    docs: BTreeMap<usize, (usize, i64)>,
    /// The reference for each user's document listener: the document it
    /// follows, and whether the rules still let it live (it starts only on
    /// a document of the user's, and ends once the document is not).
    followed: Vec<(usize, bool)>,
}

impl World {
    fn new() -> Self {
        let rules = Rules::compile(include_str!("../../../blaze.rules")).unwrap();
        let db = Database::new(MemoryStorage::new(), Limits::default());
        let hub = Hub::new(db, HubConfig::default()).with_access(Access::Enforced(rules));
        let mut world = World {
            hub,
            now: NOW,
            listeners: vec![BTreeMap::new(); USERS.len()],
            sent: vec![Vec::new(); USERS.len()],
            docs: BTreeMap::new(),
            followed: Vec::new(),
        };
        for (conn, uid) in USERS.iter().enumerate() {
            let identity = Identity::User {
                uid: (*uid).into(),
                claims: json!({"sub": uid}).as_object().unwrap().clone(),
            };
            let conn = conn as u64;
            world.hub.handle_open(conn, 0);
            let hello = r#"{"type":"hello","protocol":1,"auth":"token"}"#;
            world.hub.handle_frame(conn, hello, NOW);
            world
                .hub
                .handle_verified(conn, None, Ok((identity, None)), NOW);
        }
        world.drain();
        world
    }

    /// Starts each user's listeners: the query of `shapes`, and a document
    /// listener on document `docs[user]`.
    fn listen(&mut self, shapes: &[Shape], docs: &[usize]) {
        for (user, uid) in USERS.iter().enumerate() {
            let d = docs[user];
            let mine = self.docs.get(&d).is_some_and(|(owner, _)| *owner == user);
            self.followed.push((d, mine));
            let listens = [
                json!({"type": "listen", "rid": QUERY_RID, "query": shapes[user].query(uid)}),
                json!({"type": "listen", "rid": DOC_RID, "doc": format!("todos/{}", id(d))}),
            ];
            for listen in listens {
                self.hub
                    .handle_frame(user as u64, &listen.to_string(), self.now);
                self.drain();
            }
        }
    }

    fn drain(&mut self) {
        while let Some(output) = self.hub.poll_output() {
            match output {
                Output::Send { conn, frame } => {
                    let user = conn as usize;
                    self.sent[user].push(frame.to_string());
                    self.receive(user, serde_json::from_str(&frame).unwrap());
                    let ack = json!({"type": "ack", "frames": self.sent[user].len()});
                    self.hub.handle_frame(conn, &ack.to_string(), self.now);
                }
                Output::Close { conn, code } => panic!("{conn} closed: {code:?}"),
                Output::Event(_) => {}
            }
        }
    }

    fn receive(&mut self, user: usize, message: ServerMessage) {
        let listeners = &mut self.listeners[user];
        match message {
            ServerMessage::Welcome { .. } => {}
            ServerMessage::Snapshot {
                rid, target, docs, ..
            } => {
                let listener = listeners.entry(rid).or_default();
                listener.target = Some(target);
                listener.docs = docs;
            }
            ServerMessage::Change {
                target, changes, ..
            } => {
                let live = listeners
                    .values_mut()
                    .filter(|l| !l.ended && l.target == Some(target));
                let mut any = false;
                for listener in live {
                    any = true;
                    apply_changes(&mut listener.docs, &changes).expect("the changes fit");
                }
                assert!(any, "{} was sent a change for no listener", USERS[user]);
            }
            ServerMessage::Error {
                rid: Some(rid),
                error,
            } => {
                assert_eq!(error.code, ErrorCode::PermissionDenied);
                assert_eq!(rid, DOC_RID, "only a document listener is ever denied");
                let listener = listeners.entry(rid).or_default();
                assert!(!listener.ended, "ended twice");
                listener.ended = true;
                listener.docs.clear();
            }
            other => panic!("{} was sent {other:?}", USERS[user]),
        }
    }

    fn run(&mut self, step: &Step) {
        let (i, write) = match *step {
            Step::Set { id: i, owner, n } => {
                self.docs.insert(i, (owner, n));
                let owner = USERS[owner];
                let data = json!({"owner": owner, "n": n, "secret": marker(owner)});
                (i, json!({"op": "set", "id": id(i), "data": data}))
            }
            Step::Merge { id: i, n } => {
                let Some(doc) = self.docs.get_mut(&i) else {
                    return;
                };
                doc.1 = n;
                (i, json!({"op": "merge", "id": id(i), "patch": {"n": n}}))
            }
            Step::Delete { id: i } => {
                self.docs.remove(&i);
                (i, json!({"op": "delete", "id": id(i)}))
            }
        };
        for (user, (followed, alive)) in self.followed.iter_mut().enumerate() {
            if *followed == i {
                *alive &= self.docs.get(&i).is_some_and(|(owner, _)| *owner == user);
            }
        }
        let writes: Vec<Write> = serde_json::from_value(json!([write])).unwrap();
        self.now += 1;
        let todos = CollectionPath::parse("todos").unwrap();
        self.hub
            .handle_commit(&Caller::admin(), &todos, &writes, self.now)
            .unwrap();
        self.drain();
    }

    fn check(&self, shapes: &[Shape]) {
        for (user, uid) in USERS.iter().enumerate() {
            let held = |rid: u64| -> Vec<(String, i64)> {
                self.listeners[user][&rid]
                    .docs
                    .iter()
                    .map(|d| {
                        let data = d.data.as_ref().unwrap();
                        assert_eq!(data["owner"], *uid, "{uid} holds {d:?}");
                        let id = d.path.strip_prefix("todos/").unwrap().to_owned();
                        (id, data["n"].as_i64().unwrap())
                    })
                    .collect()
            };
            assert_eq!(
                held(QUERY_RID),
                shapes[user].expected(uid, &self.docs),
                "{uid}'s query"
            );
            let (followed, alive) = self.followed[user];
            assert_eq!(
                self.listeners[user][&DOC_RID].ended, !alive,
                "{uid}'s document listener"
            );
            let expected: Vec<(String, i64)> = match self.docs.get(&followed) {
                Some((_, n)) if alive => vec![(id(followed), *n)],
                _ => vec![],
            };
            assert_eq!(held(DOC_RID), expected, "{uid}'s document listener");
            for other in USERS.iter().filter(|o| *o != uid) {
                for frame in &self.sent[user] {
                    assert!(!frame.contains(&marker(other)), "{uid} was sent {frame}");
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn each_user_sees_exactly_their_own_documents(
        shapes in proptest::collection::vec(shape(), USERS.len()),
        followed in proptest::collection::vec(0..IDS, USERS.len()),
        first in proptest::collection::vec(step(), 0..8),
        then in proptest::collection::vec(step(), 1..40),
    ) {
        let mut world = World::new();
        // Some documents exist before the listeners start, the rest come after.
        for step in &first {
            world.run(step);
        }
        world.listen(&shapes, &followed);
        world.check(&shapes);
        for step in &then {
            world.run(step);
            world.check(&shapes);
        }
    }
}
