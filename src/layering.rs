//! The layering rules of `src/`, checked over the `crate::` paths each file names (doc
//! comments excluded): the foundation imports no domain module, the IdP knows no proxy, and
//! the proxy reaches the IdP only through its front door, `idp::gateway` (plus `App` itself
//! and the endpoint table that tells which paths the IdP serves).

use std::path::{Path, PathBuf};

/// Modules that know nothing of the IdP, the proxy or the server around them.
const FOUNDATION: &[&str] = &[
    "config",
    "crypto",
    "http",
    "store",
    "tls",
    "clock.rs",
    "metrics.rs",
    "logging.rs",
];
/// What the foundation must not name.
const DOMAIN: &[&str] = &[
    "crate::idp",
    "crate::proxy",
    "crate::server",
    "crate::apply",
    "crate::import_export",
    "crate::bootstrap",
];
/// The only parts of the IdP the proxy may name.
const PROXY_MAY_NAME: &[&str] = &[
    "crate::idp::gateway",
    "crate::idp::App",
    "crate::idp::endpoints",
];

fn rust_files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .collect();
        entries.sort();
        for entry in entries {
            rust_files(&entry, out);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_path_buf());
    }
}

/// Every `crate::a::b` path named outside comments in the files under `src/{module}`.
fn named_paths(module: &str) -> Vec<(PathBuf, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src")
        .join(module);
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        for line in text.lines() {
            let code = line.split("//").next().unwrap_or("");
            let mut rest = code;
            while let Some(i) = rest.find("crate::") {
                let path: String = rest[i..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                    .collect();
                out.push((file.clone(), path.trim_end_matches(':').to_string()));
                rest = &rest[i + 7..];
            }
        }
    }
    out
}

fn names(path: &str, prefix: &str) -> bool {
    path == prefix || path.starts_with(&format!("{prefix}::"))
}

#[test]
fn the_foundation_imports_no_domain_module() {
    let mut wrong = Vec::new();
    for module in FOUNDATION {
        for (file, path) in named_paths(module) {
            if DOMAIN.iter().any(|d| names(&path, d)) {
                wrong.push(format!("{}: {path}", file.display()));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn the_idp_knows_no_proxy_or_server() {
    let wrong: Vec<String> = named_paths("idp")
        .into_iter()
        .filter(|(_, p)| names(p, "crate::proxy") || names(p, "crate::server"))
        .map(|(f, p)| format!("{}: {p}", f.display()))
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn the_proxy_enters_the_idp_by_its_front_door() {
    let paths = named_paths("proxy");
    assert!(!paths.is_empty(), "no proxy sources found");
    let wrong: Vec<String> = paths
        .into_iter()
        .filter(|(_, p)| names(p, "crate::idp"))
        .filter(|(_, p)| !PROXY_MAY_NAME.iter().any(|m| names(p, m)))
        .map(|(f, p)| format!("{}: {p}", f.display()))
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// kcadm is a client of the admin API over HTTP, as Keycloak's is: it names nothing else of
/// the crate (so it works against a remote server, and the server's types never leak into it).
#[test]
fn kcadm_is_only_an_http_client() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![root.join("kcsh.rs")];
    rust_files(&root.join("kcadm"), &mut files);
    assert!(files.len() > 2, "no kcadm sources found");
    let wrong: Vec<String> = files
        .iter()
        .flat_map(|f| {
            let text = std::fs::read_to_string(f).unwrap_or_default();
            text.lines()
                .map(|l| l.split("//").next().unwrap_or("").to_string())
                .filter(|code| code.contains("crate::") || code.contains("super::super"))
                .map(|code| format!("{}: {}", f.display(), code.trim()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
}
