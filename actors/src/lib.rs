//! The per-node actors of cronmesh and the plain cores behind them.
//!
//! - [`store`]: the JobStore state machine over sled and the single-node log.
//! - [`proposer`]: the interface through which every metadata change goes.
//! - [`http_client`]: the pooled HTTP client every component shares.

pub mod http_client;
pub mod proposer;
pub mod store;
