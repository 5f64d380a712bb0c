//! LDAP and Active Directory user federation, the directory side: an LDAP `components` entry
//! read as a [`Provider`], connections (`ldap://`, `ldaps://`, StartTLS; several URLs tried
//! in turn; connect and operation timeouts), the user search (RFC 4515-escaped, under the
//! users DN with the vendor's object classes and the custom filter), the password check (a
//! bind as the user's own DN, never with an empty password), paged searches for a full
//! sync, and the connection test of the admin API.

use std::collections::HashMap;
use std::time::Duration;

use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::{ldap_escape, Ldap, LdapConnAsync, LdapConnSettings, Scope, SearchEntry};
use serde_json::Value;

use crate::store::{Result as StoreResult, Txn, View};

/// Keycloak's provider type of user storage components.
pub const STORAGE_PROVIDER: &str = "org.keycloak.storage.UserStorageProvider";
/// The stored kind of components (`admin/providers.rs`).
pub const COMPONENT_KIND: &str = "component";
/// The provider type of an LDAP provider's mappers (its sub-components).
pub const MAPPER_TYPE: &str = "org.keycloak.storage.ldap.mappers.LDAPStorageMapper";
/// Attributes of an imported user naming its entry (as Keycloak keeps them).
pub const LDAP_ID: &str = "LDAP_ID";
pub const LDAP_ENTRY_DN: &str = "LDAP_ENTRY_DN";

/// Why a directory operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LdapError {
    #[error("cannot connect to the LDAP server: {0}")]
    Connect(String),
    /// Wrong DN or password (result code 49, invalidCredentials): the only "no".
    #[error("the LDAP server refused the credentials: {0}")]
    Bind(String),
    /// Anything else (busy, unavailable, a timeout): neither right nor wrong.
    #[error("LDAP operation failed: {0}")]
    Search(String),
}

/// LDAP operations in flight at once, over every provider: a slow directory under a burst
/// of logins queues here instead of opening connections without bound.
static IN_FLIGHT: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(32);

/// Run one directory operation within `limit`, holding a place of [`IN_FLIGHT`].
async fn bounded<T>(
    limit: Duration,
    op: impl std::future::Future<Output = Result<T, LdapError>>,
) -> Result<T, LdapError> {
    let _permit = IN_FLIGHT
        .acquire()
        .await
        .map_err(|e| LdapError::Search(e.to_string()))?;
    tokio::time::timeout(limit, op)
        .await
        .unwrap_or_else(|_| Err(LdapError::Search("timed out".into())))
}

/// An LDAP user storage provider, ready for use (no `Debug`: it holds the bind credential).
#[derive(Clone)]
pub struct Provider {
    pub id: String,
    pub name: String,
    pub enabled: bool,
    pub priority: i64,
    pub import_enabled: bool,
    pub edit_mode: String,
    urls: Vec<String>,
    start_tls: bool,
    bind_dn: Option<String>,
    bind_credential: Option<String>,
    users_dn: String,
    subtree: bool,
    username_attribute: String,
    uuid_attribute: String,
    object_classes: Vec<String>,
    custom_filter: Option<String>,
    connect_timeout: Duration,
    read_timeout: Duration,
    page_size: i32,
    /// Directory attributes of the user's first name, last name and e-mail (its
    /// `user-attribute-ldap-mapper` sub-components; Keycloak's defaults without them).
    first_name_attribute: String,
    last_name_attribute: String,
    email_attribute: String,
}

/// A user entry as the directory has it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    pub dn: String,
    pub uuid: String,
    pub username: String,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

fn first<'a>(c: &'a Value, key: &str) -> Option<&'a str> {
    let v = c.get("config")?.get(key)?;
    v.get(0)
        .and_then(Value::as_str)
        .or_else(|| v.as_str())
        .filter(|s| !s.is_empty())
}

fn millis(c: &Value, key: &str, default: u64) -> Duration {
    Duration::from_millis(
        first(c, key)
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|v| *v > 0)
            .unwrap_or(default),
    )
}

impl Provider {
    /// Read an LDAP component; `None` for anything else.
    pub fn from_component(c: &Value) -> Option<Provider> {
        if c.get("providerType")?.as_str()? != STORAGE_PROVIDER
            || c.get("providerId")?.as_str()? != "ldap"
        {
            return None;
        }
        let flag = |k: &str, default: bool| match first(c, k) {
            Some(v) => v == "true",
            None => default,
        };
        let username_attribute = first(c, "usernameLDAPAttribute")?.to_string();
        let uuid_attribute = first(c, "uuidLDAPAttribute")?.to_string();
        if !valid_attribute(&username_attribute) || !valid_attribute(&uuid_attribute) {
            return None;
        }
        Some(Provider {
            id: c.get("id")?.as_str()?.to_string(),
            name: c
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("ldap")
                .to_string(),
            enabled: flag("enabled", true),
            priority: first(c, "priority")
                .and_then(|p| p.parse().ok())
                .unwrap_or(0),
            import_enabled: flag("importEnabled", true),
            edit_mode: first(c, "editMode").unwrap_or("READ_ONLY").to_string(),
            urls: first(c, "connectionUrl")?
                .split_whitespace()
                .map(str::to_string)
                .collect(),
            start_tls: flag("startTls", false),
            bind_dn: first(c, "bindDn")
                .filter(|_| first(c, "authType") != Some("none"))
                .map(str::to_string),
            bind_credential: first(c, "bindCredential").map(str::to_string),
            users_dn: first(c, "usersDn")?.to_string(),
            subtree: first(c, "searchScope") == Some("2"),
            username_attribute,
            uuid_attribute,
            object_classes: first(c, "userObjectClasses")
                .unwrap_or("inetOrgPerson")
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            custom_filter: first(c, "customUserSearchFilter").map(str::to_string),
            connect_timeout: millis(c, "connectionTimeout", 5000),
            read_timeout: millis(c, "readTimeout", 10000),
            page_size: first(c, "batchSizeForSync")
                .and_then(|b| b.parse().ok())
                .filter(|b: &i32| *b > 0)
                .unwrap_or(1000),
            first_name_attribute: "givenName".into(),
            last_name_attribute: "sn".into(),
            email_attribute: "mail".into(),
        })
    }

    /// Take the attribute names from the provider's `user-attribute-ldap-mapper`s.
    fn with_mappers(mut self, mappers: &[Value]) -> Provider {
        for m in mappers {
            if m.get("providerId").and_then(Value::as_str) != Some("user-attribute-ldap-mapper") {
                continue;
            }
            let (Some(model), Some(attr)) =
                (first(m, "user.model.attribute"), first(m, "ldap.attribute"))
            else {
                continue;
            };
            if !valid_attribute(attr) {
                continue;
            }
            match model {
                "firstName" => self.first_name_attribute = attr.to_string(),
                "lastName" => self.last_name_attribute = attr.to_string(),
                "email" => self.email_attribute = attr.to_string(),
                _ => {}
            }
        }
        self
    }

    /// The search filter for one user (`None`: every user of the provider).
    pub fn filter(&self, username: Option<&str>) -> String {
        let mut f = String::from("(&");
        for class in &self.object_classes {
            f.push_str(&format!("(objectClass={})", ldap_escape(class.as_str())));
        }
        if let Some(custom) = &self.custom_filter {
            // An administrator's filter, checked when saved (`valid_filter`) and taken as
            // written; one that is not valid matches nobody rather than everybody.
            if valid_filter(custom) {
                f.push_str(custom);
            } else {
                f.push_str("(!(objectClass=*))");
            }
        }
        if let Some(u) = username {
            f.push_str(&format!("({}={})", self.username_attribute, ldap_escape(u)));
        }
        f.push(')');
        f
    }

    fn attributes(&self) -> Vec<String> {
        let mut a = vec![
            self.username_attribute.clone(),
            self.uuid_attribute.clone(),
            self.email_attribute.clone(),
            self.first_name_attribute.clone(),
            self.last_name_attribute.clone(),
        ];
        a.sort();
        a.dedup();
        a
    }

    fn scope(&self) -> Scope {
        if self.subtree {
            Scope::Subtree
        } else {
            Scope::OneLevel
        }
    }

    /// A connection to the first URL that answers, bound as `dn` (or the provider's bind DN).
    async fn connect_as(
        &self,
        dn: Option<&str>,
        password: Option<&str>,
    ) -> Result<Ldap, LdapError> {
        let mut last = LdapError::Connect("no connection URL".into());
        for url in &self.urls {
            let plain = url
                .get(..7)
                .is_some_and(|s| s.eq_ignore_ascii_case("ldap://"));
            let settings = LdapConnSettings::new()
                .set_conn_timeout(self.connect_timeout)
                .set_starttls(self.start_tls && plain);
            match LdapConnAsync::with_settings(settings, url).await {
                Ok((conn, mut ldap)) => {
                    ldap3::drive!(conn);
                    ldap.with_timeout(self.read_timeout);
                    if let (Some(dn), Some(pw)) = (dn, password) {
                        match ldap.simple_bind(dn, pw).await {
                            Ok(r) if r.rc == 0 => {}
                            Ok(r) => {
                                let _ = ldap.unbind().await;
                                return Err(if r.rc == 49 {
                                    LdapError::Bind(format!("result code {}", r.rc))
                                } else {
                                    LdapError::Search(format!("bind: result code {}", r.rc))
                                });
                            }
                            Err(e) => {
                                let _ = ldap.unbind().await;
                                return Err(LdapError::Search(e.to_string()));
                            }
                        }
                    }
                    return Ok(ldap);
                }
                Err(e) => last = LdapError::Connect(format!("{url}: {e}")),
            }
        }
        Err(last)
    }

    async fn service_connection(&self) -> Result<Ldap, LdapError> {
        self.connect_as(self.bind_dn.as_deref(), self.bind_credential.as_deref())
            .await
    }

    fn entry(&self, e: SearchEntry) -> Option<Entry> {
        let one = |attrs: &HashMap<String, Vec<String>>, name: &str| {
            attrs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .and_then(|(_, v)| v.first().cloned())
                .filter(|v| !v.is_empty())
        };
        let uuid = match one(&e.attrs, &self.uuid_attribute) {
            Some(u) => u,
            None => e
                .bin_attrs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(&self.uuid_attribute))
                .and_then(|(_, v)| v.first())
                .map(|b| guid(b))?,
        };
        Some(Entry {
            username: one(&e.attrs, &self.username_attribute)?.to_lowercase(),
            email: one(&e.attrs, &self.email_attribute).map(|m| m.to_lowercase()),
            first_name: one(&e.attrs, &self.first_name_attribute),
            last_name: one(&e.attrs, &self.last_name_attribute),
            uuid,
            dn: e.dn,
        })
    }

    /// The entry of `username`, if the directory has exactly one.
    pub async fn find(&self, username: &str) -> Result<Option<Entry>, LdapError> {
        bounded(
            self.read_timeout + self.connect_timeout,
            self.find_now(username),
        )
        .await
    }

    async fn find_now(&self, username: &str) -> Result<Option<Entry>, LdapError> {
        let mut ldap = self.service_connection().await?;
        let result = ldap
            .search(
                &self.users_dn,
                self.scope(),
                &self.filter(Some(username)),
                self.attributes(),
            )
            .await
            .and_then(|r| r.success());
        let _ = ldap.unbind().await;
        let (entries, _) = result.map_err(|e| LdapError::Search(e.to_string()))?;
        let mut found: Vec<Entry> = entries
            .into_iter()
            .filter_map(|e| self.entry(construct(e)?))
            .collect();
        Ok(match found.len() {
            1 => found.pop(),
            _ => None,
        })
    }

    /// Whether `password` is the entry's: a bind as its DN. An empty password is never
    /// tried (an LDAP server takes it as an anonymous bind and says yes).
    pub async fn check_password(&self, entry: &Entry, password: &str) -> Result<bool, LdapError> {
        if password.is_empty() || entry.dn.is_empty() {
            return Ok(false);
        }
        let bind = self.connect_as(Some(&entry.dn), Some(password));
        match bounded(self.read_timeout + self.connect_timeout, bind).await {
            Ok(mut ldap) => {
                let _ = ldap.unbind().await;
                Ok(true)
            }
            Err(LdapError::Bind(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Every user entry of the provider, read in pages (each page within the read timeout).
    pub async fn all(&self) -> Result<Vec<Entry>, LdapError> {
        let limit = Duration::from_secs(600).max(self.read_timeout);
        bounded(limit, self.all_now()).await
    }

    async fn all_now(&self) -> Result<Vec<Entry>, LdapError> {
        let mut ldap = self.service_connection().await?;
        let adapters: Vec<Box<dyn Adapter<_, _>>> = vec![
            Box::new(EntriesOnly::new()),
            Box::new(PagedResults::new(self.page_size)),
        ];
        let filter = self.filter(None);
        let mut out = Vec::new();
        let result = async {
            let mut stream = ldap
                .streaming_search_with(
                    adapters,
                    &self.users_dn,
                    self.scope(),
                    &filter,
                    self.attributes(),
                )
                .await?;
            while let Some(e) = stream.next().await? {
                if let Some(entry) = construct(e).and_then(|e| self.entry(e)) {
                    out.push(entry);
                }
            }
            stream.finish().await.success().map(|_| ())
        }
        .await;
        let _ = ldap.unbind().await;
        result.map_err(|e| LdapError::Search(e.to_string()))?;
        Ok(out)
    }
}

/// The admin API's connection test: `testConnection` (connect) or `testAuthentication`
/// (connect and bind with the given DN and credential).
pub async fn test(
    urls: &str,
    start_tls: bool,
    bind: Option<(&str, &str)>,
    timeout: Duration,
) -> Result<(), LdapError> {
    let provider = Provider {
        id: String::new(),
        name: String::new(),
        enabled: true,
        priority: 0,
        import_enabled: false,
        edit_mode: String::new(),
        urls: urls.split_whitespace().map(str::to_string).collect(),
        start_tls,
        bind_dn: None,
        bind_credential: None,
        users_dn: String::new(),
        subtree: false,
        username_attribute: String::new(),
        uuid_attribute: String::new(),
        object_classes: Vec::new(),
        custom_filter: None,
        connect_timeout: timeout,
        read_timeout: timeout,
        page_size: 1,
        first_name_attribute: String::new(),
        last_name_attribute: String::new(),
        email_attribute: String::new(),
    };
    if let Some((_, pw)) = bind {
        if pw.is_empty() {
            return Err(LdapError::Bind(
                "an empty credential is an anonymous bind".into(),
            ));
        }
    }
    let mut ldap = provider
        .connect_as(bind.map(|b| b.0), bind.map(|b| b.1))
        .await?;
    let _ = ldap.unbind().await;
    Ok(())
}

/// Decode a search result entry. ldap3 panics on a DN or value that is not UTF-8 (a
/// hostile or broken server): such an entry is skipped, never a crashed request.
fn construct(e: ldap3::ResultEntry) -> Option<SearchEntry> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| SearchEntry::construct(e))).ok()
}

/// Whether an administrator's search filter is one parenthesised, balanced filter.
pub fn valid_filter(f: &str) -> bool {
    let mut depth = 0i32;
    for (i, c) in f.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                // Closed before the end: `(a=1)(b=2)` or `(a=1))(|(b=2)`.
                if depth < 0 || (depth == 0 && i + 1 != f.len()) {
                    return false;
                }
            }
            _ => {}
        }
    }
    depth == 0 && f.starts_with('(') && f.ends_with(')')
}

/// Whether an attribute name is one (letters, digits, `-`, `;`, `.`), safe in a filter.
pub fn valid_attribute(a: &str) -> bool {
    !a.is_empty()
        && a.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | ';' | '.'))
}

/// An Active Directory `objectGUID` as Keycloak prints it (the first three groups
/// little-endian).
fn guid(b: &[u8]) -> String {
    if b.len() != 16 {
        return b.iter().map(|x| format!("{x:02x}")).collect();
    }
    format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]
    )
}

/// The mappers Keycloak creates with an LDAP provider, as sub-components of `provider`
/// (username, first name, last name, e-mail, creation and modification dates; Active
/// Directory adds its account controls). Ids are the caller's to give.
pub fn default_mappers(provider: &Value) -> Vec<Value> {
    let parent = provider.get("id").cloned().unwrap_or(Value::Null);
    let username = first(provider, "usernameLDAPAttribute").unwrap_or("uid");
    let read_only = (first(provider, "editMode") != Some("WRITABLE")).to_string();
    let attribute = |name: &str,
                     model: &str,
                     ldap: &str,
                     always: bool,
                     mandatory: bool,
                     ro: &str| {
        serde_json::json!({"name": name, "providerId": "user-attribute-ldap-mapper",
            "providerType": MAPPER_TYPE, "parentId": parent,
            "config": {"user.model.attribute": [model], "ldap.attribute": [ldap],
                       "read.only": [ro], "always.read.value.from.ldap": [always.to_string()],
                       "is.mandatory.in.ldap": [mandatory.to_string()], "is.binary.attribute": ["false"]}})
    };
    let mut out = vec![
        attribute("username", "username", username, false, true, &read_only),
        attribute(
            "first name",
            "firstName",
            "givenName",
            true,
            false,
            &read_only,
        ),
        attribute("last name", "lastName", "sn", true, true, &read_only),
        attribute("email", "email", "mail", false, false, &read_only),
        attribute(
            "creation date",
            "createTimestamp",
            "createTimestamp",
            true,
            false,
            "true",
        ),
        attribute(
            "modify date",
            "modifyTimestamp",
            "modifyTimestamp",
            true,
            false,
            "true",
        ),
    ];
    if first(provider, "vendor") == Some("ad") {
        out.push(serde_json::json!({"name": "MSAD account controls",
            "providerId": "msad-user-account-control-mapper", "providerType": MAPPER_TYPE,
            "parentId": parent, "config": {}}));
    }
    out
}

/// The realm's enabled LDAP providers, by priority, with their mappers' attribute names.
pub fn providers<T: Txn>(read: &View<T>, realm_id: &str) -> StoreResult<Vec<Provider>> {
    let components = read.objects(realm_id, COMPONENT_KIND)?;
    let mut list: Vec<Provider> = components
        .iter()
        .filter_map(Provider::from_component)
        .filter(|p| p.enabled)
        .map(|p| {
            let mappers: Vec<Value> = components
                .iter()
                .filter(|c| c["parentId"] == p.id.as_str() && c["providerType"] == MAPPER_TYPE)
                .cloned()
                .collect();
            p.with_mappers(&mappers)
        })
        .collect();
    list.sort_by_key(|p| p.priority);
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn provider() -> Provider {
        Provider::from_component(&json!({"id": "c1", "name": "ldap", "providerId": "ldap",
            "providerType": STORAGE_PROVIDER, "config": {
            "connectionUrl": ["ldap://a:389 ldap://b:389"], "usersDn": ["ou=people,dc=example,dc=org"],
            "usernameLDAPAttribute": ["uid"], "uuidLDAPAttribute": ["entryUUID"],
            "userObjectClasses": ["inetOrgPerson, organizationalPerson"],
            "customUserSearchFilter": ["(memberOf=cn=staff,dc=example,dc=org)"]}}))
        .unwrap()
    }

    #[test]
    fn filters_escape_what_users_type() {
        let p = provider();
        assert_eq!(p.urls, ["ldap://a:389", "ldap://b:389"]);
        assert_eq!(
            p.filter(Some("jane")),
            "(&(objectClass=inetOrgPerson)(objectClass=organizationalPerson)(memberOf=cn=staff,dc=example,dc=org)(uid=jane))"
        );
        // RFC 4515: a username cannot widen or end the filter.
        assert_eq!(
            p.filter(Some("*)(uid=*")),
            "(&(objectClass=inetOrgPerson)(objectClass=organizationalPerson)(memberOf=cn=staff,dc=example,dc=org)(uid=\\2a\\29\\28uid=\\2a))"
        );
        assert!(p
            .filter(None)
            .ends_with("(memberOf=cn=staff,dc=example,dc=org))"));
        assert!(valid_filter("(memberOf=cn=staff,dc=example,dc=org)"));
        assert!(valid_filter("(|(a=1)(b=2))"));
        for bad in ["memberOf=x", "(a=1)(b=2)", "(a=1))(|(b=2)", "((a=1)", ""] {
            assert!(!valid_filter(bad), "{bad}");
        }
        assert!(valid_attribute("sAMAccountName") && !valid_attribute("uid)(x"));
    }

    #[test]
    fn an_empty_password_is_never_tried() {
        // It would be an anonymous bind, which directories accept: refused before any
        // connection is made (the provider's URLs do not even resolve).
        let p = provider();
        let entry = Entry {
            dn: "uid=jane,ou=people,dc=example,dc=org".into(),
            ..Entry::default()
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        assert_eq!(rt.block_on(p.check_password(&entry, "")), Ok(false));
        let r = rt.block_on(test(
            "ldap://127.0.0.1:1",
            false,
            Some(("cn=x", "")),
            Duration::from_millis(200),
        ));
        assert!(matches!(r, Err(LdapError::Bind(_))), "{r:?}");
    }

    #[test]
    fn ad_guids_print_as_keycloak_prints_them() {
        let b: Vec<u8> = (0u8..16).collect();
        assert_eq!(guid(&b), "03020100-0504-0706-0809-0a0b0c0d0e0f");
        assert!(Provider::from_component(
            &json!({"id": "x", "providerId": "rsa", "providerType": "k"})
        )
        .is_none());
    }
}
