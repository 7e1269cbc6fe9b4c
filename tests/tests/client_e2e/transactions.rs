//! Transactions: concurrent increments that all land, a conflict retried on
//! the new data, endless contention given up, a failing body, one collection.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use blaze_client::{Blaze, Error, ErrorCode, TRANSACTION_ATTEMPTS};
use blaze_tests::live::{e2e, WranglerDev};
use serde_json::{json, Value};

use crate::support::{connect, holds, raw, run, within};

#[test]
fn transactions_retry_until_every_increment_lands() {
    let Some(_serial) = e2e() else { return };
    run(async {
        let server = WranglerDev::start("client-tx");
        every_concurrent_increment_lands(&server.url()).await;
        let db = connect(&server.url()).await;
        let other = connect(&server.url()).await;
        a_conflict_reruns_the_body_on_the_new_data(&db, &other).await;
        endless_contention_gives_up_writing_nothing(&db, &other).await;
        a_failing_body_commits_nothing_and_is_not_retried(&db).await;
        a_transaction_spans_one_collection(&db).await;
    });
}

/// Two clients increment one counter five times each, in transactions: each
/// increment sees a distinct value, with one commit each.
async fn every_concurrent_increment_lands(url: &str) {
    let setup = connect(url).await;
    setup.doc("counters/c").set(&json!({"n": 0})).await.unwrap();

    const TASKS: u64 = 2;
    const INCREMENTS: u64 = 5;
    let runs = Arc::new(AtomicU32::new(0));
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let db = connect(url).await;
        let runs = runs.clone();
        tasks.push(tokio::spawn(async move {
            let counter = db.doc("counters/c");
            let mut seen = Vec::new();
            for _ in 0..INCREMENTS {
                let n = db
                    .run_transaction(|tx| {
                        let counter = counter.clone();
                        let runs = runs.clone();
                        async move {
                            runs.fetch_add(1, Ordering::SeqCst);
                            let now = tx.get::<Value>(&counter).await?;
                            let n = now.data.and_then(|d| d["n"].as_u64()).unwrap_or(0) + 1;
                            tx.update(
                                &counter,
                                [("n", json!(n)), (format!("by.t{t}").as_str(), json!(true))],
                            )?;
                            Ok(n)
                        }
                    })
                    .await
                    .unwrap_or_else(|e| panic!("task {t}: {e}"));
                seen.push(n);
            }
            seen
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(
            within("a transaction task", task)
                .await
                .expect("the task succeeds"),
        );
    }
    all.sort_unstable();
    let total = TASKS * INCREMENTS;
    assert_eq!(
        all,
        (1..=total).collect::<Vec<_>>(),
        "each increment saw a distinct value"
    );
    let counter = raw(&setup.doc("counters/c")).await;
    assert_eq!(counter.data.as_ref().unwrap()["n"], json!(total));
    assert_eq!(
        counter.version,
        Some(1 + total),
        "one commit per increment, no more"
    );
    println!(
        "{total} increments took {} transaction runs",
        runs.load(Ordering::SeqCst)
    );
}

/// A conflict is retried: the body runs again on the new data.
async fn a_conflict_reruns_the_body_on_the_new_data(db: &Blaze, other: &Blaze) {
    db.doc("t/x").set(&json!({"v": 1})).await.unwrap();
    let attempts = Arc::new(AtomicU32::new(0));
    let copied = db
        .run_transaction(|tx| {
            let (db, other, attempts) = (db.clone(), other.clone(), attempts.clone());
            async move {
                let x = tx.get::<Value>(&db.doc("t/x")).await?;
                let y = tx.get::<Value>(&db.doc("t/y")).await?;
                assert!(!y.exists());
                if attempts.fetch_add(1, Ordering::SeqCst) == 0 {
                    // Another writer changes x after it was read.
                    other.doc("t/x").set(&json!({"v": 2})).await?;
                }
                let v = x.data.unwrap()["v"].clone();
                tx.set(&db.doc("t/y"), &json!({"v": v}))?;
                Ok(v)
            }
        })
        .await
        .unwrap();
    assert_eq!((copied, attempts.load(Ordering::SeqCst)), (json!(2), 2));
    holds(&db.doc("t/y"), Some(json!({"v": 2}))).await;
}

/// Endless contention gives up after TRANSACTION_ATTEMPTS runs, writing nothing.
async fn endless_contention_gives_up_writing_nothing(db: &Blaze, other: &Blaze) {
    let attempts = Arc::new(AtomicU32::new(0));
    let outcome = db
        .run_transaction(|tx| {
            let (db, other, attempts) = (db.clone(), other.clone(), attempts.clone());
            async move {
                attempts.fetch_add(1, Ordering::SeqCst);
                tx.get::<Value>(&db.doc("t/x")).await?;
                other
                    .doc("t/x")
                    .merge(&json!({"bump": attempts.load(Ordering::SeqCst)}))
                    .await?;
                tx.set(&db.doc("t/z"), &json!({"never": true}))?;
                Ok(())
            }
        })
        .await;
    match outcome {
        Err(e @ Error::TransactionContention { .. }) => {
            assert_eq!(e.code(), Some(ErrorCode::PreconditionFailed))
        }
        other => panic!("expected contention, got {other:?}"),
    }
    assert_eq!(attempts.load(Ordering::SeqCst), TRANSACTION_ATTEMPTS);
    assert!(!raw(&db.doc("t/z")).await.exists());
}

/// A body that fails commits nothing and is not retried.
async fn a_failing_body_commits_nothing_and_is_not_retried(db: &Blaze) {
    let attempts = Arc::new(AtomicU32::new(0));
    let failed: Result<(), Error> = db
        .run_transaction(|tx| {
            let (db, attempts) = (db.clone(), attempts.clone());
            async move {
                attempts.fetch_add(1, Ordering::SeqCst);
                tx.set(&db.doc("t/w"), &json!({}))?;
                Err(Error::Usage("the body gives up".into()))
            }
        })
        .await;
    assert!(matches!(failed, Err(Error::Usage(_))));
    assert_eq!(attempts.load(Ordering::SeqCst), 1);
    assert!(!raw(&db.doc("t/w")).await.exists());
}

/// A transaction spans one collection.
async fn a_transaction_spans_one_collection(db: &Blaze) {
    let across: Result<(), Error> = db
        .run_transaction(|tx| {
            let db = db.clone();
            async move {
                tx.get::<Value>(&db.doc("t/x")).await?;
                tx.get::<Value>(&db.doc("counters/c")).await?;
                Ok(())
            }
        })
        .await;
    assert!(matches!(across, Err(Error::Usage(_))), "{across:?}");
}
