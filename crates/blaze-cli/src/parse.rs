//! Parsing the small languages of the arguments: values, filters, sort keys,
//! field assignments and JSON arguments.

use blaze_client::Direction;
use serde_json::Value;

use crate::Failure;

/// The spec's filter operators (spec 9.3).
pub const OPERATORS: [&str; 10] = [
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "in",
    "not-in",
    "array-contains",
    "array-contains-any",
];

/// A value argument: JSON when it parses as JSON, else the text as a string
/// (so `alice` and `"alice"` both mean the string).
pub fn value(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

/// A JSON argument that must parse; `what` names it in the error.
pub fn json(what: &str, text: &str) -> Result<Value, Failure> {
    serde_json::from_str(text).map_err(|e| Failure::Usage(format!("{what} is not valid JSON: {e}")))
}

/// `FIELD OP VALUE`: a field path (backquoted segments may hold spaces), one
/// of [`OPERATORS`], and a [`value`].
pub fn filter(text: &str) -> Result<(String, String, Value), Failure> {
    let text = text.trim_start();
    let field_end = token_end(text);
    let (field, rest) = text.split_at(field_end);
    let rest = rest.trim_start();
    let (op, value_text) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let value_text = value_text.trim();
    if field.is_empty() || op.is_empty() || value_text.is_empty() {
        return Err(Failure::Usage(format!(
            "--where {text:?}: expected 'FIELD OP VALUE', such as 'age >= 21'"
        )));
    }
    if !OPERATORS.contains(&op) {
        return Err(Failure::Usage(format!(
            "--where {text:?}: unknown operator {op:?}; use one of {}",
            OPERATORS.join(" ")
        )));
    }
    Ok((field.to_owned(), op.to_owned(), value(value_text)))
}

/// Where the first token ends: at the first whitespace outside backquotes.
fn token_end(text: &str) -> usize {
    let mut quoted = false;
    for (i, c) in text.char_indices() {
        match c {
            '`' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => return i,
            _ => {}
        }
    }
    text.len()
}

/// `FIELD`, `FIELD:asc` or `FIELD:desc`.
pub fn order(text: &str) -> Result<(String, Direction), Failure> {
    let (field, direction) = match text.rsplit_once(':') {
        Some((field, "asc")) => (field, Direction::Asc),
        Some((field, "desc")) => (field, Direction::Desc),
        _ => (text, Direction::Asc),
    };
    if field.is_empty() {
        return Err(Failure::Usage(format!(
            "--order-by {text:?}: expected FIELD, FIELD:asc or FIELD:desc"
        )));
    }
    Ok((field.to_owned(), direction))
}

/// `a.b=VALUE`: a field path and a [`value`].
pub fn assignment(text: &str) -> Result<(String, Value), Failure> {
    match text.split_once('=') {
        Some((field, value_text)) if !field.is_empty() => Ok((field.to_owned(), value(value_text))),
        _ => Err(Failure::Usage(format!(
            "--field {text:?}: expected FIELD=VALUE, such as 'profile.age=42'"
        ))),
    }
}

/// A cursor argument: a non-empty JSON array.
pub fn cursor(flag: &str, text: &str) -> Result<Vec<Value>, Failure> {
    match json(flag, text)? {
        Value::Array(values) if !values.is_empty() => Ok(values),
        _ => Err(Failure::Usage(format!(
            "{flag} {text:?}: expected a non-empty JSON array, such as '[10, \"d7\"]'"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check_filter(input: &str, expected: Option<(&str, &str, Value)>) {
        let got = filter(input).ok();
        let expected = expected.map(|(f, o, v)| (f.to_owned(), o.to_owned(), v));
        assert_eq!(got, expected, "{input:?}");
    }

    #[test]
    fn filters() {
        check_filter("age >= 21", Some(("age", ">=", json!(21))));
        check_filter("  name == alice ", Some(("name", "==", json!("alice"))));
        check_filter("name == \"21\"", Some(("name", "==", json!("21"))));
        check_filter(
            "title == hello world",
            Some(("title", "==", json!("hello world"))),
        );
        check_filter(
            "tags array-contains-any [\"a\", \"b\"]",
            Some(("tags", "array-contains-any", json!(["a", "b"]))),
        );
        check_filter("`a b`.c != null", Some(("`a b`.c", "!=", Value::Null)));
        check_filter("age", None);
        check_filter("age >=", None);
        check_filter("age => 3", None);
        check_filter("", None);
    }

    #[test]
    fn orders() {
        assert_eq!(order("ts").ok(), Some(("ts".into(), Direction::Asc)));
        assert_eq!(order("ts:desc").ok(), Some(("ts".into(), Direction::Desc)));
        assert_eq!(order("a:b").ok(), Some(("a:b".into(), Direction::Asc)));
        assert!(order(":desc").is_err());
    }

    #[test]
    fn assignments_and_cursors() {
        assert_eq!(assignment("a.b=3").ok(), Some(("a.b".into(), json!(3))));
        assert_eq!(assignment("a=x=y").ok(), Some(("a".into(), json!("x=y"))));
        assert_eq!(assignment("a=null").ok(), Some(("a".into(), Value::Null)));
        assert!(assignment("=3").is_err());
        assert!(assignment("a").is_err());
        assert_eq!(
            cursor("--start-at", "[1, \"x\"]").ok(),
            Some(vec![json!(1), json!("x")])
        );
        assert!(cursor("--start-at", "[]").is_err());
        assert!(cursor("--start-at", "3").is_err());
    }
}
