//! In-process handlers: Rust functions registered by name that serve
//! `{"type": "handler", "handler": NAME}` tasks inside the agent's own
//! process, with the same guarantees as shell runs (one call per run id,
//! timeout and kill, panics contained, reports retried).

use std::{
    any::Any, collections::BTreeMap, fmt, future::Future, panic::AssertUnwindSafe, sync::Arc,
    time::Duration,
};

use chrono::{DateTime, Utc};
use futures::{future::BoxFuture, FutureExt};
use protocol::dispatch::DispatchRequest;
pub use protocol::run::ShardInfo;
use tokio::sync::watch;

use super::{
    output::SharedOutput,
    process::format_duration,
    runs::{Outcome, StopReason},
};

/// What a handler returns: `Ok(output)` makes the run `succeeded` with
/// `output` appended to whatever it wrote through [`HandlerContext::output`];
/// `Err(message)` makes it `failed` with `message` as the run's error.
pub type HandlerOutcome = Result<String, String>;

/// The handler `cronmesh executor` always has: it succeeds at once with
/// empty output, which makes it the measure of the dispatch path alone.
pub const NOOP_HANDLER: &str = "noop";

/// The [`NOOP_HANDLER`] handler.
pub async fn noop(_ctx: HandlerContext) -> HandlerOutcome {
    Ok(String::new())
}

/// A registered handler, type-erased.
pub type HandlerFn =
    Arc<dyn Fn(HandlerContext) -> BoxFuture<'static, HandlerOutcome> + Send + Sync>;

/// Handlers by name. Cheap to clone (the handlers are shared).
#[derive(Clone, Default)]
pub struct HandlerRegistry {
    handlers: BTreeMap<String, HandlerFn>,
}

impl HandlerRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `handler` under `name`; returns false (and keeps the
    /// first) if the name is taken. Names are checked by
    /// [`HandlerRegistry::validate`], since a job can only name handlers
    /// of `[A-Za-z0-9._-]`.
    pub fn register<F, Fut>(&mut self, name: impl Into<String>, handler: F) -> bool
    where
        F: Fn(HandlerContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerOutcome> + Send + 'static,
    {
        let name = name.into();
        if self.handlers.contains_key(&name) {
            return false;
        }
        let erased: HandlerFn = Arc::new(move |ctx| handler(ctx).boxed());
        self.handlers.insert(name, erased);
        true
    }

    pub fn get(&self, name: &str) -> Option<HandlerFn> {
        self.handlers.get(name).cloned()
    }

    /// The registered names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.handlers.keys().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.handlers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.handlers.is_empty()
    }

    /// Every name must be one a job's `target.handler` can hold.
    pub fn validate(&self) -> anyhow::Result<()> {
        for name in self.handlers.keys() {
            protocol::validate::check_name("handler", name)
                .map_err(|e| anyhow::anyhow!("handler name {name:?} {}", e.message))?;
        }
        Ok(())
    }
}

impl fmt::Debug for HandlerRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.handlers.keys()).finish()
    }
}

/// Appends to the run's output, which `GET /v1/runs/{id}/output` shows
/// live and the final report carries (its last 64 KiB). Writes after the
/// run has ended are dropped.
#[derive(Clone, Debug)]
pub struct HandlerOutput(SharedOutput);

impl HandlerOutput {
    /// Appends `text` and a newline.
    pub fn line(&self, text: impl AsRef<str>) {
        let text = text.as_ref();
        let mut bytes = Vec::with_capacity(text.len() + 1);
        bytes.extend_from_slice(text.as_bytes());
        bytes.push(b'\n');
        self.0.push(&bytes);
    }

    /// Appends `text` as it is.
    pub fn write(&self, text: impl AsRef<str>) {
        self.0.push(text.as_ref().as_bytes());
    }
}

/// Resolves once the run is cancelled: timed out, killed, or the agent is
/// shutting down. The run's future is dropped at that moment anyway; this
/// is for work the handler handed to other tasks or threads.
#[derive(Clone, Debug)]
pub struct Cancellation(watch::Receiver<bool>);

impl Cancellation {
    pub fn is_cancelled(&self) -> bool {
        *self.0.borrow()
    }

    /// Never resolves for a run that ended by itself.
    pub fn cancelled(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut receiver = self.0.clone();
        async move {
            if receiver.wait_for(|cancelled| *cancelled).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

/// What a handler is called with: the run and its job, a handle on the
/// run's output and its cancellation. Clone it into spawned work freely.
#[derive(Clone, Debug)]
pub struct HandlerContext {
    /// The handler's name (the task's `handler`).
    pub handler: String,
    /// The run; the idempotency key.
    pub run_id: String,
    pub job_id: String,
    pub namespace: String,
    /// The slot this run is for (the trigger time of a manual run).
    pub scheduled_at: DateTime<Utc>,
    /// 1 for the first try, 2 for the first retry, ...
    pub attempt: u32,
    /// This run's shard: `index` of `count`, and its `param`.
    pub shard: ShardInfo,
    /// The job's (or the trigger's) parameters.
    pub params: String,
    /// For a child run: the final runs of the parent's fire, in shard
    /// order. Empty otherwise.
    pub parent_run_ids: Vec<String>,
    /// For a child run: the slot of the parent's fire.
    pub parent_scheduled_at: Option<DateTime<Utc>>,
    /// How long the run may take before it is cancelled as `timed_out`.
    pub timeout: Duration,
    /// The run's live output.
    pub output: HandlerOutput,
    cancellation: Cancellation,
}

impl HandlerContext {
    /// Resolves when the run is cancelled (timeout, kill, shutdown); see
    /// [`Cancellation`]. Owns what it needs, so it can go into spawned tasks.
    pub fn cancelled(&self) -> impl Future<Output = ()> + Send + 'static {
        self.cancellation.cancelled()
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancellation.is_cancelled()
    }

    /// A cancellation handle alone, for work that needs no more of the context.
    pub fn cancellation(&self) -> Cancellation {
        self.cancellation.clone()
    }
}

/// Cancels the run when dropped, unless disarmed because the handler
/// finished by itself: a timeout, a kill, and an abort at shutdown all
/// cancel, whichever way the run's future goes away.
struct CancelOnDrop(Option<watch::Sender<bool>>);

impl CancelOnDrop {
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(sender) = self.0.take() {
            sender.send_replace(true);
        }
    }
}

/// Calls `handler` for `req` and waits for it, `timeout` or `stop`. The
/// handler's future is dropped on timeout or stop; a panic in it becomes a
/// `failed` run.
pub async fn call(
    handler: HandlerFn,
    name: &str,
    req: &DispatchRequest,
    output: SharedOutput,
    timeout: Duration,
    stop: impl Future<Output = StopReason>,
) -> Outcome {
    let (cancel, cancelled) = watch::channel(false);
    let mut cancel = CancelOnDrop(Some(cancel));
    let ctx = HandlerContext {
        handler: name.to_string(),
        run_id: req.run_id.clone(),
        job_id: req.job_id.clone(),
        namespace: req.namespace.clone(),
        scheduled_at: req.scheduled_at,
        attempt: req.attempt,
        shard: req.shard.clone(),
        params: req.params.clone(),
        parent_run_ids: req.parent_run_ids.clone(),
        parent_scheduled_at: req.parent_scheduled_at,
        timeout,
        output: HandlerOutput(output.clone()),
        cancellation: Cancellation(cancelled),
    };
    // Calling the handler happens inside the guarded future, so a panic
    // before its first await is caught too.
    let run = AssertUnwindSafe(async move { handler(ctx).await }).catch_unwind();
    let outcome = tokio::select! {
        result = run => {
            cancel.disarm();
            match result {
                Ok(Ok(text)) => {
                    output.push(text.as_bytes());
                    Outcome::succeeded(None)
                }
                Ok(Err(message)) => Outcome::failed(None, message),
                Err(panic) => {
                    let message = panic_message(panic.as_ref());
                    tracing::error!(run_id = %req.run_id, handler = %name, "the handler panicked: {message}");
                    Outcome::failed(None, format!("handler {name} panicked: {message}"))
                }
            }
        }
        () = tokio::time::sleep(timeout) => {
            Outcome::timed_out(format!("timed out after {}", format_duration(timeout)))
        }
        reason = stop => Outcome::stopped(reason),
    };
    drop(cancel);
    outcome
}

/// The text of a panic's payload (`panic!` gives a `&str` or a `String`).
fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic without a message".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::dispatch::Task;

    fn request() -> DispatchRequest {
        DispatchRequest {
            run_id: "r1".into(),
            job_id: "j".into(),
            namespace: "default".into(),
            scheduled_at: Utc::now(),
            attempt: 1,
            shard: ShardInfo {
                index: 2,
                count: 4,
                param: "eu".into(),
            },
            params: "p".into(),
            task: Task::Handler {
                handler: "h".into(),
            },
            timeout_ms: 1000,
            report_to: vec![],
            term: 0,
            expires_at: None,
            parent_run_ids: Vec::new(),
            parent_scheduled_at: None,
        }
    }

    fn registry_with<F, Fut>(handler: F) -> HandlerFn
    where
        F: Fn(HandlerContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerOutcome> + Send + 'static,
    {
        let mut registry = HandlerRegistry::new();
        assert!(registry.register("h", handler));
        registry.get("h").expect("registered")
    }

    #[test]
    fn names_are_sorted_unique_and_checked() {
        let mut registry = HandlerRegistry::new();
        assert!(registry.register("b", |_| async { Ok(String::new()) }));
        assert!(registry.register("a", |_| async { Ok(String::new()) }));
        assert!(!registry.register("a", |_| async { Err(String::new()) }));
        assert_eq!(registry.names(), ["a", "b"]);
        assert_eq!(format!("{registry:?}"), r#"{"a", "b"}"#);
        assert!(registry.validate().is_ok());
        registry.register("no spaces", |_| async { Ok(String::new()) });
        let err = registry.validate().err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("no spaces")));
    }

    #[tokio::test]
    async fn output_lines_and_result_make_the_output() {
        let handler = registry_with(|ctx: HandlerContext| async move {
            ctx.output
                .line(format!("shard {}/{}", ctx.shard.index, ctx.shard.count));
            Ok(format!("done {}", ctx.shard.param))
        });
        let output = SharedOutput::default();
        let outcome = call(
            handler,
            "h",
            &request(),
            output.clone(),
            Duration::from_secs(5),
            std::future::pending(),
        )
        .await;
        assert_eq!(outcome, Outcome::succeeded(None));
        assert_eq!(output.text(), "shard 2/4\ndone eu");
    }

    #[tokio::test]
    async fn errors_and_panics_fail_the_run() {
        let failing = registry_with(|_| async { Err("no data".to_string()) });
        let outcome = call(
            failing,
            "h",
            &request(),
            SharedOutput::default(),
            Duration::from_secs(5),
            std::future::pending(),
        )
        .await;
        assert_eq!(outcome, Outcome::failed(None, "no data"));

        // Panics before the first await and after it are both contained.
        let early = registry_with(
            |ctx: HandlerContext| -> BoxFuture<'static, HandlerOutcome> {
                if ctx.attempt > 0 {
                    panic!("early {}", ctx.attempt);
                }
                async { Ok(String::new()) }.boxed()
            },
        );
        let outcome = call(
            early,
            "h",
            &request(),
            SharedOutput::default(),
            Duration::from_secs(5),
            std::future::pending(),
        )
        .await;
        assert_eq!(
            outcome,
            Outcome::failed(None, "handler h panicked: early 1")
        );
        let late = registry_with(|_| async {
            tokio::task::yield_now().await;
            panic!("late");
        });
        let outcome = call(
            late,
            "h",
            &request(),
            SharedOutput::default(),
            Duration::from_secs(5),
            std::future::pending(),
        )
        .await;
        assert_eq!(outcome, Outcome::failed(None, "handler h panicked: late"));
    }

    #[tokio::test]
    async fn timeout_and_kill_cancel_the_context() {
        let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
        let handler = registry_with(move |ctx: HandlerContext| {
            let seen_tx = seen_tx.clone();
            async move {
                let cancellation = ctx.cancellation();
                tokio::spawn(async move {
                    cancellation.cancelled().await;
                    let _ = seen_tx.send(cancellation.is_cancelled());
                });
                std::future::pending::<()>().await;
                Ok(String::new())
            }
        });
        let outcome = call(
            handler.clone(),
            "h",
            &request(),
            SharedOutput::default(),
            Duration::from_millis(50),
            std::future::pending(),
        )
        .await;
        assert_eq!(outcome, Outcome::timed_out("timed out after 50ms"));
        assert_eq!(seen_rx.recv().await, Some(true));

        let outcome = call(
            handler,
            "h",
            &request(),
            SharedOutput::default(),
            Duration::from_secs(30),
            async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                StopReason::Killed
            },
        )
        .await;
        assert_eq!(outcome, Outcome::stopped(StopReason::Killed));
        assert_eq!(seen_rx.recv().await, Some(true));
    }

    #[tokio::test]
    async fn a_run_that_ends_by_itself_is_not_cancelled() {
        let (ctx_tx, ctx_rx) = std::sync::mpsc::channel();
        let ctx_tx = std::sync::Mutex::new(ctx_tx);
        let handler = registry_with(move |ctx: HandlerContext| {
            let _ = ctx_tx.lock().map(|tx| tx.send(ctx.cancellation()));
            async { Ok(String::new()) }
        });
        call(
            handler,
            "h",
            &request(),
            SharedOutput::default(),
            Duration::from_secs(5),
            std::future::pending(),
        )
        .await;
        let cancellation = ctx_rx.recv().expect("the handler ran");
        assert!(!cancellation.is_cancelled());
        let waited =
            tokio::time::timeout(Duration::from_millis(50), cancellation.cancelled()).await;
        assert!(waited.is_err());
    }
}
