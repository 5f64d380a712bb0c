//! SSO and offline sessions: creation, validity (idle and maximum lifetime from the realm
//! settings) and the end of a session. Every place that ends sessions goes through
//! [`end`] (its own transaction, with the events) or [`end_in`] (inside a larger one).

use crate::crypto::random_token;
use crate::idp::App;
use crate::store::{RealmRecord, SessionRecord, StoreError, Write};

/// Why a refresh token is refused (Keycloak's `error_description`s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshRefused {
    /// The client's session is gone from the SSO session (revoked, or ended on reuse).
    NoClientSession,
    /// With `revokeRefreshToken`: an older token than the last one issued or presented.
    Stale,
    /// With `revokeRefreshToken`: the token was used more than `refreshTokenMaxReuse` times.
    ReuseExceeded,
}

impl RefreshRefused {
    pub fn message(self) -> &'static str {
        match self {
            RefreshRefused::NoClientSession => "Session doesn't have required client",
            RefreshRefused::Stale => "Stale token",
            RefreshRefused::ReuseExceeded => "Maximum allowed refresh token reuse exceeded",
        }
    }
}

/// Whether `client`'s refresh token `jti` may be used in `session`, without using it
/// (introspection): what [`use_refresh_token`] would accept.
pub fn refresh_token_usable(
    realm: &RealmRecord,
    session: &SessionRecord,
    client: &str,
    jti: &str,
) -> bool {
    let mut copy = session.clone();
    use_refresh_token(realm, &mut copy, client, jti).is_ok()
}

/// Use `client`'s refresh token `jti` in `session`, as Keycloak does. Without the realm's
/// `revokeRefreshToken` (the default) any refresh token of a live client session may be used
/// again until it expires. With it, only the token last issued or the one last presented,
/// the latter at most `refreshTokenMaxReuse` more times; anything else is reuse, and the
/// client's session ends (the user's SSO session and its other clients stay). The caller
/// saves `session` whatever the answer, in the transaction that read it.
pub fn use_refresh_token(
    realm: &RealmRecord,
    session: &mut SessionRecord,
    client: &str,
    jti: &str,
) -> Result<(), RefreshRefused> {
    if !session.clients.contains_key(client) {
        return Err(RefreshRefused::NoClientSession);
    }
    if !realm.revoke_refresh_token {
        return Ok(());
    }
    let latest = session.refresh_tokens.get(client).map(String::as_str);
    let (current, uses) = session
        .refresh_uses
        .get(client)
        .cloned()
        .unwrap_or_default();
    let uses = if current == jti {
        uses
    } else if latest == Some(jti) {
        0
    } else {
        end_client(session, client);
        return Err(RefreshRefused::Stale);
    };
    if uses > realm.refresh_token_max_reuse {
        end_client(session, client);
        return Err(RefreshRefused::ReuseExceeded);
    }
    session
        .refresh_uses
        .insert(client.to_string(), (jti.to_string(), uses + 1));
    Ok(())
}

/// Record in `session` that `client` was given tokens at `now_ms` (its client session), and
/// the `jti` of the refresh token it got, if any (the newest one, for `use_refresh_token`).
pub fn record_issued(
    session: &mut SessionRecord,
    client: &str,
    now_ms: i64,
    tokens: &crate::idp::tokens::IssuedTokens,
) {
    session.last_access = now_ms;
    session.clients.insert(client.to_string(), now_ms);
    session
        .client_scopes
        .insert(client.to_string(), tokens.scope_param.clone());
    if let Some(jti) = &tokens.refresh_jti {
        session
            .refresh_tokens
            .insert(client.to_string(), jti.clone());
    }
}

/// Remove `client`'s session from the SSO session: its refresh tokens stop working, its
/// access tokens stop introspecting as active; the user stays signed in elsewhere.
pub fn end_client(session: &mut SessionRecord, client: &str) {
    session.clients.remove(client);
    session.client_scopes.remove(client);
    session.refresh_tokens.remove(client);
    session.refresh_uses.remove(client);
}

/// Why sessions end, which decides the user event recorded after the commit.
#[derive(Debug, Clone, Copy)]
pub enum Ending<'a> {
    /// The user or an app asked (a browser logout, a refresh-token logout, the account
    /// page, the gateway's sign-out): Keycloak's `LOGOUT` event.
    Logout {
        client_id: Option<&'a str>,
        ip: Option<&'a str>,
    },
    /// An administrator's action (an admin event says so) or a revocation the server
    /// decided (token reuse, which logs a warning): no user event.
    Quiet,
}

/// End session `id` inside the caller's write transaction; the ended session, if it
/// existed. Nothing is recorded: callers in a larger transaction decide what to log.
pub fn end_in(
    w: &mut Write,
    realm_id: &str,
    id: &str,
) -> Result<Option<SessionRecord>, StoreError> {
    let session = w.session(realm_id, id)?;
    if session.is_some() {
        w.delete_session(realm_id, id)?;
    }
    Ok(session)
}

/// End sessions `ids` of `realm` in one transaction and record what `ending` says for
/// each that existed; how many ended.
pub fn end(
    app: &App,
    realm: &RealmRecord,
    ids: &[String],
    ending: Ending<'_>,
) -> Result<usize, StoreError> {
    let ended = app.store.write(|w| {
        let mut ended = Vec::new();
        for id in ids {
            if let Some(s) = end_in(w, &realm.id, id)? {
                ended.push(s);
            }
        }
        Ok::<_, StoreError>(ended)
    })?;
    // Sessions opened through an identity provider with a back-channel logout end there too.
    crate::idp::broker::end_provider_sessions(app, realm, &ended);
    if let Ending::Logout { client_id, ip } = ending {
        for s in &ended {
            crate::idp::events::record(
                app,
                realm,
                crate::idp::events::Event {
                    kind: "LOGOUT",
                    client_id,
                    user_id: Some(&s.user_id),
                    session_id: Some(&s.id),
                    ip_address: ip,
                    ..Default::default()
                },
            );
        }
    }
    Ok(ended.len())
}

/// A new session for a user who just authenticated.
pub fn new_session(
    user_id: &str,
    now_ms: i64,
    ip: Option<String>,
    remember_me: bool,
    offline: bool,
) -> SessionRecord {
    SessionRecord {
        id: random_token(24),
        user_id: user_id.to_string(),
        created_at: now_ms,
        last_access: now_ms,
        auth_time: now_ms,
        remember_me,
        ip_address: ip,
        offline,
        ..Default::default()
    }
}

/// Whether a session is still usable at `now_ms`.
pub fn is_valid(realm: &RealmRecord, session: &SessionRecord, now_ms: i64) -> bool {
    if session.offline {
        return now_ms - session.last_access <= realm.offline_session_idle_timeout * 1000;
    }
    now_ms - session.last_access <= realm.sso_session_idle_timeout * 1000
        && now_ms - session.created_at <= realm.sso_session_max_lifespan * 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_and_max_lifetimes() {
        let realm = RealmRecord {
            sso_session_idle_timeout: 10,
            sso_session_max_lifespan: 100,
            ..Default::default()
        };
        let mut s = new_session("u", 0, None, false, false);
        assert!(is_valid(&realm, &s, 10_000));
        assert!(!is_valid(&realm, &s, 10_001));
        s.last_access = 95_000;
        assert!(is_valid(&realm, &s, 100_000));
        assert!(!is_valid(&realm, &s, 100_001));
    }
}
