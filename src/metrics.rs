//! Request metrics in Prometheus text format: requests by route and status, a latency
//! histogram per route, and the active-session gauge. Recording is lock-free: a proxy route
//! holds its [`RouteStats`] (registered when the route table is built), other labels are
//! found in a map read without a lock (swapped whole when a label is first seen), and a
//! count is a few relaxed atomic adds on counters indexed by status.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Statuses counted by index: 0 (no response written) to 599; others (an upstream may
/// send any three digits) go to a short list under a lock.
const STATUS_SLOTS: usize = 600;

/// The counters of one `route` label.
pub struct RouteStats {
    statuses: Box<[AtomicU64]>,
    other_statuses: Mutex<Vec<(u16, u64)>>,
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Default for RouteStats {
    fn default() -> RouteStats {
        RouteStats {
            statuses: (0..STATUS_SLOTS).map(|_| AtomicU64::new(0)).collect(),
            other_statuses: Mutex::new(Vec::new()),
            buckets: Default::default(),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }
}

/// The process-wide metrics registry.
#[derive(Default)]
pub struct Metrics {
    routes: ArcSwap<HashMap<Arc<str>, Arc<RouteStats>>>,
    /// Taken only to add a label.
    adding: Mutex<()>,
    /// Users of LDAP syncs: added, updated, removed, failed.
    ldap_sync: [AtomicU64; 4],
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// The counters of `route`, registered on first use; a route table keeps them so that
    /// counting its requests needs no lookup.
    pub fn stats(&self, route: &str) -> Arc<RouteStats> {
        if let Some(stats) = self.routes.load().get(route) {
            return stats.clone();
        }
        let _adding = self.adding.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.routes.load_full();
        if let Some(stats) = current.get(route) {
            return stats.clone();
        }
        let stats = Arc::new(RouteStats::default());
        let mut next = (*current).clone();
        next.insert(Arc::from(route), stats.clone());
        self.routes.store(Arc::new(next));
        stats
    }

    /// Record one finished request.
    pub fn observe(&self, route: &str, status: u16, elapsed: Duration) {
        match self.routes.load().get(route) {
            Some(stats) => stats.record(status, elapsed),
            None => self.stats(route).record(status, elapsed),
        }
    }

    /// Count the users of one LDAP sync.
    pub fn ldap_synced(&self, added: usize, updated: usize, removed: usize, failed: usize) {
        for (counter, n) in self.ldap_sync.iter().zip([added, updated, removed, failed]) {
            counter.fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    /// The Prometheus exposition text.
    pub fn render(&self, active_sessions: u64) -> String {
        let mut out = String::with_capacity(4096);
        let routes = self.routes.load();
        let mut names: Vec<&Arc<str>> = routes.keys().collect();
        names.sort();

        out.push_str("# HELP portcullis_http_requests_total HTTP requests by route and status.\n");
        out.push_str("# TYPE portcullis_http_requests_total counter\n");
        for name in &names {
            let stats = &routes[*name];
            for (status, count) in stats.status_counts() {
                let _ = writeln!(
                    out,
                    "portcullis_http_requests_total{{route=\"{}\",status=\"{status}\"}} {count}",
                    escape(name)
                );
            }
        }

        out.push_str("# HELP portcullis_http_request_duration_seconds Time to serve a request.\n");
        out.push_str("# TYPE portcullis_http_request_duration_seconds histogram\n");
        for name in &names {
            let stats = &routes[*name];
            let label = escape(name);
            let mut cumulative = 0;
            for (i, bound) in BUCKETS.iter().enumerate() {
                cumulative += stats.buckets[i].load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "portcullis_http_request_duration_seconds_bucket{{route=\"{label}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            let count = stats.count.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "portcullis_http_request_duration_seconds_bucket{{route=\"{label}\",le=\"+Inf\"}} {count}"
            );
            let sum = stats.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
            let _ = writeln!(
                out,
                "portcullis_http_request_duration_seconds_sum{{route=\"{label}\"}} {sum}"
            );
            let _ = writeln!(
                out,
                "portcullis_http_request_duration_seconds_count{{route=\"{label}\"}} {count}"
            );
        }

        out.push_str(
            "# HELP portcullis_ldap_sync_users_total Users handled by LDAP syncs, by outcome.\n",
        );
        out.push_str("# TYPE portcullis_ldap_sync_users_total counter\n");
        for (outcome, counter) in ["added", "updated", "removed", "failed"]
            .iter()
            .zip(&self.ldap_sync)
        {
            let _ = writeln!(
                out,
                "portcullis_ldap_sync_users_total{{outcome=\"{outcome}\"}} {}",
                counter.load(Ordering::Relaxed)
            );
        }

        out.push_str("# HELP portcullis_active_sessions Login sessions currently stored.\n");
        out.push_str("# TYPE portcullis_active_sessions gauge\n");
        let _ = writeln!(out, "portcullis_active_sessions {active_sessions}");
        out
    }
}

impl RouteStats {
    /// Count one request that ended with `status` after `elapsed`.
    pub fn record(&self, status: u16, elapsed: Duration) {
        match self.statuses.get(usize::from(status)) {
            Some(counter) => {
                counter.fetch_add(1, Ordering::Relaxed);
            }
            None => {
                let mut other = self
                    .other_statuses
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                match other.iter_mut().find(|(s, _)| *s == status) {
                    Some((_, n)) => *n += 1,
                    None => other.push((status, 1)),
                }
            }
        }
        let secs = elapsed.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    /// Every status seen, with its count, in order.
    fn status_counts(&self) -> Vec<(u16, u64)> {
        let mut out: Vec<(u16, u64)> = self
            .statuses
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                let n = c.load(Ordering::Relaxed);
                (n > 0).then_some((i as u16, n))
            })
            .collect();
        out.extend(
            self.other_statuses
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .copied(),
        );
        out.sort();
        out
    }
}

/// Escape a label value (route names come from the configuration).
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_route_and_status_with_cumulative_buckets() {
        let m = Metrics::new();
        m.observe("oidc", 200, Duration::from_micros(400));
        m.observe("oidc", 200, Duration::from_millis(3));
        m.observe("oidc", 401, Duration::from_secs(20));
        let text = m.render(7);
        assert!(text.contains("portcullis_http_requests_total{route=\"oidc\",status=\"200\"} 2"));
        assert!(text.contains("portcullis_http_requests_total{route=\"oidc\",status=\"401\"} 1"));
        assert!(text.contains("le=\"0.0005\"} 1"));
        assert!(text.contains("le=\"0.005\"} 2"));
        assert!(text.contains("le=\"10\"} 2"));
        assert!(text.contains("le=\"+Inf\"} 3"));
        assert!(text.contains("portcullis_active_sessions 7"));
    }

    #[test]
    fn a_route_tables_stats_are_the_registrys_and_odd_statuses_count() {
        let m = Metrics::new();
        let held = m.stats("app");
        assert!(
            Arc::ptr_eq(&held, &m.stats("app")),
            "one registration per label"
        );
        held.record(200, Duration::from_micros(100));
        m.observe("app", 200, Duration::from_micros(100));
        held.record(0, Duration::from_micros(100));
        held.record(799, Duration::from_micros(100));
        held.record(799, Duration::from_micros(100));
        let text = m.render(0);
        assert!(text.contains("portcullis_http_requests_total{route=\"app\",status=\"200\"} 2"));
        assert!(text.contains("portcullis_http_requests_total{route=\"app\",status=\"0\"} 1"));
        assert!(text.contains("portcullis_http_requests_total{route=\"app\",status=\"799\"} 2"));
        assert!(text.contains("portcullis_http_request_duration_seconds_count{route=\"app\"} 5"));
    }

    #[test]
    fn counting_from_many_threads_loses_nothing() {
        let m = Arc::new(Metrics::new());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let m = m.clone();
                std::thread::spawn(move || {
                    for i in 0..10_000u32 {
                        // New labels appear while the others count.
                        let label = if i % 1000 == 0 {
                            format!("l{t}-{i}")
                        } else {
                            "shared".to_string()
                        };
                        m.observe(&label, 200, Duration::from_micros(1));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let text = m.render(0);
        assert!(
            text.contains("portcullis_http_requests_total{route=\"shared\",status=\"200\"} 39960")
        );
        assert!(text.contains("portcullis_http_requests_total{route=\"l3-9000\",status=\"200\"} 1"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c"), "a\\\"b\\\\c");
    }
}
