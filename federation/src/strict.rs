//! Strict parsing of what peers send: JSON with no duplicate member names anywhere (serde_json
//! alone keeps the last of two equal names, so one signed text could be read two ways), and the
//! protocol's textual numbers and ids in exactly one spelling each (no `+`, no upper-case hex,
//! no leading zeros), so that one value never has two accepted forms.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Deepest nesting of arrays and objects accepted (serde_json's own recursion limit is 128;
/// nothing in the protocol nests more than a few levels).
pub const MAX_DEPTH: usize = 64;

/// Why a peer's JSON text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JsonError {
    /// The same member name appears twice in one object.
    #[error("duplicate member name {0:?} in a JSON object")]
    DuplicateName(String),
    /// Not JSON, or trailing characters after the value, or nested too deeply.
    #[error("invalid JSON: {0}")]
    Syntax(String),
}

/// Parses JSON text from a peer, refusing any object that names a member twice (at any depth),
/// nesting beyond [`MAX_DEPTH`], and anything but whitespace after the value.
pub fn parse_json(text: &[u8]) -> Result<Value, JsonError> {
    let mut de = serde_json::Deserializer::from_slice(text);
    let v = Strict { depth: 0 }.deserialize(&mut de).map_err(classify)?;
    de.end().map_err(|e| JsonError::Syntax(e.to_string()))?;
    Ok(v)
}

const DUPLICATE: &str = "\u{0}duplicate:";

fn classify(e: serde_json::Error) -> JsonError {
    let text = e.to_string();
    match text.find(DUPLICATE) {
        Some(i) => {
            let rest = &text[i + DUPLICATE.len()..];
            let name = rest.split('\u{0}').next().unwrap_or_default();
            JsonError::DuplicateName(name.to_string())
        }
        None => JsonError::Syntax(text),
    }
}

/// A `Value` deserialiser that checks names as it builds each object.
struct Strict {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Strict {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl Strict {
    fn deeper<E: de::Error>(&self) -> Result<Strict, E> {
        if self.depth >= MAX_DEPTH {
            return Err(E::custom(format!("nested more than {MAX_DEPTH} levels")));
        }
        Ok(Strict {
            depth: self.depth + 1,
        })
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::from(n))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::from(n))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Value, E> {
        // Kept as a float, so canonical JSON later refuses it with its own error.
        Ok(serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_string()))
    }
    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(self.deeper()?)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(name) = map.next_key::<String>()? {
            if out.contains_key(&name) {
                return Err(de::Error::custom(format!("{DUPLICATE}{name}\u{0}")));
            }
            let v = map.next_value_seed(self.deeper()?)?;
            out.insert(name, v);
        }
        Ok(Value::Object(out))
    }
}

/// A `message_id`: exactly 32 lower-case hex digits (16 bytes). Every other spelling (upper
/// case, a sign, another length) is refused.
pub fn parse_message_id(s: &str) -> Option<[u8; 16]> {
    let b = s.as_bytes();
    if b.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (o, pair) in out.iter_mut().zip(b.chunks_exact(2)) {
        *o = (lower_hex_digit(pair[0])? << 4) | lower_hex_digit(pair[1])?;
    }
    Some(out)
}

/// An erasure `reference` as shanliao writes it: exactly 16 lower-case hex digits (a u64).
pub fn parse_reference(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 16 {
        return None;
    }
    b.iter().try_fold(0u64, |acc, &c| {
        Some((acc << 4) | u64::from(lower_hex_digit(c)?))
    })
}

fn lower_hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// A non-negative decimal integer in its one spelling: ASCII digits, no sign, no leading zero
/// (except `0` itself), no overflow.
pub fn parse_decimal(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 20 || (b.len() > 1 && b[0] == b'0') {
        return None;
    }
    b.iter().try_fold(0u64, |acc, &c| {
        if !c.is_ascii_digit() {
            return None;
        }
        acc.checked_mul(10)?.checked_add(u64::from(c - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_names_are_refused_at_any_depth() {
        for text in [
            r#"{"a":1,"a":2}"#,
            r#"{"x":{"b":1,"c":2,"b":1}}"#,
            r#"{"envelopes":[{"id":"e1","content":{"seq":1,"seq":2}}]}"#,
            r#"[[{"k":null,"k":null}]]"#,
        ] {
            assert!(
                matches!(
                    parse_json(text.as_bytes()),
                    Err(JsonError::DuplicateName(_))
                ),
                "{text}"
            );
        }
        assert_eq!(
            parse_json(br#"{"a":{"a":1},"b":[{"a":2}]}"#).unwrap(),
            serde_json::json!({"a": {"a": 1}, "b": [{"a": 2}]}),
            "the same name in different objects is fine"
        );
    }

    #[test]
    fn names_that_differ_only_in_escapes_are_the_same_name() {
        assert_eq!(
            parse_json(br#"{"a":1,"\u0061":2}"#),
            Err(JsonError::DuplicateName("a".into()))
        );
    }

    #[test]
    fn trailing_text_and_deep_nesting_are_refused() {
        assert!(matches!(parse_json(b"{} x"), Err(JsonError::Syntax(_))));
        assert!(parse_json(b" {} \n").is_ok());
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert!(matches!(
            parse_json(deep.as_bytes()),
            Err(JsonError::Syntax(_))
        ));
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse_json(ok.as_bytes()).is_ok());
    }

    #[test]
    fn message_ids_have_one_spelling() {
        let id = "00112233445566778899aabbccddeeff";
        assert_eq!(parse_message_id(id).unwrap()[15], 0xff);
        for bad in [
            "00112233445566778899AABBCCDDEEFF",
            "00112233445566778899aabbccddeeFf",
            "+0112233445566778899aabbccddeeff",
            "0+112233445566778899aabbccddeeff",
            "00112233445566778899aabbccddeef",
            "00112233445566778899aabbccddeeff0",
            "0011223344556677889 aabbccddeeff",
            "00112233445566778899aabbccddeé",
        ] {
            assert_eq!(parse_message_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn references_and_decimals_have_one_spelling() {
        assert_eq!(parse_reference("00000000000000ff"), Some(255));
        for bad in [
            "00000000000000FF",
            "+0000000000000ff",
            "ff",
            "000000000000000ff",
        ] {
            assert_eq!(parse_reference(bad), None, "{bad}");
        }
        assert_eq!(parse_decimal("0"), Some(0));
        assert_eq!(parse_decimal("1764400000000"), Some(1_764_400_000_000));
        assert_eq!(parse_decimal("18446744073709551615"), Some(u64::MAX));
        for bad in [
            "",
            "+1",
            "-1",
            "01",
            " 1",
            "1 ",
            "1e3",
            "18446744073709551616",
            "١",
        ] {
            assert_eq!(parse_decimal(bad), None, "{bad}");
        }
    }
}
