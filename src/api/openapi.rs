//! The route table's entries and the OpenAPI 3.1 document built from them. Request and response
//! schemas are generated from the very Rust types the handlers deserialise and serialise
//! (schemars, JSON Schema 2020-12, which OpenAPI 3.1 uses), so the document can only describe
//! what is served.

use super::AppState;
use crate::governance::Role;
use axum::routing::MethodRouter;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use schemars::{JsonSchema, Schema};
use serde_json::{json, Value};
use std::sync::Arc;

/// Generates a type's schema into the document's components (a `$ref` to it).
type SchemaOf = fn(&mut SchemaGenerator) -> Schema;

fn schema_of<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

/// A request or response body.
enum Content {
    /// `application/json` of a type.
    Json(SchemaOf),
    /// Any bytes (`application/octet-stream`): artifacts and SBOMs.
    Bytes,
    /// Text of a media type the API documents by its own spec (JSON Lines, SSE, a signed note).
    Text(&'static str),
}

/// One operation's documentation.
pub struct Op {
    pub(super) method: &'static str,
    summary: &'static str,
    /// Roles that may call it; empty means public.
    pub(super) roles: &'static [Role],
    query: &'static [(&'static str, &'static str)],
    body: Option<(Content, bool)>,
    responses: Vec<(u16, &'static str, Option<Content>)>,
}

/// An operation.
pub(super) fn op(method: &'static str, summary: &'static str, roles: &'static [Role]) -> Op {
    Op {
        method,
        summary,
        roles,
        query: &[],
        body: None,
        responses: Vec::new(),
    }
}

impl Op {
    /// Its query parameters: (name, JSON type).
    pub(super) fn query(mut self, query: &'static [(&'static str, &'static str)]) -> Self {
        self.query = query;
        self
    }
    /// A required JSON body of type `T`.
    pub(super) fn body<T: JsonSchema>(mut self) -> Self {
        self.body = Some((Content::Json(schema_of::<T>), true));
        self
    }
    /// An optional JSON body of type `T`.
    pub(super) fn optional_body<T: JsonSchema>(mut self) -> Self {
        self.body = Some((Content::Json(schema_of::<T>), false));
        self
    }
    /// A body of bytes, streamed.
    pub(super) fn bytes(mut self) -> Self {
        self.body = Some((Content::Bytes, true));
        self
    }
    /// Answers `status` with a JSON `T`.
    pub(super) fn returns<T: JsonSchema>(mut self, status: u16, description: &'static str) -> Self {
        self.responses
            .push((status, description, Some(Content::Json(schema_of::<T>))));
        self
    }
    /// Answers `status` with text of `media_type`.
    pub(super) fn returns_text(
        mut self,
        status: u16,
        description: &'static str,
        media_type: &'static str,
    ) -> Self {
        self.responses
            .push((status, description, Some(Content::Text(media_type))));
        self
    }
    /// Answers `status` with bytes (`application/octet-stream`).
    pub(super) fn returns_bytes(mut self, status: u16, description: &'static str) -> Self {
        self.responses
            .push((status, description, Some(Content::Bytes)));
        self
    }
    /// Answers 204 with no body.
    pub(super) fn no_content(self) -> Self {
        self.empty(204, "Done")
    }
    /// Answers `status` with no body.
    pub(super) fn empty(mut self, status: u16, description: &'static str) -> Self {
        self.responses.push((status, description, None));
        self
    }
}

/// A path, what serves it, and how it is documented.
pub struct RouteEntry {
    pub(super) path: &'static str,
    pub(super) handler: MethodRouter<Arc<AppState>>,
    pub(super) ops: Vec<Op>,
}

/// A route table entry.
pub(super) fn route(
    path: &'static str,
    handler: MethodRouter<Arc<AppState>>,
    ops: Vec<Op>,
) -> RouteEntry {
    RouteEntry { path, handler, ops }
}

/// An RFC 9457 problem, as every error is answered.
#[derive(JsonSchema)]
#[allow(dead_code)]
struct Problem {
    /// A URI naming the kind of problem.
    r#type: String,
    /// The HTTP reason phrase.
    title: String,
    /// The HTTP status.
    status: u16,
    /// What exactly is wrong.
    detail: String,
}

fn content(content: &Content, generator: &mut SchemaGenerator) -> Value {
    match content {
        Content::Json(schema) => json!({"application/json": {"schema": schema(generator)}}),
        Content::Bytes => {
            json!({"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}})
        }
        Content::Text(media_type) => json!({*media_type: {"schema": {"type": "string"}}}),
    }
}

fn operation(path: &str, o: &Op, generator: &mut SchemaGenerator) -> Value {
    let mut parameters: Vec<Value> = path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| {
            let schema = if name == "id" {
                json!({"type": "string", "format": "uuid"})
            } else {
                json!({"type": "string"})
            };
            json!({"name": name, "in": "path", "required": true, "schema": schema})
        })
        .collect();
    parameters.extend(o.query.iter().map(|(name, kind)| json!({"name": name, "in": "query", "required": false, "schema": {"type": kind}})));
    let problem = json!({"description": "RFC 9457 problem", "content": {"application/problem+json": {"schema": schema_of::<Problem>(generator)}}});
    let mut responses = serde_json::Map::new();
    for (status, description, body) in &o.responses {
        let mut response = json!({"description": description});
        if let Some(body) = body {
            response["content"] = content(body, generator);
        }
        responses.insert(status.to_string(), response);
    }
    responses.insert("default".into(), problem);
    let mut operation = json!({
        "summary": o.summary,
        "operationId": format!(
            "{}_{}{}",
            o.method,
            path.trim_matches('/').replace(['/', '{', '}', '-', '.'], "_"),
            if path.ends_with('/') { "_slash" } else { "" }
        ),
        "parameters": parameters,
        "responses": responses,
        "x-roles": if o.roles.is_empty() { json!("public") } else { json!(o.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>()) },
    });
    if !o.roles.is_empty() {
        operation["security"] = json!([{"bearer": []}]);
    }
    if let Some((body, required)) = &o.body {
        operation["requestBody"] =
            json!({"required": required, "content": content(body, generator)});
    }
    operation
}

/// A route's path as OpenAPI writes it: a trailing wildcard (`{*rest}`, which matches the rest
/// of the path, slashes included) is a plain parameter there.
fn openapi_path(path: &str) -> String {
    path.replace("{*", "{")
}

/// The OpenAPI 3.1 document of `table`.
pub(super) fn document(table: &[RouteEntry]) -> Value {
    let mut generator = SchemaSettings::draft2020_12()
        .with(|s| s.definitions_path = "/components/schemas".into())
        .into_generator();
    let mut paths = serde_json::Map::new();
    for entry in table {
        let item: serde_json::Map<String, Value> = entry
            .ops
            .iter()
            .map(|o| {
                (
                    o.method.to_owned(),
                    operation(&openapi_path(entry.path), o, &mut generator),
                )
            })
            .collect();
        paths.insert(openapi_path(entry.path), Value::Object(item));
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "trustledger", "version": env!("CARGO_PKG_VERSION"), "description": "Tamper-evident deployment governance. A command's response names the log seqs it appended in the `trustledger-seqs` header (comma-separated), for `GET /api/v1/log/receipt?seq=N`.", "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"}},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": generator.take_definitions(true),
        },
    })
}
