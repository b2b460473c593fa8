//! Uploaded media: what an upload really is (`sniff`, from its bytes), metadata removal by
//! that format (`strip`: JPEG, PNG, GIF, WebP; other image formats refused), size and per-user
//! quota, a bound on uploads in progress, sealing in chunks under the owner's data key (on the
//! blocking pool, like opening), and fetching by the owner or members of conversations it was
//! sent in.

pub mod sniff;
mod strip;

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::crypto::{self, CryptoError, MasterKey};
use crate::time::SharedClock;
use sniff::{ImageFormat, Sniffed};
use storage::{MediaRecord, Store, StoreError};
pub use strip::Malformed;

/// Bytes per stored chunk.
const CHUNK: usize = 256 * 1024;

/// Errors of media operations.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("the file is larger than the limit of {0} bytes")]
    TooLarge(u64),
    #[error("storing this file would exceed your quota of {0} bytes")]
    OverQuota(u64),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Malformed(#[from] Malformed),
    /// An image format whose metadata the node cannot remove: never stored.
    #[error(
        "{0} images are not accepted: the node removes metadata (such as the GPS position) from \
         JPEG, PNG, GIF and WebP images only; convert the image to one of those"
    )]
    UnsupportedImage(&'static str),
    #[error("no such media")]
    NotFound,
    /// Media from another node the viewer may see, still being fetched from there.
    #[error("this file is still arriving from the node it was sent from")]
    Arriving,
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
    /// Uploads being received, stripped and stored at once (`media.max_concurrent_uploads`).
    pub max_concurrent_uploads: usize,
}

/// An upload as stored: its id, its sniffed content type and size after stripping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub id: String,
    pub content_type: String,
    pub size: u64,
}

/// One of the `media.max_concurrent_uploads` places for an upload in progress, held from
/// before its body is read until it is stored.
#[derive(Debug)]
pub struct UploadSlot(#[allow(dead_code)] OwnedSemaphorePermit);

/// The media store.
#[derive(Debug, Clone)]
pub struct Media {
    store: Store,
    master: MasterKey,
    clock: SharedClock,
    limits: MediaLimits,
    uploads: Arc<Semaphore>,
}

fn aad(id: &str, chunk: u32) -> Vec<u8> {
    format!("media/{id}/{chunk}").into_bytes()
}

/// The declared content type, checked and normalised (parameters dropped, lower case).
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

/// What is stored for an upload: its type and bytes. The type comes from the bytes; the declared
/// one only says whether unrecognised bytes may be kept as `text/plain` (when they are UTF-8)
/// and whether a client meant to send an image. Images are stripped by their real format, image
/// formats that cannot be stripped are refused, and so are files declared as images that are
/// none the node recognises.
pub fn prepare(declared: &str, data: Vec<u8>) -> Result<(String, Vec<u8>), MediaError> {
    let declared = check_type(declared)?;
    match sniff::sniff(&data) {
        Sniffed::Image(format) => {
            let stripped = strip::strip(format, &data)?;
            Ok((format.mime().to_string(), stripped))
        }
        Sniffed::UnstrippableImage(name) => Err(MediaError::UnsupportedImage(name)),
        Sniffed::Other(mime) => Ok((mime.to_string(), data)),
        Sniffed::Unknown if declared.starts_with("image/") => Err(MediaError::Invalid(format!(
            "the file is declared as {declared} but is not an image the node recognises \
             ({})",
            [
                ImageFormat::Jpeg,
                ImageFormat::Png,
                ImageFormat::Gif,
                ImageFormat::WebP
            ]
            .map(ImageFormat::name)
            .join(", ")
        ))),
        Sniffed::Unknown if declared == "text/plain" && std::str::from_utf8(&data).is_ok() => {
            Ok((declared, data))
        }
        Sniffed::Unknown => Ok(("application/octet-stream".to_string(), data)),
    }
}

impl Media {
    pub fn new(store: Store, master: MasterKey, clock: SharedClock, limits: MediaLimits) -> Self {
        Media {
            store,
            master,
            clock,
            uploads: Arc::new(Semaphore::new(limits.max_concurrent_uploads.max(1))),
            limits,
        }
    }

    pub fn max_bytes(&self) -> u64 {
        self.limits.max_bytes
    }

    /// A place for one upload, or None while `media.max_concurrent_uploads` are in progress.
    pub fn begin_upload(&self) -> Option<UploadSlot> {
        self.uploads
            .clone()
            .try_acquire_owned()
            .ok()
            .map(UploadSlot)
    }

    /// Stores an upload for `owner`; returns what was stored (sniffed type, after metadata
    /// stripping). Sniffing, stripping and sealing run on the blocking pool.
    pub async fn upload(
        &self,
        slot: UploadSlot,
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
        let account = self
            .store
            .account(owner)
            .await?
            .ok_or(MediaError::NotFound)?;
        let key = self.master.unwrap_data_key(owner, &account.wrapped_key)?;
        let id = crypto::random_id(18)?;
        let declared = content_type.to_string();
        let chunk_id = id.clone();
        let (content_type, size, chunks) = tokio::task::spawn_blocking(move || {
            let (content_type, data) = prepare(&declared, data)?;
            let chunks = data
                .chunks(CHUNK)
                .enumerate()
                .map(|(i, c)| key.seal(&aad(&chunk_id, i as u32), c))
                .collect::<Result<Vec<_>, _>>()?;
            Ok::<_, MediaError>((content_type, data.len() as u64, chunks))
        })
        .await
        .map_err(|_| MediaError::Store(StoreError::Worker))??;
        let stored = Stored {
            id: id.clone(),
            content_type: content_type.clone(),
            size,
        };
        let rec = MediaRecord {
            owner,
            content_type,
            size,
            created: self.clock.now(),
            chunks: chunks.len() as u32,
        };
        if !self
            .store
            .put_media(id, rec, chunks, self.limits.quota_bytes)
            .await?
        {
            return Err(MediaError::OverQuota(self.limits.quota_bytes));
        }
        drop(slot);
        Ok(stored)
    }

    /// A reader of the media, if `viewer` may see it: its type and size now, its bytes chunk by
    /// chunk (each read and opened on the blocking pool), so a download holds one chunk at a
    /// time, not the whole file twice.
    pub async fn open(&self, viewer: u64, id: &str) -> Result<MediaReader, MediaError> {
        open_with(&self.store, &self.master, viewer, id).await
    }

    /// The content type and whole bytes, if `viewer` may see the media (for the export).
    pub async fn fetch(&self, viewer: u64, id: &str) -> Result<(String, Vec<u8>), MediaError> {
        let mut reader = self.open(viewer, id).await?;
        let mut out = Vec::with_capacity(reader.size as usize);
        while let Some(chunk) = reader.next_chunk().await? {
            out.extend_from_slice(&chunk);
        }
        Ok((reader.content_type, out))
    }
}

/// [`Media::open`] from the store and master key alone. Media fetched from another node is
/// owned by its remote author and sealed under their key here.
pub async fn open_with(
    store: &Store,
    master: &MasterKey,
    viewer: u64,
    id: &str,
) -> Result<MediaReader, MediaError> {
    if id.is_empty() || id.len() > 64 {
        return Err(MediaError::NotFound);
    }
    let Some(rec) = store.media_head(id.to_string(), viewer).await? else {
        return Err(if store.media_arriving(id.to_string(), viewer).await? {
            MediaError::Arriving
        } else {
            MediaError::NotFound
        });
    };
    let wrapped = if rec.owner & storage::REMOTE_USER_BIT != 0 {
        store
            .remote_users(vec![rec.owner])
            .await?
            .into_iter()
            .next()
            .ok_or(MediaError::NotFound)?
            .1
            .wrapped_key
    } else {
        store
            .account(rec.owner)
            .await?
            .ok_or(MediaError::NotFound)?
            .wrapped_key
    };
    let key = master.unwrap_data_key(rec.owner, &wrapped)?;
    Ok(MediaReader {
        store: store.clone(),
        key,
        id: id.to_string(),
        content_type: rec.content_type,
        size: rec.size,
        chunks: rec.chunks,
        next: 0,
    })
}

/// The reference a message carries to other nodes for `owner`'s media `id` held by this node
/// (`origin`): its size, sniffed type and SHA-256 (the bytes are read and hashed here).
pub async fn reference(
    store: &Store,
    master: &MasterKey,
    owner: u64,
    id: &str,
    origin: &str,
) -> Result<federation::MediaRef, MediaError> {
    use base64::Engine;
    use sha2::{Digest, Sha256};
    let mut reader = open_with(store, master, owner, id).await?;
    let mut hash = Sha256::new();
    while let Some(chunk) = reader.next_chunk().await? {
        hash.update(&chunk);
    }
    Ok(federation::MediaRef {
        origin: origin.to_string(),
        id: id.to_string(),
        size: reader.size,
        content_type: reader.content_type,
        sha256: base64::engine::general_purpose::STANDARD_NO_PAD.encode(hash.finalize()),
    })
}

/// The associated data a chunk of media `id` is sealed with.
pub fn chunk_aad(id: &str, chunk: u32) -> Vec<u8> {
    aad(id, chunk)
}

/// A media object being read, chunk by chunk.
#[derive(Debug)]
pub struct MediaReader {
    store: Store,
    key: crypto::SecretKey,
    id: String,
    /// The stored (sniffed) type.
    pub content_type: String,
    /// Bytes in all.
    pub size: u64,
    chunks: u32,
    next: u32,
}

impl MediaReader {
    /// The next chunk's bytes, None after the last. A chunk that is gone (the media was removed
    /// meanwhile) is `NotFound`.
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, MediaError> {
        let chunk = self.chunk(self.next).await?;
        if chunk.is_some() {
            self.next += 1;
        }
        Ok(chunk)
    }

    /// How many chunks the media has; each but the last is
    /// [`federation::MEDIA_PART`] bytes.
    pub fn chunks(&self) -> u32 {
        self.chunks
    }

    /// Chunk `no`'s bytes, None past the last (`NotFound` as for [`MediaReader::next_chunk`]).
    pub async fn chunk(&self, no: u32) -> Result<Option<Vec<u8>>, MediaError> {
        if no >= self.chunks {
            return Ok(None);
        }
        let sealed = self
            .store
            .media_chunk(self.id.clone(), no)
            .await?
            .ok_or(MediaError::NotFound)?;
        let key = self.key.clone();
        let aad = aad(&self.id, no);
        let plain = tokio::task::spawn_blocking(move || key.open(&aad, &sealed))
            .await
            .map_err(|_| MediaError::Store(StoreError::Worker))??;
        Ok(Some(plain))
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
    fn the_stored_type_is_the_sniffed_one_not_the_declared_one() {
        let pdf = b"%PDF-1.4 ...".to_vec();
        assert_eq!(
            prepare("text/html", pdf.clone()).unwrap(),
            ("application/pdf".into(), pdf)
        );
        let html = b"<html><script>alert(1)</script></html>".to_vec();
        assert_eq!(
            prepare("text/html", html.clone()).unwrap().0,
            "application/octet-stream"
        );
        assert_eq!(
            prepare("text/plain", b"hello".to_vec()).unwrap().0,
            "text/plain"
        );
        assert_eq!(
            prepare("text/plain", vec![0xFF, 0xFE, 0]).unwrap().0,
            "application/octet-stream",
            "not UTF-8"
        );
    }

    #[test]
    fn images_the_node_cannot_strip_or_recognise_are_refused() {
        assert!(matches!(
            prepare("application/octet-stream", b"II*\0\x08\0\0\0".to_vec()),
            Err(MediaError::UnsupportedImage("TIFF"))
        ));
        assert!(matches!(
            prepare("image/jpeg", b"not a jpeg".to_vec()),
            Err(MediaError::Invalid(_))
        ));
        assert!(matches!(
            prepare("application/octet-stream", b"\xFF\xD8\xFF\xE1\x00".to_vec()),
            Err(MediaError::Malformed(_))
        ));
    }
}
