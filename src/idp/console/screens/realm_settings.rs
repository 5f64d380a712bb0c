//! Realm settings: one tab per group of `RealmRepresentation` fields, each saved with
//! `PUT /admin/realms/{realm}`; Email's "Test connection"; Keys (read only).

use serde_json::{json, Value};

use super::super::form::{self, field, Errors, Field, Kind};
use super::super::{Console, Outcome, Trouble};
use super::{button_cell, cell, seg, tab, text, FormPage, ListPage, Tab};

const SSL: &[(&str, &str)] = &[
    ("external", "sslExternal"),
    ("none", "sslNone"),
    ("all", "sslAll"),
];

const GENERAL: &[Field] = &[
    field("realm", "realmName", Kind::Fixed),
    field("displayName", "displayName", Kind::Text),
    field("attributes/frontendUrl", "frontendUrl", Kind::Url),
    field("sslRequired", "requireSsl", Kind::Select(SSL)),
    field("enabled", "enabled", Kind::Switch),
];

const LOGIN: &[Field] = &[
    field("registrationAllowed", "userRegistration", Kind::Switch).help("userRegistrationHelp"),
    field("resetPasswordAllowed", "forgotPassword", Kind::Switch),
    field("rememberMe", "rememberMe", Kind::Switch),
    field(
        "registrationEmailAsUsername",
        "emailAsUsername",
        Kind::Switch,
    ),
    field("loginWithEmailAllowed", "loginWithEmail", Kind::Switch),
    field("duplicateEmailsAllowed", "duplicateEmails", Kind::Switch),
    field("verifyEmail", "verifyEmail", Kind::Switch),
];

const EMAIL: &[Field] = &[
    field("smtpServer/from", "from", Kind::Email),
    field("smtpServer/fromDisplayName", "fromDisplayName", Kind::Text),
    field("smtpServer/replyTo", "replyTo", Kind::Email),
    field("smtpServer/host", "host", Kind::Text),
    field("smtpServer/port", "port", Kind::Text),
    field("smtpServer/ssl", "enableSsl", Kind::Switch),
    field("smtpServer/starttls", "enableStartTls", Kind::Switch),
    field("smtpServer/auth", "authentication", Kind::Switch),
    field("smtpServer/user", "username", Kind::Text),
    field("smtpServer/password", "password", Kind::Password).help("passwordKeptHelp"),
];

const THEMES: &[Field] = &[
    field("loginTheme", "loginTheme", Kind::Text).help("themeHelp"),
    field("emailTheme", "emailTheme", Kind::Text).help("themeHelp"),
];

const EVENTS: &[Field] = &[
    field("eventsEnabled", "saveEvents", Kind::Switch),
    field("eventsExpiration", "expiration", Kind::Number).help("secondsHelp"),
    field("enabledEventTypes", "eventTypes", Kind::Lines).help("eventTypesHelp"),
    field("eventsListeners", "eventListeners", Kind::Lines),
    field("adminEventsEnabled", "saveAdminEvents", Kind::Switch),
    field(
        "adminEventsDetailsEnabled",
        "includeRepresentation",
        Kind::Switch,
    ),
];

const SESSIONS: &[Field] = &[
    field("ssoSessionIdleTimeout", "ssoSessionIdle", Kind::Number).help("secondsHelp"),
    field("ssoSessionMaxLifespan", "ssoSessionMax", Kind::Number).help("secondsHelp"),
    field(
        "offlineSessionIdleTimeout",
        "offlineSessionIdle",
        Kind::Number,
    )
    .help("secondsHelp"),
];

const ALGORITHMS: &[(&str, &str)] = &[
    ("RS256", "RS256"),
    ("ES256", "ES256"),
    ("PS256", "PS256"),
    ("RS384", "RS384"),
    ("RS512", "RS512"),
];

const TOKENS: &[Field] = &[
    field(
        "defaultSignatureAlgorithm",
        "defaultSigAlg",
        Kind::Select(ALGORITHMS),
    ),
    field("revokeRefreshToken", "revokeRefreshToken", Kind::Switch),
    field("refreshTokenMaxReuse", "refreshTokenMaxReuse", Kind::Number),
    field("accessTokenLifespan", "accessTokenLifespan", Kind::Number).help("secondsHelp"),
    field("accessCodeLifespan", "clientLoginTimeout", Kind::Number).help("secondsHelp"),
    field(
        "actionTokenGeneratedByUserLifespan",
        "userInitiatedActionLifespan",
        Kind::Number,
    )
    .help("resetLinkLifespanHelp"),
];

const DEFENSES: &[Field] = &[
    field("bruteForceProtected", "bruteForceDetection", Kind::Switch),
    field("permanentLockout", "permanentLockout", Kind::Switch),
    field("failureFactor", "failureFactor", Kind::Number),
    field("waitIncrementSeconds", "waitIncrement", Kind::Number).help("secondsHelp"),
    field("maxFailureWaitSeconds", "maxWait", Kind::Number).help("secondsHelp"),
    field(
        "minimumQuickLoginWaitSeconds",
        "quickLoginWait",
        Kind::Number,
    )
    .help("secondsHelp"),
    field(
        "quickLoginCheckMilliSeconds",
        "quickLoginCheck",
        Kind::Number,
    ),
    field("maxDeltaTimeSeconds", "failureResetTime", Kind::Number).help("secondsHelp"),
];

/// The tabs, in Keycloak's order, with their fields.
fn fields_of(tab: &str) -> Option<&'static [Field]> {
    Some(match tab {
        "general" => GENERAL,
        "login" => LOGIN,
        "email" => EMAIL,
        "themes" => THEMES,
        "events" => EVENTS,
        "sessions" => SESSIONS,
        "tokens" => TOKENS,
        "security-defenses" => DEFENSES,
        _ => return None,
    })
}

fn tabs() -> Vec<Tab> {
    vec![
        tab("general", "realm-settings/general"),
        tab("login", "realm-settings/login"),
        tab("email", "realm-settings/email"),
        tab("themes", "realm-settings/themes"),
        tab("keys", "realm-settings/keys"),
        tab("localization", "realm-settings/localization"),
        tab("events", "realm-settings/events"),
        tab("sessions", "realm-settings/sessions"),
        tab("tokens", "realm-settings/tokens"),
        tab("securityDefenses", "realm-settings/security-defenses"),
    ]
}

async fn render(
    cx: &Console<'_>,
    name: &str,
    fields: &'static [Field],
    value: &Value,
    submitted: bool,
    errors: Errors,
    error: Option<String>,
) -> Outcome {
    let tabs = tabs();
    let current = format!("realm-settings/{name}");
    let sections = [("", fields)];
    let mut page = FormPage::new("realm-settings", cx.msg("realmSettings"), &sections, value);
    page.tabs = &tabs;
    page.current_tab = &current;
    page.submitted = submitted.then_some(&cx.form);
    page.errors = errors;
    page.error = error;
    page.action = current.clone();
    match name {
        "email" => page.actions.push((
            "testConnection",
            "realm-settings/email/test".into(),
            "secondary",
        )),
        "general" => page
            .actions
            .push(("deleteRealm", "delete-realm".into(), "danger")),
        _ => {}
    }
    page.render(cx).await
}

pub(super) async fn show(cx: &Console<'_>, name: &str) -> Outcome {
    let fields = fields_of(name).ok_or(Trouble::NotFound)?;
    let realm = cx.api.get(&cx.rest(&[])).await?;
    render(cx, name, fields, &realm, false, Errors::new(), None).await
}

pub(super) async fn save(cx: &Console<'_>, name: &str) -> Outcome {
    let fields = fields_of(name).ok_or(Trouble::NotFound)?;
    let mut realm = cx.api.get(&cx.rest(&[])).await?;
    if let Err(errors) = form::apply(fields, &cx.form, &mut realm, &cx.msg_fn()) {
        return render(cx, name, fields, &realm, true, errors, None).await;
    }
    match cx.api.put(&cx.rest(&[]), realm.clone()).await {
        Ok(_) => cx.done("settingsSaved", &format!("realm-settings/{name}")),
        Err(f)
            if f.status == http::StatusCode::BAD_REQUEST
                || f.status == http::StatusCode::CONFLICT =>
        {
            let mut errors = Errors::new();
            let field = fields.iter().find(|fd| {
                f.message
                    .contains(fd.path.rsplit('/').next().unwrap_or(fd.path))
            });
            if let Some(fd) = field {
                errors.insert(fd.path.into(), f.message.clone());
            }
            render(cx, name, fields, &realm, true, errors, Some(f.message)).await
        }
        Err(f) => Err(f.into()),
    }
}

/// "Test connection": a test mail with the form's settings to the administrator's address.
pub(super) async fn test_email(cx: &Console<'_>) -> Outcome {
    let realm = cx.api.get(&cx.rest(&[])).await?;
    let mut smtp = realm["smtpServer"].clone();
    if !smtp.is_object() {
        smtp = json!({});
    }
    let mut wrapper = json!({"smtpServer": smtp});
    let _ = form::apply(EMAIL, &cx.form, &mut wrapper, &cx.msg_fn());
    match cx
        .api
        .post(
            &cx.rest(&["testSMTPConnection"]),
            wrapper["smtpServer"].clone(),
        )
        .await
    {
        Ok(_) => {
            cx.flash("testEmailSent");
            render(
                cx,
                "email",
                EMAIL,
                &wrapper_as_realm(&realm, &wrapper),
                true,
                Errors::new(),
                None,
            )
            .await
        }
        Err(f) if !f.unauthenticated() && f.status != http::StatusCode::FORBIDDEN => {
            let message = format!("{}: {}", cx.msg("testEmailFailed"), f.message);
            render(
                cx,
                "email",
                EMAIL,
                &wrapper_as_realm(&realm, &wrapper),
                true,
                Errors::new(),
                Some(message),
            )
            .await
        }
        Err(f) => Err(f.into()),
    }
}

fn wrapper_as_realm(realm: &Value, wrapper: &Value) -> Value {
    let mut r = realm.clone();
    r["smtpServer"] = wrapper["smtpServer"].clone();
    r
}

/// Keys: the realm's signing keys (`GET /admin/realms/{realm}/keys`).
pub(super) async fn keys(cx: &Console<'_>) -> Outcome {
    let keys = cx.api.get(&cx.rest(&["keys"])).await?;
    let tabs = tabs();
    let mut page = ListPage::new(
        "realm-settings",
        cx.msg("realmSettings"),
        &["algorithm", "type", "kid", "use", "status"],
    );
    page.tabs = &tabs;
    page.current_tab = "realm-settings/keys";
    page.rows = keys["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|k| {
            vec![
                cell(text(k, "algorithm"), None),
                cell(text(k, "type"), None),
                cell(text(k, "kid"), None),
                cell(text(k, "use"), None),
                cell(text(k, "status"), None),
            ]
        })
        .collect();
    page.render(cx).await
}

const TRANSLATION: &[Field] = &[
    field("locale", "locale", Kind::Text).required(),
    field("key", "key", Kind::Text).required(),
    field("value", "value", Kind::Text).required(),
];

/// Localization: the realm's own texts for a locale (`?locale=`, English first), which
/// override the theme's on its pages; "Add translation".
pub(super) async fn localization(cx: &Console<'_>, errors: Errors) -> Outcome {
    let locale = cx
        .query("locale")
        .filter(|l| !l.is_empty())
        .unwrap_or_else(|| "en".into());
    let locales = cx.api.get(&cx.rest(&["localization"])).await?;
    let texts = cx.api.get(&cx.rest(&["localization", &locale])).await?;
    let tabs = tabs();
    let mut page = ListPage::new(
        "realm-settings",
        cx.msg("realmSettings"),
        &["key", "value", "actions"],
    );
    page.tabs = &tabs;
    page.current_tab = "realm-settings/localization";
    page.rows = texts
        .as_object()
        .into_iter()
        .flatten()
        .map(|(key, value)| {
            vec![
                cell(key.clone(), None),
                cell(value.as_str().unwrap_or("").to_string(), None),
                button_cell(
                    cx,
                    "delete",
                    &format!(
                        "realm-settings/localization/{}/{}/delete",
                        seg(&locale),
                        seg(key)
                    ),
                ),
            ]
        })
        .collect();
    let msg = cx.msg_fn();
    let submitted = (!errors.is_empty()).then_some(&cx.form);
    page.extra = json!({
        "title": cx.msg("addTranslation"),
        "action": cx.url("realm-settings/localization"),
        "fields": form::view(TRANSLATION, &json!({"locale": locale}), submitted, &errors, &msg),
        "submit": cx.msg("add"),
        "links_title": cx.msg("locales"),
        "links": locales.as_array().into_iter().flatten().filter_map(|l| l.as_str()).map(|l| json!({
            "label": l,
            "href": format!("{}?locale={}", cx.url("realm-settings/localization"), seg(l)),
        })).collect::<Vec<_>>(),
    });
    page.render(cx).await
}

pub(super) async fn add_translation(cx: &Console<'_>) -> Outcome {
    let mut body = json!({});
    if let Err(errors) = form::apply(TRANSLATION, &cx.form, &mut body, &cx.msg_fn()) {
        return localization(cx, errors).await;
    }
    let locale = cx.form.text("locale");
    let mut texts = serde_json::Map::new();
    texts.insert(cx.form.text("key"), json!(cx.form.text("value")));
    match cx
        .api
        .post(&cx.rest(&["localization", &locale]), Value::Object(texts))
        .await
    {
        Ok(_) => cx.done(
            "translationAdded",
            &format!("realm-settings/localization?locale={}", seg(&locale)),
        ),
        Err(f) if super::users::refusal_of_input(&f) => {
            let mut errors = Errors::new();
            errors.insert("key".into(), f.message);
            localization(cx, errors).await
        }
        Err(f) => Err(f.into()),
    }
}

pub(super) async fn delete_translation(cx: &Console<'_>, locale: &str, key: &str) -> Outcome {
    cx.api
        .delete(&cx.rest(&["localization", locale, key]), None)
        .await?;
    cx.done(
        "translationDeleted",
        &format!("realm-settings/localization?locale={}", seg(locale)),
    )
}
