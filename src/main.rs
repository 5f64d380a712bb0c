//! The `portcullis` command line. Parses arguments, loads the configuration and hands over
//! to the library; exit status 2 means "bad configuration or usage", 1 "failed at run time".

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use portcullis::clock::SystemClock;
use portcullis::config::{Config, Overrides, DEFAULT_CONFIG_PATH};
use portcullis::crypto::password::Argon2Params;
use portcullis::store::Store;
use portcullis::{bootstrap, logging, server, tls};

#[derive(Parser)]
#[command(
    name = "portcullis",
    version,
    about = "Edge auth gateway: a Keycloak-compatible identity provider and identity-aware reverse proxy"
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
    /// Write a self-signed development certificate for localhost into the certs directory.
    GenCert {
        #[command(flatten)]
        config: ConfigArg,
    },
}

fn load(arg: &ConfigArg, http: Option<String>, https: Option<String>) -> Result<Config, ExitCode> {
    let overrides = Overrides {
        http,
        https,
        data_dir: arg.data_dir.clone(),
    };
    Config::load(&arg.config, &overrides).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
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
        } => {
            let config = load(&config, http, https)?;
            logging::init(config.log.format, &config.log.level);
            server::run(config).map_err(|e| {
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
            let store = Store::open(&config.store.data_dir).map_err(|e| fail(&e))?;
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
    }
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
