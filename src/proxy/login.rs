//! The gateway's own login: a browser without a session is sent through the realm's
//! authorization-code flow with PKCE ([`Access::login_redirect`]), comes back to
//! `/_portcullis/callback` on the app's host ([`Access::callback`]: state bound to this
//! browser and host, the code redeemed in-process through `idp::gateway`, a new app-host
//! cookie bound to the provider session, host and scheme), and signs out at
//! `/_portcullis/sign_out` ([`Access::sign_out`], confirmed unless same-origin). Pending
//! logins live in memory, bounded overall and per client address.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use http::{header, HeaderValue, Method, StatusCode};
use sha2::{Digest, Sha256};

use crate::config::RouteAccess;
use crate::crypto::{constant_time_eq, random_token, sha256_hex};
use crate::http::{redirect, IntoResponse, Response};
use crate::idp::gateway;

use super::access::Access;
use super::incoming::{safe_return_path, Incoming};
use super::refusal::{page, page_with, Refusal};

/// Paths the gateway answers itself on every routed host.
pub const CALLBACK_PATH: &str = "/_portcullis/callback";
pub const SIGN_OUT_PATH: &str = "/_portcullis/sign_out";
/// `?rd=/path`: start a login that returns to `/path` (for nginx's `error_page 401`).
pub const START_PATH: &str = "/_portcullis/start";

/// A pending login (between the redirect to the login page and the callback).
const PENDING_LIFETIME: Duration = Duration::from_secs(600);
/// At most this many logins in progress from one client address (within
/// [`PENDING_LIFETIME`]): anonymous traffic from a few addresses cannot flush the pending
/// logins of everybody else out of the cache.
const MAX_PENDING_PER_ADDRESS: u32 = 200;

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

/// A login in progress. It is kept by nobody but the browser: it travels in the state
/// cookie, signed with a key every node shares, so the callback may reach any node and no
/// anonymous request costs a store write or memory.
#[derive(serde::Serialize, serde::Deserialize)]
struct PendingLogin {
    state: String,
    realm: String,
    client: String,
    host: String,
    redirect_uri: String,
    verifier: String,
    return_to: String,
    /// Until when (ms).
    exp: i64,
}

/// The longest return path carried through a login (longer ones return to `/`: the
/// cookie must stay under what browsers keep).
const MAX_RETURN_PATH: usize = 1024;

/// What this node keeps of logins in progress: only how many each address started.
pub(super) struct PendingLogins {
    /// Logins started per client address in the current window.
    per_address: moka::sync::Cache<IpAddr, Arc<AtomicU32>>,
    /// Signs the state cookie; the same on every node (from the store).
    key: std::sync::OnceLock<[u8; 32]>,
}

impl PendingLogins {
    pub(super) fn new() -> PendingLogins {
        PendingLogins {
            per_address: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(PENDING_LIFETIME)
                .build(),
            key: std::sync::OnceLock::new(),
        }
    }

    fn key(&self, store: &crate::store::Store) -> Option<&[u8; 32]> {
        if let Some(key) = self.key.get() {
            return Some(key);
        }
        match store.shared_secret("gateway-login") {
            Ok(key) => Some(self.key.get_or_init(|| key)),
            Err(e) => {
                tracing::warn!(error = %e, "the gateway's login key cannot be read");
                None
            }
        }
    }
}

impl Access {
    /// Send the browser to the realm's login; it comes back to `return_to` on this host.
    pub fn login_redirect(
        &self,
        access: &RouteAccess,
        req: &Incoming,
        return_to: String,
    ) -> Response {
        if let Some(ip) = req.client_ip {
            let started = self
                .logins
                .per_address
                .get_with(ip, || Arc::new(AtomicU32::new(0)))
                .fetch_add(1, Ordering::Relaxed);
            if started >= MAX_PENDING_PER_ADDRESS {
                return Refusal::TooManyLogins {
                    html: !req.is_api_client(),
                }
                .into_response();
            }
        }
        let Some(key) = self.logins.key(&self.app.store) else {
            return Refusal::Unavailable {
                html: !req.is_api_client(),
            }
            .into_response();
        };
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
        let return_to = if return_to.len() <= MAX_RETURN_PATH {
            safe_return_path(&return_to)
        } else {
            "/".to_string()
        };
        let pending = PendingLogin {
            state,
            realm: access.realm.clone(),
            client: access.client.clone(),
            host: req.host.to_string(),
            redirect_uri,
            verifier,
            return_to,
            exp: self.app.clock.now_millis() + PENDING_LIFETIME.as_millis() as i64,
        };
        let Ok(sealed) = crate::crypto::jwt::sign_hs256(&pending, key) else {
            return Refusal::Unavailable {
                html: !req.is_api_client(),
            }
            .into_response();
        };
        let mut response = redirect(&url);
        add_cookie(
            &mut response,
            state_cookie_name(req.tls),
            &sealed,
            req.tls,
            Some(PENDING_LIFETIME.as_secs() as i64),
        );
        response
    }

    /// `/_portcullis/callback`: the login came back with a code. The state must be the one
    /// this browser was given (login CSRF), for this host; the code is redeemed in-process
    /// and the app-host cookie is bound to the provider's session.
    pub fn callback(&self, req: &Incoming) -> Response {
        let fail = |status: StatusCode, message: &'static str| {
            Refusal::Page {
                status,
                title: "Sign-in failed",
                message,
                html: true,
            }
            .into_response()
        };
        const NOT_THIS_BROWSER: &str = "This sign-in link is not valid in this browser. Please go back to the page you wanted and try again.";
        let (Some(state), Some(cookie)) = (
            req.query_param("state"),
            req.cookie(state_cookie_name(req.tls)),
        ) else {
            return fail(StatusCode::BAD_REQUEST, NOT_THIS_BROWSER);
        };
        let Some(key) = self.logins.key(&self.app.store) else {
            return Refusal::Unavailable { html: true }.into_response();
        };
        let Ok(pending) = crate::crypto::jwt::verify_hs256::<PendingLogin>(cookie, key) else {
            return fail(StatusCode::BAD_REQUEST, NOT_THIS_BROWSER);
        };
        if !constant_time_eq(state.as_bytes(), pending.state.as_bytes()) {
            return fail(StatusCode::BAD_REQUEST, NOT_THIS_BROWSER);
        }
        if pending.exp <= self.app.clock.now_millis() {
            return fail(
                StatusCode::BAD_REQUEST,
                "This sign-in has expired. Please go back to the page you wanted and try again.",
            );
        }
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
        let secret = random_token(32);
        let issuer = self.issuer(req, &pending.realm);
        let redeemed = gateway::redeem_login(
            &self.app,
            &gateway::Redemption {
                realm: &pending.realm,
                client: &pending.client,
                issuer: &issuer,
                code: &code,
                redirect_uri: &pending.redirect_uri,
                verifier: &pending.verifier,
            },
            &cookie_hash(&secret, req.tls, req.host),
        );
        match redeemed {
            Ok(sid) => {
                let mut response = redirect(&pending.return_to);
                let value = format!("{sid}.{secret}");
                add_cookie(&mut response, cookie_name(req.tls), &value, req.tls, None);
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
                return sign_out_confirmation(req, value);
            }
        }
        if let Some((sid, secret)) = cookie.and_then(|v| v.split_once('.')) {
            let now = self.app.clock.now_millis();
            let hash = cookie_hash(secret, req.tls, req.host);
            match gateway::bound_session(&self.app, &access.realm, sid, &hash, now) {
                Ok(Some((realm, session))) => {
                    let ip = req.client_ip.map(|i| i.to_string());
                    if let Err(e) = gateway::end_session(
                        &self.app,
                        &realm,
                        &session,
                        &access.client,
                        ip.as_deref(),
                    ) {
                        tracing::warn!(error = %e, "sign-out could not end the session");
                        return Refusal::Unavailable { html: true }.into_response();
                    }
                    self.forget_cookie(sid, secret);
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "sign-out could not read the session");
                    return Refusal::Unavailable { html: true }.into_response();
                }
            }
        }
        let mut response = match req.return_target() {
            Some(rd) => redirect(&safe_return_path(&rd)),
            None => page(StatusCode::OK, "Signed out", "You are signed out.", true),
        };
        add_cookie(&mut response, cookie_name(req.tls), "", req.tls, Some(0));
        response
    }
}

/// "Sign out?" with a button that POSTs back here with the token.
fn sign_out_confirmation(req: &Incoming, cookie_value: &str) -> Response {
    let mut action = format!("{SIGN_OUT_PATH}?token={}", sign_out_token(cookie_value));
    if let Some(rd) = req.return_target() {
        let rd = safe_return_path(&rd);
        action.push_str("&rd=");
        action.push_str(&url::form_urlencoded::byte_serialize(rd.as_bytes()).collect::<String>());
    }
    page_with(
        StatusCode::OK,
        "Sign out",
        &format!(
            "<p>Do you want to sign out?</p><form method=\"post\" action=\"{}\">\
             <button type=\"submit\">Sign out</button></form>",
            crate::http::html_escape(&action)
        ),
    )
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
