//! Who may pass a route: the gateway's login sessions and bearer tokens, the route policy,
//! and what the upstream is told about the user.
//!
//! The gateway is a client of its own provider. A browser without a session is sent
//! through the realm's authorization-code flow with PKCE; the code comes back to
//! `/_portcullis/callback` on the app's host and is redeemed in-process, and the app host
//! gets its own cookie (`__Host-portcullis` over TLS) bound to the provider's session: when
//! that session ends, every app cookie bound to it stops working. Checked sessions and
//! tokens are cached for `proxy.session_check_interval` (5 s by default), so the hot path
//! does not touch the store and a revocation takes effect within that interval.
//!
//! Nothing here knows about pingora: requests arrive as [`Incoming`], answers leave as
//! [`Response`]s or an [`Identity`] for the upstream request.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::config::{Policy, RouteAccess, RouteConfig};
use crate::crypto::jwt::Algorithm;
use crate::crypto::{constant_time_eq, random_token};
use crate::http::Response;
use crate::idp::login::{html_response, sha256_hex};
use crate::idp::oidc::encode_segment;
use crate::idp::tokens::{self, IssueContext, Scopes};
use crate::idp::App;
use crate::store::{ClientRecord, RealmRecord, SessionRecord, UserRecord};

/// Paths the gateway answers itself on every routed host.
pub const CALLBACK_PATH: &str = "/_portcullis/callback";
pub const SIGN_OUT_PATH: &str = "/_portcullis/sign_out";
/// `?rd=/path`: start a login that returns to `/path` (for nginx's `error_page 401`).
pub const START_PATH: &str = "/_portcullis/start";
/// Forward-auth for other proxies (nginx `auth_request`, Traefik, Caddy).
pub const FORWARD_AUTH_PATH: &str = "/_portcullis/forward-auth";
pub const RESERVED_PREFIX: &str = "/_portcullis/";

/// Lifetime of the signed identity assertion.
const ASSERTION_LIFETIME_SECS: i64 = 300;
/// A pending login (between the redirect to the login page and the callback).
const PENDING_LIFETIME: Duration = Duration::from_secs(600);
/// At most this many logins in progress from one client address (within
/// [`PENDING_LIFETIME`]): anonymous traffic from a few addresses cannot flush the pending
/// logins of everybody else out of the cache.
const MAX_PENDING_PER_ADDRESS: u32 = 200;
/// At most this many app cookies are bound to one provider session.
const MAX_COOKIES_PER_SESSION: usize = 32;
/// Memory for cached session and bearer checks.
const IDENTITY_CACHE_BYTES: u64 = 16 * 1024 * 1024;
/// The provider session's idle clock is advanced at most this often by proxied traffic.
const TOUCH_EVERY_MS: i64 = 30_000;

/// The session cookie on the app host: `__Host-` (host-only, `Secure`, `Path=/`) over TLS.
pub fn cookie_name(tls: bool) -> &'static str {
    if tls {
        "__Host-portcullis"
    } else {
        "portcullis"
    }
}

fn state_cookie_name(tls: bool) -> &'static str {
    if tls {
        "__Host-portcullis-state"
    } else {
        "portcullis-state"
    }
}

/// The request as the access check sees it (after path normalisation and IP rules).
pub struct Incoming<'a> {
    pub method: &'a Method,
    pub headers: &'a HeaderMap,
    /// Lower case, without port.
    pub host: &'a str,
    /// The Host header as sent (with port), for URLs back to this host.
    pub authority: &'a str,
    /// Normalised.
    pub path: &'a str,
    pub query: Option<&'a str>,
    /// Over TLS: our own, or a trusted proxy's.
    pub tls: bool,
    pub client_ip: Option<IpAddr>,
}

impl Incoming<'_> {
    fn scheme(&self) -> &'static str {
        if self.tls {
            "https"
        } else {
            "http"
        }
    }

    fn cookie(&self, name: &str) -> Option<&str> {
        crate::idp::login::cookie_in(self.headers, name)
    }

    fn query_param(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.query.unwrap_or("").as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// API clients get 401 instead of a redirect to a login page.
    fn is_api_client(&self) -> bool {
        let h = |name: &str| {
            self.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_ascii_lowercase()
        };
        let accept = h("accept");
        !matches!(*self.method, Method::GET | Method::HEAD)
            || self.headers.contains_key(header::AUTHORIZATION)
            || h("x-requested-with") == "xmlhttprequest"
            || (accept.contains("application/json") && !accept.contains("text/html"))
    }

    /// The `rd` of `/_portcullis/start?rd=/path?a=1&b=2` and `/_portcullis/sign_out?rd=...`:
    /// everything after `rd=`, decoded, so that nginx can pass `$request_uri` unencoded.
    /// Not yet checked: see [`safe_return_path`].
    pub fn return_target(&self) -> Option<String> {
        let q = self.query?;
        let raw = q
            .strip_prefix("rd=")
            .or_else(|| q.split_once("&rd=").map(|(_, r)| r))?;
        Some(crate::http::path::percent_decode(raw)?.into_owned())
    }

    /// Whether the browser says this request comes from a page of this origin (or from
    /// the user: typed, bookmarked).
    fn same_origin(&self) -> bool {
        let h = |name: &str| self.headers.get(name).and_then(|v| v.to_str().ok());
        match h("sec-fetch-site") {
            Some(site) => matches!(site, "same-origin" | "none"),
            None => h("origin").is_some_and(|o| {
                o.eq_ignore_ascii_case(&format!("{}://{}", self.scheme(), self.authority))
            }),
        }
    }

    /// The path and query to come back to after login.
    fn return_to(&self) -> String {
        match self.query {
            Some(q) if !q.is_empty() => format!("{}?{q}", self.path),
            _ => self.path.to_string(),
        }
    }
}

/// Who the user is, as the upstream is told.
#[derive(Debug)]
pub struct Identity {
    pub user_id: String,
    pub username: String,
    pub email: Option<String>,
    /// Group paths.
    pub groups: Vec<String>,
    pub realm_roles: BTreeSet<String>,
    /// clientId → role names.
    pub client_roles: BTreeMap<String, BTreeSet<String>>,
    pub sid: Option<String>,
    /// An access token for the route's client (minted or presented), when wanted.
    pub access_token: Option<String>,
    /// `X-Portcullis-Jwt-Assertion`, when wanted.
    pub assertion: Option<String>,
}

impl Identity {
    /// Realm roles, then client roles as `client:role`, comma-separated.
    pub fn roles_header(&self) -> String {
        self.roles_list().join(",")
    }

    /// The headers to inject, under the route's names.
    pub fn headers(&self, access: &RouteAccess) -> Vec<(HeaderName, HeaderValue)> {
        let names = &access.headers;
        let mut out = Vec::with_capacity(8);
        let mut push = |name: &HeaderName, value: &str| {
            if let Ok(v) = HeaderValue::from_bytes(value.as_bytes()) {
                out.push((name.clone(), v));
            }
        };
        push(&names.user, &self.user_id);
        if let Some(email) = &self.email {
            push(&names.email, email);
        }
        push(&names.preferred_username, &self.username);
        push(&names.groups, &self.groups.join(","));
        push(&names.roles, &self.roles_header());
        if let Some(token) = &self.access_token {
            if access.pass_access_token {
                push(&names.access_token, token);
            }
            if access.pass_authorization_header {
                push(&header::AUTHORIZATION, &format!("Bearer {token}"));
            }
        }
        if let Some(assertion) = &self.assertion {
            push(&names.jwt_assertion, assertion);
        }
        out
    }
}

/// Whether the identity satisfies the route policy.
pub fn permits(policy: &Policy, id: &Identity) -> bool {
    let in_group = |wanted: &String| {
        id.groups.iter().any(|g| {
            g == wanted
                || (g.starts_with(wanted.as_str()) && g.as_bytes().get(wanted.len()) == Some(&b'/'))
        })
    };
    let mut checks = policy
        .realm_roles
        .iter()
        .map(|r| id.realm_roles.contains(r))
        .chain(policy.client_roles.iter().map(|(c, r)| {
            id.client_roles
                .get(c)
                .is_some_and(|roles| roles.contains(r))
        }))
        .chain(policy.groups.iter().map(in_group))
        .peekable();
    if checks.peek().is_none() {
        return true;
    }
    if policy.require_all {
        checks.all(|ok| ok)
    } else {
        checks.any(|ok| ok)
    }
}

/// What the check decided.
pub enum Outcome {
    /// Forward, with the identity to inject (`None` for open routes and public paths).
    Pass(Option<Arc<Identity>>),
    /// Answer the client directly (login redirect, 401, 403, 405).
    Respond(Response),
}

struct Cached {
    identity: Arc<Identity>,
    until_ms: i64,
}

struct PendingLogin {
    realm: String,
    client: String,
    host: String,
    redirect_uri: String,
    verifier: String,
    return_to: String,
}

/// The access checks, with their caches.
pub struct Access {
    app: App,
    ttl_ms: i64,
    identities: moka::sync::Cache<String, Arc<Cached>>,
    pending: moka::sync::Cache<String, Arc<PendingLogin>>,
    /// Logins started per client address in the current window.
    pending_per_address: moka::sync::Cache<IpAddr, Arc<std::sync::atomic::AtomicU32>>,
}

impl Access {
    pub fn new(app: App) -> Access {
        let ttl = app.config.proxy.session_check_interval;
        Access {
            ttl_ms: ttl.as_millis() as i64,
            // Bounded by bytes, not entries: a burst of many distinct sessions evicts the
            // least recently used checks (they are re-read from the store) instead of
            // growing memory.
            identities: moka::sync::Cache::builder()
                .weigher(|key: &String, value: &Arc<Cached>| {
                    (key.len() + value.identity.approximate_size()).min(u32::MAX as usize) as u32
                })
                .max_capacity(IDENTITY_CACHE_BYTES)
                .time_to_live(ttl.max(Duration::from_millis(1)))
                .support_invalidation_closures()
                .build(),
            pending: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(PENDING_LIFETIME)
                .build(),
            pending_per_address: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(PENDING_LIFETIME)
                .build(),
            app,
        }
    }

    /// Forget every cached decision (the routes changed).
    pub fn clear(&self) {
        self.identities.invalidate_all();
    }

    /// The whole check for a request on `route` (its position `index` in the table):
    /// method, public paths, session or bearer, policy.
    pub fn check(&self, route: &RouteConfig, index: usize, req: &Incoming) -> Outcome {
        if !route.methods.is_empty() && !route.methods.contains(req.method) {
            return Outcome::Respond(method_not_allowed(&route.methods));
        }
        let Some(access) = &route.access else {
            return Outcome::Pass(None);
        };
        if access
            .public_paths
            .iter()
            .any(|p| super::routes::prefix_matches(p, req.path))
        {
            return Outcome::Pass(None);
        }
        let identity = match bearer_token(req.headers) {
            Some(token) if route.auth.accepts_bearer() => {
                match self.bearer_identity(access, index, req, token) {
                    Some(id) => id,
                    None => return Outcome::Respond(unauthorized(&access.realm, true)),
                }
            }
            _ => match route
                .auth
                .accepts_session()
                .then(|| self.session_identity(access, index, req))
                .flatten()
            {
                Some(id) => id,
                _ => {
                    if route.auth.accepts_session() && !req.is_api_client() {
                        return Outcome::Respond(self.login_redirect(access, req, req.return_to()));
                    }
                    return Outcome::Respond(unauthorized(&access.realm, false));
                }
            },
        };
        if !permits(&access.policy, &identity) {
            return Outcome::Respond(forbidden(!req.is_api_client()));
        }
        Outcome::Pass(Some(identity))
    }

    /// The identity behind the app-host session cookie, from the cache or the store.
    fn session_identity(
        &self,
        access: &RouteAccess,
        index: usize,
        req: &Incoming,
    ) -> Option<Arc<Identity>> {
        let value = req.cookie(cookie_name(req.tls))?;
        // The scheme is part of the key: a cookie issued over TLS is not valid without it.
        let key = format!("s|{index}|{}|{}|{}", req.tls, req.host, sha256_hex(value));
        let now = self.app.clock.now_millis();
        if let Some(hit) = self.identities.get(&key) {
            if hit.until_ms > now {
                return Some(hit.identity.clone());
            }
        }
        let (sid, secret) = value.split_once('.')?;
        let (identity, until_ms) = self.load_session(access, req, sid, secret, now)?;
        let identity = Arc::new(identity);
        self.identities.insert(
            key,
            Arc::new(Cached {
                identity: identity.clone(),
                until_ms,
            }),
        );
        Some(identity)
    }

    /// The live provider session `sid` of the route's realm, if `secret` is one of the app
    /// cookies bound to it (over this scheme).
    fn bound_session(
        &self,
        access: &RouteAccess,
        req: &Incoming,
        sid: &str,
        secret: &str,
        now: i64,
    ) -> Option<(RealmRecord, SessionRecord)> {
        let realm = crate::idp::login::enabled_realm(&self.app, &access.realm)?;
        let session = self.app.store.read().ok()?.session(&realm.id, sid).ok()??;
        let hash = cookie_hash(secret, req.tls, req.host);
        let bound = session
            .gateway_cookies
            .iter()
            .any(|h| constant_time_eq(h.as_bytes(), hash.as_bytes()));
        (bound && !session.offline && crate::idp::sessions::is_valid(&realm, &session, now))
            .then_some((realm, session))
    }

    fn load_session(
        &self,
        access: &RouteAccess,
        req: &Incoming,
        sid: &str,
        secret: &str,
        now: i64,
    ) -> Option<(Identity, i64)> {
        let (realm, session) = self.bound_session(access, req, sid, secret, now)?;
        let read = self.app.store.read().ok()?;
        let user = read.user(&realm.id, &session.user_id).ok()??;
        if !user.enabled {
            return None;
        }
        let client = read
            .client_by_client_id(&realm.id, &access.client)
            .ok()
            .flatten();
        drop(read);
        if now - session.last_access > TOUCH_EVERY_MS {
            // Proxied traffic is activity: keep the provider session from idling out.
            // Volatile: no fsync on the proxy's workers; a crash loses at most this touch.
            let _ = self.app.store.write_volatile(|w| {
                if let Some(mut s) = w.session(&realm.id, sid)? {
                    s.last_access = now;
                    w.put_session(&realm.id, &s)?;
                }
                Ok::<_, crate::store::StoreError>(())
            });
        }
        let remaining = (realm.sso_session_idle_timeout * 1000)
            .min(session.created_at + realm.sso_session_max_lifespan * 1000 - now);
        let until = now + self.ttl_ms.min(remaining.max(0));
        let identity = self.identity(
            access,
            req,
            &realm,
            client.as_ref(),
            &user,
            Some(&session),
            None,
            now,
        )?;
        Some((identity, until))
    }

    /// The identity behind a bearer token of the route's realm.
    fn bearer_identity(
        &self,
        access: &RouteAccess,
        index: usize,
        req: &Incoming,
        token: &str,
    ) -> Option<Arc<Identity>> {
        let key = format!("b|{index}|{}|{}", req.host, tokens::token_hash(token));
        let now = self.app.clock.now_millis();
        if let Some(hit) = self.identities.get(&key) {
            if hit.until_ms > now {
                return Some(hit.identity.clone());
            }
        }
        let realm = crate::idp::login::enabled_realm(&self.app, &access.realm)?;
        let read = self.app.store.read().ok()?;
        let keys = self.app.keys.realm_keys(&read, &realm.id, now).ok()?;
        // The signature proves the realm (its keys are its own); the issuer's host is the
        // one the client used, so only its realm part is checked.
        let unverified: tokens::Claims = crate::crypto::jwt::decode_unverified(token).ok()?;
        if !unverified
            .iss
            .ends_with(&format!("/realms/{}", encode_segment(&access.realm)))
        {
            return None;
        }
        let (claims, user) = crate::idp::oidc::userinfo::verify_access_token(
            &read,
            &realm,
            &keys,
            token,
            &unverified.iss,
            now,
        )
        .ok()?;
        let session = match &claims.sid {
            Some(sid) => read.session(&realm.id, sid).ok().flatten(),
            None => None,
        };
        drop(read);
        let until = now + self.ttl_ms.min(claims.exp * 1000 - now);
        let identity = Arc::new(self.identity(
            access,
            req,
            &realm,
            None,
            &user,
            session.as_ref(),
            Some(token.to_string()),
            now,
        )?);
        self.identities.insert(
            key,
            Arc::new(Cached {
                identity: identity.clone(),
                until_ms: until,
            }),
        );
        Some(identity)
    }

    /// Build the identity: current roles and groups from the store, an access token for
    /// the route's client when the route passes one on, the signed assertion.
    #[allow(clippy::too_many_arguments)]
    fn identity(
        &self,
        access: &RouteAccess,
        req: &Incoming,
        realm: &RealmRecord,
        client: Option<&ClientRecord>,
        user: &UserRecord,
        session: Option<&SessionRecord>,
        presented_token: Option<String>,
        now: i64,
    ) -> Option<Identity> {
        let read = self.app.store.read().ok()?;
        let roles = crate::idp::roles::effective_roles(&read, &realm.id, &user.id).ok()?;
        let groups = crate::idp::roles::group_paths(&read, &realm.id, &user.id).ok()?;
        let keys = self.app.keys.realm_keys(&read, &realm.id, now).ok()?;
        drop(read);
        let issuer = self.issuer(req, &realm.name);
        let wants_token = access.pass_access_token || access.pass_authorization_header;
        let access_token = match (presented_token, client) {
            (Some(t), _) => Some(t),
            (None, Some(client)) if wants_token => {
                let scopes = Scopes::parse(Some("openid")).ok()?;
                tokens::issue(
                    &keys,
                    &IssueContext {
                        issuer: &issuer,
                        realm,
                        client,
                        user,
                        roles: &roles,
                        scopes: &scopes,
                        session,
                        nonce: None,
                        now_secs: now / 1000,
                        refresh: false,
                        group_paths: &groups,
                    },
                )
                .ok()
                .map(|t| t.access_token)
            }
            _ => None,
        };
        let mut identity = Identity {
            user_id: user.id.clone(),
            username: user.username.clone(),
            email: user.email.clone().filter(|e| !e.is_empty()),
            groups,
            realm_roles: roles.realm,
            client_roles: roles.clients,
            sid: session.map(|s| s.id.clone()),
            access_token,
            assertion: None,
        };
        if access.jwt_assertion {
            let claims = Assertion {
                iss: &issuer,
                aud: req.host,
                sub: &identity.user_id,
                preferred_username: &identity.username,
                email: identity.email.as_deref(),
                groups: &identity.groups,
                roles: identity.roles_list(),
                sid: identity.sid.as_deref(),
                iat: now / 1000,
                exp: now / 1000 + ASSERTION_LIFETIME_SECS,
                jti: crate::crypto::random_id(),
            };
            identity.assertion = keys
                .signer(Algorithm::ES256)
                .ok()
                .and_then(|k| k.sign(&claims).ok());
        }
        Some(identity)
    }

    /// `{base}/realms/{realm}`: the public URL, else this host.
    fn issuer(&self, req: &Incoming, realm: &str) -> String {
        format!("{}/realms/{}", self.base_url(req), encode_segment(realm))
    }

    fn base_url(&self, req: &Incoming) -> String {
        match &self.app.config.server.public_url {
            Some(url) => url.as_str().trim_end_matches('/').to_string(),
            None => format!("{}://{}", req.scheme(), req.authority),
        }
    }

    /// Send the browser to the realm's login; it comes back to `return_to` on this host.
    pub fn login_redirect(
        &self,
        access: &RouteAccess,
        req: &Incoming,
        return_to: String,
    ) -> Response {
        if let Some(ip) = req.client_ip {
            let started = self
                .pending_per_address
                .get_with(ip, || Arc::new(std::sync::atomic::AtomicU32::new(0)))
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if started >= MAX_PENDING_PER_ADDRESS {
                let mut r = page(
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too many sign-ins",
                    "Too many sign-ins were started from your address. Please try again in a few minutes.",
                    !req.is_api_client(),
                );
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
                return r;
            }
        }
        let state = random_token(24);
        let verifier = random_token(32);
        let challenge = B64.encode(Sha256::digest(verifier.as_bytes()));
        let redirect_uri = format!("{}://{}{CALLBACK_PATH}", req.scheme(), req.authority);
        let mut url = format!(
            "{}/protocol/openid-connect/auth?",
            self.issuer(req, &access.realm)
        );
        url.push_str(
            &url::form_urlencoded::Serializer::new(String::new())
                .append_pair("response_type", "code")
                .append_pair("client_id", &access.client)
                .append_pair("redirect_uri", &redirect_uri)
                .append_pair("scope", "openid")
                .append_pair("state", &state)
                .append_pair("code_challenge", &challenge)
                .append_pair("code_challenge_method", "S256")
                .finish(),
        );
        self.pending.insert(
            state.clone(),
            Arc::new(PendingLogin {
                realm: access.realm.clone(),
                client: access.client.clone(),
                host: req.host.to_string(),
                redirect_uri,
                verifier,
                return_to: safe_return_path(&return_to),
            }),
        );
        let mut response = crate::idp::login::redirect(&url);
        add_cookie(
            &mut response,
            state_cookie_name(req.tls),
            &state,
            req.tls,
            Some(PENDING_LIFETIME.as_secs() as i64),
        );
        response
    }

    /// `/_portcullis/callback`: the login came back with a code. The state must be the one
    /// this browser was given (login CSRF), for this host; the code is redeemed in-process
    /// and the app-host cookie is bound to the provider's session.
    pub fn callback(&self, req: &Incoming) -> Response {
        let html = true;
        let fail =
            |status: StatusCode, message: &str| page(status, "Sign-in failed", message, html);
        let (Some(state), Some(cookie)) = (
            req.query_param("state"),
            req.cookie(state_cookie_name(req.tls)),
        ) else {
            return fail(
                StatusCode::BAD_REQUEST,
                "This sign-in link is not valid in this browser. Please go back to the page you wanted and try again.",
            );
        };
        if !constant_time_eq(state.as_bytes(), cookie.as_bytes()) {
            return fail(
                StatusCode::BAD_REQUEST,
                "This sign-in link is not valid in this browser. Please go back to the page you wanted and try again.",
            );
        }
        let Some(pending) = self.pending.remove(&state) else {
            return fail(
                StatusCode::BAD_REQUEST,
                "This sign-in has expired or was already used. Please go back to the page you wanted and try again.",
            );
        };
        if pending.host != req.host {
            return fail(
                StatusCode::BAD_REQUEST,
                "This sign-in belongs to another site.",
            );
        }
        if let Some(error) = req.query_param("error") {
            let message = match error.as_str() {
                "access_denied" => "Sign-in was cancelled or refused.",
                "login_required" => "Please sign in.",
                _ => "The identity provider refused the sign-in.",
            };
            return fail(StatusCode::FORBIDDEN, message);
        }
        let Some(code) = req.query_param("code") else {
            return fail(StatusCode::BAD_REQUEST, "The sign-in response has no code.");
        };
        match self.redeem(&pending, req, &code) {
            Ok(cookie_value) => {
                let mut response = crate::idp::login::redirect(&pending.return_to);
                add_cookie(
                    &mut response,
                    cookie_name(req.tls),
                    &cookie_value,
                    req.tls,
                    None,
                );
                add_cookie(
                    &mut response,
                    state_cookie_name(req.tls),
                    "",
                    req.tls,
                    Some(0),
                );
                response
            }
            Err(reason) => {
                tracing::debug!(reason, "gateway login callback refused");
                fail(
                    StatusCode::BAD_REQUEST,
                    "The sign-in could not be completed. Please go back to the page you wanted and try again.",
                )
            }
        }
    }

    /// Redeem the code and bind a new app-host cookie secret to the session.
    fn redeem(&self, pending: &PendingLogin, req: &Incoming, code: &str) -> Result<String, String> {
        let read = self.app.store.read().map_err(|e| e.to_string())?;
        let realm = read
            .realm_by_name(&pending.realm)
            .map_err(|e| e.to_string())?
            .filter(|r| r.enabled)
            .ok_or("realm not found")?;
        let client = read
            .client_by_client_id(&realm.id, &pending.client)
            .map_err(|e| e.to_string())?
            .filter(|c| c.enabled)
            .ok_or("client not found")?;
        drop(read);
        let issuer = self.issuer(req, &realm.name);
        let tokens = crate::idp::oidc::token::redeem_code_in_process(
            &self.app,
            &realm,
            &client,
            &issuer,
            code,
            &pending.redirect_uri,
            &pending.verifier,
        )
        .map_err(|e| e.to_string())?;
        let sid = tokens.session_state.ok_or("no session")?;
        let secret = random_token(32);
        let hash = cookie_hash(&secret, req.tls, req.host);
        // Volatile, like the touch: a crash costs this browser a new sign-in, not an fsync
        // on the proxy's workers per login.
        self.app
            .store
            .write_volatile(|w| {
                let Some(mut session) = w.session(&realm.id, &sid)? else {
                    return Ok(Err("session ended"));
                };
                session.gateway_cookies.push(hash.clone());
                let extra = session
                    .gateway_cookies
                    .len()
                    .saturating_sub(MAX_COOKIES_PER_SESSION);
                session.gateway_cookies.drain(..extra);
                w.put_session(&realm.id, &session)?;
                Ok::<_, crate::store::StoreError>(Ok(()))
            })
            .map_err(|e| e.to_string())??;
        Ok(format!("{sid}.{secret}"))
    }

    /// Sign out: end the provider session behind the cookie (which signs the user out of
    /// every app) and clear the cookie. `?rd=/path` returns to a path on this host.
    /// Another site must not sign the user out (logout CSRF): a GET does it only when the
    /// browser says it comes from this origin (`Sec-Fetch-Site`, `Origin`) or was typed;
    /// otherwise the user is asked to confirm, by a POST that carries a token only this
    /// origin can read.
    pub fn sign_out(&self, access: &RouteAccess, req: &Incoming) -> Response {
        let cookie = req.cookie(cookie_name(req.tls));
        if let Some(value) = cookie {
            let confirmed = match *req.method {
                Method::POST => req.query_param("token").is_some_and(|t| {
                    constant_time_eq(t.as_bytes(), sign_out_token(value).as_bytes())
                }),
                _ => req.same_origin(),
            };
            if !confirmed {
                return self.sign_out_confirmation(req, value);
            }
        }
        if let Some((sid, secret)) = cookie.and_then(|v| v.split_once('.')) {
            let now = self.app.clock.now_millis();
            if let Some((realm, session)) = self.bound_session(access, req, sid, secret, now) {
                let _ = self.app.store.write(|w| w.delete_session(&realm.id, sid));
                let ip = req.client_ip.map(|i| i.to_string());
                crate::idp::events::record(
                    &self.app,
                    &realm,
                    crate::idp::events::Event {
                        kind: "LOGOUT",
                        client_id: Some(&access.client),
                        user_id: Some(&session.user_id),
                        session_id: Some(sid),
                        ip_address: ip.as_deref(),
                        ..Default::default()
                    },
                );
                // This cookie's cached checks go now (other routes' in their interval).
                let suffix = format!("|{}", sha256_hex(&format!("{sid}.{secret}")));
                let _ = self
                    .identities
                    .invalidate_entries_if(move |key, _| key.ends_with(&suffix));
            }
        }
        let mut response = match req.return_target() {
            Some(rd) => crate::idp::login::redirect(&safe_return_path(&rd)),
            None => page(StatusCode::OK, "Signed out", "You are signed out.", true),
        };
        add_cookie(&mut response, cookie_name(req.tls), "", req.tls, Some(0));
        response
    }
}

impl Access {
    /// "Sign out?" with a button that POSTs back here with the token.
    fn sign_out_confirmation(&self, req: &Incoming, cookie_value: &str) -> Response {
        let mut action = format!("{SIGN_OUT_PATH}?token={}", sign_out_token(cookie_value));
        if let Some(rd) = req.return_target() {
            let rd = safe_return_path(&rd);
            action.push_str("&rd=");
            action
                .push_str(&url::form_urlencoded::byte_serialize(rd.as_bytes()).collect::<String>());
        }
        let body = format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>Sign out</title><style>body{{font-family:system-ui,sans-serif;max-width:32rem;\
             margin:4rem auto;padding:0 1rem;color:#1a1a1a;line-height:1.5}}</style></head>\
             <body><main><h1>Sign out</h1><p>Do you want to sign out?</p>\
             <form method=\"post\" action=\"{}\"><button type=\"submit\">Sign out</button></form>\
             </main></body></html>",
            html_escape(&action)
        );
        let mut r = html_response(StatusCode::OK, body);
        r.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
            ),
        );
        r
    }
}

impl Identity {
    /// Bytes held, roughly (for the cache's bound).
    fn approximate_size(&self) -> usize {
        let strings = |v: &mut dyn Iterator<Item = &String>| v.map(|s| s.len() + 24).sum::<usize>();
        256 + self.user_id.len()
            + self.username.len()
            + self.email.as_ref().map_or(0, String::len)
            + strings(&mut self.groups.iter())
            + strings(&mut self.realm_roles.iter())
            + self
                .client_roles
                .iter()
                .map(|(c, r)| c.len() + 48 + strings(&mut r.iter()))
                .sum::<usize>()
            + self.sid.as_ref().map_or(0, String::len)
            + self.access_token.as_ref().map_or(0, String::len)
            + self.assertion.as_ref().map_or(0, String::len)
    }

    fn roles_list(&self) -> Vec<String> {
        let mut out: Vec<String> = self.realm_roles.iter().cloned().collect();
        for (client, roles) in &self.client_roles {
            out.extend(roles.iter().map(|r| format!("{client}:{r}")));
        }
        out
    }
}

/// The claims of `X-Portcullis-Jwt-Assertion`.
#[derive(Serialize)]
struct Assertion<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    preferred_username: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    groups: &'a [String],
    roles: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<&'a str>,
    iat: i64,
    exp: i64,
    jti: String,
}

/// What the session stores of an app-host cookie secret: its hash, bound to the scheme and
/// the host it was issued for, so that a cookie issued over TLS is not accepted over plain
/// HTTP, nor one issued for one app's host on another's.
pub fn cookie_hash(secret: &str, tls: bool, host: &str) -> String {
    sha256_hex(&format!(
        "{}:{host}:{secret}",
        if tls { "tls" } else { "plain" }
    ))
}

/// The token a sign-out confirmation form carries: derived from the (HttpOnly) cookie, so
/// another site cannot forge the POST.
fn sign_out_token(cookie_value: &str) -> String {
    sha256_hex(&format!("sign-out:{cookie_value}"))
}

/// `Authorization: Bearer <token>`, scheme case-insensitive.
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// A path on this host to return to: anything else (another host, a scheme, `//evil`,
/// `/\evil`, control characters) becomes `/`.
pub fn safe_return_path(candidate: &str) -> String {
    let ok = candidate.starts_with('/')
        && !candidate.starts_with("//")
        && !candidate.starts_with("/\\")
        && !candidate
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\');
    if !ok {
        return "/".into();
    }
    // Re-check after one decoding: `/%2F%2Fevil` must not become `//evil` anywhere.
    match crate::http::path::percent_decode(candidate) {
        Some(decoded) if decoded.starts_with("//") || decoded.starts_with("/\\") => "/".into(),
        None => "/".into(),
        Some(_) => candidate.to_string(),
    }
}

fn add_cookie(response: &mut Response, name: &str, value: &str, tls: bool, max_age: Option<i64>) {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if tls {
        c.push_str("; Secure");
    }
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if let Ok(v) = HeaderValue::from_str(&c) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
}

pub(super) fn unauthorized(realm: &str, invalid_token: bool) -> Response {
    let mut response = json(
        StatusCode::UNAUTHORIZED,
        if invalid_token {
            "invalid_token"
        } else {
            "unauthorized"
        },
        "authentication required",
    );
    let challenge = if invalid_token {
        format!("Bearer realm=\"{realm}\", error=\"invalid_token\"")
    } else {
        format!("Bearer realm=\"{realm}\"")
    };
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    response
}

fn forbidden(html: bool) -> Response {
    page(
        StatusCode::FORBIDDEN,
        "Access denied",
        "You are signed in, but you do not have access to this page.",
        html,
    )
}

fn method_not_allowed(allowed: &[Method]) -> Response {
    let mut response = json(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this route",
    );
    let list = allowed
        .iter()
        .map(Method::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if let Ok(v) = HeaderValue::from_str(&list) {
        response.headers_mut().insert(header::ALLOW, v);
    }
    response
}

fn json(status: StatusCode, error: &str, description: &str) -> Response {
    crate::http::json_response(
        status,
        &serde_json::json!({"error": error, "error_description": description}),
    )
}

/// A small self-contained page for browsers, or the same as JSON for API clients.
fn page(status: StatusCode, title: &str, message: &str, html: bool) -> Response {
    if !html {
        return json(
            status,
            &title.to_ascii_lowercase().replace([' ', '-'], "_"),
            message,
        );
    }
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>body{{font-family:system-ui,sans-serif;max-width:32rem;\
         margin:4rem auto;padding:0 1rem;color:#1a1a1a;line-height:1.5}}</style></head>\
         <body><main><h1>{title}</h1><p>{message}</p></main></body></html>",
        title = html_escape(title),
        message = html_escape(message)
    );
    let mut r = html_response(status, body);
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
    r
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(realm_roles: &[&str], groups: &[&str]) -> Identity {
        Identity {
            user_id: "u".into(),
            username: "alice".into(),
            email: None,
            groups: groups.iter().map(|g| g.to_string()).collect(),
            realm_roles: realm_roles.iter().map(|r| r.to_string()).collect(),
            client_roles: [("app".to_string(), ["viewer".to_string()].into())].into(),
            sid: None,
            access_token: None,
            assertion: None,
        }
    }

    #[test]
    fn policy_any_and_all() {
        let id = identity(&["user"], &["/staff/eng"]);
        let mut p = Policy::default();
        assert!(permits(&p, &id), "no requirement: any signed-in user");
        p.realm_roles = vec!["admin".into(), "user".into()];
        assert!(permits(&p, &id));
        p.require_all = true;
        assert!(!permits(&p, &id));
        p.realm_roles = vec!["user".into()];
        p.client_roles = vec![("app".into(), "viewer".into())];
        p.groups = vec!["/staff".into()];
        assert!(permits(&p, &id), "subgroup members are members");
        p.groups = vec!["/sta".into()];
        assert!(!permits(&p, &id), "a group path prefix is not a parent");
        p.require_all = false;
        p.realm_roles.clear();
        p.client_roles = vec![("other".into(), "viewer".into())];
        assert!(!permits(&p, &id));
    }

    #[test]
    fn return_paths_stay_on_the_host() {
        for bad in [
            "https://evil.example/",
            "//evil.example",
            "/\\evil.example",
            "/%2F%2Fevil.example",
            "/%2f/evil",
            "/%5Cevil",
            " /x",
            "/x\ty",
            "evil",
            "",
        ] {
            assert_eq!(safe_return_path(bad), "/", "{bad:?}");
        }
        assert_eq!(safe_return_path("/app/x?y=1"), "/app/x?y=1");
    }

    #[test]
    fn api_clients_are_told_apart_from_browsers() {
        let mut headers = HeaderMap::new();
        let req = |headers: &HeaderMap, method: &Method| {
            Incoming {
                method,
                headers,
                host: "a",
                authority: "a",
                path: "/",
                query: None,
                tls: false,
                client_ip: None,
            }
            .is_api_client()
        };
        assert!(!req(&headers, &Method::GET));
        assert!(req(&headers, &Method::POST));
        headers.insert(header::ACCEPT, "application/json".parse().unwrap());
        assert!(req(&headers, &Method::GET));
        headers.insert(
            header::ACCEPT,
            "text/html,application/json".parse().unwrap(),
        );
        assert!(!req(&headers, &Method::GET));
        headers.insert("x-requested-with", "XMLHttpRequest".parse().unwrap());
        assert!(req(&headers, &Method::GET));
    }
}
