//! Whether the end-to-end tests can run here: they need `wrangler` (root
//! `npm ci`) and the built worker (`scripts/build-worker.sh`). Without them a
//! test is skipped with one line saying so, except under `BLAZE_E2E=require`
//! (what `scripts/test.sh` sets), where a missing build is a failure.

use std::io::Write;
use std::sync::OnceLock;

/// The build output `wrangler dev` serves, relative to the repository root.
pub(crate) const WORKER_SHIM: &str = "crates/blaze-worker/build/worker/shim.mjs";

/// The `wrangler` binary, relative to the repository root.
pub(crate) const WRANGLER: &str = "node_modules/.bin/wrangler";

/// What is missing to run `wrangler dev` on the Blaze worker, if anything.
fn missing() -> Option<String> {
    let root = super::repo_root();
    if !root.join(WRANGLER).exists() {
        Some(format!("wrangler is not installed ({WRANGLER})"))
    } else if !root.join(WORKER_SHIM).exists() {
        Some(format!("the worker is not built ({WORKER_SHIM})"))
    } else {
        None
    }
}

/// True when the end-to-end tests can run. Otherwise prints one line, once
/// per test binary, and returns false; or panics when `BLAZE_E2E=require`.
pub fn worker_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    let Some(what) = missing() else {
        return true;
    };
    let fix = "run bash scripts/build-worker.sh, or bash scripts/test.sh";
    if std::env::var("BLAZE_E2E").is_ok_and(|v| v == "require") {
        panic!("BLAZE_E2E=require, but {what}; {fix}");
    }
    *AVAILABLE.get_or_init(|| {
        // Straight to stderr: the test harness captures `eprintln!` of passing tests.
        let line = format!("skipped: {} end-to-end tests: {what}; {fix}\n", binary());
        let _ = std::io::stderr().write_all(line.as_bytes());
        false
    })
}

/// The running test binary's name, without cargo's hash suffix.
fn binary() -> String {
    let exe = std::env::current_exe().unwrap_or_default();
    let stem = exe
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("these")
        .to_owned();
    match stem.rsplit_once('-') {
        Some((name, hash)) if hash.chars().all(|c| c.is_ascii_hexdigit()) => name.to_owned(),
        _ => stem,
    }
}
