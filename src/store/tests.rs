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

#[test]
fn schema_version_is_stamped() {
    let (_dir, store) = open();
    assert_eq!(
        store.read().unwrap().schema_version().unwrap(),
        SCHEMA_VERSION
    );
}

#[test]
fn second_open_of_the_same_dir_is_refused() {
    let (dir, _store) = open();
    match Store::open(dir.path()) {
        Err(StoreError::InUse(p)) => assert_eq!(p, dir.path()),
        other => panic!("expected InUse, got {other:?}"),
    }
}

#[test]
fn realm_names_are_unique_and_renames_move_the_index() {
    let (_dir, store) = open();
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

#[test]
fn usernames_are_lowercase_and_unique_emails_too_unless_allowed() {
    let (_dir, store) = open();
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

#[test]
fn a_failed_operation_leaves_nothing_behind() {
    let (_dir, store) = open();
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

#[test]
fn deleting_a_user_removes_mappings_memberships_sessions_and_credentials() {
    let (_dir, store) = open();
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

#[test]
fn deleting_a_role_removes_it_from_composites_and_groups() {
    let (_dir, store) = open();
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

#[test]
fn group_tree_names_unique_among_siblings_and_subtree_deletes() {
    let (_dir, store) = open();
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

#[test]
fn deleting_a_realm_leaves_nothing_and_other_realms_untouched() {
    let (_dir, store) = open();
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

#[test]
fn events_page_newest_first_and_expire() {
    let (_dir, store) = open();
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

/// Random operations on users; a `BTreeMap` model says what the store must contain.
#[test]
fn model_based_users() {
    let (_dir, store) = open();
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

#[test]
fn expired_sessions_are_purged() {
    let (_dir, store) = open();
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
