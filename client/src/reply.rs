//! [`Reply`]: one response, read to the end.

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{ApiError, ClientError};

/// A response, fully read.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// The body as JSON.
    pub fn json(&self) -> Result<Value, ClientError> {
        Ok(serde_json::from_slice(&self.body)?)
    }

    /// The body read into `T`.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ClientError> {
        Ok(serde_json::from_slice(&self.body)?)
    }

    /// The `error` of an error answer, when the body has the API's error shape.
    pub fn error(&self) -> Option<ApiError> {
        ApiError::parse(&self.body)
    }

    /// This reply if its status is one of `expected`, else a [`ClientError::Status`] with the
    /// node's error.
    pub fn expect_status(self, expected: &[StatusCode]) -> Result<Reply, ClientError> {
        if expected.contains(&self.status) {
            Ok(self)
        } else {
            Err(ClientError::Status {
                status: self.status,
                error: self.error(),
                body: String::from_utf8_lossy(&self.body).into_owned(),
            })
        }
    }

    /// The body as text (lossy), for messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: StatusCode, body: &'static str) -> Reply {
        Reply {
            status,
            headers: HeaderMap::new(),
            body: Bytes::from_static(body.as_bytes()),
        }
    }

    #[test]
    fn an_expected_status_passes_the_reply_through() {
        let r = reply(StatusCode::CREATED, r#"{"id":"c1"}"#)
            .expect_status(&[StatusCode::OK, StatusCode::CREATED])
            .expect("201 is expected");
        assert_eq!(r.json().expect("json")["id"], "c1");
    }

    #[test]
    fn another_status_is_an_error_carrying_the_nodes_error() {
        let e = reply(
            StatusCode::UNPROCESSABLE_ENTITY,
            r#"{"error":{"code":"invalid_input","message":"phone: not a number"}}"#,
        )
        .expect_status(&[StatusCode::CREATED])
        .expect_err("422 is not 201");
        match e {
            ClientError::Status { status, error, .. } => {
                assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
                assert_eq!(error.expect("error body").code, "invalid_input");
            }
            other => panic!("{other:?}"),
        }
    }
}
