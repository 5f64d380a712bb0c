//! The user-profile fields of the login's profile pages (`UPDATE_PROFILE` and
//! self-registration): the realm's profile, one form field per attribute, and the values
//! a submitted form sets.

use std::collections::BTreeMap;

use minijinja::Value as Ctx;
use serde_json::{json, Value};

use crate::idp::user_profile::{self, Attribute, Context, Violation};
use crate::store::UserRecord;

use super::PageCx;

/// The realm's user profile.
pub(super) fn config(page: &PageCx<'_>) -> Result<Value, crate::http::ApiError> {
    page.app
        .store
        .read()
        .and_then(|r| user_profile::config(&r, &page.realm.id))
        .map_err(crate::http::ApiError::from)
}

/// One form field for `a`, with `user`'s value and the error of a refused submission.
pub(super) fn field(
    page: &PageCx<'_>,
    a: &Attribute<'_>,
    user: &UserRecord,
    violations: &[Violation],
    readonly: bool,
) -> Ctx {
    let label = match a.display_name {
        Some(d) if d.starts_with("${") && d.ends_with('}') => page.msg(&d[2..d.len() - 1]),
        Some(d) => d.to_string(),
        None => page.msg(a.name),
    };
    let autocomplete = match a.name {
        "email" => "email",
        "firstName" => "given-name",
        "lastName" => "family-name",
        "username" => "username",
        _ => "off",
    };
    Ctx::from_serialize(json!({
        "name": a.name,
        "label": label,
        "value": user_profile::values(user, a.name).first().cloned().unwrap_or_default(),
        "readonly": readonly,
        "required": a.name == "username" || a.required_for(Context::User),
        "options": a.options(),
        "type": if a.name == "email" { "email" } else { "text" },
        "autocomplete": autocomplete,
        "error": violations
            .iter()
            .find(|v| v.attribute == a.name)
            .map(|v| page.msg(&v.message)),
    }))
}

/// Set on `user` every attribute the user may edit from the submitted `fields`.
pub(super) fn fill(config: &Value, fields: &BTreeMap<String, String>, user: &mut UserRecord) {
    for a in user_profile::attributes(config) {
        if a.can_edit(Context::User) && a.user_editable_field() {
            let submitted = fields.get(a.name).cloned().into_iter().collect();
            user_profile::set(user, a.name, submitted);
        }
    }
}
