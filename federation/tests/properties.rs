//! Property tests of the parsers that face peers: canonical JSON, strict JSON, envelopes and the
//! `Authorization: Shanliao …` header. Arbitrary and mutated inputs never panic and get the
//! documented answer.

use federation::{
    AuthError, Envelope, JsonError, KeyDocument, KeyId, Kind, NodeKey, RequestAuth, canonical_json,
    parse_json, sign_request,
};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn key() -> NodeKey {
    NodeKey::from_seed(KeyId::parse("ed25519:p1").unwrap(), &[9; 32], u64::MAX)
}

/// Any JSON value that has a canonical form: no floats, integers within ±(2^53 − 1).
fn value() -> impl Strategy<Value = Value> {
    let safe = federation::MAX_SAFE_INTEGER as i64;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-safe..=safe).prop_map(Value::from),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn content() -> impl Strategy<Value = Value> {
    let name = prop::collection::vec(prop::sample::select(b"abcdefgh_".to_vec()), 1..8)
        .prop_map(|b| String::from_utf8(b).unwrap_or_default());
    prop::collection::btree_map(name, value(), 0..4)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
}

fn signed(content: Value, ts: u64) -> Envelope {
    let mut e = Envelope::new("e1", "a.example", "b.example", ts, Kind::Message, content).unwrap();
    e.sign(&key()).unwrap();
    e
}

/// Parses an envelope as a receiver does: strict JSON, then the envelope's own checks.
fn receive(text: &[u8]) -> Option<Envelope> {
    Envelope::from_value(parse_json(text).ok()?).ok()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn canonical_form_is_idempotent_and_parses_back_to_the_same_value(v in value()) {
        let c = canonical_json(&v).unwrap();
        let back = parse_json(c.as_bytes()).unwrap();
        prop_assert_eq!(&back, &v);
        prop_assert_eq!(canonical_json(&back).unwrap(), c);
    }

    #[test]
    fn strict_json_never_panics_and_agrees_with_serde_json_when_no_name_repeats(
        bytes in prop::collection::vec(any::<u8>(), 0..256)
    ) {
        match parse_json(&bytes) {
            Ok(v) => prop_assert_eq!(serde_json::from_slice::<Value>(&bytes).ok(), Some(v)),
            Err(JsonError::DuplicateName(_)) => {
                prop_assert!(serde_json::from_slice::<Value>(&bytes).is_ok())
            }
            Err(_) => {}
        }
    }

    #[test]
    fn any_repeated_member_name_in_an_envelope_is_refused(c in content(), at in any::<prop::sample::Index>()) {
        // Repeat one member of some object of the envelope's text (the name and value again).
        let text = signed(c, 1_764_400_000_000).to_json().unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        let mut objects = Vec::new();
        collect_objects(&v, &mut objects);
        let (name, member) = objects[at.index(objects.len())].clone();
        let dup = format!("{},{}", member, member);
        let mutated = text.replacen(&member, &dup, 1);
        prop_assume!(mutated != text);
        prop_assert!(
            matches!(parse_json(mutated.as_bytes()), Err(JsonError::DuplicateName(n)) if n == name),
            "{}", mutated
        );
    }

    #[test]
    fn a_parsed_then_serialised_envelope_verifies_iff_the_original_did(
        c in content(), ts in 0u64..4_000_000_000_000, tamper in any::<bool>()
    ) {
        let mut e = signed(c, ts);
        if tamper {
            e.ts ^= 1;
        }
        let original = e.verify(&key().public()).is_ok();
        prop_assert_eq!(original, !tamper);
        let again = receive(e.to_json().unwrap().as_bytes()).unwrap();
        let text = again.to_json().unwrap();
        let twice = receive(text.as_bytes()).unwrap();
        prop_assert_eq!(twice.verify(&key().public()).is_ok(), original);
    }

    #[test]
    fn any_mutated_byte_of_a_signed_envelope_fails_verification_or_changes_nothing(
        c in content(), at in any::<prop::sample::Index>(), byte in any::<u8>()
    ) {
        let e = signed(c, 1_764_400_000_000);
        let mut text = e.to_json().unwrap().into_bytes();
        let i = at.index(text.len());
        prop_assume!(text[i] != byte);
        text[i] = byte;
        if let Some(got) = receive(&text)
            && got.verify(&key().public()).is_ok()
        {
            // Only a change that leaves the envelope as it was (e.g. an escape spelled
            // differently) may still verify.
            prop_assert_eq!(got, e);
        }
    }

    #[test]
    fn arbitrary_authorization_headers_never_panic_and_are_refused_as_malformed(s in any::<String>()) {
        match RequestAuth::parse(&s) {
            Ok(_) => prop_assert!(s.starts_with("Shanliao ")),
            Err(AuthError::Malformed(_) | AuthError::Key(_)) => {}
            Err(other) => prop_assert!(false, "parse answered {:?}", other),
        }
        if !s.starts_with("Shanliao ") {
            prop_assert_eq!(RequestAuth::parse(&s), Err(AuthError::Malformed("scheme")));
        }
    }

    #[test]
    fn a_mutated_authorization_header_is_refused_or_fails_verification(
        at in any::<prop::sample::Index>(), byte in 0x20u8..0x7f, body in prop::collection::vec(any::<u8>(), 0..64)
    ) {
        let path = "/_federation/v1/transactions/t1";
        let header = sign_request(&key(), "PUT", path, "a.example", "b.example", 1_764_400_000_000, &body);
        let mut h = header.clone().into_bytes();
        let i = at.index(h.len());
        prop_assume!(h[i] != byte);
        h[i] = byte;
        let h = String::from_utf8(h).unwrap();
        match RequestAuth::parse(&h) {
            Err(AuthError::Malformed(_) | AuthError::Key(_)) => {}
            Err(other) => prop_assert!(false, "parse answered {:?}", other),
            Ok(auth) => {
                let original = RequestAuth::parse(&header).unwrap();
                let verifies = auth.verify(&key().public(), "PUT", path, &body).is_ok();
                // Verifying means the header says exactly what was signed (e.g. only the key
                // id changed, which the receiver uses to find the key).
                prop_assert!(!verifies || (auth.origin == original.origin
                    && auth.destination == original.destination
                    && auth.ts == original.ts), "{}", h);
            }
        }
    }

    #[test]
    fn a_request_signature_covers_the_body(body in prop::collection::vec(any::<u8>(), 0..64), flip in any::<prop::sample::Index>()) {
        let path = "/_federation/v1/transactions/t1";
        let header = sign_request(&key(), "PUT", path, "a.example", "b.example", 5, &body);
        let auth = RequestAuth::parse(&header).unwrap();
        prop_assert!(auth.verify(&key().public(), "PUT", path, &body).is_ok());
        let mut other = body.clone();
        if other.is_empty() {
            other.push(0);
        } else {
            let i = flip.index(other.len());
            other[i] ^= 1;
        }
        prop_assert!(auth.verify(&key().public(), "PUT", path, &other).is_err());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn a_mutated_key_document_is_refused_or_lists_exactly_the_published_keys(
        at in any::<prop::sample::Index>(), byte in any::<u8>()
    ) {
        let k = NodeKey::from_seed(KeyId::parse("ed25519:p1").unwrap(), &[9; 32], 4_000_000_000_000);
        let doc = KeyDocument::new("a.example", &k, &[]).unwrap();
        let mut text = serde_json::to_vec(&doc).unwrap();
        let i = at.index(text.len());
        prop_assume!(text[i] != byte);
        text[i] = byte;
        let parsed = parse_json(&text)
            .ok()
            .and_then(|v| serde_json::from_value::<KeyDocument>(v).ok());
        if let Some(d) = parsed
            && let Ok(keys) = d.verify("a.example")
        {
            prop_assert_eq!(d, doc);
            prop_assert_eq!(keys.len(), 1);
        }
    }
}

/// Every object member of `v` (at any depth) as (name, its `"name":value` text in serde_json's
/// compact output).
fn collect_objects(v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                out.push((k.clone(), format!("{}:{}", json!(k), x)));
                collect_objects(x, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_objects(x, out)),
        _ => {}
    }
}
