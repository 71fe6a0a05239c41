//! Which executors of a job's group may take its runs: those whose labels
//! meet the job's `selector` and, for a handler target, that announce the
//! handler. When none may, [`NoMatch`] says why (the run's error and the
//! console's warning).

use std::fmt;

use protocol::{
    dispatch::serves_handler,
    selector::{self, Selector, Shown},
    Job, Target,
};

use super::core::ExecutorEntry;

/// Whether `entry` may take runs of `job`: same group, labels meeting the
/// selector, and the handler announced for a handler target. HTTP targets
/// run on no executor.
pub fn eligible(entry: &ExecutorEntry, job: &Job) -> bool {
    job.group() == Some(entry.group.as_str())
        && selector::matches(&job.selector, &entry.labels)
        && handler_of(job).is_none_or(|h| serves_handler(&entry.handlers, h))
}

fn handler_of(job: &Job) -> Option<&str> {
    match &job.target {
        Target::Executor { handler, .. } => Some(handler),
        _ => None,
    }
}

/// Why no executor may take a job's runs.
#[derive(Clone, Debug, PartialEq)]
pub enum NoMatch {
    /// The group has no live executor at all.
    EmptyGroup { group: String },
    /// No live executor of the group announces the handler.
    Handler { group: String, handler: String },
    /// Executors of the group are live (and announce the handler, if the
    /// job names one), but none has labels meeting the selector.
    Selector {
        group: String,
        selector: Selector,
        handler: Option<String>,
    },
}

impl NoMatch {
    /// Why `executors` hold none eligible for `job`, or `None` when one is
    /// (or the job has an HTTP target, which needs no executor).
    pub fn diagnose<'a>(
        executors: impl IntoIterator<Item = &'a ExecutorEntry>,
        job: &Job,
    ) -> Option<NoMatch> {
        let group = job.group()?;
        let handler = handler_of(job);
        let (mut in_group, mut with_handler) = (false, false);
        for e in executors.into_iter().filter(|e| e.group == group) {
            if eligible(e, job) {
                return None;
            }
            in_group = true;
            with_handler |= handler.is_some_and(|h| serves_handler(&e.handlers, h));
        }
        let group = group.to_string();
        Some(match handler {
            _ if !in_group => NoMatch::EmptyGroup { group },
            Some(handler) if !with_handler => NoMatch::Handler {
                group,
                handler: handler.to_string(),
            },
            handler => NoMatch::Selector {
                group,
                selector: job.selector.clone(),
                handler: handler.map(str::to_string),
            },
        })
    }
}

impl fmt::Display for NoMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoMatch::EmptyGroup { group } => {
                write!(f, "no executor in group {group:?} can take the run")
            }
            NoMatch::Handler { group, handler } => write!(
                f,
                "no live executor in group {group:?} announces handler {handler:?}"
            ),
            NoMatch::Selector {
                group,
                selector,
                handler: None,
            } => write!(
                f,
                "no live executor in group {group:?} matches selector {}",
                Shown(selector)
            ),
            NoMatch::Selector {
                group,
                selector,
                handler: Some(handler),
            } => write!(
                f,
                "no live executor in group {group:?} that announces handler {handler:?} matches selector {}",
                Shown(selector)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn executor(
        id: &str,
        group: &str,
        labels: &[(&str, &str)],
        handlers: &[&str],
    ) -> ExecutorEntry {
        ExecutorEntry {
            id: id.into(),
            group: group.into(),
            endpoint: format!("http://{id}"),
            weight: 1,
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            handlers: handlers.iter().map(|h| h.to_string()).collect(),
            max_concurrent: 0,
        }
    }

    fn job(target: &str, selector: &str) -> Job {
        protocol::validate::from_json(
            format!(r#"{{"id":"j","schedule":"@daily","target":{target},"selector":{selector}}}"#)
                .as_bytes(),
        )
        .unwrap()
    }

    const SHELL: &str = r#"{"type":"shell","command":"true"}"#;
    const REPORT: &str = r#"{"type":"executor","handler":"report"}"#;

    #[test]
    fn eligibility_needs_group_labels_and_handler() {
        let eu = executor("a", "default", &[("zone", "eu-1")], &["report"]);
        let us = executor("b", "default", &[("zone", "us-1")], &[]);
        let any = executor("c", "default", &[], &["*"]);
        let other = executor("d", "batch", &[("zone", "eu-1")], &["report"]);
        let zoned = job(SHELL, r#"{"zone":"eu-1"}"#);
        assert!(eligible(&eu, &zoned));
        assert!(!eligible(&us, &zoned));
        assert!(!eligible(&other, &zoned), "another group");
        let handler = job(REPORT, "{}");
        assert!(eligible(&eu, &handler));
        assert!(!eligible(&us, &handler), "does not announce it");
        assert!(eligible(&any, &handler), "announces any handler");
        let http = job(r#"{"type":"http","url":"http://x/"}"#, "{}");
        assert!(!eligible(&eu, &http));
    }

    #[test]
    fn diagnosis_names_what_did_not_match() {
        let executors = [
            executor("a", "default", &[("zone", "eu-1")], &[]),
            executor("b", "default", &[("zone", "us-1")], &["report"]),
        ];
        assert_eq!(
            NoMatch::diagnose(&executors, &job(SHELL, r#"{"zone":"eu-1"}"#)),
            None
        );
        let none = NoMatch::diagnose(
            &executors,
            &job(SHELL, r#"{"zone":"ap-1","tier":{"in":["a","b"]}}"#),
        );
        assert_eq!(
            none.unwrap().to_string(),
            r#"no live executor in group "default" matches selector {tier in [a,b], zone=ap-1}"#
        );
        let missing = NoMatch::diagnose(
            &executors,
            &job(r#"{"type":"executor","handler":"reconcile"}"#, "{}"),
        );
        assert_eq!(
            missing.unwrap().to_string(),
            r#"no live executor in group "default" announces handler "reconcile""#
        );
        let both = NoMatch::diagnose(&executors, &job(REPORT, r#"{"zone":"eu-1"}"#));
        assert_eq!(
            both.unwrap().to_string(),
            r#"no live executor in group "default" that announces handler "report" matches selector {zone=eu-1}"#
        );
        let empty = NoMatch::diagnose(
            &executors,
            &job(r#"{"type":"shell","group":"batch","command":"true"}"#, "{}"),
        );
        assert_eq!(
            empty,
            Some(NoMatch::EmptyGroup {
                group: "batch".into()
            })
        );
        assert_eq!(
            empty.unwrap().to_string(),
            r#"no executor in group "batch" can take the run"#
        );
    }
}
