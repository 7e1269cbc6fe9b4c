//! The spec and the code agree: every error code of `ErrorCode` is in
//! `spec/errors.md` with the same HTTP status, and every code is exercised by
//! a conformance vector or has a stated reason why no vector can.

use blaze_protocol::ErrorCode;
use blaze_tests::{load_cases, session_files, vectors_dir};

/// Codes no file of `spec/vectors/` can exercise, and why.
const NOT_IN_VECTORS: [(ErrorCode, &str); 10] = [
    (
        ErrorCode::UnsupportedMediaType,
        "HTTP only: a Content-Type header, tested against the worker",
    ),
    (
        ErrorCode::MethodNotAllowed,
        "HTTP only: a request method, tested against the worker",
    ),
    (
        ErrorCode::Internal,
        "a storage failure, which no input can cause",
    ),
    (
        ErrorCode::ResourceExhausted,
        "the memory budget is the server's configuration (HubConfig), not a limit in the \
         vectors' config, and its accounting is an estimate; tested in blaze-core's hub tests \
         and tests/tests/hostile_listeners_e2e.rs",
    ),
    (
        ErrorCode::LengthRequired,
        "HTTP files only: an upload's headers, tested against the worker (files_e2e)",
    ),
    (
        ErrorCode::FileTooLarge,
        "HTTP files only: an upload's headers, tested against the worker (files_e2e)",
    ),
    (
        ErrorCode::RangeNotSatisfiable,
        "HTTP files only: a download's Range header, tested against the worker (files_e2e)",
    ),
    (
        ErrorCode::UploadIncomplete,
        "HTTP files only: a body cut short on the wire, tested against the worker (files_e2e)",
    ),
    (
        ErrorCode::InvalidPart,
        "HTTP files only: a resumable upload's part of the wrong length, tested against the worker (files_e2e)",
    ),
    (
        ErrorCode::PermissionDenied,
        "access rules (issue 15) return it; no server does yet",
    ),
];

#[test]
fn errors_md_lists_every_code_with_its_status() {
    let text = std::fs::read_to_string(vectors_dir().join("../errors.md")).unwrap();
    let rows: Vec<(String, u16)> = text
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let code = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            Some((code.to_owned(), cells.get(2)?.parse().ok()?))
        })
        .collect();
    let want: Vec<(String, u16)> = ErrorCode::ALL
        .iter()
        .map(|c| (c.as_str().to_owned(), c.http_status()))
        .collect();
    assert_eq!(
        rows, want,
        "spec/errors.md must list ErrorCode::ALL, in order, with each code's status"
    );
}

#[test]
fn every_code_is_exercised_by_a_vector_or_excused() {
    let mut seen = std::collections::HashSet::new();
    for file in [
        "codec.json",
        "patch.json",
        "query.json",
        "write.json",
        "jwt.json",
    ] {
        for case in load_cases(file) {
            if let Some(code) = case["expect"]["error"].as_str() {
                seen.insert(code.to_owned());
            }
        }
    }
    for file in session_files() {
        for case in load_cases(&file) {
            for step in case["steps"].as_array().into_iter().flatten() {
                for out in step["out"].as_array().into_iter().flatten() {
                    if let Some(code) = out["frame"]["error"]["code"].as_str() {
                        seen.insert(code.to_owned());
                    }
                }
            }
        }
    }
    for code in ErrorCode::ALL {
        let excused = NOT_IN_VECTORS.iter().any(|(c, _)| *c == code);
        assert!(
            seen.contains(code.as_str()) != excused,
            "{code}: in vectors = {}, excused = {excused}",
            seen.contains(code.as_str())
        );
    }
}
