//! Communities and their members: creating, finding and changing a community (the owner's
//! settings), joining and leaving, and the members list (with pending requests, invitations and,
//! for moderators, bans).

use std::ops::Bound;

use redb::WriteTransaction;

use super::moderation::{entry, log};
use super::visibility::facts_r;
use super::{
    CommunityEdit, CommunityFacts, CommunityRecord, CommunityRefusal, CommunityRole, Joined,
    MemberRow, ModAction,
};
use super::{count_under, each_row, get_community, role_of, under};
use crate::catalog::*;
use crate::community_calls::{CallOutcome, RemoteCall, record_call};
use crate::kv;
use crate::search::{SearchChange, note_change};
use crate::{Store, StoreError};
use primitives::time::Millis;

pub(super) fn add_member(
    tx: &impl kv::Write,
    c: u64,
    u: u64,
    role: CommunityRole,
    now: Millis,
) -> Result<(), StoreError> {
    COMMUNITYNO_USERID_MEMBER.insert(tx, &(c, u), &(role.code(), now.0))?;
    USERID_COMMUNITYNO.insert(tx, &(u, c), &role.code())?;
    COMMUNITYNO_USERID_PENDING.remove(tx, &(c, u))?;
    Ok(())
}

pub(super) fn remove_member(tx: &impl kv::Write, c: u64, u: u64) -> Result<bool, StoreError> {
    let had = COMMUNITYNO_USERID_MEMBER.remove(tx, &(c, u))?;
    USERID_COMMUNITYNO.remove(tx, &(u, c))?;
    Ok(had)
}

fn pending_name(kind: u64) -> &'static str {
    if kind == 1 { "invited" } else { "asked" }
}

fn community_facts_r(
    tx: &impl kv::Read,
    community: CommunityRecord,
    viewer: u64,
) -> Result<CommunityFacts, StoreError> {
    let f = facts_r(tx, &community, viewer)?;
    let pending = COMMUNITYNO_USERID_PENDING
        .get(tx, &(community.id, viewer))?
        .map(|v| pending_name(v.0));
    let members = count_under(tx, COMMUNITYNO_USERID_MEMBER, community.id)?;
    Ok(CommunityFacts {
        community,
        role: f.role,
        pending,
        banned: f.banned,
        members,
    })
}

/// Whether `viewer` can see that the community exists: public ones everyone, private ones their
/// members and those invited or asking.
fn knows(c: &CommunityFacts) -> bool {
    c.community.public || c.role.is_some() || c.pending.is_some()
}

impl Store {
    /// Creates community `id` (a random number: knowing it is being told of it) owned by
    /// `owner`; false if the number is taken.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_community(
        &self,
        id: u64,
        name: String,
        description: String,
        avatar: Option<String>,
        public: bool,
        owner: u64,
        now: Millis,
    ) -> Result<bool, StoreError> {
        self.write(move |tx| {
            if id == 0 || get_community(tx, id)?.is_some() {
                return Ok(false);
            }
            let rec = CommunityRecord {
                id,
                name: name.clone(),
                description: description.clone(),
                avatar: avatar.clone(),
                public,
                owner,
                created: now,
            };
            COMMUNITYNO_COMMUNITY.insert(tx, &id, &rec.encode())?;
            add_member(tx, id, owner, CommunityRole::Owner, now)?;
            if let Some(a) = &avatar {
                MEDIAID_COMMUNITYNO_POSTNO.insert(tx, &(a.clone(), id, 0), &())?;
            }
            note_change(tx, SearchChange::Community(id))?;
            Ok(true)
        })
        .await
    }

    /// A community as `viewer` sees it; None if it does not exist or `viewer` may not know of
    /// it (a private community they are not a member of, invited to or asking to join).
    pub async fn community_for(
        &self,
        c: u64,
        viewer: u64,
    ) -> Result<Option<CommunityFacts>, StoreError> {
        self.read(move |tx| {
            let Some(rec) = get_community(tx, c)? else {
                return Ok(None);
            };
            let f = community_facts_r(tx, rec, viewer)?;
            Ok(knows(&f).then_some(f))
        })
        .await
    }

    /// Public communities with a number above `after` whose name or description contains
    /// `q` (case-insensitive; every one without `q`), at most `limit`, in number order.
    pub async fn public_communities(
        &self,
        viewer: u64,
        q: Option<String>,
        after: u64,
        limit: usize,
    ) -> Result<Vec<CommunityFacts>, StoreError> {
        self.read(move |tx| {
            let q = q.map(|q| q.to_lowercase());
            let mut out = Vec::new();
            each_row(
                tx,
                COMMUNITYNO_COMMUNITY,
                Bound::Included(after.saturating_add(1)),
                Bound::Unbounded,
                kv::Order::Ascending,
                |id, v| {
                    let rec = CommunityRecord::decode(id, &v)?;
                    if !rec.public {
                        return Ok(true);
                    }
                    if let Some(q) = &q
                        && !rec.name.to_lowercase().contains(q.as_str())
                        && !rec.description.to_lowercase().contains(q.as_str())
                    {
                        return Ok(true);
                    }
                    out.push(community_facts_r(tx, rec, viewer)?);
                    Ok(out.len() < limit)
                },
            )?;
            Ok(out)
        })
        .await
    }

    /// The communities `user` is a member of, in number order.
    pub async fn communities_of(&self, user: u64) -> Result<Vec<CommunityFacts>, StoreError> {
        self.read(move |tx| {
            let mut out = Vec::new();
            for ((_, c), _) in USERID_COMMUNITYNO.prefixed_in_pages(tx, &user, super::PAGE)? {
                if let Some(rec) = get_community(tx, c)? {
                    out.push(community_facts_r(tx, rec, user)?);
                }
            }
            Ok(out)
        })
        .await
    }

    /// The owner changes the settings (logged).
    pub async fn update_community(
        &self,
        c: u64,
        actor: u64,
        edit: CommunityEdit,
        now: Millis,
    ) -> Result<Result<(), CommunityRefusal>, StoreError> {
        self.write(move |tx| {
            let Some(mut rec) = get_community(tx, c)? else {
                return Ok(Err(CommunityRefusal::NotFound));
            };
            match role_of(tx, c, actor)? {
                Some(CommunityRole::Owner) => {}
                Some(_) => {
                    return Ok(Err(CommunityRefusal::Forbidden(
                        "only the owner changes the community's settings",
                    )));
                }
                None => return Ok(Err(CommunityRefusal::NotFound)),
            }
            if let Some(n) = &edit.name {
                rec.name = n.clone();
            }
            if let Some(d) = &edit.description {
                rec.description = d.clone();
            }
            if let Some(p) = edit.public {
                rec.public = p;
            }
            if let Some(a) = &edit.avatar {
                if let Some(old) = &rec.avatar {
                    MEDIAID_COMMUNITYNO_POSTNO.remove(tx, &(old.clone(), c, 0))?;
                }
                if let Some(new) = a {
                    MEDIAID_COMMUNITYNO_POSTNO.insert(tx, &(new.clone(), c, 0), &())?;
                }
                rec.avatar = a.clone();
            }
            COMMUNITYNO_COMMUNITY.insert(tx, &c, &rec.encode())?;
            note_change(tx, SearchChange::Community(c))?;
            log(tx, c, entry(now, actor, ModAction::Update, 0))?;
            Ok(Ok(()))
        })
        .await
    }

    /// `user` joins: a public community at once, a private one when invited (otherwise the
    /// request waits for a moderator). A remote user's `call` is recorded with the outcome.
    pub async fn join_community(
        &self,
        c: u64,
        user: u64,
        now: Millis,
        call: Option<RemoteCall>,
    ) -> Result<Result<Joined, CommunityRefusal>, StoreError> {
        self.write(move |tx| {
            let joined = join_w(tx, c, user, now)?;
            record_call(tx, call.as_ref(), joined, |j| {
                CallOutcome::Joined(*j == Joined::Member)
            })
        })
        .await
    }

    /// `user` leaves (or withdraws their request). The owner cannot leave. A remote user's
    /// `call` is recorded with the outcome.
    pub async fn leave_community(
        &self,
        c: u64,
        user: u64,
        call: Option<RemoteCall>,
    ) -> Result<Result<(), CommunityRefusal>, StoreError> {
        self.write(move |tx| {
            let left = leave_w(tx, c, user)?;
            record_call(tx, call.as_ref(), left, |_| CallOutcome::Done)
        })
        .await
    }

    /// Members (with roles), then pending requests and invitations, then (for moderators)
    /// bans as role None with pending "banned". None if `viewer` is not a member.
    pub async fn community_members(
        &self,
        c: u64,
        viewer: u64,
    ) -> Result<Option<Vec<MemberRow>>, StoreError> {
        self.read(move |tx| {
            let Some(mine) = role_of(tx, c, viewer)? else {
                return Ok(None);
            };
            let mut out = Vec::new();
            let (start, end) = under(c);
            each_row(
                tx,
                COMMUNITYNO_USERID_MEMBER,
                start,
                end,
                kv::Order::Ascending,
                |(_, user), (role, joined)| {
                    out.push(MemberRow {
                        user,
                        role: Some(CommunityRole::from_code(role)?),
                        pending: None,
                        since: Millis(joined),
                    });
                    Ok(true)
                },
            )?;
            if mine.moderates() {
                let (start, end) = under(c);
                each_row(
                    tx,
                    COMMUNITYNO_USERID_PENDING,
                    start,
                    end,
                    kv::Order::Ascending,
                    |(_, user), (kind, at, _)| {
                        out.push(MemberRow {
                            user,
                            role: None,
                            pending: Some(pending_name(kind)),
                            since: Millis(at),
                        });
                        Ok(true)
                    },
                )?;
                let (start, end) = under(c);
                each_row(
                    tx,
                    COMMUNITYNO_USERID_BAN,
                    start,
                    end,
                    kv::Order::Ascending,
                    |(_, user), (at, _)| {
                        out.push(MemberRow {
                            user,
                            role: None,
                            pending: Some("banned"),
                            since: Millis(at),
                        });
                        Ok(true)
                    },
                )?;
            }
            Ok(Some(out))
        })
        .await
    }
}

/// `user` joins `c`: the write of [`Store::join_community`].
fn join_w(
    tx: &WriteTransaction,
    c: u64,
    user: u64,
    now: Millis,
) -> Result<Result<Joined, CommunityRefusal>, StoreError> {
    let Some(rec) = get_community(tx, c)? else {
        return Ok(Err(CommunityRefusal::NotFound));
    };
    if role_of(tx, c, user)?.is_some() {
        return Ok(Ok(Joined::Member));
    }
    let pending = COMMUNITYNO_USERID_PENDING.get(tx, &(c, user))?.map(|v| v.0);
    if COMMUNITYNO_USERID_BAN.get(tx, &(c, user))?.is_some() {
        return Ok(Err(CommunityRefusal::Banned));
    }
    if rec.public || pending == Some(1) {
        add_member(tx, c, user, CommunityRole::Member, now)?;
        Ok(Ok(Joined::Member))
    } else {
        COMMUNITYNO_USERID_PENDING.insert(tx, &(c, user), &(0, now.0, 0))?;
        Ok(Ok(Joined::Requested))
    }
}

/// `user` leaves `c`: the write of [`Store::leave_community`].
fn leave_w(
    tx: &WriteTransaction,
    c: u64,
    user: u64,
) -> Result<Result<(), CommunityRefusal>, StoreError> {
    if get_community(tx, c)?.is_none() {
        return Ok(Err(CommunityRefusal::NotFound));
    }
    match role_of(tx, c, user)? {
        Some(CommunityRole::Owner) => Ok(Err(CommunityRefusal::Conflict(
            "the owner cannot leave the community",
        ))),
        Some(_) => {
            remove_member(tx, c, user)?;
            Ok(Ok(()))
        }
        None => {
            let had = COMMUNITYNO_USERID_PENDING.remove(tx, &(c, user))?;
            Ok(if had {
                Ok(())
            } else {
                Err(CommunityRefusal::NotFound)
            })
        }
    }
}
