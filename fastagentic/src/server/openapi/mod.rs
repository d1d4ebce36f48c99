//! `GET /openapi.json`: an OpenAPI 3.1 document of the served endpoints.
//!
//! Each endpoint is a `POST` whose request and response bodies are the JSON Schemas of its
//! Rust input and output types (from `schemars`, when they implement `JsonSchema`; any
//! JSON otherwise), with the statuses its policies can answer and the shared error body.
//! Schemas of named types go to `components/schemas`, so a type used by several endpoints
//! is written once.

use std::collections::HashSet;
use std::sync::Arc;

use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

mod runs;

use super::state::{EndpointState, Shared};
use crate::error::ErrorClass;

/// The error body's component name: dotted, so no Rust type's schema name (an
/// identifier, such as a user's own `Error`) can take its place.
const ERROR_SCHEMA: &str = "fastagentic.Error";

/// The document for `endpoints` as `shared` serves them.
pub(crate) fn document(shared: &Shared, endpoints: &[Arc<EndpointState>]) -> Value {
    let mut settings = SchemaSettings::draft2020_12();
    settings.definitions_path = "/components/schemas".into();
    settings.meta_schema = None;
    let mut generator = settings.into_generator();
    let mut paths = Map::new();
    let mut operation_ids = HashSet::new();
    for state in endpoints {
        let operation = operation(shared, state, &mut generator, &mut operation_ids);
        paths.insert(state.served.path.clone(), json!({ "post": operation }));
    }
    paths.insert("/health".to_owned(), health());
    let mut schemas = generator.take_definitions(true);
    schemas.insert(ERROR_SCHEMA.to_owned(), error_schema());
    if endpoints.iter().any(|state| state.served.durable) {
        runs::paths(&mut paths, &shared.identity);
        runs::schemas(&mut schemas);
    }
    let mut components = json!({ "schemas": schemas });
    let mut document = json!({
        "openapi": "3.1.0",
        "info": {
            "title": shared.title,
            "version": shared.version.as_deref().unwrap_or("0.0.0"),
        },
        "paths": paths,
    });
    if shared.identity.has_api_keys() {
        components["securitySchemes"] = json!({
            "bearer": { "type": "http", "scheme": "bearer" },
            "apiKey": { "type": "apiKey", "in": "header", "name": "X-Api-Key" },
        });
        let mut security = vec![json!({ "bearer": [] }), json!({ "apiKey": [] })];
        if !shared.identity.require_api_key {
            // Anonymous calls are served too.
            security.push(json!({}));
        }
        document["security"] = Value::Array(security);
    }
    document["components"] = components;
    document
}

fn operation(
    shared: &Shared,
    state: &EndpointState,
    generator: &mut schemars::SchemaGenerator,
    operation_ids: &mut HashSet<String>,
) -> Value {
    let served = &state.served;
    let (input, output) = served.schemas();
    let when = if served.stream {
        "Always: this endpoint streams."
    } else {
        "When the request asks for it (`Accept: text/event-stream` or `\"stream\": true`)."
    };
    let mut success = json!({ "application/json": { "schema": output(generator) } });
    if !served.durable {
        success["text/event-stream"] = json!({ "schema": sse_event_schema(when) });
    }
    let mut responses = Map::new();
    responses.insert(
        "200".into(),
        json!({ "description": "The endpoint's answer.", "content": success }),
    );
    let limited = served.policies.rate_limit.is_some() || shared.global_limiter.is_some();
    for (status, when) in error_statuses(limited, shared.identity.has_api_keys()) {
        responses.insert(status.to_string(), error_response(status, when));
    }
    if served.durable {
        runs::durable_responses(&mut responses);
    }
    let mut id = served.name.clone();
    let mut n = 2;
    while !operation_ids.insert(id.clone()) {
        id = format!("{}_{n}", served.name);
        n += 1;
    }
    let mut operation = json!({
        "operationId": id,
        "summary": served.description.lines().next().unwrap_or(""),
        "description": served.description,
        "responses": responses,
    });
    if served.durable {
        operation["parameters"] = json!([runs::idempotency_key()]);
    }
    if let Some(input) = input {
        operation["requestBody"] = json!({
            "required": true,
            "content": { "application/json": { "schema": input(generator) } },
        });
    }
    operation
}

/// The error statuses an endpoint can answer, and when.
fn error_statuses(limited: bool, keys: bool) -> Vec<(u16, &'static str)> {
    let mut statuses = vec![(400, "The body is not JSON.")];
    if keys {
        statuses.push((401, "No valid API key."));
    }
    statuses.extend([
        (413, "The body is larger than the app's body limit."),
        (422, "The input does not fit the endpoint's input type (`field` names where), or the model refused it (context overflow, content policy)."),
    ]);
    if limited {
        statuses.push((
            429,
            "A rate limit refused the call; `Retry-After` says when to retry.",
        ));
    }
    statuses.extend([
        (500, "The endpoint's body failed (a bug, a panic)."),
        (502, "The provider failed after every retry and fallback (server error, bad answer, cut stream)."),
        (503, "The provider is overloaded or rate limited upstream, a circuit breaker is open (`Retry-After`), or the server is shutting down."),
        (504, "A timeout passed (`stage` names which)."),
    ]);
    statuses
}

fn error_response(status: u16, when: &str) -> Value {
    let mut response = json!({
        "description": when,
        "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{ERROR_SCHEMA}") } } },
    });
    if matches!(status, 429 | 503) {
        response["headers"] = json!({
            "Retry-After": {
                "description": "Seconds to wait before retrying, when known.",
                "schema": { "type": "integer" }
            }
        });
    }
    response
}

/// One event of an endpoint's stream: its name and its data, one line of JSON.
fn sse_event_schema(when: &str) -> Value {
    json!({
        "description": format!("{when} Server-sent events, each one as this object."),
        "type": "object",
        "required": ["event", "data"],
        "properties": {
            "event": {
                "type": "string",
                "enum": [
                    "delta", "reasoning", "refusal", "tool_call", "tool_result",
                    "usage", "finish", "cost", "done", "error"
                ],
                "description": "`delta` events carry text as it arrives; `cost` the run's spending; the stream ends with `done` (the answer) or `error` (the error body)."
            },
            "data": { "type": "string", "contentMediaType": "application/json" },
            "id": { "type": "string" },
            "retry": { "type": "integer" }
        }
    })
}

fn health() -> Value {
    json!({
        "get": {
            "operationId": "health",
            "summary": "Liveness: always open, for load balancers.",
            "responses": {
                "200": {
                    "description": "The app is serving.",
                    "content": { "application/json": { "schema": {
                        "type": "object",
                        "required": ["status", "title"],
                        "properties": {
                            "status": { "const": "ok" },
                            "title": { "type": "string" },
                            "version": { "type": ["string", "null"] }
                        }
                    } } }
                }
            }
        }
    })
}

/// The `{"error": {...}}` body every failure is answered with.
fn error_schema() -> Value {
    let classes: Vec<&str> = ErrorClass::ALL.iter().map(|c| c.as_str()).collect();
    json!({
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["class", "message"],
                "properties": {
                    "class": { "type": "string", "enum": classes },
                    "message": { "type": "string" },
                    "retry_after_ms": { "type": "integer", "minimum": 0 },
                    "model": { "type": "string" },
                    "provider": { "type": "string" },
                    "upstream_status": { "type": "integer" },
                    "attempted": { "type": "array", "items": { "type": "string" } },
                    "partial": {
                        "type": "object",
                        "properties": { "text": { "type": "string" } }
                    },
                    "field": { "type": "string", "description": "Where the input did not fit: `items[2].name`, `.` for the whole input." }
                },
                "additionalProperties": true
            }
        }
    })
}
