//! The bodies of HTTP answers (`spec/protocol.md` section 11) that are not
//! wire messages already: a commit answers [`CommitResult`](crate::CommitResult)
//! and a document read a [`DocSnapshot`].

use serde::{Deserialize, Serialize};

use crate::{check_id, DocSnapshot, ErrorBody};

/// `GET /v1/health`: `{"ok": true}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthAnswer {
    /// Always true: the Worker answered.
    pub ok: bool,
}

/// `POST /v1/query`: the results and the sequence number they were read at.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueryAnswer {
    /// The collection's sequence number the results reflect.
    pub seq: u64,
    /// The results, in query order.
    pub docs: Vec<DocSnapshot>,
}

/// `POST /v1/count`: how many results the query has.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountAnswer {
    /// The collection's sequence number the count reflects.
    pub seq: u64,
    /// The number of results.
    pub count: u64,
}

/// `GET /v1/files/{folder}/?prefixes`: one page of a folder's subfolders
/// (spec 15.2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrefixesAnswer {
    /// The subfolders' names (one path segment each), in key order.
    pub prefixes: Vec<String>,
    /// Where the next page starts (a position, [`PrefixesAnswer::is_position`]),
    /// or `null` after the last page.
    pub after: Option<String>,
}

impl PrefixesAnswer {
    /// Whether `text` is a position a page answers: a segment (a file's
    /// key) or a segment followed by `/` (a subfolder).
    pub fn is_position(text: &str) -> bool {
        check_id(text.strip_suffix('/').unwrap_or(text)).is_ok()
    }

    /// Whether every name is one segment and the position is one.
    pub fn is_valid(&self) -> bool {
        self.prefixes.iter().all(|name| check_id(name).is_ok())
            && self.after.as_deref().is_none_or(Self::is_position)
    }
}

/// Every HTTP error answer: `{"error": {"code", "message", "write_index"?}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorAnswer {
    /// The error object, as in an `error` frame.
    pub error: ErrorBody,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;
    use serde_json::json;

    #[test]
    fn bodies_of_section_11() {
        let check = |got: serde_json::Value, want: serde_json::Value| assert_eq!(got, want);
        check(json!(HealthAnswer { ok: true }), json!({"ok": true}));
        check(
            json!(CountAnswer { seq: 3, count: 2 }),
            json!({"seq": 3, "count": 2}),
        );
        check(
            json!(QueryAnswer {
                seq: 3,
                docs: vec![]
            }),
            json!({"seq": 3, "docs": []}),
        );
        let error = ErrorAnswer {
            error: ErrorBody {
                code: ErrorCode::AlreadyExists,
                message: "a exists".into(),
                write_index: Some(1),
            },
        };
        let text = serde_json::to_string(&error).unwrap();
        assert_eq!(
            text,
            r#"{"error":{"code":"already_exists","message":"a exists","write_index":1}}"#
        );
        assert_eq!(serde_json::from_str::<ErrorAnswer>(&text).unwrap(), error);
        check(
            json!(PrefixesAnswer {
                prefixes: vec!["a".into()],
                after: None
            }),
            json!({"prefixes": ["a"], "after": null}),
        );
    }

    #[test]
    fn prefix_positions() {
        let check = |text: &str, want: bool| {
            assert_eq!(PrefixesAnswer::is_position(text), want, "{text:?}")
        };
        check("b", true);
        check("b/", true);
        check("0b6f1c2e-5d1f-4c53-9a1e-2f7d6c1b9a00", true);
        check("", false);
        check("/", false);
        check("b//", false);
        check("a/b", false);
        check("../", false);
        check("__x__/", false);
        // A segment's bound holds for positions too (spec 2.1: 128 bytes).
        check(&"a".repeat(128), true);
        check(&format!("{}/", "a".repeat(128)), true);
        check(&"a".repeat(129), false);
        check("a b", false);
    }

    #[test]
    fn a_prefixes_answer_is_valid_only_with_segments_and_a_position() {
        let check = |prefixes: &[&str], after: Option<&str>, want: bool| {
            let answer = PrefixesAnswer {
                prefixes: prefixes.iter().map(|p| p.to_string()).collect(),
                after: after.map(str::to_owned),
            };
            assert_eq!(answer.is_valid(), want, "{answer:?}");
        };
        check(&[], None, true);
        check(&["a", "b"], Some("b/"), true);
        check(&["a/b"], None, false);
        check(&[".."], None, false);
        check(&["a"], Some("a//"), false);
    }
}
