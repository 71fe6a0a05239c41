//! Human-readable output: aligned tables and key/value views built from the
//! server's JSON. Missing fields show as `-` so a newer or older server still
//! renders.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

/// Columns separated by two spaces, padded to the widest cell.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let header: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            let pad = widths
                .get(i)
                .copied()
                .unwrap_or(0)
                .saturating_sub(cell.chars().count());
            line.extend(std::iter::repeat_n(' ', pad));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `key  value` lines for one object, nested objects flattened to
/// `a.b`; fields named in `order` come first, the rest alphabetically.
/// Multi-line strings (a run's output) follow the table as blocks.
pub fn key_values(value: &Value, order: &[&str]) -> String {
    let Some(object) = value.as_object() else {
        return format!("{}\n", scalar(value));
    };
    let mut keys: Vec<&String> = object.keys().collect();
    let rank = |k: &str| order.iter().position(|o| *o == k).unwrap_or(order.len());
    keys.sort_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.cmp(b)));

    let mut lines: Vec<(String, Vec<String>)> = Vec::new();
    let mut blocks: Vec<(String, String)> = Vec::new();
    for key in keys {
        flatten(key, &object[key.as_str()], &mut lines, &mut blocks);
    }
    let width = lines
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (key, values) in lines {
        for (i, v) in values.iter().enumerate() {
            let label = if i == 0 { key.as_str() } else { "" };
            let line = format!("{label:width$}  {v}");
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
    for (key, text) in blocks {
        out.push_str(&format!("\n{key}:\n{text}"));
        if !text.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

fn flatten(
    key: &str,
    value: &Value,
    lines: &mut Vec<(String, Vec<String>)>,
    blocks: &mut Vec<(String, String)>,
) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                flatten(&format!("{key}.{k}"), v, lines, blocks);
            }
        }
        Value::Array(items) if items.iter().any(|i| i.is_object() || i.is_array()) => {
            for (i, item) in items.iter().enumerate() {
                flatten(&format!("{key}[{i}]"), item, lines, blocks);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            lines.push((key.to_string(), items.iter().map(scalar).collect()));
        }
        Value::String(s) if s.contains('\n') => blocks.push((key.to_string(), s.clone())),
        _ => lines.push((key.to_string(), vec![scalar(value)])),
    }
}

/// One cell: strings bare, null / empty as `-`, control characters blanked.
pub fn scalar(value: &Value) -> String {
    let text = match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(a) if a.is_empty() => String::new(),
        Value::Object(o) if o.is_empty() => String::new(),
        other => other.to_string(),
    };
    cell(&text)
}

fn cell(text: &str) -> String {
    if text.is_empty() {
        return "-".into();
    }
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn at<'a>(value: &'a Value, path: &[&str]) -> &'a Value {
    path.iter()
        .try_fold(value, |v, key| v.get(key))
        .unwrap_or(&Value::Null)
}

/// A timestamp to the second in UTC, or the text as given.
pub fn time(value: &Value) -> String {
    match value.as_str().map(DateTime::parse_from_rfc3339) {
        Some(Ok(t)) => t
            .with_timezone(&Utc)
            .to_rfc3339_opts(SecondsFormat::Secs, true),
        _ => scalar(value),
    }
}

fn yes_no(value: &Value) -> String {
    match value.as_bool() {
        Some(true) => "yes".into(),
        Some(false) => "no".into(),
        None => scalar(value),
    }
}

pub const JOB_ORDER: &[&str] = &[
    "id",
    "namespace",
    "description",
    "enabled",
    "schedule",
    "timezone",
    "next_fire_times",
    "last_run",
    "target",
    "params",
    "routing",
    "shards",
    "shard_params",
    "timeout",
    "retry",
    "failover",
    "misfire",
    "concurrency",
    "start_deadline",
    "children",
    "labels",
    "alerts",
];

pub const RUN_ORDER: &[&str] = &[
    "id",
    "job_id",
    "namespace",
    "status",
    "trigger",
    "scheduled_at",
    "attempt",
    "shard",
    "executor",
    "created_at",
    "started_at",
    "finished_at",
    "exit_code",
    "error",
    "pending_reason",
    "params",
    "retry_of",
    "alerts",
    "output",
];

/// A run's alert deliveries, one line each (`webhook http://hooks/a
/// attempt 2 at 2026-...: failed: answered 500`), instead of a line per
/// field of each.
pub fn alert_lines(run: &mut Value) {
    let Some(alerts) = run.get_mut("alerts") else {
        return;
    };
    let Some(list) = alerts.as_array() else {
        return;
    };
    let lines: Vec<Value> = list
        .iter()
        .map(|d| {
            let outcome = match d.get("ok").and_then(Value::as_bool) {
                Some(true) => "delivered".to_string(),
                _ => format!("failed: {}", scalar(at(d, &["error"]))),
            };
            Value::String(format!(
                "{} {} attempt {} at {}: {outcome}",
                scalar(at(d, &["channel"])),
                scalar(at(d, &["target"])),
                scalar(at(d, &["attempt"])),
                time(at(d, &["at"])),
            ))
        })
        .collect();
    *alerts = Value::Array(lines);
}

pub fn jobs_table(jobs: &[Value]) -> String {
    let rows: Vec<Vec<String>> = jobs
        .iter()
        .map(|job| {
            vec![
                scalar(at(job, &["id"])),
                scalar(at(job, &["namespace"])),
                scalar(at(job, &["schedule"])),
                scalar(at(job, &["timezone"])),
                yes_no(at(job, &["enabled"])),
                time(at(job, &["next_fire_times"]).get(0).unwrap_or(&Value::Null)),
                scalar(at(job, &["last_run", "status"])),
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "NAMESPACE",
            "SCHEDULE",
            "TZ",
            "ENABLED",
            "NEXT FIRE",
            "LAST STATUS",
        ],
        &rows,
    )
}

pub fn runs_table(runs: &[Value]) -> String {
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|run| {
            let job = match at(run, &["namespace"]).as_str() {
                Some(ns) if ns != "default" && !ns.is_empty() => {
                    format!("{ns}/{}", scalar(at(run, &["job_id"])))
                }
                _ => scalar(at(run, &["job_id"])),
            };
            let shards = at(run, &["shard", "count"]).as_u64().unwrap_or(1);
            let attempt = if shards > 1 {
                format!(
                    "{} (shard {}/{shards})",
                    scalar(at(run, &["attempt"])),
                    scalar(at(run, &["shard", "index"]))
                )
            } else {
                scalar(at(run, &["attempt"]))
            };
            vec![
                scalar(at(run, &["id"])),
                job,
                scalar(at(run, &["status"])),
                scalar(at(run, &["trigger"])),
                time(at(run, &["scheduled_at"])),
                attempt,
                scalar(at(run, &["executor"])),
                scalar(at(run, &["exit_code"])),
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "JOB",
            "STATUS",
            "TRIGGER",
            "SCHEDULED",
            "ATTEMPT",
            "EXECUTOR",
            "EXIT",
        ],
        &rows,
    )
}

pub fn executors_table(executors: &[Value]) -> String {
    let rows: Vec<Vec<String>> = executors
        .iter()
        .map(|e| {
            let labels = match at(e, &["labels"]).as_object() {
                Some(map) => map
                    .iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(&v.to_string())))
                    .collect::<Vec<_>>()
                    .join(","),
                None => String::new(),
            };
            let handlers = match at(e, &["handlers"]).as_array() {
                Some(list) => list.iter().map(scalar).collect::<Vec<_>>().join(","),
                None => String::new(),
            };
            vec![
                scalar(at(e, &["id"])),
                scalar(at(e, &["group"])),
                scalar(at(e, &["endpoint"])),
                match at(e, &["alive"]).as_bool() {
                    Some(true) => "alive".into(),
                    Some(false) => "dead".into(),
                    None => "-".into(),
                },
                match at(e, &["max_concurrent"]).as_u64() {
                    Some(max) if max > 0 => format!("{}/{max}", scalar(at(e, &["running"]))),
                    _ => scalar(at(e, &["running"])),
                },
                scalar(at(e, &["weight"])),
                time(at(e, &["last_seen"])),
                cell(&handlers),
                cell(&labels),
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "GROUP",
            "ENDPOINT",
            "STATE",
            "RUNNING",
            "WEIGHT",
            "LAST SEEN",
            "HANDLERS",
            "LABELS",
        ],
        &rows,
    )
}

/// `GET /v1/cluster`: the node's raft state, then its members.
pub fn cluster_view(status: &Value) -> String {
    let leader = at(status, &["leader_id"]);
    let mut out = String::new();
    for (label, key) in [
        ("node", "node_id"),
        ("leader", "leader_id"),
        ("term", "term"),
        ("commit index", "commit_index"),
        ("applied index", "applied_index"),
    ] {
        let value = match at(status, &[key]) {
            Value::Null if key == "leader_id" => "none (no quorum?)".to_string(),
            v => scalar(v),
        };
        out.push_str(&format!("{label:<13}  {value}\n"));
    }
    let members = at(status, &["members"])
        .as_array()
        .cloned()
        .unwrap_or_default();
    let rows: Vec<Vec<String>> = members
        .iter()
        .map(|m| {
            let id = at(m, &["node_id"]);
            let role = if !leader.is_null() && id == leader {
                "leader".to_string()
            } else {
                scalar(at(m, &["role"]))
            };
            vec![
                scalar(id),
                role,
                scalar(at(m, &["api_url"])),
                scalar(at(m, &["raft_addr"])),
            ]
        })
        .collect();
    out.push('\n');
    out.push_str(&table(&["NODE", "ROLE", "API URL", "RAFT ADDR"], &rows));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_align_columns_and_trim_line_ends() {
        let out = table(
            &["A", "LONG HEADER", "C"],
            &[
                vec!["wide value".into(), "x".into(), "-".into()],
                vec!["é".into(), "y".into(), "".into()],
            ],
        );
        assert_eq!(
            out,
            "A           LONG HEADER  C\n\
             wide value  x            -\n\
             é           y\n"
        );
    }

    #[test]
    fn a_page_of_jobs_renders_as_a_table() {
        let page = json!({"items": [
            {"id": "nightly-report", "namespace": "default", "schedule": "0 0 23 * * *",
             "timezone": "UTC", "enabled": true,
             "next_fire_times": ["2026-11-21T23:00:00.000000000Z", "2026-11-22T23:00:00Z"],
             "last_run": {"id": "r1", "status": "succeeded", "trigger": "schedule",
                          "scheduled_at": "2026-11-20T23:00:00Z", "finished_at": null},
             "target": {"type": "shell", "group": "default", "command": "echo hi"}},
            {"id": "paused", "namespace": "ops", "schedule": "@manual", "timezone": "Europe/Paris",
             "enabled": false, "target": {"type": "http", "url": "http://x"}}
        ], "next_cursor": null});
        let items = page["items"].as_array().cloned().unwrap_or_default();
        assert_eq!(
            jobs_table(&items),
            "ID              NAMESPACE  SCHEDULE      TZ            ENABLED  NEXT FIRE             LAST STATUS\n\
             nightly-report  default    0 0 23 * * *  UTC           yes      2026-11-21T23:00:00Z  succeeded\n\
             paused          ops        @manual       Europe/Paris  no       -                     -\n"
        );
    }

    #[test]
    fn a_page_of_runs_renders_as_a_table() {
        let runs = vec![
            json!({"id": "a1b2", "job_id": "nightly-report", "namespace": "default",
                   "scheduled_at": "2026-11-21T23:00:00Z", "trigger": "schedule",
                   "shard": {"index": 0, "count": 1, "param": ""}, "attempt": 1,
                   "status": "succeeded", "executor": "http://10.0.0.9:7080",
                   "created_at": "2026-11-21T23:00:00Z", "exit_code": 0, "output": "", "error": null}),
            json!({"id": "c3", "job_id": "sharded", "namespace": "ops",
                   "scheduled_at": "2026-11-21T23:00:00+01:00", "trigger": "retry",
                   "shard": {"index": 1, "count": 4}, "attempt": 2, "status": "pending",
                   "executor": null, "exit_code": null}),
        ];
        assert_eq!(
            runs_table(&runs),
            "ID    JOB             STATUS     TRIGGER   SCHEDULED             ATTEMPT        EXECUTOR              EXIT\n\
             a1b2  nightly-report  succeeded  schedule  2026-11-21T23:00:00Z  1              http://10.0.0.9:7080  0\n\
             c3    ops/sharded     pending    retry     2026-11-21T22:00:00Z  2 (shard 1/4)  -                     -\n"
        );
    }

    #[test]
    fn empty_tables_keep_their_header() {
        assert_eq!(
            runs_table(&[]),
            "ID  JOB  STATUS  TRIGGER  SCHEDULED  ATTEMPT  EXECUTOR  EXIT\n"
        );
    }

    #[test]
    fn key_values_flatten_and_order_fields() {
        let job = json!({
            "target": {"type": "shell", "command": "echo hi"},
            "id": "j", "labels": {}, "zeta": 1,
            "next_fire_times": ["2026-11-21T23:00:00Z", "2026-11-22T23:00:00Z"],
            "children": [{"job": "k", "on": "success"}],
            "description": ""
        });
        assert_eq!(
            key_values(&job, JOB_ORDER),
            "id               j\n\
             description      -\n\
             next_fire_times  2026-11-21T23:00:00Z\n                 2026-11-22T23:00:00Z\n\
             target.type      shell\n\
             target.command   echo hi\n\
             children[0].job  k\n\
             children[0].on   success\n\
             labels           -\n\
             zeta             1\n"
        );
    }

    #[test]
    fn multi_line_output_follows_as_a_block() {
        let run = json!({"id": "r", "status": "failed", "output": "line 1\nline 2"});
        assert_eq!(
            key_values(&run, RUN_ORDER),
            "id      r\nstatus  failed\n\noutput:\nline 1\nline 2\n"
        );
    }

    #[test]
    fn alert_deliveries_show_one_line_each() {
        let mut run = json!({"id": "r", "alerts": [
            {"channel": "webhook", "target": "http://hooks/a", "attempt": 1,
             "at": "2026-03-01T02:00:01Z", "ok": false, "error": "answered 500: no"},
            {"channel": "email", "target": "ops@example.com", "attempt": 1,
             "at": "2026-03-01T02:00:02Z", "ok": true, "error": null}]});
        alert_lines(&mut run);
        assert_eq!(
            key_values(&run, RUN_ORDER),
            concat!(
                "id      r\n",
                "alerts  webhook http://hooks/a attempt 1 at 2026-03-01T02:00:01Z: failed: answered 500: no\n",
                "        email ops@example.com attempt 1 at 2026-03-01T02:00:02Z: delivered\n",
            )
        );
    }

    #[test]
    fn cluster_marks_the_leader() {
        let status = json!({"node_id": 1, "leader_id": 2, "term": 3, "commit_index": 10,
            "applied_index": 10, "members": [
                {"node_id": 1, "role": "voter", "api_url": "http://a:7070", "raft_addr": "a:7071"},
                {"node_id": 2, "role": "voter", "api_url": "http://b:7070", "raft_addr": "b:7071"}]});
        let out = cluster_view(&status);
        assert!(
            out.starts_with("node           1\nleader         2\n"),
            "{out}"
        );
        assert!(
            out.contains("\n2     leader  http://b:7070  b:7071\n"),
            "{out}"
        );
        assert!(
            out.contains("\n1     voter   http://a:7070  a:7071\n"),
            "{out}"
        );
    }

    #[test]
    fn executors_render() {
        let out = executors_table(&[json!({"id": "e1", "group": "default",
            "endpoint": "http://e1:7080", "handlers": ["sync", "mail"], "weight": 1,
            "labels": {"zone": "a"}, "running": 2, "alive": true, "last_seen": null})]);
        assert_eq!(
            out.lines().nth(1),
            Some(
                "e1  default  http://e1:7080  alive  2        1       -          sync,mail  zone=a"
            )
        );
    }
}
