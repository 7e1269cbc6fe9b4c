//! How results are printed: one JSON object per line.

use blaze_client::{ChangeKind, CommitResult, DocChange, DocumentSnapshot};
use serde_json::{json, Value};

/// A document as one JSON object: `path`, `id`, `exists`, `data`, `version`,
/// `create_time`, `update_time` (the last four `null` when it does not exist).
pub fn document(doc: &DocumentSnapshot) -> Value {
    json!({
        "path": doc.path,
        "id": doc.id(),
        "exists": doc.exists(),
        "data": doc.data,
        "version": doc.version,
        "create_time": doc.create_time,
        "update_time": doc.update_time,
    })
}

/// A query listener's change: `type` (`added`, `modified`, `removed`),
/// `old_index`, `new_index`, the collection's `seq`, and the document's fields.
pub fn change(change: &DocChange, seq: u64) -> Value {
    let kind = match change.kind {
        ChangeKind::Added => "added",
        ChangeKind::Modified => "modified",
        ChangeKind::Removed => "removed",
    };
    let mut line = json!({
        "type": kind,
        "seq": seq,
        "old_index": change.old_index,
        "new_index": change.new_index,
    });
    merge_into(&mut line, document(&change.doc));
    line
}

/// A commit's result: `seq`, `time`, and one `{id, exists}` per write.
pub fn commit(result: &CommitResult) -> Value {
    serde_json::to_value(result).expect("a commit result serializes")
}

/// Prints one JSON line on standard output.
pub fn print(value: &Value) {
    println!("{value}");
}

fn merge_into(target: &mut Value, extra: Value) {
    if let (Value::Object(target), Value::Object(extra)) = (target, extra) {
        target.extend(extra);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_removed_change_prints_as_one_line() {
        let doc = DocumentSnapshot {
            path: "todos/t1".into(),
            data: Some(json!({"done": true})),
            version: Some(7),
            create_time: Some(1),
            update_time: Some(2),
        };
        let removed = DocChange {
            kind: ChangeKind::Removed,
            doc,
            old_index: Some(3),
            new_index: None,
        };
        assert_eq!(
            change(&removed, 9),
            json!({"type": "removed", "seq": 9, "old_index": 3, "new_index": null,
                   "path": "todos/t1", "id": "t1", "exists": true, "data": {"done": true},
                   "version": 7, "create_time": 1, "update_time": 2})
        );
    }
}
