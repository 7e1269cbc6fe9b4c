//! Turning a wire [`Query`] into a checked [`CompiledQuery`].

use blaze_protocol::{CollectionPath, Cursor, Direction, ErrorCode, Filter, Limits, Op, Query};
use serde_json::Value;

use super::filter::CompiledFilter;
use blaze_json::field_path::FieldPath;
use blaze_json::Rejection;

use crate::index::IndexBounds;

/// How many results to keep, from which end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// The first n results.
    First(usize),
    /// The last n results (returned in query order).
    Last(usize),
}

/// A query whose paths, operands, cursors and limits have been checked.
#[derive(Clone, Debug, PartialEq)]
pub struct CompiledQuery {
    /// The collection queried.
    pub collection: CollectionPath,
    /// The filter, if any.
    pub filter: Option<CompiledFilter>,
    /// The explicit sort keys.
    pub order: Vec<(FieldPath, Direction)>,
    /// The direction of the implicit final sort by document id: that of the last key.
    pub id_direction: Direction,
    /// The limit, if any.
    pub limit: Option<Limit>,
    /// The start cursor.
    pub start: Option<Cursor>,
    /// The end cursor.
    pub end: Option<Cursor>,
    /// How far the indexes it reads go.
    pub index_bounds: IndexBounds,
}

fn invalid(msg: impl Into<String>) -> Rejection {
    Rejection::new(ErrorCode::InvalidQuery, msg)
}

impl CompiledQuery {
    /// Checks `query` against the rules of `spec/protocol.md` and `limits`.
    pub fn compile(query: &Query, limits: &Limits) -> Result<Self, Rejection> {
        let collection = query.collection.clone();
        let filter = match &query.filter {
            Some(f) => {
                let compiled = compile_filter(f, limits)?;
                let disjunctions = compiled.disjunction_count();
                if disjunctions > limits.max_disjunctions as u64 {
                    let msg = format!(
                        "{disjunctions} disjunctions, limit {}",
                        limits.max_disjunctions
                    );
                    return Err(Rejection::new(ErrorCode::TooManyDisjunctions, msg));
                }
                Some(compiled)
            }
            None => None,
        };
        let mut order: Vec<(FieldPath, Direction)> = Vec::new();
        for key in &query.order_by {
            let field = FieldPath::parse(&key.field)?;
            if order.iter().any(|(f, _)| *f == field) {
                return Err(invalid(format!("order_by names {} twice", key.field)));
            }
            order.push((field, key.direction));
        }
        let id_direction = order.last().map_or(Direction::Asc, |(_, d)| *d);
        let limit = match (query.limit, query.limit_to_last) {
            (Some(_), Some(_)) => return Err(invalid("limit and limit_to_last together")),
            (Some(n), None) => Some(Limit::First(positive(n)?)),
            (None, Some(n)) => Some(Limit::Last(positive(n)?)),
            (None, None) => None,
        };
        let start = cursor(&order, &query.start_at, &query.start_after, "start")?;
        let end = cursor(&order, &query.end_at, &query.end_before, "end")?;
        Ok(Self {
            collection,
            filter,
            order,
            id_direction,
            limit,
            start,
            end,
            index_bounds: IndexBounds::of(limits),
        })
    }
}

fn positive(n: u64) -> Result<usize, Rejection> {
    match usize::try_from(n) {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(invalid("limits must be at least 1")),
    }
}

fn cursor(
    order: &[(FieldPath, Direction)],
    at: &Option<Vec<Value>>,
    beside: &Option<Vec<Value>>,
    which: &str,
) -> Result<Option<Cursor>, Rejection> {
    let (values, inclusive) = match (at, beside) {
        (Some(_), Some(_)) => return Err(invalid(format!("two {which} cursors"))),
        (Some(v), None) => (v, true),
        (None, Some(v)) => (v, false),
        (None, None) => return Ok(None),
    };
    if values.is_empty() || values.len() > order.len() + 1 {
        return Err(invalid(format!(
            "{which} cursor needs 1 to {} values",
            order.len() + 1
        )));
    }
    for (i, value) in values.iter().enumerate() {
        let is_id = order.get(i).is_none_or(|(f, _)| f.is_document_id());
        if is_id && !value.is_string() {
            return Err(invalid(format!(
                "{which} cursor value {i} must be a document id string"
            )));
        }
    }
    Ok(Some(Cursor {
        values: values.clone(),
        inclusive,
    }))
}

fn compile_filter(filter: &Filter, limits: &Limits) -> Result<CompiledFilter, Rejection> {
    let list = |items: &[Filter]| -> Result<Vec<CompiledFilter>, Rejection> {
        if items.is_empty() {
            return Err(invalid("empty and/or"));
        }
        items.iter().map(|f| compile_filter(f, limits)).collect()
    };
    Ok(match filter {
        Filter::And { and } => CompiledFilter::And(list(and)?),
        Filter::Or { or } => CompiledFilter::Or(list(or)?),
        Filter::Field(f) => {
            let field = FieldPath::parse(&f.field)?;
            check_operand(&field, f.op, &f.value, limits)?;
            CompiledFilter::Field {
                field,
                op: f.op,
                value: f.value.clone(),
            }
        }
    })
}

fn check_operand(
    field: &FieldPath,
    op: Op,
    value: &Value,
    limits: &Limits,
) -> Result<(), Rejection> {
    let max = match op {
        Op::In | Op::ArrayContainsAny => Some(limits.max_in_values),
        Op::NotIn => Some(limits.max_not_in_values),
        _ => None,
    };
    let operands: &[Value] = match (max, value) {
        (Some(max), Value::Array(items)) if items.len() > max => {
            let msg = format!("{} values, limit {max}", items.len());
            return Err(Rejection::new(ErrorCode::TooManyFilterValues, msg));
        }
        (Some(_), Value::Array(items)) if !items.is_empty() => items,
        (Some(_), _) => {
            return Err(invalid(
                "in, not-in and array-contains-any need a non-empty list",
            ))
        }
        (None, v) => std::slice::from_ref(v),
    };
    if matches!(op, Op::Lt | Op::Le | Op::Gt | Op::Ge) && value.is_null() {
        return Err(invalid("range filters cannot compare with null"));
    }
    if field.is_document_id() {
        if matches!(op, Op::ArrayContains | Op::ArrayContainsAny) {
            return Err(invalid("__name__ is not an array"));
        }
        if !operands.iter().all(Value::is_string) {
            return Err(invalid("__name__ compares with document id strings only"));
        }
    }
    Ok(())
}
