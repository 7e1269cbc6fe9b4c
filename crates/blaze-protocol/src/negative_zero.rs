//! `-0` written as an integer is the integer `0` (spec 3.2): integers have no
//! sign of zero, so it is stored and read back as `0`. `-0.0` (a fraction or
//! an exponent) is the double −0.0 and keeps its sign, as every double does.
//! serde_json reads both as the double −0.0, so integer `-0` tokens are
//! rewritten to `0` in the text before it is parsed.

use std::borrow::Cow;

use crate::outside_strings::outside_strings;

/// `text` with every integer `-0` token outside strings written `0`.
pub(crate) fn integer_zero_unsigned(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let minus_zeros: Vec<usize> = outside_strings(text)
        .filter(|&(i, b)| {
            b == b'-'
                && bytes.get(i + 1) == Some(&b'0')
                && !matches!(bytes.get(i + 2), Some(b'.' | b'e' | b'E' | b'0'..=b'9'))
        })
        .map(|(i, _)| i)
        .collect();
    if minus_zeros.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut from = 0;
    for i in minus_zeros {
        out.push_str(&text[from..i]);
        from = i + 1;
    }
    out.push_str(&text[from..]);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_integer_minus_zero_outside_strings_loses_its_sign() {
        let cases = [
            (r#"{"a":-0}"#, r#"{"a":0}"#),
            (
                r#"[-0,-0.0,-0e1,-0E1,-01,-10]"#,
                r#"[0,-0.0,-0e1,-0E1,-01,-10]"#,
            ),
            (r#"{"s":"-0","t":"\"-0"}"#, r#"{"s":"-0","t":"\"-0"}"#),
            (r#"{"s":"\\","n":-0}"#, r#"{"s":"\\","n":0}"#),
            ("-0", "0"),
        ];
        for (text, want) in cases {
            assert_eq!(integer_zero_unsigned(text), want, "{text}");
        }
    }
}
