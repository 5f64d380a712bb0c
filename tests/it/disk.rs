//! The disk full: the data directory on a small tmpfs, filled by another file while the
//! server runs. Writes (admin changes, logins, which store a session) fail with 503 and one
//! clear log line; reads (the admin API's GETs, tokens already issued, discovery and keys)
//! keep working; freeing the space brings writes back without a restart; nothing
//! acknowledged is lost and the store opens cleanly afterwards. Then the same with the
//! early refusal turned off, so redb itself meets the full disk: still 503, never a 500 or
//! a panic, `/health/ready` turns DOWN (redb takes no more writes until the file is
//! reopened), and after space is freed and the server restarted, the store is whole.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use crate::api::Api;
use crate::harness::{temp_dir, Options, TestServer};

/// A tmpfs mounted at `dir/data` for the test's life.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        let at = dir.join("data");
        std::fs::create_dir_all(&at).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&at)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "this test mounts a small tmpfs and needs root (CAP_SYS_ADMIN): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(at)
    }

    /// Fill the file system with `filler` until at most `leave` bytes are free.
    fn fill(&self, leave: u64) {
        let mut f = std::fs::File::create(self.filler()).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        while free_bytes(&self.0) > leave {
            if f.write_all(&chunk).is_err() {
                break;
            }
        }
        let _ = f.sync_all();
    }

    fn free(&self) {
        std::fs::remove_file(self.filler()).unwrap();
    }

    fn filler(&self) -> PathBuf {
        self.0.join("filler")
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn free_bytes(path: &Path) -> u64 {
    let out = Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .unwrap()
}

fn start(dir: &Path, min_free_mb: u32) -> TestServer {
    TestServer::start_with(Options {
        dir: Some(dir.to_path_buf()),
        extra_config: format!("[store]\nmin_free_space_mb = {min_free_mb}\n"),
        ..Options::default()
    })
}

fn create_user(api: &Api, name: &str) -> u16 {
    api.post(
        "/admin/realms/disk/users",
        &json!({"username": name, "enabled": true,
                "credentials": [{"type": "password", "value": "Pass-word-1"}]}),
    )
    .status
}

fn password_grant(api: &Api, user: &str) -> (u16, serde_json::Value) {
    let r = api.token(
        "disk",
        &[
            ("grant_type", "password"),
            ("client_id", "cli"),
            ("username", user),
            ("password", "Pass-word-1"),
        ],
    );
    (r.status, r.body)
}

#[test]
fn a_full_disk_refuses_writes_with_503_keeps_reads_and_loses_nothing() {
    if portcullis::store::testing::on_postgres() {
        // The data directory's disk holds no data on PostgreSQL; `cluster.rs` takes the
        // database away instead. The redb run of the suite checks this.
        return;
    }
    let dir = temp_dir();
    let disk = Tmpfs::mount(&dir, "32m");
    let server = start(&dir, 8);
    let api = Api::admin(&server);
    assert_eq!(
        api.post("/admin/realms", &json!({"realm": "disk", "enabled": true}))
            .status,
        201
    );
    assert_eq!(
        api.post(
            "/admin/realms/disk/clients",
            &json!({"clientId": "cli", "publicClient": true, "directAccessGrantsEnabled": true}),
        )
        .status,
        201
    );
    let mut acknowledged = Vec::new();
    for i in 0..5 {
        let name = format!("before-{i}");
        assert_eq!(create_user(&api, &name), 201);
        acknowledged.push(name);
    }
    let (status, tokens) = password_grant(&api, "before-0");
    assert_eq!(status, 200, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap().to_string();

    // Leave 4 MiB: under the 8 MiB the server keeps free.
    disk.fill(4 * 1024 * 1024);
    let r = api.post(
        "/admin/realms/disk/users",
        &json!({"username": "during", "enabled": true}),
    );
    assert_eq!(r.status, 503, "{}", r.text);
    assert!(r.body["errorMessage"].is_string(), "{}", r.text);
    assert!(r.header("retry-after").is_some());
    let (status, body) = password_grant(&api, "before-1");
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "temporarily_unavailable");
    // Reads go on.
    let users = api.get("/admin/realms/disk/users");
    assert_eq!(users.status, 200);
    assert_eq!(users.body.as_array().unwrap().len(), 5);
    assert_eq!(api.get("/admin/realms/disk").status, 200);
    let userinfo = Api::new(&server);
    let r = userinfo
        .client
        .get(server.http_url("/realms/disk/protocol/openid-connect/userinfo"))
        .bearer_auth(&access)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        userinfo
            .get("/realms/disk/.well-known/openid-configuration")
            .status,
        200
    );
    assert_eq!(
        userinfo
            .get("/realms/disk/protocol/openid-connect/certs")
            .status,
        200
    );
    server.wait_for_log("writes are refused (503) until space is freed");
    // One line for many refusals.
    for _ in 0..5 {
        assert_eq!(create_user(&api, "again"), 503);
    }
    assert_eq!(server.log().matches("almost full").count(), 1);

    // Space again: writes resume at once.
    disk.free();
    assert_eq!(create_user(&api, "after"), 201);
    acknowledged.push("after".into());
    assert_eq!(password_grant(&api, "after").0, 200);
    let dir = server.stop();

    // The early refusal off: redb meets the full disk itself.
    let server = start(&dir, 0);
    let api = Api::admin(&server);
    let names = |api: &Api| -> Vec<String> {
        let r = api.get("/admin/realms/disk/users?max=100");
        assert_eq!(r.status, 200, "{}", r.text);
        let mut v: Vec<String> = r
            .body
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["username"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    let mut expected = acknowledged.clone();
    expected.sort();
    assert_eq!(names(&api), expected);
    disk.fill(0);
    let mut statuses = Vec::new();
    for i in 0..20 {
        let s = create_user(&api, &format!("hard-{i}"));
        if s == 201 {
            acknowledged.push(format!("hard-{i}"));
        }
        statuses.push(s);
    }
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 503),
        "{statuses:?}"
    );
    assert!(statuses.contains(&503), "{statuses:?}");
    // Whatever redb now answers, it is never a 500.
    let r = api.get("/admin/realms/disk/users");
    assert!(matches!(r.status, 200 | 503), "{} {}", r.status, r.text);
    eprintln!(
        "disk full, no early refusal: writes {statuses:?}, then a read {}",
        r.status
    );
    // The store takes no writes until a restart, so the server says it is not ready.
    let ready = Api::new(&server).get("/health/ready");
    assert_eq!(ready.status, 503, "{}", ready.text);
    assert_eq!(ready.body["status"], "DOWN");
    let log = server.log();
    assert!(
        log.contains("a write to the store failed on the disk"),
        "{log}"
    );
    assert!(!log.contains("panicked"), "{log}");
    disk.free();
    let dir = server.kill();

    // Freed and restarted: the store opens and holds every acknowledged write.
    let server = start(&dir, 8);
    assert_eq!(Api::new(&server).get("/health/ready").status, 200);
    let api = Api::admin(&server);
    let mut expected = acknowledged;
    expected.sort();
    assert_eq!(names(&api), expected);
    assert_eq!(create_user(&api, "later"), 201);
    drop(server);
    drop(disk);
}
