//! Figures of a report: latency percentiles (`stats`), and the group chat's table.

use std::io::Write;

use serde_json::{Value, json};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub fn stats(mut v: Vec<f64>) -> Value {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    json!({"n": v.len(), "p50_ms": percentile(&v, 50.0), "p95_ms": percentile(&v, 95.0), "p99_ms": percentile(&v, 99.0),
           "max_ms": v.last().copied().unwrap_or(f64::NAN)})
}

/// A figure for the table: a number, or a summary's median with its range.
fn figure(v: &Value) -> String {
    let number = |v: &Value| match (v.as_u64(), v.as_f64()) {
        (Some(n), _) => n.to_string(),
        (None, Some(x)) if x.fract() == 0.0 && x.abs() < 1e15 => format!("{x:.0}"),
        (None, Some(x)) => format!("{x:.2}"),
        (None, None) => "-".into(),
    };
    match v.get("median") {
        Some(m) => format!(
            "{} ({}-{})",
            number(m),
            number(&v["min"]),
            number(&v["max"])
        ),
        None => number(v),
    }
}

pub fn print_table(r: &Value) {
    let mut out = std::io::stdout().lock();
    let f = figure;
    let _ = writeln!(out, "\nworkload         {}", r["workload"]);
    let _ = writeln!(
        out,
        "accepted         {} messages, {} msg/s",
        f(&r["accepted"]),
        f(&r["accept_per_s"])
    );
    if !r["null_requests_per_s"].is_null() {
        let _ = writeln!(
            out,
            "null requests    {} req/s, accepted / null = {}",
            f(&r["null_requests_per_s"]),
            f(&r["accept_share_of_null"])
        );
    }
    for (name, key) in [
        ("send latency", "send_latency"),
        ("delivery (load)", "delivery_load"),
        ("delivery (probe)", "delivery_probe"),
    ] {
        let s = &r[key];
        let _ = writeln!(
            out,
            "{name:<17}p50 {} ms  p95 {} ms  p99 {} ms  max {} ms  (n={})",
            f(&s["p50_ms"]),
            f(&s["p95_ms"]),
            f(&s["p99_ms"]),
            f(&s["max_ms"]),
            f(&s["n"])
        );
    }
    let _ = writeln!(
        out,
        "delivered pairs  {} / {}",
        f(&r["delivered_pairs"]),
        f(&r["expected_pairs"])
    );
    let _ = writeln!(
        out,
        "server           peak RSS {} KiB, CPU {} ms/message (load generator {} ms/message)",
        f(&r["server"]["peak_rss_kib"]),
        f(&r["server"]["cpu_ms_per_message"]),
        f(&r["loadgen"]["cpu_ms_per_message"])
    );
    let _ = writeln!(
        out,
        "disk             {} bytes/message by file length, {} allocated on disk",
        f(&r["disk"]["bytes_per_message"]),
        f(&r["disk"]["allocated_bytes_per_message"])
    );
}
