//! `add-roles`, `remove-roles` and `get-roles`: users, groups and composite roles named by
//! name or id, realm roles or a client's (`--cclientid` / `--cid`), looked up as kcadm does
//! before the role-mapping request.

use clap::Args;
use reqwest::Method;
use serde_json::Value;

use super::commands::{find_one, id_of, user_id, Verb, Want};
use super::session::{AuthOptions, Session, TargetOptions};
use super::{Failure, RequestArgs};

/// Whose roles: a user, a group or a composite role, and whose client's roles.
#[derive(Args, Debug, Clone, Default)]
pub(super) struct Selectors {
    /// Target user by 'username'
    #[arg(long, value_name = "USERNAME")]
    uusername: Option<String>,
    /// Target user by 'id'
    #[arg(long, value_name = "ID")]
    uid: Option<String>,
    /// Target group by 'name'
    #[arg(long, value_name = "NAME")]
    gname: Option<String>,
    /// Target group by 'path'
    #[arg(long, value_name = "PATH")]
    gpath: Option<String>,
    /// Target group by 'id'
    #[arg(long, value_name = "ID")]
    gid: Option<String>,
    /// Target composite role by 'name'
    #[arg(long, value_name = "NAME")]
    rname: Option<String>,
    /// Target composite role by 'id'
    #[arg(long, value_name = "ID")]
    rid: Option<String>,
    /// Client by 'clientId' (its roles instead of realm roles)
    #[arg(long, value_name = "CLIENT_ID")]
    cclientid: Option<String>,
    /// Client by 'id'
    #[arg(long, value_name = "ID")]
    cid: Option<String>,
}

#[derive(Args, Debug, Clone)]
pub(super) struct RolesArgs {
    #[command(flatten)]
    who: Selectors,
    /// Role by 'name' (repeatable)
    #[arg(long, value_name = "NAME")]
    rolename: Vec<String>,
    /// Role by 'id' (repeatable)
    #[arg(long, value_name = "ID")]
    roleid: Vec<String>,
    #[command(flatten)]
    target: TargetOptions,
    #[command(flatten)]
    auth: AuthOptions,
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
}

#[derive(Args, Debug, Clone)]
pub(super) struct GetRolesArgs {
    #[command(flatten)]
    who: Selectors,
    /// Only this role, by 'name'
    #[arg(long, value_name = "NAME")]
    rolename: Option<String>,
    /// Only this role, by 'id'
    #[arg(long, value_name = "ID")]
    roleid: Option<String>,
    /// List roles that could still be granted
    #[arg(long)]
    available: bool,
    /// List the roles in effect (through composites and groups too)
    #[arg(long)]
    effective: bool,
    /// List realm and client roles (the role-mappings object)
    #[arg(long)]
    all: bool,
    /// A pattern specifying which attributes to display
    #[arg(short = 'F', long = "fields", value_name = "FILTER")]
    fields: Option<String>,
    /// 'json' (default) or 'csv'
    #[arg(long = "format", default_value = "json")]
    format: String,
    /// Unquoted strings in CSV output
    #[arg(long)]
    noquotes: bool,
    /// Don't pretty print the output
    #[arg(short = 'c', long = "compressed")]
    compressed: bool,
    #[command(flatten)]
    target: TargetOptions,
    #[command(flatten)]
    auth: AuthOptions,
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
}

impl Selectors {
    /// Whether a user, group or composite role is named.
    fn names_holder(&self) -> bool {
        [
            &self.uid,
            &self.uusername,
            &self.gid,
            &self.gname,
            &self.gpath,
            &self.rid,
            &self.rname,
        ]
        .iter()
        .any(|x| x.is_some())
    }

    fn validate(&self) -> Result<(), Failure> {
        let u = self.uid.is_some() || self.uusername.is_some();
        let g = [&self.gid, &self.gname, &self.gpath]
            .iter()
            .filter(|x| x.is_some())
            .count();
        let r = self.rid.is_some() || self.rname.is_some();
        let bad = |m: &str| Err(Failure::usage(format!("Incompatible options: {m}")));
        if self.uid.is_some() && self.uusername.is_some() {
            return bad("--uid and --uusername are mutually exclusive");
        }
        if g > 1 {
            return bad("--gid, --gname and --gpath are mutually exclusive");
        }
        if self.cid.is_some() && self.cclientid.is_some() {
            return bad("--cid and --cclientid are mutually exclusive");
        }
        if self.rid.is_some() && self.rname.is_some() {
            return bad("--rid and --rname are mutually exclusive");
        }
        if u && g > 0 {
            return bad(
                "--uusername / --uid can't be used at the same time as --gname / --gid / --gpath",
            );
        }
        if u && r {
            return bad("--uusername / --uid can't be used at the same time as --rname / --rid");
        }
        if r && g > 0 {
            return bad(
                "--rname / --rid can't be used at the same time as --gname / --gid / --gpath",
            );
        }
        Ok(())
    }

    fn client_id(&self, session: &Session) -> Result<Option<String>, Failure> {
        if let Some(cid) = &self.cid {
            return Ok(Some(cid.clone()));
        }
        let Some(client_id) = &self.cclientid else {
            return Ok(None);
        };
        let client = find_one(
            session,
            "clients",
            &[
                ("clientId".into(), client_id.clone()),
                ("first".into(), "0".into()),
                ("max".into(), "2".into()),
            ],
            "clientId",
            client_id,
            "Client",
        )?;
        id_of(&client, "client").map(Some)
    }

    /// The path of the user, group or composite role (`users/ID`, `groups/ID`,
    /// `roles-by-id/ID`), or `None` when none was named.
    fn holder(&self, session: &Session) -> Result<Option<Holder>, Failure> {
        if let Some(id) = &self.uid {
            return Ok(Some(Holder::Other(format!("users/{id}"))));
        }
        if let Some(name) = &self.uusername {
            return Ok(Some(Holder::Other(format!(
                "users/{}",
                user_id(session, name)?
            ))));
        }
        if let Some(id) = &self.gid {
            return Ok(Some(Holder::Other(format!("groups/{id}"))));
        }
        if let Some(name) = &self.gname {
            let group = find_one(
                session,
                "groups",
                &[
                    ("search".into(), name.clone()),
                    ("exact".into(), "true".into()),
                ],
                "name",
                name,
                "Group",
            )?;
            return Ok(Some(Holder::Other(format!(
                "groups/{}",
                id_of(&group, "group")?
            ))));
        }
        if let Some(path) = &self.gpath {
            // Each segment encoded: group names may hold spaces.
            let encoded: Vec<String> = path
                .split('/')
                .filter(|p| !p.is_empty())
                .map(segment)
                .collect();
            let group = get_named(
                session,
                &format!("group-by-path/{}", encoded.join("/")),
                &format!("Group not found for path: {path}"),
            )?;
            return Ok(Some(Holder::Other(format!(
                "groups/{}",
                id_of(&group, "group")?
            ))));
        }
        if let Some(id) = &self.rid {
            return Ok(Some(Holder::Role(format!("roles-by-id/{id}"))));
        }
        if let Some(name) = &self.rname {
            // The composite role is a realm role, named exactly.
            let role = get_named(
                session,
                &format!("roles/{}", segment(name)),
                &format!("Role not found for name: {name}"),
            )?;
            return Ok(Some(Holder::Role(format!(
                "roles-by-id/{}",
                id_of(&role, "role")?
            ))));
        }
        Ok(None)
    }
}

/// GET a resource named in its path; a 404 is `missing` (kcadm's look-up message).
fn get_named(session: &Session, uri: &str, missing: &str) -> Result<Value, Failure> {
    let response = session.http.send(
        Method::GET,
        &session.url(uri),
        &session.auth_headers(),
        None,
    )?;
    if response.status == 404 {
        return Err(Failure::run(missing));
    }
    response.check()?.json()
}

/// A path segment, percent-encoded (role names may hold spaces).
fn segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

enum Holder {
    /// A user or group: `.../role-mappings/realm` or `.../role-mappings/clients/CID`.
    Other(String),
    /// A composite role: `roles-by-id/ID/composites`.
    Role(String),
}

fn get_json(session: &Session, uri: &str) -> Result<Value, Failure> {
    session
        .http
        .send(
            Method::GET,
            &session.url(uri),
            &session.auth_headers(),
            None,
        )?
        .check()?
        .json()
}

/// `add-roles` (`add` true) or `remove-roles`.
pub(super) fn change(a: &RolesArgs, add: bool) -> Result<(), Failure> {
    a.who.validate()?;
    let verb = if add { "add" } else { "remove" };
    if a.rolename.is_empty() && a.roleid.is_empty() {
        return Err(Failure::usage(format!(
            "No role to {verb} specified. Use --rolename or --roleid to specify roles to {verb}"
        )));
    }
    if !a.who.names_holder() {
        return Err(Failure::usage(
            "No user nor group nor composite role specified. Use --uusername / --uid to specify user or --gname / --gid / --gpath to specify group or --rname / --rid to specify a composite role",
        ));
    }
    let session = Session::open(&a.auth, &a.target)?;
    let holder = a
        .who
        .holder(&session)?
        .ok_or_else(|| Failure::usage("No user nor group nor composite role specified"))?;
    let client = a.who.client_id(&session)?;
    let candidates = match &client {
        Some(cid) => get_json(&session, &format!("clients/{cid}/roles"))?,
        None => get_json(&session, "roles")?,
    };
    let candidates = candidates.as_array().cloned().unwrap_or_default();
    let mut chosen: Vec<Value> = Vec::new();
    let mut pick = |attr: &str, wanted: &str, what: &str| -> Result<(), Failure> {
        let role = candidates
            .iter()
            .find(|r| r.get(attr).and_then(Value::as_str) == Some(wanted))
            .ok_or_else(|| Failure::run(format!("Role not found for {what}: {wanted}")))?;
        if !chosen.contains(role) {
            chosen.push(role.clone());
        }
        Ok(())
    };
    for name in &a.rolename {
        pick("name", name, "name")?;
    }
    for id in &a.roleid {
        pick("id", id, "id")?;
    }
    let uri = match (&holder, &client) {
        (Holder::Role(base), _) => format!("{base}/composites"),
        (Holder::Other(base), Some(cid)) => format!("{base}/role-mappings/clients/{cid}"),
        (Holder::Other(base), None) => format!("{base}/role-mappings/realm"),
    };
    let mut headers = session.auth_headers();
    headers.push(("Content-Type".into(), "application/json".into()));
    let method = if add { Method::POST } else { Method::DELETE };
    session
        .http
        .send(
            method,
            &session.url(&uri),
            &headers,
            Some(Value::Array(chosen).to_string().into_bytes()),
        )?
        .check()?;
    Ok(())
}

/// `get-roles`.
pub(super) fn get(a: &GetRolesArgs) -> Result<(), Failure> {
    a.who.validate()?;
    if a.roleid.is_some() && a.rolename.is_some() {
        return Err(Failure::usage(
            "Incompatible options: --roleid and --rolename are mutually exclusive",
        ));
    }
    if a.all && a.effective {
        return Err(Failure::usage(
            "Incompatible options: --all can't be used at the same time as --effective",
        ));
    }
    if a.all && a.available {
        return Err(Failure::usage(
            "Incompatible options: --all can't be used at the same time as --available",
        ));
    }
    let csv = super::is_csv(&a.format)?;
    let session = Session::open(&a.auth, &a.target)?;
    let client = a.who.client_id(&session)?;
    let holder = a.who.holder(&session)?;
    let uri = match (holder, &client) {
        (Some(Holder::Other(base)), Some(cid)) => {
            let tail = if a.available {
                "/available"
            } else if a.effective {
                "/composite"
            } else {
                ""
            };
            format!("{base}/role-mappings/clients/{cid}{tail}")
        }
        (Some(Holder::Other(base)), None) => {
            if a.all {
                format!("{base}/role-mappings")
            } else if a.available {
                format!("{base}/role-mappings/realm/available")
            } else if a.effective {
                format!("{base}/role-mappings/realm/composite")
            } else {
                format!("{base}/role-mappings/realm")
            }
        }
        (Some(Holder::Role(base)), client) => {
            if a.available {
                let hint = match client {
                    Some(cid) => format!("kcadm.sh get-roles --cid {cid}"),
                    None => "kcadm.sh get-roles".into(),
                };
                return Err(Failure::usage(format!(
                    "Option --available not supported with composite roles. Try '{hint}' for full list of {} roles{}",
                    if client.is_some() { "client" } else { "realm" },
                    if client.is_some() { " for that client" } else { "" }
                )));
            }
            if a.effective {
                return Err(Failure::usage(
                    "Option --effective not supported with composite roles.",
                ));
            }
            match client {
                Some(cid) => format!("{base}/composites/clients/{cid}"),
                None if a.all => format!("{base}/composites"),
                None => format!("{base}/composites/realm"),
            }
        }
        (None, client) => {
            let base = match client {
                Some(cid) => format!("clients/{cid}/roles"),
                None => "roles".to_string(),
            };
            let name = match (&a.rolename, &a.roleid) {
                (Some(name), _) => Some(name.clone()),
                (None, Some(id)) => {
                    let role = get_json(&session, &format!("roles-by-id/{id}"))?;
                    role.get("name").and_then(Value::as_str).map(str::to_string)
                }
                _ => None,
            };
            match name {
                Some(n) => format!("{base}/{}", segment(&n)),
                None => base,
            }
        }
    };
    let request = RequestArgs {
        uri: Some(uri),
        set: Vec::new(),
        delete: Vec::new(),
        query: Vec::new(),
        header: Vec::new(),
        file: None,
        body: None,
        fields: a.fields.clone(),
        print_headers: false,
        compressed: a.compressed,
        target: a.target.clone(),
        auth: a.auth.clone(),
        help: None,
    };
    super::commands::request_with(
        &session,
        Verb::Get,
        &request,
        Vec::new(),
        Want {
            output: true,
            csv,
            noquotes: a.noquotes,
            ..Want::default()
        },
    )
}
