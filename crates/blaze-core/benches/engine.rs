//! Engine benchmark: prints patch, query, count and commit figures (no I/O, in-memory storage).
//!
//! Run with `cargo bench -p blaze-core --bench engine`. Figures that compare
//! sizes are measured side by side in one run and reported as ratios.

mod support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use blaze_core::{Database, Limits, MemoryStorage};
use blaze_json::patch::apply_json_patch;
use blaze_protocol::{
    CollectionPath, Direction, FieldFilter, Filter, Op, OrderBy, Query, Write, WriteKind,
};
use serde_json::{json, Map, Value};

/// Median time of `runs` calls of `f`.
/// The benchmarks' collection.
fn messages() -> CollectionPath {
    CollectionPath::parse("messages").unwrap()
}

fn median(runs: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

/// A document of about `bytes` bytes: many small string fields.
fn doc_of(bytes: usize) -> Map<String, Value> {
    let mut m = Map::new();
    let mut i = 0;
    while serde_json::to_string(&m).map_or(0, |s| s.len()) + 40 < bytes {
        for _ in 0..64 {
            m.insert(format!("field{i:06}"), json!("abcdefghijklmnopqrstuvw"));
            i += 1;
        }
    }
    m
}

fn bench_patch() {
    println!("## JSON Patch apply (replace one field, add one field), median of 21");
    let limits = Limits {
        max_document_bytes: 2 * 1024 * 1024,
        ..Limits::default()
    };
    let patch = json!([
        {"op": "replace", "path": "/field000001", "value": "changed"},
        {"op": "add", "path": "/extra", "value": {"a": [1, 2, 3]}}
    ]);
    let mut base = None;
    for (label, bytes) in [("1 KB", 1 << 10), ("100 KB", 100 << 10), ("1 MB", 1 << 20)] {
        let doc = doc_of(bytes);
        let t = median(21, || {
            black_box(apply_json_patch(black_box(&doc), &patch, &limits).unwrap());
        });
        let base = *base.get_or_insert(t);
        println!(
            "patch {label:>7}: {:>10.1} us  ({:.0}x the 1 KB time)",
            t.as_secs_f64() * 1e6,
            t.as_secs_f64() / base.as_secs_f64()
        );
    }
}

fn set(id: String, data: Value) -> Write {
    Write {
        id,
        kind: WriteKind::Set { data },
        precondition: Default::default(),
    }
}

fn room_db(n: usize) -> Database<MemoryStorage> {
    let mut db = Database::new(MemoryStorage::new(), Limits::default());
    let batch: Vec<Write> = (0..n)
        .map(|i| {
            set(
                format!("m{i:07}"),
                json!({"room": format!("r{}", i % 10), "ts": i, "text": "hello there"}),
            )
        })
        .collect();
    for chunk in batch.chunks(500) {
        db.commit(&messages(), chunk, 0).unwrap();
    }
    db
}

fn bench_query() {
    println!("## Query: room == X, order_by ts desc, limit 20 (median of 201)");
    let mut q = Query::all(messages());
    q.filter = Some(Filter::Field(FieldFilter {
        field: "room".into(),
        op: Op::Eq,
        value: json!("r3"),
    }));
    q.order_by = vec![OrderBy {
        field: "ts".into(),
        direction: Direction::Desc,
    }];
    q.limit = Some(20);
    let mut base = None;
    for n in [1_000, 10_000, 100_000] {
        let db = room_db(n);
        assert_eq!(db.query(&q).unwrap().docs.len(), 20);
        let t = median(201, || {
            black_box(db.query(black_box(&q)).unwrap());
        });
        let base = *base.get_or_insert(t);
        println!(
            "query {n:>7} docs: {:>8.1} us  ({:.2}x the 1k time)",
            t.as_secs_f64() * 1e6,
            t.as_secs_f64() / base.as_secs_f64()
        );
    }
}

fn bench_count() {
    println!("## Count: text == X matching all 100,000 documents (median of 11)");
    let db = room_db(100_000);
    let mut q = Query::all(messages());
    q.filter = Some(Filter::Field(FieldFilter {
        field: "text".into(),
        op: Op::Eq,
        value: json!("hello there"),
    }));
    assert_eq!(db.count(&q).unwrap().1, 100_000);
    assert_eq!(db.query(&q).unwrap().docs.len(), 100_000);
    let count = median(11, || {
        black_box(db.count(black_box(&q)).unwrap());
    });
    let query = median(11, || {
        black_box(db.query(black_box(&q)).unwrap());
    });
    println!(
        "count 100000 matches: {:>8.1} ms; the query: {:>8.1} ms ({:.1}x the count)",
        count.as_secs_f64() * 1e3,
        query.as_secs_f64() * 1e3,
        query.as_secs_f64() / count.as_secs_f64()
    );
}

fn bench_commits() {
    println!("## Single-document commits with indexes maintained");
    let mut db = Database::new(MemoryStorage::new(), Limits::default());
    let n = 50_000;
    let t = Instant::now();
    for i in 0..n {
        let doc = json!({"room": format!("r{}", i % 100), "ts": i, "author": format!("u{}", i % 37), "tags": ["a", "b"], "text": "hello world"});
        db.commit(
            &messages(),
            &[set(format!("m{}", i % 10_000), doc)],
            i as u64,
        )
        .unwrap();
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "commits: {n} in {secs:.2} s = {:.0} commits/s (10k docs, 5 fields, replacing)",
        n as f64 / secs
    );
}

fn main() {
    println!("# blaze-core engine benchmark ({})", support::machine());
    bench_patch();
    bench_query();
    bench_count();
    bench_commits();
}
