//! `cronmesh bench --scenario catch-up`: how a follower that was down
//! while the state grew catches up when it comes back, and what that
//! costs the leader and the follower.
//!
//! 1. Three servers start with a short Raft log (`--log-tail`,
//!    `--compact-after`), so the leader compacts past a follower that is
//!    away; no executors (the jobs never fire).
//! 2. A follower is killed (kill -9).
//! 3. The state grows by `--state-mib` MiB of job params, created in
//!    arrays through the leader's API ([`super::bulk_state`]).
//! 4. The leader's peak memory is reset, the follower's data directory
//!    removed with `--wipe`, and the follower started again.
//! 5. Every [`POLL`], both nodes' `/v1/cluster`, their memory and the
//!    snapshot files are read, until the follower has applied the index
//!    the leader had applied at the restart (or shows no progress for
//!    [`STALL_LIMIT`]).
//! 6. Each node's data directory is measured; with `--backup-restore`,
//!    `cronmesh backup` of the leader and `cronmesh restore` of its file
//!    are timed.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use protocol::api::{ClusterStatus, SnapshotCounters};

use super::{
    bulk_state::{self, StatePlan},
    catch_up_report::{
        BackupRestore, CatchUpFigures, CatchUpReport, CatchUpSetup, LogPosition, NodeDisk,
        NodeMemory,
    },
    cluster::{Cluster, Plan},
    disk_usage::disk_usage,
    memory, procstat, progress, timed_command,
    workdir::WorkDir,
    BenchArgs, START_LIMIT,
};

/// How often the nodes are read during the catch-up.
const POLL: Duration = Duration::from_millis(100);

/// The follower must have caught up within this long; past it the bench
/// fails, naming how far it got.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(3600);

/// With no sign of progress this long (the follower's applied index, or a
/// snapshot file growing at either end), the bench fails at once rather
/// than waiting out [`CATCH_UP_LIMIT`]: a follower whose Raft stopped
/// still answers its API.
const STALL_LIMIT: Duration = Duration::from_secs(120);

/// Runs the scenario and reports it. An error means it could not run or
/// the follower did not catch up.
pub async fn measure(
    args: &BenchArgs,
    binary: &Path,
    workdir: &WorkDir,
) -> anyhow::Result<CatchUpReport> {
    let secret = workdir.write_secret()?;
    let mut raft_flags = vec![
        "--raft-log-tail".to_string(),
        args.log_tail.to_string(),
        "--raft-compact-after".to_string(),
        args.compact_after.to_string(),
    ];
    if let Some(bytes) = args.log_tail_bytes {
        raft_flags.extend(["--raft-log-tail-bytes".to_string(), bytes.to_string()]);
    }
    let mut cluster = Cluster::plan(&Plan {
        binary,
        dir: &workdir.path,
        secret: &secret,
        nodes: 3,
        executors: 0,
        history_limit: actors::store::DEFAULT_HISTORY_LIMIT,
        extra_server_args: &raft_flags,
    })?;
    progress("starting 3 nodes");
    let leader = cluster
        .start_servers(START_LIMIT)
        .await
        .context("the cluster could not be started")?;
    let follower = (1..=3u64)
        .rev()
        .find(|id| *id != leader)
        .context("no follower")?;
    let follower_at_kill = status(&cluster, follower).await?;
    let follower_pid = pid(&cluster, follower)?;
    let follower_peak_at_kill = procstat::sample(follower_pid).unwrap_or_default();
    let follower_at_kill_resident = memory::resident(follower_pid).unwrap_or_default();
    cluster
        .server_mut(follower)
        .context("no such follower")?
        .kill9();
    progress(&format!(
        "node{leader} leads; node{follower} killed at applied index {}",
        follower_at_kill.applied_index
    ));

    let plan = StatePlan::for_state(
        args.state_mib,
        args.params_bytes,
        args.create_batch(),
        args.create_concurrency(),
    );
    progress(&format!(
        "creating {} MiB of state: {} jobs of {} bytes of params, {} per request, {} requests in flight",
        args.state_mib, plan.jobs, plan.params_bytes, plan.batch, plan.concurrency
    ));
    let creation = bulk_state::create_state(cluster.admin(), cluster.api_url(leader), plan).await?;
    progress(&format!(
        "state created in {:.1} s ({:.0} jobs/s, {:.1} MiB/s)",
        creation.seconds, creation.jobs_per_second, creation.mib_per_second
    ));
    let leader = cluster
        .wait_for_leader(Duration::from_secs(20))
        .await
        .context("no leader after the state was created")?;
    let leader_before = status(&cluster, leader).await?;
    let leader_pid = pid(&cluster, leader)?;
    let leader_peak_before = procstat::sample(leader_pid).unwrap_or_default();
    let leader_peak_reset = memory::reset_peak(leader_pid);
    let leader_before_resident = memory::resident(leader_pid).unwrap_or_default();
    let leader_snapshots_before = leader_before.snapshots;

    let follower_dir = cluster
        .data_dir(follower)
        .context("the follower has no --data-dir")?;
    if args.wipe {
        std::fs::remove_dir_all(&follower_dir)
            .with_context(|| format!("cannot remove {}", follower_dir.display()))?;
    }
    let target = leader_before.applied_index;
    progress(&format!(
        "restarting node{follower}{}; it must reach applied index {target} (the leader's log starts at {})",
        if args.wipe { " with an empty data directory" } else { "" },
        leader_before.log_start_index
    ));
    let leader_snapshot_dir = cluster
        .data_dir(leader)
        .context("the leader has no --data-dir")?
        .join("snapshots");
    let follower_snapshot_dir = follower_dir.join("snapshots");
    cluster
        .server_mut(follower)
        .context("no such follower")?
        .start()?;
    let restarted = Instant::now();
    let restarted_pid = pid(&cluster, follower)?;
    let leader_cpu_before = leader_peak_before.cpu_seconds;

    let mut first_answer = None;
    let mut snapshot_bytes = None;
    let mut received_bytes = None;
    let mut follower_now: Option<ClusterStatus> = None;
    // The most anonymous memory each held at a poll.
    let (mut leader_anon_peak, mut follower_anon_peak) = (0, 0);
    let mut next_report = Duration::from_secs(10);
    let mut last_change = (Instant::now(), None);
    loop {
        if let Some(server) = cluster.server_mut(follower) {
            server
                .check_alive()
                .context("the follower exited while catching up")?;
        }
        if let Ok(now) = status(&cluster, follower).await {
            first_answer.get_or_insert(restarted.elapsed());
            follower_now = Some(now);
        }
        // `None` is below any size.
        snapshot_bytes = snapshot_bytes.max(largest_file(&leader_snapshot_dir, "out-", &[".dump"]));
        received_bytes = received_bytes.max(largest_file(
            &follower_snapshot_dir,
            "in-",
            &[".part", ".dump"],
        ));
        let anon_now = |pid| memory::resident(pid).map_or(0, |r| r.anon);
        leader_anon_peak = leader_anon_peak.max(anon_now(leader_pid));
        follower_anon_peak = follower_anon_peak.max(anon_now(restarted_pid));
        let applied = follower_now.as_ref().map(|s| s.applied_index);
        if applied.is_some_and(|applied| applied >= target) {
            break;
        }
        let signs = Some((
            applied,
            largest_file(&leader_snapshot_dir, "out-", &[".dump", ".part"]),
            largest_file(&follower_snapshot_dir, "in-", &[".dump", ".part"]),
        ));
        if signs != last_change.1 {
            last_change = (Instant::now(), signs);
        } else if last_change.0.elapsed() >= STALL_LIMIT {
            let leader_view = status(&cluster, leader)
                .await
                .ok()
                .and_then(|s| s.members.into_iter().find(|m| m.node_id == follower))
                .and_then(|m| m.matched_index);
            bail!(
                "node{follower} made no progress for {STALL_LIMIT:?} ({:.0} s after its restart): applied index {} of {target}, term {}, leader {:?}, snapshots {:?}; the leader has it matched at {:?}; see {}",
                restarted.elapsed().as_secs_f64(),
                applied.unwrap_or(0),
                follower_now.as_ref().map_or(0, |s| s.term),
                follower_now.as_ref().and_then(|s| s.leader_id),
                follower_now.as_ref().map(|s| s.snapshots).unwrap_or_default(),
                leader_view,
                cluster
                    .server(follower)
                    .map(|s| s.log.display().to_string())
                    .unwrap_or_default()
            );
        }
        if restarted.elapsed() >= next_report {
            progress(&format!(
                "{:.0} s: node{follower} at applied index {} of {target}; snapshot {} bytes at the leader, {} received",
                restarted.elapsed().as_secs_f64(),
                applied.map_or_else(|| "unknown".to_string(), |a| a.to_string()),
                snapshot_bytes.unwrap_or(0),
                received_bytes.unwrap_or(0),
            ));
            next_report += Duration::from_secs(10);
        }
        if restarted.elapsed() >= CATCH_UP_LIMIT {
            bail!(
                "node{follower} did not catch up within {CATCH_UP_LIMIT:?}: applied index {} of {target}, snapshots {:?}; see {}",
                applied.unwrap_or(0),
                follower_now.map(|s| s.snapshots).unwrap_or_default(),
                cluster
                    .server(follower)
                    .map(|s| s.log.display().to_string())
                    .unwrap_or_default()
            );
        }
        tokio::time::sleep(POLL).await;
    }
    let seconds = restarted.elapsed().as_secs_f64();
    progress(&format!("node{follower} caught up in {seconds:.1} s"));

    let leader_after = status(&cluster, leader).await?;
    let follower_after = status(&cluster, follower).await?;
    let leader_sample = procstat::sample(leader_pid).unwrap_or_default();
    let follower_sample = procstat::sample(restarted_pid).unwrap_or_default();
    let leader_after_resident = memory::resident(leader_pid).unwrap_or_default();
    let follower_after_resident = memory::resident(restarted_pid).unwrap_or_default();
    let memory = (
        NodeMemory {
            peak_before_bytes: leader_peak_before.peak_rss_bytes,
            rss_before_bytes: leader_before_resident.total,
            anon_before_bytes: leader_before_resident.anon,
            peak_during_bytes: leader_sample.peak_rss_bytes,
            peak_during_is_of_catch_up: leader_peak_reset,
            peak_anon_during_bytes: leader_anon_peak.max(leader_after_resident.anon),
            rss_after_bytes: leader_after_resident.total,
            anon_after_bytes: leader_after_resident.anon,
            cpu_seconds_during: leader_sample.cpu_seconds - leader_cpu_before,
        },
        NodeMemory {
            peak_before_bytes: follower_peak_at_kill.peak_rss_bytes,
            rss_before_bytes: follower_at_kill_resident.total,
            anon_before_bytes: follower_at_kill_resident.anon,
            peak_during_bytes: follower_sample.peak_rss_bytes,
            peak_during_is_of_catch_up: true,
            peak_anon_during_bytes: follower_anon_peak.max(follower_after_resident.anon),
            rss_after_bytes: follower_after_resident.total,
            anon_after_bytes: follower_after_resident.anon,
            cpu_seconds_during: follower_sample.cpu_seconds,
        },
    );
    let installed = follower_after.snapshots.installed;
    let catch_up = CatchUpFigures {
        target_index: target,
        seconds,
        first_answer_seconds: first_answer.map(|d| d.as_secs_f64()),
        from_snapshot: installed > 0,
        snapshot_bytes,
        received_snapshot_bytes: received_bytes,
        snapshot_mib_per_second: snapshot_bytes
            .map(|bytes| bytes as f64 / (1024.0 * 1024.0) / seconds.max(1e-9)),
        leader_snapshots: counters_since(leader_snapshots_before, leader_after.snapshots),
        follower_snapshots: follower_after.snapshots,
        follower_applied_index: follower_after.applied_index,
        leader_applied_index: leader_after.applied_index,
        leader_at_end: follower_after.leader_id,
    };

    let mut disk = Vec::new();
    for id in 1..=3u64 {
        let Some(dir) = cluster.data_dir(id) else {
            continue;
        };
        let usage =
            disk_usage(&dir).with_context(|| format!("cannot measure {}", dir.display()))?;
        disk.push(NodeDisk {
            node: id,
            role: if id == leader {
                "leader"
            } else if id == follower {
                "caught-up follower"
            } else {
                "follower"
            },
            usage,
        });
    }

    let backup_restore = if args.backup_restore {
        let backup = backup(&cluster, leader, binary, workdir).await?;
        progress("stopping the processes");
        cluster.stop().await;
        Some(restore(backup, binary, workdir).await?)
    } else {
        progress("stopping the processes");
        cluster.stop().await;
        None
    };

    Ok(CatchUpReport {
        setup: CatchUpSetup {
            nodes: 3,
            state_mib: args.state_mib,
            params_bytes: plan.params_bytes,
            create_batch: plan.batch,
            create_concurrency: plan.concurrency,
            raft_log_tail: args.log_tail,
            raft_log_tail_bytes: args.log_tail_bytes,
            raft_compact_after: args.compact_after,
            wipe: args.wipe,
            data_dir: workdir.path.display().to_string(),
            data_dir_kept: workdir.is_kept(),
        },
        state_creation: creation,
        leader,
        follower,
        follower_applied_at_kill: follower_at_kill.applied_index,
        leader_at_restart: LogPosition {
            applied_index: leader_before.applied_index,
            commit_index: leader_before.commit_index,
            log_start_index: leader_before.log_start_index,
        },
        log_compacted_past_follower: leader_before.log_start_index
            > follower_at_kill.applied_index + 1,
        catch_up,
        leader_memory: memory.0,
        follower_memory: memory.1,
        disk,
        backup_restore,
    })
}

/// `cronmesh backup` of node `id` into the work directory, timed.
async fn backup(
    cluster: &Cluster,
    id: u64,
    binary: &Path,
    workdir: &WorkDir,
) -> anyhow::Result<(timed_command::CommandFigures, PathBuf)> {
    let file = workdir.path.join("backup.dump");
    progress(&format!("backing up node{id} to {}", file.display()));
    let figures = timed_command::run(
        binary,
        &[
            "backup".to_string(),
            "--api".to_string(),
            cluster.api_url(id).to_string(),
            "--out".to_string(),
            file.display().to_string(),
        ],
        &workdir.path.join("backup.log"),
    )
    .await?;
    Ok((figures, file))
}

/// `cronmesh restore` of the backup into a new directory, timed.
async fn restore(
    (backup, file): (timed_command::CommandFigures, PathBuf),
    binary: &Path,
    workdir: &WorkDir,
) -> anyhow::Result<BackupRestore> {
    let backup_bytes = std::fs::metadata(&file)
        .with_context(|| format!("cannot read {}", file.display()))?
        .len();
    let restored_dir = workdir.path.join("restored");
    progress(&format!(
        "restoring {backup_bytes} bytes into {}",
        restored_dir.display()
    ));
    let restore = timed_command::run(
        binary,
        &[
            "restore".to_string(),
            "--data-dir".to_string(),
            restored_dir.display().to_string(),
            file.display().to_string(),
        ],
        &workdir.path.join("restore.log"),
    )
    .await?;
    let restored = disk_usage(&restored_dir)
        .with_context(|| format!("cannot measure {}", restored_dir.display()))?;
    Ok(BackupRestore {
        backup,
        backup_bytes,
        restore,
        restored,
    })
}

/// Node `id`'s `/v1/cluster`.
async fn status(cluster: &Cluster, id: u64) -> anyhow::Result<ClusterStatus> {
    let url = format!("{}/v1/cluster", cluster.api_url(id));
    cluster.admin().get_json(&url).await
}

/// The pid of running node `id`.
fn pid(cluster: &Cluster, id: u64) -> anyhow::Result<u32> {
    cluster
        .server(id)
        .and_then(|s| s.pid())
        .with_context(|| format!("node{id} is not running"))
}

/// The counters that moved from `before` to `after`.
fn counters_since(before: SnapshotCounters, after: SnapshotCounters) -> SnapshotCounters {
    SnapshotCounters {
        built: after.built.saturating_sub(before.built),
        sent: after.sent.saturating_sub(before.sent),
        send_failures: after.send_failures.saturating_sub(before.send_failures),
        received: after.received.saturating_sub(before.received),
        installed: after.installed.saturating_sub(before.installed),
    }
}

/// The length of the largest file in `dir` named `prefix...suffix` for
/// one of `suffixes`; `None` if there is none (or no `dir`).
fn largest_file(dir: &Path, prefix: &str, suffixes: &[&str]) -> Option<u64> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter(|entry| {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            name.starts_with(prefix) && suffixes.iter().any(|s| name.ends_with(s))
        })
        .filter_map(|entry| entry.metadata().ok().map(|m| m.len()))
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_largest_snapshot_file() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        assert_eq!(largest_file(dir.path(), "out-", &[".dump"]), None);
        std::fs::write(dir.path().join("out-10-2.dump"), vec![0u8; 300])?;
        std::fs::write(dir.path().join("out-20-2.dump"), vec![0u8; 500])?;
        std::fs::write(dir.path().join("out-30-2.part"), vec![0u8; 900])?;
        std::fs::write(dir.path().join("in-30-2.part"), vec![0u8; 700])?;
        assert_eq!(largest_file(dir.path(), "out-", &[".dump"]), Some(500));
        assert_eq!(
            largest_file(dir.path(), "in-", &[".part", ".dump"]),
            Some(700)
        );
        assert_eq!(
            largest_file(&dir.path().join("gone"), "out-", &[".dump"]),
            None
        );
        Ok(())
    }

    #[test]
    fn counters_move_forward_only() {
        let before = SnapshotCounters {
            built: 2,
            sent: 1,
            ..Default::default()
        };
        let after = SnapshotCounters {
            built: 3,
            sent: 3,
            send_failures: 1,
            ..Default::default()
        };
        let moved = counters_since(before, after);
        assert_eq!((moved.built, moved.sent, moved.send_failures), (1, 2, 1));
        assert_eq!(counters_since(after, before).sent, 0);
    }
}
