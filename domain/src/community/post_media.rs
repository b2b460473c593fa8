//! The media of a post, read by someone who may see the post (issue 23). A post here is read
//! from this node's store; a post of another node's community is read through its host, part
//! by part (`post-media` calls, one [`federation::MEDIA_PART`] each), as the viewer streams it,
//! and nothing of it is kept on this node. The host answers only for media the post shows, to
//! a viewer who may see that post, and keeps back its users' media where their posts would be
//! kept back (residency).

use federation::MEDIA_PART;

use super::{Communities, CommunityError};
use crate::federate::{CommunityClient, WireMediaPart};
use crate::media::{MediaError, MediaReader};

/// One part of a post's media as the host gives it to a remote viewer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaPart {
    /// The stored (sniffed) type.
    pub content_type: String,
    /// Bytes in all.
    pub size: u64,
    /// Parts in all.
    pub parts: u32,
    pub bytes: Vec<u8>,
}

/// The bytes of a post's media, chunk by chunk.
#[derive(Debug)]
pub struct PostMediaReader {
    /// The stored (sniffed) type; served as it is only when the API knows it.
    pub content_type: String,
    /// Bytes in all.
    pub size: u64,
    source: Source,
}

#[derive(Debug)]
enum Source {
    Here(MediaReader),
    /// Through the host: the part read first, then the others asked for in turn.
    Host {
        client: CommunityClient,
        user: u64,
        me: String,
        community: String,
        host: String,
        post: u64,
        media: String,
        parts: u32,
        next: u32,
        first: Option<Vec<u8>>,
    },
}

/// A media error as a community answers it: store and crypto failures stay what they are.
pub(super) fn media_error(e: MediaError) -> CommunityError {
    match e {
        MediaError::Store(e) => CommunityError::Store(e),
        MediaError::Crypto(e) => CommunityError::Crypto(e),
        MediaError::Arriving => CommunityError::Arriving,
        // Gone: nothing to show.
        _ => CommunityError::NotFound,
    }
}

/// Checks a part a host gave against what the viewer asked and what the first part said.
pub(crate) fn checked(
    host: &str,
    wire: WireMediaPart,
    part: u32,
    first: Option<(&str, u64, u32)>,
) -> Result<MediaPart, CommunityError> {
    use base64::Engine;
    let bad = |m: &str| {
        CommunityError::Remote(
            crate::federate::FedError::Invalid(format!("{host} answered bad media: {m}")).into(),
        )
    };
    let parts = u32::try_from(wire.size.div_ceil(MEDIA_PART)).map_err(|_| bad("size"))?;
    if parts == 0 || wire.parts != parts || part >= parts {
        return Err(bad("parts"));
    }
    let t = &wire.content_type;
    if t.is_empty() || t.len() > 100 || !t.bytes().all(|b| b.is_ascii_graphic()) || !t.contains('/')
    {
        return Err(bad("type"));
    }
    if let Some((ft, fs, fp)) = first
        && (ft != t || fs != wire.size || fp != parts)
    {
        return Err(bad("it changed while it was read"));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&wire.data)
        .map_err(|_| bad("data"))?;
    let want = if part + 1 == parts {
        wire.size - u64::from(parts - 1) * MEDIA_PART
    } else {
        MEDIA_PART
    };
    if bytes.len() as u64 != want {
        return Err(bad("part length"));
    }
    Ok(MediaPart {
        content_type: wire.content_type,
        size: wire.size,
        parts,
        bytes,
    })
}

impl PostMediaReader {
    /// The next chunk's bytes, None after the last.
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, CommunityError> {
        match &mut self.source {
            Source::Here(r) => r.next_chunk().await.map_err(media_error),
            Source::Host {
                client,
                user,
                me,
                community,
                host,
                post,
                media,
                parts,
                next,
                first,
            } => {
                if let Some(b) = first.take() {
                    *next = 1;
                    return Ok(Some(b));
                }
                if *next >= *parts {
                    return Ok(None);
                }
                let wire = client
                    .post_media(
                        *user,
                        me.clone(),
                        (community, host),
                        *post,
                        media.clone(),
                        *next,
                    )
                    .await?;
                let shape = Some((self.content_type.as_str(), self.size, *parts));
                let part = checked(host, wire, *next, shape)?;
                *next += 1;
                Ok(Some(part.bytes))
            }
        }
    }
}

impl Communities {
    /// Media `media` of post `post` in community `id`, for `user` who may see that post and
    /// whose post shows it (otherwise `NotFound`, as for no such media).
    pub async fn post_media(
        &self,
        user: u64,
        id: &str,
        post: u64,
        media: &str,
    ) -> Result<PostMediaReader, CommunityError> {
        if !federation::valid_media_id(media) {
            return Err(CommunityError::NotFound);
        }
        if let Some((community, host)) = self.remote_of(id) {
            let me = self.address_of(user).await?;
            let wire = self
                .remote
                .post_media(
                    user,
                    me.clone(),
                    (&community, &host),
                    post,
                    media.to_string(),
                    0,
                )
                .await?;
            let first = checked(&host, wire, 0, None)?;
            return Ok(PostMediaReader {
                content_type: first.content_type,
                size: first.size,
                source: Source::Host {
                    client: self.remote.clone(),
                    user,
                    me,
                    community,
                    host,
                    post,
                    media: media.to_string(),
                    parts: first.parts,
                    next: 0,
                    first: Some(first.bytes),
                },
            });
        }
        let (_, r) = self.shown_media(user, id, post, media).await?;
        Ok(PostMediaReader {
            content_type: r.content_type.clone(),
            size: r.size,
            source: Source::Here(r),
        })
    }

    /// Part `part` of media `media` of post `post` in community `id` of this node, for a
    /// remote viewer `user` (the host's side of a `post-media` call), with the post's author's
    /// address (whose data it is, for the residency rule).
    pub(crate) async fn post_media_part(
        &self,
        user: u64,
        id: &str,
        post: u64,
        media: &str,
        part: u32,
    ) -> Result<(String, MediaPart), CommunityError> {
        if !federation::valid_media_id(media) {
            return Err(CommunityError::NotFound);
        }
        let (author, r) = self.shown_media(user, id, post, media).await?;
        let bytes = r
            .chunk(part)
            .await
            .map_err(media_error)?
            .ok_or(CommunityError::NotFound)?;
        Ok((
            author,
            MediaPart {
                parts: r.chunks(),
                content_type: r.content_type,
                size: r.size,
                bytes,
            },
        ))
    }

    /// The post's author and the reader of media `media`, when post `post` of community `id`
    /// here is one `user` may see and shows it.
    async fn shown_media(
        &self,
        user: u64,
        id: &str,
        post: u64,
        media: &str,
    ) -> Result<(String, MediaReader), CommunityError> {
        let p = self.one_post(user, id, post).await?;
        if !p.media.iter().any(|m| m.media_id == media) {
            return Err(CommunityError::NotFound);
        }
        let r = crate::media::open_with(&self.store, &self.master, user, media)
            .await
            .map_err(media_error)?;
        Ok((p.author, r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn wire(size: u64, parts: u32, len: usize) -> WireMediaPart {
        WireMediaPart {
            content_type: "image/png".into(),
            size,
            parts,
            data: base64::engine::general_purpose::STANDARD.encode(vec![7u8; len]),
        }
    }

    #[test]
    fn a_hosts_media_part_must_fit_the_size_it_names() {
        let full = MEDIA_PART as usize;
        let size = MEDIA_PART + 10;
        assert_eq!(checked("h", wire(size, 2, full), 0, None).unwrap().parts, 2);
        assert_eq!(
            checked("h", wire(size, 2, 10), 1, Some(("image/png", size, 2)))
                .unwrap()
                .bytes,
            vec![7u8; 10]
        );
        // Short, long, past the end, a wrong count, a changed shape, a bad type.
        assert!(checked("h", wire(size, 2, full - 1), 0, None).is_err());
        assert!(checked("h", wire(size, 2, 11), 1, None).is_err());
        assert!(checked("h", wire(size, 2, 10), 2, None).is_err());
        assert!(checked("h", wire(size, 3, full), 0, None).is_err());
        assert!(checked("h", wire(0, 0, 0), 0, None).is_err());
        assert!(checked("h", wire(size, 2, 10), 1, Some(("image/png", size + 1, 2))).is_err());
        let mut w = wire(10, 1, 10);
        w.content_type = "text/html\n".into();
        assert!(checked("h", w, 0, None).is_err());
    }
}
