//! Declarative forms: a screen lists its fields (where each lives in the REST
//! representation, its label's message key, its kind), and this module renders them from a
//! representation and applies a submitted form back onto one. So a settings screen is a
//! field list, and its values can only go where the REST API takes them.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

/// How a field is shown and read back.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    Text,
    Url,
    Email,
    Password,
    Number,
    /// An on/off switch (a checkbox).
    Switch,
    /// One of a fixed list: (value, message key of its label).
    Select(&'static [(&'static str, &'static str)]),
    /// A list of strings, one per line.
    Lines,
    /// Free text over several lines.
    Area,
    /// Shown, never changed.
    Fixed,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Text => "text",
            Kind::Url => "url",
            Kind::Email => "email",
            Kind::Password => "password",
            Kind::Number => "number",
            Kind::Switch => "switch",
            Kind::Select(_) => "select",
            Kind::Lines => "lines",
            Kind::Area => "area",
            Kind::Fixed => "fixed",
        }
    }
}

/// One field of a form.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field {
    /// Where the value lives in the representation, `/`-separated
    /// (`attributes/frontendUrl`, `config/clientId`, `bruteForceProtected`).
    pub path: &'static str,
    /// The message key of its label.
    pub label: &'static str,
    pub kind: Kind,
    /// The message key of its help text, or "".
    pub help: &'static str,
    pub required: bool,
}

/// A field with no help text.
pub(crate) const fn field(path: &'static str, label: &'static str, kind: Kind) -> Field {
    Field {
        path,
        label,
        kind,
        help: "",
        required: false,
    }
}

impl Field {
    pub(crate) const fn help(mut self, key: &'static str) -> Field {
        self.help = key;
        self
    }

    pub(crate) const fn required(mut self) -> Field {
        self.required = true;
        self
    }

    /// Whether the value is stored as a string whatever its kind: Keycloak's `attributes`
    /// and `config` maps hold only strings.
    fn stringly(&self) -> bool {
        self.path.starts_with("attributes/") || self.path.starts_with("config/")
    }
}

/// Messages per field that failed, by field path.
pub(crate) type Errors = BTreeMap<String, String>;

/// A submitted form: every (name, value) pair, in order.
#[derive(Debug, Default, Clone)]
pub(crate) struct Submitted(pub Vec<(String, String)>);

impl Submitted {
    pub(crate) fn parse(body: &[u8]) -> Submitted {
        Submitted(
            form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The first value of `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `name`, trimmed, "" when absent.
    pub(crate) fn text(&self, name: &str) -> String {
        self.get(name).unwrap_or("").trim().to_string()
    }

    /// Every value of `name` (checkbox groups).
    pub(crate) fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub(crate) fn switch(&self, name: &str) -> bool {
        self.get(name).is_some_and(|v| v == "on" || v == "true")
    }
}

/// The value at `path` in `value`.
pub(crate) fn lookup<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('/').try_fold(value, |v, key| v.get(key))
}

/// Set `path` in `target` (objects made where missing; a non-object on the way is replaced).
pub(crate) fn set(target: &mut Value, path: &str, new: Value) {
    let mut current = target;
    let mut keys = path.split('/').peekable();
    while let Some(key) = keys.next() {
        if !current.is_object() {
            *current = Value::Object(Map::new());
        }
        let Value::Object(map) = current else { return };
        if keys.peek().is_none() {
            map.insert(key.to_string(), new);
            return;
        }
        current = map.entry(key.to_string()).or_insert_with(|| json!({}));
    }
}

/// The text shown for a stored value.
fn display(kind: Kind, value: Option<&Value>) -> String {
    match (kind, value) {
        (_, None | Some(Value::Null)) => String::new(),
        (Kind::Lines, Some(Value::Array(items))) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| i.to_string())
            })
            .collect::<Vec<_>>()
            .join("\n"),
        (Kind::Lines, Some(Value::String(s))) => s.replace("##", "\n"),
        (_, Some(Value::String(s))) => s.clone(),
        (_, Some(v)) => v.to_string(),
    }
}

fn is_on(value: Option<&Value>) -> bool {
    match value {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => false,
    }
}

/// The fields as the templates render them: values from `current` (or, after a refused
/// submission, from `submitted`), labels in the page's language, errors beside them.
pub(crate) fn view(
    fields: &[Field],
    current: &Value,
    submitted: Option<&Submitted>,
    errors: &Errors,
    msg: &dyn Fn(&str) -> String,
) -> Vec<Value> {
    fields
        .iter()
        .map(|f| {
            let stored = lookup(current, f.path);
            let (value, on) = match submitted {
                Some(s) => (s.get(f.path).unwrap_or("").to_string(), s.switch(f.path)),
                None => (display(f.kind, stored), is_on(stored)),
            };
            let options: Vec<Value> = match f.kind {
                Kind::Select(options) => options
                    .iter()
                    .map(|(v, label)| json!({"value": v, "label": msg(label), "selected": *v == value}))
                    .collect(),
                _ => Vec::new(),
            };
            json!({
                "name": f.path,
                "id": format!("f-{}", f.path.replace(['/', '.'], "-")),
                "label": msg(f.label),
                "kind": f.kind.name(),
                "value": if matches!(f.kind, Kind::Password) { String::new() } else { value },
                "on": on,
                "options": options,
                "help": if f.help.is_empty() { String::new() } else { msg(f.help) },
                "error": errors.get(f.path),
                "required": f.required,
            })
        })
        .collect()
}

/// Apply a submitted form onto `target`; every field is read (an unchecked switch is off).
/// Errors name the fields whose values cannot be taken.
pub(crate) fn apply(
    fields: &[Field],
    form: &Submitted,
    target: &mut Value,
    msg: &dyn Fn(&str) -> String,
) -> Result<(), Errors> {
    let mut errors = Errors::new();
    for f in fields {
        let raw = form.get(f.path).unwrap_or("").trim();
        if f.required && raw.is_empty() && !matches!(f.kind, Kind::Switch | Kind::Fixed) {
            errors.insert(f.path.into(), msg("consoleRequiredField"));
            continue;
        }
        let value = match f.kind {
            Kind::Fixed => continue,
            // An empty secret field keeps what is stored.
            Kind::Password if raw.is_empty() => continue,
            Kind::Switch => {
                let on = form.switch(f.path);
                if f.stringly() {
                    Value::String(on.to_string())
                } else {
                    Value::Bool(on)
                }
            }
            Kind::Number => {
                if raw.is_empty() {
                    // Not set (Keycloak's `null`; an empty text in config maps).
                    if f.stringly() {
                        Value::String(String::new())
                    } else {
                        Value::Null
                    }
                } else {
                    match raw.parse::<i64>() {
                        Ok(n) if f.stringly() => Value::String(n.to_string()),
                        Ok(n) => Value::from(n),
                        Err(_) => {
                            errors.insert(f.path.into(), msg("consoleNotANumber"));
                            continue;
                        }
                    }
                }
            }
            Kind::Select(options) => {
                if !options.iter().any(|(v, _)| *v == raw) {
                    errors.insert(f.path.into(), msg("consoleNotAnOption"));
                    continue;
                }
                Value::String(raw.to_string())
            }
            Kind::Lines => {
                let items: Vec<&str> = raw
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect();
                if f.stringly() {
                    Value::String(items.join("##"))
                } else {
                    json!(items)
                }
            }
            Kind::Text | Kind::Url | Kind::Email | Kind::Password | Kind::Area => {
                Value::String(raw.to_string())
            }
        };
        set(target, f.path, value);
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// The field an admin API message is about, by the words it contains.
pub(crate) fn field_of<'f>(message: &str, hints: &[(&str, &'f str)]) -> Option<&'f str> {
    let lower = message.to_lowercase();
    hints
        .iter()
        .find(|(needle, _)| lower.contains(&needle.to_lowercase()))
        .map(|(_, field)| *field)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: &[Field] = &[
        field("displayName", "displayName", Kind::Text),
        field("registrationAllowed", "registrationAllowed", Kind::Switch),
        field("accessTokenLifespan", "accessTokenLifespan", Kind::Number),
        field("attributes/frontendUrl", "frontendUrl", Kind::Url),
        field(
            "attributes/pkce.code.challenge.method",
            "pkce",
            Kind::Switch,
        ),
        field("redirectUris", "redirectUris", Kind::Lines),
        field(
            "sslRequired",
            "sslRequired",
            Kind::Select(&[("none", "n"), ("external", "e")]),
        ),
    ];

    fn msg(k: &str) -> String {
        k.to_string()
    }

    #[test]
    fn a_submission_lands_where_the_representation_has_it() {
        let form = Submitted::parse(
            b"displayName=Shop&accessTokenLifespan=300&attributes%2FfrontendUrl=https%3A%2F%2Fa&attributes%2Fpkce.code.challenge.method=on&redirectUris=a%0D%0A%0D%0Ab%0A&sslRequired=none",
        );
        let mut target = json!({"registrationAllowed": true, "attributes": {"keep": "x"}});
        apply(FIELDS, &form, &mut target, &msg).unwrap();
        assert_eq!(
            target,
            json!({
                "displayName": "Shop",
                "registrationAllowed": false,
                "accessTokenLifespan": 300,
                "attributes": {"keep": "x", "frontendUrl": "https://a", "pkce.code.challenge.method": "true"},
                "redirectUris": ["a", "b"],
                "sslRequired": "none",
            })
        );
    }

    #[test]
    fn bad_values_are_named_by_field_and_change_nothing_they_name() {
        let form = Submitted::parse(b"accessTokenLifespan=soon&sslRequired=all");
        let mut target = json!({"accessTokenLifespan": 60});
        let errors = apply(FIELDS, &form, &mut target, &msg).unwrap_err();
        assert_eq!(errors["accessTokenLifespan"], "consoleNotANumber");
        assert_eq!(errors["sslRequired"], "consoleNotAnOption");
        assert_eq!(target["accessTokenLifespan"], 60);
    }

    #[test]
    fn views_show_stored_values_and_never_a_secret() {
        let fields = [
            field("redirectUris", "r", Kind::Lines),
            field("secret", "s", Kind::Password),
            field("attributes/x", "x", Kind::Switch),
        ];
        let current =
            json!({"redirectUris": ["a", "b"], "secret": "hunter2", "attributes": {"x": "true"}});
        let v = view(&fields, &current, None, &Errors::new(), &msg);
        assert_eq!(v[0]["value"], "a\nb");
        assert_eq!(v[1]["value"], "");
        assert_eq!(v[2]["on"], true);
    }

    #[test]
    fn set_makes_the_way() {
        let mut v = json!({"config": 5});
        set(&mut v, "config/a/b", json!(1));
        assert_eq!(v, json!({"config": {"a": {"b": 1}}}));
    }
}
