//! Unit tests of loading and validation, through `Config::parse` and the `Validator`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::load::parse_raw;
use super::validate::values::valid_server_name;
use super::validate::Validator;
use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("test.toml"))
}

fn error(text: &str) -> String {
    parse(text)
        .expect_err("config should be rejected")
        .to_string()
}

#[test]
fn empty_file_takes_defaults() {
    let c = parse("").unwrap();
    assert_eq!(c.server.http, Some("0.0.0.0:8080".parse().unwrap()));
    assert_eq!(c.server.https, Some("0.0.0.0:8443".parse().unwrap()));
    assert!(c.server.threads >= 1);
    assert_eq!(c.store.data_dir, PathBuf::from("data"));
    assert_eq!(c.log.format, LogFormat::Text);
}

#[test]
fn unknown_key_is_named_with_its_line() {
    let e = error("[server]\nhttp = \"127.0.0.1:1\"\nhtps = \"x\"\n");
    assert!(e.starts_with("test.toml:3: server"), "{e}");
    assert!(e.contains("unknown field `htps`"), "{e}");
}

#[test]
fn bad_address_names_key_and_line() {
    let e = error("\n\n[server]\nhttp = \"not an address\"\n");
    assert_eq!(
        e,
        "test.toml:4: server.http: invalid listen address \"not an address\" (expected host:port, e.g. 0.0.0.0:8080)"
    );
}

#[test]
fn wrong_type_names_key() {
    let e = error("[server]\nthreads = \"four\"\n");
    assert!(e.starts_with("test.toml:2: server.threads:"), "{e}");
}

#[test]
fn malformed_toml_names_line() {
    let e = error("[server\nhttp = 1\n");
    assert!(e.starts_with("test.toml:1:"), "{e}");
}

#[test]
fn missing_certificate_file_is_named() {
    let e =
        error("[[tls.certificate]]\ncert = \"/nonexistent/c.pem\"\nkey = \"/nonexistent/k.pem\"\n");
    assert!(
        e.starts_with("test.toml:2: tls.certificate[0].cert: cannot read \"/nonexistent/c.pem\""),
        "{e}"
    );
}

#[test]
fn secrets_come_from_the_environment() {
    let text = "[bootstrap]\nadmin_password = { env = \"PORTCULLIS_TEST_SECRET_A\" }\n";
    let v = Validator {
        file: "t",
        text,
        env: &|name| (name == "PORTCULLIS_TEST_SECRET_A").then(|| "s3cret".to_string()),
    };
    let c = v
        .config(parse_raw(text, "t").unwrap(), Path::new("t"))
        .unwrap();
    assert_eq!(c.bootstrap.admin_password.as_deref(), Some("s3cret"));
    assert!(!format!("{:?}", c.bootstrap).contains("s3cret"));
    let v = Validator {
        file: "t",
        text,
        env: &|_| None,
    };
    let e = v
        .config(parse_raw(text, "t").unwrap(), Path::new("t"))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "t:2: bootstrap.admin_password: environment variable PORTCULLIS_TEST_SECRET_A is not set"
    );
}

#[test]
fn durations_and_disabled_listeners() {
    let c = parse("[server]\nhttps = \"\"\nshutdown_grace = \"250ms\"\nshutdown_timeout = 2\n")
        .unwrap();
    assert_eq!(c.server.https, None);
    assert_eq!(c.server.shutdown_grace, Duration::from_millis(250));
    assert_eq!(c.server.shutdown_timeout, Duration::from_secs(2));
    let e = error("[server]\nshutdown_grace = \"soon\"\n");
    assert!(
        e.starts_with("test.toml:2: server.shutdown_grace: invalid duration"),
        "{e}"
    );
}

#[test]
fn overrides_win_and_are_checked() {
    let mut c = parse("").unwrap();
    c.apply(&Overrides {
        http: Some("127.0.0.1:0".into()),
        https: Some("".into()),
        data_dir: Some("/tmp/x".into()),
        hostname: Some("Auth.Example.com:8443".into()),
        database: crate::config::DatabaseOverride {
            kind: Some("postgres".into()),
            url: Some("jdbc:postgresql://db/keycloak".into()),
            ..Default::default()
        },
    })
    .unwrap();
    assert_eq!(
        c.store.postgres.as_ref().map(|p| p.url.as_str()),
        Some("postgres://db/keycloak")
    );
    assert_eq!(c.server.hostnames, ["auth.example.com:8443"]);
    let mut d = parse("").unwrap();
    d.apply(&Overrides {
        hostname: Some("https://auth.example.com".into()),
        ..Overrides::default()
    })
    .unwrap();
    assert_eq!(
        d.server.public_url.unwrap().as_str(),
        "https://auth.example.com/"
    );
    let e = parse("")
        .unwrap()
        .apply(&Overrides {
            hostname: Some("ftp://x".into()),
            ..Overrides::default()
        })
        .unwrap_err()
        .to_string();
    assert!(e.contains("--hostname"), "{e}");
    assert_eq!(c.server.http, Some("127.0.0.1:0".parse().unwrap()));
    assert_eq!(c.server.https, None);
    assert_eq!(
        c.overrides.http.as_deref(),
        Some("127.0.0.1:0"),
        "kept for reloads"
    );
    let e = c
        .apply(&Overrides {
            http: Some("nope".into()),
            ..Default::default()
        })
        .unwrap_err();
    assert!(e.to_string().starts_with("--http: invalid listen address"));
}

#[test]
fn routes_and_cidrs_are_checked() {
    let c = parse("[proxy]\nallow = [\"10.0.0.0/8\", \"::1\"]\n[[route]]\nhost = \"*.apps.test\"\npath = \"/api//v1/\"\nupstream = \"http://127.0.0.1:9000\"\n").unwrap();
    assert_eq!(c.proxy.allow.len(), 2);
    let r = &c.proxy.routes[0];
    assert_eq!(r.host, HostMatch::Wildcard("apps.test".into()));
    assert_eq!(r.path_prefix, "/api/v1/");
    assert_eq!(r.name, "route[0]");
    let e = error("[[route]]\nupstream = \"http://127.0.0.1:9000\"\nallow = [\"10.0.0/8\"]\n");
    assert_eq!(
        e,
        "test.toml:3: route[0].allow[0]: invalid CIDR \"10.0.0/8\""
    );
    let e = error("[[route]]\nupstream = \"ftp://x\"\n");
    assert!(e.starts_with("test.toml:2: route[0].upstream[0]:"), "{e}");
    let e = error("[[route]]\nupstream = \"http://127.0.0.1:1\"\nauth = \"session\"\n");
    assert_eq!(
        e,
        "test.toml:3: route[0].realm: is required when auth is \"session\""
    );
}

#[test]
fn route_access_is_checked() {
    let base = "[[route]]\nupstream = \"http://127.0.0.1:1\"\n";
    let ok = parse(&format!(
        "{base}auth = \"session_or_bearer\"\nrealm = \"demo\"\nclient = \"gw\"\npublic_paths = [\"/static//x\"]\n\
         client_roles = [\"viewer\", \"other:editor\"]\ngroups = [\"staff\"]\npolicy = \"all\"\n\
         methods = [\"get\"]\nidentity_headers = {{ user = \"X-Remote-User\" }}\n"
    ))
    .unwrap();
    let r = &ok.proxy.routes[0];
    assert_eq!(r.auth, RouteAuth::SessionOrBearer);
    assert_eq!(r.methods, vec![http::Method::GET]);
    let a = r.access.as_ref().unwrap();
    assert_eq!(a.public_paths, vec!["/static/x".to_string()]);
    assert_eq!(
        a.policy.client_roles,
        vec![
            ("gw".to_string(), "viewer".to_string()),
            ("other".to_string(), "editor".to_string())
        ]
    );
    assert_eq!(a.policy.groups, vec!["/staff".to_string()]);
    assert!(a.policy.require_all && a.jwt_assertion);
    assert_eq!(a.headers.user.as_str(), "x-remote-user");

    for (extra, expected) in [
        ("auth = \"basic\"\n", "test.toml:3: route[0].auth: \"basic\" is not one of"),
        ("realm = \"demo\"\n", "test.toml:1: route[0].realm: only applies to routes with auth"),
        (
            "auth = \"bearer\"\nrealm = \"demo\"\nclient = \"gw\"\npolicy = \"most\"\n",
            "test.toml:6: route[0].policy: \"most\" is not \"any\" or \"all\"",
        ),
        (
            "auth = \"bearer\"\nrealm = \"demo\"\nclient = \"gw\"\nidentity_headers = { user = \"bad header\" }\n",
            "test.toml:6: route[0].identity_headers.user:",
        ),
        ("methods = [\"G T\"]\n", "test.toml:3: route[0].methods[0]: \"G T\" is not an HTTP method"),
        ("jwt_assertion = false\n", "test.toml:1: route[0].jwt_assertion: only applies"),
        ("identity_headers = { user = \"X-U\" }\n", "test.toml:1: route[0].identity_headers: only applies"),
        ("health_check = \"/h x\"\n", "test.toml:3: route[0].health_check: must be a path"),
        (
            "auth = \"bearer\"\nrealm = \"demo\"\nclient = \"gw\"\nidentity_headers = { user = \"Transfer-Encoding\" }\n",
            "test.toml:6: route[0].identity_headers.user:",
        ),
        (
            "health_check = \"/h\"\nhealth_interval = \"1ms\"\n",
            "test.toml:4: route[0].health_interval: must be at least 100ms",
        ),
        ("upstream_ca = \"/nonexistent.pem\"\n", "test.toml:3: route[0].upstream_ca: cannot read"),
    ] {
        let e = error(&format!("{base}{extra}"));
        assert!(e.starts_with(expected), "{extra}: {e}");
    }
    let e = error("[proxy]\nsession_check_interval = \"10m\"\n");
    assert_eq!(
        e,
        "test.toml:2: proxy.session_check_interval: must be at most 60s"
    );
    let e = error("[[route]]\nhost = \"a.test\"\n");
    assert_eq!(
        e,
        "test.toml:2: route[0].upstream: a route needs an upstream (only routes with auth may omit it, for forward-auth)"
    );
    // A forward-auth-only route needs no upstream.
    let fa =
        parse("[[route]]\nhost = \"a.test\"\nauth = \"session\"\nrealm = \"r\"\nclient = \"c\"\n")
            .unwrap();
    assert!(fa.proxy.routes[0].upstreams.is_empty());
}

#[test]
fn server_names_are_checked() {
    assert!(valid_server_name("example.com"));
    assert!(valid_server_name("*.example.com"));
    assert!(!valid_server_name("exa mple.com"));
    assert!(!valid_server_name("*"));
    assert!(!valid_server_name("a..b"));
}
