//! The running server's control socket: `DATA_DIR/run/control.sock`, a Unix socket in a
//! directory only the server's user may enter (0700; the socket itself is 0600). The store file is locked by the server, so `portcullis export`
//! and `import` (and `kc.sh export` inside a running container, as the seed's guides do it)
//! hand their work to the server through this socket instead of opening the store. Whoever
//! can open the socket could read the store file anyway: the file system is the access check.
//!
//! One request per connection, one JSON line each way.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::clock::SharedClock;
use crate::import_export::{self, Imported, UsersMode};
use crate::store::Store;

/// The socket's directory and name inside the data directory.
const SOCKET_DIR: &str = "run";
pub const SOCKET: &str = "control.sock";

fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET_DIR).join(SOCKET)
}

/// Whether `path` is in the data directory (where an export file could replace the store).
fn inside(data_dir: &Path, path: &Path) -> bool {
    let canonical = |p: &Path| {
        std::fs::canonicalize(p).ok().or_else(|| {
            let parent = p.parent()?;
            Some(std::fs::canonicalize(parent).ok()?.join(p.file_name()?))
        })
    };
    match (canonical(data_dir), canonical(path)) {
        (Some(d), Some(p)) => p.starts_with(d),
        _ => false,
    }
}

/// Largest request line (paths and a realm name).
const MAX_REQUEST: u64 = 64 * 1024;

/// What the command line asks the server to do.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    Export {
        /// Absolute paths: the server's working directory is not the caller's.
        dir: Option<PathBuf>,
        file: Option<PathBuf>,
        realm: Option<String>,
        users: UsersMode,
        users_per_file: usize,
    },
    Import {
        file: Option<PathBuf>,
        dir: Option<PathBuf>,
        overwrite: bool,
    },
    /// A consistent snapshot of the whole store into `to` (absolute).
    Backup { to: PathBuf },
}

/// The server's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Reply {
    Exported { files: Vec<PathBuf> },
    Imported { results: Vec<Imported> },
    BackedUp { entries: u64, bytes: u64 },
    Failed { message: String },
}

/// Run a request against a store (the server's, or one the command line opened itself).
pub fn execute(store: &Store, clock: &dyn crate::clock::Clock, request: &Request) -> Reply {
    // An export file in the data directory must be a `.json` (never the store, the pid file
    // or the sockets); directories there are fine (`kc.sh export --dir data/import` is the
    // seed's own command, and writes only `*.json`).
    if let Request::Export {
        file: Some(target), ..
    } = request
    {
        let data_dir = store.path().parent().unwrap_or(Path::new("."));
        if inside(data_dir, target) && target.extension().is_none_or(|e| e != "json") {
            return Reply::Failed {
                message: format!(
                    "{} is inside the data directory {}: export somewhere else",
                    target.display(),
                    data_dir.display()
                ),
            };
        }
    }
    let result = match request {
        Request::Export {
            dir,
            file,
            realm,
            users,
            users_per_file,
        } => match (file, dir) {
            (Some(file), _) => import_export::export_file(store, file, realm.as_deref(), *users)
                .map(|f| Reply::Exported { files: vec![f] }),
            (None, Some(dir)) => {
                import_export::export(store, dir, realm.as_deref(), *users, *users_per_file)
                    .map(|files| Reply::Exported { files })
            }
            (None, None) => {
                return Reply::Failed {
                    message: "give --dir or --file".into(),
                }
            }
        },
        Request::Import {
            file,
            dir,
            overwrite,
        } => {
            // Realms other than master need master (for their `{realm}-realm` client).
            let run = || -> Result<Vec<Imported>, import_export::TransferError> {
                crate::bootstrap::ensure_master_realm(store, clock)?;
                match (file, dir) {
                    (Some(f), _) => Ok(vec![import_export::import_file(
                        store, clock, f, *overwrite,
                    )?]),
                    (None, Some(d)) => import_export::import_dir(store, clock, d, *overwrite),
                    (None, None) => Err(import_export::TransferError::File {
                        path: PathBuf::new(),
                        message: "give --file or --dir".into(),
                    }),
                }
            };
            run().map(|results| Reply::Imported { results })
        }
        Request::Backup { to } => return backup(store, to),
    };
    result.unwrap_or_else(|e| Reply::Failed {
        message: e.to_string(),
    })
}

/// A backup, never into the data directory (where it could replace the store).
fn backup(store: &Store, to: &Path) -> Reply {
    let data_dir = store.path().parent().unwrap_or(Path::new("."));
    if inside(data_dir, to) {
        return Reply::Failed {
            message: format!(
                "{} is inside the data directory {}: back up somewhere else",
                to.display(),
                data_dir.display()
            ),
        };
    }
    match store.backup(to) {
        Ok(c) => Reply::BackedUp {
            entries: c.entries,
            bytes: c.bytes,
        },
        Err(e) => Reply::Failed {
            message: e.to_string(),
        },
    }
}

/// Listen on `DATA_DIR/control.sock` in a thread of its own; `after_import` runs after every
/// import (to drop what the server cached of the replaced realms).
pub fn listen(
    data_dir: &Path,
    store: Store,
    clock: SharedClock,
    after_import: Arc<dyn Fn() + Send + Sync>,
) -> std::io::Result<PathBuf> {
    // The directory is made (or made again) 0700 before the socket exists in it, so nobody
    // else can reach the socket whatever the umask. A socket left by a killed server is
    // replaced (the store lock, already held, proves no other server uses this directory).
    let dir = data_dir.join(SOCKET_DIR);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    let path = socket_path(data_dir);
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    let shared = Arc::new((store, clock, after_import));
    std::thread::Builder::new()
        .name("control".into())
        .spawn(move || {
            for stream in listener.incoming() {
                let stream = match stream {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "control socket: accept failed");
                        std::thread::sleep(Duration::from_millis(100));
                        continue;
                    }
                };
                // One thread per request: a slow caller (or a long export) holds up no
                // other, and a failure ends only its own thread.
                let shared = shared.clone();
                let spawned = std::thread::Builder::new()
                    .name("control-request".into())
                    .spawn(move || {
                        let (store, clock, after_import) = &*shared;
                        if let Err(e) =
                            serve_one(stream, store, clock.as_ref(), after_import.as_ref())
                        {
                            tracing::warn!(error = %e, "control socket: request failed");
                        }
                    });
                if let Err(e) = spawned {
                    tracing::warn!(error = %e, "control socket: cannot start a request thread");
                }
            }
        })?;
    Ok(path)
}

fn serve_one(
    stream: UnixStream,
    store: &Store,
    clock: &dyn crate::clock::Clock,
    after_import: &(dyn Fn() + Send + Sync),
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut line = String::new();
    BufReader::new((&stream).take(MAX_REQUEST)).read_line(&mut line)?;
    let reply = match serde_json::from_str::<Request>(&line) {
        Ok(request) => {
            tracing::info!(?request, "control socket");
            let reply = execute(store, clock, &request);
            if matches!(request, Request::Import { .. }) {
                after_import();
            }
            reply
        }
        Err(e) => Reply::Failed {
            message: format!("bad request: {e}"),
        },
    };
    let mut out = serde_json::to_vec(&reply).map_err(std::io::Error::other)?;
    out.push(b'\n');
    (&stream).write_all(&out)
}

/// Send a request to the server that holds `data_dir`.
pub fn call(data_dir: &Path, request: &Request) -> Result<Reply, String> {
    let path = socket_path(data_dir);
    let mut stream = UnixStream::connect(&path).map_err(|e| {
        format!(
            "the data directory {} is in use by another process, and its control socket {} does \
             not answer ({e})",
            data_dir.display(),
            path.display()
        )
    })?;
    let mut line = serde_json::to_vec(request).map_err(|e| e.to_string())?;
    line.push(b'\n');
    stream.write_all(&line).map_err(|e| e.to_string())?;
    let mut answer = String::new();
    BufReader::new(stream)
        .read_line(&mut answer)
        .map_err(|e| format!("control socket: {e}"))?;
    serde_json::from_str(&answer).map_err(|e| format!("control socket: bad reply: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn the_socket_is_private_and_serves_export_and_import() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::testing::open(dir.path());
        crate::bootstrap::ensure_master_realm(&store, &SystemClock).unwrap();
        let imports = Arc::new(AtomicUsize::new(0));
        let seen = imports.clone();
        let path = listen(
            dir.path(),
            store,
            Arc::new(SystemClock),
            Arc::new(move || {
                seen.fetch_add(1, Ordering::SeqCst);
            }),
        )
        .unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600, "only the server's user may connect");
        assert_eq!(
            mode(path.parent().unwrap()),
            0o700,
            "nor reach the socket at all"
        );
        // Export files never land in the data directory (they could replace the store).
        let reply = call(
            dir.path(),
            &Request::Export {
                dir: None,
                file: Some(dir.path().join("portcullis.redb")),
                realm: None,
                users: UsersMode::Skip,
                users_per_file: 50,
            },
        )
        .unwrap();
        assert!(
            matches!(&reply, Reply::Failed { message } if message.contains("inside the data directory")),
            "{reply:?}"
        );

        let file = dir.path().join("r.json");
        std::fs::write(&file, r#"{"realm": "via-socket", "enabled": true}"#).unwrap();
        let reply = call(
            dir.path(),
            &Request::Import {
                file: Some(file),
                dir: None,
                overwrite: false,
            },
        )
        .unwrap();
        assert!(
            matches!(&reply, Reply::Imported { results } if results == &[Imported::Realm("via-socket".into())]),
            "{reply:?}"
        );
        assert_eq!(
            imports.load(Ordering::SeqCst),
            1,
            "caches dropped after an import"
        );
        let out = dir.path().join("out");
        let reply = call(
            dir.path(),
            &Request::Export {
                dir: Some(out.clone()),
                file: None,
                realm: Some("via-socket".into()),
                users: UsersMode::RealmFile,
                users_per_file: 50,
            },
        )
        .unwrap();
        assert!(
            matches!(reply, Reply::Exported { ref files } if files.len() == 1),
            "{reply:?}"
        );
        assert!(out.join("via-socket-realm.json").is_file());
        let reply = call(
            dir.path(),
            &Request::Export {
                dir: Some(out),
                file: None,
                realm: Some("missing".into()),
                users: UsersMode::Skip,
                users_per_file: 50,
            },
        )
        .unwrap();
        assert!(
            matches!(&reply, Reply::Failed { message } if message.contains("missing")),
            "{reply:?}"
        );

        // Garbage and over-long lines get an answer, not a crash.
        let mut s = UnixStream::connect(&path).unwrap();
        s.write_all(b"{\"op\": \"format_disk\"}\n").unwrap();
        let mut answer = String::new();
        BufReader::new(s).read_line(&mut answer).unwrap();
        assert!(answer.contains("bad request"), "{answer}");
        let mut s = UnixStream::connect(&path).unwrap();
        let _ = s.write_all(&vec![b'x'; MAX_REQUEST as usize + 10]);
        let mut answer = String::new();
        let _ = BufReader::new(s).read_line(&mut answer);
        assert!(answer.contains("bad request"), "{answer}");
        // The socket still serves.
        assert!(call(
            dir.path(),
            &Request::Import {
                file: None,
                dir: None,
                overwrite: false
            }
        )
        .is_ok());
    }
}
