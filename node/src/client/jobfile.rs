//! Job definition files: JSON or TOML, turned into the JSON body sent to the
//! server. Only parsing is checked here; the server validates the job.

use std::io::Read;

use serde_json::{Map, Number, Value};

use super::error::CliError;

/// Files larger than this are refused rather than read.
const MAX_FILE: u64 = 16 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Toml,
    /// JSON if it parses as JSON, else TOML.
    Guess,
}

impl Format {
    /// `.toml` is TOML, `.json` JSON, anything else is guessed; `-` (stdin) is JSON.
    pub fn for_path(path: &str) -> Format {
        let ext = std::path::Path::new(path)
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            _ if path == "-" => Format::Json,
            Some("toml") => Format::Toml,
            Some("json") => Format::Json,
            _ => Format::Guess,
        }
    }
}

/// Reads `-f FILE` (`-` is stdin) into a JSON object.
pub fn read(path: &str) -> Result<Value, CliError> {
    let name = if path == "-" { "stdin" } else { path };
    let text = read_text(path)
        .map_err(|e| CliError::usage(format!("cannot read the job file {name}: {e}")))?;
    parse(&text, Format::for_path(path))
        .map_err(|e| CliError::usage(format!("invalid job file {name}: {e}")))
}

fn read_text(path: &str) -> std::io::Result<String> {
    let mut bytes = Vec::new();
    if path == "-" {
        std::io::stdin()
            .lock()
            .take(MAX_FILE + 1)
            .read_to_end(&mut bytes)?;
    } else {
        std::fs::File::open(path)?
            .take(MAX_FILE + 1)
            .read_to_end(&mut bytes)?;
    }
    if bytes.len() as u64 > MAX_FILE {
        return Err(std::io::Error::other(format!(
            "larger than {} MiB",
            MAX_FILE / 1024 / 1024
        )));
    }
    String::from_utf8(bytes).map_err(|e| {
        std::io::Error::new(std::io::ErrorKind::InvalidData, format!("not UTF-8: {e}"))
    })
}

/// Parses a job definition into a JSON object.
pub fn parse(text: &str, format: Format) -> Result<Value, String> {
    let value = match format {
        Format::Json => parse_json(text)?,
        Format::Toml => parse_toml(text)?,
        Format::Guess => match parse_json(text) {
            Ok(value) => value,
            Err(json_err) => match parse_toml(text) {
                Ok(value) => value,
                // Report the error of the format the text looks like.
                Err(_) if looks_like_json(text) => {
                    return Err(format!("{json_err} (and it is not TOML either)"))
                }
                Err(toml_err) => return Err(format!("{toml_err} (and it is not JSON either)")),
            },
        },
    };
    if !value.is_object() {
        return Err(
            "a job file must hold one object (a JSON {...} or TOML key = value pairs)".into(),
        );
    }
    Ok(value)
}

fn looks_like_json(text: &str) -> bool {
    matches!(text.trim_start().chars().next(), Some('{' | '['))
}

fn parse_json(text: &str) -> Result<Value, String> {
    serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))
}

fn parse_toml(text: &str) -> Result<Value, String> {
    let table: toml::Table = toml::from_str(text)
        .map_err(|e| format!("not valid TOML: {}", e.to_string().trim_end()))?;
    toml_to_json(toml::Value::Table(table), "")
}

/// TOML to the equal JSON value; datetimes become RFC 3339 strings.
pub fn toml_to_json(value: toml::Value, path: &str) -> Result<Value, String> {
    Ok(match value {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => Value::Number(i.into()),
        toml::Value::Float(f) => Value::Number(
            Number::from_f64(f).ok_or_else(|| format!("{path}: {f} has no JSON equivalent"))?,
        ),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(items) => Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, item)| toml_to_json(item, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        toml::Value::Table(table) => {
            let mut map = Map::new();
            for (key, item) in table {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                map.insert(key, toml_to_json(item, &child)?);
            }
            Value::Object(map)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: &str = r#"{
        "id": "nightly-report",
        "schedule": "0 0 23 * * *",
        "timezone": "Europe/Paris",
        "enabled": true,
        "target": {"type": "shell", "group": "default", "command": "echo hi"},
        "shards": 2,
        "shard_params": ["a", "b"],
        "timeout": "30s",
        "retry": {"max_retries": 3, "backoff": "1s", "max_backoff": "1m"},
        "misfire": {"policy": "fire_once", "threshold": "5m"},
        "children": [{"job": "other-job", "on": "success"}],
        "labels": {"team": "data"},
        "alerts": {"on": ["failed", "timed_out"], "webhooks": [], "emails": []}
    }"#;

    const TOML: &str = r#"
        id = "nightly-report"
        schedule = "0 0 23 * * *"
        timezone = "Europe/Paris"
        enabled = true
        shards = 2
        shard_params = ["a", "b"]
        timeout = "30s"
        labels = { team = "data" }

        [target]
        type = "shell"
        group = "default"
        command = "echo hi"

        [retry]
        max_retries = 3
        backoff = "1s"
        max_backoff = "1m"

        [misfire]
        policy = "fire_once"
        threshold = "5m"

        [[children]]
        job = "other-job"
        on = "success"

        [alerts]
        on = ["failed", "timed_out"]
        webhooks = []
        emails = []
    "#;

    fn ok(text: &str, format: Format) -> Value {
        match parse(text, format) {
            Ok(v) => v,
            Err(e) => panic!("{format:?}: {e}"),
        }
    }

    #[test]
    fn toml_and_json_files_give_the_same_json() {
        let from_json = ok(JSON, Format::Json);
        assert_eq!(ok(TOML, Format::Toml), from_json);
        assert_eq!(ok(TOML, Format::Guess), from_json);
        assert_eq!(ok(JSON, Format::Guess), from_json);
        // And the server's own type reads it.
        let bytes = serde_json::to_vec(&from_json).expect("serializable");
        let job: protocol::Job = protocol::validate::from_json(&bytes).expect("a valid job");
        assert_eq!(job.id, "nightly-report");
        assert_eq!(job.shards, 2);
    }

    #[test]
    fn toml_scalars_convert() {
        let v = ok("a = 1.5\nb = 1979-05-27T07:32:00Z\nc = -3\n", Format::Toml);
        assert_eq!(
            v,
            serde_json::json!({"a": 1.5, "b": "1979-05-27T07:32:00Z", "c": -3})
        );
        let err = parse("x = nan\n", Format::Toml).expect_err("NaN has no JSON");
        assert!(err.contains('x'), "{err}");
    }

    #[test]
    fn format_follows_the_extension() {
        assert_eq!(Format::for_path("job.toml"), Format::Toml);
        assert_eq!(Format::for_path("dir.v2/JOB.TOML"), Format::Toml);
        assert_eq!(Format::for_path("job.json"), Format::Json);
        assert_eq!(Format::for_path("job"), Format::Guess);
        assert_eq!(Format::for_path("job.yaml"), Format::Guess);
        assert_eq!(Format::for_path("-"), Format::Json);
    }

    #[test]
    fn errors_say_where_the_problem_is() {
        let json_err = parse("{\"id\": \"x\",\n \"schedule\": }", Format::Guess).expect_err("bad");
        assert!(
            json_err.contains("JSON") && json_err.contains("line 2"),
            "{json_err}"
        );
        let toml_err = parse("id = \"x\"\nschedule = \n", Format::Guess).expect_err("bad");
        assert!(
            toml_err.contains("TOML") && toml_err.contains("line 2"),
            "{toml_err}"
        );
        assert!(
            parse("[1, 2]", Format::Json).is_err(),
            "an array is not a job"
        );
        assert!(parse("{}", Format::Toml).is_err(), "TOML file given JSON");
    }

    #[test]
    fn unreadable_files_are_usage_errors() {
        let err = read("/nonexistent/job.toml").expect_err("no such file");
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("/nonexistent/job.toml"), "{err}");

        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("job.toml");
        std::fs::write(&path, TOML).expect("write");
        let path = path.to_str().expect("utf-8 path");
        assert_eq!(read(path).expect("readable"), ok(JSON, Format::Json));

        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, "{").expect("write");
        let err = read(bad.to_str().expect("utf-8 path")).expect_err("invalid");
        assert_eq!(err.exit_code(), 2);
    }
}
