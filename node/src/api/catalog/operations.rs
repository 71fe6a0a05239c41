//! What each route of the catalog takes and answers, for the OpenAPI
//! document: its query and path parameters, its request body, and every
//! status it really returns with the body that comes with it. The
//! schemas named here are `components.schemas` (see `openapi`).
//!
//! A parameter's schema states exactly what the handler accepts, never
//! more strictly: a value outside the schema is refused with a 4xx, so a
//! client (or a fuzzer) can trust both directions.

use actix_web::http::Method;
use protocol::job::NAME_PATTERN;
use serde_json::{json, Value};

use super::{Access, Endpoint};

/// Run ids and node ids read as `u64` by Rust's parser: digits, an
/// optional `+`, at most 19 digits (always below `u64::MAX`).
const U64_PATTERN: &str = "^\\+?[0-9]{1,19}$";

/// The request and response parts of one operation.
pub struct Operation {
    pub parameters: Vec<Value>,
    pub request_body: Option<Value>,
    /// (status, response object), in the order the document lists them.
    pub responses: Vec<(u16, Value)>,
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn json_content(schema: Value) -> Value {
    json!({"application/json": {"schema": schema}})
}

fn ok_json(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": json_content(schema)})
}

/// A JSON error, `{"error": {"code", "message", "field"}}`.
fn error(description: &str) -> Value {
    ok_json(description, schema_ref("ErrorBody"))
}

/// An error that says when to come back.
fn error_retry(description: &str) -> Value {
    let mut response = error(description);
    response["headers"] = json!({"Retry-After": {
        "description": "Seconds to wait before retrying",
        "schema": {"type": "string", "pattern": "^[0-9]+$"}
    }});
    response
}

fn query(name: &str, schema: Value, description: &str) -> Value {
    json!({"name": name, "in": "query", "required": false, "schema": schema, "description": description})
}

fn path_id(schema: Value, description: &str) -> Value {
    json!({"name": "id", "in": "path", "required": true, "schema": schema, "description": description})
}

fn name_schema() -> Value {
    json!({"type": "string", "pattern": NAME_PATTERN})
}

/// `?namespace=` of a route naming one job: checked like a job id.
fn namespace_of_job() -> Value {
    query(
        "namespace",
        name_schema(),
        "The job's namespace; `default` when absent",
    )
}

/// `?consistent=true` sends a read to the leader.
fn consistent() -> Value {
    query(
        "consistent",
        json!({"type": "boolean"}),
        "true: the leader answers, so the read sees every committed change",
    )
}

fn job_id() -> Value {
    path_id(name_schema(), "The job's id")
}

fn paging(cursor: Value) -> [Value; 2] {
    [
        query(
            "limit",
            json!({"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}),
            "Items per page",
        ),
        query("cursor", cursor, "`next_cursor` of the previous page"),
    ]
}

/// The filters of the run lists (`job` only on `/v1/runs`).
fn run_filters(with_job: bool) -> Vec<Value> {
    let mut out = Vec::new();
    if with_job {
        out.push(query("job", name_schema(), "Only this job's runs"));
    }
    out.push(query(
        "namespace",
        name_schema(),
        "The namespace of `job`; `default` when absent",
    ));
    out.push(query(
        "status",
        schema_ref("RunStatus"),
        "Only runs with this status",
    ));
    for (name, what) in [
        ("since", "Only runs scheduled at or after this time"),
        (
            "until",
            "Only runs scheduled before this time; not before `since`",
        ),
    ] {
        out.push(query(
            name,
            json!({"type": "string", "format": "date-time"}),
            what,
        ));
    }
    out.extend(paging(json!({"type": "string", "pattern": U64_PATTERN})));
    out.push(consistent());
    out
}

fn body(schema: Value, description: &str) -> Value {
    json!({"required": true, "description": description, "content": json_content(schema)})
}

/// A POST that carries nothing still says its body is JSON (see
/// `origin`): an empty object, or no body at all with that type.
fn empty_body() -> Value {
    body(
        json!({"type": "object", "additionalProperties": false}),
        "Nothing: an empty object (a POST is always typed application/json)",
    )
}

/// The parts of `e`.
pub fn operation(e: &Endpoint) -> Operation {
    let path = e.path;
    let mut parameters = Vec::new();
    let mut request_body = None;
    let mut responses: Vec<(u16, Value)> = Vec::new();
    let not_found = |what: &str| (404, error(&format!("No such {what}")));
    let bad = || (400, error("A malformed request; `field` names what to fix"));
    let committed = || {
        (
            503,
            error_retry("No leader now, or the change was not committed in time; retry"),
        )
    };
    let conflict = |what: &str| (409, error(what));
    match (e.method.clone(), path) {
        (Method::POST, "/v1/jobs") => {
            request_body = Some(json!({
                "required": true,
                "description": "A job, or an array of 1 to 10,000 jobs created all or none",
                "content": {"application/json": {
                    "schema": schema_ref("JobCreation"),
                    "examples": {"hello": {"value": {
                        "id": "hello",
                        "schedule": "@manual",
                        "target": {"type": "shell", "command": "true"}
                    }}}
                }}
            }));
            responses.push((
                201,
                ok_json(
                    "Created: the job as GET answers it, or for an array how many were created",
                    json!({"oneOf": [schema_ref("JobView"), schema_ref("JobsCreated")]}),
                ),
            ));
            responses.push(bad());
            responses.push(conflict("A job with this id exists in the namespace"));
            responses.push(committed());
        }
        (Method::GET, "/v1/jobs") => {
            parameters.push(query(
                "namespace",
                name_schema(),
                "Only this namespace's jobs",
            ));
            parameters.push(query(
                "label",
                json!({"type": "string", "pattern": "="}),
                "Only jobs with this label, as key=value",
            ));
            parameters.push(query(
                "enabled",
                json!({"type": "boolean"}),
                "Only enabled (true) or paused (false) jobs",
            ));
            let name = NAME_PATTERN.trim_start_matches('^').trim_end_matches('$');
            let cursor = format!("^{name}/{name}$");
            parameters.extend(paging(json!({"type": "string", "pattern": cursor})));
            parameters.push(consistent());
            responses.push((200, ok_json("A page of jobs", schema_ref("JobViewPage"))));
            responses.push(bad());
        }
        (Method::GET, "/v1/jobs/{id}") => {
            parameters.extend([job_id(), namespace_of_job(), consistent()]);
            responses.push((200, ok_json("The job", schema_ref("JobView"))));
            responses.push(bad());
            responses.push(not_found("job"));
        }
        (Method::PUT, "/v1/jobs/{id}") => {
            parameters.extend([job_id(), namespace_of_job()]);
            request_body = Some(body(
                schema_ref("JobReplacement"),
                "The whole job; `id` and `namespace` come from the URL when left out",
            ));
            responses.push((200, ok_json("The job as replaced", schema_ref("JobView"))));
            responses.push(bad());
            responses.push(not_found("job"));
            responses.push(committed());
        }
        (Method::DELETE, "/v1/jobs/{id}") => {
            parameters.extend([
                job_id(),
                namespace_of_job(),
                query(
                    "force",
                    json!({"type": "boolean"}),
                    "Also remove the links of the jobs that list this one in `children`",
                ),
            ]);
            responses.push((204, json!({"description": "Deleted"})));
            responses.push(bad());
            responses.push(not_found("job"));
            responses.push(conflict(
                "Other jobs list this one in `children`; the message names them (see `force`)",
            ));
            responses.push(committed());
        }
        (Method::POST, "/v1/jobs/{id}/trigger") => {
            parameters.extend([job_id(), namespace_of_job()]);
            request_body = Some(body(
                schema_ref("TriggerRequest"),
                "Optional params for these runs; `{}` (or an empty body) for the job's own",
            ));
            responses.push((
                202,
                ok_json(
                    "The runs created, one per shard",
                    schema_ref("TriggerResponse"),
                ),
            ));
            responses.push(bad());
            responses.push(not_found("job"));
            responses.push(committed());
        }
        (Method::POST, "/v1/jobs/{id}/pause" | "/v1/jobs/{id}/resume") => {
            parameters.extend([job_id(), namespace_of_job()]);
            request_body = Some(empty_body());
            responses.push((200, ok_json("The job", schema_ref("JobView"))));
            responses.push(bad());
            responses.push(not_found("job"));
            responses.push(committed());
        }
        (Method::GET, "/v1/jobs/{id}/placement") => {
            parameters.extend([job_id(), namespace_of_job()]);
            responses.push((
                200,
                ok_json(
                    "The executors matching the job's group, selector and handler",
                    json!({
                        "type": "object",
                        "required": ["executors", "problem"],
                        "properties": {
                            "executors": {"type": "array", "items": {"type": "string"}, "description": "Endpoints of the live executors its runs may go to, in id order"},
                            "problem": {"type": ["string", "null"], "description": "Why no executor may take its runs: the error a run placed now fails with"}
                        }
                    }),
                ),
            ));
            responses.push(bad());
            responses.push(not_found("job"));
        }
        (Method::GET, "/v1/jobs/{id}/runs") => {
            parameters.push(job_id());
            parameters.extend(run_filters(false));
            responses.push((
                200,
                ok_json("A page of runs, newest first", schema_ref("RunPage")),
            ));
            responses.push(bad());
            responses.push(not_found("job"));
        }
        (Method::GET, "/v1/runs") => {
            parameters.extend(run_filters(true));
            responses.push((
                200,
                ok_json("A page of runs, newest first", schema_ref("RunPage")),
            ));
            responses.push(bad());
        }
        (Method::GET, "/v1/runs/{id}") => {
            parameters.push(path_id(json!({"type": "string"}), "The run's id"));
            responses.push((200, ok_json("The run", schema_ref("Run"))));
            responses.push(not_found("run"));
        }
        (Method::POST, "/v1/runs/{id}/kill") => {
            parameters.push(path_id(json!({"type": "string"}), "The run's id"));
            request_body = Some(body(
                json!({}),
                "Ignored; a POST is always typed application/json",
            ));
            responses.push((
                202,
                ok_json(
                    "The kill was sent; the run, ended once the kill is recorded",
                    schema_ref("Run"),
                ),
            ));
            responses.push(not_found("run"));
            responses.push(conflict(
                "The run has ended, or is not active on this scheduler",
            ));
            responses.push(committed());
        }
        (Method::GET, "/v1/runs/{id}/output") => {
            parameters.push(path_id(json!({"type": "string"}), "The run's id"));
            responses.push((
                200,
                json!({"description": "The last 64 KiB of the run's output", "content": {
                    "text/plain": {"schema": {"type": "string"}}
                }}),
            ));
            responses.push(not_found("run"));
        }
        (Method::POST, "/v1/schedules/preview") => {
            request_body = Some(body(
                schema_ref("PreviewRequest"),
                "A schedule and where to start",
            ));
            responses.push((
                200,
                ok_json("The next fire times", schema_ref("PreviewResponse")),
            ));
            responses.push(bad());
        }
        (Method::GET, "/v1/cluster") => {
            responses.push((
                200,
                ok_json(
                    "The Raft group as this node sees it",
                    schema_ref("ClusterStatus"),
                ),
            ));
        }
        (Method::POST, "/v1/cluster/members") => {
            request_body = Some(body(schema_ref("MemberRequest"), "The node to add"));
            responses.push((
                200,
                ok_json("The group after the change", schema_ref("ClusterStatus")),
            ));
            responses.push(bad());
            responses.push(conflict("This node runs without Raft"));
            responses.push(committed());
        }
        (Method::DELETE, "/v1/cluster/members/{id}") => {
            parameters.push(path_id(
                json!({"type": "string", "pattern": U64_PATTERN}),
                "The node id to remove",
            ));
            responses.push((
                200,
                ok_json("The group after the change", schema_ref("ClusterStatus")),
            ));
            responses.push(bad());
            responses.push(not_found("member"));
            responses.push(conflict("This node runs without Raft"));
            responses.push(committed());
        }
        (Method::GET, "/v1/executors") => {
            responses.push((
                200,
                ok_json(
                    "Executors, live and recently dead",
                    json!({"type": "array", "items": schema_ref("ExecutorInfo")}),
                ),
            ));
            responses.push(committed());
        }
        (Method::GET, "/v1/events") => {
            parameters.push(query(
                "job",
                json!({"type": "string"}),
                "Only this job's run and job events",
            ));
            parameters.push(query(
                "namespace",
                json!({"type": "string"}),
                "The namespace of `job`; `default` when absent",
            ));
            responses.push((
                200,
                json!({"description": "An endless stream of `run`, `job`, `leader`, `executor` and `lagged` events", "content": {
                    "text/event-stream": {"schema": {
                        "description": "One event; `data` is its JSON",
                        "type": "object",
                        "required": ["data"],
                        "properties": {
                            "event": {"enum": ["run", "job", "leader", "executor", "lagged"]},
                            "data": {"type": "string", "contentMediaType": "application/json"}
                        }
                    }}
                }}),
            ));
            responses.push(bad());
        }
        (Method::GET, "/v1/stats") => {
            responses.push((
                200,
                ok_json("The last hour of runs", schema_ref("RunStats")),
            ));
        }
        (Method::GET, "/v1/backup") => {
            responses.push((
                200,
                json!({"description": "The whole state, for cronmesh restore", "content": {
                    "application/octet-stream": {"schema": {"type": "string", "contentMediaType": "application/octet-stream"}}
                }}),
            ));
        }
        (Method::GET, "/v1/openapi.json") => {
            responses.push((
                200,
                ok_json(
                    "This document",
                    json!({"type": "object", "required": ["openapi", "paths"]}),
                ),
            ));
        }
        (Method::POST, "/v1/internal/runs/{id}/report") => {
            parameters.push(path_id(json!({"type": "string"}), "The run's id"));
            request_body = Some(body(
                schema_ref("RunReport"),
                "A run's progress (MessagePack with content-type application/msgpack, or JSON)",
            ));
            responses.push((200, ok_json("Recorded", schema_ref("ReportAck"))));
            responses.push(bad());
            responses.push((401, error("A missing or wrong signature")));
            responses.push(not_found("run"));
            responses.push(committed());
        }
        (Method::POST, "/v1/internal/reports") => {
            request_body = Some(body(
                schema_ref("ReportBatch"),
                "Reports of many runs (MessagePack or JSON)",
            ));
            responses.push((
                200,
                ok_json(
                    "One result per report, in order",
                    schema_ref("ReportBatchAck"),
                ),
            ));
            responses.push(bad());
            responses.push((401, error("A missing or wrong signature")));
            responses.push(committed());
        }
        (Method::GET, "/metrics") => {
            responses.push((
                200,
                json!({"description": "Metrics in the OpenMetrics text format", "content": {
                    "application/openmetrics-text": {"schema": {"type": "string"}}
                }}),
            ));
            responses.push(committed());
        }
        (Method::GET, "/healthz") => {
            responses.push((200, ok_json("The process serves", schema_ref("Health"))));
        }
        (Method::GET, "/readyz") => {
            responses.push((200, ok_json("Ready", schema_ref("Readiness"))));
            responses.push((503, ok_json("Not ready, and why", schema_ref("Readiness"))));
        }
        (method, path) => unreachable!("{method} {path} is in the catalog but not described"),
    }
    common_responses(e, request_body.is_some(), &mut responses);
    responses.sort_by_key(|(status, _)| *status);
    Operation {
        parameters,
        request_body,
        responses,
    }
}

/// What the layers around every handler answer: the token check, the
/// rate limit, the cross-origin guard, and the body limits.
fn common_responses(e: &Endpoint, has_body: bool, responses: &mut Vec<(u16, Value)>) {
    let mut add = |status: u16, response: Value| {
        if !responses.iter().any(|(s, _)| *s == status) {
            responses.push((status, response));
        }
    };
    if matches!(e.access, Access::Read | Access::Admin) {
        add(401, error("No token, or one the node does not know"));
        add(
            429,
            error_retry("More requests from this address than the node's rate limit allows"),
        );
        // A read forwarded to the leader (`?consistent=true`) or a write
        // on a follower waits for a leader.
        add(503, error_retry("No leader is known now; retry"));
    }
    let changes = e.method != Method::GET;
    if changes {
        add(
            507,
            error_retry("The node's disk is short of room for this change (`--min-free-space`); retry once there is room"),
        );
    }
    if e.access == Access::Admin || (changes && e.access != Access::Signed) {
        add(
            403,
            error("A read token on an admin route, or a change sent by a page of another origin"),
        );
    }
    if has_body {
        add(413, error("The body is larger than the route takes"));
        add(415, error("The body is not typed application/json"));
        add(400, error("A malformed request; `field` names what to fix"));
    }
}
