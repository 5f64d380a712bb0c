//! Schema 1 of the redb store (typed redb tables under bare names, before the store had a
//! backend trait) and its migration to schema 2 (the byte tables of `kv.rs`, which every
//! backend shares). The migration runs in the write transaction that opens the store, so
//! it is all or nothing: a crash mid-way leaves the schema-1 file as it was.

use redb::{
    MultimapTableDefinition, MultimapTableHandle, ReadableMultimapTable, ReadableTable,
    TableDefinition, TableHandle, WriteTransaction,
};

use super::backend::redb_table;
use super::kv::{Key, Part, I, S};
use super::Result;

/// `(a)` → the schema-2 key.
fn k1(a: &str) -> Vec<u8> {
    <S as Key>::encode(a)
}
fn k2((a, b): (&str, &str)) -> Vec<u8> {
    <(S, S)>::encode((a, b))
}
fn k3((a, b, c): (&str, &str, &str)) -> Vec<u8> {
    <(S, S, S)>::encode((a, b, c))
}
fn k_event((a, b, c): (&str, i64, &str)) -> Vec<u8> {
    <(S, I, S)>::encode((a, b, c))
}

/// Copy one typed table into its byte table and drop it; how many entries moved.
macro_rules! move_table {
    ($txn:expr, $name:literal, $k:ty, $v:ty, $key:expr, $value:expr) => {{
        let old: TableDefinition<$k, $v> = TableDefinition::new($name);
        let mut moved = 0u64;
        {
            let from = $txn.open_table(old)?;
            let mut to = $txn.open_table(redb_table($name))?;
            for entry in from.iter()? {
                let (k, v) = entry?;
                let key: Vec<u8> = $key(k.value());
                let value: Vec<u8> = $value(v.value());
                to.insert(key.as_slice(), value.as_slice())?;
                moved += 1;
            }
        }
        $txn.delete_table(old)?;
        moved
    }};
}

fn bytes(v: &[u8]) -> Vec<u8> {
    v.to_vec()
}
fn text(v: &str) -> Vec<u8> {
    v.as_bytes().to_vec()
}

/// The multimaps of schema 1, all `(realm id, key) → ids`.
const MULTIMAPS: &[&str] = &[
    "users_by_email",
    "users_by_first_name",
    "users_by_last_name",
    "group_children",
    "user_roles",
    "role_users",
    "group_roles",
    "role_groups",
    "user_groups",
    "group_members",
    "user_sessions",
];

/// Move every schema-1 table of the open write transaction into schema 2; returns how
/// many entries moved. Tables a schema-1 file never created are skipped.
pub(super) fn migrate(txn: &WriteTransaction) -> Result<u64> {
    let existing: Vec<String> = txn.list_tables()?.map(|t| t.name().to_string()).collect();
    let existing_multimaps: Vec<String> = txn
        .list_multimap_tables()?
        .map(|t| t.name().to_string())
        .collect();
    let has = |name: &str| existing.iter().any(|n| n == name);
    let mut n = 0;
    macro_rules! each {
        ($k:ty, $v:ty, $key:expr, $value:expr, [$($name:literal),*]) => {$(
            if has($name) {
                n += move_table!(txn, $name, $k, $v, $key, $value);
            }
        )*};
    }
    each!(&str, &str, k1, text, ["meta", "realm_names"]);
    each!(&str, &[u8], k1, bytes, ["realms"]);
    each!(
        &str,
        u64,
        k1,
        |v: u64| v.to_be_bytes().to_vec(),
        ["user_counts"]
    );
    each!(
        (&str, &str),
        &[u8],
        k2,
        bytes,
        [
            "users",
            "clients",
            "client_scopes",
            "roles",
            "groups",
            "signing_keys",
            "sessions",
            "auth_codes",
            "login_flows",
            "device_codes",
            "login_failures"
        ]
    );
    each!(
        (&str, &str),
        &str,
        k2,
        text,
        [
            "users_by_name",
            "clients_by_client_id",
            "client_scopes_by_name",
            "user_codes"
        ]
    );
    each!(
        (&str, &str),
        i64,
        k2,
        |v: i64| v.to_be_bytes().to_vec(),
        ["revoked_tokens"]
    );
    each!(
        (&str, &str, &str),
        &[u8],
        k3,
        bytes,
        ["credentials", "realm_objects"]
    );
    each!((&str, &str, &str), &str, k3, text, ["roles_by_name"]);
    each!((&str, i64, &str), &[u8], k_event, bytes, ["events"]);
    for name in MULTIMAPS {
        if !existing_multimaps.iter().any(|n| n == name) {
            continue;
        }
        let old: MultimapTableDefinition<(&str, &str), &str> = MultimapTableDefinition::new(name);
        {
            let from = txn.open_multimap_table(old)?;
            let mut to = txn.open_table(redb_table(name))?;
            for entry in from.iter()? {
                let (k, values) = entry?;
                let key = k2(k.value());
                for v in values {
                    let mut composite = key.clone();
                    <S as Part>::put(v?.value(), &mut composite);
                    to.insert(composite.as_slice(), &[][..])?;
                    n += 1;
                }
            }
        }
        txn.delete_multimap_table(old)?;
    }
    Ok(n)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Write a small schema-1 store the way the binaries before schema 2 did.
    pub(crate) fn write_schema_1(path: &std::path::Path) {
        let db = redb::Database::create(path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut meta = txn
                .open_table(TableDefinition::<&str, &str>::new("meta"))
                .unwrap();
            meta.insert("schema_version", "1").unwrap();
            let realm = serde_json::json!({"id": "r1", "name": "acme"}).to_string();
            txn.open_table(TableDefinition::<&str, &[u8]>::new("realms"))
                .unwrap()
                .insert("r1", realm.as_bytes())
                .unwrap();
            txn.open_table(TableDefinition::<&str, &str>::new("realm_names"))
                .unwrap()
                .insert("acme", "r1")
                .unwrap();
            let user = serde_json::json!({"id": "u1", "username": "alice", "email": "a@x.test"})
                .to_string();
            txn.open_table(TableDefinition::<(&str, &str), &[u8]>::new("users"))
                .unwrap()
                .insert(("r1", "u1"), user.as_bytes())
                .unwrap();
            txn.open_table(TableDefinition::<(&str, &str), &str>::new("users_by_name"))
                .unwrap()
                .insert(("r1", "alice"), "u1")
                .unwrap();
            txn.open_multimap_table(MultimapTableDefinition::<(&str, &str), &str>::new(
                "users_by_email",
            ))
            .unwrap()
            .insert(("r1", "a@x.test"), "u1")
            .unwrap();
            txn.open_table(TableDefinition::<&str, u64>::new("user_counts"))
                .unwrap()
                .insert("r1", 1)
                .unwrap();
            let event = serde_json::json!({"id": "e1", "time": -5, "type": "LOGIN"}).to_string();
            txn.open_table(TableDefinition::<(&str, i64, &str), &[u8]>::new("events"))
                .unwrap()
                .insert(("r1", -5, "e1"), event.as_bytes())
                .unwrap();
            txn.open_table(TableDefinition::<(&str, &str), i64>::new("revoked_tokens"))
                .unwrap()
                .insert(("r1", "jti-1"), i64::MAX)
                .unwrap();
        }
        txn.commit().unwrap();
    }
}
