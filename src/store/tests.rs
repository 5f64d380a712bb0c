//! Store tests: uniqueness, cascades, atomicity, persistence, and a model-based run that
//! keeps a `BTreeMap` in step with the database.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};

use super::*;

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

/// A store on a database of its own in the test PostgreSQL server (see
/// `scripts/with-postgres.sh`, which `make test` runs the tests under).
pub(crate) fn open_postgres() -> (tempfile::TempDir, Store, PgOptions) {
    let dir = tempfile::tempdir().unwrap();
    let options = postgres::testing::fresh_database();
    let store = Store::open_postgres(dir.path(), &options).unwrap();
    (dir, store, options)
}

/// Each test in it runs on redb and on PostgreSQL: `name::redb`, `name::postgres`.
macro_rules! both {
    ($(fn $name:ident($store:ident) $body:block)*) => {$(
        mod $name {
            use super::*;

            fn run($store: Store) $body

            #[test]
            fn redb() {
                let (_dir, store) = open();
                run(store)
            }

            #[test]
            fn postgres() {
                let (_dir, store, _) = open_postgres();
                run(store)
            }
        }
    )*};
}

fn realm(store: &Store, name: &str) -> String {
    let id = uuid::Uuid::new_v4().to_string();
    store
        .write(|w| {
            w.put_realm(&RealmRecord {
                id: id.clone(),
                name: name.into(),
                ..Default::default()
            })
        })
        .unwrap();
    id
}

fn user(id: &str, username: &str, email: Option<&str>) -> UserRecord {
    UserRecord {
        id: id.into(),
        username: username.into(),
        email: email.map(Into::into),
        enabled: true,
        ..Default::default()
    }
}

both! {
    fn a_queued_mail_is_claimed_by_one_attempt_at_a_time(store) {
    let mail = |id: &str, due_ms: i64| QueuedMailRecord {
        id: id.into(),
        realm_id: "r".into(),
        to: "a@x.test".into(),
        attempts: 1,
        due_ms,
        ..Default::default()
    };
    store
        .write(|w| {
            w.queue_mail(&mail("soon", 1_000))?;
            w.queue_mail(&mail("later", 50_000))
        })
        .unwrap();
    assert!(!store.read().unwrap().mail_due(999).unwrap());
    assert!(store.read().unwrap().mail_due(1_000).unwrap());
    let claimed = store
        .write(|w| w.claim_due_mails(2_000, 32_000, 16))
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!((claimed[0].id.as_str(), claimed[0].attempts, claimed[0].due_ms), ("soon", 2, 32_000));
    // Held by that attempt: nobody else gets it meanwhile.
    assert!(store.write(|w| w.claim_due_mails(2_001, 32_001, 16)).unwrap().is_empty());
    // A failed attempt makes it due again; a sender that died leaves it due after the hold.
    assert!(store.write(|w| w.reschedule_mail("soon", 7_000)).unwrap());
    assert_eq!(store.write(|w| w.claim_due_mails(7_000, 37_000, 16)).unwrap().len(), 1);
    let both = store.write(|w| w.claim_due_mails(60_000, 90_000, 16)).unwrap();
    assert_eq!(both.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), ["later", "soon"]);
    assert!(store.write(|w| w.remove_queued_mail("soon")).unwrap());
    assert!(!store.write(|w| w.remove_queued_mail("soon")).unwrap());
    assert!(!store.write(|w| w.reschedule_mail("soon", 0)).unwrap());
    let left = store.read().unwrap().queued_mails().unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!((left[0].id.as_str(), left[0].attempts), ("later", 2));
    }
}

both! {
    fn schema_version_is_stamped(store) {
    assert_eq!(
        store.read().unwrap().schema_version().unwrap(),
        SCHEMA_VERSION
    );
    }
}

#[test]
fn second_open_of_the_same_dir_is_refused() {
    let (dir, _store) = open();
    match Store::open(dir.path()) {
        Err(StoreError::InUse(p)) => assert_eq!(p, dir.path()),
        other => panic!("expected InUse, got {other:?}"),
    }
}

both! {
    fn realm_names_are_unique_and_renames_move_the_index(store) {
    let a = realm(&store, "alpha");
    let err = store
        .write(|w| {
            w.put_realm(&RealmRecord {
                id: "other".into(),
                name: "alpha".into(),
                ..Default::default()
            })
        })
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(Conflict::RealmName)));
    store
        .write(|w| {
            let mut r = w.realm(&a)?.unwrap();
            r.name = "beta".into();
            w.put_realm(&r)
        })
        .unwrap();
    let read = store.read().unwrap();
    assert!(read.realm_by_name("alpha").unwrap().is_none());
    assert_eq!(read.realm_by_name("beta").unwrap().unwrap().id, a);
    }
}

both! {
    fn usernames_are_lowercase_and_unique_emails_too_unless_allowed(store) {
    let r = realm(&store, "r");
    store
        .write(|w| w.put_user(&r, &user("u1", "Alice", Some("A@x.org")), false))
        .unwrap();
    let read = store.read().unwrap();
    let found = read.user_by_username(&r, "ALICE").unwrap().unwrap();
    assert_eq!(found.username, "alice");
    assert_eq!(read.users_by_email(&r, "a@X.org").unwrap().len(), 1);
    drop(read);

    let e = store
        .write(|w| w.put_user(&r, &user("u2", "alice", None), false))
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict(Conflict::Username)));
    let e = store
        .write(|w| w.put_user(&r, &user("u2", "bob", Some("a@x.org")), false))
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict(Conflict::Email)));
    store
        .write(|w| w.put_user(&r, &user("u2", "bob", Some("a@x.org")), true))
        .unwrap();
    assert_eq!(
        store
            .read()
            .unwrap()
            .users_by_email(&r, "a@x.org")
            .unwrap()
            .len(),
        2
    );
    }
}

#[test]
fn a_new_store_is_private_to_its_owner() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("a/data");
    drop(Store::open(&data).unwrap());
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join(STORE_FILE)), 0o600);
    // An existing directory keeps the mode its owner gave it.
    let shared = dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o750)).unwrap();
    drop(Store::open(&shared).unwrap());
    assert_eq!(mode(&shared), 0o750);
}

both! {
    fn a_failed_operation_leaves_nothing_behind(store) {
    let r = realm(&store, "r");
    store
        .write(|w| w.put_user(&r, &user("u1", "alice", None), false))
        .unwrap();
    // Two writes in one operation, the second conflicting: the first must not survive.
    let e = store
        .write(|w| {
            w.put_user(&r, &user("u2", "bob", None), false)?;
            w.put_user(&r, &user("u3", "alice", None), false)
        })
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict(Conflict::Username)));
    assert!(store
        .read()
        .unwrap()
        .user_by_username(&r, "bob")
        .unwrap()
        .is_none());
    assert_eq!(store.read().unwrap().user_count(&r).unwrap(), 1);
    }
}

both! {
    fn deleting_a_user_removes_mappings_memberships_sessions_and_credentials(store) {
    let r = realm(&store, "r");
    store
        .write(|w| {
            w.put_user(&r, &user("u1", "alice", Some("a@x")), false)?;
            w.put_role(
                &r,
                &RoleRecord {
                    id: "role1".into(),
                    name: "admin".into(),
                    container_id: r.clone(),
                    ..Default::default()
                },
            )?;
            w.put_group(
                &r,
                &GroupRecord {
                    id: "g1".into(),
                    name: "staff".into(),
                    ..Default::default()
                },
            )?;
            w.grant_user_role(&r, "u1", "role1")?;
            w.add_member(&r, "g1", "u1")?;
            w.put_credential(
                &r,
                "u1",
                &CredentialRecord {
                    id: "c1".into(),
                    kind: "password".into(),
                    ..Default::default()
                },
            )?;
            w.put_session(
                &r,
                &SessionRecord {
                    id: "s1".into(),
                    user_id: "u1".into(),
                    ..Default::default()
                },
            )
        })
        .unwrap();
    assert_eq!(store.read().unwrap().session_count().unwrap(), 1);
    assert!(store.write(|w| w.delete_user(&r, "u1")).unwrap());
    let read = store.read().unwrap();
    assert!(read.role_user_ids(&r, "role1").unwrap().is_empty());
    assert!(read.group_member_ids(&r, "g1").unwrap().is_empty());
    assert!(read.credentials(&r, "u1").unwrap().is_empty());
    assert!(read.session(&r, "s1").unwrap().is_none());
    assert!(read.users_by_email(&r, "a@x").unwrap().is_empty());
    assert_eq!(read.session_count().unwrap(), 0);
    }
}

both! {
    fn many_keys_are_read_at_once_in_their_order(store) {
    let r = realm(&store, "r");
    store
        .write(|w| {
            for id in ["a", "b"] {
                w.put_role(
                    &r,
                    &RoleRecord {
                        id: id.into(),
                        name: id.into(),
                        container_id: r.clone(),
                        ..Default::default()
                    },
                )?;
            }
            Ok::<_, StoreError>(())
        })
        .unwrap();
    let ids: Vec<String> = ["b", "missing", "a", "b"].map(String::from).to_vec();
    let read = store.read().unwrap();
    let found: Vec<String> = read.roles_by_id(&r, &ids).unwrap().into_iter().map(|r| r.id).collect();
    assert_eq!(found, ["b", "a", "b"], "asked order, duplicates kept, missing skipped");
    assert!(read.roles_by_id(&r, &[]).unwrap().is_empty());
    assert!(read.roles_by_id("other-realm", &ids).unwrap().is_empty());
    }
}

both! {
    fn deleting_a_role_removes_it_from_composites_and_groups(store) {
    let r = realm(&store, "r");
    store
        .write(|w| {
            let role = |id: &str, composites: Vec<String>| RoleRecord {
                id: id.into(),
                name: id.into(),
                container_id: r.clone(),
                composites,
                ..Default::default()
            };
            w.put_role(&r, &role("child", vec![]))?;
            w.put_role(&r, &role("parent", vec!["child".into()]))?;
            w.put_group(
                &r,
                &GroupRecord {
                    id: "g".into(),
                    name: "g".into(),
                    ..Default::default()
                },
            )?;
            w.grant_group_role(&r, "g", "child")
        })
        .unwrap();
    store.write(|w| w.delete_role(&r, "child")).unwrap();
    let read = store.read().unwrap();
    assert!(read
        .role(&r, "parent")
        .unwrap()
        .unwrap()
        .composites
        .is_empty());
    assert!(read.group_role_ids(&r, "g").unwrap().is_empty());
    assert!(read.role_by_name(&r, &r, "child").unwrap().is_none());
    }
}

both! {
    fn group_tree_names_unique_among_siblings_and_subtree_deletes(store) {
    let r = realm(&store, "r");
    let group = |id: &str, name: &str, parent: Option<&str>| GroupRecord {
        id: id.into(),
        name: name.into(),
        parent_id: parent.map(Into::into),
        ..Default::default()
    };
    store
        .write(|w| {
            w.put_group(&r, &group("a", "eng", None))?;
            w.put_group(&r, &group("b", "eng", Some("a")))?; // same name, other parent: fine
            w.put_group(&r, &group("c", "ops", Some("b")))
        })
        .unwrap();
    let e = store
        .write(|w| w.put_group(&r, &group("d", "eng", None)))
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict(Conflict::GroupName)));
    assert_eq!(
        store.read().unwrap().group_children(&r, Some("a")).unwrap()[0].id,
        "b"
    );
    store.write(|w| w.delete_group(&r, "a")).unwrap();
    let read = store.read().unwrap();
    assert!(read.group(&r, "b").unwrap().is_none());
    assert!(read.group(&r, "c").unwrap().is_none());
    assert!(read.group_children(&r, None).unwrap().is_empty());
    }
}

both! {
    fn deleting_a_realm_leaves_nothing_and_other_realms_untouched(store) {
    let a = realm(&store, "a");
    let b = realm(&store, "b");
    for r in [&a, &b] {
        store
            .write(|w| {
                w.put_user(r, &user("u1", "alice", Some("a@x")), false)?;
                w.put_client(
                    r,
                    &ClientRecord {
                        id: "c1".into(),
                        client_id: "app".into(),
                        ..Default::default()
                    },
                )?;
                w.append_event(
                    r,
                    &EventRecord {
                        id: "e1".into(),
                        time: 5,
                        kind: "LOGIN".into(),
                        ..Default::default()
                    },
                )
            })
            .unwrap();
    }
    store.write(|w| w.delete_realm(&a)).unwrap();
    let read = store.read().unwrap();
    assert!(read.realm_by_name("a").unwrap().is_none());
    assert!(read.user(&a, "u1").unwrap().is_none());
    assert!(read.client_by_client_id(&a, "app").unwrap().is_none());
    assert!(read.events(&a, 0, 10).unwrap().is_empty());
    assert!(read.users_by_email(&a, "a@x").unwrap().is_empty());
    assert!(read.user(&b, "u1").unwrap().is_some());
    assert_eq!(read.events(&b, 0, 10).unwrap().len(), 1);
    }
}

#[test]
fn data_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        let r = realm(&store, "persist");
        store
            .write(|w| w.put_user(&r, &user("u", "kept", None), false))
            .unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    let read = store.read().unwrap();
    let r = read.realm_by_name("persist").unwrap().unwrap();
    assert!(read.user_by_username(&r.id, "kept").unwrap().is_some());
}

both! {
    fn events_page_newest_first_and_expire(store) {
    let r = realm(&store, "r");
    store
        .write(|w| {
            for t in 0..10 {
                w.append_event(
                    &r,
                    &EventRecord {
                        id: format!("e{t}"),
                        time: t * 1000,
                        ..Default::default()
                    },
                )?;
            }
            Ok::<_, StoreError>(())
        })
        .unwrap();
    let page = store.read().unwrap().events(&r, 0, 3).unwrap();
    assert_eq!(
        page.iter().map(|e| e.time).collect::<Vec<_>>(),
        vec![9000, 8000, 7000]
    );
    assert_eq!(store.write(|w| w.expire_events(&r, 5000)).unwrap(), 5);
    assert_eq!(store.read().unwrap().events(&r, 0, 100).unwrap().len(), 5);
    }
}

// Random operations on users; a `BTreeMap` model says what the store must contain.
both! {
    fn model_based_users(store) {
    let r = realm(&store, "model");
    let mut model: BTreeMap<String, (String, Option<String>)> = BTreeMap::new(); // id → (username, email)
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let names = ["ann", "bob", "cy", "dee", "ed", "flo"];
    for step in 0..400 {
        let id = format!("id{}", rng.gen_range(0..8));
        match rng.gen_range(0..3) {
            0 | 1 => {
                let username = names[rng.gen_range(0..names.len())].to_string();
                let email = rng
                    .gen_bool(0.5)
                    .then(|| format!("{}@x", names[rng.gen_range(0..names.len())]));
                let clash = model.iter().any(|(other, (u, e))| {
                    other != &id && (u == &username || (email.is_some() && e == &email))
                });
                let result =
                    store.write(|w| w.put_user(&r, &user(&id, &username, email.as_deref()), false));
                assert_eq!(result.is_err(), clash, "step {step}: {result:?}");
                if !clash {
                    model.insert(id, (username, email));
                }
            }
            _ => {
                let existed = store.write(|w| w.delete_user(&r, &id)).unwrap();
                assert_eq!(existed, model.remove(&id).is_some(), "step {step}");
            }
        }
        let read = store.read().unwrap();
        assert_eq!(
            read.user_count(&r).unwrap() as usize,
            model.len(),
            "step {step}"
        );
        for (id, (username, email)) in &model {
            assert_eq!(
                &read.user_by_username(&r, username).unwrap().unwrap().id,
                id
            );
            if let Some(e) = email {
                assert_eq!(&read.users_by_email(&r, e).unwrap()[0].id, id);
            }
        }
    }
    }
}

both! {
    fn expired_sessions_are_purged(store) {
    let r = realm(&store, "r");
    store
        .write(|w| {
            w.put_user(&r, &user("u", "u", None), false)?;
            for (id, last) in [("old", 0), ("new", 10_000)] {
                w.put_session(
                    &r,
                    &SessionRecord {
                        id: id.into(),
                        user_id: "u".into(),
                        last_access: last,
                        ..Default::default()
                    },
                )?;
            }
            Ok::<_, StoreError>(())
        })
        .unwrap();
    let n = store
        .write(|w| w.purge_sessions(&r, |s| s.last_access < 5_000))
        .unwrap();
    assert_eq!(n, 1);
    let read = store.read().unwrap();
    assert!(read.session(&r, "old").unwrap().is_none());
    assert!(read.session(&r, "new").unwrap().is_some());
    assert_eq!(read.user_sessions(&r, "u").unwrap().len(), 1);
    }
}

#[test]
fn a_schema_1_file_moves_to_schema_2_on_open() {
    let dir = tempfile::tempdir().unwrap();
    legacy::tests::write_schema_1(&dir.path().join(STORE_FILE));
    let store = Store::open(dir.path()).unwrap();
    let read = store.read().unwrap();
    assert_eq!(read.schema_version().unwrap(), SCHEMA_VERSION);
    let realm = read.realm_by_name("acme").unwrap().unwrap();
    assert_eq!(realm.id, "r1");
    let alice = read.user_by_username("r1", "alice").unwrap().unwrap();
    assert_eq!(alice.id, "u1");
    assert_eq!(read.users_by_email("r1", "a@x.test").unwrap().len(), 1);
    assert_eq!(read.user_count("r1").unwrap(), 1);
    assert_eq!(read.events("r1", i64::MIN, 10).unwrap()[0].id, "e1");
    assert!(read.is_revoked("r1", "jti-1").unwrap());
    drop(read);
    drop(store);
    // Opening again finds schema 2 and moves nothing.
    let store = Store::open(dir.path()).unwrap();
    assert!(store.read().unwrap().user("r1", "u1").unwrap().is_some());
}

#[test]
fn a_newer_schema_is_refused_on_both_backends() {
    let (dir, store) = open();
    store
        .write(|w| w.insert(META, "schema_version", "99"))
        .unwrap();
    drop(store);
    assert!(matches!(
        Store::open(dir.path()),
        Err(StoreError::SchemaTooNew { found: 99, .. })
    ));
    let (dir, store, options) = open_postgres();
    store
        .write(|w| w.insert(META, "schema_version", "99"))
        .unwrap();
    assert!(matches!(
        Store::open_postgres(dir.path(), &options),
        Err(StoreError::SchemaTooNew { found: 99, .. })
    ));
}

#[test]
fn postgres_data_survives_reopening() {
    let (dir, store, options) = open_postgres();
    let r = realm(&store, "persist");
    store
        .write(|w| w.put_user(&r, &user("u", "kept", None), false))
        .unwrap();
    drop(store);
    let store = Store::open_postgres(dir.path(), &options).unwrap();
    let read = store.read().unwrap();
    assert!(read.user_by_username(&r, "kept").unwrap().is_some());
}

/// Two nodes on one database: a write on one is read on the other, and the other's
/// generation moves (its caches are dropped) soon after, without a write of its own.
#[test]
fn a_write_on_one_node_reaches_the_other() {
    let (dir, a, options) = open_postgres();
    let b = Store::open_postgres(dir.path(), &options).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !b.postgres().unwrap().listening() {
        assert!(
            std::time::Instant::now() < deadline,
            "node b never listened"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let before = b.generation();
    let r = realm(&a, "shared");
    assert!(b.read().unwrap().realm(&r).unwrap().is_some());
    while b.generation() == before {
        assert!(
            std::time::Instant::now() < deadline,
            "node b never heard the write"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Writers on two nodes racing on one counter lose no update: writes hold the cluster's
/// write lock from their first statement, as redb's writer holds its file.
#[test]
fn concurrent_writes_from_two_nodes_are_serialised() {
    let (dir, a, options) = open_postgres();
    let b = Store::open_postgres(dir.path(), &options).unwrap();
    let r = realm(&a, "race");
    let threads: Vec<_> = [a.clone(), b.clone()]
        .into_iter()
        .enumerate()
        .map(|(node, store)| {
            let r = r.clone();
            std::thread::spawn(move || {
                for i in 0..25 {
                    let id = format!("n{node}-{i}");
                    store
                        .write(|w| w.put_user(&r, &user(&id, &id, None), false))
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(a.read().unwrap().user_count(&r).unwrap(), 50);
    assert_eq!(b.read().unwrap().users_page(&r, 0, 100).unwrap().len(), 50);
}

/// A backup is one snapshot: taken while a writer adds users one by one, it holds the
/// first k of them for some k, never a later one without an earlier. Restored into an
/// empty store of either backend, it reads the same; a damaged file restores nothing.
fn backup_round_trip(source: Store, target: Store, spare: Store) {
    let r = realm(&source, "b");
    let writer = {
        let (source, r) = (source.clone(), r.clone());
        std::thread::spawn(move || {
            for i in 0..300 {
                let id = format!("u{i:04}");
                source
                    .write(|w| w.put_user(&r, &user(&id, &id, None), false))
                    .unwrap();
            }
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(20));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("store.backup");
    let copied = source.backup(&file).unwrap();
    writer.join().unwrap();
    assert!(copied.entries > 0);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    target.restore(&file).unwrap();
    let read = target.read().unwrap();
    let users = read.users_page(&r, 0, 1000).unwrap();
    let k = users.len();
    assert_eq!(read.user_count(&r).unwrap() as usize, k);
    let names: Vec<String> = users.iter().map(|u| u.username.clone()).collect();
    let expected: Vec<String> = (0..k).map(|i| format!("u{i:04}")).collect();
    assert_eq!(names, expected, "a snapshot has no gaps");
    assert_eq!(read.realm_by_name("b").unwrap().unwrap().id, r);
    drop(read);
    // Not into a store that has data.
    assert!(target.restore(&file).is_err());
    // A damaged file is refused whole.
    let mut bytes = std::fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    let damaged = dir.path().join("damaged.backup");
    std::fs::write(&damaged, &bytes).unwrap();
    assert!(matches!(
        spare.restore(&damaged),
        Err(StoreError::Corrupt(_))
    ));
    assert!(
        spare.is_empty().unwrap(),
        "nothing written from a damaged file"
    );
    let cut = dir.path().join("cut.backup");
    std::fs::write(&cut, &bytes[..middle]).unwrap();
    assert!(spare.restore(&cut).is_err());
    assert!(spare.is_empty().unwrap());
}

#[test]
fn a_redb_backup_restores_into_postgres() {
    let (_a, source) = open();
    let (_b, target, _) = open_postgres();
    let (_c, spare) = open();
    backup_round_trip(source, target, spare);
}

#[test]
fn a_postgres_backup_restores_into_redb() {
    let (_a, source, _) = open_postgres();
    let (_b, target) = open();
    let (_c, spare, _) = open_postgres();
    backup_round_trip(source, target, spare);
}

/// `migrate-store`: every table copied, in batches, into an empty store.
#[test]
fn a_redb_store_migrates_into_postgres() {
    let (_a, source) = open();
    let r = realm(&source, "m");
    source
        .write(|w| {
            for i in 0..2_500 {
                let id = format!("u{i}");
                w.put_user(&r, &user(&id, &id, Some(&format!("{id}@x"))), false)?;
            }
            let role = RoleRecord {
                id: "role-1".into(),
                name: "boss".into(),
                container_id: r.clone(),
                ..Default::default()
            };
            w.put_role(&r, &role)?;
            w.grant_user_role(&r, "u1", &role.id)
        })
        .unwrap();
    let (_b, target, _) = open_postgres();
    let copied = source.copy_into(&target).unwrap();
    assert!(copied.entries > 2_500 * 3);
    let read = target.read().unwrap();
    assert_eq!(read.user_count(&r).unwrap(), 2_500);
    assert_eq!(read.users_by_email(&r, "u2499@x").unwrap()[0].id, "u2499");
    assert_eq!(read.user_role_ids(&r, "u1").unwrap(), vec!["role-1"]);
    drop(read);
    assert!(
        source.copy_into(&target).is_err(),
        "only into an empty store"
    );
}
