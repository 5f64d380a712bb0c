//! Realm creation with Keycloak's defaults: signing keys, the default roles, the built-in
//! client scopes, the built-in
//! clients (`account`, `admin-cli`, `broker`, `realm-management`) and, in the master realm,
//! the `{realm}-realm` management client whose roles the master `admin` role includes.
//! Everything happens inside the caller's write transaction.

use crate::crypto::random_id;
use crate::store::{
    ClientRecord, Conflict, RealmRecord, RoleRecord, StoreError, UserRecord, Write,
};

use super::keys::{self, KeyError};

pub const MASTER: &str = "master";

/// The roles of the `realm-management` client (and of `{realm}-realm` in master).
pub const MANAGEMENT_ROLES: &[&str] = &[
    "manage-users",
    "view-users",
    "query-users",
    "query-groups",
    "manage-clients",
    "view-clients",
    "query-clients",
    "create-client",
    "manage-realm",
    "view-realm",
    "query-realms",
    "manage-identity-providers",
    "view-identity-providers",
    "manage-events",
    "view-events",
    "manage-authorization",
    "view-authorization",
    "impersonation",
];

#[derive(Debug, thiserror::Error)]
pub enum RealmError {
    #[error("Conflict detected. See logs for details")]
    Exists,
    #[error("the master realm does not exist")]
    NoMaster,
    #[error(transparent)]
    Store(StoreError),
    #[error(transparent)]
    Keys(#[from] KeyError),
}

impl From<StoreError> for RealmError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(Conflict::RealmName) => RealmError::Exists,
            other => RealmError::Store(other),
        }
    }
}

/// Name of the default composite role every new user receives.
pub fn default_role_name(realm: &str) -> String {
    format!("default-roles-{realm}")
}

/// Create a role and return its id.
pub fn add_role(
    w: &mut Write,
    realm_id: &str,
    container_id: &str,
    client_role: bool,
    name: &str,
    composites: Vec<String>,
) -> Result<String, StoreError> {
    let id = random_id();
    w.put_role(
        realm_id,
        &RoleRecord {
            id: id.clone(),
            name: name.to_string(),
            description: Some(format!("${{role_{name}}}")),
            container_id: container_id.to_string(),
            client_role,
            composites,
            ..Default::default()
        },
    )?;
    Ok(id)
}

/// The id of a role, creating it when missing (an imported realm may bring its own).
fn ensure_role(
    w: &mut Write,
    realm_id: &str,
    container_id: &str,
    client_role: bool,
    name: &str,
    composites: Vec<String>,
) -> Result<String, StoreError> {
    match w.role_by_name(realm_id, container_id, name)? {
        Some(existing) => Ok(existing.id),
        None => add_role(w, realm_id, container_id, client_role, name, composites),
    }
}

/// Keycloak's placeholder for the server's own base URL in a client's `rootUrl`.
pub const AUTH_BASE_URL: &str = "${authBaseUrl}";

fn builtin_client(client_id: &str) -> ClientRecord {
    ClientRecord {
        id: random_id(),
        client_id: client_id.to_string(),
        name: Some(format!("${{client_{client_id}}}")),
        enabled: true,
        client_authenticator_type: "client-secret".into(),
        protocol: "openid-connect".into(),
        full_scope_allowed: true,
        standard_flow_enabled: true,
        ..Default::default()
    }
}

/// A client by clientId, creating it from `template` when missing.
fn ensure_client(
    w: &mut Write,
    realm_id: &str,
    template: ClientRecord,
) -> Result<ClientRecord, StoreError> {
    match w.client_by_client_id(realm_id, &template.client_id)? {
        Some(existing) => Ok(existing),
        None => {
            let mut client = template;
            super::client_scopes::attach_realm_defaults(w, realm_id, &mut client)?;
            w.put_client(realm_id, &client)?;
            Ok(client)
        }
    }
}

/// The management roles of a realm, held by a client; `realm-admin` includes all of them.
fn ensure_management_client(
    w: &mut Write,
    realm_id: &str,
    client_id: &str,
) -> Result<Vec<String>, StoreError> {
    let client = ensure_client(
        w,
        realm_id,
        ClientRecord {
            bearer_only: true,
            standard_flow_enabled: false,
            ..builtin_client(client_id)
        },
    )?;
    let mut ids = Vec::new();
    for name in MANAGEMENT_ROLES {
        ids.push(ensure_role(w, realm_id, &client.id, true, name, vec![])?);
    }
    if client_id == "realm-management" {
        let admin = ensure_role(w, realm_id, &client.id, true, "realm-admin", ids.clone())?;
        ids.push(admin);
    }
    Ok(ids)
}

/// Create a realm from `template` (its `id` is assigned when empty) with Keycloak's
/// defaults. For any realm but master, master gets a `{name}-realm` client whose roles the
/// master `admin` role includes.
pub fn create_realm(
    w: &mut Write,
    template: RealmRecord,
    now_ms: i64,
) -> Result<RealmRecord, RealmError> {
    let realm = put_new_realm(w, template, now_ms)?;
    keys::create_realm_keys(w, &realm.id, now_ms)?;
    ensure_defaults(w, &realm)?;
    Ok(realm)
}

/// Store a new realm record (assigning an id when empty); nothing else.
pub fn put_new_realm(
    w: &mut Write,
    mut template: RealmRecord,
    now_ms: i64,
) -> Result<RealmRecord, RealmError> {
    if template.id.is_empty() {
        template.id = random_id();
    }
    if w.realm_by_name(&template.name)?.is_some() || w.realm(&template.id)?.is_some() {
        return Err(RealmError::Exists);
    }
    template.created_at = now_ms;
    w.put_realm(&template)?;
    Ok(template)
}

/// Keycloak's built-in roles and clients of a realm, created where missing (so an imported
/// realm that brings its own keeps them).
pub fn ensure_defaults(w: &mut Write, realm: &RealmRecord) -> Result<(), RealmError> {
    let realm_id = realm.id.as_str();
    let name = realm.name.as_str();
    let offline = ensure_role(w, realm_id, realm_id, false, "offline_access", vec![])?;
    let uma = ensure_role(w, realm_id, realm_id, false, "uma_authorization", vec![])?;
    // Keycloak's built-in client scopes (the `offline_access` one maps the role above),
    // before any built-in client, which gets the realm's default scopes.
    super::client_scopes::ensure_builtin(w, realm)?;
    super::flows::ensure_builtin(w, realm_id)?;

    let account = ensure_client(
        w,
        realm_id,
        ClientRecord {
            public_client: true,
            root_url: Some(AUTH_BASE_URL.into()),
            base_url: Some(format!("/realms/{name}/account/")),
            redirect_uris: vec![format!("/realms/{name}/account/*")],
            ..builtin_client("account")
        },
    )?;
    let view_profile = ensure_role(w, realm_id, &account.id, true, "view-profile", vec![])?;
    let links = ensure_role(
        w,
        realm_id,
        &account.id,
        true,
        "manage-account-links",
        vec![],
    )?;
    let manage_account = ensure_role(
        w,
        realm_id,
        &account.id,
        true,
        "manage-account",
        vec![links],
    )?;
    for role in ["view-applications", "view-consent", "delete-account"] {
        ensure_role(w, realm_id, &account.id, true, role, vec![])?;
    }
    ensure_role(
        w,
        realm_id,
        realm_id,
        false,
        &default_role_name(name),
        vec![offline, uma, view_profile, manage_account],
    )?;
    ensure_client(
        w,
        realm_id,
        ClientRecord {
            public_client: true,
            standard_flow_enabled: false,
            direct_access_grants_enabled: true,
            ..builtin_client("admin-cli")
        },
    )?;
    let broker = ensure_client(
        w,
        realm_id,
        ClientRecord {
            bearer_only: true,
            standard_flow_enabled: false,
            ..builtin_client("broker")
        },
    )?;
    ensure_role(w, realm_id, &broker.id, true, "read-token", vec![])?;
    ensure_console_client(w, realm)?;

    if name == MASTER {
        let create_realm = ensure_role(w, realm_id, realm_id, false, "create-realm", vec![])?;
        let mut admin_composites = vec![create_realm];
        admin_composites.extend(ensure_management_client(w, realm_id, "master-realm")?);
        let admin = ensure_role(w, realm_id, realm_id, false, "admin", vec![])?;
        add_composites(w, realm_id, &admin, admin_composites)?;
    } else {
        ensure_management_client(w, realm_id, "realm-management")?;
        let master = w.realm_by_name(MASTER)?.ok_or(RealmError::NoMaster)?;
        let managed = ensure_management_client(w, &master.id, &format!("{name}-realm"))?;
        if let Some(admin) = w.role_by_name(&master.id, &master.id, "admin")? {
            add_composites(w, &master.id, &admin.id, managed)?;
        }
    }
    Ok(())
}

/// Keycloak's root URL of the console client: this server's admin base.
pub const AUTH_ADMIN_URL: &str = "${authAdminUrl}";

/// A built-in client's root URL placeholder (`${authBaseUrl}`, `${authAdminUrl}`) as this
/// server's base URL for the request, so its relative redirect URIs can be checked.
pub fn resolve_builtin_root(
    client: &mut ClientRecord,
    app: &crate::idp::App,
    request: &crate::http::Request,
    info: &crate::http::RequestInfo,
) {
    if matches!(
        client.root_url.as_deref(),
        Some(AUTH_BASE_URL | AUTH_ADMIN_URL)
    ) {
        client.root_url = Some(crate::idp::oidc::base_url(app, request, info));
    }
}

/// The admin console's public client (`security-admin-console`), signing in with PKCE and
/// returning only to the realm's console.
pub fn ensure_console_client(w: &mut Write, realm: &RealmRecord) -> Result<(), StoreError> {
    let console = format!(
        "/admin/{}/console/",
        crate::http::path::encode_segment(&realm.name)
    );
    let mut attributes = std::collections::BTreeMap::new();
    attributes.insert("pkce.code.challenge.method".to_string(), "S256".to_string());
    attributes.insert("post.logout.redirect.uris".to_string(), "+".to_string());
    ensure_client(
        w,
        &realm.id,
        ClientRecord {
            public_client: true,
            root_url: Some(AUTH_ADMIN_URL.into()),
            base_url: Some(console.clone()),
            redirect_uris: vec![format!("{console}*")],
            web_origins: vec!["+".into()],
            attributes,
            ..builtin_client(crate::idp::console::session::CONSOLE_CLIENT)
        },
    )?;
    Ok(())
}

fn add_composites(
    w: &mut Write,
    realm_id: &str,
    role_id: &str,
    ids: Vec<String>,
) -> Result<(), StoreError> {
    if let Some(mut role) = w.role(realm_id, role_id)? {
        for id in ids {
            if !role.composites.contains(&id) {
                role.composites.push(id);
            }
        }
        w.put_role(realm_id, &role)?;
    }
    Ok(())
}

/// Delete a realm and, in master, its `{name}-realm` management client.
pub fn delete_realm(w: &mut Write, realm: &RealmRecord) -> Result<(), StoreError> {
    if let Some(master) = w.realm_by_name(MASTER)? {
        if master.id != realm.id {
            if let Some(client) =
                w.client_by_client_id(&master.id, &format!("{}-realm", realm.name))?
            {
                w.delete_client(&master.id, &client.id)?;
            }
        }
    }
    w.delete_realm(&realm.id)?;
    Ok(())
}

/// A client with service accounts gets its service-account user (`service-account-{clientId}`)
/// when it has none yet.
pub fn ensure_service_account(
    w: &mut Write,
    realm: &RealmRecord,
    client: &ClientRecord,
    now_ms: i64,
) -> Result<(), StoreError> {
    if !client.service_accounts_enabled {
        return Ok(());
    }
    let username = format!("service-account-{}", client.client_id.to_lowercase());
    if w.user_by_username(&realm.id, &username)?.is_some() {
        return Ok(());
    }
    let user = UserRecord {
        id: random_id(),
        username,
        enabled: true,
        created_timestamp: now_ms,
        service_account_client_id: Some(client.id.clone()),
        ..Default::default()
    };
    create_user(w, realm, &user)
}

/// Store a new user and give it the realm's default roles.
pub fn create_user(
    w: &mut Write,
    realm: &RealmRecord,
    user: &UserRecord,
) -> Result<(), StoreError> {
    // A create never replaces: an imported id that is taken is a conflict.
    if w.user(&realm.id, &user.id)?.is_some() {
        return Err(StoreError::Conflict(crate::store::Conflict::Id));
    }
    w.put_user(&realm.id, user, realm.duplicate_emails_allowed)?;
    if let Some(role) = w.role_by_name(&realm.id, &realm.id, &default_role_name(&realm.name))? {
        w.grant_user_role(&realm.id, &user.id, &role.id)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn realm(name: &str) -> RealmRecord {
        RealmRecord {
            name: name.into(),
            ..Default::default()
        }
    }

    #[test]
    fn master_then_another_realm_with_management_clients() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::testing::open(dir.path());
        let master = store.write(|w| create_realm(w, realm(MASTER), 1)).unwrap();
        let other = store.write(|w| create_realm(w, realm("shop"), 2)).unwrap();
        let read = store.read().unwrap();
        let admin = read
            .role_by_name(&master.id, &master.id, "admin")
            .unwrap()
            .unwrap();
        let shop_realm = read
            .client_by_client_id(&master.id, "shop-realm")
            .unwrap()
            .unwrap();
        let manage_users = read
            .role_by_name(&master.id, &shop_realm.id, "manage-users")
            .unwrap()
            .unwrap();
        assert!(admin.composites.contains(&manage_users.id));
        let rm = read
            .client_by_client_id(&other.id, "realm-management")
            .unwrap()
            .unwrap();
        let realm_admin = read
            .role_by_name(&other.id, &rm.id, "realm-admin")
            .unwrap()
            .unwrap();
        assert_eq!(realm_admin.composites.len(), MANAGEMENT_ROLES.len());
        assert!(
            read.client_by_client_id(&other.id, "admin-cli")
                .unwrap()
                .unwrap()
                .direct_access_grants_enabled
        );
        assert_eq!(read.signing_keys(&other.id).unwrap().len(), 2);
        drop(read);
        let e = store
            .write(|w| create_realm(w, realm("shop"), 3))
            .unwrap_err();
        assert!(matches!(e, RealmError::Exists));
        store.write(|w| delete_realm(w, &other)).unwrap();
        let read = store.read().unwrap();
        assert!(read
            .client_by_client_id(&master.id, "shop-realm")
            .unwrap()
            .is_none());
        let admin = read
            .role_by_name(&master.id, &master.id, "admin")
            .unwrap()
            .unwrap();
        assert!(!admin.composites.contains(&manage_users.id));
    }
}
