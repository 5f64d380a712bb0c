//! E-mail: a realm's `smtpServer` settings, mails rendered from the realm's e-mail theme
//! (HTML and text parts), and sending with lettre. Mails to users are queued in the store
//! and tried at once in the background, so no request waits for an SMTP server; a mail
//! that could not be sent is retried with back-off by whichever node claims it first (the
//! queue outlives the node that queued the mail); when every attempt fails, the realm
//! gets an `..._ERROR` event. Admin calls
//! (`execute-actions-email`, `testSMTPConnection`) send directly, with a time limit, so
//! the administrator sees the outcome.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use minijinja::Value as Ctx;

use crate::idp::App;
use crate::store::{QueuedMailRecord, RealmRecord, UserRecord};

/// Attempts per queued mail, and the wait before each retry.
const RETRY_DELAYS: [Duration; 3] = [
    Duration::from_secs(1),
    Duration::from_secs(5),
    Duration::from_secs(25),
];
/// One SMTP conversation may take this long.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// SMTP connections open at once, for the whole process.
static SENDING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(4);

/// Keycloak's `smtpServer` map, checked.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub from: String,
    pub from_display_name: Option<String>,
    pub reply_to: Option<String>,
    pub auth: bool,
    pub user: String,
    pub password: String,
    /// Implicit TLS (SMTPS, usually port 465).
    pub ssl: bool,
    /// STARTTLS, required when set.
    pub starttls: bool,
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("from", &self.from)
            .field("auth", &self.auth)
            .field("ssl", &self.ssl)
            .field("starttls", &self.starttls)
            .finish_non_exhaustive()
    }
}

fn flag(map: &BTreeMap<String, String>, key: &str) -> bool {
    map.get(key).is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

impl SmtpSettings {
    /// `None` when the realm has no SMTP server; `Err` names what is wrong.
    pub fn from_map(map: &BTreeMap<String, String>) -> Result<Option<SmtpSettings>, String> {
        let host = map.get("host").map(|h| h.trim()).unwrap_or("");
        if host.is_empty() {
            return Ok(None);
        }
        let ssl = flag(map, "ssl");
        let port = match map.get("port").map(|p| p.trim()).filter(|p| !p.is_empty()) {
            None => {
                if ssl {
                    465
                } else {
                    25
                }
            }
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("smtpServer.port: \"{p}\" is not a port"))?,
        };
        let from = map.get("from").map(|f| f.trim()).unwrap_or("");
        if from.parse::<lettre::Address>().is_err() {
            return Err(format!(
                "smtpServer.from: \"{from}\" is not an e-mail address"
            ));
        }
        let reply_to = map
            .get("replyTo")
            .map(|r| r.trim().to_string())
            .filter(|r| !r.is_empty());
        if let Some(r) = &reply_to {
            if r.parse::<lettre::Address>().is_err() {
                return Err(format!(
                    "smtpServer.replyTo: \"{r}\" is not an e-mail address"
                ));
            }
        }
        let auth = flag(map, "auth");
        let user = map.get("user").cloned().unwrap_or_default();
        if auth && user.is_empty() {
            return Err("smtpServer.user: required when auth is true".into());
        }
        Ok(Some(SmtpSettings {
            host: host.to_string(),
            port,
            from: from.to_string(),
            from_display_name: map
                .get("fromDisplayName")
                .map(|n| n.trim().to_string())
                .filter(|n| !n.is_empty()),
            reply_to,
            auth,
            user,
            password: map.get("password").cloned().unwrap_or_default(),
            ssl,
            starttls: flag(map, "starttls"),
        }))
    }

    fn transport(&self) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
        let tls = || TlsParameters::new(self.host.clone()).map_err(|e| format!("TLS: {e}"));
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&self.host)
            .port(self.port)
            .timeout(Some(SEND_TIMEOUT));
        if self.ssl {
            builder = builder.tls(Tls::Wrapper(tls()?));
        } else if self.starttls {
            builder = builder.tls(Tls::Required(tls()?));
        }
        if self.auth {
            builder =
                builder.credentials(Credentials::new(self.user.clone(), self.password.clone()));
        }
        Ok(builder.build())
    }
}

/// A rendered mail.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Render `email/html/{name}.html` and `email/text/{name}.txt` of the realm's e-mail theme,
/// with the subject from the message `{subject_key}`.
pub fn render(
    app: &App,
    realm: &RealmRecord,
    user: &UserRecord,
    name: &str,
    subject_key: &str,
    vars: BTreeMap<&'static str, Ctx>,
) -> Result<Mail, String> {
    let to = user
        .email
        .clone()
        .filter(|e| !e.is_empty())
        .ok_or("the user has no e-mail address")?;
    let theme = realm.email_theme.as_deref();
    // The user's `locale` attribute when the theme speaks it (Keycloak's account locale).
    let locale = user
        .attributes
        .get("locale")
        .and_then(|v| v.first())
        .filter(|l| app.themes.has_locale(theme, l))
        .cloned()
        .unwrap_or_else(|| crate::idp::login::theme::DEFAULT_LOCALE.into());
    let messages = crate::idp::localization::messages(app, realm, theme, &locale);
    let realm_name = realm
        .display_name
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| realm.name.clone());
    let mut context: BTreeMap<&str, Ctx> = vars;
    context.insert("realm_name", Ctx::from(realm_name.clone()));
    context.insert("username", Ctx::from(user.username.clone()));
    context.insert(
        "first_name",
        Ctx::from(user.first_name.clone().unwrap_or_default()),
    );
    context.insert("msg", Ctx::from_serialize(&messages));
    context.insert("locale", Ctx::from(locale));
    let context = Ctx::from_serialize(&context);
    let html = app
        .themes
        .render(theme, &format!("email/html/{name}.html"), context.clone())
        .map_err(|e| e.to_string())?;
    let text = app
        .themes
        .render(theme, &format!("email/text/{name}.txt"), context)
        .map_err(|e| e.to_string())?;
    let subject = messages
        .get(subject_key)
        .cloned()
        .unwrap_or_else(|| subject_key.to_string())
        .replace("{0}", &realm_name);
    Ok(Mail {
        to,
        subject,
        text,
        html,
    })
}

fn message(settings: &SmtpSettings, mail: &Mail) -> Result<Message, String> {
    let from = Mailbox::new(
        settings.from_display_name.clone(),
        settings
            .from
            .parse()
            .map_err(|_| "invalid from address".to_string())?,
    );
    let to: Mailbox = mail
        .to
        .parse()
        .map_err(|_| format!("\"{}\" is not an e-mail address", mail.to))?;
    let mut builder = Message::builder().from(from).to(to).subject(&mail.subject);
    if let Some(r) = &settings.reply_to {
        builder = builder.reply_to(r.parse().map_err(|_| "invalid replyTo".to_string())?);
    }
    builder
        .multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(mail.text.clone()),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(mail.html.clone()),
                ),
        )
        .map_err(|e| e.to_string())
}

/// Send now (at most [`SEND_TIMEOUT`] per conversation).
pub async fn send(settings: &SmtpSettings, mail: &Mail) -> Result<(), String> {
    let message = message(settings, mail)?;
    let transport = settings.transport()?;
    // Waiting for a turn is bounded too, so an attempt never outlives its hold on a
    // queued mail (`ATTEMPT_MS`), after which another node may try it.
    let _permit = match tokio::time::timeout(SEND_TIMEOUT, SENDING.acquire()).await {
        Ok(permit) => permit.map_err(|e| e.to_string())?,
        Err(_) => return Err("too many mails are being sent; try again".into()),
    };
    match tokio::time::timeout(SEND_TIMEOUT * 2, transport.send(message)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".into()),
    }
}

/// How long an attempt may hold a mail: past this, a mail whose sender stopped is due
/// again (an attempt takes at most `3 × SEND_TIMEOUT`: a turn, then the conversation).
const ATTEMPT_MS: i64 = 3 * SEND_TIMEOUT.as_millis() as i64 + 1_000;

/// Queue a mail: stored, then tried at once on this node; retried with back-off by any
/// node ([`send_due`]); when every attempt fails the realm records `{event}_ERROR` for
/// the user.
pub fn enqueue(
    app: &App,
    realm: &RealmRecord,
    settings: SmtpSettings,
    mail: Mail,
    event: &'static str,
    user_id: String,
) {
    let queued = QueuedMailRecord {
        id: uuid::Uuid::new_v4().to_string(),
        realm_id: realm.id.clone(),
        user_id,
        event: event.to_string(),
        to: mail.to,
        subject: mail.subject,
        text: mail.text,
        html: mail.html,
        attempts: 1,
        due_ms: app.clock.now_millis() + ATTEMPT_MS,
    };
    let app = app.clone();
    let realm = Arc::new(realm.clone());
    tokio::spawn(async move {
        let store = app.store.clone();
        let record = queued.clone();
        let stored =
            tokio::task::spawn_blocking(move || store.write(|w| w.queue_mail(&record))).await;
        if !matches!(stored, Ok(Ok(()))) {
            // Not kept: this one attempt is all it gets.
            tracing::warn!(realm = %realm.name, "could not queue an e-mail; trying it once");
        }
        attempt(&app, &realm, &settings, queued).await;
    });
}

/// Claim the queued mails that are due and try each (every node, every second; a node
/// with nothing due only reads).
pub async fn send_due(app: &App) {
    // No more than can be sent at once: the rest stay due for another round or node.
    let room = SENDING.available_permits();
    if room == 0 {
        return;
    }
    let store = app.store.clone();
    let now = app.clock.now_millis();
    let claimed = tokio::task::spawn_blocking(move || {
        if !store.read()?.mail_due(now)? {
            return Ok(Vec::new());
        }
        let claimed = store.write(|w| w.claim_due_mails(now, now + ATTEMPT_MS, room))?;
        let read = store.read()?;
        claimed
            .into_iter()
            .map(|m| Ok((read.realm(&m.realm_id)?, m)))
            .collect::<Result<Vec<_>, crate::store::StoreError>>()
    })
    .await;
    let claimed = match claimed {
        Ok(Ok(claimed)) => claimed,
        Ok(Err(e)) => {
            // The store is away (it says so elsewhere): the mails wait.
            tracing::debug!(error = %e, "could not read the mail queue");
            return;
        }
        Err(_) => return,
    };
    for (realm, mail) in claimed {
        let app = app.clone();
        tokio::spawn(async move {
            let Some(realm) = realm else {
                // The realm went, and its mail with it.
                let _ = forget(&app, &mail.id).await;
                return;
            };
            match SmtpSettings::from_map(&realm.smtp_server) {
                Ok(Some(settings)) => attempt(&app, &realm, &settings, mail).await,
                _ => {
                    give_up(
                        &app,
                        &realm,
                        &mail,
                        "the realm has no SMTP server configured",
                    )
                    .await
                }
            }
        });
    }
}

/// One attempt at a mail this node holds; then off the queue, or due again later.
async fn attempt(app: &App, realm: &RealmRecord, settings: &SmtpSettings, mail: QueuedMailRecord) {
    let sent = send(settings, &unqueued(&mail)).await;
    let error = match sent {
        Ok(()) => {
            if let Err(e) = forget(app, &mail.id).await {
                // Sent, but still queued: it may be sent again once it is due.
                tracing::warn!(error = %e, "a sent e-mail stays queued");
            }
            return;
        }
        Err(e) => e,
    };
    tracing::debug!(attempt = mail.attempts, error = %error, host = %settings.host, "e-mail not sent yet");
    let Some(delay) = RETRY_DELAYS.get((mail.attempts as usize).saturating_sub(1)) else {
        return give_up(app, realm, &mail, &error).await;
    };
    let store = app.store.clone();
    let due = app.clock.now_millis() + delay.as_millis() as i64;
    let id = mail.id.clone();
    let rescheduled =
        tokio::task::spawn_blocking(move || store.write(|w| w.reschedule_mail(&id, due))).await;
    if !matches!(rescheduled, Ok(Ok(_))) {
        tracing::warn!("could not reschedule an e-mail; it is tried again after {ATTEMPT_MS} ms");
    }
}

/// Take a mail off the queue.
async fn forget(app: &App, id: &str) -> Result<(), String> {
    let store = app.store.clone();
    let id = id.to_string();
    match tokio::task::spawn_blocking(move || store.write(|w| w.remove_queued_mail(&id))).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// Every attempt failed: off the queue, and a `{event}_ERROR` event for the user.
async fn give_up(app: &App, realm: &RealmRecord, mail: &QueuedMailRecord, error: &str) {
    tracing::warn!(realm = %realm.name, error = %error, attempts = mail.attempts, "could not send an e-mail; giving up");
    if let Err(e) = forget(app, &mail.id).await {
        tracing::warn!(error = %e, "could not take an e-mail off the queue");
    }
    let kind = format!("{}_ERROR", mail.event);
    let mut details = BTreeMap::new();
    details.insert("email".to_string(), mail.to.clone());
    crate::idp::events::record(
        app,
        realm,
        crate::idp::events::Event {
            kind: &kind,
            user_id: Some(&mail.user_id),
            error: Some("email_send_failed"),
            details,
            ..Default::default()
        },
    );
}

fn unqueued(mail: &QueuedMailRecord) -> Mail {
    Mail {
        to: mail.to.clone(),
        subject: mail.subject.clone(),
        text: mail.text.clone(),
        html: mail.html.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn settings_are_checked() {
        assert_eq!(SmtpSettings::from_map(&map(&[])).unwrap(), None);
        let s = SmtpSettings::from_map(&map(&[
            ("host", "smtp.example.com"),
            ("from", "noreply@example.com"),
            ("ssl", "true"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(s.port, 465);
        assert!(s.ssl && !s.starttls && !s.auth);
        let bad = |pairs: &[(&str, &str)]| SmtpSettings::from_map(&map(pairs)).unwrap_err();
        assert!(bad(&[("host", "h"), ("from", "nope")]).starts_with("smtpServer.from"));
        assert!(
            bad(&[("host", "h"), ("from", "a@b.c"), ("port", "x")]).starts_with("smtpServer.port")
        );
        assert!(bad(&[("host", "h"), ("from", "a@b.c"), ("auth", "true")])
            .starts_with("smtpServer.user"));
        let debug = format!(
            "{:?}",
            SmtpSettings::from_map(&map(&[
                ("host", "h"),
                ("from", "a@b.c"),
                ("auth", "true"),
                ("user", "u"),
                ("password", "hunter2")
            ]))
            .unwrap()
            .unwrap()
        );
        assert!(!debug.contains("hunter2"), "{debug}");
    }
}
