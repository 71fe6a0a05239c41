//! Alerts: what a run's alert says in each format, how it is delivered
//! and retried, and the record of each attempt on the run.
//!
//! - [`format`]: the bodies: the `json` event, Slack, Teams and e-mail.
//! - [`retry`]: which failures are tried again, and after how long.
//! - [`mail`]: e-mail over SMTP.
//! - [`deliver`]: sends a run's alert to its destinations and records
//!   each attempt through the log.
//! - [`record`]: gathers the attempts of a moment into one command.
//! - [`watch`]: `ClusterWatchCore`, which decides alerts about the
//!   cluster (no leader) from observations.
//! - [`cluster`]: sends those to the node's own destinations.

pub mod cluster;
pub mod deliver;
pub mod format;
pub mod mail;
pub mod record;
pub mod retry;
pub mod watch;

pub use deliver::{destinations, Destination, RunAlerts};
pub use mail::{Mailer, SmtpSettings};
