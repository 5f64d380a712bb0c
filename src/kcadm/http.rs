//! kcadm's HTTP side: the client (rustls; a PEM trust store or `--insecure`), resource URLs
//! as kcadm composes them, and the error texts it prints for a failed response.

use std::path::Path;
use std::time::Duration;

use reqwest::blocking::Client;
use reqwest::Method;
use serde_json::Value;

use super::Failure;

/// An HTTP client of one command run.
pub(super) struct Http {
    client: Client,
}

/// A response read to its end.
pub(super) struct Response {
    pub(super) status: u16,
    pub(super) reason: String,
    pub(super) version: String,
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: Vec<u8>,
    /// The URL asked for (404 messages name it).
    pub(super) url: String,
}

impl Response {
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the body is JSON (`application/json`, parameters ignored).
    pub(super) fn is_json(&self) -> bool {
        self.header("content-type")
            .and_then(|v| v.split(';').next())
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
    }

    pub(super) fn json(&self) -> Result<Value, Failure> {
        serde_json::from_slice(&self.body)
            .map_err(|e| Failure::run(format!("Error processing results: {e}")))
    }

    fn error_text(&self) -> String {
        let parsed: Option<Value> = serde_json::from_slice(&self.body).ok();
        let field = |k: &str| {
            parsed.as_ref().and_then(|v| v.get(k)).map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string())
            })
        };
        if let Some(message) = field("errorMessage") {
            return message;
        }
        if let Some(error) = field("error") {
            let description = field("error_description").unwrap_or_else(|| "null".into());
            return format!("{description} [{error}]");
        }
        format!("HTTP error - {} {}", self.status, self.reason)
    }

    /// kcadm's check of an admin response: a 404 names the URL, other failures print the
    /// server's `errorMessage`, `error_description [error]` or the status line.
    pub(super) fn check(self) -> Result<Response, Failure> {
        match self.status {
            200..=299 => Ok(self),
            404 => Err(Failure::run(format!(
                "Resource not found for url: {}",
                self.url
            ))),
            _ => Err(Failure::run(self.error_text())),
        }
    }

    /// The same without the 404 special case (set-password, as kcadm does it).
    pub(super) fn check_plain(self) -> Result<Response, Failure> {
        match self.status {
            200..=299 => Ok(self),
            _ => Err(Failure::run(self.error_text())),
        }
    }

    /// The token endpoint's failure: `error_description [error]` or `code reason`.
    pub(super) fn token_error(&self) -> String {
        if self.is_json() {
            if let Ok(v) = serde_json::from_slice::<Value>(&self.body) {
                let s = |k: &str| {
                    v.get(k)
                        .and_then(Value::as_str)
                        .unwrap_or("null")
                        .to_string()
                };
                return format!("{} [{}]", s("error_description"), s("error"));
            }
        }
        format!("{} {}", self.status, self.reason)
    }
}

impl Http {
    /// A client trusting the system's roots plus the PEM certificates of `truststore`, or
    /// trusting anything with `insecure` (a warning says so).
    pub(super) fn new(truststore: Option<&Path>, insecure: bool) -> Result<Http, Failure> {
        let mut builder = Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(300))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("portcullis-kcadm/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = truststore {
            let pem = std::fs::read(path).map_err(|e| {
                Failure::run(format!(
                    "Failed to load truststore: {} ({e})",
                    path.display()
                ))
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                Failure::run(format!(
                    "Failed to load truststore: {} (expected PEM certificates: {e})",
                    path.display()
                ))
            })?;
            if certs.is_empty() {
                return Err(Failure::run(format!(
                    "Failed to load truststore: {} (no PEM certificate in it)",
                    path.display()
                )));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        if insecure {
            eprintln!("The server is configured to use TLS but there is no truststore specified.");
            eprintln!("The tool will skip certificate validation. This is highly discouraged for production use cases");
            builder = builder.danger_accept_invalid_certs(true);
        }
        let client = builder
            .build()
            .map_err(|e| Failure::run(format!("HTTP client: {e}")))?;
        Ok(Http { client })
    }

    pub(super) fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(String, String)],
        body: Option<Vec<u8>>,
    ) -> Result<Response, Failure> {
        let mut request = self.client.request(method, url);
        for (k, v) in headers {
            request = request.header(k, v);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request
            .send()
            .map_err(|e| Failure::run(format!("HTTP request error: {}", error_chain(&e))))?;
        let status = response.status();
        let version = format!("{:?}", response.version());
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = response
            .bytes()
            .map_err(|e| Failure::run(format!("HTTP request error: {}", error_chain(&e))))?
            .to_vec();
        Ok(Response {
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or("").to_string(),
            version,
            headers,
            body,
            url: url.to_string(),
        })
    }

    /// A form POST (the token endpoint).
    pub(super) fn post_form(
        &self,
        url: &str,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> Result<Response, Failure> {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut headers = vec![
            (
                "Content-Type".to_string(),
                "application/x-www-form-urlencoded".to_string(),
            ),
            ("Accept".to_string(), "application/json".to_string()),
        ];
        if let Some((id, secret)) = basic {
            use base64::Engine;
            let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let pair = format!("{}:{}", enc(id), enc(secret));
            headers.push((
                "Authorization".into(),
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair)
                ),
            ));
        }
        self.send(Method::POST, url, &headers, Some(body.into_bytes()))
    }
}

/// The whole cause chain of a reqwest error ("error sending request: ... connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text.push_str(" - ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}

/// `base` with exactly one trailing slash.
pub(super) fn normalize(base: &str) -> String {
    if base.ends_with('/') {
        base.to_string()
    } else {
        format!("{base}/")
    }
}

/// kcadm's resource URL: absolute URLs as given; `realms`, `realms/...` and `serverinfo`
/// under the admin root; anything else under `{admin root}realms/{realm}/`.
pub(super) fn resource_url(admin_root: &str, realm: &str, uri: &str) -> String {
    if uri.starts_with("http:") || uri.starts_with("https:") {
        return uri.to_string();
    }
    let root = normalize(admin_root);
    if uri == "realms" || uri.starts_with("realms/") || uri == "serverinfo" {
        return format!("{root}{uri}");
    }
    format!("{root}realms/{realm}/{uri}")
}

/// Add `key=value` query parameters (values form-encoded, as kcadm does).
pub(super) fn add_query(url: &str, params: &[(String, String)]) -> String {
    let mut out = url.to_string();
    for (k, v) in params {
        out.push(if out.contains('?') { '&' } else { '?' });
        out.push_str(k);
        out.push('=');
        out.extend(form_urlencoded::byte_serialize(v.as_bytes()));
    }
    out
}

/// `Created new user with id '...'`: the type is the last path segment of the collection
/// with one trailing `s` dropped (`identity-provider/instances` → `instance`).
pub(super) fn type_name(url: &str) -> String {
    let trimmed = url.strip_suffix('/').unwrap_or(url);
    let last = trimmed.rsplit('/').next().unwrap_or(trimmed);
    last.strip_suffix('s').unwrap_or(last).to_string()
}

/// The last segment of a `Location` header (the new object's id).
pub(super) fn last_segment(location: &str) -> Option<String> {
    let trimmed = location.strip_suffix('/').unwrap_or(location);
    trimmed
        .rsplit('/')
        .next()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_as_kcadm_composes_them() {
        let root = "http://h:8080/admin";
        assert_eq!(
            resource_url(root, "r", "users"),
            "http://h:8080/admin/realms/r/users"
        );
        assert_eq!(
            resource_url(root, "r", "realms"),
            "http://h:8080/admin/realms"
        );
        assert_eq!(
            resource_url(root, "r", "realms/x"),
            "http://h:8080/admin/realms/x"
        );
        assert_eq!(
            resource_url(root, "r", "serverinfo"),
            "http://h:8080/admin/serverinfo"
        );
        assert_eq!(resource_url(root, "r", "https://o/x"), "https://o/x");
        assert_eq!(
            add_query(
                "http://h/u",
                &[
                    ("username".into(), "jane doe".into()),
                    ("exact".into(), "true".into())
                ]
            ),
            "http://h/u?username=jane+doe&exact=true"
        );
        assert_eq!(
            add_query("http://h/u?a=1", &[("b".into(), "&".into())]),
            "http://h/u?a=1&b=%26"
        );
        assert_eq!(type_name("http://h/admin/realms/r/users"), "user");
        assert_eq!(
            type_name("http://h/admin/realms/r/identity-provider/instances/"),
            "instance"
        );
        assert_eq!(type_name("http://h/admin/realms"), "realm");
        assert_eq!(
            last_segment("http://h/admin/realms/r/users/abc"),
            Some("abc".into())
        );
    }
}
