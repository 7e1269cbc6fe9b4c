//! Query wire types: filters, ordering, limits and cursors.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::null_as_default::null_as_default;
use crate::CollectionPath;

/// A query over one collection, as sent in `query` and `count` messages.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Query {
    /// The collection path, e.g. `rooms/r1/messages`.
    pub collection: CollectionPath,
    /// The filter tree; absent means every document.
    #[serde(default, rename = "where", skip_serializing_if = "Option::is_none")]
    pub filter: Option<Filter>,
    /// Sort keys, most significant first; ties are broken by document id.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub order_by: Vec<OrderBy>,
    /// Keep only the first `limit` results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// Keep only the last `limit_to_last` results (still returned in query order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_to_last: Option<u64>,
    /// Start at the position of these `order_by` values (inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_at: Option<Vec<Value>>,
    /// Start after the position of these `order_by` values (exclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_after: Option<Vec<Value>>,
    /// End at the position of these `order_by` values (inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_at: Option<Vec<Value>>,
    /// End before the position of these `order_by` values (exclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_before: Option<Vec<Value>>,
}

impl Query {
    /// A query for every document of `collection`, in document id order.
    pub fn all(collection: CollectionPath) -> Self {
        Self {
            collection,
            filter: None,
            order_by: Vec::new(),
            limit: None,
            limit_to_last: None,
            start_at: None,
            start_after: None,
            end_at: None,
            end_before: None,
        }
    }
}

/// A cursor position: values for a prefix of the `order_by` keys (optionally
/// followed by a document id), and whether the position itself is included.
#[derive(Clone, Debug, PartialEq)]
pub struct Cursor {
    /// The values, one per `order_by` key, in order.
    pub values: Vec<Value>,
    /// `true` for `start_at`/`end_at`, `false` for `start_after`/`end_before`.
    pub inclusive: bool,
}

/// A filter: a field comparison, or an `and` / `or` of filters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Filter {
    /// Every sub-filter matches.
    And {
        /// The sub-filters.
        and: Vec<Filter>,
    },
    /// At least one sub-filter matches.
    Or {
        /// The sub-filters.
        or: Vec<Filter>,
    },
    /// One field compared with one value.
    Field(FieldFilter),
}

/// `field op value`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FieldFilter {
    /// A field path: dot-separated keys, backquote-escaped where a key has dots; `__name__` is the document id.
    pub field: String,
    /// The comparison.
    pub op: Op,
    /// The operand (a list for `in`, `not-in` and `array-contains-any`).
    pub value: Value,
}

/// A filter operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Op {
    /// Equal.
    #[serde(rename = "==")]
    Eq,
    /// Not equal (the field must exist and not be `null`).
    #[serde(rename = "!=")]
    Ne,
    /// Less than, same type class only.
    #[serde(rename = "<")]
    Lt,
    /// Less than or equal, same type class only.
    #[serde(rename = "<=")]
    Le,
    /// Greater than, same type class only.
    #[serde(rename = ">")]
    Gt,
    /// Greater than or equal, same type class only.
    #[serde(rename = ">=")]
    Ge,
    /// Equal to one of a list.
    #[serde(rename = "in")]
    In,
    /// Equal to none of a list (the field must exist and not be `null`).
    #[serde(rename = "not-in")]
    NotIn,
    /// The field is an array containing the value.
    #[serde(rename = "array-contains")]
    ArrayContains,
    /// The field is an array containing one of a list.
    #[serde(rename = "array-contains-any")]
    ArrayContainsAny,
}

/// One sort key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderBy {
    /// The field path to sort by.
    pub field: String,
    /// Ascending (default) or descending.
    #[serde(default, deserialize_with = "null_as_default")]
    pub direction: Direction,
}

/// Sort direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Smallest first.
    #[default]
    Asc,
    /// Largest first.
    Desc,
}
