//! Declarative realms (GitOps): `*.toml` files that describe realms in Keycloak's realm
//! representation (the keys of a realm export, as TOML), applied idempotently at start and
//! by `portcullis apply`. Missing resources are created, differing ones updated in place,
//! nothing is duplicated; `--dry-run` runs the same transaction and rolls it back, so the
//! plan it prints is exactly what a real apply would do.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::clock::Clock;
use crate::idp::admin::error::AdminError;
use crate::idp::admin::repr::RealmInput;
use crate::idp::admin::transfer::{import_contents, import_realm, set_default_groups, IfExists};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Apply { path: PathBuf, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Not an error: the rolled-back result of a dry run.
    #[error("dry run")]
    DryRun(Vec<String>),
}

/// A realm file, parsed: TOML turned into the JSON representation, secrets resolved.
#[derive(Debug, Clone)]
pub struct RealmFile {
    pub path: PathBuf,
    pub realm: String,
    pub body: Value,
}

/// `{ env = "VAR" }` / `{ file = "PATH" }` → the secret's text.
fn resolve(value: toml::Value, path: &Path, key: &str) -> Result<Value, ApplyError> {
    let fail = |message: String| ApplyError::File {
        path: path.to_path_buf(),
        message: format!("{key}: {message}"),
    };
    Ok(match value {
        toml::Value::Table(t)
            if t.len() == 1 && (t.contains_key("env") || t.contains_key("file")) =>
        {
            match (t.get("env"), t.get("file")) {
                (Some(toml::Value::String(var)), _) => Value::String(
                    std::env::var(var)
                        .map_err(|_| fail(format!("environment variable {var} is not set")))?,
                ),
                (_, Some(toml::Value::String(file))) => Value::String(
                    std::fs::read_to_string(file)
                        .map_err(|e| fail(format!("cannot read {file}: {e}")))?
                        .trim_end_matches(['\r', '\n'])
                        .to_string(),
                ),
                _ => return Err(fail("env/file must be a string".into())),
            }
        }
        toml::Value::Table(t) => {
            let mut map = serde_json::Map::new();
            for (k, v) in t {
                let child = if key.is_empty() {
                    k.clone()
                } else {
                    format!("{key}.{k}")
                };
                map.insert(k, resolve(v, path, &child)?);
            }
            Value::Object(map)
        }
        toml::Value::Array(a) => Value::Array(
            a.into_iter()
                .enumerate()
                .map(|(i, v)| resolve(v, path, &format!("{key}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => Value::from(i),
        toml::Value::Float(f) => Value::from(f),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
    })
}

/// Read one realm file.
pub fn read_file(path: &Path) -> Result<RealmFile, ApplyError> {
    let text = std::fs::read_to_string(path).map_err(|e| ApplyError::File {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let parsed: toml::Value = toml::from_str(&text).map_err(|e: toml::de::Error| {
        let line = e
            .span()
            .map(|s| text[..s.start].matches('\n').count() + 1)
            .unwrap_or(1);
        ApplyError::File {
            path: path.to_path_buf(),
            message: format!("line {line}: {}", e.message().trim()),
        }
    })?;
    let body = resolve(parsed, path, "")?;
    let realm = body
        .get("realm")
        .and_then(|v| v.as_str())
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| ApplyError::File {
            path: path.to_path_buf(),
            message: "realm: the realm name is required".into(),
        })?
        .to_string();
    // Catch type errors (and name them) before anything is applied.
    serde_json::from_value::<RealmInput>(body.clone()).map_err(|e| ApplyError::File {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    Ok(RealmFile {
        path: path.to_path_buf(),
        realm,
        body,
    })
}

/// Every `*.toml` in `dir`, sorted; a missing directory is no files.
pub fn read_dir(dir: &Path) -> Result<Vec<RealmFile>, ApplyError> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| ApplyError::File {
            path: dir.to_path_buf(),
            message: e.to_string(),
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    paths.iter().map(|p| read_file(p)).collect()
}

/// Apply realm files; returns the changes made (or, with `dry_run`, that would be made).
pub fn apply(
    store: &Store,
    clock: &dyn Clock,
    files: &[RealmFile],
    dry_run: bool,
) -> Result<Vec<String>, ApplyError> {
    let now = clock.now_millis();
    let result =
        store.write(|w| {
            let mut changes = Vec::new();
            for file in files {
                let fail = |e: AdminError| ApplyError::Apply {
                    path: file.path.clone(),
                    message: e.to_string(),
                };
                match w.realm_by_name(&file.realm)? {
                    None => {
                        import_realm(w, &file.body, now).map_err(fail)?;
                        changes.push(format!("create realm {}", file.realm));
                    }
                    Some(existing) => {
                        let mut input: RealmInput = serde_json::from_value(file.body.clone())
                            .map_err(|e| ApplyError::File {
                                path: file.path.clone(),
                                message: e.to_string(),
                            })?;
                        let mut updated = existing.clone();
                        input
                            .apply(&mut updated)
                            .map_err(|m| fail(AdminError::BadRequest(m)))?;
                        if updated != existing {
                            w.put_realm(&updated)?;
                            changes.push(format!("update realm {}", file.realm));
                        }
                        input.realm = None;
                        let counts = import_contents(w, &updated, &input, now, IfExists::Update)
                            .map_err(fail)?;
                        changes.extend(
                            counts
                                .changes
                                .into_iter()
                                .map(|c| format!("{c} in realm {}", file.realm)),
                        );
                        let before = updated.default_group_ids.clone();
                        let after = set_default_groups(w, updated, input.default_groups.as_deref())
                            .map_err(fail)?;
                        if after.default_group_ids != before {
                            changes.push(format!("update default groups of realm {}", file.realm));
                        }
                    }
                }
            }
            if dry_run {
                Err(ApplyError::DryRun(changes))
            } else {
                Ok(changes)
            }
        });
    match result {
        Err(ApplyError::DryRun(changes)) => Ok(changes),
        other => other,
    }
}
