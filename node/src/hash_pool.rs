//! `HashPool`: the threads that compute password hashes, and nothing else.
//!
//! An argon2id hash needs 7 MiB of working memory. The allocator keeps a freed block of that
//! size with the thread that freed it for a while, so hashes spread over tokio's blocking pool
//! (up to 32 threads, which also serve store reads) left up to one such block resident per
//! thread that had ever hashed. Here a fixed number of threads — the configured concurrency —
//! do all hashing, and a job goes to the idle thread used most recently: steady sign-ins
//! reuse one thread's block, and resident memory for hashing is at most one block per thread.

use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use tokio::sync::{Semaphore, oneshot};

type Job = Box<dyn FnOnce() + Send>;

/// The pool could not take or finish the job (the node is stopping).
#[derive(Debug, thiserror::Error)]
#[error("the password hashing threads are gone")]
pub struct PoolGone;

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
}

impl HashPool {
    /// Starts `threads` hashing threads (at least one).
    pub fn start(threads: usize) -> Result<HashPool, std::io::Error> {
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
        })
    }

    /// Runs `f` on an idle hashing thread, waiting for one if all are busy. The thread counts
    /// as busy until `f` returns, even if the caller stops waiting.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PoolGone> {
        let permit = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| PoolGone)?;
        let i = lock(&self.idle).pop().ok_or(PoolGone)?;
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
        self.queues[i].send(job).map_err(|_| PoolGone)?;
        rx.await.map_err(|_| PoolGone)
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
        let pool = HashPool::start(3).unwrap();
        let mut names = Vec::new();
        for _ in 0..5 {
            names.push(pool.run(thread_name).await.unwrap());
        }
        assert_eq!(names, vec!["password-hash-0"; 5]);
    }

    #[tokio::test]
    async fn no_more_jobs_run_at_once_than_there_are_threads() {
        let pool = Arc::new(HashPool::start(2).unwrap());
        let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let most = Arc::new(std::sync::atomic::AtomicUsize::new(0));
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
        assert_eq!(most.load(std::sync::atomic::Ordering::SeqCst), 2);
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[tokio::test]
    async fn a_caller_that_stops_waiting_does_not_free_a_busy_thread() {
        let pool = HashPool::start(1).unwrap();
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
}
