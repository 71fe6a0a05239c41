//! The edge between gossip strings and typed members: how a [`Member`] is
//! written as chitchat key-values and read back.
//!
//! Every node gossips `role` (`scheduler` | `executor`) and the keys of its
//! role:
//! - scheduler: `node_id`, `api_url`, `raft_addr`, `leader` (`true`/`false`),
//!   `term` (its Raft term; absent from older schedulers, read as 0);
//! - executor: `group`, `endpoint`, `handlers` (comma-separated; `*` for
//!   any name), `weight`, `labels` (a JSON object of strings), `running`,
//!   `max_concurrent`.
//!
//! With the cluster secret, every node also gossips `sig`, the signature of
//! all the others (see [`crate::signing`]); it is added and checked apart
//! from this encoding, which ignores it.
//!
//! Decoding is total: whatever arrives from the network, a missing or
//! malformed key is a [`KeyError`], never a panic. Unknown keys are ignored,
//! so a newer node may gossip more than an older one reads.

use std::collections::BTreeMap;
use std::str::FromStr;

use thiserror::Error;

use crate::member::{ExecutorInfo, Member, SchedulerInfo};

pub const ROLE: &str = "role";
pub const ROLE_SCHEDULER: &str = "scheduler";
pub const ROLE_EXECUTOR: &str = "executor";

pub const NODE_ID: &str = "node_id";
pub const API_URL: &str = "api_url";
pub const RAFT_ADDR: &str = "raft_addr";
pub const LEADER: &str = "leader";
pub const TERM: &str = "term";

pub const GROUP: &str = "group";
pub const ENDPOINT: &str = "endpoint";
pub const HANDLERS: &str = "handlers";
pub const WEIGHT: &str = "weight";
pub const LABELS: &str = "labels";
pub const RUNNING: &str = "running";
/// Most runs an executor holds at once; absent or 0 means no limit.
pub const MAX_CONCURRENT: &str = "max_concurrent";

/// Longest value quoted back in an error: values come from the network.
const QUOTED_MAX: usize = 64;

/// Why gossip keys do not make a member, or a member cannot be gossiped.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum KeyError {
    #[error("gossip key `{0}` is missing")]
    Missing(&'static str),
    #[error("gossip key `{key}` has a malformed value {value:?}: {reason}")]
    Malformed {
        key: &'static str,
        /// The offending value, cut to 64 characters.
        value: String,
        reason: String,
    },
    #[error("unknown role {0:?}")]
    UnknownRole(String),
}

fn malformed(key: &'static str, value: &str, reason: impl ToString) -> KeyError {
    KeyError::Malformed {
        key,
        value: value.chars().take(QUOTED_MAX).collect(),
        reason: reason.to_string(),
    }
}

/// The key-values that gossip `member`. Every key of its role is present,
/// so a node that changes role leaves no stale key of its old one behind
/// (the caller deletes the keys not listed).
pub fn encode(member: &Member) -> Vec<(String, String)> {
    let mut kv: Vec<(&str, String)> = Vec::new();
    match member {
        Member::Scheduler(s) => {
            kv.push((ROLE, ROLE_SCHEDULER.into()));
            kv.push((NODE_ID, s.node_id.to_string()));
            kv.push((API_URL, s.api_url.clone()));
            kv.push((RAFT_ADDR, s.raft_addr.clone()));
            kv.push((LEADER, s.leader.to_string()));
            kv.push((TERM, s.term.to_string()));
        }
        Member::Executor(e) => {
            kv.push((ROLE, ROLE_EXECUTOR.into()));
            kv.push((GROUP, e.group.clone()));
            kv.push((ENDPOINT, e.endpoint.clone()));
            kv.push((HANDLERS, e.handlers.join(",")));
            kv.push((WEIGHT, e.weight.to_string()));
            // A map of strings always serializes.
            let labels = serde_json::to_string(&e.labels).unwrap_or_else(|_| "{}".into());
            kv.push((LABELS, labels));
            kv.push((RUNNING, e.running.to_string()));
            kv.push((MAX_CONCURRENT, e.max_concurrent.to_string()));
        }
    }
    kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// Checks that `member` survives [`encode`] then [`decode`] unchanged: ids
/// and URLs are not empty, handler names are not empty and hold no comma,
/// and an executor's id is its endpoint.
pub fn validate(member: &Member) -> Result<(), KeyError> {
    match member {
        Member::Scheduler(s) => {
            non_empty(API_URL, &s.api_url)?;
            non_empty(RAFT_ADDR, &s.raft_addr)?;
        }
        Member::Executor(e) => {
            non_empty(GROUP, &e.group)?;
            non_empty(ENDPOINT, &e.endpoint)?;
            if e.id != e.endpoint {
                return Err(malformed(
                    ENDPOINT,
                    &e.id,
                    "an executor's id is its endpoint",
                ));
            }
            for handler in &e.handlers {
                check_handler(handler)?;
            }
        }
    }
    Ok(())
}

/// The member gossiped by `keys`, or why they do not make one.
pub fn decode(keys: &BTreeMap<String, String>) -> Result<Member, KeyError> {
    let get = |key: &'static str| {
        keys.get(key)
            .map(String::as_str)
            .ok_or(KeyError::Missing(key))
    };
    match get(ROLE)? {
        ROLE_SCHEDULER => Ok(Member::Scheduler(SchedulerInfo {
            node_id: number(NODE_ID, get(NODE_ID)?)?,
            api_url: non_empty(API_URL, get(API_URL)?)?,
            raft_addr: non_empty(RAFT_ADDR, get(RAFT_ADDR)?)?,
            leader: boolean(LEADER, get(LEADER)?)?,
            // A scheduler older than the key does not fence: term 0.
            term: keys.get(TERM).map_or(Ok(0), |value| number(TERM, value))?,
        })),
        ROLE_EXECUTOR => {
            let endpoint = non_empty(ENDPOINT, get(ENDPOINT)?)?;
            Ok(Member::Executor(ExecutorInfo {
                id: endpoint.clone(),
                group: non_empty(GROUP, get(GROUP)?)?,
                endpoint,
                handlers: handlers(get(HANDLERS)?)?,
                weight: number(WEIGHT, get(WEIGHT)?)?,
                labels: labels(get(LABELS)?)?,
                running: number(RUNNING, get(RUNNING)?)?,
                // An executor older than the key takes any number of runs.
                max_concurrent: keys
                    .get(MAX_CONCURRENT)
                    .map_or(Ok(0), |value| number(MAX_CONCURRENT, value))?,
            }))
        }
        other => Err(KeyError::UnknownRole(
            other.chars().take(QUOTED_MAX).collect(),
        )),
    }
}

fn non_empty(key: &'static str, value: &str) -> Result<String, KeyError> {
    if value.trim().is_empty() {
        return Err(malformed(key, value, "must not be empty"));
    }
    Ok(value.to_string())
}

fn number<T>(key: &'static str, value: &str) -> Result<T, KeyError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    value.parse().map_err(|e| malformed(key, value, e))
}

fn boolean(key: &'static str, value: &str) -> Result<bool, KeyError> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(malformed(key, value, "expected `true` or `false`")),
    }
}

fn check_handler(name: &str) -> Result<(), KeyError> {
    if name.is_empty() || name.contains(',') || name.trim() != name {
        return Err(malformed(
            HANDLERS,
            name,
            "a handler name is not empty, holds no comma and no surrounding spaces",
        ));
    }
    Ok(())
}

fn handlers(value: &str) -> Result<Vec<String>, KeyError> {
    if value.is_empty() {
        return Ok(Vec::new());
    }
    value
        .split(',')
        .map(|name| {
            check_handler(name).map_err(|_| malformed(HANDLERS, value, "empty or padded name"))?;
            Ok(name.to_string())
        })
        .collect()
}

fn labels(value: &str) -> Result<BTreeMap<String, String>, KeyError> {
    serde_json::from_str(value).map_err(|e| malformed(LABELS, value, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scheduler() -> Member {
        Member::Scheduler(SchedulerInfo {
            node_id: 3,
            api_url: "http://10.0.0.3:7070".into(),
            raft_addr: "10.0.0.3:7071".into(),
            leader: true,
            term: 42,
        })
    }

    fn executor() -> Member {
        let mut e = ExecutorInfo::new("billing", "http://10.0.0.9:7080");
        e.handlers = vec!["report".into(), "cleanup.v2".into()];
        e.weight = 7;
        e.labels.insert("zone".into(), "eu-west-1a".into());
        e.labels.insert("note".into(), "a \"quoted\", comma".into());
        e.running = 4;
        e.max_concurrent = 2;
        Member::Executor(e)
    }

    fn map(member: &Member) -> BTreeMap<String, String> {
        encode(member).into_iter().collect()
    }

    #[test]
    fn round_trips() {
        let mut bare = ExecutorInfo::new("default", "http://127.0.0.1:7080");
        bare.weight = 0;
        let mut newest = scheduler();
        if let Member::Scheduler(s) = &mut newest {
            s.term = u64::MAX;
        }
        for member in [scheduler(), newest, executor(), Member::Executor(bare)] {
            validate(&member).unwrap();
            assert_eq!(decode(&map(&member)).unwrap(), member);
        }
    }

    #[test]
    fn encodes_the_documented_keys() {
        let kv = map(&executor());
        assert_eq!(kv["role"], "executor");
        assert_eq!(kv["handlers"], "report,cleanup.v2");
        assert_eq!(kv["weight"], "7");
        assert_eq!(kv["running"], "4");
        assert_eq!(kv["max_concurrent"], "2");
        let labels: serde_json::Value = serde_json::from_str(&kv["labels"]).unwrap();
        assert_eq!(labels["zone"], "eu-west-1a");
        let kv = map(&scheduler());
        assert_eq!(kv["role"], "scheduler");
        assert_eq!(kv["node_id"], "3");
        assert_eq!(kv["leader"], "true");
        assert_eq!(kv["term"], "42");
    }

    #[test]
    fn ignores_unknown_keys() {
        let mut kv = map(&executor());
        kv.insert("zzz_future".into(), "whatever".into());
        assert_eq!(decode(&kv).unwrap(), executor());
    }

    #[test]
    fn every_missing_key_is_an_error() {
        for member in [scheduler(), executor()] {
            let full = map(&member);
            let optional = [TERM, MAX_CONCURRENT];
            for key in full.keys().filter(|k| !optional.contains(&k.as_str())) {
                let mut kv = full.clone();
                kv.remove(key);
                match decode(&kv) {
                    Err(KeyError::Missing(k)) => assert_eq!(k, key),
                    other => panic!("without {key}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn a_scheduler_without_a_term_is_an_older_one_in_term_0() {
        let mut kv = map(&scheduler());
        kv.remove(TERM);
        match decode(&kv) {
            Ok(Member::Scheduler(s)) => assert_eq!(s.term, 0),
            other => panic!("without a term: {other:?}"),
        }
    }

    #[test]
    fn an_executor_without_max_concurrent_is_an_older_one_without_a_limit() {
        let mut kv = map(&executor());
        kv.remove(MAX_CONCURRENT);
        match decode(&kv) {
            Ok(Member::Executor(e)) => assert_eq!(e.max_concurrent, 0),
            other => panic!("without max_concurrent: {other:?}"),
        }
    }

    #[test]
    fn malformed_values_are_errors() {
        let cases: &[(&Member, &str, &str)] = &[
            (&scheduler(), "node_id", "-1"),
            (&scheduler(), "node_id", "abc"),
            (&scheduler(), "node_id", "18446744073709551616"),
            (&scheduler(), "leader", "yes"),
            (&scheduler(), "leader", "True"),
            (&scheduler(), "term", ""),
            (&scheduler(), "term", "-1"),
            (&scheduler(), "term", "7.5"),
            (&scheduler(), "term", "seven"),
            (&scheduler(), "term", "18446744073709551616"),
            (&scheduler(), "api_url", ""),
            (&scheduler(), "raft_addr", "  "),
            (&executor(), "weight", "1.5"),
            (&executor(), "weight", "4294967296"),
            (&executor(), "running", ""),
            (&executor(), "max_concurrent", "-1"),
            (&executor(), "max_concurrent", "many"),
            (&executor(), "labels", "not json"),
            (&executor(), "labels", "[1,2]"),
            (&executor(), "labels", "{\"a\": 1}"),
            (&executor(), "handlers", "a,,b"),
            (&executor(), "handlers", ","),
            (&executor(), "handlers", "a, b"),
            (&executor(), "endpoint", ""),
            (&executor(), "group", ""),
        ];
        for (member, key, value) in cases {
            let mut kv = map(member);
            kv.insert(key.to_string(), value.to_string());
            match decode(&kv) {
                Err(KeyError::Malformed { key: k, .. }) => assert_eq!(k, *key, "{key}={value:?}"),
                other => panic!("{key}={value:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn unknown_role_and_garbage_are_errors() {
        let mut kv = map(&executor());
        kv.insert("role".into(), "gardener".into());
        assert_eq!(decode(&kv), Err(KeyError::UnknownRole("gardener".into())));
        assert_eq!(decode(&BTreeMap::new()), Err(KeyError::Missing("role")));
        let huge = "x".repeat(10_000);
        let mut kv = map(&executor());
        kv.insert("weight".into(), huge);
        match decode(&kv) {
            Err(KeyError::Malformed { value, .. }) => assert_eq!(value.len(), 64),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn validate_rejects_what_would_not_round_trip() {
        let mut e = ExecutorInfo::new("g", "http://e:1");
        e.handlers = vec!["a,b".into()];
        assert!(validate(&Member::Executor(e.clone())).is_err());
        e.handlers = vec![" padded".into()];
        assert!(validate(&Member::Executor(e.clone())).is_err());
        e.handlers = vec![];
        e.id = "other".into();
        assert!(validate(&Member::Executor(e)).is_err());
        assert!(validate(&Member::Executor(ExecutorInfo::new("", "http://e:1"))).is_err());
    }
}
