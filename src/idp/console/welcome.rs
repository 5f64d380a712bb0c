//! `/`: Keycloak's welcome page. It links to the console; on a fresh install, reached
//! from this machine (loopback) while the master realm has no user yet, it also creates
//! the first administrator, as Keycloak's does. The form carries a double-submit CSRF
//! token (cookie and field); the password is hashed on the bounded hashing pool.

use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::json;

use crate::crypto::{constant_time_eq, random_token};
use crate::http::{Request, RequestInfo, Response};
use crate::idp::App;

const CSRF_COOKIE: &str = "PORTCULLIS_WELCOME";

/// Whether the request comes from this machine itself, as Keycloak's welcome page asks:
/// from loopback, not relayed by a proxy (no forwarding headers: a proxy or tunnel on this
/// machine would make every visitor look local), and addressed to a loopback name (a
/// rebound DNS name pointing at 127.0.0.1 is not).
fn from_this_machine(request: &Request, info: &RequestInfo) -> bool {
    let relayed = crate::http::forwarding::relayed(request.headers());
    let host = request
        .headers()
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host),
    };
    let loopback_name = name.eq_ignore_ascii_case("localhost")
        || name.to_ascii_lowercase().ends_with(".localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback());
    !relayed
        && loopback_name
        && info
            .peer
            .is_some_and(|p| p.ip().to_canonical().is_loopback())
}

/// Whether the first administrator may be created from this request.
fn may_create_admin(app: &App, request: &Request, info: &RequestInfo) -> bool {
    from_this_machine(request, info)
        && !crate::bootstrap::master_has_users(&app.store).unwrap_or(true)
}

pub async fn serve(app: &App, request: &Request, info: &RequestInfo) -> Response {
    let messages = app
        .themes
        .messages(None, crate::idp::login::theme::DEFAULT_LOCALE);
    let mut notice = None;
    let mut error = None;
    if request.method() == Method::POST {
        let form = super::form::Submitted::parse(request.body());
        let cookie = crate::http::cookie(request.headers(), CSRF_COOKIE).unwrap_or("");
        let token = form.get("csrf").unwrap_or("");
        if cookie.is_empty()
            || !constant_time_eq(cookie.as_bytes(), token.as_bytes())
            || !super::same_origin_form(request, &crate::idp::oidc::base_url(app, request, info))
        {
            error = Some(messages.get("consoleCsrf").cloned().unwrap_or_default());
        } else if !may_create_admin(app, request, info) {
            error = Some(
                messages
                    .get("welcomeAdminExists")
                    .cloned()
                    .unwrap_or_default(),
            );
        } else {
            let username = form.text("username");
            let password = form.get("password").unwrap_or("").to_string();
            if password != form.get("passwordConfirmation").unwrap_or("") {
                error = messages.get("passwordConfirmNotMatch").cloned();
            } else {
                let store = app.store.clone();
                let clock = app.clock.clone();
                let created = app
                    .hashes
                    .run(move || {
                        crate::bootstrap::create_first_admin(
                            &store,
                            &*clock,
                            &username,
                            &password,
                            &Default::default(),
                        )
                    })
                    .await;
                match created {
                    Ok(Ok(_)) => notice = messages.get("welcomeAdminCreated").cloned(),
                    Ok(Err(e)) => error = Some(e.to_string()),
                    Err(_) => error = messages.get("serverBusyMessage").cloned(),
                }
            }
        }
    }
    let csrf = random_token(24);
    let context = json!({
        "msg": messages,
        "locale": "en",
        "resources_url": "/resources/default",
        "console": "/admin/master/console/",
        "create_admin": may_create_admin(app, request, info),
        "remote_fresh": !from_this_machine(request, info)
            && !crate::bootstrap::master_has_users(&app.store).unwrap_or(true),
        "csrf": csrf,
        "notice": notice,
        "error": error,
        "version": env!("CARGO_PKG_VERSION"),
    });
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let mut response = super::render_template(app, status, "admin/welcome.html", &context);
    super::session::add_cookie(
        &mut response,
        format!(
            "{CSRF_COOKIE}={csrf}; Path=/; HttpOnly; SameSite=Strict{}",
            if info.tls { "; Secure" } else { "" }
        ),
    );
    response
}

/// `/admin`, `/admin/`: the master realm's console, as in Keycloak.
pub fn admin_root() -> Response {
    let mut r = crate::http::redirect("/admin/master/console/");
    *r.body_mut() = Bytes::new();
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(host: &str, extra: Option<(&str, &str)>) -> Request {
        let mut b = http::Request::builder()
            .uri("/")
            .header(http::header::HOST, host);
        if let Some((k, v)) = extra {
            b = b.header(k, v);
        }
        b.body(Bytes::new()).unwrap()
    }

    #[test]
    fn only_this_machine_by_a_loopback_name_and_unrelayed() {
        let local = RequestInfo {
            peer: Some("127.0.0.1:5000".parse().unwrap()),
            tls: false,
        };
        for host in [
            "localhost:8080",
            "LOCALHOST",
            "127.0.0.1:8080",
            "[::1]:8080",
            "app.localhost",
        ] {
            assert!(from_this_machine(&request(host, None), &local), "{host}");
        }
        for host in [
            "rebind.attacker.test:8080",
            "10.0.0.1",
            "localhost.attacker.test",
            "",
        ] {
            assert!(!from_this_machine(&request(host, None), &local), "{host}");
        }
        for header in [
            "x-forwarded-for",
            "forwarded",
            "x-real-ip",
            "x-forwarded-host",
            // What other proxies and meshes add (Istio's inbound hop comes from
            // 127.0.0.6 with X-Forwarded-Proto), in any spelling.
            "x-forwarded-proto",
            "via",
            "true-client-ip",
            "x_forwarded_for",
        ] {
            let r = request("localhost", Some((header, "127.0.0.1")));
            assert!(!from_this_machine(&r, &local), "{header}");
        }
        let remote = RequestInfo {
            peer: Some("192.0.2.1:5000".parse().unwrap()),
            tls: false,
        };
        assert!(!from_this_machine(&request("localhost", None), &remote));
        // A dual-stack listener sees local IPv4 clients as IPv4-mapped addresses.
        let mapped = RequestInfo {
            peer: Some("[::ffff:127.0.0.1]:5000".parse().unwrap()),
            tls: false,
        };
        assert!(from_this_machine(&request("localhost", None), &mapped));
    }

    #[test]
    fn a_form_from_another_local_origin_is_refused() {
        // Another port of localhost is the same site, not the same origin: its script could
        // plant the CSRF cookie (cookies ignore ports) and post the form.
        let post = |headers: &[(&str, &str)]| {
            let mut b = http::Request::builder()
                .method(Method::POST)
                .uri("/")
                .header(http::header::HOST, "localhost:8080");
            for (k, v) in headers {
                b = b.header(*k, *v);
            }
            super::super::same_origin_form(
                &b.body(Bytes::new()).unwrap(),
                "https://id.example.test",
            )
        };
        assert!(post(&[]), "a client that sends neither header");
        assert!(post(&[
            ("sec-fetch-site", "same-origin"),
            ("origin", "http://localhost:8080")
        ]));
        assert!(post(&[("sec-fetch-site", "none")]));
        assert!(!post(&[("sec-fetch-site", "same-site")]));
        assert!(!post(&[("sec-fetch-site", "cross-site")]));
        assert!(!post(&[("origin", "http://localhost:3000")]));
        assert!(!post(&[("origin", "null")]));
        assert!(!post(&[
            ("origin", "null"),
            ("sec-fetch-site", "cross-site")
        ]));
        // Our own pages (`Referrer-Policy: no-referrer`) post with `Origin: null`.
        assert!(post(&[
            ("origin", "null"),
            ("sec-fetch-site", "same-origin")
        ]));
        // The public URL in front (a proxy that rewrote Host) is this origin too.
        assert!(post(&[("origin", "https://id.example.test")]));
        assert!(!post(&[("origin", "https://id.example.test.evil")]));
    }
}
