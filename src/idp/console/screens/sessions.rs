//! Sessions (the realm's, by client; a user's; a client's) and Events (user and admin
//! events, newest first, paged).

use serde_json::Value;

use super::super::{Console, Outcome};
use super::users::{format_millis, user_heading, user_tabs};
use super::{cell, seg, text, ListPage};

/// The realm's active sessions, counted per client.
pub(super) async fn list(cx: &Console<'_>) -> Outcome {
    let stats = cx.api.get(&cx.rest(&["client-session-stats"])).await?;
    let mut page = ListPage::new(
        "sessions",
        cx.msg("sessions"),
        &["clientId", "activeSessions", "offlineSessions"],
    );
    page.rows = stats
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            vec![
                cell(
                    text(s, "clientId"),
                    Some(cx.url(&format!("clients/{}/sessions", seg(&text(s, "id"))))),
                ),
                cell(text(s, "active"), None),
                cell(text(s, "offline"), None),
            ]
        })
        .collect();
    page.render(cx).await
}

fn session_rows(cx: &Console<'_>, sessions: &Value) -> Vec<Vec<Value>> {
    sessions
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            let clients: Vec<String> = s["clients"]
                .as_object()
                .map(|m| {
                    m.values()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            vec![
                cell(
                    text(s, "username"),
                    Some(cx.url(&format!("users/{}/sessions", seg(&text(s, "userId"))))),
                ),
                cell(text(s, "ipAddress"), None),
                cell(
                    s["start"].as_i64().map(format_millis).unwrap_or_default(),
                    None,
                ),
                cell(
                    s["lastAccess"]
                        .as_i64()
                        .map(format_millis)
                        .unwrap_or_default(),
                    None,
                ),
                cell(clients.join(", "), None),
            ]
        })
        .collect()
}

const SESSION_COLUMNS: &[&str] = &["username", "ipAddress", "started", "lastAccess", "clients"];

pub(super) async fn user_sessions(cx: &Console<'_>, id: &str) -> Outcome {
    let (_, name) = user_heading(cx, id).await?;
    let sessions = cx.api.get(&cx.rest(&["users", id, "sessions"])).await?;
    let tabs = user_tabs(id);
    let current = format!("users/{}/sessions", seg(id));
    let mut page = ListPage::new("users", name, SESSION_COLUMNS);
    page.tabs = &tabs;
    page.current_tab = &current;
    page.rows = session_rows(cx, &sessions);
    page.render(cx).await
}

pub(super) async fn client_sessions(cx: &Console<'_>, id: &str) -> Outcome {
    let (client, tabs) = super::clients::client_and_tabs(cx, id).await?;
    let (first, max) = super::paging(cx);
    let sessions = cx
        .api
        .get(&format!(
            "{}?first={first}&max={}",
            cx.rest(&["clients", id, "user-sessions"]),
            max + 1
        ))
        .await?;
    let more = sessions.as_array().is_some_and(|a| a.len() > max);
    let current = format!("clients/{}/sessions", seg(id));
    let mut page = ListPage::new("clients", text(&client, "clientId"), SESSION_COLUMNS);
    page.tabs = &tabs;
    page.current_tab = &current;
    page.rows = session_rows(cx, &sessions).into_iter().take(max).collect();
    page.paging = Some((first, max, more));
    page.render(cx).await
}

/// User events or admin events.
pub(super) async fn events(cx: &Console<'_>, admin: bool) -> Outcome {
    let (first, max) = super::paging(cx);
    let path = cx.rest(&[if admin { "admin-events" } else { "events" }]);
    let events = cx
        .api
        .get(&format!("{path}?first={first}&max={}", max + 1))
        .await?;
    let events = events.as_array().cloned().unwrap_or_default();
    let tabs = [
        super::tab("userEvents", "events"),
        super::tab("adminEvents", "events/admin"),
    ];
    let columns: &[&str] = if admin {
        &["time", "operationType", "resourcePath", "user"]
    } else {
        &[
            "time",
            "eventType",
            "user",
            "clientId",
            "ipAddress",
            "error",
        ]
    };
    let mut page = ListPage::new("events", cx.msg("events"), columns);
    page.tabs = &tabs;
    page.current_tab = if admin { "events/admin" } else { "events" };
    page.paging = Some((first, max, events.len() > max));
    page.rows = events
        .iter()
        .take(max)
        .map(|e| {
            let time = e["time"].as_i64().map(format_millis).unwrap_or_default();
            if admin {
                vec![
                    cell(time, None),
                    cell(text(e, "operationType"), None),
                    cell(text(e, "resourcePath"), None),
                    cell(text(&e["authDetails"], "userId"), None),
                ]
            } else {
                vec![
                    cell(time, None),
                    cell(text(e, "type"), None),
                    cell(text(e, "userId"), None),
                    cell(text(e, "clientId"), None),
                    cell(text(e, "ipAddress"), None),
                    cell(text(e, "error"), None),
                ]
            }
        })
        .collect();
    page.render(cx).await
}
