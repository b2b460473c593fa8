//! Micro-benchmarks of the node's send path: sealing a message body under the author's key,
//! opening it, and a durable commit batch of N concurrent sends through the writer thread
//! (real fsyncs on the temporary directory's disk). `cargo bench -p node`.

use divan::{Bencher, black_box};
use node::{ConvKind, Millis, NewConversation, NewMessage, SecretKey, Store};

fn main() {
    divan::main();
}

const BODY: &[u8] = b"l123 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";

#[divan::bench]
fn seal_a_64_byte_body(b: Bencher) {
    let key = SecretKey::generate().unwrap();
    b.bench(|| {
        key.seal(b"msg/x1:a.example/0123456789abcdef", black_box(BODY))
            .unwrap()
    });
}

#[divan::bench]
fn open_a_64_byte_body(b: Bencher) {
    let key = SecretKey::generate().unwrap();
    let sealed = key.seal(b"aad", BODY).unwrap();
    b.bench(|| key.open(b"aad", black_box(&sealed)).unwrap());
}

/// One iteration = `n` sends submitted together and durably committed (the writer batches them).
#[divan::bench(args = [1, 16, 128, 512], sample_count = 20)]
fn commit_a_batch_of_sends(b: Bencher, n: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(&dir.path().join("bench.redb"), |_| Ok(None)).unwrap();
    rt.block_on(async {
        store
            .create_conversation(NewConversation {
                id: "c:bench".into(),
                no: 1,
                kind: ConvKind::Group,
                name: "bench".into(),
                public: false,
                creator: 1,
                others: (2..=20).collect(),
                now: Millis(1),
                fanout: None,
            })
            .await
            .unwrap()
            .unwrap();
    });
    let mut round = 0u64;
    b.bench_local(|| {
        round += 1;
        rt.block_on(async {
            let mut sends = Vec::with_capacity(n);
            for i in 0..n {
                let store = store.clone();
                sends.push(tokio::spawn(async move {
                    store
                        .send_message(NewMessage {
                            author: 1 + (i as u64 % 20),
                            device_id: "d".into(),
                            txn_id: format!("{round}-{i}"),
                            conv_id: "c:bench".into(),
                            id: [0; 16],
                            ts: Millis(2),
                            body_sealed: BODY.to_vec(),
                            media: None,
                            hosted_here: true,
                            fanout: None,
                        })
                        .await
                        .unwrap()
                }));
            }
            for s in sends {
                s.await.unwrap();
            }
        });
    });
}
