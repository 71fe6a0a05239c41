//! `GET /v1/events`: server-sent events. Each event is
//! `event: run|job|leader|executor` with its JSON as `data:`; a client
//! that falls behind gets `event: lagged` with the number it missed, and
//! a comment line every [`KEEPALIVE`] keeps proxies from closing the stream.
//! `?job=ID` (with `?namespace=`) narrows run and job events to one job.
//! A stream opens with the current leader.

use std::{sync::Arc, time::Duration};

use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use protocol::JobKey;
use serde::Deserialize;
use tokio::sync::broadcast::{error::RecvError, Receiver};

use super::{error::ApiResult, input::query, AppState};
use crate::events::{Event, LeaderChange};

const KEEPALIVE: Duration = Duration::from_secs(15);
/// How long a browser waits before reconnecting a dropped stream.
const RETRY_MS: u64 = 2000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsQuery {
    job: Option<String>,
    namespace: Option<String>,
}

/// What one stream sends next.
struct Stream {
    events: Receiver<Arc<Event>>,
    job: Option<JobKey>,
    keepalive: tokio::time::Interval,
    closed: std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>,
}

impl Stream {
    async fn next_chunk(&mut self) -> Option<String> {
        loop {
            tokio::select! {
                () = &mut self.closed => return None,
                _ = self.keepalive.tick() => return Some(": keepalive\n\n".into()),
                received = self.events.recv() => match received {
                    Ok(event) => {
                        if self.job.as_ref().is_none_or(|job| event.is_about(job)) {
                            return Some(event.to_sse());
                        }
                    }
                    Err(RecvError::Lagged(missed)) => {
                        return Some(format!("event: lagged\ndata: {{\"missed\":{missed}}}\n\n"))
                    }
                    Err(RecvError::Closed) => return None,
                },
            }
        }
    }
}

pub async fn events(state: web::Data<AppState>, req: HttpRequest) -> ApiResult<HttpResponse> {
    let q: EventsQuery = query(&req)?;
    let job = q.job.map(|id| {
        JobKey::new(
            q.namespace
                .unwrap_or_else(|| protocol::job::DEFAULT_NAMESPACE.to_string()),
            id,
        )
    });
    let mut keepalive = tokio::time::interval(KEEPALIVE);
    keepalive.reset();
    let stream = Stream {
        events: state.events.subscribe(),
        job,
        keepalive,
        closed: Box::pin(state.events.closed()),
    };
    // A new client learns who leads at once, not at the next election.
    let leader = state.consensus.leader_state();
    let current = Event::Leader(LeaderChange {
        leader_id: leader.leader_id,
        term: leader.term,
    });
    let opening = futures::stream::once(async move {
        let hello = format!(": connected\nretry: {RETRY_MS}\n\n{}", current.to_sse());
        Ok::<_, actix_web::Error>(Bytes::from(hello))
    });
    let body = futures::stream::unfold(stream, |mut stream| async move {
        let chunk = stream.next_chunk().await?;
        Some((Ok::<_, actix_web::Error>(Bytes::from(chunk)), stream))
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("cache-control", "no-cache"))
        .insert_header(("x-accel-buffering", "no"))
        .streaming(futures::StreamExt::chain(opening, body)))
}
