//! Node signing keys: ed25519 with an id (`ed25519:<id>`) and a validity period. Verification is
//! strict (`verify_strict`: canonical `s`, no small-order `R`) and refuses public keys of small
//! order, whose signatures prove nothing.

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

/// Errors of key handling and verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    #[error("key id must be `ed25519:` followed by 1 to 32 of A-Z a-z 0-9 _")]
    BadKeyId,
    #[error("public key is not 32 bytes of a valid curve point")]
    BadPublicKey,
    #[error("public key is of small order")]
    WeakPublicKey,
    #[error("signature is not 64 bytes")]
    BadSignatureLength,
    #[error("signature does not verify")]
    BadSignature,
    #[error("not valid base64")]
    BadBase64,
    #[error("the system random number generator failed")]
    Random,
}

/// A key id such as `ed25519:a1`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(String);

impl KeyId {
    pub fn parse(s: &str) -> Result<KeyId, KeyError> {
        let rest = s.strip_prefix("ed25519:").ok_or(KeyError::BadKeyId)?;
        let ok = (1..=32).contains(&rest.len())
            && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if ok {
            Ok(KeyId(s.to_string()))
        } else {
            Err(KeyError::BadKeyId)
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A node's private signing key with its id and the end of its validity (Unix ms).
pub struct NodeKey {
    pub id: KeyId,
    pub valid_until: u64,
    signing: SigningKey,
}

impl std::fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeKey")
            .field("id", &self.id)
            .field("valid_until", &self.valid_until)
            .finish_non_exhaustive()
    }
}

impl NodeKey {
    /// A key from its 32-byte seed.
    pub fn from_seed(id: KeyId, seed: &[u8; 32], valid_until: u64) -> NodeKey {
        NodeKey {
            id,
            valid_until,
            signing: SigningKey::from_bytes(seed),
        }
    }

    /// A new random key.
    pub fn generate(id: KeyId, valid_until: u64) -> Result<NodeKey, KeyError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|_| KeyError::Random)?;
        Ok(Self::from_seed(id, &seed, valid_until))
    }

    /// The seed, for storing the key.
    pub fn seed(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.signing.sign(msg).to_bytes()
    }

    pub fn public(&self) -> PublicKey {
        PublicKey {
            id: self.id.clone(),
            valid_until: self.valid_until,
            key: self.signing.verifying_key(),
        }
    }
}

/// A node's public key as published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub id: KeyId,
    pub valid_until: u64,
    key: VerifyingKey,
}

impl PublicKey {
    /// A public key from its 32 bytes; refuses invalid encodings and small-order points.
    pub fn from_bytes(id: KeyId, bytes: &[u8], valid_until: u64) -> Result<PublicKey, KeyError> {
        let arr: &[u8; 32] = bytes.try_into().map_err(|_| KeyError::BadPublicKey)?;
        let key = VerifyingKey::from_bytes(arr).map_err(|_| KeyError::BadPublicKey)?;
        if key.is_weak() {
            return Err(KeyError::WeakPublicKey);
        }
        Ok(PublicKey {
            id,
            valid_until,
            key,
        })
    }

    pub fn to_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// Verifies `sig` over `msg` strictly.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<(), KeyError> {
        verify_strict(&self.key, msg, sig)
    }
}

fn verify_strict(key: &VerifyingKey, msg: &[u8], sig: &[u8]) -> Result<(), KeyError> {
    let arr: &[u8; 64] = sig.try_into().map_err(|_| KeyError::BadSignatureLength)?;
    key.verify_strict(msg, &Signature::from_bytes(arr))
        .map_err(|_| KeyError::BadSignature)
}

/// Unpadded standard base64, as signatures and keys travel.
pub fn b64(bytes: &[u8]) -> String {
    STANDARD_NO_PAD.encode(bytes)
}

pub fn unb64(s: &str) -> Result<Vec<u8>, KeyError> {
    STANDARD_NO_PAD.decode(s).map_err(|_| KeyError::BadBase64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn vector(path: &str) -> Value {
        let p = crate::vector_path(path);
        let text = std::fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("vector file {}: {e}", p.display()));
        serde_json::from_str(&text).unwrap()
    }

    fn hex(v: &Value) -> Vec<u8> {
        hex::decode(v.as_str().unwrap()).unwrap()
    }

    fn id() -> KeyId {
        KeyId::parse("ed25519:t").unwrap()
    }

    #[test]
    fn base64_has_one_spelling_unpadded_with_zero_trailing_bits() {
        assert_eq!(unb64("AA").unwrap(), vec![0]);
        for bad in ["AA==", "AB", "A", "AA\n", "_w", "-w"] {
            assert_eq!(unb64(bad), Err(KeyError::BadBase64), "{bad}");
        }
    }

    #[test]
    fn wycheproof_all_150_cases() {
        let file = vector("wycheproof/ed25519_test.json");
        let mut run = 0;
        for group in file["testGroups"].as_array().unwrap() {
            let pk = hex(&group["publicKey"]["pk"]);
            for t in group["tests"].as_array().unwrap() {
                run += 1;
                let accepted = PublicKey::from_bytes(id(), &pk, 0)
                    .and_then(|k| k.verify(&hex(&t["msg"]), &hex(&t["sig"])))
                    .is_ok();
                let valid = t["result"] == "valid";
                assert_eq!(accepted, valid, "tcId {} ({})", t["tcId"], t["comment"]);
            }
        }
        assert_eq!(run, 150, "every case ran");
    }

    #[test]
    fn rfc8032_section_7_1_sign_and_verify() {
        let file = vector("rfc8032/ed25519_rfc8032_section7_1.json");
        let cases = file["cases"].as_array().expect("cases").clone();
        assert_eq!(cases.len(), 3);
        for c in cases {
            let seed: [u8; 32] = hex(&c["secret_seed_hex"]).try_into().unwrap();
            let key = NodeKey::from_seed(id(), &seed, 0);
            assert_eq!(
                key.public().to_bytes().to_vec(),
                hex(&c["public_key_hex"]),
                "{}",
                c["name"]
            );
            let msg = hex(&c["message_hex"]);
            let sig = key.sign(&msg);
            assert_eq!(
                sig.to_vec(),
                hex(&c["signature_hex"]),
                "deterministic signature, {}",
                c["name"]
            );
            key.public().verify(&msg, &sig).unwrap();
        }
    }

    #[test]
    fn small_order_public_keys_are_refused() {
        // The identity point (encoded as y = 1) has order 1.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(
            PublicKey::from_bytes(id(), &identity, 0),
            Err(KeyError::WeakPublicKey)
        );
    }

    #[test]
    fn key_ids_are_checked() {
        assert!(KeyId::parse("ed25519:a1_B").is_ok());
        for bad in [
            "a1",
            "ed25519:",
            "ed25519:a-b",
            "rsa:a",
            &format!("ed25519:{}", "a".repeat(33)),
        ] {
            assert!(KeyId::parse(bad).is_err(), "{bad}");
        }
    }
}
