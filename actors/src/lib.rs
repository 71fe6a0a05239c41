//! The per-node actors of cronmesh and the plain cores behind them.
//!
//! - [`http_client`]: the pooled HTTP client every component shares.

pub mod http_client;
