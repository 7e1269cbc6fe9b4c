//! Evaluating a filter on one document, with Firestore's rules.

use std::borrow::Cow;

use blaze_protocol::Op;
use serde_json::{Map, Value};

use blaze_json::field_path::FieldPath;
use blaze_json::order::{compare_values, values_equal, TypeClass};

/// A checked filter tree.
#[derive(Clone, Debug, PartialEq)]
pub enum CompiledFilter {
    /// All must match.
    And(Vec<CompiledFilter>),
    /// One must match.
    Or(Vec<CompiledFilter>),
    /// `field op value`.
    Field {
        /// The field.
        field: FieldPath,
        /// The operator.
        op: Op,
        /// The operand.
        value: Value,
    },
}

/// The value of `field` in a document: its id for `__name__`, else the field's value.
pub(crate) fn field_value<'a>(
    field: &FieldPath,
    id: &'a str,
    data: &'a Map<String, Value>,
) -> Option<Cow<'a, Value>> {
    if field.is_document_id() {
        Some(Cow::Owned(Value::String(id.to_owned())))
    } else {
        field.get(data).map(Cow::Borrowed)
    }
}

impl CompiledFilter {
    /// Whether the document `id` with contents `data` matches.
    pub fn matches(&self, id: &str, data: &Map<String, Value>) -> bool {
        match self {
            Self::And(all) => all.iter().all(|f| f.matches(id, data)),
            Self::Or(any) => any.iter().any(|f| f.matches(id, data)),
            Self::Field { field, op, value } => match field_value(field, id, data) {
                Some(found) => leaf_matches(&found, *op, value),
                None => false,
            },
        }
    }

    /// The field filters every match must pass: the top-level `and` members, flattened.
    pub fn conjuncts(&self) -> Vec<(&FieldPath, Op, &Value)> {
        match self {
            Self::And(all) => all.iter().flat_map(Self::conjuncts).collect(),
            Self::Or(_) => Vec::new(),
            Self::Field { field, op, value } => vec![(field, *op, value)],
        }
    }

    /// The number of disjunctions in disjunctive normal form (saturating).
    pub fn disjunction_count(&self) -> u64 {
        match self {
            Self::And(all) => all
                .iter()
                .fold(1u64, |n, f| n.saturating_mul(f.disjunction_count())),
            Self::Or(any) => any
                .iter()
                .fold(0u64, |n, f| n.saturating_add(f.disjunction_count())),
            Self::Field {
                op: Op::In | Op::ArrayContainsAny,
                value,
                ..
            } => value.as_array().map_or(1, |items| items.len() as u64),
            Self::Field { .. } => 1,
        }
    }
}

fn list(value: &Value) -> &[Value] {
    value.as_array().map_or(&[], Vec::as_slice)
}

fn leaf_matches(found: &Value, op: Op, operand: &Value) -> bool {
    let in_list = |v: &Value| list(operand).iter().any(|o| values_equal(v, o));
    let same_class = || TypeClass::of(found) == TypeClass::of(operand);
    let order = || compare_values(found, operand);
    match op {
        Op::Eq => values_equal(found, operand),
        Op::Ne => !found.is_null() && !values_equal(found, operand),
        Op::Lt => same_class() && order().is_lt(),
        Op::Le => same_class() && order().is_le(),
        Op::Gt => same_class() && order().is_gt(),
        Op::Ge => same_class() && order().is_ge(),
        Op::In => in_list(found),
        Op::NotIn => !found.is_null() && !in_list(found),
        Op::ArrayContains => found
            .as_array()
            .is_some_and(|a| a.iter().any(|v| values_equal(v, operand))),
        Op::ArrayContainsAny => found.as_array().is_some_and(|a| a.iter().any(in_list)),
    }
}
