//! A result's position in query order, and cursor comparisons.

use std::cmp::Ordering;

use blaze_protocol::{Cursor, Direction};
use serde_json::{Map, Value};

use super::compile::CompiledQuery;
use super::filter::field_value;
use blaze_json::order::compare_values;

/// A document's sort key: its `order_by` values, then its id.
#[derive(Clone, Debug, PartialEq)]
pub struct Position {
    /// One value per `order_by` key.
    pub values: Vec<Value>,
    /// The document id.
    pub id: String,
}

fn directed(ordering: Ordering, direction: Direction) -> Ordering {
    match direction {
        Direction::Asc => ordering,
        Direction::Desc => ordering.reverse(),
    }
}

impl CompiledQuery {
    /// The document's position, or `None` when it lacks an `order_by` field.
    pub fn position(&self, id: &str, data: &Map<String, Value>) -> Option<Position> {
        let values = self
            .order
            .iter()
            .map(|(field, _)| field_value(field, id, data).map(|v| v.into_owned()))
            .collect::<Option<Vec<_>>>()?;
        Some(Position {
            values,
            id: id.to_owned(),
        })
    }

    /// Compares two positions in query order.
    pub fn compare(&self, a: &Position, b: &Position) -> Ordering {
        for ((va, vb), (_, dir)) in a.values.iter().zip(&b.values).zip(&self.order) {
            let o = directed(compare_values(va, vb), *dir);
            if o.is_ne() {
                return o;
            }
        }
        directed(a.id.as_bytes().cmp(b.id.as_bytes()), self.id_direction)
    }

    /// Compares a position with a cursor, on the cursor's length, in query order.
    pub fn compare_to_cursor(&self, p: &Position, cursor: &Cursor) -> Ordering {
        for (i, c) in cursor.values.iter().enumerate() {
            let o = match (p.values.get(i), self.order.get(i)) {
                (Some(v), Some((_, dir))) => directed(compare_values(v, c), *dir),
                _ => {
                    let id = c.as_str().unwrap_or_default();
                    directed(p.id.as_bytes().cmp(id.as_bytes()), self.id_direction)
                }
            };
            if o.is_ne() {
                return o;
            }
        }
        Ordering::Equal
    }

    /// Whether a position is at or after the start cursor.
    pub fn after_start(&self, p: &Position) -> bool {
        self.start
            .as_ref()
            .is_none_or(|c| match self.compare_to_cursor(p, c) {
                Ordering::Greater => true,
                Ordering::Equal => c.inclusive,
                Ordering::Less => false,
            })
    }

    /// Whether a position is at or before the end cursor.
    pub fn before_end(&self, p: &Position) -> bool {
        self.end
            .as_ref()
            .is_none_or(|c| match self.compare_to_cursor(p, c) {
                Ordering::Less => true,
                Ordering::Equal => c.inclusive,
                Ordering::Greater => false,
            })
    }
}
