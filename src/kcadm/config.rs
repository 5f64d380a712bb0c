//! `~/.keycloak/kcadm.config` in Keycloak's layout: the current server and realm, an optional
//! trust store, and per server and realm the tokens of the last `config credentials`.
//! Directory 0700, file 0600, written under an exclusive lock (read, change, write back), so
//! two kcadm processes never interleave their updates.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::json::pretty;
use super::Failure;

/// The whole file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ConfigData {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) server_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) realm: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) truststore: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) trustpass: Option<String>,
    #[serde(default)]
    pub(super) endpoints: BTreeMap<String, BTreeMap<String, RealmConfig>>,
}

/// What a login left for one server and realm. Times are milliseconds since the epoch.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RealmConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) signing_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) grant_type_for_authentication: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) expires_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) refresh_expires_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) sig_expires_at: Option<i64>,
}

impl ConfigData {
    /// The entry of the current server and realm.
    pub(super) fn current(&self) -> Option<&RealmConfig> {
        self.endpoints
            .get(self.server_url.as_deref()?)?
            .get(self.realm.as_deref()?)
    }
}

/// Where the configuration lives: a file, or (`--no-config`) only this process's memory.
#[derive(Debug, Clone)]
pub(super) enum ConfigFile {
    File(PathBuf),
    Memory,
}

/// `~/.keycloak/kcadm.config`.
pub(super) fn default_path() -> PathBuf {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".keycloak").join("kcadm.config")
}

/// The file is rewritten from scratch beyond this size (as Keycloak's kcadm does).
const MAX_SIZE: u64 = 10 * 1024 * 1024;

impl ConfigFile {
    /// Read without a lock (a missing or empty file is an empty configuration).
    pub(super) fn load(&self) -> Result<ConfigData, Failure> {
        let ConfigFile::File(path) = self else {
            return Ok(ConfigData::default());
        };
        match std::fs::read_to_string(path) {
            Ok(text) => parse(path, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ConfigData::default()),
            Err(e) => Err(Failure::run(format!(
                "Failed to load {}: {e}",
                path.display()
            ))),
        }
    }

    /// Change the file under an exclusive lock: read it, apply `change`, write it back.
    pub(super) fn update(&self, change: impl FnOnce(&mut ConfigData)) -> Result<(), Failure> {
        let ConfigFile::File(path) = self else {
            return Ok(());
        };
        let mut file = open_restricted(path)?;
        lock(&file, path)?;
        let mut text = String::new();
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        let mut data = if size > MAX_SIZE {
            eprintln!(
                "Config file {} is too big. It will be overwritten.",
                path.display()
            );
            ConfigData::default()
        } else {
            file.read_to_string(&mut text)
                .map_err(|e| Failure::run(format!("Failed to load {}: {e}", path.display())))?;
            parse(path, &text)?
        };
        change(&mut data);
        let value = serde_json::to_value(&data)
            .map_err(|e| Failure::run(format!("Failed to save {}: {e}", path.display())))?;
        let out = pretty(&value);
        let write = |file: &mut File| -> std::io::Result<()> {
            file.seek(SeekFrom::Start(0))?;
            file.write_all(out.as_bytes())?;
            file.set_len(out.len() as u64)?;
            file.sync_all()
        };
        write(&mut file)
            .map_err(|e| Failure::run(format!("Failed to save {}: {e}", path.display())))
        // The lock goes with the file handle.
    }
}

fn parse(path: &Path, text: &str) -> Result<ConfigData, Failure> {
    if text.trim().is_empty() {
        return Ok(ConfigData::default());
    }
    serde_json::from_str(text)
        .map_err(|e| Failure::run(format!("Failed to load {}: {e}", path.display())))
}

/// Open (creating) the file 0600 in a directory created 0700.
fn open_restricted(path: &Path) -> Result<File, Failure> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| Failure::run(format!("Failed to create {}: {e}", dir.display())))?;
        }
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|e| Failure::run(format!("Failed to open {}: {e}", path.display())))?;
    // A file made by someone else (or an older tool) is restricted too: it holds tokens.
    if let Ok(meta) = file.metadata() {
        if meta.permissions().mode() & 0o077 != 0
            && file
                .set_permissions(std::fs::Permissions::from_mode(0o600))
                .is_err()
        {
            eprintln!(
                "WARN: Failed to restrict access permissions on config file: {}",
                path.display()
            );
        }
    }
    Ok(file)
}

/// An exclusive lock, waited for up to two seconds (another kcadm writing its tokens).
fn lock(file: &File, path: &Path) -> Result<(), Failure> {
    for _ in 0..20 {
        match file.try_lock() {
            Ok(()) => return Ok(()),
            Err(std::fs::TryLockError::WouldBlock) => {
                std::thread::sleep(Duration::from_millis(100))
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(Failure::run(format!(
                    "Failed to get lock on {}: {e}",
                    path.display()
                )))
            }
        }
    }
    Err(Failure::run(format!(
        "Failed to get lock on {}",
        path.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_is_private_and_keeps_other_endpoints() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("kcadm.config");
        let file = ConfigFile::File(path.clone());
        file.update(|c| {
            c.server_url = Some("http://a".into());
            c.realm = Some("master".into());
            c.endpoints.entry("http://a".into()).or_default().insert(
                "master".into(),
                RealmConfig {
                    token: Some("t1".into()),
                    expires_at: Some(5),
                    ..RealmConfig::default()
                },
            );
        })
        .unwrap();
        file.update(|c| {
            c.server_url = Some("http://b".into());
            c.endpoints
                .entry("http://b".into())
                .or_default()
                .insert("r".into(), RealmConfig::default());
        })
        .unwrap();
        let data = file.load().unwrap();
        assert_eq!(
            data.endpoints["http://a"]["master"].token.as_deref(),
            Some("t1")
        );
        assert!(data.endpoints.contains_key("http://b"));
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"expiresAt\" : 5"), "{text}");
        assert!(!text.contains("refreshToken"), "nulls are left out: {text}");
    }
}
