//! Placing runs that waited for room: when an executor that may take a
//! waiting run has room again, the run goes there (by the job's routing
//! policy among those with room, or to its own executor for a broadcast
//! run).

use std::sync::Arc;

use protocol::Job;

use super::core::{Route, RouterCore};

/// A run waiting at the scheduler for room on an executor.
#[derive(Clone, Debug)]
pub struct PlaceRequest {
    pub run_id: String,
    pub job: Arc<Job>,
    /// Its shard, for the routing policies that place by shard.
    pub shard: u32,
    /// The one executor it must go to (a broadcast run), if any.
    pub pinned: Option<String>,
}

/// Where the run goes now, counted as in flight there; `None` while no
/// executor that may take it has room.
pub fn place(core: &mut RouterCore, request: &PlaceRequest) -> Option<Route> {
    let route = match &request.pinned {
        Some(endpoint) => core.has_room_at(endpoint).then(|| Route {
            primary: endpoint.clone(),
            fallbacks: Vec::new(),
        }),
        None => core.route(&request.job, request.shard, None),
    }?;
    core.acquire(&route.primary);
    Some(route)
}
