//! HTTP-target jobs are called at their slot, never before it (issue 14,
//! point 4): a job scheduled for 00:00:00 must not be called at
//! 23:59:59.97.
//!
//! `cronmesh dev` runs 250 jobs on `* * * * * *` whose HTTP target is a
//! receiver in this test process, at `/hit/<job id>`. A call carries
//! nothing that names its slot, so after the window every call of a job
//! is matched to the job's runs, read from the API: the k-th call (in
//! time order) to the k-th run (by `scheduled_at`). That pairing finds a
//! one-to-one match with every call at or after its run's slot whenever
//! one exists, so a call it pairs with a later `scheduled_at` was made
//! early (or is a second call of a slot, which is as wrong). The test also
//! checks that every slot of the window has a run that was called and
//! answered. Lateness (call arrival − `scheduled_at`) is printed, never
//! asserted.

use std::{
    collections::{BTreeMap, HashMap},
    net::TcpListener,
    sync::{Arc, Mutex},
    time::Duration,
};

use actix_web::{dev::ServerHandle, web, App, HttpResponse, HttpServer};
use chrono::{DateTime, DurationRound, SecondsFormat, TimeDelta, Utc};
use cronmesh_tests::{api::Api, process};
use protocol::{api::Page, Run, RunStatus};
use serde_json::{json, Value};

/// HTTP-target jobs, all firing every second.
const JOBS: usize = 250;
/// Seconds of slots checked.
const WINDOW: i64 = 12;
/// Seconds from the jobs' creation to the window's first slot.
const SETTLE: i64 = 2;
/// Seconds after the window before the runs are read.
const DRAIN: i64 = 2;
/// Lines of detail a failure message shows per kind of problem.
const SHOWN: usize = 12;

fn job_id(i: usize) -> String {
    format!("http-{i}")
}

/// Every call the receiver got: job id (from the path) -> arrival times.
type Arrivals = Arc<Mutex<HashMap<String, Vec<DateTime<Utc>>>>>;

async fn hit(job: web::Path<String>, arrivals: web::Data<Arrivals>) -> HttpResponse {
    let at = Utc::now();
    arrivals
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(job.into_inner())
        .or_default()
        .push(at);
    HttpResponse::Ok().finish()
}

/// An HTTP receiver on a free loopback port answering 200 at once to any
/// method on `/hit/{job}`, over keep-alive connections (the scheduler
/// holds hundreds of them); returns its base URL.
fn start_receiver(arrivals: Arrivals) -> (String, ServerHandle) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the receiver");
    let base = format!("http://{}", listener.local_addr().expect("local address"));
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(arrivals.clone()))
            .route("/hit/{job}", web::route().to(hit))
    })
    .workers(2)
    .backlog(4096)
    .keep_alive(Duration::from_secs(60))
    .listen(listener)
    .expect("serve the receiver")
    .run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    (base, handle)
}

/// The runs of the test's jobs scheduled in `[since, until)`, paged.
async fn read_runs(api: &Api, since: DateTime<Utc>, until: DateTime<Utc>) -> Vec<Run> {
    let mut runs = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!(
            "/v1/runs?since={}&until={}&limit=1000",
            since.to_rfc3339_opts(SecondsFormat::Nanos, true),
            until.to_rfc3339_opts(SecondsFormat::Nanos, true)
        );
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let (status, body) = api.get(&path).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        let page: Page<Run> = serde_json::from_value(body).expect("a page of runs");
        runs.extend(
            page.items
                .into_iter()
                .filter(|r| r.job_id.starts_with("http-")),
        );
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return runs,
        }
    }
}

/// One call matched to the run it was for.
struct Call {
    job: String,
    scheduled_at: DateTime<Utc>,
    arrived_at: DateTime<Utc>,
}

impl Call {
    /// Arrival − slot in milliseconds; negative when early.
    fn lateness_ms(&self) -> f64 {
        (self.arrived_at - self.scheduled_at)
            .num_nanoseconds()
            .unwrap_or(i64::MAX) as f64
            / 1e6
    }
}

/// What matching the calls to the runs found.
#[derive(Default)]
struct Matched {
    calls: Vec<Call>,
    /// Runs scheduled before the window's end that did not succeed.
    unsuccessful: Vec<String>,
    /// Slots of the window with no run, or with more than one.
    slots_not_once: Vec<String>,
    /// Jobs with more succeeded runs than calls.
    runs_without_call: Vec<String>,
}

/// Pairs, per job, the k-th call with the k-th succeeded run (both in
/// time order). `runs` are every run of the jobs scheduled before `end`,
/// from the first; `arrivals` every call so far (calls of slots from
/// `end` on come after those and stay unpaired).
fn match_calls(
    runs: &[Run],
    arrivals: &HashMap<String, Vec<DateTime<Utc>>>,
    (start, end): (DateTime<Utc>, DateTime<Utc>),
) -> Matched {
    let mut out = Matched::default();
    let mut by_job: BTreeMap<&str, Vec<&Run>> = BTreeMap::new();
    for run in runs {
        by_job.entry(&run.job_id).or_default().push(run);
    }
    for i in 0..JOBS {
        let job = job_id(i);
        let mut runs = by_job.remove(job.as_str()).unwrap_or_default();
        runs.sort_by_key(|r| r.scheduled_at);
        let mut slot = start;
        while slot < end {
            let n = runs.iter().filter(|r| r.scheduled_at == slot).count();
            if n != 1 {
                out.slots_not_once
                    .push(format!("{job} slot {}: {n} runs", clock(slot)));
            }
            slot += TimeDelta::seconds(1);
        }
        for run in runs.iter().filter(|r| r.status != RunStatus::Succeeded) {
            out.unsuccessful.push(format!(
                "{job} slot {}: {} ({})",
                clock(run.scheduled_at),
                run.status.as_str(),
                run.error.as_deref().unwrap_or("")
            ));
        }
        let called: Vec<DateTime<Utc>> = runs
            .iter()
            .filter(|r| r.status == RunStatus::Succeeded)
            .map(|r| r.scheduled_at)
            .collect();
        let mut arrived = arrivals.get(&job).cloned().unwrap_or_default();
        arrived.sort_unstable();
        if arrived.len() < called.len() {
            out.runs_without_call.push(format!(
                "{job}: {} runs succeeded, {} calls arrived",
                called.len(),
                arrived.len()
            ));
        }
        out.calls
            .extend(called.iter().zip(&arrived).map(|(s, a)| Call {
                job: job.clone(),
                scheduled_at: *s,
                arrived_at: *a,
            }));
    }
    out
}

/// `HH:MM:SS.mmm` of a UTC time.
fn clock(at: DateTime<Utc>) -> String {
    at.format("%H:%M:%S%.3f").to_string()
}

/// The value at nearest rank `p` of sorted values.
fn rank(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

/// Up to [`SHOWN`] lines and how many there were.
fn listing(what: &str, lines: &[String]) -> String {
    if lines.is_empty() {
        return String::new();
    }
    let shown: Vec<&str> = lines.iter().take(SHOWN).map(String::as_str).collect();
    format!(
        "\n{} {what}:\n  {}{}",
        lines.len(),
        shown.join("\n  "),
        if lines.len() > SHOWN { "\n  ..." } else { "" }
    )
}

#[actix_web::test]
async fn http_targets_are_never_called_before_their_slot() {
    let arrivals: Arrivals = Arc::default();
    let (receiver, server) = start_receiver(arrivals.clone());
    let dir = tempfile::tempdir().expect("temp dir");
    let node = process::dev(dir.path(), &[]);
    let api = Api::new(node.url.clone());

    let since = Utc::now()
        .duration_trunc(TimeDelta::seconds(1))
        .expect("a whole second");
    let jobs: Vec<Value> = (0..JOBS)
        .map(|i| {
            json!({
                "id": job_id(i),
                "schedule": "* * * * * *",
                "target": {"type": "http", "url": format!("{receiver}/hit/{}", job_id(i)), "method": "GET"},
                "timeout": "10s",
            })
        })
        .collect();
    let (status, body) = api.post("/v1/jobs", Value::Array(jobs)).await;
    assert_eq!(status, 201, "creating {JOBS} jobs: {body}");
    let start = (Utc::now() + TimeDelta::seconds(SETTLE))
        .duration_trunc(TimeDelta::seconds(1))
        .expect("a whole second")
        + TimeDelta::seconds(1);
    let end = start + TimeDelta::seconds(WINDOW);
    eprintln!(
        "{JOBS} HTTP-target jobs created; checking the slots from {} to {} (UTC)",
        clock(start),
        clock(end)
    );
    let wake = end + TimeDelta::seconds(DRAIN) - Utc::now();
    tokio::time::sleep(wake.to_std().unwrap_or_default()).await;

    // Runs first, calls second: a run read as succeeded was answered, so
    // its call is already recorded.
    let runs = read_runs(&api, since, end).await;
    let arrivals = arrivals.lock().unwrap_or_else(|p| p.into_inner()).clone();
    server.stop(false).await;
    let matched = match_calls(&runs, &arrivals, (start, end));

    let in_window: Vec<&Call> = matched
        .calls
        .iter()
        .filter(|c| start <= c.scheduled_at && c.scheduled_at < end)
        .collect();
    let mut lateness: Vec<f64> = in_window.iter().map(|c| c.lateness_ms()).collect();
    lateness.sort_by(f64::total_cmp);
    let mut early: Vec<&Call> = matched
        .calls
        .iter()
        .filter(|c| c.arrived_at < c.scheduled_at)
        .collect();
    early.sort_by(|a, b| a.lateness_ms().total_cmp(&b.lateness_ms()));
    let mut earliness: Vec<f64> = early.iter().map(|c| -c.lateness_ms()).collect();
    earliness.sort_by(f64::total_cmp);
    let early_in_window = early
        .iter()
        .filter(|c| start <= c.scheduled_at && c.scheduled_at < end)
        .count();
    eprintln!(
        "{} calls of {} runs matched, {} of them in the window of {} slots",
        matched.calls.len(),
        runs.len(),
        in_window.len(),
        JOBS as i64 * WINDOW
    );
    eprintln!(
        "lateness in the window (arrival − scheduled_at): min {:.2} ms, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        lateness.first().copied().unwrap_or(f64::NAN),
        rank(&lateness, 0.50),
        rank(&lateness, 0.99),
        lateness.last().copied().unwrap_or(f64::NAN),
    );
    if !early.is_empty() {
        eprintln!(
            "{} calls early ({early_in_window} in the window): median {:.2} ms early, at most {:.2} ms",
            early.len(),
            rank(&earliness, 0.50),
            earliness.last().copied().unwrap_or(f64::NAN),
        );
    }

    let early_lines: Vec<String> = early
        .iter()
        .map(|c| {
            format!(
                "{} slot {}: called at {}, {:.2} ms early",
                c.job,
                clock(c.scheduled_at),
                clock(c.arrived_at),
                -c.lateness_ms()
            )
        })
        .collect();
    let problems = [
        listing(
            &format!(
                "of {} calls ({early_in_window} of {} in the window) arrived before their slot \
                 (or are a second call of a slot), earliest first",
                matched.calls.len(),
                in_window.len()
            ),
            &early_lines,
        ),
        listing("slots without exactly one run", &matched.slots_not_once),
        listing("runs that did not succeed", &matched.unsuccessful),
        listing(
            "jobs with runs that were never called",
            &matched.runs_without_call,
        ),
    ]
    .concat();
    assert!(
        problems.is_empty(),
        "HTTP-target calls must arrive at or after their slot, once per slot:{problems}"
    );
    assert!(
        in_window.len() as i64 >= JOBS as i64 * WINDOW,
        "only {} calls matched the window's {} slots",
        in_window.len(),
        JOBS as i64 * WINDOW
    );
}
