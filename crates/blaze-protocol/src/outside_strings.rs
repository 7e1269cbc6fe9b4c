//! The bytes of JSON text that lie outside string literals, found without
//! parsing: what the depth check and the `-0` rewrite look at.

/// `(index, byte)` for every byte of `text` outside a string literal (the
/// quotes that open and close a string are inside it). Works on any input,
/// valid JSON or not, in one pass with no allocation.
pub(crate) fn outside_strings(text: &str) -> impl Iterator<Item = (usize, u8)> + '_ {
    let (mut in_string, mut escaped) = (false, false);
    text.bytes().enumerate().filter(move |&(_, b)| {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            false
        } else if b == b'"' {
            in_string = true;
            false
        } else {
            true
        }
    })
}

#[cfg(test)]
mod tests {
    use super::outside_strings;

    #[test]
    fn skips_strings_with_their_escapes() {
        let check = |text: &str, want: &str| {
            let got: Vec<u8> = outside_strings(text).map(|(_, b)| b).collect();
            assert_eq!(String::from_utf8(got).unwrap(), want, "{text}");
        };
        check(r#"{"a":[1]}"#, "{:[1]}");
        check(r#"["\"[", "\\", 2]"#, "[, , 2]");
        check(r#""unterminated [ {"#, "");
        check("", "");
    }
}
