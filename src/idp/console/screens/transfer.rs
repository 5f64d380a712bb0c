//! Partial import (a realm representation pasted or read from a file, with "If a resource
//! exists") and partial export (a download of the realm, optionally with groups and roles,
//! and clients).

use bytes::Bytes;
use http::{header, HeaderValue, StatusCode};
use serde_json::{json, Value};

use super::super::{Console, Outcome};
use super::seg;

pub(super) async fn import_form(cx: &Console<'_>, result: Option<(StatusCode, Value)>) -> Outcome {
    let (status, result) = result.unwrap_or((StatusCode::OK, Value::Null));
    cx.page(
        status,
        "admin/partial-import.html",
        "realm-settings",
        &cx.msg("partialImport"),
        json!({
            "heading": cx.msg("partialImport"),
            "action": cx.url("partial-import"),
            "result": result,
            "document": cx.form.get("document").unwrap_or(""),
        }),
    )
    .await
}

pub(super) async fn import(cx: &Console<'_>) -> Outcome {
    let document = cx.form.get("document").unwrap_or("");
    let mut body: Value = match serde_json::from_str(document) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            return import_form(
                cx,
                Some((
                    StatusCode::BAD_REQUEST,
                    json!({"error": cx.msg("importNotJson")}),
                )),
            )
            .await
        }
    };
    let policy = match cx.form.get("ifResourceExists") {
        Some("OVERWRITE") => "OVERWRITE",
        Some("SKIP") => "SKIP",
        _ => "FAIL",
    };
    body["ifResourceExists"] = json!(policy);
    match cx.api.post(&cx.rest(&["partialImport"]), body).await {
        Ok(answer) => {
            let r = &answer.body;
            import_form(
                cx,
                Some((
                    StatusCode::OK,
                    json!({
                        "added": r["added"], "overwritten": r["overwritten"], "skipped": r["skipped"],
                        "results": r["results"].as_array().map(|a| a.iter().take(200).cloned().collect::<Vec<_>>()),
                    }),
                )),
            )
            .await
        }
        Err(f) if super::users::refusal_of_input(&f) => {
            import_form(
                cx,
                Some((StatusCode::BAD_REQUEST, json!({"error": f.message}))),
            )
            .await
        }
        Err(f) => Err(f.into()),
    }
}

pub(super) async fn export_form(cx: &Console<'_>) -> Outcome {
    cx.page(
        StatusCode::OK,
        "admin/partial-export.html",
        "realm-settings",
        &cx.msg("partialExport"),
        json!({
            "heading": cx.msg("partialExport"),
            "action": cx.url("partial-export"),
        }),
    )
    .await
}

/// The export as a download (`realm-export.json`, as Keycloak names it).
pub(super) async fn export(cx: &Console<'_>) -> Outcome {
    let query = format!(
        "exportGroupsAndRoles={}&exportClients={}",
        cx.form.switch("exportGroupsAndRoles"),
        cx.form.switch("exportClients")
    );
    let answer = cx
        .api
        .post(
            &format!("{}?{query}", cx.rest(&["partial-export"])),
            Value::Null,
        )
        .await?;
    let body = serde_json::to_vec_pretty(&answer.body).unwrap_or_default();
    let mut response = http::Response::new(Bytes::from(body));
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    let name = format!(
        "attachment; filename=\"realm-export-{}.json\"",
        seg(&cx.realm).replace('"', "")
    );
    if let Ok(v) = HeaderValue::from_str(&name) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}
