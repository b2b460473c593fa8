//! Avatars as media (issue 25): which image each user's profile shows now (`userid_avatar`,
//! `mediaid_avatar`), who may see it here (anyone with an account, as for the profile), which
//! local user's avatar a peer asks for, and a remote user's profile with its avatar copy —
//! the copy of the image they showed before removed, the new one queued for fetching — in one
//! transaction.
//!
//! **Boundary:** the two avatar tables are behind the key-value seam (schema 11): what only
//! touches them takes `&impl kv::Read` / `&impl kv::Write`; what also reads a typed table (the
//! accounts, the media) still takes redb's transaction for that.

use redb::{ReadTransaction, ReadableTable};

use super::catalog::*;
use super::fedmedia::{FetchJob, drop_remote_copy};
use super::kv;
use super::messaging::MediaRecord;
use super::{RemoteUserRecord, Store, StoreError};
use primitives::time::Millis;

/// Makes `media` the avatar of `user` (None: no image); returns the media id shown before.
pub fn set(
    tx: &impl kv::Write,
    user: u64,
    media: Option<&str>,
) -> Result<Option<String>, StoreError> {
    let old = USERID_AVATAR.take(tx, &user)?;
    if let Some(old) = &old {
        MEDIAID_AVATAR.remove(tx, old)?;
    }
    if let Some(id) = media {
        USERID_AVATAR.insert(tx, &user, &id.to_string())?;
        MEDIAID_AVATAR.insert(tx, &id.to_string(), &user)?;
    }
    Ok(old)
}

/// Removes the record of `user`'s avatar (their erasure; the media itself goes with theirs).
pub fn forget(tx: &impl kv::Write, user: u64) -> Result<(), StoreError> {
    set(tx, user, None).map(|_| ())
}

/// The user whose avatar media `id` is now, if it is someone's.
fn owner_of(tx: &impl kv::Read, id: &str) -> Result<Option<u64>, StoreError> {
    let Some(owner) = MEDIAID_AVATAR.get(tx, &id.to_string())? else {
        return Ok(None);
    };
    let current = USERID_AVATAR
        .get(tx, &owner)?
        .is_some_and(|shown| shown == id);
    Ok(current.then_some(owner))
}

/// Whether `viewer` may see media `id` as someone's avatar: it is a profile's image now and
/// the viewer has an account here (who may see a profile's nickname may see its picture).
pub fn visible(tx: &ReadTransaction, id: &str, viewer: u64) -> Result<bool, StoreError> {
    if viewer & REMOTE_USER_BIT != 0 || owner_of(tx, id)?.is_none() {
        return Ok(false);
    }
    Ok(tx.open_table(USERID_ACCOUNT)?.get(viewer)?.is_some())
}

/// A remote user's profile as their node sent it, and the avatar it shows.
#[derive(Debug, Clone)]
pub struct RemoteAvatar {
    /// The local id of the copy.
    pub local_id: String,
    /// What to fetch, with the author filled in.
    pub job: FetchJob,
}

impl Store {
    /// Local media `id` if it is a local user's avatar now: what a peer that holds the user
    /// may fetch (the caller checks that the peer does).
    pub async fn local_avatar(&self, id: String) -> Result<Option<MediaRecord>, StoreError> {
        self.read(move |tx| {
            let Some(owner) = owner_of(tx, &id)? else {
                return Ok(None);
            };
            if owner & REMOTE_USER_BIT != 0 {
                return Ok(None);
            }
            tx.open_table(MEDIAID_MEDIA)?
                .get(id.as_str())?
                .map(|v| MediaRecord::decode(v.value()))
                .transpose()
                .map(|r| r.filter(|r| r.owner == owner))
        })
        .await
    }

    /// Stores a remote user's nickname and avatar (sealed under their key here) and the image
    /// it shows: the copy of the one shown before is removed (unless a message here refers to
    /// it too), the new one is queued for fetching unless it is here or on its way already.
    /// Returns the local media id to fetch, if one was queued; nothing is written when this
    /// node does not know the user.
    pub async fn set_remote_profile(
        &self,
        id: u64,
        profile_sealed: Vec<u8>,
        avatar: Option<RemoteAvatar>,
        now: Millis,
    ) -> Result<Option<String>, StoreError> {
        self.write(move |tx| {
            {
                let mut t = tx.open_table(USERID_REMOTEUSER)?;
                let found = t.get(id)?.map(|v| RemoteUserRecord::decode(v.value()));
                let Some(mut rec) = found.transpose()? else {
                    return Ok(None);
                };
                rec.profile_sealed = profile_sealed.clone();
                rec.updated = now;
                t.insert(id, rec.encode().as_slice())?;
            }
            let new = avatar.as_ref().map(|a| a.local_id.as_str());
            let old = set(tx, id, new)?;
            if let Some(old) = old.filter(|o| Some(o.as_str()) != new) {
                let in_a_message = tx
                    .open_table(MEDIAID_CONVNO)?
                    .range((old.as_str(), 0)..=(old.as_str(), u64::MAX))?
                    .next()
                    .is_some();
                if !in_a_message {
                    drop_remote_copy(tx, &old)?;
                }
            }
            let Some(a) = &avatar else {
                return Ok(None);
            };
            if !crate::fedmedia::queue_fetch(tx, &a.local_id, &a.job)? {
                return Ok(None);
            }
            Ok(Some(a.local_id.clone()))
        })
        .await
    }
}
