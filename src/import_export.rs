//! Realm files on disk, as Keycloak's `kc.sh export` / `kc.sh import` write and read them:
//! `{realm}-realm.json` (the realm, with users when asked) and `{realm}-users-{n}.json`
//! (`{"realm": ..., "users": [...]}`). Used by the `export` and `import` commands and by
//! `serve --import-realm`. Shows a progress bar when stderr is a terminal.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::clock::Clock;
use crate::idp::admin::error::AdminError;
use crate::idp::admin::repr::UserInput;
use crate::idp::admin::transfer::{
    export_realm, export_users, import_realm, import_users, IfExists,
};
use crate::store::Store;

/// Where exported users go (`--users`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[clap(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum UsersMode {
    /// No users.
    Skip,
    /// Inside `{realm}-realm.json`.
    RealmFile,
    /// All in `{realm}-users-0.json`.
    SameFile,
    /// `--users-per-file` users in each `{realm}-users-{n}.json`.
    DifferentFiles,
}

#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("realm {0} does not exist")]
    NoRealm(String),
    #[error("{path}: {message}")]
    Import { path: PathBuf, message: String },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Bootstrap(#[from] crate::bootstrap::BootstrapError),
}

fn progress(total: u64, what: &str) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({eta})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_string());
    bar
}

fn write_json(path: &Path, value: &Value) -> Result<(), TransferError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| TransferError::File {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    // Write to a temporary name and rename: a failed export never leaves half a file. The
    // file holds password hashes and keys: only its owner may read it, and the temporary
    // name is created afresh (never through a link someone left there).
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("json.tmp");
    let _ = std::fs::remove_file(&tmp);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(text.as_bytes()).and_then(|_| f.sync_all()))
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| TransferError::File {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
}

/// The realm named (it must exist), or every realm.
fn chosen_realms(
    read: &crate::store::Read,
    realm: Option<&str>,
) -> Result<Vec<crate::store::RealmRecord>, TransferError> {
    Ok(match realm {
        Some(name) => vec![read
            .realm_by_name(name)?
            .ok_or_else(|| TransferError::NoRealm(name.to_string()))?],
        None => read.realms()?,
    })
}

/// Export one realm (or all) into `dir`. Returns the files written.
pub fn export(
    store: &Store,
    dir: &Path,
    realm: Option<&str>,
    users: UsersMode,
    per_file: usize,
) -> Result<Vec<PathBuf>, TransferError> {
    std::fs::create_dir_all(dir).map_err(|e| TransferError::File {
        path: dir.to_path_buf(),
        message: e.to_string(),
    })?;
    let read = store.read()?;
    let realms = chosen_realms(&read, realm)?;
    let per_file = per_file.max(1);
    let mut written = Vec::new();
    for r in realms {
        let mut doc = export_realm(&read, &r)?;
        let total = read.user_count(&r.id)? as usize;
        let bar = progress(total as u64, &format!("exporting {}", r.name));
        let page = match users {
            UsersMode::DifferentFiles => per_file,
            _ => 1000,
        };
        let mut all_users = Vec::new();
        let mut file_index = 0;
        let mut first = 0;
        while users != UsersMode::Skip && first < total {
            let batch = export_users(&read, &r, first, page)?;
            if batch.is_empty() {
                break;
            }
            first += batch.len();
            bar.inc(batch.len() as u64);
            match users {
                UsersMode::DifferentFiles => {
                    let path = dir.join(format!("{}-users-{file_index}.json", r.name));
                    write_json(&path, &json!({"realm": r.name, "users": batch}))?;
                    written.push(path);
                    file_index += 1;
                }
                _ => all_users.extend(batch),
            }
        }
        bar.finish_and_clear();
        match users {
            UsersMode::RealmFile => doc["users"] = Value::Array(all_users),
            UsersMode::SameFile if !all_users.is_empty() => {
                let path = dir.join(format!("{}-users-0.json", r.name));
                write_json(&path, &json!({"realm": r.name, "users": all_users}))?;
                written.push(path);
            }
            _ => {}
        }
        let path = dir.join(format!("{}-realm.json", r.name));
        write_json(&path, &doc)?;
        written.push(path);
    }
    Ok(written)
}

/// Keycloak's single-file export (`--file`): one realm (or, without `--realm`, every realm as
/// a list) with its users inside unless `users` is `skip`. Returns the file written.
pub fn export_file(
    store: &Store,
    file: &Path,
    realm: Option<&str>,
    users: UsersMode,
) -> Result<PathBuf, TransferError> {
    if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| TransferError::File {
            path: parent.to_path_buf(),
            message: e.to_string(),
        })?;
    }
    let read = store.read()?;
    let realms = chosen_realms(&read, realm)?;
    let mut docs = Vec::new();
    for r in &realms {
        let mut doc = export_realm(&read, r)?;
        if users != UsersMode::Skip {
            let mut all = Vec::new();
            loop {
                let batch = export_users(&read, r, all.len(), 1000)?;
                if batch.is_empty() {
                    break;
                }
                all.extend(batch);
            }
            doc["users"] = Value::Array(all);
        }
        docs.push(doc);
    }
    let value = match (realm, docs.len()) {
        (Some(_), _) | (None, 1) => docs.pop().unwrap_or(Value::Null),
        _ => Value::Array(docs),
    };
    write_json(file, &value)?;
    Ok(file.to_path_buf())
}

/// What an import did with one file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Imported {
    Realm(String),
    Users { realm: String, count: usize },
    Skipped(String),
}

fn read_json(path: &Path) -> Result<Value, TransferError> {
    let text = std::fs::read_to_string(path).map_err(|e| TransferError::File {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    serde_json::from_str(&text).map_err(|e| TransferError::Import {
        path: path.to_path_buf(),
        message: format!("invalid JSON: {e}"),
    })
}

fn admin_error(path: &Path, e: AdminError) -> TransferError {
    TransferError::Import {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Import one file: a realm (`{realm}-realm.json`, users included or not) or a users file.
/// An existing realm is replaced when `overwrite`, else left alone.
pub fn import_file(
    store: &Store,
    clock: &dyn Clock,
    path: &Path,
    overwrite: bool,
) -> Result<Imported, TransferError> {
    let doc = read_json(path)?;
    let now = clock.now_millis();
    if let Value::Array(realms) = &doc {
        // A single-file export of several realms.
        let mut last = None;
        for realm in realms {
            last = Some(import_realm_doc(store, path, realm, now, overwrite)?);
        }
        return last.ok_or_else(|| TransferError::Import {
            path: path.to_path_buf(),
            message: "an empty list of realms".into(),
        });
    }
    let realm_name = doc
        .get("realm")
        .and_then(|v| v.as_str())
        .ok_or_else(|| TransferError::Import {
            path: path.to_path_buf(),
            message: "no \"realm\" field".into(),
        })?
        .to_string();
    // A users file is `{"realm": ..., "users": [...]}` exactly (what Keycloak writes); any
    // other field makes it a realm, however few (`{"realm", "enabled", "users"}` written by
    // hand creates the realm with its users).
    let is_users_file = doc.get("users").is_some()
        && doc
            .as_object()
            .is_some_and(|o| o.keys().all(|k| k == "realm" || k == "users"));
    if is_users_file {
        let users: Vec<UserInput> =
            serde_json::from_value(doc["users"].clone()).map_err(|e| TransferError::Import {
                path: path.to_path_buf(),
                message: format!("invalid users: {e}"),
            })?;
        let realm = store
            .read()?
            .realm_by_name(&realm_name)?
            .ok_or_else(|| TransferError::NoRealm(realm_name.clone()))?;
        let bar = progress(
            users.len() as u64,
            &format!("importing users of {realm_name}"),
        );
        let policy = if overwrite {
            IfExists::Overwrite
        } else {
            IfExists::Skip
        };
        for chunk in users.chunks(1000) {
            store
                .write(|w| import_users(w, &realm, chunk, now, policy))
                .map_err(|e| admin_error(path, e))?;
            bar.inc(chunk.len() as u64);
        }
        bar.finish_and_clear();
        return Ok(Imported::Users {
            realm: realm_name,
            count: users.len(),
        });
    }
    import_realm_doc(store, path, &doc, now, overwrite)
}

/// One realm document: created, or (when `overwrite`) replacing the realm of that name in
/// the same transaction, so a failed import leaves the old realm as it was.
fn import_realm_doc(
    store: &Store,
    path: &Path,
    doc: &Value,
    now: i64,
    overwrite: bool,
) -> Result<Imported, TransferError> {
    let realm_name = doc
        .get("realm")
        .and_then(|v| v.as_str())
        .ok_or_else(|| TransferError::Import {
            path: path.to_path_buf(),
            message: "no \"realm\" field".into(),
        })?
        .to_string();
    // The look-up, the deletion and the import are one transaction: an admin write in
    // between cannot be lost or half-replaced.
    let imported = store
        .write(|w| -> Result<bool, AdminError> {
            if let Some(existing) = w.realm_by_name(&realm_name)? {
                if !overwrite {
                    return Ok(false);
                }
                crate::idp::realm::delete_realm(w, &existing)?;
            }
            import_realm(w, doc, now).map(|_| true)
        })
        .map_err(|e| admin_error(path, e))?;
    Ok(if imported {
        Imported::Realm(realm_name)
    } else {
        Imported::Skipped(realm_name)
    })
}

/// Import every realm file of a directory, then its users files.
pub fn import_dir(
    store: &Store,
    clock: &dyn Clock,
    dir: &Path,
    overwrite: bool,
) -> Result<Vec<Imported>, TransferError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| TransferError::File {
            path: dir.to_path_buf(),
            message: e.to_string(),
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let (realm_files, other): (Vec<PathBuf>, Vec<PathBuf>) = files.into_iter().partition(|p| {
        !p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.contains("-users-"))
    });
    let mut out = Vec::new();
    let mut skipped_realms = Vec::new();
    for f in &realm_files {
        let result = import_file(store, clock, f, overwrite)?;
        if let Imported::Skipped(name) = &result {
            skipped_realms.push(name.clone());
        }
        out.push(result);
    }
    for f in &other {
        // Users of a realm that was skipped are skipped with it.
        let realm = read_json(f)?
            .get("realm")
            .and_then(|v| v.as_str())
            .map(String::from);
        if realm.as_ref().is_some_and(|r| skipped_realms.contains(r)) {
            continue;
        }
        out.push(import_file(store, clock, f, overwrite)?);
    }
    Ok(out)
}
