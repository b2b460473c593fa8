//! `Inbox`: requests and envelopes from peers. It authenticates a request (signature header,
//! destination, clock skew, allowed origin, key fetched if unknown), makes transactions
//! idempotent (same id and body → the first answer; another body → conflict), checks every
//! envelope on its own (origin, destination, signature, that users it names as sender or actor
//! belong to its origin, that only a conversation's host speaks for it) and applies it at most
//! once.

mod community_events;
mod friendship;

use std::sync::Arc;

use bytes::Bytes;
use federation::{
    Envelope, ErasureAckContent, ErasureContent, Kind, MAX_TXN_BYTES, MAX_TXN_ENVELOPES,
    MembershipContent, MessageContent, ProfileContent, RecallContent, RequestAuth, Transaction,
    WireBody, WireChange, address_domain, conversation_host, ts_fresh, valid_txn_id,
};
use futures_util::future::join_all;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::media_ref::remote_media_id;
use super::outbox::{Outbox, role_from};
use super::{Directory, FedError, Peers};
use crate::crypto::{self, MasterKey, SecretKey};
use crate::hub::Hub;
use crate::messaging::{self, Body, MAX_TEXT_BYTES, rules};
use crate::time::{Millis, SharedClock};
use storage::{ConvKind, Inbound, Notify, ReplicaState, Role, Store, Submission};

/// Settings the inbox applies as host.
#[derive(Debug, Clone, Copy)]
pub struct HostLimits {
    pub recall_window_ms: u64,
    pub max_group_members: usize,
    /// Largest media a message from another node may refer to (`media.max_bytes`).
    pub max_media_bytes: u64,
    /// The `[friends]` limits, applied to requests from users of other nodes too.
    pub friend_requests: storage::RequestLimits,
}

/// The inbound side of federation.
#[derive(Debug, Clone)]
pub struct Inbox {
    store: Store,
    master: MasterKey,
    peers: Arc<Peers>,
    outbox: Outbox,
    directory: Directory,
    hub: Arc<Hub>,
    clock: SharedClock,
    limits: HostLimits,
    fetcher: super::fetch::Fetcher,
}

/// A message ready to be written.
#[derive(Debug)]
enum Prepared {
    Submit(Submission),
    Hosted {
        origin: String,
        envelope_id: String,
        conversation: String,
        seq: u64,
        author: u64,
        msg_id: [u8; 16],
        ts: Millis,
        body_sealed: Vec<u8>,
        media: Option<storage::IncomingMedia>,
        /// Peers the host withheld this node's own user's message from (only when the
        /// submission is this node's).
        withheld: Vec<String>,
    },
}

/// Most peers a host's relay may name as withheld.
const MAX_WITHHELD: usize = 256;

/// An envelope that passed its checks.
#[derive(Debug)]
enum Checked {
    Message(Prepared),
    Other(Envelope),
}

/// Why one envelope was not applied: an error code and message, and whether to send it again.
#[derive(Debug)]
struct Rejection {
    code: &'static str,
    message: String,
    retry: bool,
}

fn reject(code: &'static str, message: impl Into<String>) -> Rejection {
    Rejection {
        code,
        message: message.into(),
        retry: false,
    }
}

impl From<FedError> for Rejection {
    fn from(e: FedError) -> Self {
        match e {
            FedError::Store(_) | FedError::Crypto(_) => {
                tracing::error!(error = %e, "applying an envelope failed");
                Rejection {
                    code: "internal",
                    message: "internal error".into(),
                    retry: true,
                }
            }
            FedError::Peer(p) => Rejection {
                code: "peer",
                message: p.to_string(),
                retry: true,
            },
            other => reject("invalid", other.to_string()),
        }
    }
}

impl From<storage::StoreError> for Rejection {
    fn from(e: storage::StoreError) -> Self {
        FedError::Store(e).into()
    }
}

impl From<crypto::CryptoError> for Rejection {
    fn from(e: crypto::CryptoError) -> Self {
        FedError::Crypto(e).into()
    }
}

/// Checks an envelope's origin signature with the origin's keys (fetched if needed), and
/// that the key was valid when the envelope was made.
pub async fn verify_envelope(peers: &Peers, env: &Envelope) -> Result<(), FedError> {
    let ids = env.origin_key_ids();
    if ids.is_empty() {
        return Err(FedError::Unauthenticated(
            "envelope is not signed by its origin".into(),
        ));
    }
    let mut last = None;
    for id in ids {
        match peers.key(&env.origin, &id, env.ts).await {
            Ok(k) => match env.verify(&k) {
                Ok(()) => return Ok(()),
                Err(e) => last = Some(e.to_string()),
            },
            Err(e) => last = Some(e.to_string()),
        }
    }
    Err(FedError::Unauthenticated(format!(
        "envelope signature: {}",
        last.unwrap_or_default()
    )))
}

fn parse_msg_id(s: &str) -> Option<[u8; 16]> {
    federation::parse_message_id(s)
}

/// What a matching acknowledgement of an erasure must carry, as one digest: SHA-256 of the
/// canonical JSON of its content (`user`, `reference`, `erasure`). The erasure's origin keeps
/// this digest, not the address, and compares it with every acknowledgement.
pub fn erasure_ack_digest(c: &ErasureAckContent) -> [u8; 32] {
    let v = json!({"user": c.user, "reference": c.reference, "erasure": c.erasure});
    Sha256::digest(
        federation::canonical_json(&v)
            .unwrap_or_default()
            .as_bytes(),
    )
    .into()
}

/// A submission's content `ts` (when its user sent it) must lie within the envelope's own
/// window: not after the envelope's `ts` by more than the clock skew, not 30 days before it.
fn content_ts(ts: u64, env: &Envelope) -> Result<(), Rejection> {
    if ts_fresh(ts, env.ts) {
        Ok(())
    } else {
        Err(reject(
            "malformed",
            "the message's ts must be at most 5 minutes after, and 30 days before, its envelope's",
        ))
    }
}

/// A message body from another node, checked; for media, what this node must fetch. `sender`
/// is the author's address (their node holds the media); `own` this node's domain.
fn body_of(
    body: &WireBody,
    sender: &str,
    own: &str,
    max_media: u64,
    now: Millis,
) -> Result<(Body, Option<storage::IncomingMedia>), Rejection> {
    match body {
        WireBody::Text { text } => {
            if text.is_empty() || text.len() > MAX_TEXT_BYTES {
                return Err(reject(
                    "invalid",
                    format!("text must be 1 to {MAX_TEXT_BYTES} bytes"),
                ));
            }
            Ok((Body::Text(text.clone()), None))
        }
        WireBody::Media { kind, name, media } => {
            let kind = messaging::MediaKind::parse(kind)
                .ok_or_else(|| reject("malformed", "kind must be image, voice, video or file"))?;
            let name = match name {
                Some(_) if kind != messaging::MediaKind::File => {
                    return Err(reject("malformed", "name is only for files"));
                }
                Some(n) => Some(
                    crate::profile::text("name", n, 1, 255)
                        .map_err(|e| reject("invalid", format!("name {}", e.reason)))?,
                ),
                None => None,
            };
            let from = address_domain(sender).unwrap_or_default();
            let sha256 = super::media_ref::check(media, from, max_media).map_err(|e| match e {
                super::media_ref::RefError::Malformed("origin") => {
                    reject("malformed", "media.origin must be the sender's node")
                }
                e @ super::media_ref::RefError::Malformed(_) => reject("malformed", e.reason()),
                e @ super::media_ref::RefError::TooLarge(_) => reject("invalid", e.reason()),
            })?;
            let (local_id, job) = if media.origin == own {
                (media.id.clone(), None)
            } else {
                (
                    remote_media_id(&media.origin, &media.id),
                    // The author is set by the write that stores the message.
                    Some(super::media_ref::fetch_job(media, sha256, 0, now)),
                )
            };
            Ok((
                Body::Media {
                    kind,
                    media_id: local_id.clone(),
                    name,
                },
                Some(storage::IncomingMedia { local_id, job }),
            ))
        }
    }
}

/// Fills in the author of a fetch job, once known.
fn with_author(
    media: Option<storage::IncomingMedia>,
    author: u64,
) -> Option<storage::IncomingMedia> {
    media.map(|mut m| {
        if let Some(j) = &mut m.job {
            j.author = author;
        }
        m
    })
}

impl Inbox {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Store,
        master: MasterKey,
        peers: Arc<Peers>,
        outbox: Outbox,
        directory: Directory,
        hub: Arc<Hub>,
        clock: SharedClock,
        limits: HostLimits,
        fetcher: super::fetch::Fetcher,
    ) -> Self {
        Inbox {
            store,
            master,
            peers,
            outbox,
            directory,
            hub,
            clock,
            limits,
            fetcher,
        }
    }

    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// Authenticates a request from a peer; returns its origin.
    pub async fn authenticate(
        &self,
        authorization: Option<&str>,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<String, FedError> {
        let header = authorization.ok_or_else(|| {
            FedError::Unauthenticated("missing Authorization: Shanliao … header".into())
        })?;
        let auth =
            RequestAuth::parse(header).map_err(|e| FedError::Unauthenticated(e.to_string()))?;
        auth.check_envelope(self.peers.own_domain(), self.clock.now().0)
            .map_err(|e| match e {
                federation::AuthError::WrongDestination(_) => FedError::Forbidden(e.to_string()),
                other => FedError::Unauthenticated(other.to_string()),
            })?;
        self.peers
            .get(&auth.origin)
            .map_err(|e| FedError::Forbidden(e.to_string()))?;
        let key = self
            .peers
            .key(&auth.origin, &auth.key, auth.ts)
            .await
            .map_err(|e| FedError::Unauthenticated(e.to_string()))?;
        auth.verify(&key, method, path, body)
            .map_err(|e| FedError::Unauthenticated(format!("request signature: {e}")))?;
        self.outbox.contacted_by(&auth.origin);
        Ok(auth.origin)
    }

    /// `PUT /_federation/v1/transactions/{txn_id}` from `origin` (authenticated): the JSON
    /// answer `{"results":{envelope id: {} | {"error":{code,message},"retry":bool}}}`.
    pub async fn transaction(
        &self,
        origin: &str,
        txn_id: &str,
        body: &[u8],
    ) -> Result<Vec<u8>, FedError> {
        if !valid_txn_id(txn_id) {
            return Err(FedError::Invalid(
                "transaction id must be 1 to 64 of A-Z a-z 0-9 . _ -".into(),
            ));
        }
        if body.len() > MAX_TXN_BYTES {
            return Err(FedError::TooLarge(format!(
                "a transaction is at most {MAX_TXN_BYTES} bytes"
            )));
        }
        let digest: [u8; 32] = Sha256::digest(body).into();
        if let Some((d, answer)) = self
            .store
            .transaction_answer(origin.to_string(), txn_id.to_string())
            .await?
        {
            return if d == digest {
                Ok(answer)
            } else {
                Err(FedError::TxnConflict(txn_id.to_string()))
            };
        }
        // Duplicate member names anywhere in the body are refused before anything else is
        // looked at (serde_json alone would keep the last, so a signed text could be read two
        // ways).
        let value = federation::parse_json(body)
            .map_err(|e| FedError::Invalid(format!("transaction: {e}")))?;
        let txn: Transaction = serde_json::from_value(value)
            .map_err(|e| FedError::Invalid(format!("transaction: {e}")))?;
        if txn.origin != origin {
            return Err(FedError::Invalid(
                "transaction origin differs from the signed request's".into(),
            ));
        }
        if txn.envelopes.len() > MAX_TXN_ENVELOPES {
            return Err(FedError::TooLarge(format!(
                "a transaction holds at most {MAX_TXN_ENVELOPES} envelopes"
            )));
        }
        let ids: Vec<String> = txn
            .envelopes
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.get("id")
                    .and_then(Value::as_str)
                    .map_or_else(|| format!("#{i}"), str::to_string)
            })
            .collect();
        // Checks, signatures and message preparation run concurrently; the writes then go in
        // the transaction's order: a run of messages together (their writes queue in order and
        // share group commits), anything else on its own, in its place.
        let checked = join_all(txn.envelopes.into_iter().map(|v| self.check(origin, v))).await;
        let mut outcomes: Vec<Option<Result<(), Rejection>>> = Vec::with_capacity(ids.len());
        let mut run: Vec<(usize, Prepared)> = Vec::new();
        for (i, c) in checked.into_iter().enumerate() {
            match c {
                Ok(Checked::Message(p)) => {
                    outcomes.push(None);
                    run.push((i, p));
                }
                other => {
                    self.commit_run(&mut run, &mut outcomes).await;
                    outcomes.push(Some(match other {
                        Ok(Checked::Other(env)) => self.apply(env).await,
                        Err(r) => Err(r),
                        Ok(Checked::Message(_)) => Ok(()),
                    }));
                }
            }
        }
        self.commit_run(&mut run, &mut outcomes).await;
        let mut results = Map::new();
        let mut any_retry = false;
        for (id, outcome) in ids.into_iter().zip(outcomes) {
            let r = match outcome.unwrap_or(Ok(())) {
                Ok(()) => json!({}),
                Err(rej) => {
                    any_retry |= rej.retry;
                    if !rej.retry {
                        tracing::info!(peer = origin, code = rej.code, "refused an envelope");
                    }
                    json!({"error": {"code": rej.code, "message": rej.message}, "retry": rej.retry})
                }
            };
            results.insert(id, r);
        }
        let answer = serde_json::to_vec(&json!({ "results": results }))
            .map_err(|e| FedError::Invalid(e.to_string()))?;
        // A transaction with envelopes to send again is not recorded: the retry (possibly under
        // the same id with fewer envelopes) must be looked at afresh.
        if !any_retry {
            self.store
                .record_transaction(
                    origin.to_string(),
                    txn_id.to_string(),
                    digest,
                    answer.clone(),
                    self.clock.now(),
                )
                .await?;
        }
        Ok(answer)
    }

    /// Commits a run of prepared messages, their writes queued in order.
    async fn commit_run(
        &self,
        run: &mut Vec<(usize, Prepared)>,
        outcomes: &mut [Option<Result<(), Rejection>>],
    ) {
        let batch = std::mem::take(run);
        let (places, writes): (Vec<usize>, Vec<Prepared>) = batch.into_iter().unzip();
        let results = join_all(writes.into_iter().map(|p| self.commit(p))).await;
        for (i, r) in places.into_iter().zip(results) {
            outcomes[i] = Some(r);
        }
    }

    fn done(&self, n: Inbound<Notify>) -> Result<(), Rejection> {
        match n {
            Inbound::Applied(n) => {
                self.hub.publish(&n.users, n.pos);
                self.outbox.wake(&n.peers);
                Ok(())
            }
            Inbound::Duplicate => Ok(()),
            Inbound::Rejected(m) => Err(reject("refused", m)),
            Inbound::Busy(m) => Err(Rejection {
                code: "busy",
                message: m,
                retry: true,
            }),
        }
    }

    /// Parses and checks an envelope of a transaction from `origin`; a message is also
    /// prepared (see [`Inbox::prepare`]).
    async fn check(&self, origin: &str, v: Value) -> Result<Checked, Rejection> {
        let env = Envelope::from_value(v).map_err(|e| reject("malformed", e.to_string()))?;
        if env.origin != origin {
            return Err(reject(
                "wrong_origin",
                "an envelope's origin must be the node sending it",
            ));
        }
        if env.destination != self.peers.own_domain() {
            return Err(reject(
                "wrong_destination",
                "the envelope is addressed to another node",
            ));
        }
        if !env.fresh_at(self.clock.now().0) {
            return Err(reject(
                "stale",
                "the envelope's ts is more than 5 minutes ahead of this node's clock or more than 30 days old",
            ));
        }
        verify_envelope(&self.peers, &env)
            .await
            .map_err(|e| reject("bad_signature", e.to_string()))?;
        if env.kind == Kind::Message {
            let c = MessageContent::deserialize(&env.content)
                .map_err(|e| reject("malformed", e.to_string()))?;
            return Ok(Checked::Message(self.prepare(&env, c).await?));
        }
        Ok(Checked::Other(env))
    }

    /// Applies a checked envelope other than a message.
    async fn apply(&self, env: Envelope) -> Result<(), Rejection> {
        let content = env.content.clone();
        let bad = |e: serde_json::Error| reject("malformed", e.to_string());
        match env.kind {
            Kind::Recall => {
                let c: RecallContent = serde_json::from_value(content).map_err(bad)?;
                self.recall(&env, c).await
            }
            Kind::Membership => {
                let c: MembershipContent = serde_json::from_value(content).map_err(bad)?;
                self.membership(&env, c).await
            }
            Kind::Profile => {
                let c: ProfileContent = serde_json::from_value(content).map_err(bad)?;
                self.own_user_of(&env, &c.user)?;
                // Optional fields only ever answer one viewer's lookup; a push carries none.
                if c.fields.is_some() {
                    return Err(reject("malformed", "a pushed profile carries no fields"));
                }
                if let Some(id) = self.store.remote_user_id(c.user.clone()).await? {
                    let (_, key) = self.directory.ensure(&c.user).await?;
                    self.directory.keep_profile(id, &key, &c).await?;
                }
                Ok(())
            }
            Kind::Erasure => {
                let c: ErasureContent = serde_json::from_value(content).map_err(bad)?;
                // Echoed back as it is: bounded like an envelope id.
                if !(1..=128).contains(&c.reference.len())
                    || !c.reference.bytes().all(|b| b.is_ascii_graphic())
                {
                    return Err(reject(
                        "malformed",
                        "reference must be 1 to 128 printable ASCII characters",
                    ));
                }
                self.own_user_of(&env, &c.user)?;
                let ack = self
                    .outbox
                    .erasure_ack(&env.origin, &c.user, &c.reference, &env.id)
                    .map_err(|r| reject("internal", super::refusal_text(&r)))?;
                let n = self
                    .store
                    .erase_remote_user(
                        env.origin.clone(),
                        env.id.clone(),
                        c.user,
                        ack,
                        self.clock.now(),
                    )
                    .await?;
                self.done(n)
            }
            Kind::ErasureAck => {
                let c: ErasureAckContent = serde_json::from_value(content).map_err(bad)?;
                let user = federation::parse_reference(&c.reference)
                    .ok_or_else(|| reject("malformed", "bad reference"))?;
                match self
                    .store
                    .erasure_acknowledged(
                        env.origin.clone(),
                        env.id.clone(),
                        user,
                        erasure_ack_digest(&c),
                        self.clock.now(),
                    )
                    .await?
                {
                    Inbound::Rejected(m) => Err(reject("refused", m)),
                    _ => Ok(()),
                }
            }
            Kind::Friend => {
                let c: federation::FriendContent = serde_json::from_value(content).map_err(bad)?;
                self.friend(&env, c).await
            }
            Kind::CommunityEvent => {
                let c: federation::CommunityEventContent =
                    serde_json::from_value(content).map_err(bad)?;
                self.community_event(&env, c).await
            }
            _ => Err(reject("unsupported", "unknown envelope kind")),
        }
    }

    /// A user named by `env` as its author must be one of its origin's users.
    fn own_user_of(&self, env: &Envelope, address: &str) -> Result<(), Rejection> {
        if address_domain(address) == Some(env.origin.as_str()) {
            Ok(())
        } else {
            Err(reject(
                "foreign_user",
                format!("{} may only speak for its own users", env.origin),
            ))
        }
    }

    /// As host of `conversation`: the local id of `address` (the envelope's sender or actor),
    /// who must be a user of the envelope's origin this node knows.
    async fn known_sender(
        &self,
        env: &Envelope,
        conversation: &str,
        address: String,
        role: &str,
    ) -> Result<u64, Rejection> {
        self.hosted_here(conversation)?;
        self.own_user_of(env, &address)?;
        self.store
            .remote_user_id(address)
            .await?
            .ok_or_else(|| reject("refused", format!("the {role} is not a member")))
    }

    fn hosted_here(&self, conv: &str) -> Result<(), Rejection> {
        if conversation_host(conv) == Some(self.peers.own_domain()) {
            Ok(())
        } else {
            Err(reject(
                "not_host",
                "this node does not host that conversation",
            ))
        }
    }

    fn hosted_by(&self, env: &Envelope, conv: &str) -> Result<(), Rejection> {
        if conversation_host(conv) == Some(env.origin.as_str()) {
            Ok(())
        } else {
            Err(reject(
                "not_host",
                "only a conversation's host speaks for it",
            ))
        }
    }

    /// The local id and data key of the user at `address` (of this node or another).
    async fn author(&self, address: &str) -> Result<(u64, SecretKey), Rejection> {
        if address_domain(address) == Some(self.peers.own_domain()) {
            let handle = address.rsplit_once('@').map_or("", |(h, _)| h);
            let id = self
                .store
                .user_by_handle(handle.to_string())
                .await?
                .ok_or_else(|| reject("no_such_user", "no such user"))?;
            let (_, _, wrapped) = self
                .store
                .wrapped_keys(vec![id])
                .await?
                .into_iter()
                .next()
                .ok_or_else(|| reject("no_such_user", "no such user"))?;
            Ok((id, self.master.unwrap_data_key(id, &wrapped)?))
        } else {
            Ok(self.directory.ensure(address).await?)
        }
    }

    /// The local id of a member named by a host (local users must exist; remote ones are
    /// created).
    async fn member_id(&self, address: &str) -> Result<Option<u64>, Rejection> {
        if address_domain(address) == Some(self.peers.own_domain()) {
            let handle = address.rsplit_once('@').map_or("", |(h, _)| h);
            Ok(self.store.user_by_handle(handle.to_string()).await?)
        } else {
            Ok(Some(self.directory.ensure(address).await?.0))
        }
    }

    /// Everything a message needs before its write: checks, signatures, ids, sealing. Runs
    /// concurrently for the messages of a transaction; the writes then go in order.
    async fn prepare(&self, env: &Envelope, c: MessageContent) -> Result<Prepared, Rejection> {
        match c {
            MessageContent::Submit {
                conversation,
                message_id,
                sender,
                ts,
                body,
                cross_border,
            } => {
                self.hosted_here(&conversation)?;
                self.own_user_of(env, &sender)?;
                let msg_id =
                    parse_msg_id(&message_id).ok_or_else(|| reject("malformed", "message_id"))?;
                content_ts(ts, env)?;
                let media_size = match &body {
                    WireBody::Media { media, .. } => Some(media.size),
                    WireBody::Text { .. } => None,
                };
                let (body, media) = self.body_of(&body, &sender)?;
                if media_size.is_some() {
                    // The relay withholds media from a node that takes less; it needs the
                    // receiving nodes' published limits known.
                    let nodes = self.receiving_nodes(&conversation).await?;
                    self.outbox
                        .learn_limits(&nodes, std::time::Duration::from_secs(3))
                        .await;
                }
                let (author, key) = self.directory.ensure(&sender).await?;
                let body_sealed = messaging::seal_body(&key, &conversation, &msg_id, &body)?;
                let fanout =
                    self.outbox
                        .relay_fanout(author, key, env.clone(), cross_border, media_size);
                let media = with_author(media, author);
                Ok(Prepared::Submit(Submission {
                    origin: env.origin.clone(),
                    envelope_id: env.id.clone(),
                    conv_id: conversation,
                    author,
                    msg_id,
                    ts: Millis(ts.min(self.clock.now().0)),
                    body_sealed,
                    fanout: Some(fanout),
                    media,
                }))
            }
            MessageContent::Hosted {
                conversation,
                seq,
                submission,
                withheld,
            } => {
                self.hosted_by(env, &conversation)?;
                // Everything that needs no key first: nothing is fetched for the origin a
                // submission names before its shape is right.
                if submission.kind != Kind::Message || submission.destination != env.origin {
                    return Err(reject("malformed", "submission is not for this host"));
                }
                if !ts_fresh(submission.ts, env.ts) {
                    return Err(reject(
                        "malformed",
                        "a submission's ts must be at most 5 minutes after, and 30 days before, its relay's",
                    ));
                }
                let MessageContent::Submit {
                    conversation: sub_conv,
                    message_id,
                    sender,
                    ts,
                    body,
                    ..
                } = MessageContent::deserialize(&submission.content)
                    .map_err(|e| reject("malformed", e.to_string()))?
                else {
                    return Err(reject("malformed", "submission is not a submit"));
                };
                if sub_conv != conversation {
                    return Err(reject(
                        "malformed",
                        "submission is for another conversation",
                    ));
                }
                self.own_user_of(&submission, &sender)?;
                let msg_id =
                    parse_msg_id(&message_id).ok_or_else(|| reject("malformed", "message_id"))?;
                content_ts(ts, &submission)?;
                let (body, media) = self.body_of(&body, &sender)?;
                let withheld = self.withheld_peers(&submission, withheld)?;
                // Our own submission coming back unchanged is recognised by its digest; any
                // other submission's signature is checked.
                if !self.outbox.relayed_own_submission(&submission) {
                    verify_envelope(&self.peers, &submission)
                        .await
                        .map_err(|e| reject("bad_signature", format!("submission: {e}")))?;
                }
                let (author, key) = self.author(&sender).await?;
                let body_sealed = messaging::seal_body(&key, &conversation, &msg_id, &body)?;
                let media = with_author(media, author);
                Ok(Prepared::Hosted {
                    origin: env.origin.clone(),
                    envelope_id: env.id.clone(),
                    conversation,
                    seq,
                    author,
                    msg_id,
                    ts: Millis(ts),
                    body_sealed,
                    media,
                    withheld,
                })
            }
        }
    }

    /// The nodes of the remote members of `conv`, a conversation this node hosts.
    async fn receiving_nodes(&self, conv: &str) -> Result<Vec<String>, Rejection> {
        let Some(no) = self.store.conversation_no(conv.to_string()).await? else {
            return Ok(Vec::new());
        };
        let remote: Vec<u64> = self
            .store
            .conversation_state(no)
            .await?
            .map(|s| {
                s.members
                    .iter()
                    .map(|m| m.user)
                    .filter(|u| u & storage::REMOTE_USER_BIT != 0)
                    .collect()
            })
            .unwrap_or_default();
        let mut out: Vec<String> = Vec::new();
        for (_, r) in self.store.remote_users(remote).await? {
            if let Some(d) = address_domain(&r.address)
                && !out.iter().any(|o| o == d)
            {
                out.push(d.to_string());
            }
        }
        Ok(out)
    }

    /// The `withheld` list of a host's relay: only in the copy of this node's own submission,
    /// at most [`MAX_WITHHELD`] distinct peer domains.
    fn withheld_peers(
        &self,
        submission: &Envelope,
        withheld: Vec<String>,
    ) -> Result<Vec<String>, Rejection> {
        if withheld.is_empty() {
            return Ok(withheld);
        }
        if submission.origin != self.peers.own_domain() {
            return Err(reject(
                "malformed",
                "withheld is only for the submission's origin",
            ));
        }
        if withheld.len() > MAX_WITHHELD
            || !withheld.iter().all(|d| federation::valid_domain(d))
            || withheld.windows(2).any(|w| w[0] >= w[1])
        {
            return Err(reject(
                "malformed",
                "withheld must be distinct, sorted peer domains",
            ));
        }
        Ok(withheld)
    }

    /// The write a prepared message needs.
    async fn commit(&self, p: Prepared) -> Result<(), Rejection> {
        let fetch = match &p {
            Prepared::Submit(s) => s.media.as_ref(),
            Prepared::Hosted { media, .. } => media.as_ref(),
        }
        .filter(|m| m.job.is_some())
        .map(|m| m.local_id.clone());
        let n = match p {
            Prepared::Submit(s) => self.store.accept_submission(s).await?,
            Prepared::Hosted {
                origin,
                envelope_id,
                conversation,
                seq,
                author,
                msg_id,
                ts,
                body_sealed,
                media,
                withheld,
            } => {
                let n = self
                    .store
                    .apply_hosted_message(
                        origin,
                        envelope_id,
                        conversation,
                        seq,
                        author,
                        msg_id,
                        ts,
                        body_sealed,
                        media,
                        self.clock.now(),
                    )
                    .await?;
                if let Inbound::Applied(_) = &n
                    && !withheld.is_empty()
                {
                    // The author is told, in their disclosure log, which nodes the host did
                    // not relay their message to.
                    self.store
                        .record_withheld(author, withheld, "message", self.clock.now())
                        .await?;
                }
                n
            }
        };
        if let (Some(id), Inbound::Applied(_)) = (fetch, &n) {
            self.fetcher.fetch(id);
        }
        self.done(n)
    }

    /// [`body_of`] with this node's domain, limit and clock.
    fn body_of(
        &self,
        body: &WireBody,
        sender: &str,
    ) -> Result<(Body, Option<storage::IncomingMedia>), Rejection> {
        body_of(
            body,
            sender,
            self.peers.own_domain(),
            self.limits.max_media_bytes,
            self.clock.now(),
        )
    }

    /// `GET /_federation/v1/media/{id}/{part}` from `origin`: part `part` of a local user's
    /// media, if `origin` holds a message referring to it or the media is the user's avatar
    /// and their profile goes to `origin` (otherwise, as for unknown media or
    /// a part past the end, `NotFound`). The last part's answer is counted in the owner's
    /// disclosure log (kind `media`).
    pub async fn media_part(&self, origin: &str, id: &str, part: &str) -> Result<Bytes, FedError> {
        let part: u32 = part
            .parse()
            .ok()
            .filter(|_| !part.starts_with('0') || part == "0")
            .ok_or(FedError::NoSuchMedia)?;
        if !federation::valid_media_id(id) {
            return Err(FedError::NoSuchMedia);
        }
        let rec = match self
            .store
            .media_for_peer(id.to_string(), origin.to_string())
            .await?
        {
            Some(rec) => rec,
            // A local user's avatar image, for a peer their profile goes to.
            None => match self.store.local_avatar(id.to_string()).await? {
                Some(rec)
                    if self
                        .outbox
                        .may_fetch_avatar(rec.owner, origin)
                        .await
                        .map_err(FedError::Refused)? =>
                {
                    rec
                }
                _ => return Err(FedError::NoSuchMedia),
            },
        };
        let parts = rec.size.div_ceil(federation::MEDIA_PART) as u32;
        if part >= parts {
            return Err(FedError::NoSuchMedia);
        }
        // Stored chunks are MEDIA_PART bytes each: one part is one chunk.
        let sealed = self
            .store
            .media_chunk(id.to_string(), part)
            .await?
            .ok_or(FedError::NoSuchMedia)?;
        let account = self
            .store
            .account(rec.owner)
            .await?
            .ok_or(FedError::NoSuchMedia)?;
        let key = self
            .master
            .unwrap_data_key(rec.owner, &account.wrapped_key)?;
        let aad = crate::media::chunk_aad(id, part);
        let plain = tokio::task::spawn_blocking(move || key.open(&aad, &sealed))
            .await
            .map_err(|_| FedError::Store(storage::StoreError::Worker))??;
        if part + 1 == parts {
            self.store
                .record_transfer(rec.owner, origin.to_string(), "media", self.clock.now())
                .await?;
        }
        Ok(Bytes::from(plain))
    }

    async fn recall(&self, env: &Envelope, c: RecallContent) -> Result<(), Rejection> {
        match c {
            RecallContent::Request {
                conversation,
                seq,
                sender,
            } => {
                let author = self
                    .known_sender(env, &conversation, sender, "sender")
                    .await?;
                let n = self
                    .store
                    .host_recall(
                        env.origin.clone(),
                        env.id.clone(),
                        conversation,
                        author,
                        seq,
                        self.clock.now(),
                        self.limits.recall_window_ms,
                        Some(self.outbox.recall_fanout(author)),
                    )
                    .await?;
                self.done(n)
            }
            RecallContent::Hosted { conversation, seq } => {
                self.hosted_by(env, &conversation)?;
                let n = self
                    .store
                    .apply_hosted_recall(
                        env.origin.clone(),
                        env.id.clone(),
                        conversation,
                        seq,
                        self.clock.now(),
                    )
                    .await?;
                self.done(n)
            }
        }
    }

    async fn membership(&self, env: &Envelope, c: MembershipContent) -> Result<(), Rejection> {
        match c {
            MembershipContent::State {
                conversation,
                kind,
                name,
                public,
                actor,
                members,
            } => {
                self.hosted_by(env, &conversation)?;
                let kind = match kind.as_str() {
                    "direct" => ConvKind::Direct,
                    "group" => ConvKind::Group,
                    _ => return Err(reject("malformed", "kind")),
                };
                if members.len() > self.limits.max_group_members.max(2) * 2 {
                    return Err(reject("malformed", "too many members"));
                }
                let mut list: Vec<(u64, Role)> = Vec::new();
                for m in &members {
                    let role = role_from(&m.role).ok_or_else(|| reject("malformed", "role"))?;
                    if let Some(id) = self.member_id(&m.user).await?
                        && !list.iter().any(|(u, _)| *u == id)
                    {
                        list.push((id, role));
                    }
                }
                let actor = self.member_id(&actor).await?.unwrap_or(0);
                let mut b = [0u8; 8];
                crypto::random_bytes(&mut b)?;
                let n = self
                    .store
                    .sync_replica(ReplicaState {
                        origin: env.origin.clone(),
                        envelope_id: env.id.clone(),
                        conv_id: conversation,
                        new_no: u64::from_be_bytes(b),
                        kind,
                        name,
                        public,
                        members: list,
                        actor,
                        now: self.clock.now(),
                    })
                    .await?;
                self.done(n)
            }
            MembershipContent::Request {
                conversation,
                actor,
                change,
            } => {
                let actor = self
                    .known_sender(env, &conversation, actor, "actor")
                    .await?;
                let target = match &change {
                    WireChange::Invite { user }
                    | WireChange::Remove { user }
                    | WireChange::SetRole { user, .. }
                    | WireChange::Transfer { user } => {
                        if address_domain(user) == Some(self.peers.own_domain()) {
                            self.member_id(user)
                                .await?
                                .ok_or_else(|| reject("no_such_user", "no such user"))?
                        } else {
                            self.directory.resolve(user).await?
                        }
                    }
                    WireChange::Update { .. } => 0,
                };
                let max = self.limits.max_group_members;
                let decide = move |s: &storage::ConversationState| {
                    match &change {
                        WireChange::Invite { .. } => rules::invite(s, actor, target, max),
                        WireChange::Remove { .. } => rules::remove(s, actor, target),
                        WireChange::SetRole { role, .. } => match role_from(role) {
                            Some(r) => rules::set_role(s, actor, target, r),
                            None => Err(messaging::MessagingError::Invalid {
                                field: "role",
                                reason: "unknown role".into(),
                            }),
                        },
                        WireChange::Transfer { .. } => rules::transfer(s, actor, target),
                        WireChange::Update { name, public } => {
                            rules::update(s, actor, name.clone(), *public)
                        }
                    }
                    .map_err(|e| e.to_string())
                };
                let n = self
                    .store
                    .host_change(
                        env.origin.clone(),
                        env.id.clone(),
                        conversation,
                        actor,
                        self.clock.now(),
                        decide,
                        Some(self.outbox.state_fanout(actor)),
                    )
                    .await?;
                self.done(n)
            }
        }
    }

    /// The key document bytes are served elsewhere; this answers a peer's user lookup, on
    /// behalf of `viewer` (a handle of a user of `origin`) when given.
    pub async fn profile(
        &self,
        origin: &str,
        handle: &str,
        viewer: Option<&str>,
    ) -> Result<Bytes, FedError> {
        let env = self.directory.serve(origin, handle, viewer).await?;
        Ok(Bytes::from(
            env.to_json()
                .map_err(|e| FedError::Invalid(e.to_string()))?,
        ))
    }
}
