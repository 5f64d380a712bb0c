//! keycloak-js's helper pages: the session-status iframe (`login-status-iframe.html` and
//! its `/init` origin check) and the third-party-cookie probe (`3p-cookies/step1.html`,
//! `step2.html`). They behave like Keycloak's so keycloak-js works with default options.

use bytes::Bytes;
use http::{header, HeaderValue, StatusCode};

use crate::http::IntoResponse;
use crate::http::{Request, RequestInfo, Response};
use crate::idp::oidc::base_url;
use crate::idp::tokens::allowed_origins;
use crate::idp::App;

const STATUS_IFRAME: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>Session status</title></head><body><script>
(function () {
  var init;
  function sessionCookie() {
    var prefix = "KEYCLOAK_SESSION=";
    var parts = document.cookie.split(";");
    for (var i = 0; i < parts.length; i++) {
      var c = parts[i].trim();
      if (c.indexOf(prefix) === 0) { return decodeURIComponent(c.substring(prefix.length)); }
    }
    return "";
  }
  function check(sessionState) {
    var cookie = sessionCookie();
    var current = cookie ? cookie.split("/")[2] || "" : "";
    return (sessionState || "") === current ? "unchanged" : "changed";
  }
  window.addEventListener("message", function (event) {
    if (typeof event.data !== "string") { return; }
    var data = event.data.split(" ");
    if (data.length !== 2) { return; }
    var clientId = data[0], sessionState = data[1], origin = event.origin;
    var reply = function (m) { event.source.postMessage(m, origin); };
    if (init) {
      if (init.clientId === clientId && init.origin === origin) { reply(check(sessionState)); } else { reply("error"); }
      return;
    }
    var req = new XMLHttpRequest();
    req.open("GET", location.pathname + "/init?client_id=" + encodeURIComponent(clientId) +
      "&origin=" + encodeURIComponent(origin), true);
    req.onreadystatechange = function () {
      if (req.readyState !== 4) { return; }
      if (req.status === 204 || req.status === 1223) {
        init = { clientId: clientId, origin: origin };
        reply(check(sessionState));
      } else {
        reply("error");
      }
    };
    req.send();
  }, false);
})();
</script></body></html>
"#;

const STEP1: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>Third-party cookies</title></head><body><script>
document.cookie = "KEYCLOAK_3P_COOKIE_SAMESITE=supported; max-age=60; samesite=none; secure";
document.cookie = "KEYCLOAK_3P_COOKIE=supported; max-age=60";
window.location.replace("step2.html");
</script></body></html>
"#;

const STEP2: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>Third-party cookies</title></head><body><script>
if (document.cookie.indexOf("KEYCLOAK_3P_COOKIE") !== -1) {
  document.cookie = "KEYCLOAK_3P_COOKIE_SAMESITE=; expires=Thu, 01 Jan 1970 00:00:00 GMT; samesite=none; secure";
  document.cookie = "KEYCLOAK_3P_COOKIE=; expires=Thu, 01 Jan 1970 00:00:00 GMT";
  window.parent.postMessage("supported", "*");
} else {
  window.parent.postMessage("unsupported", "*");
}
</script></body></html>
"#;

/// A page meant to be framed by applications: no frame or script restrictions.
fn framed_page(html: &'static str) -> Response {
    let mut r = Response::new(Bytes::from_static(html.as_bytes()));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

fn status(code: StatusCode) -> Response {
    let mut r = Response::new(Bytes::new());
    *r.status_mut() = code;
    r
}

/// `login-status-iframe.html` and `login-status-iframe.html/init`.
pub fn login_status_iframe(
    app: &App,
    request: &Request,
    info: &RequestInfo,
    realm_name: &str,
) -> Response {
    let Some(realm) = app
        .store
        .read()
        .ok()
        .and_then(|r| r.realm_by_name(realm_name).ok().flatten())
    else {
        return crate::http::ApiError::NotFound.into_response();
    };
    if !request.uri().path().ends_with("/init") {
        return framed_page(STATUS_IFRAME);
    }
    let query: Vec<(String, String)> = request
        .uri()
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let get = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let (Some(client_id), Some(origin)) = (get("client_id"), get("origin")) else {
        return status(StatusCode::BAD_REQUEST);
    };
    let client = app
        .store
        .read()
        .ok()
        .and_then(|r| r.client_by_client_id(&realm.id, &client_id).ok().flatten())
        .filter(|c| c.enabled);
    let Some(client) = client else {
        return status(StatusCode::FORBIDDEN);
    };
    let own = base_url(app, request, info);
    if origin == own
        || allowed_origins(&client)
            .iter()
            .any(|o| o == "*" || *o == origin)
    {
        status(StatusCode::NO_CONTENT)
    } else {
        status(StatusCode::FORBIDDEN)
    }
}

/// `3p-cookies/step1.html`, `3p-cookies/step2.html`.
pub fn third_party_cookies(rest: &str) -> Response {
    match rest {
        "step1.html" => framed_page(STEP1),
        "step2.html" => framed_page(STEP2),
        _ => crate::http::ApiError::NotFound.into_response(),
    }
}
