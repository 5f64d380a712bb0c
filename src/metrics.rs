//! Request metrics in Prometheus text format: requests by route and status, a latency
//! histogram per route, and the active-session gauge. Recording takes two uncontended read
//! locks and a few atomic adds; nothing allocates once a (route, status) pair has been seen.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
struct RouteStats {
    statuses: RwLock<Vec<(u16, AtomicU64)>>,
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

/// The process-wide metrics registry.
#[derive(Default)]
pub struct Metrics {
    routes: RwLock<HashMap<String, RouteStats>>,
    /// Users of LDAP syncs: added, updated, removed, failed.
    ldap_sync: [AtomicU64; 4],
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// Record one finished request.
    pub fn observe(&self, route: &str, status: u16, elapsed: Duration) {
        {
            let routes = self.routes.read().unwrap_or_else(|p| p.into_inner());
            if let Some(stats) = routes.get(route) {
                stats.record(status, elapsed);
                return;
            }
        }
        let mut routes = self.routes.write().unwrap_or_else(|p| p.into_inner());
        routes
            .entry(route.to_string())
            .or_default()
            .record(status, elapsed);
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
        let routes = self.routes.read().unwrap_or_else(|p| p.into_inner());
        let mut names: Vec<&String> = routes.keys().collect();
        names.sort();

        out.push_str("# HELP portcullis_http_requests_total HTTP requests by route and status.\n");
        out.push_str("# TYPE portcullis_http_requests_total counter\n");
        for name in &names {
            let stats = &routes[*name];
            let mut statuses: Vec<(u16, u64)> = stats
                .statuses
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .map(|(s, c)| (*s, c.load(Ordering::Relaxed)))
                .collect();
            statuses.sort();
            for (status, count) in statuses {
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
    fn record(&self, status: u16, elapsed: Duration) {
        let found = {
            let statuses = self.statuses.read().unwrap_or_else(|p| p.into_inner());
            match statuses.iter().find(|(s, _)| *s == status) {
                Some((_, c)) => {
                    c.fetch_add(1, Ordering::Relaxed);
                    true
                }
                None => false,
            }
        };
        if !found {
            let mut statuses = self.statuses.write().unwrap_or_else(|p| p.into_inner());
            match statuses.iter().find(|(s, _)| *s == status) {
                Some((_, c)) => {
                    c.fetch_add(1, Ordering::Relaxed);
                }
                None => statuses.push((status, AtomicU64::new(1))),
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
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c"), "a\\\"b\\\\c");
    }
}
