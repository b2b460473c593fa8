//! Micro-benchmarks of the federation hot path: canonical JSON, signing and verifying an
//! envelope, and parsing one from the wire. `cargo bench -p federation`.

use divan::{Bencher, black_box};
use federation::{Envelope, KeyId, Kind, NodeKey, canonical_json};

fn main() {
    divan::main();
}

fn key() -> NodeKey {
    NodeKey::from_seed(KeyId::parse("ed25519:bench").unwrap(), &[9; 32], u64::MAX)
}

/// A message envelope with a 64-byte text, as the load generator sends.
fn envelope() -> Envelope {
    let content = serde_json::json!({
        "conversation": "x1Yz2AbC3dEf4GhI:a.example", "seq": 12345, "sender": "alice@a.example",
        "ts": 1_764_400_000_000u64, "body": {"type": "text", "text": "l123 ".to_string() + &"x".repeat(59)},
    });
    Envelope::new(
        "a.example/0123456789",
        "a.example",
        "b.example",
        1_764_400_000_000,
        Kind::Message,
        content,
    )
    .unwrap()
}

#[divan::bench]
fn canonical_json_of_a_message(b: Bencher) {
    let v = serde_json::to_value(envelope()).unwrap();
    b.bench(|| canonical_json(black_box(&v)).unwrap());
}

#[divan::bench]
fn sign_a_message_envelope(b: Bencher) {
    let (k, e) = (key(), envelope());
    b.bench(|| {
        let mut e = e.clone();
        e.sign(black_box(&k)).unwrap();
        e
    });
}

#[divan::bench]
fn verify_a_message_envelope(b: Bencher) {
    let k = key();
    let mut e = envelope();
    e.sign(&k).unwrap();
    let public = k.public();
    b.bench(|| black_box(&e).verify(&public).unwrap());
}

#[divan::bench]
fn parse_an_envelope_from_the_wire(b: Bencher) {
    let mut e = envelope();
    e.sign(&key()).unwrap();
    let text = e.to_json().unwrap();
    b.bench(|| Envelope::from_value(serde_json::from_str(black_box(&text)).unwrap()).unwrap());
}
