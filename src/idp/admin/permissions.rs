//! `.../management/permissions` and `users-management-permissions`: Keycloak's
//! fine-grained admin permissions. Portcullis has none (the admin roles decide everything),
//! so each answers that they are off, and turning them on is refused rather than ignored.

use serde::Deserialize;
use serde_json::json;

use crate::http::Response;
use crate::idp::admin::error::AdminError;

use super::{ok, Cx, Permission};

/// What a reference says, whatever resource it is for.
fn off() -> serde_json::Value {
    json!({"enabled": false})
}

/// `GET`: the resource exists (checked by the caller's view permission) and has none.
pub(super) fn get(cx: &Cx, permission: Permission) -> Result<Response, AdminError> {
    cx.realm(permission)?;
    Ok(ok(&off()))
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(default)]
#[schemars(rename = "ManagementPermissionReference")]
pub(super) struct Input {
    enabled: bool,
}

/// `PUT {"enabled": ...}`: off stays off; on is refused.
pub(super) fn update(cx: &Cx, permission: Permission) -> Result<Response, AdminError> {
    cx.realm(permission)?;
    let input: Input = cx.json()?;
    if input.enabled {
        return Err(AdminError::BadRequest(
            "Fine-grained admin permissions are not supported: access follows the realm-management roles".into(),
        ));
    }
    Ok(ok(&off()))
}
