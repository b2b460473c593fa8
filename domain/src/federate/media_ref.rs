//! A media reference from another node ([`federation::MediaRef`]) checked by one rule, and the
//! fetch it asks of this node: the same for a message's media, an avatar and the media of a
//! post by a member of another node in a community here. The bytes come later, through
//! [`super::Fetcher`]; this module only decides whether the reference may be taken at all.

use base64::Engine;
use federation::MediaRef;
use sha2::{Digest, Sha256};
use storage::FetchJob;

use crate::time::Millis;

/// What is wrong with a reference: the field, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum RefError {
    /// Not of the expected shape (a peer's bug or malice: a malformed envelope).
    Malformed(&'static str),
    /// Well formed, but larger than this node takes (`media.max_bytes`).
    TooLarge(u64),
}

impl RefError {
    /// The text a refusal carries: the field and the rule, nothing of the media itself.
    pub(super) fn reason(&self) -> String {
        match self {
            RefError::Malformed(f) => format!("media.{f}"),
            RefError::TooLarge(max) => format!("media must be 1 to {max} bytes here"),
        }
    }
}

/// The local id of media `id` of node `origin`: the same on every delivery of it, so a file
/// sent twice (or sent and posted) is fetched and kept once.
pub(super) fn remote_media_id(origin: &str, id: &str) -> String {
    let d = Sha256::digest(format!("shanliao/remote-media\0{origin}\0{id}"));
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&d[..18])
}

/// Checks `media` as sent by node `from`: it must be held there (`origin`), have a valid id, a
/// plain `type/subtype` content type, a 43-character SHA-256 and 1 to `max_bytes` bytes.
/// Returns the SHA-256.
pub(super) fn check(media: &MediaRef, from: &str, max_bytes: u64) -> Result<[u8; 32], RefError> {
    if media.origin != from {
        return Err(RefError::Malformed("origin"));
    }
    if !federation::valid_media_id(&media.id) {
        return Err(RefError::Malformed("id"));
    }
    let t = &media.content_type;
    if t.is_empty()
        || t.len() > 100
        || !t.contains('/')
        || !t
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"/.+-".contains(&c))
    {
        return Err(RefError::Malformed("content_type"));
    }
    let sha256: [u8; 32] = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(&media.sha256)
        .ok()
        .and_then(|b| b.try_into().ok())
        .filter(|_| media.sha256.len() == 43)
        .ok_or(RefError::Malformed("sha256"))?;
    if media.size == 0 || media.size > max_bytes {
        return Err(RefError::TooLarge(max_bytes));
    }
    Ok(sha256)
}

/// The job that fetches checked `media` here, for its author (local id `author`, whose key
/// seals the copy), counted from `now`.
pub(super) fn fetch_job(media: &MediaRef, sha256: [u8; 32], author: u64, now: Millis) -> FetchJob {
    FetchJob {
        origin: media.origin.clone(),
        remote_id: media.id.clone(),
        size: media.size,
        content_type: media.content_type.clone(),
        sha256,
        author,
        next: 0,
        created: now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> MediaRef {
        MediaRef {
            origin: "b.test".into(),
            id: "abc_DEF-1".into(),
            size: 10,
            content_type: "image/png".into(),
            sha256: base64::engine::general_purpose::STANDARD_NO_PAD.encode([7u8; 32]),
        }
    }

    #[test]
    fn a_reference_must_be_held_by_its_sender_and_fit_the_limit() {
        assert_eq!(check(&good(), "b.test", 10), Ok([7u8; 32]));
        assert_eq!(
            check(&good(), "c.test", 10),
            Err(RefError::Malformed("origin"))
        );
        assert_eq!(check(&good(), "b.test", 9), Err(RefError::TooLarge(9)));
        let mut m = good();
        m.size = 0;
        assert_eq!(check(&m, "b.test", 10), Err(RefError::TooLarge(10)));
        let mut m = good();
        m.id = "a/b".into();
        assert_eq!(check(&m, "b.test", 10), Err(RefError::Malformed("id")));
        let mut m = good();
        m.content_type = "text/html; charset=x".into();
        assert_eq!(
            check(&m, "b.test", 10),
            Err(RefError::Malformed("content_type"))
        );
        let mut m = good();
        m.sha256.push('A');
        assert_eq!(check(&m, "b.test", 10), Err(RefError::Malformed("sha256")));
    }

    #[test]
    fn the_local_id_of_remote_media_depends_on_origin_and_id_alone() {
        let a = remote_media_id("b.test", "x");
        assert_eq!(a, remote_media_id("b.test", "x"));
        assert_ne!(a, remote_media_id("c.test", "x"));
        assert_ne!(a, remote_media_id("b.test", "y"));
        assert!(federation::valid_media_id(&a));
    }
}
