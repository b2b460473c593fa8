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
            while USERID_CONVNO_SEQ_HIDDEN.remove_prefixed(tx, &(user, no), HIDDEN_PAGE)?
                == HIDDEN_PAGE
            {}
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
    let n = USERID_CONVNO_CLEARED.remove_prefixed(tx, &user, *budget)?;
    let done = n < *budget;
    *budget -= n;
    if !done {
        return Ok(false);
    }
    let n = USERID_CONVNO_SEQ_HIDDEN.remove_prefixed(tx, &user, *budget)?;
    let done = n < *budget;
    *budget -= n;
    Ok(done)
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
