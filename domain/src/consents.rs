//! The consent ledger: the optional purposes a user may grant (their names and descriptions in
//! both languages in `consents/words.rs`), each grant and revocation recorded with time, policy
//! version and device, and [`Consents::require`] — the one check every feature that processes
//! data for an optional purpose calls at the point of use.
//!
//! **Invariant:** every purpose starts ungranted; accepting the policy grants none (G1.a).

mod words;

pub use words::Words;

use std::fmt;
use std::str::FromStr;

use crate::policy::Lang;
use crate::time::{Millis, SharedClock};
use storage::{AuditEntry, ConsentEvent, PurposeStatus, Store, StoreError};

/// An optional, separately consented use of personal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Purpose {
    CloudSync,
    ContactsMatching,
    PreciseLocation,
    Camera,
    Microphone,
    Photos,
    RecommendMe,
    BeRecommended,
    Personalisation,
    CrossBorderTransfer,
    RealName,
    PublicPage,
}

impl Purpose {
    /// Every purpose, in the order the API lists them.
    pub const ALL: [Purpose; 12] = [
        Purpose::CloudSync,
        Purpose::ContactsMatching,
        Purpose::PreciseLocation,
        Purpose::Camera,
        Purpose::Microphone,
        Purpose::Photos,
        Purpose::RecommendMe,
        Purpose::BeRecommended,
        Purpose::Personalisation,
        Purpose::CrossBorderTransfer,
        Purpose::RealName,
        Purpose::PublicPage,
    ];

    /// The purpose's name on the wire and in storage.
    pub const fn name(self) -> &'static str {
        match self {
            Purpose::CloudSync => "cloud_sync",
            Purpose::ContactsMatching => "contacts_matching",
            Purpose::PreciseLocation => "precise_location",
            Purpose::Camera => "camera",
            Purpose::Microphone => "microphone",
            Purpose::Photos => "photos",
            Purpose::RecommendMe => "recommend_me",
            Purpose::BeRecommended => "be_recommended",
            Purpose::Personalisation => "personalisation",
            Purpose::CrossBorderTransfer => "cross_border_transfer",
            Purpose::RealName => "real_name",
            Purpose::PublicPage => "public_page",
        }
    }

    /// Its name and what granting it allows, in `lang` (`words.rs`).
    pub const fn words(self, lang: Lang) -> Words {
        words::words(self, lang)
    }

    /// Whether the purpose concerns sensitive personal information (G2.a).
    pub const fn sensitive(self) -> bool {
        matches!(
            self,
            Purpose::ContactsMatching
                | Purpose::PreciseLocation
                | Purpose::Camera
                | Purpose::Microphone
                | Purpose::Photos
                | Purpose::RealName
        )
    }
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The name is not one of [`Purpose::ALL`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownPurpose;

impl FromStr for Purpose {
    type Err = UnknownPurpose;
    fn from_str(s: &str) -> Result<Self, UnknownPurpose> {
        Purpose::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or(UnknownPurpose)
    }
}

/// Errors of the consent ledger.
#[derive(Debug, thiserror::Error)]
pub enum ConsentError {
    #[error("this needs your consent to the `{0}` purpose; grant it in your privacy settings")]
    NotGranted(Purpose),
    /// Granted, but a policy version narrowing the user's rights is in effect and the user has
    /// not accepted it (7.a).
    #[error(
        "optional features are paused until you accept the privacy policy in effect (GET /api/v1/me/policy, POST /api/v1/me/policy/accept)"
    )]
    Paused(Purpose),
    /// A minor asked to grant a purpose their guardian has not agreed to (6.a).
    #[error(
        "you are under the age of consent: `{0}` needs your guardian's consent first (POST /api/v1/me/guardian-consent)"
    )]
    GuardianRequired(Purpose),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One purpose's current state and its history, for the privacy centre.
#[derive(Debug, Clone)]
pub struct PurposeState {
    pub purpose: Purpose,
    pub granted: bool,
    /// When the current state was decided; `None` if never decided (ungranted by default).
    pub since: Option<Millis>,
    pub history: Vec<Decision>,
}

/// One recorded grant or revocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub granted: bool,
    pub at: Millis,
    pub policy_version: String,
    pub device_id: String,
}

/// Handle to the consent ledger.
#[derive(Debug, Clone)]
pub struct Consents {
    store: Store,
    clock: SharedClock,
}

impl Consents {
    /// The audit log names users by their own pseudonym key (`storage/audit.rs`).
    pub fn new(store: Store, clock: SharedClock) -> Self {
        Consents { store, clock }
    }

    /// Succeeds only if `user` currently grants `purpose` and it is not paused by a policy
    /// version the user has yet to accept. Call it where the data is used.
    pub async fn require(&self, user: u64, purpose: Purpose) -> Result<(), ConsentError> {
        match self
            .store
            .purpose_status(user, purpose.name(), self.clock.now())
            .await?
        {
            PurposeStatus::Granted => Ok(()),
            PurposeStatus::NotGranted => Err(ConsentError::NotGranted(purpose)),
            PurposeStatus::Paused { .. } => Err(ConsentError::Paused(purpose)),
        }
    }

    /// Grants or revokes; records the decision if it changes the state. Returns the state.
    /// A `minor` may grant only what their recorded guardian consent covers.
    pub async fn set(
        &self,
        user: u64,
        purpose: Purpose,
        granted: bool,
        minor: bool,
        policy_version: &str,
        device_id: &str,
    ) -> Result<PurposeState, ConsentError> {
        if granted
            && minor
            && !self
                .store
                .guardian_of(user)
                .await?
                .is_some_and(|g| g.covers(purpose.name()))
        {
            return Err(ConsentError::GuardianRequired(purpose));
        }
        let at = self.clock.now();
        let event = ConsentEvent {
            purpose: purpose.name().to_string(),
            granted,
            at,
            policy_version: policy_version.to_string(),
            device_id: device_id.to_string(),
        };
        let verb = if granted { "grant" } else { "revoke" };
        let audit = AuditEntry {
            at,
            actor: "user".into(),
            action: format!("consent.{verb}:{}", purpose.name()),
            target: String::new(),
            subject: Some(user),
            detail: format!("policy {policy_version}"),
        };
        self.store.record_consent(user, event, Some(audit)).await?;
        let all = self.list(user).await?;
        all.into_iter()
            .find(|s| s.purpose == purpose)
            .ok_or(ConsentError::Store(StoreError::Corrupt("consent")))
    }

    /// Every purpose with its state and history.
    pub async fn list(&self, user: u64) -> Result<Vec<PurposeState>, ConsentError> {
        let (latest, history) = self.store.consents_of(user).await?;
        Ok(Purpose::ALL
            .into_iter()
            .map(|p| {
                let current = latest.iter().find(|e| e.purpose == p.name());
                PurposeState {
                    purpose: p,
                    granted: current.is_some_and(|e| e.granted),
                    since: current.map(|e| e.at),
                    history: history
                        .iter()
                        .filter(|e| e.purpose == p.name())
                        .map(|e| Decision {
                            granted: e.granted,
                            at: e.at,
                            policy_version: e.policy_version.clone(),
                            device_id: e.device_id.clone(),
                        })
                        .collect(),
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::ManualClock;
    use std::sync::Arc;

    #[test]
    fn purpose_names_round_trip_and_unknown_is_refused() {
        for p in Purpose::ALL {
            assert_eq!(p.name().parse::<Purpose>(), Ok(p));
        }
        assert_eq!("location".parse::<Purpose>(), Err(UnknownPurpose));
    }

    #[tokio::test]
    async fn require_follows_grant_and_revocation_of_that_purpose_only() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(&dir.path().join("n.redb"), |_| Ok(None)).unwrap();
        let clock = Arc::new(ManualClock::new(Millis(1_000)));
        let c = Consents::new(store, clock.clone());
        for p in Purpose::ALL {
            assert!(matches!(c.require(1, p).await, Err(ConsentError::NotGranted(q)) if q == p));
        }
        c.set(1, Purpose::Photos, true, false, "v1", "dev")
            .await
            .unwrap();
        c.require(1, Purpose::Photos).await.unwrap();
        assert!(
            c.require(1, Purpose::Camera).await.is_err(),
            "other purposes stay off"
        );
        assert!(
            c.require(2, Purpose::Photos).await.is_err(),
            "other users stay off"
        );
        clock.advance_ms(5);
        let s = c
            .set(1, Purpose::Photos, false, false, "v1", "dev")
            .await
            .unwrap();
        assert!(!s.granted);
        assert_eq!(s.since, Some(Millis(1_005)));
        assert_eq!(s.history.len(), 2);
        assert!(c.require(1, Purpose::Photos).await.is_err());
    }
}
