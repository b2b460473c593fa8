//! The audit log: an append-only hash chain. Entry n's hash covers entry n−1's hash and all of
//! entry n's fields; META `audit_head` keeps (count, last hash) and is written in the same
//! transaction as each entry. Editing or removing any entry, or cutting the end off, therefore
//! shows up in [`Store::verify_audit`]. Someone able to rewrite the whole file can rebuild a
//! consistent chain: against that, operators record the head hash that verification prints.
//!
//! Entries hold no personal data: the target is a keyed pseudonym, never a user id, phone number
//! or message text. The key is the user's own (`userid_pseudonymkey`), made with their first
//! entry and destroyed when their erasure begins: from then on nothing links the entries about
//! them to them, while the chain still verifies (it covers the pseudonyms as written). Entries
//! about a user written after that name [`ERASED`].
//!
//! The log is behind the key-value seam (schema 13). Reading or verifying it goes [`PAGE`]
//! entries at a time; pruning removes at most the batch it is given.

use std::ops::Bound;

use redb::{ReadableTable, WriteTransaction};
use sha2::{Digest, Sha256};

use super::catalog::{META, SEQ_AUDITENTRY, USERID_ACCOUNT, USERID_PSEUDONYMKEY};
use super::codec::{Dec, Enc};
use super::kv::Order;
use super::{Store, StoreError};
use primitives::time::Millis;

/// Entries read at a time (the log is behind the key-value seam since schema 13: every read
/// names its limit).
const PAGE: usize = 256;

/// What to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub at: Millis,
    /// Who acted: `user` (the data subject), `admin`, or `node`.
    pub actor: String,
    /// What happened, e.g. `consent.revoke:cloud_sync`.
    pub action: String,
    /// Pseudonym of the user concerned (empty if none). Filled from `subject` when appended.
    pub target: String,
    /// Further detail without personal data.
    pub detail: String,
    /// The user the entry is about, when appending: [`append_audit`] writes their pseudonym
    /// into `target` and never stores the id. `None` in entries read back.
    pub subject: Option<u64>,
}

/// The target of entries about a user whose pseudonym key is gone with their erasure.
pub const ERASED: &str = "u:erased";

/// `user`'s pseudonym: `u:` and 16 hex digits of HMAC(their pseudonym key, user id).
fn pseudonym(key: &[u8; 32], user: u64) -> String {
    let h = primitives::crypto::hmac_sha256(key, &user.to_be_bytes());
    h[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
}

/// The pseudonym of `user` in a write: their key, made now if an account that is not being
/// erased has none yet; [`ERASED`] once the key is gone.
fn pseudonym_in(tx: &WriteTransaction, user: u64) -> Result<String, StoreError> {
    if let Some(k) = USERID_PSEUDONYMKEY.get(tx, &user)? {
        return Ok(format!("u:{}", pseudonym(&k, user)));
    }
    let active = match tx.open_table(USERID_ACCOUNT)?.get(user)? {
        Some(v) => !super::AccountRecord::decode(v.value())?
            .wrapped_key
            .is_empty(),
        None => false,
    };
    if !active {
        return Ok(ERASED.into());
    }
    let mut key = [0u8; 32];
    primitives::crypto::random_bytes(&mut key).map_err(|e| StoreError::Db(e.to_string()))?;
    USERID_PSEUDONYMKEY.insert(tx, &user, &key)?;
    Ok(format!("u:{}", pseudonym(&key, user)))
}

/// Destroys `user`'s pseudonym key (the first step of their erasure).
pub fn forget_pseudonym(tx: &WriteTransaction, user: u64) -> Result<(), StoreError> {
    USERID_PSEUDONYMKEY.remove(tx, &user)?;
    Ok(())
}

/// An entry as stored, with its place in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub seq: u64,
    pub entry: AuditEntry,
    pub prev: [u8; 32],
    pub hash: [u8; 32],
}

/// The result of checking the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditCheck {
    Intact { entries: u64, head: [u8; 32] },
    Broken { at: u64, reason: &'static str },
}

fn chain_hash(prev: &[u8; 32], seq: u64, e: &AuditEntry) -> [u8; 32] {
    let fields = Enc::new(1)
        .u64(seq)
        .u64(e.at.0)
        .str(&e.actor)
        .str(&e.action)
        .str(&e.target)
        .str(&e.detail)
        .finish();
    let mut h = Sha256::new();
    h.update(b"shanliao-audit-v1");
    h.update(prev);
    h.update(&fields);
    h.finalize().into()
}

impl AuditRecord {
    fn encode(&self) -> Vec<u8> {
        let e = &self.entry;
        Enc::new(1)
            .u64(e.at.0)
            .str(&e.actor)
            .str(&e.action)
            .str(&e.target)
            .str(&e.detail)
            .bytes(&self.prev)
            .bytes(&self.hash)
            .finish()
    }
    pub fn decode(seq: u64, b: &[u8]) -> Result<Self, StoreError> {
        let mut d = Dec::new(b, "audit entry", 1)?;
        let entry = AuditEntry {
            at: Millis(d.u64()?),
            actor: d.string()?,
            action: d.string()?,
            target: d.string()?,
            detail: d.string()?,
            subject: None,
        };
        let prev = d
            .bytes()?
            .try_into()
            .map_err(|_| StoreError::Corrupt("audit entry"))?;
        let hash = d
            .bytes()?
            .try_into()
            .map_err(|_| StoreError::Corrupt("audit entry"))?;
        d.end()?;
        Ok(AuditRecord {
            seq,
            entry,
            prev,
            hash,
        })
    }
}

fn head(
    meta: &impl ReadableTable<&'static str, &'static [u8]>,
) -> Result<(u64, [u8; 32]), StoreError> {
    Ok(match meta.get("audit_head")? {
        Some(v) => {
            let b = v.value();
            if b.len() != 40 {
                return Err(StoreError::Corrupt("audit head"));
            }
            let count = u64::from_be_bytes(
                b[..8]
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("audit head"))?,
            );
            (
                count,
                b[8..]
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("audit head"))?,
            )
        }
        None => (0, [0; 32]),
    })
}

/// Appends an entry inside the caller's transaction (so it commits with the change it records).
pub fn append_audit(tx: &WriteTransaction, mut entry: AuditEntry) -> Result<(), StoreError> {
    if let Some(user) = entry.subject.take() {
        entry.target = pseudonym_in(tx, user)?;
    }
    let mut meta = tx.open_table(META)?;
    let (count, prev) = head(&meta)?;
    let hash = chain_hash(&prev, count, &entry);
    let rec = AuditRecord {
        seq: count,
        entry,
        prev,
        hash,
    };
    SEQ_AUDITENTRY.insert(tx, &count, &rec.encode())?;
    let mut new_head = (count + 1).to_be_bytes().to_vec();
    new_head.extend_from_slice(&hash);
    meta.insert("audit_head", new_head.as_slice())?;
    Ok(())
}

/// The chain's base after pruning: (first seq kept, the hash it links to). (0, zeros) before
/// any pruning.
fn base(
    meta: &impl ReadableTable<&'static str, &'static [u8]>,
) -> Result<(u64, [u8; 32]), StoreError> {
    Ok(match meta.get("audit_base")? {
        Some(v) => {
            let b = v.value();
            if b.len() != 40 {
                return Err(StoreError::Corrupt("audit base"));
            }
            let mut h = [0u8; 32];
            h.copy_from_slice(&b[8..]);
            (
                u64::from_be_bytes(
                    b[..8]
                        .try_into()
                        .map_err(|_| StoreError::Corrupt("audit base"))?,
                ),
                h,
            )
        }
        None => (0, [0; 32]),
    })
}

/// Removes the entries before `below` (retention of the security log), at most `limit` of
/// them (the first ones: the new base is then the first entry kept), and records the new
/// base, so the rest still verifies; returns how many went.
pub fn prune_audit(tx: &WriteTransaction, below: u64, limit: usize) -> Result<u64, StoreError> {
    let limit = limit.max(1);
    // The newest entry always stays, so the head remains provable from what is kept.
    let last = match SEQ_AUDITENTRY
        .range(tx, Bound::Unbounded, Bound::Unbounded, Order::Descending, 1)?
        .first()
    {
        Some((seq, _)) => *seq,
        None => return Ok(0),
    };
    let below = below.min(last);
    let doomed = SEQ_AUDITENTRY.range(
        tx,
        Bound::Unbounded,
        Bound::Excluded(&below),
        Order::Ascending,
        limit,
    )?;
    // Past `limit` entries, the chain's new base is the first one not removed.
    let below = match doomed.last() {
        Some((seq, _)) if doomed.len() == limit => seq + 1,
        _ => below,
    };
    let rec = match SEQ_AUDITENTRY.get(tx, &below)? {
        Some(v) => AuditRecord::decode(below, &v)?,
        None => return Ok(0),
    };
    let mut n = 0;
    for (seq, _) in &doomed {
        SEQ_AUDITENTRY.remove(tx, seq)?;
        n += 1;
    }
    let mut v = rec.seq.to_be_bytes().to_vec();
    v.extend_from_slice(&rec.prev);
    tx.open_table(META)?.insert("audit_base", v.as_slice())?;
    Ok(n)
}

impl Store {
    /// Appends one entry on its own.
    pub async fn audit(&self, entry: AuditEntry) -> Result<(), StoreError> {
        self.write(move |tx| append_audit(tx, entry.clone())).await
    }

    /// Entries at or after `since`, oldest first.
    pub async fn audit_entries(
        &self,
        since: Option<Millis>,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        self.audit_where(move |e| since.is_none_or(|s| e.at >= s))
            .await
    }

    /// Entries naming `user` (by their pseudonym), oldest first; none once their key is gone.
    pub async fn audit_about(&self, user: u64) -> Result<Vec<AuditRecord>, StoreError> {
        let Some(target) = self.pseudonym_of(user).await? else {
            return Ok(Vec::new());
        };
        self.audit_where(move |e| e.target == target).await
    }

    /// `user`'s pseudonym in the audit log, if they have one (not yet erased, ever audited).
    pub async fn pseudonym_of(&self, user: u64) -> Result<Option<String>, StoreError> {
        self.read(move |tx| {
            Ok(USERID_PSEUDONYMKEY
                .get(tx, &user)?
                .map(|k| format!("u:{}", pseudonym(&k, user))))
        })
        .await
    }

    async fn audit_where(
        &self,
        keep: impl Fn(&AuditEntry) -> bool + Send + 'static,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        self.read(move |tx| {
            let mut out = Vec::new();
            let mut after = None;
            loop {
                let rows = SEQ_AUDITENTRY.page(tx, after.as_ref(), PAGE)?;
                for (seq, v) in &rows {
                    let rec = AuditRecord::decode(*seq, v)?;
                    if keep(&rec.entry) {
                        out.push(rec);
                    }
                }
                match rows.last() {
                    Some((seq, _)) if rows.len() == PAGE => after = Some(*seq),
                    _ => return Ok(out),
                }
            }
        })
        .await
    }

    /// Walks the whole chain and the head.
    pub async fn verify_audit(&self) -> Result<AuditCheck, StoreError> {
        self.read(|tx| {
            let meta = tx.open_table(META)?;
            let (count, head_hash) = head(&meta)?;
            // After pruning, the chain starts at the recorded base.
            let (mut expected, mut prev) = base(&meta)?;
            let mut after = None;
            loop {
                let rows = SEQ_AUDITENTRY.page(tx, after.as_ref(), PAGE)?;
                after = rows.last().map(|(seq, _)| *seq);
                let last_page = rows.len() < PAGE;
                for (seq, v) in rows {
                    if seq != expected {
                        return Ok(AuditCheck::Broken {
                            at: expected,
                            reason: "an entry is missing",
                        });
                    }
                    let Ok(rec) = AuditRecord::decode(seq, &v) else {
                        return Ok(AuditCheck::Broken {
                            at: seq,
                            reason: "an entry is damaged",
                        });
                    };
                    if rec.prev != prev {
                        return Ok(AuditCheck::Broken {
                            at: seq,
                            reason: "the link to the entry before does not match",
                        });
                    }
                    if chain_hash(&prev, seq, &rec.entry) != rec.hash {
                        return Ok(AuditCheck::Broken {
                            at: seq,
                            reason: "the entry was changed",
                        });
                    }
                    prev = rec.hash;
                    expected += 1;
                }
                if last_page {
                    break;
                }
            }
            if expected != count || prev != head_hash {
                return Ok(AuditCheck::Broken {
                    at: expected,
                    reason: "entries were removed from the end",
                });
            }
            Ok(AuditCheck::Intact {
                entries: count,
                head: prev,
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u64) -> AuditEntry {
        AuditEntry {
            at: Millis(n),
            actor: "user".into(),
            action: format!("consent.grant:p{n}"),
            target: "u:abcd".into(),
            detail: String::new(),
            subject: None,
        }
    }

    async fn chain() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(&dir.path().join("a.redb"), |_| Ok(None)).unwrap();
        for n in 0..3 {
            store.audit(entry(n)).await.unwrap();
        }
        (dir, store)
    }

    async fn poke(
        store: &Store,
        f: impl Fn(&WriteTransaction) -> Result<(), StoreError> + Send + 'static,
    ) {
        store.write(f).await.unwrap();
    }

    /// A chain longer than a page verifies and reads whole; pruning it a batch at a time
    /// records each new base, so what is kept still verifies, and the newest entry stays.
    #[tokio::test]
    async fn a_long_chain_verifies_and_prunes_a_batch_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(&dir.path().join("a.redb"), |_| Ok(None)).unwrap();
        let n = PAGE as u64 + 5;
        poke(&store, move |tx| {
            for i in 0..n {
                append_audit(tx, entry(i))?;
            }
            Ok(())
        })
        .await;
        assert_eq!(store.audit_entries(None).await.unwrap().len(), n as usize);
        assert!(matches!(
            store.verify_audit().await.unwrap(),
            AuditCheck::Intact { entries, .. } if entries == n
        ));
        let pruned = store.write(|tx| prune_audit(tx, 10, 4)).await.unwrap();
        assert_eq!(pruned, 4, "at most the batch");
        assert_eq!(store.audit_entries(None).await.unwrap()[0].seq, 4);
        assert!(matches!(
            store.verify_audit().await.unwrap(),
            AuditCheck::Intact { .. }
        ));
        let pruned = store
            .write(|tx| prune_audit(tx, u64::MAX, 1000))
            .await
            .unwrap();
        assert_eq!(pruned, n - 5, "all but the newest");
        let kept = store.audit_entries(None).await.unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].seq, n - 1);
        assert!(matches!(
            store.verify_audit().await.unwrap(),
            AuditCheck::Intact { .. }
        ));
    }

    #[tokio::test]
    async fn an_untouched_chain_verifies() {
        let (_d, store) = chain().await;
        assert!(matches!(
            store.verify_audit().await.unwrap(),
            AuditCheck::Intact { entries: 3, .. }
        ));
        assert_eq!(store.audit_entries(Some(Millis(1))).await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn an_edited_entry_is_detected() {
        let (_d, store) = chain().await;
        poke(&store, |tx| {
            let mut rec = AuditRecord::decode(1, &SEQ_AUDITENTRY.get(tx, &1)?.unwrap())?;
            rec.entry.action = "consent.revoke:p1".into();
            SEQ_AUDITENTRY.insert(tx, &1, &rec.encode())?;
            Ok(())
        })
        .await;
        assert_eq!(
            store.verify_audit().await.unwrap(),
            AuditCheck::Broken {
                at: 1,
                reason: "the entry was changed"
            }
        );
    }

    #[tokio::test]
    async fn a_removed_entry_and_a_cut_end_are_detected() {
        let (_d, store) = chain().await;
        poke(&store, |tx| {
            SEQ_AUDITENTRY.remove(tx, &1)?;
            Ok(())
        })
        .await;
        assert!(matches!(
            store.verify_audit().await.unwrap(),
            AuditCheck::Broken { at: 1, .. }
        ));
        let (_d2, store) = chain().await;
        poke(&store, |tx| {
            SEQ_AUDITENTRY.remove(tx, &2)?;
            Ok(())
        })
        .await;
        assert!(matches!(
            store.verify_audit().await.unwrap(),
            AuditCheck::Broken { at: 2, .. }
        ));
    }
}
