//! The console's screens: [`dispatch`] maps a path under the administered realm to its
//! handler; the helpers here render the two shapes most screens take (a searchable,
//! paged list; a form of declared fields with tabs).

mod authentication;
mod clients;
mod federation;
mod groups;
mod providers;
mod realm_settings;
mod realms;
mod roles;
mod sessions;
mod transfer;
mod users;

use http::{Method, StatusCode};
use serde_json::{json, Value};

use super::form::{self, Errors, Field, Submitted};
use super::{Console, Outcome, Trouble};

/// The handler of a path (`screen` is the path after the realm, decoded).
pub(super) async fn dispatch(cx: &mut Console<'_>, method: &Method, screen: &[&str]) -> Outcome {
    let get = method != Method::POST;
    match (get, screen) {
        (true, []) => realms::home(cx).await,
        (true, ["realms"]) => realms::list(cx).await,
        (true, ["add-realm"]) => realms::add_form(cx, None, Errors::new()).await,
        (false, ["add-realm"]) => realms::add(cx).await,

        (true, ["realm-settings"]) => realm_settings::show(cx, "general").await,
        (true, ["realm-settings", "keys"]) => realm_settings::keys(cx).await,
        (true, ["realm-settings", "localization"]) => {
            realm_settings::localization(cx, Errors::new()).await
        }
        (false, ["realm-settings", "localization"]) => realm_settings::add_translation(cx).await,
        (false, ["realm-settings", "localization", locale, key, "delete"]) => {
            realm_settings::delete_translation(cx, locale, key).await
        }
        (true, ["realm-settings", tab]) => realm_settings::show(cx, tab).await,
        (false, ["realm-settings", "email", "test"]) => realm_settings::test_email(cx).await,
        (false, ["realm-settings", tab]) => realm_settings::save(cx, tab).await,
        (false, ["delete-realm"]) => realms::delete(cx).await,

        (true, ["users"]) => users::list(cx).await,
        (true, ["users", "add-user"]) => users::add_form(cx, None, Errors::new()).await,
        (false, ["users", "add-user"]) => users::add(cx).await,
        (true, ["users", id]) | (true, ["users", id, "settings"]) => {
            users::details(cx, id, None, Errors::new()).await
        }
        (false, ["users", id, "settings"]) => users::save(cx, id).await,
        (true, ["users", id, "attributes"]) => users::attributes(cx, id).await,
        (false, ["users", id, "attributes"]) => users::save_attributes(cx, id).await,
        (true, ["users", id, "credentials"]) => users::credentials(cx, id, Errors::new()).await,
        (false, ["users", id, "credentials"]) => users::reset_password(cx, id).await,
        (false, ["users", id, "credentials", cred, "delete"]) => {
            users::delete_credential(cx, id, cred).await
        }
        (true, ["users", id, "role-mapping"]) => roles::user_mapping(cx, id).await,
        (false, ["users", id, "role-mapping"]) => roles::save_user_mapping(cx, id).await,
        (true, ["users", id, "groups"]) => groups::user_groups(cx, id).await,
        (false, ["users", id, "groups"]) => groups::save_user_groups(cx, id).await,
        (true, ["users", id, "sessions"]) => sessions::user_sessions(cx, id).await,
        (true, ["users", id, "identity-provider-links"]) => users::links(cx, id).await,
        (false, ["users", id, "delete"]) => users::delete(cx, id).await,

        (true, ["clients"]) => clients::list(cx).await,
        (true, ["clients", "add-client"]) => clients::add_form(cx, None, Errors::new()).await,
        (false, ["clients", "add-client"]) => clients::add(cx).await,
        (true, ["clients", id]) | (true, ["clients", id, "settings"]) => {
            clients::settings(cx, id, None, Errors::new()).await
        }
        (false, ["clients", id, "settings"]) => clients::save(cx, id).await,
        (true, ["clients", id, "credentials"]) => clients::credentials(cx, id).await,
        (false, ["clients", id, "credentials"]) => clients::regenerate_secret(cx, id).await,
        (true, ["clients", id, "roles"]) => roles::client_roles(cx, id, Errors::new()).await,
        (false, ["clients", id, "roles"]) => roles::add_client_role(cx, id).await,
        (true, ["clients", id, "client-scopes"]) => clients::scopes(cx, id).await,
        (true, ["clients", id, "mappers"]) => clients::mappers(cx, id, Errors::new()).await,
        (false, ["clients", id, "mappers"]) => clients::add_mapper(cx, id).await,
        (false, ["clients", id, "mappers", mapper, "delete"]) => {
            clients::delete_mapper(cx, id, mapper).await
        }
        (true, ["clients", id, "service-account-roles"]) => {
            roles::service_account_mapping(cx, id).await
        }
        (false, ["clients", id, "service-account-roles"]) => {
            roles::save_service_account_mapping(cx, id).await
        }
        (true, ["clients", id, "sessions"]) => sessions::client_sessions(cx, id).await,
        (false, ["clients", id, "delete"]) => clients::delete(cx, id).await,

        (true, ["client-scopes"]) => clients::scope_list(cx).await,

        (true, ["roles"]) => roles::list(cx).await,
        (true, ["roles", "add-role"]) => roles::add_form(cx, None, Errors::new()).await,
        (false, ["roles", "add-role"]) => roles::add(cx).await,
        (true, ["roles", id]) => roles::details(cx, id, Errors::new()).await,
        (false, ["roles", id]) => roles::save(cx, id).await,
        (true, ["roles", id, "users"]) => roles::users_in_role(cx, id).await,
        (false, ["roles", id, "delete"]) => roles::delete(cx, id).await,

        (true, ["groups"]) => groups::list(cx, Errors::new()).await,
        (false, ["groups"]) => groups::add(cx).await,
        (true, ["groups", id]) => groups::members(cx, id).await,
        (true, ["groups", id, "children"]) => groups::children(cx, id, Errors::new()).await,
        (false, ["groups", id, "children"]) => groups::add_child(cx, id).await,
        (true, ["groups", id, "role-mapping"]) => roles::group_mapping(cx, id).await,
        (false, ["groups", id, "role-mapping"]) => roles::save_group_mapping(cx, id).await,
        (false, ["groups", id, "delete"]) => groups::delete(cx, id).await,

        (true, ["sessions"]) => sessions::list(cx).await,
        (true, ["events"]) => sessions::events(cx, false).await,
        (true, ["events", "admin"]) => sessions::events(cx, true).await,

        (true, ["authentication"]) => authentication::flows(cx).await,
        (true, ["authentication", "flows", alias]) => authentication::flow(cx, alias).await,
        (false, ["authentication", "flows", alias]) => {
            authentication::save_requirements(cx, alias).await
        }
        (false, ["authentication", "flows", alias, "add-execution"]) => {
            authentication::add_execution(cx, alias).await
        }
        (false, ["authentication", "flows", alias, "duplicate"]) => {
            authentication::duplicate(cx, alias).await
        }
        (false, ["authentication", "flows", alias, "bind"]) => {
            authentication::bind(cx, alias).await
        }
        (true, ["authentication", "policies"]) => {
            authentication::policies(cx, None, Errors::new()).await
        }
        (false, ["authentication", "policies"]) => authentication::save_policies(cx).await,
        (true, ["authentication", "required-actions"]) => {
            authentication::required_actions(cx).await
        }
        (false, ["authentication", "required-actions"]) => {
            authentication::save_required_actions(cx).await
        }

        (true, ["identity-providers"]) => providers::list(cx).await,
        (true, ["identity-providers", "add", kind]) => {
            providers::add_form(cx, kind, None, Errors::new()).await
        }
        (false, ["identity-providers", "add", kind]) => providers::add(cx, kind).await,
        (true, ["identity-providers", alias]) => {
            providers::settings(cx, alias, None, Errors::new()).await
        }
        (false, ["identity-providers", alias]) => providers::save(cx, alias).await,
        (false, ["identity-providers", alias, "delete"]) => providers::delete(cx, alias).await,
        (true, ["identity-providers", alias, "mappers"]) => {
            providers::mappers(cx, alias, Errors::new()).await
        }
        (false, ["identity-providers", alias, "mappers"]) => providers::add_mapper(cx, alias).await,
        (false, ["identity-providers", alias, "mappers", mapper, "delete"]) => {
            providers::delete_mapper(cx, alias, mapper).await
        }

        (true, ["user-federation"]) => federation::list(cx).await,
        (true, ["user-federation", "ldap", "new"]) => {
            federation::settings(cx, None, None, Errors::new()).await
        }
        (true, ["user-federation", "ldap", id]) => {
            federation::settings(cx, Some(id), None, Errors::new()).await
        }
        (false, ["user-federation", "ldap", id]) => federation::save(cx, id).await,
        (false, ["user-federation", "ldap", id, "test"]) => federation::test(cx, id).await,
        (false, ["user-federation", "ldap", id, "sync"]) => federation::sync(cx, id).await,
        (false, ["user-federation", "ldap", id, "delete"]) => federation::delete(cx, id).await,

        (true, ["partial-import"]) => transfer::import_form(cx, None).await,
        (false, ["partial-import"]) => transfer::import(cx).await,
        (true, ["partial-export"]) => transfer::export_form(cx).await,
        (false, ["partial-export"]) => transfer::export(cx).await,

        _ => Err(Trouble::NotFound),
    }
}

/// A tab of a screen.
pub(super) struct Tab {
    pub label: &'static str,
    pub tail: String,
}

pub(super) fn tab(label: &'static str, tail: impl Into<String>) -> Tab {
    Tab {
        label,
        tail: tail.into(),
    }
}

pub(super) fn tabs_view(cx: &Console, tabs: &[Tab], current: &str) -> Vec<Value> {
    tabs.iter()
        .map(|t| {
            json!({
                "label": cx.msg(t.label),
                "href": cx.url(&t.tail),
                "current": t.tail == current,
            })
        })
        .collect()
}

/// A group of fields under a heading (its message key, or "").
pub(super) type Section<'f> = (&'static str, &'f [Field]);

/// Everything a form screen shows.
pub(super) struct FormPage<'a> {
    pub section: &'a str,
    pub heading: String,
    pub tabs: &'a [Tab],
    /// The tab shown (its `tail`).
    pub current_tab: &'a str,
    pub sections: &'a [Section<'a>],
    /// The representation the fields show.
    pub value: &'a Value,
    /// A refused submission, shown again as it was typed.
    pub submitted: Option<&'a Submitted>,
    pub errors: Errors,
    /// Where the form posts (a console tail).
    pub action: String,
    pub submit: &'static str,
    /// Extra buttons posting elsewhere: (label key, console tail, style).
    pub actions: Vec<(&'static str, String, &'static str)>,
    /// A general error (not about one field).
    pub error: Option<String>,
    /// A group of checkboxes after the fields: `{name, label, options: [{value, label, on}]}`.
    pub choices: Option<Value>,
}

impl<'a> FormPage<'a> {
    pub(super) fn new(
        section: &'a str,
        heading: String,
        sections: &'a [Section<'a>],
        value: &'a Value,
    ) -> Self {
        FormPage {
            section,
            heading,
            tabs: &[],
            current_tab: "",
            sections,
            value,
            submitted: None,
            errors: Errors::new(),
            action: String::new(),
            submit: "save",
            actions: Vec::new(),
            error: None,
            choices: None,
        }
    }

    pub(super) async fn render(self, cx: &Console<'_>) -> Outcome {
        let msg = cx.msg_fn();
        let sections: Vec<Value> = self
            .sections
            .iter()
            .map(|(title, fields)| {
                json!({
                    "title": if title.is_empty() { String::new() } else { cx.msg(title) },
                    "fields": form::view(fields, self.value, self.submitted, &self.errors, &msg),
                })
            })
            .collect();
        let status = if self.errors.is_empty() && self.error.is_none() {
            StatusCode::OK
        } else {
            StatusCode::BAD_REQUEST
        };
        let actions: Vec<Value> = self
            .actions
            .iter()
            .map(|(label, tail, style)| json!({"label": cx.msg(label), "href": cx.url(tail), "style": style}))
            .collect();
        let heading = self.heading.clone();
        cx.page(
            status,
            "admin/form.html",
            self.section,
            &heading,
            json!({
                "heading": self.heading,
                "tabs": tabs_view(cx, self.tabs, self.current_tab),
                "sections": sections,
                "action": cx.url(&self.action),
                "submit": cx.msg(self.submit),
                "actions": actions,
                "choices": self.choices,
                "error": self.error.or_else(|| (!self.errors.is_empty()).then(|| cx.msg("consoleFixFields"))),
            }),
        )
        .await
    }
}

/// One cell of a list: text, and a link when it leads somewhere.
pub(super) fn cell(text: impl Into<String>, href: Option<String>) -> Value {
    json!({"text": text.into(), "href": href})
}

/// The columns of a list of users.
pub(super) const USER_COLUMNS: &[&str] = &["username", "email", "lastName", "firstName"];

/// Rows of [`USER_COLUMNS`] for the first `max` users, each linking to `tab` of the user.
pub(super) fn user_rows(cx: &Console, users: &[Value], max: usize, tab: &str) -> Vec<Vec<Value>> {
    users
        .iter()
        .take(max)
        .map(|u| {
            vec![
                cell(
                    text(u, "username"),
                    Some(cx.url(&format!("users/{}/{tab}", seg(&text(u, "id"))))),
                ),
                cell(text(u, "email"), None),
                cell(text(u, "lastName"), None),
                cell(text(u, "firstName"), None),
            ]
        })
        .collect()
}

/// A cell holding a button that posts to `action` (a console tail), e.g. "Delete".
pub(super) fn button_cell(cx: &Console, label: &str, action: &str) -> Value {
    json!({"text": cx.msg(label), "post": cx.url(action)})
}

/// Everything a list screen shows.
pub(super) struct ListPage<'a> {
    pub section: &'a str,
    pub heading: String,
    pub tabs: &'a [Tab],
    pub current_tab: &'a str,
    /// Column headings (message keys).
    pub columns: &'a [&'static str],
    pub rows: Vec<Vec<Value>>,
    /// Show a search box (with its current text).
    pub search: Option<String>,
    /// A button to create: (label key, console tail).
    pub create: Option<(&'static str, String)>,
    /// Paging: (first, max, whether there is a next page).
    pub paging: Option<(usize, usize, bool)>,
    /// An inline form above the table: a template fragment's variables.
    pub extra: Value,
    /// Paging by key instead of by index: the key the next page starts after (`after=`),
    /// and whether this page is not the first.
    pub keyset: Option<(Option<String>, bool)>,
}

impl<'a> ListPage<'a> {
    pub(super) fn new(section: &'a str, heading: String, columns: &'a [&'static str]) -> Self {
        ListPage {
            section,
            heading,
            tabs: &[],
            current_tab: "",
            columns,
            rows: Vec::new(),
            search: None,
            create: None,
            paging: None,
            extra: Value::Null,
            keyset: None,
        }
    }

    pub(super) async fn render(self, cx: &Console<'_>) -> Outcome {
        let here = cx.request.uri().path().to_string();
        let search = self.search.clone().unwrap_or_default();
        let page_link = |first: usize, max: usize| {
            let mut q = form_urlencoded::Serializer::new(String::new());
            if !search.is_empty() {
                q.append_pair("search", &search);
            }
            q.append_pair("first", &first.to_string());
            q.append_pair("max", &max.to_string());
            format!("{here}?{}", q.finish())
        };
        let keyset_link = |after: Option<&str>, max: usize| {
            let mut q = form_urlencoded::Serializer::new(String::new());
            if !search.is_empty() {
                q.append_pair("search", &search);
            }
            if let Some(after) = after {
                q.append_pair("after", after);
            }
            q.append_pair("max", &max.to_string());
            format!("{here}?{}", q.finish())
        };
        let keyset = self.keyset.clone();
        let paging = self.paging.map(|(first, max, more)| {
            if let Some((next, not_first)) = &keyset {
                return json!({
                    "from": if self.rows.is_empty() { 0 } else { 1 },
                    "to": self.rows.len(),
                    "first_page": (*not_first || first > 0).then(|| keyset_link(None, max)),
                    "next": next.as_deref().map(|after| keyset_link(Some(after), max)),
                    "keyset": true,
                });
            }
            json!({
                "from": if self.rows.is_empty() { 0 } else { first + 1 },
                "to": first + self.rows.len(),
                "prev": (first > 0).then(|| page_link(first.saturating_sub(max), max)),
                "next": more.then(|| page_link(first + max, max)),
            })
        });
        let heading = self.heading.clone();
        cx.page(
            StatusCode::OK,
            "admin/list.html",
            self.section,
            &heading,
            json!({
                "heading": self.heading,
                "tabs": tabs_view(cx, self.tabs, self.current_tab),
                "columns": self.columns.iter().map(|c| cx.msg(c)).collect::<Vec<_>>(),
                "rows": self.rows,
                "search": self.search,
                "search_action": here,
                "create": self.create.map(|(label, tail)| json!({"label": cx.msg(label), "href": cx.url(&tail)})),
                "paging": paging,
                "extra": self.extra,
            }),
        )
        .await
    }
}

/// `first` and `max` of a paged list (Keycloak's console pages by 10; at most 100).
pub(super) fn paging(cx: &Console) -> (usize, usize) {
    let first = cx
        .query("first")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0usize)
        .min(1_000_000_000);
    let max = cx
        .query("max")
        .and_then(|v| v.parse().ok())
        .unwrap_or(10usize)
        .clamp(1, 100);
    (first, max)
}

/// The query of a list call: `first`, one more than `max` (so the page knows whether a
/// next one exists without counting), and `extra` pairs whose value is not empty.
pub(super) fn page_query(first: usize, max: usize, extra: &[(&str, &str)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("first", &first.to_string())
        .append_pair("max", &(max + 1).to_string());
    for (k, v) in extra.iter().filter(|(_, v)| !v.is_empty()) {
        query.append_pair(k, v);
    }
    query.finish()
}

/// `value[key]` as text ("" when missing).
pub(super) fn text(value: &Value, key: &str) -> String {
    match &value[key] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        v => v.to_string(),
    }
}

/// A yes/no cell in the page's language.
pub(super) fn yes_no(cx: &Console, on: bool) -> String {
    cx.msg(if on { "on" } else { "off" })
}

/// A percent-encoded path segment (for console links built from ids and names).
pub(super) fn seg(s: &str) -> String {
    crate::http::path::encode_segment(s)
}
