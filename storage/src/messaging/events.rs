//! Events as stored: what a membership event did, every kind of event (in a conversation or
//! for one user) and its encoding, notices and their kinds, and adding a notice for one user.

use super::{Role, next_pos};
use crate::catalog::*;
use crate::codec::{Dec, Enc};
use crate::{Store, StoreError};

/// What a membership event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberAction {
    Joined,
    Invited,
    Left,
    Removed,
    RoleChanged,
}

impl MemberAction {
    const ALL: [MemberAction; 5] = [
        MemberAction::Joined,
        MemberAction::Invited,
        MemberAction::Left,
        MemberAction::Removed,
        MemberAction::RoleChanged,
    ];
    fn code(self) -> u64 {
        MemberAction::ALL
            .iter()
            .position(|a| *a == self)
            .unwrap_or(0) as u64
    }
}

/// One event in a conversation (or for one user).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventRecord {
    Message {
        seq: u64,
    },
    Recall {
        seq: u64,
    },
    Member {
        action: MemberAction,
        user: u64,
        actor: u64,
        role: Role,
    },
    Renamed {
        name: String,
        actor: u64,
    },
    Visibility {
        public: bool,
        actor: u64,
    },
    /// A notice from the node to one user.
    Notice {
        kind: NoticeKind,
        content: NoticeContent,
    },
    /// A friends step (`storage/friends.rs`) for one user: `id` is the request's (or the
    /// friendship's) id, `user` the other person.
    Friend {
        action: crate::FriendAction,
        id: u64,
        user: u64,
    },
    /// A new post (`comment` 0) or comment in a community, for a member who may see it
    /// (numbers only: the client fetches what it may read).
    Community {
        community: u64,
        post: u64,
        comment: u64,
    },
    /// A new post (`comment` 0) or comment in a community of another node the member belongs
    /// to, `address` being `<id>@<host>` (its host told this node: `community-event`).
    RemoteCommunity {
        address: String,
        post: u64,
        comment: u64,
    },
    /// A join request's step (`storage/invites.rs`) for its owner or requester: `id` is the
    /// request's number (the owner's), `user` the other person.
    Join {
        action: crate::JoinAction,
        id: u64,
        conversation: String,
        user: u64,
    },
}

/// What a notice says: an operator's own words, or a code with parameters that the reader's
/// language puts into words when the notice is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoticeContent {
    /// Free text: what an operator wrote (`incident notify`), or a notice the node wrote
    /// before its notices had codes.
    Text { title: String, text: String },
    /// Written by the node: a stable code and its named parameters, in order.
    Coded {
        code: String,
        params: Vec<(String, String)>,
    },
}

/// What a notice is about, so a client can show each kind its own way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    /// A sign-in on another device.
    Security,
    /// A request to the admin was answered.
    Request,
    /// A new privacy policy version was published.
    Policy,
    /// A security incident that affects the user.
    Incident,
}

impl NoticeKind {
    const ALL: [NoticeKind; 4] = [
        NoticeKind::Security,
        NoticeKind::Request,
        NoticeKind::Policy,
        NoticeKind::Incident,
    ];
    pub const fn name(self) -> &'static str {
        match self {
            NoticeKind::Security => "security",
            NoticeKind::Request => "request",
            NoticeKind::Policy => "policy",
            NoticeKind::Incident => "incident",
        }
    }
    fn code(self) -> u64 {
        self as u64
    }
    fn from_code(c: u64) -> Result<Self, StoreError> {
        NoticeKind::ALL
            .get(c as usize)
            .copied()
            .ok_or(StoreError::Corrupt("event"))
    }
}

impl EventRecord {
    pub fn encode(&self) -> Vec<u8> {
        let e = Enc::new(1);
        match self {
            EventRecord::Message { seq } => e.u64(0).u64(*seq),
            EventRecord::Recall { seq } => e.u64(1).u64(*seq),
            EventRecord::Member {
                action,
                user,
                actor,
                role,
            } => e
                .u64(2)
                .u64(action.code())
                .u64(*user)
                .u64(*actor)
                .u64(role.code()),
            EventRecord::Renamed { name, actor } => e.u64(3).str(name).u64(*actor),
            EventRecord::Visibility { public, actor } => e.u64(4).bool(*public).u64(*actor),
            EventRecord::Notice {
                kind,
                content: NoticeContent::Text { title, text },
            } => e.u64(6).u64(kind.code()).str(title).str(text),
            EventRecord::Notice {
                kind,
                content: NoticeContent::Coded { code, params },
            } => params.iter().fold(
                e.u64(9).u64(kind.code()).str(code).u64(params.len() as u64),
                |e, (name, value)| e.str(name).str(value),
            ),
            EventRecord::Friend { action, id, user } => {
                e.u64(7).u64(action.code()).u64(*id).u64(*user)
            }
            EventRecord::Community {
                community,
                post,
                comment,
            } => e.u64(8).u64(*community).u64(*post).u64(*comment),
            EventRecord::RemoteCommunity {
                address,
                post,
                comment,
            } => e.u64(11).str(address).u64(*post).u64(*comment),
            EventRecord::Join {
                action,
                id,
                conversation,
                user,
            } => e
                .u64(10)
                .u64(action.code())
                .u64(*id)
                .str(conversation)
                .u64(*user),
        }
        .finish()
    }
    pub fn decode(b: &[u8]) -> Result<Self, StoreError> {
        let mut d = Dec::new(b, "event", 1)?;
        let r = match d.u64()? {
            0 => EventRecord::Message { seq: d.u64()? },
            1 => EventRecord::Recall { seq: d.u64()? },
            2 => EventRecord::Member {
                action: *MemberAction::ALL
                    .get(d.u64()? as usize)
                    .ok_or(StoreError::Corrupt("event"))?,
                user: d.u64()?,
                actor: d.u64()?,
                role: Role::from_code(d.u64()?)?,
            },
            3 => EventRecord::Renamed {
                name: d.string()?,
                actor: d.u64()?,
            },
            4 => EventRecord::Visibility {
                public: d.bool()?,
                actor: d.u64()?,
            },
            // Notices written before they had a kind and a title.
            5 => EventRecord::Notice {
                kind: NoticeKind::Security,
                content: NoticeContent::Text {
                    title: String::new(),
                    text: d.string()?,
                },
            },
            6 => EventRecord::Notice {
                kind: NoticeKind::from_code(d.u64()?)?,
                content: NoticeContent::Text {
                    title: d.string()?,
                    text: d.string()?,
                },
            },
            9 => {
                let kind = NoticeKind::from_code(d.u64()?)?;
                let code = d.string()?;
                let n = d.u64()?;
                // Each parameter takes at least two bytes: a count beyond that is corrupt.
                if n > b.len() as u64 {
                    return Err(StoreError::Corrupt("event"));
                }
                let mut params = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    params.push((d.string()?, d.string()?));
                }
                EventRecord::Notice {
                    kind,
                    content: NoticeContent::Coded { code, params },
                }
            }
            7 => EventRecord::Friend {
                action: *crate::FriendAction::ALL
                    .get(d.u64()? as usize)
                    .ok_or(StoreError::Corrupt("event"))?,
                id: d.u64()?,
                user: d.u64()?,
            },
            8 => EventRecord::Community {
                community: d.u64()?,
                post: d.u64()?,
                comment: d.u64()?,
            },
            11 => EventRecord::RemoteCommunity {
                address: d.string()?,
                post: d.u64()?,
                comment: d.u64()?,
            },
            10 => EventRecord::Join {
                action: *crate::JoinAction::ALL
                    .get(d.u64()? as usize)
                    .ok_or(StoreError::Corrupt("event"))?,
                id: d.u64()?,
                conversation: d.string()?,
                user: d.u64()?,
            },
            _ => return Err(StoreError::Corrupt("event")),
        };
        d.end()?;
        Ok(r)
    }
}

impl Store {
    /// Adds a notice (an [`EventRecord::Notice`]) for one user and returns its pos.
    pub async fn notify_user(&self, user: u64, notice: EventRecord) -> Result<u64, StoreError> {
        self.write(move |tx| {
            let pos = next_pos(tx)?;
            tx.open_table(USERID_POS_EVENT)?
                .insert((user, pos), notice.encode().as_slice())?;
            Ok(pos)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_coded_notice_keeps_its_code_and_parameters_in_order_and_free_text_stays_text() {
        for content in [
            NoticeContent::Coded {
                code: "sign_in.new_device".into(),
                params: vec![
                    ("at".into(), "2026-12-03T10:00:00Z".into()),
                    ("b".into(), String::new()),
                ],
            },
            NoticeContent::Coded {
                code: "x".into(),
                params: vec![],
            },
            NoticeContent::Text {
                title: "Maintenance".into(),
                text: "Tonight.".into(),
            },
        ] {
            let e = EventRecord::Notice {
                kind: NoticeKind::Request,
                content,
            };
            assert_eq!(EventRecord::decode(&e.encode()).unwrap(), e);
        }
    }

    #[test]
    fn notices_stored_before_codes_still_read_as_their_text() {
        // Tag 6, as written before coded notices: kind, title, text.
        let old = Enc::new(1)
            .u64(6)
            .u64(NoticeKind::Policy.code())
            .str("Privacy policy v2")
            .str("Read it.")
            .finish();
        assert_eq!(
            EventRecord::decode(&old).unwrap(),
            EventRecord::Notice {
                kind: NoticeKind::Policy,
                content: NoticeContent::Text {
                    title: "Privacy policy v2".into(),
                    text: "Read it.".into(),
                },
            }
        );
    }

    #[test]
    fn a_remote_community_event_keeps_its_address_and_numbers() {
        let e = EventRecord::RemoteCommunity {
            address: "00000000000000ab@b.test".into(),
            post: 7,
            comment: 0,
        };
        assert_eq!(EventRecord::decode(&e.encode()).unwrap(), e);
    }

    #[test]
    fn a_coded_notice_claiming_more_parameters_than_bytes_is_corrupt() {
        let bad = Enc::new(1).u64(9).u64(0).str("c").u64(u64::MAX).finish();
        assert!(matches!(
            EventRecord::decode(&bad),
            Err(StoreError::Corrupt("event"))
        ));
    }
}
