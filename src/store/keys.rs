//! A realm's signing keys.

use super::records::SigningKeyRecord;
use super::tables::SIGNING_KEYS;
use super::view::{between, Txn, View, Write, MAX};
use super::{Result, StoreError};

impl<T: Txn> View<T> {
    pub fn signing_keys(&self, realm: &str) -> Result<Vec<SigningKeyRecord>> {
        self.records_in(SIGNING_KEYS, between((realm, ""), (realm, MAX)))
    }
}

impl Write {
    pub fn put_signing_key(&mut self, realm: &str, key: &SigningKeyRecord) -> Result<()> {
        if self.realm(realm)?.is_none() {
            return Err(StoreError::Missing("realm"));
        }
        self.insert_record(SIGNING_KEYS, (realm, key.kid.as_str()), key)?;
        self.bump_key_revision(realm)
    }

    pub fn delete_signing_key(&mut self, realm: &str, kid: &str) -> Result<bool> {
        let removed = self.remove(SIGNING_KEYS, (realm, kid))?;
        if removed {
            self.bump_key_revision(realm)?;
        }
        Ok(removed)
    }
}
