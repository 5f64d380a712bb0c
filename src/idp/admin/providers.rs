//! Identity providers (`/identity-provider/instances`, their `mappers`) and components
//! (`/components`, e.g. LDAP user storage): stored in Keycloak's representation and
//! validated. Secrets (`clientSecret`, `bindCredential`) are never returned; reads show
//! `**********` as Keycloak does, and writing that placeholder back keeps the stored value.

use serde_json::{json, Value};

use crate::crypto::random_id;
use crate::http::Response;
use crate::idp::admin::error::AdminError;
use crate::store::RealmRecord;

use super::{deleted, no_content, ok, Cx, Permission};

const IDP: &str = "identity-provider";
const IDP_MAPPER: &str = "identity-provider-mapper";
const COMPONENT: &str = "component";
pub(super) const SECRET_MASK: &str = "**********";

/// Provider types we know how to broker to (or store for later).
const IDP_TYPES: &[&str] = &[
    "oidc",
    "keycloak-oidc",
    "google",
    "github",
    "gitlab",
    "microsoft",
    "facebook",
    "linkedin-openid-connect",
];
const STORAGE_PROVIDER: &str = "org.keycloak.storage.UserStorageProvider";

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key)
        .and_then(|x| x.as_str())
        .filter(|s| !s.is_empty())
}

fn valid_url(s: &str) -> bool {
    url::Url::parse(s).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
}

/// Check an identity provider and fill Keycloak's defaults.
fn validate_idp(mut idp: Value) -> Result<Value, String> {
    let alias = text(&idp, "alias").ok_or("alias is required")?.to_string();
    if alias.contains('/') || alias.chars().any(char::is_whitespace) {
        return Err(format!("Invalid alias: {alias}"));
    }
    let provider = text(&idp, "providerId")
        .ok_or("providerId is required")?
        .to_string();
    if !IDP_TYPES.contains(&provider.as_str()) {
        return Err(format!("Unsupported identity provider type: {provider}"));
    }
    let config = idp.get("config").cloned().unwrap_or_else(|| json!({}));
    let Some(obj) = config.as_object() else {
        return Err("config must be an object".into());
    };
    if obj.values().any(|v| !v.is_string()) {
        return Err("config values must be strings".into());
    }
    if text(&config, "clientId").is_none() {
        return Err("config.clientId is required".into());
    }
    if matches!(provider.as_str(), "oidc" | "keycloak-oidc") {
        for key in ["authorizationUrl", "tokenUrl"] {
            match text(&config, key) {
                Some(u) if valid_url(u) => {}
                Some(u) => return Err(format!("config.{key} is not an http(s) URL: {u}")),
                None => return Err(format!("config.{key} is required")),
            }
        }
        for key in ["userInfoUrl", "jwksUrl", "logoutUrl", "issuer"] {
            if let Some(u) = text(&config, key) {
                if !valid_url(u) {
                    return Err(format!("config.{key} is not an http(s) URL: {u}"));
                }
            }
        }
    }
    if let Some(mode) = text(&config, "syncMode") {
        if !matches!(mode, "IMPORT" | "FORCE" | "LEGACY") {
            return Err(format!(
                "config.syncMode must be IMPORT, FORCE or LEGACY, not {mode}"
            ));
        }
    }
    for (key, default) in [
        ("enabled", json!(true)),
        ("trustEmail", json!(false)),
        ("storeToken", json!(false)),
        ("addReadTokenRoleOnCreate", json!(false)),
        ("linkOnly", json!(false)),
        ("hideOnLogin", json!(false)),
        ("firstBrokerLoginFlowAlias", json!("first broker login")),
    ] {
        if idp.get(key).is_none() {
            idp[key] = default;
        }
    }
    if text(&idp, "internalId").is_none() {
        idp["internalId"] = random_id().into();
    }
    idp["config"] = config;
    Ok(idp)
}

/// Check a component; LDAP user storage gets Keycloak's rules.
/// `creating`: a new component gets the vendor's defaults for what it leaves out; an update
/// must say what it keeps (as Keycloak refuses a missing field then).
fn validate_component(mut c: Value, realm: &RealmRecord, creating: bool) -> Result<Value, String> {
    let provider_type = text(&c, "providerType")
        .ok_or("providerType is required")?
        .to_string();
    let provider = text(&c, "providerId")
        .ok_or("providerId is required")?
        .to_string();
    if text(&c, "name").is_none() {
        return Err("name is required".into());
    }
    let mut config = c.get("config").cloned().unwrap_or_else(|| json!({}));
    let Some(obj) = config.as_object_mut() else {
        return Err("config must be an object".into());
    };
    // Keycloak wants lists of strings; a plain string is taken as a list of one.
    for v in obj.values_mut() {
        if let Value::String(s) = v {
            *v = json!([s.clone()]);
        }
    }
    if creating && provider_type == STORAGE_PROVIDER && provider == "ldap" {
        ldap_defaults(obj);
    }
    for (k, v) in obj.iter() {
        let ok = v
            .as_array()
            .is_some_and(|a| a.iter().all(|x| x.is_string()));
        if !ok {
            return Err(format!("config.{k} must be a list of strings"));
        }
    }
    let first = |k: &str| {
        config
            .get(k)
            .and_then(|v| v.get(0))
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
    };
    if provider_type == STORAGE_PROVIDER && provider == "ldap" {
        let url = first("connectionUrl")
            .ok_or("LDAP connection URL is required (config.connectionUrl)")?;
        for u in url.split_whitespace() {
            if !(u.starts_with("ldap://") || u.starts_with("ldaps://")) {
                return Err(format!("Invalid LDAP connection URL: {u}"));
            }
        }
        for key in [
            "usersDn",
            "usernameLDAPAttribute",
            "rdnLDAPAttribute",
            "uuidLDAPAttribute",
            "userObjectClasses",
        ] {
            if first(key).is_none() {
                return Err(format!("config.{key} is required"));
            }
        }
        let check = |key: &str, allowed: &[&str]| -> Result<(), String> {
            match first(key) {
                Some(v) if !allowed.contains(&v) => Err(format!(
                    "config.{key} must be one of {}",
                    allowed.join(", ")
                )),
                _ => Ok(()),
            }
        };
        check("vendor", &["ad", "rhds", "other", "tivoli", "edirectory"])?;
        if let Some(f) = first("customUserSearchFilter") {
            if !crate::idp::ldap::valid_filter(f) {
                return Err(format!(
                    "config.customUserSearchFilter must be one filter in parentheses: {f}"
                ));
            }
        }
        for key in [
            "usernameLDAPAttribute",
            "rdnLDAPAttribute",
            "uuidLDAPAttribute",
        ] {
            if first(key).is_some_and(|a| !crate::idp::ldap::valid_attribute(a)) {
                return Err(format!("config.{key} is not an attribute name"));
            }
        }
        check("editMode", &["READ_ONLY", "WRITABLE", "UNSYNCED"])?;
        check("authType", &["simple", "none"])?;
        check("searchScope", &["1", "2"])?;
        if first("authType").unwrap_or("simple") == "simple"
            && (first("bindDn").is_none() || first("bindCredential").is_none())
        {
            return Err(
                "config.bindDn and config.bindCredential are required with authType simple".into(),
            );
        }
        for key in [
            "batchSizeForSync",
            "fullSyncPeriod",
            "changedSyncPeriod",
            "connectionTimeout",
        ] {
            if let Some(v) = first(key) {
                if v.parse::<i64>().is_err() {
                    return Err(format!("config.{key} must be a number"));
                }
            }
        }
    }
    if text(&c, "parentId").is_none() {
        c["parentId"] = realm.id.clone().into();
    }
    c["config"] = config;
    Ok(c)
}

/// What Keycloak's console fills in for an LDAP provider when the form leaves it empty:
/// the vendor's attribute names and object classes, a read-only edit mode, a one-level
/// search, simple authentication when a bind DN is given.
fn ldap_defaults(config: &mut serde_json::Map<String, Value>) {
    let given = |config: &serde_json::Map<String, Value>, k: &str| {
        config
            .get(k)
            .and_then(|v| v.get(0))
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
    };
    if !given(config, "vendor") {
        config.insert("vendor".into(), json!(["other"]));
    }
    let vendor = config["vendor"][0].as_str().unwrap_or("other").to_string();
    let (username, rdn, uuid, classes) = match vendor.as_str() {
        "ad" => (
            "cn",
            "cn",
            "objectGUID",
            "person, organizationalPerson, user",
        ),
        "rhds" => (
            "uid",
            "uid",
            "nsuniqueid",
            "inetOrgPerson, organizationalPerson",
        ),
        "tivoli" => (
            "uid",
            "uid",
            "uniqueidentifier",
            "inetOrgPerson, organizationalPerson",
        ),
        "edirectory" => ("uid", "uid", "guid", "inetOrgPerson, organizationalPerson"),
        _ => (
            "uid",
            "uid",
            "entryUUID",
            "inetOrgPerson, organizationalPerson",
        ),
    };
    let auth = if given(config, "bindDn") {
        "simple"
    } else {
        "none"
    };
    for (key, value) in [
        ("usernameLDAPAttribute", username),
        ("rdnLDAPAttribute", rdn),
        ("uuidLDAPAttribute", uuid),
        ("userObjectClasses", classes),
        ("editMode", "READ_ONLY"),
        ("searchScope", "1"),
        ("authType", auth),
    ] {
        if !given(config, key) {
            config.insert(key.into(), json!([value]));
        }
    }
}

/// Replace secrets with the mask for reading.
fn masked(mut v: Value) -> Value {
    if let Some(cfg) = v.get_mut("config").and_then(|c| c.as_object_mut()) {
        for key in ["clientSecret", "bindCredential"] {
            match cfg.get_mut(key) {
                Some(Value::String(s)) if !s.is_empty() => *s = SECRET_MASK.into(),
                Some(Value::Array(a)) if !a.is_empty() => *a = vec![SECRET_MASK.into()],
                _ => {}
            }
        }
    }
    v
}

/// A write that sends the mask back keeps the stored secret.
fn keep_secrets(mut new: Value, old: Option<&Value>) -> Result<Value, String> {
    let Some(old) = old else { return Ok(new) };
    let first = |c: Option<&Value>, key: &str| -> Option<String> {
        let v = c?.get(key)?;
        v.get(0)
            .and_then(Value::as_str)
            .or_else(|| v.as_str())
            .map(str::to_string)
    };
    // A secret is sent where these say: the mask keeps it only while they stay as stored,
    // else a changed URL would take the stored secret to another server.
    let guarded: [(&str, &[&str]); 2] = [
        ("clientSecret", &["tokenUrl", "clientId"]),
        (
            "bindCredential",
            &["connectionUrl", "bindDn", "startTls", "authType"],
        ),
    ];
    let old_cfg = old.get("config");
    if let Some(cfg) = new.get_mut("config").and_then(|c| c.as_object_mut()) {
        for (key, guards) in guarded {
            let is_mask = match cfg.get(key) {
                Some(Value::String(s)) => s == SECRET_MASK,
                Some(Value::Array(a)) => a.first().and_then(|x| x.as_str()) == Some(SECRET_MASK),
                _ => false,
            };
            if !is_mask {
                continue;
            }
            let snapshot = Value::Object(cfg.clone());
            if let Some(g) = guards
                .iter()
                .find(|g| first(Some(&snapshot), g) != first(old_cfg, g))
            {
                return Err(format!("{key} must be given again when {g} changes"));
            }
            if let Some(prev) = old_cfg.and_then(|c| c.get(key)) {
                cfg.insert(key.into(), prev.clone());
            }
        }
    }
    Ok(new)
}

/// An identity provider of an imported realm file (validated as if created).
pub(super) fn import_idp(
    w: &mut crate::store::Write,
    realm: &RealmRecord,
    idp: &Value,
) -> Result<(), AdminError> {
    let idp = validate_idp(idp.clone()).map_err(AdminError::BadRequest)?;
    let alias = idp["alias"].as_str().unwrap_or_default().to_string();
    w.put_object(&realm.id, IDP, &alias, &idp)
        .map_err(AdminError::from)
}

/// The components of an imported realm file other than key providers (an LDAP provider
/// with its mappers, ...): `components` is the file's `{providerType: [component]}`, each
/// with its `subComponents` in the same shape. Validated as if created; an LDAP provider
/// the file gives no mappers gets Keycloak's defaults.
pub(super) fn import_components(
    w: &mut crate::store::Write,
    realm: &RealmRecord,
    components: &Value,
    skip_type: &str,
) -> Result<(), AdminError> {
    let Some(by_type) = components.as_object() else {
        return Ok(());
    };
    for (provider_type, list) in by_type {
        if provider_type == skip_type {
            continue;
        }
        for c in list.as_array().into_iter().flatten() {
            import_component(w, realm, provider_type, c, None)?;
        }
    }
    Ok(())
}

fn import_component(
    w: &mut crate::store::Write,
    realm: &RealmRecord,
    provider_type: &str,
    c: &Value,
    parent: Option<&str>,
) -> Result<(), AdminError> {
    let mut stored = c.clone();
    let Some(object) = stored.as_object_mut() else {
        return Err(AdminError::BadRequest(
            "a component must be an object".into(),
        ));
    };
    let subs = object.remove("subComponents").unwrap_or(Value::Null);
    object.insert("providerType".into(), provider_type.into());
    if let Some(p) = parent {
        object.insert("parentId".into(), p.into());
    }
    let mut stored = validate_component(stored, realm, true).map_err(AdminError::BadRequest)?;
    let id = text(&stored, "id")
        .map(String::from)
        .unwrap_or_else(random_id);
    stored["id"] = id.clone().into();
    w.put_object(&realm.id, COMPONENT, &id, &stored)?;
    let mut any_sub = false;
    for (sub_type, list) in subs.as_object().into_iter().flatten() {
        for s in list.as_array().into_iter().flatten() {
            import_component(w, realm, sub_type, s, Some(&id))?;
            any_sub = true;
        }
    }
    if !any_sub && provider_type == STORAGE_PROVIDER && stored["providerId"] == "ldap" {
        for mut m in crate::idp::ldap::default_mappers(&stored) {
            let mid = random_id();
            m["id"] = mid.clone().into();
            w.put_object(&realm.id, COMPONENT, &mid, &m)?;
        }
    }
    Ok(())
}

/// A mapper of an imported realm file (its role must exist by then).
pub(super) fn import_idp_mapper(
    w: &mut crate::store::Write,
    realm: &RealmRecord,
    m: &Value,
) -> Result<(), AdminError> {
    let mut m = m.clone();
    if text(&m, "name").is_none()
        || text(&m, "identityProviderMapper").is_none()
        || text(&m, "identityProviderAlias").is_none()
    {
        return Err(AdminError::BadRequest(
            "identityProviderMappers need name, identityProviderMapper and identityProviderAlias"
                .into(),
        ));
    }
    let kind = text(&m, "identityProviderMapper").unwrap_or_default();
    if !crate::idp::broker::mappers::known(kind) {
        return Err(AdminError::BadRequest(format!(
            "Unsupported identity provider mapper type: {kind}"
        )));
    }
    let id = text(&m, "id").map(String::from).unwrap_or_else(random_id);
    m["id"] = id.clone().into();
    w.put_object(&realm.id, IDP_MAPPER, &id, &m)
        .map_err(AdminError::from)
}

/// `GET /identity-provider/instances`
pub(super) fn idps(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ViewIdentityProviders)?;
    let list = cx.app.store.read()?.objects(&realm.id, IDP)?;
    Ok(ok(&Value::Array(list.into_iter().map(masked).collect())))
}

/// `POST /identity-provider/instances`
pub(super) fn create_idp(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageIdentityProviders)?;
    let idp = validate_idp(cx.json_object()?).map_err(AdminError::BadRequest)?;
    let alias = idp["alias"].as_str().unwrap_or_default().to_string();
    cx.app.store.write(|w| {
        if w.object(&realm.id, IDP, &alias)?.is_some() {
            return Err(AdminError::Conflict(format!(
                "Identity Provider {alias} already exists"
            )));
        }
        w.put_object(&realm.id, IDP, &alias, &idp)
            .map_err(AdminError::from)
    })?;
    Ok(cx.created(&alias))
}

/// `GET /identity-provider/instances/{alias}`
pub(super) fn idp(cx: &Cx) -> Result<Response, AdminError> {
    let alias = cx.path.id.clone();
    let realm = cx.realm(Permission::ViewIdentityProviders)?;
    let idp = cx
        .app
        .store
        .read()?
        .object(&realm.id, IDP, &alias)?
        .ok_or_else(idp_missing)?;
    Ok(ok(&masked(idp)))
}

/// `PUT /identity-provider/instances/{alias}`
pub(super) fn update_idp(cx: &Cx) -> Result<Response, AdminError> {
    let alias = cx.path.id.clone();
    let realm = cx.realm(Permission::ManageIdentityProviders)?;
    let mut body = cx.json_object()?;
    body["alias"] = alias.clone().into();
    cx.app.store.write(|w| {
        let old = w.object(&realm.id, IDP, &alias)?.ok_or_else(idp_missing)?;
        if body.get("internalId").is_none() {
            body["internalId"] = old["internalId"].clone();
        }
        let idp = validate_idp(keep_secrets(body, Some(&old)).map_err(AdminError::BadRequest)?)
            .map_err(AdminError::BadRequest)?;
        w.put_object(&realm.id, IDP, &alias, &idp)
            .map_err(AdminError::from)
    })?;
    Ok(no_content())
}

/// `DELETE /identity-provider/instances/{alias}`
pub(super) fn delete_idp(cx: &Cx) -> Result<Response, AdminError> {
    let alias = cx.path.id.clone();
    let realm = cx.realm(Permission::ManageIdentityProviders)?;
    cx.app.store.write(|w| {
        if !w.delete_object(&realm.id, IDP, &alias)? {
            return Err(idp_missing());
        }
        // Its users' links go with it (the users stay), and so do its mappers.
        w.unlink_provider(&realm.id, &alias)?;
        for m in w.objects(&realm.id, IDP_MAPPER)? {
            if m["identityProviderAlias"] == alias.as_str() {
                if let Some(id) = m["id"].as_str() {
                    w.delete_object(&realm.id, IDP_MAPPER, id)?;
                }
            }
        }
        Ok::<_, AdminError>(())
    })?;
    Ok(no_content())
}

/// The realm of `/identity-provider/instances/{alias}/mappers...`, if the caller may act on
/// it with `permission` and the identity provider exists.
fn idp_realm(cx: &Cx, permission: Permission) -> Result<RealmRecord, AdminError> {
    let realm = cx.realm(permission)?;
    if cx
        .app
        .store
        .read()?
        .object(&realm.id, IDP, &cx.path.id)?
        .is_none()
    {
        return Err(AdminError::NotFound(
            "Could not find identity provider".into(),
        ));
    }
    Ok(realm)
}

/// A mapper body as sent: `name` and `identityProviderMapper` required, tied to the alias
/// of the path, `config` present.
fn idp_mapper_body(cx: &Cx) -> Result<Value, AdminError> {
    let mut m = cx.json_object()?;
    if text(&m, "name").is_none() || text(&m, "identityProviderMapper").is_none() {
        return Err(AdminError::BadRequest(
            "name and identityProviderMapper are required".into(),
        ));
    }
    m["identityProviderAlias"] = cx.path.id.clone().into();
    if m.get("config").is_none() {
        m["config"] = json!({});
    }
    Ok(m)
}

fn idp_missing() -> AdminError {
    AdminError::NotFound("Could not find identity provider".into())
}

fn component_missing() -> AdminError {
    AdminError::NotFound("Could not find component".into())
}

fn mapper_missing() -> AdminError {
    AdminError::NotFound("Model not found".into())
}

/// `GET /identity-provider/instances/{alias}/mappers`
pub(super) fn idp_mappers(cx: &Cx) -> Result<Response, AdminError> {
    let realm = idp_realm(cx, Permission::ViewIdentityProviders)?;
    let list: Vec<Value> = cx
        .app
        .store
        .read()?
        .objects(&realm.id, IDP_MAPPER)?
        .into_iter()
        .filter(|m| m["identityProviderAlias"] == cx.path.id.as_str())
        .collect();
    Ok(ok(&Value::Array(list)))
}

/// A mapper must be of a known type and name an existing role; one that grants a role
/// needs a caller who may grant it (an identity-provider manager cannot hand out admin
/// power through a mapper).
fn check_idp_mapper(
    cx: &Cx,
    w: &crate::store::Write,
    realm: &RealmRecord,
    m: &Value,
) -> Result<(), AdminError> {
    let role = crate::idp::broker::mappers::check(w, realm, m).map_err(AdminError::BadRequest)?;
    if let Some(role) = role {
        cx.caller.may_grant(w, realm, &[role])?;
    }
    Ok(())
}

/// `POST /identity-provider/instances/{alias}/mappers`
pub(super) fn create_idp_mapper(cx: &Cx) -> Result<Response, AdminError> {
    let realm = idp_realm(cx, Permission::ManageIdentityProviders)?;
    let mut m = idp_mapper_body(cx)?;
    let id = text(&m, "id").map(String::from).unwrap_or_else(random_id);
    m["id"] = id.clone().into();
    cx.app.store.write(|w| {
        check_idp_mapper(cx, w, &realm, &m)?;
        w.put_object(&realm.id, IDP_MAPPER, &id, &m)
            .map_err(AdminError::from)
    })?;
    Ok(cx.created(&id))
}

/// `POST /identity-provider/import-config` with `{"providerId", "fromUrl"}` (or the
/// document itself as `"file"`): the provider's endpoints as an identity provider's config.
pub(super) async fn import_config(cx: &Cx<'_>) -> Result<Response, AdminError> {
    cx.realm(Permission::ManageIdentityProviders)?;
    let body = cx.json_object()?;
    let provider = text(&body, "providerId").unwrap_or("oidc");
    if !matches!(provider, "oidc" | "keycloak-oidc") {
        return Err(AdminError::BadRequest(format!(
            "Importing a configuration is not supported for {provider}"
        )));
    }
    let config = if let Some(url) = text(&body, "fromUrl") {
        crate::idp::broker::discover(url).await
    } else if let Some(file) = text(&body, "file") {
        let doc: Value = serde_json::from_str(file)
            .map_err(|e| AdminError::BadRequest(format!("file is not JSON: {e}")))?;
        crate::idp::broker::config_from_discovery(&doc)
    } else {
        return Err(AdminError::BadRequest("fromUrl or file is required".into()));
    };
    let config = config.map_err(|e| AdminError::BadRequest(e.to_string()))?;
    Ok(ok(&config))
}

/// `GET /identity-provider/instances/{alias}/reload-keys`: forget the provider's cached
/// JWKS, so the next login fetches its keys afresh. Answers `true`, as Keycloak does.
pub(super) fn reload_idp_keys(cx: &Cx) -> Result<Response, AdminError> {
    let realm = idp_realm(cx, Permission::ManageIdentityProviders)?;
    let idp = cx
        .app
        .store
        .read()?
        .object(&realm.id, IDP, &cx.path.id)?
        .ok_or_else(idp_missing)?;
    if let Some(url) = idp.pointer("/config/jwksUrl").and_then(Value::as_str) {
        crate::idp::broker::forget_keys(url);
    }
    Ok(ok(&json!(true)))
}

/// `GET /identity-provider/instances/{alias}/mapper-types`
pub(super) fn idp_mapper_types(cx: &Cx) -> Result<Response, AdminError> {
    idp_realm(cx, Permission::ViewIdentityProviders)?;
    Ok(ok(&crate::idp::broker::mappers::types()))
}

/// `GET /identity-provider/providers/{id}`: what Keycloak's console reads of a provider type.
pub(super) fn idp_provider_type(cx: &Cx) -> Result<Response, AdminError> {
    cx.realm(Permission::ViewIdentityProviders)?;
    let id = cx.path.id.as_str();
    if !IDP_TYPES.contains(&id) {
        return Err(AdminError::NotFound("Could not find provider".into()));
    }
    let name = match id {
        "oidc" => "OpenID Connect v1.0",
        "keycloak-oidc" => "Keycloak OpenID Connect",
        "google" => "Google",
        "github" => "GitHub",
        "gitlab" => "GitLab",
        "microsoft" => "Microsoft",
        "facebook" => "Facebook",
        "linkedin-openid-connect" => "LinkedIn",
        other => other,
    };
    Ok(ok(&json!({"id": id, "name": name})))
}

/// `GET /identity-provider/instances/{alias}/mappers/{mapper}`
pub(super) fn idp_mapper(cx: &Cx) -> Result<Response, AdminError> {
    let realm = idp_realm(cx, Permission::ViewIdentityProviders)?;
    let m = cx
        .app
        .store
        .read()?
        .object(&realm.id, IDP_MAPPER, &cx.path.mapper)?
        .filter(|m| m["identityProviderAlias"] == cx.path.id.as_str())
        .ok_or_else(mapper_missing)?;
    Ok(ok(&m))
}

/// `PUT /identity-provider/instances/{alias}/mappers/{mapper}`
pub(super) fn update_idp_mapper(cx: &Cx) -> Result<Response, AdminError> {
    let realm = idp_realm(cx, Permission::ManageIdentityProviders)?;
    let mut m = idp_mapper_body(cx)?;
    m["id"] = cx.path.mapper.clone().into();
    cx.app.store.write(|w| {
        w.object(&realm.id, IDP_MAPPER, &cx.path.mapper)?
            .filter(|m| m["identityProviderAlias"] == cx.path.id.as_str())
            .ok_or_else(mapper_missing)?;
        check_idp_mapper(cx, w, &realm, &m)?;
        w.put_object(&realm.id, IDP_MAPPER, &cx.path.mapper, &m)
            .map_err(AdminError::from)
    })?;
    Ok(no_content())
}

/// `DELETE /identity-provider/instances/{alias}/mappers/{mapper}`
pub(super) fn delete_idp_mapper(cx: &Cx) -> Result<Response, AdminError> {
    let realm = idp_realm(cx, Permission::ManageIdentityProviders)?;
    let gone = cx.app.store.write(|w| {
        let mine = w
            .object(&realm.id, IDP_MAPPER, &cx.path.mapper)?
            .is_some_and(|m| m["identityProviderAlias"] == cx.path.id.as_str());
        if !mine {
            return Ok(false);
        }
        w.delete_object(&realm.id, IDP_MAPPER, &cx.path.mapper)
    })?;
    deleted(gone, "Model not found")
}

/// `GET /components?type=&parent=&name=`
pub(super) fn components(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ViewRealm)?;
    let (kind, parent, name) = (cx.query("type"), cx.query("parent"), cx.query("name"));
    let list: Vec<Value> = cx
        .app
        .store
        .read()?
        .objects(&realm.id, COMPONENT)?
        .into_iter()
        .filter(|c| kind.as_deref().is_none_or(|k| c["providerType"] == k))
        .filter(|c| parent.as_deref().is_none_or(|p| c["parentId"] == p))
        .filter(|c| name.as_deref().is_none_or(|n| c["name"] == n))
        .map(masked)
        .collect();
    Ok(ok(&Value::Array(list)))
}

/// `POST /components`
pub(super) fn create_component(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageRealm)?;
    let mut c =
        validate_component(cx.json_object()?, &realm, true).map_err(AdminError::BadRequest)?;
    let id = text(&c, "id").map(String::from).unwrap_or_else(random_id);
    c["id"] = id.clone().into();
    // An LDAP provider comes with Keycloak's default mappers, as its sub-components.
    let mappers = if c["providerType"] == STORAGE_PROVIDER && c["providerId"] == "ldap" {
        crate::idp::ldap::default_mappers(&c)
    } else {
        Vec::new()
    };
    cx.app
        .store
        .write(|w| {
            w.put_object(&realm.id, COMPONENT, &id, &c)?;
            for mut m in mappers {
                let mid = random_id();
                m["id"] = mid.clone().into();
                w.put_object(&realm.id, COMPONENT, &mid, &m)?;
            }
            Ok::<_, crate::store::StoreError>(())
        })
        .map_err(AdminError::from)?;
    Ok(cx.created(&id))
}

/// `GET /components/{id}/sub-component-types?type=...`: the mapper types an LDAP provider
/// offers (Keycloak's `ComponentTypeRepresentation`s); none for other components.
pub(super) fn sub_component_types(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ViewRealm)?;
    let c = cx
        .app
        .store
        .read()?
        .object(&realm.id, COMPONENT, &cx.path.id)?
        .ok_or_else(component_missing)?;
    let ldap = c["providerType"] == STORAGE_PROVIDER && c["providerId"] == "ldap";
    let wanted = cx.query("type");
    let list: Vec<Value> = crate::idp::ldap::mappers::MAPPER_TYPES
        .iter()
        .filter(|_| {
            ldap && wanted
                .as_deref()
                .is_none_or(|t| t == crate::idp::ldap::MAPPER_TYPE)
        })
        .map(|(id, help)| json!({"id": id, "helpText": help, "properties": [], "metadata": {}}))
        .collect();
    Ok(ok(&Value::Array(list)))
}

/// `GET /components/{id}`
pub(super) fn component(cx: &Cx) -> Result<Response, AdminError> {
    let id = cx.path.id.clone();
    let realm = cx.realm(Permission::ViewRealm)?;
    let c = cx
        .app
        .store
        .read()?
        .object(&realm.id, COMPONENT, &id)?
        .ok_or_else(component_missing)?;
    Ok(ok(&masked(c)))
}

/// `PUT /components/{id}`
pub(super) fn update_component(cx: &Cx) -> Result<Response, AdminError> {
    let id = cx.path.id.clone();
    let realm = cx.realm(Permission::ManageRealm)?;
    let body = cx.json_object()?;
    cx.app.store.write(|w| {
        let old = w
            .object(&realm.id, COMPONENT, &id)?
            .ok_or_else(component_missing)?;
        let mut c = validate_component(
            keep_secrets(body, Some(&old)).map_err(AdminError::BadRequest)?,
            &realm,
            false,
        )
        .map_err(AdminError::BadRequest)?;
        c["id"] = id.clone().into();
        w.put_object(&realm.id, COMPONENT, &id, &c)
            .map_err(AdminError::from)
    })?;
    Ok(no_content())
}

/// `DELETE /components/{id}`
pub(super) fn delete_component(cx: &Cx) -> Result<Response, AdminError> {
    let id = cx.path.id.clone();
    let realm = cx.realm(Permission::ManageRealm)?;
    let deleted = cx.app.store.write(|w| {
        if !w.delete_object(&realm.id, COMPONENT, &id)? {
            return Ok(false);
        }
        // Its sub-components (an LDAP provider's mappers) go with it.
        for (child, c) in w.object_ids(&realm.id, COMPONENT)? {
            if c["parentId"] == id.as_str() {
                w.delete_object(&realm.id, COMPONENT, &child)?;
            }
        }
        Ok::<_, crate::store::StoreError>(true)
    })?;
    if deleted {
        // An LDAP provider's kept connections close.
        crate::idp::ldap::forget(&realm.id, &id);
        Ok(no_content())
    } else {
        Err(component_missing())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_provider_validation() {
        let ok = validate_idp(json!({"alias": "kc", "providerId": "oidc", "config": {"clientId": "c", "authorizationUrl": "https://a/auth", "tokenUrl": "https://a/token"}})).unwrap();
        assert_eq!(ok["enabled"], true);
        assert!(validate_idp(
            json!({"alias": "kc", "providerId": "oidc", "config": {"clientId": "c"}})
        )
        .is_err());
        assert!(validate_idp(
            json!({"alias": "g", "providerId": "saml", "config": {"clientId": "c"}})
        )
        .is_err());
        assert!(validate_idp(json!({"alias": "g", "providerId": "google", "config": {"clientId": "c", "syncMode": "SOMETIMES"}})).is_err());
        assert!(validate_idp(json!({"providerId": "google"})).is_err());
    }

    #[test]
    fn ldap_component_validation_and_masking() {
        let realm = RealmRecord {
            id: "r".into(),
            ..Default::default()
        };
        let base = json!({"name": "ldap", "providerId": "ldap", "providerType": STORAGE_PROVIDER, "config": {
            "connectionUrl": ["ldap://localhost:389"], "usersDn": ["ou=people,dc=example,dc=org"],
            "bindDn": ["cn=admin,dc=example,dc=org"], "bindCredential": ["secret"], "vendor": ["other"],
            "editMode": ["READ_ONLY"], "usernameLDAPAttribute": ["uid"], "rdnLDAPAttribute": ["uid"],
            "uuidLDAPAttribute": ["entryUUID"], "userObjectClasses": ["inetOrgPerson"]}});
        let c = validate_component(base.clone(), &realm, true).unwrap();
        assert_eq!(c["parentId"], "r");
        assert_eq!(
            masked(c.clone())["config"]["bindCredential"],
            json!([SECRET_MASK])
        );
        let mut bad = base.clone();
        bad["config"]["connectionUrl"] = json!(["http://x"]);
        assert!(validate_component(bad, &realm, true).is_err());
        let mut bad = base.clone();
        bad["config"]["vendor"] = json!(["novell"]);
        assert!(validate_component(bad, &realm, true).is_err());
        let mut bad = base;
        bad["config"]["usersDn"] = json!(7);
        assert!(validate_component(bad, &realm, true).is_err());
        // The seed's form fields alone, as plain strings: the vendor's defaults fill the rest.
        let seed = validate_component(
            json!({"name": "ldap", "providerId": "ldap", "providerType": STORAGE_PROVIDER, "config": {
                "connectionUrl": "ldap://ldap.example.com", "bindDn": "cn=admin,dc=example,dc=com",
                "bindCredential": "adminpass", "usersDn": "ou=users,dc=example,dc=com"}}),
            &realm, true,
        )
        .unwrap();
        assert_eq!(
            seed["config"]["usersDn"],
            json!(["ou=users,dc=example,dc=com"])
        );
        assert_eq!(seed["config"]["usernameLDAPAttribute"], json!(["uid"]));
        assert_eq!(seed["config"]["uuidLDAPAttribute"], json!(["entryUUID"]));
        assert_eq!(seed["config"]["editMode"], json!(["READ_ONLY"]));
        assert_eq!(seed["config"]["authType"], json!(["simple"]));
        let ad = validate_component(
            json!({"name": "ad", "providerId": "ldap", "providerType": STORAGE_PROVIDER, "config": {
                "connectionUrl": ["ldaps://dc.example.com"], "usersDn": ["cn=Users,dc=example,dc=com"],
                "vendor": ["ad"]}}),
            &realm,
            true,
        )
        .unwrap();
        assert_eq!(ad["config"]["uuidLDAPAttribute"], json!(["objectGUID"]));
        assert_eq!(
            ad["config"]["userObjectClasses"],
            json!(["person, organizationalPerson, user"])
        );
        assert_eq!(ad["config"]["authType"], json!(["none"]));
        let mut masked = c.clone();
        masked["config"]["bindCredential"] = json!([SECRET_MASK]);
        let kept = keep_secrets(masked.clone(), Some(&c)).unwrap();
        assert_eq!(kept["config"]["bindCredential"], json!(["secret"]));
        // Pointed at another server, the mask does not take the stored credential along.
        let mut elsewhere = masked.clone();
        elsewhere["config"]["connectionUrl"] = json!(["ldap://elsewhere.example"]);
        assert!(keep_secrets(elsewhere, Some(&c)).is_err());
        // Nor over a connection that no longer starts TLS, nor with another auth type.
        for (key, value) in [("startTls", "false"), ("authType", "none")] {
            let mut changed = masked.clone();
            changed["config"][key] = json!([value]);
            assert_ne!(changed["config"][key], c["config"][key], "{key}");
            assert!(keep_secrets(changed, Some(&c)).is_err(), "{key}");
        }
    }
}
