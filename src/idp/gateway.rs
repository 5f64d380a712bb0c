//! The identity provider's only face to the proxy. The gateway is a client of its own
//! provider; everything it needs of the IdP goes through here: resolve the provider
//! session behind an app cookie, verify a bearer token, read who a user is (roles, groups),
//! mint an access token for a route's client (with the same `tokens::issue` as the token
//! endpoint), sign the identity assertion, redeem a login's code and bind an app cookie to
//! its session, and end a session with its event.
//!
//! Store failures are [`Unavailable`], never "no session": the proxy answers 503 instead
//! of sending a signed-in user to the login page. Nothing here knows about pingora or
//! about cookies' names and caches (the proxy's business).

pub use crate::idp::oidc::issuer_at;

use serde::Serialize;

use crate::crypto::constant_time_eq;
use crate::crypto::jwt::Algorithm;
use crate::idp::roles::EffectiveRoles;
use crate::idp::tokens::{self, Claims, IssueContext};
use crate::idp::App;
use crate::store::{ClientRecord, RealmRecord, SessionRecord, StoreError, UserRecord};

/// At most this many app cookies are bound to one provider session.
const MAX_COOKIES_PER_SESSION: usize = 32;
/// The provider session's idle clock is advanced at most this often by proxied traffic.
const TOUCH_EVERY_MS: i64 = 30_000;

/// The store (or the realm's keys) could not be read: answer 503, keep nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the identity store is unavailable: {0}")]
pub struct Unavailable(pub String);

impl From<StoreError> for Unavailable {
    fn from(e: StoreError) -> Self {
        Unavailable(e.to_string())
    }
}

impl From<crate::idp::keys::KeyError> for Unavailable {
    fn from(e: crate::idp::keys::KeyError) -> Self {
        Unavailable(e.to_string())
    }
}

/// A signed-in user as the proxy sees it: current roles and groups from the store.
#[derive(Debug)]
pub struct Subject {
    pub realm: RealmRecord,
    pub user: UserRecord,
    pub roles: EffectiveRoles,
    /// Full group paths (`/parent/child`).
    pub groups: Vec<String>,
    /// The provider session, when there is one (a cookie's, or a token's `sid`).
    pub session: Option<SessionRecord>,
}

/// The realm named `name`, when it exists and is enabled.
pub fn enabled_realm(app: &App, name: &str) -> Result<Option<RealmRecord>, Unavailable> {
    Ok(app.store.read()?.realm_by_name(name)?.filter(|r| r.enabled))
}

/// The live (not offline) session `sid` of `realm_name` that holds `cookie_hash` among
/// its bound app cookies.
pub fn bound_session(
    app: &App,
    realm_name: &str,
    sid: &str,
    cookie_hash: &str,
    now_ms: i64,
) -> Result<Option<(RealmRecord, SessionRecord)>, Unavailable> {
    let Some(realm) = enabled_realm(app, realm_name)? else {
        return Ok(None);
    };
    let Some(session) = app.store.read()?.session(&realm.id, sid)? else {
        return Ok(None);
    };
    let bound = session
        .gateway_cookies
        .iter()
        .any(|h| constant_time_eq(h.as_bytes(), cookie_hash.as_bytes()));
    let live = !session.offline && crate::idp::sessions::is_valid(&realm, &session, now_ms);
    Ok((bound && live).then_some((realm, session)))
}

/// Who holds `session` (an enabled user), and the session's idle clock advanced: proxied
/// traffic is activity. The touch, at most every 30 s, is queued for a background thread:
/// a proxy worker never waits for the store's write lock (behind another write's fsync).
pub fn session_subject(
    app: &App,
    realm: RealmRecord,
    session: SessionRecord,
    now_ms: i64,
) -> Result<Option<Subject>, Unavailable> {
    if now_ms - session.last_access > TOUCH_EVERY_MS {
        touch_later(Touch {
            store: app.store.clone(),
            realm_id: realm.id.clone(),
            session_id: session.id.clone(),
            now_ms,
        });
    }
    let user_id = session.user_id.clone();
    subject(app, realm, &user_id, Some(session))
}

/// A session's idle clock to advance.
struct Touch {
    store: crate::store::Store,
    realm_id: String,
    session_id: String,
    now_ms: i64,
}

/// Queue `touch` for the one background thread that writes touches (volatile writes: a
/// crash loses at most the last ones). Best effort: with the queue full, or the store
/// refusing the write (a full disk), the touch is dropped and the session only idles out
/// sooner; the request, a read, goes on either way.
fn touch_later(touch: Touch) {
    static QUEUE: std::sync::OnceLock<Option<std::sync::mpsc::SyncSender<Touch>>> =
        std::sync::OnceLock::new();
    let queue = QUEUE.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Touch>(4096);
        std::thread::Builder::new()
            .name("session-touch".into())
            .spawn(move || {
                for t in rx {
                    let written = t.store.write_volatile(|w| {
                        if let Some(mut s) = w.session(&t.realm_id, &t.session_id)? {
                            if s.last_access < t.now_ms {
                                s.last_access = t.now_ms;
                                w.put_session(&t.realm_id, &s)?;
                            }
                        }
                        Ok::<_, StoreError>(())
                    });
                    if let Err(e) = written {
                        tracing::debug!(error = %e, "could not advance a session's idle clock");
                    }
                }
            })
            .map_err(|e| tracing::warn!(error = %e, "no session-touch thread: touches are dropped"))
            .ok()
            .map(|_| tx)
    });
    if let Some(tx) = queue {
        let _ = tx.try_send(touch);
    }
}

/// How long, from `now_ms`, the realm lets `session` live at most (idle or maximum).
pub fn session_remaining_ms(realm: &RealmRecord, session: &SessionRecord, now_ms: i64) -> i64 {
    (realm.sso_session_idle_timeout.saturating_mul(1000))
        .min(
            session
                .created_at
                .saturating_add(realm.sso_session_max_lifespan.saturating_mul(1000))
                - now_ms,
        )
        .max(0)
}

/// The subject behind an access token of `realm_name`: signature with the realm's keys,
/// issuer of that realm (its host is the one the client used), type, expiry, revocation,
/// a live session, an enabled user.
pub fn bearer_subject(
    app: &App,
    realm_name: &str,
    token: &str,
    now_ms: i64,
) -> Result<Option<(Subject, Claims)>, Unavailable> {
    let Some(realm) = enabled_realm(app, realm_name)? else {
        return Ok(None);
    };
    let Ok(unverified) = crate::crypto::jwt::decode_unverified::<Claims>(token) else {
        return Ok(None);
    };
    let realm_part = format!("/realms/{}", crate::http::path::encode_segment(realm_name));
    if !unverified.iss.ends_with(&realm_part) {
        return Ok(None);
    }
    let read = app.store.read()?;
    let keys = app.keys.realm_keys(&read, &realm.id, now_ms)?;
    let Ok((claims, user)) = crate::idp::oidc::userinfo::verify_access_token(
        &read,
        &realm,
        &keys,
        token,
        &unverified.iss,
        now_ms,
    ) else {
        return Ok(None);
    };
    let session = match &claims.sid {
        Some(sid) => read.session(&realm.id, sid)?,
        None => None,
    };
    drop(read);
    let user_id = user.id.clone();
    Ok(subject(app, realm, &user_id, session)?.map(|s| (s, claims)))
}

/// A user's current roles and groups (`None` when the user is gone or disabled).
fn subject(
    app: &App,
    realm: RealmRecord,
    user_id: &str,
    session: Option<SessionRecord>,
) -> Result<Option<Subject>, Unavailable> {
    let read = app.store.read()?;
    let Some(user) = read.user(&realm.id, user_id)?.filter(|u| u.enabled) else {
        return Ok(None);
    };
    let roles = crate::idp::roles::effective_roles(&read, &realm.id, &user.id)?;
    let groups = crate::idp::roles::group_paths(&read, &realm.id, &user.id)?;
    Ok(Some(Subject {
        realm,
        user,
        roles,
        groups,
        session,
    }))
}

/// The enabled client `client_id` of the subject's realm.
pub fn client(
    app: &App,
    realm: &RealmRecord,
    client_id: &str,
) -> Result<Option<ClientRecord>, Unavailable> {
    Ok(app
        .store
        .read()?
        .client_by_client_id(&realm.id, client_id)?
        .filter(|c| c.enabled))
}

/// An access token for `client` about `subject`, as the token endpoint would issue it
/// (`scope=openid`, no refresh token).
pub fn mint_access_token(
    app: &App,
    issuer: &str,
    subject: &Subject,
    client: &ClientRecord,
    now_ms: i64,
) -> Result<Option<String>, Unavailable> {
    let keys = app
        .keys
        .realm_keys(&app.store.read()?, &subject.realm.id, now_ms)?;
    let read = app.store.read()?;
    let scopes = match crate::idp::client_scopes::resolve(
        &read,
        &subject.realm.id,
        client,
        Some("openid"),
        false,
    ) {
        Ok(s) => s,
        Err(crate::idp::client_scopes::ScopeError::Store(e)) => return Err(e.into()),
        Err(_) => return Ok(None),
    };
    // The token carries the route client's role scope; the route's policy was decided on
    // all of the user's roles.
    let roles = crate::idp::roles::in_client_scope(
        &read,
        &subject.realm.id,
        client,
        &scopes,
        subject.roles.clone(),
    )?;
    drop(read);
    let issued = tokens::issue(
        &keys,
        &IssueContext {
            issuer,
            realm: &subject.realm,
            client,
            user: &subject.user,
            roles: &roles,
            scopes: &scopes,
            session: subject.session.as_ref(),
            nonce: None,
            now_secs: now_ms / 1000,
            refresh: false,
            group_paths: &subject.groups,
            client_address: None,
        },
    )?;
    Ok(Some(issued.access_token))
}

/// `claims` signed with the realm's ES256 key (verifiable with its JWKS).
pub fn sign_assertion<T: Serialize>(
    app: &App,
    realm: &RealmRecord,
    claims: &T,
    now_ms: i64,
) -> Result<Option<String>, Unavailable> {
    let keys = app.keys.realm_keys(&app.store.read()?, &realm.id, now_ms)?;
    Ok(keys
        .signer(Algorithm::ES256)
        .ok()
        .and_then(|k| k.sign(claims).ok()))
}

/// What a gateway login needs redeemed: the code the realm's login sent back, with the
/// values the login was started with.
pub struct Redemption<'a> {
    pub realm: &'a str,
    pub client: &'a str,
    pub issuer: &'a str,
    pub code: &'a str,
    pub redirect_uri: &'a str,
    pub verifier: &'a str,
}

/// Redeem a gateway login's code in-process (every check of the token endpoint but client
/// authentication: the gateway is the client) and bind `cookie_hash` to the session it
/// created. Returns the session id; `Err` says why not (for the log).
pub fn redeem_login(
    app: &App,
    login: &Redemption<'_>,
    cookie_hash: &str,
) -> Result<String, String> {
    let realm = enabled_realm(app, login.realm)
        .map_err(|e| e.to_string())?
        .ok_or("realm not found")?;
    let client = client(app, &realm, login.client)
        .map_err(|e| e.to_string())?
        .ok_or("client not found")?;
    let tokens = crate::idp::oidc::token::redeem_code_in_process(
        app,
        &realm,
        &client,
        login.issuer,
        login.code,
        login.redirect_uri,
        login.verifier,
    )
    .map_err(|e| e.to_string())?;
    let sid = tokens.session_state.ok_or("no session")?;
    // Volatile: a crash costs this browser a new sign-in, not an fsync per login on the
    // proxy's workers.
    app.store
        .write_volatile(|w| {
            let Some(mut session) = w.session(&realm.id, &sid)? else {
                return Ok(Err("session ended"));
            };
            session.gateway_cookies.push(cookie_hash.to_string());
            let extra = session
                .gateway_cookies
                .len()
                .saturating_sub(MAX_COOKIES_PER_SESSION);
            session.gateway_cookies.drain(..extra);
            w.put_session(&realm.id, &session)?;
            Ok::<_, StoreError>(Ok(()))
        })
        .map_err(|e| e.to_string())??;
    Ok(sid)
}

/// End a provider session (every app signed in through it) and record `LOGOUT`.
pub fn end_session(
    app: &App,
    realm: &RealmRecord,
    session: &SessionRecord,
    client_id: &str,
    ip: Option<&str>,
) -> Result<(), Unavailable> {
    let ending = crate::idp::sessions::Ending::Logout {
        client_id: Some(client_id),
        ip,
    };
    crate::idp::sessions::end(app, realm, std::slice::from_ref(&session.id), ending)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::idp::testing::Fixture;

    /// Proxied traffic advances the session's idle clock, written off the caller's thread.
    #[tokio::test]
    async fn a_session_in_use_is_touched_by_the_background_writer() {
        let f = Fixture::new().await;
        let read = f.app.store.read().unwrap();
        let realm = read.realm_by_name("master").unwrap().unwrap();
        let user = read.user_by_username(&realm.id, "admin").unwrap().unwrap();
        drop(read);
        let session = SessionRecord {
            id: "touched".into(),
            user_id: user.id.clone(),
            created_at: f.now(),
            last_access: f.now(),
            auth_time: f.now(),
            ..Default::default()
        };
        f.app
            .store
            .write(|w| w.put_session(&realm.id, &session))
            .unwrap();
        let later = f.now() + TOUCH_EVERY_MS + 1_000;
        let subject = session_subject(&f.app, realm.clone(), session, later).unwrap();
        assert_eq!(subject.unwrap().user.username, "admin");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let stored = f
                .app
                .store
                .read()
                .unwrap()
                .session(&realm.id, "touched")
                .unwrap();
            if stored.unwrap().last_access == later {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the touch never landed"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}
