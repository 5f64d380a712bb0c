//! `GET /users` with Keycloak's search grammar (`search`, `username`, `email`, `firstName`,
//! `lastName`, `exact`, `q`, `enabled`, `briefRepresentation`) and paging, and
//! `GET /users/count`.

use serde_json::{json, Value};

use crate::http::Response;
use crate::idp::admin::error::AdminError;
use crate::store::UserRecord;

use crate::idp::admin::repr::user_repr;
use crate::idp::admin::{ok, Cx, Permission};

/// How the `search` parameter matches.
enum Search {
    Exact(String),
    Prefix(String),
    Infix(String),
}

/// Case-insensitive "contains" (or equality when `exact`).
fn matches(value: Option<&str>, wanted: &str, exact: bool) -> bool {
    let Some(value) = value else { return false };
    let value = value.to_lowercase();
    let wanted = wanted.to_lowercase();
    if exact {
        value == wanted
    } else {
        let wanted = wanted.trim_matches('*');
        value.contains(wanted)
    }
}

/// `GET /users`: Keycloak's search and paging.
pub(crate) async fn list(cx: &Cx<'_>) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::QueryUsers)?;
    let exact = cx.flag("exact") == Some(true);
    let brief = cx.flag("briefRepresentation") == Some(true);
    let first: usize = cx.query("first").and_then(|v| v.parse().ok()).unwrap_or(0);
    let max: usize = cx.query("max").and_then(|v| v.parse().ok()).unwrap_or(100);
    // Keycloak's `search`: `foo` or `foo*` is a prefix, `*foo*` a substring and
    // `"foo"` an exact match, on username, e-mail, first or last name.
    let search = cx
        .query("search")
        .filter(|s| !s.is_empty() && s != "*")
        .map(|s| {
            if s.len() >= 2 && s.starts_with('"') && s.ends_with('"') {
                Search::Exact(s[1..s.len() - 1].to_lowercase())
            } else if s.starts_with('*') {
                Search::Infix(s.trim_matches('*').to_lowercase())
            } else {
                Search::Prefix(s.trim_end_matches('*').to_lowercase())
            }
        });
    let username = cx.query("username");
    let email = cx.query("email");
    let first_name = cx.query("firstName");
    let last_name = cx.query("lastName");
    let enabled = cx.flag("enabled");
    // Portcullis's `after=<username>`: the page after that user, by key, at the same cost
    // however deep into the list (`first` is then counted from there).
    let after = cx.query("after").map(|a| a.to_lowercase());
    let read = cx.app.store.read()?;
    let filter = |u: &UserRecord| -> bool {
        if u.service_account_client_id.is_some() {
            return false;
        }
        if let Some(s) = &search {
            let fields = [
                Some(u.username.as_str()),
                u.email.as_deref(),
                u.first_name.as_deref(),
                u.last_name.as_deref(),
            ];
            let hit = fields.iter().flatten().any(|f| {
                let f = f.to_lowercase();
                match s {
                    Search::Exact(w) => &f == w,
                    Search::Prefix(w) => f.starts_with(w.as_str()),
                    Search::Infix(w) => f.contains(w.as_str()),
                }
            });
            if !hit {
                return false;
            }
        }
        username
            .as_ref()
            .is_none_or(|w| matches(Some(&u.username), w, exact))
            && email
                .as_ref()
                .is_none_or(|w| matches(u.email.as_deref(), w, exact))
            && first_name
                .as_ref()
                .is_none_or(|w| matches(u.first_name.as_deref(), w, exact))
            && last_name
                .as_ref()
                .is_none_or(|w| matches(u.last_name.as_deref(), w, exact))
            && enabled.is_none_or(|e| u.enabled == e)
    };
    let unfiltered = search.is_none()
        && username.is_none()
        && email.is_none()
        && first_name.is_none()
        && last_name.is_none()
        && enabled.is_none();
    let page_of = |candidates: Vec<UserRecord>| -> Vec<UserRecord> {
        candidates
            .into_iter()
            .filter(|u| filter(u))
            .skip(first)
            .take(max)
            .collect()
    };
    let out: Vec<UserRecord> = if let (true, Some(name)) = (exact, &username) {
        // Exact username: one index lookup.
        page_of(
            read.user_by_username(&realm.id, name)?
                .into_iter()
                .collect(),
        )
    } else if let Some(Search::Prefix(p) | Search::Exact(p)) = &search {
        // Prefix and exact searches walk the username, e-mail and name indexes.
        page_of(read.users_with_prefix(
            &realm.id,
            p,
            first.saturating_add(max).saturating_add(1000),
        )?)
    } else if let (true, Some(after)) = (unfiltered, &after) {
        let wanted = first.saturating_add(max);
        let mut kept = Vec::new();
        let mut key = after.clone();
        while kept.len() < wanted {
            let chunk = read.users_after(&realm.id, &key, (wanted - kept.len()).clamp(1, 1000))?;
            let Some(last) = chunk.last() else { break };
            key = last.username.to_lowercase();
            kept.extend(
                chunk
                    .into_iter()
                    .filter(|u| u.service_account_client_id.is_none()),
            );
        }
        kept.into_iter().skip(first).take(max).collect()
    } else if unfiltered {
        // A plain page: skip over index keys, decode only what is returned. Service
        // accounts are not listed: move the offset past those that sort before it.
        let sa_names = service_account_usernames(&read, &realm.id)?;
        let mut offset = first;
        for _ in 0..=sa_names.len() {
            let Some(probe) = read.users_page(&realm.id, offset, 1)?.pop() else {
                break;
            };
            let before = sa_names.iter().filter(|n| **n <= probe.username).count();
            if first.saturating_add(before) == offset {
                break;
            }
            offset = first.saturating_add(before);
        }
        read.users_page(&realm.id, offset, max.saturating_add(sa_names.len()))?
            .into_iter()
            .filter(|u| u.service_account_client_id.is_none())
            .take(max)
            .collect()
    } else {
        let mut out = Vec::new();
        let mut skipped = 0;
        let mut offset = 0;
        'pages: loop {
            let page = read.users_page(&realm.id, offset, 1000)?;
            if page.is_empty() {
                break;
            }
            offset += page.len();
            for u in page {
                if filter(&u) {
                    if skipped < first {
                        skipped += 1;
                    } else if out.len() < max {
                        out.push(u);
                    } else {
                        break 'pages;
                    }
                }
            }
        }
        out
    };
    let read = cx.app.store.read()?;
    let mut list = Vec::with_capacity(out.len());
    for u in &out {
        let mut repr = user_repr(u, brief);
        if !brief {
            super::credential_flags(&mut repr, &read.credentials(&realm.id, &u.id)?);
        }
        list.push(repr);
    }
    Ok(ok(&Value::Array(list)))
}

/// `GET /users/count`
pub(crate) fn count(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::QueryUsers)?;
    let read = cx.app.store.read()?;
    // Service-account users are not counted, as in Keycloak.
    let n = read
        .user_count(&realm.id)?
        .saturating_sub(service_account_usernames(&read, &realm.id)?.len() as u64);
    Ok(ok(&json!(n)))
}

/// The usernames of the realm's service-account users that exist (one lookup per client,
/// not a scan of the users), sorted: a client whose service accounts were switched off may
/// keep its user, and a deleted one is gone.
fn service_account_usernames(
    read: &crate::store::Read,
    realm_id: &str,
) -> Result<Vec<String>, AdminError> {
    let mut names = Vec::new();
    for client in read.clients(realm_id)? {
        let name = format!("service-account-{}", client.client_id.to_lowercase());
        if read
            .user_by_username(realm_id, &name)?
            .is_some_and(|u| u.service_account_client_id.is_some())
        {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}
