//! Authentication of requests between nodes: the sending node signs the method, path, origin,
//! destination, timestamp and a SHA-256 digest of the body, and sends the result in
//! `Authorization: Shanliao origin="…",destination="…",key="ed25519:…",ts="…",sig="…"`.
//!
//! The receiver refuses a request addressed to another node, one whose timestamp is more than
//! [`MAX_SKEW_MS`] from its own clock, and one whose signature does not verify with the origin's
//! key. Which origins are allowed, and fetching their keys, is the caller's business.

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::canonical::canonical_json;
use crate::envelope::valid_domain;
use crate::keys::{KeyError, KeyId, NodeKey, PublicKey, b64, unb64};

/// How far a request's timestamp may be from the receiver's clock: 5 minutes.
pub const MAX_SKEW_MS: u64 = 5 * 60 * 1000;

const SCHEME: &str = "Shanliao";

/// Why a request was not authenticated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    #[error("malformed Authorization header: {0}")]
    Malformed(&'static str),
    #[error("the request is addressed to {0}, not this node")]
    WrongDestination(String),
    #[error("the request's timestamp is more than 5 minutes from this node's clock")]
    Stale,
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// A parsed request-signature header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestAuth {
    pub origin: String,
    pub destination: String,
    pub key: KeyId,
    pub ts: u64,
    sig: Vec<u8>,
}

/// The string that is signed for a request.
fn signed_text(
    method: &str,
    path: &str,
    origin: &str,
    destination: &str,
    ts: u64,
    body: &[u8],
) -> String {
    let digest = b64(&Sha256::digest(body));
    let v = json!({
        "method": method.to_ascii_uppercase(),
        "path": path,
        "origin": origin,
        "destination": destination,
        "ts": ts,
        "body_sha256": digest,
    });
    canonical_json(&v).unwrap_or_default()
}

/// The `Authorization` header value for a request from `origin` to `destination`.
pub fn sign_request(
    key: &NodeKey,
    method: &str,
    path: &str,
    origin: &str,
    destination: &str,
    ts: u64,
    body: &[u8],
) -> String {
    let sig = key.sign(signed_text(method, path, origin, destination, ts, body).as_bytes());
    format!(
        "{SCHEME} origin=\"{origin}\",destination=\"{destination}\",key=\"{}\",ts=\"{ts}\",sig=\"{}\"",
        key.id.as_str(),
        b64(&sig)
    )
}

impl RequestAuth {
    /// Parses an `Authorization` header value.
    pub fn parse(header: &str) -> Result<RequestAuth, AuthError> {
        let params = header
            .strip_prefix(SCHEME)
            .and_then(|r| r.strip_prefix(' '))
            .ok_or(AuthError::Malformed("scheme"))?;
        let (mut origin, mut destination, mut key, mut ts, mut sig) =
            (None, None, None, None, None);
        for part in params.split(',') {
            let (k, v) = part
                .trim()
                .split_once('=')
                .ok_or(AuthError::Malformed("parameter"))?;
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .ok_or(AuthError::Malformed("quotes"))?;
            let slot = match k {
                "origin" => &mut origin,
                "destination" => &mut destination,
                "key" => &mut key,
                "ts" => &mut ts,
                "sig" => &mut sig,
                _ => return Err(AuthError::Malformed("unknown parameter")),
            };
            if slot.replace(v.to_string()).is_some() {
                return Err(AuthError::Malformed("repeated parameter"));
            }
        }
        let origin = origin
            .filter(|o| valid_domain(o))
            .ok_or(AuthError::Malformed("origin"))?;
        let destination = destination
            .filter(|d| valid_domain(d))
            .ok_or(AuthError::Malformed("destination"))?;
        let key = KeyId::parse(&key.ok_or(AuthError::Malformed("key"))?)?;
        let ts = ts
            .and_then(|t| crate::strict::parse_decimal(&t))
            .ok_or(AuthError::Malformed("ts"))?;
        let sig = unb64(&sig.ok_or(AuthError::Malformed("sig"))?)?;
        Ok(RequestAuth {
            origin,
            destination,
            key,
            ts,
            sig,
        })
    }

    /// Checks destination and time (call before fetching keys, so a bad request costs nothing).
    pub fn check_envelope(&self, our_domain: &str, now: u64) -> Result<(), AuthError> {
        if self.destination != our_domain {
            return Err(AuthError::WrongDestination(self.destination.clone()));
        }
        if self.ts.abs_diff(now) > MAX_SKEW_MS {
            return Err(AuthError::Stale);
        }
        Ok(())
    }

    /// Verifies the signature over this request with the origin's `key`.
    pub fn verify(
        &self,
        key: &PublicKey,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<(), AuthError> {
        let text = signed_text(method, path, &self.origin, &self.destination, self.ts, body);
        Ok(key.verify(text.as_bytes(), &self.sig)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_764_000_000_000;

    fn key() -> NodeKey {
        NodeKey::from_seed(KeyId::parse("ed25519:k1").unwrap(), &[3; 32], u64::MAX)
    }

    fn header(ts: u64) -> String {
        sign_request(
            &key(),
            "PUT",
            "/_federation/v1/transactions/t1",
            "a.example",
            "b.example",
            ts,
            b"{\"x\":1}",
        )
    }

    #[test]
    fn a_signed_request_verifies_and_any_change_fails() {
        let auth = RequestAuth::parse(&header(NOW)).unwrap();
        auth.check_envelope("b.example", NOW + 1000).unwrap();
        let k = key().public();
        auth.verify(&k, "put", "/_federation/v1/transactions/t1", b"{\"x\":1}")
            .unwrap();
        assert!(
            auth.verify(&k, "POST", "/_federation/v1/transactions/t1", b"{\"x\":1}")
                .is_err(),
            "method"
        );
        assert!(
            auth.verify(&k, "PUT", "/_federation/v1/transactions/t2", b"{\"x\":1}")
                .is_err(),
            "path"
        );
        assert!(
            auth.verify(&k, "PUT", "/_federation/v1/transactions/t1", b"{\"x\":2}")
                .is_err(),
            "body"
        );
        let forged = header(NOW).replace("origin=\"a.example\"", "origin=\"c.example\"");
        assert!(
            RequestAuth::parse(&forged)
                .unwrap()
                .verify(&k, "PUT", "/_federation/v1/transactions/t1", b"{\"x\":1}")
                .is_err()
        );
    }

    #[test]
    fn wrong_destination_and_stale_timestamps_are_refused() {
        let auth = RequestAuth::parse(&header(NOW)).unwrap();
        assert_eq!(
            auth.check_envelope("c.example", NOW),
            Err(AuthError::WrongDestination("b.example".into()))
        );
        assert_eq!(
            auth.check_envelope("b.example", NOW + MAX_SKEW_MS + 1),
            Err(AuthError::Stale)
        );
        assert_eq!(
            auth.check_envelope("b.example", NOW - MAX_SKEW_MS - 1),
            Err(AuthError::Stale)
        );
        assert!(auth.check_envelope("b.example", NOW + MAX_SKEW_MS).is_ok());
    }

    #[test]
    fn malformed_headers_are_refused() {
        for bad in [
            "Bearer abc",
            "Shanliao origin=a.example",
            "Shanliao origin=\"a.example\",origin=\"a.example\"",
            "Shanliao origin=\"A!\",destination=\"b.example\",key=\"ed25519:k\",ts=\"1\",sig=\"AA\"",
            "Shanliao origin=\"a.example\",destination=\"b.example\",key=\"rsa:k\",ts=\"1\",sig=\"AA\"",
            "Shanliao origin=\"a.example\",destination=\"b.example\",key=\"ed25519:k\",ts=\"x\",sig=\"AA\"",
            "Shanliao origin=\"a.example\",destination=\"b.example\",key=\"ed25519:k\",ts=\"1\"",
        ] {
            assert!(RequestAuth::parse(bad).is_err(), "{bad}");
        }
    }
}
