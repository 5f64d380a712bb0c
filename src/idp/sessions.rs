//! SSO and offline sessions: creation, validity (idle and maximum lifetime from the realm
//! settings) and the end of a session. Every place that ends sessions goes through
//! [`end`] (its own transaction, with the events) or [`end_in`] (inside a larger one).

use crate::crypto::random_token;
use crate::idp::App;
use crate::store::{RealmRecord, SessionRecord, StoreError, Write};

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
