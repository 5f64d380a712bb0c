//! `/admin/realms/{realm}/localization`: the texts a realm overrides per locale, as
//! Keycloak's admin API (and console) reads and writes them; the login pages and mails
//! render with them (`idp::localization`).

use std::collections::BTreeMap;

use bytes::Bytes;
use http::{header, HeaderValue, StatusCode};
use serde_json::Value;

use crate::http::Response;
use crate::idp::admin::error::AdminError;
use crate::idp::localization;

use super::{no_content, ok, Cx, Permission};

/// Keycloak's limit on a text (`realm_localizations.value` is 32 kB there too).
const MAX_TEXT: usize = 32 * 1024;

/// A locale tag as a path segment: `en`, `pt-BR`, `zh-Hant-TW`.
fn valid_locale(locale: &str) -> bool {
    !locale.is_empty()
        && locale.len() <= 35
        && locale
            .split('-')
            .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric()))
}

fn locale_of(cx: &Cx) -> Result<String, AdminError> {
    let locale = cx.path.id.clone();
    if valid_locale(&locale) {
        Ok(locale)
    } else {
        Err(AdminError::BadRequest(format!("Invalid locale: {locale}")))
    }
}

fn text_body(cx: &Cx) -> Result<String, AdminError> {
    let text = std::str::from_utf8(cx.request.body())
        .map_err(|_| AdminError::BadRequest("The text must be UTF-8".into()))?;
    if text.len() > MAX_TEXT {
        return Err(AdminError::BadRequest("The text is too long".into()));
    }
    Ok(text.to_string())
}

/// `GET /localization`: the locales with overrides.
pub(super) fn locales(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ViewRealm)?;
    let list = localization::locales(&cx.app.store.read()?, &realm.id)?;
    Ok(ok(&serde_json::json!(list)))
}

/// `GET /localization/{locale}`: the overrides of one locale (`{}` when none).
pub(super) fn texts(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ViewRealm)?;
    let locale = locale_of(cx)?;
    let texts = localization::overrides(&cx.app.store.read()?, &realm.id, &locale)?;
    Ok(ok(&serde_json::json!(texts)))
}

/// `POST /localization/{locale}` with `{key: text}`: add or replace those texts.
pub(super) fn add_texts(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageRealm)?;
    let locale = locale_of(cx)?;
    let given: BTreeMap<String, Value> = cx.json()?;
    let mut texts = BTreeMap::new();
    for (key, value) in given {
        let Value::String(text) = value else {
            return Err(AdminError::BadRequest(format!(
                "The text of {key} must be a string"
            )));
        };
        if key.is_empty() || text.len() > MAX_TEXT {
            return Err(AdminError::BadRequest(format!(
                "Invalid text for key '{key}'"
            )));
        }
        texts.insert(key, text);
    }
    cx.app.store.write(|w| {
        let mut all = localization::overrides(&*w, &realm.id, &locale)?;
        all.extend(texts);
        localization::save(w, &realm.id, &locale, &all)
    })?;
    Ok(no_content())
}

/// `DELETE /localization/{locale}`: every override of a locale.
pub(super) fn delete_locale(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageRealm)?;
    let locale = locale_of(cx)?;
    let existed = cx
        .app
        .store
        .write(|w| w.delete_object(&realm.id, localization::KIND, &locale))?;
    super::deleted(existed, "Localization not found")
}

/// `GET /localization/{locale}/{key}`: one text, as `text/plain`.
pub(super) fn text(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ViewRealm)?;
    let locale = locale_of(cx)?;
    let texts = localization::overrides(&cx.app.store.read()?, &realm.id, &locale)?;
    let text = texts
        .get(&cx.path.key)
        .ok_or_else(|| AdminError::NotFound("Localization text not found".into()))?;
    let mut r = Response::new(Bytes::from(text.clone()));
    *r.status_mut() = StatusCode::OK;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(r)
}

/// `PUT /localization/{locale}/{key}` with the text as `text/plain`.
pub(super) fn set_text(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageRealm)?;
    let locale = locale_of(cx)?;
    let text = text_body(cx)?;
    let key = cx.path.key.clone();
    cx.app.store.write(|w| {
        let mut all = localization::overrides(&*w, &realm.id, &locale)?;
        all.insert(key, text);
        localization::save(w, &realm.id, &locale, &all)
    })?;
    Ok(no_content())
}

/// `DELETE /localization/{locale}/{key}`.
pub(super) fn delete_text(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageRealm)?;
    let locale = locale_of(cx)?;
    let key = cx.path.key.clone();
    let existed = cx.app.store.write(|w| {
        let mut all = localization::overrides(&*w, &realm.id, &locale)?;
        let existed = all.remove(&key).is_some();
        if existed {
            localization::save(w, &realm.id, &locale, &all)?;
        }
        Ok::<_, crate::store::StoreError>(existed)
    })?;
    super::deleted(existed, "Localization text not found")
}
