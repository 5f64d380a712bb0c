//! Authentication flows through the admin API: the built-in flows, copies, executions,
//! priorities, configs, bindings, and the rules that keep a realm's login runnable.

use serde_json::{json, Value};

use super::{delegate, shop};
use crate::idp::testing::{created_id, Fixture};

/// The executions of a flow (by alias, as in the path).
async fn executions(f: &Fixture, flow: &str) -> Vec<Value> {
    let alias = path(flow);
    let (status, _, list) = f
        .get(&format!("/shop/authentication/flows/{alias}/executions"))
        .await;
    assert_eq!(status, 200, "{list}");
    list.as_array().unwrap().clone()
}

fn by_name<'a>(list: &'a [Value], name: &str) -> &'a Value {
    list.iter()
        .find(|e| e["displayName"] == name)
        .unwrap_or_else(|| panic!("no {name} in {list:?}"))
}

/// An alias as a path segment (`%20` for spaces, as `encodeURIComponent` writes it).
fn path(alias: &str) -> String {
    alias.replace(' ', "%20")
}

#[tokio::test]
async fn every_realm_has_keycloaks_builtin_flows() {
    let f = shop().await;
    let (status, _, list) = f.get("/shop/authentication/flows").await;
    assert_eq!(status, 200);
    let aliases: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["alias"].as_str().unwrap())
        .collect();
    for alias in [
        "browser",
        "direct grant",
        "registration",
        "reset credentials",
        "clients",
        "first broker login",
        "docker auth",
    ] {
        assert!(aliases.contains(&alias), "{alias}: {aliases:?}");
    }
    let browser = list
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["alias"] == "browser")
        .unwrap();
    assert_eq!(browser["builtIn"], true);
    assert_eq!(browser["topLevel"], true);
    assert_eq!(browser["providerId"], "basic-flow");
    assert_eq!(
        browser["authenticationExecutions"][0]["authenticator"],
        "auth-cookie"
    );
    let list = executions(&f, "browser").await;
    let otp = by_name(&list, "OTP Form");
    assert_eq!(otp["level"], 2);
    assert_eq!(otp["requirement"], "REQUIRED");
    assert_eq!(otp["providerId"], "auth-otp-form");
    let sub = by_name(&list, "Browser - Conditional OTP");
    assert_eq!(sub["requirement"], "CONDITIONAL");
    assert_eq!(sub["authenticationFlow"], true);
    assert_eq!(
        sub["requirementChoices"],
        json!(["REQUIRED", "ALTERNATIVE", "DISABLED", "CONDITIONAL"])
    );
    assert_eq!(
        by_name(&list, "Username Password Form")["requirementChoices"],
        json!(["REQUIRED"])
    );
    // The realm names its bindings.
    let (_, _, realm) = f.get("/shop").await;
    assert_eq!(realm["browserFlow"], "browser");
    assert_eq!(realm["directGrantFlow"], "direct grant");
    assert_eq!(realm["firstBrokerLoginFlow"], "first broker login");
    // Provider lists.
    let (_, _, providers) = f.get("/shop/authentication/authenticator-providers").await;
    assert!(providers
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["id"] == "auth-otp-form" && p["displayName"] == "OTP Form"));
    let (_, _, clients) = f
        .get("/shop/authentication/client-authenticator-providers")
        .await;
    assert!(clients
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["id"] == "client-jwt"));
    let (_, _, described) = f
        .get("/shop/authentication/config-description/conditional-user-role")
        .await;
    assert_eq!(described["properties"][0]["name"], "condUserRole");
}

#[tokio::test]
async fn copies_executions_priorities_and_configs() {
    let f = shop().await;
    // Built-in flows take requirement changes only.
    let (status, _, err) = f
        .post(
            "/shop/authentication/flows/browser/executions/execution",
            &json!({"provider": "auth-otp-form"}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        err["errorMessage"],
        "It is illegal to add execution to a built in flow"
    );
    let browser_id = {
        let (_, _, list) = f.get("/shop/authentication/flows").await;
        list.as_array()
            .unwrap()
            .iter()
            .find(|f| f["alias"] == "browser")
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (status, _, err) = f
        .delete(&format!("/shop/authentication/flows/{browser_id}"))
        .await;
    assert_eq!(
        (status, err["errorMessage"].clone()),
        (400, json!("Can't delete built in flow"))
    );

    // A copy, with its sub-flows named after it.
    let (status, _, _) = f
        .post(
            "/shop/authentication/flows/browser/copy",
            &json!({"newName": "my browser"}),
        )
        .await;
    assert_eq!(status, 201);
    let (status, _, err) = f
        .post(
            "/shop/authentication/flows/browser/copy",
            &json!({"newName": "my browser"}),
        )
        .await;
    assert_eq!(
        (status, err["errorMessage"].clone()),
        (409, json!("New flow alias name already exists"))
    );
    let list = executions(&f, "my browser").await;
    assert!(list.iter().any(|e| e["displayName"] == "my browser forms"));
    assert!(list
        .iter()
        .any(|e| e["displayName"] == "my browser Browser - Conditional OTP"));

    // Add an execution and a sub-flow to the copy, move them, configure one.
    let (status, headers, _) = f
        .post(
            &format!(
                "/shop/authentication/flows/{}/executions/execution",
                path("my browser forms")
            ),
            &json!({"provider": "conditional-user-role"}),
        )
        .await;
    assert_eq!(status, 201);
    let added = headers["location"]
        .to_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let list = executions(&f, "my browser forms").await;
    let last = list.iter().rfind(|e| e["level"] == 0).unwrap();
    assert_eq!(last["id"], added.as_str());
    assert_eq!(last["requirement"], "DISABLED");
    assert_eq!(
        f.post(
            &format!("/shop/authentication/executions/{added}/raise-priority"),
            &json!({})
        )
        .await
        .0,
        204
    );
    let list = executions(&f, "my browser forms").await;
    let top: Vec<&Value> = list.iter().filter(|e| e["level"] == 0).collect();
    assert_eq!(top[1]["id"], added.as_str(), "moved up one");
    f.post(
        &format!("/shop/authentication/executions/{added}/lower-priority"),
        &json!({}),
    )
    .await;
    let list = executions(&f, "my browser forms").await;
    let top: Vec<&Value> = list.iter().filter(|e| e["level"] == 0).collect();
    assert_eq!(top.last().unwrap()["id"], added.as_str());
    let (status, _, _) = f
        .post(
            &format!(
                "/shop/authentication/flows/{}/executions/flow",
                path("my browser forms")
            ),
            &json!({"alias": "extra checks", "type": "basic-flow", "description": "more"}),
        )
        .await;
    assert_eq!(status, 201);
    assert!(executions(&f, "my browser forms")
        .await
        .iter()
        .any(|e| e["displayName"] == "extra checks" && e["requirement"] == "DISABLED"));

    let (status, headers, _) = f
        .post(
            &format!("/shop/authentication/executions/{added}/config"),
            &json!({"alias": "admins only", "config": {"condUserRole": "admin", "negate": "false"}}),
        )
        .await;
    assert_eq!(status, 201);
    let config = headers["location"]
        .to_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let (_, _, got) = f
        .get(&format!("/shop/authentication/config/{config}"))
        .await;
    assert_eq!(got["config"]["condUserRole"], "admin");
    let list = executions(&f, "my browser forms").await;
    assert_eq!(
        list.iter().find(|e| e["id"] == added.as_str()).unwrap()["alias"],
        "admins only"
    );
    assert_eq!(
        f.put(
            &format!("/shop/authentication/config/{config}"),
            &json!({"alias": "admins only", "config": {"condUserRole": "staff"}})
        )
        .await
        .0,
        204
    );
    assert_eq!(
        f.get(&format!("/shop/authentication/config/{config}"))
            .await
            .2["config"]["condUserRole"],
        "staff"
    );
    let (status, _, err) = f
        .post(
            &format!("/shop/authentication/executions/{added}/config"),
            &json!({"config": {}}),
        )
        .await;
    assert_eq!(
        (status, err["errorMessage"].clone()),
        (400, json!("Alias missing"))
    );
    assert_eq!(
        f.delete(&format!("/shop/authentication/config/{config}"))
            .await
            .0,
        204
    );
    assert_eq!(
        f.get(&format!("/shop/authentication/config/{config}"))
            .await
            .0,
        404
    );

    // Requirements are checked against what the step allows.
    let (status, _, _) = f
        .put(
            &format!(
                "/shop/authentication/flows/{}/executions",
                path("my browser")
            ),
            &json!({"id": added, "requirement": "SOMETIMES"}),
        )
        .await;
    assert_eq!(status, 400);
    let upf = by_name(
        &executions(&f, "my browser").await,
        "Username Password Form",
    )["id"]
        .clone();
    let (status, _, _) = f
        .put(
            &format!(
                "/shop/authentication/flows/{}/executions",
                path("my browser")
            ),
            &json!({"id": upf, "requirement": "DISABLED"}),
        )
        .await;
    assert_eq!(status, 400, "the password form is REQUIRED or nothing");

    assert_eq!(
        f.delete(&format!("/shop/authentication/executions/{added}"))
            .await
            .0,
        204
    );
    assert_eq!(
        f.get(&format!("/shop/authentication/executions/{added}"))
            .await
            .0,
        404
    );

    // Bind the copy; a bound flow is not deleted, an unknown one not bound.
    assert_eq!(
        f.put("/shop", &json!({"browserFlow": "my browser"}))
            .await
            .0,
        204
    );
    assert_eq!(f.get("/shop").await.2["browserFlow"], "my browser");
    let (status, _, err) = f.put("/shop", &json!({"browserFlow": "nope"})).await;
    assert_eq!(status, 400, "{err}");
    let (_, _, list) = f.get("/shop/authentication/flows").await;
    let mine = list
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["alias"] == "my browser")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        f.delete(&format!("/shop/authentication/flows/{mine}"))
            .await
            .0,
        400
    );
    // Renamed, it stays bound.
    let (status, _, body) = f
        .put(
            &format!("/shop/authentication/flows/{mine}"),
            &json!({"alias": "our browser", "description": "ours"}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(f.get("/shop").await.2["browserFlow"], "our browser");
    f.put("/shop", &json!({"browserFlow": "browser"})).await;
    assert_eq!(
        f.delete(&format!("/shop/authentication/flows/{mine}"))
            .await
            .0,
        204
    );
    assert!(!f
        .get("/shop/authentication/flows")
        .await
        .2
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["alias"] == "our browser"));
    // Its sub-flows went with it.
    let (status, _, _) = f
        .get(&format!(
            "/shop/authentication/flows/{}/executions",
            path("my browser forms")
        ))
        .await;
    assert_eq!(status, 404);
}

/// A step the login cannot perform is never REQUIRED where a login goes.
#[tokio::test]
async fn a_bound_flow_must_be_one_the_login_can_run() {
    let f = shop().await;
    f.post(
        "/shop/authentication/flows/browser/copy",
        &json!({"newName": "wa"}),
    )
    .await;
    f.post(
        &format!(
            "/shop/authentication/flows/{}/executions/execution",
            path("wa forms")
        ),
        &json!({"provider": "webauthn-authenticator"}),
    )
    .await;
    let wa = by_name(&executions(&f, "wa").await, "WebAuthn Authenticator")["id"].clone();
    // Unbound: allowed.
    assert_eq!(
        f.put(
            "/shop/authentication/flows/wa/executions",
            &json!({"id": wa, "requirement": "REQUIRED"})
        )
        .await
        .0,
        202
    );
    let (status, _, err) = f.put("/shop", &json!({"browserFlow": "wa"})).await;
    assert_eq!(status, 400);
    assert!(
        err["errorMessage"].as_str().unwrap().contains("WebAuthn"),
        "{err}"
    );
    f.put(
        "/shop/authentication/flows/wa/executions",
        &json!({"id": wa, "requirement": "DISABLED"}),
    )
    .await;
    assert_eq!(f.put("/shop", &json!({"browserFlow": "wa"})).await.0, 204);
    let (status, _, _) = f
        .put(
            "/shop/authentication/flows/wa/executions",
            &json!({"id": wa, "requirement": "REQUIRED"}),
        )
        .await;
    assert_eq!(status, 400, "bound: refused");
    // The same for a flow a client runs through its override.
    f.put("/shop", &json!({"browserFlow": "browser"})).await;
    let (_, _, list) = f.get("/shop/authentication/flows").await;
    let wa_id = list
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["alias"] == "wa")
        .unwrap()["id"]
        .clone();
    let app = created_id(
        &f.post(
            "/shop/clients",
            &json!({"clientId": "wa-app", "authenticationFlowBindingOverrides": {"browser": wa_id}}),
        )
        .await,
    );
    assert!(!app.is_empty());
    let (status, _, _) = f
        .put(
            "/shop/authentication/flows/wa/executions",
            &json!({"id": wa, "requirement": "REQUIRED"}),
        )
        .await;
    assert_eq!(status, 400, "used by a client's override: refused");
    assert_eq!(
        f.post(
            &format!(
                "/shop/authentication/flows/{}/executions/execution",
                path("wa forms")
            ),
            &json!({"provider": "no-such-authenticator"})
        )
        .await
        .0,
        400
    );
}

#[tokio::test]
async fn flows_need_realm_roles_and_travel_in_realm_files() {
    let f = shop().await;
    let (_, viewer) = delegate(&f, "shop", "viewer", &["view-realm"]).await;
    let api = f.api(Some(&viewer));
    assert_eq!(api.get("/shop/authentication/flows").await.0, 200);
    assert_eq!(
        api.post(
            "/shop/authentication/flows/browser/copy",
            &json!({"newName": "x"})
        )
        .await
        .0,
        403
    );
    let (_, clients) = delegate(&f, "shop", "clients", &["manage-clients"]).await;
    assert_eq!(
        f.api(Some(&clients))
            .get("/shop/authentication/flows")
            .await
            .0,
        403
    );

    // A custom browser flow, bound, exported and imported as another realm.
    f.post(
        "/shop/authentication/flows/browser/copy",
        &json!({"newName": "strict"}),
    )
    .await;
    let sub = by_name(
        &executions(&f, "strict").await,
        "strict Browser - Conditional OTP",
    )["id"]
        .clone();
    f.put(
        "/shop/authentication/flows/strict/executions",
        &json!({"id": sub, "requirement": "REQUIRED"}),
    )
    .await;
    let (status, _, body) = f.put("/shop", &json!({"browserFlow": "strict"})).await;
    assert_eq!(status, 204, "{body}");
    let (_, _, export) = f.post("/shop/partial-export", &json!({})).await;
    assert_eq!(export["browserFlow"], "strict");
    assert!(export["authenticationFlows"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["alias"] == "strict Browser - Conditional OTP" && f["topLevel"] == false));
    let mut copy = export.clone();
    copy["realm"] = "copy".into();
    copy["id"] = Value::Null;
    let (status, _, body) = f.post("", &copy).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(f.get("/copy").await.2["browserFlow"], "strict");
    let (_, _, list) = f.get("/copy/authentication/flows/strict/executions").await;
    assert_eq!(
        by_name(list.as_array().unwrap(), "strict Browser - Conditional OTP")["requirement"],
        "REQUIRED"
    );
    // A file bound to a flow it does not have is refused whole.
    let (status, _, _) = f
        .post("", &json!({"realm": "broken", "browserFlow": "missing"}))
        .await;
    assert_eq!(status, 400);
    assert_eq!(f.get("/broken").await.0, 404);
}
