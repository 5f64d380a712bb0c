//! Backups: every table of one read snapshot, in a file of our own that either backend
//! can be restored from, and copying a whole store into another (`migrate-store`).
//!
//! The file: the line `PORTCULLIS-BACKUP 1`, a JSON line of facts (schema, backend,
//! time), then entries `table index (u16) | key length (u32) | key | value length (u32) |
//! value` (big-endian), the end marker `FFFF`, and the SHA-256 of everything before it.
//! It is written to `FILE.partial` and renamed when complete, mode 0600 (password hashes
//! and keys are inside); a restore checks the whole file before it writes anything.

use std::io::{BufReader, BufWriter, Read, Write as _};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::kv::{Range, Txn, TxnMut};
use super::tables::{ALL, REALMS};
use super::{Result, Store, StoreError, SCHEMA_VERSION};

const MAGIC: &[u8] = b"PORTCULLIS-BACKUP 1\n";
const END: u16 = 0xFFFF;
/// Entries written per transaction when copying into a store.
const BATCH: usize = 2_000;

/// What a backup or a copy moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Copied {
    pub entries: u64,
    pub bytes: u64,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |e| StoreError::Backend(format!("{}: {e}", path.display()))
}

fn all() -> Range {
    (std::ops::Bound::Unbounded, std::ops::Bound::Unbounded)
}

/// Everything written is also hashed.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
    bytes: u64,
}

impl<W: std::io::Write> Hashing<W> {
    fn put(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.hash.update(data);
        self.bytes += data.len() as u64;
        self.inner.write_all(data)
    }
}

impl Store {
    /// Write a consistent snapshot of the whole store to `path` (while serving: it is one
    /// read transaction, which writers do not wait for).
    pub fn backup(&self, path: &Path) -> Result<Copied> {
        use std::os::unix::fs::OpenOptionsExt;
        let partial = path.with_extension("partial");
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&partial)
            .map_err(io(&partial))?;
        let mut out = Hashing {
            inner: BufWriter::new(file),
            hash: Sha256::new(),
            bytes: 0,
        };
        let read = self.read()?;
        let facts = serde_json::json!({
            "schema": read.schema_version()?,
            "backend": self.backend_name(),
            "created": std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
            "tables": ALL,
        });
        let fail = io(&partial);
        out.put(MAGIC).map_err(&fail)?;
        out.put(format!("{facts}\n").as_bytes()).map_err(&fail)?;
        let mut entries = 0u64;
        for (index, table) in ALL.iter().enumerate() {
            read.txn.scan(table, &all(), false, &mut |k, v| {
                let mut head = Vec::with_capacity(10);
                head.extend_from_slice(&(index as u16).to_be_bytes());
                head.extend_from_slice(&(k.len() as u32).to_be_bytes());
                out.put(&head).map_err(&fail)?;
                out.put(k).map_err(&fail)?;
                out.put(&(v.len() as u32).to_be_bytes()).map_err(&fail)?;
                out.put(v).map_err(&fail)?;
                entries += 1;
                Ok(true)
            })?;
        }
        drop(read);
        out.put(&END.to_be_bytes()).map_err(&fail)?;
        let digest = out.hash.clone().finalize();
        out.inner.write_all(&digest).map_err(&fail)?;
        let bytes = out.bytes + digest.len() as u64;
        let file = out
            .inner
            .into_inner()
            .map_err(|e| StoreError::Backend(format!("{}: {e}", partial.display())))?;
        file.sync_all().map_err(&fail)?;
        std::fs::rename(&partial, path).map_err(io(path))?;
        Ok(Copied { entries, bytes })
    }

    /// Whether the store holds no realm (a new store: what a restore or a migration may
    /// write into).
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.read()?.count(REALMS)? == 0)
    }

    /// Load a backup into this store, which must be empty. The file is checked whole (its
    /// checksum, every entry's table) before anything is written; then it is written in
    /// one transaction, so a failure leaves the store empty.
    pub fn restore(&self, path: &Path) -> Result<Copied> {
        if !self.is_empty()? {
            return Err(StoreError::Backend(
                "the store is not empty: restore into a new data directory or database".into(),
            ));
        }
        let entries = read_backup(path, &mut |_, _, _| Ok(()))?;
        let bytes = std::fs::metadata(path).map_err(io(path))?.len();
        self.write(|w| {
            // The new store's own schema stamp is replaced by the backup's.
            read_backup(path, &mut |table, k, v| w.view.txn.put(table, k, v))
        })?;
        Ok(Copied { entries, bytes })
    }

    /// Copy every entry of this store into `target`, which must be empty (`migrate-store`),
    /// in transactions of a few thousand entries from one snapshot of this store.
    pub fn copy_into(&self, target: &Store) -> Result<Copied> {
        if !target.is_empty()? {
            return Err(StoreError::Backend(
                "the target store is not empty: migrate into a new database".into(),
            ));
        }
        let read = self.read()?;
        let schema = read.schema_version()?;
        if schema != SCHEMA_VERSION {
            return Err(StoreError::Backend(format!(
                "the source store has schema {schema}; open it with this version first"
            )));
        }
        let mut copied = Copied {
            entries: 0,
            bytes: 0,
        };
        let mut batch: Vec<(&'static str, Vec<u8>, Vec<u8>)> = Vec::with_capacity(BATCH);
        let flush = |batch: &mut Vec<(&'static str, Vec<u8>, Vec<u8>)>| -> Result<()> {
            target.write(|w| {
                for (table, k, v) in batch.iter() {
                    w.view.txn.put(table, k, v)?;
                }
                Ok::<_, StoreError>(())
            })?;
            batch.clear();
            Ok(())
        };
        for &table in ALL {
            read.txn.scan(table, &all(), false, &mut |k, v| {
                copied.entries += 1;
                copied.bytes += (k.len() + v.len()) as u64;
                batch.push((table, k.to_vec(), v.to_vec()));
                if batch.len() >= BATCH {
                    flush(&mut batch)?;
                }
                Ok(true)
            })?;
        }
        flush(&mut batch)?;
        Ok(copied)
    }
}

/// What a backup's reader does with each entry: (table, key, value).
type Entry<'f> = dyn FnMut(&'static str, &[u8], &[u8]) -> Result<()> + 'f;

/// Read a backup, giving each entry to `each`; fails (before the end marker's checksum
/// matches, for a first pass) on a damaged, cut or foreign file.
fn read_backup(path: &Path, each: &mut Entry<'_>) -> Result<u64> {
    let bad = |what: &str| StoreError::Corrupt(format!("{}: {what}", path.display()));
    let file = std::fs::File::open(path).map_err(io(path))?;
    let mut input = BufReader::new(file);
    let mut hash = Sha256::new();
    let mut take = |n: usize, hash: &mut Sha256| -> Result<Vec<u8>> {
        let mut buf = vec![0u8; n];
        input
            .read_exact(&mut buf)
            .map_err(|_| bad("the file is cut short"))?;
        hash.update(&buf);
        Ok(buf)
    };
    if take(MAGIC.len(), &mut hash)? != MAGIC {
        return Err(bad("not a Portcullis backup"));
    }
    let mut line = Vec::new();
    loop {
        let b = take(1, &mut hash)?;
        if b[0] == b'\n' {
            break;
        }
        line.push(b[0]);
        if line.len() > 64 * 1024 {
            return Err(bad("the header line is too long"));
        }
    }
    let facts: serde_json::Value =
        serde_json::from_slice(&line).map_err(|_| bad("the header line is not JSON"))?;
    let schema = facts["schema"].as_u64().unwrap_or(0);
    if schema != u64::from(SCHEMA_VERSION) {
        return Err(bad(&format!(
            "the backup has schema {schema}, this binary writes {SCHEMA_VERSION}"
        )));
    }
    let tables: Vec<String> = facts["tables"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let mut entries = 0u64;
    loop {
        let index = u16::from_be_bytes(
            take(2, &mut hash)?
                .try_into()
                .map_err(|_| bad("cut short"))?,
        );
        if index == END {
            break;
        }
        let name = tables
            .get(index as usize)
            .ok_or_else(|| bad("an entry names no table"))?;
        let table = ALL
            .iter()
            .find(|t| **t == name.as_str())
            .copied()
            .ok_or_else(|| bad(&format!("the table {name} is unknown to this binary")))?;
        let len = |b: Vec<u8>| -> Result<usize> {
            let n = u32::from_be_bytes(b.try_into().map_err(|_| bad("cut short"))?) as usize;
            if n > 256 * 1024 * 1024 {
                return Err(bad("an entry is larger than any this binary writes"));
            }
            Ok(n)
        };
        let k_len = len(take(4, &mut hash)?)?;
        let k = take(k_len, &mut hash)?;
        let v_len = len(take(4, &mut hash)?)?;
        let v = take(v_len, &mut hash)?;
        each(table, &k, &v)?;
        entries += 1;
    }
    let mut digest = [0u8; 32];
    input
        .read_exact(&mut digest)
        .map_err(|_| bad("the checksum is missing"))?;
    if digest[..] != hash.finalize()[..] {
        return Err(bad("the checksum does not match: the file is damaged"));
    }
    let mut rest = [0u8; 1];
    if input.read(&mut rest).map_err(io(path))? != 0 {
        return Err(bad("there are bytes after the checksum"));
    }
    Ok(entries)
}
