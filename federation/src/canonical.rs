//! Canonical JSON per RFC 8785 (JCS), for what is signed between nodes.
//!
//! Envelopes carry no floating-point numbers, so this encoder implements JCS for every value
//! *except* non-integers: a float (anything JSON text wrote with a fraction or exponent) or an
//! integer outside the I-JSON safe range ±(2^53 − 1) is refused rather than formatted. Within
//! those rules the output is byte-for-byte RFC 8785: object members sorted by their names'
//! UTF-16 code units, no insignificant whitespace, strings escaped as ECMAScript's
//! `JSON.stringify` does (only `"`, `\` and controls below U+0020; the rest literal UTF-8).

use std::fmt::Write as _;

use serde_json::Value;

/// The largest integer magnitude JCS (via IEEE 754 doubles) represents exactly.
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// Why a value has no canonical form here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CanonicalError {
    #[error("floating-point numbers are not allowed in signed JSON")]
    Float,
    #[error("integer {0} is outside ±(2^53 - 1)")]
    IntegerRange(String),
}

/// The RFC 8785 canonical form of `value` (see the module docs for the float rule).
pub fn canonical_json(value: &Value) -> Result<String, CanonicalError> {
    let mut out = String::with_capacity(128);
    write_value(&mut out, value)?;
    Ok(out)
}

fn write_value(out: &mut String, value: &Value) -> Result<(), CanonicalError> {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                if i.unsigned_abs() > MAX_SAFE_INTEGER {
                    return Err(CanonicalError::IntegerRange(i.to_string()));
                }
                let _ = write!(out, "{i}");
            } else if let Some(u) = n.as_u64() {
                if u > MAX_SAFE_INTEGER {
                    return Err(CanonicalError::IntegerRange(u.to_string()));
                }
                let _ = write!(out, "{u}");
            } else {
                return Err(CanonicalError::Float);
            }
        }
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item)?;
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_by(|(a, _), (b, _)| a.encode_utf16().cmp(b.encode_utf16()));
            out.push('{');
            for (i, (k, v)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, k);
                out.push(':');
                write_value(out, v)?;
            }
            out.push('}');
        }
    }
    Ok(())
}

fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// `shared/vectors/jcs` beside the repository (written by others; read, never copied).
    fn vectors() -> PathBuf {
        let p = crate::vector_path("jcs");
        assert!(
            p.is_dir(),
            "the shared JCS vectors are missing at {}",
            p.display()
        );
        p
    }

    fn case(name: &str) -> (Value, String) {
        let dir = vectors();
        let input = std::fs::read_to_string(dir.join("input").join(name)).unwrap();
        let output = std::fs::read_to_string(dir.join("output").join(name)).unwrap();
        (serde_json::from_str(&input).unwrap(), output)
    }

    #[test]
    fn rfc8785_vectors_without_floats_match_byte_for_byte() {
        for name in ["arrays.json", "french.json", "unicode.json", "weird.json"] {
            let (value, expected) = case(name);
            assert_eq!(canonical_json(&value).unwrap(), expected, "{name}");
        }
    }

    #[test]
    fn vectors_with_floats_are_refused_not_approximated() {
        for name in ["values.json", "structures.json"] {
            let (value, _) = case(name);
            assert_eq!(canonical_json(&value), Err(CanonicalError::Float), "{name}");
        }
    }

    #[test]
    fn members_sort_by_utf16_code_units_not_code_points() {
        // U+1F602 is the surrogate pair D83D DE02, which sorts before U+FB33 in UTF-16.
        let v = serde_json::json!({"\u{fb33}": 1, "\u{1f602}": 2});
        assert_eq!(
            canonical_json(&v).unwrap(),
            "{\"\u{1f602}\":2,\"\u{fb33}\":1}"
        );
    }

    #[test]
    fn integers_beyond_the_safe_range_are_refused() {
        assert!(canonical_json(&serde_json::json!(MAX_SAFE_INTEGER)).is_ok());
        assert!(canonical_json(&serde_json::json!(-(MAX_SAFE_INTEGER as i64))).is_ok());
        assert!(matches!(
            canonical_json(&serde_json::json!(MAX_SAFE_INTEGER + 1)),
            Err(CanonicalError::IntegerRange(_))
        ));
        assert!(matches!(
            canonical_json(&serde_json::json!(u64::MAX)),
            Err(CanonicalError::IntegerRange(_))
        ));
    }

    #[test]
    fn controls_are_escaped_and_everything_else_is_literal() {
        let v = serde_json::json!("\u{1}\u{1f}\u{7f}</script>\u{2028}é");
        assert_eq!(
            canonical_json(&v).unwrap(),
            "\"\\u0001\\u001f\u{7f}</script>\u{2028}é\""
        );
    }
}
