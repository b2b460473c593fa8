//! Uploaded media: metadata stripping (JPEG EXIF/XMP/IPTC/comments, PNG text and EXIF chunks —
//! GPS above all — without touching the pixels), size and per-user quota, sealing in chunks under
//! the owner's data key, and fetching by the owner or members of conversations it was sent in.

use img_parts::Bytes;
use img_parts::jpeg::Jpeg;
use img_parts::png::Png;

use crate::crypto::{self, CryptoError, MasterKey};
use crate::storage::{MediaRecord, Store, StoreError};
use crate::time::SharedClock;

/// Bytes per stored chunk.
const CHUNK: usize = 256 * 1024;

/// Errors of media operations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    #[error("the file is larger than the limit of {0} bytes")]
    TooLarge(u64),
    #[error("storing this file would exceed your quota of {0} bytes")]
    OverQuota(u64),
    #[error("{0}")]
    Invalid(String),
    #[error("no such media")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

/// Limits from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct MediaLimits {
    pub max_bytes: u64,
    pub quota_bytes: u64,
}

/// An upload as stored: its id, normalised content type and size after stripping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub id: String,
    pub content_type: String,
    pub size: u64,
}

/// The media store.
#[derive(Debug, Clone)]
pub struct Media {
    store: Store,
    master: MasterKey,
    clock: SharedClock,
    limits: MediaLimits,
}

fn aad(id: &str, chunk: u32) -> Vec<u8> {
    format!("media/{id}/{chunk}").into_bytes()
}

/// Content types accepted, and whether their metadata is stripped.
fn check_type(content_type: &str) -> Result<String, MediaError> {
    let t = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let ok = t.len() <= 100
        && t.split_once('/').is_some_and(|(a, b)| {
            !a.is_empty()
                && !b.is_empty()
                && t.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"/.+-".contains(&c))
        });
    if ok {
        Ok(t)
    } else {
        Err(MediaError::Invalid(
            "Content-Type must be a media type such as image/jpeg".into(),
        ))
    }
}

/// Removes metadata from JPEG and PNG files, leaving the image data as it was. Other types pass
/// unchanged. A file that claims to be JPEG or PNG but does not parse is refused.
pub fn strip_metadata(content_type: &str, data: Vec<u8>) -> Result<Vec<u8>, MediaError> {
    match content_type {
        "image/jpeg" | "image/jpg" => {
            let mut jpeg = Jpeg::from_bytes(Bytes::from(data))
                .map_err(|_| MediaError::Invalid("the file is not a valid JPEG".into()))?;
            // Keep APP0 (JFIF), APP2 (ICC colour profile) and APP14 (Adobe colour transform),
            // which decoding needs; drop every other application segment and comments.
            jpeg.segments_mut().retain(|s| {
                let m = s.marker();
                !((0xE1..=0xEF).contains(&m) && m != 0xE2 && m != 0xEE || m == 0xFE)
            });
            Ok(jpeg.encoder().bytes().to_vec())
        }
        "image/png" => {
            let mut png = Png::from_bytes(Bytes::from(data))
                .map_err(|_| MediaError::Invalid("the file is not a valid PNG".into()))?;
            png.chunks_mut()
                .retain(|c| !matches!(&c.kind(), b"eXIf" | b"tEXt" | b"zTXt" | b"iTXt" | b"tIME"));
            Ok(png.encoder().bytes().to_vec())
        }
        _ => Ok(data),
    }
}

impl Media {
    pub fn new(store: Store, master: MasterKey, clock: SharedClock, limits: MediaLimits) -> Self {
        Media {
            store,
            master,
            clock,
            limits,
        }
    }

    pub fn max_bytes(&self) -> u64 {
        self.limits.max_bytes
    }

    /// Stores an upload for `owner`; returns what was stored (after metadata stripping).
    pub async fn upload(
        &self,
        owner: u64,
        content_type: &str,
        data: Vec<u8>,
    ) -> Result<Stored, MediaError> {
        if data.len() as u64 > self.limits.max_bytes {
            return Err(MediaError::TooLarge(self.limits.max_bytes));
        }
        if data.is_empty() {
            return Err(MediaError::Invalid("the file is empty".into()));
        }
        let content_type = check_type(content_type)?;
        let ct = content_type.clone();
        let data = tokio::task::spawn_blocking(move || strip_metadata(&ct, data))
            .await
            .map_err(|_| MediaError::Store(StoreError::Worker))??;
        let account = self
            .store
            .account(owner)
            .await?
            .ok_or(MediaError::NotFound)?;
        let key = self.master.unwrap_data_key(owner, &account.wrapped_key)?;
        let id = crypto::random_id(18)?;
        let mut chunks = Vec::new();
        for (i, c) in data.chunks(CHUNK).enumerate() {
            chunks.push(key.seal(&aad(&id, i as u32), c)?);
        }
        let stored = Stored {
            id: id.clone(),
            content_type: content_type.clone(),
            size: data.len() as u64,
        };
        let rec = MediaRecord {
            owner,
            content_type,
            size: stored.size,
            created: self.clock.now(),
            chunks: chunks.len() as u32,
        };
        if !self
            .store
            .put_media(id.clone(), rec, chunks, self.limits.quota_bytes)
            .await?
        {
            return Err(MediaError::OverQuota(self.limits.quota_bytes));
        }
        Ok(stored)
    }

    /// The content type and bytes, if `viewer` may see the media.
    pub async fn fetch(&self, viewer: u64, id: &str) -> Result<(String, Vec<u8>), MediaError> {
        if id.is_empty() || id.len() > 64 {
            return Err(MediaError::NotFound);
        }
        let (rec, chunks) = self
            .store
            .media_for(id.to_string(), viewer)
            .await?
            .ok_or(MediaError::NotFound)?;
        let account = self
            .store
            .account(rec.owner)
            .await?
            .ok_or(MediaError::NotFound)?;
        let key = self
            .master
            .unwrap_data_key(rec.owner, &account.wrapped_key)?;
        let mut out = Vec::with_capacity(rec.size as usize);
        for (i, c) in chunks.iter().enumerate() {
            out.extend_from_slice(&key.open(&aad(id, i as u32), c)?);
        }
        Ok((rec.content_type, out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_are_checked() {
        assert_eq!(check_type("image/JPEG; q=1").unwrap(), "image/jpeg");
        assert!(check_type("nonsense").is_err());
        assert!(check_type("a/b c").is_err());
    }

    #[test]
    fn a_file_claiming_to_be_jpeg_must_be_one() {
        assert!(strip_metadata("image/jpeg", b"not a jpeg".to_vec()).is_err());
        assert_eq!(
            strip_metadata("application/pdf", b"%PDF".to_vec()).unwrap(),
            b"%PDF"
        );
    }
}
