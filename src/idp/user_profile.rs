//! Keycloak's declarative user profile (`UPConfig`): which attributes a user has, who may
//! see and edit each (`admin`, `user`), which are required of whom, and how values are
//! validated. The admin API's `users/profile` reads and replaces it; the login's
//! `UPDATE_PROFILE` page and the admin API's user writes validate against it.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::store::{StoreError, Txn, UserRecord, View, Write};

const KIND: &str = "user-profile";
const ID: &str = "config";

/// Keycloak's default configuration (26.0).
pub fn default_config() -> Value {
    let perms = json!({"view": ["admin", "user"], "edit": ["admin", "user"]});
    json!({
        "attributes": [
            {"name": "username", "displayName": "${username}",
             "validations": {"length": {"min": 3, "max": 255}, "username-prohibited-characters": {}, "up-username-not-idn-homograph": {}},
             "permissions": perms, "multivalued": false},
            {"name": "email", "displayName": "${email}",
             "validations": {"email": {}, "length": {"max": 255}},
             "required": {"roles": ["user"]}, "permissions": perms, "multivalued": false},
            {"name": "firstName", "displayName": "${firstName}",
             "validations": {"length": {"max": 255}, "person-name-prohibited-characters": {}},
             "required": {"roles": ["user"]}, "permissions": perms, "multivalued": false},
            {"name": "lastName", "displayName": "${lastName}",
             "validations": {"length": {"max": 255}, "person-name-prohibited-characters": {}},
             "required": {"roles": ["user"]}, "permissions": perms, "multivalued": false},
        ],
        "groups": [{"name": "user-metadata", "displayHeader": "User metadata",
                    "displayDescription": "Attributes, which refer to user metadata"}],
    })
}

/// The realm's configuration (Keycloak's default until one is stored).
pub fn config<T: Txn>(read: &View<T>, realm_id: &str) -> Result<Value, StoreError> {
    Ok(read
        .object(realm_id, KIND, ID)?
        .unwrap_or_else(default_config))
}

/// Validators the checks below understand.
const VALIDATORS: &[&str] = &[
    "length",
    "email",
    "pattern",
    "options",
    "integer",
    "double",
    "uri",
    "person-name-prohibited-characters",
    "username-prohibited-characters",
    "up-username-not-idn-homograph",
    "multivalued",
];

/// Store a configuration (checked by [`check`] first).
pub fn replace(w: &mut Write, realm_id: &str, config: &Value) -> Result<(), StoreError> {
    w.put_object(realm_id, KIND, ID, config)
}

/// A configuration must have `attributes` with unique names, `username` and `email` among
/// them, and validators this server runs.
pub fn check(config: &Value) -> Result<(), String> {
    let attrs = config
        .get("attributes")
        .and_then(Value::as_array)
        .ok_or("attributes: a list of attributes is required")?;
    let mut seen = Vec::new();
    for a in attrs {
        let name = a
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.trim().is_empty())
            .ok_or("Each attribute needs a name")?;
        if seen.contains(&name) {
            return Err(format!("Duplicated attribute: {name}"));
        }
        seen.push(name);
        if let Some(v) = a.get("validations") {
            let map = v
                .as_object()
                .ok_or_else(|| format!("{name}: validations must be an object"))?;
            for validator in map.keys() {
                if !VALIDATORS.contains(&validator.as_str()) {
                    return Err(format!("{name}: unknown validator {validator}"));
                }
            }
            if let Some(p) = map
                .get("pattern")
                .and_then(|p| p.get("pattern"))
                .and_then(Value::as_str)
            {
                regex::Regex::new(p).map_err(|e| format!("{name}: invalid pattern: {e}"))?;
            }
        }
    }
    for required in ["username", "email"] {
        if !seen.contains(&required) {
            return Err(format!("The attribute {required} cannot be removed"));
        }
    }
    Ok(())
}

/// Who is editing: an administrator through the admin API, or the user on a login page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    Admin,
    User,
}

impl Context {
    fn role(self) -> &'static str {
        match self {
            Context::Admin => "admin",
            Context::User => "user",
        }
    }
}

/// One attribute of the configuration, as the checks read it.
pub struct Attribute<'a> {
    pub name: &'a str,
    pub display_name: Option<&'a str>,
    raw: &'a Value,
}

impl Attribute<'_> {
    pub fn can_edit(&self, cx: Context) -> bool {
        self.raw
            .get("permissions")
            .map(|p| {
                p.get("edit")
                    .and_then(Value::as_array)
                    .is_some_and(|l| l.iter().any(|r| r == cx.role()))
            })
            .unwrap_or(true)
    }

    pub fn can_view(&self, cx: Context) -> bool {
        self.can_edit(cx)
            || self
                .raw
                .get("permissions")
                .and_then(|p| p.get("view"))
                .and_then(Value::as_array)
                .is_some_and(|l| l.iter().any(|r| r == cx.role()))
    }

    pub fn required_for(&self, cx: Context) -> bool {
        match self.raw.get("required") {
            None | Some(Value::Null) => false,
            Some(r) => {
                let roles = r
                    .get("roles")
                    .and_then(Value::as_array)
                    .map(|l| l.iter().filter_map(Value::as_str).collect::<Vec<_>>());
                match roles {
                    // `required: {}`: required of everybody.
                    None => true,
                    Some(roles) => roles.is_empty() || roles.contains(&cx.role()),
                }
            }
        }
    }

    pub fn multivalued(&self) -> bool {
        self.raw.get("multivalued").and_then(Value::as_bool) == Some(true)
    }

    fn validations(&self) -> Vec<(&str, &Value)> {
        self.raw
            .get("validations")
            .and_then(Value::as_object)
            .map(|m| m.iter().map(|(k, v)| (k.as_str(), v)).collect())
            .unwrap_or_default()
    }

    /// Options of an `options` validator (a select on the page).
    pub fn options(&self) -> Vec<String> {
        self.raw
            .pointer("/validations/options/options")
            .and_then(Value::as_array)
            .map(|l| {
                l.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Never an attribute the user edits: set by the server.
    pub fn user_editable_field(&self) -> bool {
        self.name != "username"
    }
}

/// The attributes of a configuration, in order.
pub fn attributes(config: &Value) -> Vec<Attribute<'_>> {
    config
        .get("attributes")
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .filter_map(|a| {
                    Some(Attribute {
                        name: a.get("name")?.as_str()?,
                        display_name: a.get("displayName").and_then(Value::as_str),
                        raw: a,
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The values of `name` on `user` (the built-in fields are attributes too).
pub fn values(user: &UserRecord, name: &str) -> Vec<String> {
    let one = |v: &Option<String>| v.iter().filter(|s| !s.is_empty()).cloned().collect();
    match name {
        "username" => vec![user.username.clone()],
        "email" => one(&user.email),
        "firstName" => one(&user.first_name),
        "lastName" => one(&user.last_name),
        other => user.attributes.get(other).cloned().unwrap_or_default(),
    }
}

/// A value refused by a validator: the attribute and Keycloak's message key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub attribute: String,
    /// Keycloak's message key (`error-invalid-email`, ...), or a given `error-message`.
    pub message: String,
}

fn violation(attribute: &str, message: &str) -> Violation {
    Violation {
        attribute: attribute.to_string(),
        message: message.to_string(),
    }
}

const PERSON_NAME_PROHIBITED: &str = "<>&\"$%!#?§;*~/\\,^(){}[]|@:=";
const USERNAME_PROHIBITED: &str = "<>&\"'$%!#?§;*~/\\,^(){}[]|:= \t";

/// Check the values of every attribute of `user` the editor may edit (and the required
/// ones); `changed` limits the check to the attributes a request names (`None`: all).
pub fn validate(
    config: &Value,
    user: &UserRecord,
    cx: Context,
    changed: Option<&[String]>,
) -> Vec<Violation> {
    let mut out = Vec::new();
    for a in attributes(config) {
        if changed.is_some_and(|c| !c.iter().any(|n| n == a.name)) {
            continue;
        }
        let values = values(user, a.name);
        if values.is_empty() {
            if a.required_for(cx) && a.can_edit(cx) {
                out.push(violation(a.name, "error-user-attribute-required"));
            }
            continue;
        }
        if !a.multivalued() && values.len() > 1 {
            out.push(violation(a.name, "error-invalid-multivalued-size"));
            continue;
        }
        for (validator, settings) in a.validations() {
            let custom = settings.get("error-message").and_then(Value::as_str);
            let fail = |key: &str| violation(a.name, custom.unwrap_or(key));
            let number = |k: &str| {
                settings.get(k).and_then(|v| {
                    v.as_i64()
                        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                })
            };
            for v in &values {
                let bad = match validator {
                    "length" => {
                        let n = v.chars().count() as i64;
                        number("min").is_some_and(|m| n < m) || number("max").is_some_and(|m| n > m)
                    }
                    "email" => !valid_email(v),
                    "pattern" => settings
                        .get("pattern")
                        .and_then(Value::as_str)
                        .and_then(|p| regex::Regex::new(p).ok())
                        .is_some_and(|re| !re.is_match(v)),
                    "options" => !a.options().contains(v),
                    "integer" => match v.parse::<i64>() {
                        Ok(i) => {
                            number("min").is_some_and(|m| i < m)
                                || number("max").is_some_and(|m| i > m)
                        }
                        Err(_) => true,
                    },
                    "double" => v.parse::<f64>().is_err(),
                    "uri" => url::Url::parse(v).is_err(),
                    "person-name-prohibited-characters" => {
                        v.chars().any(|c| PERSON_NAME_PROHIBITED.contains(c))
                    }
                    "username-prohibited-characters" => {
                        v.chars().any(|c| USERNAME_PROHIBITED.contains(c))
                    }
                    "up-username-not-idn-homograph" => {
                        !v.is_ascii() && v.chars().any(|c| c.is_alphabetic() && !c.is_ascii())
                    }
                    _ => false,
                };
                if bad {
                    let key = match validator {
                        "length" => "error-invalid-length",
                        "email" => "error-invalid-email",
                        "pattern" => "error-pattern-no-match",
                        "options" => "error-invalid-option",
                        "integer" | "double" => "error-invalid-number",
                        "uri" => "error-invalid-uri",
                        _ => "error-person-name-invalid-character",
                    };
                    let key = if validator.starts_with("username")
                        || validator.starts_with("up-username")
                    {
                        "error-username-invalid-character"
                    } else {
                        key
                    };
                    out.push(fail(key));
                    break;
                }
            }
        }
    }
    out
}

fn valid_email(v: &str) -> bool {
    let Some((local, domain)) = v.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && !domain.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !v.chars().any(|c| c.is_whitespace() || c == '<' || c == '>')
}

/// Keycloak's `UserProfileMetadata`: the attributes the editor may see, for the admin
/// console's forms.
pub fn metadata(config: &Value, cx: Context) -> Value {
    let attrs: Vec<Value> = attributes(config)
        .iter()
        .filter(|a| a.can_view(cx))
        .map(|a| {
            let mut v = json!({
                "name": a.name,
                "displayName": a.display_name.unwrap_or(a.name),
                "required": a.required_for(cx),
                "readOnly": !a.can_edit(cx),
                "multivalued": a.multivalued(),
                "validators": a.raw.get("validations").cloned().unwrap_or_else(|| json!({})),
                "annotations": a.raw.get("annotations").cloned().unwrap_or_else(|| json!({})),
            });
            if let Some(g) = a.raw.get("group") {
                v["group"] = g.clone();
            }
            v
        })
        .collect();
    json!({"attributes": attrs, "groups": config.get("groups").cloned().unwrap_or_else(|| json!([]))})
}

/// Set attribute `name` of `user` from submitted values (the built-in fields included).
pub fn set(user: &mut UserRecord, name: &str, values: Vec<String>) {
    let values: Vec<String> = values
        .into_iter()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect();
    let first = values.first().cloned();
    match name {
        "username" => {}
        "email" => user.email = first.map(|e| e.to_lowercase()),
        "firstName" => user.first_name = first,
        "lastName" => user.last_name = first,
        other => {
            if values.is_empty() {
                user.attributes.remove(other);
            } else {
                user.attributes.insert(other.to_string(), values);
            }
        }
    }
}

/// Violations as Keycloak's admin API answers them (`errors` with `field`, message keys).
pub fn errors_repr(violations: &[Violation]) -> Value {
    let list: Vec<Value> = violations
        .iter()
        .map(|v| json!({"field": v.attribute, "errorMessage": v.message, "params": [v.attribute]}))
        .collect();
    let mut body = BTreeMap::new();
    if let Some(first) = violations.first() {
        body.insert("field", json!(first.attribute));
        body.insert("errorMessage", json!(first.message));
        body.insert("params", json!([first.attribute]));
    }
    if violations.len() > 1 {
        body.insert("errors", Value::Array(list));
    }
    json!(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> UserRecord {
        UserRecord {
            username: "ann".into(),
            email: Some("ann@example.com".into()),
            first_name: Some("Ann".into()),
            last_name: Some("Lee".into()),
            ..Default::default()
        }
    }

    #[test]
    fn the_default_profile_requires_names_of_users_but_not_of_admins() {
        let c = default_config();
        check(&c).unwrap();
        assert!(validate(&c, &user(), Context::User, None).is_empty());
        let mut u = user();
        u.first_name = None;
        let v = validate(&c, &u, Context::User, None);
        assert_eq!(
            v,
            vec![violation("firstName", "error-user-attribute-required")]
        );
        assert!(validate(&c, &u, Context::Admin, None).is_empty());
        u.email = Some("not-an-address".into());
        assert_eq!(
            validate(&c, &u, Context::Admin, None),
            vec![violation("email", "error-invalid-email")]
        );
        u.email = None;
        u.last_name = Some("<script>".into());
        assert_eq!(
            validate(&c, &u, Context::Admin, None),
            vec![violation("lastName", "error-person-name-invalid-character")]
        );
    }

    #[test]
    fn custom_attributes_with_validators() {
        let mut c = default_config();
        c["attributes"].as_array_mut().unwrap().push(json!({
            "name": "dept", "validations": {"options": {"options": ["eng", "ops"]}},
            "required": {}, "permissions": {"view": ["admin", "user"], "edit": ["admin"]}
        }));
        c["attributes"].as_array_mut().unwrap().push(json!({
            "name": "badge", "validations": {"pattern": {"pattern": "^[0-9]{4}$", "error-message": "four digits"}},
            "permissions": {"view": ["admin"], "edit": ["admin", "user"]}
        }));
        check(&c).unwrap();
        let mut u = user();
        // dept is required, but not editable by the user: not the user's fault.
        assert!(validate(&c, &u, Context::User, None).is_empty());
        assert_eq!(
            validate(&c, &u, Context::Admin, None),
            vec![violation("dept", "error-user-attribute-required")]
        );
        u.attributes.insert("dept".into(), vec!["sales".into()]);
        u.attributes.insert("badge".into(), vec!["12a".into()]);
        assert_eq!(
            validate(&c, &u, Context::Admin, None),
            vec![
                violation("dept", "error-invalid-option"),
                violation("badge", "four digits")
            ]
        );
        assert_eq!(
            validate(&c, &u, Context::Admin, Some(&["badge".into()])).len(),
            1
        );
        let meta = metadata(&c, Context::User);
        let names: Vec<&str> = meta["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"dept") && names.contains(&"badge"));
        assert_eq!(meta["attributes"][4]["readOnly"], true, "dept: view only");
        let mut bad = c.clone();
        bad["attributes"].as_array_mut().unwrap().remove(1);
        assert!(check(&bad).is_err(), "email cannot go");
        bad = c.clone();
        bad["attributes"][4]["validations"] = json!({"magic": {}});
        assert!(check(&bad).is_err());
    }
}
