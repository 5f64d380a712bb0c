//! E-mail against a real SMTP conversation: an SMTP sink on a loopback port receives what
//! lettre sends; the tests read the mails and follow their links. Forgot-password with the
//! password policy, the admin's execute-actions and verify-email mails, VERIFY_EMAIL at
//! login, testSMTPConnection, and a dead SMTP server.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::api::Api;
use crate::browser::{find_form, param, Browser};
use crate::harness::TestServer;

/// A minimal SMTP server that accepts every mail and keeps it (the raw DATA).
pub struct SmtpSink {
    pub addr: SocketAddr,
    mails: Arc<Mutex<Vec<String>>>,
}

impl SmtpSink {
    pub fn start() -> SmtpSink {
        SmtpSink::start_on(0)
    }

    /// A sink on `port` of 127.0.0.1 (0: any free one).
    pub fn start_on(port: u16) -> SmtpSink {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let addr = listener.local_addr().unwrap();
        let mails = Arc::new(Mutex::new(Vec::new()));
        let store = mails.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let store = store.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut w = stream;
                    let _ = w.write_all(b"220 sink.test ESMTP\r\n");
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                        let reply: &[u8] = match verb.as_str() {
                            "EHLO" => b"250-sink.test\r\n250 8BITMIME\r\n",
                            "DATA" => {
                                let _ = w.write_all(b"354 go ahead\r\n");
                                let mut data = String::new();
                                loop {
                                    let mut l = String::new();
                                    if reader.read_line(&mut l).unwrap_or(0) == 0 {
                                        return;
                                    }
                                    if l == ".\r\n" {
                                        break;
                                    }
                                    data.push_str(l.strip_prefix('.').unwrap_or(&l));
                                }
                                store.lock().unwrap().push(data);
                                b"250 queued\r\n"
                            }
                            "QUIT" => {
                                let _ = w.write_all(b"221 bye\r\n");
                                return;
                            }
                            _ => b"250 ok\r\n",
                        };
                        if w.write_all(reply).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        SmtpSink { addr, mails }
    }

    pub fn count(&self) -> usize {
        self.mails.lock().unwrap().len()
    }

    /// The `n`-th mail (0-based), waiting up to 10 s for it.
    pub fn mail(&self, n: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(m) = self.mails.lock().unwrap().get(n) {
                return m.clone();
            }
            assert!(Instant::now() < deadline, "mail {n} never arrived");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn settings(&self) -> Value {
        settings_for(self.addr.port())
    }
}

/// `smtpServer` settings naming 127.0.0.1:`port`.
pub fn settings_for(port: u16) -> Value {
    json!({"host": "127.0.0.1", "port": port.to_string(),
           "from": "noreply@example.com", "fromDisplayName": "Portcullis",
           "auth": "false", "user": "mailer", "password": "smtp-secret"})
}

/// A loopback port nothing listens on (yet).
pub fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Ask for a password reset of `username` in `realm` through the login pages of `server`.
pub fn request_reset(server: &TestServer, realm: &str, username: &str) {
    let b = Browser::new(server);
    let (status, _, html) = b.get(&b.auth_url(realm, "app", &[("state", "s1")]));
    assert_eq!(status, 200);
    let (status, _, form_page) = b.get(&forgot_password_link(&html));
    assert_eq!(status, 200, "{form_page}");
    let mut form = find_form(&form_page, "kc-reset-password-form").unwrap();
    form.set("username", username);
    let (status, _, page) = b.submit(&form);
    assert_eq!(status, 200, "{page}");
}

/// Undo quoted-printable soft line breaks and `=3D`, then find the action link.
pub fn link_in(mail: &str) -> String {
    let text = mail.replace("=\r\n", "").replace("=3D", "=");
    let start = text.find("http://").expect("a link in the mail");
    let rest = &text[start..];
    let end = rest
        .find(|c: char| c.is_whitespace() || c == '"' || c == '<')
        .unwrap_or(rest.len());
    rest[..end].to_string()
}

/// The "Forgot password?" link of a login page.
pub fn forgot_password_link(html: &str) -> String {
    let start = html
        .find("reset-credentials")
        .expect("Forgot password link");
    let href_start = html[..start].rfind('"').unwrap() + 1;
    let href_end = start + html[start..].find('"').unwrap();
    html[href_start..href_end]
        .replace("&#x2f;", "/")
        .replace("&amp;", "&")
}

fn header<'a>(mail: &'a str, name: &str) -> &'a str {
    mail.lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim())
        })
        .unwrap_or("")
}

/// Realm `mail` with reset allowed, a policy, events on and the sink as SMTP server.
fn mail_realm(server: &TestServer, sink: &SmtpSink) -> (Api, String, String) {
    mail_realm_on(server, sink.addr.port())
}

/// Realm `mail` as [`mail_realm`] makes it, mailing through 127.0.0.1:`port`.
pub fn mail_realm_on(server: &TestServer, port: u16) -> (Api, String, String) {
    let api = Api::admin(server);
    let (secret, alice) = api.setup_realm("mail");
    let r = api.put(
        "/admin/realms/mail",
        &json!({"resetPasswordAllowed": true, "eventsEnabled": true,
                "passwordPolicy": "length(12) and digits(1)", "smtpServer": settings_for(port)}),
    );
    assert_eq!(r.status, 204, "{}", r.text);
    (api, secret, alice)
}

fn password_grant(api: &Api, secret: &str, password: &str) -> u16 {
    api.token(
        "mail",
        &[
            ("grant_type", "password"),
            ("client_id", "app"),
            ("client_secret", secret),
            ("username", "alice"),
            ("password", password),
        ],
    )
    .status
}

#[test]
fn forgot_password_mails_a_single_use_link_and_the_policy_applies() {
    let server = TestServer::start();
    let sink = SmtpSink::start();
    let (api, secret, _) = mail_realm(&server, &sink);
    // The SMTP password is stored but never shown.
    let realm = api.get("/admin/realms/mail");
    assert_eq!(realm.body["smtpServer"]["password"], "**********");
    assert_eq!(realm.body["smtpServer"]["host"], "127.0.0.1");

    let b = Browser::new(&server);
    let (status, _, html) = b.get(&b.auth_url("mail", "app", &[("state", "s1")]));
    assert_eq!(status, 200);
    let reset_url = forgot_password_link(&html);
    let (status, _, form_page) = b.get(&reset_url);
    assert_eq!(status, 200, "{form_page}");

    // Unknown account and known account: the same page.
    let mut form = find_form(&form_page, "kc-reset-password-form").unwrap();
    form.set("username", "nobody-here");
    let (status, _, unknown) = b.submit(&form);
    assert_eq!(status, 200);
    let (_, _, form_page) = b.get(&reset_url);
    let mut form = find_form(&form_page, "kc-reset-password-form").unwrap();
    form.set("username", "alice");
    let (status, _, known) = b.submit(&form);
    assert_eq!(status, 200);
    assert!(
        known.contains("You should receive an email shortly"),
        "{known}"
    );
    assert_eq!(
        unknown, known,
        "the reply must not tell whether the account exists"
    );

    let mail = sink.mail(0);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(sink.count(), 1, "one mail: the unknown account gets none");
    assert!(header(&mail, "To").contains("alice@example.com"), "{mail}");
    assert_eq!(header(&mail, "Subject"), "Reset password");
    assert!(header(&mail, "From").contains("noreply@example.com"));
    assert!(
        mail.contains("multipart/alternative")
            && mail.contains("text/html")
            && mail.contains("text/plain")
    );
    let link = link_in(&mail);
    assert!(
        link.contains("/realms/mail/login-actions/action-token?key="),
        "{link}"
    );

    // The link leads to a new password; the policy says which rule failed.
    let (status, _, page) = b.get(&link);
    assert_eq!(status, 200, "{page}");
    let mut form = find_form(&page, "kc-passwd-update-form").expect("update password form");
    form.set("password-new", "short1");
    form.set("password-confirm", "short1");
    let (status, _, page) = b.submit(&form);
    assert_eq!(status, 200);
    assert!(
        page.contains("minimum length 12"),
        "the length rule is named: {page}"
    );
    let mut form = find_form(&page, "kc-passwd-update-form").unwrap();
    form.set("password-new", "Brand-new-pass-42");
    form.set("password-confirm", "Brand-new-pass-42");
    let (status, location, body) = b.submit(&form);
    assert_eq!(status, 302, "{body}");
    let location = location.unwrap();
    assert!(
        location.starts_with("http://localhost:3000/callback"),
        "{location}"
    );
    assert_eq!(
        param(&location, "state").as_deref(),
        Some("s1"),
        "the login goes on"
    );
    assert!(param(&location, "code").is_some());

    // Single use.
    let (status, _, page) = Browser::new(&server).get(&link);
    assert_eq!(status, 400);
    assert!(page.contains("no longer valid"), "{page}");
    assert_eq!(password_grant(&api, &secret, "Brand-new-pass-42"), 200);
    assert_eq!(password_grant(&api, &secret, "Alice-pass-1"), 401);
    let events = api.get("/admin/realms/mail/events?type=SEND_RESET_PASSWORD");
    assert_eq!(events.body.as_array().unwrap().len(), 1, "{}", events.text);
}

#[test]
fn a_mail_the_smtp_server_did_not_take_is_sent_once_it_is_up() {
    let server = TestServer::start();
    let port = closed_port();
    let (api, _, _) = mail_realm_on(&server, port);
    request_reset(&server, "mail", "alice");
    // The first attempts find nobody listening; the queue tries again with back-off.
    std::thread::sleep(Duration::from_millis(1_500));
    let sink = SmtpSink::start_on(port);
    let mail = sink.mail(0);
    assert!(header(&mail, "To").contains("alice@example.com"), "{mail}");
    assert!(link_in(&mail).contains("/login-actions/action-token?key="));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(sink.count(), 1, "sent once, then off the queue");
    let errors = api.get("/admin/realms/mail/events?type=SEND_RESET_PASSWORD_ERROR");
    assert_eq!(errors.body, json!([]), "{}", errors.text);
}

#[test]
fn admin_mails_actions_and_verification_and_tests_the_smtp_server() {
    let server = TestServer::start();
    let sink = SmtpSink::start();
    let (api, secret, alice) = mail_realm(&server, &sink);

    // execute-actions-email: UPDATE_PASSWORD by mail, no login afterwards.
    let r = api.put(
        &format!("/admin/realms/mail/users/{alice}/execute-actions-email?lifespan=600"),
        &json!(["UPDATE_PASSWORD"]),
    );
    assert_eq!(r.status, 204, "{}", r.text);
    let mail = sink.mail(0);
    assert_eq!(header(&mail, "Subject"), "Update Your Account");
    assert!(mail.contains("UPDATE_PASSWORD"));
    let b = Browser::new(&server);
    let (status, _, page) = b.get(&link_in(&mail));
    assert_eq!(status, 200, "{page}");
    let mut form = find_form(&page, "kc-passwd-update-form").unwrap();
    form.set("password-new", "Admin-asked-42x");
    form.set("password-confirm", "Admin-asked-42x");
    let (status, _, page) = b.submit(&form);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Your account has been updated"), "{page}");
    assert_eq!(password_grant(&api, &secret, "Admin-asked-42x"), 200);

    // send-verify-email: the link verifies the address.
    let user = api.get(&format!("/admin/realms/mail/users/{alice}"));
    assert_eq!(user.body["emailVerified"], false);
    let r = api.put(
        &format!("/admin/realms/mail/users/{alice}/send-verify-email"),
        &json!({}),
    );
    assert_eq!(r.status, 204, "{}", r.text);
    let mail = sink.mail(1);
    assert_eq!(header(&mail, "Subject"), "Verify email");
    let (status, _, page) = Browser::new(&server).get(&link_in(&mail));
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("verified"), "{page}");
    let user = api.get(&format!("/admin/realms/mail/users/{alice}"));
    assert_eq!(user.body["emailVerified"], true);

    // Bad requests are 400 with a message.
    for actions in [json!(["DANCE"]), json!(["UPDATE_PROFILE"]), json!([])] {
        let r = api.put(
            &format!("/admin/realms/mail/users/{alice}/execute-actions-email"),
            &actions,
        );
        assert_eq!(r.status, 400, "{actions}: the login could not carry it out");
    }
    let r = api.put(
        &format!("/admin/realms/mail/users/{alice}/execute-actions-email?lifespan=9999999999999"),
        &json!(["UPDATE_PASSWORD"]),
    );
    assert_eq!(r.status, 400, "{}", r.text);
    let r = api.put(
        &format!("/admin/realms/mail/users/{alice}/execute-actions-email?redirect_uri=http://evil.example/"),
        &json!(["UPDATE_PASSWORD"]),
    );
    assert_eq!(r.status, 400, "{}", r.text);
    let r = api.put(
        &format!("/admin/realms/mail/users/{alice}/execute-actions-email?client_id=app&redirect_uri=http://evil.example/"),
        &json!(["UPDATE_PASSWORD"]),
    );
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.body["errorMessage"], "Invalid redirect uri.");
    let r = api.post(
        "/admin/realms/mail/users",
        &json!({"username": "nomail", "enabled": true}),
    );
    let nomail = r.location_id();
    let r = api.put(
        &format!("/admin/realms/mail/users/{nomail}/send-verify-email"),
        &json!({}),
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.body["errorMessage"], "User email missing");

    // testSMTPConnection mails the calling administrator.
    let r = api.post("/admin/realms/mail/testSMTPConnection", &sink.settings());
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(
        r.body["errorMessage"],
        "Logged in user does not have an e-mail."
    );
    let admins = api.get("/admin/realms/master/users?username=admin&exact=true");
    let admin_id = admins.body[0]["id"].as_str().unwrap().to_string();
    let r = api.put(
        &format!("/admin/realms/master/users/{admin_id}"),
        &json!({"email": "admin@example.com"}),
    );
    assert_eq!(r.status, 204, "{}", r.text);
    let mut masked = sink.settings();
    masked["password"] = json!("**********");
    let r = api.post("/admin/realms/mail/testSMTPConnection", &masked);
    assert_eq!(r.status, 204, "{}", r.text);
    let mail = sink.mail(2);
    assert!(header(&mail, "To").contains("admin@example.com"));

    // A dead SMTP server: 502 with what went wrong, not a 500.
    let dead = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut settings = sink.settings();
    settings["port"] = json!(dead.port().to_string());
    let r = api.put("/admin/realms/mail", &json!({"smtpServer": settings}));
    assert_eq!(r.status, 204);
    let r = api.put(
        &format!("/admin/realms/mail/users/{alice}/execute-actions-email"),
        &json!(["UPDATE_PASSWORD"]),
    );
    assert_eq!(r.status, 502, "{}", r.text);
    assert!(r.body["errorMessage"]
        .as_str()
        .unwrap()
        .starts_with("Failed to send"));
    // Invalid settings are refused when saved.
    let r = api.put(
        "/admin/realms/mail",
        &json!({"smtpServer": {"host": "127.0.0.1", "from": "not an address"}}),
    );
    assert_eq!(r.status, 400, "{}", r.text);
}

#[test]
fn verify_email_at_login_continues_the_login_from_the_mailed_link() {
    let server = TestServer::start();
    let sink = SmtpSink::start();
    let (api, _, alice) = mail_realm(&server, &sink);
    let r = api.put("/admin/realms/mail", &json!({"verifyEmail": true}));
    assert_eq!(r.status, 204);
    let b = Browser::new(&server);
    let (_, _, html) = b.get(&b.auth_url("mail", "app", &[("state", "v1")]));
    let (status, _, page) = b.login(&html, "alice", "Alice-pass-1");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("verify your email"), "{page}");
    let mail = sink.mail(0);
    let (status, location, body) = b.get(&link_in(&mail));
    assert_eq!(status, 302, "{body}");
    let location = location.unwrap();
    assert_eq!(
        param(&location, "state").as_deref(),
        Some("v1"),
        "{location}"
    );
    let user = api.get(&format!("/admin/realms/mail/users/{alice}"));
    assert_eq!(user.body["emailVerified"], true);
    // Next time no mail is needed.
    let b = Browser::new(&server);
    let (_, _, html) = b.get(&b.auth_url("mail", "app", &[]));
    let (status, _, _) = b.login(&html, "alice", "Alice-pass-1");
    assert_eq!(status, 302);

    // Opened in another browser, the link verifies the address but signs nobody in.
    let r = api.post(
        "/admin/realms/mail/users",
        &json!({"username": "bob", "enabled": true, "email": "bob@example.com",
                "credentials": [{"type": "password", "value": "Bob-pass-123", "temporary": false}]}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let bob = r.location_id();
    let b = Browser::new(&server);
    let (_, _, html) = b.get(&b.auth_url("mail", "app", &[]));
    let (status, _, _) = b.login(&html, "bob", "Bob-pass-123");
    assert_eq!(status, 200);
    let mail = sink.mail(1);
    assert!(header(&mail, "To").contains("bob@example.com"));
    let (status, location, page) = Browser::new(&server).get(&link_in(&mail));
    assert_eq!((status, location), (200, None), "{page}");
    assert!(page.contains("verified"), "{page}");
    let user = api.get(&format!("/admin/realms/mail/users/{bob}"));
    assert_eq!(user.body["emailVerified"], true);
}

#[test]
fn a_reset_link_asks_users_with_an_authenticator_for_a_code_first() {
    use crate::browser::{totp_at, totp_now, totp_secret_from_page, DEFAULT_OTP};
    let server = TestServer::start();
    let sink = SmtpSink::start();
    let (api, _, alice) = mail_realm(&server, &sink);
    let r = api.put(
        &format!("/admin/realms/mail/users/{alice}"),
        &json!({"requiredActions": ["CONFIGURE_TOTP"]}),
    );
    assert_eq!(r.status, 204);
    let b = Browser::new(&server);
    let (_, _, html) = b.get(&b.auth_url("mail", "app", &[]));
    let (_, _, setup) = b.login(&html, "alice", "Alice-pass-1");
    let totp_secret = totp_secret_from_page(&setup);
    let mut form = find_form(&setup, "kc-totp-settings-form").unwrap();
    form.set("totp", &totp_now(&totp_secret));
    assert_eq!(b.submit(&form).0, 302);

    // Forgot password, from a fresh browser.
    let b = Browser::new(&server);
    let (_, _, html) = b.get(&b.auth_url("mail", "app", &[]));
    let reset_url = forgot_password_link(&html);
    let (_, _, page) = b.get(&reset_url);
    let mut form = find_form(&page, "kc-reset-password-form").unwrap();
    form.set("username", "alice");
    b.submit(&form);
    let (status, _, page) = b.get(&link_in(&sink.mail(0)));
    assert_eq!(status, 200);
    assert!(
        find_form(&page, "kc-passwd-update-form").is_none(),
        "the mailbox alone must not reset the password of a user with an authenticator"
    );
    let mut form = find_form(&page, "kc-otp-login-form").expect("the one-time code first");
    form.set("otp", "000000");
    let (_, _, page) = b.submit(&form);
    assert!(
        find_form(&page, "kc-passwd-update-form").is_none(),
        "wrong code accepted"
    );
    let mut form = find_form(&page, "kc-otp-login-form").unwrap();
    form.set("otp", &totp_at(&DEFAULT_OTP, &totp_secret, 30));
    let (status, _, page) = b.submit(&form);
    assert_eq!(status, 200, "{page}");
    assert!(
        find_form(&page, "kc-passwd-update-form").is_some(),
        "{page}"
    );
}
