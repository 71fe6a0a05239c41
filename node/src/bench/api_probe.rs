//! How the admin API answers while the cluster fires: during the window a
//! task of its own, on a keep-alive client of its own, calls the leader
//! about [`PER_SECOND`] times a second, one request at a time and each
//! kind in turn: `GET /healthz`, `GET /v1/jobs?limit=10` and `POST
//! /v1/jobs` of a new idle job (`probe-N`, disabled, on a schedule that
//! does not fire during the bench). Only the bench's `bench-N` jobs count
//! in the slot figures, so the probe's jobs are in none of them.
//!
//! The samples are shared with the bench while the probe runs: the soak
//! takes the ones answered so far at the end of each interval
//! ([`Probe::take`]), and [`Probe::finish`] sums up those left.

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use anyhow::Context;
use serde_json::json;
use tokio::{task::JoinHandle, time::MissedTickBehavior};

use super::{
    analysis::percentiles,
    clock::{now, Nanos},
};

/// Requests a second, all kinds together.
pub const PER_SECOND: u32 = 20;

/// How long one request may take before it counts as an error.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// The probe jobs' schedule: midnight on the 1st of January, never inside
/// a bench (and the jobs are disabled besides).
pub const PROBE_SCHEDULE: &str = "0 0 1 1 *";

/// The longest error text kept: an answer's body may be a page long.
const ERROR_TEXT: usize = 200;

/// The id of the probe's `n`-th job; not a `bench-N` id, so no figure of
/// the bench's jobs counts it.
pub fn probe_job_id(n: u64) -> String {
    format!("probe-{n}")
}

/// The kinds of request, in the order the probe sends them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Health,
    List,
    Create,
}

const KINDS: [Kind; 3] = [Kind::Health, Kind::List, Kind::Create];

/// What the requests of one kind gave.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Samples {
    /// Time from sending to the whole answer read, of each request
    /// answered with a 2xx.
    pub ok: Vec<Duration>,
    /// Requests answered otherwise or not within [`TIMEOUT`].
    pub errors: u64,
    /// The first of those errors, to say what went wrong.
    pub first_error: Option<String>,
}

impl Samples {
    fn note(&mut self, result: Result<Duration, String>) {
        match result {
            Ok(took) => self.ok.push(took),
            Err(error) => {
                self.errors += 1;
                if self.first_error.is_none() {
                    self.first_error = Some(error);
                }
            }
        }
    }
}

/// The figures of one kind of request.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct KindFigures {
    /// Requests sent.
    pub count: u64,
    /// Answered with a status other than 2xx, or not within 5 s.
    pub errors: u64,
    /// The first error's text (status and body, or why no answer came).
    pub first_error: Option<String>,
    /// Latency of the requests answered 2xx (errors left out: a refused
    /// connection is quick and says nothing of the API's speed). Null
    /// when none was.
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

impl KindFigures {
    /// Counts and percentiles of `samples`.
    pub fn of(samples: &Samples) -> Self {
        let mut nanos: Vec<Nanos> = samples.ok.iter().map(|d| d.as_nanos() as Nanos).collect();
        nanos.sort_unstable();
        let summary = percentiles(&nanos);
        Self {
            count: samples.ok.len() as u64 + samples.errors,
            errors: samples.errors,
            first_error: samples.first_error.clone(),
            p50_ms: summary.map(|l| l.p50),
            p99_ms: summary.map(|l| l.p99),
            max_ms: summary.map(|l| l.max),
        }
    }

    /// The table's text of this kind.
    pub fn text(&self) -> String {
        let times = match (self.p50_ms, self.p99_ms, self.max_ms) {
            (Some(p50), Some(p99), Some(max)) => {
                format!("p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms")
            }
            _ => "no request succeeded".to_string(),
        };
        let mut text = format!("{} requests, {} errors; {times}", self.count, self.errors);
        if let Some(error) = &self.first_error {
            text.push_str(&format!(" (first error: {error})"));
        }
        text
    }
}

/// The API's latency over the window, per kind of request.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct ApiLatency {
    /// `GET /healthz`: the HTTP server and its workers alone.
    pub health: KindFigures,
    /// `GET /v1/jobs?limit=10`: a read of the job store.
    pub list: KindFigures,
    /// `POST /v1/jobs`: a write, through the log (Raft with 3 nodes).
    pub create: KindFigures,
}

/// The latency of a stretch of the probe (a soak's interval): every
/// kind of request together, and each kind.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct StretchLatency {
    /// All the requests of the stretch, whatever their kind.
    pub all: KindFigures,
    pub by_kind: ApiLatency,
}

/// All the probe's samples, by kind.
#[derive(Debug, Default)]
struct AllSamples {
    health: Samples,
    list: Samples,
    create: Samples,
}

impl AllSamples {
    fn of(&mut self, kind: Kind) -> &mut Samples {
        match kind {
            Kind::Health => &mut self.health,
            Kind::List => &mut self.list,
            Kind::Create => &mut self.create,
        }
    }

    fn figures(&self) -> ApiLatency {
        ApiLatency {
            health: KindFigures::of(&self.health),
            list: KindFigures::of(&self.list),
            create: KindFigures::of(&self.create),
        }
    }

    /// The samples of every kind as one: the first error is the first of
    /// health, list and create that has one.
    fn merged(&self) -> Samples {
        let kinds = [&self.health, &self.list, &self.create];
        Samples {
            ok: kinds.iter().flat_map(|k| k.ok.iter().copied()).collect(),
            errors: kinds.iter().map(|k| k.errors).sum(),
            first_error: kinds.iter().find_map(|k| k.first_error.clone()),
        }
    }
}

/// The probe's task; dropped, it stops.
pub struct Probe {
    task: Option<JoinHandle<()>>,
    /// What the task noted and nobody took yet.
    samples: Arc<Mutex<AllSamples>>,
}

impl Drop for Probe {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

impl Probe {
    /// Starts probing the node at `api_url` now, until `until`; the probe
    /// jobs run what `target(id)` gives (the bench jobs' target).
    pub fn start(
        api_url: &str,
        target: impl Fn(&str) -> serde_json::Value + Send + 'static,
        until: Nanos,
    ) -> anyhow::Result<Self> {
        let client = actors::http_client::build_client(&[])
            .map_err(anyhow::Error::msg)
            .context("the API probe's client")?;
        let api_url = api_url.to_string();
        let samples = Arc::new(Mutex::new(AllSamples::default()));
        let noted = samples.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1) / PER_SECOND);
            tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
            let mut created = 0;
            for kind in KINDS.iter().cycle() {
                tick.tick().await;
                if now() >= until {
                    break;
                }
                let request = match kind {
                    Kind::Health => client.get(format!("{api_url}/healthz")),
                    Kind::List => client.get(format!("{api_url}/v1/jobs?limit=10")),
                    Kind::Create => {
                        let id = probe_job_id(created);
                        created += 1;
                        let job = json!({
                            "id": id,
                            "schedule": PROBE_SCHEDULE,
                            "enabled": false,
                            "target": target(&id),
                            "timeout": "30s",
                        });
                        client
                            .post(format!("{api_url}/v1/jobs"))
                            .header("content-type", "application/json")
                            .body(job.to_string())
                    }
                };
                let result = timed(request).await;
                lock(&noted).of(*kind).note(result);
            }
        });
        Ok(Self {
            task: Some(task),
            samples,
        })
    }

    /// The figures of the requests answered since the last take (or the
    /// start), which are then forgotten. A request in flight counts in
    /// the next take.
    pub fn take(&self) -> StretchLatency {
        let taken = std::mem::take(&mut *lock(&self.samples));
        StretchLatency {
            all: KindFigures::of(&taken.merged()),
            by_kind: taken.figures(),
        }
    }

    /// Waits for the probe to end (at `until`) and answers the figures of
    /// the requests not taken; `None` if its task failed.
    pub async fn finish(mut self) -> Option<ApiLatency> {
        self.task.take()?.await.ok()?;
        let left = std::mem::take(&mut *lock(&self.samples));
        Some(left.figures())
    }
}

/// The shared samples; a task that panicked while it held them left
/// whole samples, so a poisoned lock is taken all the same.
fn lock(samples: &Mutex<AllSamples>) -> std::sync::MutexGuard<'_, AllSamples> {
    samples.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Sends `request` and reads the whole answer: how long that took, or
/// why it is an error.
async fn timed(request: reqwest::RequestBuilder) -> Result<Duration, String> {
    let started = Instant::now();
    let response = request.timeout(TIMEOUT).send().await.map_err(describe)?;
    let status = response.status();
    let body = response.bytes().await.map_err(describe)?;
    let took = started.elapsed();
    if status.is_success() {
        Ok(took)
    } else {
        Err(cut(&format!(
            "{status}: {}",
            String::from_utf8_lossy(&body).trim()
        )))
    }
}

/// A request's failure in words, with its causes (reqwest's own text
/// names the URL but not what went wrong).
fn describe(error: reqwest::Error) -> String {
    if error.is_timeout() {
        return format!("no answer within {} s", TIMEOUT.as_secs());
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    cut(&text)
}

/// `text` cut to [`ERROR_TEXT`] bytes, on a character boundary.
fn cut(text: &str) -> String {
    protocol::run::head(text, ERROR_TEXT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_of_samples() {
        let mut samples = Samples::default();
        for ms in (1..=100).rev() {
            samples.note(Ok(Duration::from_millis(ms)));
        }
        samples.note(Err("503 Service Unavailable: electing".into()));
        samples.note(Err("no answer within 5 s".into()));
        let figures = KindFigures::of(&samples);
        assert_eq!((figures.count, figures.errors), (102, 2));
        assert_eq!(
            figures.first_error.as_deref(),
            Some("503 Service Unavailable: electing")
        );
        assert_eq!(figures.p50_ms, Some(50.0));
        assert_eq!(figures.p99_ms, Some(99.0));
        assert_eq!(figures.max_ms, Some(100.0));
        assert!(figures
            .text()
            .starts_with("102 requests, 2 errors; p50 50.0 ms"));
    }

    #[test]
    fn kinds_merge_into_one_stretch() {
        let mut all = AllSamples::default();
        all.health.note(Ok(Duration::from_millis(1)));
        all.list.note(Ok(Duration::from_millis(3)));
        all.list.note(Err("500: list failed".into()));
        all.create.note(Ok(Duration::from_millis(2)));
        all.create.note(Err("503: electing".into()));
        let merged = KindFigures::of(&all.merged());
        assert_eq!((merged.count, merged.errors), (5, 2));
        assert_eq!(merged.first_error.as_deref(), Some("500: list failed"));
        assert_eq!((merged.p50_ms, merged.max_ms), (Some(2.0), Some(3.0)));
        let by_kind = all.figures();
        assert_eq!(by_kind.health.count, 1);
        assert_eq!(by_kind.create.errors, 1);
    }

    #[test]
    fn no_success_no_latency() {
        let none = KindFigures::of(&Samples::default());
        assert_eq!((none.count, none.errors, none.p50_ms), (0, 0, None));
        assert_eq!(none.text(), "0 requests, 0 errors; no request succeeded");
        let mut failed = Samples::default();
        failed.note(Err("connection refused".into()));
        let figures = KindFigures::of(&failed);
        assert_eq!(
            (figures.count, figures.errors, figures.max_ms),
            (1, 1, None)
        );
        assert!(figures
            .text()
            .ends_with("(first error: connection refused)"));
    }

    #[tokio::test]
    async fn a_refused_request_says_why() -> anyhow::Result<()> {
        // A port just freed: nobody listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let client = actors::http_client::build_client(&[]).map_err(anyhow::Error::msg)?;
        let request = client.get(format!("http://127.0.0.1:{port}/healthz"));
        let error = timed(request).await.err().unwrap_or_default();
        assert!(
            error.contains("127.0.0.1") && error.matches(": ").count() >= 1,
            "{error}"
        );
        Ok(())
    }

    #[test]
    fn errors_are_cut_on_a_character() {
        let long = "é".repeat(ERROR_TEXT);
        let cut = cut(&long);
        assert!(cut.len() <= ERROR_TEXT && cut.chars().all(|c| c == 'é'));
        assert_eq!(super::cut("short"), "short");
        assert!(crate::bench::load::job_index(&probe_job_id(3)).is_none());
    }

    #[test]
    fn the_probe_job_is_accepted_and_never_fires() -> anyhow::Result<()> {
        let schedule =
            protocol::schedule::Schedule::parse(PROBE_SCHEDULE).map_err(anyhow::Error::msg)?;
        let span = super::super::analysis::Span {
            start: now(),
            end: now() + 86_400 * super::super::clock::SECOND,
        };
        // Only on the 1st of January could it fire within a day.
        let on_new_year = chrono::Datelike::ordinal(&chrono::Utc::now()) >= 365;
        assert!(on_new_year || super::super::analysis::expected_slots(&schedule, span).is_empty());
        Ok(())
    }
}
