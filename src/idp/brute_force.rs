//! Brute-force protection with Keycloak's realm settings (`bruteForceProtected`,
//! `failureFactor`, `waitIncrementSeconds`, `maxFailureWaitSeconds`,
//! `minimumQuickLoginWaitSeconds`, `quickLoginCheckMilliSeconds`, `maxDeltaTimeSeconds`,
//! `permanentLockout`). Failures are counted per user and per client IP; a locked user (or
//! address) is told exactly what a wrong password is told. The address gets
//! [`IP_FACTOR`] times the user's allowance (many people may share one address) and is
//! only ever slowed down, never locked for good. Time comes from the caller, so tests
//! move it.

use crate::store::{LoginFailureRecord, Read, RealmRecord, StoreError, Write};

/// A client address may fail this many times the realm's `failureFactor` before it waits.
pub const IP_FACTOR: u32 = 5;

/// The failure record key of a client address (beside user ids in the same table).
fn ip_key(ip: &str) -> String {
    format!("ip:{ip}")
}

/// Whether `user`, or logins from `ip`, may not proceed at `now_ms`.
pub fn is_locked(
    read: &Read,
    realm: &RealmRecord,
    user: &str,
    ip: Option<&str>,
    now_ms: i64,
) -> Result<bool, StoreError> {
    locked_by(realm, user, ip, now_ms, |key| {
        read.login_failure(&realm.id, key)
    })
}

fn locked_by(
    realm: &RealmRecord,
    user: &str,
    ip: Option<&str>,
    now_ms: i64,
    lookup: impl Fn(&str) -> Result<Option<LoginFailureRecord>, StoreError>,
) -> Result<bool, StoreError> {
    if !realm.brute_force_protected {
        return Ok(false);
    }
    let locked = |key: &str| -> Result<bool, StoreError> {
        Ok(lookup(key)?.is_some_and(|f| f.failed_login_not_before > now_ms))
    };
    Ok((!user.is_empty() && locked(user)?)
        || ip
            .map(|ip| locked(&ip_key(ip)))
            .transpose()?
            .unwrap_or(false))
}

/// Count a failure of a client address: slowed down after `IP_FACTOR` × `failureFactor`
/// failures (and every as many after), never disabled.
pub fn record_ip_failure(
    w: &mut Write,
    realm: &RealmRecord,
    ip: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    count_ip_failure(w, realm, ip, now_ms).map(|_| ())
}

/// Returns the lock time this failure set, if it set one.
fn count_ip_failure(
    w: &mut Write,
    realm: &RealmRecord,
    ip: &str,
    now_ms: i64,
) -> Result<Option<i64>, StoreError> {
    if !realm.brute_force_protected {
        return Ok(None);
    }
    let key = ip_key(ip);
    let mut f = w.login_failure(&realm.id, &key)?.unwrap_or_default();
    if f.last_failure > 0 && now_ms - f.last_failure > realm.max_delta_time_seconds * 1000 {
        f = LoginFailureRecord::default();
    }
    f.num_failures += 1;
    f.last_failure = now_ms;
    f.last_ip_failure = Some(ip.to_string());
    let factor = (realm.failure_factor.max(1) as u32).saturating_mul(IP_FACTOR);
    let mut set = None;
    if f.num_failures.is_multiple_of(factor) {
        let increment = realm.wait_increment_seconds * i64::from(f.num_failures / factor);
        let wait = increment.min(realm.max_failure_wait_seconds).max(1);
        f.failed_login_not_before = now_ms + wait * 1000;
        set = Some(f.failed_login_not_before);
    }
    w.put_login_failure(&realm.id, &key, &f)?;
    Ok(set)
}

/// Count a failed login; lock the user for a while (or for good) when the realm says so.
pub fn record_failure(
    w: &mut Write,
    realm: &RealmRecord,
    user: &str,
    ip: Option<&str>,
    now_ms: i64,
) -> Result<(), StoreError> {
    if !realm.brute_force_protected {
        return Ok(());
    }
    if let Some(ip) = ip {
        record_ip_failure(w, realm, ip, now_ms)?;
    }
    count_user_failure(w, realm, user, ip, now_ms)?;
    disable_if_permanently_locked(w, realm, user)
}

/// Count a user's failure (no disabling); returns the lock time it set, if any.
fn count_user_failure(
    w: &mut Write,
    realm: &RealmRecord,
    user: &str,
    ip: Option<&str>,
    now_ms: i64,
) -> Result<Option<i64>, StoreError> {
    let mut f = w.login_failure(&realm.id, user)?.unwrap_or_default();
    if f.last_failure > 0 && now_ms - f.last_failure > realm.max_delta_time_seconds * 1000 {
        f = LoginFailureRecord::default();
    }
    let since_last = now_ms - f.last_failure;
    let first = f.num_failures == 0;
    f.num_failures += 1;
    f.last_failure = now_ms;
    f.last_ip_failure = ip.map(String::from);
    let factor = realm.failure_factor.max(1) as u32;
    let mut set = None;
    if realm.permanent_lockout {
        if f.num_failures >= factor {
            // Locked as well as (once the attempt has failed) disabled: a locked user is
            // answered like a wrong password, so further guesses cannot learn from
            // "account disabled" that one was right. Enabling the user (or clearing attack
            // detection) lifts it.
            f.failed_login_not_before = i64::MAX;
            set = Some(i64::MAX);
        }
    } else {
        let mut wait = 0;
        if !first && since_last < realm.quick_login_check_milli_seconds {
            wait = realm.minimum_quick_login_wait_seconds;
        }
        if f.num_failures.is_multiple_of(factor) {
            let increment = realm.wait_increment_seconds * i64::from(f.num_failures / factor);
            wait = wait.max(increment.min(realm.max_failure_wait_seconds));
        }
        if wait > 0 {
            f.failed_login_not_before = now_ms + wait * 1000;
            set = Some(f.failed_login_not_before);
        }
    }
    w.put_login_failure(&realm.id, user, &f)?;
    Ok(set)
}

fn disable_if_permanently_locked(
    w: &mut Write,
    realm: &RealmRecord,
    user: &str,
) -> Result<(), StoreError> {
    if !realm.permanent_lockout {
        return Ok(());
    }
    let reached = w
        .login_failure(&realm.id, user)?
        .is_some_and(|f| f.num_failures >= realm.failure_factor.max(1) as u32);
    if reached {
        if let Some(mut u) = w.user(&realm.id, user)? {
            if u.enabled {
                u.enabled = false;
                w.put_user(&realm.id, &u, realm.duplicate_emails_allowed)?;
            }
        }
    }
    Ok(())
}

/// A success clears the count.
pub fn record_success(w: &mut Write, realm: &RealmRecord, user: &str) -> Result<(), StoreError> {
    if realm.brute_force_protected && w.login_failure(&realm.id, user)?.is_some() {
        w.clear_login_failures(&realm.id, Some(user))?;
    }
    Ok(())
}

/// A login attempt as brute-force protection sees it. It is counted as a failure in the
/// same transaction that checks the lock, *before* the secret is checked, so that
/// attempts sent at once cannot all be checked before any failure is recorded (the
/// CVE-2024-4629 race); [`Attempt::conclude`] then takes the count back if it succeeded.
#[derive(Debug)]
pub struct Attempt {
    /// The user or the address was locked: refuse whatever the secret.
    pub locked: bool,
    user: Option<String>,
    ip: Option<String>,
    /// Lock times this attempt set (user, address), to take back on success.
    set_user: Option<i64>,
    set_ip: Option<i64>,
    counted: bool,
}

/// How a counted attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The secret was wrong (or the attempt was refused).
    Failed,
    /// The secret was right and the login is complete: the user's count is cleared.
    Succeeded,
    /// The password was right but a second factor is still due: the failures counted so
    /// far stay, only this attempt's is taken back.
    Pending,
}

/// Check the lock and count the attempt, in one step (inside the caller's transaction).
/// `user` is `None` for an unknown login name: only the address counts then.
pub fn begin(
    w: &mut Write,
    realm: &RealmRecord,
    user: Option<&str>,
    ip: Option<&str>,
    now_ms: i64,
) -> Result<Attempt, StoreError> {
    let mut attempt = Attempt {
        locked: false,
        user: user.map(String::from),
        ip: ip.map(String::from),
        set_user: None,
        set_ip: None,
        counted: false,
    };
    if !realm.brute_force_protected {
        return Ok(attempt);
    }
    attempt.locked = locked_by(realm, user.unwrap_or(""), ip, now_ms, |key| {
        w.login_failure(&realm.id, key)
    })?;
    if attempt.locked {
        return Ok(attempt);
    }
    if let Some(ip) = ip {
        attempt.set_ip = count_ip_failure(w, realm, ip, now_ms)?;
    }
    if let Some(user) = user {
        attempt.set_user = count_user_failure(w, realm, user, ip, now_ms)?;
    }
    attempt.counted = true;
    Ok(attempt)
}

impl Attempt {
    /// Settle the attempt once the secret was checked (inside a transaction).
    pub fn conclude(
        &self,
        w: &mut Write,
        realm: &RealmRecord,
        outcome: Outcome,
    ) -> Result<(), StoreError> {
        if !self.counted {
            return Ok(());
        }
        match outcome {
            Outcome::Failed => match &self.user {
                Some(user) => disable_if_permanently_locked(w, realm, user),
                None => Ok(()),
            },
            Outcome::Succeeded | Outcome::Pending => {
                if let Some(ip) = &self.ip {
                    take_back(w, realm, &ip_key(ip), self.set_ip)?;
                }
                match (&self.user, outcome) {
                    (Some(user), Outcome::Succeeded) => record_success(w, realm, user),
                    (Some(user), _) => take_back(w, realm, user, self.set_user),
                    (None, _) => Ok(()),
                }
            }
        }
    }
}

/// Undo one counted failure of `key` (and the lock it set, if it is still the one).
fn take_back(
    w: &mut Write,
    realm: &RealmRecord,
    key: &str,
    set: Option<i64>,
) -> Result<(), StoreError> {
    let Some(mut f) = w.login_failure(&realm.id, key)? else {
        return Ok(());
    };
    f.num_failures = f.num_failures.saturating_sub(1);
    if set.is_some() && set == Some(f.failed_login_not_before) {
        f.failed_login_not_before = 0;
    }
    if f.num_failures == 0 {
        w.clear_login_failures(&realm.id, Some(key))
    } else {
        w.put_login_failure(&realm.id, key, &f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Store, UserRecord};

    fn setup(permanent: bool) -> (tempfile::TempDir, Store, RealmRecord) {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::testing::open(dir.path());
        let realm = RealmRecord {
            id: "r".into(),
            name: "r".into(),
            brute_force_protected: true,
            permanent_lockout: permanent,
            failure_factor: 3,
            wait_increment_seconds: 60,
            max_failure_wait_seconds: 150,
            minimum_quick_login_wait_seconds: 10,
            quick_login_check_milli_seconds: 500,
            max_delta_time_seconds: 3600,
            ..Default::default()
        };
        store
            .write(|w| {
                w.put_realm(&realm)?;
                w.put_user(
                    "r",
                    &UserRecord {
                        id: "u".into(),
                        username: "u".into(),
                        enabled: true,
                        ..Default::default()
                    },
                    false,
                )
            })
            .unwrap();
        (dir, store, realm)
    }

    #[test]
    fn one_address_failing_for_many_users_is_slowed_down() {
        let (_d, store, realm) = setup(false);
        let ip = Some("198.51.100.7");
        // 3 × 5 = 15 failures from one address, each for a different (unknown) user:
        // no user is locked, the address is.
        for i in 0..15 {
            let user = format!("nobody-{i}");
            store
                .write(|w| record_failure(w, &realm, &user, ip, 1_000 + i * 2_000))
                .unwrap();
        }
        let read = store.read().unwrap();
        let t = 1_000 + 14 * 2_000 + 1;
        assert!(
            is_locked(&read, &realm, "u", ip, t).unwrap(),
            "address slowed"
        );
        assert!(!is_locked(&read, &realm, "u", Some("198.51.100.8"), t).unwrap());
        assert!(
            !is_locked(&read, &realm, "u", None, t).unwrap(),
            "the user is not"
        );
        assert!(
            !is_locked(&read, &realm, "u", ip, t + 61_000).unwrap(),
            "for a while"
        );
    }

    #[test]
    fn every_failure_factor_failures_lock_longer_up_to_the_maximum() {
        let (_d, store, realm) = setup(false);
        let fail = |t: i64| {
            store
                .write(|w| record_failure(w, &realm, "u", Some("192.0.2.1"), t))
                .unwrap()
        };
        let locked = |t: i64| is_locked(&store.read().unwrap(), &realm, "u", None, t).unwrap();
        fail(1_000);
        fail(3_000);
        assert!(!locked(3_001));
        fail(5_000); // third: 60 s
        assert!(locked(64_999));
        assert!(!locked(65_001));
        for t in [70_000, 72_000, 74_000] {
            fail(t); // sixth: 120 s
        }
        assert!(locked(74_000 + 119_000));
        for t in [200_000, 202_000, 204_000] {
            fail(t); // ninth: 180 s, capped at 150
        }
        assert!(locked(204_000 + 149_000));
        assert!(!locked(204_000 + 151_000));
        store.write(|w| record_success(w, &realm, "u")).unwrap();
        assert!(store
            .read()
            .unwrap()
            .login_failure("r", "u")
            .unwrap()
            .is_none());
    }

    #[test]
    fn quick_successive_failures_wait_the_minimum() {
        let (_d, store, realm) = setup(false);
        store
            .write(|w| record_failure(w, &realm, "u", None, 10_000))
            .unwrap();
        store
            .write(|w| record_failure(w, &realm, "u", None, 10_100))
            .unwrap();
        let read = store.read().unwrap();
        assert!(is_locked(&read, &realm, "u", None, 10_100 + 9_000).unwrap());
        assert!(!is_locked(&read, &realm, "u", None, 10_100 + 11_000).unwrap());
    }

    #[test]
    fn old_failures_are_forgotten_and_permanent_lockout_disables() {
        let (_d, store, realm) = setup(false);
        store
            .write(|w| record_failure(w, &realm, "u", None, 0))
            .unwrap();
        store
            .write(|w| record_failure(w, &realm, "u", None, 2_000))
            .unwrap();
        // maxDeltaTimeSeconds later the count starts again: the next failure is the first.
        store
            .write(|w| record_failure(w, &realm, "u", None, 4_000_000))
            .unwrap();
        assert_eq!(
            store
                .read()
                .unwrap()
                .login_failure("r", "u")
                .unwrap()
                .unwrap()
                .num_failures,
            1
        );

        let (_d, store, realm) = setup(true);
        for t in [0, 2_000, 4_000] {
            store
                .write(|w| record_failure(w, &realm, "u", None, t))
                .unwrap();
        }
        assert!(
            !store
                .read()
                .unwrap()
                .user("r", "u")
                .unwrap()
                .unwrap()
                .enabled
        );
        // And locked, so a right password afterwards is answered like a wrong one.
        let read = store.read().unwrap();
        assert!(is_locked(&read, &realm, "u", None, 10_000_000).unwrap());
    }
}
