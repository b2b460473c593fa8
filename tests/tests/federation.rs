//! The node's self-signed key document at `GET /_federation/v1/keys`.

use http::StatusCode;
use tests::TestNode;

async fn fetch(n: &TestNode) -> federation::KeyDocument {
    let r = n.client().get("/_federation/v1/keys", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["content-type"], "application/json");
    serde_json::from_slice(&r.body).expect("a key document")
}

#[tokio::test]
async fn the_key_document_is_self_signed_and_survives_a_restart() {
    let mut n = TestNode::start().await;
    let doc = fetch(&n).await;
    assert_eq!(doc.server, "localhost");
    let keys = doc.verify("localhost").expect("self-signature verifies");
    assert_eq!(keys.len(), 1);
    assert!(doc.keys.keys().all(|id| id.starts_with("ed25519:")));
    assert!(doc.verify("other.example").is_err());

    n.restart().await;
    let again = fetch(&n).await;
    assert_eq!(again.keys, doc.keys, "the same key after a restart");
    let r = n
        .client()
        .call("POST", "/_federation/v1/keys", None, None)
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
}
