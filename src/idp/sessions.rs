//! SSO and offline sessions: creation, validity (idle and maximum lifetime from the realm
//! settings) and the end of a session.

use crate::crypto::random_token;
use crate::store::{RealmRecord, SessionRecord};

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
