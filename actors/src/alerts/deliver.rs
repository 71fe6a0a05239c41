//! Delivers a run's alert to each of its destinations, retrying as
//! `retry` says, and records every attempt on the run through the log.

use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc,
};

use protocol::{
    alert::{redact_url, AlertChannel, AlertDelivery, Webhook},
    Run,
};
use tracing::Instrument;

use super::{
    format::{self, Message},
    retry::{wait_before, Attempt},
};
use crate::{clock::SharedClock, dispatcher::Transport, proposer::Proposer};

/// One place a run's alert goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    Webhook(Webhook),
    Email(String),
}

impl Destination {
    fn channel(&self) -> AlertChannel {
        match self {
            Destination::Webhook(_) => AlertChannel::Webhook,
            Destination::Email(_) => AlertChannel::Email,
        }
    }

    /// As the run shows it: a URL without its credentials.
    fn shown(&self) -> String {
        match self {
            Destination::Webhook(hook) => redact_url(hook.url()),
            Destination::Email(to) => to.clone(),
        }
    }
}

/// Said once per process: a job wants e-mail and no server is set.
static NO_SMTP_LOGGED: AtomicBool = AtomicBool::new(false);
const NO_SMTP: &str = "no SMTP server is configured on the leader (--smtp-url)";

/// What a run's alert needs to leave and be recorded.
#[derive(Clone)]
pub struct RunAlerts {
    pub transport: Transport,
    pub proposer: Arc<dyn Proposer>,
    pub clock: SharedClock,
}

impl RunAlerts {
    /// Starts delivering `run`'s alert to every destination, each on its
    /// own; returns at once. Past `Transport::alert_backlog` destinations
    /// waiting, the alert is dropped with a warning.
    pub fn spawn(&self, destinations: Vec<Destination>, run: Box<Run>, term: u64) {
        let run: Arc<Run> = Arc::from(run);
        for destination in destinations {
            let Some(permit) = self.transport.alert_place() else {
                tracing::warn!(run_id = %run.id, "too many alerts on their way; this one is dropped");
                continue;
            };
            let this = self.clone();
            let run = run.clone();
            let span =
                tracing::info_span!("alert", run_id = %run.id, channel = %destination.channel());
            actix::spawn(
                async move {
                    this.deliver(&destination, &run, term).await;
                    drop(permit);
                }
                .instrument(span),
            );
        }
    }

    /// Tries one destination until it is delivered or the attempts end.
    async fn deliver(&self, destination: &Destination, run: &Run, term: u64) {
        let mut attempt = 1;
        loop {
            let outcome = self.attempt(destination, run, term).await;
            if outcome == Attempt::NotLeading {
                tracing::warn!("the alert was not sent: this node no longer leads");
                return;
            }
            if let Some(error) = outcome.error() {
                tracing::warn!(target = %destination.shown(), attempt, %error, "alert not delivered");
            }
            self.record(run, destination, attempt, &outcome);
            match wait_before(attempt + 1, &outcome) {
                Some(wait) => tokio::time::sleep(wait).await,
                None => return,
            }
            attempt += 1;
        }
    }

    async fn attempt(&self, destination: &Destination, run: &Run, term: u64) -> Attempt {
        match destination {
            Destination::Webhook(hook) => {
                let body = format::run_webhook_body(hook.format(), run);
                self.transport
                    .alert_attempt(hook.url(), hook.format(), &body, term)
                    .await
            }
            Destination::Email(to) => {
                let Some(mailer) = self.transport.mailer.clone() else {
                    if !NO_SMTP_LOGGED.swap(true, Ordering::Relaxed) {
                        tracing::warn!("jobs ask for alert e-mail, but {NO_SMTP}");
                    }
                    return Attempt::Permanent(NO_SMTP.into());
                };
                let (subject, body) = format::mail(&Message::of_run(run));
                if !self.transport.confirms(term).await {
                    return Attempt::NotLeading;
                }
                let Some(_slot) = self.transport.side_place().await else {
                    return Attempt::NotLeading;
                };
                mailer.send(to, &subject, body).await
            }
        }
    }

    /// Records the attempt on the run, with the other attempts of the
    /// moment (see `record`); a record that does not commit (leadership
    /// lost) is only logged.
    fn record(&self, run: &Run, destination: &Destination, attempt: u32, outcome: &Attempt) {
        let delivery = AlertDelivery {
            channel: destination.channel(),
            target: destination.shown(),
            attempt,
            at: self.clock.now(),
            ok: *outcome == Attempt::Delivered,
            error: outcome.error(),
        }
        .bounded();
        self.transport
            .alert_records
            .push(run.id.clone(), delivery, self.proposer.clone());
    }
}

/// The destinations of a job's alert, webhooks first.
pub fn destinations(webhooks: &[Webhook], emails: &[String]) -> Vec<Destination> {
    webhooks
        .iter()
        .cloned()
        .map(Destination::Webhook)
        .chain(emails.iter().cloned().map(Destination::Email))
        .collect()
}
