//! The progress bar a terminal shows while messages are sent: one line on stderr, redrawn five
//! times a second from a counter the senders raise. Nothing is drawn when stderr is not a
//! terminal, so redirected output and `--json` pipelines stay clean.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const WIDTH: usize = 30;

/// A phase's progress: the senders' counter and the task that draws it.
pub struct Progress {
    done: Arc<AtomicU64>,
    drawer: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
}

impl Progress {
    /// Starts drawing `phase` towards `total` messages, if stderr is a terminal.
    pub fn start(phase: &'static str, total: u64) -> Progress {
        let done = Arc::new(AtomicU64::new(0));
        let drawer = std::io::stderr().is_terminal().then(|| {
            let (stop, mut stopped) = oneshot::channel::<()>();
            let counter = done.clone();
            let task = tokio::spawn(async move {
                let start = Instant::now();
                let mut tick = tokio::time::interval(Duration::from_millis(200));
                loop {
                    let last = tokio::select! {
                        _ = tick.tick() => false,
                        _ = &mut stopped => true,
                    };
                    let n = counter.load(Ordering::Relaxed);
                    let line = render(phase, n, total, start.elapsed());
                    let mut err = std::io::stderr().lock();
                    let _ = write!(err, "\r{line}");
                    if last {
                        let _ = writeln!(err);
                        return;
                    }
                }
            });
            (stop, task)
        });
        Progress { done, drawer }
    }

    /// The counter each sender raises by one per answered message.
    pub fn counter(&self) -> Arc<AtomicU64> {
        self.done.clone()
    }

    /// Draws the final state and ends the line.
    pub async fn finish(mut self) {
        if let Some((stop, task)) = self.drawer.take() {
            let _ = stop.send(());
            let _ = task.await;
        }
    }
}

/// One progress line: `phase [####------] done/total pct% rate msg/s elapsed s`.
fn render(phase: &str, done: u64, total: u64, elapsed: Duration) -> String {
    let fraction = if total == 0 {
        1.0
    } else {
        (done as f64 / total as f64).min(1.0)
    };
    let filled = (fraction * WIDTH as f64).round() as usize;
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
    format!(
        "  {phase:<7} [{}{}] {done}/{total} {:>3.0}%  {rate:.0} msg/s  {secs:.1} s ",
        "#".repeat(filled),
        "-".repeat(WIDTH - filled),
        fraction * 100.0,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_fills_with_the_share_sent_and_shows_the_rate() {
        let line = render("load", 250, 1000, Duration::from_secs(2));
        assert_eq!(
            line,
            format!(
                "  load    [{}{}] 250/1000  25%  125 msg/s  2.0 s ",
                "#".repeat(8),
                "-".repeat(22)
            )
        );
    }

    #[test]
    fn the_bar_never_overflows_and_an_empty_phase_is_full() {
        let over = render("warmup", 12, 10, Duration::ZERO);
        assert!(over.contains(&format!("[{}]", "#".repeat(WIDTH))), "{over}");
        assert!(over.contains("100%  0 msg/s"), "{over}");
        let empty = render("probe", 0, 0, Duration::from_millis(500));
        assert!(
            empty.contains(&format!("[{}]", "#".repeat(WIDTH))),
            "{empty}"
        );
    }
}
