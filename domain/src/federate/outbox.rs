//! `Outbox`: everything this node sends to peers. It decides (inside the write transaction,
//! through the storage layer's `Fanout` hook) which peers a write goes to and whether the
//! residency rule allows it, and queues the envelopes that implies, sealed but not yet
//! signed; it runs one delivery worker per peer, which signs what it sends.
//!
//! Delivery: a worker takes the oldest queued envelopes for its peer (at most
//! [`federation::MAX_TXN_ENVELOPES`] and about 1 MiB), signs them on the blocking pool (and
//! the `submit` a hosted message carries, when it is this node's own; [`sign_queued`]) — so no
//! write transaction, and no other write behind it, waits for an ed25519 signature — and
//! sends them as one transaction whose id is
//! the range of queue numbers it holds, and removes what the peer answered for. A failed
//! attempt waits 1 s, then 2 s, 4 s … up to `federation.retry_max_secs` (each wait drawn
//! uniformly from its upper half, so peers coming back are not stampeded); the wait ends at
//! once when that peer contacts this node. Queues live in redb, so they survive restarts.
//! Backoff and pacing wait on the node's [`crate::time::Clock`] (tokio's timer in production),
//! so tests move a manual clock instead of sleeping.
//!
//! Pacing: a local user's send that queued envelopes is answered (after its commit) only once
//! at most `federation.pace_depth` envelopes wait for each of those peers, or after
//! `federation.pace_wait_ms` ([`Outbox::pace`]); a peer whose worker is backing off (down) is
//! not waited for. Closed-loop senders so slow to what the peer takes, and the queue — every
//! recipient's wait — stays short instead of growing for as long as the senders outpace it.
//!
//! Queue bound: about `federation.queue_max` envelopes per peer; past it, writes that would
//! add to that queue are refused (503) and a warning is logged. Nothing queued is dropped,
//! except (logged) envelopes whose data key is gone (the user was erased), envelopes of a
//! user who revoked `cross_border_transfer` for a peer in another region, and envelopes the
//! peer refused for good.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use federation::{
    Connection, Envelope, Kind, MAX_ENVELOPE_AGE_MS, MAX_TXN_BYTES, MAX_TXN_ENVELOPES,
    MembershipContent, MessageContent, RecallContent, WireBody, WireChange, WireMember,
    address_domain, conversation_host,
};
use http::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use super::peers::{Peer, Peers};
use crate::consents::{Consents, Purpose};
use crate::crypto::{self, MasterKey, SecretKey};
use crate::time::SharedClock;
use storage::{
    ConvKind, Disclosure, Fanout, FanoutView, OutboundRecord, Outgoing, REMOTE_USER_BIT, Refusal,
    Role, Store,
};

/// Settings of delivery.
#[derive(Debug, Clone, Copy)]
pub struct OutboxLimits {
    pub retry_max: Duration,
    pub queue_max: u64,
    /// Envelopes that may wait for a peer before a send waits (0: never waits).
    pub pace_depth: u64,
    /// The longest a send waits for pacing.
    pub pace_wait: Duration,
}

/// A delivery worker's signals, shared between its task and the rest of the outbox.
#[derive(Debug, Default, Clone)]
struct Worker {
    wake: Arc<Notify>,
    reset: Arc<Notify>,
    backing_off: Arc<AtomicBool>,
    /// Signalled whenever the worker took envelopes off the queue (or found it empty).
    progress: Arc<Notify>,
}

/// What fan-out functions and delivery workers share: peers, the queue's key, the clock, the
/// queue counts. Fan-outs run on the database's writer thread, so it holds nothing slow.
#[derive(Debug)]
struct Shared {
    queue_key: SecretKey,
    peers: Arc<Peers>,
    clock: SharedClock,
    limits: OutboxLimits,
    /// Envelopes waiting for each peer, kept in memory: raised after each commit that queued
    /// some, lowered as the worker takes them off, set to 0 when the worker finds the queue
    /// empty. It can be briefly below zero (the worker was faster than the raise); it serves
    /// the queue bound and pacing, which need it cheap rather than exact.
    counts: Mutex<HashMap<String, i64>>,
    /// Failed delivery attempts per peer since start (metrics).
    failures: Mutex<HashMap<String, u64>>,
    /// Digests of the submissions this node sent to other hosts, for recognising them when the
    /// host relays them back (see [`Outbox::relayed_own_submission`]).
    sent: Mutex<SentDigests>,
}

/// Most submission digests remembered (≈ 1 MiB at most); the oldest go first. A submission
/// not remembered is simply verified as any other envelope.
const SENT_DIGESTS_MAX: usize = 20_000;

/// Hash of an envelope id → SHA-256 of the canonical JSON of the whole signed envelope, and the
/// id hashes in sending order. Two ids sharing a hash can only make a lookup miss (the digest
/// still has to match), never accept anything.
/// An envelope of this node before its signature: what the queue holds. Only the delivery
/// worker signs it ([`sign_queued`]), outside any write transaction.
#[derive(Debug, Clone)]
struct Unsigned(Envelope);

#[derive(Debug, Default)]
struct SentDigests {
    by_id: HashMap<u64, [u8; 32]>,
    order: std::collections::VecDeque<u64>,
}

fn id_hash(id: &str) -> u64 {
    use std::hash::Hasher;
    // Fixed keys on purpose: the same id must hash alike at sending and at receipt.
    let mut h = std::hash::DefaultHasher::new();
    h.write(id.as_bytes());
    h.finish()
}

/// SHA-256 of an envelope's canonical JSON, signatures included.
fn digest(env: &Envelope) -> Option<[u8; 32]> {
    use sha2::Digest;
    let v = serde_json::to_value(env).ok()?;
    let text = federation::canonical_json(&v).ok()?;
    Some(sha2::Sha256::digest(text.as_bytes()).into())
}

impl Shared {
    /// Remembers a submission this node is sending to another host.
    fn remember_sent(&self, env: &Envelope) {
        let Some(d) = digest(env) else { return };
        let key = id_hash(&env.id);
        let mut sent = lock(&self.sent);
        if sent.by_id.insert(key, d).is_none() {
            sent.order.push_back(key);
        }
        while sent.order.len() > SENT_DIGESTS_MAX {
            if let Some(old) = sent.order.pop_front() {
                sent.by_id.remove(&old);
            }
        }
    }

    fn own_domain(&self) -> &str {
        self.peers.own_domain()
    }

    /// A signed envelope from this node, for a request sent at once (not queued).
    fn envelope(&self, dest: &str, kind: Kind, content: Value) -> Result<Envelope, Refusal> {
        let Unsigned(mut e) = self.unsigned(dest, kind, content)?;
        e.sign(&self.peers.node_keys().current())
            .map_err(|e| Refusal::Internal(e.to_string()))?;
        Ok(e)
    }

    /// An envelope from this node for the queue: its id and time fixed now, its signature
    /// added by the delivery worker when it sends it ([`sign_queued`]), so no write
    /// transaction waits for an ed25519 signature.
    fn unsigned(&self, dest: &str, kind: Kind, content: Value) -> Result<Unsigned, Refusal> {
        let id = crypto::random_id(16).map_err(|e| Refusal::Internal(e.to_string()))?;
        Envelope::new(
            &id,
            self.own_domain(),
            dest,
            self.clock.now().0,
            kind,
            content,
        )
        .map(Unsigned)
        .map_err(|e| Refusal::Internal(e.to_string()))
    }

    /// A queue row for `env`, sealed under `sealer`'s key (or the node's outbound key).
    fn row(
        &self,
        env: &Unsigned,
        sealer: Option<(u64, &SecretKey)>,
        subject: u64,
        transfers: Vec<(u64, &'static str)>,
    ) -> Result<Outgoing, Refusal> {
        let env = &env.0;
        let json = env
            .to_json()
            .map_err(|e| Refusal::Internal(e.to_string()))?;
        let (id, key) = sealer.unwrap_or((0, &self.queue_key));
        let payload = key
            .seal(&aad(&env.destination), json.as_bytes())
            .map_err(|e| Refusal::Internal(e.to_string()))?;
        Ok(Outgoing {
            dest: env.destination.clone(),
            record: OutboundRecord {
                sealer: id,
                subject,
                payload,
                transfers: Vec::new(),
            },
            transfers,
        })
    }

    /// The peer `dest`, with room in its queue.
    fn peer_with_room(&self, dest: &str) -> Result<Peer, Refusal> {
        let peer = self.peers.get(dest).map_err(|_| Refusal::UnknownPeer {
            peer: dest.to_string(),
        })?;
        let queued = lock(&self.counts).get(dest).copied().unwrap_or(0);
        if queued.max(0) as u64 >= self.limits.queue_max {
            tracing::warn!(
                peer = dest,
                queued,
                "outbound queue full; refusing new envelopes for this peer"
            );
            return Err(Refusal::QueueFull {
                peer: dest.to_string(),
            });
        }
        Ok(peer)
    }

    /// Whether media of `size` bytes fits every peer in `dests` that published the largest
    /// media it takes (a peer whose limit is not known is not refused here; it refuses on
    /// arrival).
    fn media_fits(&self, dests: &[String], size: u64) -> Result<(), Refusal> {
        for d in dests {
            if let Some(limit) = self.peers.media_limit(d)
                && size > limit
            {
                return Err(Refusal::TooLargeForPeer {
                    peer: d.clone(),
                    limit,
                });
            }
        }
        Ok(())
    }

    /// Why the host may not relay a message from `origin`'s user to `peer` (`None`: it may):
    /// `residency` when the user did not allow transfers abroad and the two nodes' regions
    /// differ (or one is not known), `media_limit` when the media is larger than `peer`
    /// published that it takes (a limit not known is not held against it; the peer refuses
    /// on arrival).
    fn relay_withheld(
        &self,
        origin: &Peer,
        peer: &Peer,
        cross_border: bool,
        media_size: Option<u64>,
    ) -> Option<&'static str> {
        let same_region = matches!((&origin.region, &peer.region), (Some(a), Some(b)) if a == b);
        if !cross_border && !same_region {
            return Some("residency");
        }
        if let (Some(size), Some(limit)) = (media_size, self.peers.media_limit(&peer.domain))
            && size > limit
        {
            return Some("media_limit");
        }
        None
    }

    /// The residency rule for local user `user` and `peer`.
    fn residency(&self, peer: &Peer, user: u64, consented: bool) -> Result<(), Refusal> {
        if user & REMOTE_USER_BIT != 0 || consented {
            return Ok(());
        }
        match self.peers.foreign_region(peer) {
            Some(region) => Err(Refusal::Residency {
                peer: peer.domain.clone(),
                region,
            }),
            None => Ok(()),
        }
    }

    fn address(&self, view: &FanoutView<'_>, user: u64) -> Option<String> {
        view.members
            .iter()
            .chain(view.removed)
            .find(|(m, _)| m.user == user)
            .map(|(_, name)| self.full_address(user, name))
    }

    fn full_address(&self, user: u64, name: &str) -> String {
        if user & REMOTE_USER_BIT != 0 {
            name.to_string()
        } else {
            format!("{name}@{}", self.own_domain())
        }
    }

    /// Peers of the remote members (and removed members) of a conversation.
    fn remote_domains(&self, view: &FanoutView<'_>) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (m, name) in view.members.iter().chain(view.removed) {
            if m.user & REMOTE_USER_BIT != 0
                && let Some(d) = address_domain(name)
                && !out.iter().any(|o| o == d)
            {
                out.push(d.to_string());
            }
        }
        out
    }
}

#[derive(Debug)]
struct Inner {
    store: Store,
    master: MasterKey,
    shared: Arc<Shared>,
    consents: Consents,
    workers: Mutex<HashMap<String, Worker>>,
    tasks: Mutex<JoinSet<()>>,
    stop: watch::Receiver<bool>,
}

/// The outbound side of federation. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Outbox {
    inner: Arc<Inner>,
}

fn aad(dest: &str) -> Vec<u8> {
    format!("shanliao/outbound/{dest}").into_bytes()
}

pub fn role_name(r: Role) -> &'static str {
    match r {
        Role::Owner => "owner",
        Role::Admin => "admin",
        Role::Member => "member",
    }
}

pub fn role_from(s: &str) -> Option<Role> {
    match s {
        "owner" => Some(Role::Owner),
        "admin" => Some(Role::Admin),
        "member" => Some(Role::Member),
        _ => None,
    }
}

impl Outbox {
    /// The outbox; workers start for every peer that has envelopes waiting.
    pub async fn start(
        store: Store,
        master: MasterKey,
        peers: Arc<Peers>,
        consents: Consents,
        clock: SharedClock,
        limits: OutboxLimits,
        stop: watch::Receiver<bool>,
    ) -> Result<Outbox, storage::StoreError> {
        let counts = store.outbound_counts().await?;
        let outbox = Outbox {
            inner: Arc::new(Inner {
                shared: Arc::new(Shared {
                    queue_key: master.outbound_key(),
                    peers,
                    clock,
                    limits,
                    failures: Mutex::default(),
                    counts: Mutex::new(
                        counts.iter().map(|(d, n)| (d.clone(), *n as i64)).collect(),
                    ),
                    sent: Mutex::default(),
                }),
                store,
                master,
                consents,
                workers: Mutex::new(HashMap::new()),
                tasks: Mutex::new(JoinSet::new()),
                stop,
            }),
        };
        let dests: Vec<String> = counts.into_iter().map(|(d, _)| d).collect();
        outbox.wake(&dests);
        Ok(outbox)
    }

    /// Waits for every delivery worker to stop (they stop on the shutdown signal).
    pub async fn shutdown(&self) {
        let mut set = std::mem::take(&mut *lock(&self.inner.tasks));
        while set.join_next().await.is_some() {}
    }

    /// (peer, envelopes waiting, failed delivery attempts) for each peer seen since start.
    pub fn delivery_stats(&self) -> Vec<(String, i64, u64)> {
        let failures = lock(&self.inner.shared.failures).clone();
        lock(&self.inner.shared.counts)
            .iter()
            .map(|(p, n)| (p.clone(), *n, failures.get(p).copied().unwrap_or(0)))
            .chain(failures.iter().map(|(p, f)| (p.clone(), 0, *f)))
            .collect()
    }

    /// The database handle the outbox writes its queue to.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Wakes (starting if needed) the workers of `peers`, whose queues just grew.
    pub fn wake(&self, peers: &[String]) {
        if *self.inner.stop.borrow() {
            return; // shutting down: the queue is durable, the next start delivers it
        }
        for p in peers {
            *lock(&self.inner.shared.counts)
                .entry(p.clone())
                .or_default() += 1;
            let mut workers = lock(&self.inner.workers);
            if let Some(w) = workers.get(p) {
                w.wake.notify_one();
                continue;
            }
            let w = Worker::default();
            let signals = w.clone();
            workers.insert(p.clone(), w);
            drop(workers);
            let inner = self.inner.clone();
            let dest = p.clone();
            lock(&self.inner.tasks).spawn(async move {
                deliver(inner, dest, signals).await;
            });
        }
    }

    /// Waits, after a send queued envelopes for `peers`, until at most `pace_depth` envelopes
    /// wait for each of them — or `pace_wait` has passed, the peer's worker is backing off (it
    /// is unreachable), or the node is stopping. Everything is already durably queued; this
    /// only decides when the sender hears so.
    pub async fn pace(&self, peers: &[String]) {
        let limits = self.inner.shared.limits;
        if limits.pace_depth == 0 || peers.is_empty() {
            return;
        }
        // On the node's clock, so tests move it instead of waiting.
        let mut bound = self.inner.shared.clock.sleep(limits.pace_wait);
        let mut stop = self.inner.stop.clone();
        for p in peers {
            let Some((progress, backing_off)) = lock(&self.inner.workers)
                .get(p)
                .map(|w| (w.progress.clone(), w.backing_off.clone()))
            else {
                continue;
            };
            loop {
                // Registered before the depth is read, so progress made in between still
                // wakes this wait.
                let progressed = progress.notified();
                tokio::pin!(progressed);
                progressed.as_mut().enable();
                if backing_off.load(Ordering::Relaxed) || *stop.borrow() {
                    break;
                }
                let depth = lock(&self.inner.shared.counts).get(p).copied().unwrap_or(0);
                if depth.max(0) as u64 <= limits.pace_depth {
                    break;
                }
                tokio::select! {
                    _ = &mut progressed => {}
                    _ = &mut bound => return,
                    _ = stop.changed() => return,
                }
            }
        }
    }

    /// `peer` just contacted this node: it is up, so stop backing off.
    pub fn contacted_by(&self, peer: &str) {
        if let Some(w) = lock(&self.inner.workers).get(peer)
            && w.backing_off.load(Ordering::Relaxed)
        {
            w.reset.notify_one();
        }
    }

    /// Whether `env` is, byte for byte, a submission this node signed and sent to another host
    /// (which now relays it back inside its own envelope). Such a submission needs no second
    /// signature check: it is exactly what this node signed. Anything else — a different byte,
    /// a forgotten id — answers false and is verified as usual. Each digest is used once.
    pub fn relayed_own_submission(&self, env: &Envelope) -> bool {
        if env.origin != self.inner.shared.own_domain() {
            return false;
        }
        let Some(d) = digest(env) else { return false };
        let key = id_hash(&env.id);
        let mut sent = lock(&self.inner.shared.sent);
        match sent.by_id.get(&key) {
            Some(known) if *known == d => {
                sent.by_id.remove(&key);
                true
            }
            _ => false,
        }
    }

    /// A signed envelope from this node.
    pub fn envelope(&self, dest: &str, kind: Kind, content: Value) -> Result<Envelope, Refusal> {
        self.inner.shared.envelope(dest, kind, content)
    }

    /// Checks the residency rule before anything is written (the in-transaction fan-out
    /// checks again): may `user`'s data go to every peer in `dests`?
    pub async fn check_residency(&self, user: u64, dests: &[String]) -> Result<(), Refusal> {
        let consented = self
            .inner
            .consents
            .require(user, Purpose::CrossBorderTransfer)
            .await
            .is_ok();
        for d in dests {
            let peer = self.inner.shared.peer_with_room(d)?;
            self.inner.shared.residency(&peer, user, consented)?;
        }
        Ok(())
    }

    /// Learns the published limits of the peers in `dests` not known yet, waiting at most
    /// `wait` in all; a peer that cannot be asked stays unknown.
    pub async fn learn_limits(&self, dests: &[String], wait: Duration) {
        let peers = &self.inner.shared.peers;
        let _ = tokio::time::timeout(wait, async {
            for d in dests.iter().filter(|d| peers.media_limit(d).is_none()) {
                if let Err(e) = peers.learn_limits(d).await {
                    tracing::debug!(peer = %d, error = %e, "a peer's limits are not known");
                }
            }
        })
        .await;
    }

    /// Fan-out of a local user's message: to the host when another node hosts the
    /// conversation; as host, to the node of every remote member. Media larger than a
    /// receiving node published that it takes is refused (nothing written).
    pub fn message_fanout(
        &self,
        author: u64,
        author_key: SecretKey,
        msg_id: [u8; 16],
        ts: u64,
        body: WireBody,
    ) -> Fanout {
        let this = self.inner.shared.clone();
        let media_size = match &body {
            WireBody::Media { media, .. } => Some(media.size),
            _ => None,
        };
        Fanout::about(author, self.inner.store.handles(), move |view| {
            let conv = view.conversation.id.clone();
            let host = conversation_host(&conv).unwrap_or_default().to_string();
            let sender = this
                .address(view, author)
                .ok_or_else(|| Refusal::Internal("author is not a member".into()))?;
            let consented = view.cross_border.contains(&author);
            let submit = |dest: &str| {
                this.unsigned(
                    dest,
                    Kind::Message,
                    json!(MessageContent::Submit {
                        conversation: conv.clone(),
                        message_id: hex(&msg_id),
                        sender: sender.clone(),
                        ts,
                        body: body.clone(),
                        cross_border: consented,
                    }),
                )
            };
            let sealer = Some((author, &author_key));
            if host != this.own_domain() {
                if let Some(size) = media_size {
                    // Every node that stores the message fetches the bytes.
                    let mut fetchers = this.remote_domains(view);
                    if !fetchers.contains(&host) {
                        fetchers.push(host.clone());
                    }
                    this.media_fits(&fetchers, size)?;
                }
                let peer = this.peer_with_room(&host)?;
                this.residency(&peer, author, consented)?;
                let env = submit(&host)?;
                return Ok(vec![this.row(
                    &env,
                    sealer,
                    author,
                    vec![(author, "message")],
                )?]);
            }
            let seq = match view.events.first() {
                Some(storage::EventRecord::Message { seq }) => *seq,
                _ => return Err(Refusal::Internal("no message event".into())),
            };
            let dests = this.remote_domains(view);
            if let Some(size) = media_size {
                this.media_fits(&dests, size)?;
            }
            for d in &dests {
                let peer = this.peer_with_room(d)?;
                this.residency(&peer, author, consented)?;
            }
            // Signed by each delivery worker with the envelope around it (`sign_queued`).
            let submission = Box::new(submit(this.own_domain())?.0);
            let mut out = Vec::with_capacity(dests.len());
            for d in &dests {
                let env = this.unsigned(
                    d,
                    Kind::Message,
                    json!(MessageContent::Hosted {
                        conversation: conv.clone(),
                        seq,
                        submission: submission.clone(),
                        withheld: Vec::new(),
                    }),
                )?;
                out.push(this.row(&env, sealer, author, vec![(author, "message")])?);
            }
            Ok(out)
        })
    }

    /// Fan-out, as host, of a member's message that arrived from their node: the original
    /// submission, unchanged, to the node of every remote member (the sender's included) —
    /// except the nodes the host may not relay it to, whose copies are withheld (not sent, and
    /// logged without personal data): a node of a region other than the sender's node's when
    /// the submission does not state `cross_border`, and a node whose published media limit
    /// is smaller than the message's media. The copy to the sender's node names the nodes
    /// withheld, so the sender is told.
    pub fn relay_fanout(
        &self,
        author: u64,
        author_key: SecretKey,
        submission: Envelope,
        cross_border: bool,
        media_size: Option<u64>,
    ) -> Fanout {
        let this = self.inner.shared.clone();
        let submission = Box::new(submission);
        Fanout::about(author, self.inner.store.handles(), move |view| {
            let seq = match view.events.first() {
                Some(storage::EventRecord::Message { seq }) => *seq,
                _ => return Err(Refusal::Internal("no message event".into())),
            };
            let origin = submission.origin.clone();
            let origin_peer = this.peer_with_room(&origin)?;
            let dests = this.remote_domains(view);
            let mut withheld = Vec::new();
            let mut sending = Vec::new();
            for d in dests {
                let peer = this.peer_with_room(&d)?;
                if d != origin
                    && let Some(reason) =
                        this.relay_withheld(&origin_peer, &peer, cross_border, media_size)
                {
                    tracing::info!(peer = %d, reason, "a relayed message is withheld from a peer");
                    withheld.push(d);
                    continue;
                }
                sending.push(d);
            }
            withheld.sort();
            let mut out = Vec::new();
            for d in sending {
                let env = this.unsigned(
                    &d,
                    Kind::Message,
                    json!(MessageContent::Hosted {
                        conversation: view.conversation.id.clone(),
                        seq,
                        submission: submission.clone(),
                        withheld: if d == origin {
                            withheld.clone()
                        } else {
                            Vec::new()
                        },
                    }),
                )?;
                out.push(this.row(&env, Some((author, &author_key)), 0, Vec::new())?);
            }
            Ok(out)
        })
    }

    /// Fan-out, as host, of a conversation's new state after `actor` changed it. A local
    /// member whose data may not go to a peer (residency) is left out of what that peer
    /// receives; the actor's own change is refused instead.
    pub fn state_fanout(&self, actor: u64) -> Fanout {
        let this = self.inner.shared.clone();
        Fanout::new(self.inner.store.handles(), move |view| {
            let conv = view.conversation;
            let actor_address = this
                .address(view, actor)
                .ok_or_else(|| Refusal::Internal("actor is not a member".into()))?;
            let mut out = Vec::new();
            for d in this.remote_domains(view) {
                let peer = this.peer_with_room(&d)?;
                this.residency(&peer, actor, view.cross_border.contains(&actor))?;
                let foreign = this.peers.foreign_region(&peer).is_some();
                let mut members = Vec::new();
                let mut transfers = Vec::new();
                for (m, name) in view.members {
                    let local = m.user & REMOTE_USER_BIT == 0;
                    if local && foreign && !view.cross_border.contains(&m.user) {
                        continue;
                    }
                    if local {
                        transfers.push((m.user, "membership"));
                    }
                    members.push(WireMember {
                        user: this.full_address(m.user, name),
                        role: role_name(m.role).to_string(),
                    });
                }
                let env = this.unsigned(
                    &d,
                    Kind::Membership,
                    json!(MembershipContent::State {
                        conversation: conv.id.clone(),
                        kind: match conv.kind {
                            ConvKind::Direct => "direct",
                            ConvKind::Group => "group",
                        }
                        .into(),
                        name: conv.name.clone(),
                        public: conv.public,
                        actor: actor_address.clone(),
                        members,
                    }),
                )?;
                let subject = if actor & REMOTE_USER_BIT == 0 {
                    actor
                } else {
                    0
                };
                out.push(this.row(&env, None, subject, transfers)?);
            }
            Ok(out)
        })
    }

    /// Fan-out of a recall: as host to every remote member's node, otherwise to the host.
    pub fn recall_fanout(&self, author: u64) -> Fanout {
        let this = self.inner.shared.clone();
        Fanout::about(author, self.inner.store.handles(), move |view| {
            let conv = view.conversation.id.clone();
            let host = conversation_host(&conv).unwrap_or_default().to_string();
            let seq = match view.events.first() {
                Some(storage::EventRecord::Recall { seq }) => *seq,
                _ => return Err(Refusal::Internal("no recall event".into())),
            };
            if host != this.own_domain() {
                let peer = this.peer_with_room(&host)?;
                this.residency(&peer, author, view.cross_border.contains(&author))?;
                let sender = this
                    .address(view, author)
                    .ok_or_else(|| Refusal::Internal("author is not a member".into()))?;
                let env = this.unsigned(
                    &host,
                    Kind::Recall,
                    json!(RecallContent::Request {
                        conversation: conv,
                        seq,
                        sender
                    }),
                )?;
                // It names its author (their address) to the host.
                return Ok(vec![this.row(
                    &env,
                    None,
                    author,
                    vec![(author, "recall")],
                )?]);
            }
            let mut out = Vec::new();
            for d in this.remote_domains(view) {
                this.peer_with_room(&d)?;
                let env = this.unsigned(
                    &d,
                    Kind::Recall,
                    json!(RecallContent::Hosted {
                        conversation: conv.clone(),
                        seq
                    }),
                )?;
                out.push(this.row(&env, None, 0, Vec::new())?);
            }
            Ok(out)
        })
    }

    /// A change asked of the host of a conversation on behalf of local member `actor`.
    pub async fn change_request(
        &self,
        actor: u64,
        actor_address: &str,
        conv_id: &str,
        change: WireChange,
    ) -> Result<Vec<String>, Refusal> {
        let host = conversation_host(conv_id).unwrap_or_default().to_string();
        self.check_residency(actor, std::slice::from_ref(&host))
            .await?;
        let env = self.inner.shared.unsigned(
            &host,
            Kind::Membership,
            json!(MembershipContent::Request {
                conversation: conv_id.to_string(),
                actor: actor_address.to_string(),
                change,
            }),
        )?;
        let row = self
            .inner
            .shared
            .row(&env, None, actor, vec![(actor, "membership")])?;
        let peers = self
            .inner
            .store
            .enqueue(vec![row], self.inner.shared.clock.now())
            .await
            .map_err(|e| Refusal::Internal(e.to_string()))?;
        self.wake(&peers);
        Ok(peers)
    }

    /// Asks every peer that received `user`'s data to erase it; each acknowledgement is
    /// tracked (`Store::erasure_status`). Returns the peers asked.
    pub async fn request_erasure(&self, user: u64, address: &str) -> Result<Vec<String>, Refusal> {
        let store = &self.inner.store;
        let transfers = store
            .transfers_of(user)
            .await
            .map_err(|e| Refusal::Internal(e.to_string()))?;
        // Every peer that may hold some of it: what reached it (delivered, refused, or counted
        // at queueing before schema 5) and what still waits for it (the erasure request
        // queues behind it); not peers to which it was only ever dropped.
        let mut peers: Vec<String> = transfers
            .into_iter()
            .filter(|t| t.2 != Disclosure::Dropped.name() && t.2 != Disclosure::Withheld.name())
            .map(|t| t.0)
            .collect();
        peers.extend(
            store
                .pending_peers_of(user)
                .await
                .map_err(|e| Refusal::Internal(e.to_string()))?,
        );
        peers.sort();
        peers.dedup();
        let mut rows = Vec::new();
        for p in &peers {
            let reference = format!("{user:016x}");
            let env = self.inner.shared.unsigned(
                p,
                Kind::Erasure,
                json!(federation::ErasureContent {
                    user: address.to_string(),
                    reference: reference.clone(),
                }),
            )?;
            let expected = super::inbox::erasure_ack_digest(&federation::ErasureAckContent {
                user: address.to_string(),
                reference,
                erasure: env.0.id.clone(),
            });
            rows.push((self.inner.shared.row(&env, None, 0, Vec::new())?, expected));
        }
        let woken = store
            .request_erasure(user, rows, self.inner.shared.clock.now())
            .await
            .map_err(|e| Refusal::Internal(e.to_string()))?;
        self.wake(&woken);
        Ok(peers)
    }

    /// The peers already asked to erase `user`'s data.
    pub async fn erasure_asked(&self, user: u64) -> Vec<String> {
        self.inner
            .store
            .erasure_status(user)
            .await
            .map(|v| v.into_iter().map(|(p, _, _)| p).collect())
            .unwrap_or_default()
    }

    /// The acknowledgement of an erasure, as a queue row for its origin.
    pub fn erasure_ack(
        &self,
        dest: &str,
        user: &str,
        reference: &str,
        erasure: &str,
    ) -> Result<Outgoing, Refusal> {
        let env = self.inner.shared.unsigned(
            dest,
            Kind::ErasureAck,
            json!(federation::ErasureAckContent {
                user: user.to_string(),
                reference: reference.to_string(),
                erasure: erasure.to_string(),
            }),
        )?;
        self.inner.shared.row(&env, None, 0, Vec::new())
    }

    // ---- Profiles follow their owners (issue 25) ------------------------------------------

    /// What pushing a change of local user `user`'s nickname or avatar needs, read before the
    /// change: every peer that may hold the user (what reached it, and what still waits for it
    /// — as for an erasure request — and every node of a conversation they are in) and that the
    /// residency rule lets their data go to now. A
    /// peer of another region is left out while the user has not granted
    /// `cross_border_transfer` (its copy then stays as it was); so is a peer no longer
    /// configured or whose queue is full.
    pub async fn profile_push(&self, user: u64) -> Result<ProfilePush, Refusal> {
        let peers = self.profile_holders(user).await?;
        let consented = self
            .inner
            .consents
            .require(user, Purpose::CrossBorderTransfer)
            .await
            .is_ok();
        let shared = &self.inner.shared;
        let peers = peers
            .into_iter()
            .filter(|p| {
                shared
                    .peer_with_room(p)
                    .and_then(|peer| shared.residency(&peer, user, consented))
                    .is_ok()
            })
            .collect();
        Ok(ProfilePush {
            shared: shared.clone(),
            user,
            peers,
        })
    }

    /// Whether peer `peer` may fetch local user `user`'s avatar image: it is one of the peers
    /// a change of their profile goes to ([`Outbox::profile_push`]: it may hold the user, and
    /// the residency rule lets their data go to it now), whatever its queue holds.
    pub async fn may_fetch_avatar(&self, user: u64, peer: &str) -> Result<bool, Refusal> {
        if !self.profile_holders(user).await?.iter().any(|p| p == peer) {
            return Ok(false);
        }
        let consented = self
            .inner
            .consents
            .require(user, Purpose::CrossBorderTransfer)
            .await
            .is_ok();
        let shared = &self.inner.shared;
        let Ok(p) = shared.peers.get(peer) else {
            return Ok(false);
        };
        Ok(shared.residency(&p, user, consented).is_ok())
    }

    /// Every peer that may hold local user `user` (see [`Outbox::profile_push`]), without
    /// this node, sorted.
    async fn profile_holders(&self, user: u64) -> Result<Vec<String>, Refusal> {
        let store = &self.inner.store;
        let internal = |e: storage::StoreError| Refusal::Internal(e.to_string());
        let mut peers: Vec<String> = store
            .transfers_of(user)
            .await
            .map_err(internal)?
            .into_iter()
            .filter(|t| t.2 != Disclosure::Dropped.name() && t.2 != Disclosure::Withheld.name())
            .map(|t| t.0)
            .collect();
        peers.extend(store.pending_peers_of(user).await.map_err(internal)?);
        // And every node that shows the user in a conversation: its host, and the nodes of its
        // remote members (a group's host relays the user's messages to them; this node tells
        // them of the user's new name itself).
        let mut remote = Vec::new();
        for s in store.conversations_of(user).await.map_err(internal)? {
            if let Some(host) = conversation_host(&s.conversation.id) {
                peers.push(host.to_string());
            }
            remote.extend(
                s.members
                    .iter()
                    .map(|m| m.user)
                    .filter(|u| u & REMOTE_USER_BIT != 0),
            );
        }
        remote.sort_unstable();
        remote.dedup();
        for (_, r) in store.remote_users(remote).await.map_err(internal)? {
            if let Some(d) = address_domain(&r.address) {
                peers.push(d.to_string());
            }
        }
        let own = self.inner.shared.own_domain().to_string();
        peers.retain(|p| *p != own);
        peers.sort();
        peers.dedup();
        Ok(peers)
    }

    // ---- Friends across nodes (issue 22) --------------------------------------------------

    /// A signed `friend` envelope from local user `user` to the node `dest`, as a queue row
    /// sealed under their data key (an erasure makes what still waits unreadable, so it is
    /// dropped) and counted in their disclosure log as kind `friend`. Refused before anything
    /// is written when the residency rule forbids it or the peer's queue is full.
    pub async fn friend_row(
        &self,
        user: u64,
        key: &SecretKey,
        dest: &str,
        content: federation::FriendContent,
    ) -> Result<Outgoing, Refusal> {
        self.check_residency(user, &[dest.to_string()]).await?;
        let env = self
            .inner
            .shared
            .unsigned(dest, Kind::Friend, json!(content))?;
        self.inner
            .shared
            .row(&env, Some((user, key)), user, vec![(user, "friend")])
    }
}

impl Outbox {
    // ---- Communities across nodes (issue 23) ---------------------------------------------

    /// A `community-event` envelope to `dest`, as a queue row sealed under the node's
    /// outbound key: it names a community of this node, post and comment numbers, and
    /// `dest`'s own users, nothing of anyone else. Refused when `dest` is not a peer or its
    /// queue is full (the event is then not sent: members read the feed anyway).
    pub fn community_event_row(
        &self,
        dest: &str,
        content: federation::CommunityEventContent,
    ) -> Result<Outgoing, Refusal> {
        self.inner.shared.peer_with_room(dest)?;
        let env = self
            .inner
            .shared
            .unsigned(dest, Kind::CommunityEvent, json!(content))?;
        self.inner.shared.row(&env, None, 0, Vec::new())
    }
}

/// The peers a profile change goes to (see [`Outbox::profile_push`]).
#[derive(Debug)]
pub struct ProfilePush {
    shared: Arc<Shared>,
    user: u64,
    peers: Vec<String>,
}

impl ProfilePush {
    /// One signed `profile` envelope per peer with the new nickname and avatar (nothing else
    /// of the profile), sealed under the user's data key (an erasure removes what still waits)
    /// and counted in their disclosure log once its fate is known. `image` is the reference
    /// to the avatar image (`super::avatar::reference`), if the card shows one.
    pub fn rows(
        &self,
        key: &SecretKey,
        card: &crate::accounts::Card,
        image: Option<&federation::MediaRef>,
    ) -> Result<Vec<Outgoing>, Refusal> {
        let (avatar, avatar_media) = super::avatar::wire(card.avatar.as_ref(), image);
        let content = json!(federation::ProfileContent {
            user: format!("{}@{}", card.handle, self.shared.own_domain()),
            nickname: card.nickname.clone(),
            avatar,
            avatar_media,
            fields: None,
        });
        self.peers
            .iter()
            .map(|p| {
                let env = self.shared.unsigned(p, Kind::Profile, content.clone())?;
                self.shared.row(
                    &env,
                    Some((self.user, key)),
                    self.user,
                    vec![(self.user, "profile")],
                )
            })
            .collect()
    }
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A peer's answer for one envelope of a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// `{}`: applied, now or before.
    Applied,
    /// An error with `"retry": true`: send it again later.
    Retry,
    /// Any other answer: refused for good.
    Refused,
}

/// The per-envelope answers of a transaction's `{"results":{id: …}}` (empty if it is not that).
fn results_of(answer: &[u8]) -> HashMap<String, Answer> {
    let Ok(v) = federation::parse_json(answer) else {
        return HashMap::new();
    };
    let Some(results) = v.get("results").and_then(Value::as_object) else {
        return HashMap::new();
    };
    results
        .iter()
        .map(|(id, r)| {
            let a = if r.as_object().is_some_and(|o| o.is_empty()) {
                Answer::Applied
            } else if r.get("retry").and_then(Value::as_bool) == Some(true) {
                Answer::Retry
            } else {
                Answer::Refused
            };
            (id.clone(), a)
        })
        .collect()
}

/// One peer's delivery loop (see the module documentation).
async fn deliver(inner: Arc<Inner>, dest: String, signals: Worker) {
    let Worker {
        wake,
        reset,
        backing_off,
        progress,
    } = signals;
    let mut stop = inner.stop.clone();
    let peer = match inner.shared.peers.get(&dest) {
        Ok(p) => p,
        Err(_) => {
            tracing::warn!(
                peer = %dest,
                "envelopes are queued for a node that is no longer a peer; kept until it is one again"
            );
            let _ = stop.wait_for(|s| *s).await;
            return;
        }
    };
    let foreign = inner.shared.peers.foreign_region(&peer).is_some();
    let mut conn: Option<Connection> = None;
    let mut attempt: u32 = 0;
    let mut keys: HashMap<u64, Option<SecretKey>> = HashMap::new();
    loop {
        if *stop.borrow() {
            return;
        }
        let batch = match inner
            .store
            .outbound_batch(dest.clone(), MAX_TXN_ENVELOPES, MAX_TXN_BYTES - (64 << 10))
            .await
        {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(peer = %dest, error = %e, "reading the outbound queue failed");
                Vec::new()
            }
        };
        if batch.is_empty() {
            lock(&inner.shared.counts).insert(dest.clone(), 0);
            progress.notify_waiters();
            tokio::select! {
                _ = wake.notified() => continue,
                _ = stop.changed() => return,
            }
        }
        let mut drop_seqs = Vec::new();
        let mut envelopes = Vec::new();
        let now = inner.shared.clock.now().0;
        for (seq, rec) in &batch {
            if rec.subject != 0
                && foreign
                && inner
                    .consents
                    .require(rec.subject, Purpose::CrossBorderTransfer)
                    .await
                    .is_err()
            {
                tracing::info!(peer = %dest, "dropped a queued envelope: its user revoked cross-border transfer");
                drop_seqs.push(*seq);
                continue;
            }
            let key = if rec.sealer == 0 {
                Some(inner.shared.queue_key.clone())
            } else {
                match keys.get(&rec.sealer) {
                    Some(k) => k.clone(),
                    None => {
                        let k = load_key(&inner, rec.sealer).await;
                        keys.insert(rec.sealer, k.clone());
                        k
                    }
                }
            };
            let opened = key.and_then(|k| k.open(&aad(&dest), &rec.payload).ok());
            match opened.and_then(|p| serde_json::from_slice::<Value>(&p).ok()) {
                // A receiver refuses envelopes older than MAX_ENVELOPE_AGE_MS; what waited
                // that long (less an hour for clocks) is dropped here instead of sent.
                Some(v)
                    if v.get("ts").and_then(Value::as_u64).is_some_and(|ts| {
                        now.saturating_sub(ts) > MAX_ENVELOPE_AGE_MS - 3_600_000
                    }) =>
                {
                    tracing::info!(peer = %dest, "dropped a queued envelope that waited too long");
                    drop_seqs.push(*seq);
                }
                Some(v) => envelopes.push((*seq, v)),
                None => {
                    tracing::info!(peer = %dest, "dropped a queued envelope whose data key is gone (erased user)");
                    drop_seqs.push(*seq);
                }
            }
        }
        if !drop_seqs.is_empty() {
            let dropped = drop_seqs
                .into_iter()
                .map(|s| (s, Disclosure::Dropped))
                .collect();
            remove_done(&inner, &dest, dropped, &progress).await;
        }
        let (envelopes, unsignable) = sign_queued(inner.shared.clone(), envelopes).await;
        if !unsignable.is_empty() {
            let dropped = unsignable
                .into_iter()
                .map(|s| (s, Disclosure::Dropped))
                .collect();
            remove_done(&inner, &dest, dropped, &progress).await;
        }
        if envelopes.is_empty() {
            continue;
        }
        let first = envelopes.first().map_or(0, |e| e.0);
        let last = envelopes.last().map_or(0, |e| e.0);
        let path = format!("/_federation/v1/transactions/{first}-{last}");
        let body = json!({
            "origin": inner.shared.peers.own_domain(),
            "envelopes": envelopes.iter().map(|e| &e.1).collect::<Vec<_>>(),
        });
        let body = Bytes::from(serde_json::to_vec(&body).unwrap_or_default());
        if conn.as_ref().is_none_or(|c| !c.is_open()) {
            conn = inner.shared.peers.connect(&peer).await.ok();
        }
        let outcome = match conn.as_mut() {
            Some(c) => inner
                .shared
                .peers
                .send(c, &peer, Method::PUT, &path, body)
                .await
                .ok(),
            None => None,
        };
        let retry = match outcome {
            Some((StatusCode::OK, answer)) => {
                let answers = results_of(&answer);
                let again: Vec<&String> = answers
                    .iter()
                    .filter(|(_, a)| **a == Answer::Retry)
                    .map(|(id, _)| id)
                    .collect();
                let done: Vec<(u64, Disclosure)> = envelopes
                    .iter()
                    .filter_map(|(seq, v)| {
                        let id = v.get("id").and_then(Value::as_str).unwrap_or_default();
                        match answers.get(id) {
                            Some(Answer::Retry) => None,
                            Some(Answer::Applied) => Some((*seq, Disclosure::Delivered)),
                            // Refused, or not answered at all: it reached the peer, which did
                            // not take it.
                            _ => Some((*seq, Disclosure::Refused)),
                        }
                    })
                    .collect();
                tracing::debug!(peer = %dest, delivered = done.len(), "transaction delivered");
                remove_done(&inner, &dest, done, &progress).await;
                !again.is_empty()
            }
            Some((status, _))
                if status.is_server_error() || matches!(status.as_u16(), 401 | 403 | 408 | 429) =>
            {
                tracing::warn!(peer = %dest, status = status.as_u16(), "peer did not take a transaction; will retry");
                true
            }
            Some((status, _)) => {
                tracing::warn!(
                    peer = %dest,
                    status = status.as_u16(),
                    envelopes = envelopes.len(),
                    "peer refused a transaction for good; its envelopes are dropped"
                );
                let all = envelopes
                    .iter()
                    .map(|e| (e.0, Disclosure::Refused))
                    .collect();
                remove_done(&inner, &dest, all, &progress).await;
                false
            }
            None => {
                conn = None;
                true
            }
        };
        if !retry {
            attempt = 0;
            continue;
        }
        attempt = attempt.saturating_add(1);
        let cap = inner.shared.limits.retry_max;
        let delay = Duration::from_secs(1)
            .saturating_mul(1u32 << (attempt - 1).min(20))
            .min(cap);
        let mut r = [0u8; 4];
        let _ = crypto::random_bytes(&mut r);
        let frac = f64::from(u32::from_le_bytes(r)) / f64::from(u32::MAX);
        let wait = delay.mul_f64(0.5 + frac / 2.0);
        tracing::debug!(peer = %dest, attempt, wait_ms = wait.as_millis() as u64, "backing off");
        // The wait starts on the node's clock before the failure is counted, so whoever sees
        // the count (a test moving a manual clock) moves time for this wait.
        let backoff = inner.shared.clock.sleep(wait);
        *lock(&inner.shared.failures)
            .entry(dest.clone())
            .or_default() += 1;
        backing_off.store(true, Ordering::Relaxed);
        progress.notify_waiters(); // sends pacing on this peer stop waiting for it
        tokio::select! {
            _ = backoff => {}
            _ = reset.notified() => { attempt = 0; }
            _ = stop.changed() => return,
        }
        backing_off.store(false, Ordering::Relaxed);
    }
}

/// Signs the queued envelopes about to be sent (on the blocking pool: a hundred signatures
/// are milliseconds of CPU): each of this node's that is not signed yet, and first the
/// `submit` it carries when this node is the host relaying its own user's message. A `submit`
/// to another host is remembered once signed ([`Outbox::relayed_own_submission`]). Envelopes
/// queued already signed (by a node before this change) pass unchanged. Returns what to send
/// and the queue numbers of what could not be signed (logged, dropped).
async fn sign_queued(
    shared: Arc<Shared>,
    envelopes: Vec<(u64, Value)>,
) -> (Vec<(u64, Value)>, Vec<u64>) {
    let job = tokio::task::spawn_blocking(move || {
        let key = shared.peers.node_keys().current();
        let mut out = Vec::with_capacity(envelopes.len());
        let mut failed = Vec::new();
        for (seq, v) in envelopes {
            if is_signed(&v) {
                out.push((seq, v));
                continue;
            }
            match sign_one(&shared, &key, v) {
                Ok(v) => out.push((seq, v)),
                Err(e) => {
                    tracing::error!(error = %e, "a queued envelope could not be signed; dropped");
                    failed.push(seq);
                }
            }
        }
        (out, failed)
    });
    match job.await {
        Ok(r) => r,
        Err(e) => {
            // Only a panic ends up here; the batch stays queued and is tried again.
            tracing::error!(error = %e, "signing queued envelopes failed");
            (Vec::new(), Vec::new())
        }
    }
}

fn is_signed(v: &Value) -> bool {
    v.get("signatures")
        .and_then(Value::as_object)
        .is_some_and(|m| !m.is_empty())
}

fn sign_one(
    shared: &Shared,
    key: &federation::NodeKey,
    v: Value,
) -> Result<Value, federation::EnvelopeError> {
    let malformed = |e: serde_json::Error| federation::EnvelopeError::Malformed(e.to_string());
    let mut env: Envelope = serde_json::from_value(v).map_err(malformed)?;
    if env.kind == Kind::Message
        && let Some(inner) = env.content.get_mut("submission")
        && !is_signed(inner)
        && inner.get("origin").and_then(Value::as_str) == Some(shared.own_domain())
    {
        let mut submission: Envelope = serde_json::from_value(inner.take()).map_err(malformed)?;
        submission.sign(key)?;
        *inner = serde_json::to_value(&submission).map_err(malformed)?;
    }
    env.sign(key)?;
    if env.kind == Kind::Message
        && env.content.get("type").and_then(Value::as_str) == Some("submit")
    {
        shared.remember_sent(&env);
    }
    serde_json::to_value(&env).map_err(malformed)
}

/// Takes delivered (or dropped) envelopes off `dest`'s queue, lowers its count for the queue
/// bound, and wakes the sends pacing on it.
async fn remove_done(inner: &Inner, dest: &str, seqs: Vec<(u64, Disclosure)>, progress: &Notify) {
    let n = seqs.len() as i64;
    let now = inner.shared.clock.now();
    match inner.store.outbound_done(dest.to_string(), seqs, now).await {
        Ok(()) => {
            *lock(&inner.shared.counts)
                .entry(dest.to_string())
                .or_default() -= n;
        }
        Err(e) => tracing::error!(peer = %dest, error = %e, "updating the outbound queue failed"),
    }
    progress.notify_waiters();
}

/// The data key of a local or remote user, if they still exist.
async fn load_key(inner: &Inner, user: u64) -> Option<SecretKey> {
    let found = inner.store.wrapped_keys(vec![user]).await.ok()?;
    let (_, _, wrapped) = found.into_iter().next()?;
    inner.master.unwrap_data_key(user, &wrapped).ok()
}
