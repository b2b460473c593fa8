//! Conversations and membership: opening direct and group conversations, listing and reading
//! them as a member sees them, and the membership changes (invite, remove, roles, transfer,
//! name and visibility) that [`super::rules`] decides and the store applies with their events.

use std::collections::HashMap;

use super::{ConversationView, Messaging, MessagingError, rules};
use federation::WireChange;
use storage::{ConvKind, ConversationRecord, ConversationState, Mutation, NewConversation, Role};

impl Messaging {
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
}

/// Checks a group name: 1–64 characters.
fn group_name(s: &str) -> Result<String, MessagingError> {
    crate::shown::text("name", s, 1, 64).map_err(|e| MessagingError::Invalid {
        field: "name",
        reason: e.reason,
    })
}
