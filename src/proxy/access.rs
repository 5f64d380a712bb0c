//! Who may pass a route: the check of a request against its route (methods, public paths,
//! a login session or a bearer token, the policy), and the cache of checked sessions and
//! tokens. Everything the check needs of the IdP goes through `idp::gateway`; the login
//! itself is in `login.rs`, the identity told upstream in `identity.rs`.
//!
//! The gateway is a client of its own provider: the app host gets its own cookie
//! (`__Host-portcullis` over TLS) bound to the provider's session, so when that session
//! ends, every app cookie bound to it stops working. Checked sessions and tokens are
//! cached for `proxy.session_check_interval` (5 s by default): the hot path does not touch
//! the store, and a revocation takes effect within that interval. When the store cannot be
//! read the answer is 503, never a login redirect.
//!
//! Nothing here knows about pingora: requests arrive as [`Incoming`], answers leave as
//! [`Response`]s or an [`Identity`] for the upstream request.

use std::sync::Arc;
use std::time::Duration;

use crate::config::{RouteAccess, RouteConfig};
use crate::http::{IntoResponse, Response};
use crate::idp::gateway::{self, Unavailable};
use crate::idp::App;

pub use super::identity::{permits, Identity};
pub use super::incoming::{safe_return_path, Incoming};
use super::login::PendingLogins;
pub use super::login::{cookie_hash, cookie_name, CALLBACK_PATH, SIGN_OUT_PATH, START_PATH};
use super::refusal::Refusal;

/// Forward-auth for other proxies (nginx `auth_request`, Traefik, Caddy).
pub const FORWARD_AUTH_PATH: &str = "/_portcullis/forward-auth";
pub const RESERVED_PREFIX: &str = "/_portcullis/";

/// Memory for cached session and bearer checks.
const IDENTITY_CACHE_BYTES: u64 = 16 * 1024 * 1024;

/// What the check decided.
pub enum Outcome {
    /// Forward, with the identity to inject (`None` for open routes and public paths).
    Pass(Option<Arc<Identity>>),
    /// Answer the client directly (login redirect, 401, 403, 405, 503).
    Respond(Response),
}

/// A checked session or token, keyed in the cache by a keyed hash of what the request
/// presented ([`CheckKey`]); the entry holds the presented credential itself, and a hit
/// counts only when all of it is equal, so a hash collision is a miss, never someone else's
/// identity.
struct Cached {
    identity: Arc<Identity>,
    until_ms: i64,
    key: CheckKey<Box<str>>,
}

/// What a cached check was for: the route, the scheme and host, and the cookie value or
/// bearer token. `S` is `&str` for the request's, `Box<str>` for the stored one.
#[derive(Hash)]
struct CheckKey<S> {
    bearer: bool,
    route: usize,
    tls: bool,
    host: S,
    credential: S,
}

impl CheckKey<&str> {
    fn matches(&self, stored: &CheckKey<Box<str>>) -> bool {
        self.bearer == stored.bearer
            && self.route == stored.route
            && self.tls == stored.tls
            && *self.host == *stored.host
            // Not constant-time, on purpose: a stored credential is compared only with one
            // of the same keyed 64-bit hash, which an attacker cannot aim at, and a
            // byte-by-byte constant-time loop over an 800-byte token cost 3% of the bearer
            // route's CPU.
            && *self.credential == *stored.credential
    }

    fn owned(&self) -> CheckKey<Box<str>> {
        CheckKey {
            bearer: self.bearer,
            route: self.route,
            tls: self.tls,
            host: self.host.into(),
            credential: self.credential.into(),
        }
    }
}

/// The access checks, with their caches.
pub struct Access {
    pub(super) app: App,
    ttl_ms: i64,
    /// Keyed per process (SipHash with a random key): a client cannot aim at a bucket.
    hasher: std::collections::hash_map::RandomState,
    identities: moka::sync::Cache<u64, Arc<Cached>>,
    pub(super) logins: PendingLogins,
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
                .weigher(|_: &u64, value: &Arc<Cached>| {
                    (64 + value.key.host.len()
                        + value.key.credential.len()
                        + value.identity.approximate_size())
                    .min(u32::MAX as usize) as u32
                })
                .max_capacity(IDENTITY_CACHE_BYTES)
                .time_to_live(ttl.max(Duration::from_millis(1)))
                .support_invalidation_closures()
                .build(),
            hasher: std::collections::hash_map::RandomState::new(),
            logins: PendingLogins::new(),
            app,
        }
    }

    /// The cached identity for `key`, if it is still fresh.
    fn cached(&self, key: &CheckKey<&str>, now_ms: i64) -> Option<Arc<Identity>> {
        use std::hash::BuildHasher;
        let hit = self.identities.get(&self.hasher.hash_one(key))?;
        (hit.until_ms > now_ms && key.matches(&hit.key)).then(|| hit.identity.clone())
    }

    /// Forget every cached decision (the routes changed).
    pub fn clear(&self) {
        self.identities.invalidate_all();
    }

    /// Forget the cached checks of one app cookie (signed out; other routes' checks go
    /// within their interval).
    pub(super) fn forget_cookie(&self, sid: &str, secret: &str) {
        let cookie = format!("{sid}.{secret}");
        let _ = self.identities.invalidate_entries_if(move |_, cached| {
            !cached.key.bearer && *cached.key.credential == *cookie
        });
    }

    /// The whole check for a request on `route` (its position `index` in the table):
    /// method, public paths, session or bearer, policy.
    pub fn check(&self, route: &RouteConfig, index: usize, req: &Incoming) -> Outcome {
        if !route.methods.is_empty() && !route.methods.contains(req.method) {
            return refuse(Refusal::MethodNotAllowed(route.methods.clone()));
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
        // Only refusals and redirects need to know; a request that passes never asks.
        let html = || !req.is_api_client();
        let found = match crate::http::bearer_token(req.headers) {
            Some(token) if route.auth.accepts_bearer() => {
                match self.bearer_identity(access, index, req, token) {
                    Ok(Some(id)) => Ok(id),
                    Ok(None) => {
                        return refuse(Refusal::Unauthorized {
                            realm: access.realm.clone(),
                            invalid_token: true,
                        })
                    }
                    Err(e) => Err(e),
                }
            }
            _ if route.auth.accepts_session() => match self.session_identity(access, index, req) {
                Ok(Some(id)) => Ok(id),
                Ok(None) if html() => {
                    return Outcome::Respond(self.login_redirect(access, req, req.return_to()))
                }
                Ok(None) => {
                    return refuse(Refusal::Unauthorized {
                        realm: access.realm.clone(),
                        invalid_token: false,
                    })
                }
                Err(e) => Err(e),
            },
            _ => {
                return refuse(Refusal::Unauthorized {
                    realm: access.realm.clone(),
                    invalid_token: false,
                })
            }
        };
        let identity = match found {
            Ok(identity) => identity,
            Err(e) => {
                tracing::warn!(error = %e, "access check: the store is unavailable");
                return refuse(Refusal::Unavailable { html: html() });
            }
        };
        if !permits(&access.policy, &identity) {
            return refuse(Refusal::Forbidden { html: html() });
        }
        Outcome::Pass(Some(identity))
    }

    /// The identity behind the app-host session cookie, from the cache or the store.
    fn session_identity(
        &self,
        access: &RouteAccess,
        index: usize,
        req: &Incoming,
    ) -> Result<Option<Arc<Identity>>, Unavailable> {
        let Some(value) = req.cookie(cookie_name(req.tls)) else {
            return Ok(None);
        };
        // The scheme is part of the key: a cookie issued over TLS is not valid without it.
        let key = CheckKey {
            bearer: false,
            route: index,
            tls: req.tls,
            host: req.host,
            credential: value,
        };
        let now = self.app.clock.now_millis();
        if let Some(identity) = self.cached(&key, now) {
            return Ok(Some(identity));
        }
        let Some((sid, secret)) = value.split_once('.') else {
            return Ok(None);
        };
        let hash = cookie_hash(secret, req.tls, req.host);
        let Some((realm, session)) =
            gateway::bound_session(&self.app, &access.realm, sid, &hash, now)?
        else {
            return Ok(None);
        };
        let remaining = gateway::session_remaining_ms(&realm, &session, now);
        let Some(subject) = gateway::session_subject(&self.app, realm, session, now)? else {
            return Ok(None);
        };
        let identity = Arc::new(Identity::build(&self.app, access, req, subject, None, now)?);
        self.remember(&key, &identity, now + self.ttl_ms.min(remaining));
        Ok(Some(identity))
    }

    /// The identity behind a bearer token of the route's realm.
    fn bearer_identity(
        &self,
        access: &RouteAccess,
        index: usize,
        req: &Incoming,
        token: &str,
    ) -> Result<Option<Arc<Identity>>, Unavailable> {
        let key = CheckKey {
            bearer: true,
            route: index,
            tls: req.tls,
            host: req.host,
            credential: token,
        };
        let now = self.app.clock.now_millis();
        if let Some(identity) = self.cached(&key, now) {
            return Ok(Some(identity));
        }
        let Some((subject, claims)) =
            gateway::bearer_subject(&self.app, &access.realm, token, now)?
        else {
            return Ok(None);
        };
        let identity = Arc::new(Identity::build(
            &self.app,
            access,
            req,
            subject,
            Some(token.to_string()),
            now,
        )?);
        self.remember(
            &key,
            &identity,
            now + self.ttl_ms.min(claims.exp.saturating_mul(1000) - now),
        );
        Ok(Some(identity))
    }

    fn remember(&self, key: &CheckKey<&str>, identity: &Arc<Identity>, until_ms: i64) {
        use std::hash::BuildHasher;
        self.identities.insert(
            self.hasher.hash_one(key),
            Arc::new(Cached {
                identity: identity.clone(),
                until_ms,
                key: key.owned(),
            }),
        );
    }

    /// `{base}/realms/{realm}`: the public URL, else this host.
    pub(super) fn issuer(&self, req: &Incoming, realm: &str) -> String {
        gateway::issuer_at(
            &req.base_url(self.app.config.server.public_url.as_ref()),
            realm,
        )
    }
}

fn refuse(refusal: Refusal) -> Outcome {
    Outcome::Respond(refusal.into_response())
}

/// 401 for a request without (valid) credentials, with the realm's `Bearer` challenge.
pub(super) fn unauthorized(realm: &str, invalid_token: bool) -> Response {
    Refusal::Unauthorized {
        realm: realm.to_string(),
        invalid_token,
    }
    .into_response()
}
