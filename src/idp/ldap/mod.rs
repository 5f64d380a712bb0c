//! LDAP and Active Directory user federation, the directory side: an LDAP `components`
//! entry (with its mapper sub-components) read as a [`Provider`]; connections (`ldap://`,
//! `ldaps://`, StartTLS; several URLs tried in turn; connect and operation timeouts) kept in
//! a small pool per provider; the user search (escaped, under the users DN with the vendor's
//! object classes and the custom filter); the password check (a bind as the user's own DN,
//! never with an empty password); paged searches for syncs; group and role memberships;
//! and the writes of a WRITABLE provider (profile, password, new and deleted entries).
//!
//! Nothing here touches the store: `idp/federation` decides what the directory's answers
//! mean for local users.

pub mod ad;
pub mod filter;
pub mod mappers;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Mod, Scope, SearchEntry};
use serde_json::Value;

use crate::store::{Result as StoreResult, Txn, UserRecord, View};

pub use filter::{valid_attribute, valid_filter};
pub use mappers::{default_mappers, Mappers, MembershipMapper, Mode, Target};

/// Keycloak's provider type of user storage components.
pub const STORAGE_PROVIDER: &str = "org.keycloak.storage.UserStorageProvider";
/// The stored kind of components (`admin/providers.rs`).
pub const COMPONENT_KIND: &str = "component";
/// The provider type of an LDAP provider's mappers (its sub-components).
pub const MAPPER_TYPE: &str = "org.keycloak.storage.ldap.mappers.LDAPStorageMapper";
/// Attributes of an imported user naming its entry (as Keycloak keeps them).
pub const LDAP_ID: &str = "LDAP_ID";
pub const LDAP_ENTRY_DN: &str = "LDAP_ENTRY_DN";
/// Keycloak's placeholder for a mandatory attribute the user has no value for.
const EMPTY_VALUE: &str = " ";

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
    /// The directory refused a write (a schema or policy violation, no access): its reason.
    #[error("the LDAP server refused the change: {0}")]
    Refused(String),
}

fn failed(e: ldap3::LdapError) -> LdapError {
    match e {
        ldap3::LdapError::LdapResult { result } => LdapError::Search(describe(&result)),
        e => LdapError::Search(e.to_string()),
    }
}

fn describe(r: &ldap3::LdapResult) -> String {
    if r.text.is_empty() {
        format!("result code {}", r.rc)
    } else {
        format!("result code {}: {}", r.rc, r.text)
    }
}

/// Whether an error is the connection's (closed, reset) rather than the operation's.
fn transport(e: &ldap3::LdapError) -> bool {
    !matches!(e, ldap3::LdapError::LdapResult { .. })
}

/// LDAP operations in flight at once per provider: a slow directory under a burst of
/// logins queues its own logins here (within their timeouts) instead of opening connections
/// without bound, and never holds up another realm's directory.
const IN_FLIGHT: usize = 16;
/// The longest `connectionTimeout` and `readTimeout` taken (an administrator's larger value
/// would let one slow directory hold logins for minutes).
const MAX_CONNECT: u64 = 30_000;
const MAX_READ: u64 = 60_000;

/// Connections kept per provider: one bound as the provider's bind DN (ldap3 multiplexes
/// concurrent operations over it) and a few idle ones for user binds. A provider whose
/// connection settings change gets fresh ones.
struct Pooled {
    fingerprint: u64,
    service: Option<Ldap>,
    binds: Vec<Ldap>,
    permits: Arc<tokio::sync::Semaphore>,
}

impl Pooled {
    fn new(fingerprint: u64) -> Pooled {
        Pooled {
            fingerprint,
            service: None,
            binds: Vec::new(),
            permits: Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT)),
        }
    }
}

/// Keyed by realm id and component id ([`Provider::key`]).
static POOL: LazyLock<Mutex<HashMap<String, Pooled>>> = LazyLock::new(Default::default);

/// Drop the connections of a provider that was deleted.
pub fn forget(realm_id: &str, id: &str) {
    POOL.lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&format!("{realm_id}/{id}"));
}
/// Idle user-bind connections kept per provider.
const IDLE_BINDS: usize = 8;

/// `editMode`: what happens to changes of a directory's user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EditMode {
    /// Refused (the directory is the truth).
    ReadOnly,
    /// Written to the directory.
    Writable,
    /// Kept locally, the directory untouched.
    Unsynced,
}

/// An LDAP user storage provider, ready for use (no `Debug`: it holds the bind credential).
#[derive(Clone)]
pub struct Provider {
    pub id: String,
    /// The realm whose component it is (set by [`all_providers`]).
    pub realm_id: String,
    /// Whether its connections are kept (not for a connection test's provider).
    pooled: bool,
    pub name: String,
    pub enabled: bool,
    pub priority: i64,
    pub import_enabled: bool,
    pub edit_mode: EditMode,
    pub sync_registrations: bool,
    pub validate_password_policy: bool,
    pub trust_email: bool,
    pub active_directory: bool,
    /// `fullSyncPeriod` / `changedSyncPeriod` (`None`: not periodic).
    pub full_sync_period: Option<Duration>,
    pub changed_sync_period: Option<Duration>,
    /// When the last sync started (seconds since the epoch; `lastSync`).
    pub last_sync: Option<i64>,
    pub mappers: Mappers,
    use_password_modify: bool,
    urls: Vec<String>,
    start_tls: bool,
    bind_dn: Option<String>,
    bind_credential: Option<String>,
    users_dn: String,
    subtree: bool,
    username_attribute: String,
    rdn_attribute: String,
    uuid_attribute: String,
    object_classes: Vec<String>,
    custom_filter: Option<String>,
    connect_timeout: Duration,
    read_timeout: Duration,
    page_size: i32,
}

/// A user entry as the directory has it, through the provider's mappers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    pub dn: String,
    pub uuid: String,
    pub username: String,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// User attributes of the other attribute mappers (model name → values).
    pub attributes: BTreeMap<String, Vec<String>>,
    /// Active Directory's account state (`userAccountControl`), with its mapper.
    pub disabled: Option<bool>,
    /// Active Directory: `pwdLastSet` is 0, the password must be changed.
    pub must_change_password: bool,
    /// Raw values of the attributes membership mappers need (lower-case names).
    raw: HashMap<String, Vec<String>>,
}

impl Entry {
    fn raw(&self, attribute: &str) -> &[String] {
        self.raw
            .get(&attribute.to_ascii_lowercase())
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
}

/// The entries of a search, and how many it returned that could not be read as users (no
/// username or UUID, or not decodable).
#[derive(Debug, Default)]
pub struct Listing {
    pub entries: Vec<Entry>,
    pub dropped: usize,
}

/// What a password check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordCheck {
    Valid,
    Invalid,
    /// Right, but Active Directory wants it changed (expired, or must change at next login).
    MustChange,
}

/// The first string of a component's config list (or a plain string), if not empty.
pub(crate) fn first<'a>(c: &'a Value, key: &str) -> Option<&'a str> {
    let v = c.get("config")?.get(key)?;
    v.get(0)
        .and_then(Value::as_str)
        .or_else(|| v.as_str())
        .filter(|s| !s.is_empty())
}

fn millis(c: &Value, key: &str, default: u64, max: u64) -> Duration {
    Duration::from_millis(
        first(c, key)
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|v| *v > 0)
            .unwrap_or(default)
            .min(max),
    )
}

fn period(c: &Value, key: &str) -> Option<Duration> {
    first(c, key)
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|v| *v > 0)
        .map(|v| Duration::from_secs(v as u64))
}

impl Provider {
    /// Read an LDAP component and its mappers (`components`: the realm's, or any list
    /// holding its sub-components); `None` for anything else.
    pub fn from_component(c: &Value, components: &[Value]) -> Option<Provider> {
        if c.get("providerType")?.as_str()? != STORAGE_PROVIDER
            || c.get("providerId")?.as_str()? != "ldap"
        {
            return None;
        }
        let id = c.get("id")?.as_str()?.to_string();
        let flag = |k: &str, default: bool| match first(c, k) {
            Some(v) => v == "true",
            None => default,
        };
        let username_attribute = first(c, "usernameLDAPAttribute")?.to_string();
        let uuid_attribute = first(c, "uuidLDAPAttribute")?.to_string();
        let rdn_attribute = first(c, "rdnLDAPAttribute")
            .unwrap_or(&username_attribute)
            .to_string();
        if ![&username_attribute, &uuid_attribute, &rdn_attribute]
            .iter()
            .all(|a| valid_attribute(a))
        {
            return None;
        }
        let subs: Vec<&Value> = components
            .iter()
            .filter(|m| m["parentId"] == id.as_str())
            .collect();
        let edit_mode = match first(c, "editMode") {
            Some("WRITABLE") => EditMode::Writable,
            Some("UNSYNCED") => EditMode::Unsynced,
            _ => EditMode::ReadOnly,
        };
        Some(Provider {
            realm_id: String::new(),
            pooled: true,
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
            edit_mode,
            sync_registrations: flag("syncRegistrations", false),
            validate_password_policy: flag("validatePasswordPolicy", false),
            trust_email: flag("trustEmail", false),
            active_directory: first(c, "vendor") == Some("ad"),
            full_sync_period: period(c, "fullSyncPeriod"),
            changed_sync_period: period(c, "changedSyncPeriod"),
            last_sync: first(c, "lastSync").and_then(|v| v.parse().ok()),
            mappers: Mappers::from_components(&subs, &username_attribute),
            use_password_modify: flag("usePasswordModifyExtendedOp", false),
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
            rdn_attribute,
            uuid_attribute,
            object_classes: first(c, "userObjectClasses")
                .unwrap_or("inetOrgPerson")
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            custom_filter: first(c, "customUserSearchFilter").map(str::to_string),
            connect_timeout: millis(c, "connectionTimeout", 5000, MAX_CONNECT),
            read_timeout: millis(c, "readTimeout", 10000, MAX_READ),
            page_size: first(c, "batchSizeForSync")
                .and_then(|b| b.parse().ok())
                .filter(|b: &i32| *b > 0)
                .unwrap_or(1000),
            id,
        })
    }

    /// The search filter for one user (`None`: every user of the provider).
    pub fn filter(&self, username: Option<&str>) -> String {
        let extra = username
            .map(|u| filter::equals(&self.username_attribute, u))
            .unwrap_or_default();
        filter::and_classes(&self.object_classes, self.custom_filter.as_deref(), &extra)
    }

    fn attributes(&self) -> Vec<String> {
        let mut a = self.mappers.read_attributes();
        a.extend([self.username_attribute.clone(), self.uuid_attribute.clone()]);
        a.sort_by_key(|s| s.to_ascii_lowercase());
        a.dedup_by(|x, y| x.eq_ignore_ascii_case(y));
        a
    }

    fn scope(&self) -> Scope {
        if self.subtree {
            Scope::Subtree
        } else {
            Scope::OneLevel
        }
    }

    fn op_limit(&self) -> Duration {
        self.read_timeout + self.connect_timeout
    }

    /// What identifies this provider's connections: a change makes new ones.
    fn fingerprint(&self) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (
            &self.urls,
            self.start_tls,
            &self.bind_dn,
            &self.bind_credential,
            self.connect_timeout,
            self.read_timeout,
        )
            .hash(&mut h);
        h.finish()
    }

    /// What keys this provider's pool, syncs and schedules: realm and component id.
    pub fn key(&self) -> String {
        format!("{}/{}", self.realm_id, self.id)
    }

    /// Work on this provider's pool entry (a fresh one when its settings changed). A
    /// provider that is not pooled gets a throw-away entry.
    fn pooled<T>(&self, f: impl FnOnce(&mut Pooled) -> T) -> T {
        let fingerprint = self.fingerprint();
        if !self.pooled {
            return f(&mut Pooled::new(fingerprint));
        }
        let mut pool = POOL.lock().unwrap_or_else(|p| p.into_inner());
        let entry = pool
            .entry(self.key())
            .or_insert_with(|| Pooled::new(fingerprint));
        if entry.fingerprint != fingerprint {
            *entry = Pooled::new(fingerprint);
        }
        f(entry)
    }

    /// Run one directory operation within `limit`, holding one of the provider's
    /// [`IN_FLIGHT`] places.
    async fn bounded<T>(
        &self,
        limit: Duration,
        op: impl Future<Output = Result<T, LdapError>>,
    ) -> Result<T, LdapError> {
        let permits = self.pooled(|p| p.permits.clone());
        let _permit = permits
            .acquire()
            .await
            .map_err(|e| LdapError::Search(e.to_string()))?;
        tokio::time::timeout(limit, op)
            .await
            .unwrap_or_else(|_| Err(LdapError::Search("timed out".into())))
    }

    /// A connection to the first URL that answers, bound as `dn` when given.
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
                    if let (Some(dn), Some(pw)) = (dn, password) {
                        match ldap.simple_bind(dn, pw).await {
                            Ok(r) if r.rc == 0 => {}
                            Ok(r) => {
                                let _ = ldap.unbind().await;
                                return Err(if r.rc == 49 {
                                    LdapError::Bind(describe(&r))
                                } else {
                                    LdapError::Search(format!("bind: {}", describe(&r)))
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

    /// Run `op` on the provider's service connection (bound as its bind DN): the pooled one,
    /// or a new one; a pooled one that turns out closed is replaced and `op` tried again.
    async fn with_service<T, F, Fut>(&self, op: F) -> Result<T, LdapError>
    where
        F: Fn(Ldap) -> Fut,
        Fut: Future<Output = Result<T, ldap3::LdapError>>,
    {
        self.on_service(op, true).await
    }

    /// [`Provider::with_service`]; `retry: false` for what must not be sent twice (an add).
    async fn on_service<T, F, Fut>(&self, op: F, retry: bool) -> Result<T, LdapError>
    where
        F: Fn(Ldap) -> Fut,
        Fut: Future<Output = Result<T, ldap3::LdapError>>,
    {
        let pooled = self.pooled(|p| {
            if p.service.as_mut().is_some_and(|l| l.is_closed()) {
                p.service = None;
            }
            p.service.clone()
        });
        let was_pooled = pooled.is_some();
        let ldap = match pooled {
            Some(l) => l,
            None => self.fresh_service().await?,
        };
        match op(ldap).await {
            Ok(v) => Ok(v),
            Err(e) if transport(&e) => {
                self.pooled(|p| p.service = None);
                if !was_pooled || !retry {
                    return Err(LdapError::Search(e.to_string()));
                }
                let ldap = self.fresh_service().await?;
                op(ldap).await.map_err(|e| {
                    if transport(&e) {
                        self.pooled(|p| p.service = None);
                    }
                    LdapError::Search(e.to_string())
                })
            }
            Err(e) => Err(failed(e)),
        }
    }

    async fn fresh_service(&self) -> Result<Ldap, LdapError> {
        let ldap = self
            .connect_as(self.bind_dn.as_deref(), self.bind_credential.as_deref())
            .await?;
        self.pooled(|p| p.service = Some(ldap.clone()));
        Ok(ldap)
    }

    fn entry(&self, e: SearchEntry) -> Option<Entry> {
        let values = |name: &str| -> Vec<String> {
            e.attrs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.iter().filter(|v| !v.is_empty()).cloned().collect())
                .unwrap_or_default()
        };
        let binary = |name: &str| -> Vec<Vec<u8>> {
            e.bin_attrs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let one = |name: &str| values(name).into_iter().next();
        let uuid = match one(&self.uuid_attribute) {
            Some(u) => u,
            None => binary(&self.uuid_attribute).first().map(|b| ad::guid(b))?,
        };
        let mut entry = Entry {
            username: one(&self.username_attribute)?.to_lowercase(),
            uuid,
            dn: e.dn.clone(),
            ..Entry::default()
        };
        for m in &self.mappers.attributes {
            match m.model.as_str() {
                "username" => {}
                "email" => entry.email = one(&m.ldap).map(|v| v.to_lowercase()),
                "firstName" => entry.first_name = one(&m.ldap),
                "lastName" => entry.last_name = one(&m.ldap),
                model => {
                    use base64::Engine;
                    let mut v = values(&m.ldap);
                    if m.binary || v.is_empty() {
                        v.extend(
                            binary(&m.ldap)
                                .iter()
                                .map(|b| base64::engine::general_purpose::STANDARD.encode(b)),
                        );
                    }
                    if !v.is_empty() {
                        entry.attributes.insert(model.to_string(), v);
                    }
                }
            }
        }
        if let Some(full) = self.mappers.full_name.as_ref().filter(|f| !f.write_only) {
            if let Some(name) = one(&full.ldap) {
                let (first, last) = mappers::split_full_name(&name);
                entry.first_name = first.or(entry.first_name);
                entry.last_name = last.or(entry.last_name);
            }
        }
        if self.mappers.msad {
            entry.disabled = one("userAccountControl").map(|v| ad::disabled(&v));
            entry.must_change_password = one("pwdLastSet").as_deref() == Some("0");
        }
        for m in &self.mappers.memberships {
            for a in m
                .member_of
                .iter()
                .chain((!m.member_by_dn).then_some(&m.member_user_attribute))
            {
                entry.raw.insert(a.to_ascii_lowercase(), values(a));
            }
        }
        Some(entry)
    }

    /// The entry of `username`, if the directory has exactly one.
    pub async fn find(&self, username: &str) -> Result<Option<Entry>, LdapError> {
        let filter = self.filter(Some(username));
        let attributes = self.attributes();
        let search = self.with_service(|mut ldap| {
            let (filter, attributes) = (filter.clone(), attributes.clone());
            async move {
                ldap.search(&self.users_dn, self.scope(), &filter, attributes)
                    .await?
                    .success()
            }
        });
        let (entries, _) = self.bounded(self.op_limit(), search).await?;
        let mut found: Vec<Entry> = entries
            .into_iter()
            .filter_map(|e| self.entry(construct(e)?))
            .collect();
        Ok(match found.len() {
            1 => found.pop(),
            _ => None,
        })
    }

    /// The entry at `dn` (one of this provider's users), if there is one.
    pub async fn read(&self, dn: &str) -> Result<Option<Entry>, LdapError> {
        let filter = self.filter(None);
        let attributes = self.attributes();
        let search = self.with_service(|mut ldap| {
            let (filter, attributes) = (filter.clone(), attributes.clone());
            async move {
                let ldap3::SearchResult(entries, r) =
                    ldap.search(dn, Scope::Base, &filter, attributes).await?;
                match r.rc {
                    // noSuchObject: gone.
                    32 => Ok(Vec::new()),
                    _ => ldap3::SearchResult(entries, r).success().map(|s| s.0),
                }
            }
        });
        let entries = self.bounded(self.op_limit(), search).await?;
        Ok(entries
            .into_iter()
            .filter_map(|e| self.entry(construct(e)?))
            .next())
    }

    /// Whether `password` is the entry's: a bind as its DN, on a connection of the pool's.
    /// An empty password is never tried (an LDAP server takes it as an anonymous bind and
    /// says yes).
    pub async fn check_password(
        &self,
        entry: &Entry,
        password: &str,
    ) -> Result<PasswordCheck, LdapError> {
        if password.is_empty() || entry.dn.is_empty() {
            return Ok(PasswordCheck::Invalid);
        }
        self.bounded(self.op_limit(), self.bind_as(&entry.dn, password))
            .await
    }

    async fn bind_as(&self, dn: &str, password: &str) -> Result<PasswordCheck, LdapError> {
        for attempt in 0..2 {
            let pooled = self.pooled(|p| {
                while let Some(mut l) = p.binds.pop() {
                    if !l.is_closed() {
                        return Some(l);
                    }
                }
                None
            });
            let was_pooled = pooled.is_some();
            let mut ldap = match pooled {
                Some(l) => l,
                None => self.connect_as(None, None).await?,
            };
            match ldap.simple_bind(dn, password).await {
                Ok(r) => {
                    let outcome = match r.rc {
                        0 => PasswordCheck::Valid,
                        49 if self.mappers.msad => match ad::bind_refusal(&r.text) {
                            ad::BindRefusal::MustChangePassword
                            | ad::BindRefusal::PasswordExpired => PasswordCheck::MustChange,
                            _ => PasswordCheck::Invalid,
                        },
                        49 => PasswordCheck::Invalid,
                        _ => {
                            let _ = ldap.unbind().await;
                            return Err(LdapError::Search(format!("bind: {}", describe(&r))));
                        }
                    };
                    self.pooled(|p| {
                        if p.binds.len() < IDLE_BINDS {
                            p.binds.push(ldap);
                        }
                    });
                    return Ok(outcome);
                }
                // A pooled connection the server closed meanwhile: once more on a new one.
                Err(e) if was_pooled && attempt == 0 && transport(&e) => continue,
                Err(e) => return Err(LdapError::Search(e.to_string())),
            }
        }
        Err(LdapError::Search("no connection".into()))
    }

    /// Every user entry of the provider, read in pages.
    pub async fn all(&self) -> Result<Listing, LdapError> {
        self.search_users(self.filter(None)).await
    }

    /// The users created or changed at or after `since` (seconds since the epoch), by the
    /// directory's operational timestamps.
    pub async fn changed_since(&self, since: i64) -> Result<Listing, LdapError> {
        let at = filter::generalized_time(since);
        let (created, modified) = if self.active_directory {
            ("whenCreated", "whenChanged")
        } else {
            ("createTimestamp", "modifyTimestamp")
        };
        let extra = format!("(|({created}>={at})({modified}>={at}))");
        let f = filter::and_classes(&self.object_classes, self.custom_filter.as_deref(), &extra);
        self.search_users(f).await
    }

    async fn search_users(&self, filter: String) -> Result<Listing, LdapError> {
        let limit = Duration::from_secs(600).max(self.read_timeout);
        let attributes = self.attributes();
        let search = self.with_service(|mut ldap| {
            let (filter, attributes) = (filter.clone(), attributes.clone());
            async move {
                let adapters: Vec<Box<dyn Adapter<_, _>>> = vec![
                    Box::new(EntriesOnly::new()),
                    Box::new(PagedResults::new(self.page_size)),
                ];
                let mut stream = ldap
                    .streaming_search_with(
                        adapters,
                        &self.users_dn,
                        self.scope(),
                        &filter,
                        attributes,
                    )
                    .await?;
                let mut out = Listing::default();
                while let Some(e) = stream.next().await? {
                    match construct(e).and_then(|e| self.entry(e)) {
                        Some(entry) => out.entries.push(entry),
                        None => out.dropped += 1,
                    }
                }
                stream.finish().await.success()?;
                Ok(out)
            }
        });
        self.bounded(limit, search).await
    }

    /// The directory values of a user's fields, for the mappers that write (`None`: the
    /// attribute is removed). The username attribute is not among them (it names the entry).
    pub fn values_of(&self, user: &UserRecord) -> Vec<(String, Option<String>)> {
        let mut out: Vec<(String, Option<String>)> = Vec::new();
        let mut push =
            |attr: &str, value: Option<String>, mandatory: bool, default: Option<&str>| {
                let value = value
                    .filter(|v| !v.trim().is_empty())
                    .or_else(|| mandatory.then(|| default.unwrap_or(EMPTY_VALUE).to_string()));
                if !out.iter().any(|(a, _)| a.eq_ignore_ascii_case(attr)) {
                    out.push((attr.to_string(), value));
                }
            };
        for m in self.mappers.attributes.iter().filter(|m| !m.read_only) {
            let value = match m.model.as_str() {
                "username" => continue,
                "email" => user.email.clone(),
                "firstName" => user.first_name.clone(),
                "lastName" => user.last_name.clone(),
                other => user.attributes.get(other).and_then(|v| v.first().cloned()),
            };
            if m.ldap.eq_ignore_ascii_case(&self.rdn_attribute) {
                continue;
            }
            push(&m.ldap, value, m.mandatory, m.default_value.as_deref());
        }
        if let Some(full) = self.mappers.full_name.as_ref().filter(|f| !f.read_only) {
            let name = [user.first_name.as_deref(), user.last_name.as_deref()]
                .into_iter()
                .flatten()
                .filter(|s| !s.trim().is_empty())
                .collect::<Vec<_>>()
                .join(" ");
            let name = (!name.is_empty()).then_some(name);
            if !full.ldap.eq_ignore_ascii_case(&self.rdn_attribute) {
                push(&full.ldap, name.or(Some(user.username.clone())), true, None);
            }
        }
        out
    }

    /// Write `changes` (attribute → new value, `None` removes it) to the entry at `dn`.
    pub async fn modify(
        &self,
        dn: &str,
        changes: &[(String, Option<String>)],
    ) -> Result<(), LdapError> {
        if changes.is_empty() {
            return Ok(());
        }
        let write = self.with_service(|mut ldap| async move {
            let mods: Vec<Mod<String>> = changes
                .iter()
                .map(|(a, v)| Mod::Replace(a.clone(), v.iter().cloned().collect()))
                .collect();
            ldap.modify(dn, mods).await?.success().map(|_| ())
        });
        self.bounded(self.op_limit(), write)
            .await
            .map_err(|e| self.as_refusal(e))
    }

    /// Errors of writes: a result code is the directory refusing the change.
    fn as_refusal(&self, e: LdapError) -> LdapError {
        match e {
            LdapError::Search(m) if m.starts_with("result code") => LdapError::Refused(m),
            e => e,
        }
    }

    /// Set the password of the entry at `dn`: the password modify extended operation
    /// (RFC 3062) when configured, `unicodePwd` on Active Directory, else `userPassword`.
    pub async fn set_password(&self, dn: &str, password: &str) -> Result<(), LdapError> {
        let write = self.with_service(|mut ldap| async move {
            if self.active_directory {
                let value: HashSet<Vec<u8>> = [ad::unicode_pwd(password)].into();
                ldap.modify(dn, vec![Mod::Replace(b"unicodePwd".to_vec(), value)])
                    .await?
                    .success()
                    .map(|_| ())
            } else if self.use_password_modify {
                ldap.extended(ldap3::exop::PasswordModify {
                    user_id: Some(dn),
                    old_pass: None,
                    new_pass: Some(password),
                })
                .await?
                .success()
                .map(|_| ())
            } else {
                let value: HashSet<String> = [password.to_string()].into();
                ldap.modify(dn, vec![Mod::Replace("userPassword".to_string(), value)])
                    .await?
                    .success()
                    .map(|_| ())
            }
        });
        self.bounded(self.op_limit(), write)
            .await
            .map_err(|e| self.as_refusal(e))
    }

    /// Active Directory: enable or disable the account (`userAccountControl`).
    pub async fn set_enabled(&self, dn: &str, enabled: bool) -> Result<(), LdapError> {
        if !self.active_directory || !self.mappers.msad {
            return Ok(());
        }
        let current = self.read_attribute(dn, "userAccountControl").await?;
        let uac = ad::with_disabled(current.as_deref(), !enabled);
        self.modify(dn, &[("userAccountControl".into(), Some(uac))])
            .await
    }

    /// One attribute's first value of the entry at `dn`.
    async fn read_attribute(&self, dn: &str, attribute: &str) -> Result<Option<String>, LdapError> {
        let search = self.with_service(|mut ldap| async move {
            ldap.search(dn, Scope::Base, "(objectClass=*)", vec![attribute])
                .await?
                .success()
        });
        let (entries, _) = self.bounded(self.op_limit(), search).await?;
        Ok(entries
            .into_iter()
            .filter_map(construct)
            .flat_map(|e| e.attrs.into_iter())
            .find(|(k, _)| k.eq_ignore_ascii_case(attribute))
            .and_then(|(_, v)| v.into_iter().next()))
    }

    /// Create the entry of a new local user (`syncRegistrations`) and read it back.
    pub async fn create(&self, user: &UserRecord) -> Result<Entry, LdapError> {
        let dn = format!(
            "{}={},{}",
            self.rdn_attribute,
            filter::dn_escape(user.username.as_str()),
            self.users_dn
        );
        let mut attrs: Vec<(String, HashSet<String>)> = vec![
            (
                "objectClass".into(),
                self.object_classes.iter().cloned().collect(),
            ),
            (self.rdn_attribute.clone(), [user.username.clone()].into()),
        ];
        if !self
            .username_attribute
            .eq_ignore_ascii_case(&self.rdn_attribute)
        {
            attrs.push((
                self.username_attribute.clone(),
                [user.username.clone()].into(),
            ));
        }
        let mut values = self.values_of(user);
        // `cn` is mandatory for the usual person classes: the username when nothing
        // else writes it.
        if !self.active_directory
            && !self.rdn_attribute.eq_ignore_ascii_case("cn")
            && !values.iter().any(|(a, _)| a.eq_ignore_ascii_case("cn"))
        {
            values.push(("cn".into(), Some(user.username.clone())));
        }
        for (a, v) in &self.mappers.hardcoded_attributes {
            values.push((a.clone(), Some(v.clone())));
        }
        if self.active_directory && self.mappers.msad {
            values.push((
                "userAccountControl".into(),
                Some(ad::with_disabled(None, !user.enabled)),
            ));
        }
        for (a, v) in values {
            if let Some(v) = v {
                if !attrs.iter().any(|(x, _)| x.eq_ignore_ascii_case(&a)) {
                    attrs.push((a, [v].into()));
                }
            }
        }
        let add = self.on_service(
            |mut ldap| {
                let attrs = attrs.clone();
                let dn = dn.clone();
                async move { ldap.add(&dn, attrs).await?.success().map(|_| ()) }
            },
            false,
        );
        self.bounded(self.op_limit(), add)
            .await
            .map_err(|e| self.as_refusal(e))?;
        match self.read(&dn).await {
            Ok(Some(entry)) => Ok(entry),
            // Not one of this provider's users after all (its filter leaves it out), or
            // unreadable: nothing half-made stays behind.
            other => {
                let _ = self.delete(&dn).await;
                Err(match other {
                    Err(e) => e,
                    _ => LdapError::Refused(format!(
                        "{dn} was created but is not one of the provider's users"
                    )),
                })
            }
        }
    }

    /// Delete the entry at `dn` (gone already is fine).
    pub async fn delete(&self, dn: &str) -> Result<(), LdapError> {
        let delete = self.with_service(|mut ldap| async move {
            match ldap.delete(dn).await? {
                r if r.rc == 32 => Ok(()),
                r => r.success().map(|_| ()),
            }
        });
        self.bounded(self.op_limit(), delete)
            .await
            .map_err(|e| self.as_refusal(e))
    }

    /// The groups (or roles) of `m` that `entry` is a direct member of: each as the path
    /// of names from its top-most ancestor (with `preserve.group.inheritance`) to itself.
    pub async fn memberships(
        &self,
        m: &MembershipMapper,
        entry: &Entry,
    ) -> Result<Vec<Vec<String>>, LdapError> {
        self.bounded(self.op_limit(), self.memberships_now(m, entry))
            .await
    }

    async fn memberships_now(
        &self,
        m: &MembershipMapper,
        entry: &Entry,
    ) -> Result<Vec<Vec<String>>, LdapError> {
        let direct: Vec<(String, String)> = match &m.member_of {
            // The user's `memberOf` names its groups: those under the mapper's DN.
            // Only those under the mapper's DN, named by its name attribute.
            Some(attr) => entry
                .raw(attr)
                .iter()
                .filter(|dn| filter::under(dn, &m.dn))
                .filter_map(|dn| {
                    let (a, name) = filter::rdn(dn)?;
                    a.eq_ignore_ascii_case(&m.name_attribute)
                        .then(|| (dn.clone(), name))
                })
                .filter(|(_, name)| usable_name(name))
                .collect(),
            None => {
                let member = if m.member_by_dn {
                    Some(entry.dn.clone())
                } else {
                    entry.raw(&m.member_user_attribute).first().cloned()
                };
                match member {
                    Some(member) => self.groups_with_member(m, &member).await?,
                    None => Vec::new(),
                }
            }
        };
        let inherit = matches!(
            m.target,
            Target::Groups {
                preserve_inheritance: true,
                ..
            }
        ) && m.member_by_dn;
        let mut out = Vec::new();
        for (dn, name) in direct {
            let mut path = vec![name];
            if inherit {
                // Up the tree: the group that lists this one as a member, at most 16 levels
                // (and never round a cycle).
                let mut seen = vec![dn.to_ascii_lowercase()];
                let mut at = dn;
                for _ in 0..16 {
                    let parents = self.groups_with_member(m, &at).await?;
                    let Some((parent_dn, parent)) = parents.into_iter().next() else {
                        break;
                    };
                    if seen.contains(&parent_dn.to_ascii_lowercase()) {
                        break;
                    }
                    seen.push(parent_dn.to_ascii_lowercase());
                    path.insert(0, parent);
                    at = parent_dn;
                }
            }
            out.push(path);
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// The groups of `m` with `member` among their members: (DN, name).
    async fn groups_with_member(
        &self,
        m: &MembershipMapper,
        member: &str,
    ) -> Result<Vec<(String, String)>, LdapError> {
        let f = filter::and_classes(
            &m.object_classes,
            m.filter.as_deref(),
            &filter::equals(&m.member_attribute, member),
        );
        self.groups(m, f)
            .await
            .map(|g| g.into_iter().map(|(dn, name, _)| (dn, name)).collect())
    }

    /// Whether `m`'s directory has a group (or role) named `name`.
    pub async fn group_exists(&self, m: &MembershipMapper, name: &str) -> Result<bool, LdapError> {
        let f = filter::and_classes(
            &m.object_classes,
            m.filter.as_deref(),
            &filter::equals(&m.name_attribute, name),
        );
        self.bounded(self.op_limit(), self.groups(m, f))
            .await
            .map(|g| !g.is_empty())
    }

    /// Every group of `m`: (DN, name, member values), read in pages.
    pub async fn all_groups(
        &self,
        m: &MembershipMapper,
    ) -> Result<Vec<(String, String, Vec<String>)>, LdapError> {
        let f = filter::and_classes(&m.object_classes, m.filter.as_deref(), "");
        self.bounded(
            Duration::from_secs(600).max(self.read_timeout),
            self.groups(m, f),
        )
        .await
    }

    async fn groups(
        &self,
        m: &MembershipMapper,
        filter: String,
    ) -> Result<Vec<(String, String, Vec<String>)>, LdapError> {
        let attributes = vec![m.name_attribute.clone(), m.member_attribute.clone()];
        self.with_service(|mut ldap| {
            let (filter, attributes) = (filter.clone(), attributes.clone());
            async move {
                let adapters: Vec<Box<dyn Adapter<_, _>>> = vec![
                    Box::new(EntriesOnly::new()),
                    Box::new(PagedResults::new(self.page_size)),
                ];
                let mut stream = ldap
                    .streaming_search_with(adapters, &m.dn, Scope::Subtree, &filter, attributes)
                    .await?;
                let mut out = Vec::new();
                while let Some(e) = stream.next().await? {
                    let Some(e) = construct(e) else { continue };
                    let get = |a: &str| {
                        e.attrs
                            .iter()
                            .find(|(k, _)| k.eq_ignore_ascii_case(a))
                            .map(|(_, v)| v.clone())
                            .unwrap_or_default()
                    };
                    if let Some(name) = get(&m.name_attribute).into_iter().next() {
                        if usable_name(&name) {
                            out.push((e.dn.clone(), name, get(&m.member_attribute)));
                        }
                    }
                }
                stream.finish().await.success()?;
                Ok(out)
            }
        })
        .await
    }

    /// The root DSE's supported controls, extensions and features
    /// (`ldap-server-capabilities`): (OID, `CONTROL`/`EXTENSION`/`FEATURE`).
    pub async fn capabilities(&self) -> Result<Vec<(String, &'static str)>, LdapError> {
        let search = self.with_service(|mut ldap| async move {
            ldap.search(
                "",
                Scope::Base,
                "(objectClass=*)",
                vec![
                    "supportedControl",
                    "supportedExtension",
                    "supportedFeatures",
                ],
            )
            .await?
            .success()
        });
        let (entries, _) = self.bounded(self.op_limit(), search).await?;
        let mut out = Vec::new();
        for e in entries.into_iter().filter_map(construct) {
            for (attr, kind) in [
                ("supportedControl", "CONTROL"),
                ("supportedExtension", "EXTENSION"),
                ("supportedFeatures", "FEATURE"),
            ] {
                for (k, v) in &e.attrs {
                    if k.eq_ignore_ascii_case(attr) {
                        out.extend(v.iter().map(|oid| (oid.clone(), kind)));
                    }
                }
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }
}

/// Whether a directory group's (or role's) name can be a local group's or role's: not
/// empty, no `/` (a path separator here), no control characters.
fn usable_name(name: &str) -> bool {
    !name.trim().is_empty() && !name.contains('/') && !name.chars().any(char::is_control)
}

/// A provider for a connection test or capability query from the admin API's body
/// (nothing stored, nothing pooled under a real provider's id).
pub fn for_test(
    urls: &str,
    start_tls: bool,
    bind: Option<(&str, &str)>,
    timeout: Duration,
) -> Provider {
    Provider {
        id: String::new(),
        realm_id: String::new(),
        pooled: false,
        name: String::new(),
        enabled: true,
        priority: 0,
        import_enabled: false,
        edit_mode: EditMode::ReadOnly,
        sync_registrations: false,
        validate_password_policy: false,
        trust_email: false,
        active_directory: false,
        full_sync_period: None,
        changed_sync_period: None,
        last_sync: None,
        mappers: Mappers::default(),
        use_password_modify: false,
        urls: urls.split_whitespace().map(str::to_string).collect(),
        start_tls,
        bind_dn: bind.map(|b| b.0.to_string()),
        bind_credential: bind.map(|b| b.1.to_string()),
        users_dn: String::new(),
        subtree: false,
        username_attribute: String::new(),
        rdn_attribute: String::new(),
        uuid_attribute: String::new(),
        object_classes: Vec::new(),
        custom_filter: None,
        connect_timeout: timeout,
        read_timeout: timeout,
        page_size: 1,
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
    if let Some((_, pw)) = bind {
        if pw.is_empty() {
            return Err(LdapError::Bind(
                "an empty credential is an anonymous bind".into(),
            ));
        }
    }
    let provider = for_test(urls, start_tls, bind, timeout);
    let mut ldap = provider
        .bounded(
            timeout * 2,
            provider.connect_as(bind.map(|b| b.0), bind.map(|b| b.1)),
        )
        .await?;
    let _ = ldap.unbind().await;
    Ok(())
}

/// Decode a search result entry. ldap3 panics on a DN or value that is not UTF-8 (a
/// hostile or broken server): such an entry is skipped, never a crashed request.
fn construct(e: ldap3::ResultEntry) -> Option<SearchEntry> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| SearchEntry::construct(e))).ok()
}

/// The realm's LDAP providers (enabled or not), by priority, with their mappers.
pub fn all_providers<T: Txn>(read: &View<T>, realm_id: &str) -> StoreResult<Vec<Provider>> {
    let components = read.objects(realm_id, COMPONENT_KIND)?;
    let mut list: Vec<Provider> = components
        .iter()
        .filter_map(|c| Provider::from_component(c, &components))
        .map(|mut p| {
            p.realm_id = realm_id.to_string();
            p
        })
        .collect();
    list.sort_by_key(|p| p.priority);
    Ok(list)
}

/// The realm's enabled LDAP providers, by priority.
pub fn providers<T: Txn>(read: &View<T>, realm_id: &str) -> StoreResult<Vec<Provider>> {
    let mut list = all_providers(read, realm_id)?;
    list.retain(|p| p.enabled);
    Ok(list)
}

/// One provider of the realm by id (enabled or not).
pub fn provider<T: Txn>(read: &View<T>, realm_id: &str, id: &str) -> StoreResult<Option<Provider>> {
    Ok(all_providers(read, realm_id)?
        .into_iter()
        .find(|p| p.id == id))
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
            "customUserSearchFilter": ["(memberOf=cn=staff,dc=example,dc=org)"]}}), &[])
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
        assert_eq!(
            rt.block_on(p.check_password(&entry, "")),
            Ok(PasswordCheck::Invalid)
        );
        let r = rt.block_on(test(
            "ldap://127.0.0.1:1",
            false,
            Some(("cn=x", "")),
            Duration::from_millis(200),
        ));
        assert!(matches!(r, Err(LdapError::Bind(_))), "{r:?}");
        assert!(Provider::from_component(
            &json!({"id": "x", "providerId": "rsa", "providerType": "k"}),
            &[]
        )
        .is_none());
    }

    #[test]
    fn writes_follow_the_mappers() {
        let mut p = provider();
        let c = |model: &str, ldap: &str, ro: bool, mandatory: bool| {
            json!({"id": model, "parentId": "c1", "providerId": "user-attribute-ldap-mapper",
                   "providerType": MAPPER_TYPE, "config": {"user.model.attribute": [model],
                   "ldap.attribute": [ldap], "read.only": [ro.to_string()],
                   "is.mandatory.in.ldap": [mandatory.to_string()]}})
        };
        let subs = [
            c("username", "uid", false, true),
            c("lastName", "sn", false, true),
            c("email", "mail", false, false),
            c("phone", "telephoneNumber", false, false),
            c("createTimestamp", "createTimestamp", true, false),
        ];
        p.mappers = Mappers::from_components(&subs.iter().collect::<Vec<_>>(), "uid");
        let mut user = UserRecord {
            username: "jane".into(),
            email: Some("jane@example.org".into()),
            ..Default::default()
        };
        user.attributes.insert("phone".into(), vec!["+41 1".into()]);
        let v = p.values_of(&user);
        assert_eq!(
            v,
            [
                ("sn".to_string(), Some(" ".to_string())),
                ("mail".into(), Some("jane@example.org".into())),
                ("telephoneNumber".into(), Some("+41 1".into())),
            ],
            "the RDN and read-only attributes are not written; a mandatory one gets Keycloak's placeholder"
        );
        assert_eq!(p.mappers.read_only_fields(), ["createTimestamp"]);
    }
}
