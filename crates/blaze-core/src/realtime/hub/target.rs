//! Listen targets: one shared, current view per distinct document or query
//! listened to.

use std::sync::Arc;

use blaze_protocol::{encode, DocPath, ErrorCode, FieldFilter, Filter, Limits, Op, Query};
use serde_json::Value;

use blaze_json::field_path::FieldPath;
use blaze_json::Rejection;

use crate::query::CompiledQuery;
use crate::realtime::view::QueryView;

/// A document or query that one or more connections listen to.
pub(super) struct Target {
    /// The key that finds this target for a new listener of the same thing
    /// (shared with the hub's key map).
    pub key: Arc<str>,
    /// The results, current as of the collection's latest commit.
    pub view: QueryView,
    /// The connections with at least one listener following this target.
    pub subscribers: Subscribers,
}

/// A target's subscribed connections, in ascending order: most targets
/// have one, so a sorted vector is smaller than a tree and as quick.
#[derive(Default)]
pub(super) struct Subscribers(Vec<u64>);

impl Subscribers {
    /// Adds `conn` (once).
    pub(super) fn insert(&mut self, conn: u64) {
        if let Err(i) = self.0.binary_search(&conn) {
            self.0.insert(i, conn);
        }
    }

    /// Removes `conn` if present.
    pub(super) fn remove(&mut self, conn: u64) {
        if let Ok(i) = self.0.binary_search(&conn) {
            self.0.remove(i);
        }
        if self.0.len() < self.0.capacity() / 4 {
            self.0.shrink_to_fit();
        }
    }

    /// Whether no connection is subscribed.
    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many connections are subscribed.
    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    /// The subscribed connections, in ascending order.
    pub(super) fn iter(&self) -> std::slice::Iter<'_, u64> {
        self.0.iter()
    }
}

impl<'a> IntoIterator for &'a Subscribers {
    type Item = &'a u64;
    type IntoIter = std::slice::Iter<'a, u64>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl Target {
    /// The estimated bytes of the target itself, without its results'
    /// bodies: its key (shared with the hub's key map), query, result ids
    /// and subscriber set.
    pub(super) fn own_bytes(&self) -> usize {
        const OVERHEAD: usize = 512;
        OVERHEAD
            + self.key.len()
            + self.view.docs().len() * std::mem::size_of::<usize>()
            + self.subscribers.len() * std::mem::size_of::<u64>()
    }
}

/// What a `listen` names, checked: the target key and the query that computes it.
pub(super) struct ListenSpec {
    /// Equal for listens that must see the same results.
    pub key: String,
    /// The query (a document listen is the query `__name__ == id` on its collection).
    pub query: CompiledQuery,
    /// The document a document listen names.
    pub doc: Option<DocPath>,
    /// The query as the client sent it (for the access rules).
    pub source: Query,
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
                    doc: Some(path.clone()),
                    source: by_id,
                })
            }
            (None, Some(query)) => {
                let compiled = CompiledQuery::compile(query, limits)?;
                // The wire form with canonical field paths, re-encoded: equal
                // queries give equal keys (`n` and `` `n` `` are one field, spec 9.4).
                let key = format!("query {}", encode(&canonical_fields(query)?));
                Ok(Self {
                    key,
                    query: compiled,
                    doc: None,
                    source: query.clone(),
                })
            }
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

/// `query` with every field path (in filters and `order_by`) written in its canonical text.
fn canonical_fields(query: &Query) -> Result<Query, Rejection> {
    fn filter(f: &Filter) -> Result<Filter, Rejection> {
        Ok(match f {
            Filter::And { and } => Filter::And {
                and: and.iter().map(filter).collect::<Result<_, _>>()?,
            },
            Filter::Or { or } => Filter::Or {
                or: or.iter().map(filter).collect::<Result<_, _>>()?,
            },
            Filter::Field(f) => Filter::Field(FieldFilter {
                field: FieldPath::parse(&f.field)?.canonical(),
                ..f.clone()
            }),
        })
    }
    let mut out = query.clone();
    out.filter = query.filter.as_ref().map(filter).transpose()?;
    for key in &mut out.order_by {
        key.field = FieldPath::parse(&key.field)?.canonical();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use crate::{Database, Hub, HubConfig, Limits, MemoryStorage};

    fn listen(hub: &mut Hub<MemoryStorage>, rid: u64, field: &str, order: &str) {
        let frame = format!(
            r#"{{"type":"listen","rid":{rid},"query":{{"collection":"c","where":{{"field":"{field}","op":"==","value":1}},"order_by":[{{"field":"{order}"}}]}}}}"#
        );
        hub.handle_frame(1, &frame, 0);
    }

    #[test]
    fn field_paths_that_name_one_field_share_one_target() {
        let db = Database::new(MemoryStorage::new(), Limits::default());
        let mut hub = Hub::new(db, HubConfig::default());
        hub.handle_open(1, 0);
        hub.handle_frame(1, r#"{"type":"hello","protocol":1}"#, 0);
        listen(&mut hub, 1, "n", "a.b");
        listen(&mut hub, 2, "`n`", "`a`.`b`");
        assert_eq!((hub.stats().listeners, hub.stats().targets), (2, 1));
        // `a.b` is a path of two keys, `` `a.b` `` one key with a dot: two fields.
        listen(&mut hub, 3, "n", "`a.b`");
        assert_eq!((hub.stats().listeners, hub.stats().targets), (3, 2));
    }
}
