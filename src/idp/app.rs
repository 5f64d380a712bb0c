//! The identity provider's front door: [`App`], everything a handler may use, and
//! [`App::handle`], which sends a request for one of the IdP's endpoints to its handler.
//! Requests arrive transport-free (`crate::http::Request` plus `RequestInfo`); the proxy
//! calls `handle` for paths the endpoint table knows, tests call it without a socket.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use http::{header, Method, StatusCode};

use crate::clock::SharedClock;
use crate::config::Config;
use crate::http::{
    hosts, is_local, json_response, ApiError, IntoResponse, Request, RequestInfo, Response,
};
use crate::idp::endpoints::{Endpoint, Methods, Params, Refusal, Router};
use crate::idp::keys::KeyRing;
use crate::idp::login::theme::Themes;
use crate::idp::oidc::error::OAuthError;
use crate::idp::{login, oidc, ops};
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};

/// Everything a handler may use. Shared by every request; cheap to clone.
#[derive(Clone)]
pub struct App {
    pub config: Arc<Config>,
    pub store: Store,
    pub clock: SharedClock,
    pub metrics: Arc<Metrics>,
    /// Parsed realm signing keys.
    pub keys: Arc<KeyRing>,
    /// Login themes.
    pub themes: Arc<Themes>,
    /// Where password hashes run: bounded, so logins cannot exhaust memory.
    pub hashes: Arc<crate::idp::hashing::HashPool>,
    /// Signed-in administrators of the admin console.
    pub console: Arc<crate::idp::console::Sessions>,
    /// Administrators' effective roles per store generation.
    pub admin_roles: Arc<crate::idp::roles::RoleCache>,
    /// The hosts the provider answers for when `server.public_url` is unset.
    known_hosts: Arc<arc_swap::ArcSwap<hosts::KnownHosts>>,
    ready: Arc<AtomicBool>,
    router: Arc<Router>,
    /// When this App was made (the clock's milliseconds): `serverinfo`'s uptime.
    started_at_ms: i64,
}

impl App {
    pub fn new(
        config: Arc<Config>,
        store: Store,
        clock: SharedClock,
        metrics: Arc<Metrics>,
        themes: Arc<Themes>,
    ) -> App {
        let hashes = Arc::new(crate::idp::hashing::HashPool::new(
            config.server.max_concurrent_hashes,
            config.server.hash_queue_timeout,
        ));
        let known_hosts = Arc::new(arc_swap::ArcSwap::from_pointee(
            hosts::KnownHosts::from_config(&config),
        ));
        let started_at_ms = clock.now_millis();
        App {
            started_at_ms,
            hashes,
            known_hosts,
            config,
            store,
            clock,
            metrics,
            keys: Arc::new(KeyRing::new()),
            themes,
            console: Default::default(),
            admin_roles: Default::default(),
            ready: Arc::new(AtomicBool::new(false)),
            router: Arc::new(Router::new()),
        }
    }

    /// When the server started (the clock's milliseconds).
    pub fn started_at_ms(&self) -> i64 {
        self.started_at_ms
    }

    /// Answer for these hosts from now on (start-up with the certificates' names, reload).
    pub fn set_known_hosts(&self, hosts: hosts::KnownHosts) {
        self.known_hosts.store(Arc::new(hosts));
    }

    /// Whether URLs may be built from this request's host: always with a configured
    /// public URL, else only for hosts the server is configured for.
    fn host_is_known(&self, request: &Request) -> bool {
        if self.config.server.public_url.is_some() {
            return true;
        }
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .or_else(|| request.uri().authority().map(|a| a.as_str()));
        // No host at all (in-process callers): URLs are built for `localhost`.
        host.is_none_or(|h| self.known_hosts.load().allows(h))
    }

    /// Mark the server ready (store open, listeners up) for `/health/ready`.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// A refusal at the edge, before any route, in the shape the path's clients read: the
    /// admin API's `errorMessage` under `/admin/`, OAuth's `error` elsewhere.
    pub fn edge_refusal(&self, raw_path: &str, refusal: ApiError) -> Response {
        if raw_path.starts_with("/admin/") {
            crate::idp::admin::error::AdminError::from(refusal).into_response()
        } else {
            refusal.into_response()
        }
    }

    /// Which endpoint, if any, serves `path`. The proxy asks this before anything else.
    pub fn route(&self, path: &str) -> Option<(Endpoint, Params)> {
        self.router.find(path)
    }

    /// Serve one request to a known endpoint.
    pub async fn handle(
        &self,
        endpoint: Endpoint,
        params: &Params,
        request: Request,
        info: RequestInfo,
    ) -> Response {
        let realm = params.realm.as_str();
        if let Some(refusal) = endpoint.methods().and_then(|m| refuse_method(m, &request)) {
            return refusal;
        }
        if endpoint.builds_urls() && !self.host_is_known(&request) {
            return ApiError::BadRequest(
                "Unknown host: set server.public_url, or list this name in server.hostnames".into(),
            )
            .into_response();
        }
        if !info.tls && endpoint.enforces_ssl_required() {
            // The admin API follows the master realm, whose tokens it accepts.
            // The console calls the admin API, so it follows the same guard.
            let guard = if matches!(
                endpoint,
                Endpoint::Admin | Endpoint::ServerInfo | Endpoint::Console
            ) {
                "master"
            } else {
                realm
            };
            if let Some(refusal) = self.https_required(&request, &info, guard) {
                return refusal;
            }
        }
        let oauth = |r: Result<Response, crate::idp::oidc::error::OAuthError>| {
            r.unwrap_or_else(|e| e.into_response())
        };
        match endpoint {
            Endpoint::HealthLive => ops::live().unwrap_or_else(|e| e.into_response()),
            Endpoint::HealthReady => ops::ready(self).unwrap_or_else(|e| e.into_response()),
            Endpoint::Metrics => ops::metrics(self).unwrap_or_else(|e| e.into_response()),
            Endpoint::RealmInfo => {
                oauth(oidc::discovery::realm_info(self, &request, &info, realm).await)
            }
            Endpoint::Discovery => {
                oauth(oidc::discovery::discovery(self, &request, &info, realm).await)
            }
            Endpoint::Certs => oauth(oidc::discovery::certs(self, &request, realm).await),
            Endpoint::Token => oauth(oidc::token::token(self, &request, &info, realm).await),
            Endpoint::UserInfo => {
                oauth(oidc::userinfo::userinfo(self, &request, &info, realm).await)
            }
            Endpoint::Introspect => {
                oauth(oidc::userinfo::introspect(self, &request, &info, realm).await)
            }
            Endpoint::Revoke => oauth(oidc::userinfo::revoke(self, &request, &info, realm).await),
            Endpoint::Admin => crate::idp::admin::handle(self, &request, &info, &params.rest).await,
            Endpoint::ServerInfo => {
                crate::idp::admin::server::server_info(self, &request, &info).await
            }
            Endpoint::OpenApi => crate::idp::admin::openapi::serve(),
            Endpoint::AdminRoot => crate::idp::console::welcome::admin_root(),
            Endpoint::Welcome => crate::idp::console::welcome::serve(self, &request, &info).await,
            Endpoint::Console => {
                if params.rest.is_empty() && !request.uri().path().ends_with('/') {
                    return crate::http::redirect(&format!("{}/", request.uri().path()));
                }
                crate::idp::console::serve(self, &request, &info, realm, &params.rest).await
            }
            Endpoint::WhoAmI => {
                crate::idp::admin::server::whoami(self, &request, &info, realm).await
            }
            Endpoint::Authorize => login::authorize(self, &request, &info, realm).await,
            Endpoint::Logout => login::logout(self, &request, &info, realm).await,
            Endpoint::DeviceAuthorization => {
                oauth(oidc::device::device_authorization(self, &request, &info, realm).await)
            }
            Endpoint::PushedAuthorization => {
                oauth(oidc::par::push(self, &request, &info, realm).await)
            }
            Endpoint::DevicePage => login::device_page(self, &request, &info, realm).await,
            Endpoint::LoginAction => {
                login::login_action(self, &request, &info, realm, &params.rest).await
            }
            Endpoint::Broker => login::broker(self, &request, &info, realm, &params.rest).await,
            Endpoint::LoginStatusIframe => login::login_status_iframe(self, &request, &info, realm),
            Endpoint::ThirdPartyCookies => login::third_party_cookies(&params.rest),
            Endpoint::Resource => login::resource(self, &params.rest),
            Endpoint::Account => {
                login::account::account(self, &request, &info, realm, &params.rest).await
            }
            Endpoint::ClientRegistration => {
                oauth(oidc::registration::handle(self, &request, &info, realm, &params.rest).await)
            }
        }
    }
}

/// The answer to a method the endpoint does not serve (or to its CORS pre-flight); `None`
/// when the endpoint serves the method.
fn refuse_method(methods: Methods, request: &Request) -> Option<Response> {
    let method = request.method();
    if methods.allowed.contains(method) {
        return None;
    }
    if methods.cors && method == Method::OPTIONS {
        let allow = format!(
            "{}, OPTIONS",
            crate::http::router::method_list(methods.allowed)
        );
        return Some(oidc::preflight(request, &allow));
    }
    Some(match methods.refusal {
        Refusal::MethodNotAllowed => {
            ApiError::MethodNotAllowed(methods.allowed.to_vec()).into_response()
        }
        Refusal::OAuth => {
            OAuthError::InvalidRequest("HTTP method not allowed".into()).into_response()
        }
    })
}

impl App {
    /// The realm's `sslRequired` for a plain-HTTP request: `all` refuses every one,
    /// `external` (the default) those from public addresses, `none` none. Browsers get a
    /// page, API clients Keycloak's JSON error.
    fn https_required(
        &self,
        request: &Request,
        info: &RequestInfo,
        realm: &str,
    ) -> Option<Response> {
        let realm = self.store.read().ok()?.realm_by_name(realm).ok()??;
        let refused = match realm.ssl_required.as_str() {
            "none" => false,
            "all" => true,
            _ => !info.peer.is_some_and(|p| is_local(p.ip())),
        };
        if !refused {
            return None;
        }
        let wants_html = request
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/html"));
        Some(if wants_html {
            login::PageCx::new(self, &realm, request, None)
                .error_text(StatusCode::FORBIDDEN, "HTTPS required")
        } else {
            json_response(
                StatusCode::FORBIDDEN,
                &serde_json::json!({"error": "invalid_request", "error_description": "HTTPS required"}),
            )
        })
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => ApiError::Unavailable,
            other => ApiError::Internal(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use bytes::Bytes;
    use http::StatusCode;

    fn app() -> (tempfile::TempDir, App) {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::parse("", std::path::Path::new("t.toml")).unwrap();
        let store = crate::store::testing::open(dir.path());
        let app = App::new(
            Arc::new(config),
            store,
            Arc::new(ManualClock::at(0)),
            Arc::new(Metrics::new()),
            Arc::new(Themes::builtin()),
        );
        (dir, app)
    }

    async fn call(app: &App, method: &str, path: &str) -> Response {
        let (endpoint, params) = app.route(path).expect("route");
        let request = http::Request::builder()
            .method(method)
            .uri(path)
            .body(Bytes::new())
            .unwrap();
        app.handle(
            endpoint,
            &params,
            request,
            RequestInfo {
                peer: None,
                tls: false,
            },
        )
        .await
    }

    #[tokio::test]
    async fn ready_only_after_set_ready() {
        let (_dir, app) = app();
        let r = call(&app, "GET", "/health/ready").await;
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.body().as_ref(), br#"{"status":"DOWN"}"#);
        app.set_ready(true);
        let r = call(&app, "GET", "/health/ready").await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.body().as_ref(), br#"{"status":"UP"}"#);
        assert_eq!(
            call(&app, "GET", "/health/live").await.status(),
            StatusCode::OK
        );
    }

    #[tokio::test]
    async fn wrong_method_is_405_with_json() {
        let (_dir, app) = app();
        let r = call(&app, "DELETE", "/health/live").await;
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(r.headers()["allow"], "GET, HEAD");
        let body: serde_json::Value = serde_json::from_slice(r.body()).unwrap();
        assert_eq!(body["error"], "method_not_allowed");
    }

    #[tokio::test]
    async fn methods_come_from_the_endpoint_table() {
        let (_dir, app) = app();
        let oidc = "/realms/master/protocol/openid-connect";
        // Back-channel endpoints answer other methods as Keycloak does: an OAuth 400.
        for path in [
            "token",
            "token/introspect",
            "revoke",
            "auth/device",
            "ext/par/request",
        ] {
            let r = call(&app, "GET", &format!("{oidc}/{path}")).await;
            assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{path}");
            let body: serde_json::Value = serde_json::from_slice(r.body()).unwrap();
            assert_eq!(
                body["error_description"], "HTTP method not allowed",
                "{path}"
            );
        }
        // The others: 405 with the table's Allow.
        let r = call(
            &app,
            "POST",
            "/realms/master/.well-known/openid-configuration",
        )
        .await;
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(r.headers()["allow"], "GET, HEAD");
        let r = call(&app, "PUT", &format!("{oidc}/userinfo")).await;
        assert_eq!(r.headers()["allow"], "GET, POST");
        // A pre-flight names the endpoint's methods.
        let request = http::Request::builder()
            .method("OPTIONS")
            .uri(format!("{oidc}/token"))
            .header("origin", "https://app.example")
            .body(Bytes::new())
            .unwrap();
        let (endpoint, params) = app.route(&format!("{oidc}/token")).unwrap();
        let info = RequestInfo {
            peer: None,
            tls: false,
        };
        let r = app.handle(endpoint, &params, request, info).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["access-control-allow-methods"], "POST, OPTIONS");
    }

    #[tokio::test]
    async fn metrics_are_prometheus_text() {
        let (_dir, app) = app();
        app.metrics
            .observe("health", 200, std::time::Duration::from_micros(300));
        let r = call(&app, "GET", "/metrics").await;
        assert_eq!(r.status(), StatusCode::OK);
        let text = std::str::from_utf8(r.body()).unwrap();
        assert!(
            text.contains("portcullis_http_requests_total{route=\"health\",status=\"200\"} 1"),
            "{text}"
        );
        assert!(text.contains("portcullis_active_sessions 0"), "{text}");
    }
}
