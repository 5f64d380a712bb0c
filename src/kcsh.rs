//! `kc.sh`: Keycloak's server script, answered by the `portcullis` binary when it runs under
//! that name (the Docker image links `/opt/keycloak/bin/kc.sh` to it). Keycloak's command line
//! is translated into ours, so `kc.sh start-dev --http-port 8080 --import-realm`,
//! `kc.sh import --file realm.json` and `kc.sh export --dir out --realm r --users realm_file`
//! work as the seed's guides write them, and `kc.sh start --db postgres --db-url
//! jdbc:postgresql://db/keycloak ...` puts the store on that database. Pure argument rewriting: [`translate`] is tested on
//! its own and `main` parses the result with the ordinary command line.

use std::ffi::OsString;

/// Keycloak options that have no meaning here (feature flags, cache stacks, ...): accepted
/// so that a Keycloak start line runs, and named in a warning.
const IGNORED_OPTIONS: &[&str] = &[
    "--features",
    "--features-disabled",
    "--proxy",
    "--proxy-headers",
    "--proxy-trusted-addresses",
    "--hostname-strict",
    "--hostname-strict-https",
    "--hostname-backchannel-dynamic",
    "--hostname-admin",
    "--http-enabled",
    "--http-host",
    "--health-enabled",
    "--metrics-enabled",
    "--cache",
    "--cache-stack",
    "--optimized",
    "--spi-theme-static-max-age",
    "--spi-theme-cache-themes",
    "--spi-theme-cache-templates",
];

/// Keycloak's database options: `portcullis` takes them as they are (on every command
/// that opens the store).
const DB_OPTIONS: &[&str] = &[
    "--db",
    "--db-url",
    "--db-username",
    "--db-password",
    "--db-url-host",
    "--db-url-port",
    "--db-url-database",
    "--db-url-properties",
    "--db-pool-max-size",
    "--db-schema",
];

/// Options that are flags in Keycloak (no value follows unless written `--opt=value`).
const IGNORED_FLAGS: &[&str] = &["--optimized", "--verbose"];

/// What `main` should do with a `kc.sh` command line.
#[derive(Debug, PartialEq, Eq)]
pub struct Translated {
    /// The `portcullis` arguments (without the program name).
    pub args: Vec<OsString>,
    /// Keycloak options that were accepted and ignored, for one warning line.
    pub ignored: Vec<String>,
}

/// Rewrite `kc.sh` arguments (without the program name) into `portcullis` arguments, or
/// explain why they cannot be.
pub fn translate(args: &[OsString]) -> Result<Translated, String> {
    let args: Vec<String> = args
        .iter()
        .map(|a| {
            a.to_str()
                .map(str::to_string)
                .ok_or_else(|| format!("argument {a:?} is not UTF-8"))
        })
        .collect::<Result<_, _>>()?;
    // Keycloak allows its global options (`--verbose`, `-v`) before the command.
    let mut ignored = Vec::new();
    let mut rest = args.as_slice();
    while let Some(first) = rest.first() {
        if first == "-v" || first == "--verbose" {
            ignored.push(first.clone());
            rest = &rest[1..];
        } else {
            break;
        }
    }
    let Some((command, options)) = rest.split_first() else {
        return Ok(Translated {
            args: vec!["help".into()],
            ignored,
        });
    };
    let mut out: Vec<String> = Vec::new();
    match command.as_str() {
        "start" | "start-dev" => {
            out.push("serve".into());
            serve_options(options, &mut out, &mut ignored)?;
        }
        "import" | "export" => {
            out.push(command.clone());
            transfer_options(command, options, &mut out)?;
        }
        "build" => {
            // Keycloak's build step optimises the Quarkus image; nothing to do here.
            return Ok(Translated {
                args: vec!["check-config".into()],
                ignored,
            });
        }
        "show-config" => out.push("check-config".into()),
        "-h" | "--help" | "help" => out.push("help".into()),
        "-V" | "--version" => out.push("--version".into()),
        // Our own commands (`serve`, `apply`, ...) pass through unchanged.
        _ => {
            out.push(command.clone());
            out.extend(options.iter().cloned());
        }
    }
    Ok(Translated {
        args: out.into_iter().map(OsString::from).collect(),
        ignored,
    })
}

/// Split `--name=value` or take the value from the next argument.
fn option_value<'a>(
    name: &str,
    inline: Option<&'a str>,
    it: &mut std::slice::Iter<'a, String>,
) -> Result<&'a str, String> {
    match inline {
        Some(v) => Ok(v),
        None => it
            .next()
            .map(String::as_str)
            .ok_or_else(|| format!("{name} needs a value")),
    }
}

fn split(arg: &str) -> (&str, Option<&str>) {
    match arg.split_once('=') {
        Some((n, v)) if n.starts_with("--") => (n, Some(v)),
        _ => (arg, None),
    }
}

fn serve_options(
    options: &[String],
    out: &mut Vec<String>,
    ignored: &mut Vec<String>,
) -> Result<(), String> {
    let mut it = options.iter();
    while let Some(arg) = it.next() {
        let (name, inline) = split(arg);
        match name {
            "--http-port" => {
                let port = port(name, option_value(name, inline, &mut it)?)?;
                out.extend(["--http".into(), format!("0.0.0.0:{port}")]);
            }
            "--https-port" => {
                let port = port(name, option_value(name, inline, &mut it)?)?;
                out.extend(["--https".into(), format!("0.0.0.0:{port}")]);
            }
            "--hostname" => {
                out.extend([
                    "--hostname".into(),
                    option_value(name, inline, &mut it)?.to_string(),
                ]);
            }
            "--import-realm" => out.push("--import-realm".into()),
            _ if DB_OPTIONS.contains(&name) => db_option(name, inline, &mut it, out)?,
            "--config" | "--data-dir" => {
                out.extend([
                    name.to_string(),
                    option_value(name, inline, &mut it)?.to_string(),
                ]);
            }
            _ if IGNORED_FLAGS.contains(&name) => ignored.push(name.to_string()),
            _ if IGNORED_OPTIONS.contains(&name) || name.starts_with("--spi-") => {
                // Only the name is repeated: the value may be a password (--db-password).
                option_value(name, inline, &mut it)?;
                ignored.push(name.to_string());
            }
            "--log-level" => {
                // Keycloak's levels are upper case; RUST_LOG takes the same words.
                let value = option_value(name, inline, &mut it)?;
                ignored.push(format!(
                    "{name}={value} (set RUST_LOG={} instead)",
                    value.to_ascii_lowercase()
                ));
            }
            other => {
                return Err(format!(
                "unknown option for start: {other} (supported: --http-port, --https-port, --db*, \
                     --hostname, --import-realm; see `portcullis serve --help`)"
            ))
            }
        }
    }
    Ok(())
}

/// A database option, passed on as `--name=value` (a password may start with `-`).
fn db_option<'a>(
    name: &str,
    inline: Option<&'a str>,
    it: &mut std::slice::Iter<'a, String>,
    out: &mut Vec<String>,
) -> Result<(), String> {
    let value = option_value(name, inline, it)?;
    out.push(format!("{name}={value}"));
    Ok(())
}

fn port(name: &str, value: &str) -> Result<u16, String> {
    value
        .parse::<u16>()
        .map_err(|_| format!("{name}: \"{value}\" is not a port number"))
}

fn transfer_options(
    command: &str,
    options: &[String],
    out: &mut Vec<String>,
) -> Result<(), String> {
    let mut it = options.iter();
    while let Some(arg) = it.next() {
        let (name, inline) = split(arg);
        match name {
            "--users" => {
                let value = option_value(name, inline, &mut it)?;
                // The seed writes `--users all` ("to include users in the export"); Keycloak
                // has no such value. Everything in the realm file is what it means.
                let value = match value {
                    "all" => "realm_file",
                    other => other,
                };
                out.extend(["--users".into(), value.to_string()]);
            }
            _ if DB_OPTIONS.contains(&name) => db_option(name, inline, &mut it, out)?,
            "--dir" | "--file" | "--realm" | "--users-per-file" | "--override" | "--config"
            | "--data-dir" => {
                out.extend([
                    name.to_string(),
                    option_value(name, inline, &mut it)?.to_string(),
                ]);
            }
            other => {
                return Err(format!(
                    "unknown option for {command}: {other} (see `portcullis {command} --help`)"
                ))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(args: &[&str]) -> Result<Vec<String>, String> {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        translate(&args).map(|t| {
            t.args
                .into_iter()
                .map(|a| a.into_string().unwrap())
                .collect()
        })
    }

    #[test]
    fn start_lines_of_the_seed_become_serve() {
        assert_eq!(t(&["start-dev"]).unwrap(), ["serve"]);
        assert_eq!(
            t(&["start-dev", "--import-realm"]).unwrap(),
            ["serve", "--import-realm"]
        );
        assert_eq!(
            t(&[
                "start",
                "--http-port=8081",
                "--https-port",
                "8444",
                "--hostname",
                "auth.example.com"
            ])
            .unwrap(),
            [
                "serve",
                "--http",
                "0.0.0.0:8081",
                "--https",
                "0.0.0.0:8444",
                "--hostname",
                "auth.example.com"
            ]
        );
        // The database options are honoured (never ignored: a node that kept a store of
        // its own would be a cluster of one), passed on whole.
        assert_eq!(
            t(&[
                "start",
                "--db",
                "postgres",
                "--db-url",
                "jdbc:postgresql://db/keycloak",
                "--db-password",
                "-starts-with-a-dash",
                "--db-username=kc"
            ])
            .unwrap(),
            [
                "serve",
                "--db=postgres",
                "--db-url=jdbc:postgresql://db/keycloak",
                "--db-password=-starts-with-a-dash",
                "--db-username=kc"
            ]
        );
        assert_eq!(
            t(&[
                "export",
                "--dir",
                "out",
                "--db",
                "postgres",
                "--db-url-host=pg"
            ])
            .unwrap(),
            [
                "export",
                "--dir",
                "out",
                "--db=postgres",
                "--db-url-host=pg"
            ]
        );
        let ignored = translate(&["start".into(), "--cache".into(), "ispn".into()]).unwrap();
        assert_eq!(ignored.args, [OsString::from("serve")]);
        assert_eq!(ignored.ignored, ["--cache"]);
        let secret = translate(&["start".into(), "--spi-x-y-password=hunter2".into()]).unwrap();
        assert_eq!(
            secret.ignored,
            ["--spi-x-y-password"],
            "values are never echoed"
        );
        assert!(t(&["start", "--http-port", "x"])
            .unwrap_err()
            .contains("not a port"));
        assert!(t(&["start", "--bogus"]).unwrap_err().contains("--bogus"));
        assert!(t(&["start", "--http-port"])
            .unwrap_err()
            .contains("needs a value"));
    }

    #[test]
    fn import_and_export_keep_their_options() {
        assert_eq!(
            t(&["import", "--file", "/opt/keycloak/data/import/myrealm.json"]).unwrap(),
            ["import", "--file", "/opt/keycloak/data/import/myrealm.json"]
        );
        assert_eq!(
            t(&[
                "export",
                "--dir",
                "/x",
                "--realm",
                "r",
                "--users",
                "realm_file"
            ])
            .unwrap(),
            [
                "export",
                "--dir",
                "/x",
                "--realm",
                "r",
                "--users",
                "realm_file"
            ]
        );
        assert_eq!(
            t(&["export", "--dir=/x", "--realm=r", "--users=all"]).unwrap(),
            [
                "export",
                "--dir",
                "/x",
                "--realm",
                "r",
                "--users",
                "realm_file"
            ]
        );
        assert!(t(&["import", "--bogus", "1"])
            .unwrap_err()
            .contains("--bogus"));
    }

    #[test]
    fn our_own_commands_pass_through() {
        assert_eq!(
            t(&["serve", "--http", "x"]).unwrap(),
            ["serve", "--http", "x"]
        );
        assert_eq!(t(&["-v", "start-dev"]).unwrap(), ["serve"]);
        assert_eq!(t(&[]).unwrap(), ["help"]);
    }
}
