//! Discovery figures for `docs/PERFORMANCE.md` (issue 22), at the store with real redb files on
//! the temporary directory's disk: the suggestion read for a user with 500 friends among
//! 100,000 users, matching a 2,000-number contact upload among 100,000 findable users
//! (the keyed index of each hash included), and a nearby lookup among 100,000 located users
//! (the 19 cells' keyed indexes included). Before the timings it prints the database growth
//! of the 100,000 users' friend graphs. `cargo bench -p node --bench discovery`.

use std::sync::OnceLock;

use divan::{Bencher, black_box};
use node::{BenchSeed, Millis, SecretKey, Store};
use sha2::{Digest, Sha256};

const USERS: u64 = 100_000;
const ME: u64 = 1;
const NOW: Millis = Millis(1_000_000);

struct World {
    rt: tokio::runtime::Runtime,
    store: Store,
    contacts_key: SecretKey,
    cell_key: SecretKey,
    _dir: tempfile::TempDir,
}

/// A small deterministic generator (the graph must be the same on every run).
fn next(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

fn phone_hash(i: u64) -> [u8; 32] {
    Sha256::digest(format!("shanliao-contact/v1:+86139{i:08}").as_bytes()).into()
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bench.redb");
        let (store, _) = Store::open(&path, |_| Ok(None)).unwrap();
        let contacts_key = SecretKey::generate().unwrap();
        let cell_key = SecretKey::generate().unwrap();
        let before = std::fs::metadata(&path).unwrap().len();
        // Everyone has 20 random friends; ME has 500.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut friendships = Vec::new();
        for u in 2..=USERS {
            for _ in 0..10 {
                let v = 2 + next(&mut x) % (USERS - 1);
                if v != u {
                    friendships.push((u, v));
                }
            }
        }
        for i in 0..500 {
            friendships.push((ME, 2 + i * 199));
        }
        let n_friend_rows = friendships.len() * 2;
        rt.block_on(store.seed_for_bench(BenchSeed {
            friendships,
            ..Default::default()
        }))
        .unwrap();
        let after = std::fs::metadata(&path).unwrap().len();
        eprintln!(
            "friend graphs of {USERS} users: {n_friend_rows} rows (both ends), database +{:.1} MiB on disk",
            (after - before) as f64 / 1_048_576.0
        );
        let mut grants: Vec<(u64, &'static str)> =
            (2..=USERS).map(|u| (u, "be_recommended")).collect();
        grants.push((ME, "contacts_matching"));
        grants.push((ME, "recommend_me"));
        let findable = (2..=USERS)
            .map(|u| (contacts_key.blind_index(&phone_hash(u)), u))
            .collect();
        // 100,000 located users spread over a 31-by-31-cell area around Beijing.
        let base = h3o::LatLng::new(39.9042, 116.4074)
            .unwrap()
            .to_cell(h3o::Resolution::Seven);
        let area: Vec<h3o::CellIndex> = base.grid_disk::<Vec<_>>(17);
        let cells = (2..=USERS)
            .map(|u| {
                let c = area[(next(&mut x) % area.len() as u64) as usize];
                (cell_key.blind_index(&u64::from(c).to_be_bytes()), u, NOW.0 + 3_600_000)
            })
            .collect();
        rt.block_on(store.seed_for_bench(BenchSeed {
            grants,
            findable,
            cells,
            ..Default::default()
        }))
        .unwrap();
        eprintln!(
            "peak memory of the bench process after seeding: {} (the node keeps friend graphs in redb, not in memory)",
            std::fs::read_to_string("/proc/self/status")
                .ok()
                .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM")).map(str::to_string))
                .unwrap_or_default()
        );
        World {
            rt,
            store,
            contacts_key,
            cell_key,
            _dir: dir,
        }
    })
}

fn main() {
    world();
    divan::main();
}

/// Friends of friends, contacts and education candidates, filtered, for a user with 500
/// friends (each with about 20): the whole suggestion read.
#[divan::bench(sample_count = 20)]
fn suggestions_for_500_friends_among_100k(b: Bencher) {
    let w = world();
    b.bench(|| {
        let c =
            w.rt.block_on(w.store.suggestion_candidates(ME, NOW))
                .unwrap();
        black_box(c.len())
    });
}

/// 2,000 hashes → keyed indexes → one matching transaction (durable commit included).
#[divan::bench(sample_count = 20)]
fn match_2000_contacts_among_100k(b: Bencher) {
    let w = world();
    let hashes: Vec<[u8; 32]> = (0..2000u64).map(|i| phone_hash(2 + i * 37)).collect();
    b.bench(|| {
        let indexes: Vec<[u8; 32]> = hashes
            .iter()
            .map(|h| w.contacts_key.blind_index(h))
            .collect();
        let o =
            w.rt.block_on(
                w.store
                    .match_contacts(ME, indexes, u64::MAX, NOW, Millis(NOW.0 + 1)),
            )
            .unwrap()
            .unwrap();
        black_box(o.matched)
    });
}

/// The 19 cells around one (two rings) → keyed indexes → one read.
#[divan::bench(sample_count = 50)]
fn nearby_lookup_among_100k_located(b: Bencher) {
    let w = world();
    let here = h3o::LatLng::new(39.9042, 116.4074)
        .unwrap()
        .to_cell(h3o::Resolution::Seven);
    b.bench(|| {
        let rings: Vec<([u8; 32], u8)> = here
            .grid_disk_distances::<Vec<_>>(2)
            .into_iter()
            .map(|(c, d)| (w.cell_key.blind_index(&u64::from(c).to_be_bytes()), d as u8))
            .collect();
        let found = w.rt.block_on(w.store.people_in(ME, rings, NOW)).unwrap();
        black_box(found.len())
    });
}
