//! A user's erasure from communities ([`erase_step`], bounded and resumable) and the revocation
//! of `precise_location` ([`drop_places`]).

use redb::{ReadableTable, WriteTransaction};

use super::communities::{add_member, remove_member};
use super::posts::remove_post;
use super::{CommentRecord, CommunityRole, ModLogRecord, PostRecord};
use super::{get_community_w, get_post_w};
use crate::StoreError;
use crate::catalog::*;
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
    let posts: Vec<u64> = tx
        .open_table(USERID_POSTNO)?
        .range((user, 0)..=(user, u64::MAX))?
        .take(budget)
        .map(|r| r.map(|(k, _)| k.value().1))
        .collect::<Result<_, _>>()?;
    for p in &posts {
        match get_post_w(tx, *p)? {
            Some(post) => {
                if !remove_post_within(tx, &post, &mut budget)? {
                    return Ok(false);
                }
            }
            None => {
                tx.open_table(USERID_POSTNO)?.remove((user, *p))?;
                budget = budget.saturating_sub(1);
            }
        }
        if budget == 0 {
            return Ok(false);
        }
    }
    let comments: Vec<(u64, u64)> = tx
        .open_table(USERID_COMMENTNO)?
        .range((user, 0)..=(user, u64::MAX))?
        .take(budget)
        .map(|r| r.map(|(k, v)| (k.value().1, v.value())))
        .collect::<Result<_, _>>()?;
    for (id, p) in &comments {
        let found = tx
            .open_table(POSTNO_COMMENTNO_COMMENT)?
            .get((*p, *id))?
            .map(|v| CommentRecord::decode(*p, *id, v.value()));
        match found.transpose()? {
            Some(rec) => {
                if !remove_comment_within(tx, &rec, &mut budget)? {
                    return Ok(false);
                }
            }
            None => {
                tx.open_table(USERID_COMMENTNO)?.remove((user, *id))?;
                budget = budget.saturating_sub(1);
            }
        }
        if budget == 0 {
            return Ok(false);
        }
    }
    let favs: Vec<u64> = tx
        .open_table(USERID_POSTNO_FAVOURITE)?
        .range((user, 0)..=(user, u64::MAX))?
        .take(budget)
        .map(|r| r.map(|(k, _)| k.value().1))
        .collect::<Result<_, _>>()?;
    for p in &favs {
        tx.open_table(POSTNO_USERID_FAVOURITE)?.remove((*p, user))?;
        tx.open_table(USERID_POSTNO_FAVOURITE)?.remove((user, *p))?;
        budget -= 1;
    }
    if budget == 0 {
        return Ok(false);
    }
    let mine: Vec<(u64, u64)> = tx
        .open_table(USERID_COMMUNITYNO)?
        .range((user, 0)..=(user, u64::MAX))?
        .take(budget)
        .map(|r| r.map(|(k, v)| (k.value().1, v.value())))
        .collect::<Result<_, _>>()?;
    for (c, role) in mine {
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
    tx: &WriteTransaction,
    user: u64,
    budget: &mut usize,
    cursor: &mut (u64, u64),
) -> Result<bool, StoreError> {
    loop {
        let next = tx
            .open_table(COMMUNITYNO_COMMUNITY)?
            .range(cursor.0..)?
            .next()
            .transpose()?
            .map(|(k, _)| k.value());
        let Some(c) = next else {
            return Ok(true);
        };
        if c != cursor.0 {
            *cursor = (c, 0);
        }
        if cursor.1 == 0 {
            tx.open_table(COMMUNITYNO_USERID_PENDING)?
                .remove((c, user))?;
            tx.open_table(COMMUNITYNO_USERID_BAN)?.remove((c, user))?;
            cursor.1 = 1;
            *budget = budget.saturating_sub(1);
        }
        let mut log = tx.open_table(COMMUNITYNO_SEQ_MODLOG)?;
        let mut entries = Vec::new();
        for row in log.range((c, cursor.1)..=(c, u64::MAX))?.take(*budget) {
            let (k, v) = row?;
            entries.push(ModLogRecord::decode(k.value().1, v.value())?);
        }
        let read = entries.len();
        for mut r in entries {
            cursor.1 = r.seq.saturating_add(1);
            if r.actor == user || r.target == user {
                if r.actor == user {
                    r.actor = 0;
                }
                if r.target == user {
                    r.target = 0;
                }
                log.insert((c, r.seq), r.encode().as_slice())?;
            }
        }
        *budget = budget.saturating_sub(read);
        let more = log.range((c, cursor.1)..=(c, u64::MAX))?.next().is_some();
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

/// Removes up to `budget` rows of a post's comments and favourites, then the post itself (its
/// indexes and media references with it); true once the post is gone.
fn remove_post_within(
    tx: &WriteTransaction,
    post: &PostRecord,
    budget: &mut usize,
) -> Result<bool, StoreError> {
    let comments: Vec<(u64, u64)> = {
        let t = tx.open_table(POSTNO_COMMENTNO_COMMENT)?;
        let mut out = Vec::new();
        for row in t.range((post.id, 0)..=(post.id, u64::MAX))?.take(*budget) {
            let (k, v) = row?;
            let c = CommentRecord::decode(post.id, k.value().1, v.value())?;
            out.push((c.author, c.id));
        }
        out
    };
    {
        let mut t = tx.open_table(POSTNO_COMMENTNO_COMMENT)?;
        let mut by_user = tx.open_table(USERID_COMMENTNO)?;
        for (author, id) in &comments {
            t.remove((post.id, *id))?;
            by_user.remove((*author, *id))?;
        }
    }
    *budget = budget.saturating_sub(comments.len());
    let fans: Vec<u64> = tx
        .open_table(POSTNO_USERID_FAVOURITE)?
        .range((post.id, 0)..=(post.id, u64::MAX))?
        .take(*budget)
        .map(|r| r.map(|(k, _)| k.value().1))
        .collect::<Result<_, _>>()?;
    {
        let mut favs = tx.open_table(USERID_POSTNO_FAVOURITE)?;
        let mut by_post = tx.open_table(POSTNO_USERID_FAVOURITE)?;
        for u in &fans {
            favs.remove((*u, post.id))?;
            by_post.remove((post.id, *u))?;
        }
    }
    *budget = budget.saturating_sub(fans.len());
    let left = tx
        .open_table(POSTNO_COMMENTNO_COMMENT)?
        .range((post.id, 0)..=(post.id, u64::MAX))?
        .next()
        .is_some()
        || tx
            .open_table(POSTNO_USERID_FAVOURITE)?
            .range((post.id, 0)..=(post.id, u64::MAX))?
            .next()
            .is_some();
    if left || *budget == 0 {
        return Ok(false);
    }
    remove_post(tx, post)?;
    *budget -= 1;
    Ok(true)
}

/// Removes up to `budget` replies of a top-level comment, then the comment; true once gone.
fn remove_comment_within(
    tx: &WriteTransaction,
    c: &CommentRecord,
    budget: &mut usize,
) -> Result<bool, StoreError> {
    if c.parent == 0 {
        let replies: Vec<(u64, u64)> = {
            let t = tx.open_table(POSTNO_COMMENTNO_COMMENT)?;
            let mut out = Vec::new();
            for row in t.range((c.post, c.id + 1)..=(c.post, u64::MAX))? {
                if out.len() >= *budget {
                    break;
                }
                let (k, v) = row?;
                let r = CommentRecord::decode(c.post, k.value().1, v.value())?;
                if r.parent == c.id {
                    out.push((r.author, r.id));
                }
            }
            out
        };
        let full = replies.len() >= *budget;
        {
            let mut t = tx.open_table(POSTNO_COMMENTNO_COMMENT)?;
            let mut by_user = tx.open_table(USERID_COMMENTNO)?;
            for (author, id) in &replies {
                t.remove((c.post, *id))?;
                by_user.remove((*author, *id))?;
            }
        }
        *budget = budget.saturating_sub(replies.len());
        if full {
            return Ok(false);
        }
    }
    tx.open_table(POSTNO_COMMENTNO_COMMENT)?
        .remove((c.post, c.id))?;
    tx.open_table(USERID_COMMENTNO)?.remove((c.author, c.id))?;
    *budget = budget.saturating_sub(1);
    Ok(true)
}

/// The owner `user` leaves community `c`: it passes to its longest-serving moderator, else
/// member; with no other member it is removed with whatever is still in it, up to `budget`
/// rows a step (the owner's membership stays until the community is gone, so the next step
/// finds it again). True once the owner is out.
fn hand_over(
    tx: &WriteTransaction,
    c: u64,
    user: u64,
    budget: &mut usize,
) -> Result<bool, StoreError> {
    let heir = {
        let t = tx.open_table(COMMUNITYNO_USERID_MEMBER)?;
        let mut best: Option<(CommunityRole, std::cmp::Reverse<u64>, u64)> = None;
        for row in t.range((c, 0)..=(c, u64::MAX))? {
            let (k, v) = row?;
            let u = k.value().1;
            if u == user {
                continue;
            }
            let (role, joined) = v.value();
            let cand = (
                CommunityRole::from_code(role)?,
                std::cmp::Reverse(joined),
                u,
            );
            if best.as_ref().is_none_or(|b| (cand.0, cand.1) > (b.0, b.1)) {
                best = Some(cand);
            }
        }
        best.map(|(_, std::cmp::Reverse(joined), u)| (u, joined))
    };
    let Some(mut rec) = get_community_w(tx, c)? else {
        remove_member(tx, c, user)?;
        *budget = budget.saturating_sub(1);
        return Ok(true);
    };
    if let Some((u, joined)) = heir {
        remove_member(tx, c, user)?;
        add_member(tx, c, u, CommunityRole::Owner, Millis(joined))?;
        rec.owner = u;
        tx.open_table(COMMUNITYNO_COMMUNITY)?
            .insert(c, rec.encode().as_slice())?;
        *budget = budget.saturating_sub(2);
        return Ok(true);
    }
    // Nobody is left: the community goes, a batch at a time.
    let posts: Vec<u64> = tx
        .open_table(COMMUNITYNO_POSTNO)?
        .range((c, 0)..=(c, u64::MAX))?
        .take(*budget)
        .map(|r| r.map(|(k, _)| k.value().1))
        .collect::<Result<_, _>>()?;
    for p in posts {
        match get_post_w(tx, p)? {
            Some(post) => {
                if !remove_post_within(tx, &post, budget)? {
                    return Ok(false);
                }
            }
            None => {
                tx.open_table(COMMUNITYNO_POSTNO)?.remove((c, p))?;
                *budget = budget.saturating_sub(1);
            }
        }
        if *budget == 0 {
            return Ok(false);
        }
    }
    if tx
        .open_table(COMMUNITYNO_POSTNO)?
        .range((c, 0)..=(c, u64::MAX))?
        .next()
        .is_some()
    {
        return Ok(false);
    }
    if !drain(tx, COMMUNITYNO_SEQ_MODLOG, c, budget)?
        || !drain(tx, COMMUNITYNO_USERID_PENDING, c, budget)?
        || !drain(tx, COMMUNITYNO_USERID_BAN, c, budget)?
    {
        return Ok(false);
    }
    if let Some(a) = &rec.avatar {
        tx.open_table(MEDIAID_COMMUNITYNO_POSTNO)?
            .remove((a.as_str(), c, 0))?;
    }
    tx.open_table(COMMUNITYNO_COMMUNITY)?.remove(c)?;
    note_change(tx, SearchChange::Community(c))?;
    remove_member(tx, c, user)?;
    *budget = budget.saturating_sub(1);
    Ok(true)
}

/// Removes up to `budget` of community `c`'s rows of `table` (keyed (community, …)); true once
/// none is left.
fn drain<V: redb::Value + 'static>(
    tx: &WriteTransaction,
    table: redb::TableDefinition<'static, (u64, u64), V>,
    c: u64,
    budget: &mut usize,
) -> Result<bool, StoreError> {
    let mut t = tx.open_table(table)?;
    let keys: Vec<(u64, u64)> = t
        .range((c, 0)..=(c, u64::MAX))?
        .take(*budget)
        .map(|r| r.map(|(k, _)| k.value()))
        .collect::<Result<_, _>>()?;
    for k in &keys {
        t.remove(*k)?;
    }
    *budget = budget.saturating_sub(keys.len());
    Ok(t.range((c, 0)..=(c, u64::MAX))?.next().is_none())
}

/// Revoking `precise_location` removes the place of every post of `user`, in the transaction
/// that records the revocation.
pub fn drop_places(tx: &WriteTransaction, user: u64) -> Result<(), StoreError> {
    let posts: Vec<u64> = tx
        .open_table(USERID_POSTNO)?
        .range((user, 0)..=(user, u64::MAX))?
        .map(|r| r.map(|(k, _)| k.value().1))
        .collect::<Result<_, _>>()?;
    let mut t = tx.open_table(POSTNO_POST)?;
    for p in posts {
        let found = t.get(p)?.map(|v| PostRecord::decode(p, v.value()));
        if let Some(mut post) = found.transpose()?
            && !post.place_sealed.is_empty()
        {
            post.place_sealed.clear();
            t.insert(p, post.encode().as_slice())?;
        }
    }
    Ok(())
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
                use redb::ReadableTableMetadata;
                let mut named = false;
                for row in tx.open_table(COMMUNITYNO_SEQ_MODLOG)?.iter()? {
                    let (k, v) = row?;
                    let r = ModLogRecord::decode(k.value().1, v.value())?;
                    named |= r.actor == u || r.target == u;
                }
                Ok((
                    tx.open_table(POSTNO_POST)?.len()?,
                    tx.open_table(POSTNO_COMMENTNO_COMMENT)?.len()?,
                    tx.open_table(USERID_POSTNO_FAVOURITE)?.len()?,
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
            .moderate(9, cal, Moderation::Ban(gone), now)
            .await
            .unwrap()
            .unwrap();
        for _ in 0..6 {
            let (p, _) = store
                .create_post(7, gone, PostVisibility::Public, Vec::new(), now, None, seal)
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
                .create_post(8, gone, PostVisibility::Public, Vec::new(), now, None, seal)
                .await
                .unwrap()
                .unwrap();
        }
        let (kept, _) = store
            .create_post(7, ann, PostVisibility::Public, Vec::new(), now, None, seal)
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
            .read(move |tx| {
                Ok(tx
                    .open_table(COMMUNITYNO_USERID_BAN)?
                    .get((9, gone))?
                    .is_some())
            })
            .await
            .unwrap();
        assert!(!banned);
        assert!(store.communities_of(gone).await.unwrap().is_empty());
    }
}
