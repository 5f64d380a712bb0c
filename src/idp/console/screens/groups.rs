//! Groups: the tree's top level with subgroup counts, "Create group", members, delete; a
//! user's groups (join and leave).

use http::StatusCode;
use serde_json::{json, Value};

use super::super::form::{self, field, Errors, Field, Kind};
use super::super::{Console, Outcome};
use super::users::{refusal_of_input, user_heading, user_tabs};
use super::{cell, seg, tab, text, ListPage, Tab};

pub(super) fn group_tabs(id: &str) -> Vec<Tab> {
    vec![
        tab("members", format!("groups/{}", seg(id))),
        tab("childGroups", format!("groups/{}/children", seg(id))),
        tab("roleMapping", format!("groups/{}/role-mapping", seg(id))),
    ]
}

const GROUP: &[Field] = &[field("name", "name", Kind::Text).required()];

pub(super) async fn list(cx: &Console<'_>, errors: Errors) -> Outcome {
    let search = cx.query("search").unwrap_or_default();
    let (first, max) = super::paging(cx);
    let query = super::page_query(first, max, &[("search", &search)]);
    let groups = cx
        .api
        .get(&format!("{}?{}", cx.rest(&["groups"]), query))
        .await?;
    let groups = groups.as_array().cloned().unwrap_or_default();
    let mut page = ListPage::new(
        "groups",
        cx.msg("groups"),
        &["groupName", "path", "subGroups"],
    );
    page.paging = Some((first, max, groups.len() > max));
    page.rows = groups
        .iter()
        .take(max)
        .flat_map(|g| flatten(g, 0))
        .map(|g| {
            vec![
                cell(
                    text(&g, "name"),
                    Some(cx.url(&format!("groups/{}", seg(&text(&g, "id"))))),
                ),
                cell(text(&g, "path"), None),
                cell(
                    g["subGroupCount"]
                        .as_u64()
                        .or(g["subGroups"].as_array().map(|a| a.len() as u64))
                        .unwrap_or(0)
                        .to_string(),
                    None,
                ),
            ]
        })
        .collect();
    page.search = Some(search);
    let msg = cx.msg_fn();
    page.extra = json!({
        "title": cx.msg("createGroup"),
        "action": cx.url("groups"),
        "fields": form::view(GROUP, &json!({}), (!errors.is_empty()).then_some(&cx.form), &errors, &msg),
        "submit": cx.msg("create"),
    });
    page.render(cx).await
}

/// A group and the subgroups the answer carries, depth first.
fn flatten(group: &Value, depth: usize) -> Vec<Value> {
    let mut out = vec![group.clone()];
    if depth < 8 {
        for sub in group["subGroups"].as_array().into_iter().flatten() {
            out.extend(flatten(sub, depth + 1));
        }
    }
    out
}

pub(super) async fn add(cx: &Console<'_>) -> Outcome {
    let mut body = json!({});
    if let Err(errors) = form::apply(GROUP, &cx.form, &mut body, &cx.msg_fn()) {
        return list(cx, errors).await;
    }
    match cx.api.post(&cx.rest(&["groups"]), body).await {
        Ok(_) => cx.done("groupCreated", "groups"),
        Err(f) if refusal_of_input(&f) => {
            let mut errors = Errors::new();
            errors.insert("name".into(), f.message);
            list(cx, errors).await
        }
        Err(f) => Err(f.into()),
    }
}

/// A group's members.
pub(super) async fn members(cx: &Console<'_>, id: &str) -> Outcome {
    let group = cx.api.get(&cx.rest(&["groups", id])).await?;
    let (first, max) = super::paging(cx);
    let members = cx
        .api
        .get(&format!(
            "{}?first={first}&max={}",
            cx.rest(&["groups", id, "members"]),
            max + 1
        ))
        .await?;
    let members = members.as_array().cloned().unwrap_or_default();
    let tabs = group_tabs(id);
    let current = format!("groups/{}", seg(id));
    let mut page = ListPage::new("groups", text(&group, "path"), super::USER_COLUMNS);
    page.tabs = &tabs;
    page.current_tab = &current;
    page.paging = Some((first, max, members.len() > max));
    page.rows = super::user_rows(cx, &members, max, "groups");
    page.extra = json!({
        "title": "",
        "action": cx.url(&format!("groups/{}/delete", seg(id))),
        "fields": [],
        "submit": cx.msg("deleteGroup"),
        "danger": true,
    });
    page.render(cx).await
}

pub(super) async fn delete(cx: &Console<'_>, id: &str) -> Outcome {
    cx.api.delete(&cx.rest(&["groups", id]), None).await?;
    cx.done("groupDeleted", "groups")
}

/// A user's groups: leave (ticked) and join (picked).
pub(super) async fn user_groups(cx: &Console<'_>, id: &str) -> Outcome {
    let (_, name) = user_heading(cx, id).await?;
    let joined = cx.api.get(&cx.rest(&["users", id, "groups"])).await?;
    let all = cx
        .api
        .get(&format!("{}?max=100", cx.rest(&["groups"])))
        .await?;
    let joined_ids: Vec<String> = joined
        .as_array()
        .into_iter()
        .flatten()
        .map(|g| text(g, "id"))
        .collect();
    let candidates: Vec<Value> = all
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| flatten(g, 0))
        .filter(|g| !joined_ids.contains(&text(g, "id")))
        .map(|g| json!({"value": text(&g, "id"), "label": text(&g, "path")}))
        .collect();
    let tabs = user_tabs(id);
    let current = format!("users/{}/groups", seg(id));
    cx.page(
        StatusCode::OK,
        "admin/user-groups.html",
        "users",
        &name,
        json!({
            "heading": name,
            "tabs": super::tabs_view(cx, &tabs, &current),
            "action": cx.url(&current),
            "joined": joined.as_array().cloned().unwrap_or_default(),
            "candidates": candidates,
        }),
    )
    .await
}

pub(super) async fn save_user_groups(cx: &Console<'_>, id: &str) -> Outcome {
    for group in cx.form.all("leave") {
        cx.api
            .delete(&cx.rest(&["users", id, "groups", group]), None)
            .await?;
    }
    for group in cx.form.all("join").into_iter().filter(|g| !g.is_empty()) {
        cx.api
            .put(&cx.rest(&["users", id, "groups", group]), Value::Null)
            .await?;
    }
    cx.done("groupsSaved", &format!("users/{}/groups", seg(id)))
}

/// A group's child groups, with "Create child group".
pub(super) async fn children(cx: &Console<'_>, id: &str, errors: Errors) -> Outcome {
    let group = cx.api.get(&cx.rest(&["groups", id])).await?;
    let children = cx
        .api
        .get(&format!("{}?max=100", cx.rest(&["groups", id, "children"])))
        .await?;
    let tabs = group_tabs(id);
    let current = format!("groups/{}/children", seg(id));
    let mut page = ListPage::new("groups", text(&group, "path"), &["groupName", "path"]);
    page.tabs = &tabs;
    page.current_tab = &current;
    page.rows = children
        .as_array()
        .into_iter()
        .flatten()
        .map(|g| {
            vec![
                cell(
                    text(g, "name"),
                    Some(cx.url(&format!("groups/{}", seg(&text(g, "id"))))),
                ),
                cell(text(g, "path"), None),
            ]
        })
        .collect();
    let msg = cx.msg_fn();
    page.extra = json!({
        "title": cx.msg("createChildGroup"),
        "action": cx.url(&current),
        "fields": form::view(GROUP, &json!({}), (!errors.is_empty()).then_some(&cx.form), &errors, &msg),
        "submit": cx.msg("create"),
    });
    page.render(cx).await
}

pub(super) async fn add_child(cx: &Console<'_>, id: &str) -> Outcome {
    let mut body = json!({});
    if let Err(errors) = form::apply(GROUP, &cx.form, &mut body, &cx.msg_fn()) {
        return children(cx, id, errors).await;
    }
    match cx
        .api
        .post(&cx.rest(&["groups", id, "children"]), body)
        .await
    {
        Ok(_) => cx.done("groupCreated", &format!("groups/{}/children", seg(id))),
        Err(f) if refusal_of_input(&f) => {
            let mut errors = Errors::new();
            errors.insert("name".into(), f.message);
            children(cx, id, errors).await
        }
        Err(f) => Err(f.into()),
    }
}
