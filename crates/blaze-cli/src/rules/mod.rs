//! `blaze rules`: access rules checked and tested offline, against the core
//! itself (spec 14). `check` compiles a rules file; `test` runs a tests file
//! (the format of the conformance vectors `spec/vectors/rules/`) and
//! explains each failure.

pub mod file;
pub mod local;
mod report;

use std::path::Path;

use blaze_core::Rules;

use file::TestsFile;
use local::Outcome;

/// What a command printed, and whether it succeeded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The lines to print.
    pub lines: Vec<String>,
    /// Whether everything passed (exit status 0).
    pub ok: bool,
}

/// `blaze rules check`: compiles the rules at `path`; each warning and
/// error with its position (`L<line>:<column>`).
pub fn check(path: &Path) -> Result<Report, String> {
    let name = path.display();
    let source = std::fs::read_to_string(path).map_err(|e| format!("{name}: {e}"))?;
    Ok(match Rules::compile(&source) {
        Ok(rules) => {
            let mut lines: Vec<String> = rules
                .warnings()
                .iter()
                .map(|w| format!("{name}:{w} (warning)"))
                .collect();
            lines.push(format!("{name}: compiles"));
            Report { lines, ok: true }
        }
        Err(error) => {
            let mut lines: Vec<String> = error
                .0
                .lines()
                .skip_while(|l| !l.starts_with('L'))
                .map(|issue| format!("{name}:{issue}"))
                .collect();
            lines.push(format!("{name}: does not compile"));
            Report { lines, ok: false }
        }
    })
}

/// `blaze rules test`: runs every case of the tests file at `tests` against
/// the rules at `rules` (which replace any the tests file names).
pub fn test(rules: &Path, tests: &Path) -> Result<Report, String> {
    let file = TestsFile::read(tests)?;
    let name = rules.display();
    let source = std::fs::read_to_string(rules).map_err(|e| format!("{name}: {e}"))?;
    let compiled = Rules::compile(&source).map_err(|e| format!("{name}: {e}"))?;
    Ok(run_all(&compiled, &source, &file))
}

/// Runs every case of `file` against `rules` (compiled from `source`).
pub fn run_all(rules: &Rules, source: &str, file: &TestsFile) -> Report {
    let mut lines = Vec::new();
    let (mut passed, mut failed) = (0, 0);
    for case in &file.cases {
        match local::run(rules, file, case) {
            Ok(outcome) if outcome.satisfies(&case.expect) => {
                passed += 1;
                lines.push(format!("ok    {}", case.name));
            }
            Ok(outcome) => {
                failed += 1;
                lines.push(format!(
                    "FAIL  {}: expected {}, got {outcome}",
                    case.name, case.expect
                ));
                let explained = match &outcome {
                    Outcome::Failed {
                        detail: Some(reason),
                        code,
                        ..
                    } if code == "permission_denied" => report::explain(reason, source),
                    Outcome::Allowed => match local::explain(rules, file, case) {
                        Ok(explained) => report::allowed(&explained, source),
                        Err(e) => vec![format!("(not explained: {e})")],
                    },
                    Outcome::Failed { .. } => Vec::new(),
                };
                lines.extend(explained.into_iter().map(|l| format!("      {l}")));
            }
            Err(error) => {
                failed += 1;
                lines.push(format!("FAIL  {}: cannot run: {error}", case.name));
            }
        }
    }
    lines.push(format!("{passed} passed, {failed} failed"));
    Report {
        lines,
        ok: failed == 0,
    }
}
