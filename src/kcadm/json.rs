//! JSON as kcadm writes and edits it: Jackson's default pretty printer (`"key" : value`,
//! arrays on one line), `-s NAME=VALUE` values (JSON when they parse, else strings), attribute
//! keys (`a.b`, `"dotted.name"`, `arr[2]`, `arr+=`) and the deep merge of `update -m`.

use serde_json::{Map, Value};

/// Jackson's `DefaultPrettyPrinter`, which kcadm uses for `get` and its config file: objects
/// one entry per line indented by two spaces per level, `"key" : value`, arrays on one line
/// (`[ "a", "b" ]`, `[ ]`), empty objects `{ }`. No trailing newline.
pub fn pretty(value: &Value) -> String {
    let mut out = String::new();
    write_pretty(&mut out, value, 0);
    out
}

fn write_pretty(out: &mut String, value: &Value, depth: usize) {
    match value {
        Value::Object(map) if map.is_empty() => out.push_str("{ }"),
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push('\n');
                indent(out, depth + 1);
                write_string(out, k);
                out.push_str(" : ");
                write_pretty(out, v, depth + 1);
            }
            out.push('\n');
            indent(out, depth);
            out.push('}');
        }
        Value::Array(items) if items.is_empty() => out.push_str("[ ]"),
        Value::Array(items) => {
            out.push_str("[ ");
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_pretty(out, v, depth);
            }
            out.push_str(" ]");
        }
        Value::String(s) => write_string(out, s),
        other => out.push_str(&other.to_string()),
    }
}

fn indent(out: &mut String, depth: usize) {
    for _ in 0..depth {
        out.push_str("  ");
    }
}

/// A JSON string as Jackson escapes it: `"` `\` and control characters (short forms where
/// JSON has them, else `\u00XX` in upper-case hex); everything else as it is.
pub fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The value of `-s NAME=VALUE`: strict JSON when it parses (`true`, `42`, `["a"]`,
/// `{"a":1}`, `"quoted"`), nothing at all means `null`, a value in single or double quotes
/// that is not JSON is the text between them, anything else is the text itself.
///
/// Leniency (the seed writes `"requiredActions=['UPDATE_PASSWORD']"`): a list or object in
/// single quotes, Python style, is read as the JSON it plainly means.
pub fn parse_value(text: &str) -> Result<Value, String> {
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        return Ok(v);
    }
    let trimmed = text.trim();
    if trimmed.starts_with('[') || trimmed.starts_with('{') {
        if let Some(v) = single_quoted_json(trimmed) {
            return Ok(v);
        }
    }
    if text.starts_with('\'') || text.starts_with('"') {
        if text.len() < 2 || !(text.ends_with('\'') || text.ends_with('"')) {
            return Err(format!("Invalid string value: {text}"));
        }
        return Ok(Value::String(text[1..text.len() - 1].to_string()));
    }
    Ok(Value::String(text.to_string()))
}

/// `['a', 'b']` → `["a", "b"]`: single-quoted strings rewritten as JSON strings, then parsed.
fn single_quoted_json(text: &str) -> Option<Value> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                let mut s = String::new();
                loop {
                    match chars.next()? {
                        '\'' => break,
                        '\\' => s.push(chars.next()?),
                        c => s.push(c),
                    }
                }
                write_string(&mut out, &s);
            }
            // A double-quoted string inside is copied whole (it may hold a quote).
            '"' => {
                out.push('"');
                loop {
                    let c = chars.next()?;
                    out.push(c);
                    match c {
                        '"' => break,
                        '\\' => out.push(chars.next()?),
                        _ => {}
                    }
                }
            }
            c => out.push(c),
        }
    }
    serde_json::from_str(&out).ok()
}

/// Largest `name[N]`: a list is padded up to its index, so a huge one would exhaust memory.
const MAX_INDEX: usize = 10_000;

/// One step of an attribute key: a name and, for `name[N]`, an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    pub name: String,
    pub index: Option<usize>,
}

/// A parsed `-s`/`-d` key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrKey {
    pub components: Vec<Component>,
    /// `NAME+=VALUE`: append to the list.
    pub append: bool,
}

/// Parse `a.b."c.d".e[2]` (and a trailing `+` of `NAME+=`), with kcadm's error texts.
pub fn parse_key(key: &str) -> Result<AttrKey, String> {
    let (body, append) = match key.strip_suffix('+') {
        Some(b) => (b, true),
        None => (key, false),
    };
    let invalid = |pos: usize| format!("Invalid attribute key: {key} (at position {pos})");
    enum State {
        Start,
        Plain,
        Quoted,
        AfterQuote,
    }
    let mut state = State::Start;
    let mut names: Vec<String> = Vec::new();
    let mut current = String::new();
    for (i, c) in body.chars().enumerate() {
        let pos = i + 1;
        state = match (state, c) {
            (State::Start, '.') => return Err(invalid(pos)),
            (State::Start, '"') => State::Quoted,
            (State::Start, c) => {
                current.push(c);
                State::Plain
            }
            (State::Plain, '.') | (State::AfterQuote, '.') => {
                names.push(std::mem::take(&mut current));
                State::Start
            }
            (State::Plain, '"') => return Err(invalid(pos)),
            (State::Plain, c) => {
                current.push(c);
                State::Plain
            }
            (State::Quoted, '"') => State::AfterQuote,
            (State::Quoted, c) => {
                current.push(c);
                State::Quoted
            }
            (State::AfterQuote, _) => return Err(invalid(pos)),
        };
    }
    match state {
        State::Start | State::Quoted => return Err(invalid(body.chars().count())),
        State::Plain | State::AfterQuote => names.push(current),
    }
    let components = names
        .into_iter()
        .map(|name| {
            let Some(head) = name.strip_suffix(']') else {
                return Ok(Component { name, index: None });
            };
            let Some(open) = head.rfind('[') else {
                return Err(format!(
                    "Invalid attribute key: {name} (']' not allowed here)"
                ));
            };
            let idx = &head[open + 1..];
            let index = idx
                .parse::<usize>()
                .ok()
                .filter(|i| *i <= MAX_INDEX)
                .ok_or_else(|| {
                    format!("Invalid attribute key: {name} (Invalid array index: '[{idx}]')")
                })?;
            Ok(Component {
                name: head[..open].to_string(),
                index: Some(index),
            })
        })
        .collect::<Result<_, String>>()?;
    Ok(AttrKey { components, append })
}

/// One `-s` or `-d`, in command-line order.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrOp {
    Set(AttrKey, Value),
    Delete(AttrKey),
}

/// Parse `-s NAME=VALUE`.
pub fn parse_set(arg: &str) -> Result<AttrOp, String> {
    let (key, value) = split_key_value(arg)?;
    Ok(AttrOp::Set(parse_key(key)?, parse_value(value)?))
}

/// Parse `-d NAME`.
pub fn parse_delete(arg: &str) -> Result<AttrOp, String> {
    Ok(AttrOp::Delete(parse_key(arg)?))
}

/// `key=value` at the first `=`, as kcadm splits `-s`, `-q` and `-h`.
pub fn split_key_value(arg: &str) -> Result<(&str, &str), String> {
    match arg.find('=') {
        Some(pos) if pos > 0 => Ok((&arg[..pos], &arg[pos + 1..])),
        _ => Err(format!("Invalid key=value parameter: [{arg}]")),
    }
}

/// Apply the operations to a JSON object, in order.
pub fn apply(target: &mut Value, ops: &[AttrOp]) -> Result<(), String> {
    for op in ops {
        match op {
            AttrOp::Set(key, value) => set(target, key, value.clone())?,
            AttrOp::Delete(key) => delete(target, key)?,
        }
    }
    Ok(())
}

fn not_object(name: &str) -> String {
    format!("Attribute is not a JSON object: {name}")
}

/// Walk to the object holding the last component, creating missing objects (or lists, for
/// `name[N]`) on the way.
fn parent<'a>(target: &'a mut Value, key: &AttrKey) -> Result<&'a mut Map<String, Value>, String> {
    let mut node = target;
    let (_, path) = key
        .components
        .split_last()
        .ok_or_else(|| "Invalid attribute key: (empty)".to_string())?;
    for c in path {
        let map = node.as_object_mut().ok_or_else(|| not_object(&c.name))?;
        let child = map.entry(c.name.clone()).or_insert_with(|| match c.index {
            Some(_) => Value::Array(Vec::new()),
            None => Value::Object(Map::new()),
        });
        node = match (c.index, child) {
            (Some(i), Value::Array(items)) => {
                while items.len() <= i {
                    items.push(Value::Object(Map::new()));
                }
                &mut items[i]
            }
            (_, child) => child,
        };
    }
    let name = path.last().map(|c| c.name.as_str()).unwrap_or("");
    node.as_object_mut().ok_or_else(|| not_object(name))
}

fn set(target: &mut Value, key: &AttrKey, value: Value) -> Result<(), String> {
    let last = key.components.last().cloned();
    let map = parent(target, key)?;
    let Some(last) = last else { return Ok(()) };
    if last.index.is_none() && !key.append {
        map.insert(last.name, value);
        return Ok(());
    }
    let slot = map
        .entry(last.name)
        .or_insert_with(|| Value::Array(Vec::new()));
    if !slot.is_array() {
        *slot = Value::Array(Vec::new());
    }
    if let Value::Array(items) = slot {
        match last.index {
            Some(i) => {
                while items.len() <= i {
                    items.push(Value::Null);
                }
                items[i] = value;
            }
            None => items.push(value),
        }
    }
    Ok(())
}

fn delete(target: &mut Value, key: &AttrKey) -> Result<(), String> {
    let last = key.components.last().cloned();
    let map = parent(target, key)?;
    let Some(last) = last else { return Ok(()) };
    match last.index {
        Some(i) => {
            if let Some(Value::Array(items)) = map.get_mut(&last.name) {
                if i < items.len() {
                    items.remove(i);
                }
            }
        }
        None => {
            map.shift_remove(&last.name);
        }
    }
    Ok(())
}

/// `update -m`: the document's fields deep-merged over the server's (objects field by
/// field, everything else replaced).
pub fn merge(dest: &mut Value, src: &Value) -> Result<(), String> {
    let Value::Object(src) = src else {
        return Err(format!("Not a JSON object: {src}"));
    };
    let Value::Object(dest) = dest else {
        return Err(format!("Not a JSON object: {dest}"));
    };
    for (k, v) in src {
        match (dest.get_mut(k), v) {
            (Some(d @ Value::Object(_)), Value::Object(_)) => merge(d, v)?,
            (Some(Value::Object(_)), other) | (Some(Value::Array(_)), other @ Value::Object(_)) => {
                return Err(format!("Attribute is of incompatible type - {k}: {other}"))
            }
            (Some(Value::Array(_)), other) if !other.is_array() => {
                return Err(format!("Attribute is of incompatible type - {k}: {other}"))
            }
            _ => {
                dest.insert(k.clone(), v.clone());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pretty_prints_as_jackson_does() {
        // Keys sorted so the expectation does not depend on the map's order.
        let v = json!({"access": {"manage": true}, "attributes": {}, "enabled": true, "id": "1",
            "n": null, "protocolMappers": [{"name": "x"}, {"name": "y"}],
            "redirectUris": ["http://a/*", "http://b/*"], "requiredActions": [], "s": "a\"b\\c\u{1}é/"});
        assert_eq!(
            pretty(&v),
            "{\n  \"access\" : {\n    \"manage\" : true\n  },\n  \"attributes\" : { },\n  \"enabled\" : true,\n  \"id\" : \"1\",\n  \"n\" : null,\n  \"protocolMappers\" : [ {\n    \"name\" : \"x\"\n  }, {\n    \"name\" : \"y\"\n  } ],\n  \"redirectUris\" : [ \"http://a/*\", \"http://b/*\" ],\n  \"requiredActions\" : [ ],\n  \"s\" : \"a\\\"b\\\\c\\u0001é/\"\n}"
        );
        assert_eq!(pretty(&json!([{"a": 1}])), "[ {\n  \"a\" : 1\n} ]");
        assert_eq!(pretty(&json!([])), "[ ]");
    }

    #[test]
    fn values_are_json_when_they_parse() {
        assert_eq!(parse_value("true").unwrap(), json!(true));
        assert_eq!(parse_value("300").unwrap(), json!(300));
        assert_eq!(parse_value("1.5").unwrap(), json!(1.5));
        assert_eq!(
            parse_value(r#"["http://localhost:3000/*"]"#).unwrap(),
            json!(["http://localhost:3000/*"])
        );
        assert_eq!(parse_value(r#""x""#).unwrap(), json!("x"));
        assert_eq!(parse_value("My App").unwrap(), json!("My App"));
        assert_eq!(
            parse_value("SecurePass!123").unwrap(),
            json!("SecurePass!123")
        );
        assert_eq!(parse_value("True").unwrap(), json!("True"));
        assert_eq!(parse_value("0123").unwrap(), json!("0123"));
        assert_eq!(parse_value("'quoted'").unwrap(), json!("quoted"));
        assert_eq!(parse_value("").unwrap(), Value::Null);
        assert!(parse_value("'open")
            .unwrap_err()
            .contains("Invalid string value"));
        // The seed's Python-style list.
        assert_eq!(
            parse_value("['UPDATE_PASSWORD']").unwrap(),
            json!(["UPDATE_PASSWORD"])
        );
        assert_eq!(parse_value("['a', \"b\"]").unwrap(), json!(["a", "b"]));
        assert_eq!(parse_value("{'k': 'v'}").unwrap(), json!({"k": "v"}));
        assert_eq!(parse_value("[a,b]").unwrap(), json!("[a,b]"));
    }

    #[test]
    fn keys_nest_index_and_append() {
        let mut v = json!({"name": "x", "redirectUris": ["a"]});
        let ops = [
            parse_set("attributes.foo=bar").unwrap(),
            parse_set("attributes.\"external.user.id\"=7").unwrap(),
            parse_set("redirectUris+=b").unwrap(),
            parse_set("list[2]=z").unwrap(),
            parse_set("name=y").unwrap(),
            parse_delete("redirectUris[0]").unwrap(),
            parse_set("gone=1").unwrap(),
            parse_delete("gone").unwrap(),
        ];
        apply(&mut v, &ops).unwrap();
        assert_eq!(
            v,
            json!({"name": "y", "redirectUris": ["b"], "attributes": {"foo": "bar", "external.user.id": 7},
                   "list": [null, null, "z"]})
        );
        assert_eq!(
            parse_key(".a").unwrap_err(),
            "Invalid attribute key: .a (at position 1)"
        );
        assert_eq!(
            parse_key("a.").unwrap_err(),
            "Invalid attribute key: a. (at position 2)"
        );
        assert_eq!(
            parse_key("a\"b").unwrap_err(),
            "Invalid attribute key: a\"b (at position 2)"
        );
        assert!(parse_key("a[x]")
            .unwrap_err()
            .contains("Invalid array index: '[x]'"));
        assert!(parse_key("a[99999999999]")
            .unwrap_err()
            .contains("Invalid array index"));
        assert!(parse_key("a]")
            .unwrap_err()
            .contains("']' not allowed here"));
        assert_eq!(
            split_key_value("=x").unwrap_err(),
            "Invalid key=value parameter: [=x]"
        );
    }

    #[test]
    fn merge_is_deep_for_objects_only() {
        let mut dest = json!({"a": 1, "o": {"x": 1, "y": 2}, "l": [1]});
        merge(&mut dest, &json!({"o": {"y": 3}, "l": [2, 3], "n": true})).unwrap();
        assert_eq!(
            dest,
            json!({"a": 1, "o": {"x": 1, "y": 3}, "l": [2, 3], "n": true})
        );
        assert!(merge(&mut dest, &json!({"o": 1}))
            .unwrap_err()
            .contains("incompatible"));
        assert!(merge(&mut dest, &json!({"l": {}}))
            .unwrap_err()
            .contains("incompatible"));
        assert!(merge(&mut dest, &json!([])).is_err());
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    /// JSON values of a few levels, with the strings kcadm meets (quotes, escapes, unicode).
    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            "[ -~é\"\\\\\n\t]{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map("[a-zA-Z.]{1,6}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1500))]

        /// What kcadm prints reads back as the value printed (print∘parse is identity).
        #[test]
        fn printed_json_reads_back(value in json()) {
            let printed = pretty(&value);
            let back: Value = serde_json::from_str(&printed).unwrap();
            prop_assert_eq!(back, value);
        }

        /// `-s a.b=VALUE` with a plain word sets exactly that attribute to that string, and
        /// any `-s` argument at all is applied or refused with a message, never a panic.
        #[test]
        fn set_attributes_land_where_named(a in "[a-z]{1,6}", b in "[a-z]{1,6}", word in "[a-z]{1,8}", arg in "[ -~]{0,30}") {
            prop_assume!(!["true", "false", "null"].contains(&word.as_str()));
            let mut target = serde_json::json!({});
            let op = parse_set(&format!("{a}.{b}={word}")).unwrap();
            apply(&mut target, &[op]).unwrap();
            prop_assert_eq!(&target[&a][&b], &Value::String(word.clone()));
            if let Ok(op) = parse_set(&arg) {
                let mut t = serde_json::json!({"x": [1, 2], "y": {"z": "w"}});
                let _ = apply(&mut t, &[op]);
            }
        }
    }
}
