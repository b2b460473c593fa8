//! The key document a node publishes at `GET /_federation/v1/keys`: its current keys and its
//! expired ones (which still verify what they signed while valid), self-signed by a current key
//! over the canonical JSON of the document without `signatures`, and the limits it publishes
//! for what peers send it (`limits`, optional).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::canonical::canonical_json;
use crate::envelope::{EnvelopeError, valid_domain};
use crate::keys::{KeyId, NodeKey, PublicKey, b64, unb64};

/// One published key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishedKey {
    /// Unpadded base64 of the 32-byte public key.
    pub key: String,
    /// End of validity, Unix ms.
    pub valid_until: u64,
}

/// What a node publishes about the sizes it takes from its peers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// The largest media (bytes) a message sent to this node may refer to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_max_bytes: Option<u64>,
}

/// A node's key document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyDocument {
    pub server: String,
    pub keys: BTreeMap<String, PublishedKey>,
    pub old_keys: BTreeMap<String, PublishedKey>,
    /// Absent: the node publishes no limits (the sender learns them only from refusals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
    #[serde(default)]
    pub signatures: BTreeMap<String, BTreeMap<String, String>>,
}

impl KeyDocument {
    /// The document for `server`, signed with `current`; `old` are expired keys still listed.
    pub fn new(
        server: &str,
        current: &NodeKey,
        old: &[PublicKey],
    ) -> Result<KeyDocument, EnvelopeError> {
        Self::with_limits(server, current, old, None)
    }

    /// Like [`KeyDocument::new`], publishing `limits` too (covered by the signature).
    pub fn with_limits(
        server: &str,
        current: &NodeKey,
        old: &[PublicKey],
        limits: Option<Limits>,
    ) -> Result<KeyDocument, EnvelopeError> {
        let publish = |k: &PublicKey| PublishedKey {
            key: b64(&k.to_bytes()),
            valid_until: k.valid_until,
        };
        let mut doc = KeyDocument {
            server: server.to_string(),
            keys: BTreeMap::from([(current.id.as_str().to_string(), publish(&current.public()))]),
            old_keys: old
                .iter()
                .map(|k| (k.id.as_str().to_string(), publish(k)))
                .collect(),
            limits,
            signatures: BTreeMap::new(),
        };
        let sig = current.sign(doc.signing_bytes()?.as_bytes());
        doc.signatures
            .entry(server.to_string())
            .or_default()
            .insert(current.id.as_str().to_string(), b64(&sig));
        Ok(doc)
    }

    fn signing_bytes(&self) -> Result<String, EnvelopeError> {
        let mut v =
            serde_json::to_value(self).map_err(|e| EnvelopeError::Malformed(e.to_string()))?;
        if let serde_json::Value::Object(m) = &mut v {
            m.remove("signatures");
        }
        Ok(canonical_json(&v)?)
    }

    /// Checks the document is for `server` and self-signed by one of its current keys; returns
    /// every key it lists (current and old), each with its validity.
    pub fn verify(&self, server: &str) -> Result<Vec<PublicKey>, EnvelopeError> {
        if self.server != server || !valid_domain(server) {
            return Err(EnvelopeError::Malformed(format!(
                "key document is for {}, not {server}",
                self.server
            )));
        }
        let parse = |(id, k): (&String, &PublishedKey)| -> Result<PublicKey, EnvelopeError> {
            Ok(PublicKey::from_bytes(
                KeyId::parse(id)?,
                &unb64(&k.key)?,
                k.valid_until,
            )?)
        };
        let current: Vec<PublicKey> = self.keys.iter().map(parse).collect::<Result<_, _>>()?;
        let bytes = self.signing_bytes()?;
        let sigs = self
            .signatures
            .get(server)
            .ok_or_else(|| EnvelopeError::Unsigned("any current key".into()))?;
        let signed = current.iter().any(|k| {
            sigs.get(k.id.as_str())
                .is_some_and(|s| unb64(s).is_ok_and(|s| k.verify(bytes.as_bytes(), &s).is_ok()))
        });
        if !signed {
            return Err(EnvelopeError::Unsigned("any current key".into()));
        }
        let mut all = current;
        for k in self.old_keys.iter().map(parse) {
            all.push(k?);
        }
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8, id: &str) -> NodeKey {
        NodeKey::from_seed(KeyId::parse(id).unwrap(), &[seed; 32], 1_000 * seed as u64)
    }

    #[test]
    fn a_document_verifies_and_lists_old_keys_and_tampering_is_caught() {
        let old = key(1, "ed25519:old").public();
        let doc = KeyDocument::new(
            "a.example",
            &key(2, "ed25519:new"),
            std::slice::from_ref(&old),
        )
        .unwrap();
        let wire: KeyDocument =
            serde_json::from_str(&serde_json::to_string(&doc).unwrap()).unwrap();
        let keys = wire.verify("a.example").unwrap();
        assert_eq!(keys.len(), 2);
        assert!(keys.contains(&old));
        assert!(wire.verify("b.example").is_err(), "for another server");
        let mut t = wire.clone();
        t.old_keys.get_mut("ed25519:old").unwrap().valid_until += 1;
        assert!(t.verify("a.example").is_err(), "an extended old key");
        let mut t = wire;
        t.keys.insert(
            "ed25519:x".into(),
            PublishedKey {
                key: b64(&key(3, "ed25519:x").public().to_bytes()),
                valid_until: 9,
            },
        );
        assert!(t.verify("a.example").is_err(), "an added key");
    }

    #[test]
    fn published_limits_are_signed_and_a_document_without_them_still_verifies() {
        let limits = Limits {
            media_max_bytes: Some(5 << 20),
        };
        let doc =
            KeyDocument::with_limits("a.example", &key(2, "ed25519:k"), &[], Some(limits)).unwrap();
        let text = serde_json::to_string(&doc).unwrap();
        assert!(
            text.contains(r#""limits":{"media_max_bytes":5242880}"#),
            "{text}"
        );
        let wire: KeyDocument = serde_json::from_str(&text).unwrap();
        assert!(wire.verify("a.example").is_ok());
        assert_eq!(wire.limits, Some(limits));
        let mut t = wire;
        t.limits = Some(Limits {
            media_max_bytes: Some(6 << 20),
        });
        assert!(t.verify("a.example").is_err(), "a raised limit");
        let plain = KeyDocument::new("a.example", &key(2, "ed25519:k"), &[]).unwrap();
        let text = serde_json::to_string(&plain).unwrap();
        assert!(!text.contains("limits"), "{text}");
        assert!(
            serde_json::from_str::<KeyDocument>(&text)
                .unwrap()
                .verify("a.example")
                .is_ok()
        );
    }
}
