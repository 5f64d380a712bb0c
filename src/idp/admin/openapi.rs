//! The admin API's OpenAPI 3.1 document, generated from the route table (paths, methods,
//! path parameters, the body each handler reads and the representation some answer) and
//! from the representation types (JSON Schemas derived from their serde shape), so it
//! cannot drift from what the server routes and reads. Built once; served at
//! `/admin/openapi.json` to anyone (it says nothing the source does not).

use std::sync::OnceLock;

use bytes::Bytes;
use http::{header, HeaderValue, Method, StatusCode};
use serde_json::{json, Map, Value};

use crate::http::router::MethodRouter;
use crate::http::Response;

use super::routes::{self, Body, Handler};

/// Where the table's paths live.
const PREFIX: &str = "/admin/realms";

/// `GET /admin/openapi.json`.
pub(crate) fn serve() -> Response {
    static DOCUMENT: OnceLock<Bytes> = OnceLock::new();
    let body = DOCUMENT
        .get_or_init(|| Bytes::from(document(routes::table()).to_string()))
        .clone();
    let mut r = Response::new(body);
    *r.status_mut() = StatusCode::OK;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    r
}

/// The document for `table`.
pub(crate) fn document(table: &MethodRouter<Handler>) -> Value {
    let mut generator = schemars::generate::SchemaSettings::draft2020_12()
        .with(|s| {
            s.definitions_path = "/components/schemas".into();
            s.meta_schema = None;
        })
        .into_generator();
    let mut paths = Map::new();
    for (path, handlers) in table.routes() {
        let (template, parameters) = template(path);
        let mut item = Map::new();
        for (method, handler) in handlers {
            let operation = operation(method, &template, &parameters, handler, &mut generator);
            item.insert(method.as_str().to_ascii_lowercase(), operation);
        }
        paths.insert(template, Value::Object(item));
    }
    let mut schemas = generator.take_definitions(true);
    // The types' doc comments are written for this code's readers, not the API's.
    for schema in schemas.values_mut() {
        drop_descriptions(schema);
    }
    schemas.insert("ErrorRepresentation".into(), error_schema("errorMessage"));
    schemas.insert("UnauthorizedRepresentation".into(), error_schema("error"));
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Portcullis admin REST API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Keycloak's admin REST API as Portcullis serves it: generated from \
                the server's route table and representation types. Send an access token of \
                the master realm (or of the realm itself) as a bearer token.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            },
            "responses": {
                "Error": {
                    "description": "The request was refused; `errorMessage` says why.",
                    "content": {"application/json": {"schema": {
                        "$ref": "#/components/schemas/ErrorRepresentation"
                    }}},
                },
                "Unauthorized": {
                    "description": "No valid bearer token.",
                    "content": {"application/json": {"schema": {
                        "$ref": "#/components/schemas/UnauthorizedRepresentation"
                    }}},
                },
            },
        },
        "security": [{"bearer": []}],
    })
}

/// The OpenAPI template of a table path (`{*path}` becomes `{path}`) and its parameters.
fn template(path: &str) -> (String, Vec<String>) {
    let mut template = String::from(PREFIX);
    let mut parameters = Vec::new();
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        template.push('/');
        match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(name) => {
                let name = name.trim_start_matches('*');
                template.push_str(&format!("{{{name}}}"));
                parameters.push(name.to_string());
            }
            None => template.push_str(segment),
        }
    }
    (template, parameters)
}

fn operation(
    method: &Method,
    template: &str,
    parameters: &[String],
    handler: &Handler,
    generator: &mut schemars::SchemaGenerator,
) -> Value {
    let mut op = Map::new();
    op.insert("operationId".into(), operation_id(method, template).into());
    op.insert("tags".into(), json!([tag(template)]));
    if !parameters.is_empty() {
        let list: Vec<Value> = parameters
            .iter()
            .map(|name| {
                json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}})
            })
            .collect();
        op.insert("parameters".into(), Value::Array(list));
    }
    let content = match handler.body {
        Body::Json(schema) => Some(json!({"application/json": {"schema": schema(generator)}})),
        Body::Text => Some(json!({"text/plain": {"schema": {"type": "string"}}})),
        Body::Empty | Body::Unsaid => None,
    };
    if let Some(content) = content {
        op.insert(
            "requestBody".into(),
            json!({"required": true, "content": content}),
        );
    }
    let mut responses = Map::new();
    if let Some(schema) = handler.returns {
        responses.insert(
            "200".into(),
            json!({"description": "OK", "content": {"application/json": {"schema": schema(generator)}}}),
        );
    }
    responses.insert("2XX".into(), json!({"description": "Done"}));
    responses.insert(
        "401".into(),
        json!({"$ref": "#/components/responses/Unauthorized"}),
    );
    responses.insert(
        "4XX".into(),
        json!({"$ref": "#/components/responses/Error"}),
    );
    op.insert("responses".into(), Value::Object(responses));
    Value::Object(op)
}

/// `get_realm_users_id` for `GET /admin/realms/{realm}/users/{id}`: unique per method and
/// path, as the table has no two paths that differ only by braces.
fn operation_id(method: &Method, template: &str) -> String {
    let mut id = method.as_str().to_ascii_lowercase();
    for segment in template
        .trim_start_matches(PREFIX)
        .split('/')
        .filter(|s| !s.is_empty())
    {
        id.push('_');
        id.extend(
            segment
                .chars()
                .filter(|c| !matches!(c, '{' | '}'))
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }),
        );
    }
    id
}

/// The resource a path is about: its first fixed segment below the realm.
fn tag(template: &str) -> String {
    template
        .trim_start_matches(PREFIX)
        .split('/')
        .filter(|s| !s.is_empty())
        .find(|s| !s.starts_with('{'))
        .unwrap_or("realms")
        .to_string()
}

/// Remove the `description` of a schema and of every schema inside it (a property named
/// `description` stays: it is a field, not a comment).
fn drop_descriptions(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            if map.get("description").is_some_and(Value::is_string) {
                map.remove("description");
            }
            for (key, inner) in map.iter_mut() {
                match (key.as_str(), inner) {
                    ("properties" | "patternProperties" | "$defs", Value::Object(fields)) => {
                        fields.values_mut().for_each(drop_descriptions)
                    }
                    (_, inner) => drop_descriptions(inner),
                }
            }
        }
        Value::Array(list) => list.iter_mut().for_each(drop_descriptions),
        _ => {}
    }
}

/// Keycloak's error body: `errorMessage` (or, for 401, `error`) says why.
fn error_schema(required: &str) -> Value {
    json!({
        "type": "object",
        "required": [required],
        "properties": {
            "error": {"type": "string"},
            "errorMessage": {"type": "string"},
            "field": {"type": "string"},
            "params": {"type": "array"},
            "errors": {"type": "array"},
        },
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn built() -> Value {
        document(routes::table())
    }

    #[test]
    fn every_post_and_put_says_what_it_reads() {
        let mut unsaid = Vec::new();
        for (path, handlers) in routes::table().routes() {
            for (method, handler) in handlers {
                if matches!(*method, Method::POST | Method::PUT)
                    && matches!(handler.body, Body::Unsaid)
                {
                    unsaid.push(format!("{method} {path}"));
                }
            }
        }
        assert!(
            unsaid.is_empty(),
            "say the body (takes/no_body): {unsaid:?}"
        );
    }

    #[test]
    fn the_document_has_every_operation_of_the_table_once() {
        let doc = built();
        let mut ids = BTreeSet::new();
        let mut operations = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                operations += 1;
                let id = op["operationId"].as_str().unwrap().to_string();
                assert!(ids.insert(id.clone()), "{method} {path}: {id} twice");
                let declared: BTreeSet<&str> = op["parameters"]
                    .as_array()
                    .map(|l| l.iter().map(|p| p["name"].as_str().unwrap()).collect())
                    .unwrap_or_default();
                let in_path: BTreeSet<&str> = path
                    .split('/')
                    .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
                    .collect();
                assert_eq!(declared, in_path, "{method} {path}");
            }
        }
        let in_table: usize = routes::table().routes().map(|(_, h)| h.len()).sum();
        assert_eq!(operations, in_table);
        assert!(operations > 250, "{operations}");
    }

    #[test]
    fn every_reference_resolves() {
        let doc = built();
        let text = doc.to_string();
        let mut missing = Vec::new();
        for piece in text.split("\"$ref\":\"#/").skip(1) {
            let pointer = &piece[..piece.find('"').unwrap()];
            if doc.pointer(&format!("/{pointer}")).is_none() {
                missing.push(pointer.to_string());
            }
        }
        assert!(missing.is_empty(), "{missing:?}");
    }

    #[test]
    fn representations_carry_keycloaks_names_and_fields() {
        let doc = built();
        let user = &doc["components"]["schemas"]["UserRepresentation"];
        assert_eq!(user["type"], "object");
        for field in ["username", "email", "enabled", "attributes", "credentials"] {
            assert!(user["properties"].get(field).is_some(), "{field}");
        }
        let create = &doc["paths"]["/admin/realms/{realm}/users"]["post"];
        assert_eq!(
            create["requestBody"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/UserRepresentation"
        );
        assert_eq!(create["tags"], json!(["users"]));
        let list = &doc["paths"]["/admin/realms/{realm}/users"]["get"];
        assert_eq!(
            list["responses"]["200"]["content"]["application/json"]["schema"]["items"]["$ref"],
            "#/components/schemas/UserRepresentation"
        );
        // A catch-all is an ordinary parameter in the document.
        assert!(doc["paths"]
            .get("/admin/realms/{realm}/group-by-path/{path}")
            .is_some());
        assert!(doc["paths"]["/admin/realms"]["post"]["requestBody"].is_object());
        // Code comments stay in the code; a field named `description` stays a field.
        let client = &doc["components"]["schemas"]["ClientRepresentation"];
        assert!(client["properties"]["description"].is_object());
        assert!(!doc["components"]["schemas"]
            .to_string()
            .contains("apply_input"));
    }
}
