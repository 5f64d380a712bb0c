//! Who is calling the admin API and what they may do. A caller presents an access token
//! from any realm; its roles decide:
//! - master realm `admin` role: everything;
//! - master realm `create-realm` role: create realms;
//! - master realm client `{realm}-realm` roles: those permissions on `{realm}`;
//! - a token of `{realm}` itself: its `realm-management` client roles on `{realm}`
//!   (`realm-admin` includes them all).
//!
//! `manage-X` implies `view-X`, and `view-users` implies `query-users` (as in Keycloak).

use std::collections::BTreeMap;

use crate::http::{Request, RequestInfo};
use crate::idp::admin::error::AdminError;
use crate::idp::oidc::userinfo::verify_access_token;
use crate::idp::oidc::{bearer_token, issuer};
use crate::idp::realm::MASTER;
use crate::idp::roles::{effective_roles, expand, EffectiveRoles, RoleGraph};
use crate::idp::tokens::Claims;
use crate::idp::App;
use crate::store::{RealmRecord, RoleRecord, StoreError};

/// A permission on a realm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    ViewRealm,
    ManageRealm,
    QueryUsers,
    ViewUsers,
    ManageUsers,
    QueryClients,
    ViewClients,
    ManageClients,
    /// Registering clients (dynamic client registration by an administrator's token).
    CreateClient,
    /// Signing in as another user (Keycloak's `impersonation` role).
    Impersonation,
    ViewEvents,
    ManageEvents,
    ViewIdentityProviders,
    ManageIdentityProviders,
}

impl Permission {
    /// The role names that grant this permission.
    fn granted_by(self) -> &'static [&'static str] {
        use Permission::*;
        match self {
            ViewRealm => &["view-realm", "manage-realm"],
            ManageRealm => &["manage-realm"],
            QueryUsers => &["query-users", "view-users", "manage-users"],
            ViewUsers => &["view-users", "manage-users"],
            ManageUsers => &["manage-users"],
            QueryClients => &["query-clients", "view-clients", "manage-clients"],
            ViewClients => &["view-clients", "manage-clients"],
            ManageClients => &["manage-clients"],
            CreateClient => &["create-client", "manage-clients"],
            Impersonation => &["impersonation"],
            ViewEvents => &["view-events", "manage-events"],
            ManageEvents => &["manage-events"],
            ViewIdentityProviders => &["view-identity-providers", "manage-identity-providers"],
            ManageIdentityProviders => &["manage-identity-providers"],
        }
    }
}

/// An authenticated admin API caller. Its permissions come from the user's role mappings
/// as the store holds them at this request, never from the token's claims: a client's
/// protocol mappers shape claims, and a role taken away must stop working at once.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The realm that issued the caller's token.
    pub realm: String,
    pub realm_id: String,
    /// The user (or service-account user) behind the token.
    pub user_id: String,
    /// The client the token was issued to (`azp`).
    pub client_id: String,
    roles: std::sync::Arc<EffectiveRoles>,
}

impl Caller {
    /// A caller holding `roles` in `realm` (tests and in-process callers).
    pub fn new(realm: &str, realm_id: &str, user_id: &str, roles: EffectiveRoles) -> Caller {
        Caller {
            realm: realm.into(),
            realm_id: realm_id.into(),
            user_id: user_id.into(),
            client_id: String::new(),
            roles: std::sync::Arc::new(roles),
        }
    }

    fn client_roles(&self, client_id: &str) -> impl Iterator<Item = &str> {
        self.roles
            .clients
            .get(client_id)
            .into_iter()
            .flatten()
            .map(String::as_str)
    }

    /// Master-realm administrator.
    pub fn is_super_admin(&self) -> bool {
        self.realm == MASTER && self.roles.realm.contains("admin")
    }

    pub fn can_create_realm(&self) -> bool {
        self.is_super_admin() || (self.realm == MASTER && self.roles.realm.contains("create-realm"))
    }

    /// The management role names the caller holds on `realm` (`realm-management` roles of
    /// the realm itself, or the master realm's `{realm}-realm` client roles).
    fn management_roles<'a>(&'a self, realm: &str) -> Box<dyn Iterator<Item = &'a str> + 'a> {
        if self.realm == MASTER {
            Box::new(
                self.client_roles(&format!("{realm}-realm"))
                    .collect::<Vec<_>>()
                    .into_iter(),
            )
        } else if self.realm == realm {
            Box::new(self.client_roles(REALM_MANAGEMENT))
        } else {
            Box::new(std::iter::empty())
        }
    }

    /// The administrative role names the caller holds on `realm`, as the console's `whoami`
    /// lists them (`realm-admin` and master's `admin` stand for every one).
    pub fn admin_roles_on(&self, realm: &str) -> Vec<String> {
        let held: Vec<&str> = self.management_roles(realm).collect();
        if self.is_super_admin() || held.contains(&"realm-admin") {
            return crate::idp::realm::MANAGEMENT_ROLES
                .iter()
                .map(|r| r.to_string())
                .collect();
        }
        let mut out: Vec<String> = held.into_iter().map(String::from).collect();
        out.sort();
        out
    }

    /// Whether the caller holds `permission` on `realm`.
    pub fn can(&self, realm: &str, permission: Permission) -> bool {
        if self.is_super_admin() {
            return true;
        }
        self.management_roles(realm)
            .any(|r| r == "realm-admin" || permission.granted_by().contains(&r))
    }

    /// Whether the caller holds any management role on `realm` (Keycloak's "view realm
    /// name list": enough to see that the realm exists, not its settings).
    pub fn administers(&self, realm: &str) -> bool {
        self.is_super_admin() || self.management_roles(realm).next().is_some()
    }

    /// 403 unless [`Caller::can`].
    pub fn require(&self, realm: &str, permission: Permission) -> Result<(), AdminError> {
        if self.can(realm, permission) {
            Ok(())
        } else {
            Err(AdminError::Forbidden)
        }
    }

    /// Whether the caller holds the administrative role `role` itself.
    fn holds(&self, role: &AdminRole) -> bool {
        if self.is_super_admin() {
            return true;
        }
        match role {
            AdminRole::Management { realm, name } => {
                self.management_roles(realm).any(|r| r == name)
            }
            // Master's own admin roles: only by holding exactly that role in master.
            AdminRole::Master { id } => self.realm == MASTER && self.roles.ids.contains(id),
        }
    }

    /// Refuse (403) to give `role_ids` to anyone when they contain, directly or through
    /// composites, an administrative role the caller does not hold itself: a delegated
    /// administrator can pass on no more power than it has (Keycloak's rule for mapping
    /// admin roles). Every path that assigns roles asks this inside its write.
    pub fn may_grant(
        &self,
        src: &impl RoleGraph,
        realm: &RealmRecord,
        role_ids: &[String],
    ) -> Result<(), AdminError> {
        if self.is_super_admin() || role_ids.is_empty() {
            return Ok(());
        }
        let mut clients: BTreeMap<String, Option<String>> = BTreeMap::new();
        for role in expand(src, &realm.id, role_ids.to_vec())? {
            let Some(admin_role) = admin_role(src, realm, &role, &mut clients)? else {
                continue;
            };
            if !self.holds(&admin_role) {
                return Err(AdminError::ForbiddenBecause(format!(
                    "You may not grant the administrative role {} which you do not hold",
                    role.name
                )));
            }
        }
        Ok(())
    }
}

/// The client holding each realm's administrative roles.
pub(super) const REALM_MANAGEMENT: &str = "realm-management";

/// An administrative role: what holding it lets one do through the admin API.
enum AdminRole {
    /// `realm-management` role `name` of `realm` (or master's `{realm}-realm` client role).
    Management { realm: String, name: String },
    /// A realm role of master that administers everything (`admin`, `create-realm`).
    Master { id: String },
}

/// Whether `role` of `realm` is administrative.
fn admin_role(
    src: &impl RoleGraph,
    realm: &RealmRecord,
    role: &RoleRecord,
    clients: &mut BTreeMap<String, Option<String>>,
) -> Result<Option<AdminRole>, StoreError> {
    if !role.client_role {
        let master_power =
            realm.name == MASTER && matches!(role.name.as_str(), "admin" | "create-realm");
        return Ok(master_power.then(|| AdminRole::Master {
            id: role.id.clone(),
        }));
    }
    let client_id = match clients.get(&role.container_id) {
        Some(c) => c.clone(),
        None => {
            let c = src
                .client(&realm.id, &role.container_id)?
                .map(|c| c.client_id);
            clients.insert(role.container_id.clone(), c.clone());
            c
        }
    };
    let Some(client_id) = client_id else {
        return Ok(None);
    };
    if client_id == REALM_MANAGEMENT {
        return Ok(Some(AdminRole::Management {
            realm: realm.name.clone(),
            name: role.name.clone(),
        }));
    }
    if realm.name == MASTER {
        if let Some(target) = client_id.strip_suffix("-realm") {
            return Ok(Some(AdminRole::Management {
                realm: target.to_string(),
                name: role.name.clone(),
            }));
        }
    }
    Ok(None)
}

/// Verify the bearer token (issued by one of our realms, named by its `iss`; signed with
/// that realm's key, not expired, session live, user enabled), then read the user's roles
/// from the store.
pub(super) fn authenticate(
    app: &App,
    request: &Request,
    info: &RequestInfo,
    now_ms: i64,
) -> Result<Caller, AdminError> {
    let token = bearer_token(request).ok_or(AdminError::Unauthorized)?;
    let unverified: Claims =
        crate::crypto::jwt::decode_unverified(token).map_err(|_| AdminError::Unauthorized)?;
    let realm_name = unverified
        .iss
        .rsplit_once("/realms/")
        .map(|(_, name)| name.to_string())
        .ok_or(AdminError::Unauthorized)?;
    let realm_name = crate::http::path::percent_decode(&realm_name)
        .map(|c| c.into_owned())
        .ok_or(AdminError::Unauthorized)?;
    // Before the read transaction: roles cached at this generation are current.
    let generation = app.store.generation();
    let read = app.store.read()?;
    let realm = read
        .realm_by_name(&realm_name)?
        .filter(|r| r.enabled)
        .ok_or(AdminError::Unauthorized)?;
    let keys = app
        .keys
        .realm_keys(&read, &realm.id, now_ms)
        .map_err(|e| AdminError::Internal(e.to_string()))?;
    let expected_issuer = issuer(app, request, info, &realm.name);
    let (claims, user) = verify_access_token(&read, &realm, &keys, token, &expected_issuer, now_ms)
        .map_err(|reason| {
            tracing::debug!(reason, "admin API token rejected");
            AdminError::Unauthorized
        })?;
    let roles = app
        .admin_roles
        .effective(generation, &realm.id, &user.id, || {
            effective_roles(&read, &realm.id, &user.id)
        })?;
    Ok(Caller {
        realm: realm.name,
        realm_id: realm.id,
        user_id: user.id,
        client_id: claims.azp,
        roles,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn caller(realm: &str, realm_roles: &[&str], clients: &[(&str, &[&str])]) -> Caller {
        let mut roles = EffectiveRoles {
            realm: realm_roles.iter().map(|r| r.to_string()).collect(),
            ..Default::default()
        };
        for (client, names) in clients {
            let set: BTreeSet<String> = names.iter().map(|r| r.to_string()).collect();
            roles.clients.insert(client.to_string(), set);
        }
        Caller::new(realm, "id", "user", roles)
    }

    #[test]
    fn master_admin_can_do_everything() {
        let c = caller("master", &["admin"], &[]);
        assert!(c.can("any", Permission::ManageUsers) && c.can_create_realm());
    }

    #[test]
    fn realm_management_roles_apply_to_their_realm_only() {
        let c = caller("shop", &[], &[("realm-management", &["view-users"])]);
        assert!(c.can("shop", Permission::ViewUsers));
        assert!(c.can("shop", Permission::QueryUsers));
        assert!(!c.can("shop", Permission::ManageUsers));
        assert!(!c.can("other", Permission::ViewUsers));
        assert!(!c.can_create_realm());
        let admin = caller("shop", &[], &[("realm-management", &["realm-admin"])]);
        assert!(admin.can("shop", Permission::ManageClients));
        assert!(!admin.can("master", Permission::ManageClients));
    }

    #[test]
    fn master_realm_clients_grant_per_realm() {
        let c = caller("master", &[], &[("shop-realm", &["manage-clients"])]);
        assert!(c.can("shop", Permission::ViewClients));
        assert!(!c.can("shop", Permission::ViewUsers));
        assert!(!c.can("other", Permission::ViewClients));
    }
}
