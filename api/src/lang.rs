//! The language an answer's words are written in: the `lang` query parameter (`zh` or `en`)
//! when given, else the best of the request's `Accept-Language` that the node has, else
//! Chinese. A `lang` the node does not have is an error; an `Accept-Language` it cannot use is
//! a preference it cannot meet, so it falls back instead.

use http::HeaderMap;

use super::error::ApiError;
use super::query::Params;
use domain::policy::Lang;

/// `?lang=zh|en`, the one query parameter of the endpoints that answer in a language.
#[derive(Debug, serde::Deserialize)]
pub struct LangQuery {
    pub lang: Option<String>,
}

impl Params for LangQuery {
    fn expects(_: &str) -> &'static str {
        LANG_REASON
    }
}

/// Why a `lang` is refused.
pub const LANG_REASON: &str = "must be zh or en";

/// The language of a request whose only query parameter is `lang`: [`negotiate`] on its query
/// and headers. Endpoints with more parameters read `lang` with them and call `negotiate`.
pub fn of_request(query: Option<&str>, headers: &HeaderMap) -> Result<Lang, ApiError> {
    negotiate(
        super::query::read::<LangQuery>(query)?.lang.as_deref(),
        headers,
    )
}

/// The language for a request with query value `lang` (already read from the query) and
/// `headers`.
pub fn negotiate(lang: Option<&str>, headers: &HeaderMap) -> Result<Lang, ApiError> {
    if let Some(v) = lang {
        return Lang::parse(v).ok_or_else(|| ApiError::invalid("lang", LANG_REASON));
    }
    // A list header: several lines are one list.
    let lines: Vec<&str> = headers
        .get_all(http::header::ACCEPT_LANGUAGE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    Ok(from_accept_language(&lines.join(",")).unwrap_or(Lang::Zh))
}

/// The language of `header` (an `Accept-Language` value) with the highest weight that the node
/// has, the first listed among equals; `None` when it names none of them with a weight above 0.
pub fn from_accept_language(header: &str) -> Option<Lang> {
    let mut best: Option<(u16, Lang)> = None;
    for item in header.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let mut parts = item.split(';').map(str::trim);
        let tag = parts.next().unwrap_or("");
        let primary = tag.split('-').next().unwrap_or("").to_ascii_lowercase();
        let Some(lang) = Lang::parse(&primary) else {
            continue;
        };
        let mut weight = Some(1000);
        for p in parts {
            if let Some(q) = p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")) {
                weight = qvalue(q);
            }
        }
        let Some(w) = weight.filter(|w| *w > 0) else {
            continue;
        };
        if best.is_none_or(|(b, _)| w > b) {
            best = Some((w, lang));
        }
    }
    best.map(|(_, l)| l)
}

/// An RFC 9110 qvalue (`0`, `0.5`, `1.000`, …) in thousandths; `None` if malformed.
fn qvalue(q: &str) -> Option<u16> {
    let (int, frac) = q.split_once('.').unwrap_or((q, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = frac
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(3)
        .fold(0u16, |n, b| n * 10 + u16::from(b - b'0'));
    match int {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_heaviest_language_the_node_has() {
        assert_eq!(from_accept_language("en-US,en;q=0.9"), Some(Lang::En));
        assert_eq!(
            from_accept_language("zh-CN,zh;q=0.9,en;q=0.8"),
            Some(Lang::Zh)
        );
        assert_eq!(
            from_accept_language("fr-FR, en;q=0.5, zh;q=0.4"),
            Some(Lang::En)
        );
        assert_eq!(
            from_accept_language("zh;q=0.2, EN-gb;q=0.7"),
            Some(Lang::En)
        );
        assert_eq!(
            from_accept_language("en;q=0.5, zh;q=0.5"),
            Some(Lang::En),
            "first among equals"
        );
        assert_eq!(from_accept_language("zh-Hant-TW"), Some(Lang::Zh));
    }

    #[test]
    fn accept_language_without_a_usable_language_gives_none() {
        for h in [
            "",
            "fr, de;q=0.5",
            "*",
            "en;q=0",
            "en;q=1.5",
            "en;q=abc",
            "en;q=0.1234",
            ";;,",
        ] {
            assert_eq!(from_accept_language(h), None, "{h:?}");
        }
    }

    #[test]
    fn the_lang_parameter_wins_and_an_unknown_one_is_refused() {
        let mut h = HeaderMap::new();
        h.insert(http::header::ACCEPT_LANGUAGE, "en".parse().unwrap());
        assert_eq!(negotiate(Some("zh"), &h).unwrap(), Lang::Zh);
        assert_eq!(negotiate(None, &h).unwrap(), Lang::En);
        assert_eq!(negotiate(None, &HeaderMap::new()).unwrap(), Lang::Zh);
        assert!(negotiate(Some("fr"), &h).is_err());
        h.append(http::header::ACCEPT_LANGUAGE, "zh;q=0.1".parse().unwrap());
        assert_eq!(negotiate(None, &h).unwrap(), Lang::En, "lines are one list");
    }
}
