//! Moderation: a moderator's actions on members ([`Store::moderate`]), each community's
//! moderation log (writing an entry, reading it), and the rule of who may remove a post or a
//! comment (its author, or a moderator, logged).

use std::ops::Bound;

use super::communities::{add_member, remove_member};
use super::{CommunityRefusal, CommunityRole, ModAction, ModLogRecord, Moderation};
use super::{get_community, role_of};
use crate::catalog::*;
use crate::community_calls::{CallOutcome, RemoteCall, record_call};
use crate::kv;
use crate::{Store, StoreError};
use primitives::time::Millis;
use redb::WriteTransaction;

pub(super) fn log(tx: &impl kv::Write, c: u64, mut entry: ModLogRecord) -> Result<(), StoreError> {
    let last = COMMUNITYNO_SEQ_MODLOG.prefixed(tx, &c, kv::Order::Descending, 1)?;
    let seq = match last.first() {
        Some(((_, seq), _)) => seq + 1,
        None => 1,
    };
    entry.seq = seq;
    COMMUNITYNO_SEQ_MODLOG.insert(tx, &(c, seq), &entry.encode())?;
    Ok(())
}

/// Logs `removal` in community `c`'s log when a moderator removed what someone else wrote
/// (an author removing their own is not logged). The caller has checked, in the same
/// transaction, that the actor may ([`may_remove`]).
pub(super) fn log_removal(
    tx: &impl kv::Write,
    c: u64,
    removal: ModLogRecord,
) -> Result<(), StoreError> {
    if removal.actor != removal.target {
        log(tx, c, removal)?;
    }
    Ok(())
}

/// Whether `actor` may remove what `author` wrote in community `c`: their own, or as a
/// moderator (`forbidden` says why not to a member; a non-member learns nothing).
pub(super) fn may_remove(
    tx: &impl kv::Read,
    c: u64,
    actor: u64,
    author: u64,
    forbidden: &'static str,
) -> Result<Result<(), CommunityRefusal>, StoreError> {
    if actor == author {
        return Ok(Ok(()));
    }
    match role_of(tx, c, actor)? {
        Some(r) if r.moderates() => Ok(Ok(())),
        Some(_) => Ok(Err(CommunityRefusal::Forbidden(forbidden))),
        None => Ok(Err(CommunityRefusal::NotFound)),
    }
}

pub(super) fn entry(at: Millis, actor: u64, action: ModAction, target: u64) -> ModLogRecord {
    ModLogRecord {
        seq: 0,
        at,
        actor,
        action,
        target,
        post: 0,
        comment: 0,
        role: None,
    }
}

impl Store {
    /// A moderator's action on a member, logged in the community's log.
    pub async fn moderate(
        &self,
        c: u64,
        actor: u64,
        action: Moderation,
        now: Millis,
        call: Option<RemoteCall>,
    ) -> Result<Result<(), CommunityRefusal>, StoreError> {
        self.write(move |tx| {
            let applied = moderate_in(tx, c, actor, action, now)?;
            record_call(tx, call.as_ref(), applied, |_| CallOutcome::Done)
        })
        .await
    }

    /// The moderation log, newest first, below `before`; None unless `viewer` moderates.
    pub async fn moderation_log(
        &self,
        c: u64,
        viewer: u64,
        before: u64,
        limit: usize,
    ) -> Result<Option<Vec<ModLogRecord>>, StoreError> {
        self.read(move |tx| {
            match role_of(tx, c, viewer)? {
                Some(r) if r.moderates() => {}
                _ => return Ok(None),
            }
            COMMUNITYNO_SEQ_MODLOG
                .range(
                    tx,
                    Bound::Included(&(c, 0)),
                    Bound::Excluded(&(c, before)),
                    kv::Order::Descending,
                    limit,
                )?
                .into_iter()
                .map(|((_, seq), v)| ModLogRecord::decode(seq, &v))
                .collect::<Result<_, _>>()
                .map(Some)
        })
        .await
    }
}

/// Applies `action` by `actor` in community `c`: the moderators' rules, and the log entry.
fn moderate_in(
    tx: &WriteTransaction,
    c: u64,
    actor: u64,
    action: Moderation,
    now: Millis,
) -> Result<Result<(), CommunityRefusal>, StoreError> {
    let Some(_rec) = get_community(tx, c)? else {
        return Ok(Err(CommunityRefusal::NotFound));
    };
    let Some(mine) = role_of(tx, c, actor)? else {
        return Ok(Err(CommunityRefusal::NotFound));
    };
    if !mine.moderates() {
        return Ok(Err(CommunityRefusal::Forbidden(
            "only the community's moderators do this",
        )));
    }
    let target = match action {
        Moderation::Admit(u)
        | Moderation::Reject(u)
        | Moderation::RemoveMember(u)
        | Moderation::Ban(u)
        | Moderation::Unban(u)
        | Moderation::SetRole(u, _) => u,
    };
    let theirs = role_of(tx, c, target)?;
    // Nobody acts on someone of their own rank or above (the owner on themselves).
    if let Some(r) = theirs
        && r >= mine
        && !matches!(action, Moderation::Admit(_))
    {
        return Ok(Err(CommunityRefusal::Forbidden(
            "moderators act on members; only the owner acts on moderators",
        )));
    }
    let mut e = entry(now, actor, ModAction::Update, target);
    match action {
        Moderation::Admit(u) => {
            if theirs.is_some() {
                return Ok(Ok(()));
            }
            if COMMUNITYNO_USERID_BAN.get(tx, &(c, u))?.is_some() {
                return Ok(Err(CommunityRefusal::Conflict(
                    "the user is banned; unban them first",
                )));
            }
            let asked = COMMUNITYNO_USERID_PENDING.get(tx, &(c, u))?.map(|v| v.0);
            match asked {
                Some(0) => {
                    add_member(tx, c, u, CommunityRole::Member, now)?;
                    e.action = ModAction::Approve;
                }
                Some(_) => return Ok(Ok(())),
                None => {
                    COMMUNITYNO_USERID_PENDING.insert(tx, &(c, u), &(1, now.0, actor))?;
                    e.action = ModAction::Invite;
                }
            }
        }
        Moderation::Reject(u) => {
            if !COMMUNITYNO_USERID_PENDING.remove(tx, &(c, u))? {
                return Ok(Err(CommunityRefusal::NotFound));
            }
            e.action = ModAction::Reject;
        }
        Moderation::RemoveMember(u) => {
            if !remove_member(tx, c, u)? {
                return Ok(Err(CommunityRefusal::NotFound));
            }
            e.action = ModAction::RemoveMember;
        }
        Moderation::Ban(u) => {
            if u == actor {
                return Ok(Err(CommunityRefusal::Conflict("you cannot ban yourself")));
            }
            remove_member(tx, c, u)?;
            COMMUNITYNO_USERID_PENDING.remove(tx, &(c, u))?;
            COMMUNITYNO_USERID_BAN.insert(tx, &(c, u), &(now.0, actor))?;
            e.action = ModAction::Ban;
        }
        Moderation::Unban(u) => {
            if !COMMUNITYNO_USERID_BAN.remove(tx, &(c, u))? {
                return Ok(Err(CommunityRefusal::NotFound));
            }
            e.action = ModAction::Unban;
        }
        Moderation::SetRole(u, role) => {
            if mine != CommunityRole::Owner {
                return Ok(Err(CommunityRefusal::Forbidden(
                    "only the owner appoints moderators",
                )));
            }
            if theirs.is_none() {
                return Ok(Err(CommunityRefusal::NotFound));
            }
            if role == CommunityRole::Owner {
                return Ok(Err(CommunityRefusal::Conflict("a community has one owner")));
            }
            add_member(tx, c, u, role, now)?;
            e.action = ModAction::SetRole;
            e.role = Some(role);
        }
    }
    log(tx, c, e)?;
    Ok(Ok(()))
}
