//! The total order over JSON values.
use serde_json::Value;
use std::cmp::Ordering;

/// The type classes, in their order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TypeClass { /// null
 Null, /// booleans
 Bool, /// numbers
 Number, /// strings
 String, /// arrays
 Array, /// objects
 Object }

impl TypeClass {
    /// The class of `v`.
    pub fn of(v: &Value) -> Self { let _ = v; todo!() }
}

/// Compares two values in the spec's total order.
pub fn compare_values(a: &Value, b: &Value) -> Ordering { let _ = (a, b); todo!() }

/// Equality under the total order (`1 == 1.0`).
pub fn values_equal(a: &Value, b: &Value) -> bool { compare_values(a, b) == Ordering::Equal }
