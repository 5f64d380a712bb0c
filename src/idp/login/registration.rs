//! Self-registration (`login-actions/registration`) when the realm allows it: the user
//! profile's fields and a password, checked against the profile and the password policy,
//! then a new user (default roles, groups and required actions) who carries on with the
//! login as if just signed in — required actions, e-mail verification, then the client.

use http::StatusCode;
use minijinja::Value as Ctx;

use crate::crypto::password::hash_password;
use crate::http::IntoResponse;
use crate::http::Response;
use crate::idp::user_profile::{self, attributes, Context, Violation};
use crate::store::{LoginFlowRecord, StoreError, UserRecord};

use super::actions::{continue_flow, flow_event, Step};
use super::PageCx;

/// The registration page, with the values and errors of a refused submission.
pub(super) fn page(
    cx: &PageCx<'_>,
    flow: &LoginFlowRecord,
    values: &UserRecord,
    violations: &[Violation],
    error: Option<&str>,
) -> Response {
    let realm = cx.realm;
    let config = match super::profile_form::config(cx) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let fields: Vec<Ctx> = attributes(&config)
        .iter()
        .filter(|a| a.can_edit(Context::User))
        .filter(|a| !(a.name == "username" && realm.registration_email_as_username))
        .map(|a| super::profile_form::field(cx, a, values, violations, false))
        .collect();
    let message = error
        .map(|k| cx.msg(k))
        .or_else(|| (!violations.is_empty()).then(|| cx.msg("updateProfileErrorMessage")));
    let mut vars = cx.form_vars("login-actions/registration", flow, message);
    vars.insert("fields", Ctx::from(fields));
    vars.insert(
        "login_url",
        Ctx::from(format!(
            "/realms/{}/login-actions/authenticate?flow={}",
            crate::http::path::encode_segment(&realm.name),
            flow.id
        )),
    );
    let status = if violations.is_empty() && error.is_none() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    cx.render(status, "login/register.html", vars)
}

/// `POST login-actions/registration`
pub(super) async fn register(step: Step<'_, '_>, flow: &mut LoginFlowRecord) -> Response {
    let Step {
        app,
        page,
        info,
        realm,
        fields,
    } = step;
    if !realm.registration_allowed {
        return page.error(StatusCode::FORBIDDEN, "registrationNotAllowed");
    }
    let config = match super::profile_form::config(page) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let now = app.clock.now_millis();
    let mut user = UserRecord {
        id: crate::crypto::random_id(),
        enabled: true,
        created_timestamp: now,
        ..Default::default()
    };
    super::profile_form::fill(&config, fields, &mut user);
    let username = if realm.registration_email_as_username {
        user.email.clone().unwrap_or_default()
    } else {
        fields
            .get("username")
            .map(|u| u.trim().to_lowercase())
            .unwrap_or_default()
    };
    user.username = username;
    let mut violations = Vec::new();
    if user.username.is_empty() {
        let attribute = if realm.registration_email_as_username {
            "email"
        } else {
            "username"
        };
        violations.push(Violation {
            attribute: attribute.into(),
            message: "error-user-attribute-required".into(),
        });
    }
    violations.extend(
        user_profile::validate(&config, &user, Context::User, None)
            .into_iter()
            .filter(|v| !(v.attribute == "username" && user.username.is_empty())),
    );
    if !violations.is_empty() {
        return self::page(page, flow, &user, &violations, None);
    }
    let password = fields.get("password").cloned().unwrap_or_default();
    if password.is_empty() {
        return self::page(page, flow, &user, &[], Some("missingPasswordMessage"));
    }
    if fields.get("password-confirm") != Some(&password) {
        return self::page(page, flow, &user, &[], Some("notMatchPasswordMessage"));
    }
    // The password policy and the hash, off the async workers.
    let policy = match crate::idp::password_policy::Policy::parse(realm.password_policy.as_deref())
    {
        Ok(p) => p,
        Err(_) => return page.error(StatusCode::INTERNAL_SERVER_ERROR, "unexpectedErrorMessage"),
    };
    let subject = user.clone();
    let checked = app
        .hashes
        .run(move || {
            policy
                .check(&password, &subject, &[])
                .map(|_| hash_password(&password, &policy.argon2_params()))
        })
        .await;
    let hashed = match checked {
        Ok(Ok(Ok(h))) => h,
        Ok(Err(violation)) => return self::page(page, flow, &user, &[], Some(&violation.message)),
        Err(crate::idp::hashing::Busy) => return page.busy(),
        Ok(Ok(Err(_))) => {
            return page.error(StatusCode::INTERNAL_SERVER_ERROR, "unexpectedErrorMessage")
        }
    };
    user.required_actions = crate::idp::required_actions::defaults(realm);
    // A name a directory of the realm has is taken, as a local one is.
    match crate::idp::federation::claim_directory_name(app, realm, &user.username, false).await {
        Ok(false) => {}
        Ok(true) => return self::page(page, flow, &user, &[], Some("usernameExistsMessage")),
        Err(e) => return crate::http::ApiError::from(e).into_response(),
    }
    // Taken here: refused before a directory gets the user (the write below checks again).
    let taken = app.store.read().and_then(|r| {
        if r.user_by_username(&realm.id, &user.username)?.is_some() {
            return Ok(Some("usernameExistsMessage"));
        }
        let email_taken = match &user.email {
            Some(e) if !realm.duplicate_emails_allowed => {
                !r.users_by_email(&realm.id, e)?.is_empty()
            }
            _ => false,
        };
        Ok(email_taken.then_some("emailExistsMessage"))
    });
    match taken {
        Ok(Some(key)) => return self::page(page, flow, &user, &[], Some(key)),
        Ok(None) => {}
        Err(e) => return crate::http::ApiError::from(e).into_response(),
    }
    // A WRITABLE directory that takes registrations gets the user (and its password) first;
    // the local copy is linked to its entry and keeps no password.
    use crate::idp::federation::writes::{register, Refusal};
    let directory = match register(app, realm, &mut user).await {
        Ok(d) => d,
        Err(Refusal::Exists) => {
            return self::page(page, flow, &user, &[], Some("usernameExistsMessage"))
        }
        Err(e) => {
            tracing::warn!(realm = %realm.name, error = ?e, "the directory refused a registration");
            return self::page(page, flow, &user, &[], Some("ldapErrorMessage"));
        }
    };
    let entry_dn = user
        .attributes
        .get(crate::idp::ldap::LDAP_ENTRY_DN)
        .and_then(|v| v.first())
        .cloned();
    if let (Some(provider), Some(dn)) = (&directory, &entry_dn) {
        let plain = fields.get("password").cloned().unwrap_or_default();
        if let Err(e) = provider.set_password(dn, &plain).await {
            tracing::warn!(realm = %realm.name, provider = %provider.name, error = %e, "the directory refused a registered user's password");
            let _ = provider.delete(dn).await;
            return self::page(page, flow, &user, &[], Some("ldapErrorMessage"));
        }
    }
    // The user and its password in one transaction: never one without the other.
    let created = app.store.write(|w| {
        if w.user_by_username(&realm.id, &user.username)?.is_some() {
            return Ok(Err("usernameExistsMessage"));
        }
        if let Some(email) = &user.email {
            if !realm.duplicate_emails_allowed && !w.users_by_email(&realm.id, email)?.is_empty() {
                return Ok(Err("emailExistsMessage"));
            }
        }
        crate::idp::realm::create_user(w, realm, &user)?;
        for group in &realm.default_group_ids {
            if w.group(&realm.id, group)?.is_some() {
                w.add_member(&realm.id, group, &user.id)?;
            }
        }
        if directory.is_none() {
            let credential = crate::idp::password_policy::password_credential(&hashed, now);
            w.put_credential(&realm.id, &user.id, &credential)?;
        }
        Ok::<_, StoreError>(Ok(()))
    });
    if !matches!(created, Ok(Ok(()))) {
        // Nothing half-made: the directory's new entry goes with the failed write.
        if let (Some(provider), Some(dn)) = (&directory, &entry_dn) {
            let _ = provider.delete(dn).await;
        }
    }
    match created {
        Ok(Ok(())) => {}
        Ok(Err(key)) => return self::page(page, flow, &user, &[], Some(key)),
        Err(StoreError::Conflict(_)) => {
            return self::page(page, flow, &user, &[], Some("usernameExistsMessage"))
        }
        Err(e) => return crate::http::ApiError::from(e).into_response(),
    }
    flow_event(app, realm, flow, "REGISTER", &user.id);
    flow.user_id = Some(user.id.clone());
    continue_flow(app, page, info, realm, flow, &user)
}
