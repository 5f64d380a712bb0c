//! What the in-process benchmarks share: the concurrent measuring loop.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Run `op(i)` from `tasks` concurrent tasks until `limit` passes or `max_ops` are done
/// (`i` counts the calls, each task taking every `tasks`-th); ops/s.
pub fn measure<F, Fut>(
    rt: &tokio::runtime::Runtime,
    tasks: usize,
    limit: Duration,
    max_ops: u64,
    op: F,
) -> f64
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    rt.block_on(async {
        let mut handles = Vec::new();
        for t in 0..tasks {
            let op = op.clone();
            let done = done.clone();
            handles.push(tokio::spawn(async move {
                let mut i = t as u64;
                while started.elapsed() < limit && done.load(Ordering::Relaxed) < max_ops {
                    op(i).await;
                    done.fetch_add(1, Ordering::Relaxed);
                    i += tasks as u64;
                }
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
    });
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}
