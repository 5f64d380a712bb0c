//! Who the user is, as the upstream is told: the [`Identity`] built from the IdP's
//! [`Subject`](crate::idp::gateway::Subject), the route policy it must satisfy, the
//! identity headers under the route's names, and the signed assertion.

use std::collections::{BTreeMap, BTreeSet};

use http::{header, HeaderName, HeaderValue};
use serde::Serialize;

use crate::config::{Policy, RouteAccess};
use crate::idp::gateway::{self, Subject, Unavailable};
use crate::idp::App;

use super::incoming::Incoming;

/// Lifetime of the signed identity assertion.
const ASSERTION_LIFETIME_SECS: i64 = 300;

/// Who the user is, as the upstream is told.
#[derive(Debug)]
pub struct Identity {
    pub user_id: String,
    pub username: String,
    pub email: Option<String>,
    /// Group paths.
    pub groups: Vec<String>,
    pub realm_roles: BTreeSet<String>,
    /// clientId → role names.
    pub client_roles: BTreeMap<String, BTreeSet<String>>,
    pub sid: Option<String>,
    /// An access token for the route's client (minted or presented), when wanted.
    pub access_token: Option<String>,
    /// `X-Portcullis-Jwt-Assertion`, when wanted.
    pub assertion: Option<String>,
    /// The headers told upstream, under the route's names: built once per checked
    /// identity, so a cached check costs the upstream request no string work. Each name
    /// also as shared bytes, the form pingora's request header keeps without a copy.
    headers: Vec<IdentityHeader>,
}

/// One identity header, ready for a `HeaderMap` and for pingora's request header.
#[derive(Debug, Clone)]
pub struct IdentityHeader {
    pub name: HeaderName,
    pub name_bytes: bytes::Bytes,
    pub value: HeaderValue,
}

impl Identity {
    /// Build the identity the route wants: the subject's current roles and groups, an
    /// access token for the route's client when the route passes one on (the presented
    /// bearer token, else one minted), and the signed assertion.
    pub(super) fn build(
        app: &App,
        access: &RouteAccess,
        req: &Incoming,
        subject: Subject,
        presented_token: Option<String>,
        now_ms: i64,
    ) -> Result<Identity, Unavailable> {
        let issuer = gateway::issuer_at(
            &req.base_url(app.config.server.public_url.as_ref()),
            &subject.realm.name,
        );
        let wants_token = access.pass_access_token || access.pass_authorization_header;
        let access_token = match presented_token {
            Some(t) => Some(t),
            None if wants_token => match gateway::client(app, &subject.realm, &access.client)? {
                Some(client) => {
                    gateway::mint_access_token(app, &issuer, &subject, &client, now_ms)?
                }
                None => None,
            },
            None => None,
        };
        let mut identity = Identity {
            user_id: subject.user.id.clone(),
            username: subject.user.username.clone(),
            email: subject.user.email.clone().filter(|e| !e.is_empty()),
            groups: subject.groups.clone(),
            realm_roles: subject.roles.realm.clone(),
            client_roles: subject.roles.clients.clone(),
            sid: subject.session.as_ref().map(|s| s.id.clone()),
            access_token,
            assertion: None,
            headers: Vec::new(),
        };
        if access.jwt_assertion {
            let claims = Assertion {
                iss: &issuer,
                aud: req.host,
                sub: &identity.user_id,
                preferred_username: &identity.username,
                email: identity.email.as_deref(),
                groups: &identity.groups,
                roles: identity.roles_list(),
                sid: identity.sid.as_deref(),
                iat: now_ms / 1000,
                exp: now_ms / 1000 + ASSERTION_LIFETIME_SECS,
                jti: crate::crypto::random_id(),
            };
            identity.assertion = gateway::sign_assertion(app, &subject.realm, &claims, now_ms)?;
        }
        identity.headers = identity.header_list(access);
        Ok(identity)
    }

    /// The headers to inject, under the route's names (as built for the route checked).
    pub fn headers(&self) -> &[IdentityHeader] {
        &self.headers
    }

    /// Realm roles, then client roles as `client:role`, comma-separated.
    pub fn roles_header(&self) -> String {
        self.roles_list().join(",")
    }

    fn header_list(&self, access: &RouteAccess) -> Vec<IdentityHeader> {
        let names = &access.headers;
        let mut out = Vec::with_capacity(8);
        let mut push = |name: &HeaderName, value: &str| {
            if let Ok(v) = HeaderValue::from_bytes(value.as_bytes()) {
                out.push(IdentityHeader {
                    name: name.clone(),
                    name_bytes: bytes::Bytes::copy_from_slice(name.as_str().as_bytes()),
                    value: v,
                });
            }
        };
        push(&names.user, &self.user_id);
        if let Some(email) = &self.email {
            push(&names.email, email);
        }
        push(&names.preferred_username, &self.username);
        push(&names.groups, &self.groups.join(","));
        push(&names.roles, &self.roles_header());
        if let Some(token) = &self.access_token {
            if access.pass_access_token {
                push(&names.access_token, token);
            }
            if access.pass_authorization_header {
                push(&header::AUTHORIZATION, &format!("Bearer {token}"));
            }
        }
        if let Some(assertion) = &self.assertion {
            push(&names.jwt_assertion, assertion);
        }
        out
    }

    /// Bytes held, roughly (for the cache's bound).
    pub(super) fn approximate_size(&self) -> usize {
        let strings = |v: &mut dyn Iterator<Item = &String>| v.map(|s| s.len() + 24).sum::<usize>();
        256 + self.user_id.len()
            + self.username.len()
            + self.email.as_ref().map_or(0, String::len)
            + strings(&mut self.groups.iter())
            + strings(&mut self.realm_roles.iter())
            + self
                .client_roles
                .iter()
                .map(|(c, r)| c.len() + 48 + strings(&mut r.iter()))
                .sum::<usize>()
            + self.sid.as_ref().map_or(0, String::len)
            + self.access_token.as_ref().map_or(0, String::len)
            + self.assertion.as_ref().map_or(0, String::len)
            + self
                .headers
                .iter()
                .map(|h| 2 * h.name.as_str().len() + h.value.len() + 64)
                .sum::<usize>()
    }

    fn roles_list(&self) -> Vec<String> {
        let mut out: Vec<String> = self.realm_roles.iter().cloned().collect();
        for (client, roles) in &self.client_roles {
            out.extend(roles.iter().map(|r| format!("{client}:{r}")));
        }
        out
    }
}

/// Whether the identity satisfies the route policy.
pub fn permits(policy: &Policy, id: &Identity) -> bool {
    let in_group = |wanted: &String| {
        id.groups.iter().any(|g| {
            g == wanted
                || (g.starts_with(wanted.as_str()) && g.as_bytes().get(wanted.len()) == Some(&b'/'))
        })
    };
    let mut checks = policy
        .realm_roles
        .iter()
        .map(|r| id.realm_roles.contains(r))
        .chain(policy.client_roles.iter().map(|(c, r)| {
            id.client_roles
                .get(c)
                .is_some_and(|roles| roles.contains(r))
        }))
        .chain(policy.groups.iter().map(in_group))
        .peekable();
    if checks.peek().is_none() {
        return true;
    }
    if policy.require_all {
        checks.all(|ok| ok)
    } else {
        checks.any(|ok| ok)
    }
}

/// The claims of `X-Portcullis-Jwt-Assertion`.
#[derive(Serialize)]
struct Assertion<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    preferred_username: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    groups: &'a [String],
    roles: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<&'a str>,
    iat: i64,
    exp: i64,
    jti: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(realm_roles: &[&str], groups: &[&str]) -> Identity {
        Identity {
            user_id: "u".into(),
            username: "alice".into(),
            email: None,
            groups: groups.iter().map(|g| g.to_string()).collect(),
            realm_roles: realm_roles.iter().map(|r| r.to_string()).collect(),
            client_roles: [("app".to_string(), ["viewer".to_string()].into())].into(),
            sid: None,
            access_token: None,
            assertion: None,
            headers: Vec::new(),
        }
    }

    #[test]
    fn policy_any_and_all() {
        let id = identity(&["user"], &["/staff/eng"]);
        let mut p = Policy::default();
        assert!(permits(&p, &id), "no requirement: any signed-in user");
        p.realm_roles = vec!["admin".into(), "user".into()];
        assert!(permits(&p, &id));
        p.require_all = true;
        assert!(!permits(&p, &id));
        p.realm_roles = vec!["user".into()];
        p.client_roles = vec![("app".into(), "viewer".into())];
        p.groups = vec!["/staff".into()];
        assert!(permits(&p, &id), "subgroup members are members");
        p.groups = vec!["/sta".into()];
        assert!(!permits(&p, &id), "a group path prefix is not a parent");
        p.require_all = false;
        p.realm_roles.clear();
        p.client_roles = vec![("other".into(), "viewer".into())];
        assert!(!permits(&p, &id));
    }
}
