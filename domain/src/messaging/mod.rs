//! Conversations and messages: creating direct and group conversations, the group rules (who
//! may invite, remove, rename, promote, transfer), sending with purpose checks and sealing under
//! the author's data key (so erasing the author shreds every copy), history pages, recall,
//! per-user deletion, and the event feed with cursors that realtime delivery reads.
//!
//! The parts, one job each: this file holds `Messaging`, the errors, bodies and their sealing,
//! the views and events the API shows, and the lookups every part shares; `conversations.rs`
//! conversations and membership changes; `rules.rs` the group rules; `send.rs` sending;
//! `history.rs` history pages; `recall.rs` recall and deletion from one's own view;
//! `events.rs` the event feed and long-poll; `reading.rs` the list's unread counts and marking
//! read.

use std::collections::HashMap;
use std::sync::Arc;

use crate::consents::{ConsentError, Consents, Purpose};
use crate::crypto::{self, CryptoError, MasterKey, SecretKey};
use crate::federate::{Directory, FedError, Outbox};
use crate::hub::Hub;
use crate::media::sniff::Class;
use crate::time::{Millis, SharedClock};
use federation::conversation_host;
use storage::{
    ConvKind, ConversationState, Dec, Enc, MemberAction, Refusal, Role, Store, StoreError,
};

mod conversations;
mod events;
mod history;
mod reading;
mod recall;
pub mod rules;
mod send;

pub use reading::{ConversationActivity, PREVIEW_CHARS};

/// Largest text body, in bytes.
pub const MAX_TEXT_BYTES: usize = 16 * 1024;

/// Errors of messaging operations.
#[derive(Debug, thiserror::Error)]
pub enum MessagingError {
    /// No such conversation, or not a member: the same answer, so nothing leaks.
    #[error("no such conversation")]
    NotFound,
    #[error("no such message")]
    NoSuchMessage,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("{0}")]
    Conflict(&'static str),
    #[error("the recall window of {0} seconds has passed")]
    TooLate(u64),
    #[error(transparent)]
    Consent(#[from] ConsentError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error(transparent)]
    Federation(#[from] FedError),
    #[error("{}", crate::federate::refusal_text(.0))]
    Refused(Refusal),
    /// The other member of a direct conversation does not take messages from this user (a
    /// block either way, or friends only): one answer for both, so a block does not show.
    #[error("this user does not accept direct messages from you")]
    NotAccepting,
}

impl From<Refusal> for MessagingError {
    fn from(r: Refusal) -> Self {
        MessagingError::Refused(r)
    }
}

/// What became of a sent message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// Stored with its id (`<conversation>/<seq>`), seq and time.
    Stored { id: String, seq: u64, ts: Millis },
    /// Queued for the node that hosts the conversation; it arrives as an event once the
    /// host has sequenced it.
    Forwarded { ts: Millis },
}

/// What media a message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Image,
    Voice,
    Video,
    File,
}

impl MediaKind {
    pub const fn name(self) -> &'static str {
        match self {
            MediaKind::Image => "image",
            MediaKind::Voice => "voice",
            MediaKind::Video => "video",
            MediaKind::File => "file",
        }
    }
    pub fn parse(s: &str) -> Option<MediaKind> {
        [
            MediaKind::Image,
            MediaKind::Voice,
            MediaKind::Video,
            MediaKind::File,
        ]
        .into_iter()
        .find(|k| k.name() == s)
    }
    /// The purpose a message of this kind carrying media of `class` (sniffed from its bytes at
    /// upload, whatever the client declares) needs (1.2.2): photos for images, microphone for
    /// audio, camera for video, none for other files. A kind that contradicts the media (an
    /// "image" that is audio, a "voice" message that is a PDF) is refused; "file" carries
    /// anything, and still needs the media's purpose.
    pub fn purpose(self, class: Class) -> Result<Option<Purpose>, String> {
        let needed = match class {
            Class::Image => Some(Purpose::Photos),
            Class::Audio => Some(Purpose::Microphone),
            Class::Video => Some(Purpose::Camera),
            Class::Other => None,
        };
        let fits = match self {
            MediaKind::Image => class == Class::Image,
            MediaKind::Voice => class == Class::Audio,
            MediaKind::Video => class == Class::Video,
            MediaKind::File => true,
        };
        if fits {
            Ok(needed)
        } else {
            let what = match class {
                Class::Image => "an image",
                Class::Audio => "audio",
                Class::Video => "a video",
                Class::Other => "neither image, audio nor video",
            };
            Err(format!(
                "is {} but the uploaded media is {what}; send it as that kind or as \"file\"",
                self.name()
            ))
        }
    }
    fn code(self) -> u64 {
        match self {
            MediaKind::Image => 1,
            MediaKind::Voice => 2,
            MediaKind::Video => 3,
            MediaKind::File => 4,
        }
    }
}

/// A message body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Text(String),
    Media {
        kind: MediaKind,
        media_id: String,
        name: Option<String>,
    },
}

impl Body {
    fn encode(&self) -> Vec<u8> {
        match self {
            Body::Text(t) => Enc::new(1).u64(0).str(t).finish(),
            Body::Media {
                kind,
                media_id,
                name,
            } => {
                let e = Enc::new(1).u64(kind.code()).str(media_id);
                match name {
                    Some(n) => e.bool(true).str(n),
                    None => e.bool(false),
                }
                .finish()
            }
        }
    }
    fn decode(b: &[u8]) -> Result<Body, StoreError> {
        let mut d = Dec::new(b, "body", 1)?;
        let body = match d.u64()? {
            0 => Body::Text(d.string()?),
            c => {
                let kind = [
                    MediaKind::Image,
                    MediaKind::Voice,
                    MediaKind::Video,
                    MediaKind::File,
                ]
                .into_iter()
                .find(|k| k.code() == c)
                .ok_or(StoreError::Corrupt("body"))?;
                let media_id = d.string()?;
                let name = if d.bool()? { Some(d.string()?) } else { None };
                Body::Media {
                    kind,
                    media_id,
                    name,
                }
            }
        };
        d.end()?;
        Ok(body)
    }
}

/// A message as a client sees it.
#[derive(Debug, Clone)]
pub struct MessageView {
    pub id: String,
    pub seq: u64,
    pub ts: Millis,
    pub sender: String,
    /// `None` for a recalled message.
    pub body: Option<Body>,
}

/// A conversation as a member sees it.
#[derive(Debug, Clone)]
pub struct ConversationView {
    /// The store's number for the conversation (never shown to clients).
    pub no: u64,
    pub id: String,
    pub kind: ConvKind,
    pub name: String,
    pub public: bool,
    pub created: Millis,
    pub last_seq: u64,
    pub last_activity: Millis,
    pub my_role: Role,
    pub members: Vec<String>,
}

/// One event of a user's feed.
#[derive(Debug, Clone)]
pub enum Event {
    Message {
        conversation: String,
        message: MessageView,
    },
    Recall {
        conversation: String,
        seq: u64,
    },
    Membership {
        conversation: String,
        action: MemberAction,
        user: String,
        actor: String,
        role: Role,
    },
    Renamed {
        conversation: String,
        name: String,
        actor: String,
    },
    Visibility {
        conversation: String,
        public: bool,
        actor: String,
    },
    /// A notice: its words are chosen when it is sent, in the reader's language
    /// (`notices::words`).
    Notice {
        kind: &'static str,
        content: storage::NoticeContent,
    },
    /// A friends step: `id` names the request (or the friendship, for `removed`), `user` the
    /// other person.
    Friend {
        action: &'static str,
        id: String,
        user: String,
    },
    /// A new post (`comment` None) or comment in a community the user may see.
    Community {
        community: String,
        post: u64,
        comment: Option<u64>,
    },
    /// A join request to the group `conversation` was made or answered: `id` names the
    /// request (as the owner's join-request list does), `user` the other person.
    Join {
        action: &'static str,
        id: String,
        conversation: String,
        user: String,
    },
}

/// Settings of the messaging service.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub recall_window_ms: u64,
    pub max_group_members: usize,
}

/// The messaging service.
#[derive(Debug, Clone)]
pub struct Messaging {
    store: Store,
    master: MasterKey,
    consents: Consents,
    hub: Arc<Hub>,
    clock: SharedClock,
    domain: String,
    limits: Limits,
    outbox: Outbox,
    directory: Directory,
}

/// Seals a message body under its author's key, bound to the conversation and message id.
pub fn seal_body(
    key: &SecretKey,
    conv_id: &str,
    msg_id: &[u8; 16],
    body: &Body,
) -> Result<Vec<u8>, CryptoError> {
    key.seal(&aad(conv_id, msg_id), &body.encode())
}

/// Opens a body sealed by [`seal_body`] (search reads message texts this way).
pub fn open_body(
    key: &SecretKey,
    conv_id: &str,
    msg_id: &[u8; 16],
    sealed: &[u8],
) -> Result<Body, MessagingError> {
    Ok(Body::decode(&key.open(&aad(conv_id, msg_id), sealed)?)?)
}

fn aad(conv_id: &str, msg_id: &[u8; 16]) -> Vec<u8> {
    let mut v = b"msg/".to_vec();
    v.extend_from_slice(conv_id.as_bytes());
    v.push(b'/');
    v.extend_from_slice(msg_id);
    v
}

impl Messaging {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Store,
        master: MasterKey,
        consents: Consents,
        hub: Arc<Hub>,
        clock: SharedClock,
        domain: String,
        limits: Limits,
        outbox: Outbox,
        directory: Directory,
    ) -> Self {
        Messaging {
            store,
            master,
            consents,
            hub,
            clock,
            domain,
            limits,
            outbox,
            directory,
        }
    }

    /// The address of a local handle; a remote user's stored name already is one.
    pub fn address(&self, handle: &str) -> String {
        if handle.contains('@') {
            handle.to_string()
        } else {
            format!("{handle}@{}", self.domain)
        }
    }

    fn hosted_here(&self, conv_id: &str) -> bool {
        conversation_host(conv_id) == Some(self.domain.as_str())
    }

    /// A local user's id from an address on this node.
    async fn resolve(&self, field: &'static str, address: &str) -> Result<u64, MessagingError> {
        let invalid = |reason: &str| MessagingError::Invalid {
            field,
            reason: reason.to_string(),
        };
        let (handle, domain) = address
            .rsplit_once('@')
            .ok_or_else(|| invalid("must be an address handle@domain"))?;
        if domain != self.domain {
            return Ok(self.directory.resolve(address).await?);
        }
        self.store
            .user_by_handle(handle.to_string())
            .await?
            .ok_or_else(|| MessagingError::Invalid {
                field,
                reason: format!("no user {address}"),
            })
    }

    async fn conversation(&self, user: u64, id: &str) -> Result<ConversationState, MessagingError> {
        let no = self
            .store
            .conversation_no(id.to_string())
            .await?
            .ok_or(MessagingError::NotFound)?;
        let state = self
            .store
            .conversation_state(no)
            .await?
            .ok_or(MessagingError::NotFound)?;
        if state.member(user).is_none() {
            return Err(MessagingError::NotFound);
        }
        Ok(state)
    }

    fn new_conversation_id(&self) -> Result<(String, u64), MessagingError> {
        let mut b = [0u8; 8];
        crypto::random_bytes(&mut b)?;
        let no = u64::from_be_bytes(b);
        Ok((format!("{}:{}", crypto::random_id(12)?, self.domain), no))
    }

    async fn handles(
        &self,
        ids: Vec<u64>,
    ) -> Result<HashMap<u64, (String, Vec<u8>)>, MessagingError> {
        let mut ids = ids;
        ids.sort_unstable();
        ids.dedup();
        Ok(self
            .store
            .wrapped_keys(ids)
            .await?
            .into_iter()
            .map(|(id, h, k)| (id, (h, k)))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_round_trip() {
        for b in [
            Body::Text("你好".into()),
            Body::Media {
                kind: MediaKind::Voice,
                media_id: "m1".into(),
                name: None,
            },
            Body::Media {
                kind: MediaKind::File,
                media_id: "m2".into(),
                name: Some("a.pdf".into()),
            },
        ] {
            assert_eq!(Body::decode(&b.encode()).unwrap(), b);
        }
    }

    #[test]
    fn the_purpose_follows_the_sniffed_media_not_the_declared_kind() {
        use MediaKind::*;
        assert_eq!(Image.purpose(Class::Image), Ok(Some(Purpose::Photos)));
        assert_eq!(Voice.purpose(Class::Audio), Ok(Some(Purpose::Microphone)));
        assert_eq!(Video.purpose(Class::Video), Ok(Some(Purpose::Camera)));
        assert_eq!(File.purpose(Class::Image), Ok(Some(Purpose::Photos)));
        assert_eq!(File.purpose(Class::Audio), Ok(Some(Purpose::Microphone)));
        assert_eq!(File.purpose(Class::Video), Ok(Some(Purpose::Camera)));
        assert_eq!(File.purpose(Class::Other), Ok(None));
        assert!(Image.purpose(Class::Other).is_err());
        assert!(Voice.purpose(Class::Video).is_err());
        assert!(Video.purpose(Class::Image).is_err());
    }
}
