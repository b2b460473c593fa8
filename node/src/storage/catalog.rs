//! The table catalog: every redb table the node has, its key encoding, and what its values hold.
//! Names follow `key_value`. Every table with personal data has a row in `docs/DATA.md`.

use redb::TableDefinition;

/// `meta`: name → bytes.
/// Keys: `schema_version` (u32 big-endian), `master_key_check` (a value sealed with the master
/// key, to detect a wrong key file at start).
pub const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// `userid_account`: user id (random u64) → encoded [`super::AccountRecord`]
/// (handle, sealed phone, argon2id PHC string, wrapped data key, accepted policy).
pub const USERID_ACCOUNT: TableDefinition<u64, &[u8]> = TableDefinition::new("userid_account");

/// `handle_userid`: handle (lower-case, as registered) → user id.
pub const HANDLE_USERID: TableDefinition<&str, u64> = TableDefinition::new("handle_userid");

/// `phoneindex_userid`: HMAC-SHA256(phone index key, E.164 phone) → user id. The phone itself
/// is only in `userid_account`, sealed.
pub const PHONEINDEX_USERID: TableDefinition<&[u8; 32], u64> =
    TableDefinition::new("phoneindex_userid");

/// `userid_profile`: user id → profile (nickname, avatar, optional fields and their
/// visibility), sealed under the user's data key.
pub const USERID_PROFILE: TableDefinition<u64, &[u8]> = TableDefinition::new("userid_profile");

/// `tokenhash_session`: SHA-256 of a bearer token → encoded [`super::SessionRecord`]
/// (user, device id, times, sealed device description).
pub const TOKENHASH_SESSION: TableDefinition<&[u8; 32], &[u8]> =
    TableDefinition::new("tokenhash_session");

/// `userid_deviceid_tokenhash`: (user id, device id) → token hash; lists a user's sessions.
pub const USERID_DEVICEID_TOKENHASH: TableDefinition<(u64, &str), &[u8; 32]> =
    TableDefinition::new("userid_deviceid_tokenhash");

/// `userid_purpose_consent`: (user id, purpose name) → encoded [`super::ConsentEvent`]: the
/// latest decision for that purpose. Absent means never granted.
pub const USERID_PURPOSE_CONSENT: TableDefinition<(u64, &str), &[u8]> =
    TableDefinition::new("userid_purpose_consent");

/// `userid_seq_consentevent`: (user id, sequence from 0) → encoded [`super::ConsentEvent`]:
/// every grant and revocation, kept for the user's history.
pub const USERID_SEQ_CONSENTEVENT: TableDefinition<(u64, u64), &[u8]> =
    TableDefinition::new("userid_seq_consentevent");
