//! Users: search with paging, "Add user", Details (with required user actions),
//! Attributes, Credentials (set or reset a password, with "Temporary"), identity provider
//! links, delete. Role mapping, groups and sessions are in their own modules.

use http::StatusCode;
use serde_json::{json, Map, Value};

use super::super::form::{self, field, Errors, Field, Kind, Submitted};
use super::super::{Console, Outcome};
use super::{cell, seg, tab, text, yes_no, FormPage, ListPage, Tab};

pub(super) fn user_tabs(id: &str) -> Vec<Tab> {
    let id = seg(id);
    vec![
        tab("details", format!("users/{id}/settings")),
        tab("attributes", format!("users/{id}/attributes")),
        tab("credentials", format!("users/{id}/credentials")),
        tab("roleMapping", format!("users/{id}/role-mapping")),
        tab("groups", format!("users/{id}/groups")),
        tab("sessions", format!("users/{id}/sessions")),
        tab(
            "identityProviderLinks",
            format!("users/{id}/identity-provider-links"),
        ),
    ]
}

/// The heading of a user's screens.
pub(super) async fn user_heading(
    cx: &Console<'_>,
    id: &str,
) -> Result<(Value, String), super::super::Trouble> {
    let user = cx.api.get(&cx.rest(&["users", id])).await?;
    let name = text(&user, "username");
    Ok((user, name))
}

/// "Users": search by username, email, first or last name; ten per page, by index.
pub(super) async fn list(cx: &Console<'_>) -> Outcome {
    let search = cx.query("search").unwrap_or_default();
    let (first, max) = super::paging(cx);
    // Without a search, pages go by key (`after=` the last username shown): as fast deep
    // into a million users as on the first page.
    let after = cx.query("after").filter(|a| !a.is_empty());
    let after_key = if search.is_empty() {
        after.clone().unwrap_or_default()
    } else {
        String::new()
    };
    let query = super::page_query(
        first,
        max,
        &[
            ("briefRepresentation", "true"),
            ("search", &search),
            ("after", &after_key),
        ],
    );
    let users = cx
        .api
        .get(&format!("{}?{}", cx.rest(&["users"]), query))
        .await?;
    let users = users.as_array().cloned().unwrap_or_default();
    let more = users.len() > max;
    let mut page = ListPage::new(
        "users",
        cx.msg("users"),
        &["username", "email", "lastName", "firstName", "enabled"],
    );
    page.rows = users
        .iter()
        .take(max)
        .map(|u| {
            vec![
                cell(
                    text(u, "username"),
                    Some(cx.url(&format!("users/{}/settings", seg(&text(u, "id"))))),
                ),
                cell(text(u, "email"), None),
                cell(text(u, "lastName"), None),
                cell(text(u, "firstName"), None),
                cell(yes_no(cx, u["enabled"].as_bool().unwrap_or(false)), None),
            ]
        })
        .collect();
    page.search = Some(search);
    page.create = Some(("addUser", "users/add-user".into()));
    page.paging = Some((first, max, more));
    if page.search.as_deref().is_none_or(str::is_empty) {
        let last = users
            .iter()
            .take(max)
            .next_back()
            .map(|u| text(u, "username"));
        page.keyset = Some((last.filter(|_| more), after.is_some()));
    }
    page.render(cx).await
}

const PROFILE: &[Field] = &[
    field("username", "username", Kind::Text).required(),
    field("email", "email", Kind::Email),
    field("emailVerified", "emailVerified", Kind::Switch),
    field("firstName", "firstName", Kind::Text),
    field("lastName", "lastName", Kind::Text),
    field("enabled", "enabled", Kind::Switch),
];

const DETAILS: &[Field] = &[
    field("id", "id", Kind::Fixed),
    field("username", "username", Kind::Text).required(),
    field("email", "email", Kind::Email),
    field("emailVerified", "emailVerified", Kind::Switch),
    field("firstName", "firstName", Kind::Text),
    field("lastName", "lastName", Kind::Text),
    field("enabled", "enabled", Kind::Switch),
];

/// Messages of the users API that concern one field.
const HINTS: &[(&str, &str)] = &[
    ("username", "username"),
    ("email", "email"),
    ("first", "firstName"),
    ("last", "lastName"),
];

/// The realm's enabled required actions (alias, name); `None` when the caller may not
/// read them (then the form offers none and saving leaves the user's as they are).
async fn offered_actions(cx: &Console<'_>) -> Option<Vec<(String, String)>> {
    let actions = cx
        .api
        .get(&cx.rest(&["authentication", "required-actions"]))
        .await
        .ok()?;
    Some(
        actions
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["enabled"].as_bool().unwrap_or(false))
            .map(|a| (text(a, "alias"), text(a, "name")))
            .collect(),
    )
}

/// The offered actions as checkboxes, `chosen` ticked.
async fn required_actions(
    cx: &Console<'_>,
    chosen: &[String],
) -> Result<Option<Value>, super::super::Trouble> {
    let Some(offered) = offered_actions(cx).await else {
        return Ok(None);
    };
    let options: Vec<Value> = offered
        .iter()
        .map(|(alias, name)| json!({"value": alias, "label": name, "on": chosen.contains(alias)}))
        .collect();
    Ok(Some(json!({
        "name": "requiredActions",
        "label": cx.msg("requiredUserActions"),
        "options": options,
    })))
}

/// The user's required actions after the form: the offered ones as ticked, every other
/// one (disabled, custom, or all when none could be offered) as it was.
async fn merged_actions(cx: &Console<'_>, current: &Value) -> Value {
    let current: Vec<String> = current
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect();
    let Some(offered) = offered_actions(cx).await else {
        return json!(current);
    };
    let chosen = chosen_actions(&cx.form);
    let mut out: Vec<String> = current
        .into_iter()
        .filter(|a| !offered.iter().any(|(alias, _)| alias == a))
        .collect();
    out.extend(
        chosen
            .into_iter()
            .filter(|c| offered.iter().any(|(alias, _)| alias == c)),
    );
    json!(out)
}

fn chosen_actions(form: &Submitted) -> Vec<String> {
    form.all("requiredActions")
        .into_iter()
        .map(str::to_string)
        .collect()
}

/// "Add user".
pub(super) async fn add_form(
    cx: &Console<'_>,
    submitted: Option<&Submitted>,
    errors: Errors,
) -> Outcome {
    let value = json!({"enabled": true});
    let chosen = submitted.map(chosen_actions).unwrap_or_default();
    let sections = [("", PROFILE)];
    let mut page = FormPage::new("users", cx.msg("createUser"), &sections, &value);
    page.submitted = submitted;
    page.errors = errors;
    page.action = "users/add-user".into();
    page.submit = "create";
    page.choices = required_actions(cx, &chosen).await?;
    page.render(cx).await
}

pub(super) async fn add(cx: &Console<'_>) -> Outcome {
    let mut body = json!({});
    if let Err(errors) = form::apply(PROFILE, &cx.form, &mut body, &cx.msg_fn()) {
        return add_form(cx, Some(&cx.form), errors).await;
    }
    body["requiredActions"] = merged_actions(cx, &json!([])).await;
    match cx.api.post(&cx.rest(&["users"]), body).await {
        Ok(answer) => {
            let id = answer.created_id().unwrap_or_default();
            cx.done("userCreated", &format!("users/{}/settings", seg(&id)))
        }
        Err(f) if refusal_of_input(&f) => {
            let mut errors = Errors::new();
            let name = form::field_of(&f.message, HINTS).unwrap_or("username");
            errors.insert(name.into(), f.message);
            add_form(cx, Some(&cx.form), errors).await
        }
        Err(f) => Err(f.into()),
    }
}

/// A 400 or 409: the input is wrong, shown beside the form.
pub(super) fn refusal_of_input(f: &super::super::api::Failure) -> bool {
    matches!(f.status, StatusCode::BAD_REQUEST | StatusCode::CONFLICT)
}

/// Details.
pub(super) async fn details(
    cx: &Console<'_>,
    id: &str,
    submitted: Option<&Submitted>,
    errors: Errors,
) -> Outcome {
    let (user, name) = user_heading(cx, id).await?;
    let chosen: Vec<String> = match submitted {
        Some(s) => chosen_actions(s),
        None => user["requiredActions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a.as_str().map(str::to_string))
            .collect(),
    };
    let tabs = user_tabs(id);
    let current = format!("users/{}/settings", seg(id));
    let sections = [("", DETAILS)];
    let mut page = FormPage::new("users", name, &sections, &user);
    page.tabs = &tabs;
    page.current_tab = &current;
    page.submitted = submitted;
    page.errors = errors;
    page.action = current.clone();
    page.choices = required_actions(cx, &chosen).await?;
    page.actions
        .push(("delete", format!("users/{}/delete", seg(id)), "danger"));
    page.render(cx).await
}

pub(super) async fn save(cx: &Console<'_>, id: &str) -> Outcome {
    let mut user = cx.api.get(&cx.rest(&["users", id])).await?;
    if let Err(errors) = form::apply(DETAILS, &cx.form, &mut user, &cx.msg_fn()) {
        return details(cx, id, Some(&cx.form), errors).await;
    }
    user["requiredActions"] = merged_actions(cx, &user["requiredActions"]).await;
    match cx.api.put(&cx.rest(&["users", id]), user).await {
        Ok(_) => cx.done("userSaved", &format!("users/{}/settings", seg(id))),
        Err(f) if refusal_of_input(&f) => {
            let mut errors = Errors::new();
            let name = form::field_of(&f.message, HINTS).unwrap_or("username");
            errors.insert(name.into(), f.message);
            details(cx, id, Some(&cx.form), errors).await
        }
        Err(f) => Err(f.into()),
    }
}

/// Attributes, one `name = value` per line (a name given twice has several values).
pub(super) async fn attributes(cx: &Console<'_>, id: &str) -> Outcome {
    let (user, name) = user_heading(cx, id).await?;
    let lines: Vec<String> = user["attributes"]
        .as_object()
        .into_iter()
        .flatten()
        .flat_map(|(k, values)| {
            let values: Vec<String> = match values {
                Value::Array(a) => a
                    .iter()
                    .map(|v| v.as_str().unwrap_or("").to_string())
                    .collect(),
                Value::String(s) => vec![s.clone()],
                _ => Vec::new(),
            };
            values.into_iter().map(move |v| format!("{k} = {v}"))
        })
        .collect();
    attributes_page(cx, id, name, lines.join("\n"), Errors::new()).await
}

const ATTRIBUTES: &[Field] =
    &[field("attributes", "attributes", Kind::Area).help("attributesHelp")];

async fn attributes_page(
    cx: &Console<'_>,
    id: &str,
    name: String,
    text_value: String,
    errors: Errors,
) -> Outcome {
    let tabs = user_tabs(id);
    let current = format!("users/{}/attributes", seg(id));
    let value = json!({"attributes": text_value});
    let sections = [("", ATTRIBUTES)];
    let mut page = FormPage::new("users", name, &sections, &value);
    page.tabs = &tabs;
    page.current_tab = &current;
    page.errors = errors;
    page.action = current.clone();
    page.render(cx).await
}

/// Parse `name = value` lines into Keycloak's attribute map.
pub(super) fn parse_attributes(text_value: &str) -> Result<Map<String, Value>, String> {
    let mut map: Map<String, Value> = Map::new();
    for line in text_value.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let Some((k, v)) = line.split_once('=') else {
            return Err(line.to_string());
        };
        let k = k.trim();
        if k.is_empty() {
            return Err(line.to_string());
        }
        let entry = map.entry(k.to_string()).or_insert_with(|| json!([]));
        if let Value::Array(a) = entry {
            a.push(Value::String(v.trim().to_string()));
        }
    }
    Ok(map)
}

pub(super) async fn save_attributes(cx: &Console<'_>, id: &str) -> Outcome {
    let mut user = cx.api.get(&cx.rest(&["users", id])).await?;
    let raw = cx.form.get("attributes").unwrap_or("").to_string();
    let map = match parse_attributes(&raw) {
        Ok(m) => m,
        Err(line) => {
            let mut errors = Errors::new();
            errors.insert(
                "attributes".into(),
                format!("{}: {line}", cx.msg("attributeLineInvalid")),
            );
            return attributes_page(cx, id, text(&user, "username"), raw, errors).await;
        }
    };
    user["attributes"] = Value::Object(map);
    match cx.api.put(&cx.rest(&["users", id]), user.clone()).await {
        Ok(_) => cx.done("userSaved", &format!("users/{}/attributes", seg(id))),
        Err(f) if refusal_of_input(&f) => {
            let mut errors = Errors::new();
            errors.insert("attributes".into(), f.message);
            attributes_page(cx, id, text(&user, "username"), raw, errors).await
        }
        Err(f) => Err(f.into()),
    }
}

/// Credentials: the stored ones, and "Set password" / "Reset password" with "Temporary".
pub(super) async fn credentials(cx: &Console<'_>, id: &str, errors: Errors) -> Outcome {
    let (_, name) = user_heading(cx, id).await?;
    let credentials = cx.api.get(&cx.rest(&["users", id, "credentials"])).await?;
    let rows: Vec<Value> = credentials
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            json!({
                "type": text(c, "type"),
                "label": text(c, "userLabel"),
                "created": c["createdDate"].as_i64().map(format_millis).unwrap_or_default(),
                "delete": cx.url(&format!("users/{}/credentials/{}/delete", seg(id), seg(&text(c, "id")))),
            })
        })
        .collect();
    let has_password = rows.iter().any(|r| r["type"] == "password");
    let tabs = user_tabs(id);
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    let current = format!("users/{}/credentials", seg(id));
    cx.page(
        status,
        "admin/credentials.html",
        "users",
        &name,
        json!({
            "heading": name,
            "tabs": super::tabs_view(cx, &tabs, &current),
            "credentials": rows,
            "action": cx.url(&current),
            "set_label": cx.msg(if has_password { "resetPassword" } else { "setPassword" }),
            "errors": errors,
            "temporary": cx.form.0.is_empty() || cx.form.switch("temporary"),
        }),
    )
    .await
}

/// A UTC date and time from epoch milliseconds.
pub(super) fn format_millis(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rem / 3600,
        (rem % 3600) / 60
    )
}

pub(super) async fn reset_password(cx: &Console<'_>, id: &str) -> Outcome {
    let password = cx.form.get("password").unwrap_or("");
    let confirmation = cx.form.get("passwordConfirmation").unwrap_or("");
    let mut errors = Errors::new();
    if password.is_empty() {
        errors.insert("password".into(), cx.msg("consoleRequiredField"));
    } else if password != confirmation {
        errors.insert(
            "passwordConfirmation".into(),
            cx.msg("passwordConfirmNotMatch"),
        );
    }
    if !errors.is_empty() {
        return credentials(cx, id, errors).await;
    }
    let body = json!({
        "type": "password",
        "value": password,
        "temporary": cx.form.switch("temporary"),
    });
    match cx
        .api
        .put(&cx.rest(&["users", id, "reset-password"]), body)
        .await
    {
        Ok(_) => cx.done("passwordSet", &format!("users/{}/credentials", seg(id))),
        Err(f) if refusal_of_input(&f) => {
            let mut errors = Errors::new();
            errors.insert("password".into(), f.message);
            credentials(cx, id, errors).await
        }
        Err(f) => Err(f.into()),
    }
}

pub(super) async fn delete_credential(cx: &Console<'_>, id: &str, credential: &str) -> Outcome {
    cx.api
        .delete(&cx.rest(&["users", id, "credentials", credential]), None)
        .await?;
    cx.done(
        "credentialDeleted",
        &format!("users/{}/credentials", seg(id)),
    )
}

/// Identity provider links.
pub(super) async fn links(cx: &Console<'_>, id: &str) -> Outcome {
    let (_, name) = user_heading(cx, id).await?;
    let links = cx
        .api
        .get(&cx.rest(&["users", id, "federated-identity"]))
        .await?;
    let tabs = user_tabs(id);
    let current = format!("users/{}/identity-provider-links", seg(id));
    let mut page = ListPage::new("users", name, &["identityProvider", "userId", "username"]);
    page.tabs = &tabs;
    page.current_tab = &current;
    page.rows = links
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| {
            vec![
                cell(
                    text(l, "identityProvider"),
                    Some(cx.url(&format!(
                        "identity-providers/{}",
                        seg(&text(l, "identityProvider"))
                    ))),
                ),
                cell(text(l, "userId"), None),
                cell(text(l, "userName"), None),
            ]
        })
        .collect();
    page.render(cx).await
}

pub(super) async fn delete(cx: &Console<'_>, id: &str) -> Outcome {
    cx.api.delete(&cx.rest(&["users", id]), None).await?;
    cx.done("userDeleted", "users")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_parse_as_keycloak_maps() {
        let map = parse_attributes("dept = sales\n\ndept=eng\nphone = +1 = 2").unwrap();
        assert_eq!(
            Value::Object(map),
            json!({"dept": ["sales", "eng"], "phone": ["+1 = 2"]})
        );
        assert_eq!(parse_attributes("novalue").unwrap_err(), "novalue");
        assert!(parse_attributes("= x").is_err());
    }

    #[test]
    fn dates_are_utc() {
        assert_eq!(format_millis(0), "1970-01-01 00:00 UTC");
        assert_eq!(format_millis(1_709_251_200_000), "2024-03-01 00:00 UTC");
    }
}
