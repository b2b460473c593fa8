//! Envelopes: everything that crosses between nodes. An envelope names its origin and
//! destination node, carries a unique id, a timestamp (Unix ms), a kind and a JSON object of
//! content, and is signed by its origin over the canonical JSON (RFC 8785, see `canonical`) of
//! everything except `signatures`. A relayed envelope keeps its origin's signature unchanged,
//! so any node can check who wrote it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::canonical::{CanonicalError, canonical_json};
use crate::keys::{KeyError, KeyId, NodeKey, PublicKey, b64, unb64};

/// What an envelope carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Kind {
    Message,
    Recall,
    Membership,
    Profile,
    Erasure,
    ErasureAck,
    /// Friend requests, answers, cancels and removals between users of two nodes.
    Friend,
    /// A user of the origin acting in a community the destination hosts (issue 23).
    Community,
    /// A new post or comment in a community the origin hosts, for members of the
    /// destination's who may see it (issue 23; queued like any delivery).
    CommunityEvent,
}

/// Oldest an envelope may be when it is received: 30 days after its `ts`. A sender drops (and
/// records as dropped) what waited longer in its queue; a receiver refuses it.
pub const MAX_ENVELOPE_AGE_MS: u64 = 30 * 24 * 60 * 60 * 1000;

/// Errors of envelope handling.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    #[error("malformed envelope: {0}")]
    Malformed(String),
    #[error("envelope is not signed by its origin with key {0}")]
    Unsigned(String),
    #[error(transparent)]
    Canonical(#[from] CanonicalError),
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// An envelope as it travels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    pub id: String,
    pub origin: String,
    pub destination: String,
    pub ts: u64,
    pub kind: Kind,
    pub content: Value,
    /// origin domain → key id → unpadded base64 signature.
    #[serde(default)]
    pub signatures: BTreeMap<String, BTreeMap<String, String>>,
}

/// Checks a node domain: lower-case DNS labels, optionally `:port`.
pub fn valid_domain(s: &str) -> bool {
    let (host, port) = match s.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (s, None),
    };
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        });
    host_ok
        && port.is_none_or(|p| {
            crate::strict::parse_decimal(p).is_some_and(|p| (1..=u64::from(u16::MAX)).contains(&p))
        })
}

/// Checks a domain met through open federation (not configured as a peer): a public DNS name
/// only — no `:port`, at least two labels, a top-level label that is not all digits (so no IP
/// address literal), and nothing under `localhost` (RFC 6761). Such a domain is reached on
/// port 443 of the addresses its name resolves to.
pub fn valid_public_domain(s: &str) -> bool {
    if !valid_domain(s) || s.contains(':') {
        return false;
    }
    let Some((_, tld)) = s.rsplit_once('.') else {
        return false;
    };
    !tld.bytes().all(|b| b.is_ascii_digit()) && tld != "localhost"
}

/// Whether an envelope (or content) time `ts` is acceptable at `now`; see [`Envelope::fresh_at`].
pub fn ts_fresh(ts: u64, now: u64) -> bool {
    ts <= now.saturating_add(crate::MAX_SKEW_MS) && now.saturating_sub(ts) <= MAX_ENVELOPE_AGE_MS
}

impl Envelope {
    /// A new, unsigned envelope. `content` must be a JSON object.
    pub fn new(
        id: &str,
        origin: &str,
        destination: &str,
        ts: u64,
        kind: Kind,
        content: Value,
    ) -> Result<Envelope, EnvelopeError> {
        let e = Envelope {
            id: id.to_string(),
            origin: origin.to_string(),
            destination: destination.to_string(),
            ts,
            kind,
            content,
            signatures: BTreeMap::new(),
        };
        e.check()?;
        Ok(e)
    }

    /// Parses and checks an envelope received as JSON.
    pub fn from_value(v: Value) -> Result<Envelope, EnvelopeError> {
        let e: Envelope =
            serde_json::from_value(v).map_err(|e| EnvelopeError::Malformed(e.to_string()))?;
        e.check()?;
        Ok(e)
    }

    fn check(&self) -> Result<(), EnvelopeError> {
        let bad = |m: &str| Err(EnvelopeError::Malformed(m.to_string()));
        if !(1..=128).contains(&self.id.len()) || !self.id.bytes().all(|b| b.is_ascii_graphic()) {
            return bad("id must be 1 to 128 printable ASCII characters");
        }
        if !valid_domain(&self.origin) || !valid_domain(&self.destination) {
            return bad("origin and destination must be node domains");
        }
        if !self.content.is_object() {
            return bad("content must be a JSON object");
        }
        Ok(())
    }

    /// Whether the envelope's `ts` is acceptable to a receiver whose clock reads `now`: not more
    /// than [`crate::MAX_SKEW_MS`] ahead of it and not more than [`MAX_ENVELOPE_AGE_MS`] behind.
    pub fn fresh_at(&self, now: u64) -> bool {
        ts_fresh(self.ts, now)
    }

    /// The bytes that are signed: the canonical JSON of the envelope without `signatures`.
    pub fn signing_bytes(&self) -> Result<String, EnvelopeError> {
        let mut v =
            serde_json::to_value(self).map_err(|e| EnvelopeError::Malformed(e.to_string()))?;
        if let Value::Object(m) = &mut v {
            m.remove("signatures");
        }
        Ok(canonical_json(&v)?)
    }

    /// Adds the origin's signature with `key`.
    pub fn sign(&mut self, key: &NodeKey) -> Result<(), EnvelopeError> {
        let sig = key.sign(self.signing_bytes()?.as_bytes());
        self.signatures
            .entry(self.origin.clone())
            .or_default()
            .insert(key.id.as_str().to_string(), b64(&sig));
        Ok(())
    }

    /// The key ids the origin signed with.
    pub fn origin_key_ids(&self) -> Vec<KeyId> {
        self.signatures
            .get(&self.origin)
            .map(|m| m.keys().filter_map(|k| KeyId::parse(k).ok()).collect())
            .unwrap_or_default()
    }

    /// Verifies the origin's signature made with `key` (an origin key fetched by the caller).
    pub fn verify(&self, key: &PublicKey) -> Result<(), EnvelopeError> {
        let sig = self
            .signatures
            .get(&self.origin)
            .and_then(|m| m.get(key.id.as_str()))
            .ok_or_else(|| EnvelopeError::Unsigned(key.id.as_str().to_string()))?;
        key.verify(self.signing_bytes()?.as_bytes(), &unb64(sig)?)?;
        Ok(())
    }

    /// The envelope as JSON text for the wire.
    pub fn to_json(&self) -> Result<String, EnvelopeError> {
        serde_json::to_string(self).map_err(|e| EnvelopeError::Malformed(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key() -> NodeKey {
        NodeKey::from_seed(KeyId::parse("ed25519:k1").unwrap(), &[7; 32], u64::MAX)
    }

    fn env() -> Envelope {
        Envelope::new(
            "e1",
            "a.example",
            "b.example",
            1_764_000_000_000,
            Kind::Message,
            json!({"text": "你好", "seq": 3}),
        )
        .unwrap()
    }

    #[test]
    fn a_signed_envelope_verifies_after_the_wire_and_a_relay() {
        let mut e = env();
        e.sign(&key()).unwrap();
        // Through JSON text, as a peer receives it, and on to a third node unchanged.
        let received =
            Envelope::from_value(serde_json::from_str(&e.to_json().unwrap()).unwrap()).unwrap();
        let relayed = Envelope::from_value(serde_json::to_value(&received).unwrap()).unwrap();
        relayed.verify(&key().public()).unwrap();
        assert_eq!(
            relayed.origin_key_ids(),
            vec![KeyId::parse("ed25519:k1").unwrap()]
        );
    }

    #[test]
    fn any_change_breaks_the_signature() {
        let mut e = env();
        e.sign(&key()).unwrap();
        let mut tampered = Vec::new();
        let mut t = e.clone();
        t.destination = "c.example".into();
        tampered.push(t);
        let mut t = e.clone();
        t.ts += 1;
        tampered.push(t);
        let mut t = e.clone();
        t.content["seq"] = json!(4);
        tampered.push(t);
        let mut t = e.clone();
        t.kind = Kind::Recall;
        tampered.push(t);
        let mut t = e.clone();
        t.origin = "evil.example".into();
        t.signatures = BTreeMap::from([("evil.example".into(), e.signatures["a.example"].clone())]);
        tampered.push(t);
        for t in tampered {
            assert!(t.verify(&key().public()).is_err(), "{t:?}");
        }
        let other = NodeKey::from_seed(KeyId::parse("ed25519:k1").unwrap(), &[8; 32], u64::MAX);
        assert!(
            e.verify(&other.public()).is_err(),
            "another key with the same id"
        );
    }

    #[test]
    fn malformed_envelopes_are_refused() {
        let good = serde_json::to_value(env()).unwrap();
        for (field, value) in [
            ("origin", json!("Not A Domain")),
            ("destination", json!("")),
            ("content", json!([1])),
            ("id", json!("")),
            ("kind", json!("telepathy")),
            ("ts", json!(-1)),
        ] {
            let mut v = good.clone();
            v[field] = value;
            assert!(Envelope::from_value(v).is_err(), "{field}");
        }
        let mut v = good.clone();
        v["extra"] = json!(1);
        assert!(Envelope::from_value(v).is_err(), "unknown field");
        let mut v = good;
        v["content"] = json!({"f": 1.5});
        let e = Envelope::from_value(v).unwrap();
        assert!(matches!(
            e.signing_bytes(),
            Err(EnvelopeError::Canonical(CanonicalError::Float))
        ));
    }
}
