//! Validation of a route's access rules: `auth` and, for authenticated routes, realm,
//! client, public paths, roles and groups, sign-out path and identity header names.

use super::values::header_name;
use super::Validator;
use crate::config::raw::{RawIdentityHeaders, RawRoute, S};
use crate::config::{ConfigError, IdentityHeaderNames, Policy, RouteAccess, RouteAuth};

/// Where an error about a route as a whole points: its `auth`, `host` or `path` line.
pub(super) fn anchor(r: &RawRoute) -> std::ops::Range<usize> {
    r.auth
        .as_ref()
        .map(|a| a.span())
        .or_else(|| r.host.as_ref().map(|h| h.span()))
        .or_else(|| r.path.as_ref().map(|p| p.span()))
        .unwrap_or(0..0)
}

impl Validator<'_> {
    /// `auth` and, for authenticated routes, everything about who may pass.
    pub(super) fn route_access(
        &self,
        key: &str,
        r: &mut RawRoute,
    ) -> Result<(RouteAuth, Option<RouteAccess>), ConfigError> {
        let auth = match &r.auth {
            None => RouteAuth::None,
            Some(a) => match a.get_ref().as_str() {
                "none" => RouteAuth::None,
                "session" => RouteAuth::Session,
                "bearer" => RouteAuth::Bearer,
                "session_or_bearer" => RouteAuth::SessionOrBearer,
                other => {
                    return self.invalid(
                        &format!("{key}.auth"),
                        a.span(),
                        format!(
                            "\"{other}\" is not one of \"session\", \"bearer\", \"session_or_bearer\", \"none\""
                        ),
                    )
                }
            },
        };
        let anchor = anchor(r);
        if auth == RouteAuth::None {
            // Access settings on an open route would silently do nothing: refuse them.
            let stray = [
                ("realm", r.realm.is_some()),
                ("client", r.client.is_some()),
                ("public_paths", !r.public_paths.is_empty()),
                ("realm_roles", !r.realm_roles.is_empty()),
                ("client_roles", !r.client_roles.is_empty()),
                ("groups", !r.groups.is_empty()),
                ("policy", r.policy.is_some()),
                ("pass_access_token", r.pass_access_token),
                ("pass_authorization_header", r.pass_authorization_header),
                ("signout_path", r.signout_path.is_some()),
                ("jwt_assertion", r.jwt_assertion.is_some()),
                (
                    "identity_headers",
                    r.identity_headers.user.is_some()
                        || r.identity_headers.email.is_some()
                        || r.identity_headers.preferred_username.is_some()
                        || r.identity_headers.groups.is_some()
                        || r.identity_headers.roles.is_some()
                        || r.identity_headers.access_token.is_some()
                        || r.identity_headers.jwt_assertion.is_some(),
                ),
            ];
            if let Some((field, _)) = stray.iter().find(|(_, set)| *set) {
                return self.invalid(
                    &format!("{key}.{field}"),
                    anchor,
                    "only applies to routes with auth = \"session\", \"bearer\" or \"session_or_bearer\""
                        .into(),
                );
            }
            return Ok((auth, None));
        }
        let required = |value: &Option<S<String>>, field: &str| match value {
            Some(v) if !v.get_ref().trim().is_empty() => Ok(v.get_ref().trim().to_string()),
            Some(v) => self.invalid(
                &format!("{key}.{field}"),
                v.span(),
                "must not be empty".into(),
            ),
            None => self.invalid(
                &format!("{key}.{field}"),
                anchor.clone(),
                format!("is required when auth is \"{}\"", auth_name(auth)),
            ),
        };
        let realm = required(&r.realm, "realm")?;
        let client = required(&r.client, "client")?;
        let mut public_paths = Vec::new();
        for (i, p) in std::mem::take(&mut r.public_paths).into_iter().enumerate() {
            match crate::http::path::normalise(p.get_ref()) {
                Ok(n) if n.starts_with('/') => public_paths.push(n.into_owned()),
                Ok(_) => {
                    return self.invalid(
                        &format!("{key}.public_paths[{i}]"),
                        p.span(),
                        "must start with /".into(),
                    )
                }
                Err(e) => {
                    return self.invalid(
                        &format!("{key}.public_paths[{i}]"),
                        p.span(),
                        format!("\"{}\": {e}", p.get_ref()),
                    )
                }
            }
        }
        let require_all = match &r.policy {
            None => false,
            Some(p) => match p.get_ref().as_str() {
                "any" => false,
                "all" => true,
                other => {
                    return self.invalid(
                        &format!("{key}.policy"),
                        p.span(),
                        format!("\"{other}\" is not \"any\" or \"all\""),
                    )
                }
            },
        };
        let client_roles = r
            .client_roles
            .iter()
            .map(|entry| match entry.split_once(':') {
                Some((c, role)) => (c.to_string(), role.to_string()),
                None => (client.clone(), entry.clone()),
            })
            .collect();
        let groups = r
            .groups
            .iter()
            .map(|g| {
                let g = g.trim().trim_end_matches('/');
                if g.starts_with('/') {
                    g.to_string()
                } else {
                    format!("/{g}")
                }
            })
            .collect();
        let signout_path = match &r.signout_path {
            None => None,
            Some(p) => match crate::http::path::normalise(p.get_ref()) {
                Ok(n) if n.starts_with('/') => Some(n.into_owned()),
                _ => {
                    return self.invalid(
                        &format!("{key}.signout_path"),
                        p.span(),
                        format!("\"{}\" is not an absolute path", p.get_ref()),
                    )
                }
            },
        };
        let headers = self.identity_headers(key, std::mem::take(&mut r.identity_headers))?;
        Ok((
            auth,
            Some(RouteAccess {
                realm,
                client,
                public_paths,
                policy: Policy {
                    realm_roles: std::mem::take(&mut r.realm_roles),
                    client_roles,
                    groups,
                    require_all,
                },
                pass_access_token: r.pass_access_token,
                pass_authorization_header: r.pass_authorization_header,
                jwt_assertion: r.jwt_assertion.unwrap_or(true),
                signout_path,
                headers,
            }),
        ))
    }

    fn identity_headers(
        &self,
        key: &str,
        raw: RawIdentityHeaders,
    ) -> Result<IdentityHeaderNames, ConfigError> {
        let mut names = IdentityHeaderNames::default();
        let fields: [(&str, Option<S<String>>, &mut http::HeaderName); 7] = [
            ("user", raw.user, &mut names.user),
            ("email", raw.email, &mut names.email),
            (
                "preferred_username",
                raw.preferred_username,
                &mut names.preferred_username,
            ),
            ("groups", raw.groups, &mut names.groups),
            ("roles", raw.roles, &mut names.roles),
            ("access_token", raw.access_token, &mut names.access_token),
            ("jwt_assertion", raw.jwt_assertion, &mut names.jwt_assertion),
        ];
        for (field, value, slot) in fields {
            let Some(value) = value else { continue };
            match header_name(value.get_ref().trim()) {
                Some(name)
                    if !matches!(
                        name.as_str(),
                        "host"
                            | "cookie"
                            | "content-length"
                            | "transfer-encoding"
                            | "connection"
                            | "upgrade"
                            | "te"
                            | "keep-alive"
                    ) =>
                {
                    *slot = name
                }
                _ => {
                    return self.invalid(
                        &format!("{key}.identity_headers.{field}"),
                        value.span(),
                        format!("\"{}\" is not a usable header name", value.get_ref()),
                    )
                }
            }
        }
        Ok(names)
    }
}

fn auth_name(auth: RouteAuth) -> &'static str {
    match auth {
        RouteAuth::None => "none",
        RouteAuth::Session => "session",
        RouteAuth::Bearer => "bearer",
        RouteAuth::SessionOrBearer => "session_or_bearer",
    }
}
