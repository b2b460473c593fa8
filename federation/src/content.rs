//! What envelopes carry: one content type per envelope kind (and, where a kind is used both
//! towards a conversation's host and from it, a `type` tag that says which). Addresses are
//! `handle@domain`; the node checks that a user named as sender or actor belongs to the
//! envelope's origin. Nothing here carries a phone number, friend list or profile field other
//! than nickname and avatar.

use serde::{Deserialize, Serialize};

use crate::envelope::Envelope;

/// A message body as it crosses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum WireBody {
    Text {
        text: String,
    },
    /// A photo, voice message, video or file: `kind` is `image`, `voice`, `video` or `file`;
    /// `name` only for files; the bytes travel separately (see [`MediaRef`]).
    Media {
        kind: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        media: MediaRef,
    },
}

/// Where a message's media is and what it must be: fetched by each receiving node from
/// `origin` (`GET /_federation/v1/media/{id}/{part}`, a signed request) and checked against
/// `size` and `sha256` before it is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaRef {
    /// The node that holds the bytes: the author's.
    pub origin: String,
    /// The origin's id of the media: 1 to 64 of `A-Z a-z 0-9 _ -`.
    pub id: String,
    /// Bytes in all (at least 1).
    pub size: u64,
    /// The type the origin sniffed from the bytes.
    pub content_type: String,
    /// SHA-256 of the bytes, unpadded standard base64 (43 characters).
    pub sha256: String,
}

/// Bytes per part of a media fetch: part `n` is bytes `n·MEDIA_PART` up to the next part or
/// the end.
pub const MEDIA_PART: u64 = 256 * 1024;

/// Checks a media id: 1 to 64 of `A-Z a-z 0-9 _ -`.
pub fn valid_media_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
}

/// Kind `message`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum MessageContent {
    /// A member's node hands a message to the conversation's host (destination: the host).
    Submit {
        conversation: String,
        /// 32 lower-case hex digits, chosen by the sender's node.
        message_id: String,
        sender: String,
        ts: u64,
        body: WireBody,
        /// Whether the sender allows the host to relay this message to nodes of a region other
        /// than the sender's node's (their `cross_border_transfer` consent). Absent (a node
        /// before this field) means `false`; sent only when `true`.
        #[serde(default, skip_serializing_if = "is_false")]
        cross_border: bool,
    },
    /// The host relays a message it sequenced; `submission` is the `submit` envelope exactly
    /// as its origin signed it.
    Hosted {
        conversation: String,
        seq: u64,
        submission: Box<Envelope>,
        /// Only in the copy to the submission's origin: the peers the host did not relay this
        /// message to (the sender's consent or a peer's media limit did not allow it), sorted.
        /// Sent only when not empty.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        withheld: Vec<String>,
    },
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Kind `recall`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum RecallContent {
    /// The author's node asks the host to recall a message.
    Request {
        conversation: String,
        seq: u64,
        sender: String,
    },
    /// The host recalled it.
    Hosted { conversation: String, seq: u64 },
}

/// A member as the host lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireMember {
    pub user: String,
    /// `owner`, `admin` or `member`.
    pub role: String,
}

/// Kind `membership`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum MembershipContent {
    /// The host's state of a conversation after a change made by `actor`. Members whose
    /// data may not go to the destination (residency) are left out.
    State {
        conversation: String,
        /// `direct` or `group`.
        kind: String,
        name: String,
        public: bool,
        actor: String,
        members: Vec<WireMember>,
    },
    /// A member's node asks the host for a change, decided by the host's group rules.
    Request {
        conversation: String,
        actor: String,
        change: WireChange,
    },
}

/// A change a member asks of the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum WireChange {
    Invite {
        user: String,
    },
    /// Removing oneself is leaving.
    Remove {
        user: String,
    },
    SetRole {
        user: String,
        role: String,
    },
    Transfer {
        user: String,
    },
    Update {
        name: Option<String>,
        public: Option<bool>,
    },
}

/// Kind `profile`: nickname and avatar only. An avatar that is an uploaded image travels as
/// `avatar_media` (`avatar` then null), its bytes fetched by the receiving node like a
/// message's media; `avatar` is a free-form reference stored before avatars were images. In the
/// answer to a lookup on behalf of a viewer (`GET /_federation/v1/users/{handle}/as/{viewer}`)
/// also the optional fields that viewer may see (name → value), and never in a push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileContent {
    pub user: String,
    pub nickname: String,
    pub avatar: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar_media: Option<MediaRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<std::collections::BTreeMap<String, String>>,
}

/// Kind `erasure`: erase everything `user` wrote that you hold, then acknowledge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErasureContent {
    pub user: String,
    /// Opaque; echoed in the acknowledgement.
    pub reference: String,
}

/// Kind `erasure-ack`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErasureAckContent {
    pub user: String,
    pub reference: String,
    /// The id of the erasure envelope acknowledged.
    pub erasure: String,
}

/// Kind `friend`: one step between a user of the origin and a user of the destination. The
/// user who acts must belong to the origin (the sender of a request or cancel, the recipient
/// of an answer, the one who removes). A request or friendship is named by its two users (at
/// most one request is pending per pair), never by an id. No friend list ever crosses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum FriendContent {
    /// `from` asks `to` to be friends, with an optional short note.
    Request {
        from: String,
        to: String,
        note: Option<String>,
    },
    /// `to` accepts (`true`) or declines the pending request `from` sent them.
    Answer {
        from: String,
        to: String,
        accept: bool,
    },
    /// `from` withdraws their pending request to `to`.
    Cancel { from: String, to: String },
    /// `user` ends their friendship with `friend`.
    Remove { user: String, friend: String },
}

/// One file of a new post by a member of another node (`community` call `post`): its kind
/// (`image`, `voice`, `video`, `file`), a file's shown name, and where its bytes are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPostMedia {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub media: MediaRef,
}

/// Kind `community` (issue 23): a user of the origin acts in, or reads, a community hosted by
/// the destination. Sent as the body of `POST /_federation/v1/communities` (a signed request),
/// never queued: the host applies it by its own rules for that user and answers at once.
/// `community` is the host's id of it (16 lower-case hex digits); `user` must belong to the
/// origin. Posts cross with their text and media (read part by part through the host with
/// `post-media`), never with a place; a remote member's own post brings its media as
/// references the host fetches from the member's node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum CommunityContent {
    /// The community as `user` may see it.
    Get { user: String, community: String },
    /// Join (public) or ask to join (private).
    Join { user: String, community: String },
    /// Leave, or withdraw a request.
    Leave { user: String, community: String },
    /// A page of posts, newest first, numbered below `before`.
    Feed {
        user: String,
        community: String,
        before: Option<u64>,
        limit: u64,
    },
    /// A new post; `visibility` is `members` (when null), `friends` or `public`. `media`
    /// (left out when empty) names files the user's node holds and lets the host fetch
    /// (`GET /_federation/v1/media/{id}/{part}`), as for a message's media.
    Post {
        user: String,
        community: String,
        text: String,
        visibility: Option<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        media: Vec<NewPostMedia>,
    },
    /// A page of `user`'s favourites in the community (kept on the host), newest post first,
    /// numbered below `before`.
    Favourites {
        user: String,
        community: String,
        before: Option<u64>,
        limit: u64,
    },
    /// A page of a post's comments, oldest first, numbered above `after`.
    Comments {
        user: String,
        community: String,
        post: u64,
        after: Option<u64>,
        limit: u64,
    },
    /// A new comment, replying to top-level comment `parent` or to the post.
    Comment {
        user: String,
        community: String,
        post: u64,
        text: String,
        parent: Option<u64>,
    },
    /// Marks (`on`) or unmarks a post as one of `user`'s favourites, kept on the host.
    Favourite {
        user: String,
        community: String,
        post: u64,
        on: bool,
    },
    /// The author changes their post's text and, when given, its visibility.
    EditPost {
        user: String,
        community: String,
        post: u64,
        text: String,
        visibility: Option<String>,
    },
    /// The author deletes their post, or a moderator removes it.
    DeletePost {
        user: String,
        community: String,
        post: u64,
    },
    /// The author changes their comment's text.
    EditComment {
        user: String,
        community: String,
        post: u64,
        comment: u64,
        text: String,
    },
    /// The author deletes their comment, or a moderator removes it.
    DeleteComment {
        user: String,
        community: String,
        post: u64,
        comment: u64,
    },
    /// The members, and for a moderator also the requests, invitations and bans.
    Members { user: String, community: String },
    /// A page of the moderation log, newest first, numbered below `before` (moderators only).
    Log {
        user: String,
        community: String,
        before: Option<u64>,
        limit: u64,
    },
    /// A moderator's action on the member at `address`: `admit`, `reject`, `remove`, `ban`,
    /// `unban`, `moderator` or `member`.
    Moderate {
        user: String,
        community: String,
        address: String,
        action: String,
    },
    /// Part `part` (of [`crate::MEDIA_PART`] bytes, from 0) of media `media` shown in post
    /// `post`, for a user who may see the post.
    PostMedia {
        user: String,
        community: String,
        post: u64,
        media: String,
        part: u32,
    },
}

impl CommunityContent {
    /// The acting user's address.
    pub fn user(&self) -> &str {
        match self {
            CommunityContent::Get { user, .. }
            | CommunityContent::Join { user, .. }
            | CommunityContent::Leave { user, .. }
            | CommunityContent::Feed { user, .. }
            | CommunityContent::Favourites { user, .. }
            | CommunityContent::Post { user, .. }
            | CommunityContent::Comments { user, .. }
            | CommunityContent::Comment { user, .. }
            | CommunityContent::Favourite { user, .. }
            | CommunityContent::EditPost { user, .. }
            | CommunityContent::DeletePost { user, .. }
            | CommunityContent::EditComment { user, .. }
            | CommunityContent::DeleteComment { user, .. }
            | CommunityContent::PostMedia { user, .. }
            | CommunityContent::Members { user, .. }
            | CommunityContent::Log { user, .. }
            | CommunityContent::Moderate { user, .. } => user,
        }
    }

    /// The host's id of the community.
    pub fn community(&self) -> &str {
        match self {
            CommunityContent::Get { community, .. }
            | CommunityContent::Join { community, .. }
            | CommunityContent::Leave { community, .. }
            | CommunityContent::Feed { community, .. }
            | CommunityContent::Favourites { community, .. }
            | CommunityContent::Post { community, .. }
            | CommunityContent::Comments { community, .. }
            | CommunityContent::Comment { community, .. }
            | CommunityContent::Favourite { community, .. }
            | CommunityContent::EditPost { community, .. }
            | CommunityContent::DeletePost { community, .. }
            | CommunityContent::EditComment { community, .. }
            | CommunityContent::DeleteComment { community, .. }
            | CommunityContent::PostMedia { community, .. }
            | CommunityContent::Members { community, .. }
            | CommunityContent::Log { community, .. }
            | CommunityContent::Moderate { community, .. } => community,
        }
    }
}

/// Most members one `community-event` envelope names.
pub const MAX_EVENT_MEMBERS: usize = 256;

/// The content of a `community-event` envelope: a new post (`comment` null) or comment in
/// community `community` (the origin's 16-hex-digit id), for `members` — users of the
/// destination who belong to it and may see the post (at most [`MAX_EVENT_MEMBERS`]).
/// Numbers only: each member's client reads the post through the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommunityEventContent {
    pub community: String,
    pub post: u64,
    pub comment: Option<u64>,
    pub members: Vec<String>,
}

/// The body of `PUT /_federation/v1/transactions/{txn_id}`. Envelopes stay JSON values here,
/// so that one malformed envelope is answered on its own instead of failing the batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transaction {
    pub origin: String,
    pub envelopes: Vec<serde_json::Value>,
}

/// Most envelopes in one transaction.
pub const MAX_TXN_ENVELOPES: usize = 100;
/// Largest transaction body, in bytes.
pub const MAX_TXN_BYTES: usize = 1 << 20;

/// Checks a transaction id: 1 to 64 of `A-Z a-z 0-9 . _ -`.
pub fn valid_txn_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Checks an address `handle@domain`: the handle is 1 to 64 of `a-z 0-9 . _ -` (so it can be
/// put in a request path as it is), the domain a node domain.
pub fn valid_address(address: &str) -> bool {
    address.split_once('@').is_some_and(|(h, d)| {
        (1..=64).contains(&h.len())
            && h.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
            && crate::envelope::valid_domain(d)
    })
}

/// The domain of an address `handle@domain`.
pub fn address_domain(address: &str) -> Option<&str> {
    address.rsplit_once('@').map(|(_, d)| d)
}

/// The host domain of a conversation id `<random>:<domain>`.
pub fn conversation_host(id: &str) -> Option<&str> {
    id.split_once(':').map(|(_, d)| d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn contents_have_their_documented_shape() {
        let m: MessageContent = serde_json::from_value(json!({
            "type": "submit", "conversation": "c1:a.example", "message_id": "00",
            "sender": "alice@a.example", "ts": 1, "body": {"type": "text", "text": "hi"}
        }))
        .unwrap();
        assert!(matches!(m, MessageContent::Submit { .. }));
        let c: MembershipContent = serde_json::from_value(json!({
            "type": "request", "conversation": "c1:a.example", "actor": "bob@b.example",
            "change": {"op": "remove", "user": "bob@b.example"}
        }))
        .unwrap();
        assert!(matches!(
            c,
            MembershipContent::Request {
                change: WireChange::Remove { .. },
                ..
            }
        ));
        let f: FriendContent = serde_json::from_value(json!({
            "type": "answer", "from": "alice@a.example", "to": "bob@b.example", "accept": true
        }))
        .unwrap();
        assert!(matches!(f, FriendContent::Answer { accept: true, .. }));
        assert!(
            serde_json::from_value::<FriendContent>(json!({
                "type": "request", "from": "a@a.example", "to": "b@b.example", "note": null,
                "friends": ["c@a.example"]
            }))
            .is_err(),
            "no friend list may ride along"
        );
        assert!(
            serde_json::from_value::<ProfileContent>(json!({
                "user": "a@b.example", "nickname": "n", "avatar": null, "phone": "+8613800000000"
            }))
            .is_err(),
            "no other field may ride along"
        );
    }

    #[test]
    fn ids_and_addresses() {
        assert!(valid_txn_id("17-42"));
        assert!(!valid_txn_id(""));
        assert!(!valid_txn_id("a/b"));
        assert!(!valid_txn_id(&"x".repeat(65)));
        assert_eq!(address_domain("a@b.example"), Some("b.example"));
        assert!(valid_address("li.wei_2-x@b.example:8443"));
        for bad in [
            "@b.example",
            "a@",
            "a/../keys@b.example",
            "A@b.example",
            "a@b@b.example",
        ] {
            assert!(!valid_address(bad), "{bad}");
        }
        assert_eq!(
            conversation_host("xyz:b.example:8443"),
            Some("b.example:8443")
        );
    }
}
