//! Reading the session transcripts of `spec/vectors/session/` (format in
//! `spec/vectors/README.md`): what a step sends, what it must produce (with
//! the `"welcome"` shorthand expanded), and what server a case needs.

use serde_json::{json, Value};

use crate::case_limits;

/// The `welcome` frame a server configured for `case` answers `hello` with:
/// what the `"frame": "welcome"` shorthand stands for.
pub fn welcome(case: &Value) -> Value {
    let limits = serde_json::to_value(case_limits(case)).expect("limits serialize");
    json!({"type": "welcome", "protocol": 1, "limits": limits})
}

/// A step's expected outputs (`out`), each `"frame": "welcome"` expanded.
pub fn expected_outputs(case: &Value, step: &Value) -> Vec<Value> {
    let mut outputs = step["out"].as_array().cloned().unwrap_or_default();
    for output in &mut outputs {
        if output["frame"] == "welcome" {
            output["frame"] = welcome(case);
        }
    }
    outputs
}

/// The text a `recv` step sends: `frame` itself when it is a string, else `frame` as JSON.
pub fn frame_text(frame: &Value) -> String {
    match frame {
        Value::String(raw) => raw.clone(),
        frame => frame.to_string(),
    }
}

/// A frame the server sent, as compared with a transcript: JSON, without
/// `error.message` (messages are not part of the contract).
pub fn received(text: &str) -> Result<Value, String> {
    let mut frame: Value =
        serde_json::from_str(text).map_err(|e| format!("{e}: not JSON: {text}"))?;
    if let Some(error) = frame.get_mut("error").and_then(Value::as_object_mut) {
        error.remove("message");
    }
    Ok(frame)
}

/// The collection a connection of this `open` step is for.
pub fn connection_collection(step: &Value) -> Result<&str, String> {
    step["collection"]
        .as_str()
        .ok_or_else(|| format!("open step without a collection: {step}"))
}
