//! Active health checks of upstreams: every `health_interval`, each upstream of a route
//! with `health_check` is asked (an HTTP GET of the path on http upstreams, a TCP connect
//! on https ones). An upstream that fails gets no traffic until it passes again.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::routes::RouteTable;
use crate::config::Upstream;

pub struct HealthChecker {
    routes: Arc<ArcSwap<RouteTable>>,
    started: Instant,
}

impl HealthChecker {
    pub fn new(routes: Arc<ArcSwap<RouteTable>>) -> HealthChecker {
        HealthChecker {
            routes,
            started: Instant::now(),
        }
    }

    /// Start the checks that are due.
    fn tick(&self) {
        let table = self.routes.load_full();
        let now = self.started.elapsed().as_millis() as u64;
        for (ri, route) in table.all().iter().enumerate() {
            let Some(check) = &route.config.health_check else {
                continue;
            };
            if route.next_check_ms.load(Ordering::Relaxed) > now {
                continue;
            }
            route
                .next_check_ms
                .store(now + check.interval.as_millis() as u64, Ordering::Relaxed);
            for ui in 0..route.config.upstreams.len() {
                let table = table.clone();
                tokio::spawn(async move {
                    let Some(route) = table.get(ri) else { return };
                    let (Some(upstream), Some(check)) =
                        (route.config.upstreams.get(ui), &route.config.health_check)
                    else {
                        return;
                    };
                    let limit = route.config.connect_timeout.min(check.interval);
                    let ok = tokio::time::timeout(limit, probe(upstream, &check.path))
                        .await
                        .unwrap_or(false);
                    if route.set_healthy(ui, ok) {
                        if ok {
                            tracing::info!(route = %route.label, upstream = %upstream.addr, "upstream healthy again");
                        } else {
                            tracing::warn!(route = %route.label, upstream = %upstream.addr, "upstream failed its health check");
                        }
                    }
                });
            }
        }
    }
}

/// One check: a 2xx or 3xx answer to `GET path` (http), or a TCP connect (https).
async fn probe(upstream: &Upstream, path: &str) -> bool {
    let Ok(mut stream) = tokio::net::TcpStream::connect(upstream.addr).await else {
        return false;
    };
    if upstream.tls {
        return true;
    }
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: portcullis-health-check\r\nConnection: close\r\n\r\n",
        upstream.authority()
    );
    if stream.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut head = [0u8; 16];
    let mut read = 0;
    while read < 12 {
        match stream.read(&mut head[read..]).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => read += n,
        }
    }
    // "HTTP/1.1 200 "
    matches!(head.get(9), Some(b'2' | b'3'))
}

#[async_trait]
impl BackgroundService for HealthChecker {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
            self.tick();
        }
    }
}
