//! Text shown to other people — nicknames, group names, device descriptions, profile fields,
//! file names: the one validator they all go through, so that no name can impersonate
//! another by characters the reader cannot see.
//!
//! A value is trimmed, put in Unicode NFC (so two spellings of one name are one name), and
//! refused when it holds a control character, a bidirectional control (U+202A–U+202E,
//! U+2066–U+2069, U+200E, U+200F, U+061C: they reorder what is shown, as in
//! `moc.elgoog` shown as `google.com`), a byte-order mark, a line or paragraph separator, a
//! noncharacter or unassigned code point (U+FFFF, U+FDD0…), a surrogate or a private-use
//! character, or when nothing in it is visible (only spaces, zero-width or other format
//! characters and combining marks). Format characters that shape real text (the zero-width
//! joiner of emoji sequences, the zero-width non-joiner of Persian) are kept inside text that
//! has visible characters.

use unicode_general_category::{GeneralCategory, get_general_category};
use unicode_normalization::UnicodeNormalization;

/// A value refused, naming the field and why (never echoing the value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ShownTextError {
    pub field: String,
    pub reason: String,
}

impl ShownTextError {
    fn new(field: &str, reason: &str) -> Self {
        ShownTextError {
            field: field.to_string(),
            reason: reason.to_string(),
        }
    }
}

/// Checks and normalises text other people will see: trimmed, NFC, `min..=max` characters
/// (counted after normalisation), nothing that hides or reorders what is shown, and at least
/// one visible character.
pub fn text(field: &str, value: &str, min: usize, max: usize) -> Result<String, ShownTextError> {
    let v: String = value.trim().nfc().collect();
    let n = v.chars().count();
    if n < min || n > max {
        return Err(ShownTextError::new(
            field,
            &format!("must be {min} to {max} characters"),
        ));
    }
    for c in v.chars() {
        if let Some(reason) = refused(c) {
            return Err(ShownTextError::new(field, reason));
        }
    }
    if n > 0 && !v.chars().any(visible) {
        return Err(ShownTextError::new(
            field,
            "must contain a visible character (not only spaces, zero-width or format characters)",
        ));
    }
    Ok(v)
}

/// Why `c` may not appear in shown text, if it may not.
fn refused(c: char) -> Option<&'static str> {
    use GeneralCategory as G;
    if is_bidi_control(c) {
        return Some("must not contain bidirectional control characters (such as U+202E)");
    }
    if c == '\u{feff}' {
        return Some("must not contain a byte-order mark (U+FEFF)");
    }
    match get_general_category(c) {
        G::Control => Some("must not contain control characters"),
        G::LineSeparator | G::ParagraphSeparator => {
            Some("must not contain line or paragraph separators")
        }
        G::Unassigned => Some("must not contain noncharacters or unassigned code points"),
        G::Surrogate | G::PrivateUse => Some("must not contain private-use characters"),
        _ => None,
    }
}

/// The characters that change the display order of text around them.
fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
    )
}

/// A letter, digit, punctuation mark or symbol: something a reader sees.
fn visible(c: char) -> bool {
    use GeneralCategory as G;
    !matches!(
        get_general_category(c),
        G::SpaceSeparator
            | G::Format
            | G::NonspacingMark
            | G::EnclosingMark
            | G::SpacingMark
            | G::Control
            | G::Unassigned
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refuses(value: &str) -> String {
        text("nickname", value, 1, 32).unwrap_err().to_string()
    }

    #[test]
    fn impersonating_text_is_refused_naming_the_field() {
        for (value, why) in [
            ("evil\u{202e}gnp.exe", "bidirectional"),
            ("a\u{2067}b", "bidirectional"),
            ("\u{200b}\u{200b}", "visible character"),
            ("\u{200d}", "visible character"),
            ("\u{0301}", "visible character"),
            ("name\u{ffff}", "noncharacters"),
            ("\u{fdd0}x", "noncharacters"),
            ("\u{feff}Admin", "byte-order mark"),
            ("tab\there", "control"),
            ("a\u{2028}b", "line or paragraph"),
            ("\u{e000}", "private-use"),
        ] {
            let e = refuses(value);
            assert!(e.starts_with("nickname: "), "{value:?}: {e}");
            assert!(e.contains(why), "{value:?}: {e}");
        }
    }

    #[test]
    fn real_names_pass_and_are_normalised_to_nfc() {
        // "é" as e + combining acute becomes the one precomposed character.
        assert_eq!(text("nickname", " Re\u{0301}my ", 1, 32).unwrap(), "Rémy");
        assert_eq!(text("nickname", "小李", 1, 32).unwrap(), "小李");
        // Emoji sequences joined by ZWJ, and Persian with a ZWNJ, are real text.
        let family = "\u{1f468}\u{200d}\u{1f469}\u{200d}\u{1f467}";
        assert_eq!(text("nickname", family, 1, 32).unwrap(), family);
        assert!(text("nickname", "می\u{200c}خواهم", 1, 32).is_ok());
        assert!(text("nickname", "ok", 3, 32).is_err(), "length");
        assert!(
            text("nickname", "   ", 1, 32).is_err(),
            "empty once trimmed"
        );
    }
}
