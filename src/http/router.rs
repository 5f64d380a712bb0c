//! Path → endpoint. Only the paths the gateway serves itself are here; everything else is
//! the proxy's business (routes to upstream apps).

/// An endpoint served by Portcullis itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    HealthLive,
    HealthReady,
    Metrics,
}

impl Endpoint {
    /// The `route` label in metrics.
    pub fn metric_label(self) -> &'static str {
        match self {
            Endpoint::HealthLive | Endpoint::HealthReady => "health",
            Endpoint::Metrics => "metrics",
        }
    }
}

pub struct Router {
    inner: matchit::Router<Endpoint>,
}

impl Default for Router {
    fn default() -> Self {
        Router::new()
    }
}

impl Router {
    pub fn new() -> Router {
        let mut inner = matchit::Router::new();
        let routes = [
            ("/health/live", Endpoint::HealthLive),
            ("/health/ready", Endpoint::HealthReady),
            ("/metrics", Endpoint::Metrics),
        ];
        for (path, endpoint) in routes {
            // The table above is static and conflict-free; a failure is a programming error
            // caught by the `all_routes_resolve` test.
            if let Err(e) = inner.insert(path, endpoint) {
                tracing::error!(%path, error = %e, "route table conflict");
            }
        }
        Router { inner }
    }

    pub fn find(&self, path: &str) -> Option<Endpoint> {
        self.inner.at(path).ok().map(|m| *m.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_routes_resolve() {
        let r = Router::new();
        assert_eq!(r.find("/health/live"), Some(Endpoint::HealthLive));
        assert_eq!(r.find("/health/ready"), Some(Endpoint::HealthReady));
        assert_eq!(r.find("/metrics"), Some(Endpoint::Metrics));
        assert_eq!(r.find("/health"), None);
        assert_eq!(r.find("/app/anything"), None);
    }
}
