//! Media uploads and downloads.
//!
//! - `POST /api/v1/media` — the raw file as the body, its type in `Content-Type` → 201
//!   `{"media_id","size","content_type"}`. JPEG and PNG lose their metadata (EXIF with GPS,
//!   XMP, IPTC, comments, text chunks) before storage; pixels are untouched. Over
//!   `media.max_bytes` or the owner's `media.quota_bytes` → 413.
//! - `GET /api/v1/media/{id}` — the file, for its owner and members of conversations it was
//!   sent in; 404 for anyone else.

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use serde_json::json;

use super::error::ApiError;
use super::json::{Body, read_body, reply};
use crate::accounts::Session;
use crate::media::{Media, MediaError};

/// `POST /api/v1/media` → 201 `{"media_id","size","content_type"}`.
pub async fn upload(
    media: &Media,
    session: &Session,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the file's type in Content-Type",
            )
        })?
        .to_string();
    if content_type.starts_with("multipart/") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the file itself as the body with its own Content-Type (multipart is not accepted)",
        ));
    }
    let data = read_body(req, media.max_bytes() as usize).await?;
    let id = media
        .upload(session.user, &content_type, data.to_vec())
        .await?;
    let (ct, stored) = media.fetch(session.user, &id).await?;
    Ok(reply(
        StatusCode::CREATED,
        &json!({"media_id": id, "size": stored.len(), "content_type": ct}),
    ))
}

/// `GET /api/v1/media/{id}` → 200, the bytes with their type.
pub async fn download(
    media: &Media,
    session: &Session,
    id: &str,
) -> Result<Response<Body>, ApiError> {
    let (ct, bytes) = media.fetch(session.user, id).await?;
    let mut r = Response::new(Full::new(Bytes::from(bytes)));
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_str(&ct).unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        "cache-control",
        HeaderValue::from_static("private, max-age=86400"),
    );
    Ok(r)
}

impl From<MediaError> for ApiError {
    fn from(e: MediaError) -> Self {
        match e {
            MediaError::TooLarge(_) | MediaError::OverQuota(_) => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                if matches!(e, MediaError::TooLarge(_)) {
                    "media_too_large"
                } else {
                    "quota_exceeded"
                },
                e.to_string(),
            ),
            MediaError::Invalid(m) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_media", m)
            }
            MediaError::NotFound => ApiError::not_found("no such media"),
            MediaError::Store(s) => s.into(),
            other => {
                tracing::error!(error = %other, "media operation failed");
                ApiError::internal()
            }
        }
    }
}
