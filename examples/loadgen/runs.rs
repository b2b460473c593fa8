//! Runs the chosen workload `--runs` times, each against fresh nodes, and prints the report:
//! JSON, or the group chat's table (with each figure's median and range over several runs).

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::{Value, json};

use crate::federation::federation_load;
use crate::idle::idle_websockets;
use crate::nodes::NodeProc;
use crate::purge::purge_under_load;
use crate::report::print_table;
use crate::{Args, chat, jpeg, media, progress, summary};

/// Every run of the chosen workload, then the report.
pub async fn run(args: Args) -> Result<()> {
    let photo = if args.federated_photo > 0 {
        progress(&args, "generating the photo");
        Some(jpeg::photo_of_size(args.federated_photo, 1)?)
    } else {
        None
    };
    let mut reports = Vec::with_capacity(args.runs);
    for i in 0..args.runs {
        if args.runs > 1 {
            progress(&args, &format!("run {} of {}", i + 1, args.runs));
        }
        reports.push(
            one_run(&args, photo.as_ref())
                .await
                .with_context(|| format!("run {}", i + 1))?,
        );
    }
    let report = if reports.len() == 1 {
        reports.remove(0)
    } else {
        let summary = summary::summarize(&reports).unwrap_or(Value::Null);
        json!({"runs": reports, "summary": summary})
    };
    if args.json || !args.chat() {
        writeln!(
            std::io::stdout(),
            "{}",
            serde_json::to_string_pretty(&report)?
        )?;
    } else if let Some(runs) = report.get("runs").and_then(Value::as_array) {
        for (i, run) in runs.iter().enumerate() {
            writeln!(std::io::stdout(), "\nrun {}", i + 1)?;
            print_table(run);
        }
        writeln!(
            std::io::stdout(),
            "\nmedian (min-max) of {} runs",
            runs.len()
        )?;
        print_table(&report["summary"]);
    } else {
        print_table(&report);
    }
    Ok(())
}

/// One run of the chosen workload against fresh nodes; its report.
async fn one_run(args: &Args, photo: Option<&jpeg::Photo>) -> Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(args.hard_timeout_s);
    let limit = Duration::from_secs(args.hard_timeout_s);
    if !args.chat() {
        let work = async {
            if let Some(photo) = photo {
                media::federated_photo(args, photo).await
            } else if args.federation {
                federation_load(args, deadline).await
            } else if args.idle_ws > 0 {
                idle_websockets(args).await
            } else {
                purge_under_load(args, deadline).await
            }
        };
        return tokio::time::timeout(limit, work)
            .await
            .context("hard timeout")?;
    }
    let mut node = NodeProc::start(&args.node_bin)?;
    let result = tokio::time::timeout(limit, chat::run(args, &node, deadline)).await;
    let (db_end, rss) = (
        node.db_bytes(),
        (node.status_kib("VmHWM:"), node.status_kib("VmRSS:")),
    );
    node.stop()?;
    let mut report = result.context("hard timeout")??;
    report["server"]["peak_rss_kib"] = json!(rss.0);
    report["server"]["rss_at_end_kib"] = json!(rss.1);
    report["disk"]["db_bytes_end"] = json!(db_end.length);
    report["disk"]["db_allocated_bytes_end"] = json!(db_end.allocated);
    let sent = report["disk"]["messages_after_setup"]
        .as_u64()
        .unwrap_or(1)
        .max(1) as f64;
    let per_message = |end: u64, key: &str| {
        end.saturating_sub(report["disk"][key].as_u64().unwrap_or(0)) as f64 / sent
    };
    let length = per_message(db_end.length, "db_bytes_after_setup");
    let allocated = per_message(db_end.allocated, "db_allocated_bytes_after_setup");
    report["disk"]["bytes_per_message"] = json!(length);
    report["disk"]["allocated_bytes_per_message"] = json!(allocated);
    Ok(report)
}
