//! Queries: filters, order, limits and cursors, evaluated on the server.

use blaze_protocol::{
    CollectionPath, Direction, FieldFilter, Filter, Op, OrderBy, PathError, Query, ServerMessage,
};
use serde::Serialize;
use serde_json::Value;

use crate::listener::Listener;
use crate::refs::unexpected;
use crate::results::Results;
use crate::session::{ListenTarget, Request};
use crate::snapshot::QuerySnapshot;
use crate::{Blaze, Error};

/// A query over one collection, built step by step. Invalid input (an
/// unknown operator, a value that does not serialize) is reported by the
/// call that runs the query.
///
/// ```no_run
/// # async fn demo(db: blaze_client::Blaze) -> Result<(), blaze_client::Error> {
/// use blaze_client::Direction;
/// let open = db.collection("todos")
///     .where_("done", "==", false)
///     .order_by("due", Direction::Asc)
///     .limit(20)
///     .get()
///     .await?;
/// for todo in &open.docs { println!("{} {:?}", todo.id(), todo.data); }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct QueryRef {
    db: Blaze,
    /// The query built so far, or why its collection path is invalid.
    query: Result<Query, PathError>,
    error: Option<String>,
}

impl QueryRef {
    pub(crate) fn new(db: Blaze, collection: &str) -> Self {
        Self {
            db,
            query: CollectionPath::parse(collection).map(Query::all),
            error: None,
        }
    }

    /// The wire query this builds; `None` when the collection path is invalid.
    pub fn as_query(&self) -> Option<&Query> {
        self.query.as_ref().ok()
    }

    /// The same reference with `edit` applied to its query (when its path is valid).
    fn edit(mut self, edit: impl FnOnce(&mut Query)) -> Self {
        if let Ok(query) = &mut self.query {
            edit(query);
        }
        self
    }

    /// Adds `field op value` (ANDed with earlier filters). `op` is one of the
    /// spec's operators: `==`, `!=`, `<`, `<=`, `>`, `>=`, `in`, `not-in`,
    /// `array-contains`, `array-contains-any`.
    pub fn where_<V: Serialize>(mut self, field: &str, op: &str, value: V) -> Self {
        let parsed = serde_json::from_value::<Op>(Value::String(op.to_owned()));
        match (parsed, serde_json::to_value(value)) {
            (Ok(op), Ok(value)) => self.filter(self::field(field).op(op, value)),
            (Err(_), _) => {
                self.error
                    .get_or_insert(format!("unknown filter operator {op:?}"));
                self
            }
            (_, Err(e)) => {
                self.error.get_or_insert(e.to_string());
                self
            }
        }
    }

    /// Adds a filter (ANDed with earlier filters).
    pub fn filter(self, filter: Filter) -> Self {
        self.edit(|query| {
            query.filter = Some(match query.filter.take() {
                None => filter,
                Some(Filter::And { mut and }) => {
                    and.push(filter);
                    Filter::And { and }
                }
                Some(earlier) => Filter::And {
                    and: vec![earlier, filter],
                },
            });
        })
    }

    /// Adds a sort key (after earlier ones); ties are broken by document id.
    pub fn order_by(self, field: &str, direction: Direction) -> Self {
        self.edit(|query| {
            query.order_by.push(OrderBy {
                field: field.to_owned(),
                direction,
            })
        })
    }

    /// Keeps only the first `n` results.
    pub fn limit(self, n: u64) -> Self {
        self.edit(|query| query.limit = Some(n))
    }

    /// Keeps only the last `n` results (still in query order).
    pub fn limit_to_last(self, n: u64) -> Self {
        self.edit(|query| query.limit_to_last = Some(n))
    }

    /// Starts at the position of these `order_by` values (inclusive).
    pub fn start_at(self, values: Vec<Value>) -> Self {
        self.edit(|query| query.start_at = Some(values))
    }

    /// Starts after the position of these `order_by` values.
    pub fn start_after(self, values: Vec<Value>) -> Self {
        self.edit(|query| query.start_after = Some(values))
    }

    /// Ends at the position of these `order_by` values (inclusive).
    pub fn end_at(self, values: Vec<Value>) -> Self {
        self.edit(|query| query.end_at = Some(values))
    }

    /// Ends before the position of these `order_by` values.
    pub fn end_before(self, values: Vec<Value>) -> Self {
        self.edit(|query| query.end_before = Some(values))
    }

    fn checked(&self) -> Result<&Query, Error> {
        if let Some(message) = &self.error {
            return Err(Error::rejected(
                blaze_protocol::ErrorCode::InvalidQuery,
                message.clone(),
            ));
        }
        self.query.as_ref().map_err(|e| e.clone().into())
    }

    /// Runs the query once.
    pub async fn get(&self) -> Result<QuerySnapshot, Error> {
        let query = self.checked()?;
        let request = Request::Query(Box::new(query.clone()));
        match self.db.request(&query.collection, request).await? {
            ServerMessage::QueryResult { seq, docs, .. } => {
                let mut results = Results::default();
                let changes = results.replace(seq, docs);
                Ok(results.query_snapshot(changes, false))
            }
            other => Err(unexpected(&other)),
        }
    }

    /// Counts the query's results on the server.
    pub async fn count(&self) -> Result<u64, Error> {
        let query = self.checked()?;
        let request = Request::Count(Box::new(query.clone()));
        match self.db.request(&query.collection, request).await? {
            ServerMessage::CountResult { count, .. } => Ok(count),
            other => Err(unexpected(&other)),
        }
    }

    /// Listens to the query: a stream of [`QuerySnapshot`]s, the first one
    /// at once, then one per commit that changes the results.
    pub fn listen(&self) -> Listener<QuerySnapshot> {
        match self.checked() {
            Ok(query) => {
                let target = ListenTarget::Query(Box::new(query.clone()));
                Listener::start(&self.db, &query.collection, target, String::new())
            }
            Err(e) => Listener::failed(e),
        }
    }
}

/// A field to compare, for building filters: `field("age").ge(21)`.
pub fn field(path: &str) -> FieldRef {
    FieldRef(path.to_owned())
}

/// A filter that matches when every one of `filters` does.
pub fn and(filters: impl IntoIterator<Item = Filter>) -> Filter {
    Filter::And {
        and: filters.into_iter().collect(),
    }
}

/// A filter that matches when at least one of `filters` does.
pub fn or(filters: impl IntoIterator<Item = Filter>) -> Filter {
    Filter::Or {
        or: filters.into_iter().collect(),
    }
}

/// A field path, waiting for its comparison. Made by [`field`].
///
/// ```
/// use blaze_client::{and, field, or};
/// use serde_json::json;
/// let filter = or([field("status").eq("open"), and([field("age").ge(21), field("tags").array_contains("vip")])]);
/// assert_eq!(serde_json::to_value(&filter).unwrap(), json!({"or": [
///     {"field": "status", "op": "==", "value": "open"},
///     {"and": [{"field": "age", "op": ">=", "value": 21}, {"field": "tags", "op": "array-contains", "value": "vip"}]}
/// ]}));
/// ```
#[derive(Clone, Debug)]
pub struct FieldRef(String);

macro_rules! comparisons {
    ($($(#[$doc:meta])* $name:ident => $op:ident,)*) => {
        impl FieldRef {
            $($(#[$doc])* pub fn $name(&self, value: impl Into<Value>) -> Filter {
                self.op(Op::$op, value.into())
            })*
        }
    };
}

comparisons! {
    /// `field == value`.
    eq => Eq,
    /// `field != value` (the field must exist and not be `null`).
    ne => Ne,
    /// `field < value`.
    lt => Lt,
    /// `field <= value`.
    le => Le,
    /// `field > value`.
    gt => Gt,
    /// `field >= value`.
    ge => Ge,
    /// `field` equals one of the values (a JSON array).
    in_ => In,
    /// `field` equals none of the values (a JSON array).
    not_in => NotIn,
    /// `field` is an array containing `value`.
    array_contains => ArrayContains,
    /// `field` is an array containing one of the values (a JSON array).
    array_contains_any => ArrayContainsAny,
}

impl FieldRef {
    /// `field op value`, for an operator chosen at run time.
    pub fn op(&self, op: Op, value: Value) -> Filter {
        Filter::Field(FieldFilter {
            field: self.0.clone(),
            op,
            value,
        })
    }
}
