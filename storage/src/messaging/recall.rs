//! Recall and deletion: recalling a message for everyone (also when another node asks,
//! [`recall_in`]), and deleting one message or every message so far from one user's own view.

use redb::{ReadableTable, WriteTransaction};

use super::{EventRecord, MessageRecord, Notify, last_pos, load_state_w, next_pos, put_event};
use crate::catalog::*;
use crate::federation::{Fanout, Refusal, run_fanout};
use crate::{Store, StoreError};
use primitives::time::Millis;

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
            tx.open_table(USERID_CONVNO_SEQ_HIDDEN)?
                .insert((user, no, seq), ())?;
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
            tx.open_table(USERID_CONVNO_CLEARED)?
                .insert((user, no), upto)?;
            let mut hidden = tx.open_table(USERID_CONVNO_SEQ_HIDDEN)?;
            hidden.retain_in((user, no, 0)..=(user, no, u64::MAX), |_, _| false)?;
            Ok(true)
        })
        .await
    }
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
