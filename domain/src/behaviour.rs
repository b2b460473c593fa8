//! `Behaviour`: the behaviour log of policy 1.4.1 and 1.8.1 — a user's follows (joining a
//! community), favourites, views and shares of posts — and what it powers that the user sees:
//! suggested communities.
//!
//! Nothing is recorded without `personalisation` (checked here and again inside the write, so a
//! revocation racing an event leaves no row); each event is sealed under the user's data key
//! and stored under their behaviour pseudonym, never their id; events older than
//! `retention.behaviour_log_days` are pruned, revoking the purpose deletes them in its own
//! transaction, erasure deletes them before the pseudonym key goes, and the export holds them.
//! Without the purpose the suggestions are empty.

use std::collections::HashMap;

use crate::accounts::{AccountError, Accounts};
use crate::consents::{ConsentError, Consents, Purpose};
use crate::time::{Millis, SharedClock};
use storage::{Store, StoreError};

/// Most suggestions one answer holds.
pub const MAX_SUGGESTIONS: usize = 20;
/// Events removed per retention write.
const PRUNE_BATCH: usize = 1_000;

/// One thing a user did that the behaviour log keeps (community and post numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Joined (or asked to join) a community.
    Follow {
        community: u64,
    },
    Favourite {
        community: u64,
        post: u64,
    },
    /// Opened a post (read it alone, or opened its comments).
    View {
        community: u64,
        post: u64,
    },
    Share {
        community: u64,
        post: u64,
    },
}

impl Event {
    pub const fn kind(self) -> &'static str {
        match self {
            Event::Follow { .. } => "follow",
            Event::Favourite { .. } => "favourite",
            Event::View { .. } => "view",
            Event::Share { .. } => "share",
        }
    }

    pub const fn community(self) -> u64 {
        match self {
            Event::Follow { community }
            | Event::Favourite { community, .. }
            | Event::View { community, .. }
            | Event::Share { community, .. } => community,
        }
    }

    pub const fn post(self) -> Option<u64> {
        match self {
            Event::Follow { .. } => None,
            Event::Favourite { post, .. }
            | Event::View { post, .. }
            | Event::Share { post, .. } => Some(post),
        }
    }

    /// How much the event says about the user's interest in its community.
    const fn weight(self) -> u64 {
        match self {
            Event::Follow { .. } => 4,
            Event::Favourite { .. } | Event::Share { .. } => 3,
            Event::View { .. } => 1,
        }
    }

    fn encode(self) -> Vec<u8> {
        let code = match self {
            Event::Follow { .. } => 1u8,
            Event::Favourite { .. } => 2,
            Event::View { .. } => 3,
            Event::Share { .. } => 4,
        };
        let mut v = vec![code];
        v.extend_from_slice(&self.community().to_be_bytes());
        v.extend_from_slice(&self.post().unwrap_or(0).to_be_bytes());
        v
    }

    fn decode(b: &[u8]) -> Option<Event> {
        if b.len() != 17 {
            return None;
        }
        let community = u64::from_be_bytes(b[1..9].try_into().ok()?);
        let post = u64::from_be_bytes(b[9..17].try_into().ok()?);
        Some(match b[0] {
            1 => Event::Follow { community },
            2 => Event::Favourite { community, post },
            3 => Event::View { community, post },
            4 => Event::Share { community, post },
            _ => return None,
        })
    }
}

/// Errors of the behaviour log.
#[derive(Debug, thiserror::Error)]
pub enum BehaviourError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Accounts(#[from] AccountError),
    #[error(transparent)]
    Consent(#[from] ConsentError),
    #[error("a behaviour event is damaged")]
    Damaged,
}

/// Settings of the behaviour log.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// How long events are kept.
    pub days: u64,
}

/// The behaviour log service.
#[derive(Debug, Clone)]
pub struct Behaviour {
    store: Store,
    accounts: Accounts,
    consents: Consents,
    clock: SharedClock,
    settings: Settings,
}

fn aad(at: Millis) -> Vec<u8> {
    let mut v = b"behaviour-log/".to_vec();
    v.extend_from_slice(&at.0.to_be_bytes());
    v
}

impl Behaviour {
    pub fn new(
        store: Store,
        accounts: Accounts,
        consents: Consents,
        clock: SharedClock,
        settings: Settings,
    ) -> Self {
        Behaviour {
            store,
            accounts,
            consents,
            clock,
            settings,
        }
    }

    fn cutoff(&self) -> Millis {
        Millis(
            self.clock
                .now()
                .0
                .saturating_sub(self.settings.days * 86_400_000),
        )
    }

    async fn granted(&self, user: u64) -> Result<bool, BehaviourError> {
        match self.consents.require(user, Purpose::Personalisation).await {
            Ok(()) => Ok(true),
            Err(ConsentError::Store(e)) => Err(e.into()),
            Err(_) => Ok(false),
        }
    }

    /// Records `event` of `user` if they grant `personalisation`; whether it was recorded.
    pub async fn record(&self, user: u64, event: Event) -> Result<bool, BehaviourError> {
        if !self.granted(user).await? {
            return Ok(false);
        }
        let at = self.clock.now();
        let sealed = self
            .accounts
            .seal_personal(user, &aad(at), &event.encode())
            .await?;
        // The store checks the purpose again in the write.
        Ok(self
            .store
            .log_behaviour(user, at, sealed, self.cutoff())
            .await?)
    }

    /// Every kept event of `user`, newest first: what their export holds.
    pub async fn events(&self, user: u64) -> Result<Vec<(Millis, Event)>, BehaviourError> {
        let rows = self.store.behaviour_log(user, self.cutoff()).await?;
        let mut out = Vec::with_capacity(rows.len());
        for (at, sealed) in rows {
            let plain = self.accounts.open_personal(user, &aad(at), &sealed).await?;
            out.push((at, Event::decode(&plain).ok_or(BehaviourError::Damaged)?));
        }
        Ok(out)
    }

    /// The numbers of public communities to suggest to `user`, best first (at most `limit`,
    /// capped at [`MAX_SUGGESTIONS`]): empty without `personalisation`.
    pub async fn suggested(&self, user: u64, limit: usize) -> Result<Vec<u64>, BehaviourError> {
        if !self.granted(user).await? {
            return Ok(Vec::new());
        }
        let interest = interest(&self.events(user).await?);
        if interest.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self
            .store
            .suggest_communities(user, interest, limit.min(MAX_SUGGESTIONS))
            .await?)
    }

    /// Removes events past their retention; how many went.
    pub async fn prune(&self) -> Result<u64, StoreError> {
        let cutoff = self.cutoff();
        let mut total = 0;
        loop {
            let n = self.store.prune_behaviour_log(cutoff, PRUNE_BATCH).await?;
            total += n;
            if n < PRUNE_BATCH as u64 {
                return Ok(total);
            }
        }
    }
}

/// Each community's weight from the events about it.
fn interest(events: &[(Millis, Event)]) -> Vec<(u64, u64)> {
    let mut w: HashMap<u64, u64> = HashMap::new();
    for (_, e) in events {
        *w.entry(e.community()).or_default() += e.weight();
    }
    let mut v: Vec<(u64, u64)> = w.into_iter().collect();
    v.sort_unstable();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_and_damaged_ones_are_refused() {
        for e in [
            Event::Follow { community: 7 },
            Event::Favourite {
                community: 7,
                post: 9,
            },
            Event::View {
                community: u64::MAX,
                post: 1,
            },
            Event::Share {
                community: 1,
                post: u64::MAX,
            },
        ] {
            assert_eq!(Event::decode(&e.encode()), Some(e));
        }
        assert_eq!(Event::decode(&[9; 17]), None);
        assert_eq!(Event::decode(&[1; 16]), None);
    }

    #[test]
    fn interest_adds_the_weights_of_each_communitys_events() {
        let at = Millis(0);
        let got = interest(&[
            (
                at,
                Event::View {
                    community: 2,
                    post: 1,
                },
            ),
            (
                at,
                Event::View {
                    community: 2,
                    post: 3,
                },
            ),
            (
                at,
                Event::Favourite {
                    community: 2,
                    post: 3,
                },
            ),
            (at, Event::Follow { community: 5 }),
        ]);
        assert_eq!(got, vec![(2, 5), (5, 4)]);
    }
}
