//! One call at a time per (origin, envelope id): the host's in-memory turns for remote users'
//! write calls to its communities (`community.rs`). A repeat of an envelope that arrives while
//! the first copy is still being applied waits for it, then finds what it became in the store
//! (`storage/community_calls.rs`), instead of finding nothing yet and applying it a second time
//! (which the store would refuse, rolling the second write back). Only calls in progress have an entry, so the map stays as small as the number
//! of requests being served.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

type Key = (String, String);

/// The turns of the calls in progress.
#[derive(Debug, Clone, Default)]
pub(super) struct Turns {
    busy: Arc<Mutex<HashMap<Key, Arc<tokio::sync::Mutex<()>>>>>,
}

/// The right to handle one (origin, envelope id) until dropped.
#[derive(Debug)]
pub(super) struct Turn {
    turns: Turns,
    key: Key,
    lock: Arc<tokio::sync::Mutex<()>>,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Turns {
    /// Waits until no other holder handles `(origin, id)`, then takes the turn.
    pub(super) async fn enter(&self, origin: &str, id: &str) -> Turn {
        let key = (origin.to_string(), id.to_string());
        let lock = {
            let mut busy = self.busy.lock().unwrap_or_else(|p| p.into_inner());
            busy.entry(key.clone()).or_default().clone()
        };
        let guard = lock.clone().lock_owned().await;
        Turn {
            turns: self.clone(),
            key,
            lock,
            guard: Some(guard),
        }
    }

    /// How many keys have an entry (for the test of the bound).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.busy.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut busy = self.turns.busy.lock().unwrap_or_else(|p| p.into_inner());
        // Held by the map and by this turn only: no one waits, and no one can start waiting
        // without the map's lock, which is held here.
        if Arc::strong_count(&self.lock) == 2 {
            busy.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_second_holder_of_the_same_call_waits_and_other_calls_do_not() {
        let turns = Turns::default();
        let first = turns.enter("b.test", "e1").await;
        let other = tokio::time::timeout(Duration::from_secs(5), turns.enter("b.test", "e2"))
            .await
            .expect("another envelope id does not wait");
        let elsewhere = tokio::time::timeout(Duration::from_secs(5), turns.enter("c.test", "e1"))
            .await
            .expect("the same id from another origin does not wait");
        let t = turns.clone();
        let second = tokio::spawn(async move { t.enter("b.test", "e1").await });
        // The test's runtime has one thread: each yield lets the spawned task run.
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        assert!(
            !second.is_finished(),
            "the repeat waits while the first holds its turn"
        );
        drop(first);
        let second = tokio::time::timeout(Duration::from_secs(5), second)
            .await
            .expect("the repeat gets its turn")
            .unwrap();
        assert_eq!(turns.len(), 3);
        drop((second, other, elsewhere));
        assert_eq!(turns.len(), 0, "nothing stays once every turn is over");
    }
}
