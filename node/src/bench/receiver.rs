//! `--target http`: the bench's own HTTP receiver, which the jobs' HTTP
//! targets call (`/hit/{job id}`, any method). It answers 200 at once and
//! notes when each call arrived. It serves on threads of its own, so the
//! bench's own work never delays an answer or a timestamp.

use std::{
    net::TcpListener,
    sync::{mpsc, Arc, Mutex},
    time::Duration,
};

use actix_web::{dev::ServerHandle, web, App, HttpResponse, HttpServer};
use anyhow::Context;

use super::clock::{now, Nanos};

/// Where the calls go; the job id follows.
const PATH: &str = "/hit/";

/// Threads answering calls: a slot's calls arrive together, over
/// hundreds of kept-alive connections.
const WORKERS: usize = 2;

/// One call as the receiver got it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arrival {
    pub job_id: String,
    pub received_at: Nanos,
}

/// Everything received so far.
#[derive(Clone, Debug, Default)]
pub struct Received {
    pub arrivals: Vec<Arrival>,
    /// Requests to any other path.
    pub other_requests: u64,
}

type Shared = Arc<Mutex<Received>>;

pub struct Receiver {
    base_url: String,
    received: Shared,
    server: ServerHandle,
}

impl Receiver {
    /// Listens on a free loopback port and serves until [`stop`](Self::stop).
    pub fn start() -> anyhow::Result<Self> {
        let listener =
            TcpListener::bind("127.0.0.1:0").context("cannot listen for the HTTP targets")?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let received = Shared::default();
        let shared = received.clone();
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("bench-receiver".into())
            .spawn(move || serve(listener, shared, tx))
            .context("cannot start the receiver's thread")?;
        let server = rx
            .recv()
            .context("the receiver's thread ended before it served")??;
        Ok(Self {
            base_url,
            received,
            server,
        })
    }

    /// The URL job `job_id`'s HTTP target calls.
    pub fn call_url(&self, job_id: &str) -> String {
        format!("{}{PATH}{job_id}", self.base_url)
    }

    /// A copy of what was received so far.
    pub fn received(&self) -> Received {
        self.received
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Stops serving, closing every connection.
    pub async fn stop(self) {
        self.server.stop(false).await;
    }
}

/// The receiver's thread: a runtime of its own for the server, whose
/// handle (or why it could not serve) goes back through `started`.
fn serve(
    listener: TcpListener,
    shared: Shared,
    started: mpsc::Sender<anyhow::Result<ServerHandle>>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            let _ = started.send(Err(e.into()));
            return;
        }
    };
    runtime.block_on(async move {
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(shared.clone()))
                .route(&format!("{PATH}{{job}}"), web::route().to(hit))
                .default_service(web::to(other))
        })
        .workers(WORKERS)
        .backlog(4096)
        .keep_alive(Duration::from_secs(75))
        // The bench handles Ctrl-C itself.
        .disable_signals()
        .shutdown_timeout(1)
        .listen(listener);
        match server {
            Ok(server) => {
                let server = server.run();
                let _ = started.send(Ok(server.handle()));
                let _ = server.await;
            }
            Err(e) => {
                let _ = started.send(Err(
                    anyhow::Error::new(e).context("cannot serve the HTTP targets")
                ));
            }
        }
    });
}

async fn hit(job: web::Path<String>, shared: web::Data<Shared>) -> HttpResponse {
    let received_at = now();
    let arrival = Arrival {
        job_id: job.into_inner(),
        received_at,
    };
    shared
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .arrivals
        .push(arrival);
    HttpResponse::Ok().finish()
}

async fn other(shared: web::Data<Shared>) -> HttpResponse {
    shared
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .other_requests += 1;
    HttpResponse::NotFound().finish()
}

#[cfg(test)]
mod tests {
    use super::{super::api::Admin, *};

    #[tokio::test]
    async fn notes_every_call_and_answers_200() -> anyhow::Result<()> {
        let receiver = Receiver::start()?;
        let admin = Admin::new();
        let before = now();
        for job in ["bench-1", "bench-2", "bench-1"] {
            let status = admin.status(&receiver.call_url(job)).await;
            assert_eq!(status.map(|s| s.as_u16()), Some(200));
        }
        let base = receiver.call_url("").replace(PATH, "/");
        assert_eq!(
            admin
                .status(&format!("{base}elsewhere"))
                .await
                .map(|s| s.as_u16()),
            Some(404)
        );
        let received = receiver.received();
        let jobs: Vec<&str> = received
            .arrivals
            .iter()
            .map(|a| a.job_id.as_str())
            .collect();
        assert_eq!(jobs, ["bench-1", "bench-2", "bench-1"]);
        assert!(received
            .arrivals
            .iter()
            .all(|a| before <= a.received_at && a.received_at <= now()));
        assert_eq!(received.other_requests, 1);
        receiver.stop().await;
        Ok(())
    }
}
