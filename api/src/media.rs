//! Media uploads and downloads.
//!
//! - `POST /api/v1/media` — the raw file as the body, its type in `Content-Type`; or
//!   `multipart/form-data` with one part named `file` (its own `Content-Type`), parsed as it
//!   arrives → 201 `{"media_id","size","content_type"}`, `content_type` being the type sniffed
//!   from the bytes. Images lose their metadata by their real format (JPEG, PNG, GIF, WebP);
//!   other image formats → 415 `unsupported_image`. Over `media.max_bytes` → 413
//!   `body_too_large`, over the owner's `media.quota_bytes` → 413 `quota_exceeded`; while
//!   `media.max_concurrent_uploads` are in progress → 503 `uploads_busy` with `Retry-After`.
//! - `GET /api/v1/media/{id}` — the file, for its owner and members of conversations it was
//!   sent in (404 for anyone else), streamed chunk by chunk, with its sniffed type, `nosniff`, a `sandbox` CSP, and
//!   `Content-Disposition: attachment` unless it is an image, audio or video type browsers
//!   render safely. A post's media is served the same way by
//!   `GET /api/v1/communities/{id}/posts/{post}/media/{media}` (`communities.rs`).

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::Either;
use serde_json::json;

use super::body::Incoming;
use super::error::ApiError;
use super::json::{self, Body, Streamed, reply};
use domain::accounts::Session;
use domain::media::sniff::OTHER_TYPES;
use domain::media::{Media, MediaError};

/// Room for multipart framing and small fields (a caption) around the file.
const MULTIPART_OVERHEAD: u64 = 64 * 1024;

/// Seconds a client is asked to wait when all upload places are taken.
const BUSY_RETRY_SECS: u64 = 2;

fn too_large(limit: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("the request body is larger than {limit} bytes"),
    )
}

fn unreadable() -> ApiError {
    ApiError::bad_request("bad_body", "the request body could not be read")
}

/// `POST /api/v1/media` → 201 `{"media_id","size","content_type"}`.
pub async fn upload(
    media: &Media,
    session: &Session,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    // Every answer given before the body is read lets the client finish sending it.
    let (slot, content_type, multipart, max) = match admit(media, &req) {
        Ok(admitted) => admitted,
        Err(e) => {
            json::discard(req);
            return Err(e);
        }
    };
    let (content_type, data) = if multipart {
        let boundary = multer::parse_boundary(&content_type).map_err(|_| {
            ApiError::bad_request(
                "bad_multipart",
                "multipart/form-data needs a boundary parameter",
            )
        });
        match boundary {
            Ok(boundary) => file_part(req, boundary, max).await?,
            Err(e) => {
                json::discard(req);
                return Err(e);
            }
        }
    } else {
        let limit = usize::try_from(max).unwrap_or(usize::MAX);
        let data = json::read_body(req, limit).await?;
        (content_type, Vec::from(data))
    };
    let stored = media
        .upload(slot, session.user, &content_type, data)
        .await?;
    Ok(reply(
        StatusCode::CREATED,
        &json!({"media_id": stored.id, "size": stored.size, "content_type": stored.content_type}),
    ))
}

/// What is decided from the head alone: the type, whether it is multipart, the size limit and
/// an upload place (taken before the body is read: the bound is on memory held by uploads).
fn admit(
    media: &Media,
    req: &Request<Incoming>,
) -> Result<(domain::media::UploadSlot, String, bool, u64), ApiError> {
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
    let lower = content_type.to_ascii_lowercase();
    let multipart = lower.starts_with("multipart/form-data");
    if lower.starts_with("multipart/") && !multipart {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the file as the body with its own Content-Type, or as multipart/form-data",
        ));
    }
    let max = media.max_bytes();
    let limit = max + if multipart { MULTIPART_OVERHEAD } else { 0 };
    if let Some(v) = req.headers().get(CONTENT_LENGTH) {
        let len = v
            .to_str()
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| ApiError::bad_request("bad_header", "Content-Length is not a number"))?;
        if len > limit {
            return Err(too_large(max));
        }
    }
    let Some(slot) = media.begin_upload() else {
        let mut e = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "uploads_busy",
            "the node is receiving as many uploads as it allows at once; try again shortly",
        );
        e.retry_after = Some(BUSY_RETRY_SECS);
        return Err(e);
    };
    Ok((slot, content_type, multipart, max))
}

/// The part named `file` of a multipart/form-data body, streamed: its Content-Type (default
/// application/octet-stream) and bytes. Other parts are read past and dropped.
async fn file_part(
    req: Request<Incoming>,
    boundary: String,
    max: u64,
) -> Result<(String, Vec<u8>), ApiError> {
    let limits = multer::SizeLimit::new()
        .whole_stream(max + MULTIPART_OVERHEAD)
        .per_field(max);
    let mut form = multer::Multipart::with_constraints(
        json::paced_data(req),
        boundary,
        multer::Constraints::new().size_limit(limits),
    );
    let bad = |m: &str| ApiError::bad_request("bad_multipart", m.to_string());
    let from_multer = |e: multer::Error| match e {
        multer::Error::FieldSizeExceeded { .. } | multer::Error::StreamSizeExceeded { .. } => {
            too_large(max)
        }
        multer::Error::StreamReadFailed(e) => json::is_too_slow(&*e).unwrap_or_else(unreadable),
        _ => bad("the multipart/form-data body is malformed"),
    };
    while let Some(mut field) = form.next_field().await.map_err(from_multer)? {
        if field.name() != Some("file") {
            while field.chunk().await.map_err(from_multer)?.is_some() {}
            continue;
        }
        let ct = field
            .content_type()
            .map_or_else(|| "application/octet-stream".to_string(), |m| m.to_string());
        let mut data = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(from_multer)? {
            data.extend_from_slice(&chunk);
        }
        return Ok((ct, data));
    }
    Err(bad("no part named `file`"))
}

/// Types a browser may render in place: the image formats the node strips, and audio and
/// video. Everything else is served as an attachment.
fn renders_inline(ct: &str) -> bool {
    matches!(ct, "image/jpeg" | "image/png" | "image/gif" | "image/webp")
        || (ct.starts_with("audio/") || ct.starts_with("video/")) && OTHER_TYPES.contains(&ct)
}

/// The type a stored media is served with: one the sniffer names (records stored before types
/// were sniffed may hold whatever their uploader declared: those are served as bytes).
fn served_type(stored: &str) -> &str {
    if renders_inline(stored) || OTHER_TYPES.contains(&stored) || stored == "text/plain" {
        stored
    } else {
        "application/octet-stream"
    }
}

/// Seconds a client is told to wait before asking again for media still arriving.
pub const ARRIVING_RETRY_SECS: u64 = 2;

/// `GET /api/v1/media/{id}` → 200, the bytes with their sniffed type; 503 `media_arriving`
/// with `Retry-After` while a copy from another node that the viewer may see is being fetched.
pub async fn download(
    media: &Media,
    session: &Session,
    id: &str,
) -> Result<Response<Body>, ApiError> {
    let mut reader = media.open(session.user, id).await?;
    let stored_type = std::mem::take(&mut reader.content_type);
    let size = reader.size;
    Ok(streamed(&stored_type, size, reader))
}

/// Media read chunk by chunk (this node's, or a post's through its host).
pub(crate) trait Chunks: Send + 'static {
    fn next(&mut self) -> impl Future<Output = Result<Option<Vec<u8>>, String>> + Send;
}

impl Chunks for domain::media::MediaReader {
    async fn next(&mut self) -> Result<Option<Vec<u8>>, String> {
        self.next_chunk().await.map_err(|e| e.to_string())
    }
}

impl Chunks for domain::community::PostMediaReader {
    async fn next(&mut self) -> Result<Option<Vec<u8>>, String> {
        self.next_chunk().await.map_err(|e| e.to_string())
    }
}

/// The answer that streams `reader`'s `size` bytes of type `stored_type`, with the headers
/// that keep media from running or loading anything.
pub(crate) fn streamed(stored_type: &str, size: u64, mut reader: impl Chunks) -> Response<Body> {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let producer = async move {
        loop {
            let item = match reader.next().await {
                Ok(Some(chunk)) => Ok(Bytes::from(chunk)),
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "a media download stopped part way");
                    Err("the file could not be read to its end".to_string())
                }
            };
            let failed = item.is_err();
            if tx.send(item).await.is_err() || failed {
                break;
            }
        }
    };
    let mut r = Response::new(Either::Right(Streamed::new(producer, rx)));
    let ct = served_type(stored_type);
    let h = r.headers_mut();
    h.insert(CONTENT_LENGTH, HeaderValue::from(size));
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_str(if ct == "text/plain" {
            "text/plain; charset=utf-8"
        } else {
            ct
        })
        .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    if !renders_inline(ct) {
        h.insert(
            "content-disposition",
            HeaderValue::from_static("attachment"),
        );
    }
    // Even opened directly from the node's origin, media can run nothing and load nothing.
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "sandbox; default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'",
        ),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        "cache-control",
        HeaderValue::from_static("private, max-age=86400"),
    );
    r
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
            MediaError::Malformed(m) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_media",
                m.to_string(),
            ),
            MediaError::UnsupportedImage(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_image",
                e.to_string(),
            ),
            MediaError::NotFound => ApiError::not_found("no such media"),
            MediaError::Arriving => {
                let mut e = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "media_arriving",
                    e.to_string(),
                );
                e.retry_after = Some(ARRIVING_RETRY_SECS);
                e
            }
            MediaError::Store(s) => s.into(),
            other => {
                tracing::error!(error = %other, "media operation failed");
                ApiError::internal()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_safe_media_types_render_inline_and_legacy_types_are_served_as_bytes() {
        for t in ["image/jpeg", "image/webp", "audio/ogg", "video/mp4"] {
            assert!(renders_inline(t), "{t}");
        }
        for t in [
            "text/html",
            "image/svg+xml",
            "application/pdf",
            "text/plain",
            "video/x-evil",
        ] {
            assert!(!renders_inline(t), "{t}");
        }
        assert_eq!(served_type("text/html"), "application/octet-stream");
        assert_eq!(served_type("image/svg+xml"), "application/octet-stream");
        assert_eq!(served_type("application/pdf"), "application/pdf");
        assert_eq!(served_type("text/plain"), "text/plain");
    }
}
