//! Query strings of the client API: one reader, one rule for every endpoint.
//!
//! A query is `application/x-www-form-urlencoded` (percent-decoding and `+` as a space, by
//! `form_urlencoded`). The rules:
//! - a name the endpoint does not take is 400 `invalid_request`, naming it when it is a short
//!   plain name (it is the client's text: anything else is not echoed);
//! - a name given twice is 400 `invalid_request`;
//! - a bare name (`?limit`) is that name with an empty value, so it gets the same 422
//!   `invalid_field` as any other value the field does not take;
//! - empty pairs (`a=1&&b=2`, a trailing `&`) are ignored.

use super::error::ApiError;

/// The decoded pairs of one request's query, each name one of the endpoint's.
#[derive(Debug)]
pub struct Query {
    pairs: Vec<(&'static str, String)>,
}

impl Query {
    /// Reads `raw` (the part after `?`, if any) for an endpoint that takes `names`.
    pub fn parse(raw: Option<&str>, names: &[&'static str]) -> Result<Query, ApiError> {
        let mut pairs: Vec<(&'static str, String)> = Vec::new();
        for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            if k.is_empty() && v.is_empty() {
                continue;
            }
            let Some(name) = names.iter().copied().find(|n| *n == k) else {
                return Err(unknown(&k, names));
            };
            if pairs.iter().any(|(n, _)| *n == name) {
                return Err(ApiError::bad_request(
                    "invalid_request",
                    format!("query parameter `{name}` is given more than once"),
                ));
            }
            pairs.push((name, v.into_owned()));
        }
        Ok(Query { pairs })
    }

    /// The value given for `name`, if any.
    pub fn str(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// `name` as a whole number in `range`, if given; anything else is 422 naming it.
    pub fn u64(
        &self,
        name: &str,
        range: std::ops::RangeInclusive<u64>,
        reason: &str,
    ) -> Result<Option<u64>, ApiError> {
        let Some(v) = self.str(name) else {
            return Ok(None);
        };
        // Digits only: `u64::from_str` would also take a leading `+`, a second spelling.
        let n = (!v.is_empty() && v.len() <= 20 && v.bytes().all(|b| b.is_ascii_digit()))
            .then(|| v.parse::<u64>().ok())
            .flatten()
            .filter(|n| range.contains(n));
        n.map(Some).ok_or_else(|| ApiError::invalid(name, reason))
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;
    use proptest::prelude::*;

    const NAMES: &[&str] = &["before", "after", "limit"];

    #[test]
    fn values_are_percent_decoded_and_empty_pairs_ignored() {
        let q = Query::parse(Some("limit=%31%30&&after=5&"), NAMES).unwrap();
        assert_eq!(q.u64("limit", 1..=200, "1 to 200").unwrap(), Some(10));
        assert_eq!(q.u64("after", 0..=u64::MAX, "n").unwrap(), Some(5));
        assert_eq!(q.u64("before", 0..=u64::MAX, "n").unwrap(), None);
        let q = Query::parse(Some("lang=e%6E"), &["lang"]).unwrap();
        assert_eq!(q.str("lang"), Some("en"));
    }

    #[test]
    fn an_unknown_or_repeated_name_is_400_and_a_bare_name_is_422_naming_it() {
        let e = Query::parse(Some("limit=1&sort=asc"), NAMES).unwrap_err();
        assert_eq!(
            (e.status, e.code),
            (StatusCode::BAD_REQUEST, "invalid_request")
        );
        assert!(e.message.contains("`sort`"), "{}", e.message);
        let e = Query::parse(Some("limit=1&limit=2"), NAMES).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        let q = Query::parse(Some("limit"), NAMES).unwrap();
        let e = q.u64("limit", 1..=200, "must be 1 to 200").unwrap_err();
        assert_eq!(
            (e.status, e.code),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")
        );
        assert!(e.message.starts_with("limit:"), "{}", e.message);
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
            "",
            "99999999999999999999999",
        ] {
            let raw = format!("limit={}", v.replace(' ', "%20").replace('+', "%2B"));
            let q = Query::parse(Some(&raw), NAMES).unwrap();
            assert!(
                q.u64("limit", 0..=u64::MAX, "n").is_err(),
                "{v:?} was taken"
            );
        }
    }

    #[test]
    fn a_name_that_is_not_plain_is_not_echoed() {
        let e = Query::parse(Some("%3Cscript%3E=1"), NAMES).unwrap_err();
        assert!(!e.message.contains("script"), "{}", e.message);
        let e = Query::parse(Some("x=1"), &[]).unwrap_err();
        assert!(
            e.message.contains("takes no query parameters"),
            "{}",
            e.message
        );
    }

    proptest! {
        /// Any query string gets an answer, never a panic: either pairs of the endpoint's
        /// names (each at most once), or a 400 naming the rule.
        #[test]
        fn any_query_is_read_or_refused_with_400(raw in "[a-z=&%+0-9A-F\\x00-\\x7f\u{80}-\u{10ffff}]{0,64}") {
            match Query::parse(Some(&raw), NAMES) {
                Ok(q) => {
                    for n in NAMES {
                        let _ = q.u64(n, 1..=200, "1 to 200");
                    }
                    prop_assert!(q.pairs.len() <= NAMES.len());
                }
                Err(e) => {
                    prop_assert_eq!(e.status, StatusCode::BAD_REQUEST);
                    prop_assert_eq!(e.code, "invalid_request");
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
            let q = Query::parse(Some(&format!("limit={value}")), NAMES).unwrap();
            prop_assert_eq!(q.u64("limit", 1..=200, "r").unwrap(), Some(n));
        }
    }
}
