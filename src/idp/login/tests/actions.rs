//! After the password: the UPDATE_PASSWORD required action (temporary passwords), the
//! one-time code of users with an authenticator, and brute-force lockout moving with the
//! clock.

use super::{code_of, exchange, filled, login_fixture, login_form};
use crate::idp::otp::{self, OtpPolicy};
use crate::idp::testing::{page_error, Fixture, Jar};
use crate::store::UserRecord;

/// `bob` with a temporary password `temp-pw`.
fn with_temporary_password(f: &Fixture) {
    f.add_user_record(
        "shop",
        UserRecord {
            id: "bob-id".into(),
            username: "bob".into(),
            enabled: true,
            ..Default::default()
        },
        Some("temp-pw"),
        true,
    );
}

#[tokio::test]
async fn a_temporary_password_must_be_replaced_before_the_code_is_sent() {
    let f = login_fixture();
    with_temporary_password(&f);
    f.update_realm("shop", |r| r.password_policy = Some("length(10)".into()));
    let mut jar = Jar::default();
    let form = login_form(&f, &mut jar).await;
    let page = f.submit(&filled(&form, "bob", "temp-pw"), &mut jar).await;
    assert_eq!(page.status, 200);
    let update = page.form("kc-passwd-update-form");
    assert!(update
        .action
        .contains("/login-actions/required-action?flow="));
    assert_ne!(
        update.get("csrf_token"),
        form.get("csrf_token"),
        "a new CSRF token for the next step"
    );
    let attempt = |new: &str, confirm: &str| {
        update
            .clone()
            .with("password-new", new)
            .with("password-confirm", confirm)
    };
    for (new, confirm, message) in [
        ("", "", "Please specify a password."),
        ("new-password-1", "new-password-2", "Passwords don't match."),
        ("short", "short", "Invalid password: minimum length 10."),
    ] {
        let again = f.submit(&attempt(new, confirm), &mut jar).await;
        assert_eq!(again.status, 200);
        assert_eq!(page_error(&again.text()).as_deref(), Some(message), "{new}");
        again.form("kc-passwd-update-form");
    }
    // The login form's CSRF token no longer counts, and the login form cannot skip
    // the step.
    let stale = form.get("csrf_token").unwrap();
    let replayed = attempt("new-password-1", "new-password-1").with("csrf_token", stale);
    assert_eq!(f.submit(&replayed, &mut jar).await.status, 400);
    let relogin = f.submit(&filled(&form, "bob", "temp-pw"), &mut jar).await;
    assert_eq!(relogin.status, 400, "the login form's token is spent");
    let done = f
        .submit(&attempt("new-password-1", "new-password-1"), &mut jar)
        .await;
    assert_eq!(exchange(&f, &code_of(&done)).await.0, 200);
    assert!(f.user("shop", "bob").required_actions.is_empty());
    f.password_grant("shop", "admin-cli", "bob", "new-password-1")
        .await;
}

#[tokio::test]
async fn a_required_action_on_the_user_is_done_at_login_too() {
    let f = login_fixture();
    f.app
        .store
        .write(|w| {
            let realm = w.realm_by_name("shop")?.unwrap();
            let mut u = w.user_by_username(&realm.id, "alice")?.unwrap();
            u.required_actions = vec!["UPDATE_PASSWORD".into()];
            w.put_user(&realm.id, &u, false)
        })
        .unwrap();
    let mut jar = Jar::default();
    let form = login_form(&f, &mut jar).await;
    let page = f
        .submit(&filled(&form, "alice", "alice-pw"), &mut jar)
        .await;
    let update = page
        .form("kc-passwd-update-form")
        .with("password-new", "alice-new-pw")
        .with("password-confirm", "alice-new-pw");
    code_of(&f.submit(&update, &mut jar).await);
    assert!(f.user("shop", "alice").required_actions.is_empty());
}

/// Give `alice` an authenticator; returns its secret and the realm's OTP policy.
fn with_authenticator(f: &Fixture) -> (String, OtpPolicy) {
    let realm = f.realm("shop");
    let policy = OtpPolicy::of(&realm);
    let secret = otp::new_secret();
    let user = f.user("shop", "alice");
    let credential = otp::credential(&secret, Some("phone".into()), &policy, f.now());
    f.app
        .store
        .write(|w| w.put_credential(&realm.id, &user.id, &credential))
        .unwrap();
    (secret, policy)
}

fn code_at(f: &Fixture, policy: &OtpPolicy, secret: &str, offset_secs: i64) -> String {
    let t = (f.now() / 1000 + offset_secs) as u64;
    otp::code(policy, secret, t).unwrap()
}

#[tokio::test]
async fn an_authenticator_s_code_is_the_second_step() {
    let f = login_fixture();
    let (secret, policy) = with_authenticator(&f);
    let mut jar = Jar::default();
    let form = login_form(&f, &mut jar).await;
    let page = f
        .submit(&filled(&form, "alice", "alice-pw"), &mut jar)
        .await;
    assert_eq!(page.status, 200);
    assert!(
        page.location().is_none(),
        "no code before the second factor"
    );
    let otp_form = page.form("kc-otp-login-form");
    assert!(otp_form.action.contains("/login-actions/otp?flow="));
    // A wrong code, and one from two periods ago (the window is one period each way).
    let right = code_at(&f, &policy, &secret, 0);
    let wrong = format!("{:06}", (right.parse::<u32>().unwrap() + 1) % 1_000_000);
    for code in [wrong, code_at(&f, &policy, &secret, -90), String::new()] {
        let again = f
            .submit(&otp_form.clone().with("otp", &code), &mut jar)
            .await;
        assert_eq!(again.status, 200, "{code}");
        assert_eq!(
            page_error(&again.text()).as_deref(),
            Some("Invalid authenticator code.")
        );
    }
    let done = f
        .submit(&otp_form.clone().with("otp", &right), &mut jar)
        .await;
    assert_eq!(exchange(&f, &code_of(&done)).await.0, 200);

    // The same code does not log in twice; the next period's does.
    let mut other = Jar::default();
    let form = login_form(&f, &mut other).await;
    let page = f
        .submit(&filled(&form, "alice", "alice-pw"), &mut other)
        .await;
    let otp_form = page.form("kc-otp-login-form");
    let replay = f
        .submit(&otp_form.clone().with("otp", &right), &mut other)
        .await;
    assert_eq!(replay.status, 200);
    assert!(replay.location().is_none(), "a code is accepted once");
    f.clock.advance_millis(30_000);
    let next = code_at(&f, &policy, &secret, 0);
    code_of(&f.submit(&otp_form.with("otp", &next), &mut other).await);
}

#[tokio::test]
async fn the_code_step_cannot_be_reached_without_the_password() {
    let f = login_fixture();
    let (secret, policy) = with_authenticator(&f);
    let mut jar = Jar::default();
    let form = login_form(&f, &mut jar).await;
    let mut otp = form.clone().with("otp", &code_at(&f, &policy, &secret, 0));
    otp.action = otp.action.replace("/authenticate?", "/otp?");
    let reply = f.submit(&otp, &mut jar).await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        page_error(&reply.text()).as_deref(),
        Some("Your login attempt timed out. Please sign in again.")
    );
}

#[tokio::test]
async fn brute_force_lockout_moves_with_the_clock() {
    let f = login_fixture();
    f.update_realm("shop", |r| {
        r.brute_force_protected = true;
        r.failure_factor = 3;
        r.wait_increment_seconds = 60;
        r.quick_login_check_milli_seconds = 0;
    });
    let mut jar = Jar::default();
    let form = login_form(&f, &mut jar).await;
    for _ in 0..3 {
        f.clock.advance_millis(2_000);
        let page = f.submit(&filled(&form, "alice", "wrong"), &mut jar).await;
        assert_eq!(page.status, 200);
    }
    // Locked: the right password gets exactly the wrong password's page.
    let locked = f
        .submit(&filled(&form, "alice", "alice-pw"), &mut jar)
        .await;
    assert_eq!(locked.status, 200);
    assert_eq!(
        page_error(&locked.text()).as_deref(),
        Some("Invalid username or password.")
    );
    f.clock.advance_millis(59_000);
    let still = f
        .submit(&filled(&form, "alice", "alice-pw"), &mut jar)
        .await;
    assert!(still.location().is_none(), "still locked after 59 s");
    f.clock.advance_millis(2_000);
    code_of(
        &f.submit(&filled(&form, "alice", "alice-pw"), &mut jar)
            .await,
    );
}
