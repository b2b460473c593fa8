//! `GET /api/v1/openapi.json` — the OpenAPI 3 description of the whole client API.

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Response};

use super::json::Body;

/// The document; kept next to the code and checked against the route table (`http/routes.rs`) by a test.
pub const OPENAPI_JSON: &str = include_str!("openapi.json");

/// `GET /api/v1/openapi.json` → 200, the document.
pub fn get() -> Response<Body> {
    let mut r = Response::new(super::json::full(Bytes::from_static(
        OPENAPI_JSON.as_bytes(),
    )));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The full validation (meta-schema, exactness, every response) is in the black-box tests'
    /// `tests::openapi`; here only that the document parses and says which OpenAPI it is.
    #[test]
    fn document_is_json_declaring_openapi_3_0_3() {
        let v: serde_json::Value = serde_json::from_str(OPENAPI_JSON).unwrap();
        assert_eq!(v["openapi"], "3.0.3");
    }
}
