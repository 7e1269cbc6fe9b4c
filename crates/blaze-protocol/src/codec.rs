//! Turning frames into messages and back. Decoding never panics.

use serde::{de::DeserializeOwned, Serialize};
use serde_json::Value;

use crate::path::PATH_ERROR_PREFIX;
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

/// Decodes a client frame, enforcing the frame size and depth limits, in the
/// order of spec section 10.1 "Decoding a client frame".
pub fn decode_client(text: &str, limits: &Limits) -> Result<ClientMessage, DecodeError> {
    let value = parse_object(text, limits)?;
    let rid = readable_rid(&value);
    check_type(&value, &ClientMessage::TYPES, rid)?;
    typed(&value, rid, check_client_shape)
}

/// Decodes a server frame (for clients), enforcing the same limits.
pub fn decode_server(text: &str, limits: &Limits) -> Result<ServerMessage, DecodeError> {
    const TYPES: [&str; 11] = [
        "welcome",
        "authenticated",
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
    let value = parse_object(text, limits)?;
    let rid = readable_rid(&value);
    check_type(&value, &TYPES, rid)?;
    typed(&value, rid, |_| Ok(()))
}

/// Decodes an HTTP request body (spec section 11) into a wire type, with the
/// checks of a frame: size, depth, JSON, then fields and paths.
pub fn decode_body<T: DeserializeOwned>(text: &str, limits: &Limits) -> Result<T, DecodeError> {
    let value = parse_json(text, limits)?;
    typed(&value, None, |_| Ok(()))
}

/// Encodes any wire message as a JSON text frame.
pub fn encode<T: Serialize>(message: &T) -> String {
    // Wire types hold only strings, numbers and JSON values: serializing cannot fail.
    serde_json::to_string(message).expect("wire types always serialize")
}

fn fail(code: ErrorCode, message: String, rid: Option<u64>) -> DecodeError {
    DecodeError { code, message, rid }
}

/// Steps 1-3: size, depth, JSON.
fn parse_json(text: &str, limits: &Limits) -> Result<Value, DecodeError> {
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
    serde_json::from_str(&crate::negative_zero::integer_zero_unsigned(text))
        .map_err(|e| fail(ErrorCode::InvalidFrame, format!("not JSON: {e}"), None))
}

/// Steps 1-3, and the frame must be an object.
fn parse_object(text: &str, limits: &Limits) -> Result<Value, DecodeError> {
    let value = parse_json(text, limits)?;
    if !value.is_object() {
        return Err(fail(
            ErrorCode::InvalidFrame,
            "frame is not a JSON object".into(),
            None,
        ));
    }
    Ok(value)
}

/// The frame's `rid`, when it is an unsigned integer.
fn readable_rid(value: &Value) -> Option<u64> {
    value.get("rid").and_then(Value::as_u64)
}

/// Steps 4-5: a string `type` naming one of `types`.
fn check_type(value: &Value, types: &[&str], rid: Option<u64>) -> Result<(), DecodeError> {
    let Some(Value::String(kind)) = value.get("type") else {
        return Err(fail(
            ErrorCode::InvalidFrame,
            "frame has no string `type`".into(),
            rid,
        ));
    };
    if !types.contains(&kind.as_str()) {
        return Err(fail(
            ErrorCode::UnknownMessageType,
            format!("unknown message type {kind:?}"),
            rid,
        ));
    }
    Ok(())
}

/// Steps 6-7: the fields (`invalid_frame`), then the collection and document
/// paths (`invalid_path`). A frame with both kinds of fault is `invalid_frame`.
fn typed<T: DeserializeOwned>(
    value: &Value,
    rid: Option<u64>,
    shape: impl Fn(&T) -> Result<(), String>,
) -> Result<T, DecodeError> {
    let invalid_frame = |message: String| fail(ErrorCode::InvalidFrame, message, rid);
    let path_error = match T::deserialize(value) {
        Ok(message) => return shape(&message).map(|()| message).map_err(invalid_frame),
        Err(e) if e.to_string().starts_with(PATH_ERROR_PREFIX) => e,
        Err(e) => return Err(invalid_frame(format!("bad message: {e}"))),
    };
    // A bad path stops serde before it has seen the other fields: decode again
    // with every path made valid, to find a fault in the fields first.
    let mut valid_paths = value.clone();
    make_paths_valid(&mut valid_paths);
    match T::deserialize(&valid_paths) {
        Ok(message) => shape(&message).map_err(invalid_frame)?,
        Err(e) => return Err(invalid_frame(format!("bad message: {e}"))),
    }
    let message = path_error.to_string();
    let message = message.strip_prefix(PATH_ERROR_PREFIX).unwrap_or(&message);
    Err(fail(ErrorCode::InvalidPath, message.to_owned(), rid))
}

/// Replaces each string where a wire message or body holds a path (`path`,
/// `doc`, `collection`, `query.collection`) with a valid path of its kind.
fn make_paths_valid(value: &mut Value) {
    let Value::Object(fields) = value else {
        return;
    };
    for (name, field) in fields.iter_mut() {
        match (name.as_str(), field) {
            ("path" | "doc", field @ Value::String(_)) => *field = Value::from("c/d"),
            ("collection", field @ Value::String(_)) => *field = Value::from("c"),
            ("query", Value::Object(query)) => {
                if let Some(field @ Value::String(_)) = query.get_mut("collection") {
                    *field = Value::from("c");
                }
            }
            _ => {}
        }
    }
}

/// Field rules serde cannot express: a `listen` names exactly one of `doc` and `query`.
fn check_client_shape(message: &ClientMessage) -> Result<(), String> {
    match message {
        ClientMessage::Listen { doc, query, .. } if doc.is_some() == query.is_some() => {
            Err("listen needs exactly one of doc and query".into())
        }
        _ => Ok(()),
    }
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

    #[test]
    fn paths_are_checked_after_the_fields() {
        let limits = Limits::default();
        let code = |text: &str| decode_client(text, &limits).map_err(|e| (e.code, e.rid));
        let bad_path = r#"{"type":"get","rid":1,"path":"a b"}"#;
        assert_eq!(code(bad_path), Err((ErrorCode::InvalidPath, Some(1))));
        let also_no_rid = r#"{"type":"get","path":"a b"}"#;
        assert_eq!(code(also_no_rid), Err((ErrorCode::InvalidFrame, None)));
        let body = decode_body::<crate::CommitBody>(r#"{"collection":"c/d","writes":[]}"#, &limits);
        assert_eq!(body.map_err(|e| e.code), Err(ErrorCode::InvalidPath));
        let body = decode_body::<crate::CommitBody>(r#"{"collection":"c/d"}"#, &limits);
        assert_eq!(body.map_err(|e| e.code), Err(ErrorCode::InvalidFrame));
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
