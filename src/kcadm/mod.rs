//! `kcadm.sh`: Keycloak's admin CLI, answered by this binary when it runs under that name
//! (or as `portcullis kcadm`). Like Keycloak's, it is an HTTP client of the admin REST API
//! (so it works against a remote Portcullis and against Keycloak itself): `config
//! credentials` logs in and keeps tokens in `~/.keycloak/kcadm.config`; `create`, `get`,
//! `update`, `delete` send requests built from `-s NAME=VALUE`, `-f FILE` or `-b BODY`;
//! `set-password`, `add-roles`, `remove-roles` and `get-roles` look users, groups, clients and
//! roles up first. Texts, exit codes (0 done, 1 failed, 2 bad usage) and output formats follow
//! Keycloak's kcadm; the few leniencies for the seed guides' commands are in the README.

mod commands;
mod config;
pub mod fields;
mod http;
pub mod json;
mod roles;
mod session;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use session::{AuthOptions, TargetOptions};

/// Why a command failed; `usage` failures exit 2 and point at `--help`.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub usage: bool,
}

impl Failure {
    pub fn run(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            usage: false,
        }
    }

    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            usage: true,
        }
    }
}

const ABOUT: &str = "Keycloak Admin CLI

Use 'kcadm.sh config credentials' command with username and password to start a session against a specific
server and realm.

For example:

  $ kcadm.sh config credentials --server http://localhost:8080 --realm master --user admin
  Enter password: 
  Logging into http://localhost:8080 as user admin of realm master

Any configured username can be used for login, but to perform admin operations the user
needs proper roles, otherwise operations will fail.";

const ATTRIBUTES: &str = "Set a specific attribute NAME to a specified value VALUE.

Nested attributes are supported by using '.' to separate components of a KEY. Optionally, the KEY
components can be quoted with double quotes - e.g. my_client.attributes.\"external.user.id\". If VALUE
starts with '[' or '{' (or is a number, true, false or null) it is parsed as JSON, otherwise as a
string. Use NAME[N]=VALUE to set an element of a list, and NAME+=VALUE to append to one.";

#[derive(Parser)]
#[command(
    name = "kcadm.sh",
    about = ABOUT,
    disable_help_flag = true,
    arg_required_else_help = true,
    after_help = "Use 'kcadm.sh help <command>' for more information about a given command."
)]
struct Kcadm {
    /// Print help for specific command
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Set up credentials, and other configuration settings using the config file
    #[command(subcommand, disable_help_flag = true, arg_required_else_help = true)]
    Config(ConfigCmd),
    /// Create new resource
    #[command(disable_help_flag = true, after_help = CREATE_EXAMPLES)]
    Create(CreateArgs),
    /// Get a resource
    #[command(disable_help_flag = true, after_help = GET_EXAMPLES)]
    Get(GetArgs),
    /// Update a resource
    #[command(disable_help_flag = true, after_help = UPDATE_EXAMPLES)]
    Update(UpdateArgs),
    /// Delete a resource
    #[command(disable_help_flag = true, after_help = DELETE_EXAMPLES)]
    Delete(DeleteArgs),
    /// List roles for a user or a group
    #[command(disable_help_flag = true, after_help = GET_ROLES_EXAMPLES)]
    GetRoles(roles::GetRolesArgs),
    /// Add role to a user or a group
    #[command(disable_help_flag = true, after_help = ADD_ROLES_EXAMPLES)]
    AddRoles(roles::RolesArgs),
    /// Remove role from a user or a group
    #[command(disable_help_flag = true, after_help = REMOVE_ROLES_EXAMPLES)]
    RemoveRoles(roles::RolesArgs),
    /// Re-set password for a user
    #[command(disable_help_flag = true, after_help = SET_PASSWORD_EXAMPLES)]
    SetPassword(SetPasswordArgs),
}

#[derive(Subcommand)]
enum ConfigCmd {
    /// Log in and keep the tokens in the config file
    #[command(disable_help_flag = true, after_help = CREDENTIALS_EXAMPLES)]
    Credentials {
        #[command(flatten)]
        auth: AuthOptions,
        /// Print whether a session is stored and how long its token lives
        #[arg(long)]
        status: bool,
        #[arg(long, action = clap::ArgAction::Help)]
        help: Option<bool>,
    },
    /// Set the trust store (PEM certificates) for https servers in the config file
    #[command(disable_help_flag = true)]
    Truststore {
        /// PEM file of trusted certificates
        truststore: Option<std::path::PathBuf>,
        /// Remove the trust store from the config file
        #[arg(short = 'd', long)]
        delete: bool,
        /// Accepted for compatibility (PEM files have no password)
        #[arg(long)]
        trustpass: Option<String>,
        /// Path to the config file (~/.keycloak/kcadm.config by default)
        #[arg(long)]
        config: Option<std::path::PathBuf>,
        #[arg(long, action = clap::ArgAction::Help)]
        help: Option<bool>,
    },
}

/// What `create`, `get`, `update` and `delete` share.
#[derive(Args, Debug, Clone)]
struct RequestArgs {
    /// The resource, relative to the realm (users, clients/ID/roles), or realms/..., serverinfo, or an absolute URL
    #[arg(value_name = "ENDPOINT_URI")]
    uri: Option<String>,
    /// Set a specific attribute NAME to a specified value VALUE
    #[arg(short = 's', long = "set", value_name = "NAME=VALUE", long_help = ATTRIBUTES)]
    set: Vec<String>,
    /// Remove a specific attribute NAME from the JSON request body
    #[arg(short = 'd', long = "delete", value_name = "NAME")]
    delete: Vec<String>,
    /// Add to the request URI a NAME query parameter with value VALUE
    #[arg(short = 'q', long = "query", value_name = "NAME=VALUE")]
    query: Vec<String>,
    /// Set request header NAME to VALUE
    #[arg(short = 'h', long = "header", value_name = "NAME=VALUE")]
    header: Vec<String>,
    /// Read object from file or standard input if FILENAME is set to '-'
    #[arg(short = 'f', long = "file", value_name = "FILENAME")]
    file: Option<String>,
    /// Set request body to the given CONTENT
    #[arg(
        short = 'b',
        long = "body",
        value_name = "CONTENT",
        allow_hyphen_values = true
    )]
    body: Option<String>,
    /// A pattern specifying which attributes of JSON response body to actually display as result
    #[arg(short = 'F', long = "fields", value_name = "FILTER")]
    fields: Option<String>,
    /// Print response headers
    #[arg(short = 'H', long = "print-headers")]
    print_headers: bool,
    /// Don't pretty print the output
    #[arg(short = 'c', long = "compressed")]
    compressed: bool,
    #[command(flatten)]
    target: TargetOptions,
    #[command(flatten)]
    auth: AuthOptions,
    /// Print help for this command
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
}

#[derive(Args, Debug, Clone)]
struct CreateArgs {
    #[command(flatten)]
    request: RequestArgs,
    /// After creating, output the new resource to standard output
    #[arg(short = 'o', long = "output")]
    output: bool,
    /// After creating, only print the id of the new resource to standard output
    #[arg(short = 'i', long = "id")]
    id: bool,
}

#[derive(Args, Debug, Clone)]
struct DeleteArgs {
    #[command(flatten)]
    request: RequestArgs,
    /// Output the response body to standard output
    #[arg(short = 'o', long = "output")]
    output: bool,
}

#[derive(Args, Debug, Clone)]
struct UpdateArgs {
    #[command(flatten)]
    request: RequestArgs,
    /// After update output the new resource to standard output
    #[arg(short = 'o', long = "output")]
    output: bool,
    /// Merge new values with existing configuration on the server (the default with -s and no -f)
    #[arg(short = 'm', long = "merge")]
    merge: bool,
    /// Don't merge new values with existing configuration on the server
    #[arg(short = 'n', long = "no-merge")]
    no_merge: bool,
}

#[derive(Args, Debug, Clone)]
struct GetArgs {
    #[command(flatten)]
    request: RequestArgs,
    /// Set paging offset (the 'first' query parameter)
    #[arg(short = 'o', long = "offset")]
    offset: Option<u32>,
    /// Set limit to number of items in result (the 'max' query parameter)
    #[arg(short = 'l', long = "limit")]
    limit: Option<u32>,
    /// Set output format to comma-separated-values by using 'csv'. Default format is 'json'
    #[arg(long = "format", default_value = "json")]
    format: String,
    /// By default string values in CSV output format are quoted. Use this to omit the quotes
    #[arg(long = "noquotes")]
    noquotes: bool,
}

#[derive(Args, Debug, Clone)]
struct SetPasswordArgs {
    /// Identify target user by 'username'
    #[arg(long, value_name = "USERNAME")]
    username: Option<String>,
    /// Identify target user by 'id'
    #[arg(long, value_name = "ID")]
    userid: Option<String>,
    /// New password to set (prompted for, or KC_CLI_PASSWORD, when not given)
    #[arg(
        short = 'p',
        long = "new-password",
        value_name = "PASSWORD",
        allow_hyphen_values = true
    )]
    new_password: Option<String>,
    /// Make the password temporary: the user changes it at the next login
    #[arg(short = 't', long, num_args = 0..=1, default_missing_value = "true", require_equals = true, value_name = "true|false")]
    temporary: Option<bool>,
    #[command(flatten)]
    target: TargetOptions,
    #[command(flatten)]
    auth: AuthOptions,
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
}

const CREDENTIALS_EXAMPLES: &str = "Examples:

Login as 'admin' user of 'master' realm to a local Keycloak server running on default port.
You will be prompted for a password:
  $ kcadm.sh config credentials --server http://localhost:8080 --realm master --user admin

Login to Keycloak server at non-default endpoint passing the password via standard input:
  $ echo 'admin' | kcadm.sh config credentials --server http://localhost:9080 --realm master --user admin

Authenticate as a service account of client 'reg-cli' in realm 'demorealm':
  $ kcadm.sh config credentials --server http://localhost:8080 --realm demorealm --client reg-cli --secret SECRET

Use 'kcadm.sh help' for general information and a list of commands";

const CREATE_EXAMPLES: &str = "Examples:

Create a new realm:
  $ kcadm.sh create realms -s realm=demorealm -s enabled=true

Create a user and set a password (the seed's commands):
  $ kcadm.sh create users -r demorealm -s username=jane -s enabled=true
  $ kcadm.sh set-password -r demorealm --username jane --new-password \"SecurePass!123\"

Create a client:
  $ kcadm.sh create clients -r demorealm -s clientId=my-cli-client -s enabled=true -s publicClient=false \\
      -s 'redirectUris=[\"http://localhost:3000/*\"]' -s 'webOrigins=[\"http://localhost:3000\"]'

Create a realm role and a client role:
  $ kcadm.sh create roles -r demorealm -s name=auditor -s description=\"Can view reports\"
  $ kcadm.sh create clients/CLIENT_ID/roles -r demorealm -s name=external-api

Create an identity provider:
  $ kcadm.sh create identity-provider/instances -r demorealm -s alias=github -s providerId=github \\
      -s enabled=true -s config.clientId=ID -s config.clientSecret=SECRET

Create from a file, printing only the new id:
  $ kcadm.sh create clients -r demorealm -f my_client.json -i

Use 'kcadm.sh help' for general information and a list of commands";

const GET_EXAMPLES: &str = "Examples:

Get all realms, displaying only some of their attributes:
  $ kcadm.sh get realms --fields id,realm,enabled

Get a realm (the seed's export by the admin API):
  $ kcadm.sh get realms/demorealm > demorealm.json

Get users, as comma separated values:
  $ kcadm.sh get users -r demorealm --fields username,email --format csv --noquotes

Get clients with their protocol mappers' ids and config only:
  $ kcadm.sh get clients -r demorealm --fields 'clientId,protocolMappers(id,config)'

Page through users:
  $ kcadm.sh get users -r demorealm --offset 20 --limit 10 -q search=jane

Use 'kcadm.sh help' for general information and a list of commands";

const UPDATE_EXAMPLES: &str = "Examples:

Require the user to configure TOTP at the next login (the seed's command):
  $ kcadm.sh update users/USER_ID -r demorealm -s 'requiredActions=[\"CONFIGURE_TOTP\"]'

Update a realm attribute:
  $ kcadm.sh update realms/demorealm -s registrationAllowed=true

Replace a client by the one in a file (no merge with the server's copy):
  $ kcadm.sh update clients/ID -r demorealm -f my_client.json -n

Use 'kcadm.sh help' for general information and a list of commands";

const DELETE_EXAMPLES: &str = "Examples:

Delete a realm:
  $ kcadm.sh delete realms/demorealm

Delete a user:
  $ kcadm.sh delete users/USER_ID -r demorealm

Use 'kcadm.sh help' for general information and a list of commands";

const SET_PASSWORD_EXAMPLES: &str = "Examples:

Set a password (the seed's command):
  $ kcadm.sh set-password -r demorealm --username jane --new-password \"SecurePassword123!\" --temporary=false

Set a temporary password, prompted for:
  $ kcadm.sh set-password -r demorealm --username jane --temporary

Use 'kcadm.sh help' for general information and a list of commands";

const GET_ROLES_EXAMPLES: &str = "Examples:

Get all realm roles:
  $ kcadm.sh get-roles -r demorealm

Get the realm roles of a user, and the ones they have through composites and groups:
  $ kcadm.sh get-roles -r demorealm --uusername jane
  $ kcadm.sh get-roles -r demorealm --uusername jane --effective

Get the client roles of a user that could still be granted:
  $ kcadm.sh get-roles -r demorealm --uusername jane --cclientid realm-management --available

Use 'kcadm.sh help' for general information and a list of commands";

const ADD_ROLES_EXAMPLES: &str = "Examples:

Grant a realm role and two client roles to a user:
  $ kcadm.sh add-roles -r demorealm --uusername jane --rolename auditor
  $ kcadm.sh add-roles -r demorealm --uusername jane --cclientid realm-management --rolename manage-users --rolename view-users

Grant a role to a group, or make a role composite:
  $ kcadm.sh add-roles -r demorealm --gname staff --rolename auditor
  $ kcadm.sh add-roles -r demorealm --rname auditor --rolename reader

Use 'kcadm.sh help' for general information and a list of commands";

const REMOVE_ROLES_EXAMPLES: &str = "Examples:

Revoke a realm role from a user:
  $ kcadm.sh remove-roles -r demorealm --uusername jane --rolename auditor

Use 'kcadm.sh help' for general information and a list of commands";

/// Run kcadm with these arguments (without the program name).
pub fn main(args: &[OsString]) -> ExitCode {
    let argv = std::iter::once(OsString::from("kcadm.sh")).chain(args.iter().cloned());
    let matches = match Kcadm::command().try_get_matches_from(argv) {
        Ok(m) => m,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
        }
    };
    let (name, sub) = match matches.subcommand() {
        // `config credentials`, `config truststore`: the hint names the whole command.
        Some((name, sub)) => match sub.subcommand_name() {
            Some(inner) => (format!("{name} {inner}"), sub.clone()),
            None => (name.to_string(), sub.clone()),
        },
        None => (String::new(), matches.clone()),
    };
    let cli = match Kcadm::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(2);
        }
    };
    match run(cli.command, &sub) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("{}", f.message);
            if f.usage {
                eprintln!(
                    "Try 'kcadm.sh {name} --help' for more information on the available options."
                );
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}

/// `--format json|csv` (any case): whether it is CSV.
fn is_csv(format: &str) -> Result<bool, Failure> {
    match format.to_ascii_lowercase().as_str() {
        "json" => Ok(false),
        "csv" => Ok(true),
        _ => Err(Failure::usage(format!(
            "Unsupported output format: {format}"
        ))),
    }
}

/// `-s` and `-d` in the order given on the command line.
fn ordered_ops(m: &ArgMatches) -> Result<Vec<json::AttrOp>, Failure> {
    let mut ops: Vec<(usize, json::AttrOp)> = Vec::new();
    for (id, parse) in [
        (
            "set",
            json::parse_set as fn(&str) -> Result<json::AttrOp, String>,
        ),
        ("delete", json::parse_delete),
    ] {
        let (Some(values), Some(indices)) = (m.get_many::<String>(id), m.indices_of(id)) else {
            continue;
        };
        for (v, i) in values.zip(indices) {
            let op = parse(v).map_err(|e| {
                if e.starts_with("Invalid key=value") {
                    Failure::usage(e)
                } else {
                    Failure::run(e)
                }
            })?;
            ops.push((i, op));
        }
    }
    ops.sort_by_key(|(i, _)| *i);
    Ok(ops.into_iter().map(|(_, op)| op).collect())
}

fn run(command: Cmd, m: &ArgMatches) -> Result<(), Failure> {
    use commands::{Verb, Want};
    match command {
        Cmd::Config(ConfigCmd::Credentials { auth, status, .. }) => {
            session::config_credentials(&auth, status)
        }
        Cmd::Config(ConfigCmd::Truststore {
            truststore,
            delete,
            trustpass,
            config,
            ..
        }) => commands::config_truststore(truststore, delete, trustpass, config),
        Cmd::Create(a) => {
            if a.output && a.id {
                return Err(Failure::usage("Options -o and -i are mutually exclusive"));
            }
            commands::request(
                Verb::Post,
                &a.request,
                ordered_ops(m)?,
                Want {
                    output: a.output,
                    id_only: a.id,
                    ..Want::default()
                },
            )
        }
        Cmd::Get(a) => {
            let csv = is_csv(&a.format)?;
            commands::request(
                Verb::Get,
                &a.request,
                ordered_ops(m)?,
                Want {
                    output: true,
                    offset: a.offset,
                    limit: a.limit,
                    csv,
                    noquotes: a.noquotes,
                    ..Want::default()
                },
            )
        }
        Cmd::Update(a) => {
            if a.merge && a.no_merge {
                return Err(Failure::usage(
                    "Options --merge and --no-merge are mutually exclusive",
                ));
            }
            let ops = ordered_ops(m)?;
            let merge = a.merge || (a.request.file.is_none() && !ops.is_empty() && !a.no_merge);
            commands::request(
                Verb::Put,
                &a.request,
                ops,
                Want {
                    output: a.output,
                    merge,
                    ..Want::default()
                },
            )
        }
        Cmd::Delete(a) => commands::request(
            Verb::Delete,
            &a.request,
            ordered_ops(m)?,
            Want {
                output: a.output,
                ..Want::default()
            },
        ),
        Cmd::SetPassword(a) => commands::set_password(&a),
        Cmd::AddRoles(a) => roles::change(&a, true),
        Cmd::RemoveRoles(a) => roles::change(&a, false),
        Cmd::GetRoles(a) => roles::get(&a),
    }
}
