//! A short-lived command of this binary (`cronmesh backup`, `cronmesh
//! restore`) run to its end and measured: wall time, and CPU and peak
//! memory sampled from `/proc` every few milliseconds while it runs (the
//! last sample before it exits; `VmHWM` only grows, so only a peak in its
//! last moments escapes).

use std::{
    fs::OpenOptions,
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context};

use super::procstat;

/// How often the running command is sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(10);

/// What one command took.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct CommandFigures {
    /// The command line after the binary.
    pub command: String,
    pub seconds: f64,
    /// User plus system CPU, as last sampled.
    pub cpu_seconds: f64,
    /// Peak resident memory (`VmHWM`), as last sampled.
    pub peak_rss_bytes: u64,
}

/// Runs `binary args`, its output appended to `log`; an error naming the
/// log if it does not exit with success.
pub async fn run(binary: &Path, args: &[String], log: &Path) -> anyhow::Result<CommandFigures> {
    let out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("cannot open {}", log.display()))?;
    let err = out.try_clone()?;
    let command = args.join(" ");
    let started = Instant::now();
    let mut child = Command::new(binary)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .with_context(|| format!("cannot start {}", binary.display()))?;
    let mut last = procstat::Sample::default();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if let Some(sample) = procstat::sample(child.id()) {
            last = sample;
        }
        tokio::time::sleep(SAMPLE_EVERY).await;
    };
    let seconds = started.elapsed().as_secs_f64();
    if !status.success() {
        bail!(
            "`cronmesh {command}` failed ({status}) after {seconds:.1} s; see {}",
            log.display()
        );
    }
    Ok(CommandFigures {
        command,
        seconds,
        cpu_seconds: last.cpu_seconds,
        peak_rss_bytes: last.peak_rss_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn times_a_command_and_names_a_failure() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let log = dir.path().join("log");
        let sleep = Path::new("/bin/sh");
        let args = ["-c".to_string(), "sleep 0.2".to_string()];
        let figures = run(sleep, &args, &log).await?;
        assert!(figures.seconds >= 0.2);
        assert_eq!(figures.command, "-c sleep 0.2");
        assert!(figures.peak_rss_bytes > 0);
        let failed = run(sleep, &["-c".to_string(), "exit 3".to_string()], &log).await;
        let message = failed.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            message.contains("failed") && message.contains("log"),
            "{message}"
        );
        Ok(())
    }
}
