//! Measures the message search index at scale (docs/PERFORMANCE.md, "Search"): builds a
//! corpus of synthetic Chinese and Latin chat messages, stores them sealed in a real redb file,
//! rebuilds the in-memory index from it exactly as the node does at start (read in batches,
//! open each body, index its text), and reports the rebuild time, the index's memory, and query
//! latencies (p50, p99) against a plain scan of the same texts.
//!
//! `cargo run --release -p node --example search_index -- [messages] [--no-store]`
//! (default 1 000 000 messages; `--no-store` indexes from memory, skipping the database).

// A measuring program: its report is what it prints.
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use node::search_index::{MessageIndex, NewDoc};
use node::search_text::{Query, normalise};
use node::{ConvKind, Millis, NewConversation, NewMessage, SecretKey, Store};

const CONVS: u64 = 1_000;
/// Conversations the asking user is in: 5 % of the messages are theirs to search.
const MINE: u64 = 50;
const AUTHORS: u64 = 100;

const WORDS: &[&str] = &[
    "我们",
    "你们",
    "他们",
    "今天",
    "明天",
    "昨天",
    "晚上",
    "早上",
    "中午",
    "吃饭",
    "喝茶",
    "开会",
    "上班",
    "下班",
    "周末",
    "电影",
    "音乐",
    "朋友",
    "同事",
    "老师",
    "学生",
    "北京",
    "上海",
    "南京",
    "广州",
    "深圳",
    "杭州",
    "成都",
    "市长",
    "长江",
    "大桥",
    "地铁",
    "公交",
    "出租车",
    "飞机",
    "火车",
    "天气",
    "下雨",
    "太阳",
    "很好",
    "不错",
    "可以",
    "没有",
    "已经",
    "还是",
    "但是",
    "因为",
    "所以",
    "如果",
    "一起",
    "一下",
    "时候",
    "地方",
    "东西",
    "事情",
    "问题",
    "工作",
    "项目",
    "报告",
    "文件",
    "照片",
    "视频",
    "手机",
    "电脑",
    "网络",
    "微信",
    "快递",
    "外卖",
    "火锅",
    "奶茶",
    "咖啡",
    "面条",
    "饺子",
    "米饭",
    "水果",
    "超市",
    "商场",
    "医院",
    "学校",
    "公司",
    "银行",
    "酒店",
    "机场",
    "车站",
    "的",
    "了",
    "吗",
    "呢",
    "吧",
    "啊",
    "是",
    "在",
    "有",
    "和",
    "去",
    "来",
    "看",
    "说",
    "想",
    "要",
    "好",
    "大",
    "小",
    "多",
    "少",
    "新",
    "老",
    "快",
    "慢",
    "高",
    "ok",
    "hello",
    "meeting",
    "project",
    "artist",
    "start",
    "report",
    "coffee",
    "weekend",
    "photo",
    "thanks",
    "tomorrow",
];

/// A small deterministic generator (xorshift64*), so every run measures the same corpus.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn message(rng: &mut Rng) -> String {
    let words = 3 + rng.below(8);
    let mut s = String::new();
    for i in 0..words {
        let w = WORDS[rng.below(WORDS.len() as u64) as usize];
        if w.is_ascii() && i > 0 {
            s.push(' ');
        }
        s.push_str(w);
        if rng.below(6) == 0 {
            s.push(if rng.below(2) == 0 { '，' } else { ' ' });
        }
    }
    s
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn percentile(mut v: Vec<Duration>, p: f64) -> Duration {
    v.sort_unstable();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn conv_id(no: u64) -> String {
    format!("c{no}:bench.example")
}

fn aad(conv: &str, id: &[u8; 16]) -> Vec<u8> {
    let mut v = b"msg/".to_vec();
    v.extend_from_slice(conv.as_bytes());
    v.push(b'/');
    v.extend_from_slice(id);
    v
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: u64 = args
        .iter()
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let use_store = !args.iter().any(|a| a == "--no-store");
    let mut rng = Rng(0x5EED_CAFE);
    let corpus: Vec<(u64, String)> = (0..n)
        .map(|_| (1 + rng.below(CONVS), message(&mut rng)))
        .collect();
    let avg_chars = corpus.iter().map(|(_, t)| t.chars().count()).sum::<usize>() as f64 / n as f64;
    println!("{n} messages in {CONVS} conversations, {avg_chars:.1} characters on average");

    let keys: Vec<SecretKey> = (0..AUTHORS)
        .map(|_| SecretKey::generate().unwrap())
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let before = rss_kib();
    let mut index = MessageIndex::default();
    let started = Instant::now();
    if use_store {
        let (store, _) = Store::open(&dir.path().join("bench.redb"), |_| Ok(None)).unwrap();
        let t = Instant::now();
        rt.block_on(async {
            for no in 1..=CONVS {
                store
                    .create_conversation(NewConversation {
                        id: conv_id(no),
                        no,
                        kind: ConvKind::Group,
                        name: String::new(),
                        public: false,
                        creator: 1,
                        others: (2..=AUTHORS).collect(),
                        now: Millis(1),
                        fanout: None,
                    })
                    .await
                    .unwrap()
                    .unwrap();
            }
            for (chunk_no, chunk) in corpus.chunks(512).enumerate() {
                let mut sends = Vec::with_capacity(chunk.len());
                for (i, (no, text)) in chunk.iter().enumerate() {
                    let k = chunk_no * 512 + i;
                    let author = 1 + (k as u64 % AUTHORS);
                    let mut id = [0u8; 16];
                    id[..8].copy_from_slice(&(k as u64).to_be_bytes());
                    let conv = conv_id(*no);
                    let sealed = keys[(author - 1) as usize]
                        .seal(&aad(&conv, &id), text.as_bytes())
                        .unwrap();
                    let store = store.clone();
                    sends.push(tokio::spawn(async move {
                        store
                            .send_message(NewMessage {
                                author,
                                device_id: "d".into(),
                                txn_id: format!("t{k}"),
                                conv_id: conv,
                                id,
                                ts: Millis(2),
                                body_sealed: sealed,
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
            }
        });
        println!("stored (sealed) in {:.1} s", t.elapsed().as_secs_f64());
        let before = rss_kib();
        let t = Instant::now();
        // What the indexer does at start: batches of 5 000, each body opened, then indexed.
        rt.block_on(async {
            let mut from = (0, 0);
            loop {
                let batch = store.index_batch(from, 5_000).await.unwrap();
                for (no, conv, m) in batch.items {
                    let plain = keys[(m.author - 1) as usize]
                        .open(&aad(&conv, &m.id), &m.body_sealed)
                        .unwrap();
                    index.insert(NewDoc {
                        conv: no,
                        seq: m.seq,
                        pos: m.pos,
                        author: m.author,
                        text: String::from_utf8(plain).unwrap(),
                    });
                }
                match batch.next {
                    Some(next) => from = next,
                    None => break,
                }
            }
        });
        println!(
            "rebuild from the store (read, open, index): {:.1} s; memory +{} MiB",
            t.elapsed().as_secs_f64(),
            rss_kib().saturating_sub(before) / 1024
        );
    } else {
        for (i, (no, text)) in corpus.iter().enumerate() {
            index.insert(NewDoc {
                conv: *no,
                seq: i as u64 + 1,
                pos: i as u64 + 1,
                author: 1,
                text: text.clone(),
            });
        }
        println!(
            "index from memory: {:.1} s; memory +{} MiB",
            started.elapsed().as_secs_f64(),
            rss_kib().saturating_sub(before) / 1024
        );
    }
    let stats = index.stats();
    println!("{} documents, {} terms", stats.documents, stats.terms);

    // The plain scan: every text already opened and normalised in memory (the best a scan can
    // do; scanning the store would also read and open every body each time).
    let scan: Vec<(u64, String)> = corpus
        .iter()
        .map(|(no, t)| (*no, normalise(t).chars.iter().collect()))
        .collect();
    let queries = [
        "市长",
        "京吃",
        "北京",
        "南京市长",
        "长江大桥",
        "火锅",
        "的",
        "桥",
        "好",
        "咖啡 周末",
        "art",
        "meeting",
        "hello 北京",
        "项目报告",
        "出租车",
    ];
    let mine = |conv: u64| conv <= MINE;
    for (label, visible) in [
        ("in 50 of 1000 conversations", &mine as &dyn Fn(u64) -> bool),
        ("in every conversation", &|_| true),
    ] {
        println!("\nqueries by a user {label} (20 results, 30 rounds):");
        println!(
            "{:<12} {:>9} {:>9} {:>9} {:>9}",
            "query", "index p50", "index p99", "scan p50", "scan p99"
        );
        let mut all_index = Vec::new();
        for q in queries {
            let parsed = Query::parse(q).unwrap();
            let needles: Vec<String> = q.split(' ').map(|s| s.to_lowercase()).collect();
            let (mut ti, mut ts) = (Vec::new(), Vec::new());
            for _ in 0..30 {
                let t = Instant::now();
                let hits = index.search(&parsed, |c, _, _| visible(c), None, 21);
                std::hint::black_box(hits);
                ti.push(t.elapsed());
                let t = Instant::now();
                let mut hits: Vec<usize> = scan
                    .iter()
                    .enumerate()
                    .filter(|(_, (c, t))| {
                        visible(*c) && needles.iter().all(|n| t.contains(n.as_str()))
                    })
                    .map(|(i, _)| i)
                    .collect();
                hits.reverse();
                hits.truncate(21);
                std::hint::black_box(hits);
                ts.push(t.elapsed());
            }
            all_index.extend(ti.iter().copied());
            let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1000.0);
            println!(
                "{q:<12} {:>9} {:>9} {:>9} {:>9}",
                ms(percentile(ti.clone(), 0.5)),
                ms(percentile(ti, 0.99)),
                ms(percentile(ts.clone(), 0.5)),
                ms(percentile(ts, 0.99))
            );
        }
        println!(
            "all queries: index p99 {:.2} ms",
            percentile(all_index, 0.99).as_secs_f64() * 1000.0
        );
    }
}
