//! Media uploads and downloads.
//!
//! - `POST /api/v1/media` — the raw file as the body, its type in `Content-Type`; or
//!   `multipart/form-data` with one part named `file` (its own `Content-Type`) → 201
//!   `{"media_id","size","content_type"}`. JPEG and PNG lose their metadata (EXIF with GPS,
//!   XMP, IPTC, comments, text chunks) before storage; pixels are untouched. Over
//!   `media.max_bytes` or the owner's `media.quota_bytes` → 413.
//! - `GET /api/v1/media/{id}` — the file, for its owner and members of conversations it was
//!   sent in; 404 for anyone else.

use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Request, Response, StatusCode};
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
    let lower = content_type.to_ascii_lowercase();
    let multipart = lower.starts_with("multipart/form-data");
    if lower.starts_with("multipart/") && !multipart {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the file as the body with its own Content-Type, or as multipart/form-data",
        ));
    }
    // Multipart framing adds a few hundred bytes around the file.
    let limit = media.max_bytes() as usize + if multipart { 8192 } else { 0 };
    let body = read_body(req, limit).await?;
    let (content_type, data) = if multipart {
        let boundary = boundary(&content_type).ok_or_else(|| {
            ApiError::bad_request(
                "bad_multipart",
                "multipart/form-data needs a boundary parameter",
            )
        })?;
        let (ct, data) =
            file_part(&body, &boundary).map_err(|m| ApiError::bad_request("bad_multipart", m))?;
        (ct, data.to_vec())
    } else {
        (content_type, body.to_vec())
    };
    let stored = media.upload(session.user, &content_type, data).await?;
    Ok(reply(
        StatusCode::CREATED,
        &json!({"media_id": stored.id, "size": stored.size, "content_type": stored.content_type}),
    ))
}

/// The `boundary` parameter of a multipart Content-Type.
fn boundary(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        let v = v.trim().trim_matches('"');
        (k.trim().eq_ignore_ascii_case("boundary") && (1..=70).contains(&v.len()))
            .then(|| v.to_string())
    })
}

fn find(h: &[u8], n: &[u8], from: usize) -> Option<usize> {
    h.get(from..)?
        .windows(n.len())
        .position(|w| w == n)
        .map(|i| i + from)
}

/// The part named `file` of a multipart/form-data body: its Content-Type (default
/// application/octet-stream) and bytes.
fn file_part<'a>(body: &'a [u8], boundary: &str) -> Result<(String, &'a [u8]), &'static str> {
    let delim = format!("--{boundary}");
    let mut pos = find(body, delim.as_bytes(), 0).ok_or("the body has no part")?;
    loop {
        pos += delim.len();
        if body.get(pos..pos + 2) == Some(b"--") {
            return Err("no part named `file`");
        }
        let head_start = pos + 2; // after CRLF
        let head_end = find(body, b"\r\n\r\n", head_start).ok_or("a part has no end of headers")?;
        let head = std::str::from_utf8(&body[head_start..head_end])
            .map_err(|_| "part headers are not UTF-8")?;
        let data_start = head_end + 4;
        let next = find(body, format!("\r\n{delim}").as_bytes(), data_start)
            .ok_or("a part is not terminated")?;
        let mut named_file = false;
        let mut ct = "application/octet-stream".to_string();
        for line in head.split("\r\n") {
            let (k, v) = line.split_once(':').unwrap_or((line, ""));
            if k.trim().eq_ignore_ascii_case("content-disposition") {
                named_file = v.split(';').any(|p| p.trim() == "name=\"file\"");
            } else if k.trim().eq_ignore_ascii_case("content-type") {
                ct = v.trim().to_string();
            }
        }
        if named_file {
            return Ok((ct, &body[data_start..next]));
        }
        pos = next + 2;
    }
}

/// `GET /api/v1/media/{id}` → 200, the bytes with their type.
pub async fn download(
    media: &Media,
    session: &Session,
    id: &str,
) -> Result<Response<Body>, ApiError> {
    let (ct, bytes) = media.fetch(session.user, id).await?;
    let mut r = Response::new(super::json::full(bytes));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn form(parts: &[(&str, &str, &[u8])]) -> Vec<u8> {
        let mut b = Vec::new();
        for (name, ct, data) in parts {
            b.extend_from_slice(format!("--XyZ\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"a\"\r\nContent-Type: {ct}\r\n\r\n").as_bytes());
            b.extend_from_slice(data);
            b.extend_from_slice(b"\r\n");
        }
        b.extend_from_slice(b"--XyZ--\r\n");
        b
    }

    #[test]
    fn the_file_part_is_found_with_its_type_and_exact_bytes() {
        assert_eq!(
            boundary("multipart/form-data; boundary=XyZ").as_deref(),
            Some("XyZ")
        );
        assert_eq!(
            boundary("multipart/form-data; boundary=\"XyZ\"").as_deref(),
            Some("XyZ")
        );
        assert_eq!(boundary("multipart/form-data"), None);
        let data: &[u8] = b"\x00\xffbinary\r\n--Xy not a boundary";
        let body = form(&[
            ("caption", "text/plain", b"hi"),
            ("file", "image/png", data),
        ]);
        let (ct, got) = file_part(&body, "XyZ").unwrap();
        assert_eq!(ct, "image/png");
        assert_eq!(got, data);
    }

    #[test]
    fn malformed_multipart_is_refused() {
        assert!(
            file_part(&form(&[("other", "text/plain", b"x")]), "XyZ").is_err(),
            "no file part"
        );
        assert!(file_part(b"garbage", "XyZ").is_err());
        assert!(
            file_part(
                b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nunterminated",
                "XyZ"
            )
            .is_err()
        );
    }
}
