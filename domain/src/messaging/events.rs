//! The event feed: wake-ups, a device's events since its cursor (opened and named for
//! display), the long-poll that waits for them, and acknowledgement.

use std::collections::HashMap;
use std::time::Duration;

use super::{Event, Messaging, MessagingError};
use crate::accounts::Session;
use crate::time::Sleep;
use storage::EventRecord;

impl Messaging {
    /// A wake-up receiver for the session's user.
    pub fn subscribe(&self, user: u64) -> tokio::sync::watch::Receiver<u64> {
        self.hub.subscribe(user)
    }

    /// The device's events after `since` (or after what it acknowledged), and the cursor to
    /// continue from.
    pub async fn events(
        &self,
        session: &Session,
        since: Option<u64>,
        limit: usize,
    ) -> Result<(Vec<(u64, Event)>, u64), MessagingError> {
        let feed = self
            .store
            .events_since(
                session.user,
                session.device_id.clone(),
                since,
                limit,
                self.clock.now(),
            )
            .await?;
        let (raw, cursor) = (feed.events, feed.cursor);
        let names: HashMap<u64, (String, Vec<u8>)> = feed
            .people
            .into_iter()
            .map(|(id, h, k)| (id, (h, k)))
            .collect();
        let mut opened = self
            .open_views(
                &names,
                raw.iter()
                    .filter(|e| matches!(e.event, EventRecord::Message { .. }))
                    .filter_map(|e| Some((e.conv_id.as_deref()?, e.message.clone()?)))
                    .collect(),
            )?
            .into_iter();
        let name = |id: &u64| {
            names
                .get(id)
                .map_or_else(|| "unknown".to_string(), |(h, _)| self.address(h))
        };
        let mut out = Vec::with_capacity(raw.len());
        for e in raw {
            let conversation = e.conv_id.clone().unwrap_or_default();
            let ev = match e.event {
                EventRecord::Message { .. } => {
                    if e.conv_id.is_none() || e.message.is_none() {
                        continue;
                    }
                    let Some(message) = opened.next().flatten() else {
                        continue;
                    };
                    Event::Message {
                        conversation,
                        message,
                    }
                }
                EventRecord::Recall { seq } => Event::Recall { conversation, seq },
                EventRecord::Member {
                    action,
                    user,
                    actor,
                    role,
                } => {
                    let conversation = match e.conv_id {
                        Some(c) => c,
                        None => "".into(),
                    };
                    Event::Membership {
                        conversation,
                        action,
                        user: name(&user),
                        actor: name(&actor),
                        role,
                    }
                }
                EventRecord::Renamed { name: n, actor } => Event::Renamed {
                    conversation,
                    name: n,
                    actor: name(&actor),
                },
                EventRecord::Visibility { public, actor } => Event::Visibility {
                    conversation,
                    public,
                    actor: name(&actor),
                },
                EventRecord::Notice { kind, content } => Event::Notice {
                    kind: kind.name(),
                    content,
                },
                EventRecord::Friend { action, id, user } => Event::Friend {
                    action: action.name(),
                    id: crate::friends::wire_id(id),
                    user: name(&user),
                },
                EventRecord::Community {
                    community,
                    post,
                    comment,
                } => Event::Community {
                    community: crate::community::community_id(community),
                    post,
                    comment: (comment != 0).then_some(comment),
                },
                EventRecord::RemoteCommunity {
                    address,
                    post,
                    comment,
                } => Event::Community {
                    community: address,
                    post,
                    comment: (comment != 0).then_some(comment),
                },
                EventRecord::Join {
                    action,
                    id,
                    conversation,
                    user,
                } => Event::Join {
                    action: action.name(),
                    id: id.to_string(),
                    conversation,
                    user: name(&user),
                },
            };
            out.push((e.pos, ev));
        }
        Ok((out, cursor))
    }

    /// Waits up to `timeout` for events after `since`; acknowledges `since` first (the client
    /// says it has everything up to there). The timeout runs on the node's clock from the first
    /// read that found nothing, so a timer of `timeout` on it means a poll is waiting (a test on
    /// a manual clock sees it, and ends it only by moving the clock).
    pub async fn long_poll(
        &self,
        session: &Session,
        since: Option<u64>,
        timeout: Duration,
        limit: usize,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Result<(Vec<(u64, Event)>, u64), MessagingError> {
        if let Some(s) = since {
            self.acknowledge(session, s).await?;
        }
        let mut wake = self.subscribe(session.user);
        wake.borrow_and_update();
        let mut expiry: Option<Sleep> = None;
        let mut expired = timeout.is_zero();
        loop {
            let (events, cursor) = self.events(session, since, limit).await?;
            if !events.is_empty() || expired || *shutdown.borrow() {
                return Ok((events, cursor));
            }
            let expiry = expiry.get_or_insert_with(|| self.clock.sleep(timeout));
            tokio::select! {
                _ = wake.changed() => {}
                () = expiry => expired = true,
                _ = shutdown.changed() => {}
            }
        }
    }

    pub async fn acknowledge(&self, session: &Session, cursor: u64) -> Result<(), MessagingError> {
        Ok(self
            .store
            .acknowledge(session.user, session.device_id.clone(), cursor)
            .await?)
    }
}
