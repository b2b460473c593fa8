//! The communities of other nodes that this node's users belong to (`userid_remotecommunity`,
//! issue 23): what the member's side remembers so that "my communities" lists them next to
//! the local ones. The host holds the membership itself; this is the member node's note of
//! it, kept when a join is answered and dropped when a leave is. Behind the key-value seam.

use super::catalog::USERID_REMOTECOMMUNITY;
use super::kv::{self, Order};
use super::{Store, StoreError};
use primitives::time::Millis;

/// The most communities of other nodes one user may belong to.
pub const MAX_PER_USER: usize = 200;

/// One community of another node a user belongs to (or asked to join).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteMembership {
    /// `<16 hex digits>@<host>`.
    pub address: String,
    pub joined: Millis,
    /// Its name as the host last told it ("" when it did not).
    pub name: String,
}

/// Whether `user` may note one more community: false at [`MAX_PER_USER`] unless `address`
/// is one of theirs already.
fn has_room(tx: &impl kv::Read, user: u64, address: &str) -> Result<bool, StoreError> {
    let key = (user, address.to_string());
    if USERID_REMOTECOMMUNITY.get(tx, &key)?.is_some() {
        return Ok(true);
    }
    let held = USERID_REMOTECOMMUNITY.prefixed(tx, &user, Order::Ascending, MAX_PER_USER)?;
    Ok(held.len() < MAX_PER_USER)
}

/// Removes every community of other nodes noted for `user` (their erasure): at most
/// [`MAX_PER_USER`] rows.
pub(crate) fn erase_remote_communities(tx: &impl kv::Write, user: u64) -> Result<(), StoreError> {
    USERID_REMOTECOMMUNITY.remove_prefixed(tx, &user, MAX_PER_USER + 1)?;
    Ok(())
}

impl Store {
    /// Notes that `user` joined (or asked to join) the community at `address`, keeping when
    /// they first did and updating its name. False, noting nothing, when they already have
    /// [`MAX_PER_USER`] others.
    pub async fn note_remote_community(
        &self,
        user: u64,
        address: String,
        name: String,
        now: Millis,
    ) -> Result<bool, StoreError> {
        self.write(move |tx| {
            if !has_room(tx, user, &address)? {
                return Ok(false);
            }
            let key = (user, address.clone());
            let joined = USERID_REMOTECOMMUNITY
                .get(tx, &key)?
                .map_or(now.0, |(at, _)| at);
            USERID_REMOTECOMMUNITY.insert(tx, &key, &(joined, name.clone()))?;
            Ok(true)
        })
        .await
    }

    /// Updates the name of `user`'s noted community at `address` to what its host shows now;
    /// nothing when there is no such note (they left meanwhile) or the name is the same.
    pub async fn rename_remote_community(
        &self,
        user: u64,
        address: String,
        name: String,
    ) -> Result<(), StoreError> {
        self.write(move |tx| {
            let key = (user, address.clone());
            if let Some((joined, was)) = USERID_REMOTECOMMUNITY.get(tx, &key)?
                && was != name
            {
                USERID_REMOTECOMMUNITY.insert(tx, &key, &(joined, name.clone()))?;
            }
            Ok(())
        })
        .await
    }

    /// Whether `user` may note the community at `address` (see [`MAX_PER_USER`]).
    pub async fn remote_community_room(
        &self,
        user: u64,
        address: String,
    ) -> Result<bool, StoreError> {
        self.read(move |tx| has_room(tx, user, &address)).await
    }

    /// Drops the note of `user`'s community at `address`; whether there was one.
    pub async fn forget_remote_community(
        &self,
        user: u64,
        address: String,
    ) -> Result<bool, StoreError> {
        self.write(move |tx| USERID_REMOTECOMMUNITY.remove(tx, &(user, address.clone())))
            .await
    }

    /// The communities of other nodes `user` belongs to, by address.
    pub async fn remote_communities(&self, user: u64) -> Result<Vec<RemoteMembership>, StoreError> {
        self.read(move |tx| {
            Ok(USERID_REMOTECOMMUNITY
                .prefixed(tx, &user, Order::Ascending, MAX_PER_USER)?
                .into_iter()
                .map(|((_, address), (joined, name))| RemoteMembership {
                    address,
                    joined: Millis(joined),
                    name,
                })
                .collect())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = Store::open(&dir.path().join("n.redb"), |_| Ok(None)).unwrap();
        (dir, s)
    }

    fn addr(n: usize) -> String {
        format!("{n:016x}@b.test")
    }

    #[tokio::test]
    async fn a_noted_community_keeps_its_first_join_and_its_latest_name() {
        let (_d, s) = open();
        assert!(
            s.note_remote_community(1, addr(2), "old".into(), Millis(10))
                .await
                .unwrap()
        );
        assert!(
            s.note_remote_community(1, addr(2), "new".into(), Millis(20))
                .await
                .unwrap()
        );
        assert!(
            s.note_remote_community(1, addr(1), "x".into(), Millis(30))
                .await
                .unwrap()
        );
        assert!(
            s.note_remote_community(2, addr(3), "y".into(), Millis(30))
                .await
                .unwrap()
        );
        let mine = s.remote_communities(1).await.unwrap();
        assert_eq!(
            mine,
            vec![
                RemoteMembership {
                    address: addr(1),
                    joined: Millis(30),
                    name: "x".into()
                },
                RemoteMembership {
                    address: addr(2),
                    joined: Millis(10),
                    name: "new".into()
                },
            ]
        );
        assert!(s.forget_remote_community(1, addr(2)).await.unwrap());
        assert!(!s.forget_remote_community(1, addr(2)).await.unwrap());
        // A rename reaches only a note that is there, and keeps when it was made.
        s.rename_remote_community(1, addr(2), "late".into())
            .await
            .unwrap();
        s.rename_remote_community(1, addr(1), "z".into())
            .await
            .unwrap();
        assert_eq!(
            s.remote_communities(1).await.unwrap(),
            vec![RemoteMembership {
                address: addr(1),
                joined: Millis(30),
                name: "z".into()
            }]
        );
        assert_eq!(
            s.remote_communities(2).await.unwrap().len(),
            1,
            "another user's stays"
        );
    }

    #[tokio::test]
    async fn a_user_notes_at_most_max_per_user_and_erasure_removes_them_all() {
        let (_d, s) = open();
        for n in 0..MAX_PER_USER {
            assert!(
                s.note_remote_community(1, addr(n), String::new(), Millis(1))
                    .await
                    .unwrap()
            );
        }
        assert!(
            !s.remote_community_room(1, addr(MAX_PER_USER))
                .await
                .unwrap()
        );
        assert!(
            !s.note_remote_community(1, addr(MAX_PER_USER), String::new(), Millis(1))
                .await
                .unwrap(),
            "one too many"
        );
        assert!(
            s.remote_community_room(1, addr(0)).await.unwrap(),
            "one of theirs"
        );
        assert!(
            s.note_remote_community(1, addr(0), "again".into(), Millis(2))
                .await
                .unwrap()
        );
        s.note_remote_community(2, addr(0), String::new(), Millis(1))
            .await
            .unwrap();
        s.write(|tx| erase_remote_communities(tx, 1)).await.unwrap();
        assert!(s.remote_communities(1).await.unwrap().is_empty());
        assert_eq!(s.remote_communities(2).await.unwrap().len(), 1);
    }
}
