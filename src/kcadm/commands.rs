//! `create`, `get`, `update`, `delete`, `set-password` and `config truststore`.

use std::io::{Read, Write};
use std::path::PathBuf;

use reqwest::Method;
use serde_json::{json, Map, Value};

use super::config::ConfigFile;
use super::fields::{csv, Fields};
use super::http::{add_query, last_segment, type_name, Response};
use super::json::{apply, merge, pretty, split_key_value, AttrOp};
use super::session::{AuthOptions, Session};
use super::{Failure, RequestArgs, SetPasswordArgs};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verb {
    Post,
    Get,
    Put,
    Delete,
}

impl Verb {
    fn method(self) -> Method {
        match self {
            Verb::Post => Method::POST,
            Verb::Get => Method::GET,
            Verb::Put => Method::PUT,
            Verb::Delete => Method::DELETE,
        }
    }
}

/// What the command prints and how it pages.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Want {
    pub(super) output: bool,
    pub(super) id_only: bool,
    pub(super) merge: bool,
    pub(super) offset: Option<u32>,
    pub(super) limit: Option<u32>,
    pub(super) csv: bool,
    pub(super) noquotes: bool,
}

/// The request body before `-s`/`-d`: a JSON document, raw bytes, or nothing.
enum Body {
    None,
    Json(Value),
    Raw(Vec<u8>),
}

fn read_input(file: &str) -> Result<Vec<u8>, Failure> {
    if file == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(|e| Failure::run(format!("Failed to read standard input: {e}")))?;
        return Ok(buf);
    }
    std::fs::read(file).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Failure::run(format!("File not found: {file}")),
        _ => Failure::run(format!("Failed to read {file}: {e}")),
    })
}

fn pairs(args: &[String]) -> Result<Vec<(String, String)>, Failure> {
    args.iter()
        .map(|a| {
            split_key_value(a)
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .map_err(Failure::usage)
        })
        .collect()
}

/// The seed creates LDAP federation with `create user-storage`; Keycloak's endpoint is
/// `components` (the server fills the provider type and takes plain-string config values).
fn lenient_user_storage(uri: &str, verb: Verb, body: &mut Body) -> String {
    if verb != Verb::Post || uri != "user-storage" {
        return uri.to_string();
    }
    if let Body::Json(Value::Object(map)) = body {
        map.entry("providerType")
            .or_insert_with(|| json!("org.keycloak.storage.UserStorageProvider"));
    }
    "components".to_string()
}

/// What a request command was asked, checked and read before anything goes over the
/// network (bad usage exits 2 without a login).
struct Prepared {
    uri: String,
    fields: Option<Fields>,
    headers: Vec<(String, String)>,
    query: Vec<(String, String)>,
    user_content_type: Option<String>,
    body: Body,
}

fn prepare(args: &RequestArgs, ops: &[AttrOp]) -> Result<Prepared, Failure> {
    let uri = args
        .uri
        .clone()
        .ok_or_else(|| Failure::usage("Resource URI not specified"))?;
    if args.file.is_some() && args.body.is_some() {
        return Err(Failure::usage(
            "Options --body and --file are mutually exclusive",
        ));
    }
    let fields = args
        .fields
        .as_deref()
        .map(Fields::parse)
        .transpose()
        .map_err(|e| {
            if e.starts_with("Fields spec") {
                Failure::usage(e)
            } else {
                Failure::run(e)
            }
        })?;
    let headers = pairs(&args.header)?;
    let query = pairs(&args.query)?;
    let user_content_type = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.clone());
    let json_content = user_content_type
        .as_deref()
        .is_none_or(|ct| ct == "application/json");
    let body = match (&args.file, &args.body) {
        (Some(file), _) if !json_content => Body::Raw(read_input(file)?),
        (Some(file), _) => {
            let bytes = read_input(file)?;
            let text = String::from_utf8_lossy(&bytes);
            let text = text.trim();
            if text.is_empty() {
                return Err(Failure::run("Document provided by --file option is empty"));
            }
            Body::Json(
                serde_json::from_str(text)
                    .map_err(|e| Failure::run(format!("Not a valid JSON document - {e}")))?,
            )
        }
        (None, Some(content)) => Body::Raw(content.clone().into_bytes()),
        (None, None) => Body::None,
    };
    if !ops.is_empty() && matches!(body, Body::Raw(_)) {
        return Err(Failure::run(
            "Can't set attributes on content of type other than application/json",
        ));
    }
    Ok(Prepared {
        uri,
        fields,
        headers,
        query,
        user_content_type,
        body,
    })
}

/// One request command, as kcadm runs it: options and the document first, then the login.
pub(super) fn request(
    verb: Verb,
    args: &RequestArgs,
    ops: Vec<AttrOp>,
    want: Want,
) -> Result<(), Failure> {
    let prepared = prepare(args, &ops)?;
    let session = Session::open(&args.auth, &args.target)?;
    send(&session, verb, args, prepared, ops, want)
}

/// The same on a session already open.
pub(super) fn request_with(
    session: &Session,
    verb: Verb,
    args: &RequestArgs,
    ops: Vec<AttrOp>,
    want: Want,
) -> Result<(), Failure> {
    let prepared = prepare(args, &ops)?;
    send(session, verb, args, prepared, ops, want)
}

fn send(
    session: &Session,
    verb: Verb,
    args: &RequestArgs,
    prepared: Prepared,
    ops: Vec<AttrOp>,
    want: Want,
) -> Result<(), Failure> {
    let Prepared {
        uri,
        fields,
        mut headers,
        query,
        user_content_type,
        mut body,
    } = prepared;
    // `update` starts from the server's copy (the document, if any, merged over it); the
    // `-s`/`-d` operations then apply to what is sent.
    if want.merge && verb == Verb::Put && !matches!(body, Body::Raw(_)) {
        let url = add_query(&session.url(&uri), &query);
        let mut current = get_object(session, &url, &headers)?;
        if let Body::Json(doc) = &body {
            merge(&mut current, doc).map_err(Failure::run)?;
        }
        body = Body::Json(current);
    }
    if !ops.is_empty() {
        let mut target = match std::mem::replace(&mut body, Body::None) {
            Body::Json(v) => v,
            _ => Value::Object(Map::new()),
        };
        if !target.is_object() {
            return Err(Failure::run(format!("Not a JSON object: {target}")));
        }
        apply(&mut target, &ops).map_err(Failure::run)?;
        body = Body::Json(target);
    }
    let uri = lenient_user_storage(&uri, verb, &mut body);

    let resource = session.url(&uri);
    let created_type = type_name(&resource);
    let mut url = add_query(&resource, &query);
    for (k, v) in session.auth_headers() {
        if !headers.iter().any(|(h, _)| h.eq_ignore_ascii_case(&k)) {
            headers.push((k, v));
        }
    }
    if !headers
        .iter()
        .any(|(h, _)| h.eq_ignore_ascii_case("accept"))
    {
        headers.push(("Accept".into(), "application/json".into()));
    }
    let payload = match body {
        Body::None => None,
        Body::Json(v) => Some(v.to_string().into_bytes()),
        Body::Raw(bytes) => Some(bytes),
    };
    if payload.is_some() && user_content_type.is_none() {
        headers.push(("Content-Type".into(), "application/json".into()));
    }
    let mut paging = Vec::new();
    if let Some(first) = want.offset {
        paging.push(("first".to_string(), first.to_string()));
    }
    if let Some(max) = want.limit {
        paging.push(("max".to_string(), max.to_string()));
    }
    url = add_query(&url, &paging);

    let response = session.http.send(verb.method(), &url, &headers, payload)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if args.print_headers {
        let _ = writeln!(
            out,
            "{} {} {}",
            http_version(&response.version),
            response.status,
            response.reason
        );
        for (k, v) in &response.headers {
            let _ = writeln!(out, "{k}: {v}");
        }
    }
    let response = response.check()?;
    if args.print_headers {
        let _ = writeln!(out);
    }
    let id = response.header("location").and_then(last_segment);
    if let Some(id) = &id {
        if want.id_only {
            let _ = writeln!(out, "{id}");
        } else if !want.output {
            eprintln!("Created new {created_type} with id '{id}'");
        }
    }
    if !want.output {
        return Ok(());
    }
    let shown = if matches!(verb, Verb::Post | Verb::Put)
        && (response.status == 204 || id.is_some())
        && uri != "clients-initial-access"
    {
        let again = match &id {
            Some(id) => format!("{url}/{id}"),
            None => url.clone(),
        };
        session
            .http
            .send(Method::GET, &again, &session.auth_headers(), None)?
            .check()?
    } else {
        response
    };
    print_result(&mut out, &shown, fields.as_ref(), &want, args.compressed)
}

fn http_version(debug: &str) -> &str {
    match debug {
        "HTTP/1.0" => "HTTP/1.0",
        "HTTP/2.0" => "HTTP/2",
        _ => "HTTP/1.1",
    }
}

fn get_object(
    session: &Session,
    url: &str,
    headers: &[(String, String)],
) -> Result<Value, Failure> {
    let mut h: Vec<(String, String)> = headers.to_vec();
    h.extend(session.auth_headers());
    h.push(("Accept".into(), "application/json".into()));
    let current = session
        .http
        .send(Method::GET, url, &h, None)?
        .check()?
        .json()?;
    if !current.is_object() {
        return Err(Failure::run(format!("Not a JSON object: {current}")));
    }
    Ok(current)
}

fn print_result(
    out: &mut impl Write,
    response: &Response,
    fields: Option<&Fields>,
    want: &Want,
    compressed: bool,
) -> Result<(), Failure> {
    if response.body.is_empty() {
        return Ok(());
    }
    if response.is_json() && !compressed {
        let mut value = response.json()?;
        if let Some(f) = fields {
            value = f.filter(&value);
        }
        let text = if want.csv {
            csv(&value, fields, want.noquotes)
        } else {
            format!("{}\n", pretty(&value))
        };
        let _ = out.write_all(text.as_bytes());
        return Ok(());
    }
    if want.csv || fields.is_some() {
        let why = if compressed {
            "is compressed"
        } else {
            "is not json"
        };
        eprintln!("Cannot create CSV nor filter returned fields because the response {why}");
        return Ok(());
    }
    let _ = out.write_all(&response.body);
    if !response.body.ends_with(b"\n") {
        let _ = out.write_all(b"\n");
    }
    Ok(())
}

/// Look one object up by a query and an exact match on one attribute, as kcadm's
/// operations do (`User not found for username: jane`).
pub(super) fn find_one(
    session: &Session,
    endpoint: &str,
    query: &[(String, String)],
    attr: &str,
    value: &str,
    kind: &str,
) -> Result<Value, Failure> {
    let url = add_query(&session.url(endpoint), query);
    let list = session
        .http
        .send(Method::GET, &url, &session.auth_headers(), None)?
        .check()?
        .json()?;
    let items = list.as_array().cloned().unwrap_or_default();
    let matches: Vec<&Value> = items
        .iter()
        .filter(|v| v.get(attr).and_then(Value::as_str) == Some(value))
        .collect();
    match matches.as_slice() {
        [one] => Ok((*one).clone()),
        [] if items.len() > 1 => Err(Failure::run(format!(
            "Some matches, but not an exact match, found for {kind} with {attr}: {value}. Try using a more unique search, such as an id."
        ))),
        [] => Err(Failure::run(format!("{kind} not found for {attr}: {value}"))),
        _ => Err(Failure::run(format!(
            "Multiple {endpoint} found for {attr}: {value}"
        ))),
    }
}

pub(super) fn id_of(v: &Value, kind: &str) -> Result<String, Failure> {
    v.get("id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| Failure::run(format!("Returned {kind} info has no 'id' attribute")))
}

/// The id of a user named exactly `username`.
pub(super) fn user_id(session: &Session, username: &str) -> Result<String, Failure> {
    let user = find_one(
        session,
        "users",
        &[
            ("username".into(), username.into()),
            ("exact".into(), "true".into()),
        ],
        "username",
        username,
        "User",
    )?;
    id_of(&user, "user")
}

/// `set-password`.
pub(super) fn set_password(a: &SetPasswordArgs) -> Result<(), Failure> {
    let by_name = match (&a.username, &a.userid) {
        (None, None) => {
            return Err(Failure::usage(
                "No user specified. Use --username or --userid to specify user",
            ))
        }
        (Some(_), Some(_)) => {
            return Err(Failure::usage(
                "Options --userid and --username are mutually exclusive",
            ))
        }
        (Some(name), None) => Some(name),
        (None, Some(_)) => None,
    };
    let password = match &a.new_password {
        Some(p) => p.clone(),
        None => super::session::prompt_password("password")?,
    };
    let session = Session::open(&a.auth, &a.target)?;
    let id = match (by_name, &a.userid) {
        (Some(name), _) => user_id(&session, name)?,
        (None, id) => id.clone().unwrap_or_default(),
    };
    let url = session.url(&format!("users/{id}/reset-password"));
    let body =
        json!({"type": "password", "value": password, "temporary": a.temporary.unwrap_or(false)});
    let mut headers = session.auth_headers();
    headers.push(("Content-Type".into(), "application/json".into()));
    session
        .http
        .send(
            Method::PUT,
            &url,
            &headers,
            Some(body.to_string().into_bytes()),
        )?
        .check_plain()?;
    Ok(())
}

/// `config truststore [FILE | --delete]`.
pub(super) fn config_truststore(
    truststore: Option<PathBuf>,
    delete: bool,
    trustpass: Option<String>,
    config: Option<PathBuf>,
) -> Result<(), Failure> {
    let auth = AuthOptions {
        config,
        ..AuthOptions::default()
    };
    let file: ConfigFile = auth.config_file()?;
    match (truststore, delete) {
        (Some(_), true) => Err(Failure::usage(
            "Option --delete is mutually exclusive with specifying a TRUSTSTORE",
        )),
        (None, true) if trustpass.is_some() => Err(Failure::usage(
            "Options --trustpass and --delete are mutually exclusive",
        )),
        (None, true) => file.update(|c| {
            c.truststore = None;
            c.trustpass = None;
        }),
        (None, false) => Err(Failure::usage("No truststore specified")),
        (Some(path), false) => {
            if !path.is_file() {
                return Err(Failure::run(format!(
                    "Truststore file not found: {}",
                    path.display()
                )));
            }
            let absolute = std::path::absolute(&path).unwrap_or(path);
            file.update(|c| {
                c.truststore = Some(absolute.display().to_string());
                c.trustpass = trustpass.clone();
            })
        }
    }
}
