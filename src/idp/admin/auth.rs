//! Who is calling the admin API and what they may do. A caller presents an access token
//! from any realm; its roles decide:
//! - master realm `admin` role: everything;
//! - master realm `create-realm` role: create realms;
//! - master realm client `{realm}-realm` roles: those permissions on `{realm}`;
//! - a token of `{realm}` itself: its `realm-management` client roles on `{realm}`
//!   (`realm-admin` includes them all).
//!
//! `manage-X` implies `view-X`, and `view-users` implies `query-users` (as in Keycloak).

use crate::http::error::AdminError;
use crate::http::{App, Request, RequestInfo};
use crate::idp::oidc::userinfo::verify_access_token;
use crate::idp::oidc::{bearer_token, issuer};
use crate::idp::realm::MASTER;
use crate::idp::tokens::Claims;

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
            ViewEvents => &["view-events", "manage-events"],
            ManageEvents => &["manage-events"],
            ViewIdentityProviders => &["view-identity-providers", "manage-identity-providers"],
            ManageIdentityProviders => &["manage-identity-providers"],
        }
    }
}

/// An authenticated admin API caller.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The realm that issued the caller's token.
    pub realm: String,
    pub realm_id: String,
    pub claims: Claims,
}

impl Caller {
    fn realm_roles(&self) -> &[String] {
        self.claims
            .realm_access
            .as_ref()
            .map(|r| r.roles.as_slice())
            .unwrap_or(&[])
    }

    fn client_roles(&self, client_id: &str) -> &[String] {
        self.claims
            .resource_access
            .as_ref()
            .and_then(|r| r.get(client_id))
            .map(|r| r.roles.as_slice())
            .unwrap_or(&[])
    }

    /// Master-realm administrator.
    pub fn is_super_admin(&self) -> bool {
        self.realm == MASTER && self.realm_roles().iter().any(|r| r == "admin")
    }

    pub fn can_create_realm(&self) -> bool {
        self.is_super_admin()
            || (self.realm == MASTER && self.realm_roles().iter().any(|r| r == "create-realm"))
    }

    /// Whether the caller holds `permission` on `realm`.
    pub fn can(&self, realm: &str, permission: Permission) -> bool {
        if self.is_super_admin() {
            return true;
        }
        let roles = if self.realm == MASTER {
            self.client_roles(&format!("{realm}-realm"))
        } else if self.realm == realm {
            let roles = self.client_roles("realm-management");
            if roles.iter().any(|r| r == "realm-admin") {
                return true;
            }
            roles
        } else {
            &[]
        };
        roles
            .iter()
            .any(|r| permission.granted_by().contains(&r.as_str()))
    }

    /// 403 unless [`Caller::can`].
    pub fn require(&self, realm: &str, permission: Permission) -> Result<(), AdminError> {
        if self.can(realm, permission) {
            Ok(())
        } else {
            Err(AdminError::Forbidden)
        }
    }
}

/// Verify the bearer token: issued by one of our realms (named by its `iss`), signed with
/// that realm's key, not expired, session live, user enabled.
pub fn authenticate(
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
    let realm_name = crate::http::router::percent_decode(&realm_name)
        .map(|c| c.into_owned())
        .ok_or(AdminError::Unauthorized)?;
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
    let (claims, _) = verify_access_token(&read, &realm, &keys, token, &expected_issuer, now_ms)
        .map_err(|reason| {
            tracing::debug!(reason, "admin API token rejected");
            AdminError::Unauthorized
        })?;
    Ok(Caller {
        realm: realm.name,
        realm_id: realm.id,
        claims,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::idp::tokens::RolesClaim;
    use std::collections::BTreeMap;

    fn caller(realm: &str, realm_roles: &[&str], clients: &[(&str, &[&str])]) -> Caller {
        let mut resource_access = BTreeMap::new();
        for (client, roles) in clients {
            resource_access.insert(
                client.to_string(),
                RolesClaim {
                    roles: roles.iter().map(|r| r.to_string()).collect(),
                },
            );
        }
        Caller {
            realm: realm.into(),
            realm_id: "id".into(),
            claims: Claims {
                realm_access: Some(RolesClaim {
                    roles: realm_roles.iter().map(|r| r.to_string()).collect(),
                }),
                resource_access: Some(resource_access),
                ..Default::default()
            },
        }
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
