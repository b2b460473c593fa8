//! Realtime wake-ups: after a commit, the users concerned are told the newest event position,
//! and every event stream or long-poll of theirs wakes up and reads from its own cursor. Only
//! positions travel here — never content — so a slow subscriber can never lose an event: it
//! just reads more the next time it wakes.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::watch;

/// The wake-up board: one watch channel per user with at least one subscriber.
#[derive(Debug, Default)]
pub struct Hub {
    users: Mutex<HashMap<u64, watch::Sender<u64>>>,
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, watch::Sender<u64>>> {
        self.users.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A receiver that changes whenever an event for `user` commits.
    pub fn subscribe(&self, user: u64) -> watch::Receiver<u64> {
        let mut users = self.lock();
        match users.get(&user) {
            Some(tx) => tx.subscribe(),
            None => {
                let (tx, rx) = watch::channel(0);
                users.insert(user, tx);
                rx
            }
        }
    }

    /// Wakes every subscriber of `users`; forgets users nobody listens for any more.
    pub fn publish(&self, users: &[u64], pos: u64) {
        let mut map = self.lock();
        for u in users {
            if let Some(tx) = map.get(u) {
                if tx.receiver_count() == 0 {
                    map.remove(u);
                } else {
                    tx.send_replace(pos);
                }
            }
        }
    }

    /// Users with a live subscription.
    #[cfg(test)]
    pub fn subscribed(&self) -> usize {
        self.lock()
            .values()
            .filter(|tx| tx.receiver_count() > 0)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn subscribers_wake_for_their_users_only_and_gone_ones_are_forgotten() {
        let hub = Hub::default();
        let mut a = hub.subscribe(1);
        let b = hub.subscribe(2);
        hub.publish(&[1, 3], 7);
        assert!(a.has_changed().unwrap());
        assert_eq!(*a.borrow_and_update(), 7);
        assert!(!b.has_changed().unwrap());
        drop(b);
        hub.publish(&[2], 8);
        assert_eq!(hub.subscribed(), 1);
    }
}
