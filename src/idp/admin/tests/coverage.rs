//! How many of `@keycloak/keycloak-admin-client`'s operations the route tables answer (by
//! path and method), per resource: `tests/clients/admin-client-operations.json` lists them
//! (`node tests/clients/admin_client_operations.mjs` regenerates it). Authorization
//! services, organizations (and the group operations of organizations) and workflows are
//! out of scope. Prints the table the README's
//! "Admin API coverage" shows, and fails if coverage falls below what it was.

use std::collections::BTreeMap;

use http::Method;

use crate::idp::admin::routes::table;
use crate::idp::endpoints::{Endpoint, Router};

/// What the table answered when this floor was set; raise it as coverage grows.
const FLOOR: usize = 282;

fn answers(method: &str, path: &str) -> bool {
    let Ok(method) = method.parse::<Method>() else {
        return false;
    };
    // `:name` placeholders are path parameters: any value matches them.
    let path: String = path
        .split('/')
        .map(|s| if s.starts_with(':') { "x" } else { s })
        .collect::<Vec<_>>()
        .join("/");
    let Some((endpoint, params)) = Router::new().find(&path) else {
        return false;
    };
    match endpoint {
        Endpoint::Admin => {
            let rest = format!("/{}", params.rest.trim_end_matches('/'));
            let lookup = if params.rest.is_empty() {
                "/".to_string()
            } else {
                rest
            };
            table()
                .at(&lookup, &method)
                .is_some_and(|r| r.handler.is_ok())
        }
        other => other.methods().is_some_and(|m| m.allowed.contains(&method)),
    }
}

#[test]
fn admin_client_coverage() {
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/clients/admin-client-operations.json"
    );
    let text = std::fs::read_to_string(file).unwrap();
    let ops: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    let mut per: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut missing = Vec::new();
    for op in &ops {
        let resource = op["resource"].as_str().unwrap();
        let path = op["path"].as_str().unwrap();
        let op_name = op["op"].as_str().unwrap_or("");
        // Organizations (their group operations too), workflows and authorization
        // services are out of scope.
        if matches!(resource, "organizations" | "workflows")
            || path.contains("/authz/")
            || op_name.contains("OrgGroup")
        {
            continue;
        }
        let entry = per.entry(resource.to_string()).or_default();
        entry.1 += 1;
        if answers(op["method"].as_str().unwrap(), path) {
            entry.0 += 1;
        } else {
            missing.push(format!(
                "{resource}.{} {} {path}",
                op["op"].as_str().unwrap_or(""),
                op["method"].as_str().unwrap_or("")
            ));
        }
    }
    let (done, all) = per
        .values()
        .fold((0, 0), |(d, a), (dd, aa)| (d + dd, a + aa));
    println!("| resource | answered | operations |\n|---|---|---|");
    for (resource, (d, a)) in &per {
        println!("| {resource} | {d} | {a} |");
    }
    println!(
        "| **all** | **{done}** | **{all}** ({}%) |",
        done * 100 / all.max(1)
    );
    println!("\nnot answered yet:");
    for m in &missing {
        println!("  {m}");
    }
    assert!(done >= FLOOR, "coverage fell to {done} of {all}");
}
