//! The durable parts of `/openapi.json`: what a durable endpoint answers besides its
//! output (`202` at a checkpoint, `409`, `406`), its `Idempotency-Key`, and the `/runs`
//! routes.

use serde_json::{Map, Value, json};

use super::error_response;
use crate::server::identity::IdentityConfig;

/// The component of the `202` body.
const CHECKPOINT_SCHEMA: &str = "fastagentic.Checkpoint";
/// The component of `GET /runs/{id}`.
const RUN_SCHEMA: &str = "fastagentic.Run";
/// The component of one entry of `GET /runs`.
const RUN_SUMMARY_SCHEMA: &str = "fastagentic.RunSummary";
/// The component of a `409` about a run.
const RUN_CONFLICT_SCHEMA: &str = "fastagentic.RunConflict";

/// Every run status, as the API writes them.
fn run_statuses() -> Vec<&'static str> {
    crate::durable::RunStatus::ALL
        .iter()
        .map(|s| s.as_str())
        .collect()
}

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn run_id_header() -> Value {
    json!({
        "X-Run-Id": {
            "description": "The durable run this answer is about.",
            "schema": { "type": "string" }
        }
    })
}

/// The `Idempotency-Key` header a durable endpoint takes.
pub(super) fn idempotency_key() -> Value {
    json!({
        "name": "Idempotency-Key",
        "in": "header",
        "required": false,
        "description": "Starts the run at most once: a second request with the same key gets the first run's output once it completed, else 409 naming the run.",
        "schema": { "type": "string", "minLength": 1, "maxLength": 255 }
    })
}

/// What a durable endpoint answers besides its output and the usual errors.
pub(super) fn durable_responses(responses: &mut Map<String, Value>) {
    if let Some(ok) = responses.get_mut("200") {
        ok["headers"] = run_id_header();
    }
    responses.insert("202".into(), checkpointed());
    responses.insert(
        "406".into(),
        error_response(406, "A stream was asked for (`Accept: text/event-stream`, `\"stream\": true`): a durable endpoint answers JSON only."),
    );
    responses.insert(
        "409".into(),
        conflict("A run with this `Idempotency-Key` exists and has not completed."),
    );
}

fn checkpointed() -> Value {
    let mut headers = run_id_header();
    headers["Location"] = json!({
        "description": "The run: `/runs/{id}`.",
        "schema": { "type": "string" }
    });
    json!({
        "description": "The total timeout cut the run (`on_timeout = \"checkpoint\"`); its completed steps are journaled. Resume it at `resume`.",
        "headers": headers,
        "content": { "application/json": { "schema": reference(CHECKPOINT_SCHEMA) } }
    })
}

fn conflict(when: &str) -> Value {
    json!({
        "description": when,
        "headers": run_id_header(),
        "content": { "application/json": { "schema": reference(RUN_CONFLICT_SCHEMA) } }
    })
}

fn run_path_parameter() -> Value {
    json!({
        "name": "id",
        "in": "path",
        "required": true,
        "description": "The run's id (`run_…`), from `X-Run-Id` or `Location`.",
        "schema": { "type": "string" }
    })
}

fn not_found() -> Value {
    error_response(
        404,
        "No such run (or not the caller's); ended runs are deleted after their retention.",
    )
}

fn store_down() -> Value {
    error_response(503, "The run store did not answer; nothing was run.")
}

/// `/runs`, `/runs/{id}` and `/runs/{id}/resume`.
pub(super) fn paths(paths: &mut Map<String, Value>, identity: &IdentityConfig) {
    let statuses = run_statuses();
    let mut listed = json!({
        "200": {
            "description": "The newest runs first.",
            "content": { "application/json": { "schema": {
                "type": "object",
                "required": ["runs"],
                "properties": { "runs": { "type": "array", "items": reference(RUN_SUMMARY_SCHEMA) } }
            } } }
        },
        "400": error_response(400, "`status` is not a run status, `limit` is not a whole number from 1 to 500, or either is given twice."),
        "503": store_down(),
    });
    if identity.operator_key.is_some() {
        listed["401"] = error_response(401, "The operator key is missing or wrong.");
    } else if identity.require_api_key {
        listed["404"] = error_response(
            404,
            "Operator routes are off: API keys are required and no operator key is set.",
        );
    }
    paths.insert(
        "/runs".into(),
        json!({ "get": {
        "operationId": "list_runs",
        "summary": "Lists durable runs, newest first (an operator route).",
        "parameters": [
            { "name": "status", "in": "query", "required": false,
              "schema": { "type": "string", "enum": statuses } },
            { "name": "limit", "in": "query", "required": false,
              "description": "At most this many (1 to 500, default 100).",
              "schema": { "type": "integer", "minimum": 1, "maximum": 500 } }
        ],
        "responses": listed,
    } }),
    );
    paths.insert(
        "/runs/{id}".into(),
        json!({ "get": {
        "operationId": "get_run",
        "summary": "A durable run: status, steps, usage, cost, output or error.",
        "parameters": [run_path_parameter()],
        "responses": {
            "200": {
                "description": "The run.",
                "headers": run_id_header(),
                "content": { "application/json": { "schema": reference(RUN_SCHEMA) } }
            },
            "404": not_found(),
            "503": store_down(),
        },
    } }),
    );
    paths.insert(
        "/runs/{id}/resume".into(),
        json!({ "post": {
        "operationId": "resume_run",
        "summary": "Runs a run on from its journal; a completed run answers its output again.",
        "parameters": [run_path_parameter()],
        "responses": resume_responses(),
    } }),
    );
}

fn resume_responses() -> Value {
    let mut responses = json!({
        "200": {
            "description": "The endpoint's output (journaled steps replayed, not run again).",
            "headers": run_id_header(),
            "content": { "application/json": { "schema": {} } }
        },
        "202": checkpointed(),
        "404": not_found(),
        "422": error_response(422, "The run's stored input no longer fits the endpoint's input type (`field` names where), or the model refused it."),
        "409": conflict("The run is running (another request holds it), or its endpoint is not served here."),
    });
    for (status, when) in [
        (429, "A rate limit of the run's caller refused it."),
        (
            500,
            "The endpoint's body failed, or asked for other steps than its journal holds.",
        ),
        (502, "The provider failed after every retry and fallback."),
        (
            503,
            "The provider is overloaded, a breaker is open, the run store did not answer, or the server is shutting down.",
        ),
        (504, "A timeout passed (`stage` names which)."),
    ] {
        responses[status.to_string()] = error_response(status, when);
    }
    responses
}

/// The schemas the durable answers refer to.
pub(super) fn schemas(schemas: &mut Map<String, Value>) {
    let statuses = run_statuses();
    let status = json!({ "type": "string", "enum": statuses });
    schemas.insert(CHECKPOINT_SCHEMA.into(), json!({
        "type": "object",
        "required": ["run_id", "status", "steps", "resume"],
        "properties": {
            "run_id": { "type": "string" },
            "status": { "const": "checkpointed" },
            "steps": { "type": "integer", "minimum": 0, "description": "Steps journaled so far." },
            "resume": { "type": "string", "description": "`POST` here to run it on." }
        }
    }));
    let usage = json!({ "type": ["object", "null"] });
    schemas.insert(
        RUN_SUMMARY_SCHEMA.into(),
        json!({
            "type": "object",
            "required": ["run_id", "endpoint", "status", "steps", "created_ms", "updated_ms"],
            "properties": {
                "run_id": { "type": "string" },
                "endpoint": { "type": "string" },
                "status": status,
                "steps": { "type": "integer", "minimum": 0 },
                "created_ms": { "type": "integer" },
                "updated_ms": { "type": "integer" }
            }
        }),
    );
    schemas.insert(RUN_SCHEMA.into(), json!({
        "type": "object",
        "required": ["run_id", "endpoint", "status", "steps", "created_ms", "updated_ms"],
        "properties": {
            "run_id": { "type": "string" },
            "endpoint": { "type": "string" },
            "status": status,
            "steps": { "type": "array", "items": {
                "type": "object",
                "required": ["index", "name", "completed_ms"],
                "properties": {
                    "index": { "type": "integer", "minimum": 0 },
                    "name": { "type": "string", "description": "`llm`, `tool:<name>`, or a `ctx.step` name." },
                    "model": { "type": "string" },
                    "usage": usage,
                    "cost_usd": { "type": "number" },
                    "completed_ms": { "type": "integer" }
                }
            } },
            "usage": usage,
            "cost_usd": { "type": ["number", "null"] },
            "output": { "description": "The endpoint's output, once `completed`." },
            "error": { "type": "object", "description": "Why it stopped, unless `completed`." },
            "resume": { "type": "string", "description": "Where to resume it, unless `completed`." },
            "idempotency_key": { "type": "string" },
            "user": { "type": "string" },
            "tenant": { "type": "string" },
            "created_ms": { "type": "integer" },
            "updated_ms": { "type": "integer" }
        }
    }));
    schemas.insert(
        RUN_CONFLICT_SCHEMA.into(),
        json!({
            "type": "object",
            "required": ["error", "run_id", "status"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["class", "message"],
                    "properties": { "class": { "type": "string" }, "message": { "type": "string" } }
                },
                "run_id": { "type": "string" },
                "status": status
            }
        }),
    );
}
