//! Query strings of the client API: each endpoint's query read into its own struct, by one rule
//! for every endpoint.
//!
//! A query is `application/x-www-form-urlencoded` (percent-decoding and `+` as a space, by
//! `form_urlencoded`); its pairs are deserialized into the endpoint's [`Params`] struct by
//! `serde_urlencoded`. The rules:
//! - the query's *names* are the client's to get right, and every mistake in them is 400
//!   `invalid_request`: a name the endpoint does not take (named when it is a short plain name:
//!   it is the client's text, anything else is not echoed), a name given twice, and a name
//!   without a value (`?limit` or `?limit=`);
//! - a *value* the field does not take is 422 `invalid_field`, `name: reason`, the reason the
//!   struct's [`Params::expects`] gives (never serde's message, which can quote the value);
//! - empty pairs (`a=1&&b=2`, a trailing `&`, a lone `=`) are ignored;
//! - an endpoint that takes no parameters reads its query as [`NoParams`], so any name is 400.

use std::marker::PhantomData;

use serde::de::{self, DeserializeOwned, Deserializer, Visitor};

use super::error::ApiError;

/// One endpoint's query parameters, as one struct of `Option` fields.
pub trait Params: DeserializeOwned {
    /// What a value of the field `name` must be: the reason of the 422 when it does not
    /// deserialize.
    fn expects(name: &str) -> &'static str;
}

/// The query of an endpoint that takes none.
#[derive(Debug, serde::Deserialize)]
pub struct NoParams {}

impl Params for NoParams {
    fn expects(_: &str) -> &'static str {
        "is not a parameter of this endpoint"
    }
}

/// Reads `raw` (the part after `?`, if any) into the endpoint's struct `T`.
pub fn read<T: Params>(raw: Option<&str>) -> Result<T, ApiError> {
    let raw = raw.unwrap_or("");
    let names = names::<T>();
    let mut seen: Vec<&'static str> = Vec::with_capacity(names.len());
    for (k, v) in form_urlencoded::parse(raw.as_bytes()) {
        if k.is_empty() && v.is_empty() {
            continue;
        }
        let Some(name) = names.iter().copied().find(|n| *n == k) else {
            return Err(unknown(&k, names));
        };
        if seen.contains(&name) {
            return Err(ApiError::bad_request(
                "invalid_request",
                format!("query parameter `{name}` is given more than once"),
            ));
        }
        if v.is_empty() {
            return Err(ApiError::bad_request(
                "invalid_request",
                format!("query parameter `{name}` has no value: leave it out or give one"),
            ));
        }
        seen.push(name);
    }
    // Every name is now one of `T`'s, once, with a value; only values can still fail. (The
    // empty pairs skipped above reach serde as the name "", which a struct ignores.)
    let pairs = serde_urlencoded::Deserializer::new(form_urlencoded::parse(raw.as_bytes()));
    serde_path_to_error::deserialize(pairs).map_err(|e| {
        let path = e.path().to_string();
        match names.iter().find(|n| **n == path) {
            Some(name) => ApiError::invalid(name, T::expects(name)),
            // Not one field's value (cannot happen for a struct of fields); nothing of the
            // client's text is quoted.
            None => ApiError::bad_request("invalid_request", "the query string cannot be read"),
        }
    })
}

/// The field names of the struct `T` deserializes into, as its `Deserialize` declares them.
pub fn names<T: DeserializeOwned>() -> &'static [&'static str] {
    let mut probe = NameProbe(&[]);
    // The probe always refuses (it only records what the struct asked for).
    let _ = T::deserialize(&mut probe);
    probe.0
}

fn unknown(name: &str, names: &[&'static str]) -> ApiError {
    let takes = match names {
        [] => "this endpoint takes no query parameters".to_string(),
        _ => format!(
            "the query parameters here are {}",
            names
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let plain = name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    let message = if plain {
        format!("unknown query parameter `{name}`: {takes}")
    } else {
        format!("unknown query parameter: {takes}")
    };
    ApiError::bad_request("invalid_request", message)
}

/// A deserializer that records the field names a struct asks for, and refuses.
struct NameProbe(&'static [&'static str]);

impl<'de> Deserializer<'de> for &mut NameProbe {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Self::Error> {
        self.0 = fields;
        Err(de::Error::custom("names recorded"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// A whole number within `MIN..=MAX`, written in digits only: no sign, space or leading `+`
/// (`u64::from_str` would take `+5`, a second spelling of one value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Whole<const MIN: u64 = 0, const MAX: u64 = { u64::MAX }>(pub u64);

impl<'de, const MIN: u64, const MAX: u64> serde::Deserialize<'de> for Whole<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(DigitsVisitor::<MIN, MAX>(PhantomData))
    }
}

struct DigitsVisitor<const MIN: u64, const MAX: u64>(PhantomData<()>);

impl<const MIN: u64, const MAX: u64> Visitor<'_> for DigitsVisitor<MIN, MAX> {
    type Value = Whole<MIN, MAX>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "a whole number from {MIN} to {MAX}")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        (!v.is_empty() && v.len() <= 20 && v.bytes().all(|b| b.is_ascii_digit()))
            .then(|| v.parse::<u64>().ok())
            .flatten()
            .filter(|n| (MIN..=MAX).contains(n))
            .map(Whole)
            .ok_or_else(|| E::custom("out of range or not digits"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;
    use proptest::prelude::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    struct Page {
        before: Option<Whole>,
        after: Option<Whole>,
        limit: Option<Whole<1, 200>>,
    }

    impl Params for Page {
        fn expects(name: &str) -> &'static str {
            match name {
                "limit" => "must be 1 to 200",
                _ => "must be a whole number",
            }
        }
    }

    #[derive(Debug, Deserialize)]
    struct Lang {
        lang: Option<String>,
    }

    impl Params for Lang {
        fn expects(_: &str) -> &'static str {
            "must be zh or en"
        }
    }

    #[test]
    fn the_names_are_the_structs_fields() {
        assert_eq!(names::<Page>(), ["before", "after", "limit"]);
        assert_eq!(names::<NoParams>(), [] as [&str; 0]);
    }

    #[test]
    fn values_are_percent_decoded_and_empty_pairs_ignored() {
        let q: Page = read(Some("limit=%31%30&&after=5&=")).unwrap();
        assert_eq!(
            (q.limit, q.after, q.before),
            (Some(Whole(10)), Some(Whole(5)), None)
        );
        let q: Lang = read(Some("lang=e%6E")).unwrap();
        assert_eq!(q.lang.as_deref(), Some("en"));
        let q: Lang = read(Some("lang=a+b%20c")).unwrap();
        assert_eq!(q.lang.as_deref(), Some("a b c"));
        let q: Page = read(None).unwrap();
        assert_eq!((q.limit, q.after, q.before), (None, None, None));
    }

    #[test]
    fn an_unknown_repeated_or_valueless_name_is_400_and_a_bad_value_422_naming_it() {
        for raw in [
            "limit=1&sort=asc",
            "limit=1&limit=2",
            "limit",
            "limit=",
            "after=1&limit",
            "=5",
        ] {
            let e = read::<Page>(Some(raw)).unwrap_err();
            assert_eq!(
                (e.status, e.code),
                (StatusCode::BAD_REQUEST, "invalid_request"),
                "{raw}"
            );
        }
        let e = read::<Page>(Some("limit=1&sort=asc")).unwrap_err();
        assert!(e.message.contains("`sort`"), "{}", e.message);
        let e = read::<Page>(Some("limit")).unwrap_err();
        assert!(e.message.contains("`limit` has no value"), "{}", e.message);
        for (raw, message) in [
            ("limit=0", "limit: must be 1 to 200"),
            ("limit=201", "limit: must be 1 to 200"),
            ("limit=abc", "limit: must be 1 to 200"),
            ("before=1&after=x", "after: must be a whole number"),
        ] {
            let e = read::<Page>(Some(raw)).unwrap_err();
            assert_eq!(
                (e.status, e.code, e.message.as_str()),
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", message),
                "{raw}"
            );
        }
    }

    #[test]
    fn an_endpoint_without_parameters_refuses_any_name() {
        assert!(read::<NoParams>(None).is_ok());
        assert!(read::<NoParams>(Some("&&")).is_ok());
        let e = read::<NoParams>(Some("x=1")).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(
            e.message.contains("takes no query parameters"),
            "{}",
            e.message
        );
    }

    #[test]
    fn numbers_have_one_spelling() {
        for v in [
            "+5",
            "-5",
            " 5",
            "5 ",
            "0x5",
            "5.0",
            "99999999999999999999999",
        ] {
            let raw = format!("after={}", v.replace(' ', "%20").replace('+', "%2B"));
            let e = read::<Page>(Some(&raw)).unwrap_err();
            assert_eq!(
                e.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{v:?} was taken"
            );
        }
        let q: Page = read(Some("after=18446744073709551615")).unwrap();
        assert_eq!(q.after, Some(Whole(u64::MAX)));
    }

    #[test]
    fn a_name_or_value_that_is_not_plain_is_not_echoed() {
        let e = read::<Page>(Some("%3Cscript%3E=1")).unwrap_err();
        assert!(!e.message.contains("script"), "{}", e.message);
        let e = read::<Page>(Some("limit=%3Cscript%3E")).unwrap_err();
        assert!(!e.message.contains("script"), "{}", e.message);
    }

    proptest! {
        /// Any query string gets an answer, never a panic: the struct, a 400 for its names or
        /// a 422 naming one of its fields.
        #[test]
        fn any_query_is_read_or_refused(raw in "[a-z=&%+0-9A-F\\x00-\\x7f\u{80}-\u{10ffff}]{0,64}") {
            match read::<Page>(Some(&raw)) {
                Ok(_) => {}
                Err(e) if e.status == StatusCode::BAD_REQUEST => {
                    prop_assert_eq!(e.code, "invalid_request");
                }
                Err(e) => {
                    prop_assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
                    prop_assert!(["before:", "after:", "limit:"].iter().any(|p| e.message.starts_with(p)));
                }
            }
        }

        /// Every whole number in range reads back as itself, whatever its percent-encoding.
        #[test]
        fn a_number_reads_back_however_it_is_encoded(n in 1u64..=200, encode in any::<bool>()) {
            let digits = n.to_string();
            let value: String = if encode {
                digits.bytes().map(|b| format!("%{b:02X}")).collect()
            } else {
                digits
            };
            let q: Page = read(Some(&format!("limit={value}"))).unwrap();
            prop_assert_eq!(q.limit, Some(Whole(n)));
        }
    }
}
