//! A denial explained for a person: each `allow` statement the rules
//! evaluated, its source line, and what its condition came to (the
//! evaluator's denial text, read back statement by statement); and, for a
//! request allowed, the statement that held (the core's explanation).

use blaze_core::{Explanation, Held};

/// One statement of a denial: what its condition came to, for which
/// method, at which line of the rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evaluated {
    /// `false`, or the evaluation error's text.
    pub why: String,
    /// `get`, `list`, `create`, `update` or `delete`.
    pub method: String,
    /// The condition's line in the rules file (1-based).
    pub line: usize,
}

/// The statements a denial's reason lists (`false for 'get' @ L12, …`), in
/// order; empty when it lists none ("No matching allow statements").
pub fn statements(reason: &str) -> Vec<Evaluated> {
    let mut found = Vec::new();
    let mut rest = reason.trim_start();
    while let Some(at) = rest.find(" for '") {
        let why = rest[..at].trim_start_matches(", ").to_owned();
        let after = &rest[at + " for '".len()..];
        let Some(quote) = after.find("' @ L") else {
            break;
        };
        let method = after[..quote].to_owned();
        let digits = &after[quote + "' @ L".len()..];
        let end = digits
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(digits.len());
        let Ok(line) = digits[..end].parse() else {
            break;
        };
        found.push(Evaluated { why, method, line });
        rest = &digits[end..];
    }
    found
}

/// Lines explaining a denial with `reason` under the rules `source`.
pub fn explain(reason: &str, source: &str) -> Vec<String> {
    let evaluated = statements(reason);
    if evaluated.is_empty() {
        return vec![format!("denied: {}", reason.trim())];
    }
    let lines: Vec<&str> = source.lines().collect();
    let mut out = vec!["no allow statement held; the rules evaluated:".to_owned()];
    for e in evaluated {
        let text = lines.get(e.line.wrapping_sub(1)).map_or("", |l| l.trim());
        out.push(format!("  L{} ({}): {text}", e.line, e.method));
        out.push(format!("      -> {}", e.why));
    }
    out
}

/// Lines saying which `allow` statements held, and what each other one
/// evaluated came to, for a request the rules allowed (`explained`: one
/// per read, or per write of a batch, with its number).
pub fn allowed(explained: &[Explanation], source: &str) -> Vec<String> {
    let lines: Vec<&str> = source.lines().collect();
    let mut out = Vec::new();
    for (index, explanation) in explained.iter().enumerate() {
        let which = if explained.len() > 1 {
            format!("write {index}: ")
        } else {
            String::new()
        };
        if explanation.evaluations.is_empty() {
            out.push(format!("{which}allowed without rules (an admin)"));
            continue;
        }
        out.push(format!("{which}allowed; the rules evaluated:"));
        for evaluated in &explanation.evaluations {
            for &(line, held) in &evaluated.statements {
                let text = usize::try_from(line)
                    .ok()
                    .and_then(|l| lines.get(l.wrapping_sub(1)))
                    .map_or("", |l| l.trim());
                let held = match held {
                    Held::True => "true (allows)",
                    Held::False => "false",
                    Held::Error => "error",
                };
                out.push(format!("  L{line} ({}): {text}", evaluated.method));
                out.push(format!("      -> {held}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_statement_of_a_denial() {
        let reason = "\nfalse for 'get' @ L3, Null value error. for 'get' @ L5, \
                      Property owner is undefined on object. for 'update' @ L12";
        let got = statements(reason);
        assert_eq!(got.len(), 3);
        assert_eq!(
            got[1],
            Evaluated {
                why: "Null value error.".into(),
                method: "get".into(),
                line: 5
            }
        );
        assert_eq!(got[2].method, "update");
        assert_eq!(got[2].line, 12);
        assert_eq!(got[0].why, "false");
    }

    #[test]
    fn quotes_the_source_line() {
        let source = "a\n  allow read: if false;\n";
        let lines = explain("\nfalse for 'get' @ L2", source);
        assert_eq!(lines[1], "  L2 (get): allow read: if false;");
        assert_eq!(lines[2], "      -> false");
        assert_eq!(
            explain("No matching allow statements", source),
            ["denied: No matching allow statements"]
        );
    }
}
