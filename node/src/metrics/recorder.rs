//! Follows the log like the Trigger does and counts what each applied
//! entry did to runs: every node sees every run change exactly once, so no
//! run is counted twice or missed, whichever node acted on it.

use actix::{Actor, Context, Handler};
use actors::messages::AppliedCommand;

use super::Metrics;

pub struct MetricsRecorder {
    metrics: Metrics,
}

impl MetricsRecorder {
    pub fn new(metrics: Metrics) -> Self {
        Self { metrics }
    }
}

impl Actor for MetricsRecorder {
    type Context = Context<Self>;
}

impl Handler<AppliedCommand> for MetricsRecorder {
    type Result = ();

    fn handle(&mut self, AppliedCommand(applied): AppliedCommand, _: &mut Context<Self>) {
        self.metrics.record_applied(&applied.outcome);
    }
}
