//! Field paths: `a.b.c`, with backquotes around keys that are not plain
//! identifiers (`` a.`b.c`.d ``; inside backquotes `\` escapes the next
//! character). `__name__` alone is the document id.

use std::fmt;

use blaze_protocol::ErrorCode;
use serde_json::{Map, Value};

use crate::Rejection;

/// Most keys in a field path.
pub const MAX_SEGMENTS: usize = 32;
/// Longest field path text, in bytes.
pub const MAX_BYTES: usize = 1500;

/// A parsed field path: the keys from the outermost in.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldPath {
    segments: Vec<String>,
}

fn invalid(text: &str, why: &str) -> Rejection {
    Rejection::new(
        ErrorCode::InvalidFieldPath,
        format!("field path {text:?}: {why}"),
    )
}

fn is_plain(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl FieldPath {
    /// Parses a field path; `invalid_field_path` when malformed.
    pub fn parse(text: &str) -> Result<Self, Rejection> {
        if text.len() > MAX_BYTES {
            return Err(invalid(text, "too long"));
        }
        let mut segments = Vec::new();
        let mut chars = text.chars().peekable();
        loop {
            let mut key = String::new();
            if chars.peek() == Some(&'`') {
                chars.next();
                loop {
                    match chars.next() {
                        Some('`') => break,
                        Some('\\') => key.push(
                            chars
                                .next()
                                .ok_or_else(|| invalid(text, "dangling backslash"))?,
                        ),
                        Some(c) => key.push(c),
                        None => return Err(invalid(text, "unterminated backquote")),
                    }
                }
                if !matches!(chars.peek(), None | Some('.')) {
                    return Err(invalid(text, "text after a closing backquote"));
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == '.' {
                        break;
                    }
                    if c == '`' || c == '\\' {
                        return Err(invalid(text, "backquote or backslash inside a plain key"));
                    }
                    key.push(c);
                    chars.next();
                }
            }
            if key.is_empty() {
                return Err(invalid(text, "empty key"));
            }
            segments.push(key);
            if segments.len() > MAX_SEGMENTS {
                return Err(invalid(text, "too many keys"));
            }
            match chars.next() {
                None => return Ok(Self { segments }),
                Some(_) => continue, // the '.' separator
            }
        }
    }

    /// The path made of these keys, outermost first.
    pub fn from_segments(segments: Vec<String>) -> Self {
        Self { segments }
    }

    /// The keys, outermost first.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// True for `__name__`, the document id.
    pub fn is_document_id(&self) -> bool {
        self.segments.len() == 1 && self.segments[0] == "__name__"
    }

    /// The value at this path in `data`, walking nested objects (not arrays).
    pub fn get<'a>(&self, data: &'a Map<String, Value>) -> Option<&'a Value> {
        let (first, rest) = self.segments.split_first()?;
        rest.iter()
            .try_fold(data.get(first)?, |v, key| v.as_object()?.get(key))
    }

    /// The canonical text form, which parses back to the same path.
    pub fn canonical(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, key) in self.segments.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            if is_plain(key) {
                f.write_str(key)?;
            } else {
                f.write_str("`")?;
                for c in key.chars() {
                    if c == '`' || c == '\\' {
                        f.write_str("\\")?;
                    }
                    write!(f, "{c}")?;
                }
                f.write_str("`")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn check(text: &str, want: Option<&[&str]>) {
        let got = FieldPath::parse(text).ok();
        let got = got
            .as_ref()
            .map(|p| p.segments().iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(got.as_deref(), want, "{text:?}");
    }

    #[test]
    fn parses_plain_and_quoted_keys() {
        check("a", Some(&["a"]));
        check("a.b.c", Some(&["a", "b", "c"]));
        check("a.`b.c`.d", Some(&["a", "b.c", "d"]));
        check(r"`x\`y\\z`", Some(&["x`y\\z"]));
        check("é-1", Some(&["é-1"]));
        check("__name__", Some(&["__name__"]));
        for bad in [
            "", ".", "a.", ".a", "a..b", "`a", "`a`b", "a`b`", r"`a\", "``", "a\\b",
        ] {
            check(bad, None);
        }
        check(&vec!["k"; MAX_SEGMENTS + 1].join("."), None);
        assert!(FieldPath::parse("__name__").unwrap().is_document_id());
        assert!(!FieldPath::parse("`__name__`.x").unwrap().is_document_id());
    }

    #[test]
    fn accepts_more_valid_forms() {
        check("`a`.b", Some(&["a", "b"]));
        check("a.`b`", Some(&["a", "b"]));
        check("`a.b`", Some(&["a.b"]));
        check("` `", Some(&[" "]));
        check("a b.c", Some(&["a b", "c"]));
        check(r"`\a\.`", Some(&["a."]));
        check("`中文 🙂`.x", Some(&["中文 🙂", "x"]));
        check(r"`\\`", Some(&["\\"]));
        check("`__name__`", Some(&["__name__"]));
        assert!(FieldPath::parse("`__name__`").unwrap().is_document_id());
        assert!(!FieldPath::parse("__name__.x").unwrap().is_document_id());
        for bad in ["a.`b", "`a`.", "a.``", r"`a\`", "`a`.`", "a.b`c`", "a.`b`c"] {
            check(bad, None);
        }
    }

    #[test]
    fn enforces_limits_with_the_right_code() {
        check(
            &vec!["k"; MAX_SEGMENTS].join("."),
            Some(&["k"; MAX_SEGMENTS]),
        );
        check(&"a".repeat(MAX_BYTES), Some(&[&*"a".repeat(MAX_BYTES)]));
        check(&"a".repeat(MAX_BYTES + 1), None);
        check(&format!("`{}`", "é".repeat(MAX_BYTES / 2)), None);
        for bad in [
            "",
            "a..b",
            "`a",
            "`a`b",
            "a`b",
            r"`a\",
            &"a".repeat(MAX_BYTES + 1),
        ] {
            let err = FieldPath::parse(bad).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidFieldPath, "{bad:?}");
        }
    }

    #[test]
    fn canonical_quotes_only_non_identifiers() {
        let canon = |keys: &[&str]| {
            FieldPath::from_segments(keys.iter().map(|k| k.to_string()).collect()).canonical()
        };
        assert_eq!(canon(&["a", "_b9", "C"]), "a._b9.C");
        assert_eq!(canon(&["a", "b.c", "d"]), "a.`b.c`.d");
        assert_eq!(canon(&["x`y\\z"]), r"`x\`y\\z`");
        assert_eq!(canon(&["é-1", "9a", " "]), "`é-1`.`9a`.` `");
        assert_eq!(canon(&["__name__"]), "__name__");
        let path = FieldPath::parse("a.`b.c`").unwrap();
        assert_eq!(path.to_string(), path.canonical());
    }

    #[test]
    fn gets_nested_object_values_only() {
        let data = json!({"a": {"b": 1}, "l": [{"b": 2}], "d.e": 3});
        let data = data.as_object().unwrap();
        let get = |p: &str| FieldPath::parse(p).unwrap().get(data).cloned();
        assert_eq!(get("a.b"), Some(json!(1)));
        assert_eq!(get("l.b"), None);
        assert_eq!(get("`d.e`"), Some(json!(3)));
        assert_eq!(get("a.b.c"), None);
    }

    proptest! {
        #[test]
        fn canonical_form_parses_back(keys in prop::collection::vec("[a-z_.`\\\\ é0-9]{1,5}", 1..5)) {
            let path = FieldPath::from_segments(keys);
            prop_assert_eq!(FieldPath::parse(&path.canonical()).unwrap(), path);
        }

        #[test]
        fn canonical_form_of_any_keys_parses_back(
            keys in prop::collection::vec("[A-Za-z_.`\\\\ \u{0}\t\"'é中🙂0-9-]{1,8}", 1..=MAX_SEGMENTS),
        ) {
            let path = FieldPath::from_segments(keys);
            let text = path.canonical();
            prop_assert_eq!(FieldPath::parse(&text).unwrap(), path.clone());
            prop_assert_eq!(FieldPath::parse(&text).unwrap().canonical(), text);
        }
    }
}
