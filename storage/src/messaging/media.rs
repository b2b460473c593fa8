//! Media as stored: a media object's description, storing it with its sealed chunks within
//! the owner's quota, and who may read it (its owner, members of a conversation it was sent in,
//! and what communities and avatars allow).

use redb::{ReadTransaction, ReadableTable};

use crate::catalog::*;
use crate::codec::{Dec, Enc};
use crate::{Store, StoreError};
use primitives::time::Millis;

/// A stored media object's description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaRecord {
    pub owner: u64,
    pub content_type: String,
    pub size: u64,
    pub created: Millis,
    pub chunks: u32,
}

impl MediaRecord {
    pub fn encode(&self) -> Vec<u8> {
        Enc::new(1)
            .u64(self.owner)
            .str(&self.content_type)
            .u64(self.size)
            .u64(self.created.0)
            .u64(u64::from(self.chunks))
            .finish()
    }
    pub fn decode(b: &[u8]) -> Result<Self, StoreError> {
        let mut d = Dec::new(b, "media", 1)?;
        let r = MediaRecord {
            owner: d.u64()?,
            content_type: d.string()?,
            size: d.u64()?,
            created: Millis(d.u64()?),
            chunks: u32::try_from(d.u64()?).map_err(|_| StoreError::Corrupt("media"))?,
        };
        d.end()?;
        Ok(r)
    }
}

/// A media object's description if `viewer` owns it or is a member of a conversation it was
/// sent in.
fn visible_media(
    tx: &ReadTransaction,
    id: &str,
    viewer: u64,
) -> Result<Option<MediaRecord>, StoreError> {
    let Some(rec) = tx
        .open_table(MEDIAID_MEDIA)?
        .get(id)?
        .map(|v| MediaRecord::decode(v.value()))
        .transpose()?
    else {
        return Ok(None);
    };
    if rec.owner == viewer {
        return Ok(Some(rec));
    }
    let members = tx.open_table(CONVNO_USERID_MEMBER)?;
    for row in tx
        .open_table(MEDIAID_CONVNO)?
        .range((id, 0)..=(id, u64::MAX))?
    {
        let (k, _) = row?;
        if members.get((k.value().1, viewer))?.is_some() {
            return Ok(Some(rec));
        }
    }
    // Shown in a community post or as a community's avatar the viewer may see.
    if crate::community::media_visible(tx, id, viewer)? {
        return Ok(Some(rec));
    }
    // A user's avatar: for anyone with an account here, as their profile is.
    if crate::avatars::visible(tx, id, viewer)? {
        return Ok(Some(rec));
    }
    Ok(None)
}

impl Store {
    /// Stores a media object: its description and its sealed chunks, within the owner's quota.
    /// Returns false (storing nothing) if it would exceed `quota` bytes.
    pub async fn put_media(
        &self,
        id: String,
        rec: MediaRecord,
        chunks: Vec<Vec<u8>>,
        quota: u64,
    ) -> Result<bool, StoreError> {
        self.write(move |tx| {
            let mut used = 0;
            for row in tx.open_table(USERID_MEDIAID)?.range((rec.owner, "")..)? {
                let (k, v) = row?;
                if k.value().0 != rec.owner {
                    break;
                }
                used += v.value();
            }
            if used + rec.size > quota {
                return Ok(false);
            }
            tx.open_table(MEDIAID_MEDIA)?
                .insert(id.as_str(), rec.encode().as_slice())?;
            tx.open_table(USERID_MEDIAID)?
                .insert((rec.owner, id.as_str()), rec.size)?;
            let mut t = tx.open_table(MEDIAID_CHUNKNO_CHUNK)?;
            for (i, c) in chunks.iter().enumerate() {
                t.insert((id.as_str(), i as u32), c.as_slice())?;
            }
            Ok(true)
        })
        .await
    }

    /// The stored (sniffed) content type of a media object `owner` uploaded; None if there is
    /// no such media or it is someone else's.
    pub async fn media_type(&self, id: String, owner: u64) -> Result<Option<String>, StoreError> {
        self.read(move |tx| {
            let Some(v) = tx.open_table(MEDIAID_MEDIA)?.get(id.as_str())? else {
                return Ok(None);
            };
            let rec = MediaRecord::decode(v.value())?;
            Ok((rec.owner == owner).then_some(rec.content_type))
        })
        .await
    }

    /// A media object's description, if `viewer` owns it or is a member of a conversation it was
    /// sent in; its chunks are read one at a time with [`Store::media_chunk`].
    pub async fn media_head(
        &self,
        id: String,
        viewer: u64,
    ) -> Result<Option<MediaRecord>, StoreError> {
        self.read(move |tx| visible_media(tx, &id, viewer)).await
    }

    /// One sealed chunk of a media object; None if it is gone (removed since its head was read).
    pub async fn media_chunk(&self, id: String, no: u32) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(move |tx| {
            Ok(tx
                .open_table(MEDIAID_CHUNKNO_CHUNK)?
                .get((id.as_str(), no))?
                .map(|v| v.value().to_vec()))
        })
        .await
    }
}
