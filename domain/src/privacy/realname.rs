//! Real-name verification (1.1.2.a): the 18-digit resident identity number is checked (format,
//! birth date, GB 11643 check digit), sealed with the name under the user's key, and only ever
//! shown masked. It needs the `real_name` purpose, and revoking that purpose deletes it (in the
//! same transaction as the revocation, `storage::record_consent`).

use super::PrivacyError;
use crate::accounts::Accounts;
use crate::consents::{Consents, Purpose};
use crate::time::Date;
use crate::time::{Millis, SharedClock, days_from_civil};
use storage::{Dec, Enc, PrivacyRefusal, Store};

/// GB 11643 weights of the first 17 digits.
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// The check character for each remainder mod 11.
const CHECK: &[u8; 11] = b"10X98765432";
/// First two digits of the province-level divisions (and 8x for Hong Kong, Macao, Taiwan).
const PROVINCES: [u32; 35] = [
    11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52,
    53, 54, 61, 62, 63, 64, 65, 71, 81, 82, 83,
];

/// Checks a resident identity number and returns it normalised (upper-case `X`). `today`
/// bounds the birth date.
pub fn validate_id_number(s: &str, today: Date) -> Result<String, PrivacyError> {
    let invalid = |reason: &str| PrivacyError::Invalid {
        field: "id_number",
        reason: reason.into(),
    };
    let s = s.trim().to_ascii_uppercase();
    let b = s.as_bytes();
    if b.len() != 18
        || !b[..17].iter().all(u8::is_ascii_digit)
        || !(b[17].is_ascii_digit() || b[17] == b'X')
    {
        return Err(invalid("must be 17 digits and a check digit (0-9 or X)"));
    }
    let num = |r: std::ops::Range<usize>| s[r].parse::<u32>().unwrap_or(0);
    if !PROVINCES.contains(&num(0..2)) {
        return Err(invalid("does not start with a known region code"));
    }
    let (y, m, d) = (num(6..10), num(10..12), num(12..14));
    let birth = crate::time::parse_date(&format!("{y:04}-{m:02}-{d:02}"))
        .ok_or_else(|| invalid("holds an impossible birth date"))?;
    let day = |x: Date| days_from_civil(i64::from(x.year), u32::from(x.month), u32::from(x.day));
    if y < 1900 || day(birth) > day(today) {
        return Err(invalid("holds a birth date outside 1900 to today"));
    }
    let sum: u32 = b[..17]
        .iter()
        .zip(WEIGHTS)
        .map(|(c, w)| u32::from(c - b'0') * w)
        .sum();
    if CHECK[(sum % 11) as usize] != b[17] {
        return Err(invalid("the check digit does not match (GB 11643)"));
    }
    Ok(s)
}

/// `110101199003071234` → `1101**********1234`.
pub fn mask_id_number(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() <= 8 {
        return "*".repeat(chars.len());
    }
    let mut out: String = chars[..4].iter().collect();
    out.push_str(&"*".repeat(chars.len() - 8));
    out.extend(&chars[chars.len() - 4..]);
    out
}

/// `张三丰` → `张**`: the first character, the rest masked.
fn mask_name(name: &str) -> String {
    let mut chars = name.chars();
    let first = chars.next().map(String::from).unwrap_or_default();
    first + &"*".repeat(chars.count().max(1))
}

/// A stored real name as its owner may see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealNameView {
    pub name: String,
    pub id_number: String,
    pub verified: Millis,
}

const SEAL_KIND: &[u8] = b"real_name";

/// Handle to real-name verification.
#[derive(Debug, Clone)]
pub struct RealName {
    store: Store,
    accounts: Accounts,
    consents: Consents,
    clock: SharedClock,
}

impl RealName {
    pub fn new(store: Store, accounts: Accounts, consents: Consents, clock: SharedClock) -> Self {
        RealName {
            store,
            accounts,
            consents,
            clock,
        }
    }

    /// Verifies and stores the user's real name; returns the masked view.
    pub async fn set(
        &self,
        user: u64,
        name: &str,
        id_number: &str,
    ) -> Result<RealNameView, PrivacyError> {
        self.consents.require(user, Purpose::RealName).await?;
        let name = name.trim();
        let n = name.chars().count();
        if n == 0 || n > 64 || name.chars().any(char::is_control) {
            return Err(PrivacyError::Invalid {
                field: "name",
                reason: "must be 1 to 64 characters without control characters".into(),
            });
        }
        let now = self.clock.now();
        let id = validate_id_number(id_number, Date::of(now))?;
        let plain = Enc::new(1).str(name).str(&id).finish();
        let sealed = self.accounts.seal_personal(user, SEAL_KIND, &plain).await?;
        match self.store.set_real_name(user, sealed, now).await? {
            Ok(()) => Ok(RealNameView {
                name: mask_name(name),
                id_number: mask_id_number(&id),
                verified: now,
            }),
            Err(PrivacyRefusal::NotGranted) => {
                Err(crate::consents::ConsentError::NotGranted(Purpose::RealName).into())
            }
            Err(_) => Err(PrivacyError::NotFound),
        }
    }

    /// The stored real name, masked; `None` if there is none.
    pub async fn get(&self, user: u64) -> Result<Option<RealNameView>, PrivacyError> {
        let Some((verified, sealed)) = self.store.real_name_of(user).await? else {
            return Ok(None);
        };
        let plain = self
            .accounts
            .open_personal(user, SEAL_KIND, &sealed)
            .await?;
        let mut d = Dec::new(&plain, "real name", 1)?;
        let (name, id) = (d.string()?, d.string()?);
        d.end()?;
        Ok(Some(RealNameView {
            name: mask_name(&name),
            id_number: mask_id_number(&id),
            verified,
        }))
    }

    /// Deletes the stored real name; false if there was none.
    pub async fn delete(&self, user: u64) -> Result<bool, PrivacyError> {
        Ok(self.store.delete_real_name(user).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> Date {
        crate::time::parse_date("2026-11-29").unwrap()
    }

    /// Builds a number with a correct check digit from its first 17 digits.
    fn with_check(first17: &str) -> String {
        let sum: u32 = first17
            .bytes()
            .zip(WEIGHTS)
            .map(|(c, w)| u32::from(c - b'0') * w)
            .sum();
        format!("{first17}{}", CHECK[(sum % 11) as usize] as char)
    }

    #[test]
    fn the_published_example_number_passes_and_any_changed_digit_fails() {
        // The example in GB 11643-1999 itself.
        assert_eq!(
            validate_id_number("11010519491231002x", today()).unwrap(),
            "11010519491231002X"
        );
        let good = "11010519491231002X";
        for i in 0..17 {
            let mut b = good.as_bytes().to_vec();
            b[i] = if b[i] == b'9' { b'0' } else { b[i] + 1 };
            let changed = String::from_utf8(b).unwrap();
            assert!(
                validate_id_number(&changed, today()).is_err(),
                "{changed} should fail"
            );
        }
    }

    #[test]
    fn format_region_and_birth_date_are_checked() {
        let reason = |s: &str| match validate_id_number(s, today()) {
            Err(PrivacyError::Invalid { reason, .. }) => reason,
            other => panic!("{s}: {other:?}"),
        };
        assert!(reason("1101051949123100").contains("17 digits"));
        assert!(reason("11010519491231002Y").contains("17 digits"));
        assert!(reason(&with_check("99010519491231002")).contains("region"));
        assert!(reason(&with_check("11010519490230002")).contains("impossible"));
        assert!(reason(&with_check("11010518991231002")).contains("1900"));
        assert!(reason(&with_check("11010520271231002")).contains("1900"));
        assert!(validate_id_number(&with_check("44030620261129123"), today()).is_ok());
    }

    #[test]
    fn masks_keep_only_the_ends() {
        assert_eq!(mask_id_number("110101199003071234"), "1101**********1234");
        assert_eq!(mask_name("张三丰"), "张**");
        assert_eq!(mask_name("李"), "李*");
    }
}
