//! The personal-data export (5.1.a): one JSON archive of everything the node holds about a
//! user (`docs/EXPORT.md` documents its schema), including the **disclosure log** — every peer
//! node that received their data, what kind and when.
//!
//! The archive is produced while it is sent: [`Exporter::archive`] returns a producer future and
//! the receiving end of a small bounded channel, so a history of any size needs only a page of
//! messages (or one media object) in memory, and the producer stops as soon as the reader goes
//! away. No copy of the archive is ever written to the node's disk. A request is rate-limited
//! (`privacy.export_interval_hours`) and downloadable for that long after it.
//!
//! The archive reuses the client API's JSON shapes for messages, so a client reads both alike.

use std::future::Future;

use base64::Engine;
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use domain::accounts::Accounts;
use domain::consents::Consents;
use domain::media::Media;
use domain::messaging::Messaging;
use domain::policy::{Lang, PolicyBook};
use domain::privacy::{Minors, PrivacyError, PublicPage, RealName};
use domain::requests::Requests;
use domain::time::{Millis, SharedClock};
use storage::{ConvKind, EventRecord, NoticeContent, Store};

/// The `format` field of every archive; raised when the schema changes incompatibly.
pub const EXPORT_FORMAT: &str = "shanliao-export/1";

/// A notice in the archive: `{"kind","code","params","title","text"}` as the client API shows it
/// (`code` null and `params` empty for an operator's free text), worded in `lang`.
fn notice_json(kind: &str, content: &NoticeContent, lang: Lang) -> Value {
    let words = domain::notices::words(content, lang);
    let (code, params) = match content {
        NoticeContent::Coded { code, params } => (
            Some(code.as_str()),
            params
                .iter()
                .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
                .collect(),
        ),
        NoticeContent::Text { .. } => (None, serde_json::Map::new()),
    };
    json!({"kind": kind, "code": code, "params": params, "title": words.title, "text": words.text})
}

/// Messages read per page.
const PAGE: usize = 500;

/// One piece of the archive, or why it stopped (the archive is then incomplete: it lacks the
/// final `"complete": true`).
pub type Chunk = Result<Bytes, String>;

/// Everything an export reads, each as its own handle.
#[derive(Debug, Clone)]
pub struct Exporter {
    pub store: Store,
    pub accounts: Accounts,
    pub consents: Consents,
    pub messaging: Messaging,
    pub media: Media,
    pub requests: Requests,
    pub friends: domain::friends::Friends,
    pub minors: Minors,
    pub real_name: RealName,
    pub page: PublicPage,
    pub discovery: domain::discovery::Discovery,
    pub policy: PolicyBook,
    pub communities: domain::community::Communities,
    /// The search log (recent searches), kept only with `personalisation`.
    pub search: domain::search::Search,
    /// The behaviour log, kept only with `personalisation`.
    pub behaviour: domain::behaviour::Behaviour,
    pub clock: SharedClock,
    pub domain: String,
    /// Least time between two requests, and how long a request stays downloadable.
    pub interval_ms: u64,
}

/// How long a request stays downloadable when exports are not rate-limited.
const MIN_WINDOW_MS: u64 = 3_600_000;

impl Exporter {
    /// Starts an export for `user`; refused if the last one was too recent. Returns its time.
    pub async fn request(&self, user: u64) -> Result<Millis, PrivacyError> {
        let now = self.clock.now();
        match self
            .store
            .take_export_slot(user, now, self.interval_ms)
            .await?
        {
            Ok(()) => Ok(now),
            Err(storage::PrivacyRefusal::TooSoon(at)) => Err(PrivacyError::TooSoon {
                at,
                wait_secs: at.0.saturating_sub(now.0).div_ceil(1000).max(1),
            }),
            Err(_) => Err(PrivacyError::NotFound),
        }
    }

    /// The time of the user's export request if it can still be downloaded.
    pub async fn ready(&self, user: u64) -> Result<Millis, PrivacyError> {
        let window = self.interval_ms.max(MIN_WINDOW_MS);
        match self.store.last_export(user).await? {
            Some(at) if self.clock.now().0 < at.0.saturating_add(window) => Ok(at),
            _ => Err(PrivacyError::NotFound),
        }
    }

    /// The archive of `user`'s data: drive the future to produce it while reading the
    /// receiver. `by` says who asked (`user` or `admin`), recorded in the audit log; notices
    /// the node wrote are worded in `lang`, beside their code and parameters.
    pub fn archive(
        &self,
        user: u64,
        by: &'static str,
        lang: Lang,
    ) -> (
        impl Future<Output = ()> + Send + 'static,
        mpsc::Receiver<Chunk>,
    ) {
        let (tx, rx) = mpsc::channel(4);
        let this = self.clone();
        let producer = async move {
            let out = Out { tx: tx.clone() };
            if let Err(e) = this.produce(user, by, lang, &out).await {
                // The reader may be gone already; then nobody needs the reason.
                let _ = tx.send(Err(e.to_string())).await;
            }
        };
        (producer, rx)
    }

    async fn produce(
        &self,
        user: u64,
        by: &str,
        lang: Lang,
        out: &Out,
    ) -> Result<(), ProduceError> {
        let now = self.clock.now();
        let own = self.accounts.own(user).await?;
        let me = format!("{}@{}", own.handle, self.domain);
        self.store
            .audit(storage::AuditEntry {
                at: now,
                actor: by.into(),
                action: "export".into(),
                target: String::new(),
                subject: Some(user),
                detail: String::new(),
            })
            .await?;
        let versions = self.policy.all();
        let version_name = |seq: u64| {
            versions
                .iter()
                .find(|v| v.seq == seq)
                .map_or(String::new(), |v| v.version.clone())
        };
        let fields: serde_json::Map<String, Value> = own
            .profile
            .fields
            .iter()
            .map(|(f, (v, vis))| {
                (
                    f.name().to_string(),
                    json!({"value": v, "visibility": vis.name()}),
                )
            })
            .collect();
        let consents = self.consents.list(user).await?;
        let searches = self
            .search
            .logged(user)
            .await
            .map_err(|e| ProduceError(e.to_string()))?;
        let behaviour = self
            .behaviour
            .events(user)
            .await
            .map_err(|e| ProduceError(e.to_string()))?;
        let sessions = self.accounts.sessions(user).await?;
        let guardian = self.minors.guardian(user).await?;
        let real_name = self.real_name.get(user).await?;
        let page = self.page.status(user).await?;
        let requests = self
            .requests
            .own(user)
            .await
            .map_err(|e| ProduceError(e.to_string()))?;
        let notices = self.store.notices_of(user).await?;
        let transfers = self.store.transfers_of(user).await?;
        let audit = self.store.audit_about(user).await?;
        let friends_part = self.friends_part(user).await?;
        let discovery = self
            .discovery
            .export(user)
            .await
            .map_err(|e| ProduceError(e.to_string()))?;
        let head = json!({
            "format": EXPORT_FORMAT,
            "generated": now.to_rfc3339(),
            "node": self.domain,
            "account": {
                "address": me,
                "phone": own.phone,
                "created": own.created.to_rfc3339(),
            },
            "profile": {
                "nickname": own.profile.nickname,
                "avatar": own.profile.avatar.as_ref().map(domain::profile::Avatar::shown),
                "fields": fields,
            },
            "policy_acceptances": self.store.policy_acceptances(user).await?.iter().map(|(seq, at)| json!({
                "version": version_name(*seq), "at": at.to_rfc3339(),
            })).collect::<Vec<_>>(),
            "consents": consents.iter().map(|s| json!({
                "purpose": s.purpose.name(),
                "granted": s.granted,
                "history": s.history.iter().map(|d| json!({
                    "granted": d.granted, "at": d.at.to_rfc3339(),
                    "policy_version": d.policy_version, "device_id": d.device_id,
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "sessions": sessions.iter().map(|s| json!({
                "device_id": s.device_id,
                "device": {"name": s.device.name, "os": s.device.os, "app_version": s.device.app_version},
                "created": s.created.to_rfc3339(),
                "last_seen": s.last_seen.to_rfc3339(),
            })).collect::<Vec<_>>(),
            "guardian_consent": guardian.map(|g| json!({
                "guardian_name": g.name, "guardian_contact": g.contact,
                "purposes": g.purposes.iter().map(|p| p.name()).collect::<Vec<_>>(),
                "recorded": g.recorded.to_rfc3339(),
            })),
            "real_name": real_name.map(|r| json!({
                "name": r.name, "id_number": r.id_number, "verified": r.verified.to_rfc3339(),
            })),
            "public_page": page.map(|at| json!({"enabled": at.to_rfc3339()})),
            // Issue 22: the user's own discovery data; never what others uploaded.
            "discovery": discovery,
            "requests": requests.iter().map(|r| json!({
                "id": r.id, "kind": r.kind, "text": r.text, "created": r.created.to_rfc3339(),
                "answer": r.answer, "resolved": r.resolved.map(|t| t.to_rfc3339()),
            })).collect::<Vec<_>>(),
            "notices": notices.iter().filter_map(|(_, n)| match n {
                EventRecord::Notice { kind, content } => Some(notice_json(kind.name(), content, lang)),
                _ => None,
            }).collect::<Vec<_>>(),
            "disclosures": transfers.iter().map(|(peer, kind, outcome, first, last, count)| json!({
                "peer": peer, "kind": kind, "outcome": outcome, "first": first.to_rfc3339(),
                "last": last.to_rfc3339(), "count": count,
            })).collect::<Vec<_>>(),
            // Legal holds are not disclosed to their subject (1.9 / 2.4).
            "audit": audit.iter().filter(|r| !r.entry.action.starts_with("legal_hold.")).map(|r| json!({
                "at": r.entry.at.to_rfc3339(), "actor": r.entry.actor, "action": r.entry.action,
            })).collect::<Vec<_>>(),
            "searches": searches.iter().map(|(at, q)| json!({"query": q, "at": at.to_rfc3339()}))
                .collect::<Vec<_>>(),
            "behaviour": behaviour.iter().map(|(at, e)| json!({
                "kind": e.kind(), "community": domain::community::community_id(e.community()),
                "post": e.post(), "at": at.to_rfc3339(),
            })).collect::<Vec<_>>(),
        });
        let mut head = head;
        if let (Some(h), Value::Object(f)) = (head.as_object_mut(), friends_part) {
            h.extend(f);
        }
        // The small parts as one object, left open for the large ones.
        let mut text = head.to_string();
        text.pop();
        out.send(text.into_bytes()).await?;

        out.send(b",\"media\":[".to_vec()).await?;
        for (i, (id, rec)) in self.store.media_of(user).await?.into_iter().enumerate() {
            let content = match self.media.fetch(user, &id).await {
                Ok((_, bytes)) => base64::engine::general_purpose::STANDARD.encode(bytes),
                Err(e) => return Err(ProduceError(e.to_string())),
            };
            let item = json!({
                "id": id, "content_type": rec.content_type, "size": rec.size,
                "created": rec.created.to_rfc3339(), "content_base64": content,
            });
            out.send(with_comma(i, &item)?).await?;
        }
        out.send(b"],\"conversations\":[".to_vec()).await?;
        let conversations = self
            .messaging
            .list(user)
            .await
            .map_err(|e| ProduceError(e.to_string()))?;
        let reads = self
            .messaging
            .read_positions(user)
            .await
            .map_err(|e| ProduceError(e.to_string()))?;
        for (i, c) in conversations.iter().enumerate() {
            let mut open = json!({
                "id": c.id,
                "kind": if c.kind == ConvKind::Group { "group" } else { "direct" },
                "name": c.name,
                "created": c.created.to_rfc3339(),
                "members": c.members,
                "read_up_to": reads.get(&c.id).copied().unwrap_or(0),
            })
            .to_string();
            open.pop();
            if i > 0 {
                open.insert(0, ',');
            }
            open.push_str(",\"messages\":[");
            out.send(open.into_bytes()).await?;
            let mut after = 0;
            let mut n = 0;
            loop {
                let page = self
                    .messaging
                    .kept_history(user, &c.id, after, PAGE)
                    .await
                    .map_err(|e| ProduceError(e.to_string()))?;
                let Some(last) = page.last() else { break };
                after = last.seq;
                let mut buf = Vec::new();
                for m in &page {
                    buf.extend(with_comma(n, &crate::message_json(m))?);
                    n += 1;
                }
                out.send(buf).await?;
                if page.len() < PAGE {
                    break;
                }
            }
            out.send(b"]}".to_vec()).await?;
        }
        out.send(b"]".to_vec()).await?;
        // Communities: memberships, my posts and comments (opened), my favourites.
        let memberships = self
            .communities
            .mine_here(user)
            .await
            .map_err(|e| ProduceError(e.to_string()))?;
        let (posts, comments, favourites) = self
            .communities
            .own_data(user)
            .await
            .map_err(|e| ProduceError(e.to_string()))?;
        let part = json!({
            "memberships": memberships.iter().map(|c| json!({
                "id": c.id, "name": c.name, "role": c.role.map(|r| r.name()),
            })).collect::<Vec<_>>(),
            "posts": posts.iter().map(crate::export_post).collect::<Vec<_>>(),
            "comments": comments.iter().map(crate::export_comment).collect::<Vec<_>>(),
            "favourites": favourites.iter().map(|(post, community, at)| json!({
                "post": post, "community": community, "at": at.to_rfc3339(),
            })).collect::<Vec<_>>(),
        });
        out.send(format!(",\"communities\":{part}").into_bytes())
            .await?;
        out.send(b",\"complete\":true}\n".to_vec()).await?;
        Ok(())
    }
}

impl Exporter {
    /// Friends (issue 22): my friends, the requests I sent or received that the node still
    /// holds (with my own notes and the notes sent to me), the users I block, and my
    /// direct-message setting. Never who blocks me.
    async fn friends_part(&self, user: u64) -> Result<Value, ProduceError> {
        let f = &self.friends;
        let err = |e: domain::friends::FriendError| ProduceError(e.to_string());
        let friends = f.list(user).await.map_err(err)?;
        let requests = f.request_history(user).await.map_err(err)?;
        let blocks = f.blocks(user).await.map_err(err)?;
        let friends_only = f.friends_only(user).await.map_err(err)?;
        Ok(json!({
            "friends": friends.iter().map(|x| json!({
                "user": x.person.address, "since": x.since.to_rfc3339(),
            })).collect::<Vec<_>>(),
            "friend_requests": requests.iter().map(|r| json!({
                "direction": match r.direction {
                    domain::friends::Direction::Incoming => "incoming",
                    domain::friends::Direction::Outgoing => "outgoing",
                },
                "user": r.person.address, "note": r.note, "created": r.created.to_rfc3339(),
                "state": r.state.name(),
            })).collect::<Vec<_>>(),
            "blocks": blocks.iter().map(|b| json!({
                "user": b.person.address, "since": b.since.to_rfc3339(),
            })).collect::<Vec<_>>(),
            "direct_messages": if friends_only { "friends" } else { "anyone" },
        }))
    }
}

/// `value` as JSON, preceded by a comma unless it is the first item.
fn with_comma(i: usize, value: &impl serde::Serialize) -> Result<Vec<u8>, ProduceError> {
    let mut v = if i > 0 { vec![b','] } else { Vec::new() };
    serde_json::to_writer(&mut v, value).map_err(|e| ProduceError(e.to_string()))?;
    Ok(v)
}

/// The sending end, which stops production when the reader has gone.
struct Out {
    tx: mpsc::Sender<Chunk>,
}

impl Out {
    async fn send(&self, bytes: Vec<u8>) -> Result<(), ProduceError> {
        self.tx
            .send(Ok(Bytes::from(bytes)))
            .await
            .map_err(|_| ProduceError("the reader went away".into()))
    }
}

/// Why production stopped.
#[derive(Debug)]
struct ProduceError(String);

impl std::fmt::Display for ProduceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<E: Into<PrivacyError>> From<E> for ProduceError {
    fn from(e: E) -> Self {
        ProduceError(e.into().to_string())
    }
}
