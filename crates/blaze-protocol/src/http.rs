//! The bodies of HTTP answers (`spec/protocol.md` section 11) that are not
//! wire messages already: a commit answers [`CommitResult`](crate::CommitResult)
//! and a document read a [`DocSnapshot`].

use serde::{Deserialize, Serialize};

use crate::{DocSnapshot, ErrorBody};

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
    }
}
