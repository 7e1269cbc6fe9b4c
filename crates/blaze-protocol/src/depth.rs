//! Nesting depth of JSON text, measured without parsing it.

/// The deepest nesting of `[` and `{` in `text`, ignoring brackets inside strings.
///
/// Works on any input, valid JSON or not, in one pass with no allocation, so a
/// decoder can refuse a too-deep frame before a recursive parser sees it.
pub fn json_depth(text: &str) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in text.as_bytes() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

#[cfg(test)]
mod tests {
    use super::json_depth;

    #[test]
    fn counts_nesting_outside_strings() {
        for (text, want) in [
            ("1", 0),
            ("{}", 1),
            ("{\"a\":[1,{\"b\":2}]}", 3),
            ("{\"a\":\"[[[{{\"}", 1),
            ("{\"a\":\"\\\"[[\"}", 1),
            ("]]]][", 1),
        ] {
            assert_eq!(json_depth(text), want, "{text}");
        }
    }
}
