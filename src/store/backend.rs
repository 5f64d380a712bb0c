//! The two backends behind the byte-level [`Txn`]: redb (the embedded default: one redb
//! table per logical table, named `kv:<table>`) and PostgreSQL (`postgres.rs`). The
//! transaction types are enums rather than trait objects, so a reader costs one branch.

use std::ops::Bound;

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition, TableHandle};

use super::kv::{Range, Txn, TxnMut, Visit};
use super::postgres::PgTxn;
use super::Result;

/// The redb table holding logical table `name`.
pub(super) fn redb_table(name: &str) -> TableDefinition<'_, &'static [u8], &'static [u8]> {
    // Names are static and few; building the definition is free.
    TableDefinition::new(redb_names::of(name))
}

mod redb_names {
    /// `kv:<name>` for each table, built once.
    pub(super) fn of(name: &str) -> &'static str {
        use std::collections::HashMap;
        use std::sync::OnceLock;
        static NAMES: OnceLock<HashMap<&'static str, String>> = OnceLock::new();
        let names = NAMES.get_or_init(|| {
            super::super::tables::ALL
                .iter()
                .map(|t| (*t, format!("kv:{t}")))
                .collect()
        });
        // Every table is declared in tables.rs; a name that were not would open (and fail
        // on) a redb table of that name.
        names
            .get(name)
            .map(String::as_str)
            .unwrap_or("kv:undeclared")
    }
}

fn bounds(range: &Range) -> (Bound<&[u8]>, Bound<&[u8]>) {
    (
        range.0.as_ref().map(Vec::as_slice),
        range.1.as_ref().map(Vec::as_slice),
    )
}

/// A read snapshot of either backend.
pub enum ReadTxn {
    Redb(redb::ReadTransaction),
    Postgres(PgTxn),
}

/// A write transaction of either backend.
pub enum WriteTxn {
    Redb(Box<redb::WriteTransaction>),
    Postgres(PgTxn),
}

/// The read side of redb's two transaction kinds, in bytes.
trait RedbRead {
    fn get(&self, table: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// The table opened once for all of `keys`.
    fn get_many(&self, table: &'static str, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>>;
    fn scan(
        &self,
        table: &'static str,
        range: &Range,
        reverse: bool,
        visit: &mut Visit<'_>,
    ) -> Result<()>;
    fn count(&self, table: &'static str) -> Result<u64>;
}

fn scan_table(
    t: &impl ReadableTable<&'static [u8], &'static [u8]>,
    range: &Range,
    reverse: bool,
    visit: &mut Visit<'_>,
) -> Result<()> {
    let iter = t.range::<&[u8]>(bounds(range))?;
    if reverse {
        for entry in iter.rev() {
            let (k, v) = entry?;
            if !visit(k.value(), v.value())? {
                break;
            }
        }
    } else {
        for entry in iter {
            let (k, v) = entry?;
            if !visit(k.value(), v.value())? {
                break;
            }
        }
    }
    Ok(())
}

/// The same readers over both kinds of redb transaction (their tables are different
/// types).
macro_rules! redb_read {
    ($($txn:ty),*) => {$(
        impl RedbRead for $txn {
            fn get(&self, table: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>> {
                let t = self.open_table(redb_table(table))?;
                let v = t.get(key)?;
                Ok(v.map(|v| v.value().to_vec()))
            }
            fn get_many(
                &self,
                table: &'static str,
                keys: &[Vec<u8>],
            ) -> Result<Vec<Option<Vec<u8>>>> {
                let t = self.open_table(redb_table(table))?;
                keys.iter()
                    .map(|k| Ok(t.get(k.as_slice())?.map(|v| v.value().to_vec())))
                    .collect()
            }
            fn scan(
                &self,
                table: &'static str,
                range: &Range,
                reverse: bool,
                visit: &mut Visit<'_>,
            ) -> Result<()> {
                scan_table(&self.open_table(redb_table(table))?, range, reverse, visit)
            }
            fn count(&self, table: &'static str) -> Result<u64> {
                Ok(self.open_table(redb_table(table))?.len()?)
            }
        }
    )*};
}
redb_read!(redb::ReadTransaction, redb::WriteTransaction);

impl Txn for ReadTxn {
    fn get(&self, table: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self {
            ReadTxn::Redb(t) => RedbRead::get(t, table, key),
            ReadTxn::Postgres(t) => t.get(table, key),
        }
    }
    fn get_many(&self, table: &'static str, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        match self {
            ReadTxn::Redb(t) => RedbRead::get_many(t, table, keys),
            ReadTxn::Postgres(t) => t.get_many(table, keys),
        }
    }
    fn scan(
        &self,
        table: &'static str,
        range: &Range,
        reverse: bool,
        visit: &mut Visit<'_>,
    ) -> Result<()> {
        match self {
            ReadTxn::Redb(t) => RedbRead::scan(t, table, range, reverse, visit),
            ReadTxn::Postgres(t) => t.scan(table, range, reverse, visit),
        }
    }
    fn count(&self, table: &'static str) -> Result<u64> {
        match self {
            ReadTxn::Redb(t) => RedbRead::count(t, table),
            ReadTxn::Postgres(t) => t.count(table),
        }
    }
}

impl Txn for WriteTxn {
    fn get(&self, table: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self {
            WriteTxn::Redb(t) => RedbRead::get(&**t, table, key),
            WriteTxn::Postgres(t) => t.get(table, key),
        }
    }
    fn get_many(&self, table: &'static str, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        match self {
            WriteTxn::Redb(t) => RedbRead::get_many(&**t, table, keys),
            WriteTxn::Postgres(t) => t.get_many(table, keys),
        }
    }
    fn scan(
        &self,
        table: &'static str,
        range: &Range,
        reverse: bool,
        visit: &mut Visit<'_>,
    ) -> Result<()> {
        match self {
            WriteTxn::Redb(t) => RedbRead::scan(&**t, table, range, reverse, visit),
            WriteTxn::Postgres(t) => t.scan(table, range, reverse, visit),
        }
    }
    fn count(&self, table: &'static str) -> Result<u64> {
        match self {
            WriteTxn::Redb(t) => RedbRead::count(&**t, table),
            WriteTxn::Postgres(t) => t.count(table),
        }
    }
}

impl TxnMut for WriteTxn {
    fn put(&mut self, table: &'static str, key: &[u8], value: &[u8]) -> Result<()> {
        match self {
            WriteTxn::Redb(t) => {
                t.open_table(redb_table(table))?.insert(key, value)?;
                Ok(())
            }
            WriteTxn::Postgres(t) => t.put(table, key, value),
        }
    }
    fn delete(&mut self, table: &'static str, key: &[u8]) -> Result<bool> {
        match self {
            WriteTxn::Redb(t) => Ok(t.open_table(redb_table(table))?.remove(key)?.is_some()),
            WriteTxn::Postgres(t) => t.delete(table, key),
        }
    }
    fn delete_range(&mut self, table: &'static str, range: &Range) -> Result<u64> {
        match self {
            WriteTxn::Redb(t) => {
                let mut n = 0;
                t.open_table(redb_table(table))?
                    .retain_in::<&[u8], _>(bounds(range), |_, _| {
                        n += 1;
                        false
                    })?;
                Ok(n)
            }
            WriteTxn::Postgres(t) => t.delete_range(table, range),
        }
    }
}

/// Create every table of a redb database (a no-op for those that exist).
pub(super) fn create_redb_tables(txn: &redb::WriteTransaction) -> Result<()> {
    for name in super::tables::ALL {
        txn.open_table(redb_table(name))?;
    }
    Ok(())
}

/// Whether a redb database has the tables of schema 1 (typed tables under bare names).
pub(super) fn has_legacy_tables(db: &redb::Database) -> Result<bool> {
    let txn = db.begin_read()?;
    let names: Vec<String> = txn.list_tables()?.map(|t| t.name().to_string()).collect();
    Ok(names.iter().any(|n| n == "meta"))
}
