//! Realm roles (list, "Create role", details with composites, users in role, delete),
//! client roles, and role mapping of users and service accounts (assign and unassign
//! realm and client roles).

use http::StatusCode;
use serde_json::{json, Value};

use super::super::form::{self, field, Errors, Field, Kind, Submitted};
use super::super::{Console, Outcome};
use super::users::{refusal_of_input, user_heading, user_tabs};
use super::{cell, seg, tab, text, yes_no, FormPage, ListPage, Tab};

pub(super) async fn list(cx: &Console<'_>) -> Outcome {
    let search = cx.query("search").unwrap_or_default();
    let (first, max) = super::paging(cx);
    let query = super::page_query(first, max, &[("search", &search)]);
    let roles = cx
        .api
        .get(&format!("{}?{}", cx.rest(&["roles"]), query))
        .await?;
    let roles = roles.as_array().cloned().unwrap_or_default();
    let more = roles.len() > max;
    let mut page = ListPage::new(
        "roles",
        cx.msg("realmRoles"),
        &["roleName", "composite", "description"],
    );
    page.rows = roles
        .iter()
        .take(max)
        .map(|r| {
            vec![
                cell(
                    text(r, "name"),
                    Some(cx.url(&format!("roles/{}", seg(&text(r, "id"))))),
                ),
                cell(yes_no(cx, r["composite"].as_bool().unwrap_or(false)), None),
                cell(text(r, "description"), None),
            ]
        })
        .collect();
    page.search = Some(search);
    page.create = Some(("createRole", "roles/add-role".into()));
    page.paging = Some((first, max, more));
    page.render(cx).await
}

const ROLE: &[Field] = &[
    field("name", "roleName", Kind::Text).required(),
    field("description", "description", Kind::Area),
];

const ROLE_DETAILS: &[Field] = &[
    field("name", "roleName", Kind::Fixed),
    field("description", "description", Kind::Area),
];

pub(super) async fn add_form(
    cx: &Console<'_>,
    submitted: Option<&Submitted>,
    errors: Errors,
) -> Outcome {
    let value = json!({});
    let sections = [("", ROLE)];
    let mut page = FormPage::new("roles", cx.msg("createRole"), &sections, &value);
    page.submitted = submitted;
    page.errors = errors;
    page.action = "roles/add-role".into();
    page.submit = "save";
    page.render(cx).await
}

pub(super) async fn add(cx: &Console<'_>) -> Outcome {
    let mut body = json!({});
    if let Err(errors) = form::apply(ROLE, &cx.form, &mut body, &cx.msg_fn()) {
        return add_form(cx, Some(&cx.form), errors).await;
    }
    let name = cx.form.text("name");
    match cx.api.post(&cx.rest(&["roles"]), body).await {
        Ok(_) => {
            let role = cx.api.get(&cx.rest(&["roles", &name])).await?;
            cx.done("roleCreated", &format!("roles/{}", seg(&text(&role, "id"))))
        }
        Err(f) if refusal_of_input(&f) => {
            let mut errors = Errors::new();
            errors.insert("name".into(), f.message);
            add_form(cx, Some(&cx.form), errors).await
        }
        Err(f) => Err(f.into()),
    }
}

fn role_tabs(id: &str) -> Vec<Tab> {
    vec![
        tab("details", format!("roles/{}", seg(id))),
        tab("usersInRole", format!("roles/{}/users", seg(id))),
    ]
}

/// A role's details, its composites (assign other realm roles to make it composite).
pub(super) async fn details(cx: &Console<'_>, id: &str, errors: Errors) -> Outcome {
    let role = cx.api.get(&cx.rest(&["roles-by-id", id])).await?;
    let composites = cx
        .api
        .get(&cx.rest(&["roles-by-id", id, "composites"]))
        .await
        .unwrap_or(Value::Null);
    let tabs = role_tabs(id);
    let current = format!("roles/{}", seg(id));
    let sections = [("", ROLE_DETAILS)];
    let mut page = FormPage::new("roles", text(&role, "name"), &sections, &role);
    page.tabs = &tabs;
    page.current_tab = &current;
    page.errors = errors;
    page.action = current.clone();
    page.actions
        .push(("delete", format!("roles/{}/delete", seg(id)), "danger"));
    let all = cx
        .api
        .get(&cx.rest(&["roles"]))
        .await
        .unwrap_or(Value::Null);
    let held: Vec<String> = composites
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| text(r, "id"))
        .collect();
    let options: Vec<Value> = all
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| text(r, "id") != id)
        .map(|r| json!({"value": text(r, "id"), "label": text(r, "name"), "on": held.contains(&text(r, "id"))}))
        .collect();
    page.choices =
        Some(json!({"name": "composite", "label": cx.msg("associatedRoles"), "options": options}));
    page.render(cx).await
}

pub(super) async fn save(cx: &Console<'_>, id: &str) -> Outcome {
    let mut role = cx.api.get(&cx.rest(&["roles-by-id", id])).await?;
    if let Err(errors) = form::apply(ROLE_DETAILS, &cx.form, &mut role, &cx.msg_fn()) {
        return details(cx, id, errors).await;
    }
    cx.api.put(&cx.rest(&["roles-by-id", id]), role).await?;
    // Composites: add the newly ticked realm roles, remove the unticked.
    let held = cx
        .api
        .get(&cx.rest(&["roles-by-id", id, "composites"]))
        .await?;
    let held: Vec<Value> = held
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| !r["clientRole"].as_bool().unwrap_or(false))
        .cloned()
        .collect();
    let wanted = cx.form.all("composite");
    let add: Vec<Value> = wanted
        .iter()
        .filter(|w| !held.iter().any(|h| text(h, "id") == **w))
        .map(|w| json!({"id": w}))
        .collect();
    let remove: Vec<Value> = held
        .iter()
        .filter(|h| !wanted.contains(&text(h, "id").as_str()))
        .map(|h| json!({"id": text(h, "id"), "name": text(h, "name")}))
        .collect();
    if !add.is_empty() {
        cx.api
            .post(&cx.rest(&["roles-by-id", id, "composites"]), json!(add))
            .await?;
    }
    if !remove.is_empty() {
        cx.api
            .delete(
                &cx.rest(&["roles-by-id", id, "composites"]),
                Some(json!(remove)),
            )
            .await?;
    }
    cx.done("roleSaved", &format!("roles/{}", seg(id)))
}

/// "Users in role": who holds the role directly.
pub(super) async fn users_in_role(cx: &Console<'_>, id: &str) -> Outcome {
    let role = cx.api.get(&cx.rest(&["roles-by-id", id])).await?;
    let name = text(&role, "name");
    let (first, max) = super::paging(cx);
    let users = cx
        .api
        .get(&format!(
            "{}?first={first}&max={}",
            cx.rest(&["roles", &name, "users"]),
            max + 1
        ))
        .await?;
    let users = users.as_array().cloned().unwrap_or_default();
    let tabs = role_tabs(id);
    let current = format!("roles/{}/users", seg(id));
    let mut page = ListPage::new("roles", name, super::USER_COLUMNS);
    page.tabs = &tabs;
    page.current_tab = &current;
    page.paging = Some((first, max, users.len() > max));
    page.rows = super::user_rows(cx, &users, max, "settings");
    page.render(cx).await
}

pub(super) async fn delete(cx: &Console<'_>, id: &str) -> Outcome {
    cx.api.delete(&cx.rest(&["roles-by-id", id]), None).await?;
    cx.done("roleDeleted", "roles")
}

/// A client's roles, with "Create role" inline.
pub(super) async fn client_roles(cx: &Console<'_>, id: &str, errors: Errors) -> Outcome {
    let (client, tabs) = super::clients::client_and_tabs(cx, id).await?;
    let roles = cx.api.get(&cx.rest(&["clients", id, "roles"])).await?;
    let current = format!("clients/{}/roles", seg(id));
    let mut page = ListPage::new(
        "clients",
        text(&client, "clientId"),
        &["roleName", "composite", "description"],
    );
    page.tabs = &tabs;
    page.current_tab = &current;
    page.rows = roles
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            vec![
                cell(text(r, "name"), None),
                cell(yes_no(cx, r["composite"].as_bool().unwrap_or(false)), None),
                cell(text(r, "description"), None),
            ]
        })
        .collect();
    let msg = cx.msg_fn();
    page.extra = json!({
        "title": cx.msg("createRole"),
        "action": cx.url(&current),
        "fields": form::view(ROLE, &json!({}), (!errors.is_empty()).then_some(&cx.form), &errors, &msg),
        "submit": cx.msg("save"),
    });
    page.render(cx).await
}

pub(super) async fn add_client_role(cx: &Console<'_>, id: &str) -> Outcome {
    let mut body = json!({});
    if let Err(errors) = form::apply(ROLE, &cx.form, &mut body, &cx.msg_fn()) {
        return client_roles(cx, id, errors).await;
    }
    match cx.api.post(&cx.rest(&["clients", id, "roles"]), body).await {
        Ok(_) => cx.done("roleCreated", &format!("clients/{}/roles", seg(id))),
        Err(f) if refusal_of_input(&f) => {
            let mut errors = Errors::new();
            errors.insert("name".into(), f.message);
            client_roles(cx, id, errors).await
        }
        Err(f) => Err(f.into()),
    }
}

/// Role mapping of a user (by id): assigned realm and client roles, and those that can
/// be assigned (client roles of the client picked with `?client=`).
async fn mapping_page(
    cx: &Console<'_>,
    holder: [&str; 2],
    heading: String,
    tabs: &[Tab],
    current: &str,
) -> Outcome {
    let [kind, id] = holder;
    let picked = cx.query("client").unwrap_or_default();
    let assigned = if kind == "users" {
        cx.api.get(&cx.rest(&[kind, id, "role-mappings"])).await?
    } else {
        // A group's realm roles, and its roles of the picked client.
        let realm = cx
            .api
            .get(&cx.rest(&[kind, id, "role-mappings", "realm"]))
            .await?;
        let mut clients = serde_json::Map::new();
        if !picked.is_empty() {
            let roles = cx
                .api
                .get(&cx.rest(&[kind, id, "role-mappings", "clients", &picked]))
                .await?;
            clients.insert(
                picked.clone(),
                json!({"id": picked, "client": "", "mappings": roles}),
            );
        }
        json!({"realmMappings": realm, "clientMappings": clients})
    };
    let available = cx
        .api
        .get(&cx.rest(&[kind, id, "role-mappings", "realm", "available"]))
        .await?;
    let role = |r: &Value, client: &str| json!({"id": text(r, "id"), "name": text(r, "name"), "description": text(r, "description"), "client": client});
    let realm_assigned: Vec<Value> = assigned["realmMappings"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| role(r, ""))
        .collect();
    let mut client_assigned: Vec<Value> = Vec::new();
    if let Some(map) = assigned["clientMappings"].as_object() {
        for m in map.values() {
            let client_id = text(m, "id");
            let client_name = text(m, "client");
            for r in m["mappings"].as_array().into_iter().flatten() {
                let mut v = role(r, &client_id);
                v["client_name"] = json!(client_name);
                client_assigned.push(v);
            }
        }
    }
    let realm_available: Vec<Value> = available
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| role(r, ""))
        .collect();
    // Client roles to assign: those of the picked client.
    let clients = cx
        .api
        .get(&cx.rest(&["clients"]))
        .await
        .unwrap_or(Value::Null);
    let client_options: Vec<Value> = clients
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| json!({"value": text(c, "id"), "label": text(c, "clientId"), "selected": text(c, "id") == picked}))
        .collect();
    let client_available: Vec<Value> = if picked.is_empty() {
        Vec::new()
    } else {
        cx.api
            .get(&cx.rest(&[kind, id, "role-mappings", "clients", &picked, "available"]))
            .await?
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| role(r, &picked))
            .collect()
    };
    cx.page(
        StatusCode::OK,
        "admin/role-mapping.html",
        match current.split('/').next() {
            Some("clients") => "clients",
            Some("groups") => "groups",
            _ => "users",
        },
        &heading,
        json!({
            "heading": heading,
            "tabs": super::tabs_view(cx, tabs, current),
            "action": cx.url(current),
            "picker": cx.url(current),
            "realm_assigned": realm_assigned,
            "realm_available": realm_available,
            "client_assigned": client_assigned,
            "client_available": client_available,
            "client_options": client_options,
            "picked": picked,
        }),
    )
    .await
}

/// Apply the ticked assignments and unassignments of a role-mapping form.
async fn save_mapping(cx: &Console<'_>, holder: [&str; 2]) -> Result<(), super::super::Trouble> {
    let [kind, id] = holder;
    let ids = |name: &str| -> Vec<Value> {
        cx.form
            .all(name)
            .into_iter()
            .map(|id| json!({"id": id}))
            .collect()
    };
    let realm_path = cx.rest(&[kind, id, "role-mappings", "realm"]);
    let assign = ids("assign");
    if !assign.is_empty() {
        cx.api.post(&realm_path, json!(assign)).await?;
    }
    let unassign = ids("unassign");
    if !unassign.is_empty() {
        cx.api.delete(&realm_path, Some(json!(unassign))).await?;
    }
    // Client roles come as `{client id}:{role id}`.
    let mut by_client: std::collections::BTreeMap<(&str, bool), Vec<Value>> = Default::default();
    for (name, add) in [("assign_client", true), ("unassign_client", false)] {
        for value in cx.form.all(name) {
            if let Some((client, role)) = value.split_once(':') {
                by_client
                    .entry((client, add))
                    .or_default()
                    .push(json!({"id": role}));
            }
        }
    }
    for ((client, add), roles) in by_client {
        let path = cx.rest(&[kind, id, "role-mappings", "clients", client]);
        if add {
            cx.api.post(&path, json!(roles)).await?;
        } else {
            cx.api.delete(&path, Some(json!(roles))).await?;
        }
    }
    Ok(())
}

pub(super) async fn user_mapping(cx: &Console<'_>, id: &str) -> Outcome {
    let (_, name) = user_heading(cx, id).await?;
    let tabs = user_tabs(id);
    let current = format!("users/{}/role-mapping", seg(id));
    mapping_page(cx, ["users", id], name, &tabs, &current).await
}

pub(super) async fn save_user_mapping(cx: &Console<'_>, id: &str) -> Outcome {
    save_mapping(cx, ["users", id]).await?;
    cx.done(
        "roleMappingSaved",
        &format!("users/{}/role-mapping", seg(id)),
    )
}

async fn service_account_user(
    cx: &Console<'_>,
    client: &str,
) -> Result<String, super::super::Trouble> {
    let user = cx
        .api
        .get(&cx.rest(&["clients", client, "service-account-user"]))
        .await?;
    Ok(text(&user, "id"))
}

pub(super) async fn service_account_mapping(cx: &Console<'_>, id: &str) -> Outcome {
    let (client, tabs) = super::clients::client_and_tabs(cx, id).await?;
    let user = service_account_user(cx, id).await?;
    let current = format!("clients/{}/service-account-roles", seg(id));
    mapping_page(
        cx,
        ["users", &user],
        text(&client, "clientId"),
        &tabs,
        &current,
    )
    .await
}

pub(super) async fn save_service_account_mapping(cx: &Console<'_>, id: &str) -> Outcome {
    let user = service_account_user(cx, id).await?;
    save_mapping(cx, ["users", &user]).await?;
    cx.done(
        "roleMappingSaved",
        &format!("clients/{}/service-account-roles", seg(id)),
    )
}

/// A group's role mapping.
pub(super) async fn group_mapping(cx: &Console<'_>, id: &str) -> Outcome {
    let group = cx.api.get(&cx.rest(&["groups", id])).await?;
    let tabs = super::groups::group_tabs(id);
    let current = format!("groups/{}/role-mapping", seg(id));
    mapping_page(cx, ["groups", id], text(&group, "path"), &tabs, &current).await
}

pub(super) async fn save_group_mapping(cx: &Console<'_>, id: &str) -> Outcome {
    save_mapping(cx, ["groups", id]).await?;
    cx.done(
        "roleMappingSaved",
        &format!("groups/{}/role-mapping", seg(id)),
    )
}
