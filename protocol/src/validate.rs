//! Field-level validation of jobs and the other API bodies. Every error
//! names the JSON path of the field to fix.

use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::{
    job::{Job, Target},
    schedule::{parse_timezone, Schedule},
};

/// A problem with one field of a request body.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

pub const MAX_NAME_LEN: usize = 128;
pub const MAX_COMMAND_LEN: usize = 64 * 1024;
pub const MAX_PARAMS_LEN: usize = 64 * 1024;
pub const MAX_SHARDS: u32 = 1000;
pub const MAX_RETRIES: u32 = 100;
pub const MAX_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);
pub const MAX_BACKOFF: Duration = Duration::from_secs(24 * 3600);
pub const MAX_MISFIRE_THRESHOLD: Duration = Duration::from_secs(30 * 24 * 3600);
/// Lists and maps of a job are bounded by count as well as by the body's
/// size: each child is fired, each webhook called and each header sent on
/// every run, so their number multiplies the work a run does.
pub const MAX_LABELS: usize = 64;
pub const MAX_CHILDREN: usize = 64;
pub const MAX_WEBHOOKS: usize = 16;
pub const MAX_EMAILS: usize = 16;
pub const MAX_ALERT_STATUSES: usize = 16;
pub const MAX_HEADERS: usize = 64;
pub const MAX_HEADER_VALUE_LEN: usize = 8 * 1024;
pub const MAX_URL_LEN: usize = 8 * 1024;
/// Longest e-mail address (RFC 5321's path limit).
pub const MAX_EMAIL_LEN: usize = 254;
/// A selector is checked against every live executor of the group on
/// every run placed: its keys and the values of each `in` / `not_in` are
/// few.
pub const MAX_SELECTOR_KEYS: usize = 16;
pub const MAX_SELECTOR_VALUES: usize = 64;
/// Longest label value, of a job's labels and of a selector's values.
pub const MAX_LABEL_VALUE_LEN: usize = 1024;

/// Parses a JSON body into `T`, naming the field that failed.
pub fn from_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, FieldError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let field = if path == "." { String::new() } else { path };
        let message = inner.to_string();
        // A missing or unknown field is reported against the field itself
        // (inside tagged enums the path stops at the enum).
        let named = named_in(&message, "missing field `")
            .or_else(|| named_in(&message, "unknown field `"))
            .filter(|name| !field.ends_with(name.as_str()));
        match named {
            Some(name) if field.is_empty() => FieldError::new(name, message),
            Some(name) => FieldError::new(format!("{field}.{name}"), message),
            None => FieldError::new(field, message),
        }
    })?;
    de.end().map_err(|e| {
        FieldError::new("", format!("trailing characters after the JSON value: {e}"))
    })?;
    Ok(value)
}

fn named_in(message: &str, prefix: &str) -> Option<String> {
    let rest = message.strip_prefix(prefix)?;
    Some(rest.split('`').next()?.to_string())
}

/// Checks a job beyond what its types say. The first problem found wins.
pub fn validate_job(job: &Job) -> Result<(), FieldError> {
    check_name("id", &job.id)?;
    check_name("namespace", &job.namespace)?;
    if job.description.len() > 4096 {
        return Err(FieldError::new("description", "at most 4096 bytes"));
    }
    let schedule = Schedule::parse(&job.schedule).map_err(|m| FieldError::new("schedule", m))?;
    let tz = parse_timezone(&job.timezone).map_err(|m| FieldError::new("timezone", m))?;
    // A schedule with no fire time ahead is a mistake (a year that has
    // passed, a date the zone's clock skips); the search is bounded.
    schedule
        .check_fires_ahead(chrono::Utc::now(), tz)
        .map_err(|m| FieldError::new("schedule", m))?;
    check_target(&job.target)?;
    if job.params.len() > MAX_PARAMS_LEN {
        return Err(FieldError::new("params", "at most 64 KiB"));
    }
    if job.shards == 0 || job.shards > MAX_SHARDS {
        return Err(FieldError::new(
            "shards",
            format!("must be between 1 and {MAX_SHARDS}"),
        ));
    }
    if job.shard_params.len() > job.shards as usize {
        return Err(FieldError::new(
            "shard_params",
            "has more entries than there are shards",
        ));
    }
    if let Some(i) = job
        .shard_params
        .iter()
        .position(|p| p.len() > MAX_PARAMS_LEN)
    {
        return Err(FieldError::new(
            format!("shard_params[{i}]"),
            "at most 64 KiB",
        ));
    }
    check_duration(
        "timeout",
        job.timeout.0,
        Duration::from_millis(1),
        MAX_TIMEOUT,
    )?;
    if job.retry.max_retries > MAX_RETRIES {
        return Err(FieldError::new(
            "retry.max_retries",
            format!("at most {MAX_RETRIES}"),
        ));
    }
    check_duration(
        "retry.backoff",
        job.retry.backoff.0,
        Duration::ZERO,
        MAX_BACKOFF,
    )?;
    check_duration(
        "retry.max_backoff",
        job.retry.max_backoff.0,
        Duration::ZERO,
        MAX_BACKOFF,
    )?;
    if job.retry.max_backoff < job.retry.backoff {
        return Err(FieldError::new(
            "retry.max_backoff",
            "must not be shorter than retry.backoff",
        ));
    }
    check_duration(
        "misfire.threshold",
        job.misfire.threshold.0,
        Duration::ZERO,
        MAX_MISFIRE_THRESHOLD,
    )?;
    if let Some(deadline) = &job.start_deadline {
        check_duration(
            "start_deadline",
            deadline.0,
            Duration::ZERO,
            MAX_MISFIRE_THRESHOLD,
        )?;
    }
    check_count("children", job.children.len(), MAX_CHILDREN)?;
    for (i, child) in job.children.iter().enumerate() {
        check_name(&format!("children[{i}].job"), &child.job)?;
        if job.children[..i].contains(child) {
            return Err(FieldError::new(
                format!("children[{i}]"),
                "repeats an earlier child with the same job and condition",
            ));
        }
    }
    check_count("labels", job.labels.len(), MAX_LABELS)?;
    for (k, v) in &job.labels {
        if k.is_empty() || k.len() > MAX_NAME_LEN || v.len() > 1024 {
            // A key too long to quote is reported against the map.
            let field = if k.len() > MAX_NAME_LEN {
                "labels".to_string()
            } else {
                format!("labels.{k}")
            };
            return Err(FieldError::new(
                field,
                "label keys are 1-128 bytes, values at most 1024",
            ));
        }
    }
    check_selector(job)?;
    check_alerts(&job.alerts)
}

fn check_selector(job: &Job) -> Result<(), FieldError> {
    use crate::selector::{Op, Requirement};
    if job.selector.is_empty() {
        return Ok(());
    }
    if matches!(job.target, Target::Http { .. }) {
        return Err(FieldError::new(
            "selector",
            "only shell and handler targets run on executors; an HTTP target is called by the scheduler itself",
        ));
    }
    check_count("selector", job.selector.len(), MAX_SELECTOR_KEYS)?;
    for (key, req) in &job.selector {
        if key.is_empty() || key.len() > MAX_NAME_LEN {
            // A key too long to quote is reported against the map.
            return Err(FieldError::new(
                "selector",
                format!("label keys are 1-{MAX_NAME_LEN} bytes"),
            ));
        }
        let field = format!("selector.{key}");
        let too_long = || {
            FieldError::new(
                field.clone(),
                format!("a label value is at most {MAX_LABEL_VALUE_LEN} bytes"),
            )
        };
        let (op, values) = match req {
            Requirement::Equals(value) if value.len() > MAX_LABEL_VALUE_LEN => {
                return Err(too_long())
            }
            Requirement::Equals(_) | Requirement::Op(Op::Exists(_)) => continue,
            Requirement::Op(Op::In(values)) => ("in", values),
            Requirement::Op(Op::NotIn(values)) => ("not_in", values),
        };
        if values.is_empty() {
            return Err(FieldError::new(
                format!("{field}.{op}"),
                "must list at least one value",
            ));
        }
        check_count(&format!("{field}.{op}"), values.len(), MAX_SELECTOR_VALUES)?;
        if let Some(i) = values.iter().position(|v| v.len() > MAX_LABEL_VALUE_LEN) {
            return Err(FieldError::new(
                format!("{field}.{op}[{i}]"),
                format!("a label value is at most {MAX_LABEL_VALUE_LEN} bytes"),
            ));
        }
    }
    Ok(())
}

fn check_alerts(alerts: &crate::job::Alerts) -> Result<(), FieldError> {
    check_count("alerts.on", alerts.on.len(), MAX_ALERT_STATUSES)?;
    check_count("alerts.webhooks", alerts.webhooks.len(), MAX_WEBHOOKS)?;
    for (i, hook) in alerts.webhooks.iter().enumerate() {
        let field = match hook {
            crate::alert::Webhook::Url(_) => format!("alerts.webhooks[{i}]"),
            crate::alert::Webhook::Formatted(_) => format!("alerts.webhooks[{i}].url"),
        };
        check_http_url(&field, hook.url())?;
    }
    check_count("alerts.emails", alerts.emails.len(), MAX_EMAILS)?;
    for (i, email) in alerts.emails.iter().enumerate() {
        let plausible = email.len() <= MAX_EMAIL_LEN
            && email.bytes().all(|b| b.is_ascii_graphic() || b >= 0x80)
            && email
                .split_once('@')
                .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty());
        if !plausible {
            return Err(FieldError::new(
                format!("alerts.emails[{i}]"),
                format!("must be an address like ops@example.com, at most {MAX_EMAIL_LEN} bytes"),
            ));
        }
    }
    Ok(())
}

fn check_count(field: &str, count: usize, max: usize) -> Result<(), FieldError> {
    if count > max {
        return Err(FieldError::new(
            field,
            format!("at most {max} entries, got {count}"),
        ));
    }
    Ok(())
}

fn check_target(target: &Target) -> Result<(), FieldError> {
    match target {
        Target::Shell { group, command } => {
            check_name("target.group", group)?;
            if command.trim().is_empty() {
                return Err(FieldError::new("target.command", "must not be empty"));
            }
            if command.len() > MAX_COMMAND_LEN {
                return Err(FieldError::new("target.command", "at most 64 KiB"));
            }
        }
        Target::Executor { group, handler } => {
            check_name("target.group", group)?;
            check_name("target.handler", handler)?;
        }
        Target::Http {
            url,
            method,
            headers,
            body,
        } => {
            check_http_url("target.url", url)?;
            const METHODS: [&str; 6] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"];
            if !METHODS.contains(&method.as_str()) {
                return Err(FieldError::new(
                    "target.method",
                    format!("must be one of {}", METHODS.join(", ")),
                ));
            }
            check_count("target.headers", headers.len(), MAX_HEADERS)?;
            for (name, value) in headers {
                if name.len() > MAX_NAME_LEN {
                    return Err(FieldError::new(
                        "target.headers",
                        format!("a header name is at most {MAX_NAME_LEN} bytes"),
                    ));
                }
                let valid = !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
                if !valid {
                    return Err(FieldError::new(
                        format!("target.headers.{name}"),
                        "not a valid header name",
                    ));
                }
                // What an HTTP client sends as a field value: visible
                // ASCII, spaces and tabs; never a line break.
                let sendable = value.len() <= MAX_HEADER_VALUE_LEN
                    && value
                        .bytes()
                        .all(|b| b == b'\t' || (b' '..=b'~').contains(&b));
                if !sendable {
                    return Err(FieldError::new(
                        format!("target.headers.{name}"),
                        format!("a header value is at most {MAX_HEADER_VALUE_LEN} bytes of visible ASCII, spaces and tabs"),
                    ));
                }
            }
            if body.len() > MAX_PARAMS_LEN {
                return Err(FieldError::new("target.body", "at most 64 KiB"));
            }
        }
    }
    Ok(())
}

fn check_http_url(field: &str, raw: &str) -> Result<(), FieldError> {
    if raw.len() > MAX_URL_LEN {
        return Err(FieldError::new(
            field,
            format!("a URL is at most {MAX_URL_LEN} bytes"),
        ));
    }
    match url::Url::parse(raw) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
        Ok(_) => Err(FieldError::new(field, "must be an http or https URL")),
        Err(e) => Err(FieldError::new(field, format!("invalid URL: {e}"))),
    }
}

/// Ids, namespaces, groups and handler names: 1-128 of `[A-Za-z0-9._-]`,
/// not starting with a dot, so they are safe in URLs and file names.
pub fn check_name(field: &str, value: &str) -> Result<(), FieldError> {
    let ok = !value.is_empty()
        && value.len() <= MAX_NAME_LEN
        && !value.starts_with('.')
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(FieldError::new(
            field,
            "must be 1-128 characters of A-Z a-z 0-9 . _ - and not start with a dot",
        ))
    }
}

fn check_duration(
    field: &str,
    value: Duration,
    min: Duration,
    max: Duration,
) -> Result<(), FieldError> {
    if value < min || value > max {
        return Err(FieldError::new(
            field,
            format!(
                "must be between {} and {}",
                humantime::format_duration(min),
                humantime::format_duration(max)
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(body: &str) -> String {
        match from_json::<Job>(body.as_bytes()).and_then(|j| validate_job(&j)) {
            Ok(()) => panic!("{body} should be rejected"),
            Err(e) => e.field,
        }
    }

    const SHELL: &str = r#""target":{"type":"shell","command":"true"}"#;

    #[test]
    fn each_error_names_its_field() {
        assert_eq!(
            field_of(&format!(
                r#"{{"id":"a","schedule":"@daily",{SHELL},"colour":1}}"#
            )),
            "colour"
        );
        assert_eq!(
            field_of(&format!(r#"{{"id":"a","schedule":"61 * * * *",{SHELL}}}"#)),
            "schedule"
        );
        assert_eq!(
            field_of(&format!(
                r#"{{"id":"a","schedule":"@daily","timezone":"Mars/Base",{SHELL}}}"#
            )),
            "timezone"
        );
        assert_eq!(
            field_of(&format!(
                r#"{{"id":"a","schedule":"@daily","timeout":"-1s",{SHELL}}}"#
            )),
            "timeout"
        );
        assert_eq!(
            field_of(&format!(
                r#"{{"id":"a","schedule":"@daily","timeout":"400d",{SHELL}}}"#
            )),
            "timeout"
        );
        assert_eq!(
            field_of(&format!(
                r#"{{"id":"a","schedule":"@daily","retry":{{"backoff":"x"}},{SHELL}}}"#
            )),
            "retry.backoff"
        );
        for deadline in [r#""-1s""#, r#""31d""#, r#""soon""#, "5"] {
            assert_eq!(
                field_of(&format!(
                    r#"{{"id":"a","schedule":"@daily","start_deadline":{deadline},{SHELL}}}"#
                )),
                "start_deadline",
                "{deadline}"
            );
        }
        assert_eq!(
            field_of(&format!(r#"{{"id":"a b","schedule":"@daily",{SHELL}}}"#)),
            "id"
        );
        assert_eq!(
            field_of(r#"{"id":"a","schedule":"@daily","target":{"type":"shell","command":" "}}"#),
            "target.command"
        );
        assert_eq!(
            field_of(r#"{"id":"a","schedule":"@daily","target":{"type":"http","url":"ftp://x"}}"#),
            "target.url"
        );
        assert_eq!(
            field_of(
                r#"{"id":"a","schedule":"@daily","target":{"type":"shell","command":"x","oops":1}}"#
            ),
            "target.oops"
        );
        assert_eq!(
            field_of(r#"{"id":"a","target":{"type":"shell","command":"x"}}"#),
            "schedule"
        );
        assert_eq!(
            field_of(r#"{"id":"a","schedule":"@daily","target":{"type":"shell"}}"#),
            "target.command"
        );
        assert_eq!(
            field_of(&format!(
                r#"{{"id":"a","schedule":"@daily","shards":0,{SHELL}}}"#
            )),
            "shards"
        );
    }

    #[test]
    fn a_schedule_must_fire_and_not_too_far_ahead() {
        for schedule in [
            "0 0 31 2 *",
            "0 0 0 1 1 * 2020",
            "@at 2999-01-01T00:00:00Z",
            "0 0 1-4294967295 * *",
        ] {
            assert_eq!(
                field_of(&format!(r#"{{"id":"a","schedule":"{schedule}",{SHELL}}}"#)),
                "schedule",
                "{schedule}"
            );
        }
        for schedule in ["@at 2020-01-01T00:00:00Z", "0 0 29 2 *", "@manual"] {
            let job: Job =
                from_json(format!(r#"{{"id":"a","schedule":"{schedule}",{SHELL}}}"#).as_bytes())
                    .unwrap();
            assert_eq!(validate_job(&job), Ok(()), "{schedule}");
        }
    }

    #[test]
    fn lists_and_maps_are_bounded_by_count() {
        let labels: Vec<String> = (0..65).map(|i| format!(r#""k{i}":"v""#)).collect();
        assert_eq!(
            field_of(&format!(
                r#"{{"id":"a","schedule":"@daily",{SHELL},"labels":{{{}}}}}"#,
                labels.join(",")
            )),
            "labels"
        );
        let children = [r#"{"job":"b"}"#; 2].join(",");
        assert_eq!(
            field_of(&format!(
                r#"{{"id":"a","schedule":"@daily",{SHELL},"children":[{children}]}}"#
            )),
            "children[1]"
        );
        let hooks = vec![r#""http://x/""#; 17].join(",");
        assert_eq!(
            field_of(&format!(
                r#"{{"id":"a","schedule":"@daily",{SHELL},"alerts":{{"webhooks":[{hooks}]}}}}"#
            )),
            "alerts.webhooks"
        );
        assert_eq!(
            field_of(&format!(
                r#"{{"id":"a","schedule":"@daily",{SHELL},"alerts":{{"emails":["no at sign"]}}}}"#
            )),
            "alerts.emails[0]"
        );
        let long_key = "k".repeat(10_000);
        let e = from_json::<Job>(
            format!(r#"{{"id":"a","schedule":"@daily",{SHELL},"labels":{{"{long_key}":"v"}}}}"#)
                .as_bytes(),
        )
        .and_then(|j| validate_job(&j))
        .unwrap_err();
        assert_eq!(e.field, "labels", "a long key is not quoted back");
    }

    #[test]
    fn a_selector_is_bounded_and_names_the_field() {
        let with = |selector: &str| {
            format!(r#"{{"id":"a","schedule":"@daily",{SHELL},"selector":{selector}}}"#)
        };
        let long = "v".repeat(1025);
        assert_eq!(
            field_of(&with(&format!(r#"{{"zone":"{long}"}}"#))),
            "selector.zone"
        );
        assert_eq!(
            field_of(&with(&format!(r#"{{"tier":{{"in":["a","b","{long}"]}}}}"#))),
            "selector.tier.in[2]"
        );
        assert_eq!(field_of(&with(r#"{"tier":{"in":[]}}"#)), "selector.tier.in");
        let many: Vec<String> = (0..65).map(|i| format!(r#""v{i}""#)).collect();
        assert_eq!(
            field_of(&with(&format!(
                r#"{{"tier":{{"not_in":[{}]}}}}"#,
                many.join(",")
            ))),
            "selector.tier.not_in"
        );
        let keys: Vec<String> = (0..17).map(|i| format!(r#""k{i}":"v""#)).collect();
        assert_eq!(
            field_of(&with(&format!("{{{}}}", keys.join(",")))),
            "selector"
        );
        assert_eq!(field_of(&with(r#"{"":"v"}"#)), "selector");
        assert_eq!(
            field_of(&with(&format!(r#"{{"{}":"v"}}"#, "k".repeat(129)))),
            "selector",
            "a long key is not quoted back"
        );
        assert_eq!(
            field_of(&with(r#"{"tier":{"is":"a"}}"#)),
            "selector.tier.is"
        );
        assert_eq!(
            field_of(
                r#"{"id":"a","schedule":"@daily","target":{"type":"http","url":"http://x/"},"selector":{"zone":"eu-1"}}"#
            ),
            "selector"
        );
        let job: Job = from_json(
            with(r#"{"zone":"eu-1","tier":{"in":["a","b"]},"gpu":{"exists":true}}"#).as_bytes(),
        )
        .unwrap();
        assert_eq!(validate_job(&job), Ok(()));
    }

    #[test]
    fn a_webhook_object_names_its_bad_field() {
        let with = |hooks: &str| {
            format!(r#"{{"id":"a","schedule":"@daily",{SHELL},"alerts":{{"webhooks":[{hooks}]}}}}"#)
        };
        assert_eq!(
            field_of(&with(r#""http://x/",{"url":"http://y/","format":"irc"}"#)),
            "alerts.webhooks[1].format"
        );
        assert_eq!(
            field_of(&with(r#""http://x/",{"url":"ftp://y/","format":"slack"}"#)),
            "alerts.webhooks[1].url"
        );
        assert_eq!(
            field_of(&with(r#"{"url":"http://y/","colour":"red"}"#)),
            "alerts.webhooks[0].colour"
        );
        assert_eq!(field_of(&with("42")), "alerts.webhooks[0]");
        let job: Job =
            from_json(with(r#""http://x/",{"url":"http://y/","format":"teams"}"#).as_bytes())
                .unwrap();
        assert_eq!(validate_job(&job), Ok(()));
    }

    #[test]
    fn http_headers_are_sendable() {
        let http = |headers: &str| {
            format!(
                r#"{{"id":"a","schedule":"@daily","target":{{"type":"http","url":"http://x/","headers":{{{headers}}}}}}}"#
            )
        };
        assert_eq!(
            field_of(&http(r#""x-a":"line\r\nInjected: 1""#)),
            "target.headers.x-a"
        );
        let many: Vec<String> = (0..65).map(|i| format!(r#""h{i}":"v""#)).collect();
        assert_eq!(field_of(&http(&many.join(","))), "target.headers");
        let job: Job = from_json(http(r#""authorization":"Bearer a\tb""#).as_bytes()).unwrap();
        assert_eq!(validate_job(&job), Ok(()));
    }

    #[test]
    fn a_good_job_passes() {
        let job: Job = from_json(
            format!(r#"{{"id":"nightly-report","schedule":"0 0 23 * * *",{SHELL}}}"#).as_bytes(),
        )
        .unwrap();
        validate_job(&job).unwrap();
    }
}
