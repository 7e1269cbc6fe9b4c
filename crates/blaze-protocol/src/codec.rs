//! Turning frames into messages and back. Decoding never panics.

use serde::{de::DeserializeOwned, Serialize};
use serde_json::Value;

use crate::{json_depth, ClientMessage, ErrorCode, Limits, ServerMessage};

/// A frame that could not be decoded, with the code to answer it with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct DecodeError {
    /// The wire error code.
    pub code: ErrorCode,
    /// What was wrong.
    pub message: String,
    /// The frame's `rid`, when it had a readable one.
    pub rid: Option<u64>,
}

/// Decodes a client frame, enforcing the frame size and depth limits.
pub fn decode_client(text: &str, limits: &Limits) -> Result<ClientMessage, DecodeError> {
    decode(text, limits, &ClientMessage::TYPES)
}

/// Decodes a server frame (for clients), enforcing the same limits.
pub fn decode_server(text: &str, limits: &Limits) -> Result<ServerMessage, DecodeError> {
    const TYPES: [&str; 10] = [
        "welcome",
        "doc",
        "committed",
        "query_result",
        "count_result",
        "snapshot",
        "resumed",
        "change",
        "unlistened",
        "error",
    ];
    decode(text, limits, &TYPES)
}

/// Encodes any wire message as a JSON text frame.
pub fn encode<T: Serialize>(message: &T) -> String {
    // Wire types hold only strings, numbers and JSON values: serializing cannot fail.
    serde_json::to_string(message).expect("wire types always serialize")
}

fn decode<T: DeserializeOwned>(
    text: &str,
    limits: &Limits,
    types: &[&str],
) -> Result<T, DecodeError> {
    let fail = |code, message: String, rid| DecodeError { code, message, rid };
    if text.len() > limits.max_frame_bytes {
        return Err(fail(
            ErrorCode::FrameTooLarge,
            format!(
                "frame has {} bytes, limit {}",
                text.len(),
                limits.max_frame_bytes
            ),
            None,
        ));
    }
    let depth = json_depth(text);
    if depth > limits.max_frame_depth {
        return Err(fail(
            ErrorCode::FrameTooDeep,
            format!("frame nests {depth} deep, limit {}", limits.max_frame_depth),
            None,
        ));
    }
    let value: Value = serde_json::from_str(text)
        .map_err(|e| fail(ErrorCode::InvalidFrame, format!("not JSON: {e}"), None))?;
    let Value::Object(object) = &value else {
        return Err(fail(
            ErrorCode::InvalidFrame,
            "frame is not a JSON object".into(),
            None,
        ));
    };
    let rid = object.get("rid").and_then(Value::as_u64);
    let kind = match object.get("type") {
        Some(Value::String(kind)) => kind,
        _ => {
            return Err(fail(
                ErrorCode::InvalidFrame,
                "frame has no string `type`".into(),
                rid,
            ))
        }
    };
    if !types.contains(&kind.as_str()) {
        return Err(fail(
            ErrorCode::UnknownMessageType,
            format!("unknown message type {kind:?}"),
            rid,
        ));
    }
    serde_json::from_value(value)
        .map_err(|e| fail(ErrorCode::InvalidFrame, format!("bad message: {e}"), rid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trips_a_commit() {
        let text = r#"{"type":"commit","rid":7,"collection":"rooms","writes":[{"op":"set","id":"r1","data":{"a":1}},{"op":"delete","id":"r2","precondition":{"version":3}}]}"#;
        let msg = decode_client(text, &Limits::default()).unwrap();
        let again = decode_client(&encode(&msg), &Limits::default()).unwrap();
        assert_eq!(msg, again);
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in ".{0,200}") {
            let _ = decode_client(&text, &Limits::default());
        }

        #[test]
        fn mangled_frames_never_panic(cut in 0usize..120, junk in "[\\[\\]{}\",:a-z0-9]{0,8}") {
            let text = r#"{"type":"commit","rid":1,"collection":"c","writes":[{"op":"patch","id":"d","patch":[{"op":"add","path":"/a","value":1}]}]}"#;
            let cut = cut.min(text.len());
            let _ = decode_client(&format!("{}{}", &text[..cut], junk), &Limits::default());
        }
    }
}
