//! The privacy centre's services beyond consents and policy versions: real-name verification
//! (`realname.rs`), the public page (`page.rs`), minors and their guardians' consent
//! (`minors.rs`). The personal-data export that gathers all of it is the `api` crate's
//! (`export.rs`), since it is written in the client API's JSON shapes.
//!
//! **Invariant:** everything here that holds personal data is sealed under the user's data key
//! before it reaches `storage`, and goes with the purpose that allowed it (G2.e).

mod minors;
mod page;
mod realname;

pub use minors::{Finding, Guardian, Minors};
pub use page::PublicPage;
pub use realname::{RealName, RealNameView};

use crate::accounts::AccountError;
use crate::consents::ConsentError;
use crate::crypto::CryptoError;
use crate::time::Millis;
use storage::StoreError;

/// Errors of the privacy-centre services.
#[derive(Debug, thiserror::Error)]
pub enum PrivacyError {
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// Guardian consent is only recorded for minors.
    #[error(
        "a guardian's consent is recorded only for users under the age of consent (set your birthday first)"
    )]
    NotMinor,
    /// The phone number given does not match the account's.
    #[error("phone: this is not the phone number of your account")]
    WrongPhone,
    /// Asked again before the export interval passed.
    #[error("an export was made recently; the next one is possible at {}", .at.to_rfc3339())]
    TooSoon { at: Millis, wait_secs: u64 },
    #[error("nothing here yet")]
    NotFound,
    #[error(transparent)]
    Consent(#[from] ConsentError),
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}
