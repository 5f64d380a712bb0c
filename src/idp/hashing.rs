//! The bounded pool password hashes run on. An argon2id hash holds 19 MiB for tens of
//! milliseconds: unbounded, a burst of anonymous logins would take the blocking pool's
//! 512 threads and gigabytes of memory. At most `size` hashes run at once (the cores);
//! the others wait their turn up to `queue_timeout`, then get [`Busy`] (503 with
//! `Retry-After`). The equal-cost dummy hash for unknown users runs here too, so it
//! neither escapes the bound nor tells by its timing that a user does not exist.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

/// Too many hashes are waiting: try again shortly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many password checks at once")]
pub struct Busy;

/// Runs password hashing off the async workers, a bounded number at a time.
#[derive(Debug)]
pub struct HashPool {
    permits: Arc<Semaphore>,
    queue_timeout: Duration,
}

impl HashPool {
    /// `size` hashes at once (at least one); a caller waits at most `queue_timeout`.
    pub fn new(size: usize, queue_timeout: Duration) -> HashPool {
        HashPool {
            permits: Arc::new(Semaphore::new(size.max(1))),
            queue_timeout,
        }
    }

    /// Run `work` on the blocking pool once a place is free.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Busy> {
        let permit = tokio::time::timeout(self.queue_timeout, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| Busy)?
            .map_err(|_| Busy)?;
        tokio::task::spawn_blocking(move || {
            let _held = permit;
            work()
        })
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "a password hash task failed");
            Busy
        })
    }

    /// Hashes running or queued right now could start: free places.
    pub fn available(&self) -> usize {
        self.permits.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn at_most_size_run_at_once_and_the_rest_wait_or_are_refused() {
        let pool = Arc::new(HashPool::new(2, Duration::from_millis(200)));
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (pool, running, peak) = (pool.clone(), running.clone(), peak.clone());
            tasks.push(tokio::spawn(async move {
                pool.run(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(150));
                    running.fetch_sub(1, Ordering::SeqCst);
                })
                .await
            }));
        }
        let mut done = 0;
        let mut busy = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(()) => done += 1,
                Err(Busy) => busy += 1,
            }
        }
        assert_eq!(
            peak.load(Ordering::SeqCst),
            2,
            "never more than the pool's size"
        );
        assert!(done >= 2 && busy >= 1, "done {done}, busy {busy}");
        assert_eq!(pool.available(), 2, "every place is given back");
    }
}
