//! Conversations and messages: creating direct and group conversations, the group rules (who
//! may invite, remove, rename, promote, transfer), sending with purpose checks and sealing under
//! the author's data key (so erasing the author shreds every copy), history pages, recall,
//! per-user deletion, and the event feed with cursors that realtime delivery reads.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::accounts::Session;
use crate::consents::{ConsentError, Consents, Purpose};
use crate::crypto::{self, CryptoError, MasterKey, SecretKey};
use crate::federate::{Directory, FedError, Outbox};
use crate::hub::Hub;
use crate::media::sniff::Class;
use crate::time::{Millis, SharedClock, Sleep};
use federation::{WireBody, WireChange, conversation_host};
use storage::{
    ConvKind, ConversationRecord, ConversationState, Dec, Enc, EventRecord, MemberAction,
    MessageRecord, Mutation, NewConversation, NewMessage, Page, Recalled, Refusal, Role, Sent,
    Store, StoreError,
};

mod reading;
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

    /// Opens (or returns the existing) direct conversation with `with`.
    pub async fn create_direct(
        &self,
        user: u64,
        with: &str,
    ) -> Result<(ConversationView, bool), MessagingError> {
        let other = self.resolve("with", with).await?;
        if other == user {
            return Err(MessagingError::Invalid {
                field: "with",
                reason: "a direct conversation needs another user".into(),
            });
        }
        // Blocks and the who-may-message-me setting (`friends`); the send path checks again
        // inside its own transaction.
        if self.store.direct_refused(user, other).await? {
            return Err(MessagingError::NotAccepting);
        }
        let (id, no) = self.new_conversation_id()?;
        let (rec, created, notify) = self
            .store
            .create_conversation(NewConversation {
                id,
                no,
                kind: ConvKind::Direct,
                name: String::new(),
                public: false,
                creator: user,
                others: vec![other],
                now: self.clock.now(),
                fanout: Some(self.outbox.state_fanout(user)),
            })
            .await??;
        self.hub.publish(&notify.users, notify.pos);
        self.outbox.wake(&notify.peers);
        Ok((self.view_of(user, rec.no).await?, created))
    }

    /// Creates a group owned by `user` with `members` invited.
    pub async fn create_group(
        &self,
        user: u64,
        name: &str,
        public: bool,
        members: &[String],
    ) -> Result<ConversationView, MessagingError> {
        let name = group_name(name)?;
        if members.len() + 1 > self.limits.max_group_members {
            return Err(MessagingError::Invalid {
                field: "members",
                reason: format!(
                    "a group has at most {} members",
                    self.limits.max_group_members
                ),
            });
        }
        let mut ids = Vec::new();
        for m in members {
            let id = self.resolve("members", m).await?;
            if id != user && !ids.contains(&id) {
                ids.push(id);
            }
        }
        let (id, no) = self.new_conversation_id()?;
        let (rec, _, notify) = self
            .store
            .create_conversation(NewConversation {
                id,
                no,
                kind: ConvKind::Group,
                name,
                public,
                creator: user,
                others: ids,
                now: self.clock.now(),
                fanout: Some(self.outbox.state_fanout(user)),
            })
            .await??;
        self.hub.publish(&notify.users, notify.pos);
        self.outbox.wake(&notify.peers);
        self.view_of(user, rec.no).await
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

    fn describe(
        &self,
        s: &ConversationState,
        user: u64,
        handles: &HashMap<u64, (String, Vec<u8>)>,
    ) -> Option<ConversationView> {
        let me = s.member(user)?;
        let c: &ConversationRecord = &s.conversation;
        Some(ConversationView {
            no: c.no,
            id: c.id.clone(),
            kind: c.kind,
            name: c.name.clone(),
            public: c.public,
            created: c.created,
            last_seq: c.last_seq,
            last_activity: c.last_activity,
            my_role: me.role,
            members: s
                .members
                .iter()
                .filter_map(|m| handles.get(&m.user).map(|(h, _)| self.address(h)))
                .collect(),
        })
    }

    async fn view_of(&self, user: u64, no: u64) -> Result<ConversationView, MessagingError> {
        let s = self
            .store
            .conversation_state(no)
            .await?
            .ok_or(MessagingError::NotFound)?;
        let handles = self
            .handles(s.members.iter().map(|m| m.user).collect())
            .await?;
        self.describe(&s, user, &handles)
            .ok_or(MessagingError::NotFound)
    }

    /// The user's conversations, most recently active first.
    pub async fn list(&self, user: u64) -> Result<Vec<ConversationView>, MessagingError> {
        let states = self.store.conversations_of(user).await?;
        let handles = self
            .handles(
                states
                    .iter()
                    .flat_map(|s| s.members.iter().map(|m| m.user))
                    .collect(),
            )
            .await?;
        let mut out: Vec<_> = states
            .iter()
            .filter_map(|s| self.describe(s, user, &handles))
            .collect();
        out.sort_by(|a, b| {
            b.last_activity
                .cmp(&a.last_activity)
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(out)
    }

    /// One conversation, with its members' ids for the caller to describe.
    pub async fn get(
        &self,
        user: u64,
        id: &str,
    ) -> Result<(ConversationView, Vec<(u64, Role)>), MessagingError> {
        let s = self.conversation(user, id).await?;
        let handles = self
            .handles(s.members.iter().map(|m| m.user).collect())
            .await?;
        let view = self
            .describe(&s, user, &handles)
            .ok_or(MessagingError::NotFound)?;
        Ok((view, s.members.iter().map(|m| (m.user, m.role)).collect()))
    }

    /// Applies a group rule to a conversation and wakes everyone concerned.
    /// When another node hosts the conversation, the rule is checked on this node's copy and
    /// `wire` goes to the host, which decides again and announces the result.
    async fn change(
        &self,
        user: u64,
        id: &str,
        decide: impl Fn(&ConversationState) -> Result<Vec<Mutation>, MessagingError> + Send + 'static,
        wire: WireChange,
    ) -> Result<(), MessagingError> {
        if !self.hosted_here(id) {
            let state = self.conversation(user, id).await?;
            decide(&state)?;
            let me = self
                .handles(vec![user])
                .await?
                .remove(&user)
                .map(|(h, _)| self.address(&h))
                .ok_or(MessagingError::NotFound)?;
            self.outbox.change_request(user, &me, id, wire).await?;
            return Ok(());
        }
        let no = self
            .store
            .conversation_no(id.to_string())
            .await?
            .ok_or(MessagingError::NotFound)?;
        let fanout = Some(self.outbox.state_fanout(user));
        let notify = self
            .store
            .change_conversation(no, user, self.clock.now(), decide, fanout)
            .await??;
        self.hub.publish(&notify.users, notify.pos);
        self.outbox.wake(&notify.peers);
        Ok(())
    }

    /// Invites `target` (or joins a public group, when `target` is the caller).
    pub async fn invite(&self, user: u64, id: &str, target: &str) -> Result<(), MessagingError> {
        let wire = WireChange::Invite {
            user: target.to_string(),
        };
        let target = self.resolve("user", target).await?;
        let max = self.limits.max_group_members;
        self.change(user, id, move |s| rules::invite(s, user, target, max), wire)
            .await
    }

    /// Removes `target`; removing oneself is leaving.
    pub async fn remove(&self, user: u64, id: &str, target: &str) -> Result<(), MessagingError> {
        let wire = WireChange::Remove {
            user: target.to_string(),
        };
        let target = self.resolve("user", target).await?;
        self.change(user, id, move |s| rules::remove(s, user, target), wire)
            .await
    }

    pub async fn set_role(
        &self,
        user: u64,
        id: &str,
        target: &str,
        role: Role,
    ) -> Result<(), MessagingError> {
        let wire = WireChange::SetRole {
            user: target.to_string(),
            role: crate::federate::role_name(role).to_string(),
        };
        let target = self.resolve("user", target).await?;
        self.change(
            user,
            id,
            move |s| rules::set_role(s, user, target, role),
            wire,
        )
        .await
    }

    pub async fn transfer(&self, user: u64, id: &str, target: &str) -> Result<(), MessagingError> {
        let wire = WireChange::Transfer {
            user: target.to_string(),
        };
        let target = self.resolve("user", target).await?;
        self.change(user, id, move |s| rules::transfer(s, user, target), wire)
            .await
    }

    pub async fn update(
        &self,
        user: u64,
        id: &str,
        name: Option<String>,
        public: Option<bool>,
    ) -> Result<(), MessagingError> {
        let name = name.map(|n| group_name(&n)).transpose()?;
        let wire = WireChange::Update {
            name: name.clone(),
            public,
        };
        self.change(
            user,
            id,
            move |s| rules::update(s, user, name.clone(), public),
            wire,
        )
        .await
    }

    /// Whether conversation `id` has members on other nodes.
    async fn has_remote_members(&self, id: &str) -> Result<bool, MessagingError> {
        let Some(no) = self.store.conversation_no(id.to_string()).await? else {
            return Ok(false);
        };
        Ok(self.store.conversation_state(no).await?.is_some_and(|s| {
            s.members
                .iter()
                .any(|m| m.user & storage::REMOTE_USER_BIT != 0)
        }))
    }

    /// The other nodes that store (and fetch the media of) what is sent into conversation
    /// `id`: its host when that is not this node, and the nodes of its remote members.
    async fn receiving_nodes(&self, id: &str) -> Result<Vec<String>, MessagingError> {
        let mut out = Vec::new();
        if let Some(host) = conversation_host(id)
            && host != self.domain
        {
            out.push(host.to_string());
        }
        let Some(no) = self.store.conversation_no(id.to_string()).await? else {
            return Ok(out);
        };
        let remote: Vec<u64> = self
            .store
            .conversation_state(no)
            .await?
            .map(|s| {
                s.members
                    .iter()
                    .map(|m| m.user)
                    .filter(|u| u & storage::REMOTE_USER_BIT != 0)
                    .collect()
            })
            .unwrap_or_default();
        for (_, r) in self.store.remote_users(remote).await? {
            if let Some(d) = federation::address_domain(&r.address)
                && !out.iter().any(|o| o == d)
            {
                out.push(d.to_string());
            }
        }
        Ok(out)
    }

    /// Sends a message; repeating a txn id from the same device returns the first answer.
    pub async fn send(
        &self,
        session: &Session,
        id: &str,
        txn_id: &str,
        body: Body,
    ) -> Result<SendOutcome, MessagingError> {
        validate_txn_id(txn_id)?;
        let media = match &body {
            Body::Text(t) => {
                if t.is_empty() || t.len() > MAX_TEXT_BYTES {
                    return Err(MessagingError::Invalid {
                        field: "body.text",
                        reason: format!("must be 1 to {MAX_TEXT_BYTES} bytes"),
                    });
                }
                None
            }
            Body::Media { kind, media_id, .. } => {
                let stored_type = self
                    .store
                    .media_type(media_id.clone(), session.user)
                    .await?
                    .ok_or_else(|| MessagingError::Invalid {
                        field: "body.media_id",
                        reason: "is not media you uploaded".into(),
                    })?;
                let purpose = kind.purpose(Class::of(&stored_type)).map_err(|reason| {
                    MessagingError::Invalid {
                        field: "body.type",
                        reason,
                    }
                })?;
                if let Some(p) = purpose {
                    self.consents.require(session.user, p).await?;
                }
                Some(media_id.clone())
            }
        };
        let key: SecretKey = self
            .master
            .unwrap_data_key(session.user, &session.wrapped_key)?;
        let mut msg_id = [0u8; 16];
        crypto::random_bytes(&mut msg_id)?;
        let body_sealed = key.seal(&aad(id, &msg_id), &body.encode())?;
        let ts = self.clock.now();
        let fanout = match &body {
            Body::Text(t) => self.outbox.message_fanout(
                session.user,
                key.clone(),
                msg_id,
                ts.0,
                WireBody::Text { text: t.clone() },
            ),
            Body::Media {
                kind,
                media_id,
                name,
            } => {
                // The bytes are read and hashed only when the message leaves this node.
                let federated = !self.hosted_here(id) || self.has_remote_members(id).await?;
                if federated {
                    // The fan-out refuses media larger than a receiving node takes; it needs
                    // their published limits known.
                    let nodes = self.receiving_nodes(id).await?;
                    self.outbox
                        .learn_limits(&nodes, Duration::from_secs(3))
                        .await;
                    let media = crate::media::reference(
                        &self.store,
                        &self.master,
                        session.user,
                        media_id,
                        &self.domain,
                    )
                    .await
                    .map_err(|e| MessagingError::Invalid {
                        field: "body.media_id",
                        reason: e.to_string(),
                    })?;
                    self.outbox.message_fanout(
                        session.user,
                        key.clone(),
                        msg_id,
                        ts.0,
                        WireBody::Media {
                            kind: kind.name().to_string(),
                            name: name.clone(),
                            media,
                        },
                    )
                } else {
                    storage::Fanout::new(self.store.handles(), |_| Ok(Vec::new()))
                }
            }
        };
        let outcome = self
            .store
            .send_message(NewMessage {
                author: session.user,
                device_id: session.device_id.clone(),
                txn_id: txn_id.to_string(),
                conv_id: id.to_string(),
                id: msg_id,
                ts,
                body_sealed,
                media,
                hosted_here: self.hosted_here(id),
                fanout: Some(fanout),
            })
            .await?;
        match outcome {
            Sent::New { seq, ts, notify } => {
                self.hub.publish(&notify.users, notify.pos);
                self.outbox.wake(&notify.peers);
                self.outbox.pace(&notify.peers).await;
                Ok(SendOutcome::Stored {
                    id: format!("{id}/{seq}"),
                    seq,
                    ts,
                })
            }
            Sent::Repeat { seq: 0, ts } => Ok(SendOutcome::Forwarded { ts }),
            Sent::Repeat { seq, ts } => Ok(SendOutcome::Stored {
                id: format!("{id}/{seq}"),
                seq,
                ts,
            }),
            Sent::Forwarded { ts, notify } => {
                self.outbox.wake(&notify.peers);
                self.outbox.pace(&notify.peers).await;
                Ok(SendOutcome::Forwarded { ts })
            }
            Sent::Refused(r) => Err(MessagingError::Refused(r)),
            Sent::NotMember => Err(MessagingError::NotFound),
            Sent::NotAccepting => Err(MessagingError::NotAccepting),
            Sent::MediaNotOwned => Err(MessagingError::Invalid {
                field: "body.media_id",
                reason: "is not media you uploaded".into(),
            }),
        }
    }

    /// Opens stored messages for display, given their authors' handles and wrapped keys (one
    /// lookup for a whole batch). The result is aligned with `items`; `None` where the author is
    /// gone (erased: nothing of theirs is shown).
    fn open_views(
        &self,
        handles: &HashMap<u64, (String, Vec<u8>)>,
        items: Vec<(&str, MessageRecord)>,
    ) -> Result<Vec<Option<MessageView>>, MessagingError> {
        let mut keys: HashMap<u64, SecretKey> = HashMap::new();
        let mut out = Vec::with_capacity(items.len());
        for (conv_id, m) in items {
            let Some((handle, wrapped)) = handles.get(&m.author) else {
                out.push(None);
                continue;
            };
            let body = if m.recalled {
                None
            } else {
                let key = match keys.entry(m.author) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(v) => {
                        v.insert(self.master.unwrap_data_key(m.author, wrapped)?)
                    }
                };
                Some(Body::decode(
                    &key.open(&aad(conv_id, &m.id), &m.body_sealed)?,
                )?)
            };
            out.push(Some(MessageView {
                id: format!("{conv_id}/{}", m.seq),
                seq: m.seq,
                ts: m.ts,
                sender: self.address(handle),
                body,
            }));
        }
        Ok(out)
    }

    /// A page of history as this device may see it.
    pub async fn history(
        &self,
        session: &Session,
        id: &str,
        before: Option<u64>,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<MessageView>, MessagingError> {
        self.page(
            session.user,
            Some(session.device_id.clone()),
            id,
            before,
            after,
            limit,
        )
        .await
    }

    /// A page of the history kept for `user` (not bound to one device's view), oldest first
    /// after `after`: what their data export holds.
    pub async fn kept_history(
        &self,
        user: u64,
        id: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<MessageView>, MessagingError> {
        self.page(user, None, id, None, Some(after), limit).await
    }

    async fn page(
        &self,
        user: u64,
        device: Option<String>,
        id: &str,
        before: Option<u64>,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<MessageView>, MessagingError> {
        let no = self
            .store
            .conversation_no(id.to_string())
            .await?
            .ok_or(MessagingError::NotFound)?;
        let records = self
            .store
            .messages(
                user,
                device,
                no,
                Page {
                    before,
                    after,
                    limit,
                },
                self.clock.now(),
            )
            .await?
            .ok_or(MessagingError::NotFound)?;
        let handles = self
            .handles(records.iter().map(|m| m.author).collect())
            .await?;
        let items = records.into_iter().map(|m| (id, m)).collect();
        Ok(self
            .open_views(&handles, items)?
            .into_iter()
            .flatten()
            .collect())
    }

    pub async fn recall(&self, user: u64, id: &str, seq: u64) -> Result<(), MessagingError> {
        let no = self
            .store
            .conversation_no(id.to_string())
            .await?
            .ok_or(MessagingError::NotFound)?;
        match self
            .store
            .recall_message(
                user,
                no,
                seq,
                self.clock.now(),
                self.limits.recall_window_ms,
                self.hosted_here(id),
                Some(self.outbox.recall_fanout(user)),
            )
            .await?
        {
            Recalled::Done(n) => {
                self.hub.publish(&n.users, n.pos);
                self.outbox.wake(&n.peers);
                Ok(())
            }
            Recalled::Refused(r) => Err(MessagingError::Refused(r)),
            Recalled::NotMember => Err(MessagingError::NotFound),
            Recalled::NoSuchMessage => Err(MessagingError::NoSuchMessage),
            Recalled::NotAuthor => Err(MessagingError::Forbidden(
                "only the author can recall a message",
            )),
            Recalled::TooLate => Err(MessagingError::TooLate(self.limits.recall_window_ms / 1000)),
        }
    }

    pub async fn hide(&self, user: u64, id: &str, seq: u64) -> Result<(), MessagingError> {
        let no = self
            .store
            .conversation_no(id.to_string())
            .await?
            .ok_or(MessagingError::NotFound)?;
        match self.store.hide_message(user, no, seq).await? {
            Some(true) => Ok(()),
            Some(false) => Err(MessagingError::NoSuchMessage),
            None => Err(MessagingError::NotFound),
        }
    }

    pub async fn clear(&self, user: u64, id: &str) -> Result<(), MessagingError> {
        let no = self
            .store
            .conversation_no(id.to_string())
            .await?
            .ok_or(MessagingError::NotFound)?;
        if self.store.clear_conversation(user, no).await? {
            Ok(())
        } else {
            Err(MessagingError::NotFound)
        }
    }

    /// A wake-up receiver for the session's user.
    pub fn subscribe(&self, user: u64) -> tokio::sync::watch::Receiver<u64> {
        self.hub.subscribe(user)
    }

    /// The device's events after `since` (or after what it acknowledged), and the cursor to
    /// continue from.
    pub async fn events(
        &self,
        session: &Session,
        since: Option<u64>,
        limit: usize,
    ) -> Result<(Vec<(u64, Event)>, u64), MessagingError> {
        let feed = self
            .store
            .events_since(
                session.user,
                session.device_id.clone(),
                since,
                limit,
                self.clock.now(),
            )
            .await?;
        let (raw, cursor) = (feed.events, feed.cursor);
        let names: HashMap<u64, (String, Vec<u8>)> = feed
            .people
            .into_iter()
            .map(|(id, h, k)| (id, (h, k)))
            .collect();
        let mut opened = self
            .open_views(
                &names,
                raw.iter()
                    .filter(|e| matches!(e.event, EventRecord::Message { .. }))
                    .filter_map(|e| Some((e.conv_id.as_deref()?, e.message.clone()?)))
                    .collect(),
            )?
            .into_iter();
        let name = |id: &u64| {
            names
                .get(id)
                .map_or_else(|| "unknown".to_string(), |(h, _)| self.address(h))
        };
        let mut out = Vec::with_capacity(raw.len());
        for e in raw {
            let conversation = e.conv_id.clone().unwrap_or_default();
            let ev = match e.event {
                EventRecord::Message { .. } => {
                    if e.conv_id.is_none() || e.message.is_none() {
                        continue;
                    }
                    let Some(message) = opened.next().flatten() else {
                        continue;
                    };
                    Event::Message {
                        conversation,
                        message,
                    }
                }
                EventRecord::Recall { seq } => Event::Recall { conversation, seq },
                EventRecord::Member {
                    action,
                    user,
                    actor,
                    role,
                } => {
                    let conversation = match e.conv_id {
                        Some(c) => c,
                        None => "".into(),
                    };
                    Event::Membership {
                        conversation,
                        action,
                        user: name(&user),
                        actor: name(&actor),
                        role,
                    }
                }
                EventRecord::Renamed { name: n, actor } => Event::Renamed {
                    conversation,
                    name: n,
                    actor: name(&actor),
                },
                EventRecord::Visibility { public, actor } => Event::Visibility {
                    conversation,
                    public,
                    actor: name(&actor),
                },
                EventRecord::Notice { kind, content } => Event::Notice {
                    kind: kind.name(),
                    content,
                },
                EventRecord::Friend { action, id, user } => Event::Friend {
                    action: action.name(),
                    id: crate::friends::wire_id(id),
                    user: name(&user),
                },
                EventRecord::Community {
                    community,
                    post,
                    comment,
                } => Event::Community {
                    community: crate::community::community_id(community),
                    post,
                    comment: (comment != 0).then_some(comment),
                },
                EventRecord::Join {
                    action,
                    id,
                    conversation,
                    user,
                } => Event::Join {
                    action: action.name(),
                    id: id.to_string(),
                    conversation,
                    user: name(&user),
                },
            };
            out.push((e.pos, ev));
        }
        Ok((out, cursor))
    }

    /// Waits up to `timeout` for events after `since`; acknowledges `since` first (the client
    /// says it has everything up to there). The timeout runs on the node's clock from the first
    /// read that found nothing, so a timer of `timeout` on it means a poll is waiting (a test on
    /// a manual clock sees it, and ends it only by moving the clock).
    pub async fn long_poll(
        &self,
        session: &Session,
        since: Option<u64>,
        timeout: Duration,
        limit: usize,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Result<(Vec<(u64, Event)>, u64), MessagingError> {
        if let Some(s) = since {
            self.acknowledge(session, s).await?;
        }
        let mut wake = self.subscribe(session.user);
        wake.borrow_and_update();
        let mut expiry: Option<Sleep> = None;
        let mut expired = timeout.is_zero();
        loop {
            let (events, cursor) = self.events(session, since, limit).await?;
            if !events.is_empty() || expired || *shutdown.borrow() {
                return Ok((events, cursor));
            }
            let expiry = expiry.get_or_insert_with(|| self.clock.sleep(timeout));
            tokio::select! {
                _ = wake.changed() => {}
                () = expiry => expired = true,
                _ = shutdown.changed() => {}
            }
        }
    }

    pub async fn acknowledge(&self, session: &Session, cursor: u64) -> Result<(), MessagingError> {
        Ok(self
            .store
            .acknowledge(session.user, session.device_id.clone(), cursor)
            .await?)
    }
}

/// Checks a group name: 1–64 characters.
fn group_name(s: &str) -> Result<String, MessagingError> {
    crate::shown::text("name", s, 1, 64).map_err(|e| MessagingError::Invalid {
        field: "name",
        reason: e.reason,
    })
}

/// Checks a client transaction id: 1–64 of `[A-Za-z0-9._-]`.
fn validate_txn_id(s: &str) -> Result<(), MessagingError> {
    if (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        Ok(())
    } else {
        Err(MessagingError::Invalid {
            field: "txn_id",
            reason: "must be 1 to 64 of A-Z a-z 0-9 . _ -".into(),
        })
    }
}

/// The group rules, as pure functions of the conversation's state: each returns the changes to
/// make, or why not.
pub mod rules {
    use super::MessagingError;
    use storage::{ConvKind, ConversationState, MemberAction, Mutation, Role};

    fn group(s: &ConversationState) -> Result<(), MessagingError> {
        if s.conversation.kind == ConvKind::Group {
            Ok(())
        } else {
            Err(MessagingError::Forbidden(
                "a direct conversation has exactly its two members",
            ))
        }
    }

    fn role_of(s: &ConversationState, user: u64) -> Result<Role, MessagingError> {
        s.member(user)
            .map(|m| m.role)
            .ok_or(MessagingError::NotFound)
    }

    pub fn invite(
        s: &ConversationState,
        actor: u64,
        target: u64,
        max: usize,
    ) -> Result<Vec<Mutation>, MessagingError> {
        if actor == target && s.member(actor).is_none() {
            // Joining by oneself: public groups only; a private group stays invisible.
            if s.conversation.kind == ConvKind::Group && s.conversation.public {
                if s.members.len() >= max {
                    return Err(MessagingError::Conflict("the group is full"));
                }
                return Ok(vec![Mutation::Add {
                    user: actor,
                    role: Role::Member,
                    action: MemberAction::Joined,
                }]);
            }
            return Err(MessagingError::NotFound);
        }
        let role = role_of(s, actor)?;
        group(s)?;
        if !s.conversation.public && role == Role::Member {
            return Err(MessagingError::Forbidden(
                "only the owner and admins invite to a private group",
            ));
        }
        if s.member(target).is_some() {
            return Err(MessagingError::Conflict("already a member"));
        }
        if s.members.len() >= max {
            return Err(MessagingError::Conflict("the group is full"));
        }
        Ok(vec![Mutation::Add {
            user: target,
            role: Role::Member,
            action: MemberAction::Invited,
        }])
    }

    pub fn remove(
        s: &ConversationState,
        actor: u64,
        target: u64,
    ) -> Result<Vec<Mutation>, MessagingError> {
        let role = role_of(s, actor)?;
        group(s)?;
        let target_role = s
            .member(target)
            .map(|m| m.role)
            .ok_or(MessagingError::Invalid {
                field: "user",
                reason: "is not a member".into(),
            })?;
        if actor == target {
            if role == Role::Owner && s.members.len() > 1 {
                return Err(MessagingError::Conflict(
                    "transfer ownership before leaving",
                ));
            }
            return Ok(vec![Mutation::Remove {
                user: actor,
                action: MemberAction::Left,
            }]);
        }
        let allowed = match role {
            Role::Owner => true,
            Role::Admin => target_role == Role::Member,
            Role::Member => false,
        };
        if !allowed {
            return Err(MessagingError::Forbidden(
                "only the owner, or an admin for plain members, may remove",
            ));
        }
        Ok(vec![Mutation::Remove {
            user: target,
            action: MemberAction::Removed,
        }])
    }

    pub fn set_role(
        s: &ConversationState,
        actor: u64,
        target: u64,
        role: Role,
    ) -> Result<Vec<Mutation>, MessagingError> {
        let actor_role = role_of(s, actor)?;
        group(s)?;
        if actor_role != Role::Owner {
            return Err(MessagingError::Forbidden("only the owner changes roles"));
        }
        if role == Role::Owner {
            return Err(MessagingError::Invalid {
                field: "role",
                reason: "use the ownership transfer".into(),
            });
        }
        if actor == target {
            return Err(MessagingError::Invalid {
                field: "user",
                reason: "the owner's role changes by transfer".into(),
            });
        }
        s.member(target).ok_or(MessagingError::Invalid {
            field: "user",
            reason: "is not a member".into(),
        })?;
        Ok(vec![Mutation::SetRole { user: target, role }])
    }

    pub fn transfer(
        s: &ConversationState,
        actor: u64,
        target: u64,
    ) -> Result<Vec<Mutation>, MessagingError> {
        let actor_role = role_of(s, actor)?;
        group(s)?;
        if actor_role != Role::Owner {
            return Err(MessagingError::Forbidden(
                "only the owner transfers ownership",
            ));
        }
        if actor == target {
            return Err(MessagingError::Invalid {
                field: "user",
                reason: "is already the owner".into(),
            });
        }
        s.member(target).ok_or(MessagingError::Invalid {
            field: "user",
            reason: "is not a member".into(),
        })?;
        Ok(vec![
            Mutation::SetRole {
                user: target,
                role: Role::Owner,
            },
            Mutation::SetRole {
                user: actor,
                role: Role::Admin,
            },
        ])
    }

    pub fn update(
        s: &ConversationState,
        actor: u64,
        name: Option<String>,
        public: Option<bool>,
    ) -> Result<Vec<Mutation>, MessagingError> {
        let role = role_of(s, actor)?;
        group(s)?;
        let mut out = Vec::new();
        if let Some(n) = name {
            if role == Role::Member {
                return Err(MessagingError::Forbidden(
                    "only the owner and admins rename the group",
                ));
            }
            out.push(Mutation::Rename(n));
        }
        if let Some(p) = public {
            if role != Role::Owner {
                return Err(MessagingError::Forbidden(
                    "only the owner makes the group public or private",
                ));
            }
            out.push(Mutation::SetPublic(p));
        }
        if out.is_empty() {
            return Err(MessagingError::Invalid {
                field: "body",
                reason: "give a name or public".into(),
            });
        }
        Ok(out)
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use crate::time::Millis;
        use storage::{ConversationRecord, MemberRecord};

        fn state(public: bool, members: &[(u64, Role)]) -> ConversationState {
            ConversationState {
                conversation: ConversationRecord {
                    no: 1,
                    id: "x:localhost".into(),
                    kind: ConvKind::Group,
                    name: "g".into(),
                    public,
                    created: Millis(0),
                    last_seq: 0,
                    last_activity: Millis(0),
                },
                members: members
                    .iter()
                    .map(|&(user, role)| MemberRecord {
                        user,
                        role,
                        joined: Millis(0),
                    })
                    .collect(),
            }
        }

        const OWNER: u64 = 1;
        const ADMIN: u64 = 2;
        const MEMBER: u64 = 3;
        const OUTSIDER: u64 = 9;

        fn g(public: bool) -> ConversationState {
            state(
                public,
                &[
                    (OWNER, Role::Owner),
                    (ADMIN, Role::Admin),
                    (MEMBER, Role::Member),
                ],
            )
        }

        #[test]
        fn outsiders_get_not_found_from_every_rule_even_on_direct_conversations() {
            let mut direct = g(false);
            direct.conversation.kind = ConvKind::Direct;
            for s in [g(false), direct] {
                assert!(matches!(
                    remove(&s, OUTSIDER, MEMBER),
                    Err(MessagingError::NotFound)
                ));
                assert!(matches!(
                    set_role(&s, OUTSIDER, MEMBER, Role::Admin),
                    Err(MessagingError::NotFound)
                ));
                assert!(matches!(
                    transfer(&s, OUTSIDER, MEMBER),
                    Err(MessagingError::NotFound)
                ));
                assert!(matches!(
                    update(&s, OUTSIDER, Some("n".into()), None),
                    Err(MessagingError::NotFound)
                ));
                assert!(matches!(
                    invite(&s, OUTSIDER, MEMBER, 10),
                    Err(MessagingError::NotFound)
                ));
            }
        }

        #[test]
        fn who_may_invite() {
            assert!(invite(&g(false), OWNER, OUTSIDER, 10).is_ok());
            assert!(invite(&g(false), ADMIN, OUTSIDER, 10).is_ok());
            assert!(matches!(
                invite(&g(false), MEMBER, OUTSIDER, 10),
                Err(MessagingError::Forbidden(_))
            ));
            assert!(
                invite(&g(true), MEMBER, OUTSIDER, 10).is_ok(),
                "anyone in a public group"
            );
            assert!(matches!(
                invite(&g(true), OWNER, MEMBER, 10),
                Err(MessagingError::Conflict(_))
            ));
            assert!(
                matches!(
                    invite(&g(true), OWNER, OUTSIDER, 3),
                    Err(MessagingError::Conflict(_))
                ),
                "full"
            );
            assert!(matches!(
                invite(&g(false), OUTSIDER, 8, 10),
                Err(MessagingError::NotFound)
            ));
        }

        #[test]
        fn joining_oneself_only_public_groups() {
            assert_eq!(
                invite(&g(true), OUTSIDER, OUTSIDER, 10).unwrap(),
                vec![Mutation::Add {
                    user: OUTSIDER,
                    role: Role::Member,
                    action: MemberAction::Joined
                }]
            );
            assert!(matches!(
                invite(&g(false), OUTSIDER, OUTSIDER, 10),
                Err(MessagingError::NotFound)
            ));
        }

        #[test]
        fn who_may_remove_and_leave() {
            assert!(remove(&g(false), OWNER, ADMIN).is_ok());
            assert!(remove(&g(false), ADMIN, MEMBER).is_ok());
            assert!(matches!(
                remove(&g(false), ADMIN, OWNER),
                Err(MessagingError::Forbidden(_))
            ));
            assert!(matches!(
                remove(&g(false), MEMBER, ADMIN),
                Err(MessagingError::Forbidden(_))
            ));
            assert_eq!(
                remove(&g(false), MEMBER, MEMBER).unwrap(),
                vec![Mutation::Remove {
                    user: MEMBER,
                    action: MemberAction::Left
                }]
            );
            assert!(
                matches!(
                    remove(&g(false), OWNER, OWNER),
                    Err(MessagingError::Conflict(_))
                ),
                "transfer first"
            );
            assert!(
                remove(&state(false, &[(OWNER, Role::Owner)]), OWNER, OWNER).is_ok(),
                "last one out"
            );
            assert!(matches!(
                remove(&g(false), OUTSIDER, MEMBER),
                Err(MessagingError::NotFound)
            ));
        }

        #[test]
        fn roles_transfer_and_updates_are_the_owners() {
            assert!(set_role(&g(false), OWNER, MEMBER, Role::Admin).is_ok());
            assert!(matches!(
                set_role(&g(false), ADMIN, MEMBER, Role::Admin),
                Err(MessagingError::Forbidden(_))
            ));
            assert!(set_role(&g(false), OWNER, MEMBER, Role::Owner).is_err());
            assert_eq!(
                transfer(&g(false), OWNER, MEMBER).unwrap(),
                vec![
                    Mutation::SetRole {
                        user: MEMBER,
                        role: Role::Owner
                    },
                    Mutation::SetRole {
                        user: OWNER,
                        role: Role::Admin
                    }
                ]
            );
            assert!(matches!(
                transfer(&g(false), ADMIN, MEMBER),
                Err(MessagingError::Forbidden(_))
            ));
            assert!(update(&g(false), ADMIN, Some("n".into()), None).is_ok());
            assert!(matches!(
                update(&g(false), MEMBER, Some("n".into()), None),
                Err(MessagingError::Forbidden(_))
            ));
            assert!(matches!(
                update(&g(false), ADMIN, None, Some(true)),
                Err(MessagingError::Forbidden(_))
            ));
            assert!(update(&g(false), OWNER, None, Some(true)).is_ok());
        }
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

    #[test]
    fn txn_ids_are_checked() {
        assert!(validate_txn_id("abc-1.2_3").is_ok());
        assert!(validate_txn_id("").is_err());
        assert!(validate_txn_id("a b").is_err());
        assert!(validate_txn_id(&"a".repeat(65)).is_err());
    }
}
