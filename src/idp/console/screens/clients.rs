//! Clients: list and search, "Create client" (general settings, capability config, login
//! settings), Settings, Credentials with "Regenerate", Client scopes, delete; the realm's
//! client scopes list. Roles and service-account roles are in `roles.rs`, sessions in
//! `sessions.rs`.

use serde_json::{json, Value};

use super::super::form::{self, field, Errors, Field, Kind, Submitted};
use super::super::{Console, Outcome};
use super::users::refusal_of_input;
use super::{button_cell, cell, seg, tab, text, yes_no, FormPage, ListPage, Tab};

fn client_tabs(id: &str, service_account: bool) -> Vec<Tab> {
    let id = seg(id);
    let mut tabs = vec![
        tab("settings", format!("clients/{id}/settings")),
        tab("credentials", format!("clients/{id}/credentials")),
        tab("roles", format!("clients/{id}/roles")),
        tab("clientScopes", format!("clients/{id}/client-scopes")),
        tab("mappers", format!("clients/{id}/mappers")),
        tab("sessions", format!("clients/{id}/sessions")),
    ];
    if service_account {
        tabs.push(tab(
            "serviceAccountRoles",
            format!("clients/{id}/service-account-roles"),
        ));
    }
    tabs
}

/// The client and the tabs it has (credentials only for confidential clients).
pub(super) async fn client_and_tabs(
    cx: &Console<'_>,
    id: &str,
) -> Result<(Value, Vec<Tab>), super::super::Trouble> {
    let client = cx.api.get(&cx.rest(&["clients", id])).await?;
    let mut tabs = client_tabs(
        id,
        client["serviceAccountsEnabled"].as_bool().unwrap_or(false),
    );
    if client["publicClient"].as_bool().unwrap_or(false)
        || client["bearerOnly"].as_bool().unwrap_or(false)
    {
        tabs.retain(|t| t.label != "credentials");
    }
    Ok((client, tabs))
}

pub(super) async fn list(cx: &Console<'_>) -> Outcome {
    let search = cx.query("search").unwrap_or_default();
    let (first, max) = super::paging(cx);
    let searching = if search.is_empty() { "" } else { "true" };
    let query = super::page_query(first, max, &[("clientId", &search), ("search", searching)]);
    let clients = cx
        .api
        .get(&format!("{}?{}", cx.rest(&["clients"]), query))
        .await?;
    let clients = clients.as_array().cloned().unwrap_or_default();
    let more = clients.len() > max;
    let mut page = ListPage::new(
        "clients",
        cx.msg("clients"),
        &["clientId", "name", "type", "homeUrl"],
    );
    page.rows = clients
        .iter()
        .take(max)
        .map(|c| {
            vec![
                cell(
                    text(c, "clientId"),
                    Some(cx.url(&format!("clients/{}/settings", seg(&text(c, "id"))))),
                ),
                cell(text(c, "name"), None),
                cell(
                    if text(c, "protocol") == "saml" {
                        "SAML"
                    } else {
                        "OpenID Connect"
                    },
                    None,
                ),
                cell(text(c, "baseUrl"), None),
            ]
        })
        .collect();
    page.search = Some(search);
    page.create = Some(("createClient", "clients/add-client".into()));
    page.paging = Some((first, max, more));
    page.render(cx).await
}

const PROTOCOLS: &[(&str, &str)] = &[("openid-connect", "openIdConnect"), ("saml", "saml")];

const GENERAL: &[Field] = &[
    field("protocol", "clientType", Kind::Select(PROTOCOLS)),
    field("clientId", "clientId", Kind::Text).required(),
    field("name", "name", Kind::Text),
    field("description", "description", Kind::Text),
    field("enabled", "enabled", Kind::Switch),
];

const CAPABILITY: &[Field] = &[
    field("clientAuthentication", "clientAuthentication", Kind::Switch)
        .help("clientAuthenticationHelp"),
    field("standardFlowEnabled", "standardFlow", Kind::Switch),
    field(
        "directAccessGrantsEnabled",
        "directAccessGrants",
        Kind::Switch,
    ),
    field("implicitFlowEnabled", "implicitFlow", Kind::Switch),
    field(
        "serviceAccountsEnabled",
        "serviceAccountsRoles",
        Kind::Switch,
    ),
    field(
        "attributes/oauth2.device.authorization.grant.enabled",
        "deviceGrant",
        Kind::Switch,
    ),
    field(
        "attributes/pkce.code.challenge.method",
        "pkceMethod",
        Kind::Select(PKCE),
    ),
];

const PKCE: &[(&str, &str)] = &[("", "pkceNone"), ("S256", "S256"), ("plain", "plain")];

const LOGIN: &[Field] = &[
    field("rootUrl", "rootUrl", Kind::Url),
    field("baseUrl", "homeUrl", Kind::Url),
    field("redirectUris", "validRedirectUris", Kind::Lines).help("oneUriPerLine"),
    field(
        "attributes/post.logout.redirect.uris",
        "validPostLogoutRedirectUris",
        Kind::Lines,
    )
    .help("oneUriPerLine"),
    field("webOrigins", "webOrigins", Kind::Lines).help("webOriginsHelp"),
];

const HINTS: &[(&str, &str)] = &[
    ("clientid", "clientId"),
    ("client id", "clientId"),
    ("redirect", "redirectUris"),
    ("root", "rootUrl"),
    ("base", "baseUrl"),
    ("origin", "webOrigins"),
    ("protocol", "protocol"),
];

fn sections() -> [super::Section<'static>; 3] {
    [
        ("generalSettings", GENERAL),
        ("capabilityConfig", CAPABILITY),
        ("loginSettings", LOGIN),
    ]
}

/// The client's representation as the form shows it ("Client authentication" is the
/// opposite of `publicClient`).
fn as_form(client: &Value) -> Value {
    let mut v = client.clone();
    v["clientAuthentication"] = json!(!client["publicClient"].as_bool().unwrap_or(true));
    v
}

/// Read the form into `target`.
fn take_form(cx: &Console<'_>, target: &mut Value) -> Result<(), Errors> {
    let fields: Vec<Field> = sections()
        .iter()
        .flat_map(|(_, f)| f.iter().copied())
        .collect();
    form::apply(&fields, &cx.form, target, &cx.msg_fn())?;
    if let Value::Object(map) = target {
        let confidential = map
            .remove("clientAuthentication")
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        map.insert("publicClient".into(), json!(!confidential));
    }
    Ok(())
}

fn input_errors(f: &super::super::api::Failure) -> Errors {
    let mut errors = Errors::new();
    let name = form::field_of(&f.message, HINTS).unwrap_or("clientId");
    errors.insert(name.into(), f.message.clone());
    errors
}

/// "Create client".
pub(super) async fn add_form(
    cx: &Console<'_>,
    submitted: Option<&Submitted>,
    errors: Errors,
) -> Outcome {
    let value = json!({
        "protocol": "openid-connect",
        "enabled": true,
        "clientAuthentication": false,
        "standardFlowEnabled": true,
        "directAccessGrantsEnabled": true,
    });
    let sections = sections();
    let mut page = FormPage::new("clients", cx.msg("createClient"), &sections, &value);
    page.submitted = submitted;
    page.errors = errors;
    page.action = "clients/add-client".into();
    page.submit = "save";
    page.render(cx).await
}

pub(super) async fn add(cx: &Console<'_>) -> Outcome {
    let mut body = json!({});
    if let Err(errors) = take_form(cx, &mut body) {
        return add_form(cx, Some(&cx.form), errors).await;
    }
    match cx.api.post(&cx.rest(&["clients"]), body).await {
        Ok(answer) => {
            let id = answer.created_id().unwrap_or_default();
            cx.done("clientCreated", &format!("clients/{}/settings", seg(&id)))
        }
        Err(f) if refusal_of_input(&f) => add_form(cx, Some(&cx.form), input_errors(&f)).await,
        Err(f) => Err(f.into()),
    }
}

pub(super) async fn settings(
    cx: &Console<'_>,
    id: &str,
    submitted: Option<&Submitted>,
    errors: Errors,
) -> Outcome {
    let (client, tabs) = client_and_tabs(cx, id).await?;
    let value = as_form(&client);
    let current = format!("clients/{}/settings", seg(id));
    let sections = sections();
    let mut page = FormPage::new("clients", text(&client, "clientId"), &sections, &value);
    page.tabs = &tabs;
    page.current_tab = &current;
    page.submitted = submitted;
    page.errors = errors;
    page.action = current.clone();
    page.actions
        .push(("delete", format!("clients/{}/delete", seg(id)), "danger"));
    page.render(cx).await
}

pub(super) async fn save(cx: &Console<'_>, id: &str) -> Outcome {
    let mut client = cx.api.get(&cx.rest(&["clients", id])).await?;
    if let Err(errors) = take_form(cx, &mut client) {
        return settings(cx, id, Some(&cx.form), errors).await;
    }
    match cx.api.put(&cx.rest(&["clients", id]), client).await {
        Ok(_) => cx.done("clientSaved", &format!("clients/{}/settings", seg(id))),
        Err(f) if refusal_of_input(&f) => settings(cx, id, Some(&cx.form), input_errors(&f)).await,
        Err(f) => Err(f.into()),
    }
}

/// Credentials: the client authenticator and its secret, with "Regenerate".
pub(super) async fn credentials(cx: &Console<'_>, id: &str) -> Outcome {
    let (client, tabs) = client_and_tabs(cx, id).await?;
    let secret = cx
        .api
        .get(&cx.rest(&["clients", id, "client-secret"]))
        .await?;
    let current = format!("clients/{}/credentials", seg(id));
    let name = text(&client, "clientId");
    cx.page(
        http::StatusCode::OK,
        "admin/client-credentials.html",
        "clients",
        &name,
        json!({
            "heading": name,
            "tabs": super::tabs_view(cx, &tabs, &current),
            "authenticator": text(&client, "clientAuthenticatorType"),
            "secret": text(&secret, "value"),
            "action": cx.url(&current),
        }),
    )
    .await
}

pub(super) async fn regenerate_secret(cx: &Console<'_>, id: &str) -> Outcome {
    cx.api
        .post(&cx.rest(&["clients", id, "client-secret"]), Value::Null)
        .await?;
    cx.done(
        "secretRegenerated",
        &format!("clients/{}/credentials", seg(id)),
    )
}

/// The client's default and optional client scopes.
pub(super) async fn scopes(cx: &Console<'_>, id: &str) -> Outcome {
    let (client, tabs) = client_and_tabs(cx, id).await?;
    let default = cx
        .api
        .get(&cx.rest(&["clients", id, "default-client-scopes"]))
        .await?;
    let optional = cx
        .api
        .get(&cx.rest(&["clients", id, "optional-client-scopes"]))
        .await?;
    let current = format!("clients/{}/client-scopes", seg(id));
    let mut page = ListPage::new(
        "clients",
        text(&client, "clientId"),
        &["assignedClientScope", "assignedType"],
    );
    page.tabs = &tabs;
    page.current_tab = &current;
    for (list, kind) in [(&default, "default"), (&optional, "optional")] {
        for s in list.as_array().into_iter().flatten() {
            page.rows
                .push(vec![cell(text(s, "name"), None), cell(cx.msg(kind), None)]);
        }
    }
    page.render(cx).await
}

pub(super) async fn delete(cx: &Console<'_>, id: &str) -> Outcome {
    cx.api.delete(&cx.rest(&["clients", id]), None).await?;
    cx.done("clientDeleted", "clients")
}

/// The realm's client scopes.
pub(super) async fn scope_list(cx: &Console<'_>) -> Outcome {
    let scopes = cx.api.get(&cx.rest(&["client-scopes"])).await?;
    let defaults = cx
        .api
        .get(&cx.rest(&["default-default-client-scopes"]))
        .await
        .unwrap_or(Value::Null);
    let optionals = cx
        .api
        .get(&cx.rest(&["default-optional-client-scopes"]))
        .await
        .unwrap_or(Value::Null);
    let has = |list: &Value, id: &str| {
        list.as_array()
            .into_iter()
            .flatten()
            .any(|s| text(s, "id") == id)
    };
    let mut page = ListPage::new(
        "client-scopes",
        cx.msg("clientScopes"),
        &["name", "assignedType", "protocol", "includeInTokenScope"],
    );
    page.rows = scopes
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            let id = text(s, "id");
            let kind = if has(&defaults, &id) {
                cx.msg("default")
            } else if has(&optionals, &id) {
                cx.msg("optional")
            } else {
                cx.msg("none")
            };
            vec![
                cell(text(s, "name"), None),
                cell(kind, None),
                cell(text(s, "protocol"), None),
                cell(
                    yes_no(
                        cx,
                        s["attributes"]["include.in.token.scope"].as_str() != Some("false"),
                    ),
                    None,
                ),
            ]
        })
        .collect();
    page.render(cx).await
}

const MAPPER_TYPES: &[(&str, &str)] = &[
    ("oidc-usermodel-attribute-mapper", "mapperUserAttribute"),
    ("oidc-hardcoded-claim-mapper", "mapperHardcodedClaim"),
    ("oidc-audience-mapper", "mapperAudience"),
    ("oidc-usermodel-realm-role-mapper", "mapperUserRealmRole"),
    ("oidc-group-membership-mapper", "mapperGroupMembership"),
];

const JSON_TYPES: &[(&str, &str)] = &[
    ("String", "String"),
    ("long", "long"),
    ("int", "int"),
    ("boolean", "boolean"),
    ("JSON", "JSON"),
];

const MAPPER: &[Field] = &[
    field("name", "name", Kind::Text).required(),
    field("protocolMapper", "mapperType", Kind::Select(MAPPER_TYPES)),
    field("config/user.attribute", "userAttribute", Kind::Text).help("mapperUserAttributeHelp"),
    field("config/claim.name", "tokenClaimName", Kind::Text),
    field("config/claim.value", "claimValue", Kind::Text).help("mapperClaimValueHelp"),
    field(
        "config/included.client.audience",
        "includedClientAudience",
        Kind::Text,
    )
    .help("mapperAudienceHelp"),
    field(
        "config/jsonType.label",
        "claimJsonType",
        Kind::Select(JSON_TYPES),
    ),
    field("config/multivalued", "multivalued", Kind::Switch),
    field("config/full.path", "fullGroupPath", Kind::Switch),
    field("config/id.token.claim", "addToIdToken", Kind::Switch),
    field(
        "config/access.token.claim",
        "addToAccessToken",
        Kind::Switch,
    ),
    field("config/userinfo.token.claim", "addToUserinfo", Kind::Switch),
];

/// A client's protocol mappers, with "Add mapper" (by configuration).
pub(super) async fn mappers(cx: &Console<'_>, id: &str, errors: Errors) -> Outcome {
    let (client, tabs) = client_and_tabs(cx, id).await?;
    let mappers = cx
        .api
        .get(&cx.rest(&["clients", id, "protocol-mappers", "models"]))
        .await?;
    let current = format!("clients/{}/mappers", seg(id));
    let mut page = ListPage::new(
        "clients",
        text(&client, "clientId"),
        &["name", "type", "actions"],
    );
    page.tabs = &tabs;
    page.current_tab = &current;
    page.rows = mappers
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            vec![
                cell(text(m, "name"), None),
                cell(text(m, "protocolMapper"), None),
                button_cell(
                    cx,
                    "delete",
                    &format!("clients/{}/mappers/{}/delete", seg(id), seg(&text(m, "id"))),
                ),
            ]
        })
        .collect();
    let msg = cx.msg_fn();
    let defaults = json!({"config": {
        "jsonType.label": "String", "id.token.claim": "true", "access.token.claim": "true",
        "userinfo.token.claim": "true",
    }});
    page.extra = json!({
        "title": cx.msg("addMapper"),
        "action": cx.url(&current),
        "fields": form::view(MAPPER, &defaults, (!errors.is_empty()).then_some(&cx.form), &errors, &msg),
        "submit": cx.msg("add"),
    });
    page.render(cx).await
}

pub(super) async fn add_mapper(cx: &Console<'_>, id: &str) -> Outcome {
    let mut body = json!({"protocol": "openid-connect", "config": {}});
    if let Err(errors) = form::apply(MAPPER, &cx.form, &mut body, &cx.msg_fn()) {
        return mappers(cx, id, errors).await;
    }
    // Settings the chosen type does not use stay unset.
    if let Some(config) = body["config"].as_object_mut() {
        config.retain(|_, v| v.as_str() != Some(""));
    }
    match cx
        .api
        .post(
            &cx.rest(&["clients", id, "protocol-mappers", "models"]),
            body,
        )
        .await
    {
        Ok(_) => cx.done("mapperCreated", &format!("clients/{}/mappers", seg(id))),
        Err(f) if refusal_of_input(&f) => {
            let mut errors = Errors::new();
            let name = form::field_of(
                &f.message,
                &[
                    ("claim", "config/claim.name"),
                    ("attribute", "config/user.attribute"),
                    ("audience", "config/included.client.audience"),
                ],
            )
            .unwrap_or("name");
            errors.insert(name.into(), f.message);
            mappers(cx, id, errors).await
        }
        Err(f) => Err(f.into()),
    }
}

pub(super) async fn delete_mapper(cx: &Console<'_>, id: &str, mapper: &str) -> Outcome {
    cx.api
        .delete(
            &cx.rest(&["clients", id, "protocol-mappers", "models", mapper]),
            None,
        )
        .await?;
    cx.done("mapperDeleted", &format!("clients/{}/mappers", seg(id)))
}
