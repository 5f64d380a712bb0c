//! `/clients/{id}/protocol-mappers/...` and `/client-scopes/{id}/protocol-mappers/...`: the
//! protocol mappers of a client or a client scope (`mappers::apply` runs them).

use serde_json::{json, Value};

use crate::crypto::random_id;
use crate::http::Response;
use crate::idp::admin::error::AdminError;

use super::holders::{Held, Holder};
use super::{no_content, ok, Cx};

/// Check a mapper, give it an id, and check it against the holder's others (names are
/// unique).
fn prepare(held: &Held, mut mapper: Value, replacing: Option<&str>) -> Result<Value, AdminError> {
    let protocol = if held.protocol().is_empty() {
        crate::idp::client_scopes::OPENID_CONNECT
    } else {
        held.protocol()
    };
    if protocol == crate::idp::client_scopes::OPENID_CONNECT {
        crate::idp::mappers::validate(&mapper).map_err(AdminError::BadRequest)?;
    } else if mapper
        .get("name")
        .and_then(|v| v.as_str())
        .is_none_or(|n| n.trim().is_empty())
    {
        return Err(AdminError::BadRequest(
            "Protocol mapper name is required".into(),
        ));
    }
    let name = mapper["name"].as_str().unwrap_or("").to_string();
    let clash = held.mappers().iter().any(|m| {
        m.get("name").and_then(|v| v.as_str()) == Some(name.as_str())
            && m.get("id").and_then(|v| v.as_str()) != replacing
    });
    if clash {
        return Err(AdminError::Conflict(format!(
            "Protocol mapper exists with same name: {name}"
        )));
    }
    if mapper
        .get("id")
        .and_then(|v| v.as_str())
        .is_none_or(str::is_empty)
    {
        mapper["id"] = random_id().into();
    }
    if let Some(id) = replacing {
        mapper["id"] = id.into();
    }
    mapper["protocol"] = protocol.into();
    if mapper.get("config").is_none() {
        mapper["config"] = json!({});
    }
    Ok(mapper)
}

/// Where the path's mapper is in the holder's list.
fn index(cx: &Cx, held: &Held) -> Result<usize, AdminError> {
    held.mappers()
        .iter()
        .position(|m| m.get("id").and_then(|v| v.as_str()) == Some(cx.path.mapper.as_str()))
        .ok_or_else(|| AdminError::NotFound("Model not found".into()))
}

/// `GET .../protocol-mappers/models`
pub(super) fn list(cx: &Cx, holder: Holder) -> Result<Response, AdminError> {
    let (_, held) = holder.of_path(cx, false)?;
    Ok(ok(&Value::Array(held.mappers().clone())))
}

/// `GET .../protocol-mappers/protocol/{protocol}`: the mappers of one protocol.
pub(super) fn by_protocol(cx: &Cx, holder: Holder) -> Result<Response, AdminError> {
    let (_, held) = holder.of_path(cx, false)?;
    let list: Vec<Value> = held
        .mappers()
        .iter()
        .filter(|m| m.get("protocol").and_then(|v| v.as_str()) == Some(cx.path.key.as_str()))
        .cloned()
        .collect();
    Ok(ok(&Value::Array(list)))
}

/// `POST .../protocol-mappers/models`
pub(super) fn add(cx: &Cx, holder: Holder) -> Result<Response, AdminError> {
    let body = cx.json_object()?;
    let id = holder.change(cx, |_, _, held| {
        let mapper = prepare(held, body, None)?;
        let id = mapper["id"].as_str().unwrap_or_default().to_string();
        held.mappers_mut().push(mapper);
        Ok(id)
    })?;
    Ok(cx.created(&id))
}

/// `POST .../protocol-mappers/add-models` with a list.
pub(super) fn add_many(cx: &Cx, holder: Holder) -> Result<Response, AdminError> {
    let list: Vec<serde_json::Map<String, Value>> = cx.json()?;
    holder.change(cx, |_, _, held| {
        for body in list {
            let mapper = prepare(held, Value::Object(body), None)?;
            held.mappers_mut().push(mapper);
        }
        Ok(())
    })?;
    Ok(no_content())
}

/// `GET .../protocol-mappers/models/{mapper}`
pub(super) fn get(cx: &Cx, holder: Holder) -> Result<Response, AdminError> {
    let (_, held) = holder.of_path(cx, false)?;
    let i = index(cx, &held)?;
    Ok(ok(&held.mappers()[i]))
}

/// `PUT .../protocol-mappers/models/{mapper}`
pub(super) fn update(cx: &Cx, holder: Holder) -> Result<Response, AdminError> {
    let body = cx.json_object()?;
    holder.change(cx, |_, _, held| {
        let i = index(cx, held)?;
        let mapper = prepare(held, body, Some(&cx.path.mapper))?;
        held.mappers_mut()[i] = mapper;
        Ok(())
    })?;
    Ok(no_content())
}

/// `DELETE .../protocol-mappers/models/{mapper}`
pub(super) fn delete(cx: &Cx, holder: Holder) -> Result<Response, AdminError> {
    holder.change(cx, |_, _, held| {
        let i = index(cx, held)?;
        held.mappers_mut().remove(i);
        Ok(())
    })?;
    Ok(no_content())
}
