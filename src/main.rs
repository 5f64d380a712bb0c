//! The `portcullis` command line. Parses arguments, loads the configuration and hands over
//! to the library; exit status 2 means "bad configuration or usage", 1 "failed at run time".

use std::ffi::OsString;
use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand};

use portcullis::clock::SystemClock;
use portcullis::config::{Config, DatabaseOverride, Overrides, DEFAULT_CONFIG_PATH};
use portcullis::control::{self, Reply, Request};
use portcullis::crypto::password::Argon2Params;
use portcullis::store::{Store, StoreError};
use portcullis::{apply, bootstrap, import_export, kcadm, kcsh, logging, server, tls};

/// mimalloc instead of glibc's malloc: the proxy allocates and frees small buffers for every
/// request, and glibc's allocator was the largest user-space cost under load.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc commits its first arena eagerly, before `main` runs, which costs an idle server
/// about 14 MB of resident memory for no measurable speed. The option can only be set from
/// the environment before the process starts, so the binary re-executes itself once with
/// it set (same pid, a millisecond at start-up).
const MIMALLOC_EAGER_COMMIT: &str = "MIMALLOC_ARENA_EAGER_COMMIT";

fn reexec_with_allocator_options() {
    use std::os::unix::process::CommandExt;
    if std::env::var_os(MIMALLOC_EAGER_COMMIT).is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    // `exec` only returns on failure; then go on with the defaults. The program name is
    // kept: `kcadm.sh` and `kc.sh` are links to this binary, told apart by it.
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_else(|| exe.clone().into_os_string());
    let _ = std::process::Command::new(exe)
        .arg0(arg0)
        .args(args)
        .env(MIMALLOC_EAGER_COMMIT, "0")
        .exec();
}

#[derive(Parser)]
#[command(
    name = "portcullis",
    version,
    about = "Edge auth gateway: a Keycloak-compatible identity provider and identity-aware reverse proxy",
    after_help = "Keycloak's scripts are this binary under their names (links): kcadm.sh (or \
`portcullis kcadm`) is the admin CLI, kc.sh takes Keycloak's server commands:
  kc.sh start-dev --http-port 8080 --import-realm
  kc.sh import --file /opt/keycloak/data/import/myrealm.json
  kc.sh export --dir /opt/keycloak/data/export --realm myrealm --users realm_file
  kcadm.sh config credentials --server http://localhost:8080 --realm master --user admin
  kcadm.sh create users -r myrealm -s username=jane -s enabled=true"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct ConfigArg {
    /// Configuration file.
    #[arg(long, env = "PORTCULLIS_CONFIG", default_value = DEFAULT_CONFIG_PATH)]
    config: PathBuf,
    /// Data directory (overrides store.data_dir).
    #[arg(long, env = "PORTCULLIS_DATA_DIR")]
    data_dir: Option<PathBuf>,
    #[command(flatten)]
    db: DbArgs,
}

/// Keycloak's database options, with its environment variables; they win over `[store]`.
#[derive(Args, Clone)]
#[command(next_help_heading = "Database (as Keycloak's)")]
struct DbArgs {
    /// `postgres` (a database the nodes share), or `dev-file` for the embedded store.
    #[arg(long, env = "KC_DB", value_name = "VENDOR")]
    db: Option<String>,
    /// jdbc:postgresql://HOST[:PORT]/DATABASE[?sslmode=require]
    #[arg(long, env = "KC_DB_URL", value_name = "URL", hide_env_values = true)]
    db_url: Option<String>,
    #[arg(long, env = "KC_DB_USERNAME", value_name = "USER")]
    db_username: Option<String>,
    #[arg(
        long,
        env = "KC_DB_PASSWORD",
        value_name = "PASSWORD",
        hide_env_values = true
    )]
    db_password: Option<String>,
    /// The URL in parts, without --db-url (default localhost).
    #[arg(long, env = "KC_DB_URL_HOST", value_name = "HOST")]
    db_url_host: Option<String>,
    /// Default 5432.
    #[arg(long, env = "KC_DB_URL_PORT", value_name = "PORT")]
    db_url_port: Option<String>,
    /// Default keycloak.
    #[arg(long, env = "KC_DB_URL_DATABASE", value_name = "DATABASE")]
    db_url_database: Option<String>,
    /// Connection properties, e.g. "?sslmode=require".
    #[arg(long, env = "KC_DB_URL_PROPERTIES", value_name = "PROPERTIES")]
    db_url_properties: Option<String>,
    /// Connections per node (store.pool_size).
    #[arg(long, env = "KC_DB_POOL_MAX_SIZE", value_name = "N")]
    db_pool_max_size: Option<String>,
    /// The schema the tables live in (it must exist; default public).
    #[arg(long, env = "KC_DB_SCHEMA", value_name = "SCHEMA")]
    db_schema: Option<String>,
}

impl DbArgs {
    fn to_override(&self) -> DatabaseOverride {
        DatabaseOverride {
            kind: self.db.clone(),
            url: self.db_url.clone(),
            username: self.db_username.clone(),
            password: self.db_password.clone(),
            host: self.db_url_host.clone(),
            port: self.db_url_port.clone(),
            database: self.db_url_database.clone(),
            properties: self.db_url_properties.clone(),
            pool_max_size: self.db_pool_max_size.clone(),
            schema: self.db_schema.clone(),
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Serve {
        #[command(flatten)]
        config: ConfigArg,
        /// Plain HTTP listen address, e.g. 0.0.0.0:8080 ("" disables; overrides server.http).
        #[arg(long, env = "PORTCULLIS_HTTP")]
        http: Option<String>,
        /// TLS listen address, e.g. 0.0.0.0:8443 ("" disables; overrides server.https).
        #[arg(long, env = "PORTCULLIS_HTTPS")]
        https: Option<String>,
        /// Public URL (https://auth.example.com, becomes server.public_url) or a host name
        /// the IdP answers for (added to server.hostnames), as Keycloak's --hostname.
        #[arg(long, env = "KC_HOSTNAME")]
        hostname: Option<String>,
        /// Import every realm file in DATA_DIR/import at start, skipping realms that exist.
        #[arg(long)]
        import_realm: bool,
    },
    /// Export realms in Keycloak's JSON format. While the server runs, it does the export
    /// (through DATA_DIR/run/control.sock).
    #[command(after_help = "Example (kc.sh takes the same):\n  \
        portcullis export --dir /opt/keycloak/data/export --realm myrealm --users realm_file")]
    Export {
        #[command(flatten)]
        config: ConfigArg,
        /// Directory to write `{realm}-realm.json` (and users files) into.
        #[arg(long, conflicts_with = "file", required_unless_present = "file")]
        dir: Option<PathBuf>,
        /// One file instead: the realm with its users (every realm as a list without --realm).
        #[arg(long)]
        file: Option<PathBuf>,
        /// Only this realm (default: all).
        #[arg(long)]
        realm: Option<String>,
        /// Where users go.
        #[arg(long, value_enum, default_value = "different_files")]
        users: import_export::UsersMode,
        /// Users per file with `--users different_files`.
        #[arg(long, default_value_t = 50)]
        users_per_file: usize,
    },
    /// Import realms from Keycloak JSON files. While the server runs, it does the import
    /// (through DATA_DIR/run/control.sock).
    #[command(after_help = "Example (kc.sh takes the same):\n  \
        portcullis import --file /opt/keycloak/data/import/myrealm.json")]
    Import {
        #[command(flatten)]
        config: ConfigArg,
        /// One realm or users file.
        #[arg(long, conflicts_with = "dir", required_unless_present = "dir")]
        file: Option<PathBuf>,
        /// Every `*.json` of a directory (realm files first, then users files).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Replace realms that exist (true) or leave them alone (false).
        #[arg(long, default_value = "true", action = clap::ArgAction::Set)]
        r#override: bool,
    },
    /// Validate the configuration and exit (status 2 when it is invalid).
    CheckConfig {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Create an administrator in the master realm (the server must be stopped). The
    /// password is read from PORTCULLIS_ADMIN_PASSWORD or, failing that, from stdin.
    BootstrapAdmin {
        #[command(flatten)]
        config: ConfigArg,
        /// Username of the new administrator.
        #[arg(long)]
        username: String,
    },
    /// Apply the declarative realm files (`realms.dir`, or --dir) to the store: create what
    /// is missing, update what differs (the server must be stopped).
    Apply {
        #[command(flatten)]
        config: ConfigArg,
        /// Directory of realm files (default: realms.dir of the configuration).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Print what would change, change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Back up the whole store (a consistent snapshot, while serving or not) into one file
    /// that `portcullis restore` reads, on either backend.
    #[command(
        after_help = "Example:\n  portcullis backup --to /var/backups/portcullis-$(date +%F).backup"
    )]
    Backup {
        #[command(flatten)]
        config: ConfigArg,
        /// The backup file to write (outside the data directory).
        #[arg(long)]
        to: PathBuf,
    },
    /// Restore a backup into the configured store, which must be new (an empty data
    /// directory, or an empty database); the server must be stopped.
    Restore {
        #[command(flatten)]
        config: ConfigArg,
        /// The backup file `portcullis backup` wrote.
        #[arg(long)]
        from: PathBuf,
    },
    /// Copy a store into another, e.g. from the embedded redb store into PostgreSQL
    /// (the source's server must be stopped; the target must be empty).
    #[command(
        after_help = "Example:\n  portcullis migrate-store --from redb:/var/lib/portcullis --to postgres:postgres://portcullis@db/portcullis"
    )]
    MigrateStore {
        /// `redb:DATA_DIR` or `postgres:URL`.
        #[arg(long)]
        from: String,
        /// `redb:DATA_DIR` or `postgres:URL`.
        #[arg(long)]
        to: String,
    },
    /// Write a self-signed development certificate for localhost into the certs directory.
    GenCert {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// The admin CLI, as Keycloak's kcadm.sh (`portcullis kcadm help` for its commands).
    #[command(disable_help_flag = true)]
    Kcadm {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Print a shell completion script: `portcullis completions bash > /etc/bash_completion.d/portcullis`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

fn load(arg: &ConfigArg, http: Option<String>, https: Option<String>) -> Result<Config, ExitCode> {
    load_with(
        arg,
        Overrides {
            http,
            https,
            ..Overrides::default()
        },
    )
}

fn load_with(arg: &ConfigArg, mut overrides: Overrides) -> Result<Config, ExitCode> {
    overrides.data_dir = arg.data_dir.clone();
    overrides.database = arg.db.to_override();
    Config::load(&arg.config, &overrides).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })
}

fn main() -> ExitCode {
    reexec_with_allocator_options();
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let program = args
        .first()
        .and_then(|a| Path::new(a).file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("portcullis")
        .to_string();
    match program.as_str() {
        "kcadm.sh" | "kcadm" => return kcadm::main(&args[1..]),
        "kc.sh" | "kc" => match kcsh::translate(&args[1..]) {
            Ok(translated) => {
                if !translated.ignored.is_empty() {
                    eprintln!(
                        "warning: Keycloak options without effect here: {}",
                        translated.ignored.join(" ")
                    );
                }
                args.truncate(1);
                args.extend(translated.args);
            }
            Err(message) => {
                eprintln!("error: {message}");
                return ExitCode::from(2);
            }
        },
        _ => {}
    }
    let cli = Cli::parse_from(args);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(code) => code,
    }
}

fn run(cli: Cli) -> Result<(), ExitCode> {
    match cli.command {
        Command::Serve {
            config,
            http,
            https,
            hostname,
            import_realm,
        } => {
            let config = load_with(
                &config,
                Overrides {
                    http,
                    https,
                    hostname,
                    ..Overrides::default()
                },
            )?;
            logging::init(config.log.format, &config.log.level);
            server::run(config, server::Options { import_realm }).map_err(|e| {
                tracing::error!("{e}");
                eprintln!("error: {e}");
                ExitCode::from(1)
            })
        }
        Command::CheckConfig { config } => {
            let loaded = load(&config, None, None)?;
            println!("{}: configuration is valid", loaded.source.display());
            Ok(())
        }
        Command::BootstrapAdmin { config, username } => {
            let config = load(&config, None, None)?;
            let password = match std::env::var(server::ADMIN_PASSWORD_ENV) {
                Ok(p) => p,
                Err(_) => read_password_from_stdin()?,
            };
            let fail = |e: &dyn std::fmt::Display| {
                eprintln!("error: {e}");
                ExitCode::from(1)
            };
            let store = Store::open_config(&config.store).map_err(|e| fail(&e))?;
            bootstrap::ensure_master_realm(&store, &SystemClock).map_err(|e| fail(&e))?;
            bootstrap::create_admin(
                &store,
                &SystemClock,
                &username,
                &password,
                &Argon2Params::default(),
            )
            .map_err(|e| fail(&e))?;
            println!(
                "created administrator \"{}\" in the master realm",
                username.trim().to_lowercase()
            );
            Ok(())
        }
        Command::Export {
            config,
            dir,
            file,
            realm,
            users,
            users_per_file,
        } => {
            let config = load(&config, None, None)?;
            let request = Request::Export {
                dir: dir.map(absolute).transpose()?,
                file: file.map(absolute).transpose()?,
                realm,
                users,
                users_per_file,
            };
            match transfer(&config, &request)? {
                Reply::Exported { files } => {
                    for f in files {
                        println!("wrote {}", f.display());
                    }
                    Ok(())
                }
                other => unexpected(other),
            }
        }
        Command::Import {
            config,
            file,
            dir,
            r#override,
        } => {
            let config = load(&config, None, None)?;
            let request = Request::Import {
                file: file.map(absolute).transpose()?,
                dir: dir.map(absolute).transpose()?,
                overwrite: r#override,
            };
            match transfer(&config, &request)? {
                Reply::Imported { results } => {
                    for r in results {
                        match r {
                            import_export::Imported::Realm(name) => {
                                println!("imported realm {name}")
                            }
                            import_export::Imported::Users { realm, count } => {
                                println!("imported {count} users into {realm}")
                            }
                            import_export::Imported::Skipped(name) => {
                                println!("skipped realm {name}: it exists (use --override true)")
                            }
                        }
                    }
                    Ok(())
                }
                other => unexpected(other),
            }
        }
        Command::Apply {
            config,
            dir,
            dry_run,
        } => {
            let config = load(&config, None, None)?;
            let dir = dir.unwrap_or_else(|| config.realms_dir.clone());
            let files = apply::read_dir(&dir).map_err(|e| {
                eprintln!("error: {e}");
                ExitCode::from(2)
            })?;
            let store = open_store(&config)?;
            bootstrap::ensure_master_realm(&store, &SystemClock).map_err(fail)?;
            let changes = apply::apply(&store, &SystemClock, &files, dry_run).map_err(fail)?;
            let verb = if dry_run { "would" } else { "did" };
            if changes.is_empty() {
                println!("{} realm file(s): nothing to change", files.len());
            }
            for c in changes {
                println!("{verb}: {c}");
            }
            Ok(())
        }
        Command::Backup { config, to } => {
            let config = load(&config, None, None)?;
            let request = Request::Backup { to: absolute(to)? };
            match transfer(&config, &request)? {
                Reply::BackedUp { entries, bytes } => {
                    if let Request::Backup { to } = &request {
                        println!("wrote {} ({entries} entries, {bytes} bytes)", to.display());
                    }
                    Ok(())
                }
                other => unexpected(other),
            }
        }
        Command::Restore { config, from } => {
            let config = load(&config, None, None)?;
            let store = open_store(&config)?;
            let copied = store.restore(&from).map_err(fail)?;
            println!(
                "restored {} entries from {}",
                copied.entries,
                from.display()
            );
            Ok(())
        }
        Command::MigrateStore { from, to } => {
            let source = open_location(&from)?;
            let target = open_location(&to)?;
            let copied = source.copy_into(&target).map_err(fail)?;
            println!(
                "copied {} entries ({} bytes) from {from} to {}",
                copied.entries,
                copied.bytes,
                to.split_once("://")
                    .map_or(to.as_str(), |(scheme, _)| scheme)
            );
            Ok(())
        }
        Command::GenCert { config } => {
            let config = load(&config, None, None)?;
            tls::generate_dev_cert(&config.tls.certs_dir).map_err(|e| {
                eprintln!("error: {e}");
                ExitCode::from(1)
            })?;
            println!(
                "wrote {}/{} and {}",
                config.tls.certs_dir.display(),
                tls::DEV_CERT,
                tls::DEV_KEY
            );
            Ok(())
        }
        Command::Kcadm { args } => match kcadm::main(&args) {
            code if code == ExitCode::SUCCESS => Ok(()),
            code => Err(code),
        },
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "portcullis",
                &mut std::io::stdout(),
            );
            Ok(())
        }
    }
}

/// Run an export or import on the store, or, when a running server holds it, through the
/// server's control socket.
fn transfer(config: &Config, request: &Request) -> Result<Reply, ExitCode> {
    let reply = match Store::open_config(&config.store) {
        Ok(store) => control::execute(&store, &SystemClock, request),
        Err(StoreError::InUse(dir)) => control::call(&dir, request).map_err(fail)?,
        Err(e) => return Err(fail(e)),
    };
    match reply {
        Reply::Failed { message } => Err(fail(message)),
        other => Ok(other),
    }
}

fn unexpected(reply: Reply) -> Result<(), ExitCode> {
    Err(fail(format!("unexpected reply from the server: {reply:?}")))
}

/// Paths sent to the server are absolute: its working directory is not ours.
fn absolute(path: PathBuf) -> Result<PathBuf, ExitCode> {
    std::path::absolute(&path).map_err(|e| fail(format!("{}: {e}", path.display())))
}

fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(1)
}

/// A store named on the command line: `redb:DATA_DIR` or `postgres:URL`.
fn open_location(location: &str) -> Result<Store, ExitCode> {
    match location.split_once(':') {
        Some(("redb", dir)) => Store::open(Path::new(dir)).map_err(fail),
        Some(("postgres", url)) => {
            portcullis::store::postgres::check_url(url)
                .map_err(|e| fail(format!("postgres:URL: {e}")))?;
            let options = portcullis::store::postgres::PgOptions {
                url: url.to_string(),
                pool_size: 4,
                ca_file: None,
                query_timeout: std::time::Duration::from_secs(30),
            };
            // The data directory only holds the control socket; none is needed here.
            Store::open_postgres(&std::env::temp_dir(), &options).map_err(fail)
        }
        _ => Err(fail(format!(
            "{location}: give redb:DATA_DIR or postgres:URL"
        ))),
    }
}

fn open_store(config: &Config) -> Result<Store, ExitCode> {
    Store::open_config(&config.store).map_err(fail)
}

fn read_password_from_stdin() -> Result<String, ExitCode> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("Password: ");
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line).map_err(|e| {
        eprintln!("error: cannot read the password from stdin: {e}");
        ExitCode::from(2)
    })?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    if password.is_empty() {
        eprintln!(
            "error: no password given (set {} or pipe it on stdin)",
            server::ADMIN_PASSWORD_ENV
        );
        return Err(ExitCode::from(2));
    }
    Ok(password)
}
