//! Federation as stored: the node's signing keys, users of other nodes, the durable outbound
//! queue (one ordered queue per peer), envelopes and transactions already applied, transfer
//! records (which peer received what of whose data) and erasure acknowledgements.

use redb::{ReadableTable, WriteTransaction};

use super::catalog::*;
use super::codec::{Dec, Enc};
use super::messaging::{ConversationRecord, EventRecord, MemberRecord};
use super::{Store, StoreError};
use primitives::time::Millis;

/// Signing keys read at a time (a node has a handful: one per rotation).
const KEY_PAGE: usize = 64;

/// Erasure requests of one user read at a time (one per peer that received their data).
const ERASURE_PAGE: usize = 256;

/// A node signing key: its id, its seed sealed with the master key, and its validity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeKeyRecord {
    pub id: String,
    pub seed_sealed: Vec<u8>,
    pub created: Millis,
    pub valid_until: Millis,
}

impl NodeKeyRecord {
    pub(crate) fn encode(&self) -> Vec<u8> {
        Enc::new(1)
            .bytes(&self.seed_sealed)
            .u64(self.created.0)
            .u64(self.valid_until.0)
            .finish()
    }
    fn decode(id: &str, b: &[u8]) -> Result<Self, StoreError> {
        let mut d = Dec::new(b, "node key", 1)?;
        let r = NodeKeyRecord {
            id: id.to_string(),
            seed_sealed: d.bytes()?,
            created: Millis(d.u64()?),
            valid_until: Millis(d.u64()?),
        };
        d.end()?;
        Ok(r)
    }
}

impl Store {
    /// Every signing key the node has had, current and expired.
    pub async fn node_keys(&self) -> Result<Vec<NodeKeyRecord>, StoreError> {
        self.read(|tx| {
            let mut out = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let rows = KEYID_NODEKEY.page(tx, after.as_ref(), KEY_PAGE)?;
                let done = rows.len() < KEY_PAGE;
                for (k, v) in &rows {
                    out.push(NodeKeyRecord::decode(k, v)?);
                }
                after = rows.last().map(|(k, _)| k.clone());
                if done {
                    return Ok(out);
                }
            }
        })
        .await
    }

    /// Adds a new signing key.
    pub async fn insert_node_key(&self, rec: NodeKeyRecord) -> Result<(), StoreError> {
        self.write(move |tx| {
            if KEYID_NODEKEY.get(tx, &rec.id)?.is_some() {
                return Err(StoreError::Conflict(super::Conflict::UserId));
            }
            KEYID_NODEKEY.insert(tx, &rec.id, &rec.encode())?;
            Ok(())
        })
        .await
    }
}

// ---- Users of other nodes --------------------------------------------------------------------

/// A user of another node, as this node knows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteUserRecord {
    /// The address in clear: from the [`super::HandleBook`] (memory), never stored since
    /// schema 7; read from the record only in a schema 6 row not yet converted.
    pub address: String,
    /// The data key that seals what they wrote here, wrapped by the master key.
    pub wrapped_key: Vec<u8>,
    /// Nickname and avatar as last received, sealed under that key (empty: not yet known).
    pub profile_sealed: Vec<u8>,
    pub updated: Millis,
    /// The address sealed under that key (empty only in a schema 6 row not yet converted).
    pub address_sealed: Vec<u8>,
}

impl RemoteUserRecord {
    pub fn encode(&self) -> Vec<u8> {
        Enc::new(2)
            .bytes(&self.address_sealed)
            .bytes(&self.wrapped_key)
            .bytes(&self.profile_sealed)
            .u64(self.updated.0)
            .finish()
    }
    /// Decodes a record; version 1 (schema 6) held the address in clear.
    pub fn decode(b: &[u8]) -> Result<Self, StoreError> {
        let version = if b.first() == Some(&1) { 1 } else { 2 };
        let mut d = Dec::new(b, "remote user", version)?;
        let (address, address_sealed) = if version == 1 {
            (d.string()?, Vec::new())
        } else {
            (String::new(), d.bytes()?)
        };
        let r = RemoteUserRecord {
            address,
            wrapped_key: d.bytes()?,
            profile_sealed: d.bytes()?,
            updated: Millis(d.u64()?),
            address_sealed,
        };
        d.end()?;
        Ok(r)
    }

    /// Decodes a record and fills its clear address from memory.
    pub fn decode_named(id: u64, b: &[u8], book: &super::HandleBook) -> Result<Self, StoreError> {
        let mut r = Self::decode(b)?;
        if let Some(a) = book.get(id) {
            r.address = a;
        }
        Ok(r)
    }
}

/// A remote user to create if this node does not know them yet.
#[derive(Debug, Clone)]
pub struct NewRemoteUser {
    pub address: String,
    /// A fresh candidate id (the top bit is set here) and wrapped key, used only if new.
    pub id: u64,
    pub wrapped_key: Vec<u8>,
    /// The address sealed under that key, for `id` (see `federate::directory::address_aad`).
    pub address_sealed: Vec<u8>,
    pub now: Millis,
}

/// The local id of a remote user, creating their record when new.
pub fn ensure_remote_user(
    tx: &WriteTransaction,
    book: &super::HandleBook,
    u: &NewRemoteUser,
) -> Result<u64, StoreError> {
    let index = book.index(&u.address);
    let mut ids = tx.open_table(REMOTEINDEX_USERID)?;
    if let Some(id) = ids.get(&index)? {
        return Ok(id.value());
    }
    let id = u.id | REMOTE_USER_BIT;
    let mut users = tx.open_table(USERID_REMOTEUSER)?;
    if users.get(id)?.is_some() {
        // The address is sealed for `id` (bound to it), so another id cannot be picked here;
        // the caller draws a new one (2^-63 per attempt).
        return Err(StoreError::Conflict(super::Conflict::UserId));
    }
    ids.insert(&index, id)?;
    USERID_REMOTEINDEX.insert(tx, &id, &index.to_vec())?;
    users.insert(
        id,
        RemoteUserRecord {
            address: u.address.clone(),
            wrapped_key: u.wrapped_key.clone(),
            profile_sealed: Vec::new(),
            updated: u.now,
            address_sealed: u.address_sealed.clone(),
        }
        .encode()
        .as_slice(),
    )?;
    // In memory before the commit: if it fails, an unused id keeps a name, which nothing reads.
    book.insert(id, u.address.clone());
    Ok(id)
}

// ---- Outbound queue ------------------------------------------------------------------------

/// One envelope waiting for a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundRecord {
    /// The user whose data key seals `payload` (0: not sealed, it carries no personal data).
    pub sealer: u64,
    /// The local user whose data it carries (0: none); delivery stops if they revoke
    /// `cross_border_transfer` for a peer of another region.
    pub subject: u64,
    pub payload: Vec<u8>,
    /// Whose data it carries, and what kind: counted in the disclosure log
    /// (`userid_peer_kind_outcome_disclosure`) once the envelope is delivered, refused or
    /// dropped. Empty in rows queued before schema 5 (those were counted when queued).
    pub transfers: Vec<(u64, String)>,
}

impl OutboundRecord {
    fn encode(&self) -> Vec<u8> {
        let mut e = Enc::new(2)
            .u64(self.sealer)
            .u64(self.subject)
            .bytes(&self.payload)
            .u64(self.transfers.len() as u64);
        for (user, kind) in &self.transfers {
            e = e.u64(*user).str(kind);
        }
        e.finish()
    }
    fn decode(b: &[u8]) -> Result<Self, StoreError> {
        let version = if b.first() == Some(&1) { 1 } else { 2 };
        let mut d = Dec::new(b, "outbound", version)?;
        let mut r = OutboundRecord {
            sealer: d.u64()?,
            subject: d.u64()?,
            payload: d.bytes()?,
            transfers: Vec::new(),
        };
        if version == 2 {
            let n = d.u64()?;
            for _ in 0..n {
                r.transfers.push((d.u64()?, d.string()?));
            }
        }
        d.end()?;
        Ok(r)
    }
}

/// What became of an envelope that carried a user's data, as the disclosure log counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disclosure {
    /// The peer answered it as applied (or applied before).
    Delivered,
    /// It reached the peer, which refused it for good.
    Refused,
    /// It was queued but never sent (consent revoked, too old, or its user erased).
    Dropped,
    /// The conversation's host did not relay it to the peer (the user's residency choice or
    /// the peer's media limit); the host said so in its relay.
    Withheld,
}

impl Disclosure {
    pub fn name(self) -> &'static str {
        match self {
            Disclosure::Delivered => "delivered",
            Disclosure::Refused => "refused",
            Disclosure::Dropped => "dropped",
            Disclosure::Withheld => "withheld",
        }
    }
}

/// An envelope to queue, produced by the domain's fan-out.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub dest: String,
    pub record: OutboundRecord,
    /// Whose data crosses (recorded per user, peer and kind): (user, kind).
    pub transfers: Vec<(u64, &'static str)>,
}

/// Why the domain refused to let data leave (nothing is written then).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A user's data would go to a peer of another region without their consent.
    Residency { peer: String, region: String },
    /// The peer's queue is full.
    QueueFull { peer: String },
    /// Media larger than the peer published that it takes (`limit` bytes).
    TooLargeForPeer { peer: String, limit: u64 },
    /// The peer is not one this node federates with.
    UnknownPeer { peer: String },
    /// What the write carries cannot cross federation (yet).
    Unsupported(String),
    /// Building the envelope failed.
    Internal(String),
}

/// What a write on a conversation hands to the fan-out builder, inside its transaction.
#[derive(Debug)]
pub struct FanoutView<'a> {
    pub conversation: &'a ConversationRecord,
    /// Members after the write, each with their handle (local) or address (remote). For a
    /// fan-out made with [`Fanout::about`], the only local member listed is that user.
    pub members: &'a [(MemberRecord, String)],
    /// Members this write removed, likewise.
    pub removed: &'a [(MemberRecord, String)],
    /// The events the write added, in order.
    pub events: &'a [EventRecord],
    /// Local members (and removed members) listed above who have granted
    /// `cross_border_transfer` (and are not paused by a policy version they have yet to accept).
    pub cross_border: &'a [u64],
}

/// Plans what a write sends to other nodes — who receives it, whether the residency rule and
/// the peers' queues allow it — and builds the queue rows (sealed, unsigned envelopes; the
/// delivery side signs). Runs inside the write transaction (so the queue rows commit with the
/// data), possibly more than once.
#[derive(Clone)]
pub struct Fanout {
    build: std::sync::Arc<FanoutFn>,
    /// Where local members' handles are read (they are not stored in clear).
    handles: std::sync::Arc<super::HandleBook>,
    /// `Some(user)`: the builder reads no local member but `user`, so the others are not
    /// looked up (account record, consent and policy rows each).
    only_local: Option<u64>,
}

/// The function inside a [`Fanout`].
pub type FanoutFn = dyn Fn(&FanoutView<'_>) -> Result<Vec<Outgoing>, Refusal> + Send + Sync;

impl Fanout {
    /// A fan-out that sees every member.
    pub fn new(
        handles: std::sync::Arc<super::HandleBook>,
        f: impl Fn(&FanoutView<'_>) -> Result<Vec<Outgoing>, Refusal> + Send + Sync + 'static,
    ) -> Self {
        Fanout {
            build: std::sync::Arc::new(f),
            handles,
            only_local: None,
        }
    }

    /// A fan-out that needs, of the local members, only `user` (a message's or a recall's
    /// author): remote members are listed as always. What one message costs then does not grow
    /// with the local members of its conversation.
    pub fn about(
        user: u64,
        handles: std::sync::Arc<super::HandleBook>,
        f: impl Fn(&FanoutView<'_>) -> Result<Vec<Outgoing>, Refusal> + Send + Sync + 'static,
    ) -> Self {
        Fanout {
            build: std::sync::Arc::new(f),
            handles,
            only_local: Some(user),
        }
    }
}

impl std::fmt::Debug for Fanout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Fanout")
    }
}

/// A member with their handle (local) or address (remote).
type Named = (MemberRecord, String);

/// Handles or addresses of members, and who among the local ones may send data abroad.
/// With `only_local`, local members other than that user are left out.
fn named(
    tx: &WriteTransaction,
    handles: &super::HandleBook,
    members: &[MemberRecord],
    only_local: Option<u64>,
    now: Millis,
) -> Result<(Vec<Named>, Vec<u64>), StoreError> {
    if members.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let accounts = tx.open_table(USERID_ACCOUNT)?;
    let remotes = tx.open_table(USERID_REMOTEUSER)?;
    let consents = tx.open_table(USERID_PURPOSE_CONSENT)?;
    let mut out = Vec::with_capacity(members.len());
    let mut cross = Vec::new();
    for m in members {
        if m.user & REMOTE_USER_BIT != 0 {
            if remotes.get(m.user)?.is_some() {
                out.push((*m, handles.get(m.user).unwrap_or_default()));
            }
        } else if only_local.is_some_and(|u| u != m.user) {
            continue;
        } else if accounts.get(m.user)?.is_some() {
            out.push((*m, handles.get(m.user).unwrap_or_default()));
            let status = super::privacy::purpose_status_in(
                &consents,
                tx,
                m.user,
                "cross_border_transfer",
                now,
            )?;
            if status == super::PurposeStatus::Granted {
                cross.push(m.user);
            }
        }
    }
    Ok((out, cross))
}

/// Runs `fanout` for a conversation write and queues what it returns, recording transfers;
/// a refusal fails the write (`StoreError::Refused`). Skipped (nothing to send) when no member, before or after, is remote. Returns the peers
/// whose queues grew.
pub fn run_fanout(
    tx: &WriteTransaction,
    fanout: Option<&Fanout>,
    conversation: &ConversationRecord,
    members: &[MemberRecord],
    removed: &[MemberRecord],
    events: &[EventRecord],
    now: Millis,
) -> Result<Vec<String>, StoreError> {
    let Some(fanout) = fanout else {
        return Ok(Vec::new());
    };
    let remote = |m: &MemberRecord| m.user & REMOTE_USER_BIT != 0;
    if !members.iter().chain(removed).any(remote) {
        return Ok(Vec::new());
    }
    let (members_named, mut cross) = named(tx, &fanout.handles, members, fanout.only_local, now)?;
    let (removed_named, cross_removed) =
        named(tx, &fanout.handles, removed, fanout.only_local, now)?;
    cross.extend(cross_removed);
    let view = FanoutView {
        conversation,
        members: &members_named,
        removed: &removed_named,
        events,
        cross_border: &cross,
    };
    // A refusal is an error, so the writer rolls back everything this job wrote.
    let outgoing = (fanout.build)(&view).map_err(StoreError::Refused)?;
    enqueue(tx, &outgoing, now)
}

/// Writes queue rows (each with the transfers it carries, counted once its fate is known);
/// returns the peers written to.
pub fn enqueue(
    tx: &WriteTransaction,
    outgoing: &[Outgoing],
    _now: Millis,
) -> Result<Vec<String>, StoreError> {
    if outgoing.is_empty() {
        return Ok(Vec::new());
    }
    let first = super::take_numbers(tx, "next_outbound", outgoing.len() as u64)?;
    let mut queue = tx.open_table(DEST_SEQ_OUTBOUND)?;
    let mut dests: Vec<String> = Vec::new();
    for (n, o) in (first..).zip(outgoing) {
        let mut rec = o.record.clone();
        rec.transfers = o
            .transfers
            .iter()
            .map(|(u, k)| (*u, (*k).to_string()))
            .collect();
        queue.insert((o.dest.as_str(), n), rec.encode().as_slice())?;
        if !dests.contains(&o.dest) {
            dests.push(o.dest.clone());
        }
    }
    drop(queue);
    for dest in &dests {
        let n = outgoing.iter().filter(|o| &o.dest == dest).count() as u64;
        count_queued(tx, dest, n, 0)?;
    }
    Ok(dests)
}

/// Moves `dest`'s count in `dest_outboundcount` by `added` rows queued and `removed` taken
/// off; a queue left empty has no row.
fn count_queued(
    tx: &WriteTransaction,
    dest: &str,
    added: u64,
    removed: u64,
) -> Result<(), StoreError> {
    let key = dest.to_string();
    let now = DEST_OUTBOUNDCOUNT.get(tx, &key)?.unwrap_or(0);
    match (now + added).saturating_sub(removed) {
        0 => {
            DEST_OUTBOUNDCOUNT.remove(tx, &key)?;
        }
        n => DEST_OUTBOUNDCOUNT.insert(tx, &key, &n)?,
    }
    Ok(())
}

/// Counts one more envelope of (user, peer, kind) with `outcome` at `now`, in the disclosure
/// log — unless the user no longer has an account (erased: their log is gone with them).
fn count_disclosure(
    tx: &WriteTransaction,
    user: u64,
    peer: &str,
    kind: &str,
    outcome: Disclosure,
    now: Millis,
) -> Result<(), StoreError> {
    if user & REMOTE_USER_BIT != 0 || tx.open_table(USERID_ACCOUNT)?.get(user)?.is_none() {
        return Ok(());
    }
    let mut t = tx.open_table(USERID_PEER_KIND_OUTCOME_DISCLOSURE)?;
    let key = (user, peer, kind, outcome.name());
    let (first, _, count) = t.get(key)?.map_or((now.0, 0, 0), |v| v.value());
    t.insert(key, (first, now.0, count + 1))?;
    Ok(())
}

impl OutboundRecord {
    /// Only the sealer of an encoded record (to find a user's queued rows).
    pub fn decode_sealer(b: &[u8]) -> Result<u64, StoreError> {
        Ok(Self::decode(b)?.sealer)
    }
}

/// One line of a user's disclosure log: (peer, kind, outcome, first ms, last ms, count). The
/// outcome is `delivered`, `refused` or `dropped` (see [`Disclosure`]), or `queued` for what
/// was counted at queueing before schema 5.
pub type Transfer = (String, String, String, Millis, Millis, u64);

impl Store {
    /// The local id of a remote user, if known (found by the keyed hash of the address).
    pub async fn remote_user_id(&self, address: String) -> Result<Option<u64>, StoreError> {
        let index = self.handles.index(&address);
        self.read(move |tx| {
            Ok(tx
                .open_table(REMOTEINDEX_USERID)?
                .get(&index)?
                .map(|v| v.value()))
        })
        .await
    }

    /// The local id of a remote user, creating their record when new.
    pub async fn ensure_remote_user(&self, u: NewRemoteUser) -> Result<u64, StoreError> {
        let book = self.handles.clone();
        self.write(move |tx| ensure_remote_user(tx, &book, &u))
            .await
    }

    /// Records of remote users by local id (unknown ids are left out), with their addresses.
    pub async fn remote_users(
        &self,
        ids: Vec<u64>,
    ) -> Result<Vec<(u64, RemoteUserRecord)>, StoreError> {
        let book = self.handles.clone();
        self.read(move |tx| {
            let t = tx.open_table(USERID_REMOTEUSER)?;
            let mut out = Vec::new();
            for id in ids {
                if let Some(v) = t.get(id)? {
                    out.push((id, RemoteUserRecord::decode_named(id, v.value(), &book)?));
                }
            }
            Ok(out)
        })
        .await
    }

    /// Every remote user's record as stored (addresses not filled in), for the start-up load.
    pub async fn all_remote_users(&self) -> Result<Vec<(u64, RemoteUserRecord)>, StoreError> {
        self.read(move |tx| {
            let mut out = Vec::new();
            for row in tx.open_table(USERID_REMOTEUSER)?.iter()? {
                let (k, v) = row?;
                out.push((k.value(), RemoteUserRecord::decode(v.value())?));
            }
            Ok(out)
        })
        .await
    }

    /// Converts schema 6 remote users: each (id, sealed address) replaces the clear address in
    /// the record and is indexed by keyed hash, and its row of the clear-address table goes
    /// (by key). The caller hands them over in bounded batches; rows of that table no record
    /// names are left to [`Store::drop_schema6_addresses`].
    pub async fn seal_remote_addresses(
        &self,
        sealed: Vec<(u64, String, Vec<u8>)>,
    ) -> Result<(), StoreError> {
        let book = self.handles.clone();
        self.write(move |tx| {
            let mut users = tx.open_table(USERID_REMOTEUSER)?;
            let mut index = tx.open_table(REMOTEINDEX_USERID)?;
            let mut clear = tx.open_table(REMOTEADDR_USERID)?;
            for (id, address, address_sealed) in &sealed {
                if clear
                    .get(address.as_str())?
                    .is_some_and(|v| v.value() == *id)
                {
                    clear.remove(address.as_str())?;
                }
                let found = users.get(*id)?.map(|v| RemoteUserRecord::decode(v.value()));
                if let Some(mut rec) = found.transpose()? {
                    rec.address_sealed = address_sealed.clone();
                    users.insert(*id, rec.encode().as_slice())?;
                    let ix = book.index(address);
                    index.insert(&ix, *id)?;
                    USERID_REMOTEINDEX.insert(tx, id, &ix.to_vec())?;
                }
            }
            Ok(())
        })
        .await
    }

    /// Removes at most `limit` rows left in schema 6's clear-address table (one write); how
    /// many it removed (fewer than `limit`: the table is empty).
    pub async fn drop_schema6_addresses(&self, limit: usize) -> Result<usize, StoreError> {
        self.write(move |tx| {
            let mut t = tx.open_table(REMOTEADDR_USERID)?;
            let keys: Vec<String> = t
                .iter()?
                .take(limit)
                .map(|r| r.map(|(k, _)| k.value().to_string()))
                .collect::<Result<_, _>>()?;
            for k in &keys {
                t.remove(k.as_str())?;
            }
            Ok(keys.len())
        })
        .await
    }

    /// Queues envelopes (not tied to a conversation write).
    pub async fn enqueue(
        &self,
        outgoing: Vec<Outgoing>,
        now: Millis,
    ) -> Result<Vec<String>, StoreError> {
        self.write(move |tx| enqueue(tx, &outgoing, now)).await
    }

    /// How many envelopes wait for each peer (peers in order; none with an empty queue), from
    /// `dest_outboundcount`: one row per peer with a queue, never the queue itself.
    pub async fn outbound_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.read(|tx| {
            let mut out: Vec<(String, u64)> = Vec::new();
            loop {
                let page = DEST_OUTBOUNDCOUNT.page(tx, out.last().map(|(d, _)| d), 256)?;
                if page.is_empty() {
                    return Ok(out);
                }
                out.extend(page);
            }
        })
        .await
    }

    /// The oldest envelopes waiting for `dest`: at most `max` of them and (past the first)
    /// at most `max_bytes` of payload.
    pub async fn outbound_batch(
        &self,
        dest: String,
        max: usize,
        max_bytes: usize,
    ) -> Result<Vec<(u64, OutboundRecord)>, StoreError> {
        self.read(move |tx| {
            let mut out = Vec::new();
            let mut bytes = 0;
            let t = tx.open_table(DEST_SEQ_OUTBOUND)?;
            for row in t.range((dest.as_str(), 0)..=(dest.as_str(), u64::MAX))? {
                let (k, v) = row?;
                let rec = OutboundRecord::decode(v.value())?;
                bytes += rec.payload.len();
                if !out.is_empty() && (out.len() >= max || bytes > max_bytes) {
                    break;
                }
                out.push((k.value().1, rec));
            }
            Ok(out)
        })
        .await
    }

    /// Removes envelopes whose fate is known from `dest`'s queue, counting each one's transfers
    /// in the disclosure log with its outcome. Deferred (see [`Store::write_deferred`]): if a
    /// crash loses the removal (and the count with it), the envelopes are sent again and the
    /// peer, which records each applied envelope's (origin, id), answers them as duplicates —
    /// counted then.
    pub async fn outbound_done(
        &self,
        dest: String,
        seqs: Vec<(u64, Disclosure)>,
        now: Millis,
    ) -> Result<(), StoreError> {
        self.write_deferred(move |tx| {
            let mut t = tx.open_table(DEST_SEQ_OUTBOUND)?;
            let mut removed = 0;
            for (s, outcome) in &seqs {
                let Some(row) = t.remove((dest.as_str(), *s))? else {
                    continue;
                };
                removed += 1;
                let rec = OutboundRecord::decode(row.value())?;
                drop(row);
                for (user, kind) in &rec.transfers {
                    count_disclosure(tx, *user, &dest, kind, *outcome, now)?;
                }
            }
            drop(t);
            if removed > 0 {
                count_queued(tx, &dest, 0, removed)?;
            }
            Ok(())
        })
        .await
    }

    /// Peers for which envelopes carrying some of `user`'s data still wait.
    pub async fn pending_peers_of(&self, user: u64) -> Result<Vec<String>, StoreError> {
        self.read(move |tx| {
            let mut out: Vec<String> = Vec::new();
            for row in tx.open_table(DEST_SEQ_OUTBOUND)?.iter()? {
                let (k, v) = row?;
                let dest = k.value().0;
                if out.last().is_some_and(|d| d == dest) {
                    continue;
                }
                let rec = OutboundRecord::decode(v.value())?;
                if rec.subject == user || rec.transfers.iter().any(|(u, _)| *u == user) {
                    out.push(dest.to_string());
                }
            }
            Ok(out)
        })
        .await
    }

    /// The answer recorded for a transaction: (SHA-256 of its body, answer JSON).
    pub async fn transaction_answer(
        &self,
        origin: String,
        txn_id: String,
    ) -> Result<Option<([u8; 32], Vec<u8>)>, StoreError> {
        self.read(move |tx| {
            let t = tx.open_table(ORIGIN_TXNID_ANSWER)?;
            let Some(v) = t.get((origin.as_str(), txn_id.as_str()))? else {
                return Ok(None);
            };
            let (_, v) = v.value();
            if v.len() < 32 {
                return Err(StoreError::Corrupt("transaction"));
            }
            let mut digest = [0u8; 32];
            digest.copy_from_slice(&v[..32]);
            Ok(Some((digest, v[32..].to_vec())))
        })
        .await
    }

    /// Records a transaction's answer, received at `now` (first answer wins). Deferred (see
    /// [`Store::write_deferred`]): what the answer reports was committed durably before it, and
    /// if a crash loses the record, a retry of the transaction is checked envelope by envelope
    /// again, which finds the applied ones recorded and answers them as before.
    pub async fn record_transaction(
        &self,
        origin: String,
        txn_id: String,
        digest: [u8; 32],
        answer: Vec<u8>,
        now: Millis,
    ) -> Result<(), StoreError> {
        self.write_deferred(move |tx| {
            let mut t = tx.open_table(ORIGIN_TXNID_ANSWER)?;
            if t.get((origin.as_str(), txn_id.as_str()))?.is_none() {
                let mut v = digest.to_vec();
                v.extend_from_slice(&answer);
                t.insert((origin.as_str(), txn_id.as_str()), (now.0, v.as_slice()))?;
                tx.open_table(MS_ORIGIN_TXNID_ANSWERED)?
                    .insert((now.0, origin.as_str(), txn_id.as_str()), ())?;
            }
            Ok(())
        })
        .await
    }

    /// The user's disclosure log: for every peer and kind of their data, what became of the
    /// envelopes (see [`Transfer`]), when first and last, how many. Peers in order.
    pub async fn transfers_of(&self, user: u64) -> Result<Vec<Transfer>, StoreError> {
        self.read(move |tx| {
            let mut out = Vec::new();
            for row in tx
                .open_table(USERID_PEER_KIND_OUTCOME_DISCLOSURE)?
                .range((user, "", "", "")..)?
            {
                let (k, v) = row?;
                let (u, peer, kind, outcome) = k.value();
                if u != user {
                    break;
                }
                let (first, last, count) = v.value();
                out.push((
                    peer.to_string(),
                    kind.to_string(),
                    outcome.to_string(),
                    Millis(first),
                    Millis(last),
                    count,
                ));
            }
            for row in tx
                .open_table(USERID_PEER_KIND_TRANSFER)?
                .range((user, "", "")..)?
            {
                let (k, v) = row?;
                let (u, peer, kind) = k.value();
                if u != user {
                    break;
                }
                let (first, last, count) = v.value();
                out.push((
                    peer.to_string(),
                    kind.to_string(),
                    "queued".to_string(),
                    Millis(first),
                    Millis(last),
                    count,
                ));
            }
            out.sort_by(|a, b| (&a.0, &a.1, &a.2).cmp(&(&b.0, &b.1, &b.2)));
            Ok(out)
        })
        .await
    }

    /// Records erasure requests to peers, each with the digest of the acknowledgement it
    /// expects (see `USERID_PEER_ERASUREACK`), and queues them, in one transaction.
    pub async fn request_erasure(
        &self,
        user: u64,
        outgoing: Vec<(Outgoing, [u8; 32])>,
        now: Millis,
    ) -> Result<Vec<String>, StoreError> {
        self.write(move |tx| {
            for (o, ack) in &outgoing {
                let key = (user, o.dest.clone());
                USERID_PEER_ERASURE.insert(tx, &key, &(now.0, 0))?;
                USERID_PEER_ERASUREACK.insert(tx, &key, ack)?;
            }
            let rows: Vec<Outgoing> = outgoing.iter().map(|(o, _)| o.clone()).collect();
            enqueue(tx, &rows, now)
        })
        .await
    }

    /// Each peer asked to erase `user`'s data: (peer, requested, acknowledged if so).
    pub async fn erasure_status(
        &self,
        user: u64,
    ) -> Result<Vec<(String, Millis, Option<Millis>)>, StoreError> {
        self.read(move |tx| {
            // One row per peer asked, read a page at a time.
            Ok(USERID_PEER_ERASURE
                .prefixed_in_pages(tx, &user, ERASURE_PAGE)?
                .into_iter()
                .map(|((_, peer), (req, ack))| {
                    (peer, Millis(req), (ack != 0).then_some(Millis(ack)))
                })
                .collect())
        })
        .await
    }
}

impl Store {
    /// Records that some of `user`'s data of `kind` was delivered to `peer` outside the queue
    /// (a profile answered to a peer's lookup: the answer is the delivery).
    pub async fn record_transfer(
        &self,
        user: u64,
        peer: String,
        kind: &'static str,
        now: Millis,
    ) -> Result<(), StoreError> {
        self.write(move |tx| count_disclosure(tx, user, &peer, kind, Disclosure::Delivered, now))
            .await
    }

    /// Records that a conversation's host withheld some of `user`'s data of `kind` from each
    /// of `peers` (it said so when it relayed the rest).
    pub async fn record_withheld(
        &self,
        user: u64,
        peers: Vec<String>,
        kind: &'static str,
        now: Millis,
    ) -> Result<(), StoreError> {
        self.write(move |tx| {
            for peer in &peers {
                count_disclosure(tx, user, peer, kind, Disclosure::Withheld, now)?;
            }
            Ok(())
        })
        .await
    }
}

/// Schema 6's clear-address table, written and counted for the conversion's tests (here and in
/// the node's directory).
#[cfg(any(test, feature = "test-support"))]
impl Store {
    /// Writes a remote user as schema 6 did (for the conversion's test).
    pub async fn put_schema6_remote_user(&self, id: u64, address: &str, record: Vec<u8>) {
        let address = address.to_string();
        self.write(move |tx| {
            tx.open_table(REMOTEADDR_USERID)?
                .insert(address.as_str(), id)?;
            tx.open_table(USERID_REMOTEUSER)?
                .insert(id, record.as_slice())?;
            Ok(())
        })
        .await
        .unwrap();
    }

    /// How many rows schema 6's clear-address table still has.
    pub async fn schema6_remote_addresses(&self) -> u64 {
        self.read(|tx| {
            Ok(redb::ReadableTableMetadata::len(
                &tx.open_table(REMOTEADDR_USERID)?,
            )?)
        })
        .await
        .unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Role;
    use std::sync::{Arc, Mutex};

    /// More erasure requests than a page: the status lists every peer asked for the user, in
    /// peer order, each once, and none asked for another user.
    #[tokio::test]
    async fn erasure_status_past_a_page_lists_every_peer_asked_and_only_the_users() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(&dir.path().join("n.redb"), |_| Ok(None)).unwrap();
        let n = ERASURE_PAGE * 2 + 3;
        store
            .write(move |tx| {
                for i in 0..n {
                    USERID_PEER_ERASURE.insert(tx, &(7, format!("p{i:04}.test")), &(5, 0))?;
                }
                USERID_PEER_ERASURE.insert(tx, &(6, "a.test".into()), &(5, 0))?;
                USERID_PEER_ERASURE.insert(tx, &(8, "a.test".into()), &(5, 9))?;
                Ok(())
            })
            .await
            .unwrap();
        let status = store.erasure_status(7).await.unwrap();
        assert_eq!(
            status.iter().map(|s| s.0.clone()).collect::<Vec<_>>(),
            (0..n).map(|i| format!("p{i:04}.test")).collect::<Vec<_>>()
        );
        assert!(status.iter().all(|s| s.1 == Millis(5) && s.2.is_none()));
        assert_eq!(
            store.erasure_status(8).await.unwrap(),
            vec![("a.test".to_string(), Millis(5), Some(Millis(9)))]
        );
    }

    /// Local members 1, 2, 3 (accounts with handles) and one remote member.
    async fn store_with_members() -> (tempfile::TempDir, Store, Vec<MemberRecord>) {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(&dir.path().join("n.redb"), |_| Ok(None)).unwrap();
        let mut members = Vec::new();
        for id in 1..=3u64 {
            store
                .insert_account(super::super::tests::account(id, &format!("user{id}")))
                .await
                .unwrap();
            members.push(MemberRecord {
                user: id,
                role: Role::Member,
                joined: Millis(0),
            });
        }
        let remote = store
            .ensure_remote_user(NewRemoteUser {
                address: "rita@b.test".into(),
                id: 9,
                wrapped_key: vec![],
                address_sealed: vec![],
                now: Millis(0),
            })
            .await
            .unwrap();
        members.push(MemberRecord {
            user: remote,
            role: Role::Member,
            joined: Millis(0),
        });
        (dir, store, members)
    }

    /// The member names a fan-out is shown.
    async fn names_seen(
        store: &Store,
        members: Vec<MemberRecord>,
        about: Option<u64>,
    ) -> Vec<String> {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let build = move |view: &FanoutView<'_>| {
            let mut names = sink.lock().unwrap();
            names.extend(view.members.iter().map(|(_, n)| n.clone()));
            Ok(Vec::new())
        };
        let fanout = match about {
            Some(u) => Fanout::about(u, store.handles(), build),
            None => Fanout::new(store.handles(), build),
        };
        store
            .write(move |tx| {
                let conv = ConversationRecord {
                    no: 1,
                    id: "c:a.test".into(),
                    kind: crate::ConvKind::Group,
                    name: String::new(),
                    public: false,
                    created: Millis(0),
                    last_seq: 0,
                    last_activity: Millis(0),
                };
                run_fanout(tx, Some(&fanout), &conv, &members, &[], &[], Millis(1))
            })
            .await
            .unwrap();
        let mut names = seen.lock().unwrap().clone();
        names.sort();
        names
    }

    #[tokio::test]
    async fn queue_rows_and_disclosure_lines_of_schema_4_carry_over_without_being_counted_twice() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n.redb");
        drop(Store::open(&path, |_| Ok(None)).unwrap());
        {
            // What schema 4 wrote: a version-1 queue row (no transfers inside) whose transfer
            // was counted at queueing, and no outcome table.
            let db = redb::Database::create(&path).unwrap();
            let tx = db.begin_write().unwrap();
            tx.open_table(META)
                .unwrap()
                .insert("schema_version", 4u32.to_be_bytes().as_slice())
                .unwrap();
            tx.delete_table(USERID_PEER_KIND_OUTCOME_DISCLOSURE)
                .unwrap();
            tx.delete_table(crate::kv::redb_def(USERID_PEER_ERASUREACK.name()))
                .unwrap();
            let v1 = Enc::new(1).u64(0).u64(7).bytes(b"sealed").finish();
            tx.open_table(DEST_SEQ_OUTBOUND)
                .unwrap()
                .insert(("b.test", 1), v1.as_slice())
                .unwrap();
            tx.open_table(USERID_PEER_KIND_TRANSFER)
                .unwrap()
                .insert((7, "b.test", "message"), (10, 10, 1))
                .unwrap();
            tx.commit().unwrap();
        }
        let (store, _) = Store::open(&path, |_| Ok(None)).unwrap();
        let batch = store
            .outbound_batch("b.test".into(), 10, 1 << 20)
            .await
            .unwrap();
        assert_eq!(batch.len(), 1);
        assert_eq!(batch[0].1.subject, 7);
        assert!(batch[0].1.transfers.is_empty());
        store
            .outbound_done(
                "b.test".into(),
                vec![(1, Disclosure::Delivered)],
                Millis(20),
            )
            .await
            .unwrap();
        let log = store.transfers_of(7).await.unwrap();
        assert_eq!(
            log,
            [(
                "b.test".to_string(),
                "message".to_string(),
                "queued".to_string(),
                Millis(10),
                Millis(10),
                1
            )],
            "the old line stays as it was and is not counted again"
        );
        // A row of this schema round-trips with what it carries.
        let rec = OutboundRecord {
            sealer: 3,
            subject: 7,
            payload: b"p".to_vec(),
            transfers: vec![(7, "message".into()), (8, "membership".into())],
        };
        assert_eq!(OutboundRecord::decode(&rec.encode()).unwrap(), rec);
        let mut damaged = rec.encode();
        damaged[0] = 3;
        assert!(OutboundRecord::decode(&damaged).is_err());
    }

    #[tokio::test]
    async fn a_remote_user_erased_by_id_loses_their_index_row_found_by_key() {
        let (_dir, store, _) = store_with_members().await;
        let ensure = |address: &str, id: u64| {
            store.ensure_remote_user(NewRemoteUser {
                address: address.into(),
                id,
                wrapped_key: vec![],
                address_sealed: vec![],
                now: Millis(0),
            })
        };
        let kept = store.remote_user_id("rita@b.test".into()).await.unwrap();
        let gone = ensure("sam@b.test", 10).await.unwrap();
        let recorded = |id: u64| store.read(move |tx| USERID_REMOTEINDEX.get(tx, &id));
        let index = store.handles().index("sam@b.test");
        assert_eq!(recorded(gone).await.unwrap(), Some(index.to_vec()));
        // Not in memory (the address book is not loaded yet): the recorded key finds the row.
        store.handles().remove(gone);
        assert!(store.erase_remote_id(gone, Millis(5)).await.unwrap());
        assert_eq!(
            store.remote_user_id("sam@b.test".into()).await.unwrap(),
            None
        );
        assert_eq!(recorded(gone).await.unwrap(), None);
        assert_eq!(
            store.remote_user_id("rita@b.test".into()).await.unwrap(),
            kept,
            "another remote user keeps theirs"
        );
        assert!(recorded(kept.unwrap()).await.unwrap().is_some());
        // A user whose key was not recorded (the book still knows their address) is found too.
        let old = ensure("tom@b.test", 11).await.unwrap();
        store
            .write(move |tx| USERID_REMOTEINDEX.remove(tx, &old))
            .await
            .unwrap();
        assert!(store.erase_remote_id(old, Millis(6)).await.unwrap());
        assert_eq!(
            store.remote_user_id("tom@b.test".into()).await.unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn schema_6_clear_addresses_go_by_key_as_converted_and_the_rest_in_batches() {
        let (_dir, store, _) = store_with_members().await;
        let v1 = |address: &str| {
            Enc::new(1)
                .str(address)
                .bytes(&[])
                .bytes(&[])
                .u64(5)
                .finish()
        };
        for (n, address) in [(20u64, "a@b.test"), (21, "c@b.test"), (22, "d@b.test")] {
            store
                .put_schema6_remote_user(REMOTE_USER_BIT | n, address, v1(address))
                .await;
        }
        store
            .seal_remote_addresses(vec![
                (REMOTE_USER_BIT | 20, "a@b.test".into(), vec![1]),
                (REMOTE_USER_BIT | 21, "c@b.test".into(), vec![2]),
            ])
            .await
            .unwrap();
        assert_eq!(
            store.schema6_remote_addresses().await,
            1,
            "only the converted users' rows go, each by its key"
        );
        assert_eq!(
            store.remote_user_id("c@b.test".into()).await.unwrap(),
            Some(REMOTE_USER_BIT | 21)
        );
        store
            .write(|tx| {
                tx.open_table(REMOTEADDR_USERID)?
                    .insert("orphan@b.test", 99)?;
                Ok(())
            })
            .await
            .unwrap();
        assert_eq!(store.drop_schema6_addresses(1).await.unwrap(), 1, "bounded");
        assert_eq!(store.schema6_remote_addresses().await, 1);
        assert_eq!(store.drop_schema6_addresses(5).await.unwrap(), 1);
        assert_eq!(store.schema6_remote_addresses().await, 0);
    }

    #[tokio::test]
    async fn queue_depths_follow_queueing_and_removal_without_reading_the_queue() {
        let (_dir, store, _) = store_with_members().await;
        let row = |dest: &str| Outgoing {
            dest: dest.into(),
            record: OutboundRecord {
                sealer: 0,
                subject: 0,
                payload: vec![1],
                transfers: Vec::new(),
            },
            transfers: Vec::new(),
        };
        store
            .enqueue(vec![row("b.test"), row("a.test"), row("b.test")], Millis(1))
            .await
            .unwrap();
        assert_eq!(
            store.outbound_counts().await.unwrap(),
            vec![("a.test".to_string(), 1), ("b.test".to_string(), 2)]
        );
        // A queue row written behind the counts' back is not seen: the depths are the count
        // table's, not a walk over the queue.
        store
            .write(|tx| {
                tx.open_table(DEST_SEQ_OUTBOUND)?
                    .insert(("c.test", 1), b"x".as_slice())?;
                Ok(())
            })
            .await
            .unwrap();
        let b: Vec<u64> = store
            .outbound_batch("b.test".into(), 10, 1 << 20)
            .await
            .unwrap()
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        let done = |seqs: Vec<u64>| {
            seqs.into_iter()
                .map(|s| (s, Disclosure::Delivered))
                .collect()
        };
        store
            .outbound_done("b.test".into(), done(vec![b[0], 999]), Millis(2))
            .await
            .unwrap();
        assert_eq!(
            store.outbound_counts().await.unwrap(),
            vec![("a.test".to_string(), 1), ("b.test".to_string(), 1)],
            "only rows actually removed count"
        );
        store
            .outbound_done("b.test".into(), done(b.clone()), Millis(3))
            .await
            .unwrap();
        assert_eq!(
            store.outbound_counts().await.unwrap(),
            vec![("a.test".to_string(), 1)],
            "an emptied queue has no row"
        );
    }

    #[tokio::test]
    async fn an_envelope_is_counted_for_its_users_when_its_fate_is_known_and_never_for_one_erased()
    {
        let (_dir, store, _) = store_with_members().await;
        let row = |n: u8| Outgoing {
            dest: "b.test".into(),
            record: OutboundRecord {
                sealer: 0,
                subject: 1,
                payload: vec![n],
                transfers: Vec::new(),
            },
            // User 99 has no account (erased meanwhile).
            transfers: vec![(1, "message"), (2, "membership"), (99, "message")],
        };
        store
            .enqueue(vec![row(1), row(2)], Millis(5))
            .await
            .unwrap();
        assert!(
            store.transfers_of(1).await.unwrap().is_empty(),
            "queued is not counted"
        );
        let seqs: Vec<u64> = store
            .outbound_batch("b.test".into(), 10, 1 << 20)
            .await
            .unwrap()
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        store
            .outbound_done(
                "b.test".into(),
                vec![
                    (seqs[0], Disclosure::Refused),
                    (seqs[1], Disclosure::Dropped),
                ],
                Millis(9),
            )
            .await
            .unwrap();
        let outcomes = |log: Vec<Transfer>| -> Vec<(String, String, u64)> {
            log.into_iter().map(|t| (t.1, t.2, t.5)).collect()
        };
        assert_eq!(
            outcomes(store.transfers_of(1).await.unwrap()),
            [
                ("message".into(), "dropped".into(), 1),
                ("message".into(), "refused".into(), 1)
            ]
        );
        assert_eq!(
            outcomes(store.transfers_of(2).await.unwrap()),
            [
                ("membership".into(), "dropped".into(), 1),
                ("membership".into(), "refused".into(), 1)
            ]
        );
        assert!(store.transfers_of(99).await.unwrap().is_empty());
        assert_eq!(
            store.pending_peers_of(1).await.unwrap(),
            Vec::<String>::new()
        );
    }

    #[tokio::test]
    async fn a_fanout_about_one_author_is_shown_that_local_member_and_every_remote_one() {
        let (_dir, store, members) = store_with_members().await;
        assert_eq!(
            names_seen(&store, members.clone(), None).await,
            ["rita@b.test", "user1", "user2", "user3"]
        );
        assert_eq!(
            names_seen(&store, members, Some(2)).await,
            ["rita@b.test", "user2"]
        );
    }
}
