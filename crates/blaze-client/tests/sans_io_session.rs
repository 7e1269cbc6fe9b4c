//! A tidy test: the session stays a plain state machine that any driver
//! (tokio, blocking, wasm) can run. Its sources name no runtime, channel,
//! atomic, clock or thread.

use std::path::Path;

#[test]
fn the_session_names_no_runtime_channel_atomic_or_clock() {
    let banned = [
        "tokio",
        "futures",
        "std::sync",
        "Atomic",
        "std::time",
        "Instant",
        "std::thread",
        "std::net",
        "std::fs",
    ];
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/session");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for word in banned {
                assert!(!line.contains(word), "{}: {line}", path.display());
            }
        }
        checked += 1;
    }
    assert!(
        checked >= 2,
        "read the session's sources in {}",
        dir.display()
    );
}
