//! Required actions as a realm configures them (Keycloak's "Required actions" tab): which
//! are enabled, which every new user gets (`defaultAction`), and in which order a login
//! asks for them (`priority`). Only the actions the login implements are registered:
//! `CONFIGURE_TOTP`, `UPDATE_PASSWORD`, `UPDATE_PROFILE`, `VERIFY_EMAIL` and
//! `VERIFY_PROFILE` (asked for whenever the user's profile fails the realm's user profile),
//! with Keycloak's names and priorities.

use crate::store::RealmRecord;
pub use crate::store::RequiredActionRecord as RequiredAction;

/// The actions the login implements: (alias, name, Keycloak's default priority).
pub const IMPLEMENTED: &[(&str, &str, i64)] = &[
    ("CONFIGURE_TOTP", "Configure OTP", 10),
    ("UPDATE_PASSWORD", "Update Password", 30),
    ("UPDATE_PROFILE", "Update Profile", 40),
    ("VERIFY_EMAIL", "Verify Email", 50),
    ("VERIFY_PROFILE", "Verify Profile", 90),
];

/// Keycloak's `VERIFY_PROFILE`: not given to users, but due at any login (SSO included)
/// while the user's profile fails the realm's user profile.
pub const VERIFY_PROFILE: &str = "VERIFY_PROFILE";

/// Whether the realm has `VERIFY_PROFILE` registered and enabled.
pub fn verifies_profile(realm: &RealmRecord) -> bool {
    of(realm)
        .iter()
        .any(|r| r.alias == VERIFY_PROFILE && r.enabled)
}

/// Whether a login of `user` owes `VERIFY_PROFILE`: enabled, and the profile misses what
/// the user profile wants of the user (required attributes, invalid values).
pub fn profile_unverified<T: crate::store::Txn>(
    read: &crate::store::View<T>,
    realm: &RealmRecord,
    user: &crate::store::UserRecord,
) -> bool {
    use crate::idp::user_profile::{attributes, config, validate, Context};
    if !verifies_profile(realm) || user.service_account_client_id.is_some() {
        return false;
    }
    let Ok(config) = config(read, &realm.id) else {
        return false;
    };
    // Only what the user can fix on the profile page counts (not an admin-only attribute,
    // nor what the user's directory owns), or the login could never finish.
    let owned: Vec<String> = crate::idp::federation::provider_of(read, realm, user)
        .ok()
        .flatten()
        .map(|p| crate::idp::federation::writes::read_only_fields(Some(&p)))
        .unwrap_or_default();
    let editable: Vec<String> = attributes(&config)
        .iter()
        .filter(|a| a.can_edit(Context::User) && a.user_editable_field())
        .map(|a| a.name.to_string())
        .filter(|n| !owned.contains(n))
        .collect();
    !validate(&config, user, Context::User, Some(&editable)).is_empty()
}

/// The realm's registered required actions, by priority. A realm that never changed them
/// has Keycloak's defaults (all enabled but VERIFY_PROFILE, none a default action).
pub fn of(realm: &RealmRecord) -> Vec<RequiredAction> {
    let mut list = match &realm.required_actions {
        Some(list) => list.clone(),
        None => IMPLEMENTED
            .iter()
            .map(|(alias, name, priority)| RequiredAction {
                alias: alias.to_string(),
                name: name.to_string(),
                // VERIFY_PROFILE is off until a realm turns it on (Keycloak has it on): users
                // created without the names the default profile requires would otherwise
                // meet a profile page at their next login.
                enabled: *alias != VERIFY_PROFILE,
                default_action: false,
                priority: *priority,
            })
            .collect(),
    };
    list.sort_by(|a, b| a.priority.cmp(&b.priority).then(a.alias.cmp(&b.alias)));
    list
}

/// Of `wanted` (a user's actions and those the login adds), the ones the realm enforces,
/// in the realm's order. An action the realm unregistered or disabled is not asked for;
/// one the login does not implement stays (it blocks the login rather than be skipped).
pub fn pending(realm: &RealmRecord, wanted: &[String]) -> Vec<String> {
    let registered = of(realm);
    let mut out: Vec<(i64, String)> = Vec::new();
    for action in wanted {
        if out.iter().any(|(_, a)| a == action) {
            continue;
        }
        let implemented = IMPLEMENTED.iter().any(|(alias, _, _)| alias == action);
        match registered.iter().find(|r| &r.alias == action) {
            Some(r) if r.enabled => out.push((r.priority, action.clone())),
            Some(_) => {}
            None if implemented => {}
            None => out.push((i64::MAX, action.clone())),
        }
    }
    out.sort_by_key(|a| a.0);
    out.into_iter().map(|(_, a)| a).collect()
}

/// Put `actions` in the realm's order (unregistered ones last), keeping them all.
pub fn sort(realm: &RealmRecord, actions: &mut [String]) {
    let registered = of(realm);
    let rank = |a: &String| {
        registered
            .iter()
            .find(|r| &r.alias == a)
            .map_or(i64::MAX, |r| r.priority)
    };
    actions.sort_by_key(rank);
}

/// The actions every new user of the realm gets.
pub fn defaults(realm: &RealmRecord) -> Vec<String> {
    of(realm)
        .into_iter()
        .filter(|r| r.enabled && r.default_action)
        .map(|r| r.alias)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabled_actions_are_skipped_and_the_rest_follow_the_priority() {
        let mut realm = RealmRecord::default();
        let wanted: Vec<String> = [
            "VERIFY_EMAIL",
            "UPDATE_PASSWORD",
            "CONFIGURE_TOTP",
            "UPDATE_PROFILE",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            pending(&realm, &wanted),
            [
                "CONFIGURE_TOTP",
                "UPDATE_PASSWORD",
                "UPDATE_PROFILE",
                "VERIFY_EMAIL"
            ]
        );
        let mut list = of(&realm);
        list[0].enabled = false; // CONFIGURE_TOTP
        list[1].priority = 99; // UPDATE_PASSWORD after VERIFY_EMAIL
        realm.required_actions = Some(list);
        assert_eq!(
            pending(&realm, &wanted),
            ["UPDATE_PROFILE", "VERIFY_EMAIL", "UPDATE_PASSWORD"]
        );
        assert!(defaults(&realm).is_empty());
    }
}
