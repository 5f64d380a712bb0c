//! The running server's control socket: `DATA_DIR/control.sock`, a Unix socket only its
//! owner may open (mode 0600). The store file is locked by the server, so `portcullis export`
//! and `import` (and `kc.sh export` inside a running container, as the seed's guides do it)
//! hand their work to the server through this socket instead of opening the store. Whoever
//! can open the socket could read the store file anyway: the file system is the access check.
//!
//! One request per connection, one JSON line each way.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::clock::SharedClock;
use crate::import_export::{self, Imported, UsersMode};
use crate::store::Store;

/// The socket's name inside the data directory.
pub const SOCKET: &str = "control.sock";

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
}

/// The server's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Reply {
    Exported { files: Vec<PathBuf> },
    Imported { results: Vec<Imported> },
    Failed { message: String },
}

/// Run a request against a store (the server's, or one the command line opened itself).
pub fn execute(store: &Store, clock: &dyn crate::clock::Clock, request: &Request) -> Reply {
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
    };
    result.unwrap_or_else(|e| Reply::Failed {
        message: e.to_string(),
    })
}

/// Listen on `DATA_DIR/control.sock` in a thread of its own; `after_import` runs after every
/// import (to drop what the server cached of the replaced realms).
pub fn listen(
    data_dir: &Path,
    store: Store,
    clock: SharedClock,
    after_import: Arc<dyn Fn() + Send + Sync>,
) -> std::io::Result<PathBuf> {
    let path = data_dir.join(SOCKET);
    // Bound under a temporary name, restricted, then renamed: nobody can connect to it
    // before it is 0600. A socket left by a killed server is replaced (the store lock,
    // already held, proves no other server uses this directory).
    let tmp = data_dir.join(format!("{SOCKET}.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let listener = UnixListener::bind(&tmp)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
    std::fs::rename(&tmp, &path)?;
    std::thread::Builder::new()
        .name("control".into())
        .spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                if let Err(e) = serve_one(stream, &store, clock.as_ref(), after_import.as_ref()) {
                    tracing::warn!(error = %e, "control socket: request failed");
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
    let path = data_dir.join(SOCKET);
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
        let store = Store::open(dir.path()).unwrap();
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
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "only the server's user may connect");

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
