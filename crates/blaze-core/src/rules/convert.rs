//! Blaze's values, paths, identities and queries as the rules evaluator
//! (`hidane-rules`) sees them. Every conversion between the two lives here.

use blaze_json::field_path::FieldPath;
use blaze_protocol::{CollectionPath, Direction, DocPath, Filter, Identity, Op, Query};
use hidane_rules::eval::{self, Auth, Document, FilterOp, Map, Timestamp, Value};
use serde_json::Value as Json;

/// The database id of every Blaze path: `/databases/(default)/documents/...`.
const DATABASE: &str = "(default)";

/// A JSON value as rules see it: integers that fit an `i64` are `int`,
/// every other number is `float`, objects keep their key order.
pub(crate) fn value(json: &Json) -> Value {
    match json {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Value::String(s.clone()),
        Json::Array(items) => Value::List(items.iter().map(value).collect()),
        Json::Object(map) => Value::Map(object(map)),
    }
}

/// A JSON object as a rules map.
pub(crate) fn object(map: &serde_json::Map<String, Json>) -> Map {
    map.iter().map(|(k, v)| (k.clone(), value(v))).collect()
}

/// The segments of a collection's path from `databases`.
pub(crate) fn collection_path(collection: &CollectionPath) -> Vec<String> {
    let mut path = vec![
        "databases".to_owned(),
        DATABASE.to_owned(),
        "documents".to_owned(),
    ];
    path.extend(collection.as_str().split('/').map(str::to_owned));
    path
}

/// The segments of a document's path from `databases`.
pub(crate) fn doc_path(collection: &CollectionPath, id: &str) -> Vec<String> {
    let mut path = collection_path(collection);
    path.push(id.to_owned());
    path
}

/// The Blaze document a rules path names: `None` for a path outside
/// `/databases/(default)/documents`, or one that is not a valid document path.
pub(crate) fn parse_doc_path(segments: &[String]) -> Option<DocPath> {
    match segments {
        [databases, database, documents, rest @ ..]
            if databases == "databases" && database == DATABASE && documents == "documents" =>
        {
            DocPath::parse(&rest.join("/")).ok()
        }
        _ => None,
    }
}

/// A stored document as `resource` (or `request.resource`) sees it.
pub(crate) fn document(
    collection: &CollectionPath,
    id: &str,
    data: &serde_json::Map<String, Json>,
) -> Document {
    Document {
        path: doc_path(collection, id),
        data: object(data),
    }
}

/// `request.auth`: `None` (null) for an anonymous caller, the `uid` and every
/// claim for a user. Admins never reach the rules.
pub(crate) fn auth(identity: &Identity) -> Option<Auth> {
    match identity {
        Identity::User { uid, claims } => Some(Auth {
            uid: Some(uid.clone()),
            token: object(claims),
        }),
        Identity::Anonymous | Identity::Admin => None,
    }
}

/// `request.time` for a request at `now_ms` (milliseconds since the Unix epoch).
pub(crate) fn time(now_ms: u64) -> Timestamp {
    let now_ms = i64::try_from(now_ms).unwrap_or(i64::MAX);
    Timestamp {
        seconds: now_ms.div_euclid(1000),
        nanos: i32::try_from(now_ms.rem_euclid(1000) * 1_000_000).unwrap_or(0),
    }
}

/// `request.query` and the filter a list is proved from. `limit_to_last` is a
/// `limit` (it bounds the results the same way); cursors constrain nothing,
/// as in Firestore.
pub(crate) fn query(query: &Query) -> eval::Query {
    let limit = query.limit.or(query.limit_to_last);
    eval::Query {
        limit: limit.map(|l| i64::try_from(l).unwrap_or(i64::MAX)),
        offset: None,
        order_by: query
            .order_by
            .iter()
            .map(|o| {
                let direction = match o.direction {
                    Direction::Asc => "ASC",
                    Direction::Desc => "DESC",
                };
                (field_text(&o.field), direction.to_owned())
            })
            .collect(),
        filter: query.filter.as_ref().map(|f| filter(&query.collection, f)),
        group: None,
        children: false,
        fields: None,
    }
}

/// A field path as `request.query.orderBy` names it: its segments joined with dots.
fn field_text(field: &str) -> String {
    FieldPath::parse(field).map_or_else(|_| field.to_owned(), |p| p.segments().join("."))
}

fn filter(collection: &CollectionPath, f: &Filter) -> eval::Filter {
    match f {
        Filter::And { and } => {
            eval::Filter::And(and.iter().map(|f| filter(collection, f)).collect())
        }
        Filter::Or { or } => eval::Filter::Or(or.iter().map(|f| filter(collection, f)).collect()),
        Filter::Field(field) => {
            let op = filter_op(field.op);
            let path = FieldPath::parse(&field.field).ok();
            match path {
                Some(p) if p.is_document_id() => eval::Filter::Name {
                    op,
                    value: name_value(collection, &field.value),
                },
                Some(p) => eval::Filter::Field {
                    field: p.segments().to_vec(),
                    op,
                    value: value(&field.value),
                },
                // A query with a malformed field path is refused before any rule runs.
                None => eval::Filter::Field {
                    field: vec![field.field.clone()],
                    op,
                    value: value(&field.value),
                },
            }
        }
    }
}

/// A `__name__` filter's operand (an id, or a list of ids) as references.
fn name_value(collection: &CollectionPath, json: &Json) -> Value {
    match json {
        Json::String(id) => Value::Path(doc_path(collection, id)),
        Json::Array(ids) => Value::List(ids.iter().map(|id| name_value(collection, id)).collect()),
        other => value(other),
    }
}

fn filter_op(op: Op) -> FilterOp {
    match op {
        Op::Eq => FilterOp::Eq,
        Op::Ne => FilterOp::Ne,
        Op::Lt => FilterOp::Lt,
        Op::Le => FilterOp::Le,
        Op::Gt => FilterOp::Gt,
        Op::Ge => FilterOp::Ge,
        Op::In => FilterOp::In,
        Op::NotIn => FilterOp::NotIn,
        Op::ArrayContains => FilterOp::ArrayContains,
        Op::ArrayContainsAny => FilterOp::ArrayContainsAny,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_keep_their_kind() {
        assert_eq!(value(&json!(3)), Value::Int(3));
        assert_eq!(value(&json!(3.5)), Value::Float(3.5));
        assert_eq!(value(&json!(u64::MAX)), Value::Float(u64::MAX as f64));
    }

    #[test]
    fn paths_round_trip_through_databases() {
        let rooms = CollectionPath::parse("rooms/r1/messages").unwrap();
        let path = doc_path(&rooms, "m1");
        assert_eq!(path[..3], ["databases", "(default)", "documents"]);
        assert_eq!(
            parse_doc_path(&path).unwrap().as_str(),
            "rooms/r1/messages/m1"
        );
        assert_eq!(
            parse_doc_path(&path[..6]),
            None,
            "a collection is not a document"
        );
    }

    #[test]
    fn time_splits_milliseconds() {
        assert_eq!(
            time(1_700_000_000_123),
            Timestamp {
                seconds: 1_700_000_000,
                nanos: 123_000_000
            }
        );
    }
}
