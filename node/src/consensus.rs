//! How this node agrees with others on the metadata log: alone (the local
//! log of `dev` and of a `server` without `--raft`) or through Raft. The
//! API asks it who leads and where to forward writes.

use std::sync::Arc;

use actors::store::StateMachine;
use protocol::api::{ClusterMember, ClusterStatus};

use crate::raft::engine::{EngineHandle, LeaderState};

#[derive(Clone)]
pub enum Consensus {
    /// This node is the whole cluster and always leads.
    Local {
        node_id: u64,
        api_url: String,
    },
    Raft(EngineHandle),
}

/// Where a request that changes state must go.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// This node leads and is caught up: serve here.
    Here,
    /// Forward to the leader's API.
    Leader(String),
    /// No leader is known (an election is running), or it is unreachable.
    Unavailable(String),
}

impl Consensus {
    pub fn leader_state(&self) -> LeaderState {
        match self {
            Consensus::Local { node_id, .. } => LeaderState {
                leader_id: Some(*node_id),
                term: 1,
                ready_to_lead: true,
            },
            Consensus::Raft(engine) => engine.leader.borrow().clone(),
        }
    }

    /// Where a write (or a consistent read) goes.
    pub fn route(&self, store: &StateMachine) -> Route {
        let state = self.leader_state();
        if state.ready_to_lead {
            return Route::Here;
        }
        let Some(leader) = state.leader_id else {
            return Route::Unavailable("no leader is elected yet".into());
        };
        if let Consensus::Raft(_) = self {
            let me = self.node_id();
            if leader == me {
                return Route::Unavailable("this node was just elected and is catching up".into());
            }
        }
        match store
            .nodes()
            .ok()
            .and_then(|nodes| nodes.into_iter().find(|n| n.node_id == leader))
        {
            Some(node) => Route::Leader(node.api_url),
            None => Route::Unavailable(format!("the address of leader {leader} is not known yet")),
        }
    }

    /// Waits until this node's state reflects every write committed before
    /// the call (a no-op alone).
    pub async fn read_barrier(&self) -> Result<(), String> {
        match self {
            Consensus::Local { .. } => Ok(()),
            Consensus::Raft(engine) => engine.read_index().await,
        }
    }

    pub fn node_id(&self) -> u64 {
        match self {
            Consensus::Local { node_id, .. } => *node_id,
            Consensus::Raft(engine) => engine.node_id,
        }
    }

    pub async fn status(&self, store: &Arc<StateMachine>) -> ClusterStatus {
        let applied = store.applied_index().unwrap_or_default();
        match self {
            Consensus::Local { node_id, api_url } => ClusterStatus {
                node_id: *node_id,
                leader_id: Some(*node_id),
                term: 1,
                commit_index: applied,
                applied_index: applied,
                log_start_index: 0,
                snapshots: Default::default(),
                raft_auth: Default::default(),
                storage: None,
                members: vec![ClusterMember {
                    node_id: *node_id,
                    role: "leader".into(),
                    api_url: Some(api_url.clone()),
                    raft_addr: None,
                    matched_index: Some(applied),
                }],
            },
            Consensus::Raft(engine) => {
                let status = engine.status().await.unwrap_or_default();
                let nodes = store.nodes().unwrap_or_default();
                let members = status
                    .voters
                    .iter()
                    .map(|id| {
                        let node = nodes.iter().find(|n| n.node_id == *id);
                        let role = if Some(*id) == status.leader_id {
                            "leader"
                        } else {
                            "follower"
                        };
                        let leading = status.leader_id == Some(status.node_id);
                        let matched = status.progress.iter().find(|p| p.0 == *id).map(|p| p.1);
                        ClusterMember {
                            node_id: *id,
                            role: role.into(),
                            api_url: node.map(|n| n.api_url.clone()),
                            raft_addr: node.map(|n| n.raft_addr.clone()).or_else(|| {
                                status
                                    .raft_addrs
                                    .iter()
                                    .find(|(peer, _)| peer == id)
                                    .map(|(_, addr)| addr.to_string())
                            }),
                            matched_index: matched.filter(|_| leading),
                        }
                    })
                    .collect();
                ClusterStatus {
                    node_id: engine.node_id,
                    leader_id: status.leader_id,
                    term: status.term,
                    commit_index: status.commit_index,
                    applied_index: status.applied_index,
                    log_start_index: status.log_start_index,
                    snapshots: status.snapshots,
                    raft_auth: status.raft_auth,
                    storage: None,
                    members,
                }
            }
        }
    }
}
