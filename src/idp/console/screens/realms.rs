//! The realm's home, the realm selector's full list, "Create Realm" and deleting a realm.

use http::StatusCode;
use serde_json::{json, Value};

use super::super::form::{self, field, Errors, Field, Kind, Submitted};
use super::super::session::console_path;
use super::super::{Console, Outcome};
use super::{cell, seg, text, FormPage, ListPage};

/// The realm's home: what it is and where to go.
pub(super) async fn home(cx: &Console<'_>) -> Outcome {
    let realm = cx.api.get(&cx.rest(&[])).await?;
    let display = text(&realm, "displayName");
    let endpoints = format!(
        "/realms/{}/.well-known/openid-configuration",
        seg(&cx.realm)
    );
    cx.page(
        StatusCode::OK,
        "admin/home.html",
        "",
        &cx.realm,
        json!({
            "display_name": display,
            "enabled": realm["enabled"].as_bool().unwrap_or(false),
            "discovery": endpoints,
            "account": format!("/realms/{}/account/", seg(&cx.realm)),
        }),
    )
    .await
}

/// Every realm the administrator may see, searchable (the selector shows the first ten).
pub(super) async fn list(cx: &Console<'_>) -> Outcome {
    let all = cx.api.get("/admin/realms?briefRepresentation=true").await?;
    let search = cx.query("search").unwrap_or_default();
    let needle = search.to_lowercase();
    let (first, max) = super::paging(cx);
    let matching: Vec<&Value> = all
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| {
            needle.is_empty()
                || text(r, "realm").to_lowercase().contains(&needle)
                || text(r, "displayName").to_lowercase().contains(&needle)
        })
        .collect();
    let more = matching.len() > first + max;
    let mut page = ListPage::new("", cx.msg("realms"), &["realmName", "displayName"]);
    page.rows = matching
        .iter()
        .skip(first)
        .take(max)
        .map(|r| {
            let name = text(r, "realm");
            vec![
                cell(
                    &name,
                    Some(format!("{}/{}/", console_path(&cx.home), seg(&name))),
                ),
                cell(text(r, "displayName"), None),
            ]
        })
        .collect();
    page.search = Some(search);
    page.create = Some(("createRealm", "add-realm".into()));
    page.paging = Some((first, max, more));
    page.render(cx).await
}

const CREATE: &[Field] = &[
    field("realm", "realmName", Kind::Text).required(),
    field("displayName", "displayName", Kind::Text),
    field("enabled", "enabled", Kind::Switch),
];

/// "Create Realm".
pub(super) async fn add_form(
    cx: &Console<'_>,
    submitted: Option<&Submitted>,
    errors: Errors,
) -> Outcome {
    let value = json!({"enabled": true});
    let sections = [("", CREATE)];
    let mut page = FormPage::new("", cx.msg("createRealm"), &sections, &value);
    page.submitted = submitted;
    page.errors = errors;
    page.action = "add-realm".into();
    page.submit = "create";
    page.render(cx).await
}

pub(super) async fn add(cx: &Console<'_>) -> Outcome {
    let mut body = json!({});
    if let Err(errors) = form::apply(CREATE, &cx.form, &mut body, &cx.msg_fn()) {
        return add_form(cx, Some(&cx.form), errors).await;
    }
    match cx.api.post("/admin/realms", body).await {
        Ok(_) => {
            let name = cx.form.text("realm");
            cx.flash("realmCreated");
            Ok(super::super::see_other(&format!(
                "{}/{}/",
                console_path(&cx.home),
                seg(&name)
            )))
        }
        Err(f)
            if f.status.is_client_error()
                && !f.unauthenticated()
                && f.status != StatusCode::FORBIDDEN =>
        {
            let mut errors = Errors::new();
            errors.insert("realm".into(), f.message);
            add_form(cx, Some(&cx.form), errors).await
        }
        Err(f) => Err(f.into()),
    }
}

/// Delete the administered realm (from the General tab's "Delete").
pub(super) async fn delete(cx: &Console<'_>) -> Outcome {
    cx.api.delete(&cx.rest(&[]), None).await?;
    cx.flash("realmDeleted");
    Ok(super::super::see_other(&format!(
        "{}/{}/",
        console_path(&cx.home),
        seg(&cx.home)
    )))
}
