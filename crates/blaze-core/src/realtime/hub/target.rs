//! Listen targets: one shared, current view per distinct document or query
//! listened to.

use std::collections::BTreeSet;

use blaze_protocol::{encode, DocPath, ErrorCode, FieldFilter, Filter, Limits, Op, Query};
use serde_json::Value;

use blaze_json::Rejection;

use crate::query::CompiledQuery;
use crate::realtime::view::QueryView;

/// A document or query that one or more connections listen to.
pub(super) struct Target {
    /// The key that finds this target for a new listener of the same thing.
    pub key: String,
    /// The results, current as of the collection's latest commit.
    pub view: QueryView,
    /// The connections with at least one listener following this target.
    pub subscribers: BTreeSet<u64>,
}

/// What a `listen` names, checked: the target key and the query that computes it.
pub(super) struct ListenSpec {
    /// Equal for listens that must see the same results.
    pub key: String,
    /// The query (a document listen is the query `__name__ == id` on its collection).
    pub query: CompiledQuery,
}

impl ListenSpec {
    /// Checks a `listen`'s `doc` / `query` pair: exactly one must be present.
    pub(super) fn parse(
        doc: Option<&DocPath>,
        query: Option<&Query>,
        limits: &Limits,
    ) -> Result<Self, Rejection> {
        match (doc, query) {
            (Some(path), None) => {
                let mut by_id = Query::all(path.collection());
                by_id.filter = Some(Filter::Field(FieldFilter {
                    field: "__name__".into(),
                    op: Op::Eq,
                    value: Value::String(path.id().to_owned()),
                }));
                Ok(Self {
                    key: format!("doc {path}"),
                    query: CompiledQuery::compile(&by_id, limits)?,
                })
            }
            (None, Some(query)) => Ok(Self {
                // The wire form, re-encoded: equal queries give equal keys.
                key: format!("query {}", encode(query)),
                query: CompiledQuery::compile(query, limits)?,
            }),
            _ => Err(Rejection::new(
                ErrorCode::InvalidFrame,
                "listen needs exactly one of doc and query",
            )),
        }
    }

    /// The spec a [`ListenSpec::key`] was made from.
    pub(super) fn from_key(key: &str, limits: &Limits) -> Result<Self, Rejection> {
        let bad = || Rejection::new(ErrorCode::InvalidFrame, format!("not a listen key: {key}"));
        if let Some(path) = key.strip_prefix("doc ") {
            Self::parse(Some(&DocPath::parse(path)?), None, limits)
        } else if let Some(json) = key.strip_prefix("query ") {
            let query: Query = serde_json::from_str(json).map_err(|_| bad())?;
            Self::parse(None, Some(&query), limits)
        } else {
            Err(bad())
        }
    }
}
