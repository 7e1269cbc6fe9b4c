//! Running end-to-end test bodies: one at a time within a test binary (each
//! starts its own `wrangler dev`), on a runtime with room for large futures,
//! within a time limit.

use std::future::Future;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Holds the test binary's end-to-end lock until dropped (a failed test does
/// not poison it); `None` when the worker is not built and the test is to be
/// skipped (see [`worker_available`](super::worker_available)).
pub fn e2e() -> Option<MutexGuard<'static, ()>> {
    super::worker_available().then(|| ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner()))
}

/// Runs `body` on a fresh two-thread tokio runtime with large stacks, and
/// fails the test if it takes longer than `limit`.
pub fn run(limit: Duration, body: impl Future<Output = ()> + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(64 * 1024 * 1024)
        .spawn(move || {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_stack_size(16 * 1024 * 1024)
                .enable_all()
                .build()
                .expect("a runtime")
                .block_on(async {
                    tokio::time::timeout(limit, body)
                        .await
                        .expect("the test finishes within its time limit")
                })
        })
        .expect("a test thread")
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e));
}
