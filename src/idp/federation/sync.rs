//! Syncs of an LDAP provider's users into the store: full (every entry; imported users the
//! directory no longer has are removed) and changed-users (entries created or modified since
//! the last sync, by the directory's timestamps), on demand from the admin API and
//! periodically by `fullSyncPeriod` / `changedSyncPeriod`. Entries are written in batches,
//! one transaction each; a batch that fails on a taken name or address is redone one user
//! per transaction, so one bad entry does not hold up the others.

use std::collections::{HashMap, HashSet};
use std::sync::{LazyLock, Mutex};

use serde_json::json;

use super::{import, memberships, same_entry};
use crate::idp::ldap::{self, Entry, Provider, COMPONENT_KIND, LDAP_ID};
use crate::idp::App;
use crate::store::{RealmRecord, StoreError, UserRecord, Write};

/// Users written per transaction.
const BATCH: usize = 500;

/// Keycloak's `SynchronizationResult` of a sync.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SyncResult {
    pub added: usize,
    pub updated: usize,
    pub removed: usize,
    pub failed: usize,
}

impl SyncResult {
    /// Keycloak's `status` line.
    pub fn status(&self) -> String {
        let mut s = format!(
            "{} imported users, {} updated users",
            self.added, self.updated
        );
        if self.removed > 0 {
            s.push_str(&format!(", {} removed users", self.removed));
        }
        if self.failed > 0 {
            s.push_str(&format!(", {} users failed sync!", self.failed));
        }
        s
    }

    pub fn json(&self) -> serde_json::Value {
        json!({"ignored": false, "added": self.added, "updated": self.updated,
               "removed": self.removed, "failed": self.failed, "status": self.status()})
    }
}

/// Providers with a sync running: a second one for the same provider waits its turn.
static RUNNING: LazyLock<Mutex<HashSet<String>>> = LazyLock::new(Default::default);

/// A sync holding its key in [`RUNNING`] until dropped.
pub struct Running(String);

/// The right to run the sync keyed `key`, unless one runs already.
pub fn exclusive(key: String) -> Option<Running> {
    let mut running = RUNNING.lock().unwrap_or_else(|p| p.into_inner());
    running.insert(key.clone()).then_some(Running(key))
}

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.0);
    }
}

/// Sync `provider`'s users: every entry (`full`), or those changed since its last sync (a
/// full one when it never synced).
pub async fn sync(
    app: &App,
    realm: &RealmRecord,
    provider: &Provider,
    full: bool,
) -> Result<SyncResult, String> {
    let _running = exclusive(provider.key())
        .ok_or_else(|| "a sync of this provider is running already".to_string())?;
    let started = app.clock.now_millis() / 1000;
    let full = full || provider.last_sync.is_none();
    tracing::info!(realm = %realm.name, provider = %provider.name, full, "LDAP sync started");
    let listing = match (full, provider.last_sync) {
        (false, Some(since)) => provider.changed_since(since).await,
        _ => provider.all().await,
    }
    .map_err(|e| e.to_string())?;
    let entries = listing.entries;
    let mut result = SyncResult::default();
    let now = app.clock.now_millis();
    for (i, chunk) in entries.chunks(BATCH).enumerate() {
        let plans = plans(app, realm, provider, chunk).await;
        match app.store.write(|w| {
            let mut r = SyncResult::default();
            for (entry, plan) in chunk.iter().zip(&plans) {
                match one(w, realm, provider, entry, plan, now)? {
                    Outcome::Added => r.added += 1,
                    Outcome::Updated => r.updated += 1,
                    Outcome::Same => {}
                    Outcome::Skipped => r.failed += 1,
                }
            }
            Ok::<_, StoreError>(r)
        }) {
            Ok(r) => add(&mut result, r),
            Err(StoreError::Conflict(_)) => {
                for (entry, plan) in chunk.iter().zip(&plans) {
                    match app
                        .store
                        .write(|w| one(w, realm, provider, entry, plan, now))
                    {
                        Ok(Outcome::Added) => result.added += 1,
                        Ok(Outcome::Updated) => result.updated += 1,
                        Ok(Outcome::Same) => {}
                        Ok(Outcome::Skipped) | Err(StoreError::Conflict(_)) => result.failed += 1,
                        Err(e) => return Err(e.to_string()),
                    }
                }
            }
            Err(e) => return Err(e.to_string()),
        }
        tracing::info!(realm = %realm.name, provider = %provider.name, done = (i * BATCH + chunk.len()), of = entries.len(), "LDAP sync progress");
    }
    if full && listing.dropped == 0 && !entries.is_empty() {
        // Who the directory no longer has goes: only after a complete read of it in which
        // every entry was understood (an entry missing its username, or a search that
        // suddenly finds nobody, removes no one).
        let present: HashSet<&str> = entries.iter().map(|e| e.uuid.as_str()).collect();
        result.removed = remove_missing(app, realm, provider, &present)?;
    } else if full && listing.dropped > 0 {
        tracing::warn!(realm = %realm.name, provider = %provider.name, dropped = listing.dropped, "LDAP sync: entries without a username or UUID; no users removed");
        result.failed += listing.dropped;
    }
    app.store
        .write(|w| record_last_sync(w, realm, provider, started))
        .map_err(|e| e.to_string())?;
    app.metrics
        .ldap_synced(result.added, result.updated, result.removed, result.failed);
    tracing::info!(realm = %realm.name, provider = %provider.name, added = result.added, updated = result.updated, removed = result.removed, failed = result.failed, "LDAP sync finished");
    Ok(result)
}

fn add(total: &mut SyncResult, r: SyncResult) {
    total.added += r.added;
    total.updated += r.updated;
    total.removed += r.removed;
    total.failed += r.failed;
}

/// The memberships of a chunk's users (only when the provider has membership mappers).
async fn plans(
    app: &App,
    realm: &RealmRecord,
    provider: &Provider,
    chunk: &[Entry],
) -> Vec<memberships::Plan> {
    if provider.mappers.memberships.is_empty()
        && provider.mappers.hardcoded_roles.is_empty()
        && provider.mappers.hardcoded_groups.is_empty()
    {
        return vec![memberships::Plan::default(); chunk.len()];
    }
    let mut out = Vec::with_capacity(chunk.len());
    for entry in chunk {
        let known = app
            .store
            .read()
            .and_then(|r| r.user_by_username(&realm.id, &entry.username))
            .ok()
            .flatten()
            .filter(|u| u.federation_link.as_deref() == Some(provider.id.as_str()));
        out.push(
            memberships::plan(
                app,
                realm,
                provider,
                entry,
                known.as_ref().map(|u| u.id.as_str()),
            )
            .await,
        );
    }
    out
}

enum Outcome {
    Added,
    Updated,
    Same,
    /// A local account of that name, or another entry's: left alone.
    Skipped,
}

fn one(
    w: &mut Write,
    realm: &RealmRecord,
    provider: &Provider,
    entry: &Entry,
    plan: &memberships::Plan,
    now: i64,
) -> Result<Outcome, StoreError> {
    let existing = w.user_by_username(&realm.id, &entry.username)?;
    if let Some(u) = &existing {
        if u.federation_link.as_deref() != Some(provider.id.as_str()) || !same_entry(u, entry) {
            return Ok(Outcome::Skipped);
        }
    }
    let before: Option<UserRecord> = existing.clone();
    let user = import(w, realm, provider, entry, existing, now)?;
    memberships::apply(w, realm, provider, &user.id, plan)?;
    Ok(match before {
        None => Outcome::Added,
        Some(b) if b != user => Outcome::Updated,
        Some(_) => Outcome::Same,
    })
}

/// Delete the provider's imported users whose entries are not in `present` (by `LDAP_ID`).
fn remove_missing(
    app: &App,
    realm: &RealmRecord,
    provider: &Provider,
    present: &HashSet<&str>,
) -> Result<usize, String> {
    let gone: Vec<String> = imported(app, &realm.id, &provider.id)
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|u| {
            u.attributes
                .get(LDAP_ID)
                .and_then(|v| v.first())
                .is_some_and(|id| !present.contains(id.as_str()))
        })
        .map(|u| u.id)
        .collect();
    for chunk in gone.chunks(BATCH) {
        app.store
            .write(|w| {
                for id in chunk {
                    w.delete_user(&realm.id, id)?;
                }
                Ok::<_, StoreError>(())
            })
            .map_err(|e| e.to_string())?;
    }
    Ok(gone.len())
}

/// The users a provider imported.
pub fn imported(
    app: &App,
    realm_id: &str,
    provider_id: &str,
) -> Result<Vec<UserRecord>, StoreError> {
    let read = app.store.read()?;
    let mut out = Vec::new();
    let mut first = 0;
    loop {
        let page = read.users_page(realm_id, first, 1000)?;
        if page.is_empty() {
            break;
        }
        first += page.len();
        out.extend(
            page.into_iter()
                .filter(|u| u.federation_link.as_deref() == Some(provider_id)),
        );
    }
    Ok(out)
}

/// Keep when the sync started in the component's `lastSync` (as Keycloak does): the next
/// changed-users sync reads from there.
fn record_last_sync(
    w: &mut Write,
    realm: &RealmRecord,
    provider: &Provider,
    started: i64,
) -> Result<(), StoreError> {
    if let Some(mut c) = w.object(&realm.id, COMPONENT_KIND, &provider.id)? {
        if let Some(config) = c.get_mut("config").and_then(|v| v.as_object_mut()) {
            config.insert("lastSync".into(), json!([started.to_string()]));
            w.put_object(&realm.id, COMPONENT_KIND, &provider.id, &c)?;
        }
    }
    Ok(())
}

/// When each provider's last full sync of this process ran, and when a failed periodic
/// sync may be tried again (seconds; by [`Provider::key`]).
static LAST_FULL: LazyLock<Mutex<HashMap<String, i64>>> = LazyLock::new(Default::default);
static RETRY_AFTER: LazyLock<Mutex<HashMap<String, i64>>> = LazyLock::new(Default::default);

/// Start the periodic syncs that are due (called by the housekeeping loop), each in its own
/// task: a large directory does not hold up another's. A full sync is due `fullSyncPeriod`
/// after the last full one (of this process: it first runs a period after start, as
/// Keycloak's timers do); a changed-users sync `changedSyncPeriod` after the last sync of
/// either kind. One that fails is tried again a period later; `lastSync` moves only with
/// a sync that succeeded, so no change is skipped.
pub async fn periodic(app: &App) {
    // Periodic syncs run on one node of those sharing the store at a time: the node that
    // holds the lease renews it every sweep (10 s); another takes over 30 s after it stops.
    let store = app.store.clone();
    let now_ms = app.clock.now_millis();
    let leased = tokio::task::spawn_blocking(move || {
        store.try_lease("ldap-sync", store.node_id(), now_ms, 30_000)
    })
    .await;
    match leased {
        Ok(Ok(true)) => {}
        Ok(Ok(false)) => return,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cannot take the LDAP sync lease");
            return;
        }
        Err(_) => return,
    }
    let due = match due(app) {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the LDAP providers for periodic sync");
            return;
        }
    };
    for (realm, provider, full, period) in due {
        if RUNNING
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&provider.key())
        {
            continue;
        }
        let now = app.clock.now_millis() / 1000;
        if full {
            lock(&LAST_FULL).insert(provider.key(), now);
        }
        let app = app.clone();
        tokio::spawn(async move {
            if let Err(e) = sync(&app, &realm, &provider, full).await {
                tracing::warn!(realm = %realm.name, provider = %provider.name, error = %e, "periodic LDAP sync failed");
                lock(&RETRY_AFTER).insert(provider.key(), now + period);
            } else {
                lock(&RETRY_AFTER).remove(&provider.key());
            }
        });
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The syncs due: (realm, provider, full, its period in seconds).
fn due(app: &App) -> Result<Vec<(RealmRecord, Provider, bool, i64)>, StoreError> {
    let now = app.clock.now_millis() / 1000;
    let read = app.store.read()?;
    let mut out = Vec::new();
    let mut last_full = lock(&LAST_FULL);
    let retry = lock(&RETRY_AFTER);
    for realm in read.realms()? {
        for p in ldap::providers(&read, &realm.id)? {
            if retry.get(&p.key()).is_some_and(|at| now < *at) {
                continue;
            }
            let full_period = p.full_sync_period.map(|d| d.as_secs() as i64);
            let changed_period = p.changed_sync_period.map(|d| d.as_secs() as i64);
            let full_due = full_period.is_some_and(|period| {
                let since = *last_full.entry(p.key()).or_insert(now);
                now - since >= period
            });
            let changed_due =
                changed_period.is_some_and(|period| now - p.last_sync.unwrap_or(0) >= period);
            if full_due || changed_due {
                let period = if full_due {
                    full_period
                } else {
                    changed_period
                };
                out.push((realm.clone(), p, full_due, period.unwrap_or(60)));
            }
        }
    }
    Ok(out)
}
