//! Which roles a representation asks to grant, resolved inside the write that grants them,
//! so that [`super::Caller::may_grant`] can refuse an administrator who would hand out power it does
//! not hold. Every path that assigns roles (role mappings of users and groups, composites,
//! group membership, users and groups created with roles, partial import) asks here.

use crate::idp::admin::error::AdminError;
use crate::idp::roles::group_conferred_role_ids;
use crate::store::{RealmRecord, Write};

use super::repr::{CompositesInput, GroupInput, RealmInput, UserInput};
use super::roles::named_role_ids;

/// The roles a user representation grants: its `realmRoles`, `clientRoles` and what its
/// `groups` confer.
pub(super) fn of_user(
    w: &Write,
    realm: &RealmRecord,
    input: &UserInput,
) -> Result<Vec<String>, AdminError> {
    let mut ids = named_role_ids(
        w,
        &realm.id,
        input.realm_roles.as_deref(),
        input.client_roles.as_ref(),
    )?;
    for path in input.groups.iter().flatten() {
        if let Some(group) = super::groups::find_by_path(w, &realm.id, path)? {
            ids.extend(group_conferred_role_ids(w, &realm.id, &group.id)?);
        }
    }
    Ok(ids)
}

/// The roles a group representation (and its sub-groups) grants to its members.
pub(super) fn of_group(
    w: &Write,
    realm: &RealmRecord,
    input: &GroupInput,
) -> Result<Vec<String>, AdminError> {
    let mut ids = named_role_ids(
        w,
        &realm.id,
        input.realm_roles.as_deref(),
        input.client_roles.as_ref(),
    )?;
    for sub in input.sub_groups.iter().flatten() {
        ids.extend(of_group(w, realm, sub)?);
    }
    Ok(ids)
}

fn of_composites(
    w: &Write,
    realm: &RealmRecord,
    c: &CompositesInput,
) -> Result<Vec<String>, AdminError> {
    named_role_ids(w, &realm.id, Some(&c.realm), Some(&c.client))
}

/// Everything a realm representation grants (users, groups, composite roles), resolved
/// after it was imported into `realm` in the same transaction.
pub(super) fn of_realm(
    w: &Write,
    realm: &RealmRecord,
    input: &RealmInput,
) -> Result<Vec<String>, AdminError> {
    let mut ids = Vec::new();
    for user in input.users.iter().flatten() {
        ids.extend(of_user(w, realm, user)?);
    }
    for group in input.groups.iter().flatten() {
        ids.extend(of_group(w, realm, group)?);
    }
    if let Some(roles) = &input.roles {
        let all = roles.realm.iter().chain(roles.client.values().flatten());
        for composites in all.filter_map(|r| r.composites.as_ref()) {
            ids.extend(of_composites(w, realm, composites)?);
        }
    }
    Ok(ids)
}
