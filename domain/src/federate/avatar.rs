//! Avatars across nodes (issue 25): what a user may choose as their avatar (an image they
//! uploaded, under the `photos` purpose), the reference a `profile` envelope carries for it
//! (`avatar_media`, like a message's media: origin, id, size, type, SHA-256), and the check of
//! such a reference arriving from the user's node, which becomes a fetch of the bytes into a
//! copy sealed under the user's key here.

use federation::{MediaRef, ProfileContent};

use super::FedError;
use crate::consents::{ConsentError, Consents, Purpose};
use crate::crypto::MasterKey;
use crate::media::MediaError;
use crate::media::sniff::Class;
use crate::profile::Avatar;
use crate::time::Millis;
use storage::{RemoteAvatar, Store, StoreError};

/// Why an avatar was not taken.
#[derive(Debug, thiserror::Error)]
pub enum AvatarError {
    #[error("avatar: {0}")]
    Invalid(&'static str),
    #[error(transparent)]
    Consent(#[from] ConsentError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks that local user `user` may show media `id` as their avatar: an image they uploaded,
/// with the `photos` purpose granted (as for sending a photo).
pub async fn check(
    store: &Store,
    consents: &Consents,
    user: u64,
    id: &str,
) -> Result<(), AvatarError> {
    let t = store
        .media_type(id.to_string(), user)
        .await?
        .ok_or(AvatarError::Invalid("is not media you uploaded"))?;
    if Class::of(&t) != Class::Image {
        return Err(AvatarError::Invalid("must be an image"));
    }
    consents.require(user, Purpose::Photos).await?;
    Ok(())
}

/// The reference to local user `owner`'s avatar image, read and hashed here (`origin` is
/// this node); None for no avatar or an old free-form one.
pub async fn reference(
    store: &Store,
    master: &MasterKey,
    owner: u64,
    avatar: Option<&Avatar>,
    origin: &str,
) -> Result<Option<MediaRef>, MediaError> {
    match avatar.and_then(Avatar::media) {
        Some(id) => Ok(Some(
            crate::media::reference(store, master, owner, id, origin).await?,
        )),
        None => Ok(None),
    }
}

/// The `avatar` and `avatar_media` fields of a `profile` envelope: an old reference as
/// `avatar`; an image as `avatar_media`, when `image` is the reference to that very image
/// (otherwise — the avatar changed meanwhile — neither).
pub fn wire(
    avatar: Option<&Avatar>,
    image: Option<&MediaRef>,
) -> (Option<String>, Option<MediaRef>) {
    match avatar {
        None => (None, None),
        Some(Avatar::Legacy(s)) => (Some(s.clone()), None),
        Some(Avatar::Media(id)) => (None, image.filter(|r| r.id == *id).cloned()),
    }
}

/// The avatar of a `profile` envelope from the user's node, checked, as this node shows it
/// (the local copy's id for an image) and, for an image, what to fetch: from the user's node
/// (`origin` of the reference must be theirs), an image type, 1 to `max_bytes` bytes, a
/// SHA-256. `author` is the user's local id here.
pub fn incoming(
    c: &ProfileContent,
    author: u64,
    max_bytes: u64,
    now: Millis,
) -> Result<(Option<Avatar>, Option<RemoteAvatar>), FedError> {
    let bad = |m: &str| FedError::Invalid(format!("profile avatar: {m}"));
    let media = match (&c.avatar, &c.avatar_media) {
        (Some(_), Some(_)) => return Err(bad("avatar and avatar_media both given")),
        (None, None) => return Ok((None, None)),
        (Some(s), None) => {
            let s = crate::profile::text("avatar", s, 1, 512)
                .map_err(|e| bad(&format!("avatar {}", e.reason)))?;
            return Ok((Some(Avatar::Legacy(s)), None));
        }
        (None, Some(m)) => m,
    };
    let from = federation::address_domain(&c.user).unwrap_or_default();
    let sha256 = super::media_ref::check(media, from, max_bytes).map_err(|e| match e {
        super::media_ref::RefError::Malformed("origin") => bad("origin must be the user's node"),
        super::media_ref::RefError::Malformed(f) => bad(f),
        super::media_ref::RefError::TooLarge(_) => {
            bad(&format!("size must be 1 to {max_bytes} bytes here"))
        }
    })?;
    if !media.content_type.starts_with("image/") {
        return Err(bad("content_type must be an image type"));
    }
    let local_id = super::media_ref::remote_media_id(&media.origin, &media.id);
    Ok((
        Some(Avatar::Media(local_id.clone())),
        Some(RemoteAvatar {
            local_id,
            job: super::media_ref::fetch_job(media, sha256, author, now),
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn content(avatar: Option<&str>, media: Option<MediaRef>) -> ProfileContent {
        ProfileContent {
            user: "alice@a.test".into(),
            nickname: "A".into(),
            avatar: avatar.map(str::to_string),
            avatar_media: media,
            fields: None,
        }
    }

    fn image() -> MediaRef {
        MediaRef {
            origin: "a.test".into(),
            id: "abc".into(),
            size: 10,
            content_type: "image/png".into(),
            sha256: base64::engine::general_purpose::STANDARD_NO_PAD.encode([7u8; 32]),
        }
    }

    #[test]
    fn an_image_reference_becomes_a_fetch_from_the_users_node_only() {
        let (shown, fetch) = incoming(&content(None, Some(image())), 9, 100, Millis(5)).unwrap();
        let fetch = fetch.unwrap();
        assert_eq!(shown, Some(Avatar::Media(fetch.local_id.clone())));
        assert_eq!(
            (fetch.job.origin.as_str(), fetch.job.author, fetch.job.size),
            ("a.test", 9, 10)
        );
        let mut elsewhere = image();
        elsewhere.origin = "b.test".into();
        assert!(incoming(&content(None, Some(elsewhere)), 9, 100, Millis(5)).is_err());
        let mut pdf = image();
        pdf.content_type = "application/pdf".into();
        assert!(incoming(&content(None, Some(pdf)), 9, 100, Millis(5)).is_err());
        assert!(
            incoming(&content(None, Some(image())), 9, 9, Millis(5)).is_err(),
            "larger than this node takes"
        );
        let mut hash = image();
        hash.sha256 = "short".into();
        assert!(incoming(&content(None, Some(hash)), 9, 100, Millis(5)).is_err());
        assert!(incoming(&content(Some("x"), Some(image())), 9, 100, Millis(5)).is_err());
    }

    #[test]
    fn an_old_reference_is_kept_as_text_and_nothing_is_fetched() {
        let (shown, fetch) = incoming(&content(Some("av-1"), None), 9, 100, Millis(5)).unwrap();
        assert_eq!(shown, Some(Avatar::Legacy("av-1".into())));
        assert!(fetch.is_none());
        assert_eq!(
            incoming(&content(None, None), 9, 100, Millis(5)).unwrap().0,
            None
        );
    }

    #[test]
    fn the_wire_form_carries_an_image_only_with_its_own_reference() {
        let r = image();
        let a = Avatar::Media("abc".into());
        assert_eq!(wire(Some(&a), Some(&r)), (None, Some(r.clone())));
        let other = Avatar::Media("zzz".into());
        assert_eq!(wire(Some(&other), Some(&r)), (None, None));
        let old = Avatar::Legacy("av".into());
        assert_eq!(wire(Some(&old), None), (Some("av".into()), None));
    }
}
