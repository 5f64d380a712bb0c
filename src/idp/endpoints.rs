//! The IdP's endpoint table: path → endpoint. Only the paths the gateway serves itself are
//! here; everything else is the proxy's business (routes to upstream apps). Sub-trees with
//! many resources (the admin API) route further inside their own module.

use std::borrow::Cow;

use http::Method;

use crate::http::path::percent_decode;

/// An endpoint served by Portcullis itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    HealthLive,
    HealthReady,
    Metrics,
    RealmInfo,
    Discovery,
    Authorize,
    Token,
    Introspect,
    Revoke,
    UserInfo,
    Logout,
    Certs,
    LoginAction,
    /// `/realms/{realm}/broker/{alias}/...`: sign-in through an identity provider.
    Broker,
    DeviceAuthorization,
    PushedAuthorization,
    DevicePage,
    LoginStatusIframe,
    ThirdPartyCookies,
    Resource,
    Admin,
    /// `/admin/serverinfo`
    ServerInfo,
    /// `/admin/{realm}/console/whoami`
    WhoAmI,
    /// `/admin/openapi.json`: the admin API's generated OpenAPI document.
    OpenApi,
    /// `/admin`, `/admin/`: to the master realm's console.
    AdminRoot,
    /// `/admin/{realm}/console/...`: the admin console.
    Console,
    /// `/`: the welcome page (only where no proxy route serves `/`).
    Welcome,
    Account,
    /// `/realms/{realm}/clients-registrations/...` (dynamic client registration)
    ClientRegistration,
}

impl Endpoint {
    /// Endpoints where credentials, codes or tokens change hands, which the realm's
    /// `sslRequired` guards (the admin API: the master realm's); discovery, keys and static
    /// resources stay open.
    pub fn enforces_ssl_required(self) -> bool {
        matches!(
            self,
            Endpoint::Token
                | Endpoint::UserInfo
                | Endpoint::Introspect
                | Endpoint::Revoke
                | Endpoint::Authorize
                | Endpoint::Logout
                | Endpoint::DeviceAuthorization
                | Endpoint::PushedAuthorization
                | Endpoint::DevicePage
                | Endpoint::LoginAction
                | Endpoint::Broker
                | Endpoint::Admin
                | Endpoint::ServerInfo
                | Endpoint::WhoAmI
                | Endpoint::Console
                | Endpoint::Welcome
                | Endpoint::Account
                | Endpoint::ClientRegistration
        )
    }

    /// Endpoints whose answers (issuer, redirects, links, mails) are built from the
    /// request's host: everything but health, metrics and static files.
    pub fn builds_urls(self) -> bool {
        !matches!(
            self,
            Endpoint::HealthLive
                | Endpoint::HealthReady
                | Endpoint::Metrics
                | Endpoint::Resource
                | Endpoint::ThirdPartyCookies
                | Endpoint::OpenApi
        )
    }

    /// The methods the endpoint serves, and what it answers to the others; `None` for the
    /// admin API, whose own table routes by method.
    pub fn methods(self) -> Option<Methods> {
        use Method as M;
        const READ: &[Method] = &[M::GET, M::HEAD];
        const FORM: &[Method] = &[M::GET, M::POST];
        const POST: &[Method] = &[M::POST];
        const REGISTRATION: &[Method] = &[M::GET, M::POST, M::PUT, M::DELETE];
        let (allowed, cors, refusal) = match self {
            Endpoint::Admin => return None,
            Endpoint::HealthLive
            | Endpoint::HealthReady
            | Endpoint::Metrics
            | Endpoint::RealmInfo
            | Endpoint::LoginStatusIframe
            | Endpoint::ThirdPartyCookies
            | Endpoint::Resource => (READ, false, Refusal::MethodNotAllowed),
            // Fetched by browser apps (keycloak-js, openid-client in a page).
            Endpoint::Discovery | Endpoint::Certs => (READ, true, Refusal::MethodNotAllowed),
            // Read by the admin console in the browser.
            Endpoint::ServerInfo | Endpoint::WhoAmI | Endpoint::OpenApi => {
                (READ, true, Refusal::MethodNotAllowed)
            }
            Endpoint::UserInfo => (FORM, true, Refusal::MethodNotAllowed),
            Endpoint::Authorize
            | Endpoint::Logout
            | Endpoint::DevicePage
            | Endpoint::LoginAction
            | Endpoint::Broker
            | Endpoint::Console
            | Endpoint::Welcome
            | Endpoint::Account => (FORM, false, Refusal::MethodNotAllowed),
            Endpoint::AdminRoot => (READ, false, Refusal::MethodNotAllowed),
            // Keycloak answers the back-channel endpoints' other methods with an OAuth 400.
            Endpoint::Token | Endpoint::Revoke => (POST, true, Refusal::OAuth),
            Endpoint::ClientRegistration => (REGISTRATION, true, Refusal::OAuth),
            Endpoint::Introspect
            | Endpoint::DeviceAuthorization
            | Endpoint::PushedAuthorization => (POST, false, Refusal::OAuth),
        };
        Some(Methods {
            allowed,
            cors,
            refusal,
        })
    }

    /// The `route` label in metrics.
    pub fn metric_label(self) -> &'static str {
        match self {
            Endpoint::HealthLive | Endpoint::HealthReady => "health",
            Endpoint::Metrics => "metrics",
            Endpoint::Token => "oidc_token",
            Endpoint::Authorize
            | Endpoint::LoginAction
            | Endpoint::Broker
            | Endpoint::Logout
            | Endpoint::DevicePage
            | Endpoint::Account => "oidc_login",
            Endpoint::Admin | Endpoint::ServerInfo | Endpoint::WhoAmI | Endpoint::OpenApi => {
                "admin"
            }
            Endpoint::Console | Endpoint::AdminRoot | Endpoint::Welcome => "console",
            Endpoint::Resource => "resources",
            _ => "oidc",
        }
    }
}

/// The methods of an endpoint.
#[derive(Debug, Clone, Copy)]
pub struct Methods {
    pub allowed: &'static [Method],
    /// `OPTIONS` is a CORS pre-flight naming `allowed`.
    pub cors: bool,
    pub refusal: Refusal,
}

/// How an endpoint refuses a method it does not serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `405` with `Allow`.
    MethodNotAllowed,
    /// Keycloak's `400 {"error": "invalid_request", "error_description": "HTTP method not
    /// allowed"}`.
    OAuth,
}

/// Values captured from the path, percent-decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    /// The realm name (`/realms/{realm}/...`).
    pub realm: String,
    /// The remainder of a catch-all route (`/admin/realms/{*rest}`, `/resources/{*rest}`).
    pub rest: String,
}

pub struct Router {
    inner: matchit::Router<Endpoint>,
    /// The first path segments of the table (`realms`, `admin`, ...): the proxy asks for
    /// every request, and most of its paths are an app's, refused by this look alone.
    heads: Vec<String>,
}

impl Default for Router {
    fn default() -> Self {
        Router::new()
    }
}

const OIDC: &str = "/realms/{realm}/protocol/openid-connect";

impl Router {
    pub fn new() -> Router {
        let mut inner = matchit::Router::new();
        let routes: Vec<(String, Endpoint)> = vec![
            ("/health/live".into(), Endpoint::HealthLive),
            ("/health/ready".into(), Endpoint::HealthReady),
            ("/metrics".into(), Endpoint::Metrics),
            ("/realms/{realm}".into(), Endpoint::RealmInfo),
            (
                "/realms/{realm}/.well-known/openid-configuration".into(),
                Endpoint::Discovery,
            ),
            (
                "/realms/{realm}/.well-known/oauth-authorization-server".into(),
                Endpoint::Discovery,
            ),
            (format!("{OIDC}/auth"), Endpoint::Authorize),
            (format!("{OIDC}/auth/device"), Endpoint::DeviceAuthorization),
            (
                format!("{OIDC}/ext/par/request"),
                Endpoint::PushedAuthorization,
            ),
            ("/realms/{realm}/device".into(), Endpoint::DevicePage),
            (format!("{OIDC}/token"), Endpoint::Token),
            (format!("{OIDC}/token/introspect"), Endpoint::Introspect),
            (format!("{OIDC}/revoke"), Endpoint::Revoke),
            (format!("{OIDC}/userinfo"), Endpoint::UserInfo),
            (format!("{OIDC}/logout"), Endpoint::Logout),
            (format!("{OIDC}/certs"), Endpoint::Certs),
            (
                format!("{OIDC}/login-status-iframe.html"),
                Endpoint::LoginStatusIframe,
            ),
            (
                format!("{OIDC}/login-status-iframe.html/init"),
                Endpoint::LoginStatusIframe,
            ),
            (
                format!("{OIDC}/3p-cookies/{{*rest}}"),
                Endpoint::ThirdPartyCookies,
            ),
            (
                "/realms/{realm}/login-actions/{*rest}".into(),
                Endpoint::LoginAction,
            ),
            ("/realms/{realm}/broker/{*rest}".into(), Endpoint::Broker),
            (
                "/realms/{realm}/clients-registrations/{*rest}".into(),
                Endpoint::ClientRegistration,
            ),
            ("/realms/{realm}/account".into(), Endpoint::Account),
            ("/realms/{realm}/account/".into(), Endpoint::Account),
            ("/realms/{realm}/account/{*rest}".into(), Endpoint::Account),
            ("/resources/{*rest}".into(), Endpoint::Resource),
            ("/admin/serverinfo".into(), Endpoint::ServerInfo),
            ("/admin/openapi.json".into(), Endpoint::OpenApi),
            ("/admin/{realm}/console/whoami".into(), Endpoint::WhoAmI),
            ("/admin".into(), Endpoint::AdminRoot),
            ("/admin/".into(), Endpoint::AdminRoot),
            ("/admin/{realm}/console".into(), Endpoint::Console),
            ("/admin/{realm}/console/".into(), Endpoint::Console),
            ("/admin/{realm}/console/{*rest}".into(), Endpoint::Console),
            ("/admin/realms".into(), Endpoint::Admin),
            ("/admin/realms/".into(), Endpoint::Admin),
            ("/admin/realms/{*rest}".into(), Endpoint::Admin),
        ];
        let mut heads: Vec<String> = Vec::new();
        for (path, endpoint) in routes {
            if let Some(head) = first_segment(&path).filter(|h| !heads.iter().any(|x| x == h)) {
                heads.push(head.to_string());
            }
            // The table above is static and conflict-free; a failure is a programming error
            // caught by the `all_routes_resolve` test.
            if let Err(e) = inner.insert(path.as_str(), endpoint) {
                tracing::error!(%path, error = %e, "route table conflict");
            }
        }
        Router { inner, heads }
    }

    /// The endpoint for a path, with its parameters; `None` when the gateway does not serve it.
    pub fn find(&self, path: &str) -> Option<(Endpoint, Params)> {
        let head = first_segment(path)?;
        if !self.heads.iter().any(|h| h == head) {
            return None;
        }
        let matched = self.inner.at(path).ok()?;
        let decode = |v: &str| -> Option<String> { percent_decode(v).map(Cow::into_owned) };
        let params = Params {
            realm: matched
                .params
                .get("realm")
                .map(decode)
                .unwrap_or(Some(String::new()))?,
            rest: matched.params.get("rest").unwrap_or("").to_string(),
        };
        Some((*matched.value, params))
    }
}

/// `realms` of `/realms/demo/...`.
fn first_segment(path: &str) -> Option<&str> {
    path.strip_prefix('/')?.split('/').next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_routes_resolve() {
        let r = Router::new();
        assert_eq!(r.find("/admin/serverinfo").unwrap().0, Endpoint::ServerInfo);
        assert_eq!(r.find("/admin/openapi.json").unwrap().0, Endpoint::OpenApi);
        let (e, p) = r.find("/admin/shop/console/whoami").unwrap();
        assert_eq!((e, p.realm.as_str()), (Endpoint::WhoAmI, "shop"));
        assert_eq!(
            r.find("/admin/realms/shop/users").unwrap().0,
            Endpoint::Admin
        );
        assert_eq!(r.find("/health/live").unwrap().0, Endpoint::HealthLive);
        assert_eq!(r.find("/metrics").unwrap().0, Endpoint::Metrics);
        let (e, p) = r
            .find("/realms/my%20realm/protocol/openid-connect/token")
            .unwrap();
        assert_eq!(e, Endpoint::Token);
        assert_eq!(p.realm, "my realm");
        assert_eq!(
            r.find("/realms/a/protocol/openid-connect/token/introspect")
                .unwrap()
                .0,
            Endpoint::Introspect
        );
        let (e, p) = r.find("/admin/realms/a/users/1").unwrap();
        assert_eq!((e, p.rest.as_str()), (Endpoint::Admin, "a/users/1"));
        assert_eq!(r.find("/admin/realms").unwrap().0, Endpoint::Admin);
        assert_eq!(r.find("/admin/realms/").unwrap().0, Endpoint::Admin);
        assert_eq!(
            r.find("/realms/a/.well-known/openid-configuration")
                .unwrap()
                .0,
            Endpoint::Discovery
        );
        assert!(r.find("/health").is_none());
        assert!(r.find("/app/anything").is_none());
    }
}
