//! The single writer thread and its group commit.
//!
//! Every write job goes through one bounded queue to one thread. The thread takes whatever has
//! queued up (up to [`MAX_BATCH`] jobs), runs them in one redb write transaction, commits once
//! with immediate durability, and only then answers each job. Concurrent writers therefore
//! share one fsync instead of paying one each, and nothing is answered before it is durable.
//!
//! Deferred jobs ([`Durability::Deferred`]) are the one exception: bookkeeping whose loss in a
//! crash only makes this node repeat work that is idempotent anyway (taking delivered envelopes
//! off a peer's queue, recording a peer's transaction answer). A batch made only of them is
//! committed without an fsync; the next durable commit makes it durable, and if none comes
//! within [`FLUSH_DEFERRED`] the thread makes an empty durable commit itself (redb also makes
//! a pending commit durable when the database closes). A batch with any immediate job is
//! durable as a whole. Nothing a client or a peer is told was stored is ever deferred.
//!
//! A job that fails must not poison its neighbours: redb cannot take a savepoint inside a
//! transaction that has written, so when any job of a batch fails the whole batch is aborted
//! and each job is run again on its own. Jobs are therefore `Fn`, and must be deterministic
//! given the database state.
//!
//! Jobs get the transaction as a [`Batch`], which keeps message tables open from one message
//! job to the next and writes back what it holds before any other job and before the commit.
//! The thread owns the in-memory copy of the sent-txn log ([`SentLog`]), lends it to each
//! batch, and invalidates it whenever a transaction is not committed.

use std::any::Any;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use redb::{Database, WriteTransaction};
use tokio::sync::{mpsc, oneshot};

use super::StoreError;
use super::batch::Batch;
use super::sentlog::SentLog;

/// Most jobs in one transaction.
const MAX_BATCH: usize = 512;
/// Jobs waiting at most; senders wait (asynchronously) beyond that.
const QUEUE: usize = 8192;
/// Longest a deferred commit waits for a durable one before the thread makes one itself.
pub const FLUSH_DEFERRED: Duration = Duration::from_millis(100);

type Output = Box<dyn Any + Send>;
pub type Job = Box<dyn Fn(&mut Batch<'_>) -> Result<Output, StoreError> + Send>;

/// When a job's writes must be on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Before the job is answered: every write that is acknowledged to a client or a peer.
    Immediate,
    /// With the next durable commit, at most [`FLUSH_DEFERRED`] after the job is answered (see
    /// the module documentation for what may be deferred).
    Deferred,
}

struct Request {
    job: Job,
    durability: Durability,
    reply: oneshot::Sender<Result<Output, StoreError>>,
}

/// The writer: a queue into the thread, and the thread's handle (joined when the last `Store`
/// clone goes, after the queue has drained).
pub struct Writer {
    queue: Option<mpsc::Sender<Request>>,
    thread: Option<JoinHandle<()>>,
    stats: Arc<Stats>,
}

/// Counters of the writer's work.
#[derive(Debug, Default)]
pub struct Stats {
    /// Jobs that committed.
    pub jobs: AtomicU64,
    /// Durable commits made.
    pub commits: AtomicU64,
    /// Commits made without an fsync (batches of deferred jobs only).
    pub deferred: AtomicU64,
    /// The last commit failed (full disk, I/O error); cleared by the next that succeeds.
    pub failing: std::sync::atomic::AtomicBool,
    /// Told how long each commit took (the metrics' histogram), once set.
    pub observer: std::sync::OnceLock<CommitObserver>,
    /// Counts commits; receivers (the search indexer) wake after each one. Only a number
    /// travels, never content.
    pub committed: tokio::sync::watch::Sender<u64>,
    /// What the thread waits for between batches ([`WORKING`], [`FOR_A_JOB`],
    /// [`FOR_A_JOB_OR_DEADLINE`]): a test knows from it that no commit can come until it
    /// submits a job, instead of waiting to see none come.
    waiting: AtomicU8,
}

/// The writer thread is running a batch or about to wait.
const WORKING: u8 = 0;
/// The writer thread waits for the next job, with no deadline: nothing is pending.
const FOR_A_JOB: u8 = 1;
/// The writer thread waits for the next job or the deferred commits' deadline.
const FOR_A_JOB_OR_DEADLINE: u8 = 2;

/// Receives the duration of each commit.
pub struct CommitObserver(pub Box<dyn Fn(Duration) + Send + Sync>);

impl std::fmt::Debug for CommitObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CommitObserver")
    }
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Writer")
    }
}

impl Writer {
    /// Starts the thread; the sent log moves into its index every `sent_flush_at` sends, and
    /// a deferred commit is made durable at most `flush_deferred` after it.
    pub fn start(
        db: Arc<Database>,
        sent_flush_at: usize,
        flush_deferred: Duration,
    ) -> Result<Writer, StoreError> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let stats = Arc::new(Stats::default());
        let counters = stats.clone();
        // The thread's own clock for the deferred-commit deadline; it runs no other task.
        let clock = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(|e| StoreError::Db(format!("cannot start the writer's timer: {e}")))?;
        let thread = std::thread::Builder::new()
            .name("redb-writer".into())
            .spawn(move || {
                let mut thread = Thread {
                    db: &db,
                    stats: &counters,
                    sent: SentLog::new(sent_flush_at),
                    pending: false,
                    flush_failing: false,
                };
                thread.run(rx, &clock, flush_deferred);
            })
            .map_err(|e| StoreError::Db(format!("cannot start the writer thread: {e}")))?;
        Ok(Writer {
            queue: Some(tx),
            thread: Some(thread),
            stats,
        })
    }

    /// (jobs committed, durable commits made) so far.
    pub fn stats(&self) -> (u64, u64) {
        (
            self.stats.jobs.load(Ordering::Relaxed),
            self.stats.commits.load(Ordering::Relaxed),
        )
    }

    /// A receiver that changes after every commit.
    pub fn commits(&self) -> tokio::sync::watch::Receiver<u64> {
        self.stats.committed.subscribe()
    }

    /// Whether the last commit failed.
    pub fn failing(&self) -> bool {
        self.stats.failing.load(Ordering::Relaxed)
    }

    /// Has `observe` told the duration of every commit from now on (the first call wins).
    pub fn observe_commits(&self, observe: CommitObserver) {
        let _ = self.stats.observer.set(observe);
    }

    /// Commits made without an fsync so far.
    #[cfg(test)]
    pub fn deferred_commits(&self) -> u64 {
        self.stats.deferred.load(Ordering::Relaxed)
    }

    /// Whether the thread waits for a job with no deadline: with nothing deferred pending, it
    /// makes no commit until a job comes.
    #[cfg(test)]
    fn idle_without_deadline(&self) -> bool {
        self.stats.waiting.load(Ordering::SeqCst) == FOR_A_JOB
    }

    /// Queues `job` and waits for its result, committed as `durability` says.
    pub async fn submit(&self, job: Job, durability: Durability) -> Result<Output, StoreError> {
        let (reply, answer) = oneshot::channel();
        let queue = self.queue.as_ref().ok_or(StoreError::Worker)?;
        queue
            .send(Request {
                job,
                durability,
                reply,
            })
            .await
            .map_err(|_| StoreError::Worker)?;
        answer.await.map_err(|_| StoreError::Worker)?
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the queue lets the thread finish what is queued and exit.
        self.queue.take();
        if let Some(t) = self.thread.take() {
            // The last `Store` can go on the writer thread itself (a job that held a clone is
            // dropped there): the thread cannot wait for itself, and needs not — the queue is
            // closed, so it leaves its loop once this job is done, releasing the database.
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
    }
}

/// What the writer thread holds between batches.
struct Thread<'a> {
    db: &'a Database,
    stats: &'a Stats,
    sent: SentLog,
    /// A deferred commit has been made that no durable commit has covered yet.
    pending: bool,
    /// The last of the thread's own durable commits failed (logged once, not at every try).
    flush_failing: bool,
}

impl Thread<'_> {
    fn run(
        &mut self,
        mut rx: mpsc::Receiver<Request>,
        clock: &tokio::runtime::Runtime,
        flush_deferred: Duration,
    ) {
        loop {
            let first = if self.pending {
                self.stats
                    .waiting
                    .store(FOR_A_JOB_OR_DEADLINE, Ordering::SeqCst);
                // The timer is made inside `block_on`, where the runtime's clock is current.
                let next =
                    clock.block_on(async { tokio::time::timeout(flush_deferred, rx.recv()).await });
                match next {
                    Ok(Some(r)) => r,
                    // Closed: redb makes the pending commit durable when the database closes.
                    Ok(None) => return,
                    Err(_) => {
                        self.stats.waiting.store(WORKING, Ordering::SeqCst);
                        self.make_durable();
                        continue;
                    }
                }
            } else {
                self.stats.waiting.store(FOR_A_JOB, Ordering::SeqCst);
                match rx.blocking_recv() {
                    Some(r) => r,
                    None => return,
                }
            };
            self.stats.waiting.store(WORKING, Ordering::SeqCst);
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                }
            }
            if batch.len() == 1 {
                let r = batch.pop().unwrap_or_else(|| unreachable!("one job"));
                let result = self.alone(&r.job, r.durability);
                let _ = r.reply.send(result);
            } else {
                self.together(batch);
            }
        }
    }

    /// An empty durable commit, which makes every deferred commit before it durable.
    fn make_durable(&mut self) {
        let done = self
            .db
            .begin_write()
            .map_err(StoreError::from)
            .and_then(|tx| self.commit(tx, Durability::Immediate));
        match done {
            Ok(()) => self.flush_failing = false,
            // Kept pending: the next durable commit, or the next deadline, tries again.
            Err(e) if !self.flush_failing => {
                self.flush_failing = true;
                tracing::error!(error = %e, "making deferred writes durable failed; retrying");
            }
            Err(_) => {}
        }
    }

    /// Commits `tx` as `durability` says and counts the commit.
    fn commit(
        &mut self,
        mut tx: WriteTransaction,
        durability: Durability,
    ) -> Result<(), StoreError> {
        if durability == Durability::Deferred {
            tx.set_durability(redb::Durability::None)
                .map_err(|e| StoreError::Db(e.to_string()))?;
        }
        let started = std::time::Instant::now();
        let committed = tx.commit();
        self.stats
            .failing
            .store(committed.is_err(), Ordering::Relaxed);
        committed?;
        if let Some(observe) = self.stats.observer.get() {
            (observe.0)(started.elapsed());
        }
        self.stats.committed.send_modify(|n| *n = n.wrapping_add(1));
        match durability {
            Durability::Immediate => {
                self.stats.commits.fetch_add(1, Ordering::Relaxed);
                self.pending = false;
            }
            Durability::Deferred => {
                self.stats.deferred.fetch_add(1, Ordering::Relaxed);
                self.pending = true;
            }
        }
        Ok(())
    }

    /// Runs one job in its own transaction.
    fn alone(&mut self, job: &Job, durability: Durability) -> Result<Output, StoreError> {
        let tx = self.db.begin_write()?;
        let mut b = Batch::new(&tx, &mut self.sent);
        let done = job(&mut b).and_then(|v| b.finish().map(|()| v));
        let result = match done {
            Ok(v) => self.commit(tx, durability).map(|()| v),
            Err(e) => tx.abort().map_err(StoreError::from).and(Err(e)),
        };
        match &result {
            Ok(_) => {
                self.stats.jobs.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => self.sent.invalidate(),
        }
        result
    }

    /// Runs a batch in one transaction, durable if any of its jobs must be; falls back to one
    /// transaction per job if any job fails.
    fn together(&mut self, batch: Vec<Request>) {
        let durability = if batch.iter().any(|r| r.durability == Durability::Immediate) {
            Durability::Immediate
        } else {
            Durability::Deferred
        };
        let attempt = (|| -> Result<Option<Vec<Output>>, StoreError> {
            let tx = self.db.begin_write()?;
            let mut b = Batch::new(&tx, &mut self.sent);
            let mut outputs = Vec::with_capacity(batch.len());
            for r in &batch {
                match (r.job)(&mut b) {
                    Ok(v) => outputs.push(v),
                    Err(_) => {
                        drop(b);
                        tx.abort()?;
                        return Ok(None);
                    }
                }
            }
            if b.finish().is_err() {
                tx.abort()?;
                return Ok(None);
            }
            self.commit(tx, durability)?;
            self.stats
                .jobs
                .fetch_add(outputs.len() as u64, Ordering::Relaxed);
            Ok(Some(outputs))
        })();
        match attempt {
            Ok(Some(outputs)) => {
                for (r, v) in batch.into_iter().zip(outputs) {
                    let _ = r.reply.send(Ok(v));
                }
            }
            Ok(None) => {
                self.sent.invalidate();
                for r in batch {
                    let result = self.alone(&r.job, r.durability);
                    let _ = r.reply.send(result);
                }
            }
            Err(e) => {
                self.sent.invalidate();
                let message = e.to_string();
                for r in batch {
                    let _ = r.reply.send(Err(StoreError::Db(message.clone())));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::{ReadableDatabase, TableDefinition};

    const T: TableDefinition<u64, u64> = TableDefinition::new("t");

    fn put(k: u64, fail: bool) -> Job {
        Box::new(move |b| {
            b.tx()?.open_table(T)?.insert(k, k)?;
            if fail {
                Err(StoreError::Corrupt("test"))
            } else {
                Ok(Box::new(k) as Output)
            }
        })
    }

    /// Submits a job that holds the writer until released; returns once the writer is inside it.
    async fn hold(
        writer: &Arc<Writer>,
    ) -> (
        std::sync::mpsc::Sender<()>,
        tokio::task::JoinHandle<Result<Output, StoreError>>,
    ) {
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let (entered, inside) = oneshot::channel::<()>();
        let wait = std::sync::Mutex::new(wait);
        let entered = std::sync::Mutex::new(Some(entered));
        let gate: Job = Box::new(move |_| {
            if let Some(e) = entered.lock().unwrap().take() {
                let _ = e.send(());
            }
            let _ = wait.lock().unwrap().recv_timeout(Duration::from_secs(30));
            Ok(Box::new(0u64) as Output)
        });
        let w = writer.clone();
        let first = tokio::spawn(async move { w.submit(gate, Durability::Immediate).await });
        inside.await.unwrap();
        (release, first)
    }

    /// Waits (bounded) until the writer waits for a job with no deadline, so that it makes no
    /// commit until the test submits one.
    async fn idle_without_deadline(writer: &Writer) {
        for _ in 0..10_000 {
            if writer.idle_without_deadline() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("the writer still waits on a deadline");
    }

    /// Waits (bounded) until `n` jobs are queued behind the held one.
    async fn queued(writer: &Writer, n: usize) {
        for _ in 0..10_000 {
            if writer.queue.as_ref().unwrap().capacity() <= QUEUE - n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("jobs were not queued");
    }

    /// Queues `jobs`, in order, behind a held job, so that they run as one batch; returns
    /// their results in the same order.
    async fn batched(
        writer: &Arc<Writer>,
        jobs: Vec<(Job, Durability)>,
    ) -> Vec<Result<Output, StoreError>> {
        let (release, first) = hold(writer).await;
        let mut handles = Vec::new();
        for (job, durability) in jobs {
            let w = writer.clone();
            handles.push(tokio::spawn(async move { w.submit(job, durability).await }));
            queued(writer, handles.len()).await;
        }
        release.send(()).unwrap();
        first.await.unwrap().unwrap();
        let mut results = Vec::new();
        for h in handles {
            results.push(h.await.unwrap());
        }
        results
    }

    /// Drops the writer it holds only once told to, and reports whether that drop panicked.
    struct LastHandle {
        writer: Option<Arc<Writer>>,
        go: std::sync::mpsc::Receiver<()>,
        done: std::sync::mpsc::Sender<bool>,
    }

    impl Drop for LastHandle {
        fn drop(&mut self) {
            let _ = self.go.recv_timeout(Duration::from_secs(30));
            let writer = self.writer.take();
            let fine = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(writer)));
            let _ = self.done.send(fine.is_ok());
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_may_hold_the_last_handle_to_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.redb");
        let db = Arc::new(Database::create(&path).unwrap());
        let writer = Arc::new(Writer::start(db, 8, FLUSH_DEFERRED).unwrap());
        let (go, wait) = std::sync::mpsc::channel();
        let (done, report) = std::sync::mpsc::channel();
        let held = std::sync::Mutex::new(Some(LastHandle {
            writer: Some(writer.clone()),
            go: wait,
            done,
        }));
        let job: Job = Box::new(move |_| {
            let _ = &held;
            Ok(Box::new(0u64) as Output)
        });
        writer.submit(job, Durability::Immediate).await.unwrap();
        // Once this handle is gone, the job's is the last; it goes on the writer thread.
        drop(writer);
        go.send(()).unwrap();
        let fine =
            tokio::task::spawn_blocking(move || report.recv_timeout(Duration::from_secs(30)))
                .await
                .unwrap()
                .unwrap();
        assert!(fine, "dropping the last writer on its own thread panicked");
        // And the thread then ends, releasing the database (bounded wait for a state).
        for _ in 0..1000 {
            if Database::open(&path).is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("the writer thread did not release the database");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn queued_jobs_share_one_commit_and_a_failing_job_spoils_no_other() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Database::create(dir.path().join("w.redb")).unwrap());
        let writer = Arc::new(Writer::start(db.clone(), 8, FLUSH_DEFERRED).unwrap());
        // The writer is held inside a first job until 100 more are queued behind it.
        let jobs = (1..=100u64)
            .map(|k| (put(k, k % 10 == 0), Durability::Immediate))
            .collect();
        for (k, r) in (1..=100u64).zip(batched(&writer, jobs).await) {
            assert_eq!(r.is_err(), k % 10 == 0, "job {k}");
        }
        let (jobs, commits) = writer.stats();
        assert_eq!(jobs, 91, "the gate and the 90 good jobs");
        // The gate alone, the failed batch of 100 re-run one by one: 1 + 90 commits. Without
        // failures the 100 would have been one commit; see the next test.
        assert_eq!(commits, 91);
        let read = db.begin_read().unwrap();
        let t = read.open_table(T).unwrap();
        for k in 1..=100u64 {
            assert_eq!(t.get(k).unwrap().is_some(), k % 10 != 0, "row {k}");
        }
    }

    /// A message job that records txn id `txn` unless recorded; answers whether it was new.
    fn send(txn: &'static str) -> Job {
        Box::new(move |b| {
            let (_, w) = b.messages()?;
            let key = (1, "dev", txn);
            if w.sent(key)?.is_some() {
                return Ok(Box::new(false) as Output);
            }
            w.record_sent(key, (1, 1, 1, 1))?;
            Ok(Box::new(true) as Output)
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_batch_leaves_no_trace_in_the_sent_log_copy() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Database::create(dir.path().join("w.redb")).unwrap());
        let writer = Arc::new(Writer::start(db, 1000, FLUSH_DEFERRED).unwrap());
        let new = |r: Result<Output, StoreError>| *r.unwrap().downcast::<bool>().unwrap();
        assert!(
            new(writer.submit(send("t0"), Durability::Immediate).await),
            "t0 is logged"
        );
        // One batch: a retry of t0, a job that moves the log into the index, a send of t3,
        // and a failing job. Aborted, the log is back to [t0] while the copy had become [t3]:
        // as many rows, other rows. Each job then runs again alone, the retry first.
        let flush: Job = Box::new(|b| {
            crate::sentlog::flush(b.tx()?)?;
            Ok(Box::new(0u64) as Output)
        });
        let jobs = [send("t0"), flush, send("t3"), put(5, true)];
        let mut results = batched(
            &writer,
            jobs.into_iter()
                .map(|j| (j, Durability::Immediate))
                .collect(),
        )
        .await;
        assert!(results.pop().unwrap().is_err(), "the failing job fails");
        assert!(!new(results.remove(0)), "the retry of t0 is a repeat");
        assert!(new(results.pop().unwrap()), "t3 is new");
        assert!(
            !new(writer.submit(send("t3"), Durability::Immediate).await),
            "and t3 recorded once"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hundred_queued_jobs_commit_together() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Database::create(dir.path().join("w.redb")).unwrap());
        let writer = Arc::new(Writer::start(db, 8, FLUSH_DEFERRED).unwrap());
        let jobs = (1..=100u64)
            .map(|k| (put(k, false), Durability::Immediate))
            .collect();
        for r in batched(&writer, jobs).await {
            r.unwrap();
        }
        assert_eq!(
            writer.stats(),
            (101, 2),
            "the gate, then all 100 in one commit"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_deferred_job_is_visible_at_once_and_made_durable_by_the_next_durable_commit() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Database::create(dir.path().join("w.redb")).unwrap());
        // A deadline that does not pass during the test: only the durable job can cover the
        // deferred one.
        let writer = Writer::start(db.clone(), 8, Duration::from_secs(3600)).unwrap();
        writer
            .submit(put(1, false), Durability::Deferred)
            .await
            .unwrap();
        assert_eq!(writer.stats(), (1, 0), "committed, without an fsync");
        assert_eq!(writer.deferred_commits(), 1);
        let read = db.begin_read().unwrap();
        assert!(
            read.open_table(T).unwrap().get(1).unwrap().is_some(),
            "visible at once"
        );
        drop(read);
        writer
            .submit(put(2, false), Durability::Immediate)
            .await
            .unwrap();
        idle_without_deadline(&writer).await;
        assert_eq!(
            writer.stats(),
            (2, 1),
            "no empty commit to come: the durable one covered the deferred one"
        );
        writer
            .submit(put(3, false), Durability::Deferred)
            .await
            .unwrap();
        assert_eq!(writer.deferred_commits(), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_with_one_immediate_job_is_durable_as_a_whole() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Database::create(dir.path().join("w.redb")).unwrap());
        let writer = Arc::new(Writer::start(db, 8, Duration::from_secs(3600)).unwrap());
        let jobs = (1..=10u64)
            .map(|k| {
                let d = if k == 7 {
                    Durability::Immediate
                } else {
                    Durability::Deferred
                };
                (put(k, false), d)
            })
            .collect();
        for r in batched(&writer, jobs).await {
            r.unwrap();
        }
        assert_eq!(
            writer.stats(),
            (11, 2),
            "the gate, then the ten in one durable commit"
        );
        assert_eq!(writer.deferred_commits(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_deferred_commit_is_made_durable_after_its_deadline_with_nothing_else_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Database::create(dir.path().join("w.redb")).unwrap());
        let writer = Writer::start(db, 8, Duration::from_millis(20)).unwrap();
        writer
            .submit(put(1, false), Durability::Deferred)
            .await
            .unwrap();
        for _ in 0..500 {
            if writer.stats().1 == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(
            writer.stats(),
            (1, 1),
            "one empty durable commit after the deadline"
        );
        idle_without_deadline(&writer).await;
        assert_eq!(
            writer.stats(),
            (1, 1),
            "and no more to come while nothing is pending"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_deferred_commit_pending_at_shutdown_is_on_disk_after_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.redb");
        let db = Arc::new(Database::create(&path).unwrap());
        let writer = Writer::start(db.clone(), 8, Duration::from_secs(3600)).unwrap();
        writer
            .submit(put(1, false), Durability::Immediate)
            .await
            .unwrap();
        writer
            .submit(put(2, false), Durability::Deferred)
            .await
            .unwrap();
        assert_eq!(writer.stats(), (2, 1), "the second is still pending");
        drop(writer);
        drop(db);
        let db = Database::open(&path).unwrap();
        let read = db.begin_read().unwrap();
        assert!(read.open_table(T).unwrap().get(2).unwrap().is_some());
    }
}
