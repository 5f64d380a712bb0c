//! The transaction handles: [`View`] reads through a read or a write transaction of either
//! backend, so every reader is written once; [`Read`] is a view of a snapshot and [`Write`]
//! a view of a write transaction that can also change it (and sees its own uncommitted
//! writes). The typed helpers here (one record, a key range, an index, a multimap key) are
//! the only code that encodes keys and decodes records; the entity files build their
//! readers and writers from them.

use std::ops::{Bound, Deref};

use serde::de::DeserializeOwned;
use serde::Serialize;

pub use super::kv::Txn;
use super::kv::{self, Bytes, Key, Multimap, Part, Table, TxnMut, Value, S};
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

/// A key range `lo..=hi` (the shape almost every reader asks for).
pub(super) fn between<T>(lo: T, hi: T) -> (Bound<T>, Bound<T>) {
    (Bound::Included(lo), Bound::Included(hi))
}

/// The readers, over a read or a write transaction. They are defined next to their entity
/// (`realms.rs`, `users.rs`, ...) as `impl<T: Txn> View<T>`.
pub struct View<T> {
    pub(super) txn: T,
}

/// A read snapshot; see [`super::Store::read`].
pub type Read = View<super::backend::ReadTxn>;

/// A write transaction; see [`super::Store::write`]. Every reader of [`View`] is available
/// through `Deref`; the writers are defined next to their entity as `impl Write`.
pub struct Write {
    pub(super) view: View<super::backend::WriteTxn>,
}

impl Deref for Write {
    type Target = View<super::backend::WriteTxn>;

    fn deref(&self) -> &View<super::backend::WriteTxn> {
        &self.view
    }
}

impl<T: Txn> View<T> {
    /// The stored schema version.
    pub fn schema_version(&self) -> Result<u32> {
        let v = self.get(META, "schema_version")?;
        Ok(v.and_then(|v| v.parse().ok()).unwrap_or(0))
    }

    /// The value stored under `key`.
    pub(super) fn get<K: Key, V: Value>(
        &self,
        table: Table<K, V>,
        key: K::Ref<'_>,
    ) -> Result<Option<V::Owned>> {
        self.txn
            .get(table.name, &K::encode(key))?
            .map(|v| V::decode(&v))
            .transpose()
    }

    /// The values stored under `keys`, in their order (one round trip where the backend
    /// has them).
    pub(super) fn get_many<'k, K: Key, V: Value>(
        &self,
        table: Table<K, V>,
        keys: impl IntoIterator<Item = K::Ref<'k>>,
    ) -> Result<Vec<Option<V::Owned>>> {
        let encoded: Vec<Vec<u8>> = keys.into_iter().map(K::encode).collect();
        self.txn
            .get_many(table.name, &encoded)?
            .into_iter()
            .map(|v| v.map(|v| V::decode(&v)).transpose())
            .collect()
    }

    /// The records stored under `keys` that exist, decoded, in the keys' order (one round
    /// trip where the backend has them).
    pub(super) fn records_many<'k, K: Key, R: DeserializeOwned>(
        &self,
        table: Table<K, Bytes>,
        keys: impl IntoIterator<Item = K::Ref<'k>>,
    ) -> Result<Vec<R>> {
        self.get_many(table, keys)?
            .into_iter()
            .flatten()
            .map(|v| decode(&v))
            .collect()
    }

    /// Visit the entries of a key range in key order (`reverse`: from the end) until
    /// `visit` returns false.
    pub(super) fn scan<K: Key, V: Value>(
        &self,
        table: Table<K, V>,
        (lo, hi): (Bound<K::Ref<'_>>, Bound<K::Ref<'_>>),
        reverse: bool,
        mut visit: impl FnMut(K::Owned, V::Owned) -> Result<bool>,
    ) -> Result<()> {
        let range = kv::key_range::<K>(lo, hi);
        self.txn.scan(table.name, &range, reverse, &mut |k, v| {
            visit(K::decode(k)?, V::decode(v)?)
        })
    }

    /// The entries of a key range, in key order, skipping `skip` and at most `take`.
    pub(super) fn entries<K: Key, V: Value>(
        &self,
        table: Table<K, V>,
        range: (Bound<K::Ref<'_>>, Bound<K::Ref<'_>>),
        skip: usize,
        take: usize,
    ) -> Result<Vec<(K::Owned, V::Owned)>> {
        let mut out = Vec::new();
        let mut seen = 0usize;
        if take == 0 {
            return Ok(out);
        }
        self.scan(table, range, false, |k, v| {
            seen += 1;
            if seen > skip {
                out.push((k, v));
            }
            Ok(out.len() < take)
        })?;
        Ok(out)
    }

    /// The values of a key range, in key order.
    pub(super) fn values_in<K: Key, V: Value>(
        &self,
        table: Table<K, V>,
        range: (Bound<K::Ref<'_>>, Bound<K::Ref<'_>>),
    ) -> Result<Vec<V::Owned>> {
        let mut out = Vec::new();
        self.scan(table, range, false, |_, v| {
            out.push(v);
            Ok(true)
        })?;
        Ok(out)
    }

    /// How many entries a table holds.
    pub(super) fn count<K, V>(&self, table: Table<K, V>) -> Result<u64> {
        self.txn.count(table.name)
    }

    /// The record stored under `key`, decoded.
    pub(super) fn record<K: Key, R: DeserializeOwned>(
        &self,
        table: Table<K, Bytes>,
        key: K::Ref<'_>,
    ) -> Result<Option<R>> {
        self.txn
            .get(table.name, &K::encode(key))?
            .map(|v| decode(&v))
            .transpose()
    }

    /// Every record of a key range, decoded, in key order.
    pub(super) fn records_in<K: Key, R: DeserializeOwned>(
        &self,
        table: Table<K, Bytes>,
        range: (Bound<K::Ref<'_>>, Bound<K::Ref<'_>>),
    ) -> Result<Vec<R>> {
        let mut out = Vec::new();
        let range = kv::key_range::<K>(range.0, range.1);
        self.txn.scan(table.name, &range, false, &mut |_, v| {
            out.push(decode(v)?);
            Ok(true)
        })?;
        Ok(out)
    }

    /// Visit the values of the multimap keys in a key range, in key then value order, until
    /// `visit` returns false.
    pub(super) fn multi_scan<K: Key, V: Part>(
        &self,
        table: Multimap<K, V>,
        (lo, hi): (Bound<K::Ref<'_>>, Bound<K::Ref<'_>>),
        mut visit: impl FnMut(K::Owned, V::Owned) -> Result<bool>,
    ) -> Result<()> {
        let range = kv::multimap_range::<K>(lo, hi);
        self.txn
            .scan(table.name, &range, false, &mut |mut entry, _| {
                let key = K::take(&mut entry)?;
                let value = V::take(&mut entry)?;
                if !entry.is_empty() {
                    return Err(StoreError::Corrupt(
                        "a multimap entry has trailing bytes".into(),
                    ));
                }
                visit(key, value)
            })
    }

    /// The values of one multimap key, in value order.
    pub(super) fn multi_get<K: Key, V: Part>(
        &self,
        table: Multimap<K, V>,
        key: K::Ref<'_>,
    ) -> Result<Vec<V::Owned>> {
        let mut out = Vec::new();
        self.multi_scan(table, between(key, key), |_, v| {
            out.push(v);
            Ok(true)
        })?;
        Ok(out)
    }

    /// The values of one key of a multimap index (realm id, key) → ids, in value order.
    pub(super) fn multi_values(
        &self,
        table: Multimap<(S, S), S>,
        realm: &str,
        key: &str,
    ) -> Result<Vec<String>> {
        self.multi_get(table, (realm, key))
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

/// A multimap entry: the key followed by the value.
fn entry<K: Key, V: Part>(key: K::Ref<'_>, value: V::Ref<'_>) -> Vec<u8> {
    let mut bytes = K::encode(key);
    V::put(value, &mut bytes);
    bytes
}

impl Write {
    /// Store `value` under `key` (replacing what was there).
    pub(super) fn insert<K: Key, V: Value>(
        &mut self,
        table: Table<K, V>,
        key: K::Ref<'_>,
        value: V::Ref<'_>,
    ) -> Result<()> {
        self.view
            .txn
            .put(table.name, &K::encode(key), &V::encode(value))
    }

    /// Store `record`, encoded, under `key` (replacing what was there).
    pub(super) fn insert_record<K: Key, R: Serialize>(
        &mut self,
        table: Table<K, Bytes>,
        key: K::Ref<'_>,
        record: &R,
    ) -> Result<()> {
        self.view
            .txn
            .put(table.name, &K::encode(key), &encode(record)?)
    }

    /// Remove `key`; whether it was there.
    pub(super) fn remove<K: Key, V>(
        &mut self,
        table: Table<K, V>,
        key: K::Ref<'_>,
    ) -> Result<bool> {
        self.view.txn.delete(table.name, &K::encode(key))
    }

    /// Remove every entry of a key range; how many went.
    pub(super) fn remove_range<K: Key, V>(
        &mut self,
        table: Table<K, V>,
        (lo, hi): (Bound<K::Ref<'_>>, Bound<K::Ref<'_>>),
    ) -> Result<u64> {
        let range = kv::key_range::<K>(lo, hi);
        self.view.txn.delete_range(table.name, &range)
    }

    /// Remove the entries of a key range for which `drop` says so; how many went.
    pub(super) fn remove_where<K: Key, V: Value>(
        &mut self,
        table: Table<K, V>,
        range: (Bound<K::Ref<'_>>, Bound<K::Ref<'_>>),
        mut drop: impl FnMut(&K::Owned, &V::Owned) -> bool,
    ) -> Result<usize> {
        let encoded = kv::key_range::<K>(range.0, range.1);
        let mut gone = Vec::new();
        self.view
            .txn
            .scan(table.name, &encoded, false, &mut |k, v| {
                if drop(&K::decode(k)?, &V::decode(v)?) {
                    gone.push(k.to_vec());
                }
                Ok(true)
            })?;
        for key in &gone {
            self.view.txn.delete(table.name, key)?;
        }
        Ok(gone.len())
    }

    /// Add `value` to the set of `key` (idempotent).
    pub(super) fn multi_insert<K: Key, V: Part>(
        &mut self,
        table: Multimap<K, V>,
        key: K::Ref<'_>,
        value: V::Ref<'_>,
    ) -> Result<()> {
        self.view
            .txn
            .put(table.name, &entry::<K, V>(key, value), &[])
    }

    /// Take `value` out of the set of `key`; whether it was in it.
    pub(super) fn multi_remove<K: Key, V: Part>(
        &mut self,
        table: Multimap<K, V>,
        key: K::Ref<'_>,
        value: V::Ref<'_>,
    ) -> Result<bool> {
        self.view.txn.delete(table.name, &entry::<K, V>(key, value))
    }

    /// Empty the sets of every key in a key range.
    pub(super) fn multi_remove_range<K: Key, V: Part>(
        &mut self,
        table: Multimap<K, V>,
        (lo, hi): (Bound<K::Ref<'_>>, Bound<K::Ref<'_>>),
    ) -> Result<u64> {
        let range = kv::multimap_range::<K>(lo, hi);
        self.view.txn.delete_range(table.name, &range)
    }

    /// Empty the set of `key`.
    pub(super) fn multi_remove_all<K: Key, V: Part>(
        &mut self,
        table: Multimap<K, V>,
        key: K::Ref<'_>,
    ) -> Result<u64> {
        self.multi_remove_range(table, between(key, key))
    }
}
