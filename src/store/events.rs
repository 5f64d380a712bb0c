//! Login and admin events, newest last, with their expiry.

use redb::ReadableTable;

use super::records::EventRecord;
use super::tables::EVENTS;
use super::view::{decode, Txn, View, Write, MAX};
use super::Result;

impl<T: Txn> View<T> {
    /// Events of a realm from `since` (ms, inclusive), newest first, at most `max`.
    pub fn events(&self, realm: &str, since: i64, max: usize) -> Result<Vec<EventRecord>> {
        let t = self.txn.open_table(EVENTS)?;
        let mut out = Vec::new();
        for entry in t
            .range((realm, since, "")..=(realm, i64::MAX, MAX))?
            .rev()
            .take(max)
        {
            out.push(decode(entry?.1.value())?);
        }
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
        let mut n = 0;
        self.txn.open_table(EVENTS)?.retain_in(
            (realm, i64::MIN, "")..=(realm, i64::MAX, MAX),
            |_, v| {
                let is_admin = serde_json::from_slice::<EventRecord>(v)
                    .map(|e| e.kind == "ADMIN")
                    .unwrap_or(false);
                let drop = is_admin == admin;
                n += usize::from(drop);
                !drop
            },
        )?;
        Ok(n)
    }

    /// Drop a realm's events older than `before` (ms); returns how many went.
    pub fn expire_events(&mut self, realm: &str, before: i64) -> Result<usize> {
        let mut n = 0;
        self.txn.open_table(EVENTS)?.retain_in(
            (realm, i64::MIN, "")..(realm, before, ""),
            |_, _| {
                n += 1;
                false
            },
        )?;
        Ok(n)
    }
}
