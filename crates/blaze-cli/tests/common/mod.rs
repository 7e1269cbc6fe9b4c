//! What the CLI's end-to-end tests share.

use std::process::Output;

use serde_json::Value;

/// The stdout lines of a `blaze` run that must have succeeded, each as
/// JSON; panics with its stderr otherwise.
pub fn json_lines(out: Output, args: &[&str]) -> Vec<Value> {
    assert!(
        out.status.success(),
        "blaze {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}")))
        .collect()
}
