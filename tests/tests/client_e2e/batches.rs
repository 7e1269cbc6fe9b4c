//! Batches: every write kind in one atomic commit, failing batches that name
//! the failing write and change nothing, and batches refused before sending.

use blaze_client::{Blaze, CollectionRef, Error, ErrorCode, QuerySnapshot};
use blaze_tests::live::{e2e, WranglerDev};
use serde_json::json;

use crate::support::{connect, holds, ids, raw, refused, run};

/// A batch that must fail: how to build it, the failing write's index, the code.
type FailingBatch<'a> = (
    Box<dyn Fn(&mut blaze_client::WriteBatch) + Send + Sync + 'a>,
    usize,
    ErrorCode,
);

#[test]
fn batches_are_atomic_and_name_the_failing_write() {
    let Some(_serial) = e2e() else { return };
    run(async {
        let server = WranglerDev::start("client-batch");
        let db = connect(&server.url()).await;
        let c = db.collection("c");
        c.doc("old").set(&json!({"n": 0})).await.unwrap();
        c.doc("keep").set(&json!({"n": 1})).await.unwrap();
        let state = every_write_kind_in_one_batch(&db, &c).await;
        one_failing_write_fails_the_batch(&db, &c, &state).await;
        batches_refused_before_sending(&db, &c).await;
        let next = c.doc("x").set(&json!({})).await.unwrap();
        assert_eq!(
            next.seq,
            state.seq + 1,
            "no failed batch used a sequence number"
        );
    });
}

/// Seven writes of every kind commit as one; returns the collection after it.
async fn every_write_kind_in_one_batch(db: &Blaze, c: &CollectionRef) -> QuerySnapshot {
    let mut batch = db.batch();
    assert!(batch.is_empty());
    batch
        .create(&c.doc("a"), &json!({"n": 1}))
        .update(&c.doc("a"), [("m.k", json!(2))])
        .patch(
            &c.doc("a"),
            vec![json!({"op": "add", "path": "/p", "value": true})],
        )
        .merge(&c.doc("keep"), &json!({"n": null, "k": 1}))
        .set(&c.doc("b"), &json!({"n": 2}))
        .delete(&c.doc("old"))
        // Written earlier in this batch: its version is already the batch's seq.
        .verify(&c.doc("keep").if_version(3));
    assert_eq!(batch.len(), 7);
    let done = batch.commit().await.unwrap();
    assert_eq!(done.seq, 3);
    let exists: Vec<(&str, bool)> = done
        .writes
        .iter()
        .map(|w| (w.id.as_str(), w.exists))
        .collect();
    assert_eq!(
        exists,
        [
            ("a", true),
            ("a", true),
            ("a", true),
            ("keep", true),
            ("b", true),
            ("old", false),
            ("keep", true)
        ]
    );
    let a = raw(&c.doc("a")).await;
    assert_eq!(a.data, Some(json!({"n": 1, "m": {"k": 2}, "p": true})));
    assert_eq!(
        (a.version, a.create_time, a.update_time),
        (Some(3), Some(done.time), Some(done.time))
    );
    holds(&c.doc("keep"), Some(json!({"k": 1}))).await;
    assert_eq!(raw(&c.doc("b")).await.version, Some(3));
    assert!(!raw(&c.doc("old")).await.exists());
    let state = c.get().await.unwrap();
    assert_eq!(ids(&state.docs), ["a", "b", "keep"]);
    state
}

/// One failing write fails the batch, which names it; nothing of it lands.
async fn one_failing_write_fails_the_batch(db: &Blaze, c: &CollectionRef, state: &QuerySnapshot) {
    let failing: Vec<FailingBatch> = vec![
        (
            Box::new(|b| {
                b.set(&c.doc("x"), &json!({"n": 9}))
                    .create(&c.doc("a"), &json!({}));
            }),
            1,
            ErrorCode::AlreadyExists,
        ),
        (
            Box::new(|b| {
                b.set(&c.doc("x"), &json!({}))
                    .delete(&c.doc("a"))
                    .merge(&c.doc("a"), &json!({"n": 1}));
            }),
            2,
            ErrorCode::NotFound,
        ),
        (
            Box::new(|b| {
                b.delete(&c.doc("b"))
                    .set(&c.doc("x"), &json!({}))
                    .verify(&c.doc("keep").if_version(2));
            }),
            2,
            ErrorCode::PreconditionFailed,
        ),
        (
            Box::new(|b| {
                b.set(&c.doc("x"), &json!({})).patch(
                    &c.doc("b"),
                    vec![json!({"op": "test", "path": "/n", "value": 3})],
                );
            }),
            1,
            ErrorCode::PatchTestFailed,
        ),
    ];
    for (i, (build, index, want)) in failing.into_iter().enumerate() {
        let mut batch = db.batch();
        build(&mut batch);
        match batch.commit().await {
            Err(Error::Rejected {
                code, write_index, ..
            }) => {
                assert_eq!((code, write_index), (want, Some(index)), "batch {i}");
            }
            other => panic!("batch {i}: {other:?}"),
        }
    }
    assert_eq!(
        c.get().await.unwrap(),
        *state,
        "failed batches changed nothing"
    );
}

/// Batches the client refuses before sending.
async fn batches_refused_before_sending(db: &Blaze, c: &CollectionRef) {
    let mut two = db.batch();
    two.set(&c.doc("a"), &json!({}))
        .set(&db.doc("d/a"), &json!({}));
    assert!(matches!(two.commit().await, Err(Error::Usage(_))));
    refused("an empty batch", db.batch().commit(), ErrorCode::EmptyBatch).await;
    let mut bad_id = db.batch();
    bad_id
        .set(&c.doc("a"), &json!({}))
        .set(&c.doc("__x__"), &json!({}));
    refused("a bad id", bad_id.commit(), ErrorCode::InvalidPath).await;
}
