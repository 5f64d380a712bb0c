//! Authentication: Flows (each flow's executions with their requirements, "Add
//! execution"), Policies (password policy and OTP policy) and Required actions (enabled,
//! default action).

use http::StatusCode;
use serde_json::{json, Value};

use super::super::form::{self, field, Errors, Field, Kind, Submitted};
use super::super::{Console, Outcome};
use super::users::refusal_of_input;
use super::{cell, seg, tab, text, yes_no, FormPage, ListPage, Tab};

fn tabs() -> Vec<Tab> {
    vec![
        tab("flows", "authentication"),
        tab("policies", "authentication/policies"),
        tab("requiredActions", "authentication/required-actions"),
    ]
}

/// The flows, with what each is bound to.
pub(super) async fn flows(cx: &Console<'_>) -> Outcome {
    let flows = cx.api.get(&cx.rest(&["authentication", "flows"])).await?;
    let realm = cx.api.get(&cx.rest(&[])).await?;
    let bindings = BINDINGS;
    let tabs = tabs();
    let mut page = ListPage::new(
        "authentication",
        cx.msg("authentication"),
        &["flowName", "usedBy", "description"],
    );
    page.tabs = &tabs;
    page.current_tab = "authentication";
    page.rows = flows
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            let alias = text(f, "alias");
            let used: Vec<String> = bindings
                .iter()
                .filter(|(key, _)| realm[*key].as_str() == Some(alias.as_str()))
                .map(|(_, label)| cx.msg(label))
                .collect();
            vec![
                cell(
                    &alias,
                    Some(cx.url(&format!("authentication/flows/{}", seg(&alias)))),
                ),
                cell(used.join(", "), None),
                cell(text(f, "description"), None),
            ]
        })
        .collect();
    page.render(cx).await
}

/// A flow's executions with a requirement choice each, and "Add execution".
pub(super) async fn flow(cx: &Console<'_>, alias: &str) -> Outcome {
    let executions = cx
        .api
        .get(&cx.rest(&["authentication", "flows", alias, "executions"]))
        .await?;
    let providers = cx
        .api
        .get(&cx.rest(&["authentication", "authenticator-providers"]))
        .await
        .unwrap_or(Value::Null);
    let rows: Vec<Value> = executions
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let requirement = text(e, "requirement");
            let choices: Vec<Value> = e["requirementChoices"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c.as_str())
                .map(|c| json!({"value": c, "label": cx.msg(&format!("requirement.{c}")), "selected": c == requirement}))
                .collect();
            json!({
                "id": text(e, "id"),
                "name": if text(e, "displayName").is_empty() { text(e, "providerId") } else { text(e, "displayName") },
                "level": e["level"].as_u64().unwrap_or(0),
                "choices": choices,
                "flow": e["authenticationFlow"].as_bool().unwrap_or(false),
            })
        })
        .collect();
    let providers: Vec<Value> = providers
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let name = text(p, "displayName");
            json!({"value": text(p, "id"), "label": if name.is_empty() { text(p, "id") } else { name }})
        })
        .collect();
    let tabs = tabs();
    cx.page(
        StatusCode::OK,
        "admin/flow.html",
        "authentication",
        alias,
        json!({
            "heading": alias,
            "tabs": super::tabs_view(cx, &tabs, "authentication"),
            "action": cx.url(&format!("authentication/flows/{}", seg(alias))),
            "add_action": cx.url(&format!("authentication/flows/{}/add-execution", seg(alias))),
            "executions": rows,
            "providers": providers,
            "duplicate_action": cx.url(&format!("authentication/flows/{}/duplicate", seg(alias))),
            "bind_action": cx.url(&format!("authentication/flows/{}/bind", seg(alias))),
            "bindings": BINDINGS.iter().map(|(k, label)| json!({"value": k, "label": cx.msg(label)})).collect::<Vec<_>>(),
            "copy_name": format!("Copy of {alias}"),
        }),
    )
    .await
}

/// Save the requirements that changed (`requirement.{execution id}` fields).
pub(super) async fn save_requirements(cx: &Console<'_>, alias: &str) -> Outcome {
    let path = cx.rest(&["authentication", "flows", alias, "executions"]);
    let executions = cx.api.get(&path).await?;
    for e in executions.as_array().into_iter().flatten() {
        let id = text(e, "id");
        if let Some(wanted) = cx.form.get(&format!("requirement.{id}")) {
            if wanted != text(e, "requirement") {
                let mut changed = e.clone();
                changed["requirement"] = json!(wanted);
                cx.api.put(&path, changed).await?;
            }
        }
    }
    cx.done("flowSaved", &format!("authentication/flows/{}", seg(alias)))
}

/// "Add execution": append an authenticator (disabled, as Keycloak adds it).
pub(super) async fn add_execution(cx: &Console<'_>, alias: &str) -> Outcome {
    let provider = cx.form.text("provider");
    cx.api
        .post(
            &cx.rest(&["authentication", "flows", alias, "executions", "execution"]),
            json!({"provider": provider}),
        )
        .await?;
    cx.done(
        "executionAdded",
        &format!("authentication/flows/{}", seg(alias)),
    )
}

const OTP_TYPES: &[(&str, &str)] = &[("totp", "otpTypeTotp"), ("hotp", "otpTypeHotp")];
const OTP_ALGORITHMS: &[(&str, &str)] = &[
    ("HmacSHA1", "SHA1"),
    ("HmacSHA256", "SHA256"),
    ("HmacSHA512", "SHA512"),
];
const OTP_DIGITS: &[(&str, &str)] = &[("6", "6"), ("8", "8")];

const PASSWORD_POLICY: &[Field] =
    &[field("passwordPolicy", "passwordPolicy", Kind::Text).help("passwordPolicyHelp")];

const OTP_POLICY: &[Field] = &[
    field("otpPolicyType", "otpType", Kind::Select(OTP_TYPES)),
    field(
        "otpPolicyAlgorithm",
        "otpHashAlgorithm",
        Kind::Select(OTP_ALGORITHMS),
    ),
    field(
        "otpPolicyDigits",
        "otpPolicyDigits",
        Kind::Select(OTP_DIGITS),
    ),
    field("otpPolicyLookAheadWindow", "lookAround", Kind::Number),
    field("otpPolicyPeriod", "otpPolicyPeriod", Kind::Number).help("secondsHelp"),
];

fn policy_sections() -> [super::Section<'static>; 2] {
    [
        ("passwordPolicy", PASSWORD_POLICY),
        ("otpPolicy", OTP_POLICY),
    ]
}

pub(super) async fn policies(
    cx: &Console<'_>,
    submitted: Option<&Submitted>,
    errors: Errors,
) -> Outcome {
    let mut realm = cx.api.get(&cx.rest(&[])).await?;
    // The digits are a number in the representation, a choice here.
    realm["otpPolicyDigits"] = json!(text(&realm, "otpPolicyDigits"));
    let tabs = tabs();
    let sections = policy_sections();
    let mut page = FormPage::new(
        "authentication",
        cx.msg("authentication"),
        &sections,
        &realm,
    );
    page.tabs = &tabs;
    page.current_tab = "authentication/policies";
    page.submitted = submitted;
    page.errors = errors;
    page.action = "authentication/policies".into();
    page.render(cx).await
}

pub(super) async fn save_policies(cx: &Console<'_>) -> Outcome {
    let mut realm = cx.api.get(&cx.rest(&[])).await?;
    let fields: Vec<Field> = policy_sections()
        .iter()
        .flat_map(|(_, f)| f.iter().copied())
        .collect();
    if let Err(errors) = form::apply(&fields, &cx.form, &mut realm, &cx.msg_fn()) {
        return policies(cx, Some(&cx.form), errors).await;
    }
    if let Some(digits) = realm["otpPolicyDigits"]
        .as_str()
        .and_then(|d| d.parse::<i64>().ok())
    {
        realm["otpPolicyDigits"] = json!(digits);
    }
    match cx.api.put(&cx.rest(&[]), realm).await {
        Ok(_) => cx.done("policiesSaved", "authentication/policies"),
        Err(f) if refusal_of_input(&f) => {
            let mut errors = Errors::new();
            let name = if f.message.to_lowercase().contains("otp") {
                "otpPolicyType"
            } else {
                "passwordPolicy"
            };
            errors.insert(name.into(), f.message);
            policies(cx, Some(&cx.form), errors).await
        }
        Err(f) => Err(f.into()),
    }
}

/// Required actions: "Enabled" and "Set as default action" per action.
pub(super) async fn required_actions(cx: &Console<'_>) -> Outcome {
    let actions = cx
        .api
        .get(&cx.rest(&["authentication", "required-actions"]))
        .await?;
    let tabs = tabs();
    let rows: Vec<Value> = actions
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            json!({
                "alias": text(a, "alias"),
                "name": text(a, "name"),
                "enabled": a["enabled"].as_bool().unwrap_or(false),
                "default": a["defaultAction"].as_bool().unwrap_or(false),
            })
        })
        .collect();
    cx.page(
        StatusCode::OK,
        "admin/required-actions.html",
        "authentication",
        &cx.msg("requiredActions"),
        json!({
            "heading": cx.msg("authentication"),
            "tabs": super::tabs_view(cx, &tabs, "authentication/required-actions"),
            "action": cx.url("authentication/required-actions"),
            "actions": rows,
            "on": yes_no(cx, true),
        }),
    )
    .await
}

pub(super) async fn save_required_actions(cx: &Console<'_>) -> Outcome {
    let actions = cx
        .api
        .get(&cx.rest(&["authentication", "required-actions"]))
        .await?;
    let enabled = cx.form.all("enabled");
    let default = cx.form.all("default");
    for a in actions.as_array().into_iter().flatten() {
        let alias = text(a, "alias");
        let want_enabled = enabled.contains(&alias.as_str());
        let want_default = want_enabled && default.contains(&alias.as_str());
        if a["enabled"].as_bool() != Some(want_enabled)
            || a["defaultAction"].as_bool() != Some(want_default)
        {
            let mut changed = a.clone();
            changed["enabled"] = json!(want_enabled);
            changed["defaultAction"] = json!(want_default);
            cx.api
                .put(
                    &cx.rest(&["authentication", "required-actions", &alias]),
                    changed,
                )
                .await?;
        }
    }
    cx.done("requiredActionsSaved", "authentication/required-actions")
}

/// "Duplicate": a copy of the flow under a new name (to customise it).
pub(super) async fn duplicate(cx: &Console<'_>, alias: &str) -> Outcome {
    let name = cx.form.text("newName");
    if name.is_empty() {
        cx.flash("consoleRequiredField");
        return Ok(super::super::see_other(
            &cx.url(&format!("authentication/flows/{}", seg(alias))),
        ));
    }
    match cx
        .api
        .post(
            &cx.rest(&["authentication", "flows", alias, "copy"]),
            json!({"newName": name}),
        )
        .await
    {
        Ok(_) => cx.done(
            "flowDuplicated",
            &format!("authentication/flows/{}", seg(&name)),
        ),
        Err(f) if refusal_of_input(&f) => {
            cx.flash_text(f.message);
            Ok(super::super::see_other(
                &cx.url(&format!("authentication/flows/{}", seg(alias))),
            ))
        }
        Err(f) => Err(f.into()),
    }
}

/// The realm's flow bindings a flow can take ("Bind flow").
pub(super) const BINDINGS: &[(&str, &str)] = &[
    ("browserFlow", "browserFlowBinding"),
    ("registrationFlow", "registrationFlowBinding"),
    ("directGrantFlow", "directGrantFlowBinding"),
    ("resetCredentialsFlow", "resetCredentialsBinding"),
    ("clientAuthenticationFlow", "clientAuthenticationBinding"),
    ("firstBrokerLoginFlow", "firstBrokerLoginBinding"),
];

/// "Bind flow": make the flow the realm's flow of one kind.
pub(super) async fn bind(cx: &Console<'_>, alias: &str) -> Outcome {
    let binding = cx.form.text("binding");
    let Some((key, _)) = BINDINGS.iter().find(|(k, _)| *k == binding) else {
        return Err(super::super::Trouble::NotFound);
    };
    let mut realm = cx.api.get(&cx.rest(&[])).await?;
    realm[*key] = json!(alias);
    match cx.api.put(&cx.rest(&[]), realm).await {
        Ok(_) => cx.done("flowBound", &format!("authentication/flows/{}", seg(alias))),
        Err(f) if refusal_of_input(&f) => {
            cx.flash_text(f.message);
            Ok(super::super::see_other(
                &cx.url(&format!("authentication/flows/{}", seg(alias))),
            ))
        }
        Err(f) => Err(f.into()),
    }
}
