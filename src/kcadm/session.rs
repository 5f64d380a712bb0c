//! Who kcadm talks to and as whom: the credentials options, `config credentials` (password or
//! client-credentials grant against `{server}/realms/{realm}/protocol/openid-connect/token`),
//! the stored tokens and their refresh when under five seconds remain, one-shot logins that
//! leave nothing in the file, and `--token` for an external token.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Args;
use serde_json::Value;

use super::config::{default_path, ConfigData, ConfigFile, RealmConfig};
use super::http::{normalize, resource_url, Http};
use super::Failure;

/// The client kcadm logs in with unless `--client` names another.
pub(super) const DEFAULT_CLIENT: &str = "admin-cli";
/// A token with less than this left is refreshed first (milliseconds).
const AUTH_BUFFER_MS: i64 = 5000;

/// The credentials options every command takes (as `config credentials` does).
#[derive(Args, Debug, Clone, Default)]
pub(super) struct AuthOptions {
    /// Path to the config file (~/.keycloak/kcadm.config by default)
    #[arg(long, value_name = "FILE")]
    pub(super) config: Option<PathBuf>,
    /// Don't use config file - no authentication info is loaded or saved
    #[arg(long)]
    pub(super) no_config: bool,
    /// Server endpoint url (e.g. 'http://localhost:8080')
    #[arg(long, value_name = "SERVER_URL")]
    pub(super) server: Option<String>,
    /// Realm name to authenticate against
    #[arg(long, value_name = "REALM")]
    pub(super) realm: Option<String>,
    /// Username to login with
    #[arg(long, value_name = "USER")]
    pub(super) user: Option<String>,
    /// Password (prompted for if not specified, --user is used, and KC_CLI_PASSWORD is not set)
    #[arg(long, value_name = "PASSWORD", allow_hyphen_values = true)]
    pub(super) password: Option<String>,
    /// ClientId used by this client tool ('admin-cli' by default)
    #[arg(long, value_name = "CLIENT_ID")]
    pub(super) client: Option<String>,
    /// Secret to authenticate the client (KC_CLI_CLIENT_SECRET, or prompted for when '-')
    #[arg(long, value_name = "SECRET", allow_hyphen_values = true)]
    pub(super) secret: Option<String>,
    /// Trusted CA certificates, PEM (Keycloak's kcadm takes a JKS/PKCS12 file here)
    #[arg(long, value_name = "PATH")]
    pub(super) truststore: Option<PathBuf>,
    /// Truststore password (PEM files have none; accepted and ignored)
    #[arg(long, value_name = "PASSWORD")]
    pub(super) trustpass: Option<String>,
    /// Do not check the server's TLS certificate (highly discouraged)
    #[arg(long)]
    pub(super) insecure: bool,
    /// Token to use to invoke on Keycloak. Other credentials are ignored if this is set.
    #[arg(long, value_name = "TOKEN", allow_hyphen_values = true)]
    pub(super) token: Option<String>,
    /// Keystore with a client key (signed JWT client authentication: not supported, use --secret)
    #[arg(long, value_name = "PATH", hide = true)]
    pub(super) keystore: Option<PathBuf>,
    /// Print full stack trace when exiting with error (accepted; errors are one line)
    #[arg(short = 'x')]
    pub(super) x: bool,
}

/// Where a request goes: `-r` and `-a`.
#[derive(Args, Debug, Clone, Default)]
pub(super) struct TargetOptions {
    /// Target realm to issue requests against if not the one authenticated against
    #[arg(short = 'r', long = "target-realm", value_name = "REALM")]
    pub(super) target_realm: Option<String>,
    /// URL of Admin REST endpoint root if not default - e.g. http://localhost:8080/admin
    #[arg(short = 'a', long = "admin-root", value_name = "URL")]
    pub(super) admin_root: Option<String>,
}

/// An authenticated (or anonymous) connection to one server, ready for requests.
pub(super) struct Session {
    pub(super) http: Http,
    admin_root: String,
    /// The realm requests go to (`-r`, else the one logged into).
    pub(super) realm: String,
    token: Option<String>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl AuthOptions {
    pub(super) fn config_file(&self) -> Result<ConfigFile, Failure> {
        match (&self.config, self.no_config) {
            (Some(_), true) => Err(Failure::usage(
                "Options --config and --no-config are mutually exclusive",
            )),
            (_, true) => Ok(ConfigFile::Memory),
            (Some(p), false) => Ok(ConfigFile::File(p.clone())),
            (None, false) => Ok(ConfigFile::File(default_path())),
        }
    }

    fn requires_login(&self) -> bool {
        self.token.is_none()
            && (self.user.is_some() || self.password.is_some() || self.secret.is_some())
    }

    fn http(&self, data: &ConfigData, server: &str) -> Result<Http, Failure> {
        if self.keystore.is_some() {
            return Err(Failure::usage(
                "--keystore (signed JWT client authentication) is not supported; use --secret",
            ));
        }
        let https = server.starts_with("https:");
        let truststore = self
            .truststore
            .clone()
            .or_else(|| data.truststore.as_ref().map(PathBuf::from))
            .filter(|_| https);
        Http::new(truststore.as_deref(), self.insecure && https)
    }
}

/// The tokens of a successful grant, as the config file keeps them.
fn tokens(body: &Value, client_id: &str, grant: &str, secret: Option<&str>) -> RealmConfig {
    let now = now_ms();
    let s = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
    let refresh_token = s("refresh_token");
    let refresh_expires_at = refresh_token.as_ref().map(|_| {
        match body.get("refresh_expires_in").and_then(Value::as_i64) {
            Some(0) | None => i64::MAX,
            Some(secs) => now.saturating_add(secs.saturating_mul(1000)),
        }
    });
    RealmConfig {
        client_id: Some(client_id.to_string()),
        token: s("access_token"),
        refresh_token,
        secret: secret.map(str::to_string),
        grant_type_for_authentication: Some(grant.to_string()),
        expires_at: body
            .get("expires_in")
            .and_then(Value::as_i64)
            .map(|secs| now.saturating_add(secs.saturating_mul(1000))),
        refresh_expires_at,
        ..RealmConfig::default()
    }
}

fn token_url(server: &str, realm: &str) -> String {
    format!(
        "{}realms/{realm}/protocol/openid-connect/token",
        normalize(server)
    )
}

/// Read a secret: from the variable, else a prompt on the terminal (no echo), else (piped)
/// a line of standard input.
fn prompt(kind: &str, env: Option<&str>) -> Result<String, Failure> {
    if let Some(v) = env.and_then(|name| std::env::var(name).ok()) {
        return Ok(v);
    }
    let value = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!("Enter {kind}: "))
            .map_err(|e| Failure::run(format!("Cannot read the {kind}: {e}")))?
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| Failure::run(format!("Cannot read the {kind}: {e}")))?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    if value.is_empty() {
        return Err(Failure::run(format!("No {kind} provided")));
    }
    Ok(value)
}

/// A password: KC_CLI_PASSWORD, else the prompt (or a line of piped input).
pub(super) fn prompt_password(kind: &str) -> Result<String, Failure> {
    prompt(kind, Some("KC_CLI_PASSWORD"))
}

/// Log in as `config credentials` does; returns the tokens (not yet saved).
fn login(
    auth: &AuthOptions,
    http: &Http,
    server: &str,
    realm: &str,
) -> Result<RealmConfig, Failure> {
    url::Url::parse(server)
        .map_err(|_| Failure::run(format!("Invalid server endpoint url: {server}")))?;
    let client_set = auth.client.is_some();
    let client = auth.client.as_deref().unwrap_or(DEFAULT_CLIENT);
    let url = token_url(server, realm);
    let (grant, response, secret) = if let Some(user) = &auth.user {
        eprintln!("Logging into {server} as user {user} of realm {realm}");
        let password = match &auth.password {
            Some(p) => p.clone(),
            None => prompt("password", Some("KC_CLI_PASSWORD"))?,
        };
        let secret = match auth.secret.as_deref() {
            Some("-") => Some(prompt("client secret", None)?),
            other => other.map(str::to_string),
        };
        let mut form = vec![
            ("grant_type", "password"),
            ("username", user.as_str()),
            ("password", password.as_str()),
        ];
        if secret.is_none() {
            form.push(("client_id", client));
        }
        let basic = secret.as_deref().map(|s| (client, s));
        ("password", http.post_form(&url, &form, basic)?, secret)
    } else if auth.secret.is_some() || client_set {
        eprintln!("Logging into {server} as service-account-{client} of realm {realm}");
        let secret = match auth.secret.as_deref() {
            Some("-") | None => prompt("client secret", Some("KC_CLI_CLIENT_SECRET"))?,
            Some(s) => s.to_string(),
        };
        let form = [("grant_type", "client_credentials")];
        (
            "client_credentials",
            http.post_form(&url, &form, Some((client, &secret)))?,
            Some(secret),
        )
    } else {
        return Err(Failure::usage(
            "No credentials given. Use --user (with --password) or --client with --secret",
        ));
    };
    token_response(response, client, grant, secret.as_deref())
}

fn token_response(
    response: super::http::Response,
    client: &str,
    grant: &str,
    secret: Option<&str>,
) -> Result<RealmConfig, Failure> {
    if (301..=303).contains(&response.status) {
        return Err(Failure::run(format!(
            "Request was unsuccessful as the server responded with a redirect to {} - please check that your server URL is correct.",
            response.header("location").unwrap_or("UNKNOWN")
        )));
    }
    if !(200..300).contains(&response.status) {
        return Err(Failure::run(response.token_error()));
    }
    let body = response.json()?;
    Ok(tokens(&body, client, grant, secret))
}

/// `config credentials`.
pub(super) fn config_credentials(auth: &AuthOptions, status: bool) -> Result<(), Failure> {
    if auth.no_config {
        return Err(Failure::usage("Unsupported option: --no-config"));
    }
    let file = auth.config_file()?;
    if status {
        let data = file.load()?;
        let now = now_ms();
        match data.current() {
            Some(entry)
                if entry.token.is_some()
                    && entry.expires_at.is_some_and(|t| now + AUTH_BUFFER_MS < t) =>
            {
                println!(
                    "Logged in (server: {}, realm: {}, expired: false, timeToExpiry: {}s from now)",
                    data.server_url.as_deref().unwrap_or(""),
                    data.realm.as_deref().unwrap_or(""),
                    (entry.expires_at.unwrap_or(now) - now) / 1000
                );
            }
            _ => println!("You are not logged in"),
        }
        return Ok(());
    }
    let server = auth
        .server
        .clone()
        .ok_or_else(|| Failure::usage("Required option not specified: --server"))?;
    let realm = auth
        .realm
        .clone()
        .ok_or_else(|| Failure::usage("Required option not specified: --realm"))?;
    if auth.user.is_none() && auth.secret.is_none() && auth.client.is_none() {
        // Only a server and realm: remember them, log in later.
        return file.update(|c| {
            c.server_url = Some(server.clone());
            c.realm = Some(realm.clone());
        });
    }
    let data = file.load()?;
    let http = auth.http(&data, &server)?;
    let entry = login(auth, &http, &server, &realm)?;
    file.update(|c| {
        c.server_url = Some(server.clone());
        c.realm = Some(realm.clone());
        c.endpoints
            .entry(server.clone())
            .or_default()
            .insert(realm.clone(), entry);
    })
}

impl Session {
    /// Resolve server, realm and token for a request command.
    pub(super) fn open(auth: &AuthOptions, target: &TargetOptions) -> Result<Session, Failure> {
        let file = auth.config_file()?;
        let data = file.load()?;
        let server = auth
            .server
            .clone()
            .or_else(|| data.server_url.clone())
            .ok_or_else(|| {
                Failure::run("No server specified. Use --server, or 'kcadm.sh config credentials'.")
            })?;
        let http = auth.http(&data, &server)?;
        let realm = auth.realm.clone().or_else(|| data.realm.clone());
        let (realm, token) = if let Some(token) = &auth.token {
            (realm, Some(token.clone()))
        } else if auth.requires_login() {
            let realm =
                realm.ok_or_else(|| Failure::usage("Required option not specified: --realm"))?;
            // A one-shot login: its tokens are not written to the config file.
            let entry = login(auth, &http, &server, &realm)?;
            (Some(realm), entry.token)
        } else {
            let realm = realm.ok_or_else(|| {
                Failure::run(
                    "No realm or token specified. Use --realm, --token, or 'kcadm.sh config credentials'.",
                )
            })?;
            let entry = data
                .endpoints
                .get(&server)
                .and_then(|m| m.get(&realm))
                .cloned();
            let token = match entry {
                Some(entry) if entry.refresh_token.is_some() || entry.token.is_some() => {
                    Some(ensure_token(&http, &file, &server, &realm, entry)?)
                }
                // No session stored: the request goes without credentials (and the server
                // says 401), as kcadm does.
                _ => None,
            };
            (Some(realm), token)
        };
        let realm = target
            .target_realm
            .clone()
            .or(realm)
            .unwrap_or_else(|| "null".into());
        let admin_root = target
            .admin_root
            .clone()
            .unwrap_or_else(|| format!("{}admin", normalize(&server)));
        Ok(Session {
            http,
            admin_root,
            realm,
            token,
        })
    }

    /// The URL of a resource (kcadm's rules).
    pub(super) fn url(&self, uri: &str) -> String {
        resource_url(&self.admin_root, &self.realm, uri)
    }

    /// `Authorization: Bearer ...` when there is a token.
    pub(super) fn auth_headers(&self) -> Vec<(String, String)> {
        self.token
            .iter()
            .map(|t| ("Authorization".to_string(), format!("Bearer {t}")))
            .collect()
    }
}

/// The stored access token, refreshed (and saved) when under five seconds remain.
fn ensure_token(
    http: &Http,
    file: &ConfigFile,
    server: &str,
    realm: &str,
    entry: RealmConfig,
) -> Result<String, Failure> {
    let now = now_ms();
    if let (Some(token), Some(expires)) = (&entry.token, entry.expires_at) {
        if expires - now >= AUTH_BUFFER_MS {
            return Ok(token.clone());
        }
    }
    if entry
        .refresh_expires_at
        .is_some_and(|t| t - now < AUTH_BUFFER_MS)
    {
        return Err(Failure::run(
            "Session has expired. Login again with 'kcadm.sh config credentials'",
        ));
    }
    let client = entry.client_id.as_deref().unwrap_or(DEFAULT_CLIENT);
    let grant = entry
        .grant_type_for_authentication
        .as_deref()
        .unwrap_or("password");
    let url = token_url(server, realm);
    let basic = entry.secret.as_deref().map(|s| (client, s));
    let response = match &entry.refresh_token {
        Some(rt) => {
            let mut form = vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", rt.as_str()),
            ];
            if basic.is_none() {
                form.push(("client_id", client));
            }
            http.post_form(&url, &form, basic)?
        }
        None if grant == "client_credentials" && basic.is_some() => {
            http.post_form(&url, &[("grant_type", "client_credentials")], basic)?
        }
        None => {
            return Err(Failure::run(
                "Session has expired. Login again with 'kcadm.sh config credentials'",
            ))
        }
    };
    let fresh = token_response(response, client, grant, entry.secret.as_deref())
        .map_err(|f| Failure::run(format!("Failed to refresh access token - {}", f.message)))?;
    let token = fresh
        .token
        .clone()
        .ok_or_else(|| Failure::run("Failed to refresh access token - no access_token"))?;
    file.update(|c| {
        let slot = c
            .endpoints
            .entry(server.to_string())
            .or_default()
            .entry(realm.to_string())
            .or_default();
        slot.token = fresh.token.clone();
        slot.expires_at = fresh.expires_at;
        if fresh.refresh_token.is_some() {
            slot.refresh_token = fresh.refresh_token.clone();
            slot.refresh_expires_at = fresh.refresh_expires_at;
        }
    })?;
    Ok(token)
}
