//! `blaze rules check` and `blaze rules test`, run as the binary, offline:
//! the demo's rules and their example tests (so the example cannot rot), a
//! rules file that does not compile, and failing cases explained.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn blaze(args: &[&str]) -> (Option<i32>, String) {
    let Output { status, stdout, .. } = Command::new(env!("CARGO_BIN_EXE_blaze"))
        .current_dir(repo())
        .args(args)
        .output()
        .expect("blaze runs");
    (status.code(), String::from_utf8(stdout).expect("utf-8"))
}

/// A file of `text` in the temporary directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str, text: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("blaze-rules-cli-{}-{name}", std::process::id()));
        std::fs::write(&path, text).expect("a scratch file");
        Self(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("a UTF-8 path")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn check_accepts_the_demo_rules() {
    let (code, out) = blaze(&["rules", "check", "blaze.rules"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(out.trim(), "blaze.rules: compiles");
}

#[test]
fn check_reports_errors_and_warnings_with_positions() {
    let broken = Scratch::new(
        "broken.rules",
        "rules_version = '2';\nservice cloud.firestore {\n  match /a/{b} {\n    allow read: if (;\n  }\n}\n",
    );
    let (code, out) = blaze(&["rules", "check", broken.path()]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains(&format!("{}:L4:", broken.path())), "{out}");
    assert!(out.trim_end().ends_with("does not compile"), "{out}");

    let warned = Scratch::new(
        "warned.rules",
        "rules_version = '2';\nservice cloud.firestore {\n  match /a/{b} {\n    allow read: if nosuch();\n  }\n}\n",
    );
    let (code, out) = blaze(&["rules", "check", warned.path()]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("L4:") && out.contains("nosuch") && out.contains("(warning)"),
        "{out}"
    );
}

#[test]
fn the_demo_rules_pass_their_example_tests() {
    let (code, out) = blaze(&[
        "rules",
        "test",
        "blaze.rules",
        "examples/rules/blaze.rules.test.json",
    ]);
    assert_eq!(code, Some(0), "{out}");
    assert!(!out.contains("FAIL"), "{out}");
    assert!(out.trim_end().ends_with(" passed, 0 failed"), "{out}");
}

#[test]
fn storage_rules_in_firebase_form_pass_their_example_tests() {
    let (code, out) = blaze(&["rules", "check", "examples/rules/storage.rules"]);
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = blaze(&[
        "rules",
        "test",
        "examples/rules/storage.rules",
        "examples/rules/storage.rules.test.json",
    ]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.trim_end().ends_with("18 passed, 0 failed"), "{out}");
}

#[test]
fn failures_are_explained_and_exit_1() {
    let tests = Scratch::new(
        "failing.json",
        r#"{"docs": {"todos/a1": {"owner": "alice"}},
            "cases": [
              {"name": "bob reads alice's todo", "as": {"uid": "bob"}, "get": "todos/a1", "expect": "allow"},
              {"name": "alice is refused her own todo", "as": {"uid": "alice"}, "get": "todos/a1",
               "expect": {"error": "permission_denied"}},
              {"name": "alice reads her todo", "as": {"uid": "alice"}, "get": "todos/a1", "expect": "allow"}
            ]}"#,
    );
    let (code, out) = blaze(&["rules", "test", "blaze.rules", tests.path()]);
    assert_eq!(code, Some(1), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "FAIL  bob reads alice's todo: expected allowed, got permission_denied"
    );
    // The statement evaluated, quoted from blaze.rules, and what it came to.
    let rules = std::fs::read_to_string(repo().join("blaze.rules")).expect("blaze.rules");
    let line = 1 + rules
        .lines()
        .position(|l| l.contains("allow read, delete:"))
        .expect("the todos' read statement");
    assert!(lines[1].contains("no allow statement held"), "{out}");
    assert!(
        lines[2].contains(&format!("L{line} (get): allow read, delete:")),
        "{out}"
    );
    assert_eq!(lines[3].trim(), "-> false");
    // A request allowed against expectations names the statement that held.
    let refused = lines
        .iter()
        .position(|l| {
            *l == "FAIL  alice is refused her own todo: expected permission_denied, got allowed"
        })
        .expect("the second case fails");
    assert_eq!(lines[refused + 1].trim(), "allowed; the rules evaluated:");
    assert!(
        lines[refused + 2].contains(&format!("L{line} (get): allow read, delete:")),
        "{out}"
    );
    assert_eq!(lines[refused + 3].trim(), "-> true (allows)");
    assert!(out.contains("ok    alice reads her todo"), "{out}");
    assert_eq!(lines.last(), Some(&"1 passed, 2 failed"));
}

#[test]
fn a_malformed_tests_file_is_a_usage_error() {
    let tests = Scratch::new(
        "malformed.json",
        r#"{"cases": [{"name": "x", "as": "root", "get": "a/b", "expect": "allow"}]}"#,
    );
    let (code, _) = blaze(&["rules", "test", "blaze.rules", tests.path()]);
    assert_eq!(code, Some(2));
}

/// A ruleset nested deep enough to overflow a wasm stack at compile time is
/// refused cleanly here (`scripts/run.sh` checks natively before serving).
#[test]
fn check_refuses_a_deeply_nested_ruleset_cleanly() {
    let depth = 20_000;
    let text = format!(
        "rules_version = '2';\nservice cloud.firestore {{\n  match /a/{{b}} {{\n    allow read: if {}true{};\n  }}\n}}\n",
        "(".repeat(depth),
        ")".repeat(depth)
    );
    let deep = Scratch::new("deep.rules", &text);
    let (code, out) = blaze(&["rules", "check", deep.path()]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.trim_end().ends_with("does not compile"), "{out}");
}
