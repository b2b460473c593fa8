//! The group rules, as pure functions of the conversation's state: each returns the changes to
//! make, or why not.

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
