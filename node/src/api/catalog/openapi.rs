//! `GET /v1/openapi.json`: the OpenAPI 3.1 document of the catalog. The
//! bodies' schemas are generated from the protocol types
//! ([`protocol::api::schemas`]); the few bodies that are not a protocol
//! type (envelopes, health answers, executor reports) are written here.

use serde_json::{json, Map, Value};

use super::{operations, Access, Endpoint};

/// The OpenAPI 3.1 document of `endpoints`.
pub fn document(endpoints: &[Endpoint]) -> Value {
    let mut paths = Map::new();
    for e in endpoints {
        let parts = operations::operation(e);
        let mut responses = Map::new();
        for (status, response) in parts.responses {
            responses.insert(status.to_string(), response);
        }
        let mut operation = json!({
            "summary": e.summary,
            "operationId": super::operation_id(e),
            "x-cronmesh-access": e.access.as_str(),
            "responses": responses,
        });
        if !parts.parameters.is_empty() {
            operation["parameters"] = Value::Array(parts.parameters);
        }
        if let Some(body) = parts.request_body {
            operation["requestBody"] = body;
        }
        match e.access {
            Access::Open | Access::Signed => operation["security"] = json!([]),
            Access::Read | Access::Admin => {}
        }
        let item = paths
            .entry(e.path.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        item[e.method.as_str().to_lowercase()] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "cronmesh admin API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Jobs, runs, the cluster and executors of a cronmesh scheduler. Any node answers; writes on a follower are forwarded to the leader. Errors are {\"error\": {\"code\", \"message\", \"field\"}}; a malformed request gets a 4xx naming the field."
        },
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas(),
        }
    })
}

/// Every schema the operations refer to.
fn schemas() -> Map<String, Value> {
    let mut schemas = protocol::api::schemas();
    let job = schemas.get("Job").cloned().unwrap_or(Value::Null);
    schemas.insert("JobReplacement".into(), replacement(job));
    schemas.insert(
        "JobCreation".into(),
        json!({"oneOf": [
            {"$ref": "#/components/schemas/Job"},
            {"type": "array", "items": {"$ref": "#/components/schemas/Job"}, "minItems": 1, "maxItems": 10000}
        ]}),
    );
    schemas.insert(
        "JobsCreated".into(),
        json!({
            "type": "object",
            "description": "What POST /v1/jobs with an array answers.",
            "required": ["created", "ids"],
            "properties": {
                "created": {"type": "integer", "minimum": 1},
                "ids": {"type": "array", "items": {"type": "string"}}
            }
        }),
    );
    let time = json!({"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]});
    let report = json!({
        "type": "object",
        "description": "An executor's report of a run (docs/EXECUTOR-PROTOCOL.md).",
        "required": ["run_id", "executor", "status"],
        "properties": {
            "run_id": {"type": "string"},
            "executor": {"type": "string"},
            "status": {"$ref": "#/components/schemas/RunStatus"},
            "started_at": time,
            "finished_at": time,
            "exit_code": {"type": ["integer", "null"], "minimum": i32::MIN, "maximum": i32::MAX},
            "output": {"type": "string", "default": ""},
            "error": {"type": ["string", "null"]}
        }
    });
    schemas.insert("RunReport".into(), report);
    schemas.insert(
        "ReportBatch".into(),
        json!({
            "type": "object",
            "required": ["reports"],
            "properties": {"reports": {"type": "array", "items": {"$ref": "#/components/schemas/RunReport"}}}
        }),
    );
    schemas.insert(
        "ReportBatchAck".into(),
        json!({
            "type": "object",
            "required": ["results"],
            "properties": {"results": {"type": "array", "items": {"enum": ["recorded", "refused"]}}}
        }),
    );
    schemas.insert(
        "ReportAck".into(),
        json!({"type": "object", "required": ["ok"], "properties": {"ok": {"const": true}}}),
    );
    schemas.insert(
        "Health".into(),
        json!({"type": "object", "required": ["status"], "properties": {"status": {"const": "ok"}}}),
    );
    let index = json!({"type": "integer", "minimum": 0});
    schemas.insert(
        "Readiness".into(),
        json!({
            "type": "object",
            "required": ["status", "reason", "leader_id", "commit_index", "applied_index"],
            "properties": {
                "status": {"enum": ["ready", "not_ready"]},
                "reason": {"type": "string"},
                "leader_id": {"type": ["integer", "null"], "minimum": 0},
                "commit_index": index,
                "applied_index": index,
                "storage": {"anyOf": [{"$ref": "#/components/schemas/StorageStatus"}, {"type": "null"}]}
            }
        }),
    );
    schemas
}

/// `PUT /v1/jobs/{id}` takes a Job whose `id` and `namespace` may be
/// left out (they come from the URL).
fn replacement(mut job: Value) -> Value {
    if let Some(required) = job.get_mut("required").and_then(Value::as_array_mut) {
        required.retain(|field| field != "id" && field != "namespace");
    }
    job["description"] = json!(
        "A whole job for PUT /v1/jobs/{id}: fields left out take their defaults; id and namespace, when given, must match the URL."
    );
    job
}
