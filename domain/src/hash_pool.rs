//! `HashPool`: the threads that compute password hashes, and nothing else.
//!
//! An argon2id hash needs 7 MiB of working memory. The allocator keeps a freed block of that
//! size with the thread that freed it for a while, so hashes spread over tokio's blocking pool
//! (up to 32 threads, which also serve store reads) left up to one such block resident per
//! thread that had ever hashed. Here a fixed number of threads — the configured concurrency —
//! do all hashing, and a job goes to the idle thread used most recently: steady sign-ins
//! reuse one thread's block, and resident memory for hashing is at most one block per thread.
//!
//! The callers waiting for a thread are bounded too: past `max_waiting` a job is refused at
//! once ([`PoolError::Full`], answered 503 with `Retry-After`), so a login flood cannot pile
//! up waiting requests (each holding its connection and body) without limit.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use tokio::sync::{Semaphore, oneshot};

type Job = Box<dyn FnOnce() + Send>;

/// Why the pool did not run a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// The threads are gone (the node is stopping).
    #[error("the password hashing threads are gone")]
    Gone,
    /// Every thread is busy and the most callers allowed are already waiting.
    #[error("too many password checks are waiting")]
    Full,
}

/// Seconds a caller refused with [`PoolError::Full`] is told to wait: a queue allowed to
/// refill drains in about this long at typical hash times.
pub const FULL_RETRY_AFTER_SECS: u64 = 2;

/// A fixed set of hashing threads. Dropping the pool lets each thread finish its job and end,
/// and waits for them.
#[derive(Debug)]
pub struct HashPool {
    /// One permit per idle thread: taking one guarantees `idle` is not empty.
    slots: Arc<Semaphore>,
    /// Idle threads, the most recently used last.
    idle: Arc<Mutex<Vec<usize>>>,
    queues: Vec<mpsc::Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
    /// Callers waiting for a thread now, and the most allowed.
    waiting: Arc<AtomicUsize>,
    max_waiting: usize,
}

/// One place among the waiting callers, given back when the caller stops waiting (got a
/// thread, or gave up).
struct Waiting(Arc<AtomicUsize>);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl HashPool {
    /// Starts `threads` hashing threads (at least one); at most `max_waiting` callers may wait
    /// for one while all are busy.
    pub fn start(threads: usize, max_waiting: usize) -> Result<HashPool, std::io::Error> {
        let n = threads.max(1);
        let mut queues = Vec::with_capacity(n);
        let mut handles = Vec::with_capacity(n);
        for i in 0..n {
            let (tx, rx) = mpsc::channel::<Job>();
            handles.push(
                std::thread::Builder::new()
                    .name(format!("password-hash-{i}"))
                    .spawn(move || {
                        for job in rx {
                            job();
                        }
                    })?,
            );
            queues.push(tx);
        }
        Ok(HashPool {
            slots: Arc::new(Semaphore::new(n)),
            // Popped from the end: thread 0 first.
            idle: Arc::new(Mutex::new((0..n).rev().collect())),
            queues,
            threads: handles,
            waiting: Arc::new(AtomicUsize::new(0)),
            max_waiting,
        })
    }

    /// Runs `f` on an idle hashing thread, waiting for one if all are busy (refused with
    /// [`PoolError::Full`] if `max_waiting` callers wait already). The thread counts as busy
    /// until `f` returns, even if the caller stops waiting.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PoolError> {
        let permit = match self.slots.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(tokio::sync::TryAcquireError::Closed) => return Err(PoolError::Gone),
            Err(tokio::sync::TryAcquireError::NoPermits) => {
                let place = Waiting(self.waiting.clone());
                if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.max_waiting {
                    return Err(PoolError::Full); // `place` gives the count back
                }
                let permit = self.slots.clone().acquire_owned().await;
                drop(place);
                permit.map_err(|_| PoolError::Gone)?
            }
        };
        let i = lock(&self.idle).pop().ok_or(PoolError::Gone)?;
        let idle = self.idle.clone();
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            let out = f();
            // Back in the idle list before its permit is released, so whoever takes the
            // permit finds a thread.
            lock(&idle).push(i);
            drop(permit);
            let _ = tx.send(out);
        });
        self.queues[i].send(job).map_err(|_| PoolError::Gone)?;
        rx.await.map_err(|_| PoolError::Gone)
    }
}

impl Drop for HashPool {
    fn drop(&mut self) {
        self.queues.clear(); // each thread's loop ends once its queue is closed and empty
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn thread_name() -> String {
        std::thread::current()
            .name()
            .unwrap_or_default()
            .to_string()
    }

    #[tokio::test]
    async fn one_job_at_a_time_always_runs_on_the_same_thread() {
        let pool = HashPool::start(3, 8).unwrap();
        let mut names = Vec::new();
        for _ in 0..5 {
            names.push(pool.run(thread_name).await.unwrap());
        }
        assert_eq!(names, vec!["password-hash-0"; 5]);
    }

    #[tokio::test]
    async fn no_more_jobs_run_at_once_than_there_are_threads() {
        let pool = Arc::new(HashPool::start(2, 8).unwrap());
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let mut jobs = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let (pool, running, most) = (pool.clone(), running.clone(), most.clone());
            jobs.spawn(async move {
                pool.run(move || {
                    use std::sync::atomic::Ordering::SeqCst;
                    let now = running.fetch_add(1, SeqCst) + 1;
                    most.fetch_max(now, SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                    running.fetch_sub(1, SeqCst);
                    thread_name()
                })
                .await
                .unwrap()
            });
        }
        let mut names = std::collections::HashSet::new();
        while let Some(name) = jobs.join_next().await {
            names.insert(name.unwrap());
        }
        assert_eq!(most.load(Ordering::SeqCst), 2);
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[tokio::test]
    async fn a_caller_that_stops_waiting_does_not_free_a_busy_thread() {
        let pool = HashPool::start(1, 8).unwrap();
        let (release, wait) = mpsc::channel::<()>();
        let busy = pool.run(move || {
            let _ = wait.recv_timeout(Duration::from_secs(10));
        });
        // The caller gives up while the job still runs.
        assert!(
            tokio::time::timeout(Duration::from_millis(50), busy)
                .await
                .is_err()
        );
        // The only thread is still busy: the next job waits for it.
        let next = pool.run(thread_name);
        tokio::pin!(next);
        assert!(
            tokio::time::timeout(Duration::from_millis(100), &mut next)
                .await
                .is_err(),
            "a second job ran while the first was still running"
        );
        release.send(()).unwrap();
        assert_eq!(next.await.unwrap(), "password-hash-0");
    }

    #[tokio::test]
    async fn callers_past_the_waiting_bound_are_refused_at_once() {
        let pool = Arc::new(HashPool::start(1, 2).unwrap());
        let (release, wait) = mpsc::channel::<()>();
        let busy = tokio::spawn({
            let pool = pool.clone();
            async move {
                pool.run(move || {
                    let _ = wait.recv_timeout(Duration::from_secs(10));
                })
                .await
            }
        });
        // Two callers wait for the only thread (each spawned and polled until it waits).
        let mut waiters = Vec::new();
        for _ in 0..2 {
            let pool2 = pool.clone();
            waiters.push(tokio::spawn(async move { pool2.run(thread_name).await }));
        }
        for _ in 0..1000 {
            if pool.waiting.load(Ordering::SeqCst) == 2 {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(pool.waiting.load(Ordering::SeqCst), 2);
        // A third is refused without waiting.
        assert_eq!(pool.run(thread_name).await, Err(PoolError::Full));
        release.send(()).unwrap();
        busy.await.unwrap().unwrap();
        for w in waiters {
            assert_eq!(w.await.unwrap().unwrap(), "password-hash-0");
        }
        assert_eq!(pool.waiting.load(Ordering::SeqCst), 0, "places given back");
        assert_eq!(pool.run(thread_name).await.unwrap(), "password-hash-0");
    }

    #[tokio::test]
    async fn a_waiter_that_gives_up_gives_its_place_back() {
        let pool = HashPool::start(1, 1).unwrap();
        let (release, wait) = mpsc::channel::<()>();
        let busy = pool.run(move || {
            let _ = wait.recv_timeout(Duration::from_secs(10));
        });
        tokio::pin!(busy);
        assert!(
            tokio::time::timeout(Duration::from_millis(20), &mut busy)
                .await
                .is_err()
        );
        // Waits, then gives up.
        assert!(
            tokio::time::timeout(Duration::from_millis(20), pool.run(thread_name))
                .await
                .is_err()
        );
        assert_eq!(pool.waiting.load(Ordering::SeqCst), 0);
        let next = pool.run(thread_name);
        tokio::pin!(next);
        assert!(
            tokio::time::timeout(Duration::from_millis(20), &mut next)
                .await
                .is_err(),
            "the freed place lets the next caller wait instead of being refused"
        );
        release.send(()).unwrap();
        busy.await.unwrap();
        assert_eq!(next.await.unwrap(), "password-hash-0");
    }
}
