//! Signing in to the console: an OpenID Connect code flow with PKCE through the realm's
//! built-in `security-admin-console` client, so SSO, second factors, brute-force
//! protection and logout work as for any application. The console keeps the tokens on the
//! server; the browser holds only a random cookie naming them (`HttpOnly`, `SameSite=Lax`,
//! `Secure` over TLS, path `/admin/{realm}/console/`) and every form carries a CSRF token
//! bound to that session.
//!
//! Sessions live in the store (one per SSO session; expiring after 10 hours unused, though
//! the refresh token decides how long one stays valid), so every node sharing the store
//! serves them and a restart signs nobody out. A sign-in in progress is not kept at all:
//! its state, nonce and PKCE verifier travel in a cookie signed with a key every node
//! shares (made once, in the store), so no request can fill the store.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http::{header, HeaderValue, StatusCode};
use serde_json::Value;

use crate::crypto::{constant_time_eq, random_token, sha256_hex};
use crate::http::path::encode_segment;
use crate::http::{redirect, Request, RequestInfo, Response};
use crate::idp::App;
use crate::store::ConsoleSessionRecord;

/// The built-in client the console signs in through.
pub const CONSOLE_CLIENT: &str = "security-admin-console";
/// The cookie naming a console session.
pub(crate) const SESSION_COOKIE: &str = "PORTCULLIS_CONSOLE";
/// The cookie binding a sign-in in progress to the browser that started it.
pub(crate) const LOGIN_COOKIE: &str = "PORTCULLIS_CONSOLE_LOGIN";
/// The longest return path kept across a sign-in.
const MAX_RETURN_PATH: usize = 1024;

/// Refresh the access token when it has less than this left.
const REFRESH_MARGIN_MS: i64 = 15_000;
/// A console session unused this long is over (Keycloak's default SSO maximum).
pub(crate) const IDLE_MS: i64 = 10 * 60 * 60 * 1000;
/// How often a session's last use is written back.
const TOUCH_MS: i64 = 60 * 1000;
/// How long a sign-in may take at the login page.
const SIGN_IN_LIFETIME_MS: i64 = 10 * 60 * 1000;

/// A console session as one request sees it: read from the store when the request
/// began; changes go back through [`Sessions::update`].
pub(crate) struct Entry {
    /// The SHA-256 of the cookie: the session's key in the store.
    hash: String,
    state: Mutex<ConsoleSessionRecord>,
}

impl Entry {
    pub(crate) fn lock(
        &self,
    ) -> std::sync::LockResult<std::sync::MutexGuard<'_, ConsoleSessionRecord>> {
        self.state.lock()
    }
}

/// A sign-in in progress, carried by the browser in a signed cookie.
#[derive(serde::Serialize, serde::Deserialize)]
struct Pending {
    realm: String,
    state: String,
    verifier: String,
    nonce: String,
    /// The console page to return to (a path under the console).
    return_to: String,
    /// Until when (ms).
    exp: i64,
}

/// The console's sessions (in the store) and what this node keeps beside them.
pub struct Sessions {
    /// One token refresh at a time per session on this node (a refresh token used twice
    /// at once would count as reuse and end the session); the others wait and then read
    /// the refreshed tokens from the store.
    refreshing: moka::sync::Cache<String, Arc<tokio::sync::Mutex<()>>>,
    /// Signs sign-ins in progress; the same on every node (from the store).
    key: OnceLock<[u8; 32]>,
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions {
            refreshing: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_idle(Duration::from_secs(60))
                .build(),
            key: OnceLock::new(),
        }
    }
}

/// The console's base path for a realm: `/admin/{realm}/console`.
pub(crate) fn console_path(realm: &str) -> String {
    format!("/admin/{}/console", encode_segment(realm))
}

fn cookie_header(
    name: &str,
    value: &str,
    realm: &str,
    info: &RequestInfo,
    max_age: Option<i64>,
) -> String {
    let mut c = format!(
        "{name}={value}; Path={}/; HttpOnly; SameSite=Lax",
        console_path(realm)
    );
    if info.tls {
        c.push_str("; Secure");
    }
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    c
}

pub(crate) fn add_cookie(response: &mut Response, value: String) {
    if let Ok(v) = HeaderValue::from_str(&value) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// The redirect URI registered for the console client.
fn redirect_uri(base_url: &str, realm: &str) -> String {
    format!("{base_url}{}/", console_path(realm))
}

fn pkce_challenge(verifier: &str) -> String {
    use sha2::Digest;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()))
}
impl Sessions {
    /// The sign-in cookie key every node shares.
    fn key(&self, app: &App) -> Option<&[u8; 32]> {
        if let Some(key) = self.key.get() {
            return Some(key);
        }
        match app.store.shared_secret("console-sign-in") {
            Ok(key) => Some(self.key.get_or_init(|| key)),
            Err(e) => {
                tracing::warn!(error = %e, "the console's sign-in key cannot be read");
                None
            }
        }
    }

    /// The session the request's cookie names, if it belongs to `realm`'s console and has
    /// been used in the last 10 hours.
    pub(crate) fn current(&self, app: &App, request: &Request, realm: &str) -> Option<Arc<Entry>> {
        let value = crate::http::unique_cookie(request.headers(), SESSION_COOKIE)?;
        let hash = sha256_hex(value);
        let record = app.store.read().ok()?.console_session(&hash).ok()??;
        let now = app.clock.now_millis();
        if record.realm != realm || record.last_seen_ms + IDLE_MS <= now {
            return None;
        }
        let entry = Arc::new(Entry {
            hash,
            state: Mutex::new(record.clone()),
        });
        if now - record.last_seen_ms >= TOUCH_MS {
            self.update(app, &entry, |s| s.last_seen_ms = now);
        }
        Some(entry)
    }

    /// Change a session, in this request's view and in the store (applied to what the
    /// store holds now, so another request's change in between is kept).
    pub(crate) fn update(
        &self,
        app: &App,
        entry: &Entry,
        change: impl Fn(&mut ConsoleSessionRecord),
    ) {
        if let Ok(mut s) = entry.state.lock() {
            change(&mut s);
        }
        let stored = app.store.write(|w| {
            if let Some(mut record) = w.console_session(&entry.hash)? {
                change(&mut record);
                w.put_console_session(&entry.hash, &record)?;
            }
            Ok::<_, crate::store::StoreError>(())
        });
        if let Err(e) = stored {
            tracing::warn!(error = %e, "a console session could not be updated");
        }
    }

    /// Send the browser to the realm's login page, remembering where it wanted to go.
    pub(crate) fn start_sign_in(
        &self,
        app: &App,
        request: &Request,
        info: &RequestInfo,
        realm: &str,
        return_to: &str,
    ) -> Response {
        let base = crate::idp::oidc::base_url(app, request, info);
        let pending = Pending {
            realm: realm.to_string(),
            state: random_token(16),
            verifier: random_token(48),
            nonce: random_token(16),
            // Longer paths would push the cookie past what browsers keep (a sign-in loop).
            return_to: if return_to.len() <= MAX_RETURN_PATH {
                return_to.to_string()
            } else {
                format!("{}/", console_path(realm))
            },
            exp: app.clock.now_millis() + SIGN_IN_LIFETIME_MS,
        };
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", CONSOLE_CLIENT)
            .append_pair("redirect_uri", &redirect_uri(&base, realm))
            .append_pair("response_type", "code")
            .append_pair("response_mode", "query")
            .append_pair("scope", "openid")
            .append_pair("state", &pending.state)
            .append_pair("nonce", &pending.nonce)
            .append_pair("code_challenge", &pkce_challenge(&pending.verifier))
            .append_pair("code_challenge_method", "S256")
            .finish();
        let Some(key) = self.key(app) else {
            return crate::http::IntoResponse::into_response(crate::http::ApiError::Unavailable);
        };
        let cookie = crate::crypto::jwt::sign_hs256(&pending, key).unwrap_or_default();
        let mut response = redirect(&format!(
            "{base}/realms/{}/protocol/openid-connect/auth?{query}",
            encode_segment(realm)
        ));
        add_cookie(
            &mut response,
            cookie_header(LOGIN_COOKIE, &cookie, realm, info, None),
        );
        response
    }

    /// The login page sent the browser back with `code` and `state`: exchange the code
    /// (with the PKCE verifier, in process) and start a console session. A callback this
    /// browser did not start (another tab's, an expired one, a forged link) starts a new
    /// sign-in instead: the code of someone else's sign-in is never used.
    pub(crate) async fn finish_sign_in(
        &self,
        app: &App,
        request: &Request,
        info: &RequestInfo,
        realm: &str,
        code: &str,
        state: &str,
    ) -> Result<Response, String> {
        let now = app.clock.now_millis();
        let key = self
            .key(app)
            .ok_or("The sign-in cannot be checked now; try again.")?;
        let pending: Option<Pending> = crate::http::unique_cookie(request.headers(), LOGIN_COOKIE)
            .and_then(|c| crate::crypto::jwt::verify_hs256(c, key).ok());
        let pending = match pending {
            Some(p)
                if p.realm == realm
                    && p.exp > now
                    && constant_time_eq(p.state.as_bytes(), state.as_bytes()) =>
            {
                p
            }
            _ => {
                let root = format!("{}/", console_path(realm));
                return Ok(self.start_sign_in(app, request, info, realm, &root));
            }
        };
        let base = crate::idp::oidc::base_url(app, request, info);
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "authorization_code")
            .append_pair("client_id", CONSOLE_CLIENT)
            .append_pair("code", code)
            .append_pair("redirect_uri", &redirect_uri(&base, realm))
            .append_pair("code_verifier", &pending.verifier)
            .finish();
        let tokens = token_request(app, request, info, realm, form).await?;
        let id_token = tokens["id_token"].as_str().unwrap_or("");
        let claims: Value = crate::crypto::jwt::decode_unverified(id_token)
            .map_err(|_| "The sign-in returned no ID token.".to_string())?;
        if claims["nonce"].as_str() != Some(pending.nonce.as_str()) {
            return Err("The sign-in does not match this browser.".into());
        }
        let session = ConsoleSessionRecord {
            realm: realm.to_string(),
            username: claims["preferred_username"]
                .as_str()
                .unwrap_or("")
                .to_string(),
            // One console session per SSO session: signing in again replaces the last one.
            sid: claims["sid"].as_str().map(str::to_string),
            access_token: tokens["access_token"].as_str().unwrap_or("").to_string(),
            refresh_token: tokens["refresh_token"].as_str().unwrap_or("").to_string(),
            access_expires_ms: now + tokens["expires_in"].as_i64().unwrap_or(60) * 1000,
            csrf: random_token(24),
            flash: None,
            last_seen_ms: now,
        };
        let cookie = random_token(32);
        app.store
            .write(|w| w.put_console_session(&sha256_hex(&cookie), &session))
            .map_err(|_| "The sign-in cannot be kept now; try again.".to_string())?;
        let target = if pending.return_to.starts_with(&console_path(realm)) {
            pending.return_to
        } else {
            format!("{}/", console_path(realm))
        };
        let mut response = redirect(&target);
        add_cookie(
            &mut response,
            cookie_header(SESSION_COOKIE, &cookie, realm, info, None),
        );
        add_cookie(
            &mut response,
            cookie_header(LOGIN_COOKIE, "", realm, info, Some(0)),
        );
        Ok(response)
    }

    /// A valid access token for the session, refreshed in process when it is about to
    /// expire (one refresh at a time); `None` when the SSO session is over.
    pub(crate) async fn access_token(
        &self,
        app: &App,
        request: &Request,
        info: &RequestInfo,
        session: &Arc<Entry>,
    ) -> Option<String> {
        let fresh = |s: &ConsoleSessionRecord| {
            (s.access_expires_ms - app.clock.now_millis() > REFRESH_MARGIN_MS)
                .then(|| s.access_token.clone())
        };
        if let Some(token) = fresh(&*session.lock().ok()?) {
            return Some(token);
        }
        // A request that waited here finds the token the other one got (in the store:
        // it may have been another node's request).
        let lock = self
            .refreshing
            .get_with(session.hash.clone(), Default::default);
        let _refreshing = lock.lock().await;
        let stored = app
            .store
            .read()
            .ok()?
            .console_session(&session.hash)
            .ok()??;
        if let Some(token) = fresh(&stored) {
            *session.lock().ok()? = stored;
            return Some(token);
        }
        let (realm, refresh) = (stored.realm.clone(), stored.refresh_token.clone());
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "refresh_token")
            .append_pair("client_id", CONSOLE_CLIENT)
            .append_pair("refresh_token", &refresh)
            .finish();
        let tokens = token_request(app, request, info, &realm, form).await.ok()?;
        let now = app.clock.now_millis();
        let access = tokens["access_token"].as_str()?.to_string();
        let new_refresh = tokens["refresh_token"].as_str().map(str::to_string);
        let expires = now + tokens["expires_in"].as_i64().unwrap_or(60) * 1000;
        self.update(app, session, |s| {
            s.access_token = access.clone();
            if let Some(r) = &new_refresh {
                s.refresh_token = r.clone();
            }
            s.access_expires_ms = expires;
        });
        Some(access)
    }

    /// Sign out: forget the console session and end the SSO session behind it (the
    /// back-channel logout with the refresh token, as server-side adapters do). Without a
    /// console session (expired, or the server restarted) the SSO session may still be
    /// alive: the realm's own logout ends it, asking the browser to confirm.
    pub(crate) async fn sign_out(
        &self,
        app: &App,
        request: &Request,
        info: &RequestInfo,
        realm: &str,
    ) -> Response {
        let refresh = crate::http::unique_cookie(request.headers(), SESSION_COOKIE)
            .and_then(|value| {
                let hash = sha256_hex(value);
                app.store
                    .write(|w| {
                        let session = w.console_session(&hash)?;
                        w.delete_console_session(&hash)?;
                        Ok::<_, crate::store::StoreError>(session)
                    })
                    .ok()
                    .flatten()
            })
            .filter(|s| s.realm == realm)
            .map(|s| s.refresh_token);
        let target = match refresh {
            Some(refresh) => {
                let form = form_urlencoded::Serializer::new(String::new())
                    .append_pair("client_id", CONSOLE_CLIENT)
                    .append_pair("refresh_token", &refresh)
                    .finish();
                let logout = internal_post(request, realm, "logout", form);
                let _ = crate::idp::login::logout(app, &logout, info, realm).await;
                format!("{}/", console_path(realm))
            }
            None => {
                let base = crate::idp::oidc::base_url(app, request, info);
                let query = form_urlencoded::Serializer::new(String::new())
                    .append_pair("client_id", CONSOLE_CLIENT)
                    .append_pair("post_logout_redirect_uri", &redirect_uri(&base, realm))
                    .finish();
                format!(
                    "{base}/realms/{}/protocol/openid-connect/logout?{query}",
                    encode_segment(realm)
                )
            }
        };
        let mut response = redirect(&target);
        add_cookie(
            &mut response,
            cookie_header(SESSION_COOKIE, "", realm, info, Some(0)),
        );
        response
    }

    /// Forget the session without ending the SSO session (the token was refused).
    pub(crate) fn forget(&self, app: &App, request: &Request) {
        if let Some(value) = crate::http::unique_cookie(request.headers(), SESSION_COOKIE) {
            let hash = sha256_hex(value);
            if let Err(e) = app.store.write(|w| w.delete_console_session(&hash)) {
                tracing::warn!(error = %e, "a console session could not be forgotten");
            }
        }
    }
}

/// A form POST to one of the realm's OpenID Connect endpoints, made in process.
fn internal_post(request: &Request, realm: &str, endpoint: &str, form: String) -> Request {
    let mut builder = http::Request::builder()
        .method(http::Method::POST)
        .uri(format!(
            "/realms/{}/protocol/openid-connect/{endpoint}",
            encode_segment(realm)
        ))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(host) = request.headers().get(header::HOST) {
        builder = builder.header(header::HOST, host.clone());
    }
    builder
        .body(Bytes::from(form))
        .unwrap_or_else(|_| http::Request::new(Bytes::new()))
}

async fn token_request(
    app: &App,
    request: &Request,
    info: &RequestInfo,
    realm: &str,
    form: String,
) -> Result<Value, String> {
    let request = internal_post(request, realm, "token", form);
    let response = match crate::idp::oidc::token::token(app, &request, info, realm).await {
        Ok(r) => r,
        Err(e) => return Err(e.to_string()),
    };
    let body: Value = serde_json::from_slice(response.body()).unwrap_or(Value::Null);
    if response.status() != StatusCode::OK {
        let message = body["error_description"]
            .as_str()
            .or(body["error"].as_str())
            .unwrap_or("The sign-in failed.");
        return Err(message.to_string());
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_challenge_is_rfc7636_s256() {
        // RFC 7636, appendix B.
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn cookies_are_scoped_to_the_realms_console() {
        let info = RequestInfo {
            peer: None,
            tls: true,
        };
        let c = cookie_header(SESSION_COOKIE, "v", "a b", &info, None);
        assert_eq!(
            c,
            "PORTCULLIS_CONSOLE=v; Path=/admin/a%20b/console/; HttpOnly; SameSite=Lax; Secure"
        );
    }
}
