//! User federation: the realm's LDAP providers, "Add Ldap providers" with the connection
//! and search settings, "Test connection", "Test authentication", sync now (changed or
//! all users) with its result, delete. LDAP providers are `components` whose config
//! values are lists of strings; the form shows each as one value.

use serde_json::{json, Map, Value};

use super::super::form::{self, field, Errors, Field, Kind, Submitted};
use super::super::{Console, Outcome};
use super::users::refusal_of_input;
use super::{cell, seg, text, yes_no, FormPage, ListPage};

const STORAGE: &str = "org.keycloak.storage.UserStorageProvider";

const VENDORS: &[(&str, &str)] = &[
    ("other", "vendorOther"),
    ("ad", "vendorAd"),
    ("rhds", "vendorRhds"),
    ("tivoli", "vendorTivoli"),
    ("edirectory", "vendorEdirectory"),
];
const EDIT_MODES: &[(&str, &str)] = &[
    ("READ_ONLY", "READ_ONLY"),
    ("WRITABLE", "WRITABLE"),
    ("UNSYNCED", "UNSYNCED"),
];
const AUTH_TYPES: &[(&str, &str)] = &[("simple", "simple"), ("none", "none")];
const SCOPES: &[(&str, &str)] = &[("1", "searchScopeOne"), ("2", "searchScopeSubtree")];

const GENERAL: &[Field] = &[
    field("name", "uiDisplayName", Kind::Text).required(),
    field("config/vendor", "vendor", Kind::Select(VENDORS)),
];

const CONNECTION: &[Field] = &[
    field("config/connectionUrl", "connectionUrl", Kind::Text).required(),
    field("config/startTls", "enableStartTls", Kind::Switch),
    field(
        "config/connectionTimeout",
        "connectionTimeout",
        Kind::Number,
    ),
    field("config/authType", "bindType", Kind::Select(AUTH_TYPES)),
    field("config/bindDn", "bindDn", Kind::Text),
    field("config/bindCredential", "bindCredential", Kind::Password).help("secretKeptHelp"),
];

const SEARCHING: &[Field] = &[
    field("config/editMode", "editMode", Kind::Select(EDIT_MODES)),
    field("config/usersDn", "usersDn", Kind::Text).required(),
    field(
        "config/usernameLDAPAttribute",
        "usernameLdapAttribute",
        Kind::Text,
    )
    .required(),
    field("config/rdnLDAPAttribute", "rdnLdapAttribute", Kind::Text).required(),
    field("config/uuidLDAPAttribute", "uuidLdapAttribute", Kind::Text).required(),
    field("config/userObjectClasses", "userObjectClasses", Kind::Text).required(),
    field(
        "config/customUserSearchFilter",
        "userLdapFilter",
        Kind::Text,
    ),
    field("config/searchScope", "searchScope", Kind::Select(SCOPES)),
    field("config/pagination", "pagination", Kind::Switch),
];

const SYNC: &[Field] = &[
    field("config/importEnabled", "importUsers", Kind::Switch),
    field(
        "config/syncRegistrations",
        "syncRegistrations",
        Kind::Switch,
    ),
    field("config/fullSyncPeriod", "fullSyncPeriod", Kind::Number).help("periodicSyncHelp"),
    field(
        "config/changedSyncPeriod",
        "changedSyncPeriod",
        Kind::Number,
    )
    .help("periodicSyncHelp"),
    field("config/enabled", "enabled", Kind::Switch),
];

fn sections() -> [super::Section<'static>; 4] {
    [
        ("generalOptions", GENERAL),
        ("connectionAndAuthentication", CONNECTION),
        ("ldapSearchingAndUpdating", SEARCHING),
        ("synchronizationSettings", SYNC),
    ]
}

fn all_fields() -> Vec<Field> {
    sections()
        .iter()
        .flat_map(|(_, f)| f.iter().copied())
        .collect()
}

/// Component config (`{k: [v]}`) as one value per key.
fn flatten_config(component: &mut Value) {
    if let Some(config) = component.get_mut("config").and_then(Value::as_object_mut) {
        for v in config.values_mut() {
            if let Value::Array(a) = v {
                *v = a.first().cloned().unwrap_or(Value::String(String::new()));
            }
        }
    }
}

/// One value per key back to component config lists (empty values dropped).
fn wrap_config(component: &mut Value) {
    if let Some(config) = component.get_mut("config").and_then(Value::as_object_mut) {
        let wrapped: Map<String, Value> = std::mem::take(config)
            .into_iter()
            .filter_map(|(k, v)| match v {
                Value::String(s) if s.is_empty() => None,
                Value::Array(a) => Some((k, Value::Array(a))),
                other => Some((k, json!([other]))),
            })
            .collect();
        *config = wrapped;
    }
}

pub(super) async fn list(cx: &Console<'_>) -> Outcome {
    let components = cx
        .api
        .get(&format!("{}?type={STORAGE}", cx.rest(&["components"])))
        .await?;
    let mut page = ListPage::new(
        "user-federation",
        cx.msg("userFederation"),
        &["name", "type", "enabled"],
    );
    page.rows = components
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let enabled = c["config"]["enabled"][0].as_str() != Some("false");
            vec![
                cell(
                    text(c, "name"),
                    Some(cx.url(&format!("user-federation/ldap/{}", seg(&text(c, "id"))))),
                ),
                cell(text(c, "providerId"), None),
                cell(yes_no(cx, enabled), None),
            ]
        })
        .collect();
    page.extra = json!({
        "links_title": cx.msg("addProvider"),
        "links": [{"label": cx.msg("addLdapProviders"), "href": cx.url("user-federation/ldap/new")}],
    });
    page.render(cx).await
}

fn defaults() -> Value {
    json!({
        "name": "ldap",
        "config": {
            "vendor": "other", "editMode": "READ_ONLY", "authType": "simple",
            "usernameLDAPAttribute": "uid", "rdnLDAPAttribute": "uid",
            "uuidLDAPAttribute": "entryUUID", "userObjectClasses": "inetOrgPerson, organizationalPerson",
            "searchScope": "1", "pagination": "true", "importEnabled": "true",
            "syncRegistrations": "false", "fullSyncPeriod": "-1", "changedSyncPeriod": "-1",
            "enabled": "true", "connectionTimeout": "",
        }
    })
}

/// The settings of a provider (`id`), or of a new one.
pub(super) async fn settings(
    cx: &Console<'_>,
    id: Option<&str>,
    submitted: Option<&Submitted>,
    errors: Errors,
) -> Outcome {
    let value = match id {
        Some(id) => {
            let mut c = cx.api.get(&cx.rest(&["components", id])).await?;
            flatten_config(&mut c);
            c
        }
        None => defaults(),
    };
    let tail = format!("user-federation/ldap/{}", seg(id.unwrap_or("new")));
    let sections = sections();
    let heading = match id {
        Some(_) => text(&value, "name"),
        None => cx.msg("addLdapProviders"),
    };
    let mut page = FormPage::new("user-federation", heading, &sections, &value);
    page.submitted = submitted;
    page.errors = errors;
    page.action = tail.clone();
    if let Some(id) = id {
        for (label, action) in [
            ("testConnection", "test?action=testConnection"),
            ("testAuthentication", "test?action=testAuthentication"),
            ("syncChangedUsers", "sync?action=triggerChangedUsersSync"),
            ("syncAllUsers", "sync?action=triggerFullSync"),
        ] {
            page.actions.push((
                label,
                format!("user-federation/ldap/{}/{action}", seg(id)),
                "secondary",
            ));
        }
        page.actions.push((
            "delete",
            format!("user-federation/ldap/{}/delete", seg(id)),
            "danger",
        ));
    }
    page.render(cx).await
}

pub(super) async fn save(cx: &Console<'_>, id: &str) -> Outcome {
    let new = id == "new";
    let mut component = if new {
        let realm = cx.api.get(&cx.rest(&[])).await?;
        json!({"providerId": "ldap", "providerType": STORAGE, "parentId": text(&realm, "id"), "config": {}})
    } else {
        cx.api.get(&cx.rest(&["components", id])).await?
    };
    // The form's fields, read into a flat copy; only those keys change (other settings,
    // and every value of multi-valued ones, stay as stored).
    let mut flat = component.clone();
    flatten_config(&mut flat);
    if let Err(errors) = form::apply(&all_fields(), &cx.form, &mut flat, &cx.msg_fn()) {
        return settings(cx, (!new).then_some(id), Some(&cx.form), errors).await;
    }
    wrap_config(&mut flat);
    component["name"] = flat["name"].clone();
    if !component["config"].is_object() {
        component["config"] = json!({});
    }
    for f in all_fields() {
        let Some(key) = f.path.strip_prefix("config/") else {
            continue;
        };
        match flat["config"].get(key) {
            Some(v) => component["config"][key] = v.clone(),
            None => {
                if let Some(config) = component["config"].as_object_mut() {
                    config.remove(key);
                }
            }
        }
    }
    let outcome = if new {
        cx.api.post(&cx.rest(&["components"]), component).await
    } else {
        cx.api.put(&cx.rest(&["components", id]), component).await
    };
    match outcome {
        Ok(answer) => {
            let saved = if new {
                answer.created_id().unwrap_or_default()
            } else {
                id.to_string()
            };
            cx.done(
                "providerSaved",
                &format!("user-federation/ldap/{}", seg(&saved)),
            )
        }
        Err(f) if refusal_of_input(&f) => {
            let mut errors = Errors::new();
            let name = form::field_of(
                &f.message,
                &[
                    ("connection", "config/connectionUrl"),
                    ("users dn", "config/usersDn"),
                    ("usersdn", "config/usersDn"),
                    ("bind", "config/bindDn"),
                    ("username", "config/usernameLDAPAttribute"),
                    ("rdn", "config/rdnLDAPAttribute"),
                    ("uuid", "config/uuidLDAPAttribute"),
                    ("object", "config/userObjectClasses"),
                    ("edit", "config/editMode"),
                ],
            )
            .unwrap_or("name");
            errors.insert(name.into(), f.message);
            settings(cx, (!new).then_some(id), Some(&cx.form), errors).await
        }
        Err(f) => Err(f.into()),
    }
}

/// "Test connection" / "Test authentication" with the stored settings.
pub(super) async fn test(cx: &Console<'_>, id: &str) -> Outcome {
    let action = match cx.query("action").as_deref() {
        Some("testAuthentication") => "testAuthentication",
        _ => "testConnection",
    };
    let mut component = cx.api.get(&cx.rest(&["components", id])).await?;
    flatten_config(&mut component);
    let config = &component["config"];
    let body = json!({
        "action": action,
        "connectionUrl": text(config, "connectionUrl"),
        "bindDn": text(config, "bindDn"),
        "bindCredential": text(config, "bindCredential"),
        "startTls": text(config, "startTls"),
        "connectionTimeout": text(config, "connectionTimeout"),
        "authType": text(config, "authType"),
        "componentId": id,
    });
    match cx.api.post(&cx.rest(&["testLDAPConnection"]), body).await {
        Ok(_) => cx.done(
            if action == "testAuthentication" {
                "authenticationSucceeded"
            } else {
                "connectionSucceeded"
            },
            &format!("user-federation/ldap/{}", seg(id)),
        ),
        Err(f) if refusal_of_input(&f) || f.status.is_server_error() => {
            let message = format!(
                "{}: {}",
                cx.msg(if action == "testAuthentication" {
                    "authenticationFailed"
                } else {
                    "connectionFailed"
                }),
                f.message
            );
            cx.flash_text(message);
            Ok(super::super::see_other(
                &cx.url(&format!("user-federation/ldap/{}", seg(id))),
            ))
        }
        Err(f) => Err(f.into()),
    }
}

/// Sync now; the result (added, updated, removed, failed) is the next page's notice.
pub(super) async fn sync(cx: &Console<'_>, id: &str) -> Outcome {
    let action = match cx.query("action").as_deref() {
        Some("triggerFullSync") => "triggerFullSync",
        _ => "triggerChangedUsersSync",
    };
    let tail = format!("user-federation/ldap/{}", seg(id));
    match cx
        .api
        .post(
            &format!("{}?action={action}", cx.rest(&["user-storage", id, "sync"])),
            Value::Null,
        )
        .await
    {
        Ok(answer) => {
            let r = &answer.body;
            let status = if text(r, "status").is_empty() {
                format!(
                    "{} added, {} updated, {} removed, {} failed",
                    r["added"].as_i64().unwrap_or(0),
                    r["updated"].as_i64().unwrap_or(0),
                    r["removed"].as_i64().unwrap_or(0),
                    r["failed"].as_i64().unwrap_or(0)
                )
            } else {
                text(r, "status")
            };
            cx.flash_text(format!("{}: {status}", cx.msg("syncResult")));
            Ok(super::super::see_other(&cx.url(&tail)))
        }
        Err(f) if refusal_of_input(&f) || f.status.is_server_error() => {
            cx.flash_text(format!("{}: {}", cx.msg("syncFailed"), f.message));
            Ok(super::super::see_other(&cx.url(&tail)))
        }
        Err(f) => Err(f.into()),
    }
}

pub(super) async fn delete(cx: &Console<'_>, id: &str) -> Outcome {
    cx.api.delete(&cx.rest(&["components", id]), None).await?;
    cx.done("providerDeleted", "user-federation")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn component_config_round_trips_through_the_form_shape() {
        let mut c = json!({"config": {"connectionUrl": ["ldap://x"], "startTls": ["false"]}});
        flatten_config(&mut c);
        assert_eq!(c["config"]["connectionUrl"], "ldap://x");
        c["config"]["bindDn"] = json!("");
        wrap_config(&mut c);
        assert_eq!(
            c,
            json!({"config": {"connectionUrl": ["ldap://x"], "startTls": ["false"]}})
        );
    }
}
