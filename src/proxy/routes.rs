//! The route table: which upstream app a request goes to (host, then the longest path
//! prefix), the client's real address, and the IP allow/deny rules. A host is found in
//! O(1) whatever the number of routes: exact hosts and wildcard parents are hashed, and
//! only the routes of that host (few, longest prefix first) are compared with the path.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use pingora_core::utils::tls::{parse_x509, WrappedX509};
use std::sync::Arc;

use crate::config::{HostMatch, ProxyConfig, RouteConfig, Upstream};
use crate::metrics::{Metrics, RouteStats};

/// A route ready to serve, with its round-robin position and its upstreams' health.
pub struct ActiveRoute {
    pub config: RouteConfig,
    /// The `route` label in metrics.
    pub label: Arc<str>,
    /// Its counters, registered when the table is built (counting needs no lookup).
    pub stats: Arc<RouteStats>,
    /// Per upstream, the `Host` it is sent (its URL's authority), built once.
    pub upstream_hosts: Vec<Option<http::HeaderValue>>,
    /// The CAs for https upstreams, in pingora's form (`None`: the system's).
    pub ca: Option<Arc<[WrappedX509]>>,
    /// The route's IP rules, ready for lookups.
    pub allow: CidrSet,
    pub deny: CidrSet,
    next: AtomicUsize,
    /// Per upstream: passing its health check (true until a check fails).
    healthy: Vec<AtomicBool>,
    /// When the next health check is due (milliseconds since the table was built).
    pub(crate) next_check_ms: AtomicU64,
}

impl ActiveRoute {
    fn new(config: &RouteConfig, metrics: Option<&Metrics>) -> ActiveRoute {
        let ca = (!config.upstream_tls.ca.is_empty()).then(|| {
            config
                .upstream_tls
                .ca
                .iter()
                .map(|der| WrappedX509::new(der.clone(), parse_x509))
                .collect::<Vec<_>>()
                .into()
        });
        ActiveRoute {
            label: Arc::from(config.name.as_str()),
            stats: metrics.map(|m| m.stats(&config.name)).unwrap_or_default(),
            upstream_hosts: config
                .upstreams
                .iter()
                .map(|u| {
                    http::HeaderValue::from_maybe_shared(bytes::Bytes::from(u.authority())).ok()
                })
                .collect(),
            healthy: config
                .upstreams
                .iter()
                .map(|_| AtomicBool::new(true))
                .collect(),
            allow: CidrSet::new(&config.allow),
            deny: CidrSet::new(&config.deny),
            config: config.clone(),
            ca,
            next: AtomicUsize::new(0),
            next_check_ms: AtomicU64::new(0),
        }
    }

    /// The next healthy upstream, round robin; when none is healthy, the next one anyway
    /// (a check may be wrong; the request fails fast if it is not). `None` for a
    /// forward-auth-only route.
    pub fn pick(&self) -> Option<(usize, &Upstream)> {
        let n = self.config.upstreams.len();
        if n == 0 {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..n)
            .map(|k| (start + k) % n)
            .find(|&i| self.healthy[i].load(Ordering::Relaxed))
            .or(Some(start % n))
            .map(|i| (i, &self.config.upstreams[i]))
    }

    /// Record a health-check result; returns whether it changed.
    pub fn set_healthy(&self, index: usize, healthy: bool) -> bool {
        self.healthy
            .get(index)
            .is_some_and(|h| h.swap(healthy, Ordering::Relaxed) != healthy)
    }
}

pub struct RouteTable {
    /// Most specific first: exact hosts, wildcards, any host; then the longest prefix.
    routes: Vec<ActiveRoute>,
    /// Positions in `routes`, in that order: by exact host, by wildcard parent (the host
    /// after its first label), and of the routes for any host.
    by_host: HashMap<Box<str>, Vec<usize>>,
    by_parent: HashMap<Box<str>, Vec<usize>>,
    any_host: Vec<usize>,
    trusted: CidrSet,
    allow: CidrSet,
    deny: CidrSet,
}

fn host_rank(h: &HostMatch) -> u8 {
    match h {
        HostMatch::Exact(_) => 2,
        HostMatch::Wildcard(_) => 1,
        HostMatch::Any => 0,
    }
}

#[cfg(test)]
fn host_matches(pattern: &HostMatch, host: &str) -> bool {
    match pattern {
        HostMatch::Any => true,
        HostMatch::Exact(h) => h == host,
        HostMatch::Wildcard(parent) => host.split_once('.').is_some_and(|(_, rest)| rest == parent),
    }
}

/// `prefix` matches `path` on a segment boundary (`/app` matches `/app` and `/app/x`, not
/// `/apple`).
pub fn prefix_matches(prefix: &str, path: &str) -> bool {
    if prefix == "/" {
        return true;
    }
    let p = prefix.trim_end_matches('/');
    path == p || (path.starts_with(p) && path.as_bytes().get(p.len()) == Some(&b'/'))
}

pub use super::cidr::{permitted, CidrSet};

impl RouteTable {
    /// The table of `config`, its routes counted in `metrics`.
    pub fn counted(config: &ProxyConfig, metrics: &Metrics) -> RouteTable {
        RouteTable::build(config, Some(metrics))
    }

    /// The table of `config`, its routes' counters not registered anywhere.
    pub fn new(config: &ProxyConfig) -> RouteTable {
        RouteTable::build(config, None)
    }

    fn build(config: &ProxyConfig, metrics: Option<&Metrics>) -> RouteTable {
        let mut routes: Vec<ActiveRoute> = config
            .routes
            .iter()
            .map(|r| ActiveRoute::new(r, metrics))
            .collect();
        // Most specific first: exact host, wildcard, any; then the longest prefix.
        routes.sort_by(|a, b| {
            host_rank(&b.config.host)
                .cmp(&host_rank(&a.config.host))
                .then(b.config.path_prefix.len().cmp(&a.config.path_prefix.len()))
        });
        let mut by_host: HashMap<Box<str>, Vec<usize>> = HashMap::new();
        let mut by_parent: HashMap<Box<str>, Vec<usize>> = HashMap::new();
        let mut any_host = Vec::new();
        for (i, route) in routes.iter().enumerate() {
            match &route.config.host {
                HostMatch::Exact(h) => by_host.entry(h.as_str().into()).or_default().push(i),
                HostMatch::Wildcard(p) => by_parent.entry(p.as_str().into()).or_default().push(i),
                HostMatch::Any => any_host.push(i),
            }
        }
        RouteTable {
            routes,
            by_host,
            by_parent,
            any_host,
            trusted: CidrSet::new(&config.trusted_proxies),
            allow: CidrSet::new(&config.allow),
            deny: CidrSet::new(&config.deny),
        }
    }

    /// The route for a host (lower case, no port) and a normalised path.
    pub fn find(&self, host: &str, path: &str) -> Option<&ActiveRoute> {
        self.find_indexed(host, path).map(|(_, r)| r)
    }

    /// Like [`RouteTable::find`], with the route's position for [`RouteTable::get`].
    pub fn find_indexed(&self, host: &str, path: &str) -> Option<(usize, &ActiveRoute)> {
        self.for_host(host)
            .map(|i| (i, &self.routes[i]))
            .find(|(_, r)| prefix_matches(&r.config.path_prefix, path))
    }

    /// The positions of the routes that serve `host`, most specific first.
    fn for_host<'a>(&'a self, host: &str) -> impl Iterator<Item = usize> + 'a {
        let exact = self.by_host.get(host);
        let wildcard = host
            .split_once('.')
            .and_then(|(_, parent)| self.by_parent.get(parent));
        exact
            .into_iter()
            .chain(wildcard)
            .flatten()
            .chain(&self.any_host)
            .copied()
    }

    /// The route with access rules that serves `path` on `host`, else the first route of
    /// the host that has any (for `/_portcullis/start` and `/sign_out`).
    pub fn access_route(&self, host: &str, path: &str) -> Option<&ActiveRoute> {
        self.find(host, path)
            .filter(|r| r.config.access.is_some())
            .or_else(|| {
                self.for_host(host)
                    .map(|i| &self.routes[i])
                    .find(|r| r.config.access.is_some())
            })
    }

    /// Whether `ip` is one of the trusted proxies.
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.contains(ip)
    }

    pub fn all(&self) -> &[ActiveRoute] {
        &self.routes
    }

    pub fn get(&self, index: usize) -> Option<&ActiveRoute> {
        self.routes.get(index)
    }

    /// The client address: the TCP peer, unless the peer is a trusted proxy, in which case
    /// the right-most `X-Forwarded-For` entry that is not itself trusted.
    pub fn client_ip(
        &self,
        peer: Option<SocketAddr>,
        forwarded_for: Option<&str>,
    ) -> Option<IpAddr> {
        let peer = peer?.ip();
        if !self.trusted.contains(peer) {
            return Some(peer);
        }
        let Some(list) = forwarded_for else {
            return Some(peer);
        };
        for entry in list.rsplit(',') {
            match entry.trim().parse::<IpAddr>() {
                Ok(ip) if self.trusted.contains(ip) => continue,
                Ok(ip) => return Some(ip),
                Err(_) => return Some(peer),
            }
        }
        Some(peer)
    }

    /// Whether the request came over TLS: our own TLS, or a trusted proxy's
    /// `X-Forwarded-Proto: https` (the proxy terminated it).
    pub fn arrived_over_tls(
        &self,
        own_tls: bool,
        peer: Option<SocketAddr>,
        forwarded_proto: Option<&str>,
    ) -> bool {
        own_tls
            || peer.is_some_and(|p| self.trusted.contains(p.ip()))
                && forwarded_proto
                    .and_then(|v| v.split(',').next())
                    .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
    }

    /// The global allow/deny rules.
    pub fn globally_permitted(&self, ip: IpAddr) -> bool {
        permitted(ip, &self.allow, &self.deny)
    }

    /// Whether there are global rules at all.
    pub fn has_global_rules(&self) -> bool {
        !self.allow.is_empty() || !self.deny.is_empty()
    }
}

/// Refuses connections from addresses the global rules deny, before any TLS handshake. A
/// trusted proxy's connection is accepted (the client it forwards for is judged per
/// request), and so is loopback (the host itself: health probes; its requests are still
/// judged per request). Reads the current route table, so a reload changes it too.
pub struct GlobalIpFilter {
    table: Arc<arc_swap::ArcSwap<RouteTable>>,
}

impl GlobalIpFilter {
    pub fn new(table: Arc<arc_swap::ArcSwap<RouteTable>>) -> GlobalIpFilter {
        GlobalIpFilter { table }
    }

    pub fn accepts(&self, peer: IpAddr) -> bool {
        let table = self.table.load();
        peer.is_loopback()
            || !table.has_global_rules()
            || table.is_trusted(peer)
            || table.globally_permitted(peer)
    }
}

impl std::fmt::Debug for GlobalIpFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GlobalIpFilter")
    }
}

#[async_trait::async_trait]
impl pingora_core::listeners::ConnectionFilter for GlobalIpFilter {
    async fn should_accept(&self, addr: Option<&SocketAddr>) -> bool {
        addr.is_none_or(|a| self.accepts(a.ip()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{RouteAuth, Upstream};

    pub(super) fn route(name: &str, host: HostMatch, prefix: &str) -> RouteConfig {
        RouteConfig {
            name: name.into(),
            host,
            path_prefix: prefix.into(),
            upstreams: vec![Upstream {
                addr: "127.0.0.1:1".parse().unwrap(),
                tls: false,
                host: "u".into(),
            }],
            upstream_tls: Default::default(),
            health_check: None,
            max_body_size: None,
            auth: RouteAuth::None,
            access: None,
            methods: vec![],
            allow: vec![],
            deny: vec![],
            preserve_host: true,
            timeout: std::time::Duration::from_secs(60),
            connect_timeout: std::time::Duration::from_secs(5),
            https_redirect: false,
            hsts: false,
            set_request_headers: vec![],
            remove_request_headers: vec![],
            set_response_headers: vec![],
            remove_response_headers: vec![],
        }
    }

    #[test]
    fn most_specific_route_wins() {
        let table = RouteTable::new(&ProxyConfig {
            routes: vec![
                route("any", HostMatch::Any, "/"),
                route("api", HostMatch::Any, "/api"),
                route("exact", HostMatch::Exact("a.test".into()), "/"),
                route("wild", HostMatch::Wildcard("apps.test".into()), "/"),
            ],
            ..Default::default()
        });
        let name = |h: &str, p: &str| table.find(h, p).map(|r| r.config.name.clone());
        assert_eq!(name("x.test", "/api/v1").as_deref(), Some("api"));
        assert_eq!(name("x.test", "/apiary").as_deref(), Some("any"));
        assert_eq!(name("a.test", "/api").as_deref(), Some("exact"));
        assert_eq!(name("one.apps.test", "/").as_deref(), Some("wild"));
        assert_eq!(name("two.one.apps.test", "/").as_deref(), Some("any"));
    }

    #[test]
    fn connection_filter_refuses_denied_peers_early() {
        let table = |c: &ProxyConfig| Arc::new(arc_swap::ArcSwap::from_pointee(RouteTable::new(c)));
        let open = GlobalIpFilter::new(table(&ProxyConfig::default()));
        assert!(
            open.accepts("198.51.100.1".parse().unwrap()),
            "no rules: all"
        );
        let f = GlobalIpFilter::new(table(&ProxyConfig {
            trusted_proxies: vec!["10.0.0.0/8".parse().unwrap()],
            allow: vec!["192.0.2.0/24".parse().unwrap()],
            ..Default::default()
        }));
        assert!(f.accepts("192.0.2.1".parse().unwrap()));
        assert!(f.accepts("10.9.9.9".parse().unwrap()), "trusted proxy");
        assert!(f.accepts("127.0.0.1".parse().unwrap()), "loopback");
        assert!(!f.accepts("198.51.100.1".parse().unwrap()));
        assert!(!f.accepts("2001:db8::1".parse().unwrap()));
    }

    #[test]
    fn client_ip_and_rules() {
        let table = RouteTable::new(&ProxyConfig {
            trusted_proxies: vec!["10.0.0.0/8".parse().unwrap()],
            allow: vec![
                "192.0.2.0/24".parse().unwrap(),
                "2001:db8::/32".parse().unwrap(),
            ],
            deny: vec!["192.0.2.66/32".parse().unwrap()],
            ..Default::default()
        });
        let peer = |s: &str| Some(s.parse::<SocketAddr>().unwrap());
        // An untrusted peer's X-Forwarded-For is ignored.
        assert_eq!(
            table.client_ip(peer("198.51.100.1:5"), Some("192.0.2.1")),
            Some("198.51.100.1".parse().unwrap())
        );
        // A trusted proxy: the right-most untrusted entry.
        assert_eq!(
            table.client_ip(peer("10.1.1.1:5"), Some("203.0.113.9, 192.0.2.7, 10.2.2.2")),
            Some("192.0.2.7".parse().unwrap())
        );
        assert!(table.globally_permitted("192.0.2.7".parse().unwrap()));
        assert!(!table.globally_permitted("192.0.2.66".parse().unwrap()));
        assert!(!table.globally_permitted("198.51.100.1".parse().unwrap()));
        assert!(table.globally_permitted("2001:db8::1".parse().unwrap()));
        assert!(
            table.globally_permitted("::ffff:192.0.2.7".parse().unwrap()),
            "v4-mapped v6"
        );
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn host_strategy() -> impl Strategy<Value = HostMatch> {
        prop_oneof![
            Just(HostMatch::Any),
            "(a|b|x\\.a)\\.test".prop_map(HostMatch::Exact),
            "(a|b)\\.test".prop_map(HostMatch::Wildcard),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// The route found serves the request (its host and its prefix on a segment
        /// boundary), and no route that also serves it is more specific: a more exact
        /// host, or the same kind of host with a longer prefix. No request goes to a route
        /// whose prefix only shares characters with the path (`/app` never serves
        /// `/apple`).
        #[test]
        fn the_most_specific_serving_route_is_found(
            routes in proptest::collection::vec(
                (host_strategy(), "(/|/(app|apple|api)(/(v1|x))?/?)"), 1..8),
            host in "(a|b|x\\.a|y\\.b|z)\\.test",
            path in "/(app|apple|api|ap)?(/(v1|x|v12))*",
        ) {
            let config = ProxyConfig {
                routes: routes
                    .iter()
                    .enumerate()
                    .map(|(i, (h, p))| tests::route(&format!("r{i}"), h.clone(), p))
                    .collect(),
                ..Default::default()
            };
            let table = RouteTable::new(&config);
            // The hashed lookup finds what a scan of the ordered routes finds.
            let scanned = table.all().iter().position(|r| {
                host_matches(&r.config.host, &host) && prefix_matches(&r.config.path_prefix, &path)
            });
            prop_assert_eq!(table.find_indexed(&host, &path).map(|(i, _)| i), scanned);
            let serves = |r: &RouteConfig| {
                host_matches(&r.host, &host) && prefix_matches(&r.path_prefix, &path)
            };
            let rank = |r: &RouteConfig| {
                (host_rank(&r.host), r.path_prefix.trim_end_matches('/').len())
            };
            match table.find(&host, &path) {
                Some(found) => {
                    prop_assert!(serves(&found.config));
                    let p = found.config.path_prefix.trim_end_matches('/');
                    let under = format!("{p}/");
                    prop_assert!(p.is_empty() || path == p || path.starts_with(&under));
                    for other in &config.routes {
                        if serves(other) {
                            prop_assert!(rank(other) <= rank(&found.config),
                                "{} beats {}", other.name, found.config.name);
                        }
                    }
                }
                None => prop_assert!(!config.routes.iter().any(serves)),
            }
        }
    }
}
