//! `/admin/realms/{realm}/users/profile` (the declarative user profile) and
//! `users/profile/metadata` (what the admin console's user forms show).

use crate::http::Response;
use crate::idp::admin::error::AdminError;
use crate::idp::user_profile::{self, Context};

use super::{ok, Cx, Permission};

/// `GET /users/profile`
pub(super) fn get(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ViewUsers)?;
    Ok(ok(&user_profile::config(&cx.app.store.read()?, &realm.id)?))
}

/// `PUT /users/profile`: the whole configuration; answers with it.
pub(super) fn update(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ManageRealm)?;
    let config = cx.json_object()?;
    user_profile::check(&config).map_err(AdminError::BadRequest)?;
    cx.app
        .store
        .write(|w| user_profile::replace(w, &realm.id, &config))?;
    Ok(ok(&config))
}

/// `GET /users/profile/metadata`
pub(super) fn metadata(cx: &Cx) -> Result<Response, AdminError> {
    let realm = cx.realm(Permission::ViewUsers)?;
    let config = user_profile::config(&cx.app.store.read()?, &realm.id)?;
    Ok(ok(&user_profile::metadata(&config, Context::Admin)))
}
