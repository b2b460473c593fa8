//! The public page (1.1.2.b): a user's public profile that anyone — people who are not their
//! friends, users of other nodes, visitors without an account — may read. Turning it on needs
//! the `public_page` purpose and the user's phone number confirmed with their password; it is
//! shown only while that purpose is granted and not paused.

use super::PrivacyError;
use crate::accounts::{AccountError, Accounts, PublicView, validate_phone};
use crate::consents::{ConsentError, Consents, Purpose};
use crate::time::{Millis, SharedClock};
use storage::{PrivacyRefusal, Store};

/// No local user has this id (the top bit marks remote users): a viewer who is nobody.
const ANONYMOUS: u64 = u64::MAX;

/// Handle to public pages.
#[derive(Debug, Clone)]
pub struct PublicPage {
    store: Store,
    accounts: Accounts,
    consents: Consents,
    clock: SharedClock,
}

impl PublicPage {
    pub fn new(store: Store, accounts: Accounts, consents: Consents, clock: SharedClock) -> Self {
        PublicPage {
            store,
            accounts,
            consents,
            clock,
        }
    }

    /// Turns the page on after checking the purpose, the password and that `phone` is the
    /// account's number. Returns when it was enabled.
    pub async fn enable(
        &self,
        user: u64,
        phone: &str,
        password: &str,
    ) -> Result<Millis, PrivacyError> {
        self.consents.require(user, Purpose::PublicPage).await?;
        self.accounts.check_password(user, password).await?;
        let phone = validate_phone(phone)?;
        if self.accounts.own(user).await?.phone != phone {
            return Err(PrivacyError::WrongPhone);
        }
        match self
            .store
            .set_public_page(user, true, self.clock.now())
            .await?
        {
            Ok(()) => Ok(self
                .store
                .public_page_of(user)
                .await?
                .unwrap_or(self.clock.now())),
            Err(PrivacyRefusal::NotGranted) => {
                Err(ConsentError::NotGranted(Purpose::PublicPage).into())
            }
            Err(_) => Err(PrivacyError::NotFound),
        }
    }

    /// Turns the page off.
    pub async fn disable(&self, user: u64) -> Result<(), PrivacyError> {
        self.store
            .set_public_page(user, false, self.clock.now())
            .await?
            .map_err(|_| PrivacyError::NotFound)
    }

    /// When the page was enabled, if it is.
    pub async fn status(&self, user: u64) -> Result<Option<Millis>, PrivacyError> {
        Ok(self.store.public_page_of(user).await?)
    }

    /// The page of `handle` as anyone sees it: nickname, avatar and public fields. `NotFound`
    /// when there is no such user, no page, or the purpose is revoked or paused.
    pub async fn view(&self, handle: &str) -> Result<PublicView, PrivacyError> {
        let user = self
            .store
            .user_by_handle(handle.to_lowercase())
            .await?
            .ok_or(PrivacyError::NotFound)?;
        if self.store.public_page_of(user).await?.is_none()
            || self
                .consents
                .require(user, Purpose::PublicPage)
                .await
                .is_err()
        {
            return Err(PrivacyError::NotFound);
        }
        match self.accounts.view(ANONYMOUS, handle).await {
            Ok(v) => Ok(v),
            Err(AccountError::NoSuchUser) => Err(PrivacyError::NotFound),
            Err(e) => Err(e.into()),
        }
    }
}
