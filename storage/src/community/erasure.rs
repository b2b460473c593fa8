//! A user's erasure from communities ([`erase_step`], bounded and resumable) and the revocation
//! of `precise_location` ([`drop_places`]).

use std::ops::Bound;

use redb::WriteTransaction;

use super::comments::remove_comment_within;
use super::communities::{add_member, remove_member};
use super::posts::remove_post_within;
use super::{CommunityRole, ModLogRecord};
use super::{any_under, each_row, get_comment, get_community, get_post, under};
use crate::StoreError;
use crate::catalog::*;
use crate::kv;
use crate::search::{SearchChange, note_change};
use primitives::time::Millis;

/// One bounded, resumable step of erasing `user` from communities. `batch` bounds the rows a
/// step removes or rewrites (and the moderation-log entries it reads); `cursor` is where the
/// last part — the scan of every community for the user's requests, bans and the log entries
/// naming them — goes on from, kept in the erasure record between steps ((0, 0) to begin).
/// In order: their posts (each with its comments and favourites), their comments elsewhere (a
/// top-level one with its replies), their favourites, their memberships (an owner's community
/// passes to its longest-serving moderator, else member; one left with no member is removed
/// with everything in it, a batch at a time), then the scan, where log entries naming them
/// lose the name. The parts before the scan show their own progress (the rows left); a step
/// cut short by a crash leaves nothing half-done, and the next one starts where it stopped.
/// True when nothing is left.
pub fn erase_step(
    tx: &WriteTransaction,
    user: u64,
    batch: usize,
    cursor: &mut (u64, u64),
) -> Result<bool, StoreError> {
    let mut budget = batch.max(1);
    let posts = USERID_POSTNO.prefixed_page(tx, &user, None, budget)?;
    for ((_, p), ()) in &posts {
        match get_post(tx, *p)? {
            Some(post) => {
                if !remove_post_within(tx, &post, &mut budget)? {
                    return Ok(false);
                }
            }
            None => {
                USERID_POSTNO.remove(tx, &(user, *p))?;
                budget = budget.saturating_sub(1);
            }
        }
        if budget == 0 {
            return Ok(false);
        }
    }
    let comments = USERID_COMMENTNO.prefixed_page(tx, &user, None, budget)?;
    for ((_, id), p) in &comments {
        match get_comment(tx, *p, *id)? {
            Some(rec) => {
                if !remove_comment_within(tx, &rec, &mut budget)? {
                    return Ok(false);
                }
            }
            None => {
                USERID_COMMENTNO.remove(tx, &(user, *id))?;
                budget = budget.saturating_sub(1);
            }
        }
        if budget == 0 {
            return Ok(false);
        }
    }
    let favs = USERID_POSTNO_FAVOURITE.prefixed_page(tx, &user, None, budget)?;
    for ((_, p), _) in &favs {
        POSTNO_USERID_FAVOURITE.remove(tx, &(*p, user))?;
        USERID_POSTNO_FAVOURITE.remove(tx, &(user, *p))?;
        budget -= 1;
    }
    if budget == 0 {
        return Ok(false);
    }
    let mine = USERID_COMMUNITYNO.prefixed_page(tx, &user, None, budget)?;
    for ((_, c), role) in mine {
        if role == CommunityRole::Owner.code() {
            if !hand_over(tx, c, user, &mut budget)? {
                return Ok(false);
            }
        } else {
            remove_member(tx, c, user)?;
            budget = budget.saturating_sub(1);
        }
        if budget == 0 {
            return Ok(false);
        }
    }
    scan_communities(tx, user, &mut budget, cursor)
}

/// The last part of [`erase_step`]: from `cursor`, every community loses the user's request
/// and ban, and its log entries naming them lose the name. True at the end.
fn scan_communities(
    tx: &impl kv::Write,
    user: u64,
    budget: &mut usize,
    cursor: &mut (u64, u64),
) -> Result<bool, StoreError> {
    let log_from = |c: u64, seq: u64, limit: usize| {
        COMMUNITYNO_SEQ_MODLOG.range(
            tx,
            Bound::Included(&(c, seq)),
            Bound::Included(&(c, u64::MAX)),
            kv::Order::Ascending,
            limit,
        )
    };
    loop {
        let next = COMMUNITYNO_COMMUNITY
            .range(
                tx,
                Bound::Included(&cursor.0),
                Bound::Unbounded,
                kv::Order::Ascending,
                1,
            )?
            .into_iter()
            .next()
            .map(|(k, _)| k);
        let Some(c) = next else {
            return Ok(true);
        };
        if c != cursor.0 {
            *cursor = (c, 0);
        }
        if cursor.1 == 0 {
            COMMUNITYNO_USERID_PENDING.remove(tx, &(c, user))?;
            COMMUNITYNO_USERID_BAN.remove(tx, &(c, user))?;
            cursor.1 = 1;
            *budget = budget.saturating_sub(1);
        }
        let entries = log_from(c, cursor.1, *budget)?;
        let read = entries.len();
        for ((_, seq), v) in entries {
            let mut r = ModLogRecord::decode(seq, &v)?;
            cursor.1 = r.seq.saturating_add(1);
            if r.actor == user || r.target == user {
                if r.actor == user {
                    r.actor = 0;
                }
                if r.target == user {
                    r.target = 0;
                }
                COMMUNITYNO_SEQ_MODLOG.insert(tx, &(c, r.seq), &r.encode())?;
            }
        }
        *budget = budget.saturating_sub(read);
        let more = !log_from(c, cursor.1, 1)?.is_empty();
        if more {
            return Ok(false);
        }
        match c.checked_add(1) {
            Some(n) => *cursor = (n, 0),
            None => return Ok(true),
        }
        if *budget == 0 {
            return Ok(false);
        }
    }
}

/// The owner `user` leaves community `c`: it passes to its longest-serving moderator, else
/// member (its members read a page at a time to find them); with no other member it is
/// removed with whatever is still in it, up to `budget` rows a step (the owner's membership
/// stays until the community is gone, so the next step finds it again). True once the owner
/// is out.
fn hand_over(
    tx: &WriteTransaction,
    c: u64,
    user: u64,
    budget: &mut usize,
) -> Result<bool, StoreError> {
    let heir = {
        let mut best: Option<(CommunityRole, std::cmp::Reverse<u64>, u64)> = None;
        let (start, end) = under(c);
        each_row(
            tx,
            COMMUNITYNO_USERID_MEMBER,
            start,
            end,
            kv::Order::Ascending,
            |(_, u), (role, joined)| {
                if u == user {
                    return Ok(true);
                }
                let cand = (
                    CommunityRole::from_code(role)?,
                    std::cmp::Reverse(joined),
                    u,
                );
                if best.as_ref().is_none_or(|b| (cand.0, cand.1) > (b.0, b.1)) {
                    best = Some(cand);
                }
                Ok(true)
            },
        )?;
        best.map(|(_, std::cmp::Reverse(joined), u)| (u, joined))
    };
    let Some(mut rec) = get_community(tx, c)? else {
        remove_member(tx, c, user)?;
        *budget = budget.saturating_sub(1);
        return Ok(true);
    };
    if let Some((u, joined)) = heir {
        remove_member(tx, c, user)?;
        add_member(tx, c, u, CommunityRole::Owner, Millis(joined))?;
        rec.owner = u;
        COMMUNITYNO_COMMUNITY.insert(tx, &c, &rec.encode())?;
        *budget = budget.saturating_sub(2);
        return Ok(true);
    }
    // Nobody is left: the community goes, a batch at a time.
    let posts = COMMUNITYNO_POSTNO.prefixed_page(tx, &c, None, *budget)?;
    for ((_, p), ()) in posts {
        match get_post(tx, p)? {
            Some(post) => {
                if !remove_post_within(tx, &post, budget)? {
                    return Ok(false);
                }
            }
            None => {
                COMMUNITYNO_POSTNO.remove(tx, &(c, p))?;
                *budget = budget.saturating_sub(1);
            }
        }
        if *budget == 0 {
            return Ok(false);
        }
    }
    if any_under(tx, COMMUNITYNO_POSTNO, c)? {
        return Ok(false);
    }
    if !drain(tx, COMMUNITYNO_SEQ_MODLOG, c, budget)?
        || !drain(tx, COMMUNITYNO_USERID_PENDING, c, budget)?
        || !drain(tx, COMMUNITYNO_USERID_BAN, c, budget)?
    {
        return Ok(false);
    }
    if let Some(a) = &rec.avatar {
        MEDIAID_COMMUNITYNO_POSTNO.remove(tx, &(a.clone(), c, 0))?;
    }
    COMMUNITYNO_COMMUNITY.remove(tx, &c)?;
    note_change(tx, SearchChange::Community(c))?;
    remove_member(tx, c, user)?;
    *budget = budget.saturating_sub(1);
    Ok(true)
}

/// Removes up to `budget` of community `c`'s rows of `table` (keyed (community, …)); true once
/// none is left.
fn drain<V: kv::Value>(
    tx: &impl kv::Write,
    table: kv::Table<(u64, u64), V>,
    c: u64,
    budget: &mut usize,
) -> Result<bool, StoreError> {
    let n = table.remove_prefixed(tx, &c, *budget)?;
    *budget = budget.saturating_sub(n);
    Ok(!any_under(tx, table, c)?)
}

/// Revoking `precise_location` removes the place of every post of `user`, in the transaction
/// that records the revocation (their posts read a page at a time).
pub fn drop_places(tx: &impl kv::Write, user: u64) -> Result<(), StoreError> {
    let (start, end) = under(user);
    each_row(
        tx,
        USERID_POSTNO,
        start,
        end,
        kv::Order::Ascending,
        |(_, p), ()| {
            if let Some(mut post) = get_post(tx, p)?
                && !post.place_sealed.is_empty()
            {
                post.place_sealed.clear();
                POSTNO_POST.insert(tx, &p, &post.encode())?;
            }
            Ok(true)
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;
    use crate::community::tests::seal;
    use crate::community::{Moderation, PostVisibility};

    /// (posts, comments, favourites) stored, and whether user `u` is named in any log entry.
    async fn census(store: &Store, u: u64) -> (u64, u64, u64, bool) {
        store
            .read(move |tx| {
                let mut named = false;
                for ((_, seq), v) in COMMUNITYNO_SEQ_MODLOG.page(tx, None, 1000)? {
                    let r = ModLogRecord::decode(seq, &v)?;
                    named |= r.actor == u || r.target == u;
                }
                Ok((
                    kv::rows_in(tx, POSTNO_POST.name())?,
                    kv::rows_in(tx, POSTNO_COMMENTNO_COMMENT.name())?,
                    kv::rows_in(tx, USERID_POSTNO_FAVOURITE.name())?,
                    named,
                ))
            })
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn erasing_from_communities_goes_in_bounded_steps_that_resume_where_they_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(&dir.path().join("n.redb"), |_| Ok(None)).unwrap();
        let (gone, ann, cal) = (1, 2, 3);
        let now = Millis(10);
        let mk = |id, owner| {
            let store = store.clone();
            async move {
                assert!(
                    store
                        .create_community(id, "c".into(), String::new(), None, true, owner, now)
                        .await
                        .unwrap()
                );
            }
        };
        // 7: hers with ann as member (passes to ann); 8: hers alone (removed); 9: cal's, where
        // she was banned (the ban and the log's naming of her go).
        mk(7, gone).await;
        mk(8, gone).await;
        mk(9, cal).await;
        store
            .join_community(7, ann, now, None)
            .await
            .unwrap()
            .unwrap();
        store
            .join_community(9, gone, now, None)
            .await
            .unwrap()
            .unwrap();
        store
            .moderate(9, cal, Moderation::Ban(gone), now, None)
            .await
            .unwrap()
            .unwrap();
        for _ in 0..6 {
            let (p, _) = store
                .create_post(
                    7,
                    gone,
                    PostVisibility::Public,
                    Vec::new(),
                    Vec::new(),
                    now,
                    None,
                    seal,
                )
                .await
                .unwrap()
                .unwrap();
            for _ in 0..2 {
                store
                    .create_comment(7, p, ann, 0, 0, now, None, |id| {
                        Ok(id.to_be_bytes().to_vec())
                    })
                    .await
                    .unwrap()
                    .unwrap();
            }
            store
                .set_favourite(7, p, ann, true, now, None)
                .await
                .unwrap()
                .unwrap();
        }
        for _ in 0..5 {
            store
                .create_post(
                    8,
                    gone,
                    PostVisibility::Public,
                    Vec::new(),
                    Vec::new(),
                    now,
                    None,
                    seal,
                )
                .await
                .unwrap()
                .unwrap();
        }
        let (kept, _) = store
            .create_post(
                7,
                ann,
                PostVisibility::Public,
                Vec::new(),
                Vec::new(),
                now,
                None,
                seal,
            )
            .await
            .unwrap()
            .unwrap();
        let top = store
            .create_comment(7, kept, gone, 0, 0, now, None, |id| {
                Ok(id.to_be_bytes().to_vec())
            })
            .await
            .unwrap()
            .unwrap()
            .0;
        for _ in 0..3 {
            store
                .create_comment(7, kept, ann, top, 0, now, None, |id| {
                    Ok(id.to_be_bytes().to_vec())
                })
                .await
                .unwrap()
                .unwrap();
        }
        assert_eq!(census(&store, gone).await, (12, 16, 6, true));

        let batch = 4;
        let mut cursor = (0, 0);
        let mut steps = 0;
        let mut before = census(&store, gone).await;
        loop {
            steps += 1;
            assert!(steps < 100, "the steps end");
            let c0 = cursor;
            // Each step is its own transaction: stopping between two loses nothing.
            let (done, c1) = store
                .write(move |tx| {
                    let mut c = c0;
                    Ok((erase_step(tx, gone, batch, &mut c)?, c))
                })
                .await
                .unwrap();
            cursor = c1;
            let after = census(&store, gone).await;
            let removed = (before.0 - after.0) + (before.1 - after.1) + (before.2 - after.2);
            assert!(removed <= batch as u64, "step {steps} removed {removed}");
            before = after;
            if done {
                break;
            }
        }
        assert!(steps >= 9, "{steps} steps for 33 rows in batches of 4");
        // Only ann's post is left, with no comment (hers went with the reply thread).
        assert_eq!(census(&store, gone).await, (1, 0, 0, false));
        let c7 = store.community_for(7, ann).await.unwrap().unwrap();
        assert_eq!(
            (c7.community.owner, c7.role),
            (ann, Some(CommunityRole::Owner))
        );
        assert!(store.community_for(8, ann).await.unwrap().is_none());
        let banned = store
            .read(move |tx| Ok(COMMUNITYNO_USERID_BAN.get(tx, &(9, gone))?.is_some()))
            .await
            .unwrap();
        assert!(!banned);
        assert!(store.communities_of(gone).await.unwrap().is_empty());
    }
}
