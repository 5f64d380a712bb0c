//! A small HTTP helper for driving the OIDC and admin endpoints of a [`TestServer`].

use reqwest::blocking::{Client, RequestBuilder, Response};
use serde_json::{json, Value};

use crate::harness::{TestServer, ADMIN};

/// Status, headers and JSON body (or `Value::Null`) of a response.
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    fn from(r: Response) -> Reply {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            text,
        }
    }

    /// The last path segment of `Location` (the new id).
    pub fn location_id(&self) -> String {
        let loc = self.headers["location"].to_str().unwrap();
        loc.rsplit('/').next().unwrap().to_string()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A client of one server over plain HTTP (base `http://127.0.0.1:PORT`).
pub struct Api {
    pub base: String,
    pub client: Client,
    pub token: Option<String>,
}

impl Api {
    pub fn new(server: &TestServer) -> Api {
        Api {
            base: format!("http://{}", server.http),
            client: server.client(),
            token: None,
        }
    }

    /// Another client of the same server, without a token.
    pub fn new_like(other: &Api) -> Api {
        Api {
            base: other.base.clone(),
            client: other.client.clone(),
            token: None,
        }
    }

    /// Logged in as the bootstrap administrator (password grant on master's admin-cli).
    pub fn admin(server: &TestServer) -> Api {
        let mut api = Api::new(server);
        let r = api.token(
            "master",
            &[
                ("grant_type", "password"),
                ("client_id", "admin-cli"),
                ("username", ADMIN.0),
                ("password", ADMIN.1),
            ],
        );
        assert_eq!(r.status, 200, "{}", r.text);
        api.token = Some(r.body["access_token"].as_str().unwrap().to_string());
        api
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn auth(&self, rb: RequestBuilder) -> RequestBuilder {
        match &self.token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        }
    }

    pub fn get(&self, path: &str) -> Reply {
        Reply::from(self.auth(self.client.get(self.url(path))).send().unwrap())
    }

    pub fn delete(&self, path: &str) -> Reply {
        Reply::from(
            self.auth(self.client.delete(self.url(path)))
                .send()
                .unwrap(),
        )
    }

    /// DELETE with a JSON body (role mappings).
    pub fn delete_json(&self, path: &str, body: &Value) -> Reply {
        Reply::from(
            self.auth(self.client.delete(self.url(path)))
                .json(body)
                .send()
                .unwrap(),
        )
    }

    pub fn post(&self, path: &str, body: &Value) -> Reply {
        Reply::from(
            self.auth(self.client.post(self.url(path)))
                .json(body)
                .send()
                .unwrap(),
        )
    }

    pub fn put(&self, path: &str, body: &Value) -> Reply {
        Reply::from(
            self.auth(self.client.put(self.url(path)))
                .json(body)
                .send()
                .unwrap(),
        )
    }

    /// POST a form to an OIDC endpoint of `realm` (`token`, `token/introspect`, ...).
    pub fn form(&self, realm: &str, endpoint: &str, form: &[(&str, &str)]) -> Reply {
        let url = self.url(&format!(
            "/realms/{realm}/protocol/openid-connect/{endpoint}"
        ));
        Reply::from(self.client.post(url).form(form).send().unwrap())
    }

    pub fn token(&self, realm: &str, form: &[(&str, &str)]) -> Reply {
        self.form(realm, "token", form)
    }

    /// Create a realm, a confidential client `app` (direct grants on, redirect
    /// `http://localhost:3000/*`) and a user `alice` / `Alice-pass-1` with realm role `user`.
    /// Returns (client secret, user id).
    pub fn setup_realm(&self, realm: &str) -> (String, String) {
        let r = self.post("/admin/realms", &json!({"realm": realm, "enabled": true}));
        assert_eq!(r.status, 201, "{}", r.text);
        let r = self.post(
            &format!("/admin/realms/{realm}/clients"),
            &json!({
                "clientId": "app", "publicClient": false, "directAccessGrantsEnabled": true,
                "serviceAccountsEnabled": true, "redirectUris": ["http://localhost:3000/*"],
                "webOrigins": ["+"]
            }),
        );
        assert_eq!(r.status, 201, "{}", r.text);
        let client_uuid = r.location_id();
        let secret = self
            .get(&format!(
                "/admin/realms/{realm}/clients/{client_uuid}/client-secret"
            ))
            .body["value"]
            .as_str()
            .unwrap()
            .to_string();
        let r = self.post(
            &format!("/admin/realms/{realm}/roles"),
            &json!({"name": "user"}),
        );
        assert_eq!(r.status, 201, "{}", r.text);
        let r = self.post(
            &format!("/admin/realms/{realm}/users"),
            &json!({"username": "alice", "enabled": true, "email": "alice@example.com", "firstName": "Alice", "lastName": "Liddell",
                    "credentials": [{"type": "password", "value": "Alice-pass-1", "temporary": false}]}),
        );
        assert_eq!(r.status, 201, "{}", r.text);
        let user_id = r.location_id();
        let r = self.post(
            &format!("/admin/realms/{realm}/users/{user_id}/role-mappings/realm"),
            &json!([{"name": "user"}]),
        );
        assert_eq!(r.status, 204, "{}", r.text);
        (secret, user_id)
    }

    /// Password grant for alice on `app`.
    pub fn alice_tokens(&self, realm: &str, secret: &str, scope: &str) -> Value {
        let r = self.token(
            realm,
            &[
                ("grant_type", "password"),
                ("client_id", "app"),
                ("client_secret", secret),
                ("username", "alice"),
                ("password", "Alice-pass-1"),
                ("scope", scope),
            ],
        );
        assert_eq!(r.status, 200, "{}", r.text);
        r.body
    }
}

/// Decode a JWT's payload (no verification: the test checks fields only).
pub fn claims(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

pub fn header(token: &str) -> Value {
    use base64::Engine;
    let part = token.split('.').next().unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}
