//! Minors (6.a–c): a user whose birthday is less than `privacy.adult_age` years ago is a minor;
//! each optional purpose they grant needs a recorded guardian consent that names it (checked in
//! `Consents::set`). The admin finds minors holding optional data without such consent and
//! erases it.

use std::str::FromStr;

use super::PrivacyError;
use crate::accounts::Accounts;
use crate::consents::{Consents, Purpose};
use crate::profile::{Field, FieldChange, ProfilePatch};
use crate::time::Date;
use crate::time::{Millis, SharedClock};
use storage::{AuditEntry, Dec, Enc, GuardianRecord, Store};

/// Whole years from `birth` to `today`.
fn age(birth: Date, today: Date) -> u16 {
    let mut years = today.year.saturating_sub(birth.year);
    if (today.month, today.day) < (birth.month, birth.day) {
        years = years.saturating_sub(1);
    }
    years
}

/// A guardian consent as its minor sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guardian {
    pub name: String,
    pub contact: String,
    pub purposes: Vec<Purpose>,
    pub recorded: Millis,
}

/// A minor holding optional data that no guardian consent covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub user: u64,
    pub handle: String,
    /// Granted purposes the guardian consent does not cover.
    pub purposes: Vec<Purpose>,
    /// Optional profile fields (besides the birthday that makes them a minor), when there is
    /// no guardian consent at all.
    pub fields: Vec<Field>,
}

const SEAL_KIND: &[u8] = b"guardian";

/// Handle to the minors rules.
#[derive(Debug, Clone)]
pub struct Minors {
    store: Store,
    accounts: Accounts,
    consents: Consents,
    clock: SharedClock,
    adult_age: u16,
}

impl Minors {
    pub fn new(
        store: Store,
        accounts: Accounts,
        consents: Consents,
        clock: SharedClock,
        adult_age: u16,
    ) -> Self {
        Minors {
            store,
            accounts,
            consents,
            clock,
            adult_age,
        }
    }

    /// Whether `user`'s birthday makes them a minor today (no birthday: not known to be one).
    pub async fn is_minor(&self, user: u64) -> Result<bool, PrivacyError> {
        let own = self.accounts.own(user).await?;
        Ok(self.minor_by(&own.profile))
    }

    fn minor_by(&self, profile: &crate::profile::Profile) -> bool {
        profile
            .fields
            .get(&Field::Birthday)
            .and_then(|(b, _)| crate::time::parse_date(b))
            .is_some_and(|b| age(b, Date::of(self.clock.now())) < self.adult_age)
    }

    /// Records (replacing any earlier one) a guardian's consent to `purposes` for a minor.
    pub async fn record_guardian(
        &self,
        user: u64,
        name: &str,
        contact: &str,
        purposes: &[String],
    ) -> Result<Guardian, PrivacyError> {
        if !self.is_minor(user).await? {
            return Err(PrivacyError::NotMinor);
        }
        let invalid = |field, reason: &str| PrivacyError::Invalid {
            field,
            reason: reason.into(),
        };
        let check = |field, v: &str, max: usize| {
            let n = v.trim().chars().count();
            if n == 0 || n > max || v.chars().any(char::is_control) {
                Err(invalid(field, &format!("must be 1 to {max} characters")))
            } else {
                Ok(v.trim().to_string())
            }
        };
        let name = check("guardian_name", name, 64)?;
        let contact = check("guardian_contact", contact, 128)?;
        if purposes.is_empty() {
            return Err(invalid("purposes", "name at least one purpose"));
        }
        let mut list = Vec::new();
        for p in purposes {
            let p = Purpose::from_str(p).map_err(|_| {
                invalid(
                    "purposes",
                    &format!("`{p}` is not a purpose (GET /api/v1/me/consents)"),
                )
            })?;
            if !list.contains(&p) {
                list.push(p);
            }
        }
        let now = self.clock.now();
        let plain = Enc::new(1).str(&name).str(&contact).finish();
        let sealed = self.accounts.seal_personal(user, SEAL_KIND, &plain).await?;
        self.store
            .set_guardian(
                user,
                GuardianRecord {
                    recorded: now,
                    purposes: list.iter().map(|p| p.name().to_string()).collect(),
                    sealed,
                },
            )
            .await?;
        self.store
            .audit(AuditEntry {
                at: now,
                actor: "user".into(),
                action: "guardian.consent".into(),
                target: String::new(),
                subject: Some(user),
                detail: list.iter().map(|p| p.name()).collect::<Vec<_>>().join(","),
            })
            .await?;
        Ok(Guardian {
            name,
            contact,
            purposes: list,
            recorded: now,
        })
    }

    /// The recorded guardian consent, if any.
    pub async fn guardian(&self, user: u64) -> Result<Option<Guardian>, PrivacyError> {
        let Some(rec) = self.store.guardian_of(user).await? else {
            return Ok(None);
        };
        let plain = self
            .accounts
            .open_personal(user, SEAL_KIND, &rec.sealed)
            .await?;
        let mut d = Dec::new(&plain, "guardian consent", 1)?;
        let (name, contact) = (d.string()?, d.string()?);
        d.end()?;
        Ok(Some(Guardian {
            name,
            contact,
            purposes: rec
                .purposes
                .iter()
                .filter_map(|p| Purpose::from_str(p).ok())
                .collect(),
            recorded: rec.recorded,
        }))
    }

    /// What a minor holds without their guardian's consent; `None` if they are not a minor or
    /// hold nothing uncovered.
    async fn finding(&self, user: u64, handle: String) -> Result<Option<Finding>, PrivacyError> {
        let own = match self.accounts.own(user).await {
            Ok(o) => o,
            Err(crate::accounts::AccountError::NoSuchUser) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if !self.minor_by(&own.profile) {
            return Ok(None);
        }
        let guardian = self.store.guardian_of(user).await?;
        let purposes: Vec<Purpose> = self
            .consents
            .list(user)
            .await?
            .into_iter()
            .filter(|s| {
                s.granted
                    && !guardian
                        .as_ref()
                        .is_some_and(|g| g.covers(s.purpose.name()))
            })
            .map(|s| s.purpose)
            .collect();
        let fields: Vec<Field> = match guardian {
            Some(_) => Vec::new(),
            None => own
                .profile
                .fields
                .keys()
                .copied()
                .filter(|f| *f != Field::Birthday)
                .collect(),
        };
        if purposes.is_empty() && fields.is_empty() {
            return Ok(None);
        }
        Ok(Some(Finding {
            user,
            handle,
            purposes,
            fields,
        }))
    }

    /// Every minor holding optional data without guardian consent.
    pub async fn findings(&self) -> Result<Vec<Finding>, PrivacyError> {
        let mut out = Vec::new();
        for a in self.store.accounts().await? {
            if a.wrapped_key.is_empty() {
                continue;
            }
            if let Some(f) = self.finding(a.id, a.handle).await? {
                out.push(f);
            }
        }
        Ok(out)
    }

    /// Erases what [`Minors::findings`] lists: revokes the uncovered purposes (which deletes what
    /// was derived for them) and clears the optional profile fields; each user's purge is
    /// audited. Returns what was erased.
    pub async fn purge(&self) -> Result<Vec<Finding>, PrivacyError> {
        let found = self.findings().await?;
        for f in &found {
            let own = self.accounts.own(f.user).await?;
            for p in &f.purposes {
                self.consents
                    .set(f.user, *p, false, true, &own.policy_version, "node-admin")
                    .await?;
            }
            if !f.fields.is_empty() {
                let patch = ProfilePatch {
                    fields: f.fields.iter().map(|x| (*x, FieldChange::Clear)).collect(),
                    ..ProfilePatch::default()
                };
                self.accounts.update_profile(f.user, patch).await?;
            }
            self.store
                .audit(AuditEntry {
                    at: self.clock.now(),
                    actor: "admin".into(),
                    action: "minors.purge".into(),
                    target: String::new(),
                    subject: Some(f.user),
                    detail: format!(
                        "revoked {}; cleared {}",
                        f.purposes
                            .iter()
                            .map(|p| p.name())
                            .collect::<Vec<_>>()
                            .join(","),
                        f.fields
                            .iter()
                            .map(|x| x.name())
                            .collect::<Vec<_>>()
                            .join(",")
                    ),
                })
                .await?;
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Date {
        crate::time::parse_date(s).unwrap()
    }

    #[test]
    fn age_counts_whole_years_turning_on_the_birthday() {
        assert_eq!(age(d("2008-11-30"), d("2026-11-29")), 17);
        assert_eq!(age(d("2008-11-29"), d("2026-11-29")), 18);
        assert_eq!(age(d("2008-02-29"), d("2026-02-28")), 17);
        assert_eq!(age(d("2008-02-29"), d("2026-03-01")), 18);
        assert_eq!(age(d("2030-01-01"), d("2026-03-01")), 0);
    }
}
