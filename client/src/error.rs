//! What can go wrong talking to a node ([`ClientError`]), and the node's own error answer
//! ([`ApiError`], the `{"error":{"code","message"}}` body of every 4xx and 5xx).

use std::path::PathBuf;
use std::time::Duration;

use http::StatusCode;
use serde::Deserialize;

/// The `error` object of a node's error answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ApiError {
    /// A stable, machine-readable code (`conflict`, `invalid_input`, …).
    pub code: String,
    /// A human-readable sentence.
    pub message: String,
}

impl ApiError {
    /// The `error` of an error body, if `body` is one (a JSON object with a string `code` and
    /// a string `message`).
    pub fn parse(body: &[u8]) -> Option<ApiError> {
        #[derive(Deserialize)]
        struct Wrapper {
            error: ApiError,
        }
        serde_json::from_slice::<Wrapper>(body)
            .ok()
            .map(|w| w.error)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// Why a call did not give the answer asked for.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("reading the CA file {path}: {source}")]
    CaFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the CA file {path} holds no usable certificate")]
    NoCertificate { path: PathBuf },
    #[error("TLS set-up: {0}")]
    TlsConfig(#[from] rustls::Error),
    #[error("not a valid server name: {0}")]
    ServerName(String),
    #[error("connecting: {0}")]
    Connect(std::io::Error),
    #[error("TLS handshake: {0}")]
    Tls(std::io::Error),
    #[error("HTTP: {0}")]
    Http(#[from] hyper::Error),
    #[error("building the request: {0}")]
    Request(#[from] http::Error),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("WebSocket: {0}")]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
    /// The event stream was closed, with the close frame's code and reason if it sent one.
    #[error("the event stream was closed: {0:?}")]
    Closed(Option<(u16, String)>),
    /// The node answered, with a status the call does not take as success.
    #[error("{status}: {}", .error.as_ref().map_or_else(|| .body.clone(), ApiError::to_string))]
    Status {
        status: StatusCode,
        /// The error body, when it has the API's error shape.
        error: Option<ApiError>,
        /// The body as text (lossy), for answers without the error shape.
        body: String,
    },
    /// The node answered with success, but not with what the API document promises.
    #[error("unexpected answer: {0}")]
    Unexpected(String),
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
}

impl ClientError {
    /// The status of a [`ClientError::Status`].
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ClientError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_body_gives_its_code_and_message() {
        let e = ApiError::parse(br#"{"error":{"code":"conflict","message":"taken"}}"#);
        assert_eq!(
            e,
            Some(ApiError {
                code: "conflict".into(),
                message: "taken".into()
            })
        );
    }

    #[test]
    fn a_body_without_the_error_shape_is_no_api_error() {
        for body in [
            &b"{}"[..],
            b"not json",
            br#"{"error":"conflict"}"#,
            br#"{"error":{"code":"conflict"}}"#,
            br#"{"error":{"code":7,"message":"m"}}"#,
        ] {
            assert_eq!(
                ApiError::parse(body),
                None,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn a_status_error_names_the_code_and_message_or_else_the_body() {
        let with = ClientError::Status {
            status: StatusCode::CONFLICT,
            error: Some(ApiError {
                code: "conflict".into(),
                message: "taken".into(),
            }),
            body: String::new(),
        };
        assert_eq!(with.to_string(), "409 Conflict: conflict: taken");
        let without = ClientError::Status {
            status: StatusCode::BAD_GATEWAY,
            error: None,
            body: "upstream".into(),
        };
        assert_eq!(without.to_string(), "502 Bad Gateway: upstream");
        assert_eq!(without.status(), Some(StatusCode::BAD_GATEWAY));
    }
}
