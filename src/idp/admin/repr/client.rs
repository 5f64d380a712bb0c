//! The client representation, and the redirect URI patterns Keycloak accepts.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::store::ClientRecord;

use super::empty_to_none;

#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", default)]
#[schemars(rename = "ClientRepresentation")]
pub struct ClientInput {
    pub id: Option<String>,
    pub client_id: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub root_url: Option<String>,
    pub admin_url: Option<String>,
    pub base_url: Option<String>,
    pub redirect_uris: Option<Vec<String>>,
    pub web_origins: Option<Vec<String>>,
    pub enabled: Option<bool>,
    pub client_authenticator_type: Option<String>,
    pub secret: Option<String>,
    pub bearer_only: Option<bool>,
    pub consent_required: Option<bool>,
    pub public_client: Option<bool>,
    pub standard_flow_enabled: Option<bool>,
    pub implicit_flow_enabled: Option<bool>,
    pub direct_access_grants_enabled: Option<bool>,
    pub service_accounts_enabled: Option<bool>,
    pub frontchannel_logout: Option<bool>,
    pub protocol: Option<String>,
    pub attributes: Option<BTreeMap<String, Value>>,
    pub full_scope_allowed: Option<bool>,
    #[serde(deserialize_with = "super::objects")]
    #[schemars(with = "Option<Vec<serde_json::Map<String, Value>>>")]
    pub protocol_mappers: Option<Vec<Value>>,
    pub default_client_scopes: Option<Vec<String>>,
    pub optional_client_scopes: Option<Vec<String>>,
    /// `{"browser": flowId, "direct_grant": flowId}`; checked against the realm's flows by
    /// the caller (`admin::clients::apply_input`).
    pub authentication_flow_binding_overrides: Option<BTreeMap<String, String>>,
}

impl ClientInput {
    pub fn apply(&self, c: &mut ClientRecord) -> Result<(), String> {
        if let Some(id) = &self.client_id {
            let id = id.trim();
            if id.is_empty() {
                return Err("clientId is required".into());
            }
            c.client_id = id.to_string();
        }
        macro_rules! set {
            ($($field:ident),*) => {$(
                if let Some(v) = &self.$field {
                    c.$field = v.clone();
                }
            )*};
        }
        for mapper in self.protocol_mappers.iter().flatten() {
            crate::idp::mappers::check_claim(mapper)?;
        }
        set!(
            enabled,
            bearer_only,
            consent_required,
            public_client,
            standard_flow_enabled,
            implicit_flow_enabled,
            direct_access_grants_enabled,
            service_accounts_enabled,
            frontchannel_logout,
            full_scope_allowed,
            protocol_mappers
        );
        // `defaultClientScopes` / `optionalClientScopes` name scopes: the caller, which has
        // the store, turns them into ids (`admin::clients::apply_input`).
        for (field, value) in [
            (&mut c.name, &self.name),
            (&mut c.description, &self.description),
            (&mut c.root_url, &self.root_url),
            (&mut c.admin_url, &self.admin_url),
            (&mut c.base_url, &self.base_url),
        ] {
            if let Some(v) = empty_to_none(value) {
                *field = v;
            }
        }
        if let Some(uris) = &self.redirect_uris {
            for u in uris {
                validate_redirect_pattern(u)?;
            }
            c.redirect_uris = uris.clone();
        }
        if let Some(o) = &self.web_origins {
            c.web_origins = o.clone();
        }
        if let Some(t) = &self.client_authenticator_type {
            c.client_authenticator_type = t.clone();
        }
        if let Some(p) = &self.protocol {
            if p != "openid-connect" {
                return Err(format!("protocol {p} is not supported"));
            }
            c.protocol = p.clone();
        }
        if let Some(s) = &self.secret {
            c.secret = Some(s.clone()).filter(|s| !s.is_empty());
        }
        if let Some(attrs) = &self.attributes {
            for (k, v) in attrs {
                let text = match v {
                    Value::String(s) => s.clone(),
                    Value::Null => continue,
                    other => other.to_string(),
                };
                c.attributes.insert(k.clone(), text);
            }
        }
        Ok(())
    }
}

/// A registered redirect URI: absolute (or `*`, `+`, `/relative`), `*` only at the end.
pub fn validate_redirect_pattern(uri: &str) -> Result<(), String> {
    let body = uri.strip_suffix('*').unwrap_or(uri);
    if body.contains('*') {
        return Err(format!("A redirect URI may use '*' only at its end: {uri}"));
    }
    if uri == "*" || uri == "+" || uri.starts_with('/') {
        return Ok(());
    }
    match url::Url::parse(body) {
        Ok(u) if u.fragment().is_none() => Ok(()),
        Ok(_) => Err(format!("A redirect URI must not contain a fragment: {uri}")),
        Err(_) => Err(format!("Invalid redirect URI: {uri}")),
    }
}

/// A client; `scope_names` maps the realm's client scope ids to names.
pub fn client_repr(c: &ClientRecord, scope_names: &BTreeMap<String, String>) -> Value {
    let names = |ids: &[String]| -> Vec<String> {
        ids.iter()
            .filter_map(|id| scope_names.get(id).cloned())
            .collect()
    };
    let mut v = json!({
        "id": c.id,
        "clientId": c.client_id,
        "name": c.name,
        "description": c.description,
        "rootUrl": c.root_url,
        "adminUrl": c.admin_url,
        "baseUrl": c.base_url,
        "surrogateAuthRequired": false,
        "enabled": c.enabled,
        "alwaysDisplayInConsole": false,
        "clientAuthenticatorType": c.client_authenticator_type,
        "redirectUris": c.redirect_uris,
        "webOrigins": c.web_origins,
        "notBefore": 0,
        "bearerOnly": c.bearer_only,
        "consentRequired": c.consent_required,
        "standardFlowEnabled": c.standard_flow_enabled,
        "implicitFlowEnabled": c.implicit_flow_enabled,
        "directAccessGrantsEnabled": c.direct_access_grants_enabled,
        "serviceAccountsEnabled": c.service_accounts_enabled,
        "publicClient": c.public_client,
        "frontchannelLogout": c.frontchannel_logout,
        "protocol": c.protocol,
        "attributes": c.attributes,
        "fullScopeAllowed": c.full_scope_allowed,
        "protocolMappers": c.protocol_mappers,
        "authenticationFlowBindingOverrides": c.flow_overrides,
        "defaultClientScopes": names(&c.default_client_scopes),
        "optionalClientScopes": names(&c.optional_client_scopes),
        "access": {"view": true, "configure": true, "manage": true},
    });
    if !c.registered_nodes.is_empty() {
        v["registeredNodes"] = json!(c.registered_nodes);
    }
    if !c.public_client && !c.bearer_only {
        v["secret"] = c.secret.clone().into();
    }
    v
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        /// What the admin API shows of a client, sent back, is that client: serialise∘parse
        /// is identity on the fields a representation carries.
        #[test]
        fn a_client_representation_reads_back_as_the_client(
            client_id in "[a-z][a-z0-9-]{0,15}",
            name in proptest::option::of("[A-Za-z ]{1,12}"),
            root in proptest::option::of("https://[a-z]{1,8}\\.test"),
            uris in proptest::collection::vec("https://[a-z]{1,8}\\.test/[a-z]{0,6}\\*?", 0..4),
            origins in proptest::collection::vec(prop_oneof![Just("+".to_string()), "https://[a-z]{1,8}\\.test"], 0..3),
            flags in proptest::collection::vec(any::<bool>(), 9),
            attrs in proptest::collection::btree_map("[a-z.]{1,12}", "[ -~]{0,12}", 0..4),
        ) {
            let mut c = ClientRecord {
                id: "c1".into(),
                client_id,
                // As the API stores names: trimmed, none when blank.
                name: name.map(|n| n.trim().to_string()).filter(|n| !n.is_empty()),
                root_url: root,
                redirect_uris: uris,
                web_origins: origins,
                enabled: flags[0],
                bearer_only: flags[1],
                consent_required: flags[2],
                public_client: flags[3],
                standard_flow_enabled: flags[4],
                implicit_flow_enabled: flags[5],
                direct_access_grants_enabled: flags[6],
                service_accounts_enabled: flags[7],
                full_scope_allowed: flags[8],
                protocol: "openid-connect".into(),
                client_authenticator_type: "client-secret".into(),
                ..Default::default()
            };
            c.attributes = attrs;
            let shown = client_repr(&c, &BTreeMap::new());
            let back: ClientInput = serde_json::from_value(shown.clone()).unwrap();
            let mut again = ClientRecord { id: c.id.clone(), ..Default::default() };
            back.apply(&mut again).unwrap();
            // The secret is shown for confidential clients only; the rest must match.
            again.secret = c.secret.clone();
            prop_assert_eq!(client_repr(&again, &BTreeMap::new()), shown);
        }
    }
}
