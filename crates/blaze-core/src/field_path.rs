//! Field paths: `a.b.c`, with backquotes around keys that contain dots.
use serde_json::{Map, Value};
use crate::Rejection;

/// A parsed field path.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldPath { segments: Vec<String> }

impl FieldPath {
    /// Parses a field path; `invalid_field_path` when malformed.
    pub fn parse(text: &str) -> Result<Self, Rejection> { let _ = text; todo!() }
    /// The path made of these keys, outermost first (KEEP: used by indexing).
    pub fn from_segments(segments: Vec<String>) -> Self { Self { segments } }
    /// The keys, outermost first.
    pub fn segments(&self) -> &[String] { &self.segments }
    /// True for `__name__`, the document id.
    pub fn is_document_id(&self) -> bool { self.segments.len() == 1 && self.segments[0] == "__name__" }
    /// The value at this path in `data`, if any.
    pub fn get<'a>(&self, data: &'a Map<String, Value>) -> Option<&'a Value> { let _ = data; todo!() }
    /// The canonical text form (parses back to the same path).
    pub fn canonical(&self) -> String { todo!() }
}
