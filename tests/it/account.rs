//! The account page: reached through the login, change of password (current password and
//! policy checked), set-up and removal of an authenticator, sessions signed out, CSRF.

use serde_json::{json, Value};

use crate::api::Api;
use crate::browser::{find_form, totp_now, totp_secret_from_page, Browser};
use crate::harness::TestServer;

/// Follow redirects (at most 8) from `path`; returns the last (status, body) and URL.
fn follow(b: &Browser, path: &str) -> (u16, String, String) {
    let mut url = b.url(path);
    for _ in 0..8 {
        let (status, location, body) = b.get(&url);
        match location {
            Some(next) if (300..400).contains(&status) => url = b.url(&next),
            _ => return (status, body, url),
        }
    }
    panic!("redirect loop from {path}");
}

fn submit_following(b: &Browser, form: &crate::browser::Form) -> (u16, String, String) {
    let (status, location, body) = b.submit(form);
    match location {
        Some(next) if (300..400).contains(&status) => follow(b, &next),
        _ => (status, body, String::new()),
    }
}

#[test]
fn the_account_page_changes_the_password_manages_otp_and_signs_out_sessions() {
    let server = TestServer::start();
    let api = Api::admin(&server);
    let (secret, alice) = api.setup_realm("acc");
    let r = api.put(
        "/admin/realms/acc",
        &json!({"passwordPolicy": "length(12)", "eventsEnabled": true}),
    );
    assert_eq!(r.status, 204);

    // Not signed in: the login, then the page.
    let b = Browser::new(&server);
    let (status, html, url) = follow(&b, "/realms/acc/account");
    assert_eq!(status, 200);
    assert!(url.contains("client_id=account"), "{url}");
    let (status, page, url) = {
        let mut form = find_form(&html, "kc-form-login").unwrap();
        form.set("username", "alice");
        form.set("password", "Alice-pass-1");
        submit_following(&b, &form)
    };
    assert_eq!(status, 200, "{page}");
    assert!(url.ends_with("/realms/acc/account/"), "{url}");
    assert!(page.contains("id=\"account-username\">alice<"), "{page}");

    // A form without the page's token is refused.
    let r = b
        .client
        .post(b.url("/realms/acc/account/password"))
        .form(&[
            ("password", "Alice-pass-1"),
            ("password-new", "x"),
            ("password-confirm", "x"),
        ])
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);

    // Wrong current password, then a password the policy refuses, then a good one.
    let mut form = find_form(&page, "account-password-form").unwrap();
    form.set("password", "not-my-password");
    form.set("password-new", "Long-enough-pass-1");
    form.set("password-confirm", "Long-enough-pass-1");
    let (status, _, page) = b.submit(&form);
    assert_eq!(status, 200);
    assert!(page.contains("Invalid existing password"), "{page}");
    let mut form = find_form(&page, "account-password-form").unwrap();
    form.set("password", "Alice-pass-1");
    form.set("password-new", "short");
    form.set("password-confirm", "short");
    let (_, _, page) = b.submit(&form);
    assert!(
        page.contains("minimum length 12"),
        "the length rule: {page}"
    );
    let mut form = find_form(&page, "account-password-form").unwrap();
    form.set("password", "Alice-pass-1");
    form.set("password-new", "Long-enough-pass-1");
    form.set("password-confirm", "Long-enough-pass-1");
    let (_, _, page) = b.submit(&form);
    assert!(page.contains("Your password has been updated"), "{page}");
    let grant = api.token(
        "acc",
        &[
            ("grant_type", "password"),
            ("client_id", "app"),
            ("client_secret", secret.as_str()),
            ("username", "alice"),
            ("password", "Long-enough-pass-1"),
        ],
    );
    assert_eq!(grant.status, 200, "{}", grant.text);

    // Two sessions now (this browser and the grant); sign out the other one.
    let (_, page, _) = follow(&b, "/realms/acc/account/");
    assert_eq!(
        page.matches("name=\"session_id\" value=\"").count(),
        3,
        "2 sessions + 'others'"
    );
    let form = find_form(&page, "account-signout-others-form").unwrap();
    let (_, _, page) = b.submit(&form);
    assert!(page.contains("signed out"), "{page}");
    let sessions = api.get(&format!("/admin/realms/acc/users/{alice}/sessions"));
    assert_eq!(
        sessions.body.as_array().unwrap().len(),
        1,
        "{}",
        sessions.text
    );

    // Set up an authenticator: a fresh login, the set-up page, back to the account.
    let form = find_form(&page, "account-totp-setup-form").unwrap();
    let (status, html, url) = submit_following(&b, &form);
    assert_eq!(status, 200);
    assert!(url.contains("prompt=login"), "{url}");
    let mut form = find_form(&html, "kc-form-login").unwrap();
    form.set("username", "alice");
    form.set("password", "Long-enough-pass-1");
    let (status, setup, _) = submit_following(&b, &form);
    assert_eq!(status, 200);
    let totp_secret = totp_secret_from_page(&setup);
    let mut form = find_form(&setup, "kc-totp-settings-form").unwrap();
    form.set("totp", &totp_now(&totp_secret));
    form.set("userLabel", "phone");
    let (status, page, url) = submit_following(&b, &form);
    assert_eq!(status, 200, "{page}");
    assert!(url.ends_with("/account/"), "{url}");
    assert!(page.contains("phone"), "{page}");
    let user = api.get(&format!("/admin/realms/acc/users/{alice}"));
    assert_eq!(user.body["totp"], true);

    // Remove it again.
    let form = find_form(&page, "account-otp-remove-1").unwrap();
    let (_, _, page) = b.submit(&form);
    assert!(page.contains("authenticator has been removed"), "{page}");
    let user = api.get(&format!("/admin/realms/acc/users/{alice}"));
    assert_eq!(user.body["totp"], false);
    let events = api.get("/admin/realms/acc/events?type=REMOVE_TOTP");
    assert_eq!(events.body.as_array().unwrap().len(), 1, "{}", events.text);
}

#[test]
fn a_realm_can_require_an_authenticator_of_everyone() {
    let server = TestServer::start();
    let api = Api::admin(&server);
    let (secret, _) = api.setup_realm("otpreq");
    let r = api.put(
        "/admin/realms/otpreq",
        &json!({"attributes": {"otpRequired": "true"}}),
    );
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(
        api.get("/admin/realms/otpreq").body["attributes"]["otpRequired"],
        "true"
    );
    let grant = |otp: Option<&str>| {
        let mut form = vec![
            ("grant_type", "password"),
            ("client_id", "app"),
            ("client_secret", secret.as_str()),
            ("username", "alice"),
            ("password", "Alice-pass-1"),
        ];
        if let Some(o) = otp {
            form.push(("otp", o));
        }
        api.token("otpreq", &form).status
    };
    assert_eq!(grant(None), 400, "no authenticator yet: not fully set up");
    let b = Browser::new(&server);
    let (_, _, html) = b.get(&b.auth_url("otpreq", "app", &[]));
    let (status, location, setup) = b.login(&html, "alice", "Alice-pass-1");
    assert_eq!((status, location), (200, None));
    let totp_secret = totp_secret_from_page(&setup);
    let mut form = find_form(&setup, "kc-totp-settings-form").unwrap();
    form.set("totp", &totp_now(&totp_secret));
    let (status, location, _) = b.submit(&form);
    assert_eq!(status, 302);
    assert!(location.unwrap().contains("code="));
    assert_eq!(grant(None), 401, "now the code is needed");
    let next = crate::browser::totp_at(&crate::browser::DEFAULT_OTP, &totp_secret, 30);
    assert_eq!(grant(Some(&next)), 200);
}

/// The seed's 2FA guide, "Enforcing 2FA for All Users" by REST: copy the browser flow,
/// make its OTP step REQUIRED, bind it as the browser flow. Every login then asks for a
/// code (a user without an authenticator configures one first); disabling the OTP Form
/// takes the step away again.
#[test]
fn a_browser_flow_with_otp_required_asks_every_login_for_a_code() {
    let server = TestServer::start();
    let api = Api::admin(&server);
    api.setup_realm("flow2fa");
    let base = "/admin/realms/flow2fa/authentication";
    let r = api.post(
        &format!("{base}/flows/browser/copy"),
        &json!({"newName": "browser with otp"}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let executions = |api: &Api| {
        api.get(&format!("{base}/flows/browser%20with%20otp/executions"))
            .body
            .as_array()
            .unwrap()
            .clone()
    };
    let list = executions(&api);
    let find = |list: &[Value], name: &str| {
        list.iter()
            .find(|e| e["displayName"] == name)
            .unwrap_or_else(|| panic!("no {name}: {list:?}"))
            .clone()
    };
    let mut conditional = find(&list, "browser with otp Browser - Conditional OTP");
    conditional["requirement"] = "REQUIRED".into();
    let r = api.put(
        &format!("{base}/flows/browser%20with%20otp/executions"),
        &conditional,
    );
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(
        find(&executions(&api), "OTP Form")["requirement"],
        "REQUIRED"
    );
    // First for one client only (its flow override), as the console's "Advanced" tab sets.
    let flow_id = api
        .get(&format!("{base}/flows"))
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["alias"] == "browser with otp")
        .unwrap()["id"]
        .clone();
    let app = api.get("/admin/realms/flow2fa/clients?clientId=app").body[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = api.put(
        &format!("/admin/realms/flow2fa/clients/{app}"),
        &json!({"authenticationFlowBindingOverrides": {"browser": flow_id}}),
    );
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(
        api.get(&format!("/admin/realms/flow2fa/clients/{app}"))
            .body["authenticationFlowBindingOverrides"]["browser"],
        flow_id
    );
    assert_eq!(
        api.get("/admin/realms/flow2fa").body["browserFlow"],
        "browser"
    );
    let bad = api.put(
        &format!("/admin/realms/flow2fa/clients/{app}"),
        &json!({"authenticationFlowBindingOverrides": {"browser": "nope"}}),
    );
    assert_eq!(bad.status, 400, "{}", bad.text);

    // alice has no authenticator: the login makes her configure one.
    let b = Browser::new(&server);
    let (_, _, html) = b.get(&b.auth_url("flow2fa", "app", &[]));
    let (status, location, setup) = b.login(&html, "alice", "Alice-pass-1");
    assert_eq!((status, location), (200, None), "{setup}");
    let totp_secret = totp_secret_from_page(&setup);
    let mut form = find_form(&setup, "kc-totp-settings-form").unwrap();
    form.set("totp", &totp_now(&totp_secret));
    let (status, location, _) = b.submit(&form);
    assert_eq!(status, 302);
    assert!(location.unwrap().contains("code="));

    // A new browser: password, then the code.
    let b = Browser::new(&server);
    let (_, _, html) = b.get(&b.auth_url("flow2fa", "app", &[]));
    let (status, location, page) = b.login(&html, "alice", "Alice-pass-1");
    assert_eq!((status, location), (200, None));
    let mut otp = find_form(&page, "kc-otp-login-form").expect("the code is asked for");
    otp.set(
        "otp",
        &crate::browser::totp_at(&crate::browser::DEFAULT_OTP, &totp_secret, 30),
    );
    let (status, location, _) = b.submit(&otp);
    assert_eq!(status, 302);
    assert!(location.unwrap().contains("code="));

    // Now for the whole realm instead; a flow a client uses is not deleted.
    let flow_uuid = flow_id.as_str().unwrap();
    assert_eq!(api.delete(&format!("{base}/flows/{flow_uuid}")).status, 400);
    let r = api.put(
        &format!("/admin/realms/flow2fa/clients/{app}"),
        &json!({"authenticationFlowBindingOverrides": {}}),
    );
    assert_eq!(r.status, 204, "{}", r.text);
    let r = api.put(
        "/admin/realms/flow2fa",
        &json!({"browserFlow": "browser with otp"}),
    );
    assert_eq!(r.status, 204, "{}", r.text);
    let b = Browser::new(&server);
    let (_, _, html) = b.get(&b.auth_url("flow2fa", "app", &[]));
    let (status, _, page) = b.login(&html, "alice", "Alice-pass-1");
    assert_eq!(status, 200);
    assert!(find_form(&page, "kc-otp-login-form").is_some(), "{page}");

    // OTP Form DISABLED in the bound flow: no code step, even with an authenticator.
    let mut step = find(&executions(&api), "OTP Form");
    step["requirement"] = "DISABLED".into();
    let r = api.put(
        &format!("{base}/flows/browser%20with%20otp/executions"),
        &step,
    );
    assert_eq!(r.status, 202, "{}", r.text);
    let b = Browser::new(&server);
    let (_, _, html) = b.get(&b.auth_url("flow2fa", "app", &[]));
    let (status, location, _) = b.login(&html, "alice", "Alice-pass-1");
    assert_eq!(status, 302);
    assert!(location.unwrap().contains("code="));
}

/// The declarative user profile: an administrator adds a required attribute with a list of
/// options; the admin API refuses values the profile does not allow, and `UPDATE_PROFILE`
/// at login asks for what is missing and checks what the user types.
#[test]
fn update_profile_asks_for_what_the_user_profile_requires() {
    let server = TestServer::start();
    let api = Api::admin(&server);
    let (_, alice) = api.setup_realm("prof");
    let mut config = api.get("/admin/realms/prof/users/profile").body;
    assert!(config["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["name"] == "email"));
    config["attributes"].as_array_mut().unwrap().push(json!({
        "name": "department", "displayName": "Department",
        "validations": {"options": {"options": ["eng", "ops"]}},
        "required": {"roles": ["user"]},
        "permissions": {"view": ["admin", "user"], "edit": ["admin", "user"]},
    }));
    let r = api.put("/admin/realms/prof/users/profile", &config);
    assert_eq!(r.status, 200, "{}", r.text);
    let meta = api.get("/admin/realms/prof/users/profile/metadata").body;
    assert!(
        meta["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"] == "department" && a["required"] == false),
        "{meta}"
    );
    // Bad values through the admin API: 400 naming the field, nothing written.
    let r = api.post(
        "/admin/realms/prof/users",
        &json!({"username": "bob", "firstName": "<b>Bob</b>"}),
    );
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.body["field"], "firstName");
    assert_eq!(
        r.body["errorMessage"],
        "error-person-name-invalid-character"
    );
    let r = api.put(
        &format!("/admin/realms/prof/users/{alice}"),
        &json!({"attributes": {"department": ["sales"]}}),
    );
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.body["errorMessage"], "error-invalid-option");
    let broken = json!({"attributes": [{"name": "username"}]});
    assert_eq!(
        api.put("/admin/realms/prof/users/profile", &broken).status,
        400
    );

    // The login asks for the department.
    let r = api.put(
        &format!("/admin/realms/prof/users/{alice}"),
        &json!({"requiredActions": ["UPDATE_PROFILE"]}),
    );
    assert_eq!(r.status, 204, "{}", r.text);
    let b = Browser::new(&server);
    let (_, _, html) = b.get(&b.auth_url("prof", "app", &[]));
    let (status, location, page) = b.login(&html, "alice", "Alice-pass-1");
    assert_eq!((status, location), (200, None), "{page}");
    let form = find_form(&page, "kc-update-profile-form").expect("the profile form");
    assert!(page.contains("Department"), "{page}");
    let (status, _, page) = b.submit(&form);
    assert_eq!(status, 400, "the department is missing");
    assert!(page.contains("Please specify this field."), "{page}");
    let mut form = find_form(&page, "kc-update-profile-form").unwrap();
    form.set("department", "eng");
    form.set("firstName", "Alicia");
    let (status, location, page) = b.submit(&form);
    assert_eq!(status, 302, "{page}");
    assert!(location.unwrap().contains("code="));
    let user = api.get(&format!("/admin/realms/prof/users/{alice}")).body;
    assert_eq!(user["firstName"], "Alicia");
    assert_eq!(user["attributes"]["department"], json!(["eng"]));
    assert_eq!(user["requiredActions"], json!([]));
}

/// `VERIFY_PROFILE`, once a realm turns it on: a login (an SSO one too) whose user lacks
/// what the user profile requires asks for it first; a complete profile passes.
#[test]
fn verify_profile_asks_for_a_profile_the_user_profile_finds_incomplete() {
    let server = TestServer::start();
    let api = Api::admin(&server);
    api.setup_realm("vp");
    let listed = api.get("/admin/realms/vp/authentication/required-actions/VERIFY_PROFILE");
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(listed.body["enabled"], false, "off until turned on");
    let r = api.post(
        "/admin/realms/vp/users",
        &json!({"username": "nameless", "email": "nameless@example.com", "enabled": true,
                "credentials": [{"type": "password", "value": "Nameless-pass-1", "temporary": false}]}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.location_id();
    // Off: the login goes straight through.
    let b = Browser::new(&server);
    let (_, _, html) = b.get(&b.auth_url("vp", "app", &[]));
    let (status, _, page) = b.login(&html, "nameless", "Nameless-pass-1");
    assert_eq!(status, 302, "{page}");
    let mut action = listed.body.clone();
    action["enabled"] = json!(true);
    let r = api.put(
        "/admin/realms/vp/authentication/required-actions/VERIFY_PROFILE",
        &action,
    );
    assert_eq!(r.status, 204, "{}", r.text);
    // The SSO session of that browser does not skip it.
    let (status, location, page) = b.get(&b.auth_url("vp", "app", &[]));
    assert_eq!((status, location), (200, None), "{page}");
    let (status, _, page) = b.login(&page, "nameless", "Nameless-pass-1");
    assert_eq!(status, 200, "{page}");
    let mut form = find_form(&page, "kc-update-profile-form").expect("the profile form");
    form.set("firstName", "Nora");
    form.set("lastName", "Named");
    let (status, location, page) = b.submit(&form);
    assert_eq!(status, 302, "{page}");
    assert!(location.unwrap().contains("code="));
    let user = api.get(&format!("/admin/realms/vp/users/{id}")).body;
    assert_eq!(
        (user["firstName"].clone(), user["lastName"].clone()),
        (json!("Nora"), json!("Named"))
    );
    assert_eq!(
        user["requiredActions"],
        json!([]),
        "never stored on the user"
    );
    // Complete now: the next login is not stopped.
    let b = Browser::new(&server);
    let (_, _, html) = b.get(&b.auth_url("vp", "app", &[]));
    let (status, _, page) = b.login(&html, "nameless", "Nameless-pass-1");
    assert_eq!(status, 302, "{page}");
}

/// The login page's "Register" link.
pub(crate) fn registration_link(html: &str) -> Option<String> {
    let at = html.find("id=\"kc-registration\"")?;
    let rest = &html[at..];
    let href = rest.split("href=\"").nth(1)?.split('"').next()?;
    Some(href.replace("&#x2f;", "/").replace("&amp;", "&"))
}

/// Self-registration when the realm allows it: the login page links to it, the profile and
/// the password policy are checked, and the new user is signed in to the client.
#[test]
fn users_register_themselves_when_the_realm_allows_it() {
    let server = TestServer::start();
    let api = Api::admin(&server);
    api.setup_realm("reg");
    let b = Browser::new(&server);
    let (_, _, html) = b.get(&b.auth_url("reg", "app", &[]));
    assert!(!html.contains("kc-registration"), "off by default");
    let r = api.put(
        "/admin/realms/reg",
        &json!({"registrationAllowed": true, "passwordPolicy": "length(10)"}),
    );
    assert_eq!(r.status, 204, "{}", r.text);
    let b = Browser::new(&server);
    let (_, _, html) = b.get(&b.auth_url("reg", "app", &[]));
    let link = registration_link(&html).expect("a registration link");
    let (status, _, page) = b.get(&link);
    assert_eq!(status, 200);
    let form = find_form(&page, "kc-register-form").expect("the registration form");
    let fill = |form: &crate::browser::Form, email: &str, password: &str, confirm: &str| {
        let mut f = form.clone();
        f.set("username", "newbie");
        f.set("email", email);
        f.set("firstName", "New");
        f.set("lastName", "User");
        f.set("password", password);
        f.set("password-confirm", confirm);
        f
    };
    for (email, password, confirm, expected) in [
        (
            "newbie@example.com",
            "Long-enough-1",
            "Other-value-1",
            "Passwords don",
        ),
        ("newbie@example.com", "short", "short", "length"),
        (
            "not-an-address",
            "Long-enough-1",
            "Long-enough-1",
            "Invalid email address.",
        ),
        (
            "alice@example.com",
            "Long-enough-1",
            "Long-enough-1",
            "Email already exists.",
        ),
    ] {
        let (status, _, again) = b.submit(&fill(&form, email, password, confirm));
        assert_eq!(status, 400, "{email}/{password}: {again}");
        assert!(again.contains(expected), "{expected}: {again}");
    }
    let (status, location, page) = b.submit(&fill(
        &form,
        "newbie@example.com",
        "Long-enough-1",
        "Long-enough-1",
    ));
    assert_eq!(status, 302, "{page}");
    assert!(location.unwrap().contains("code="));
    let users = api
        .get("/admin/realms/reg/users?username=newbie&exact=true")
        .body;
    assert_eq!(users[0]["email"], "newbie@example.com");
    assert_eq!(users[0]["firstName"], "New");
    let id = users[0]["id"].as_str().unwrap();
    let roles = api
        .get(&format!("/admin/realms/reg/users/{id}/role-mappings/realm"))
        .body;
    assert!(roles
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["name"] == "default-roles-reg"));
    let events = api.get("/admin/realms/reg/events?type=REGISTER").body;
    assert!(events.as_array().is_some());
    // The new password signs in.
    let b = Browser::new(&server);
    let (_, _, html) = b.get(&b.auth_url("reg", "app", &[]));
    let (status, location, _) = b.login(&html, "newbie", "Long-enough-1");
    assert_eq!(status, 302);
    assert!(location.unwrap().contains("code="));
    // With the e-mail address as username, there is no username field.
    api.put(
        "/admin/realms/reg",
        &json!({"registrationEmailAsUsername": true}),
    );
    let b = Browser::new(&server);
    let (_, _, html) = b.get(&b.auth_url("reg", "app", &[]));
    let link = registration_link(&html).unwrap();
    let (_, _, page) = b.get(&link);
    let mut form = find_form(&page, "kc-register-form").unwrap();
    assert!(!page.contains("id=\"username\""), "{page}");
    form.set("email", "Second@Example.com");
    form.set("firstName", "Second");
    form.set("lastName", "User");
    form.set("password", "Long-enough-2");
    form.set("password-confirm", "Long-enough-2");
    let (status, _, page) = b.submit(&form);
    assert_eq!(status, 302, "{page}");
    let users = api
        .get("/admin/realms/reg/users?username=second@example.com&exact=true")
        .body;
    assert_eq!(users.as_array().unwrap().len(), 1, "{users}");
}

#[test]
fn one_address_guessing_many_names_is_slowed_down_and_others_are_not() {
    let server = crate::harness::TestServer::start_with(crate::harness::Options {
        extra_config: "[proxy]\ntrusted_proxies = [\"127.0.0.1/32\"]\n".into(),
        ..Default::default()
    });
    let api = Api::admin(&server);
    let (secret, alice) = api.setup_realm("bf");
    let r = api.put(
        "/admin/realms/bf",
        &json!({"bruteForceProtected": true, "failureFactor": 1, "waitIncrementSeconds": 60, "sslRequired": "none"}),
    );
    assert_eq!(r.status, 204, "{}", r.text);
    let client = server.client();
    let grant = |from: &str, username: &str, password: &str| {
        client
            .post(format!(
                "http://{}/realms/bf/protocol/openid-connect/token",
                server.http
            ))
            .header("x-forwarded-for", from)
            .form(&[
                ("grant_type", "password"),
                ("client_id", "app"),
                ("client_secret", secret.as_str()),
                ("username", username),
                ("password", password),
            ])
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    // failureFactor 1 × 5 for an address: five guesses at names that do not exist.
    for i in 0..5 {
        assert_eq!(grant("198.51.100.7", &format!("nobody{i}"), "guess"), 401);
    }
    assert_eq!(
        grant("198.51.100.7", "alice", "Alice-pass-1"),
        401,
        "the guessing address waits, even with the right password"
    );
    assert_eq!(
        grant("198.51.100.8", "alice", "Alice-pass-1"),
        200,
        "another address does not"
    );
    // No user was locked by the guessing (the names did not exist).
    let status = api.get(&format!(
        "/admin/realms/bf/attack-detection/brute-force/users/{alice}"
    ));
    assert_eq!(status.body["disabled"], false, "{}", status.text);
}
