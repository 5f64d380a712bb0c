//! Realm localization: texts a realm overrides per locale (Keycloak's "Realm overrides" of
//! the theme's messages), kept as one realm object per locale, and the messages the pages
//! and mails render with (the theme's, with the realm's on top).

use std::collections::BTreeMap;

use crate::idp::App;
use crate::store::{RealmRecord, StoreError, Txn, View, Write};

/// The realm-object kind the overrides are stored under (one object per locale).
pub const KIND: &str = "localization";

/// The realm's overrides for `locale`.
pub fn overrides(
    read: &View<impl Txn>,
    realm_id: &str,
    locale: &str,
) -> Result<BTreeMap<String, String>, StoreError> {
    Ok(read
        .object(realm_id, KIND, locale)?
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default())
}

/// Replace the realm's overrides for `locale` (none left: the locale is removed).
pub fn save(
    w: &mut Write,
    realm_id: &str,
    locale: &str,
    texts: &BTreeMap<String, String>,
) -> Result<(), StoreError> {
    if texts.is_empty() {
        w.delete_object(realm_id, KIND, locale)?;
        return Ok(());
    }
    let value = serde_json::to_value(texts).map_err(|e| StoreError::Backend(e.to_string()))?;
    w.put_object(realm_id, KIND, locale, &value)
}

/// The locales the realm overrides texts for, sorted.
pub fn locales(read: &View<impl Txn>, realm_id: &str) -> Result<Vec<String>, StoreError> {
    Ok(read
        .object_ids(realm_id, KIND)?
        .into_iter()
        .map(|(id, _)| id)
        .collect())
}

/// The messages a page or mail of `realm` renders with in `locale`: the theme's, with the
/// realm's overrides on top. A store failure leaves the theme's texts (a page still shows).
pub fn messages(
    app: &App,
    realm: &RealmRecord,
    theme: Option<&str>,
    locale: &str,
) -> BTreeMap<String, String> {
    let mut messages = app.themes.messages(theme, locale);
    match app
        .store
        .read()
        .and_then(|r| overrides(&r, &realm.id, locale))
    {
        Ok(texts) => messages.extend(texts),
        Err(e) => tracing::warn!(error = %e, "realm texts not read; the theme's are shown"),
    }
    messages
}
