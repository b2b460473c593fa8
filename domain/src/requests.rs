//! `Requests`: users' requests and complaints to the admin (clause 5.5.1). A user files one
//! (access, correction, deletion, complaint, other) with a text; the admin lists, reads and
//! answers them with `node-admin requests`; the answer reaches the user as a notice and in
//! their list. Texts and answers are sealed under the user's data key.

use std::sync::Arc;

use crate::crypto::{CryptoError, MasterKey, SecretKey};
use crate::hub::Hub;
use crate::time::{Millis, SharedClock};
use storage::{AuditEntry, RequestRecord, Store, StoreError};

/// The kinds of request.
pub const KINDS: [&str; 5] = ["access", "correction", "deletion", "complaint", "other"];
/// Longest request text or answer, in characters.
pub const MAX_TEXT_CHARS: usize = 4000;

/// Errors of requests.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("no such request")]
    NotFound,
    #[error("the request has been answered already")]
    Answered,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

/// A request as its user or the admin reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestView {
    pub id: u64,
    pub user: u64,
    pub kind: String,
    pub text: Option<String>,
    pub created: Millis,
    pub answer: Option<String>,
    pub resolved: Option<Millis>,
}

/// The requests service.
#[derive(Debug, Clone)]
pub struct Requests {
    store: Store,
    master: MasterKey,
    hub: Arc<Hub>,
    clock: SharedClock,
}

fn aad(id: u64, part: &str) -> Vec<u8> {
    format!("shanliao/request/{id}/{part}").into_bytes()
}

fn text(field: &'static str, t: &str) -> Result<String, RequestError> {
    let t = t.trim();
    let n = t.chars().count();
    if n == 0 || n > MAX_TEXT_CHARS {
        return Err(RequestError::Invalid {
            field,
            reason: format!("must be 1 to {MAX_TEXT_CHARS} characters"),
        });
    }
    Ok(t.to_string())
}

impl Requests {
    pub fn new(store: Store, master: MasterKey, hub: Arc<Hub>, clock: SharedClock) -> Self {
        Requests {
            store,
            master,
            hub,
            clock,
        }
    }

    async fn key(&self, user: u64) -> Result<Option<SecretKey>, RequestError> {
        let Some(acct) = self.store.account(user).await? else {
            return Ok(None);
        };
        if acct.wrapped_key.is_empty() {
            return Ok(None);
        }
        Ok(Some(self.master.unwrap_data_key(user, &acct.wrapped_key)?))
    }

    /// Files a request for `user`; returns its number.
    pub async fn file(&self, user: u64, kind: &str, body: &str) -> Result<u64, RequestError> {
        if !KINDS.contains(&kind) {
            return Err(RequestError::Invalid {
                field: "kind",
                reason: format!("must be one of {}", KINDS.join(", ")),
            });
        }
        let body = text("text", body)?;
        let key = self.key(user).await?.ok_or(RequestError::NotFound)?;
        let id = self
            .store
            .file_request(user, kind.to_string(), self.clock.now(), move |id| {
                key.seal(&aad(id, "text"), body.as_bytes())
                    .map_err(|_| StoreError::Corrupt("request"))
            })
            .await?;
        Ok(id)
    }

    fn open(&self, key: Option<&SecretKey>, r: &RequestRecord) -> RequestView {
        let open = |part: &str, sealed: &[u8]| -> Option<String> {
            if sealed.is_empty() {
                return None;
            }
            key.and_then(|k| k.open(&aad(r.id, part), sealed).ok())
                .and_then(|b| String::from_utf8(b).ok())
        };
        RequestView {
            id: r.id,
            user: r.user,
            kind: r.kind.clone(),
            text: open("text", &r.text_sealed),
            created: r.created,
            answer: open("answer", &r.answer_sealed),
            resolved: r.resolved,
        }
    }

    /// The user's own requests with their answers.
    pub async fn own(&self, user: u64) -> Result<Vec<RequestView>, RequestError> {
        let key = self.key(user).await?;
        Ok(self
            .store
            .requests_of(user)
            .await?
            .iter()
            .map(|r| self.open(key.as_ref(), r))
            .collect())
    }

    /// Every request, without texts (for the admin's list).
    pub async fn all(&self) -> Result<Vec<RequestView>, RequestError> {
        Ok(self
            .store
            .all_requests()
            .await?
            .iter()
            .map(|r| self.open(None, r))
            .collect())
    }

    /// One request with its text, for the admin (audited).
    pub async fn show(&self, id: u64) -> Result<RequestView, RequestError> {
        let r = self
            .store
            .request(id)
            .await?
            .ok_or(RequestError::NotFound)?;
        let key = self.key(r.user).await?;
        self.store
            .audit(self.audit("admin.requests.show", r.user, &format!("request {id}")))
            .await?;
        Ok(self.open(key.as_ref(), &r))
    }

    fn audit(&self, action: &str, user: u64, detail: &str) -> AuditEntry {
        AuditEntry {
            at: self.clock.now(),
            actor: "admin".into(),
            action: action.into(),
            target: String::new(),
            subject: Some(user),
            detail: detail.into(),
        }
    }

    /// The admin answers: stored for the user, who gets a notice.
    pub async fn resolve(&self, id: u64, answer: &str) -> Result<(), RequestError> {
        let answer = text("answer", answer)?;
        let r = self
            .store
            .request(id)
            .await?
            .ok_or(RequestError::NotFound)?;
        if r.resolved.is_some() {
            return Err(RequestError::Answered);
        }
        let key = self.key(r.user).await?.ok_or(RequestError::NotFound)?;
        let sealed = key.seal(&aad(id, "answer"), answer.as_bytes())?;
        let audit = self.audit("admin.requests.resolve", r.user, &format!("request {id}"));
        match self
            .store
            .resolve_request(
                id,
                sealed,
                self.clock.now(),
                crate::notices::request_answered(id),
                audit,
            )
            .await?
        {
            Some((user, pos)) => {
                self.hub.publish(&[user], pos);
                Ok(())
            }
            None => Err(RequestError::Answered),
        }
    }
}
