//! The transaction handles: [`View`] reads through either kind of redb transaction, so every
//! reader is written once; [`Read`] is a view of a snapshot and [`Write`] a view of a write
//! transaction that can also change it (and sees its own uncommitted writes). The typed
//! helpers here (one record, a key range, an index, a multimap key) are the only code that
//! decodes records; the entity files build their readers and writers from them.

use std::borrow::Borrow;
use std::ops::{Deref, RangeBounds};

use redb::{
    Key, MultimapTableDefinition, ReadOnlyMultimapTable, ReadOnlyTable, ReadTransaction,
    ReadableMultimapTable, ReadableTable, TableDefinition, TableError, Value, WriteTransaction,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::tables::META;
use super::{Result, StoreError};

/// Greater than every id, name and e-mail we store; the upper bound of prefix ranges.
pub(super) const MAX: &str = "\u{10FFFF}";

pub(super) fn encode<T: Serialize>(record: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(record).map_err(|e| StoreError::Backend(e.to_string()))
}

pub(super) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// A redb transaction that tables can be read through: [`ReadTransaction`] (its tables are
/// `ReadOnlyTable`s) and [`WriteTransaction`] (its tables are `Table`s, which borrow it).
/// The methods have redb's names, so reader code reads like plain redb code.
pub trait Txn {
    type Table<'t, K: Key + 'static, V: Value + 'static>: ReadableTable<K, V>
    where
        Self: 't;
    type Multimap<'t, K: Key + 'static, V: Key + 'static>: ReadableMultimapTable<K, V>
    where
        Self: 't;

    fn open_table<K: Key + 'static, V: Value + 'static>(
        &self,
        definition: TableDefinition<K, V>,
    ) -> Result<Self::Table<'_, K, V>, TableError>;

    fn open_multimap_table<K: Key + 'static, V: Key + 'static>(
        &self,
        definition: MultimapTableDefinition<K, V>,
    ) -> Result<Self::Multimap<'_, K, V>, TableError>;
}

impl Txn for ReadTransaction {
    type Table<'t, K: Key + 'static, V: Value + 'static> = ReadOnlyTable<K, V>;
    type Multimap<'t, K: Key + 'static, V: Key + 'static> = ReadOnlyMultimapTable<K, V>;

    fn open_table<K: Key + 'static, V: Value + 'static>(
        &self,
        definition: TableDefinition<K, V>,
    ) -> Result<ReadOnlyTable<K, V>, TableError> {
        ReadTransaction::open_table(self, definition)
    }

    fn open_multimap_table<K: Key + 'static, V: Key + 'static>(
        &self,
        definition: MultimapTableDefinition<K, V>,
    ) -> Result<ReadOnlyMultimapTable<K, V>, TableError> {
        ReadTransaction::open_multimap_table(self, definition)
    }
}

impl Txn for WriteTransaction {
    type Table<'t, K: Key + 'static, V: Value + 'static> = redb::Table<'t, K, V>;
    type Multimap<'t, K: Key + 'static, V: Key + 'static> = redb::MultimapTable<'t, K, V>;

    fn open_table<K: Key + 'static, V: Value + 'static>(
        &self,
        definition: TableDefinition<K, V>,
    ) -> Result<redb::Table<'_, K, V>, TableError> {
        WriteTransaction::open_table(self, definition)
    }

    fn open_multimap_table<K: Key + 'static, V: Key + 'static>(
        &self,
        definition: MultimapTableDefinition<K, V>,
    ) -> Result<redb::MultimapTable<'_, K, V>, TableError> {
        WriteTransaction::open_multimap_table(self, definition)
    }
}

/// The readers, over a read or a write transaction. They are defined next to their entity
/// (`realms.rs`, `users.rs`, ...) as `impl<T: Txn> View<T>`.
pub struct View<T> {
    pub(super) txn: T,
}

/// A read snapshot; see [`super::Store::read`].
pub type Read = View<ReadTransaction>;

/// A write transaction; see [`super::Store::write`]. Every reader of [`View`] is available
/// through `Deref`; the writers are defined next to their entity as `impl Write`.
pub struct Write {
    pub(super) view: View<WriteTransaction>,
}

impl Deref for Write {
    type Target = View<WriteTransaction>;

    fn deref(&self) -> &View<WriteTransaction> {
        &self.view
    }
}

impl<T: Txn> View<T> {
    /// The stored schema version.
    pub fn schema_version(&self) -> Result<u32> {
        let meta = self.txn.open_table(META)?;
        let v = meta.get("schema_version")?;
        Ok(v.and_then(|v| v.value().parse().ok()).unwrap_or(0))
    }

    /// The record stored under `key`, decoded.
    pub(super) fn record<'k, K: Key + 'static, R: DeserializeOwned>(
        &self,
        def: TableDefinition<K, &'static [u8]>,
        key: impl Borrow<K::SelfType<'k>>,
    ) -> Result<Option<R>> {
        let t = self.txn.open_table(def)?;
        let v = t.get(key)?;
        v.map(|v| decode(v.value())).transpose()
    }

    /// Every record of a key range, decoded, in key order.
    pub(super) fn records_in<'k, K: Key + 'static, KR, R: DeserializeOwned>(
        &self,
        def: TableDefinition<K, &'static [u8]>,
        range: impl RangeBounds<KR> + 'k,
    ) -> Result<Vec<R>>
    where
        KR: Borrow<K::SelfType<'k>> + 'k,
    {
        let t = self.txn.open_table(def)?;
        let mut out = Vec::new();
        for entry in t.range(range)? {
            out.push(decode(entry?.1.value())?);
        }
        Ok(out)
    }

    /// The id an index maps `key` to.
    pub(super) fn id_for<'k, K: Key + 'static>(
        &self,
        def: TableDefinition<K, &'static str>,
        key: impl Borrow<K::SelfType<'k>>,
    ) -> Result<Option<String>> {
        let t = self.txn.open_table(def)?;
        let v = t.get(key)?;
        Ok(v.map(|v| v.value().to_string()))
    }

    /// The ids of a key range of an index, in key order.
    pub(super) fn ids_in<'k, K: Key + 'static, KR>(
        &self,
        def: TableDefinition<K, &'static str>,
        range: impl RangeBounds<KR> + 'k,
    ) -> Result<Vec<String>>
    where
        KR: Borrow<K::SelfType<'k>> + 'k,
    {
        let t = self.txn.open_table(def)?;
        let mut ids = Vec::new();
        for entry in t.range(range)? {
            ids.push(entry?.1.value().to_string());
        }
        Ok(ids)
    }

    /// The values of one key of a multimap index (realm id, key) → ids, in value order.
    pub(super) fn multi_values(
        &self,
        def: MultimapTableDefinition<(&str, &str), &str>,
        realm: &str,
        key: &str,
    ) -> Result<Vec<String>> {
        let t = self.txn.open_multimap_table(def)?;
        let mut out = Vec::new();
        for v in t.get((realm, key))? {
            out.push(v?.value().to_string());
        }
        Ok(out)
    }
}

/// The records `get` finds for `ids`, in the order of `ids`; ids of vanished records are
/// skipped.
pub(super) fn existing<R>(
    ids: impl IntoIterator<Item = String>,
    mut get: impl FnMut(&str) -> Result<Option<R>>,
) -> Result<Vec<R>> {
    let mut out = Vec::new();
    for id in ids {
        if let Some(r) = get(&id)? {
            out.push(r);
        }
    }
    Ok(out)
}

impl Write {
    /// Store `record`, encoded, under `key` (replacing what was there).
    pub(super) fn insert_record<'k, K: Key + 'static, R: Serialize>(
        &self,
        def: TableDefinition<K, &'static [u8]>,
        key: impl Borrow<K::SelfType<'k>>,
        record: &R,
    ) -> Result<()> {
        self.txn
            .open_table(def)?
            .insert(key, encode(record)?.as_slice())?;
        Ok(())
    }
}
