//! The cronmesh binary's library: one scheduler node, the executor agent
//! and the command-line client.
//!
//! - [`node`]: all the wiring of a scheduler node, top to bottom.
//! - [`config`]: node configuration and the `dev` / `server` flags.
//! - [`settings`]: flags over `CRONMESH_*` variables over the `--config` file.
//! - [`history_config`]: the run history retention settings of `server`.
//! - [`alert_config`]: the SMTP server, sender and credentials of alert
//!   e-mail; the node's own alert destinations and thresholds.
//! - [`cluster_watch`]: watches who leads and sends cluster alerts.
//! - [`consensus`]: alone or through Raft: who leads and where writes go.
//! - [`discovery`]: executors found by gossip become the Router's executor set.
//! - [`raft`]: the Raft engine, its sled storage and TCP transport.
//! - [`disk`]: the data directory's free space, the writes refused when it
//!   runs short, and a wedged store.
//! - [`api`]: the admin HTTP API.
//! - [`events`]: the live events `/v1/events` streams.
//! - [`metrics`]: what `/metrics` reports.
//! - [`console`]: the web console served at `/`.
//! - [`executor`]: the executor agent that runs shell commands.
//! - [`client`]: the command-line client of the admin API.
//! - [`bench`]: `cronmesh bench`, a measured run of a real local cluster.
//! - [`cli`]: the `cronmesh` command line; [`signals`]: shutdown and logging.
//! - [`secret`]: reading the executor protocol's shared secret.
//! - [`restore`]: a new node's data directory made from a backup.
//! - [`tokens`]: the admin API's tokens and their scopes.
//! - [`tls`]: optional HTTPS, and the CAs this process's clients trust.

pub mod alert_config;
pub mod api;
pub mod bench;
pub mod cli;
pub mod client;
pub mod cluster_watch;
pub mod config;
pub mod consensus;
pub mod console;
pub mod discovery;
pub mod disk;
pub mod events;
pub mod executor;
pub mod history_config;
pub mod metrics;
pub mod node;
pub mod raft;
pub mod restore;
pub mod secret;
pub mod settings;
pub mod signals;
pub mod tls;
pub mod tokens;
pub mod v1_args;
