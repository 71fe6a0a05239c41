//! Shared by the executor tests: a report receiver that stands in for the
//! scheduler (it decodes reports exactly as a scheduler would, on the
//! single-report route and, when asked, on the batch route) and a poll
//! with a deadline.

#![allow(dead_code)]

use std::{
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use actix_web::{dev::ServerHandle, web, App, HttpRequest, HttpResponse, HttpServer};
use chrono::Utc;
use node::executor::RunningExecutor;
use protocol::{
    dispatch::Task,
    dispatch::{
        DispatchAck, DispatchRequest, ReportBatch, ReportBatchAck, ReportResult, RunReport,
        MSGPACK, SIGNATURE_HEADER,
    },
    run::{RunStatus, ShardInfo},
    signature_v2::{self, Target},
};
use serde_json::Value;

pub const DEADLINE: Duration = Duration::from_secs(10);

/// Polls `check` every 20 ms until it yields a value or the deadline passes.
pub async fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn client() -> reqwest::Client {
    actors::http_client::build_client(&[]).expect("client")
}

/// A secret and the unix time to sign at; `None` sends no signature.
pub type Signing<'a> = Option<(&'a [u8], i64)>;

/// A protocol v2 signature of a request of `method` to `path` of the
/// executor at `endpoint`, with `body`, made at `at` with a fresh nonce.
pub fn sign_v2(
    secret: &[u8],
    at: i64,
    method: &str,
    endpoint: &str,
    path: &str,
    body: &[u8],
) -> String {
    let target = Target {
        method,
        path_and_query: path,
        audience: endpoint,
        body,
    };
    signature_v2::sign_with(
        &signature_v2::key(secret),
        &target,
        at,
        &signature_v2::new_nonce(),
    )
}

/// GETs `path` of the executor, signed with `secret`, as JSON.
pub async fn get_json_signed(
    exec: &RunningExecutor,
    path: &str,
    secret: &[u8],
) -> anyhow::Result<(u16, Value)> {
    let header = sign_v2(
        secret,
        Utc::now().timestamp(),
        "GET",
        &exec.endpoint,
        path,
        b"",
    );
    let response = client()
        .get(format!("{}{path}", exec.endpoint))
        .header(SIGNATURE_HEADER, header)
        .send()
        .await?;
    let code = response.status().as_u16();
    Ok((code, json_of(response).await?))
}

/// POSTs `req` as MessagePack to the executor, signed as `signing` says.
pub async fn dispatch_signed(
    exec: &RunningExecutor,
    req: &DispatchRequest,
    signing: Signing<'_>,
) -> anyhow::Result<reqwest::Response> {
    let body = protocol::wire::encode(req)?;
    let mut request = client()
        .post(format!("{}/v1/dispatch", exec.endpoint))
        .header(reqwest::header::CONTENT_TYPE, MSGPACK);
    if let Some((secret, at)) = signing {
        let header = sign_v2(secret, at, "POST", &exec.endpoint, "/v1/dispatch", &body);
        request = request.header(SIGNATURE_HEADER, header);
    }
    Ok(request.body(body).send().await?)
}

/// Dispatches `req` unsigned and expects `202` with an ack.
pub async fn dispatch(
    exec: &RunningExecutor,
    req: &DispatchRequest,
) -> anyhow::Result<DispatchAck> {
    let response = dispatch_signed(exec, req, None).await?;
    anyhow::ensure!(
        response.status() == 202,
        "dispatch answered {}",
        response.status()
    );
    json_of(response).await
}

pub async fn json_of<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
) -> anyhow::Result<T> {
    Ok(serde_json::from_slice(&response.bytes().await?)?)
}

pub async fn get_json(url: String) -> anyhow::Result<(u16, Value)> {
    let response = client().get(url).send().await?;
    let code = response.status().as_u16();
    Ok((code, json_of(response).await?))
}

/// A run of job `job-1` for `task`, reporting to `report_to`.
pub fn request(run_id: &str, task: Task, report_to: &Receiver) -> DispatchRequest {
    DispatchRequest {
        run_id: run_id.into(),
        job_id: "job-1".into(),
        namespace: "default".into(),
        scheduled_at: Utc::now(),
        attempt: 1,
        shard: ShardInfo {
            index: 0,
            count: 1,
            param: String::new(),
        },
        params: String::new(),
        task,
        timeout_ms: 20_000,
        report_to: vec![report_to.url.clone()],
        term: 0,
        expires_at: None,
        parent_run_ids: Vec::new(),
        parent_scheduled_at: None,
    }
}

/// How the receiver behaves.
#[derive(Default)]
pub struct ReceiverOptions {
    /// Final reports to answer 503 before accepting one.
    pub refuse_finals: usize,
    /// When set, reports must carry a valid signature.
    pub secret: Option<Vec<u8>>,
    /// Serve `POST /v1/internal/reports` as well as the single route.
    pub batches: bool,
    /// Answer 503 to every final report until [`Receiver::release_finals`].
    pub hold_finals: bool,
    /// Answer final reports with a 400, a refusal for good.
    pub reject_finals: bool,
}

/// What a scheduler's report endpoints saw.
#[derive(Default)]
pub struct Received {
    pub reports: Mutex<Vec<RunReport>>,
    options: ReceiverOptions,
    pub final_attempts: AtomicUsize,
    pub bad_signatures: AtomicUsize,
    /// Requests on the batch route, and reports they held.
    pub batch_requests: AtomicUsize,
    pub batched_reports: AtomicUsize,
    /// Final reports are answered 503 while set (see `hold_finals`).
    holding: AtomicBool,
}

pub struct Receiver {
    pub url: String,
    pub state: Arc<Received>,
    pub server: ServerHandle,
}

impl Receiver {
    pub async fn start(refuse_finals: usize, secret: Option<&[u8]>) -> anyhow::Result<Self> {
        Self::with(ReceiverOptions {
            refuse_finals,
            secret: secret.map(<[u8]>::to_vec),
            ..ReceiverOptions::default()
        })
        .await
    }

    pub async fn with(options: ReceiverOptions) -> anyhow::Result<Self> {
        let batches = options.batches;
        let state = Arc::new(Received {
            holding: AtomicBool::new(options.hold_finals),
            options,
            ..Received::default()
        });
        let data = web::Data::from(state.clone());
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let url = format!("http://{}", listener.local_addr()?);
        let server = HttpServer::new(move || {
            let app = App::new()
                .app_data(data.clone())
                .route("/v1/internal/runs/{id}/report", web::post().to(receive));
            if batches {
                app.route("/v1/internal/reports", web::post().to(receive_batch))
            } else {
                app
            }
        })
        .workers(1)
        .disable_signals()
        .listen(listener)?
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Ok(Self {
            url,
            state,
            server: handle,
        })
    }

    /// Final reports are acknowledged from now on (see `hold_finals`).
    pub fn release_finals(&self) {
        self.state.holding.store(false, Ordering::SeqCst);
    }

    /// Final reports received so far, acknowledged or not.
    pub fn final_attempts(&self) -> usize {
        self.state.final_attempts.load(Ordering::SeqCst)
    }

    pub fn reports(&self, run_id: &str) -> Vec<RunReport> {
        let reports = self.state.reports.lock().expect("receiver lock");
        reports
            .iter()
            .filter(|r| r.run_id == run_id)
            .cloned()
            .collect()
    }

    pub fn finals(&self, run_id: &str) -> Vec<RunReport> {
        self.reports(run_id)
            .into_iter()
            .filter(|r| r.status.is_terminal())
            .collect()
    }

    pub async fn final_report(&self, run_id: &str) -> RunReport {
        wait_for(&format!("the final report of {run_id}"), || {
            self.finals(run_id).into_iter().next()
        })
        .await
    }

    pub async fn running_report(&self, run_id: &str) {
        wait_for(&format!("the running report of {run_id}"), || {
            self.reports(run_id)
                .iter()
                .any(|r| r.status == RunStatus::Running)
                .then_some(())
        })
        .await;
    }
}

fn signature_ok(state: &Received, req: &HttpRequest, body: &[u8]) -> bool {
    let Some(secret) = &state.options.secret else {
        return true;
    };
    let header = req
        .headers()
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok());
    // Signed for this receiver: the executor posts to the URL it was given.
    let host = req.connection_info().host().to_string();
    let target = Target {
        method: req.method().as_str(),
        path_and_query: req.uri().path_and_query().map_or("/", |p| p.as_str()),
        audience: &format!("http://{host}"),
        body,
    };
    let key = signature_v2::key(secret);
    let ok = signature_v2::verify(&key, header, &target, Utc::now().timestamp(), 300).is_ok();
    if !ok {
        state.bad_signatures.fetch_add(1, Ordering::SeqCst);
    }
    ok
}

/// Whether to answer 503 to this report (the first `refuse_finals` finals,
/// and every final while held).
fn refused(state: &Received, report: &RunReport) -> bool {
    report.status.is_terminal()
        && (state.final_attempts.fetch_add(1, Ordering::SeqCst) < state.options.refuse_finals
            || state.holding.load(Ordering::SeqCst))
}

async fn receive(
    state: web::Data<Received>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    if !signature_ok(&state, &req, &body) {
        return HttpResponse::Unauthorized().finish();
    }
    let Ok(report) = protocol::wire::decode::<RunReport>(&body) else {
        return HttpResponse::BadRequest().body("undecodable report");
    };
    if report.run_id != path.into_inner() {
        return HttpResponse::BadRequest().body("run id differs from the path");
    }
    if state.options.reject_finals && report.status.is_terminal() {
        state.final_attempts.fetch_add(1, Ordering::SeqCst);
        return HttpResponse::BadRequest().body("this report is refused for good");
    }
    if refused(&state, &report) {
        return HttpResponse::ServiceUnavailable().body("not yet");
    }
    state.reports.lock().expect("receiver lock").push(report);
    HttpResponse::Ok().finish()
}

async fn receive_batch(
    state: web::Data<Received>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    if !signature_ok(&state, &req, &body) {
        return HttpResponse::Unauthorized().finish();
    }
    let Ok(batch) = protocol::wire::decode::<ReportBatch>(&body) else {
        return HttpResponse::BadRequest().body("undecodable batch");
    };
    state.batch_requests.fetch_add(1, Ordering::SeqCst);
    state
        .batched_reports
        .fetch_add(batch.reports.len(), Ordering::SeqCst);
    if batch.reports.iter().any(|report| refused(&state, report)) {
        return HttpResponse::ServiceUnavailable().body("not yet");
    }
    let results = vec![ReportResult::Recorded; batch.reports.len()];
    state
        .reports
        .lock()
        .expect("receiver lock")
        .extend(batch.reports);
    let Ok(body) = protocol::wire::encode(&ReportBatchAck { results }) else {
        return HttpResponse::InternalServerError().finish();
    };
    HttpResponse::Ok().content_type(MSGPACK).body(body)
}
