//! Login and admin events, newest last, with their expiry.

use std::ops::Bound;

use super::records::EventRecord;
use super::tables::EVENTS;
use super::view::{between, decode, Txn, View, Write, MAX};
use super::Result;

impl<T: Txn> View<T> {
    /// Events of a realm from `since` (ms, inclusive), newest first, at most `max`.
    pub fn events(&self, realm: &str, since: i64, max: usize) -> Result<Vec<EventRecord>> {
        let mut out = Vec::new();
        if max == 0 {
            return Ok(out);
        }
        let range = between((realm, since, ""), (realm, i64::MAX, MAX));
        self.scan(EVENTS, range, true, |_, v| {
            out.push(decode(&v)?);
            Ok(out.len() < max)
        })?;
        Ok(out)
    }
}

impl Write {
    pub fn append_event(&mut self, realm: &str, event: &EventRecord) -> Result<()> {
        self.insert_record(EVENTS, (realm, event.time, event.id.as_str()), event)?;
        Ok(())
    }

    /// Drop all login events (or, with `admin`, all admin events) of a realm.
    pub fn clear_events(&mut self, realm: &str, admin: bool) -> Result<usize> {
        let range = between((realm, i64::MIN, ""), (realm, i64::MAX, MAX));
        self.remove_where(EVENTS, range, |_, v| {
            let is_admin = serde_json::from_slice::<EventRecord>(v)
                .map(|e| e.kind == "ADMIN")
                .unwrap_or(false);
            is_admin == admin
        })
    }

    /// Drop a realm's events older than `before` (ms); returns how many went.
    pub fn expire_events(&mut self, realm: &str, before: i64) -> Result<usize> {
        let range = (
            Bound::Included((realm, i64::MIN, "")),
            Bound::Excluded((realm, before, "")),
        );
        Ok(self.remove_range(EVENTS, range)? as usize)
    }
}
