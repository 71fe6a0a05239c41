//! What readings of the disk mean: [`DiskCore`] turns each reading (free
//! space, and how long the write in progress has gone on) into a
//! [`StorageState`], and [`admits`] says which writes a state takes.

use std::time::Duration;

use protocol::{
    api::{StorageState, StorageStatus},
    MetaCommand,
};

use actors::store::write_watch::WriteFailure;

use super::SpaceFloor;

/// A write going on this long, begun while free space was short, means
/// the store is wedged (sled never finishes a write that failed for want
/// of space). A slow disk with room is not taken for a wedged one.
pub const STALL_AFTER: Duration = Duration::from_secs(3);

/// The least free space a store wedged by a full disk starts over with,
/// whatever the floor: sled gives back a little of what it had taken when
/// its write fails, and that is no room to start over in.
pub const START_OVER_ROOM: u64 = 16 << 20;

/// One reading of the data directory's file system.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Space {
    /// Bytes this node's user may still write.
    pub free: u64,
    pub total: u64,
}

/// What a write asks of the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteClass {
    /// New work that the disk would have to keep: a job created or
    /// replaced, a run asked for by hand (refused by the API before it
    /// becomes a command). Refused first.
    NewWork,
    /// What keeps the work already there going: scheduled runs, their
    /// retries, transitions and ends, placements, alert deliveries,
    /// node registrations, pausing and resuming.
    Upkeep,
    /// What makes room: deleting a job deletes its runs.
    Relief,
}

impl WriteClass {
    pub fn of(cmd: &MetaCommand) -> Self {
        match cmd {
            MetaCommand::PutJob { .. } | MetaCommand::CreateJobs { .. } => WriteClass::NewWork,
            MetaCommand::DeleteJob { .. } => WriteClass::Relief,
            // Runs go into the log in chunks that mix manual runs with
            // scheduled ones: a manual trigger is refused where it is
            // asked for (the API), so that no chunk of scheduled runs is
            // held back by one manual run in it.
            MetaCommand::CreateRuns { .. }
            | MetaCommand::RecordRuns { .. }
            | MetaCommand::SetJobEnabled { .. }
            | MetaCommand::RegisterNode { .. }
            | MetaCommand::MoveRun { .. }
            | MetaCommand::PlaceRun { .. }
            | MetaCommand::RecordAlertDeliveries { .. } => WriteClass::Upkeep,
        }
    }
}

/// Whether a node in `state` takes a write of `class`.
pub fn admits(state: StorageState, class: WriteClass) -> bool {
    match state {
        StorageState::Ok => true,
        StorageState::LowSpace => class != WriteClass::NewWork,
        StorageState::Critical => class == WriteClass::Relief,
        StorageState::Stalled => false,
    }
}

/// The state of the disk, from one reading to the next.
#[derive(Debug)]
pub struct DiskCore {
    floor: SpaceFloor,
    state: StorageState,
    /// The last reading; `Err` with why the file system could not be read.
    space: Result<Space, String>,
    /// The least free space seen since the write in progress began; `None`
    /// while no write is in progress.
    least_free_while_writing: Option<u64>,
    /// The I/O error a write of the store failed with, once one did.
    failure: Option<WriteFailure>,
    /// Whether the store wedged while the disk was short of room: then
    /// room is what it needs, and a new start once room is back.
    wedged_by_full_disk: bool,
}

/// How the store's writes are going, at one reading.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Writes {
    /// How long the write in progress has gone on; `None` if none is.
    pub going_for: Option<Duration>,
    /// The I/O error a write failed with, if one did.
    pub failure: Option<WriteFailure>,
}

impl DiskCore {
    pub fn new(floor: SpaceFloor) -> Self {
        Self {
            floor,
            state: StorageState::Ok,
            space: Err("not read yet".into()),
            least_free_while_writing: None,
            failure: None,
            wedged_by_full_disk: false,
        }
    }

    pub fn state(&self) -> StorageState {
        self.state
    }

    /// The floor in bytes, by the last reading's file system size.
    pub fn floor_bytes(&self) -> u64 {
        self.floor
            .bytes(self.space.as_ref().map_or(0, |space| space.total))
    }

    /// Takes a reading; the state before, if it changed.
    pub fn observe(
        &mut self,
        space: Result<Space, String>,
        writes: Writes,
    ) -> Option<StorageState> {
        self.space = space;
        let free = self.space.as_ref().ok().map(|space| space.free);
        self.least_free_while_writing = match (writes.going_for, free) {
            (None, _) => None,
            (Some(_), Some(free)) => Some(
                self.least_free_while_writing
                    .map_or(free, |least| least.min(free)),
            ),
            (Some(_), None) => self.least_free_while_writing,
        };
        let floor = self.floor_bytes();
        // Short of room: below the floor, or (with no floor) out of it.
        let short = |free: u64| free < floor.max(1);
        let stuck = writes.going_for.is_some_and(|d| d >= STALL_AFTER)
            && self.least_free_while_writing.is_some_and(short);
        let next = match (self.state, free) {
            // A wedged store stays wedged: only a new process clears it.
            (StorageState::Stalled, _) => StorageState::Stalled,
            _ if stuck => {
                self.wedged_by_full_disk = true;
                StorageState::Stalled
            }
            _ if writes.failure.is_some() => {
                self.wedged_by_full_disk = writes.failure.as_ref().is_some_and(|f| f.out_of_space)
                    || free.is_some_and(short)
                    || self.least_free_while_writing.is_some_and(short);
                StorageState::Stalled
            }
            // Unreadable: nothing to go by, so nothing is refused.
            (_, None) => StorageState::Ok,
            (_, Some(free)) if floor > 0 && free < floor / 2 => StorageState::Critical,
            (_, Some(free)) if free < floor => StorageState::LowSpace,
            (_, Some(_)) => StorageState::Ok,
        };
        if self.failure.is_none() {
            self.failure = writes.failure;
        }
        let before = std::mem::replace(&mut self.state, next);
        (before != next).then_some(before)
    }

    /// A store wedged by a full disk, with room again: time to start over.
    pub fn room_to_start_over(&self) -> bool {
        self.state == StorageState::Stalled
            && self.wedged_by_full_disk
            && self
                .space
                .as_ref()
                .is_ok_and(|space| space.free >= self.floor_bytes().max(START_OVER_ROOM))
    }

    /// What is wrong, in words; `None` when nothing is.
    pub fn reason(&self) -> Option<String> {
        let floor = self.floor_bytes();
        let free = self.space.as_ref().map(|space| space.free);
        let free_text = match &free {
            Ok(free) => format!("{} free", mib(*free)),
            Err(why) => format!("free space unknown ({why})"),
        };
        match self.state {
            StorageState::Ok => None,
            StorageState::LowSpace => Some(format!(
                "disk full: {free_text} on the data directory's file system, below the floor of {} (--min-free-space); new jobs and manual triggers are refused",
                mib(floor)
            )),
            StorageState::Critical => Some(format!(
                "disk full: {free_text} on the data directory's file system, below half the floor of {} (--min-free-space); only job deletions are taken",
                mib(floor)
            )),
            StorageState::Stalled => {
                let what = match &self.failure {
                    Some(failure) => {
                        format!("storage failed: a write failed ({})", failure.error)
                    }
                    None => format!(
                        "storage stalled: a write has not finished for {} s",
                        STALL_AFTER.as_secs()
                    ),
                };
                let next = if self.wedged_by_full_disk {
                    format!(
                        "the disk was full; the node starts over once {} are free",
                        mib(floor.max(START_OVER_ROOM))
                    )
                } else {
                    "restart the node".to_string()
                };
                Some(format!("{what}; {free_text}; {next}"))
            }
        }
    }

    pub fn status(&self) -> StorageStatus {
        let space = self.space.as_ref().ok();
        StorageStatus {
            state: self.state,
            free_bytes: space.map(|s| s.free),
            total_bytes: space.map(|s| s.total),
            floor_bytes: self.floor_bytes(),
            reason: self.reason(),
        }
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1u32 << 20))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn idle() -> Writes {
        Writes::default()
    }

    fn writing_for(going_for: Duration) -> Writes {
        Writes {
            going_for: Some(going_for),
            failure: None,
        }
    }

    fn space(free: u64) -> Result<Space, String> {
        Ok(Space {
            free,
            total: 64 * MIB,
        })
    }

    #[test]
    fn free_space_moves_the_state_both_ways() {
        let mut core = DiskCore::new(SpaceFloor::Bytes(8 * MIB));
        assert_eq!(core.observe(space(20 * MIB), idle()), None);
        assert_eq!(core.state(), StorageState::Ok);
        assert_eq!(
            core.observe(space(6 * MIB), idle()),
            Some(StorageState::Ok),
            "below the floor"
        );
        assert_eq!(core.state(), StorageState::LowSpace);
        assert!(core.reason().is_some_and(|r| r.contains("disk full")));
        assert_eq!(core.observe(space(6 * MIB), idle()), None, "no change");
        core.observe(space(3 * MIB), idle());
        assert_eq!(core.state(), StorageState::Critical);
        core.observe(space(9 * MIB), idle());
        assert_eq!(core.state(), StorageState::Ok);
        assert_eq!(core.reason(), None);
        // Unreadable: nothing refused.
        core.observe(Err("gone".into()), idle());
        assert_eq!(core.state(), StorageState::Ok);
    }

    #[test]
    fn a_write_that_never_ends_on_a_full_disk_stalls_for_good() {
        let mut core = DiskCore::new(SpaceFloor::Bytes(8 * MIB));
        // A slow write with room is only slow.
        core.observe(space(30 * MIB), writing_for(STALL_AFTER * 2));
        assert_eq!(core.state(), StorageState::Ok);
        core.observe(space(30 * MIB), idle());
        // A write begun with the disk full that does not end.
        core.observe(space(0), writing_for(Duration::from_millis(10)));
        assert_eq!(core.state(), StorageState::Critical);
        core.observe(space(40 * MIB), writing_for(STALL_AFTER));
        assert_eq!(core.state(), StorageState::Stalled);
        assert!(core.room_to_start_over());
        // It does not recover in place, even when the write seems to end.
        core.observe(space(40 * MIB), idle());
        assert_eq!(core.state(), StorageState::Stalled);
        core.observe(space(MIB), idle());
        assert!(!core.room_to_start_over());
    }

    #[test]
    fn a_failed_write_stalls_and_starts_over_only_if_the_disk_was_full() {
        let failed = |out_of_space: bool| Writes {
            going_for: None,
            failure: Some(WriteFailure {
                error: if out_of_space {
                    "No space left on device"
                } else {
                    "Input/output error"
                }
                .into(),
                out_of_space,
            }),
        };
        let mut full = DiskCore::new(SpaceFloor::Bytes(8 * MIB));
        full.observe(space(0), failed(true));
        assert_eq!(full.state(), StorageState::Stalled);
        assert!(!full.room_to_start_over(), "no room yet");
        full.observe(space(30 * MIB), idle());
        assert!(full.room_to_start_over());
        assert!(full.reason().is_some_and(|r| r.contains("No space left")));
        // Out of space, though sled gave some back by the time it was
        // seen: not yet room to start over in.
        let mut freed = DiskCore::new(SpaceFloor::Bytes(0));
        freed.observe(space(7 * MIB), failed(true));
        assert!(!freed.room_to_start_over());
        freed.observe(space(START_OVER_ROOM), idle());
        assert!(freed.room_to_start_over());
        // Another failure with room to spare is not the disk's doing: a
        // new start would meet it again.
        let mut roomy = DiskCore::new(SpaceFloor::Bytes(8 * MIB));
        roomy.observe(space(30 * MIB), failed(false));
        assert_eq!(roomy.state(), StorageState::Stalled);
        assert!(!roomy.room_to_start_over());
        assert!(roomy
            .reason()
            .is_some_and(|r| r.contains("restart the node")));
    }

    #[test]
    fn no_floor_refuses_nothing_until_the_disk_is_out_of_room() {
        let mut core = DiskCore::new(SpaceFloor::Bytes(0));
        core.observe(space(0), idle());
        assert_eq!(core.state(), StorageState::Ok);
        core.observe(space(0), writing_for(STALL_AFTER));
        assert_eq!(core.state(), StorageState::Stalled);
    }

    #[test]
    fn each_state_takes_its_writes() {
        use StorageState::*;
        use WriteClass::*;
        let taken = |state| {
            [NewWork, Upkeep, Relief]
                .into_iter()
                .filter(|class| admits(state, *class))
                .collect::<Vec<_>>()
        };
        assert_eq!(taken(Ok), vec![NewWork, Upkeep, Relief]);
        assert_eq!(taken(LowSpace), vec![Upkeep, Relief]);
        assert_eq!(taken(Critical), vec![Relief]);
        assert_eq!(taken(Stalled), vec![]);
    }
}
