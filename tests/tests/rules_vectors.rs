//! Runs every rules vector of `spec/vectors/rules/` against the core in
//! process: a hub enforcing the file's rules and holding its documents,
//! asked through the HTTP-facing API (`Caller`) or, for a listen, through
//! WebSocket frames. The runner is `blaze rules test`'s.

use blaze_cli::rules::file::{Request, TestsFile};
use blaze_cli::rules::run_all;
use blaze_core::Rules;
use blaze_tests::rules_files;

#[test]
fn rules_vectors() {
    let files = rules_files();
    assert!(!files.is_empty(), "no rules vectors");
    let mut failed = Vec::new();
    for path in &files {
        let file = TestsFile::read(path).unwrap_or_else(|e| panic!("{e}"));
        let folder = path.parent().expect("a folder");
        let source = file
            .rules_text(folder)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .unwrap_or_else(|| panic!("{}: a vector names its rules", path.display()));
        let rules = Rules::compile(&source).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let report = run_all(&rules, &source, &file);
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        println!("{name}:");
        for line in &report.lines {
            println!("  {line}");
        }
        if !report.ok {
            failed.push(name.into_owned());
        }
    }
    assert!(failed.is_empty(), "rules vectors failed in {failed:?}");
}

/// The vectors cover every kind of request, allowed and denied.
#[test]
fn rules_vectors_cover_every_request_kind() {
    let mut seen = std::collections::BTreeSet::new();
    for path in rules_files() {
        let file = TestsFile::read(&path).unwrap_or_else(|e| panic!("{e}"));
        for case in &file.cases {
            let kind = match case.request {
                Request::Get(_) => "get",
                Request::Query(_) => "query",
                Request::Count(_) => "count",
                Request::Commit(_) => "commit",
                Request::Listen(_) => "listen",
            };
            seen.insert((kind, case.expect == blaze_cli::rules::file::Expect::Allow));
        }
    }
    for kind in ["get", "query", "count", "commit", "listen"] {
        for allowed in [true, false] {
            assert!(
                seen.contains(&(kind, allowed)),
                "no {kind} case with allowed = {allowed}"
            );
        }
    }
}
