//! The typed members the rest of cronmesh sees: what a node is
//! ([`Member`]), how this node currently sees it ([`MemberState`]), and how
//! that view changes ([`MembershipChange`]).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What a node is, as gossiped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Member {
    Scheduler(SchedulerInfo),
    Executor(ExecutorInfo),
}

impl Member {
    /// The stable identity of the member within its role: the Raft node id
    /// of a scheduler, the endpoint of an executor.
    pub fn id(&self) -> String {
        match self {
            Member::Scheduler(s) => s.node_id.to_string(),
            Member::Executor(e) => e.id.clone(),
        }
    }

    pub fn as_scheduler(&self) -> Option<&SchedulerInfo> {
        match self {
            Member::Scheduler(s) => Some(s),
            Member::Executor(_) => None,
        }
    }

    pub fn as_executor(&self) -> Option<&ExecutorInfo> {
        match self {
            Member::Executor(e) => Some(e),
            Member::Scheduler(_) => None,
        }
    }
}

/// A scheduler node: a Raft voter or learner that serves the admin API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchedulerInfo {
    /// Its Raft node id, so gossip and Raft agree on who is who.
    pub node_id: u64,
    /// Base URL of its admin API: where executors report runs and where
    /// followers forward writes.
    pub api_url: String,
    /// IP:PORT of its Raft transport, for operators adding it to the group.
    pub raft_addr: String,
    /// Whether it believes it is the Raft leader. Advisory only (it lags the
    /// real leadership by a gossip round): executors prefer it for reports.
    pub leader: bool,
    /// The Raft term it is in, leader or not; 0 from a scheduler too old to
    /// gossip it. Executors refuse dispatches and kills of lower terms, so
    /// a deposed leader that has not noticed yet is fenced off as soon as
    /// the gossip of any newer term reaches them.
    pub term: u64,
}

/// An executor: runs shell commands and handlers dispatched to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutorInfo {
    /// Stable identity, equal to `endpoint`: it survives restarts of the
    /// executor, so runs in flight on it are recognised after it comes back.
    /// Derived from the `endpoint` key, never gossiped separately.
    pub id: String,
    /// The executor group jobs target (`target.group`).
    pub group: String,
    /// Base URL of its executor-protocol API (`POST {endpoint}/v1/dispatch`).
    pub endpoint: String,
    /// Handler names it serves for `target.type = executor` jobs; only
    /// jobs naming one of them (or any, with `*`) are routed to it. Names
    /// cannot contain commas (the gossip encoding is comma-separated).
    pub handlers: Vec<String>,
    /// Share of runs under the weighted routing policies; 0 drains it.
    pub weight: u32,
    /// Free-form labels, shown to operators; a job's `selector` routes
    /// only to executors whose labels meet it.
    pub labels: BTreeMap<String, String>,
    /// Runs it has in progress, as it reports itself (for `least_busy`).
    pub running: u32,
    /// Most runs it holds at once (`--max-concurrent`); 0 means no limit.
    /// The leader never sends it more than this, so a burst waits at the
    /// scheduler instead of piling onto one machine.
    pub max_concurrent: u32,
}

impl ExecutorInfo {
    /// An executor with weight 1, no handlers, no labels and nothing running;
    /// its id is its endpoint.
    pub fn new(group: impl Into<String>, endpoint: impl Into<String>) -> Self {
        let endpoint = endpoint.into();
        ExecutorInfo {
            id: endpoint.clone(),
            group: group.into(),
            endpoint,
            handlers: Vec::new(),
            weight: 1,
            labels: BTreeMap::new(),
            running: 0,
            max_concurrent: 0,
        }
    }
}

/// A member as this node currently sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemberState {
    /// The member, as last parsed from its gossip keys. When a later version
    /// of its keys does not parse, the last good one is kept.
    pub member: Member,
    /// Whether this node's failure detector considers it alive. This node
    /// itself is always alive.
    pub alive: bool,
    /// The last time this node saw it alive (a heartbeat of it arrived),
    /// to within a gossip interval. `None` when this node has only heard of
    /// it from others and never seen it alive itself.
    pub last_seen: Option<DateTime<Utc>>,
    /// The chitchat identity `node_name:generation:gossip_addr`. The
    /// generation changes on every restart; for logs and diagnostics.
    pub gossip_id: String,
    /// Whether its announcement carries a valid signature of the cluster's
    /// gossip key (see `signing`), or this node has no key and trusts
    /// every member. Anyone who can reach a gossip port can announce
    /// anything: schedulers route only to verified executors, executors
    /// only count verified schedulers as alive, and an unverified member
    /// never takes the place of a verified one.
    pub verified: bool,
}

/// A change in this node's view of the cluster.
///
/// Changes of one member arrive in order. A restart of a node under the same
/// node name is an `Updated` (with a new `gossip_id`), never a `Removed`
/// followed by an `Added`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "change", content = "state", rename_all = "snake_case")]
pub enum MembershipChange {
    /// A member appeared alive for the first time (or again after it was
    /// forgotten).
    Added(MemberState),
    /// A member's keys changed, or it came back alive after being declared
    /// dead.
    Updated(MemberState),
    /// A member was declared dead by the failure detector. It stays listed
    /// by [`crate::Membership::members`] as dead for the dead grace period.
    Removed(MemberState),
}

impl MembershipChange {
    pub fn state(&self) -> &MemberState {
        match self {
            MembershipChange::Added(s)
            | MembershipChange::Updated(s)
            | MembershipChange::Removed(s) => s,
        }
    }
}
