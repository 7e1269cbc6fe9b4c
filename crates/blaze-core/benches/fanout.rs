//! Fan-out benchmark: prints deliveries per second for one commit fanned out
//! to many listeners, the per-commit cost as the number of unrelated
//! listeners grows, and the memory each idle listener holds. In-process, no
//! I/O: the "driver" only drains `poll_output` and reports frames written.
//!
//! Run with `cargo bench -p blaze-core --bench fanout`. Figures that compare
//! sizes are measured side by side in one run and reported as ratios.

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use blaze_core::{
    Access, Caller, Database, Hub, HubConfig, HubEvent, Limits, MemoryStorage, Output, Rules,
};
use blaze_protocol::{
    encode, ClientMessage, CollectionPath, Direction, FieldFilter, Filter, Identity, Op, OrderBy,
    Query, Write, WriteKind,
};
use serde_json::json;

/// The system allocator, counting live bytes.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const NOW: u64 = 1_700_000_000_000;

/// A hub with no connections and an empty database.
/// The benchmarks' collection.
fn messages() -> CollectionPath {
    CollectionPath::parse("messages").unwrap()
}

fn hub() -> Hub<MemoryStorage> {
    // Its clients never acknowledge what they read: no bound on unread output.
    let limits = Limits {
        max_unread_frames: usize::MAX,
        max_unread_bytes: usize::MAX,
        ..Limits::default()
    };
    let config = HubConfig {
        memory_budget: usize::MAX,
        connection_budget: usize::MAX,
        ..HubConfig::default()
    };
    Hub::new(Database::new(MemoryStorage::new(), limits), config)
}

/// The chat query: the last 20 messages of one room.
fn room_query(room: usize) -> Query {
    let mut q = Query::all(messages());
    q.filter = Some(Filter::Field(FieldFilter {
        field: "room".into(),
        op: Op::Eq,
        value: json!(format!("room{room}")),
    }));
    q.order_by = vec![OrderBy {
        field: "ts".into(),
        direction: Direction::Desc,
    }];
    q.limit = Some(20);
    q
}

/// Opens connection `conn`, says hello and listens to `query`; drops the answers.
fn listener(hub: &mut Hub<MemoryStorage>, conn: u64, query: &Query) {
    hub.handle_open(conn, 0);
    let hello = ClientMessage::Hello {
        protocol: 1,
        auth: None,
        held_docs: false,
        rid: None,
    };
    hub.handle_frame(conn, &encode(&hello), NOW);
    let listen = ClientMessage::Listen {
        rid: 1,
        doc: None,
        query: Some(query.clone()),
        since: None,
    };
    hub.handle_frame(conn, &encode(&listen), NOW);
    drain(hub);
}

/// Drains the outputs like a driver whose sockets take every frame at once; returns the deliveries.
fn drain(hub: &mut Hub<MemoryStorage>) -> usize {
    let mut sent = 0;
    while let Some(output) = hub.poll_output() {
        if let Output::Send { frame, .. } = output {
            sent += 1;
            black_box(frame);
        }
    }
    sent
}

/// A chat message in `room` at time `ts`.
fn message(room: usize, ts: u64) -> Write {
    Write {
        id: format!("m{ts:010}"),
        kind: WriteKind::Set {
            data: json!({"room": format!("room{room}"), "ts": ts, "text": "hello, room", "by": "ada"}),
        },
        precondition: Default::default(),
    }
}

/// Seeds `rooms` rooms with 20 messages each.
fn seed(hub: &mut Hub<MemoryStorage>, rooms: usize) -> u64 {
    let mut ts = 0;
    for room in 0..rooms {
        let writes: Vec<Write> = (0..20)
            .map(|_| {
                ts += 1;
                message(room, ts)
            })
            .collect();
        hub.handle_commit(&blaze_core::Caller::admin(), &messages(), &writes, NOW)
            .unwrap();
    }
    drain(hub);
    ts
}

/// Median of `runs` timings of `f`, which returns how many deliveries it made.
fn median(runs: usize, mut f: impl FnMut() -> usize) -> (Duration, usize) {
    let mut times: Vec<(Duration, usize)> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            let n = f();
            (t.elapsed(), n)
        })
        .collect();
    times.sort();
    times[runs / 2]
}

fn bench_deliveries() {
    println!("## One commit fanned out to N listeners of the same query (each on its own connection), median of 31");
    println!("   per commit: commit + match + one view refresh + one frame encode + N pointer pushes + drain");
    for n in [10usize, 1_000, 10_000] {
        let mut hub = hub();
        let mut ts = seed(&mut hub, 1);
        let query = room_query(0);
        for conn in 0..n as u64 {
            listener(&mut hub, conn, &query);
        }
        let (t, delivered) = median(31, || {
            ts += 1;
            hub.handle_commit(
                &blaze_core::Caller::admin(),
                &messages(),
                &[message(0, ts)],
                NOW,
            )
            .unwrap();
            drain(&mut hub)
        });
        assert_eq!(delivered, n, "every listener gets the change");
        println!(
            "{n:>6} listeners: {:>9.1} us per commit, {:>6.1} ns per delivery, {:>6.2} M deliveries/s",
            t.as_secs_f64() * 1e6,
            t.as_secs_f64() * 1e9 / n as f64,
            n as f64 / t.as_secs_f64() / 1e6
        );
    }
}

fn bench_matching() {
    const ROOMS: usize = 10_000;
    println!(
        "## Per-commit cost of a write to one room, {ROOMS} rooms of 20 messages, one listener on each of L rooms, median of 301"
    );
    let mut base = None;
    for listened in [10usize, 1_000, 10_000] {
        let mut hub = hub();
        let mut ts = seed(&mut hub, ROOMS);
        for room in 0..listened {
            listener(&mut hub, room as u64, &room_query(room));
        }
        let mut room = 0;
        let (t, delivered) = median(301, || {
            ts += 1;
            room = (room + 7) % listened;
            hub.handle_commit(
                &blaze_core::Caller::admin(),
                &messages(),
                &[message(room, ts)],
                NOW,
            )
            .unwrap();
            drain(&mut hub)
        });
        assert_eq!(delivered, 1, "only the room's own listener is told");
        let base = *base.get_or_insert(t);
        println!(
            "{listened:>6} listeners: {:>7.1} us per commit  ({:.2}x the cost with 10 listeners)",
            t.as_secs_f64() * 1e6,
            t.as_secs_f64() / base.as_secs_f64()
        );
    }
}

/// How a listener's query is made from its number.
type QueryOf = dyn Fn(usize) -> Query;

fn bench_memory() {
    println!("## Memory per idle listener (live heap bytes, one connection per listener)");
    let n = 10_000usize;
    let own_room = |conn: usize| room_query(conn);
    let one_room = |_: usize| room_query(0);
    // A distinct query (its own target and view) with the same 20 results.
    let distinct_on_one_room = |conn: usize| {
        let mut q = room_query(0);
        let by = Filter::Field(FieldFilter {
            field: "by".into(),
            op: Op::Ne,
            value: json!(format!("nobody{conn}")),
        });
        q.filter = Some(Filter::And {
            and: vec![q.filter.take().expect("a room filter"), by],
        });
        q
    };
    let cases: [(&str, &QueryOf, usize); 4] = [
        ("each on its own empty room", &own_room, 0),
        ("each on its own room of 20 messages", &own_room, n),
        ("all on one room of 20 messages", &one_room, 1),
        (
            "each a distinct query on one room of 20 messages",
            &distinct_on_one_room,
            1,
        ),
    ];
    for (label, query, seeded) in cases {
        let mut hub = hub();
        seed(&mut hub, seeded);
        let before = LIVE.load(Ordering::Relaxed);
        for conn in 0..n {
            listener(&mut hub, conn as u64, &query(conn));
        }
        let after = LIVE.load(Ordering::Relaxed);
        println!(
            "{n} listeners, {label}: {:>6.0} bytes per listener ({} targets)",
            (after - before) as f64 / n as f64,
            hub.stats().targets
        );
        black_box(hub);
    }
}

/// Commit latency with L distinct listeners on non-indexable queries
/// (`n != i` with `limit` i), against the same commits with none.
fn bench_non_indexable() {
    const DOCS: usize = 1_000;
    println!(
        "## Commit latency, {DOCS} documents, L distinct non-indexable listeners (n != i, limit i), median of 101"
    );
    let doc = |i: usize, text: usize| Write {
        id: format!("d{i:04}"),
        kind: WriteKind::Set {
            data: json!({"n": i, "text": format!("edit {text}")}),
        },
        precondition: Default::default(),
    };
    let mut base = None;
    for listeners in [0usize, 1_000] {
        let mut hub = hub();
        let all: Vec<Write> = (0..DOCS).map(|i| doc(i, 0)).collect();
        for batch in all.chunks(500) {
            hub.handle_commit(&blaze_core::Caller::admin(), &messages(), batch, NOW)
                .unwrap();
        }
        drain(&mut hub);
        for i in 1..=listeners {
            let mut q = Query::all(messages());
            q.filter = Some(Filter::Field(FieldFilter {
                field: "n".into(),
                op: Op::Ne,
                value: json!(i),
            }));
            q.limit = Some(i as u64);
            listener(&mut hub, i as u64, &q);
        }
        let mut edit = 0;
        let (t, _) = median(101, || {
            edit += 1;
            let i = (edit * 37) % DOCS;
            hub.handle_commit(
                &blaze_core::Caller::admin(),
                &messages(),
                &[doc(i, edit)],
                NOW,
            )
            .unwrap();
            drain(&mut hub)
        });
        let base = *base.get_or_insert(t);
        println!(
            "{listeners:>6} listeners: {:>9.1} us per commit  ({:.1}x the latency with none)",
            t.as_secs_f64() * 1e6,
            t.as_secs_f64() / base.as_secs_f64()
        );
    }
}

/// The chat's access rules: members of a room (a claim of their token)
/// read its messages, and post as themselves.
const CHAT_RULES: &str = r#"rules_version = '2';
service cloud.firestore {
  match /databases/{database}/documents {
    match /messages/{message} {
      allow read: if request.auth != null && resource.data.room in request.auth.token.rooms;
      allow create: if request.auth != null
        && request.resource.data.by == request.auth.uid
        && request.resource.data.room in request.auth.token.rooms
        && request.resource.data.keys().hasOnly(['room', 'ts', 'text', 'by']);
    }
  }
}"#;

/// A member of room 0, as the rules see them.
fn member(uid: &str) -> Identity {
    let claims = json!({"sub": uid, "rooms": ["room0", "room1"]});
    Identity::User {
        uid: uid.into(),
        claims: claims.as_object().expect("an object").clone(),
    }
}

/// Opens connection `conn` as `identity` (its credential verified at once)
/// and listens to `query`; drops the answers.
fn member_listener(hub: &mut Hub<MemoryStorage>, conn: u64, identity: &Identity, query: &Query) {
    hub.handle_open(conn, 0);
    let hello = ClientMessage::Hello {
        protocol: 1,
        auth: Some("a token".into()),
        held_docs: false,
        rid: None,
    };
    hub.handle_frame(conn, &encode(&hello), NOW);
    while let Some(output) = hub.poll_output() {
        if let Output::Event(HubEvent::Verify { conn, rid, .. }) = output {
            hub.handle_verified(conn, rid, Ok((identity.clone(), None)), NOW);
        }
    }
    let listen = ClientMessage::Listen {
        rid: 1,
        doc: None,
        query: Some(query.clone()),
        since: None,
    };
    hub.handle_frame(conn, &encode(&listen), NOW);
    assert!(
        drain(hub) > 0,
        "the listen is answered (a snapshot, not a denial)"
    );
}

/// A chat message by `ada` (a member) in `room` at time `ts`.
fn message_by_ada(room: usize, ts: u64) -> Write {
    message(room, ts)
}

/// One request made on a hub, the `i`th time.
type Request = dyn FnMut(&mut Hub<MemoryStorage>, u64);

fn bench_rules() {
    println!("## Access rules: one commit fanned out to N members' listeners, rules off vs on, same run (commits alternating between the two hubs), median of 31");
    println!("   rules on: each listener was proved once when it listened (list rule); a member's write is also checked (create rule), a server's (admin) is not");
    let rules = Rules::compile(CHAT_RULES).expect("the chat rules compile");
    let ada = Caller::new(member("ada"));
    for (writer, who) in [(Caller::admin(), "a server"), (ada.clone(), "a member")] {
        for n in [100usize, 1_000, 10_000] {
            // Both hubs are built first, then their commits alternate, so
            // each pair of timings sees the same machine.
            let mut hubs = Vec::new();
            for access in [Access::Open, Access::Enforced(rules.clone())] {
                let mut hub = hub().with_access(access);
                let ts = seed(&mut hub, 1);
                let query = room_query(0);
                for conn in 0..n as u64 {
                    member_listener(&mut hub, conn, &member(&format!("u{conn}")), &query);
                }
                hubs.push((hub, ts));
            }
            let mut times = [Vec::new(), Vec::new()];
            for _ in 0..31 {
                for (i, (hub, ts)) in hubs.iter_mut().enumerate() {
                    *ts += 1;
                    let t = Instant::now();
                    hub.handle_commit(&writer, &messages(), &[message_by_ada(0, *ts)], NOW)
                        .expect("allowed");
                    let delivered = drain(hub);
                    times[i].push(t.elapsed());
                    assert_eq!(delivered, n, "every listener gets the change");
                }
            }
            let per: Vec<Duration> = times
                .into_iter()
                .map(|mut t| {
                    t.sort();
                    t[t.len() / 2]
                })
                .collect();
            let rate = |t: Duration| n as f64 / t.as_secs_f64() / 1e6;
            println!(
                "{who:>9} writes, {n:>6} listeners: rules off {:>6.2} M deliveries/s, rules on {:>6.2} M deliveries/s: {:.2}x",
                rate(per[0]),
                rate(per[1]),
                rate(per[1]) / rate(per[0])
            );
        }
    }
    println!("## Access rules: cost of one decision (rules on minus rules off, same run, median of 2001)");
    let decision = |label: &str, mut run: Box<Request>| {
        let mut times = Vec::new();
        for access in [Access::Open, Access::Enforced(rules.clone())] {
            let mut hub = hub().with_access(access);
            let mut i = 0;
            let (t, _) = median(2001, || {
                i += 1;
                run(&mut hub, i);
                drain(&mut hub)
            });
            times.push(t);
        }
        println!(
            "{label}: {:>6.1} us with rules, {:>6.1} us without: {:>5.1} us for the rules",
            times[1].as_secs_f64() * 1e6,
            times[0].as_secs_f64() * 1e6,
            (times[1].as_secs_f64() - times[0].as_secs_f64()) * 1e6
        );
    };
    let writer = ada.clone();
    decision(
        "a member posts a message (create rule, 4 conditions)",
        Box::new(move |hub, i| {
            hub.handle_commit(&writer, &messages(), &[message_by_ada(0, i)], NOW)
                .expect("allowed");
        }),
    );
    let reader = ada.clone();
    decision(
        "a member's query of a room (list proof from room ==, order, limit)",
        Box::new(move |hub, _| {
            black_box(hub.query(&reader, &room_query(0)).expect("allowed"));
        }),
    );
}

fn main() {
    println!(
        "# blaze-core fan-out benchmark ({}, one thread)",
        support::machine()
    );
    // `cargo bench -p blaze-core --bench fanout -- memory` runs the sections
    // whose name contains `memory` (for profiling one of them).
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let sections: [(&str, fn()); 5] = [
        ("deliveries", bench_deliveries),
        ("matching", bench_matching),
        ("memory", bench_memory),
        ("non_indexable", bench_non_indexable),
        ("rules", bench_rules),
    ];
    for (name, run) in sections {
        if only.is_empty() || only.iter().any(|o| name.contains(o.as_str())) {
            run();
        }
    }
}
