//! The Job definition exactly as users write it (docs/API.md, "Job").

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duration::HumanDuration;

/// Namespace a job lives in when none is given.
pub const DEFAULT_NAMESPACE: &str = "default";
/// Executor group used when a target names none.
pub const DEFAULT_GROUP: &str = "default";

/// What `validate::check_name` accepts, as a JSON Schema pattern: ids,
/// namespaces, groups and handlers. The API document states it so a client
/// (or a fuzzer) learns the rule without being refused first.
pub const NAME_PATTERN: &str = "^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$";
/// Largest `params`, `target.command` and `target.body`, in bytes.
const MAX_TEXT: u32 = 64 * 1024;

/// A job is addressed by `(namespace, id)`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct JobKey {
    pub namespace: String,
    pub id: String,
}

impl JobKey {
    pub fn new(namespace: impl Into<String>, id: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            id: id.into(),
        }
    }
}

impl std::fmt::Display for JobKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.id)
    }
}

/// A scheduled job. Every field but `id`, `schedule` and `target` has a
/// default; unknown fields are rejected so a typo never silently vanishes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Job {
    /// Unique within the namespace.
    #[schemars(regex(pattern = NAME_PATTERN))]
    pub id: String,
    #[serde(default = "default_namespace")]
    #[schemars(regex(pattern = NAME_PATTERN))]
    pub namespace: String,
    /// At most 4096 bytes.
    #[serde(default)]
    #[schemars(length(max = 4096))]
    pub description: String,
    /// Crontab (5, 6 or 7 fields), an @-macro, `@every D`, `@at T` or `@manual`.
    #[schemars(length(min = 1))]
    pub schedule: String,
    /// IANA zone the schedule is evaluated in, spelled exactly.
    #[serde(default = "default_timezone")]
    #[schemars(length(min = 1))]
    pub timezone: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    pub target: Target,
    /// Free-form parameters handed to every run (`CRONMESH_PARAMS`), at
    /// most 64 KiB.
    #[serde(default)]
    #[schemars(length(max = MAX_TEXT))]
    pub params: String,
    #[serde(default)]
    pub routing: Routing,
    /// One scheduled fire becomes this many runs, one per shard.
    #[serde(default = "one")]
    #[schemars(range(min = 1, max = 1000))]
    pub shards: u32,
    /// Parameter of shard i is `shard_params[i]`, or empty; at most
    /// `shards` entries.
    #[serde(default)]
    #[schemars(length(max = 1000), inner(length(max = MAX_TEXT)))]
    pub shard_params: Vec<String>,
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
    #[serde(default, deserialize_with = "object_only::object")]
    pub retry: RetryPolicy,
    /// Try the next executor of the group when one cannot take the run.
    #[serde(default = "yes")]
    pub failover: bool,
    #[serde(default, deserialize_with = "object_only::object")]
    pub misfire: MisfirePolicy,
    #[serde(default)]
    pub concurrency: Concurrency,
    /// At most 64, none repeated.
    #[serde(default, deserialize_with = "object_only::objects")]
    #[schemars(length(max = crate::validate::MAX_CHILDREN))]
    pub children: Vec<ChildLink>,
    /// At most 64; keys 1 to 128 bytes, values at most 1024 bytes.
    #[serde(default)]
    #[schemars(extend("maxProperties" = crate::validate::MAX_LABELS, "propertyNames" = {"minLength": 1, "maxLength": 128}, "additionalProperties" = {"type": "string", "maxLength": 1024}))]
    pub labels: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "object_only::object")]
    pub alerts: Alerts,
    /// Executor labels a run's executor must have: label key to a value
    /// (equal), `{"in": [..]}`, `{"not_in": [..]}` or `{"exists": bool}`.
    /// Every entry must hold; runs go only to live executors of the group
    /// that match, and fail at once when none does. At most 16 keys of 1 to
    /// 128 bytes. Not for HTTP targets.
    #[serde(default)]
    #[schemars(extend("maxProperties" = crate::validate::MAX_SELECTOR_KEYS, "propertyNames" = {"minLength": 1, "maxLength": 128}))]
    pub selector: crate::selector::Selector,
    /// How long after its slot a run may wait at the scheduler for room on
    /// an executor (`--max-concurrent`) before it ends `skipped`. Absent:
    /// the misfire threshold.
    #[serde(default)]
    pub start_deadline: Option<HumanDuration>,
}

impl Job {
    pub fn key(&self) -> JobKey {
        JobKey::new(self.namespace.clone(), self.id.clone())
    }

    /// The executor group this job runs on; `None` for HTTP targets, which
    /// the dispatcher calls itself.
    pub fn group(&self) -> Option<&str> {
        match &self.target {
            Target::Shell { group, .. } | Target::Executor { group, .. } => Some(group),
            Target::Http { .. } => None,
        }
    }

    /// How long after its slot a run may wait for room on an executor.
    pub fn start_deadline(&self) -> std::time::Duration {
        self.start_deadline
            .as_ref()
            .map_or(self.misfire.threshold.0, |d| d.0)
    }

    /// Parameter given to shard `index`.
    pub fn shard_param(&self, index: u32) -> String {
        self.shard_params
            .get(index as usize)
            .cloned()
            .unwrap_or_default()
    }
}

/// What a run does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Target {
    /// A shell command run by `sh -c` on an executor of `group`.
    Shell {
        #[serde(default = "default_group")]
        #[schemars(regex(pattern = NAME_PATTERN))]
        group: String,
        /// Run by `sh -c`; not blank, at most 64 KiB.
        #[schemars(length(min = 1, max = MAX_TEXT))]
        command: String,
    },
    /// A named handler registered by an executor of `group`.
    Executor {
        #[serde(default = "default_group")]
        #[schemars(regex(pattern = NAME_PATTERN))]
        group: String,
        #[schemars(regex(pattern = NAME_PATTERN))]
        handler: String,
    },
    /// An HTTP call made by the dispatcher itself; 2xx within the timeout is success.
    Http {
        /// An `http` or `https` URL with a host, at most 8 KiB.
        #[schemars(length(min = 1, max = crate::validate::MAX_URL_LEN))]
        url: String,
        #[serde(default = "default_method")]
        #[schemars(extend("enum" = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]))]
        method: String,
        /// At most 64; values of visible ASCII, spaces and tabs, at most 8 KiB.
        #[serde(default)]
        #[schemars(extend("maxProperties" = crate::validate::MAX_HEADERS, "propertyNames" = {"pattern": "^[A-Za-z0-9_-]+$", "maxLength": 128}, "additionalProperties" = {"type": "string", "pattern": "^[\\t -~]*$", "maxLength": crate::validate::MAX_HEADER_VALUE_LEN}))]
        headers: BTreeMap<String, String>,
        /// Sent when not empty; at most 64 KiB.
        #[serde(default)]
        #[schemars(length(max = MAX_TEXT))]
        body: String,
    },
}

/// How an executor is chosen among the live members of a group.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Routing {
    #[default]
    RoundRobin,
    Random,
    WeightedRoundRobin,
    WeightedRandom,
    ConsistentHash,
    LeastBusy,
    First,
    Broadcast,
}

impl Routing {
    /// Every policy, in the order the docs list them.
    pub const ALL: [Routing; 8] = [
        Routing::RoundRobin,
        Routing::Random,
        Routing::WeightedRoundRobin,
        Routing::WeightedRandom,
        Routing::ConsistentHash,
        Routing::LeastBusy,
        Routing::First,
        Routing::Broadcast,
    ];

    /// The policy's name in job JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Routing::RoundRobin => "round_robin",
            Routing::Random => "random",
            Routing::WeightedRoundRobin => "weighted_round_robin",
            Routing::WeightedRandom => "weighted_random",
            Routing::ConsistentHash => "consistent_hash",
            Routing::LeastBusy => "least_busy",
            Routing::First => "first",
            Routing::Broadcast => "broadcast",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Extra attempts after the first one fails or times out.
    #[serde(default)]
    #[schemars(range(max = 100))]
    pub max_retries: u32,
    /// Wait before the first retry; doubles for each further attempt.
    #[serde(default = "default_backoff")]
    pub backoff: HumanDuration,
    /// Upper bound of the doubling.
    #[serde(default = "default_max_backoff")]
    pub max_backoff: HumanDuration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 0,
            backoff: default_backoff(),
            max_backoff: default_max_backoff(),
        }
    }
}

impl RetryPolicy {
    /// Delay before attempt `next_attempt` (2 for the first retry).
    pub fn delay_before(&self, next_attempt: u32) -> std::time::Duration {
        let doublings = next_attempt.saturating_sub(2).min(32);
        let delay = self.backoff.0.saturating_mul(1u32 << doublings.min(31));
        delay.min(self.max_backoff.0)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MisfirePolicy {
    #[serde(default)]
    pub policy: Misfire,
    /// Missed slots older than this are recorded as skipped whatever the policy.
    #[serde(default = "default_misfire_threshold")]
    pub threshold: HumanDuration,
}

impl Default for MisfirePolicy {
    fn default() -> Self {
        Self {
            policy: Misfire::default(),
            threshold: default_misfire_threshold(),
        }
    }
}

/// What happens to slots that passed while no scheduler could fire.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Misfire {
    /// Fire the newest missed slot once; the others are recorded skipped.
    #[default]
    FireOnce,
    /// Fire every missed slot within the threshold.
    FireAll,
    /// Record every missed slot as skipped.
    Skip,
}

/// What a fire does while an earlier run of the same job is still active.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Concurrency {
    #[default]
    Allow,
    /// Record the fire as skipped.
    Forbid,
    /// Kill the active run, then start the new one.
    Replace,
    /// Hold the new run until the active one ends; at most one waits.
    Queue,
}

/// A job triggered when a run of this one ends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChildLink {
    /// A job of the same namespace.
    #[schemars(regex(pattern = NAME_PATTERN))]
    pub job: String,
    /// Judged on the whole parent fire (every shard, after its retries).
    #[serde(default)]
    pub on: ChildCondition,
    /// Which parameters the child's runs get.
    #[serde(default)]
    pub params: ChildParams,
}

/// When a child fires, judged once every run of the parent's fire (all
/// shards, or every broadcast run, each after its retries and failovers)
/// has ended. Skipped runs did not run and count for nothing; a fire whose
/// runs were all skipped fires no child.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChildCondition {
    /// Every run that ran succeeded.
    #[default]
    Success,
    /// At least one run failed, timed out or was killed.
    Failure,
    /// Whatever the outcome (`end` is the same).
    #[serde(alias = "end")]
    Always,
}

/// The parameters of a child's runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChildParams {
    /// The child job's own `params`.
    #[default]
    Own,
    /// The parameters of the parent's fire (its first shard's run).
    Parent,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Alerts {
    /// Run statuses that raise an alert.
    #[serde(default = "default_alert_statuses")]
    #[schemars(length(max = crate::validate::MAX_ALERT_STATUSES))]
    pub on: Vec<crate::run::RunStatus>,
    /// At most 16 `http` or `https` URLs with a host, each a plain URL (the
    /// `json` format) or `{"url": ..., "format": "json"|"slack"|"teams"}`.
    #[serde(default)]
    #[schemars(length(max = crate::validate::MAX_WEBHOOKS))]
    pub webhooks: Vec<crate::alert::Webhook>,
    /// At most 16 addresses, sent an e-mail through the node's SMTP server
    /// (`--smtp-url`).
    #[serde(default)]
    #[schemars(length(max = crate::validate::MAX_EMAILS), inner(length(min = 3, max = crate::validate::MAX_EMAIL_LEN)))]
    pub emails: Vec<String>,
}

impl Default for Alerts {
    fn default() -> Self {
        Self {
            on: default_alert_statuses(),
            webhooks: Vec::new(),
            emails: Vec::new(),
        }
    }
}

/// A duration travels as text ("30s", "1h 30m"); its bounds depend on
/// the field, which validation checks.
impl JsonSchema for HumanDuration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "minLength": 1,
            "maxLength": crate::duration::MAX_DURATION_LEN,
            "description": "A duration such as 500ms, 30s, 5m, 1h 30m or 2d; never negative.",
            "examples": ["30s"]
        })
    }
}

fn default_namespace() -> String {
    DEFAULT_NAMESPACE.to_string()
}
fn default_timezone() -> String {
    "UTC".to_string()
}
fn default_group() -> String {
    DEFAULT_GROUP.to_string()
}
fn default_method() -> String {
    "GET".to_string()
}
fn yes() -> bool {
    true
}
fn one() -> u32 {
    1
}
fn default_timeout() -> HumanDuration {
    HumanDuration::from_secs(30)
}
fn default_backoff() -> HumanDuration {
    HumanDuration::from_secs(1)
}
fn default_max_backoff() -> HumanDuration {
    HumanDuration::from_secs(60)
}
fn default_misfire_threshold() -> HumanDuration {
    HumanDuration::from_secs(300)
}
fn default_alert_statuses() -> Vec<crate::run::RunStatus> {
    use crate::run::RunStatus::*;
    vec![Failed, TimedOut, Skipped]
}

/// serde reads a struct from an array as readily as from an object
/// (`"retry": []` as the default policy); a job's objects are objects only,
/// as its schema says. Errors keep their path (`retry.backoff`).
mod object_only {
    use std::{fmt, marker::PhantomData};

    use serde::{
        de::{value::MapAccessDeserializer, DeserializeSeed, MapAccess, SeqAccess, Visitor},
        Deserialize, Deserializer,
    };

    struct ObjectVisitor<T>(PhantomData<T>);

    impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
        type Value = T;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object")
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            T::deserialize(MapAccessDeserializer::new(map))
        }
    }

    /// `T` from a JSON object, never from an array.
    pub fn object<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<T, D::Error> {
        d.deserialize_map(ObjectVisitor(PhantomData))
    }

    struct ObjectSeed<T>(PhantomData<T>);

    impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for ObjectSeed<T> {
        type Value = T;

        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
            object(d)
        }
    }

    struct ObjectsVisitor<T>(PhantomData<T>);

    impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectsVisitor<T> {
        type Value = Vec<T>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an array of objects")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut out = Vec::new();
            while let Some(item) = seq.next_element_seed(ObjectSeed(PhantomData))? {
                out.push(item);
            }
            Ok(out)
        }
    }

    /// An array of `T`, each from a JSON object.
    pub fn objects<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
        d: D,
    ) -> Result<Vec<T>, D::Error> {
        d.deserialize_seq(ObjectsVisitor(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_routing_is_listed_under_its_json_name() {
        for routing in Routing::ALL {
            let json = serde_json::to_value(routing).unwrap();
            assert_eq!(json, routing.as_str());
        }
        let distinct: std::collections::HashSet<_> = Routing::ALL.into_iter().collect();
        assert_eq!(distinct.len(), Routing::ALL.len());
    }

    #[test]
    fn minimal_job_gets_documented_defaults() {
        let job: Job = serde_json::from_str(
            r#"{"id":"a","schedule":"@every 1s","target":{"type":"shell","command":"echo hi"}}"#,
        )
        .unwrap();
        assert_eq!(job.namespace, "default");
        assert_eq!(job.timezone, "UTC");
        assert!(job.enabled && job.failover);
        assert_eq!(job.shards, 1);
        assert_eq!(job.timeout, HumanDuration::from_secs(30));
        assert_eq!(job.retry, RetryPolicy::default());
        assert_eq!(job.misfire.threshold, HumanDuration::from_secs(300));
        assert_eq!(
            job.target,
            Target::Shell {
                group: "default".into(),
                command: "echo hi".into()
            }
        );
        let json = serde_json::to_value(&job).unwrap();
        assert_eq!(json["misfire"]["policy"], "fire_once");
        assert_eq!(
            json["alerts"]["on"],
            serde_json::json!(["failed", "timed_out", "skipped"])
        );
    }

    #[test]
    fn unknown_fields_are_rejected_everywhere() {
        for body in [
            r#"{"id":"a","schedule":"@daily","target":{"type":"shell","command":"x"},"colour":1}"#,
            r#"{"id":"a","schedule":"@daily","target":{"type":"shell","command":"x","cmd":1}}"#,
            r#"{"id":"a","schedule":"@daily","target":{"type":"shell","command":"x"},"retry":{"tries":1}}"#,
        ] {
            assert!(serde_json::from_str::<Job>(body).is_err(), "{body}");
        }
    }

    #[test]
    fn objects_are_never_read_from_arrays() {
        let base = r#""id":"a","schedule":"@daily""#;
        for body in [
            format!(r#"{{{base},"target":{{"type":"shell","command":"x"}},"retry":[]}}"#),
            format!(r#"{{{base},"target":{{"type":"shell","command":"x"}},"misfire":[]}}"#),
            format!(r#"{{{base},"target":{{"type":"shell","command":"x"}},"alerts":[]}}"#),
            format!(r#"{{{base},"target":{{"type":"shell","command":"x"}},"children":[["b"]]}}"#),
            format!(r#"{{{base},"target":["shell","x"]}}"#),
            format!(r#"{{{base},"target":["shell"]}}"#),
        ] {
            assert!(serde_json::from_str::<Job>(&body).is_err(), "{body}");
        }
        let job: Job = serde_json::from_str(&format!(
            r#"{{{base},"target":{{"type":"shell","command":"x"}},"retry":{{"max_retries":2}},"children":[{{"job":"b"}}]}}"#
        ))
        .unwrap();
        assert_eq!(job.retry.max_retries, 2);
        assert_eq!(job.children[0].job, "b");
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let retry = RetryPolicy {
            max_retries: 10,
            backoff: HumanDuration::from_secs(1),
            max_backoff: HumanDuration::from_secs(5),
        };
        let secs: Vec<u64> = (2..=6).map(|a| retry.delay_before(a).as_secs()).collect();
        assert_eq!(secs, vec![1, 2, 4, 5, 5]);
    }
}
