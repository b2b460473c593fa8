//! `GET /api/v1/policy` — the current privacy policy, readable before registering (5.4).

use http::{Response, StatusCode};

use super::error::ApiError;
use super::json::{Body, reply};
use crate::policy::{Lang, Policy};

/// `GET /api/v1/policy[?lang=zh|en]` → `{"version","effective","language","languages","text"}`.
/// Chinese by default.
pub fn get(policy: &Policy, query: Option<&str>) -> Result<Response<Body>, ApiError> {
    let mut lang = Lang::Zh;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("lang", v)) => {
                lang =
                    Lang::parse(v).ok_or_else(|| ApiError::invalid("lang", "must be zh or en"))?;
            }
            _ => {
                return Err(ApiError::bad_request(
                    "invalid_request",
                    "the only query parameter is `lang`",
                ));
            }
        }
    }
    Ok(reply(
        StatusCode::OK,
        &serde_json::json!({
            "version": policy.version,
            "effective": policy.effective.to_string(),
            "language": lang.code(),
            "languages": Lang::ALL.iter().map(|l| l.code()).collect::<Vec<_>>(),
            "text": policy.text(lang),
        }),
    ))
}
