//! Identity providers: the list, "Add provider" (Google, GitHub, OpenID Connect v1.0)
//! and each provider's settings (client ID and secret, endpoints, sync mode, store tokens,
//! trust email, first login flow), delete.

use serde_json::{json, Value};

use super::super::form::{self, field, Errors, Field, Kind, Submitted};
use super::super::{Console, Outcome, Trouble};
use super::users::refusal_of_input;
use super::{cell, seg, text, yes_no, FormPage, ListPage};

/// The providers "Add provider" offers: (providerId, label key).
const KINDS: &[(&str, &str)] = &[
    ("google", "Google"),
    ("github", "GitHub"),
    ("oidc", "openIdConnectV1"),
];

const SYNC_MODES: &[(&str, &str)] = &[
    ("LEGACY", "syncLegacy"),
    ("IMPORT", "syncImport"),
    ("FORCE", "syncForce"),
];

const COMMON_TOP: &[Field] = &[
    field("redirectUri", "redirectUri", Kind::Fixed).help("redirectUriHelp"),
    field("alias", "alias", Kind::Text).required(),
    field("displayName", "displayName", Kind::Text),
    field("config/clientId", "clientId", Kind::Text).required(),
    field("config/clientSecret", "clientSecret", Kind::Password).help("secretKeptHelp"),
];

const OIDC_ENDPOINTS: &[Field] = &[
    field("config/issuer", "issuer", Kind::Url),
    field("config/authorizationUrl", "authorizationUrl", Kind::Url).required(),
    field("config/tokenUrl", "tokenUrl", Kind::Url).required(),
    field("config/userInfoUrl", "userInfoUrl", Kind::Url),
    field("config/jwksUrl", "jwksUrl", Kind::Url),
    field("config/logoutUrl", "logoutUrl", Kind::Url),
    field("config/defaultScope", "scopes", Kind::Text),
    field("config/pkceEnabled", "usePkce", Kind::Switch),
];

const GITHUB_ENDPOINTS: &[Field] = &[
    field("config/baseUrl", "githubBaseUrl", Kind::Url).help("githubBaseUrlHelp"),
    field("config/apiUrl", "githubApiUrl", Kind::Url),
    field("config/defaultScope", "scopes", Kind::Text),
];

const GOOGLE_ENDPOINTS: &[Field] = &[
    field("config/hostedDomain", "hostedDomain", Kind::Text),
    field("config/defaultScope", "scopes", Kind::Text),
];

const ADVANCED: &[Field] = &[
    field("enabled", "enabled", Kind::Switch),
    field("config/syncMode", "syncMode", Kind::Select(SYNC_MODES)),
    field("storeToken", "storeTokens", Kind::Switch),
    field("trustEmail", "trustEmail", Kind::Switch),
    field("linkOnly", "accountLinkingOnly", Kind::Switch),
    field("hideOnLogin", "hideOnLoginPage", Kind::Switch),
    field("firstBrokerLoginFlowAlias", "firstLoginFlow", Kind::Text),
];

fn sections_of(kind: &str) -> Option<[super::Section<'static>; 3]> {
    let endpoints = match kind {
        "google" => GOOGLE_ENDPOINTS,
        "github" => GITHUB_ENDPOINTS,
        "oidc" | "keycloak-oidc" => OIDC_ENDPOINTS,
        _ => return None,
    };
    Some([
        ("generalSettings", COMMON_TOP),
        ("endpoints", endpoints),
        ("advancedSettings", ADVANCED),
    ])
}

pub(super) async fn list(cx: &Console<'_>) -> Outcome {
    let providers = cx
        .api
        .get(&cx.rest(&["identity-provider", "instances"]))
        .await?;
    let mut page = ListPage::new(
        "identity-providers",
        cx.msg("identityProviders"),
        &["alias", "providerDetails", "enabled"],
    );
    page.rows = providers
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            vec![
                cell(
                    text(p, "alias"),
                    Some(cx.url(&format!("identity-providers/{}", seg(&text(p, "alias"))))),
                ),
                cell(text(p, "providerId"), None),
                cell(yes_no(cx, p["enabled"].as_bool().unwrap_or(false)), None),
            ]
        })
        .collect();
    page.extra = json!({
        "links_title": cx.msg("addProvider"),
        "links": KINDS.iter().map(|(id, label)| json!({
            "label": cx.msg(label),
            "href": cx.url(&format!("identity-providers/add/{id}")),
        })).collect::<Vec<_>>(),
    });
    page.render(cx).await
}

pub(super) async fn add_form(
    cx: &Console<'_>,
    kind: &str,
    submitted: Option<&Submitted>,
    errors: Errors,
) -> Outcome {
    let sections = sections_of(kind).ok_or(Trouble::NotFound)?;
    let label = KINDS
        .iter()
        .find(|(id, _)| *id == kind)
        .map(|(_, l)| cx.msg(l))
        .unwrap_or_default();
    let value = json!({
        "redirectUri": broker_endpoint(cx, kind),
        "alias": kind,
        "enabled": true,
        "config": {"syncMode": "LEGACY", "defaultScope": if kind == "oidc" { "openid" } else { "" }},
    });
    let heading = format!("{} {label}", cx.msg("addProvider"));
    let mut page = FormPage::new("identity-providers", heading, &sections, &value);
    page.submitted = submitted;
    page.errors = errors;
    page.action = format!("identity-providers/add/{kind}");
    page.submit = "add";
    page.render(cx).await
}

fn fields_of(sections: &[super::Section<'static>]) -> Vec<Field> {
    sections
        .iter()
        .flat_map(|(_, f)| f.iter().copied())
        .collect()
}

fn input_errors(f: &super::super::api::Failure) -> Errors {
    let mut errors = Errors::new();
    let name = form::field_of(
        &f.message,
        &[
            ("alias", "alias"),
            ("authorization", "config/authorizationUrl"),
            ("token", "config/tokenUrl"),
            ("clientid", "config/clientId"),
            ("client id", "config/clientId"),
        ],
    )
    .unwrap_or("alias");
    errors.insert(name.into(), f.message.clone());
    errors
}

pub(super) async fn add(cx: &Console<'_>, kind: &str) -> Outcome {
    let sections = sections_of(kind).ok_or(Trouble::NotFound)?;
    let mut body = json!({"providerId": kind, "config": {}});
    if let Err(errors) = form::apply(&fields_of(&sections), &cx.form, &mut body, &cx.msg_fn()) {
        return add_form(cx, kind, Some(&cx.form), errors).await;
    }
    let alias = cx.form.text("alias");
    match cx
        .api
        .post(&cx.rest(&["identity-provider", "instances"]), body)
        .await
    {
        Ok(_) => cx.done(
            "providerCreated",
            &format!("identity-providers/{}", seg(&alias)),
        ),
        Err(f) if refusal_of_input(&f) => {
            add_form(cx, kind, Some(&cx.form), input_errors(&f)).await
        }
        Err(f) => Err(f.into()),
    }
}

pub(super) async fn settings(
    cx: &Console<'_>,
    alias: &str,
    submitted: Option<&Submitted>,
    errors: Errors,
) -> Outcome {
    let mut provider = cx
        .api
        .get(&cx.rest(&["identity-provider", "instances", alias]))
        .await?;
    let sections = sections_of(&text(&provider, "providerId")).ok_or(Trouble::NotFound)?;
    provider["redirectUri"] = json!(broker_endpoint(cx, alias));
    let tabs = provider_tabs(alias);
    let current = format!("identity-providers/{}", seg(alias));
    let mut page = FormPage::new(
        "identity-providers",
        alias.to_string(),
        &sections,
        &provider,
    );
    page.tabs = &tabs;
    page.current_tab = &current;
    page.submitted = submitted;
    page.errors = errors;
    page.action = format!("identity-providers/{}", seg(alias));
    page.actions.push((
        "delete",
        format!("identity-providers/{}/delete", seg(alias)),
        "danger",
    ));
    page.render(cx).await
}

/// The redirect URI to register at the provider.
fn broker_endpoint(cx: &Console<'_>, alias: &str) -> String {
    format!(
        "{}/realms/{}/broker/{}/endpoint",
        crate::idp::oidc::base_url(cx.app, cx.request, cx.info),
        seg(&cx.realm),
        seg(alias)
    )
}

pub(super) async fn save(cx: &Console<'_>, alias: &str) -> Outcome {
    let mut provider: Value = cx
        .api
        .get(&cx.rest(&["identity-provider", "instances", alias]))
        .await?;
    let sections = sections_of(&text(&provider, "providerId")).ok_or(Trouble::NotFound)?;
    if let Err(errors) = form::apply(&fields_of(&sections), &cx.form, &mut provider, &cx.msg_fn()) {
        return settings(cx, alias, Some(&cx.form), errors).await;
    }
    match cx
        .api
        .put(
            &cx.rest(&["identity-provider", "instances", alias]),
            provider,
        )
        .await
    {
        Ok(_) => {
            let now = cx.form.text("alias");
            cx.done(
                "providerSaved",
                &format!(
                    "identity-providers/{}",
                    seg(if now.is_empty() { alias } else { &now })
                ),
            )
        }
        Err(f) if refusal_of_input(&f) => {
            settings(cx, alias, Some(&cx.form), input_errors(&f)).await
        }
        Err(f) => Err(f.into()),
    }
}

pub(super) async fn delete(cx: &Console<'_>, alias: &str) -> Outcome {
    cx.api
        .delete(&cx.rest(&["identity-provider", "instances", alias]), None)
        .await?;
    cx.done("providerDeleted", "identity-providers")
}

const IDP_MAPPER_TYPES: &[(&str, &str)] = &[
    ("hardcoded-role-idp-mapper", "idpMapperHardcodedRole"),
    ("oidc-role-idp-mapper", "idpMapperClaimToRole"),
    (
        "oidc-user-attribute-idp-mapper",
        "idpMapperAttributeImporter",
    ),
    (
        "hardcoded-attribute-idp-mapper",
        "idpMapperHardcodedAttribute",
    ),
    ("oidc-username-idp-mapper", "idpMapperUsernameTemplate"),
];

const MAPPER_SYNC: &[(&str, &str)] = &[
    ("INHERIT", "syncInherit"),
    ("IMPORT", "syncImport"),
    ("LEGACY", "syncLegacy"),
    ("FORCE", "syncForce"),
];

const IDP_MAPPER: &[Field] = &[
    field("name", "name", Kind::Text).required(),
    field(
        "identityProviderMapper",
        "mapperType",
        Kind::Select(IDP_MAPPER_TYPES),
    ),
    field(
        "config/syncMode",
        "syncModeOverride",
        Kind::Select(MAPPER_SYNC),
    ),
    field("config/claim", "claim", Kind::Text).help("idpMapperClaimHelp"),
    field("config/claim.value", "claimValue", Kind::Text),
    field("config/role", "role", Kind::Text).help("idpMapperRoleHelp"),
    field("config/user.attribute", "userAttributeName", Kind::Text),
    field("config/attribute", "userAttribute", Kind::Text),
    field("config/attribute.value", "userAttributeValue", Kind::Text),
    field("config/template", "template", Kind::Text).help("idpMapperTemplateHelp"),
];

/// A provider's mappers, with "Add mapper".
pub(super) async fn mappers(cx: &Console<'_>, alias: &str, errors: Errors) -> Outcome {
    let mappers = cx
        .api
        .get(&cx.rest(&["identity-provider", "instances", alias, "mappers"]))
        .await?;
    let tabs = provider_tabs(alias);
    let current = format!("identity-providers/{}/mappers", seg(alias));
    let mut page = ListPage::new(
        "identity-providers",
        alias.to_string(),
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
                cell(text(m, "identityProviderMapper"), None),
                super::button_cell(
                    cx,
                    "delete",
                    &format!(
                        "identity-providers/{}/mappers/{}/delete",
                        seg(alias),
                        seg(&text(m, "id"))
                    ),
                ),
            ]
        })
        .collect();
    let msg = cx.msg_fn();
    page.extra = json!({
        "title": cx.msg("addMapper"),
        "action": cx.url(&current),
        "fields": form::view(IDP_MAPPER, &json!({"config": {"syncMode": "INHERIT"}}), (!errors.is_empty()).then_some(&cx.form), &errors, &msg),
        "submit": cx.msg("add"),
    });
    page.render(cx).await
}

pub(super) async fn add_mapper(cx: &Console<'_>, alias: &str) -> Outcome {
    let mut body = json!({"identityProviderAlias": alias, "config": {}});
    if let Err(errors) = form::apply(IDP_MAPPER, &cx.form, &mut body, &cx.msg_fn()) {
        return mappers(cx, alias, errors).await;
    }
    if let Some(config) = body["config"].as_object_mut() {
        config.retain(|_, v| v.as_str() != Some(""));
    }
    match cx
        .api
        .post(
            &cx.rest(&["identity-provider", "instances", alias, "mappers"]),
            body,
        )
        .await
    {
        Ok(_) => cx.done(
            "mapperCreated",
            &format!("identity-providers/{}/mappers", seg(alias)),
        ),
        Err(f) if refusal_of_input(&f) => {
            let mut errors = Errors::new();
            let name = form::field_of(
                &f.message,
                &[
                    ("claim", "config/claim"),
                    ("role", "config/role"),
                    ("attribute", "config/attribute"),
                    ("template", "config/template"),
                ],
            )
            .unwrap_or("name");
            errors.insert(name.into(), f.message);
            mappers(cx, alias, errors).await
        }
        Err(f) => Err(f.into()),
    }
}

pub(super) async fn delete_mapper(cx: &Console<'_>, alias: &str, mapper: &str) -> Outcome {
    cx.api
        .delete(
            &cx.rest(&["identity-provider", "instances", alias, "mappers", mapper]),
            None,
        )
        .await?;
    cx.done(
        "mapperDeleted",
        &format!("identity-providers/{}/mappers", seg(alias)),
    )
}

fn provider_tabs(alias: &str) -> Vec<super::Tab> {
    vec![
        super::tab("settings", format!("identity-providers/{}", seg(alias))),
        super::tab(
            "mappers",
            format!("identity-providers/{}/mappers", seg(alias)),
        ),
    ]
}
