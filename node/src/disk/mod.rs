//! The data directory's disk: how much room it has, what the node
//! refuses when it runs short, and what it does when its store wedges.
//!
//! - [`floor`]: `--min-free-space`, the free space below which new work is
//!   refused: bytes, a share of the file system, or automatic.
//! - [`phase`]: [`phase::DiskCore`], which turns readings of the disk and
//!   of the write in progress into a [`protocol::api::StorageState`], and
//!   which writes each state takes.
//! - [`guard`]: [`guard::GuardedProposer`], which refuses with
//!   `ProposeError::NoSpace` what the state does not take, before it
//!   reaches the log.
//! - [`monitor`]: the thread that reads the disk and logs each change, and
//!   the task that acts on them: a leader short of room hands leadership
//!   over; a wedged store starts the process over once there is room.
//!
//! sled 0.34 cannot finish any write once one failed for want of space
//! (its flush waits for ever), so the guard's first job is to keep sled
//! from meeting a full disk at all: the floor leaves it room.

pub mod floor;
pub mod guard;
pub mod monitor;
pub mod phase;

pub use floor::SpaceFloor;
pub use monitor::DiskHandle;
