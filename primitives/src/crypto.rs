//! Cryptography at rest and for credentials: the node's master key, per-user data keys wrapped
//! by it, authenticated sealing of personal fields (XChaCha20-Poly1305 with associated data that
//! binds a ciphertext to its row), keyed blind indexes for lookups, bearer tokens, and argon2id.
//!
//! **Invariant:** no key material is ever formatted by `Debug` or logged.

use std::collections::HashMap;
use std::fmt;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    #[error("master key file {path}: {reason}")]
    MasterKeyFile { path: String, reason: String },
    #[error("ciphertext is malformed or was not made with this key")]
    Unseal,
    #[error("the system random number generator failed")]
    Random,
    #[error("password hashing failed")]
    PasswordHash,
}

const SEAL_VERSION: u8 = 1;
const NONCE_LEN: usize = 24;

/// Fills `buf` from the operating system's CSPRNG.
pub fn random_bytes(buf: &mut [u8]) -> Result<(), CryptoError> {
    getrandom::fill(buf).map_err(|_| CryptoError::Random)
}

/// A 256-bit symmetric key used with XChaCha20-Poly1305.
#[derive(Clone)]
pub struct SecretKey([u8; 32]);

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

impl SecretKey {
    pub fn generate() -> Result<Self, CryptoError> {
        let mut k = [0u8; 32];
        random_bytes(&mut k)?;
        Ok(SecretKey(k))
    }

    /// Encrypts `plaintext`; `aad` must be given again to open it (it names the row and field
    /// the ciphertext belongs to, so a ciphertext cannot be moved to another row).
    /// Layout: version (1) ‖ nonce (24) ‖ ciphertext ‖ tag (16).
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let cipher = XChaCha20Poly1305::new(&self.0.into());
        let mut nonce = [0u8; NONCE_LEN];
        random_bytes(&mut nonce)?;
        let ct = cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| CryptoError::Unseal)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
        out.push(SEAL_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Decrypts what [`SecretKey::seal`] produced with the same `aad`.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < 1 + NONCE_LEN + 16 || sealed[0] != SEAL_VERSION {
            return Err(CryptoError::Unseal);
        }
        let nonce: [u8; NONCE_LEN] = sealed[1..1 + NONCE_LEN]
            .try_into()
            .map_err(|_| CryptoError::Unseal)?;
        let cipher = XChaCha20Poly1305::new(&self.0.into());
        cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: &sealed[1 + NONCE_LEN..],
                    aad,
                },
            )
            .map_err(|_| CryptoError::Unseal)
    }

    /// A key derived from this one for a named use (HMAC-SHA256 as a PRF).
    pub fn derive(&self, label: &str) -> SecretKey {
        SecretKey(hmac_sha256(&self.0, label.as_bytes()))
    }

    /// A keyed, deterministic 32-byte index of `value`: lets the node find a row by an
    /// encrypted field (such as the phone number) without storing the field in clear.
    pub fn blind_index(&self, value: &[u8]) -> [u8; 32] {
        hmac_sha256(&self.0, value)
    }
}

pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

/// The node's master key: wraps every user's data key and derives the node's index keys.
/// Clones share the key and one [`Unwrapped`] cache behind one pointer (a clone sits in every
/// connection's handles).
#[derive(Clone, Debug)]
pub struct MasterKey(Arc<MasterInner>);

#[derive(Debug)]
struct MasterInner {
    key: SecretKey,
    unwrapped: Unwrapped,
}

/// Most data keys kept unwrapped (≈ 150 bytes each, so at most ≈ 300 KiB).
const UNWRAPPED_MAX: usize = 2048;

/// Data keys unwrapped recently, each with the wrapped form it came from. Every message an
/// event stream shows is opened with its author's data key, and unwrapping it again for each
/// stream and feed batch was about 5 % of the node's CPU under load. A lookup hits only when
/// the caller presents the same wrapped bytes it read from the store, so a key that was
/// replaced or destroyed there (erasure destroys it first) is never served from here. Erasure
/// also drops the entry ([`MasterKey::forget`]); an unwrap already in flight with bytes read
/// before the destruction may put it back, unreachable as above until evicted. When full, an
/// arbitrary entry makes room.
#[derive(Default)]
pub struct Unwrapped(Mutex<HashMap<u64, KeptKey>>);

/// A kept data key and the wrapped bytes it was unwrapped from.
type KeptKey = (Box<[u8]>, SecretKey);

impl fmt::Debug for Unwrapped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Unwrapped(..)")
    }
}

impl Unwrapped {
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, KeptKey>> {
        // Entries are whole values: a panic elsewhere cannot leave one half-written.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl MasterKey {
    /// Reads the key file, or creates it (mode 0600) when `create` is true and it is missing.
    /// The file holds the key as 64 hex digits so an operator can back it up as text.
    pub fn load_or_create(path: &Path, create: bool) -> Result<Self, CryptoError> {
        let err = |reason: String| CryptoError::MasterKeyFile {
            path: path.display().to_string(),
            reason,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                check_private_mode(path).map_err(err)?;
                let bytes = decode_hex32(text.trim())
                    .ok_or_else(|| err("does not hold 64 hexadecimal digits".into()))?;
                Ok(MasterKey::new(SecretKey(bytes)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                let key = SecretKey::generate()?;
                write_private_file(path, format!("{}\n", encode_hex(&key.0)).as_bytes())
                    .map_err(|e| err(format!("cannot create: {e}")))?;
                Ok(MasterKey::new(key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(err(
                "is missing but the database exists: restore the key file that belongs to this \
                 database (a new key could not read any existing data)"
                    .into(),
            )),
            Err(e) => Err(err(format!("cannot read: {e}"))),
        }
    }

    fn new(key: SecretKey) -> Self {
        MasterKey(Arc::new(MasterInner {
            key,
            unwrapped: Unwrapped::default(),
        }))
    }

    /// A master key made from a given key rather than loaded from its file (tests, tools).
    pub fn from_key(key: SecretKey) -> Self {
        MasterKey::new(key)
    }

    /// Wraps a user's data key; the wrapping is bound to the user id.
    pub fn wrap_data_key(&self, user: u64, key: &SecretKey) -> Result<Vec<u8>, CryptoError> {
        self.0.key.seal(&wrap_aad(user), &key.0)
    }

    /// The data key `wrapped` holds for `user` (from [`Unwrapped`] when it was unwrapped from
    /// the same bytes before).
    pub fn unwrap_data_key(&self, user: u64, wrapped: &[u8]) -> Result<SecretKey, CryptoError> {
        if let Some((from, key)) = self.0.unwrapped.lock().get(&user)
            && **from == *wrapped
        {
            return Ok(key.clone());
        }
        let bytes = self.0.key.open(&wrap_aad(user), wrapped)?;
        let arr: [u8; 32] = bytes.try_into().map_err(|_| CryptoError::Unseal)?;
        let key = SecretKey(arr);
        let mut cache = self.0.unwrapped.lock();
        if cache.len() >= UNWRAPPED_MAX
            && !cache.contains_key(&user)
            && let Some(&evict) = cache.keys().next()
        {
            cache.remove(&evict);
        }
        cache.insert(user, (wrapped.into(), key.clone()));
        Ok(key)
    }

    /// Drops `user`'s unwrapped data key (their account is being erased).
    pub fn forget(&self, user: u64) {
        self.0.unwrapped.lock().remove(&user);
    }

    /// A sealed known value stored in the database, so a wrong key file is detected at start.
    pub fn check_value(&self) -> Result<Vec<u8>, CryptoError> {
        self.0.key.seal(b"shanliao/master-key-check", b"shanliao")
    }

    pub fn verify_check_value(&self, sealed: &[u8]) -> bool {
        self.0
            .key
            .open(b"shanliao/master-key-check", sealed)
            .is_ok_and(|v| v == b"shanliao")
    }

    /// Seals a federation signing key's seed; bound to the key id.
    pub fn seal_node_seed(&self, id: &str, seed: &[u8; 32]) -> Result<Vec<u8>, CryptoError> {
        self.0
            .key
            .seal(format!("shanliao/node-key/{id}").as_bytes(), seed)
    }

    pub fn open_node_seed(&self, id: &str, sealed: &[u8]) -> Result<[u8; 32], CryptoError> {
        let bytes = self
            .0
            .key
            .open(format!("shanliao/node-key/{id}").as_bytes(), sealed)?;
        bytes.try_into().map_err(|_| CryptoError::Unseal)
    }

    /// Key sealing queued envelopes that carry no single user's content (membership lists,
    /// recalls, acknowledgements).
    pub fn outbound_key(&self) -> SecretKey {
        self.0.key.derive("shanliao/outbound/v1")
    }

    /// Key for the hashes erased accounts' handles are kept as.
    pub fn erased_handle_key(&self) -> SecretKey {
        self.0.key.derive("shanliao/erased-handle/v1")
    }

    /// Key sealing backup archives and erasure ledgers (`storage/backup.rs`).
    pub fn backup_key(&self) -> SecretKey {
        self.0.key.derive("shanliao/backup/v1")
    }

    /// Key for the phone-number blind index.
    pub fn phone_index_key(&self) -> SecretKey {
        self.0.key.derive("shanliao/phone-index/v1")
    }

    /// Key for the contact index: HMAC of the client's contact hash (issue 22).
    pub fn contacts_index_key(&self) -> SecretKey {
        self.0.key.derive("shanliao/contacts-index/v1")
    }

    /// Key for the index of public education values (issue 22).
    pub fn education_index_key(&self) -> SecretKey {
        self.0.key.derive("shanliao/education-index/v1")
    }

    /// Key for the index of nearby cells (issue 22).
    pub fn cell_index_key(&self) -> SecretKey {
        self.0.key.derive("shanliao/cell-index/v1")
    }
}

fn wrap_aad(user: u64) -> Vec<u8> {
    let mut aad = b"shanliao/data-key/v1/".to_vec();
    aad.extend_from_slice(&user.to_be_bytes());
    aad
}

/// Writes `bytes` to a new file readable only by its owner (0600), and syncs it.
pub fn write_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

fn check_private_mode(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| e.to_string())?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(format!(
            "is readable by group or others (mode {:o}); run `chmod 600` on it",
            mode & 0o777
        ));
    }
    Ok(())
}

fn encode_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_hex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
        let hex = std::str::from_utf8(chunk).ok()?;
        out[i] = u8::from_str_radix(hex, 16).ok()?;
    }
    Some(out)
}

/// A bearer token as given to a client (256 random bits, base64url), and its stored hash.
#[derive(Clone)]
pub struct Token(String);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(..)")
    }
}

impl Token {
    pub fn generate() -> Result<Self, CryptoError> {
        let mut b = [0u8; 32];
        random_bytes(&mut b)?;
        Ok(Token(URL_SAFE_NO_PAD.encode(b)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `text` could be a token [`Token::generate`] made: 32 bytes in unpadded
    /// base64url (43 characters). Anything else is refused without a lookup.
    pub fn is_well_formed(text: &str) -> bool {
        text.len() == 43 && URL_SAFE_NO_PAD.decode(text).is_ok_and(|b| b.len() == 32)
    }

    /// What the database keeps: SHA-256 of the token text. A stolen database yields no usable
    /// token; 256 random bits need no salt or slow hash.
    pub fn hash_of(text: &str) -> [u8; 32] {
        Sha256::digest(text.as_bytes()).into()
    }
}

/// A random identifier of `n` bytes in base64url (for device ids and the like).
pub fn random_id(n: usize) -> Result<String, CryptoError> {
    let mut b = vec![0u8; n];
    random_bytes(&mut b)?;
    Ok(URL_SAFE_NO_PAD.encode(b))
}

/// argon2id memory in KiB, passes and lanes for new hashes: 7 MiB, t = 5, p = 1 — one of the
/// settings OWASP's password storage guidance lists as equal in strength to its 19 MiB, t = 2
/// baseline (the memory-time product an attacker pays a guess is about the same, 35 against 38
/// MiB-passes). Chosen for its footprint: every hash in flight holds its whole memory, and at
/// 19 MiB that was the largest single item in a small node's peak RSS; it is also no slower
/// (≈ 19 ms a hash here against ≈ 23 ms). Hashes made with other parameters still verify, and
/// are replaced at the account's next successful sign-in ([`needs_rehash`]).
const HASH_M_KIB: u32 = 7 * 1024;
const HASH_T: u32 = 5;
const HASH_P: u32 = 1;

/// A well-formed hash with the production parameters that matches no password anyone types;
/// verified against when an account does not exist.
const DUMMY_PHC: &str = "$argon2id$v=19$m=7168,t=5,p=1$c2hhbmxpYW9kdW1teXNhbHQ$uX6jIxlYpSP7A1RD4KmPXuUQRgz7gSuNIQdqXDjwFyc";

/// argon2id with the production parameters above.
fn argon2() -> Argon2<'static> {
    let params = Params::new(HASH_M_KIB, HASH_T, HASH_P, None)
        .unwrap_or_else(|_| unreachable!("constant argon2 parameters are valid"));
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Whether a stored PHC string was made with other parameters (or another algorithm) than
/// new hashes are, so it should be replaced once the password is known to be right.
pub fn needs_rehash(phc: &str) -> bool {
    let Ok(h) = argon2::PasswordHash::new(phc) else {
        return true;
    };
    let Ok(p) = Params::try_from(&h) else {
        return true;
    };
    h.algorithm.as_str() != "argon2id"
        || h.version != Some(Version::V0x13 as u32)
        || (p.m_cost(), p.t_cost(), p.p_cost()) != (HASH_M_KIB, HASH_T, HASH_P)
}

/// Hashes a password to a PHC string (`$argon2id$v=19$m=7168,t=5,p=1$…`). CPU- and
/// memory-heavy: call it off the async threads.
pub fn hash_password(password: &str) -> Result<String, CryptoError> {
    argon2()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|_| CryptoError::PasswordHash)
}

/// Checks a password against a PHC string. With `None` it still does the full work against a
/// fixed hash and answers false, so a missing account costs the same time as a wrong password.
pub fn verify_password(password: &str, phc: Option<&str>) -> bool {
    match phc {
        Some(h) => argon2().verify_password(password.as_bytes(), h).is_ok(),
        None => {
            let _ = argon2().verify_password(password.as_bytes(), DUMMY_PHC);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_field_opens_only_with_its_key_and_row() {
        let k = SecretKey::generate().unwrap();
        let sealed = k.seal(b"row-1", b"+8613800000000").unwrap();
        assert!(!sealed.windows(14).any(|w| w == b"+8613800000000"));
        assert_eq!(k.open(b"row-1", &sealed).unwrap(), b"+8613800000000");
        assert!(k.open(b"row-2", &sealed).is_err(), "moved to another row");
        let other = SecretKey::generate().unwrap();
        assert!(other.open(b"row-1", &sealed).is_err(), "another key");
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(k.open(b"row-1", &tampered).is_err(), "tampered");
    }

    #[test]
    fn data_key_unwraps_only_for_its_user() {
        let m = MasterKey::from_key(SecretKey::generate().unwrap());
        let dk = SecretKey::generate().unwrap();
        let w = m.wrap_data_key(7, &dk).unwrap();
        assert_eq!(m.unwrap_data_key(7, &w).unwrap().0, dk.0);
        assert!(m.unwrap_data_key(8, &w).is_err());
        // Again, now that 7's key is kept unwrapped: still only for 7, from the same bytes.
        assert_eq!(m.unwrap_data_key(7, &w).unwrap().0, dk.0);
        assert!(m.unwrap_data_key(8, &w).is_err());
    }

    #[test]
    fn a_kept_data_key_is_served_only_for_the_wrapped_bytes_it_came_from() {
        let m = MasterKey::from_key(SecretKey::generate().unwrap());
        let (old, new) = (
            SecretKey::generate().unwrap(),
            SecretKey::generate().unwrap(),
        );
        let w_old = m.wrap_data_key(7, &old).unwrap();
        let w_new = m.wrap_data_key(7, &new).unwrap();
        assert_eq!(m.unwrap_data_key(7, &w_old).unwrap().0, old.0);
        assert_eq!(
            m.unwrap_data_key(7, &w_new).unwrap().0,
            new.0,
            "replaced key"
        );
        // A destroyed (emptied) or damaged wrapped key is refused, not served from memory.
        assert!(m.unwrap_data_key(7, &[]).is_err());
        let mut damaged = w_new.clone();
        *damaged.last_mut().unwrap() ^= 1;
        assert!(m.unwrap_data_key(7, &damaged).is_err());
        // Clones share the kept keys; forgetting drops them for all.
        let c = m.clone();
        assert_eq!(
            c.0.unwrapped.lock().get(&7).map(|(w, _)| w.to_vec()),
            Some(w_new.clone())
        );
        m.forget(7);
        assert!(c.0.unwrapped.lock().get(&7).is_none());
        assert_eq!(c.unwrap_data_key(7, &w_new).unwrap().0, new.0);
    }

    #[test]
    fn kept_data_keys_are_bounded() {
        let m = MasterKey::from_key(SecretKey::generate().unwrap());
        let dk = SecretKey::generate().unwrap();
        for user in 0..UNWRAPPED_MAX as u64 + 10 {
            let w = m.wrap_data_key(user, &dk).unwrap();
            assert_eq!(m.unwrap_data_key(user, &w).unwrap().0, dk.0);
        }
        assert_eq!(m.0.unwrapped.lock().len(), UNWRAPPED_MAX);
    }

    #[test]
    fn master_key_file_is_created_private_and_reloaded() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("master.key");
        assert!(
            MasterKey::load_or_create(&p, false).is_err(),
            "missing and not allowed to create"
        );
        let a = MasterKey::load_or_create(&p, true).unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let b = MasterKey::load_or_create(&p, false).unwrap();
        assert!(b.verify_check_value(&a.check_value().unwrap()));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = MasterKey::load_or_create(&p, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("chmod 600"), "{e}");
    }

    #[test]
    fn password_hash_uses_an_owasp_setting_and_verifies() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=7168,t=5,p=1$"), "{h}");
        assert!(!needs_rehash(&h));
        assert!(verify_password("correct horse", Some(&h)));
        assert!(!verify_password("wrong horse", Some(&h)));
        assert!(!verify_password("correct horse", None));
    }

    #[test]
    fn hashes_with_other_parameters_verify_and_ask_to_be_replaced() {
        let old = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(19 * 1024, 2, 1, None).unwrap(),
        )
        .hash_password(b"correct horse")
        .unwrap()
        .to_string();
        assert!(verify_password("correct horse", Some(&old)));
        assert!(needs_rehash(&old));
        assert!(needs_rehash(
            "$argon2i$v=19$m=7168,t=5,p=1$c2FsdHNhbHQ$aGFzaA"
        ));
        assert!(needs_rehash("not a phc string"));
    }

    #[test]
    fn dummy_hash_parses_with_production_parameters() {
        // If it did not parse, verifying against it would return at once and a missing
        // account would answer measurably faster than a wrong password.
        let parsed = argon2::PasswordHash::new(DUMMY_PHC).expect("valid PHC string");
        assert_eq!(parsed.algorithm.as_str(), "argon2id");
        assert!(!needs_rehash(DUMMY_PHC));
    }

    #[test]
    fn tokens_carry_256_bits_and_hash_stably() {
        let t = Token::generate().unwrap();
        assert_eq!(URL_SAFE_NO_PAD.decode(t.as_str()).unwrap().len(), 32);
        assert_eq!(Token::hash_of(t.as_str()), Token::hash_of(t.as_str()));
        assert_ne!(Token::hash_of(t.as_str()), Token::hash_of("x"));
    }
}
