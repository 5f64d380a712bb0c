//! The in-process test fixture: an [`App`] over a temporary store with a clock the test
//! moves, the master realm, an administrator and its access token, and helpers that call
//! the endpoints through [`App::route`] and [`App::handle`] as the proxy does, without a
//! socket. Passwords are hashed with cheap argon2 parameters and written to the store
//! directly, so a fixture costs little more than its realms' signing keys.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use http::HeaderMap;
use serde_json::Value;

use crate::clock::{Clock, ManualClock};
use crate::config::Config;
use crate::crypto::jwt::Algorithm;
use crate::crypto::password::{hash_password, Argon2Params, HashedPassword};
use crate::http::{RequestInfo, Response};
use crate::idp::login::theme::Themes;
use crate::idp::realm;
use crate::idp::App;
use crate::metrics::Metrics;
use crate::store::{ClientRecord, RealmRecord, SigningKeyRecord, UserRecord};

/// Where every fixture's clock starts (2023-11-14).
pub(crate) const START: i64 = 1_700_000_000_000;
/// The host every request names (the configured `server.hostnames`).
pub(crate) const HOST: &str = "idp.test";
/// The master realm's administrator.
pub(crate) const ADMIN: &str = "admin";
pub(crate) const ADMIN_PASSWORD: &str = "admin-pw";

/// argon2id parameters that make a hash cost about a millisecond.
pub(crate) fn cheap() -> Argon2Params {
    Argon2Params {
        memory_kib: 1024,
        iterations: 1,
        ..Default::default()
    }
}

/// `password` hashed with [`cheap`] parameters.
pub(crate) fn hashed(password: &str) -> HashedPassword {
    hash_password(password, &cheap()).unwrap()
}

/// One active RS256 and one ES256 key, generated once per test run: an RSA key costs
/// hundreds of milliseconds, and every fixture realm needs one.
pub(crate) fn test_keys() -> &'static [SigningKeyRecord] {
    static KEYS: std::sync::OnceLock<Vec<SigningKeyRecord>> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        [Algorithm::RS256, Algorithm::ES256]
            .into_iter()
            .map(|a| crate::idp::keys::new_key(a, START).unwrap())
            .collect()
    })
}

/// Status, headers and JSON body (`Null` when the body is not JSON) of an API call.
pub(crate) type Answer = (u16, HeaderMap, Value);

/// A response as the test sees it.
pub(crate) struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    fn from_response(r: Response) -> Reply {
        let (parts, body) = r.into_parts();
        Reply {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        }
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub(crate) fn location(&self) -> Option<&str> {
        self.headers
            .get(http::header::LOCATION)
            .and_then(|v| v.to_str().ok())
    }

    /// The query (or fragment) parameters of the `Location` this reply redirects to.
    pub(crate) fn redirect_params(&self) -> BTreeMap<String, String> {
        let location = self.location().expect("a Location header");
        let query = location
            .split_once(['?', '#'])
            .map(|(_, q)| q)
            .unwrap_or("");
        form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    /// The form `<form id="{id}">` of this HTML page (panics, showing the page, without it).
    pub(crate) fn form(&self, id: &str) -> Form {
        find_form(&self.text(), id)
            .unwrap_or_else(|| panic!("no form {id} in ({}) {}", self.status, self.text()))
    }
}

/// The cookies a browser keeps: set by `Set-Cookie`, deleted by `Max-Age=0`. Paths and
/// domains are not kept (every test talks to one realm of one host).
#[derive(Debug, Default, Clone)]
pub(crate) struct Jar(BTreeMap<String, String>);

impl Jar {
    pub(crate) fn absorb(&mut self, headers: &HeaderMap) {
        for value in headers.get_all(http::header::SET_COOKIE) {
            let Ok(value) = value.to_str() else { continue };
            let mut parts = value.split(';').map(str::trim);
            let Some((name, v)) = parts.next().and_then(|p| p.split_once('=')) else {
                continue;
            };
            let deleted = parts.any(|p| p.eq_ignore_ascii_case("max-age=0"));
            if deleted {
                self.0.remove(name);
            } else {
                self.0.insert(name.to_string(), v.to_string());
            }
        }
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    pub(crate) fn set(&mut self, name: &str, value: &str) {
        self.0.insert(name.into(), value.into());
    }

    /// The `Cookie` request header, if there is any cookie.
    pub(crate) fn header(&self) -> Option<String> {
        (!self.0.is_empty()).then(|| {
            self.0
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }
}

/// A parsed HTML form: where it posts and the values of its inputs.
#[derive(Debug, Clone)]
pub(crate) struct Form {
    pub action: String,
    pub fields: Vec<(String, String)>,
}

impl Form {
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn set(&mut self, name: &str, value: &str) {
        self.fields.retain(|(k, _)| k != name);
        self.fields.push((name.to_string(), value.to_string()));
    }

    /// This form with `name` set to `value`.
    pub(crate) fn with(mut self, name: &str, value: &str) -> Form {
        self.set(name, value);
        self
    }
}

fn unescape(s: &str) -> String {
    s.replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let key = format!(" {name}=\"");
    let start = tag.find(&key)? + key.len();
    let end = tag[start..].find('"')? + start;
    Some(unescape(&tag[start..end]))
}

/// `<form id="{id}">` of `html`: its action and its inputs (unchecked boxes left out).
pub(crate) fn find_form(html: &str, id: &str) -> Option<Form> {
    let start = html.find(&format!("id=\"{id}\""))?;
    let form_start = html[..start].rfind("<form")?;
    let form_end = html[form_start..].find("</form>")? + form_start;
    let form = &html[form_start..form_end];
    let open_tag = &form[..form.find('>')?];
    let action = attr(open_tag, "action")?;
    let mut fields = Vec::new();
    let mut rest = form;
    while let Some(i) = rest.find("<input") {
        let tag_end = rest[i..].find('>').map(|e| e + i).unwrap_or(rest.len());
        let tag = &rest[i..tag_end];
        if let Some(name) = attr(tag, "name") {
            let kind = attr(tag, "type").unwrap_or_default();
            if kind != "checkbox" || tag.contains(" checked") {
                fields.push((name, attr(tag, "value").unwrap_or_default()));
            }
        }
        rest = &rest[tag_end..];
    }
    Some(Form { action, fields })
}

/// The text of the page's error message (`kc-error-message` or the form's inline error).
pub(crate) fn page_error(html: &str) -> Option<String> {
    let at = html
        .find("id=\"kc-error-message\"")
        .or_else(|| html.find("id=\"input-error\""))?;
    let rest = &html[at..];
    let marker = "class=\"alert__text\">";
    let open_end = rest.find(marker)? + marker.len();
    let close = rest[open_end..].find("</")? + open_end;
    Some(unescape(rest[open_end..close].trim()))
}

/// An [`App`] over a temporary store, with the master realm.
pub(crate) struct Fixture {
    _dir: tempfile::TempDir,
    pub app: App,
    pub clock: ManualClock,
    /// The administrator's access token (master realm, `admin-cli`); empty for
    /// [`Fixture::bare`]. Valid for master's `accessTokenLifespan` (300 s) of fixture time.
    pub admin_token: String,
}

impl Fixture {
    /// An app and the master realm, without any user.
    pub(crate) fn bare() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::testing::open(dir.path());
        let clock = ManualClock::at(START);
        let config = Config::parse(
            &format!("[server]\nhostnames = [\"{HOST}\"]\n"),
            std::path::Path::new("t.toml"),
        )
        .unwrap();
        let app = App::new(
            Arc::new(config),
            store,
            Arc::new(clock.clone()),
            Arc::new(Metrics::new()),
            Arc::new(Themes::builtin()),
        );
        let f = Fixture {
            _dir: dir,
            app,
            clock,
            admin_token: String::new(),
        };
        // As `bootstrap::ensure_master_realm` creates it, with the shared test keys.
        f.create_realm(RealmRecord {
            name: realm::MASTER.into(),
            display_name: Some("Portcullis".into()),
            ..Default::default()
        });
        f
    }

    /// [`Fixture::bare`] with the administrator `admin` (master `admin` role) logged in
    /// through the token endpoint.
    pub(crate) async fn new() -> Fixture {
        let mut f = Fixture::bare();
        crate::bootstrap::create_admin(&f.app.store, &f.clock, ADMIN, ADMIN_PASSWORD, &cheap())
            .unwrap();
        f.admin_token = f.access_token("master", ADMIN, ADMIN_PASSWORD).await;
        f
    }

    pub(crate) fn now(&self) -> i64 {
        self.clock.now_millis()
    }

    /// Send one request (`target` may carry a query) to the endpoint serving its path.
    pub(crate) async fn send(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Reply {
        let path = target.split('?').next().unwrap_or(target);
        let (endpoint, params) = self
            .app
            .route(path)
            .unwrap_or_else(|| panic!("no endpoint serves {path}"));
        let mut builder = http::Request::builder()
            .method(method)
            .uri(target)
            .header("host", HOST);
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let request = builder.body(body.into()).unwrap();
        let info = RequestInfo {
            peer: None,
            tls: true,
        };
        Reply::from_response(self.app.handle(endpoint, &params, request, info).await)
    }

    /// A form-encoded request with an optional bearer token; (status, JSON body).
    pub(crate) async fn call(
        &self,
        method: &str,
        target: &str,
        form: &[(&str, &str)],
        bearer: Option<&str>,
    ) -> (u16, Value) {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let auth = bearer.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("content-type", "application/x-www-form-urlencoded")];
        if let Some(a) = &auth {
            headers.push(("authorization", a.as_str()));
        }
        let r = self.send(method, target, &headers, body).await;
        (r.status, r.json())
    }

    /// Tokens of a password grant (asserting 200) for a public client.
    pub(crate) async fn password_grant(
        &self,
        realm: &str,
        client_id: &str,
        username: &str,
        password: &str,
    ) -> Value {
        let (status, body) = self
            .call(
                "POST",
                &format!("/realms/{realm}/protocol/openid-connect/token"),
                &[
                    ("grant_type", "password"),
                    ("client_id", client_id),
                    ("username", username),
                    ("password", password),
                ],
                None,
            )
            .await;
        assert_eq!(status, 200, "password grant for {username}: {body}");
        body
    }

    /// An access token of `username` through `realm`'s `admin-cli`.
    pub(crate) async fn access_token(&self, realm: &str, username: &str, password: &str) -> String {
        self.password_grant(realm, "admin-cli", username, password)
            .await["access_token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// The admin API as the holder of `token` (`None`: no `Authorization` at all).
    pub(crate) fn api<'a>(&'a self, token: Option<&'a str>) -> Api<'a> {
        Api { f: self, token }
    }

    /// The admin API as the administrator.
    fn admin(&self) -> Api<'_> {
        self.api(Some(&self.admin_token))
    }

    pub(crate) async fn get(&self, path: &str) -> Answer {
        self.admin().get(path).await
    }

    pub(crate) async fn post(&self, path: &str, body: &Value) -> Answer {
        self.admin().post(path, body).await
    }

    pub(crate) async fn put(&self, path: &str, body: &Value) -> Answer {
        self.admin().put(path, body).await
    }

    pub(crate) async fn delete(&self, path: &str) -> Answer {
        self.admin().delete(path).await
    }

    pub(crate) async fn delete_with(&self, path: &str, body: &Value) -> Answer {
        self.admin().delete_with(path, body).await
    }

    /// A page as a browser with `jar` would GET it; the cookies it sets go to the jar.
    pub(crate) async fn browse(&self, target: &str, jar: &mut Jar) -> Reply {
        let cookie = jar.header();
        let mut headers = vec![("accept", "text/html")];
        if let Some(c) = &cookie {
            headers.push(("cookie", c.as_str()));
        }
        let r = self.send("GET", target, &headers, Bytes::new()).await;
        jar.absorb(&r.headers);
        r
    }

    /// POST `fields` to `target` as a browser with `jar` would.
    pub(crate) async fn form(
        &self,
        target: &str,
        fields: &[(String, String)],
        jar: &mut Jar,
    ) -> Reply {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let cookie = jar.header();
        let mut headers = vec![
            ("accept", "text/html"),
            ("content-type", "application/x-www-form-urlencoded"),
        ];
        if let Some(c) = &cookie {
            headers.push(("cookie", c.as_str()));
        }
        let r = self.send("POST", target, &headers, body).await;
        jar.absorb(&r.headers);
        r
    }

    /// Submit a parsed form.
    pub(crate) async fn submit(&self, form: &Form, jar: &mut Jar) -> Reply {
        self.form(&form.action, &form.fields, jar).await
    }

    /// A realm by name (panics when missing).
    pub(crate) fn realm(&self, name: &str) -> RealmRecord {
        self.app
            .store
            .read()
            .unwrap()
            .realm_by_name(name)
            .unwrap()
            .unwrap_or_else(|| panic!("no realm {name}"))
    }

    /// Create a realm from `template` as `realm::create_realm` does (Keycloak's roles and
    /// clients), but with copies of [`test_keys`] instead of freshly generated keys.
    pub(crate) fn create_realm(&self, template: RealmRecord) -> RealmRecord {
        let now = self.now();
        self.app
            .store
            .write(|w| {
                let r = realm::put_new_realm(w, template, now)?;
                for key in test_keys() {
                    let mut key = key.clone();
                    key.kid = crate::crypto::random_id();
                    key.created_at = now;
                    w.put_signing_key(&r.id, &key)
                        .map_err(realm::RealmError::from)?;
                }
                realm::ensure_defaults(w, &r)?;
                Ok::<_, realm::RealmError>(r)
            })
            .unwrap()
    }

    /// Change a stored realm.
    pub(crate) fn update_realm(&self, name: &str, change: impl FnOnce(&mut RealmRecord)) {
        self.app
            .store
            .write(|w| {
                let mut r = w.realm_by_name(name)?.unwrap();
                change(&mut r);
                w.put_realm(&r)
            })
            .unwrap();
    }

    /// Store a client in `realm`; one without client scopes gets the realm's defaults, as
    /// a client created through the admin API does.
    pub(crate) fn add_client(&self, realm: &str, mut client: ClientRecord) {
        let realm = self.realm(realm);
        self.app
            .store
            .write(|w| {
                if client.default_client_scopes.is_empty()
                    && client.optional_client_scopes.is_empty()
                {
                    crate::idp::client_scopes::attach_realm_defaults(w, &realm.id, &mut client)?;
                }
                w.put_client(&realm.id, &client)
            })
            .unwrap();
    }

    /// Store an enabled user (default roles, and a cheaply hashed password when given);
    /// returns its id.
    pub(crate) fn add_user(&self, realm: &str, username: &str, password: Option<&str>) -> String {
        self.add_user_record(
            realm,
            UserRecord {
                id: crate::crypto::random_id(),
                username: username.into(),
                enabled: true,
                created_timestamp: self.now(),
                ..Default::default()
            },
            password,
            false,
        )
    }

    /// Store `user` with a password (`temporary`: UPDATE_PASSWORD at the next login).
    pub(crate) fn add_user_record(
        &self,
        realm: &str,
        user: UserRecord,
        password: Option<&str>,
        temporary: bool,
    ) -> String {
        let realm = self.realm(realm);
        let now = self.now();
        let credential = password.map(|p| {
            let mut c = crate::idp::password_policy::password_credential(&hashed(p), now);
            c.temporary = temporary;
            c
        });
        self.app
            .store
            .write(|w| {
                realm::create_user(w, &realm, &user)?;
                if let Some(c) = &credential {
                    w.put_credential(&realm.id, &user.id, c)?;
                }
                Ok::<_, crate::store::StoreError>(())
            })
            .unwrap();
        user.id
    }

    /// A user by username (panics when missing).
    pub(crate) fn user(&self, realm: &str, username: &str) -> UserRecord {
        let realm = self.realm(realm);
        self.app
            .store
            .read()
            .unwrap()
            .user_by_username(&realm.id, username)
            .unwrap()
            .unwrap_or_else(|| panic!("no user {username}"))
    }
}

/// The admin API (`/admin/realms/...`) as one caller.
pub(crate) struct Api<'a> {
    f: &'a Fixture,
    token: Option<&'a str>,
}

impl Api<'_> {
    async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Answer {
        let auth = self.token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("content-type", "application/json")];
        if let Some(a) = &auth {
            headers.push(("authorization", a.as_str()));
        }
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let r = self
            .f
            .send(method, &format!("/admin/realms{path}"), &headers, body)
            .await;
        let json = r.json();
        (r.status, r.headers, json)
    }

    /// `GET /admin/realms{path}`.
    pub(crate) async fn get(&self, path: &str) -> Answer {
        self.call("GET", path, None).await
    }

    pub(crate) async fn post(&self, path: &str, body: &Value) -> Answer {
        self.call("POST", path, Some(body)).await
    }

    pub(crate) async fn put(&self, path: &str, body: &Value) -> Answer {
        self.call("PUT", path, Some(body)).await
    }

    pub(crate) async fn delete(&self, path: &str) -> Answer {
        self.call("DELETE", path, None).await
    }

    pub(crate) async fn delete_with(&self, path: &str, body: &Value) -> Answer {
        self.call("DELETE", path, Some(body)).await
    }
}

/// The last path segment of a `201 Created`'s `Location`: the new resource's id.
pub(crate) fn created_id(answer: &Answer) -> String {
    assert_eq!(answer.0, 201, "expected 201 Created: {}", answer.2);
    let location = answer.1[http::header::LOCATION].to_str().unwrap();
    location.rsplit('/').next().unwrap().to_string()
}
