//! Nesting depth of JSON text, measured without parsing it.

use crate::outside_strings::outside_strings;

/// The deepest nesting of `[` and `{` in `text`, ignoring brackets inside strings.
///
/// Works on any input, valid JSON or not, in one pass with no allocation, so a
/// decoder can refuse a too-deep frame before a recursive parser sees it.
pub fn json_depth(text: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    for (_, b) in outside_strings(text) {
        match b {
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
