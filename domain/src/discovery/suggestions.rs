//! Suggestions ("people you may know", 1.3.b, 1.3.c): contacts matching, shared public
//! education, dismissals, and the findable-by-phone setting, with their gates —
//! `contacts_matching` for uploads, `recommend_me` to see suggestions, `be_recommended` to
//! appear in them, and the matched user's own "findable by phone number" for a contact match.
//!
//! The client hashes each contact's number as lowercase hex of
//! SHA-256(`shanliao-contact/v1:` + the E.164 number); the node turns each hash into a keyed
//! index (HMAC with a node secret, like the phone index) and only looks it up.

use std::collections::BTreeSet;

use super::{Discovery, DiscoveryError};
use crate::consents::Purpose;
use crate::crypto::SecretKey;
use crate::time::Millis;
use storage::{UploadOutcome, UploadRefusal};

/// What the client puts before the E.164 number it hashes.
pub const CONTACT_HASH_PREFIX: &str = "shanliao-contact/v1:";
/// Most hashes in one upload.
pub const MAX_UPLOAD: usize = 2_000;
/// Most distinct numbers a user may have checked per day (UTC).
pub const DAILY_QUOTA: u64 = 5_000;
/// How long a contact match is kept.
pub const MATCH_TTL_MS: u64 = 30 * 24 * 3_600_000;
/// Most suggestions in one page.
pub const MAX_PAGE: usize = 50;

/// One suggestion with its reasons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suggestion {
    pub address: String,
    pub nickname: String,
    pub avatar: Option<String>,
    /// In the uploader's contacts (and findable by phone number).
    pub contact: bool,
    /// Shares the viewer's public education.
    pub education: bool,
    /// Number of mutual friends, if any (names never shown).
    pub mutual_friends: usize,
}

/// A page of suggestions and where the next one starts.
#[derive(Debug, Clone)]
pub struct SuggestionPage {
    pub items: Vec<Suggestion>,
    pub next: Option<usize>,
}

/// The index a public education value is found by: case and spacing do not matter.
pub fn education_index(key: &SecretKey, value: &str) -> [u8; 32] {
    let norm = value
        .to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    key.blind_index(norm.as_bytes())
}

/// The client's hash of a number (what [`Discovery::upload_contacts`] expects).
pub fn contact_hash(e164: &str) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(format!("{CONTACT_HASH_PREFIX}{e164}").as_bytes()).into()
}

fn parse_hash(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

impl Discovery {
    /// Whether the user is findable by phone number.
    pub async fn findable(&self, user: u64) -> Result<bool, DiscoveryError> {
        Ok(self.store.discovery_settings(user).await?.findable_by_phone)
    }

    /// Turns "findable by phone number" on or off; off removes the user's contact index at
    /// once (and with it every match's contact reason).
    pub async fn set_findable(&self, user: u64, on: bool) -> Result<bool, DiscoveryError> {
        let own = self
            .accounts
            .own(user)
            .await
            .map_err(|_| DiscoveryError::NoSuchUser)?;
        let index = self.contacts_key.blind_index(&contact_hash(&own.phone));
        if !self.store.set_findable(user, on, index).await? {
            return Err(DiscoveryError::NoSuchUser);
        }
        Ok(on)
    }

    /// Matches an upload of contact hashes (lowercase hex, see the module doc). The hashes
    /// are deduplicated, counted against the day's quota and looked up; only matches are kept.
    pub async fn upload_contacts(
        &self,
        user: u64,
        hashes: &[String],
    ) -> Result<UploadOutcome, DiscoveryError> {
        self.consents
            .require(user, Purpose::ContactsMatching)
            .await?;
        if hashes.is_empty() || hashes.len() > MAX_UPLOAD {
            return Err(DiscoveryError::Invalid {
                field: "hashes",
                reason: format!("must hold 1 to {MAX_UPLOAD} hashes"),
            });
        }
        let mut distinct = BTreeSet::new();
        for (i, h) in hashes.iter().enumerate() {
            let Some(b) = parse_hash(h) else {
                return Err(DiscoveryError::Invalid {
                    field: "hashes",
                    reason: format!(
                        "item {i} must be 64 lowercase hex digits (SHA-256 of \"{CONTACT_HASH_PREFIX}\" + the E.164 number)"
                    ),
                });
            };
            distinct.insert(self.contacts_key.blind_index(&b));
        }
        let now = self.clock.now();
        match self
            .store
            .match_contacts(
                user,
                distinct.into_iter().collect(),
                DAILY_QUOTA,
                now,
                Millis(now.0 + MATCH_TTL_MS),
            )
            .await?
        {
            Ok(o) => Ok(o),
            Err(UploadRefusal::NotGranted) => {
                Err(crate::consents::ConsentError::NotGranted(Purpose::ContactsMatching).into())
            }
            Err(UploadRefusal::Quota { left }) => Err(DiscoveryError::Quota(left)),
        }
    }

    /// Deletes the user's contact matches.
    pub async fn forget_contacts(&self, user: u64) -> Result<(), DiscoveryError> {
        Ok(self.store.forget_matches(user).await?)
    }

    /// Dismisses a suggestion for good.
    pub async fn dismiss(&self, user: u64, address: &str) -> Result<(), DiscoveryError> {
        let other = self.local_user("address", address).await?;
        if other == user {
            return Err(DiscoveryError::Invalid {
                field: "address",
                reason: "is your own".into(),
            });
        }
        Ok(self.store.dismiss(user, other, self.clock.now()).await?)
    }

    /// A page of the user's suggestions (needs `recommend_me`): contact matches first, then
    /// by mutual friends and education, each with its reasons. Never an existing friend, a
    /// user I blocked or one who blocked me.
    pub async fn suggestions(
        &self,
        user: u64,
        from: usize,
        limit: usize,
    ) -> Result<SuggestionPage, DiscoveryError> {
        self.consents.require(user, Purpose::RecommendMe).await?;
        if limit == 0 || limit > MAX_PAGE {
            return Err(DiscoveryError::Invalid {
                field: "limit",
                reason: format!("must be 1 to {MAX_PAGE}"),
            });
        }
        let now = self.clock.now();
        let mut ranked: Vec<(u64, bool, bool, usize)> = self
            .store
            .suggestion_candidates(user, now)
            .await?
            .into_iter()
            .map(|(u, s)| (u, s.contact, s.education, s.mutual))
            .filter(|(_, c, e, m)| *c || *e || *m > 0)
            .collect();
        ranked.sort_by_key(|(u, c, e, m)| (!*c, std::cmp::Reverse(*m), !*e, *u));
        let total = ranked.len();
        let mut items = Vec::new();
        for (u, contact, education, mutual_friends) in ranked.into_iter().skip(from).take(limit) {
            if let Some((address, nickname, avatar)) = self.card(u).await? {
                items.push(Suggestion {
                    address,
                    nickname,
                    avatar,
                    contact,
                    education,
                    mutual_friends,
                });
            }
        }
        let next = (from + limit < total).then_some(from + limit);
        Ok(SuggestionPage { items, next })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_parse_only_as_lowercase_hex_of_32_bytes() {
        let h = contact_hash("+8613800138000");
        let hex: String = h.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(parse_hash(&hex), Some(h));
        assert_eq!(parse_hash(&hex.to_uppercase()), None);
        assert_eq!(parse_hash(&hex[..62]), None);
        assert_eq!(parse_hash(&format!("{}zz", &hex[..62])), None);
    }

    #[test]
    fn education_index_ignores_case_and_spacing_only() {
        let k = SecretKey::generate().unwrap();
        assert_eq!(
            education_index(&k, "Tsinghua  University"),
            education_index(&k, "tsinghua university")
        );
        assert_ne!(
            education_index(&k, "Tsinghua University"),
            education_index(&k, "Peking University")
        );
    }
}
