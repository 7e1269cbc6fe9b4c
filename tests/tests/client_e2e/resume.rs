//! Listeners that resume exactly: across connections cut by a proxy, across
//! a restart of the server, and past the change log (a reset).

use std::sync::Arc;
use std::time::Duration;

use blaze_client::Direction::{Asc, Desc};
use blaze_client::{Blaze, ChangeKind, ErrorCode, ListenEvent, QueryRef};
use blaze_tests::live::{e2e, Proxy, WranglerDev};
use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::support::{
    apply, connect, ids, next_snap, raw, run, shapes, unused_port, within, Shape, Tracker, WAIT,
};

/// A small deterministic generator (the tests need no randomness crate).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// How many writes the cut test makes, and before which ones it cuts.
const WRITES: u64 = 200;
const CUT_AT: [u64; 4] = [40, 80, 120, 160];

fn all_query(db: &Blaze) -> QueryRef {
    db.collection("stream").query()
}

fn top_query(db: &Blaze) -> QueryRef {
    db.collection("stream")
        .where_("keep", "==", true)
        .order_by("n", Desc)
        .limit(6)
}

/// Writes [`WRITES`] random sets, merges and deletes to `stream`, cutting
/// the proxy's connections before the writes of [`CUT_AT`], then a last
/// write that changes both queries' results. Returns its seq and how many
/// connections each cut closed.
async fn write_while_cutting(proxy: Arc<Proxy>, writer: Blaze) -> (u64, Vec<usize>) {
    let mut rng = Lcg(7);
    let mut cuts = Vec::new();
    let mut seq = 0;
    for i in 0..WRITES {
        if CUT_AT.contains(&i) {
            assert!(proxy.wait_live(WAIT).await, "the client reconnected");
            cuts.push(proxy.cut());
        }
        let doc = writer.doc(&format!("stream/s{:02}", rng.below(20)));
        let result = match rng.below(10) {
            0..=1 => doc.delete().await,
            2..=3 => doc.merge(&json!({"n": rng.below(50), "w": i})).await,
            _ => {
                let data = json!({"n": rng.below(50), "keep": rng.below(5) > 0, "w": i});
                doc.set(&data).await
            }
        };
        match result {
            Ok(commit) => {
                seq += 1;
                assert_eq!(commit.seq, seq, "write {i}");
            }
            Err(e) => assert_eq!(e.code(), Some(ErrorCode::NotFound), "write {i}: {e}"),
        }
        if i % 10 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    // A last write that changes both queries' results.
    let marker = writer
        .doc("stream/zz")
        .set(&json!({"n": 1000, "keep": true}))
        .await
        .unwrap();
    (marker.seq, cuts)
}

#[test]
fn listeners_resume_exactly_across_cut_connections() {
    let Some(_serial) = e2e() else { return };
    run(async {
        let server = WranglerDev::start("client-cut");
        let proxy = Arc::new(Proxy::start(server.port).await);
        let db = connect(&proxy.url()).await;
        let writer = connect(&server.url()).await;
        let mut all = all_query(&db).listen();
        let mut top = top_query(&db).listen();
        let mut one = db.doc("stream/s03").listen();
        let (mut all_view, mut top_view) = (Tracker::new("all"), Tracker::new("top"));
        all_view.event(within("all", all.next()).await);
        top_view.event(within("top", top.next()).await);
        let mut one_view = next_snap(&mut one, "document listener").await;
        assert_eq!((all_view.seq, top_view.seq), (Some(0), Some(0)));
        assert_eq!(proxy.live(), 1, "one connection for the collection");

        let mut feed = tokio::spawn(write_while_cutting(proxy.clone(), writer.clone()));

        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let mut finished: Option<(u64, Vec<usize>)> = None;
        loop {
            // Caught up, and back online: a listener may see its resumed
            // snapshot before its `Online` event.
            let online = !all_view.is_offline && !top_view.is_offline;
            if let Some((last, _)) = &finished {
                if online && all_view.seq == Some(*last) && top_view.seq == Some(*last) {
                    break;
                }
            }
            tokio::select! {
                event = all.next() => all_view.event(event),
                event = top.next() => top_view.event(event),
                event = one.next() => match event.expect("the document stream").expect("no error") {
                    ListenEvent::Snapshot(doc) => one_view = doc,
                    ListenEvent::State(_) => {}
                },
                done = &mut feed, if finished.is_none() => {
                    finished = Some(done.expect("the writer succeeds"));
                }
                _ = tokio::time::sleep_until(deadline) => panic!(
                    "the listeners did not catch up: all at {:?}, top at {:?}, online: {online}, writer done: {:?}",
                    all_view.seq, top_view.seq, finished.as_ref().map(|f| f.0)
                ),
            }
        }
        let (last, cuts) = finished.unwrap();
        assert!(
            cuts.iter().all(|&n| n >= 1),
            "every cut closed a connection: {cuts:?}"
        );
        views_equal_fresh_queries(&writer, [&all_view, &top_view], last).await;
        assert_eq!(
            all_view.docs.len(),
            db.collection("stream").count().await.unwrap() as usize
        );
        // The document listener ends at the document's current state.
        let want = raw(&writer.doc("stream/s03")).await;
        while one_view != want {
            one_view = next_snap(&mut one, "document listener").await;
        }
        assert!(proxy.live() >= 1);
    });
}

/// After the cut test: each view equals a fresh query at the last seq, went
/// offline at each cut and back online, and never needed a reset.
async fn views_equal_fresh_queries(writer: &Blaze, views: [&Tracker; 2], last: u64) {
    for (view, query) in views
        .into_iter()
        .zip([all_query(writer), top_query(writer)])
    {
        let fresh = query.get().await.unwrap();
        assert_eq!(fresh.seq, last);
        assert_eq!(
            view.docs, fresh.docs,
            "{}: the final view equals a fresh query",
            view.name
        );
        // Every cut closed a live TCP connection, but one may close it while
        // the client is still in its handshake (the proxy sees the connection
        // before `welcome` comes back): that outage goes on, with a second
        // `Offline` and no `Online` between. So each cut is an `Offline`, and
        // the view came back online (it ended online: see the loop above).
        assert!(
            view.offline >= CUT_AT.len() && view.online >= 1,
            "{}: {} offline and {} online events for {} cuts",
            view.name,
            view.offline,
            view.online,
            CUT_AT.len()
        );
        assert_eq!(
            view.resets, 0,
            "{}: the change log covers every gap",
            view.name
        );
        println!(
            "{}: {} snapshots (largest seq step {}), {} offline / {} online events, {} docs",
            view.name,
            view.snapshots,
            view.max_jump,
            view.offline,
            view.online,
            view.docs.len()
        );
    }
}

/// Creates `log/wNN` holding `{"i": NN}` for each NN of `entries`, each the
/// collection's commit NN + 1.
async fn create_log_entries(writer: &Blaze, entries: std::ops::Range<u64>, what: &str) {
    for i in entries {
        let commit = writer
            .doc(&format!("log/w{i:02}"))
            .create(&json!({"i": i}))
            .await
            .unwrap();
        assert_eq!(commit.seq, i + 1, "{what}");
    }
}

/// On the restarted server: ten more entries, the first ten deleted, and
/// the last one changed. Returns the seq of that last commit.
async fn write_while_unreachable(writer: &Blaze) -> u64 {
    create_log_entries(writer, 30..40, "the restarted server kept the sequence").await;
    for i in 0..10u64 {
        writer.doc(&format!("log/w{i:02}")).delete().await.unwrap();
    }
    let missed = writer
        .doc("log/w39")
        .merge(&json!({"i": 100, "late": true}))
        .await
        .unwrap();
    assert_eq!(missed.seq, 51);
    missed.seq
}

#[test]
fn listeners_resume_after_a_server_restart() {
    let Some(_serial) = e2e() else { return };
    run(async {
        let mut server = WranglerDev::start("client-restart");
        let proxy = Proxy::start(server.port).await;
        let db = connect(&proxy.url()).await;
        let query = db
            .collection("log")
            .where_("i", ">=", 0)
            .order_by("i", Desc)
            .limit(12);
        let mut listener = query.listen();
        let mut view = Tracker::new("log");
        view.event(within("first snapshot", listener.next()).await);

        let writer = connect(&server.url()).await;
        create_log_entries(&writer, 0..30, "the first writes").await;
        while view.seq != Some(30) {
            view.event(within("catching up before the restart", listener.next()).await);
        }
        drop(writer);

        tokio::task::block_in_place(|| server.kill());
        while !view.is_offline {
            view.event(within("the listener sees the server go", listener.next()).await);
        }
        let restarted = tokio::task::block_in_place(|| {
            WranglerDev::start_with_state(server.state().to_path_buf())
        });
        assert_ne!(restarted.port, server.port);

        // Writes on the restarted server while the listener still cannot reach it.
        let writer = connect(&restarted.url()).await;
        let missed = write_while_unreachable(&writer).await;
        assert!(view.is_offline);

        // Now the listener can reach it: one snapshot catches it up.
        proxy.set_upstream(restarted.port);
        let snapshots = view.snapshots;
        while view.seq == Some(30) {
            view.event(within("catching up after the restart", listener.next()).await);
        }
        assert_eq!(view.seq, Some(missed), "caught up in one snapshot");
        assert_eq!(
            (view.snapshots, view.resets, view.online),
            (snapshots + 1, 0, 1)
        );
        let fresh = query.get().await.unwrap();
        assert_eq!(fresh.seq, missed);
        assert_eq!(
            view.docs, fresh.docs,
            "the resumed view equals a fresh query"
        );

        // And it follows live changes again.
        let live = writer
            .doc("log/w38")
            .merge(&json!({"i": 99}))
            .await
            .unwrap();
        while view.seq != Some(live.seq) {
            view.event(within("a live change after the restart", listener.next()).await);
        }
        let fresh = query.get().await.unwrap();
        assert_eq!(view.docs, fresh.docs);
        assert_eq!(ids(&view.docs)[..3], ["w39", "w38", "w37"]);
        assert_eq!(db.collection("log").count().await.unwrap(), 30);
        println!(
            "restart: {} snapshots, {} resets, {} offline / {} online events",
            view.snapshots, view.resets, view.offline, view.online
        );
    });
}

/// With a change log of three commits, a listener kept offline (the proxy
/// points at a closed port) over at most three commits resumes with the
/// changes; over more it gets a reset snapshot, whose changes (computed by
/// the client) still turn its old results into the new ones.
#[test]
fn a_listener_offline_past_the_change_log_gets_a_reset() {
    let Some(_serial) = e2e() else { return };
    run(async {
        let server = WranglerDev::start_with_vars("client-reset", &["BLAZE_LOG_MAX_ENTRIES:3"]);
        let proxy = Proxy::start(server.port).await;
        let writer = connect(&server.url()).await;
        let r = writer.collection("r");
        for (i, id) in ["a", "b", "c", "d", "e", "f"].into_iter().enumerate() {
            r.doc(id).set(&json!({"n": i + 1})).await.unwrap();
        }
        let db = connect(&proxy.url()).await;
        let query = |db: &Blaze| db.collection("r").order_by("n", Asc).limit(4);
        let mut listener = query(&db).listen();
        let mut doc_listener = db.doc("r/a").listen();
        let mut view = Tracker::new("r");
        view.event(within("first snapshot", listener.next()).await);
        assert_eq!(
            (view.seq, ids(&view.docs)),
            (Some(6), vec!["a", "b", "c", "d"])
        );
        assert!(next_snap(&mut doc_listener, "document listener")
            .await
            .exists());
        let closed_port = unused_port();

        for (phase, (writes, reset, want)) in reset_phases().into_iter().enumerate() {
            proxy.set_upstream(closed_port);
            assert_eq!(proxy.cut(), 1, "phase {phase}: one connection to cut");
            while !view.is_offline {
                view.event(within("going offline", listener.next()).await);
            }
            let mut last = 0;
            for (id, data) in writes {
                last = match data {
                    Some(data) => r.doc(id).set(&data).await,
                    None => r.doc(id).delete().await,
                }
                .unwrap()
                .seq;
            }
            proxy.set_upstream(server.port);
            let before = view.docs.clone();
            let snap = loop {
                match within("resuming", listener.next()).await {
                    Some(Ok(ListenEvent::Snapshot(snap))) => break snap,
                    other => view.event(other),
                }
            };
            assert!(view.online > phase, "phase {phase}: online again");
            assert_eq!((snap.seq, snap.reset), (last, reset), "phase {phase}");
            assert_eq!(shapes(snap.changes()), want, "phase {phase}");
            view.event(Some(Ok(ListenEvent::Snapshot(snap.clone()))));
            assert_eq!(apply(&before, snap.changes()), snap.docs);
            let fresh = query(&writer).get().await.unwrap();
            assert_eq!(
                (fresh.seq, &fresh.docs),
                (last, &view.docs),
                "phase {phase}"
            );
        }
        assert_eq!(ids(&view.docs), ["g", "e", "c", "d"]);
        let gone = next_snap(&mut doc_listener, "document listener").await;
        assert!(!gone.exists(), "the document listener saw the delete");
    });
}

/// A write while offline: an id, and the data to set (`None`: delete it).
type OfflineWrite = (&'static str, Option<Value>);

/// The reset test's phases: the writes made while the listener is offline,
/// whether its resume is a reset, and the changes it gets.
fn reset_phases() -> Vec<(Vec<OfflineWrite>, bool, Vec<Shape<'static>>)> {
    use ChangeKind::{Added, Modified, Removed};
    vec![
        (
            vec![("b", Some(json!({"n": 10})))],
            false,
            vec![(Removed, "b", Some(1), None), (Added, "e", None, Some(3))],
        ),
        (
            vec![
                ("a", None),
                ("g", Some(json!({"n": 0}))),
                ("c", Some(json!({"n": 3, "x": 1}))),
                ("e", Some(json!({"n": 2}))),
                ("h", Some(json!({"n": 100}))),
            ],
            true,
            vec![
                (Removed, "a", Some(0), None),
                (Added, "g", None, Some(0)),
                (Modified, "e", Some(3), Some(1)),
                (Modified, "c", Some(2), Some(2)),
            ],
        ),
    ]
}
