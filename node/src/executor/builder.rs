//! `Executor::builder()`: a Rust service embeds an executor agent and
//! serves handler tasks with its own async functions. A thin layer over
//! [`ExecutorConfig`] and [`start`](super::start).

use std::{future::Future, net::SocketAddr, path::Path, time::Duration};

use anyhow::Context;

use super::{
    config::ExecutorConfig,
    handlers::{HandlerContext, HandlerOutcome},
    RunningExecutor,
};

/// The entry point of the embedding API; see [`Executor::builder`].
#[derive(Debug)]
pub struct Executor;

impl Executor {
    /// An executor of group `default` listening on `127.0.0.1:0`, with no
    /// handlers yet.
    ///
    /// ```no_run
    /// # async fn demo() -> anyhow::Result<()> {
    /// use node::executor::{Executor, HandlerContext};
    /// let running = Executor::builder()
    ///     .group("billing")
    ///     .listen("127.0.0.1:0".parse()?)
    ///     .label("zone", "eu")
    ///     .handler("reconcile", |ctx: HandlerContext| async move {
    ///         ctx.output.line(format!("run {}", ctx.run_id));
    ///         Ok(format!("reconciled shard {}", ctx.shard.index))
    ///     })
    ///     .start()
    ///     .await?;
    /// println!("dispatch to {}", running.endpoint);
    /// running.stop().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn builder() -> ExecutorBuilder {
        ExecutorBuilder::new()
    }
}

/// Collects the settings and handlers of an embedded executor. Mistakes
/// (a handler name given twice, an unreadable secret file, a bad name)
/// surface from [`ExecutorBuilder::build`] / [`ExecutorBuilder::start`].
#[derive(Debug)]
pub struct ExecutorBuilder {
    config: ExecutorConfig,
    errors: Vec<String>,
}

impl Default for ExecutorBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ExecutorBuilder {
    pub fn new() -> Self {
        Self::from_config(ExecutorConfig::new(
            protocol::job::DEFAULT_GROUP,
            SocketAddr::from(([127, 0, 0, 1], 0)),
        ))
    }

    /// Starts from an existing configuration (its handlers included).
    pub fn from_config(config: ExecutorConfig) -> Self {
        Self {
            config,
            errors: Vec::new(),
        }
    }

    /// The executor group served (default `default`).
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.config.group = group.into();
        self
    }

    /// The address to listen on (default `127.0.0.1:0`, a free port).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.config.listen = addr;
        self
    }

    /// The URL schedulers reach this executor at, when not the bound address.
    pub fn advertise(mut self, url: impl Into<String>) -> Self {
        self.config.advertise = Some(url.into());
        self
    }

    /// The shared HMAC secret, as `--secret-file` holds it.
    pub fn secret(mut self, secret: impl Into<Vec<u8>>) -> Self {
        self.config.secret = Some(secret.into());
        self
    }

    /// Reads the shared secret from a file, as `--secret-file` does.
    pub fn secret_file(mut self, path: impl AsRef<Path>) -> Self {
        match crate::secret::read_secret_file(path.as_ref()) {
            Ok(secret) => self.config.secret = Some(secret),
            Err(e) => self.errors.push(format!("{e:#}")),
        }
        self
    }

    /// A label for routing and display; repeat for more.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.config.labels.insert(key.into(), value.into());
        self
    }

    /// Most runs held at once (default 0: no limit). Schedulers keep
    /// further runs waiting until one of these ends.
    pub fn max_concurrent(mut self, max: u32) -> Self {
        self.config.max_concurrent = max;
        self
    }

    /// Relative share of work for weighted routing (default 1).
    pub fn weight(mut self, weight: u32) -> Self {
        self.config.weight = weight;
        self
    }

    /// A local service for handler tasks with no in-process handler, as
    /// `--forward` does.
    pub fn forward(mut self, url: impl Into<String>) -> Self {
        self.config.forward = Some(url.into());
        self
    }

    /// A handler name the `forward` service serves, as `--handler` does:
    /// once any is given, only those are forwarded and announced (without
    /// any, every name is, announced as `*`).
    pub fn forward_handler(mut self, name: impl Into<String>) -> Self {
        self.config.forward_handlers.push(name.into());
        self
    }

    /// On stop, how long runs already here get to finish while new ones are
    /// refused, as `--drain-timeout` does (default: none, killed at once).
    pub fn drain_timeout(mut self, limit: Duration) -> Self {
        self.config.drain_timeout = limit;
        self
    }

    /// A directory kept across restarts, as `--data-dir`: the newest leader
    /// term seen survives a restart (default: kept in memory only).
    pub fn data_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.config.data_dir = Some(dir.into());
        self
    }

    /// Longest pause between attempts to deliver a final report (default 10 s).
    pub fn report_max_backoff(mut self, max: Duration) -> Self {
        self.config.report_max_backoff = max;
        self
    }

    /// Any other setting of the configuration.
    pub fn configure(mut self, change: impl FnOnce(&mut ExecutorConfig)) -> Self {
        change(&mut self.config);
        self
    }

    /// Registers `handler` for tasks `{"type": "handler", "handler": name}`.
    ///
    /// It is called once per run (never twice for one run id) with the
    /// run's [`HandlerContext`]; `Ok(output)` makes the run `succeeded`,
    /// `Err(message)` `failed`, and a panic `failed` with its message. On
    /// timeout or kill its future is dropped and `ctx.cancelled()`
    /// resolves. It runs on the runtime `start` was called on, so blocking
    /// work belongs in `tokio::task::spawn_blocking`.
    pub fn handler<F, Fut>(mut self, name: impl Into<String>, handler: F) -> Self
    where
        F: Fn(HandlerContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerOutcome> + Send + 'static,
    {
        let name = name.into();
        if !self.config.handlers.register(name.clone(), handler) {
            self.errors
                .push(format!("handler {name:?} is registered twice"));
        }
        self
    }

    /// The configuration, checked: what [`super::start`] would be given.
    pub fn build(self) -> anyhow::Result<ExecutorConfig> {
        if let Some(first) = self.errors.first() {
            anyhow::bail!("{first}");
        }
        self.config.validate()?;
        Ok(self.config)
    }

    /// Binds, starts serving on the current tokio runtime and returns at
    /// once; [`RunningExecutor::stop`] stops it.
    pub async fn start(self) -> anyhow::Result<RunningExecutor> {
        let config = self.build().context("invalid executor settings")?;
        super::start(config).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_fills_the_configuration() -> anyhow::Result<()> {
        let config = Executor::builder()
            .group("billing")
            .listen("127.0.0.1:9999".parse()?)
            .secret(b"s3cret".to_vec())
            .label("zone", "eu")
            .label("disk", "ssd")
            .weight(2)
            .data_dir("/var/lib/billing")
            .handler("reconcile", |_| async { Ok(String::new()) })
            .handler("audit", |_| async { Err("no".to_string()) })
            .build()?;
        assert_eq!(config.group, "billing");
        assert_eq!(config.listen, "127.0.0.1:9999".parse()?);
        assert_eq!(config.secret.as_deref(), Some(&b"s3cret"[..]));
        assert_eq!(config.labels.len(), 2);
        assert_eq!(config.weight, 2);
        assert_eq!(
            config.data_dir.as_deref(),
            Some(Path::new("/var/lib/billing"))
        );
        assert_eq!(config.handlers.names(), ["audit", "reconcile"]);
        assert!(!format!("{config:?}").contains("s3cret"));

        let defaults = Executor::builder().build()?;
        assert_eq!(defaults.group, "default");
        assert_eq!(defaults.listen, "127.0.0.1:0".parse()?);
        assert!(defaults.handlers.is_empty());
        assert!(defaults.data_dir.is_none());
        Ok(())
    }

    #[test]
    fn mistakes_are_reported_by_build() {
        let err = |builder: ExecutorBuilder| {
            builder
                .build()
                .err()
                .map(|e| format!("{e:#}"))
                .unwrap_or_default()
        };
        let twice = Executor::builder()
            .handler("a", |_| async { Ok(String::new()) })
            .handler("a", |_| async { Ok(String::new()) });
        assert!(err(twice).contains("registered twice"));
        let bad_name = Executor::builder().handler("a/b", |_| async { Ok(String::new()) });
        assert!(err(bad_name).contains("\"a/b\""));
        let no_file = Executor::builder().secret_file("/nonexistent/secret");
        assert!(err(no_file).contains("/nonexistent/secret"));
        assert!(err(Executor::builder().group(" ")).contains("group"));
    }
}
