//! Mails not sent yet. They are kept in the store, so a retry outlives the node that
//! queued the mail, and any node may make it: a node claims the mails that are due in a
//! write transaction (writes are serialised across nodes), which pushes their due time
//! past the attempt's timeout, so no two nodes send one mail at once and a mail whose
//! sender died mid-attempt is due again afterwards.

use serde::{Deserialize, Serialize};

use super::tables::MAIL_QUEUE;
use super::view::{between, decode, Txn, View, Write, MAX};
use super::Result;

/// A mail waiting for its next attempt.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct QueuedMailRecord {
    pub id: String,
    pub realm_id: String,
    pub user_id: String,
    /// What the realm records as `{event}_ERROR` when every attempt failed.
    pub event: String,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// Attempts made or under way.
    pub attempts: u32,
    /// When the next attempt is due (ms since the epoch).
    pub due_ms: i64,
}

// The body holds a link that acts for the user: never printed.
impl std::fmt::Debug for QueuedMailRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueuedMailRecord")
            .field("id", &self.id)
            .field("realm_id", &self.realm_id)
            .field("event", &self.event)
            .field("attempts", &self.attempts)
            .field("due_ms", &self.due_ms)
            .finish_non_exhaustive()
    }
}

impl<T: Txn> View<T> {
    /// Every queued mail, in id order.
    pub fn queued_mails(&self) -> Result<Vec<QueuedMailRecord>> {
        self.records_in(MAIL_QUEUE, between("", MAX))
    }

    /// Whether some queued mail is due at `now_ms` (a read, so idle nodes write nothing).
    pub fn mail_due(&self, now_ms: i64) -> Result<bool> {
        let mut due = false;
        self.scan(MAIL_QUEUE, between("", MAX), false, |_, v| {
            due = decode::<QueuedMailRecord>(&v).map_or(true, |m| m.due_ms <= now_ms);
            Ok(!due)
        })?;
        Ok(due)
    }
}

impl Write {
    pub fn queue_mail(&mut self, mail: &QueuedMailRecord) -> Result<()> {
        self.insert_record(MAIL_QUEUE, mail.id.as_str(), mail)
    }

    /// Take up to `limit` mails due at `now_ms` for an attempt: each counts one more
    /// attempt and is not due again before `busy_until_ms`. Records that cannot be decoded
    /// are dropped (nothing could send them).
    pub fn claim_due_mails(
        &mut self,
        now_ms: i64,
        busy_until_ms: i64,
        limit: usize,
    ) -> Result<Vec<QueuedMailRecord>> {
        let mut due = Vec::new();
        let mut broken = Vec::new();
        self.scan(MAIL_QUEUE, between("", MAX), false, |id, v| {
            match decode::<QueuedMailRecord>(&v) {
                Ok(m) if m.due_ms <= now_ms => due.push(m),
                Ok(_) => {}
                Err(_) => broken.push(id),
            }
            Ok(due.len() < limit)
        })?;
        for id in &broken {
            tracing::warn!(id = %id, "dropped a queued mail that cannot be decoded");
            self.remove(MAIL_QUEUE, id.as_str())?;
        }
        for mail in &mut due {
            mail.attempts += 1;
            mail.due_ms = busy_until_ms;
            self.queue_mail(mail)?;
        }
        Ok(due)
    }

    /// Make a queued mail due at `due_ms` (after a failed attempt); `false` if it is gone.
    pub fn reschedule_mail(&mut self, id: &str, due_ms: i64) -> Result<bool> {
        let Some(mut mail) = self.record::<_, QueuedMailRecord>(MAIL_QUEUE, id)? else {
            return Ok(false);
        };
        mail.due_ms = due_ms;
        self.queue_mail(&mail)?;
        Ok(true)
    }

    /// Take a mail off the queue (sent, or given up on); `false` if it was gone.
    pub fn remove_queued_mail(&mut self, id: &str) -> Result<bool> {
        self.remove(MAIL_QUEUE, id)
    }
}
