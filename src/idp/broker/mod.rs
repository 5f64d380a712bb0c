//! Identity brokering, the provider side: an identity provider's stored representation read
//! as a [`Provider`] (generic OpenID Connect, Keycloak, Google with its endpoints built in,
//! GitHub's OAuth and API), the authorization request sent to it, and the callback's work —
//! the code exchanged for tokens, the ID token verified (signature by the provider's JWKS with
//! the algorithm its key dictates, `iss`, `aud`, `azp`, `nonce`, `exp`), userinfo or GitHub's
//! `/user` and `/user/emails` read — giving the [`Identity`] the login pages link or create
//! a user for (`login/broker.rs`).
//!
//! Outbound calls go through one pooled async client (rustls, system roots) with short
//! connect and read timeouts, so a slow provider delays only the login waiting for it.

pub mod mappers;

use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;

use crate::crypto::jwt::{decode_header, VerifyingKey};
use crate::store::{Result as StoreResult, Txn, View};

/// The stored kind of identity providers (`admin/providers.rs`).
pub const IDP_KIND: &str = "identity-provider";

/// How long a provider may take to accept a connection, and to answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest answer read from a provider.
const MAX_RESPONSE: usize = 1 << 20;

/// Which protocol a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// OpenID Connect (`oidc`, `keycloak-oidc`, `google`, and the other OIDC social types).
    Oidc,
    /// GitHub: OAuth 2 and its REST API (no ID token).
    Github,
}

/// `syncMode`: what later logins do with the profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// Only the first login fills the profile (Keycloak's default, `LEGACY` too).
    Import,
    /// Every login overwrites it from the provider.
    Force,
}

/// An identity provider ready for a login.
#[derive(Debug, Clone)]
pub struct Provider {
    pub alias: String,
    pub provider_id: String,
    pub display_name: String,
    pub kind: Kind,
    pub enabled: bool,
    pub hide_on_login: bool,
    pub link_only: bool,
    pub trust_email: bool,
    pub store_token: bool,
    /// `addReadTokenRoleOnCreate`: new users may read their stored tokens.
    pub add_read_token_role: bool,
    pub sync_mode: SyncMode,
    client_id: String,
    client_secret: String,
    client_auth: ClientAuth,
    /// `clientAssertionAudience`: the `aud` of a client assertion (the token URL if unset).
    assertion_audience: Option<String>,
    /// `forwardParameters`: parameters of the client's authorization request passed on.
    forward_parameters: Vec<String>,
    /// `clientAssertionSigningAlg` is ES256.
    assertion_alg_es256: bool,
    authorization_url: String,
    token_url: String,
    userinfo_url: Option<String>,
    jwks_url: Option<String>,
    issuer: Option<String>,
    api_url: String,
    scope: String,
    pkce: bool,
    prompt: Option<String>,
    /// `loginHint`: pass the client's `login_hint` on to the provider.
    forward_login_hint: bool,
    /// `logoutUrl`: the provider's end-session endpoint, called when a session it started
    /// ends here.
    pub logout_url: Option<String>,
    /// `backchannelSupported`: the end-session call is made by the server; otherwise the
    /// browser is sent there at its logout and comes back.
    pub backchannel_logout: bool,
    /// `validateSignature` said explicitly (an ID token must then verify against keys).
    validate_signature: bool,
    hosted_domain: Option<String>,
}

/// `clientAuthMethod`: how the code exchange proves the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// `client_secret_post` (Keycloak's default).
    Post,
    /// `client_secret_basic`.
    Basic,
    /// `client_secret_jwt`: an HS256 assertion keyed by the client secret.
    SecretJwt,
    /// `private_key_jwt`: an assertion signed by the realm's key (the provider reads our
    /// JWKS at `/realms/{realm}/protocol/openid-connect/certs`).
    PrivateKeyJwt,
}

/// The parameters a client's authorization request may never override at the provider.
const OWN_PARAMETERS: &[&str] = &[
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "request",
    "request_uri",
    "response_mode",
    // Standard ones with settings of their own (`prompt`, `loginHint`, `hostedDomain`, ...).
    "prompt",
    "login_hint",
    "max_age",
    "id_token_hint",
    "claims",
    "hd",
    "display",
];

/// What the provider says about the user.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Identity {
    /// The provider's stable user id (`sub`, GitHub's numeric id).
    pub id: String,
    pub username: Option<String>,
    pub email: Option<String>,
    pub email_verified: bool,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// Every claim the provider gave (ID token and userinfo), for mappers.
    pub claims: Value,
    /// The provider's token response (kept when `storeToken` is on).
    pub tokens: Value,
}

/// Why a brokered login failed; every case is shown as a page, never a 500.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokerError {
    /// The provider could not be reached or answered garbage.
    #[error("the identity provider could not be reached: {0}")]
    Unreachable(String),
    /// The provider refused (an OAuth error, a failed exchange).
    #[error("the identity provider refused the login: {0}")]
    Refused(String),
    /// What came back fails verification (signature, issuer, audience, nonce, expiry).
    #[error("the identity provider's answer is not valid: {0}")]
    Invalid(String),
}

fn config<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get("config")
        .and_then(|c| c.get(key))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn flag(v: &Value, key: &str) -> bool {
    match v.get(key) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => false,
    }
}

impl Provider {
    /// Read a stored identity provider; `None` for types this server cannot broker to.
    pub fn from_representation(v: &Value) -> Option<Provider> {
        let alias = v.get("alias")?.as_str()?.to_string();
        let provider_id = v.get("providerId")?.as_str()?.to_string();
        let text = |k: &str| config(v, k).map(str::to_string);
        let (kind, auth, token, userinfo, jwks, issuer, scope) = match provider_id.as_str() {
            "oidc" | "keycloak-oidc" => (
                Kind::Oidc,
                text("authorizationUrl")?,
                text("tokenUrl")?,
                text("userInfoUrl"),
                text("jwksUrl").filter(|_| config(v, "useJwksUrl") != Some("false")),
                text("issuer"),
                "openid",
            ),
            // Google's endpoints are built in; a configured URL wins (a corporate proxy, or
            // a test's stand-in).
            "google" => (
                Kind::Oidc,
                text("authorizationUrl")
                    .unwrap_or_else(|| "https://accounts.google.com/o/oauth2/v2/auth".into()),
                text("tokenUrl").unwrap_or_else(|| "https://oauth2.googleapis.com/token".into()),
                Some(
                    text("userInfoUrl").unwrap_or_else(|| {
                        "https://openidconnect.googleapis.com/v1/userinfo".into()
                    }),
                ),
                Some(
                    text("jwksUrl")
                        .unwrap_or_else(|| "https://www.googleapis.com/oauth2/v3/certs".into()),
                ),
                Some(text("issuer").unwrap_or_else(|| "https://accounts.google.com".into())),
                "openid profile email",
            ),
            "github" => {
                let base = text("baseUrl").unwrap_or_else(|| "https://github.com".into());
                let base = base.trim_end_matches('/').to_string();
                (
                    Kind::Github,
                    format!("{base}/login/oauth/authorize"),
                    format!("{base}/login/oauth/access_token"),
                    None,
                    None,
                    None,
                    "user:email",
                )
            }
            _ => return None,
        };
        let api_url = text("apiUrl")
            .unwrap_or_else(|| "https://api.github.com".into())
            .trim_end_matches('/')
            .to_string();
        let display_name = v
            .get("displayName")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| match provider_id.as_str() {
                "google" => "Google".into(),
                "github" => "GitHub".into(),
                _ => alias.clone(),
            });
        let sync_mode = match config(v, "syncMode") {
            Some("FORCE") => SyncMode::Force,
            _ => SyncMode::Import,
        };
        let mut scope = text("defaultScope").unwrap_or_else(|| scope.to_string());
        if kind == Kind::Oidc && !scope.split_whitespace().any(|s| s == "openid") {
            scope = format!("openid {scope}");
        }
        Some(Provider {
            enabled: v.get("enabled").is_none_or(|_| flag(v, "enabled")),
            hide_on_login: flag(v, "hideOnLogin") || config(v, "hideOnLoginPage") == Some("true"),
            link_only: flag(v, "linkOnly"),
            trust_email: flag(v, "trustEmail"),
            store_token: flag(v, "storeToken"),
            add_read_token_role: flag(v, "addReadTokenRoleOnCreate"),
            sync_mode,
            client_id: text("clientId")?,
            client_secret: text("clientSecret").unwrap_or_default(),
            client_auth: match config(v, "clientAuthMethod") {
                Some("client_secret_basic") => ClientAuth::Basic,
                Some("client_secret_jwt") => ClientAuth::SecretJwt,
                Some("private_key_jwt") => ClientAuth::PrivateKeyJwt,
                _ => ClientAuth::Post,
            },
            assertion_audience: text("clientAssertionAudience"),
            assertion_alg_es256: config(v, "clientAssertionSigningAlg") == Some("ES256"),
            forward_parameters: config(v, "forwardParameters")
                .unwrap_or_default()
                .split(',')
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty() && !OWN_PARAMETERS.contains(&p.as_str()))
                .collect(),
            authorization_url: auth,
            token_url: token,
            userinfo_url: userinfo.filter(|_| config(v, "disableUserInfo") != Some("true")),
            jwks_url: jwks,
            issuer,
            api_url,
            scope,
            pkce: config(v, "pkceEnabled") == Some("true"),
            prompt: text("prompt").filter(|p| p != "unspecified"),
            forward_login_hint: config(v, "loginHint") == Some("true"),
            validate_signature: config(v, "validateSignature") == Some("true"),
            logout_url: text("logoutUrl").filter(|u| url::Url::parse(u).is_ok()),
            backchannel_logout: config(v, "backchannelSupported") == Some("true"),
            hosted_domain: text("hostedDomain").filter(|_| provider_id == "google"),
            alias,
            provider_id,
            display_name,
            kind,
        })
    }

    /// Whether the code flow sends a PKCE challenge (S256).
    pub fn uses_pkce(&self) -> bool {
        self.pkce
    }

    /// Whether an ID token nonce is part of the request (OpenID Connect only).
    pub fn uses_nonce(&self) -> bool {
        self.kind == Kind::Oidc
    }

    /// The URL the browser is sent to.
    pub fn authorization_request(
        &self,
        redirect_uri: &str,
        state: &str,
        nonce: &str,
        challenge: Option<&str>,
        login_hint: Option<&str>,
        client_params: &dyn Fn(&str) -> Option<String>,
    ) -> Result<String, BrokerError> {
        let mut url = url::Url::parse(&self.authorization_url).map_err(|_| {
            BrokerError::Invalid(format!(
                "the authorization URL {} is not a URL",
                self.authorization_url
            ))
        })?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &self.client_id)
                .append_pair("redirect_uri", redirect_uri)
                .append_pair("scope", &self.scope)
                .append_pair("state", state);
            if self.uses_nonce() {
                q.append_pair("nonce", nonce);
            }
            if let Some(c) = challenge {
                q.append_pair("code_challenge", c)
                    .append_pair("code_challenge_method", "S256");
            }
            if let Some(p) = &self.prompt {
                q.append_pair("prompt", p);
            }
            // Only when the provider is configured to receive it (Keycloak's `loginHint`):
            // the hint is the client's, and says who is signing in.
            if let Some(h) = login_hint.filter(|_| self.forward_login_hint) {
                q.append_pair("login_hint", h);
            }
            if let Some(hd) = &self.hosted_domain {
                q.append_pair("hd", hd);
            }
            // `forwardParameters`: named parameters of the client's own request, never the
            // ones this request is made of.
            for name in &self.forward_parameters {
                if let Some(value) = client_params(name) {
                    q.append_pair(name, &value);
                }
            }
            drop(q);
            // A name the request has already (set above) is not given twice.
            let mut seen = std::collections::BTreeSet::new();
            let pairs: Vec<(String, String)> = url
                .query_pairs()
                .filter(|(k, _)| seen.insert(k.to_string()))
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            url.query_pairs_mut().clear().extend_pairs(pairs);
        }
        Ok(url.to_string())
    }

    /// Exchange the code and find out who logged in.
    pub async fn complete(
        &self,
        code: &str,
        redirect_uri: &str,
        verifier: Option<&str>,
        nonce: &str,
        now_secs: i64,
        realm_key: Option<&crate::crypto::jwt::SigningKey>,
    ) -> Result<Identity, BrokerError> {
        let tokens = self
            .exchange(code, redirect_uri, verifier, realm_key, now_secs)
            .await?;
        let identity = match self.kind {
            Kind::Oidc => self.oidc_identity(&tokens, nonce, now_secs).await?,
            Kind::Github => self.github_identity(&tokens).await?,
        };
        if let Some(hd) = &self.hosted_domain {
            if identity.claims.get("hd").and_then(Value::as_str) != Some(hd.as_str()) {
                return Err(BrokerError::Invalid(format!(
                    "the account is not in the hosted domain {hd}"
                )));
            }
        }
        Ok(Identity { tokens, ..identity })
    }

    async fn exchange(
        &self,
        code: &str,
        redirect_uri: &str,
        verifier: Option<&str>,
        realm_key: Option<&crate::crypto::jwt::SigningKey>,
        now_secs: i64,
    ) -> Result<Value, BrokerError> {
        let assertion = self.client_assertion(realm_key, now_secs)?;
        let mut form: Vec<(&str, &str)> = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
        ];
        if let Some(v) = verifier {
            form.push(("code_verifier", v));
        }
        let mut request = client()
            .post(&self.token_url)
            .header("Accept", "application/json");
        match (self.client_auth, &assertion) {
            (ClientAuth::Basic, _) => {
                // RFC 6749 2.3.1: both halves form-encoded before the Basic encoding.
                let enc =
                    |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
                request = request.basic_auth(enc(&self.client_id), Some(enc(&self.client_secret)));
            }
            (_, Some(jwt)) => {
                form.push(("client_id", &self.client_id));
                form.push((
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ));
                form.push(("client_assertion", jwt));
            }
            _ => {
                form.push(("client_id", &self.client_id));
                form.push(("client_secret", &self.client_secret));
            }
        }
        let response = request
            .form(&form)
            .send()
            .await
            .map_err(|e| BrokerError::Unreachable(e.to_string()))?;
        let status = response.status();
        let body = read_json(response).await?;
        if !status.is_success() || body.get("error").is_some() {
            let error = body.get("error").and_then(Value::as_str).unwrap_or("error");
            let description = body
                .get("error_description")
                .and_then(Value::as_str)
                .unwrap_or("");
            return Err(BrokerError::Refused(format!(
                "token endpoint answered {status}: {error} {description}"
            )));
        }
        if body.get("access_token").and_then(Value::as_str).is_none() {
            return Err(BrokerError::Invalid(
                "no access_token in the token response".into(),
            ));
        }
        Ok(body)
    }

    /// The client assertion of `client_secret_jwt` / `private_key_jwt` (RFC 7523): issued by
    /// and about the client, for the token endpoint, one minute long, never used twice.
    fn client_assertion(
        &self,
        realm_key: Option<&crate::crypto::jwt::SigningKey>,
        now_secs: i64,
    ) -> Result<Option<String>, BrokerError> {
        let claims = serde_json::json!({
            "iss": self.client_id, "sub": self.client_id,
            "aud": self.assertion_audience.as_deref().unwrap_or(&self.token_url),
            "jti": crate::crypto::random_id(), "iat": now_secs, "exp": now_secs + 60,
        });
        let signed = match self.client_auth {
            ClientAuth::SecretJwt if self.client_secret.is_empty() => {
                return Err(BrokerError::Invalid(
                    "client_secret_jwt needs the client secret".into(),
                ))
            }
            ClientAuth::SecretJwt => {
                crate::crypto::jwt::sign_hs256(&claims, self.client_secret.as_bytes())
            }
            ClientAuth::PrivateKeyJwt => realm_key
                .ok_or_else(|| BrokerError::Invalid("the realm has no signing key".into()))?
                .sign(&claims),
            ClientAuth::Post | ClientAuth::Basic => return Ok(None),
        };
        signed
            .map(Some)
            .map_err(|e| BrokerError::Invalid(format!("cannot sign the client assertion: {e}")))
    }

    /// The realm key's algorithm for `private_key_jwt` (`clientAssertionSigningAlg`, RS256
    /// unless ES256 is asked for).
    pub fn assertion_algorithm(&self) -> crate::crypto::jwt::Algorithm {
        if self.assertion_alg_es256 {
            crate::crypto::jwt::Algorithm::ES256
        } else {
            crate::crypto::jwt::Algorithm::RS256
        }
    }

    /// The provider's end-session URL for a session of ours (`state` names it), with its ID
    /// token as `id_token_hint` and, for the browser, where to come back.
    pub fn logout_request(
        &self,
        state: &str,
        id_token: Option<&str>,
        post_logout: Option<&str>,
    ) -> Option<String> {
        let mut url = url::Url::parse(self.logout_url.as_deref()?).ok()?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("state", state);
            if let Some(t) = id_token {
                q.append_pair("id_token_hint", t);
            }
            if let Some(p) = post_logout {
                q.append_pair("post_logout_redirect_uri", p);
                if id_token.is_none() {
                    q.append_pair("client_id", &self.client_id);
                }
            }
        }
        Some(url.to_string())
    }

    /// End the provider's session of `state` by a call from the server (`backchannelSupported`);
    /// the answer only logged.
    pub async fn backchannel_logout(&self, state: &str, id_token: Option<&str>) {
        let Some(url) = self.logout_request(state, id_token, None) else {
            return;
        };
        match client().get(&url).send().await {
            Ok(r) if r.status().is_success() || r.status().is_redirection() => {}
            Ok(r) => {
                tracing::warn!(alias = %self.alias, status = %r.status(), "the identity provider refused the logout")
            }
            Err(e) => {
                tracing::warn!(alias = %self.alias, error = %e, "the identity provider's logout could not be reached")
            }
        }
    }

    /// Whether the code exchange signs with the realm's key.
    pub fn signs_with_realm_key(&self) -> bool {
        self.client_auth == ClientAuth::PrivateKeyJwt
    }

    async fn oidc_identity(
        &self,
        tokens: &Value,
        nonce: &str,
        now_secs: i64,
    ) -> Result<Identity, BrokerError> {
        // An OpenID provider must answer with an ID token: its nonce binds the answer to
        // this login (userinfo alone would not).
        let id_token = tokens
            .get("id_token")
            .and_then(Value::as_str)
            .ok_or_else(|| BrokerError::Invalid("no ID token in the token response".into()))?;
        let mut claims = self.verify_id_token(id_token, nonce, now_secs).await?;
        let access = tokens["access_token"].as_str().unwrap_or_default();
        // A JWT access token signed by the provider's keys (and from its issuer) adds its
        // claims too (roles, groups), as Keycloak's mappers see them; anything else is opaque.
        if let Some(extra) = self.signed_claims(access).await {
            merge_missing(&mut claims, &extra);
        }
        if let Some(url) = &self.userinfo_url {
            let info = get_json(url, access).await?;
            if let Some(sub) = claims.get("sub") {
                if info.get("sub") != Some(sub) {
                    return Err(BrokerError::Invalid(
                        "userinfo is about another subject than the ID token".into(),
                    ));
                }
            }
            merge_missing(&mut claims, &info);
        }
        let s = |k: &str| {
            claims
                .get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let id = s("sub").ok_or_else(|| BrokerError::Invalid("no sub".into()))?;
        Ok(Identity {
            username: s("preferred_username"),
            email: s("email"),
            email_verified: claims
                .get("email_verified")
                .is_some_and(|v| v == true || v == "true"),
            first_name: s("given_name"),
            last_name: s("family_name"),
            id,
            claims,
            tokens: Value::Null,
        })
    }

    /// The claims of a JWT signed by one of the provider's keys and issued by it, if it is one.
    async fn signed_claims(&self, token: &str) -> Option<Value> {
        let url = self.jwks_url.as_ref()?;
        let kid = decode_header(token).ok()?.kid;
        let keys = jwks(url, false).await.ok()?;
        let key = VerifyingKey::from_jwk(&find_key(&keys, kid.as_deref())?).ok()?;
        let claims: Value = key.verify(token).ok()?;
        match &self.issuer {
            Some(iss) if claims.get("iss").and_then(Value::as_str) != Some(iss.as_str()) => None,
            _ => Some(claims),
        }
    }

    /// The ID token's signature (the provider's JWKS; the key sets the algorithm, so `none`
    /// and HMAC-with-the-public-key tricks fail) and its claims.
    async fn verify_id_token(
        &self,
        token: &str,
        nonce: &str,
        now_secs: i64,
    ) -> Result<Value, BrokerError> {
        let claims: Value = match &self.jwks_url {
            Some(url) => {
                let header = decode_header(token)
                    .map_err(|_| BrokerError::Invalid("the ID token is malformed".into()))?;
                let kid = header.kid.clone();
                let mut keys = jwks(url, false).await?;
                if candidates(&keys, kid.as_deref()).is_empty() {
                    // A rotated key: fetch once more.
                    keys = jwks(url, true).await?;
                }
                let found = candidates(&keys, kid.as_deref());
                if found.is_empty() {
                    return Err(BrokerError::Invalid(
                        "the ID token is signed by an unknown key".into(),
                    ));
                }
                // Without a `kid`, each signing key is tried (the algorithm is the key's).
                found
                    .iter()
                    .filter_map(|jwk| VerifyingKey::from_jwk(jwk).ok())
                    .find_map(|key| key.verify::<Value>(token).ok())
                    .ok_or_else(|| {
                        BrokerError::Invalid("the ID token's signature does not verify".into())
                    })?
            }
            None if self.validate_signature => {
                return Err(BrokerError::Invalid(
                    "validateSignature is on but the provider has no JWKS URL".into(),
                ))
            }
            None => {
                // No JWKS configured: the token came straight from the token endpoint over
                // the connection we opened, which OpenID Connect allows instead of a
                // signature; its claims are still checked.
                crate::crypto::jwt::decode_unverified(token)
                    .map_err(|_| BrokerError::Invalid("the ID token is malformed".into()))?
            }
        };
        let claim = |k: &str| claims.get(k);
        if let Some(issuer) = &self.issuer {
            let iss = claim("iss").and_then(Value::as_str).unwrap_or("");
            // Google's tokens say either form.
            let google_bare = self.provider_id == "google"
                && issuer == "https://accounts.google.com"
                && iss == "accounts.google.com";
            if iss != issuer && !google_bare {
                return Err(BrokerError::Invalid("wrong issuer".into()));
            }
        }
        let audience_ok = match claim("aud") {
            Some(Value::String(a)) => a == &self.client_id,
            Some(Value::Array(list)) => {
                list.iter().any(|a| a == self.client_id.as_str())
                    && (list.len() == 1
                        || claim("azp").and_then(Value::as_str) == Some(self.client_id.as_str()))
            }
            _ => false,
        };
        if !audience_ok {
            return Err(BrokerError::Invalid(
                "the ID token is for another client".into(),
            ));
        }
        if let Some(azp) = claim("azp").and_then(Value::as_str) {
            if azp != self.client_id {
                return Err(BrokerError::Invalid("wrong authorized party".into()));
            }
        }
        if claim("nonce").and_then(Value::as_str) != Some(nonce) {
            return Err(BrokerError::Invalid("wrong nonce".into()));
        }
        match claim("exp").and_then(Value::as_i64) {
            Some(exp) if exp + 30 > now_secs => {}
            _ => return Err(BrokerError::Invalid("the ID token has expired".into())),
        }
        Ok(claims)
    }

    async fn github_identity(&self, tokens: &Value) -> Result<Identity, BrokerError> {
        let access = tokens["access_token"].as_str().unwrap_or_default();
        let user = get_json(&format!("{}/user", self.api_url), access).await?;
        let id = match user.get("id") {
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => return Err(BrokerError::Invalid("GitHub's /user has no id".into())),
        };
        let s = |k: &str| {
            user.get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        // The profile's public address, else the primary verified one of /user/emails.
        let (email, verified) = match s("email") {
            Some(e) => (Some(e), false),
            None => {
                let emails = get_json(&format!("{}/user/emails", self.api_url), access).await?;
                let primary = emails.as_array().and_then(|list| {
                    list.iter()
                        .find(|e| e["primary"] == true && e["verified"] == true)
                        .or_else(|| list.iter().find(|e| e["primary"] == true))
                });
                match primary {
                    Some(p) => (
                        p["email"].as_str().map(str::to_string),
                        p["verified"] == true,
                    ),
                    None => (None, false),
                }
            }
        };
        let (first, last) = match s("name") {
            Some(name) => match name.split_once(' ') {
                Some((f, l)) => (Some(f.to_string()), Some(l.trim().to_string())),
                None => (Some(name), None),
            },
            None => (None, None),
        };
        Ok(Identity {
            id,
            username: s("login"),
            email,
            email_verified: verified,
            first_name: first,
            last_name: last,
            claims: user,
            tokens: Value::Null,
        })
    }
}

/// Copy the claims of `extra` that `claims` does not have.
fn merge_missing(claims: &mut Value, extra: &Value) {
    if let (Some(c), Some(e)) = (claims.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            c.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
}

/// The signing keys a token may be signed with: the one its `kid` names, or (without one)
/// every signing key.
fn candidates(keys: &Value, kid: Option<&str>) -> Vec<Value> {
    let Some(list) = keys.get("keys").and_then(Value::as_array) else {
        return Vec::new();
    };
    list.iter()
        .filter(|k| {
            k.get("use")
                .and_then(Value::as_str)
                .is_none_or(|u| u == "sig")
        })
        .filter(|k| kid.is_none_or(|kid| k.get("kid").and_then(Value::as_str) == Some(kid)))
        .cloned()
        .collect()
}

fn find_key(keys: &Value, kid: Option<&str>) -> Option<Value> {
    let found = candidates(keys, kid);
    match (kid, found.len()) {
        (Some(_), _) | (None, 1) => found.into_iter().next(),
        _ => None,
    }
}

/// The one outbound client of the IdP (pooled; rustls with the system's roots).
fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(READ_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("portcullis/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new())
    })
}

async fn read_json(mut response: reqwest::Response) -> Result<Value, BrokerError> {
    let too_large = || BrokerError::Unreachable("the answer is too large".into());
    if response
        .content_length()
        .is_some_and(|l| l as usize > MAX_RESPONSE)
    {
        return Err(too_large());
    }
    // Read in chunks, so an answer without a length cannot grow past the limit.
    let mut bytes = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| BrokerError::Unreachable(e.to_string()))?
    {
        if bytes.len() + chunk.len() > MAX_RESPONSE {
            return Err(too_large());
        }
        bytes.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&bytes)
        .map_err(|_| BrokerError::Unreachable("the answer is not JSON".into()))
}

async fn get_json(url: &str, bearer: &str) -> Result<Value, BrokerError> {
    let response = client()
        .get(url)
        .bearer_auth(bearer)
        .header("Accept", "application/json")
        .send()
        .await
        .map_err(|e| BrokerError::Unreachable(e.to_string()))?;
    let status = response.status();
    if !status.is_success() {
        return Err(BrokerError::Refused(format!("{url} answered {status}")));
    }
    read_json(response).await
}

/// Providers' JWKS, cached for five minutes.
fn jwks_cache() -> &'static moka::sync::Cache<String, Value> {
    static CACHE: OnceLock<moka::sync::Cache<String, Value>> = OnceLock::new();
    CACHE.get_or_init(|| {
        moka::sync::Cache::builder()
            .max_capacity(256)
            .time_to_live(Duration::from_secs(300))
            .build()
    })
}

/// Drop a provider's cached keys (`reload-keys`).
pub fn forget_keys(jwks_url: &str) {
    jwks_cache().invalidate(jwks_url);
}

/// A public JSON document of a provider (its JWKS, its discovery document).
async fn fetch_json(url: &str) -> Result<Value, BrokerError> {
    let response = client()
        .get(url)
        .header("Accept", "application/json")
        .send()
        .await
        .map_err(|e| BrokerError::Unreachable(e.to_string()))?;
    if !response.status().is_success() {
        return Err(BrokerError::Unreachable(format!(
            "{url} answered {}",
            response.status()
        )));
    }
    read_json(response).await
}

/// A provider's JWKS (`refresh` skips the cache).
async fn jwks(url: &str, refresh: bool) -> Result<Value, BrokerError> {
    let cache = jwks_cache();
    if !refresh {
        if let Some(v) = cache.get(url) {
            return Ok(v);
        }
    }
    let keys = fetch_json(url).await?;
    cache.insert(url.to_string(), keys.clone());
    Ok(keys)
}

/// An OpenID provider's discovery document as an identity provider's `config`
/// (`import-config`): endpoints, issuer, JWKS.
pub fn config_from_discovery(doc: &Value) -> Result<Value, BrokerError> {
    let s = |k: &str| doc.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    let (Some(auth), Some(token)) = (s("authorization_endpoint"), s("token_endpoint")) else {
        return Err(BrokerError::Invalid(
            "not an OpenID Connect discovery document (no authorization_endpoint or token_endpoint)"
                .into(),
        ));
    };
    let mut config = serde_json::Map::new();
    config.insert("authorizationUrl".into(), auth.into());
    config.insert("tokenUrl".into(), token.into());
    for (from, to) in [
        ("userinfo_endpoint", "userInfoUrl"),
        ("jwks_uri", "jwksUrl"),
        ("issuer", "issuer"),
        ("end_session_endpoint", "logoutUrl"),
    ] {
        if let Some(v) = s(from) {
            config.insert(to.into(), v.into());
        }
    }
    if config.contains_key("jwksUrl") {
        config.insert("useJwksUrl".into(), "true".into());
        config.insert("validateSignature".into(), "true".into());
    }
    let methods = doc
        .get("code_challenge_methods_supported")
        .and_then(Value::as_array);
    if methods.is_some_and(|m| m.iter().any(|x| x == "S256")) {
        config.insert("pkceEnabled".into(), "true".into());
        config.insert("pkceMethod".into(), "S256".into());
    }
    Ok(Value::Object(config))
}

/// Fetch a discovery document (`import-config` with `fromUrl`).
pub async fn discover(url: &str) -> Result<Value, BrokerError> {
    let parsed = url::Url::parse(url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| BrokerError::Invalid(format!("{url} is not an http(s) URL")))?;
    let doc = fetch_json(parsed.as_str()).await?;
    let mut config = config_from_discovery(&doc)?;
    config["metadataDescriptorUrl"] = url.into();
    Ok(config)
}

/// For ended sessions opened through a provider with `logoutUrl` and `backchannelSupported`:
/// end the provider's session too, by a call from the server (in the background; a provider
/// that does not answer only logs).
pub fn end_provider_sessions(
    app: &crate::idp::App,
    realm: &crate::store::RealmRecord,
    ended: &[crate::store::SessionRecord],
) {
    let due: Vec<(Provider, String, Option<String>)> = ended
        .iter()
        .filter_map(|s| {
            let alias = s.identity_provider.as_deref()?;
            let p = provider(&app.store.read().ok()?, &realm.id, alias).ok()??;
            (p.backchannel_logout && p.logout_url.is_some())
                .then(|| (p, s.id.clone(), s.broker_id_token.clone()))
        })
        .collect();
    if due.is_empty() {
        return;
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        for (p, sid, token) in due {
            p.backchannel_logout(&sid, token.as_deref()).await;
        }
    });
}

/// The enabled providers a login page offers (not hidden, not link-only), by alias.
pub fn login_providers<T: Txn>(read: &View<T>, realm_id: &str) -> StoreResult<Vec<Provider>> {
    Ok(read
        .objects(realm_id, IDP_KIND)?
        .iter()
        .filter_map(Provider::from_representation)
        .filter(|p| p.enabled && !p.hide_on_login && !p.link_only)
        .collect())
}

/// One enabled provider by alias.
pub fn provider<T: Txn>(
    read: &View<T>,
    realm_id: &str,
    alias: &str,
) -> StoreResult<Option<Provider>> {
    Ok(read
        .object(realm_id, IDP_KIND, alias)?
        .as_ref()
        .and_then(Provider::from_representation)
        .filter(|p| p.enabled))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn providers_read_from_their_representation() {
        let google = Provider::from_representation(&json!({"alias": "google", "providerId": "google",
            "enabled": true, "config": {"clientId": "g", "clientSecret": "s", "hostedDomain": "example.com"}}))
        .unwrap();
        assert_eq!(google.display_name, "Google");
        assert_eq!(
            google.issuer.as_deref(),
            Some("https://accounts.google.com")
        );
        let url = google
            .authorization_request("https://us/cb", "st", "no", Some("ch"), None, &|_| None)
            .unwrap();
        assert!(url.starts_with("https://accounts.google.com/o/oauth2/v2/auth?"));
        for part in [
            "client_id=g",
            "state=st",
            "nonce=no",
            "code_challenge=ch",
            "hd=example.com",
            "scope=openid+profile+email",
        ] {
            assert!(url.contains(part), "{url} has {part}");
        }
        let github =
            Provider::from_representation(&json!({"alias": "github", "providerId": "github",
            "config": {"clientId": "h", "baseUrl": "http://127.0.0.1:9/"}}))
            .unwrap();
        assert_eq!(github.kind, Kind::Github);
        assert!(github.enabled, "enabled unless said otherwise");
        assert!(github
            .authorization_request("https://us/cb", "st", "no", None, None, &|_| None)
            .unwrap()
            .starts_with("http://127.0.0.1:9/login/oauth/authorize?"));
        assert!(!github
            .authorization_request("x", "s", "n", None, None, &|_| None)
            .unwrap()
            .contains("nonce"));
        let oidc = Provider::from_representation(&json!({"alias": "corp", "providerId": "oidc",
            "enabled": false, "hideOnLogin": true, "config": {"clientId": "c", "authorizationUrl": "https://a/auth",
            "tokenUrl": "https://a/token", "defaultScope": "email", "syncMode": "FORCE"}}))
        .unwrap();
        assert!(!oidc.enabled && oidc.hide_on_login);
        let url = oidc
            .authorization_request(
                "https://us/cb",
                "s",
                "n",
                None,
                Some("ann@example.com"),
                &|_| None,
            )
            .unwrap();
        assert!(
            !url.contains("login_hint"),
            "not forwarded unless loginHint is on: {url}"
        );
        assert_eq!(oidc.scope, "openid email");
        assert_eq!(oidc.sync_mode, SyncMode::Force);
        // `forwardParameters`: the named parameters of the client's request go along; the
        // request's own (state, redirect_uri, ...) cannot be replaced that way.
        let fwd = Provider::from_representation(&json!({"alias": "f", "providerId": "oidc",
            "config": {"clientId": "c", "authorizationUrl": "https://a/auth", "tokenUrl": "https://a/token",
                       "forwardParameters": "acr_values, audience ,state,redirect_uri"}}))
        .unwrap();
        let client = |name: &str| match name {
            "acr_values" => Some("gold".to_string()),
            "state" => Some("evil".to_string()),
            "redirect_uri" => Some("https://evil/".to_string()),
            _ => None,
        };
        let url = fwd
            .authorization_request("https://us/cb", "s", "n", None, None, &client)
            .unwrap();
        assert!(url.contains("acr_values=gold"), "{url}");
        assert!(!url.contains("evil") && !url.contains("audience"), "{url}");
        // Nor the standard ones with settings of their own, nor a name given twice.
        let fwd = Provider::from_representation(&json!({"alias": "f", "providerId": "oidc",
            "config": {"clientId": "c", "authorizationUrl": "https://a/auth?acr_values=fixed",
                       "tokenUrl": "https://a/token", "prompt": "login",
                       "forwardParameters": "prompt,acr_values"}}))
        .unwrap();
        let client = |name: &str| match name {
            "prompt" => Some("none".to_string()),
            "acr_values" => Some("gold".to_string()),
            _ => None,
        };
        let url = fwd
            .authorization_request("https://us/cb", "s", "n", None, None, &client)
            .unwrap();
        assert_eq!(url.matches("prompt=").count(), 1, "{url}");
        assert!(
            url.contains("prompt=login") && !url.contains("prompt=none"),
            "{url}"
        );
        assert_eq!(url.matches("acr_values=").count(), 1, "{url}");
        assert!(url.contains("acr_values=fixed"), "{url}");
        assert_eq!(fwd.client_auth, ClientAuth::Post);
        assert!(Provider::from_representation(
            &json!({"alias": "s", "providerId": "saml", "config": {"clientId": "c"}})
        )
        .is_none());
    }

    #[test]
    fn keys_are_found_by_kid_or_alone() {
        let keys =
            json!({"keys": [{"kid": "a", "kty": "RSA"}, {"kid": "b", "kty": "EC", "use": "enc"}]});
        assert!(find_key(&keys, Some("a")).is_some());
        assert!(
            find_key(&keys, Some("b")).is_none(),
            "encryption keys do not verify"
        );
        assert!(find_key(&keys, None).is_some(), "the only signing key");
        assert!(find_key(&json!({"keys": [{"kid": "a"}, {"kid": "c"}]}), None).is_none());
    }
}
