//! Recall and deletion: recalling a message for everyone (also when another node asks,
//! [`recall_in`]), and deleting one message or every message so far from one user's own view
//! (and, at their erasure, what they deleted: [`erase_own_view`]).

use redb::{ReadableTable, WriteTransaction};

use super::{EventRecord, MessageRecord, Notify, last_pos, load_state_w, next_pos, put_event};
use crate::catalog::*;
use crate::federation::{Fanout, Refusal, run_fanout};
use crate::{Store, StoreError};
use primitives::time::Millis;

/// Hidden messages of one user in one conversation removed at a time when they clear it.
const HIDDEN_PAGE: usize = 256;

/// The outcome of a recall.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recalled {
    Done(Notify),
    Refused(Refusal),
    NotMember,
    NoSuchMessage,
    NotAuthor,
    TooLate,
}

impl Store {
    /// Recalls a message for everyone: only its author, only within `window_ms` of sending.
    /// When another node hosts the conversation (`hosted_here` false) the checks run on this
    /// node's copy and the request goes to the host through `fanout`; nothing changes here
    /// until the host's answer arrives.
    #[allow(clippy::too_many_arguments)]
    pub async fn recall_message(
        &self,
        user: u64,
        no: u64,
        seq: u64,
        now: Millis,
        window_ms: u64,
        hosted_here: bool,
        fanout: Option<Fanout>,
    ) -> Result<Recalled, StoreError> {
        self.write(move |tx| {
            recall_in(
                tx,
                user,
                no,
                seq,
                now,
                window_ms,
                hosted_here,
                fanout.as_ref(),
            )
        })
        .await
    }

    /// Deletes one message from `user`'s own view. False if not a member or no such message.
    /// `None` if the user is not a member; `Some(false)` if there is no such message.
    pub async fn hide_message(
        &self,
        user: u64,
        no: u64,
        seq: u64,
    ) -> Result<Option<bool>, StoreError> {
        self.write(move |tx| {
            if tx
                .open_table(CONVNO_USERID_MEMBER)?
                .get((no, user))?
                .is_none()
            {
                return Ok(None);
            }
            if tx.open_table(CONVNO_SEQ_MESSAGE)?.get((no, seq))?.is_none() {
                return Ok(Some(false));
            }
            USERID_CONVNO_SEQ_HIDDEN.insert(tx, &(user, no, seq), &())?;
            Ok(Some(true))
        })
        .await
    }

    /// Deletes every message so far from `user`'s own view of the conversation.
    pub async fn clear_conversation(&self, user: u64, no: u64) -> Result<bool, StoreError> {
        self.write(move |tx| {
            if tx
                .open_table(CONVNO_USERID_MEMBER)?
                .get((no, user))?
                .is_none()
            {
                return Ok(false);
            }
            let upto = last_pos(&tx.open_table(META)?)?;
            USERID_CONVNO_CLEARED.insert(tx, &(user, no), &upto)?;
            // The messages they hid one by one are cleared with the rest: a page at a time,
            // each removed before the next is read.
            USERID_CONVNO_SEQ_HIDDEN.remove_all_prefixed(tx, &(user, no), HIDDEN_PAGE)?;
            Ok(true)
        })
        .await
    }
}

/// Removes at most `budget` rows of what `user` cleared or hid of their own view (erasure):
/// the conversations they cleared, then the messages they hid, taking what it removed from
/// the budget; true when none is left.
pub fn erase_own_view(
    tx: &WriteTransaction,
    user: u64,
    budget: &mut usize,
) -> Result<bool, StoreError> {
    Ok(
        USERID_CONVNO_CLEARED.remove_prefixed_within(tx, &user, budget)?
            && USERID_CONVNO_SEQ_HIDDEN.remove_prefixed_within(tx, &user, budget)?,
    )
}

/// The body of [`Store::recall_message`], shared with recalls requested by other nodes.
#[allow(clippy::too_many_arguments)]
pub fn recall_in(
    tx: &WriteTransaction,
    user: u64,
    no: u64,
    seq: u64,
    now: Millis,
    window_ms: u64,
    hosted_here: bool,
    fanout: Option<&Fanout>,
) -> Result<Recalled, StoreError> {
    let Some(state) = load_state_w(tx, no)? else {
        return Ok(Recalled::NotMember);
    };
    if state.member(user).is_none() {
        return Ok(Recalled::NotMember);
    }
    let mut messages = tx.open_table(CONVNO_SEQ_MESSAGE)?;
    let found = messages
        .get((no, seq))?
        .map(|v| MessageRecord::decode(seq, v.value()));
    let Some(mut msg) = found.transpose()? else {
        return Ok(Recalled::NoSuchMessage);
    };
    if msg.recalled {
        return Ok(Recalled::NoSuchMessage);
    }
    if msg.author != user {
        return Ok(Recalled::NotAuthor);
    }
    if now.saturating_sub(msg.ts) > window_ms {
        return Ok(Recalled::TooLate);
    }
    let events = [EventRecord::Recall { seq }];
    let members = &state.members;
    let peers = run_fanout(tx, fanout, &state.conversation, members, &[], &events, now)?;
    if !hosted_here {
        return Ok(Recalled::Done(Notify {
            users: Vec::new(),
            pos: 0,
            peers,
        }));
    }
    msg.recalled = true;
    msg.body_sealed.clear();
    messages.insert((no, seq), msg.encode().as_slice())?;
    drop(messages);
    if let Some(id) = &msg.media
        && msg.author & REMOTE_USER_BIT != 0
    {
        crate::fedmedia::drop_remote_copy(tx, id)?;
    }
    let pos = next_pos(tx)?;
    put_event(tx, no, pos, &events[0])?;
    Ok(Recalled::Done(Notify {
        users: state.members.iter().map(|m| m.user).collect(),
        pos,
        peers,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv;
    use crate::messaging::tests::setup;

    /// `user`'s hidden messages of conversation `no`, and the number of all hidden rows.
    async fn hidden(store: &Store, user: u64, no: u64) -> (usize, u64) {
        store
            .read(move |tx| {
                Ok((
                    USERID_CONVNO_SEQ_HIDDEN
                        .prefixed_in_pages(tx, &(user, no), 64)?
                        .len(),
                    kv::rows_in(tx, USERID_CONVNO_SEQ_HIDDEN.name())?,
                ))
            })
            .await
            .unwrap()
    }

    /// A hidden message is left out of the history page, the feed and the conversation list's
    /// newest messages, for the user who hid it only.
    #[tokio::test]
    async fn a_hidden_message_is_left_out_of_history_feed_and_activity_for_its_user() {
        use crate::messaging::Page;
        use crate::messaging::tests::send;
        use primitives::time::Millis;
        let (_d, store, _) = setup().await;
        for n in 1..=3 {
            send(&store, n).await;
        }
        assert_eq!(store.hide_message(1, 77, 2).await.unwrap(), Some(true));
        let page = Page {
            before: None,
            after: None,
            limit: 10,
        };
        for (user, device, seqs) in [(1, "a1", vec![3, 1]), (2, "b1", vec![3, 2, 1])] {
            let history = store
                .messages(user, None, 77, page, Millis(0))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(history.iter().map(|m| m.seq).collect::<Vec<_>>(), seqs);
            let feed = store
                .events_since(user, device.into(), Some(0), 100, Millis(0))
                .await
                .unwrap();
            let mut fed: Vec<u64> = feed
                .events
                .iter()
                .filter_map(|e| e.message.as_ref().map(|m| m.seq))
                .collect();
            fed.reverse();
            assert_eq!(fed, seqs, "the feed of user {user}");
            let activity = store
                .activity(user, None, vec![77], Millis(0))
                .await
                .unwrap();
            let recent: Vec<u64> = activity[&77].recent.iter().map(|m| m.seq).collect();
            assert_eq!(recent, seqs, "the newest of user {user}");
        }
    }

    /// Clearing a conversation with more hidden messages than a page removes them all, and
    /// only that conversation's of that user.
    #[tokio::test]
    async fn clearing_removes_every_hidden_message_past_a_page_and_only_the_conversations() {
        let (_d, store, _) = setup().await;
        let n = HIDDEN_PAGE as u64 * 2 + 3;
        store
            .write(move |tx| {
                for seq in 1..=n {
                    USERID_CONVNO_SEQ_HIDDEN.insert(tx, &(1, 77, seq), &())?;
                }
                USERID_CONVNO_SEQ_HIDDEN.insert(tx, &(1, 78, 1), &())?;
                USERID_CONVNO_SEQ_HIDDEN.insert(tx, &(2, 77, 1), &())?;
                Ok(())
            })
            .await
            .unwrap();
        assert_eq!(hidden(&store, 1, 77).await, (n as usize, n + 2));
        assert!(store.clear_conversation(1, 77).await.unwrap());
        assert_eq!(hidden(&store, 1, 77).await, (0, 2), "the other two stay");
        assert_eq!(hidden(&store, 1, 78).await.0, 1);
        assert_eq!(hidden(&store, 2, 77).await.0, 1);
        let cleared = store
            .read(|tx| USERID_CONVNO_CLEARED.get(tx, &(1, 77)))
            .await
            .unwrap();
        assert!(cleared.is_some(), "the clear itself is recorded");
    }

    /// The erasure removes what a user cleared and hid a budget at a time, resumed until
    /// none is left, and nothing of anyone else's.
    #[tokio::test]
    async fn what_a_user_cleared_and_hid_goes_a_budget_at_a_time() {
        let (_d, store, _) = setup().await;
        store
            .write(|tx| {
                for no in 1..=3 {
                    USERID_CONVNO_CLEARED.insert(tx, &(1, no), &9)?;
                }
                for seq in 1..=10 {
                    USERID_CONVNO_SEQ_HIDDEN.insert(tx, &(1, 77, seq), &())?;
                }
                USERID_CONVNO_CLEARED.insert(tx, &(2, 1), &9)?;
                USERID_CONVNO_SEQ_HIDDEN.insert(tx, &(2, 77, 1), &())?;
                Ok(())
            })
            .await
            .unwrap();
        let mut steps = 0;
        loop {
            steps += 1;
            let done = store
                .write(|tx| erase_own_view(tx, 1, &mut 4))
                .await
                .unwrap();
            if done {
                break;
            }
            assert!(steps < 10, "it ends");
        }
        assert_eq!(
            steps, 4,
            "13 rows, 4 a step, the last finding fewer than its budget"
        );
        let left = store
            .read(|tx| {
                Ok((
                    kv::rows_in(tx, USERID_CONVNO_CLEARED.name())?,
                    kv::rows_in(tx, USERID_CONVNO_SEQ_HIDDEN.name())?,
                    USERID_CONVNO_CLEARED.get(tx, &(2, 1))?,
                ))
            })
            .await
            .unwrap();
        assert_eq!(left, (1, 1, Some(9)), "only user 2's rows are left");
    }
}
