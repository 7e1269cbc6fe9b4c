//! JSON Patch (RFC 6902), atomic and panic-free.
//!
//! The patch is parsed whole before anything is applied, then applied to a
//! copy of the document: on any error the caller's document is untouched.
//! The document's size and depth are tracked per operation (incrementally,
//! from the values each operation inserts or removes), so the limits hold
//! after every operation, not only at the end. Each copy the patch makes
//! (the document, every value added, replaced or copied) is charged to the
//! commit's [`CommitBudget`] before it is made.

use blaze_protocol::{ErrorCode, Limits};
use serde_json::{Map, Value};

use crate::budget::CommitBudget;
use crate::order::values_equal;
use crate::size::{check_limits, json_depth, member_len, object_len, serialized_len};
use crate::Rejection;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Add,
    Remove,
    Replace,
    Move,
    Copy,
    Test,
}

/// One parsed operation; pointers are split into unescaped tokens.
struct Operation {
    kind: Kind,
    path: Vec<String>,
    from: Vec<String>,
    value: Value,
}

fn invalid(msg: impl Into<String>) -> Rejection {
    Rejection::new(ErrorCode::InvalidPatch, msg)
}

fn not_found(path: &[String]) -> Rejection {
    Rejection::new(
        ErrorCode::PatchPathNotFound,
        format!("path {} not found", pointer_text(path)),
    )
}

fn pointer_text(tokens: &[String]) -> String {
    tokens
        .iter()
        .map(|t| format!("/{}", t.replace('~', "~0").replace('/', "~1")))
        .collect()
}

/// Splits a JSON Pointer (RFC 6901) into unescaped tokens.
fn parse_pointer(text: &str) -> Result<Vec<String>, Rejection> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = text.strip_prefix('/') else {
        return Err(invalid(format!(
            "pointer {text:?} must be empty or start with '/'"
        )));
    };
    rest.split('/').map(unescape).collect()
}

fn unescape(token: &str) -> Result<String, Rejection> {
    let mut out = String::with_capacity(token.len());
    let mut chars = token.chars();
    while let Some(c) = chars.next() {
        let c = match c {
            '~' => match chars.next() {
                Some('0') => '~',
                Some('1') => '/',
                _ => return Err(invalid(format!("bad escape in pointer token {token:?}"))),
            },
            c => c,
        };
        out.push(c);
    }
    Ok(out)
}

fn parse_operation(op: &Value) -> Result<Operation, Rejection> {
    let Value::Object(op) = op else {
        return Err(invalid("an operation must be an object"));
    };
    let text = |key: &str| match op.get(key) {
        Some(Value::String(s)) => parse_pointer(s),
        _ => Err(invalid(format!("operation needs a string {key:?}"))),
    };
    let kind = match op.get("op").and_then(Value::as_str) {
        Some("add") => Kind::Add,
        Some("remove") => Kind::Remove,
        Some("replace") => Kind::Replace,
        Some("move") => Kind::Move,
        Some("copy") => Kind::Copy,
        Some("test") => Kind::Test,
        other => return Err(invalid(format!("unknown op {other:?}"))),
    };
    let path = text("path")?;
    let from = match kind {
        Kind::Move | Kind::Copy => text("from")?,
        _ => Vec::new(),
    };
    let value = match kind {
        Kind::Add | Kind::Replace | Kind::Test => op
            .get("value")
            .cloned()
            .ok_or_else(|| invalid("operation needs a \"value\""))?,
        _ => Value::Null,
    };
    if kind == Kind::Remove && path.is_empty() {
        return Err(invalid("cannot remove the whole document"));
    }
    if kind == Kind::Move
        && (from.is_empty() || (path.len() > from.len() && path.starts_with(&from)))
    {
        return Err(invalid("cannot move a value into itself"));
    }
    Ok(Operation {
        kind,
        path,
        from,
        value,
    })
}

/// An array index token: decimal without leading zeros, below `len` (or equal to it
/// where `end_ok`, an insertion point); `-` (one past the end) only where `end_ok`.
fn array_index(token: &str, len: usize, end_ok: bool) -> Option<usize> {
    if token == "-" {
        return end_ok.then_some(len);
    }
    let digits = !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit());
    if !digits || (token.len() > 1 && token.starts_with('0')) {
        return None;
    }
    let index: usize = token.parse().ok()?;
    (index < len + usize::from(end_ok)).then_some(index)
}

fn get<'a>(root: &'a Value, tokens: &[String]) -> Option<&'a Value> {
    tokens.iter().try_fold(root, |v, t| match v {
        Value::Object(m) => m.get(t),
        Value::Array(a) => a.get(array_index(t, a.len(), false)?),
        _ => None,
    })
}

fn get_mut<'a>(root: &'a mut Value, tokens: &[String]) -> Option<&'a mut Value> {
    tokens.iter().try_fold(root, |v, t| match v {
        Value::Object(m) => m.get_mut(t),
        Value::Array(a) => {
            let i = array_index(t, a.len(), false)?;
            a.get_mut(i)
        }
        _ => None,
    })
}

/// The document under patch, with its running serialized size.
struct Patched<'l> {
    root: Value,
    size: usize,
    limits: &'l Limits,
    budget: &'l mut CommitBudget,
}

impl Patched<'_> {
    /// Applies one operation; on error the document may be half-changed (it is a copy).
    fn apply(&mut self, op: Operation) -> Result<(), Rejection> {
        if matches!(op.kind, Kind::Add | Kind::Replace) {
            self.budget.charge(serialized_len(&op.value))?;
        }
        match op.kind {
            Kind::Add => self.add(&op.path, op.value),
            Kind::Remove => self.remove(&op.path).map(drop),
            Kind::Replace => {
                if get(&self.root, &op.path).is_none() {
                    return Err(not_found(&op.path));
                }
                if !op.path.is_empty() {
                    self.remove(&op.path)?;
                }
                self.add(&op.path, op.value)
            }
            Kind::Move => {
                if op.from == op.path {
                    return get(&self.root, &op.from)
                        .map(drop)
                        .ok_or_else(|| not_found(&op.from));
                }
                let value = self.remove(&op.from)?;
                self.add(&op.path, value)
            }
            Kind::Copy => {
                let source = get(&self.root, &op.from).ok_or_else(|| not_found(&op.from))?;
                self.budget.charge(serialized_len(source))?;
                let value = source.clone();
                self.add(&op.path, value)
            }
            Kind::Test => match get(&self.root, &op.path) {
                Some(found) if values_equal(found, &op.value) => Ok(()),
                Some(_) => Err(Rejection::new(
                    ErrorCode::PatchTestFailed,
                    format!("test at {} failed", pointer_text(&op.path)),
                )),
                None => Err(not_found(&op.path)),
            },
        }
    }

    /// Inserts `value` at `path` (replacing an object member), unless that
    /// would break the limits.
    fn add(&mut self, path: &[String], value: Value) -> Result<(), Rejection> {
        // The document object is depth 1, so a value under k tokens reaches k + its own depth.
        let depth = path.len() + json_depth(&value);
        let Some((last, parent)) = path.split_last() else {
            return self.replace_root(value, depth);
        };
        let added = serialized_len(&value);
        let size = match get_mut(&mut self.root, parent) {
            Some(Value::Object(m)) => {
                let size = match m.get(last) {
                    Some(old) => (self.size + added).saturating_sub(serialized_len(old)),
                    None => self.size + member_len(last, &value) + usize::from(!m.is_empty()),
                };
                check_limits(depth, size, self.limits)?;
                m.insert(last.clone(), value);
                size
            }
            Some(Value::Array(a)) => {
                let index = array_index(last, a.len(), true).ok_or_else(|| not_found(path))?;
                let size = self.size + added + usize::from(!a.is_empty());
                check_limits(depth, size, self.limits)?;
                a.insert(index, value);
                size
            }
            _ => return Err(not_found(path)),
        };
        self.size = size;
        Ok(())
    }

    /// Replaces the whole document, which must stay an object within the limits.
    fn replace_root(&mut self, value: Value, depth: usize) -> Result<(), Rejection> {
        if !value.is_object() {
            return Err(Rejection::new(
                ErrorCode::InvalidDocument,
                "the document must stay a JSON object",
            ));
        }
        let size = serialized_len(&value);
        check_limits(depth, size, self.limits)?;
        self.size = size;
        self.root = value;
        Ok(())
    }

    /// Removes and returns the value at `path` (never the root).
    fn remove(&mut self, path: &[String]) -> Result<Value, Rejection> {
        let Some((last, parent)) = path.split_last() else {
            return Err(invalid("cannot remove the whole document"));
        };
        let (removed, shrink) = match get_mut(&mut self.root, parent) {
            Some(Value::Object(m)) => {
                let old = m.remove(last).ok_or_else(|| not_found(path))?;
                let shrink = member_len(last, &old) + usize::from(!m.is_empty());
                (old, shrink)
            }
            Some(Value::Array(a)) => {
                let index = array_index(last, a.len(), false).ok_or_else(|| not_found(path))?;
                let old = a.remove(index);
                let shrink = serialized_len(&old) + usize::from(!a.is_empty());
                (old, shrink)
            }
            _ => return Err(not_found(path)),
        };
        self.size = self.size.saturating_sub(shrink);
        Ok(removed)
    }
}

/// Applies `patch` (an array of RFC 6902 operations) to a copy of `doc`.
/// On any error `doc` is untouched and the error names the failing operation.
pub fn apply_json_patch(
    doc: &Map<String, Value>,
    patch: &Value,
    limits: &Limits,
) -> Result<Map<String, Value>, Rejection> {
    apply_json_patch_within(doc, patch, limits, &mut CommitBudget::new(limits))
}

/// [`apply_json_patch`], charging every copy it makes to `budget` first.
pub fn apply_json_patch_within(
    doc: &Map<String, Value>,
    patch: &Value,
    limits: &Limits,
    budget: &mut CommitBudget,
) -> Result<Map<String, Value>, Rejection> {
    let Value::Array(ops) = patch else {
        return Err(invalid("a JSON Patch must be an array of operations"));
    };
    if ops.len() > limits.max_patch_ops {
        let msg = format!("{} operations, limit {}", ops.len(), limits.max_patch_ops);
        return Err(Rejection::new(ErrorCode::TooManyPatchOps, msg));
    }
    let at = |i: usize| {
        move |r: Rejection| Rejection {
            message: format!("op {i}: {}", r.message),
            ..r
        }
    };
    let ops = ops
        .iter()
        .enumerate()
        .map(|(i, op)| parse_operation(op).map_err(at(i)))
        .collect::<Result<Vec<_>, _>>()?;
    let size = object_len(doc);
    budget.charge(size)?;
    let mut patched = Patched {
        size,
        root: Value::Object(doc.clone()),
        limits,
        budget,
    };
    for (i, op) in ops.into_iter().enumerate() {
        patched.apply(op).map_err(at(i))?;
    }
    // Every operation that grows the document was checked above, which is
    // enough for a document that came in within the limits; this catches one
    // that did not (stored before the limits were lowered).
    check_limits(json_depth(&patched.root), patched.size, limits)?;
    match patched.root {
        Value::Object(out) => Ok(out),
        _ => Err(Rejection::new(
            ErrorCode::InvalidDocument,
            "the document must stay a JSON object",
        )),
    }
}

#[cfg(test)]
mod tests;
