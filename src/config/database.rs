//! Keycloak's database options (`--db`, `--db-url`, `--db-username`, ... or their
//! `KC_DB*` environment variables) on the store: `--db postgres` with a JDBC URL (or its
//! parts) puts the store on that PostgreSQL database, `--db dev-file` on the embedded one.
//! They win over `[store]` of the file, as Keycloak's command line wins over its
//! `keycloak.conf`. A Keycloak administrator's `kc.sh start --db postgres --db-url
//! jdbc:postgresql://db/keycloak ...` therefore starts nodes that share the database; an
//! option we cannot honour is refused, never ignored (nodes that silently kept stores of
//! their own would each be a cluster of one).

use std::time::Duration;

use crate::store::postgres::PgOptions;

use super::{ConfigError, StoreConfig};

/// The values given (command line or environment), unchecked.
#[derive(Clone, Default)]
pub struct DatabaseOverride {
    /// `--db`: `postgres`, or `dev-file` / `dev-mem` for the embedded store.
    pub kind: Option<String>,
    /// `--db-url`: `jdbc:postgresql://host[:port]/database[?properties]` (or a
    /// `postgres://` URL).
    pub url: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    /// `--db-url-host`, `--db-url-port`, `--db-url-database`, `--db-url-properties`: the
    /// URL in parts, when `--db-url` is not given (Keycloak's defaults: localhost, 5432,
    /// `keycloak`).
    pub host: Option<String>,
    pub port: Option<String>,
    pub database: Option<String>,
    pub properties: Option<String>,
    /// `--db-pool-max-size`: connections per node.
    pub pool_max_size: Option<String>,
    /// `--db-schema`: the schema the tables live in (it must exist; default `public`).
    pub schema: Option<String>,
}

// Never prints the password (nor the URL, which may hold one).
impl std::fmt::Debug for DatabaseOverride {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseOverride")
            .field("kind", &self.kind)
            .field("host", &self.host)
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

impl DatabaseOverride {
    pub fn is_empty(&self) -> bool {
        self.kind.is_none() && self.first_connection_option().is_none()
    }

    /// Put `store` where these options say.
    pub(super) fn apply(&self, store: &mut StoreConfig) -> Result<(), ConfigError> {
        if self.is_empty() {
            return Ok(());
        }
        match self.kind.as_deref() {
            Some("postgres") => {}
            Some("dev-file" | "dev-mem") => {
                if let Some(flag) = self.first_connection_option() {
                    return Err(bad(flag, "is only used with --db postgres".into()));
                }
                store.postgres = None;
                return Ok(());
            }
            Some(other) => {
                return Err(bad(
                    "--db",
                    format!(
                        "\"{other}\" is not supported: use postgres, or dev-file for the \
                         embedded store"
                    ),
                ))
            }
            None => {
                let flag = self
                    .first_connection_option()
                    .unwrap_or("--db-pool-max-size");
                return Err(bad(flag, "needs --db postgres (KC_DB=postgres)".into()));
            }
        }
        let url = self.postgres_url()?;
        crate::store::postgres::check_url(&url).map_err(|e| bad("--db-url", e))?;
        let pool_size = match &self.pool_max_size {
            None => None,
            Some(v) => Some(
                v.parse::<usize>()
                    .ok()
                    .filter(|n| (1..=1024).contains(n))
                    .ok_or_else(|| {
                        bad(
                            "--db-pool-max-size",
                            format!("\"{v}\" is not a number from 1 to 1024"),
                        )
                    })?,
            ),
        };
        let old = store.postgres.take();
        store.postgres = Some(PgOptions {
            url,
            pool_size: pool_size
                .or(old.as_ref().map(|o| o.pool_size))
                .unwrap_or(16),
            ca_file: old.as_ref().and_then(|o| o.ca_file.clone()),
            query_timeout: old
                .as_ref()
                .map_or(Duration::from_secs(5), |o| o.query_timeout),
        });
        Ok(())
    }

    fn first_connection_option(&self) -> Option<&'static str> {
        [
            (&self.url, "--db-url"),
            (&self.username, "--db-username"),
            (&self.password, "--db-password"),
            (&self.host, "--db-url-host"),
            (&self.port, "--db-url-port"),
            (&self.database, "--db-url-database"),
            (&self.properties, "--db-url-properties"),
            (&self.pool_max_size, "--db-pool-max-size"),
            (&self.schema, "--db-schema"),
        ]
        .into_iter()
        .find_map(|(v, flag)| v.as_ref().map(|_| flag))
    }

    /// The `postgres://` URL these options name, user and password included.
    fn postgres_url(&self) -> Result<String, ConfigError> {
        let (mut url, properties) = match &self.url {
            Some(given) => {
                for (part, flag) in [
                    (&self.host, "--db-url-host"),
                    (&self.port, "--db-url-port"),
                    (&self.database, "--db-url-database"),
                    (&self.properties, "--db-url-properties"),
                ] {
                    if part.is_some() {
                        return Err(bad(flag, "cannot be combined with --db-url".into()));
                    }
                }
                parse_url(given)?
            }
            None => {
                let host = self.host.as_deref().unwrap_or("localhost");
                let port = self.port.as_deref().unwrap_or("5432");
                if port.parse::<u16>().is_err() {
                    return Err(bad("--db-url-port", format!("\"{port}\" is not a port")));
                }
                let database = self.database.as_deref().unwrap_or("keycloak");
                let mut url = url::Url::parse("postgres://localhost/")
                    .map_err(|e| bad("--db-url-host", e.to_string()))?;
                url.set_host(Some(host))
                    .map_err(|e| bad("--db-url-host", format!("\"{host}\": {e}")))?;
                url.set_port(port.parse().ok())
                    .map_err(|()| bad("--db-url-port", "cannot be set".into()))?;
                url.set_path(database);
                let properties = self
                    .properties
                    .as_deref()
                    .unwrap_or("")
                    .trim_start_matches('?')
                    .to_string();
                (url, properties)
            }
        };
        let mut query = Vec::new();
        let (mut user, mut password) = (None, None);
        // Decoded as pgjdbc decodes them (`URLDecoder`: `%XX`, and `+` is a space).
        for (key, value) in url::form_urlencoded::parse(properties.as_bytes()) {
            let value = value.into_owned();
            match key.as_ref() {
                // JDBC takes the credentials as properties too; the options win.
                "user" => user = Some(value),
                "password" => password = Some(value),
                key => {
                    if let Some(kept) = jdbc_property(key, &value)? {
                        query.push(kept);
                    }
                }
            }
        }
        let user = self.username.clone().or(user);
        let password = self.password.clone().or(password);
        if let Some(schema) = &self.schema {
            let identifier = schema
                .chars()
                .enumerate()
                .all(|(i, c)| c == '_' || c.is_ascii_lowercase() || (i > 0 && c.is_ascii_digit()));
            if schema.is_empty() || !identifier {
                return Err(bad(
                    "--db-schema",
                    format!("\"{schema}\" is not a lower-case SQL identifier"),
                ));
            }
            query.push(("options".into(), format!("-csearch_path={schema}")));
        }
        if let Some(user) = &user {
            url.set_username(user)
                .map_err(|()| bad("--db-username", "cannot be set on this URL".into()))?;
        }
        if let Some(password) = &password {
            url.set_password(Some(password))
                .map_err(|()| bad("--db-password", "cannot be set on this URL".into()))?;
        }
        url.set_query(None);
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in &query {
                pairs.append_pair(k, v);
            }
        }
        Ok(url.to_string())
    }
}

fn bad(flag: &str, message: String) -> ConfigError {
    ConfigError::Override {
        flag: flag.into(),
        message,
    }
}

/// `jdbc:postgresql://host[:port]/database[?properties]` (or `postgres(ql)://...`) as a
/// URL without its query, and the query. The error never repeats the URL (it may hold a
/// password).
fn parse_url(given: &str) -> Result<(url::Url, String), ConfigError> {
    let rest = given.strip_prefix("jdbc:").unwrap_or(given);
    let rest = if let Some(r) = rest.strip_prefix("postgresql://") {
        format!("postgres://{r}")
    } else if rest.starts_with("postgres://") {
        rest.to_string()
    } else {
        return Err(bad(
            "--db-url",
            "must be jdbc:postgresql://HOST[:PORT]/DATABASE (the database must be PostgreSQL)"
                .into(),
        ));
    };
    let url =
        url::Url::parse(&rest).map_err(|e| bad("--db-url", format!("is not a valid URL ({e})")))?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("--db-url", "names no host".into()));
    }
    let query = url.query().unwrap_or("").to_string();
    Ok((url, query))
}

/// A JDBC connection property as what the driver takes (`None`: nothing to pass on).
fn jdbc_property(key: &str, value: &str) -> Result<Option<(String, String)>, ConfigError> {
    let kept = |k: &str, v: &str| Ok(Some((k.to_string(), v.to_string())));
    match key {
        // TLS is always verified (certificate and host name), so every mode that asks for
        // TLS means "require it"; `prefer`/`allow` still try TLS first.
        "sslmode" => match value {
            "disable" => kept("sslmode", "disable"),
            "allow" | "prefer" => kept("sslmode", "prefer"),
            "require" | "verify-ca" | "verify-full" => kept("sslmode", "require"),
            other => Err(bad(
                "--db-url",
                format!("sslmode \"{other}\" is not one of disable, prefer, require, verify-ca, verify-full"),
            )),
        },
        "ssl" => match value {
            "true" | "" => kept("sslmode", "require"),
            "false" => Ok(None),
            other => Err(bad("--db-url", format!("ssl \"{other}\" is not true or false"))),
        },
        "connectTimeout" => kept("connect_timeout", value),
        "ApplicationName" | "applicationName" => kept("application_name", value),
        "sslrootcert" => Err(bad(
            "--db-url",
            "sslrootcert: set store.ca_file in the configuration file instead".into(),
        )),
        other => Err(bad(
            "--db-url",
            format!(
                "the connection property \"{other}\" is not supported (supported: user, \
                 password, sslmode, ssl, connectTimeout, ApplicationName)"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> StoreConfig {
        StoreConfig {
            data_dir: "data".into(),
            min_free_space_mb: 64,
            postgres: None,
        }
    }

    fn url_of(o: DatabaseOverride) -> Result<String, String> {
        let mut s = store();
        o.apply(&mut s).map_err(|e| e.to_string())?;
        Ok(s.postgres.map(|p| p.url).unwrap_or_default())
    }

    fn pg(url: &str) -> DatabaseOverride {
        DatabaseOverride {
            kind: Some("postgres".into()),
            url: Some(url.into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_jdbc_url_with_user_and_password_becomes_the_store_url() {
        let o = DatabaseOverride {
            username: Some("keycloak".into()),
            password: Some("p@ss:w/rd".into()),
            ..pg("jdbc:postgresql://db.internal:6432/keycloak?ssl=true&ApplicationName=kc")
        };
        let url = url_of(o).unwrap();
        assert_eq!(
            url,
            "postgres://keycloak:p%40ss%3Aw%2Frd@db.internal:6432/keycloak?sslmode=require&application_name=kc"
        );
        let config: tokio_postgres::Config = url.parse().unwrap();
        assert_eq!(config.get_password(), Some(&b"p@ss:w/rd"[..]));
        assert_eq!(config.get_dbname(), Some("keycloak"));
    }

    #[test]
    fn credentials_may_be_jdbc_properties_and_the_options_win() {
        let url = url_of(pg(
            "jdbc:postgresql://db/kc?user=kc&password=s%26cret&sslmode=require",
        ))
        .unwrap();
        assert_eq!(url, "postgres://kc:s&cret@db/kc?sslmode=require");
        let config: tokio_postgres::Config = url.parse().unwrap();
        assert_eq!(config.get_user(), Some("kc"));
        assert_eq!(config.get_password(), Some(&b"s&cret"[..]));
        let o = DatabaseOverride {
            username: Some("admin".into()),
            ..pg("jdbc:postgresql://db/kc?user=kc")
        };
        assert_eq!(url_of(o).unwrap(), "postgres://admin@db/kc");
    }

    #[test]
    fn the_url_in_parts_takes_keycloaks_defaults() {
        let o = DatabaseOverride {
            kind: Some("postgres".into()),
            host: Some("pg".into()),
            ..Default::default()
        };
        assert_eq!(url_of(o).unwrap(), "postgres://pg:5432/keycloak");
        let o = DatabaseOverride {
            kind: Some("postgres".into()),
            port: Some("15432".into()),
            database: Some("iam".into()),
            properties: Some("?sslmode=verify-full".into()),
            pool_max_size: Some("40".into()),
            ..Default::default()
        };
        let mut s = store();
        o.apply(&mut s).unwrap();
        let options = s.postgres.unwrap();
        assert_eq!(
            options.url,
            "postgres://localhost:15432/iam?sslmode=require"
        );
        assert_eq!(options.pool_size, 40);
        let o = DatabaseOverride {
            schema: Some("iam_2".into()),
            ..pg("jdbc:postgresql://db/kc")
        };
        let url = url_of(o).unwrap();
        let config: tokio_postgres::Config = url.parse().unwrap();
        assert_eq!(config.get_options(), Some("-csearch_path=iam_2"));
    }

    #[test]
    fn the_file_keeps_what_the_options_do_not_say() {
        let mut s = store();
        s.postgres = Some(PgOptions {
            url: "postgres://old/db".into(),
            pool_size: 7,
            ca_file: Some("/etc/ca.pem".into()),
            query_timeout: Duration::from_secs(9),
        });
        pg("jdbc:postgresql://new/db").apply(&mut s).unwrap();
        let pg = s.postgres.unwrap();
        assert_eq!(pg.url, "postgres://new/db");
        assert_eq!(pg.pool_size, 7);
        assert_eq!(
            pg.ca_file.as_deref(),
            Some(std::path::Path::new("/etc/ca.pem"))
        );
        assert_eq!(pg.query_timeout, Duration::from_secs(9));
        // dev-file: the embedded store, whatever the file said.
        let mut s = store();
        s.postgres = Some(PgOptions {
            url: "postgres://old/db".into(),
            pool_size: 7,
            ca_file: None,
            query_timeout: Duration::from_secs(9),
        });
        DatabaseOverride {
            kind: Some("dev-file".into()),
            ..Default::default()
        }
        .apply(&mut s)
        .unwrap();
        assert!(s.postgres.is_none());
        // Nothing given: the file decides.
        let mut s = store();
        DatabaseOverride::default().apply(&mut s).unwrap();
        assert!(s.postgres.is_none());
    }

    #[test]
    fn what_cannot_be_honoured_is_refused_naming_the_option_and_never_the_password() {
        let cases: Vec<(DatabaseOverride, &str, &str)> = vec![
            (
                DatabaseOverride {
                    kind: Some("mysql".into()),
                    ..Default::default()
                },
                "--db",
                "not supported",
            ),
            (
                DatabaseOverride {
                    url: Some("jdbc:postgresql://db/kc".into()),
                    ..Default::default()
                },
                "--db-url",
                "needs --db postgres",
            ),
            (
                DatabaseOverride {
                    kind: Some("dev-file".into()),
                    host: Some("db".into()),
                    ..Default::default()
                },
                "--db-url-host",
                "only used with --db postgres",
            ),
            (pg("jdbc:mysql://db/kc"), "--db-url", "PostgreSQL"),
            (
                pg("jdbc:postgresql://db/kc?currentSchema=x"),
                "--db-url",
                "currentSchema",
            ),
            (
                pg("jdbc:postgresql://db/kc?sslmode=sometimes"),
                "--db-url",
                "sslmode",
            ),
            (
                DatabaseOverride {
                    host: Some("db".into()),
                    ..pg("jdbc:postgresql://db/kc")
                },
                "--db-url-host",
                "cannot be combined",
            ),
            (
                DatabaseOverride {
                    schema: Some("x; DROP TABLE users".into()),
                    ..pg("jdbc:postgresql://db/kc")
                },
                "--db-schema",
                "identifier",
            ),
            (
                DatabaseOverride {
                    pool_max_size: Some("0".into()),
                    ..pg("jdbc:postgresql://db/kc")
                },
                "--db-pool-max-size",
                "1 to 1024",
            ),
        ];
        for (o, flag, says) in cases {
            // A password beside every PostgreSQL case: no error may repeat it.
            let o = if o.kind.as_deref() == Some("postgres") {
                DatabaseOverride {
                    password: Some("s3cret-pw".into()),
                    ..o
                }
            } else {
                o
            };
            let e = url_of(o.clone()).expect_err(&format!("{o:?} was accepted"));
            assert!(e.contains(flag) && e.contains(says), "{o:?}: {e}");
            assert!(!e.contains("s3cret-pw"), "{e}");
        }
    }
}
