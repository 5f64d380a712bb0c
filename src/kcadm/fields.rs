//! `--fields` (`id,name,protocolMappers(id,config)`, `*`, `-id`) and `--format csv`, as kcadm
//! has them.

use serde_json::{Map, Value};

/// A parsed `--fields` specification: names in the order given, each with an optional
/// nested specification. `*` includes every field; `-name` excludes one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fields {
    items: Vec<(String, Option<Fields>)>,
}

impl Fields {
    /// Parse, with kcadm's error texts (0-based positions).
    pub fn parse(spec: &str) -> Result<Fields, String> {
        if spec.trim().is_empty() {
            return Err("Fields spec is null or empty!".into());
        }
        let chars: Vec<char> = spec.chars().collect();
        let mut pos = 0;
        let fields = parse_list(&chars, &mut pos, spec)?;
        if pos != chars.len() {
            return Err(invalid(spec, pos));
        }
        Ok(fields)
    }

    fn included(&self, name: &str) -> bool {
        let has = |n: &str| self.items.iter().any(|(k, _)| k == n);
        if has(&format!("-{name}")) {
            return false;
        }
        has("*") || has(name)
    }

    fn child(&self, name: &str) -> Option<&Fields> {
        let find = |n: &str| {
            self.items
                .iter()
                .find(|(k, _)| k == n)
                .and_then(|(_, f)| f.as_ref())
        };
        find(name).or_else(|| find("*"))
    }

    /// Keep only the selected fields (arrays element by element).
    pub fn filter(&self, value: &Value) -> Value {
        filter(Some(self), value)
    }
}

fn invalid(spec: &str, pos: usize) -> String {
    format!("Invalid fields specification at position {pos}: {spec}")
}

fn parse_list(chars: &[char], pos: &mut usize, spec: &str) -> Result<Fields, String> {
    let mut items = Vec::new();
    loop {
        let start = *pos;
        while *pos < chars.len() && !matches!(chars[*pos], ',' | '(' | ')') {
            *pos += 1;
        }
        if *pos == start {
            return Err(invalid(spec, *pos));
        }
        let name: String = chars[start..*pos].iter().collect();
        let mut nested = None;
        if chars.get(*pos) == Some(&'(') {
            *pos += 1;
            nested = Some(parse_list(chars, pos, spec)?);
            if chars.get(*pos) != Some(&')') {
                return Err(invalid(spec, *pos));
            }
            *pos += 1;
        }
        items.push((name, nested));
        match chars.get(*pos) {
            Some(',') => *pos += 1,
            _ => return Ok(Fields { items }),
        }
    }
}

fn filter(spec: Option<&Fields>, value: &Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.iter().map(|v| filter(spec, v)).collect()),
        Value::Object(map) => {
            let Some(spec) = spec else {
                return Value::Object(Map::new());
            };
            Value::Object(
                map.iter()
                    .filter(|(k, _)| spec.included(k))
                    .map(|(k, v)| (k.clone(), filter(spec.child(k), v)))
                    .collect(),
            )
        }
        other => other.clone(),
    }
}

/// `--format csv`: one line per element of a list (a single object is one line), the leaf
/// values in order separated by commas, strings in JSON quotes unless `noquotes`. With
/// `--fields`, the columns follow the specification and a missing field is an empty column.
pub fn csv(value: &Value, fields: Option<&Fields>, noquotes: bool) -> String {
    let rows: Vec<&Value> = match value {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        columns(row, fields, noquotes, &mut line);
        out.push_str(line.strip_prefix(',').unwrap_or(&line));
        out.push('\n');
    }
    out
}

fn columns(value: &Value, fields: Option<&Fields>, noquotes: bool, line: &mut String) {
    match (value, fields) {
        (Value::Object(map), Some(spec)) => {
            for (name, nested) in &spec.items {
                if name == "*" {
                    for (k, v) in map {
                        if spec.included(k) {
                            columns(v, spec.child(k), noquotes, line);
                        }
                    }
                } else if name.starts_with('-') {
                    continue;
                } else {
                    match map.get(name) {
                        Some(v @ (Value::Object(_) | Value::Array(_))) if nested.is_none() => {
                            // An object without a nested selection gives no columns.
                            if v.is_array() {
                                columns(v, None, noquotes, line);
                            }
                        }
                        Some(v) => columns(v, nested.as_ref(), noquotes, line),
                        None => line.push(','),
                    }
                }
            }
        }
        (Value::Object(map), None) => {
            for v in map.values() {
                columns(v, None, noquotes, line);
            }
        }
        (Value::Array(items), spec) => {
            for v in items {
                columns(v, spec, noquotes, line);
            }
        }
        (Value::String(s), _) if noquotes => {
            line.push(',');
            line.push_str(s);
        }
        (leaf, _) => {
            line.push(',');
            line.push_str(&leaf.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn specifications_parse_with_kcadm_errors() {
        assert!(Fields::parse("id,name,protocolMappers(id,config)").is_ok());
        assert!(Fields::parse("*(*(*))").is_ok());
        assert!(Fields::parse("*(*),-id,-protocolMappers").is_ok());
        for (bad, pos) in [
            ("a()", 2),
            (",a", 0),
            ("a,,b", 2),
            ("a,", 2),
            ("(a)", 0),
            ("a(b", 3),
            ("a)b", 1),
        ] {
            assert_eq!(
                Fields::parse(bad).unwrap_err(),
                format!("Invalid fields specification at position {pos}: {bad}"),
                "{bad}"
            );
        }
        assert_eq!(
            Fields::parse(" ").unwrap_err(),
            "Fields spec is null or empty!"
        );
    }

    #[test]
    fn filters_nested_and_excluded_fields() {
        let v = json!([{"id": "1", "clientId": "app", "access": {"view": true},
                        "protocolMappers": [{"id": "m", "name": "n", "config": {"a": "b"}}]}]);
        let f = Fields::parse("id,access,protocolMappers(id,config)").unwrap();
        assert_eq!(
            f.filter(&v),
            json!([{"id": "1", "access": {}, "protocolMappers": [{"id": "m", "config": {}}]}])
        );
        let f = Fields::parse("*,-id,-protocolMappers").unwrap();
        assert_eq!(f.filter(&v), json!([{"clientId": "app", "access": {}}]));
        let f = Fields::parse("*(*(*))").unwrap();
        assert_eq!(f.filter(&v), v);
    }

    #[test]
    fn csv_rows_follow_the_fields() {
        let v = json!([{"id": "1", "username": "admin", "enabled": true},
                       {"id": "2", "username": "jane", "enabled": false}]);
        let f = Fields::parse("username,id,missing").unwrap();
        assert_eq!(
            csv(&v, Some(&f), false),
            "\"admin\",\"1\",\n\"jane\",\"2\",\n"
        );
        assert_eq!(csv(&v, Some(&f), true), "admin,1,\njane,2,\n");
        assert_eq!(csv(&json!({"a": 1, "b": "x"}), None, false), "1,\"x\"\n");
    }
}
