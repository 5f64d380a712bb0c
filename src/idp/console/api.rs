//! The console's only way to read or change anything: the admin REST API, called in
//! process with the signed-in administrator's access token. So the console enforces
//! exactly the REST API's rules and roles (nothing is implemented twice), every change is
//! an admin event, and each page can name the REST calls it made.

use std::sync::Mutex;

use bytes::Bytes;
use http::{header, HeaderValue, Method, StatusCode};
use serde_json::Value;

use crate::http::path::encode_segment;
use crate::http::{Request, RequestInfo};
use crate::idp::endpoints::Endpoint;
use crate::idp::App;

/// An admin API answer other than 2xx, with Keycloak's message.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub status: StatusCode,
    pub message: String,
}

impl Failure {
    /// The token was refused: the administrator must sign in again.
    pub(crate) fn unauthenticated(&self) -> bool {
        self.status == StatusCode::UNAUTHORIZED
    }
}

/// A 2xx answer.
#[derive(Debug)]
pub(crate) struct Answer {
    /// `Location` of a `201 Created`.
    pub location: Option<String>,
    pub body: Value,
}

impl Answer {
    /// The id at the end of `Location` (a created resource).
    pub(crate) fn created_id(&self) -> Option<String> {
        let location = self.location.as_deref()?;
        let last = location.rsplit('/').next()?;
        crate::http::path::percent_decode(last).map(|s| s.into_owned())
    }
}

/// One REST call a page made, shown under the page so administrators learn the API.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Call {
    pub method: String,
    pub path: String,
}

/// The admin API as one administrator sees it.
pub(crate) struct Api<'a> {
    app: &'a App,
    info: RequestInfo,
    host: Option<HeaderValue>,
    token: String,
    calls: Mutex<Vec<Call>>,
}

/// `/admin/realms/{realm}` followed by `tail` segments, each percent-encoded.
pub(crate) fn realm_path(realm: &str, tail: &[&str]) -> String {
    let mut path = format!("/admin/realms/{}", encode_segment(realm));
    for segment in tail {
        path.push('/');
        path.push_str(&encode_segment(segment));
    }
    path
}

impl<'a> Api<'a> {
    pub(crate) fn new(app: &'a App, request: &Request, info: RequestInfo, token: String) -> Self {
        Api {
            app,
            info,
            host: request.headers().get(header::HOST).cloned(),
            token,
            calls: Mutex::new(Vec::new()),
        }
    }

    /// The calls made so far.
    pub(crate) fn calls(&self) -> Vec<Call> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    pub(crate) async fn get(&self, path: &str) -> Result<Value, Failure> {
        self.call(Method::GET, path, None).await.map(|a| a.body)
    }

    pub(crate) async fn post(&self, path: &str, body: Value) -> Result<Answer, Failure> {
        self.call(Method::POST, path, Some(body)).await
    }

    pub(crate) async fn put(&self, path: &str, body: Value) -> Result<Answer, Failure> {
        self.call(Method::PUT, path, Some(body)).await
    }

    pub(crate) async fn delete(&self, path: &str, body: Option<Value>) -> Result<Answer, Failure> {
        self.call(Method::DELETE, path, body).await
    }

    /// One call through the admin API's own dispatch (authentication, roles, validation,
    /// one store transaction, the admin event).
    pub(crate) async fn call(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Value>,
    ) -> Result<Answer, Failure> {
        if let Ok(mut calls) = self.calls.lock() {
            calls.push(Call {
                method: method.to_string(),
                path: path_and_query.to_string(),
            });
        }
        let path = path_and_query.split('?').next().unwrap_or("");
        let Some((endpoint, params)) = self.app.route(path) else {
            return Err(Failure {
                status: StatusCode::NOT_FOUND,
                message: "Not found".into(),
            });
        };
        let mut builder = http::Request::builder()
            .method(method)
            .uri(path_and_query)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token));
        if let Some(host) = &self.host {
            builder = builder.header(header::HOST, host.clone());
        }
        let bytes = match &body {
            Some(v) => {
                builder = builder.header(header::CONTENT_TYPE, "application/json");
                Bytes::from(v.to_string())
            }
            None => Bytes::new(),
        };
        let request = builder.body(bytes).map_err(|e| Failure {
            status: StatusCode::BAD_REQUEST,
            message: e.to_string(),
        })?;
        let response = match endpoint {
            Endpoint::Admin => {
                crate::idp::admin::handle(self.app, &request, &self.info, &params.rest).await
            }
            Endpoint::WhoAmI => {
                crate::idp::admin::server::whoami(self.app, &request, &self.info, &params.realm)
                    .await
            }
            Endpoint::ServerInfo => {
                crate::idp::admin::server::server_info(self.app, &request, &self.info).await
            }
            _ => {
                return Err(Failure {
                    status: StatusCode::NOT_FOUND,
                    message: "Not an admin API path".into(),
                })
            }
        };
        let status = response.status();
        let location = response
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body: Value = if response.body().is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(response.body())
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(response.body()).into()))
        };
        if status.is_success() {
            return Ok(Answer { location, body });
        }
        let message = ["errorMessage", "error_description", "error"]
            .iter()
            .find_map(|k| body.get(k).and_then(Value::as_str))
            .map(str::to_string)
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("Error").to_string());
        Err(Failure { status, message })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realm_paths_encode_each_segment() {
        assert_eq!(
            realm_path("a b", &["users", "x/y"]),
            "/admin/realms/a%20b/users/x%2Fy"
        );
    }
}
