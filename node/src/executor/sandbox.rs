//! What a shell run may see of its executor: a clean environment and,
//! with `--run-as USER`, another user's identity.
//!
//! A job is code its author controls, not the executor's operator. If it
//! inherited the executor's environment it could read whatever the
//! operator put there (cloud credentials, `CRONMESH_SECRET_FILE`, tokens of
//! other services); with the executor's user it can read the files that
//! user can, the protocol secret included, and forge dispatches to other
//! groups. So a run gets only an allowlist of the executor's variables
//! ([`BASE_ENV`] and the operator's `--pass-env` names) plus its own
//! `CRONMESH_*` ones, and, when the executor runs as root, may run as an
//! unprivileged user that cannot read the secret file.

use std::{io, path::PathBuf};

use anyhow::{bail, Context};
use nix::unistd::{Gid, Uid, User};

/// Variables of the executor's environment every run gets (when set):
/// what a shell and common tools need to behave as they do in a login
/// shell. `HOME`, `USER` and `LOGNAME` are the run-as user's under
/// `--run-as`.
pub const BASE_ENV: [&str; 7] = ["PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TZ"];

/// How shell runs are confined. Built once at start: the executor's
/// environment does not change while it runs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JobSandbox {
    /// The variables runs get from the executor, with their values.
    pub env: Vec<(String, String)>,
    /// The user runs run as; `None`: the executor's own.
    pub run_as: Option<RunAs>,
}

/// A user to run jobs as, resolved at start so a typo fails the executor
/// at once rather than every run.
#[derive(Clone, Debug, PartialEq)]
pub struct RunAs {
    pub name: String,
    pub uid: Uid,
    pub gid: Gid,
    /// Supplementary groups of the user (as `initgroups` would set them),
    /// so group-readable files it should reach stay reachable.
    pub groups: Vec<Gid>,
    /// The user's home directory: `HOME` and the run's working directory.
    pub home: PathBuf,
}

impl JobSandbox {
    /// The sandbox for the executor's current environment: [`BASE_ENV`]
    /// plus the names in `pass_env`, and `run_as` resolved (it needs the
    /// executor to run as root).
    pub fn new(pass_env: &[String], run_as: Option<&str>) -> anyhow::Result<Self> {
        Self::from_vars(std::env::vars_os(), pass_env, run_as)
    }

    /// [`BASE_ENV`] of the executor's environment, as the executor's user:
    /// the default, and what embedded executors use.
    pub fn base() -> Self {
        let env = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .filter(|(k, _)| BASE_ENV.contains(&k.as_str()))
            .collect();
        Self { env, run_as: None }.sorted()
    }

    fn sorted(mut self) -> Self {
        self.env.sort();
        self
    }

    fn from_vars(
        vars: impl Iterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
        pass_env: &[String],
        run_as: Option<&str>,
    ) -> anyhow::Result<Self> {
        for name in pass_env {
            check_env_name(name)?;
        }
        let run_as = run_as.map(RunAs::resolve).transpose()?;
        let mut env: Vec<(String, String)> = vars
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .filter(|(k, _)| {
                BASE_ENV.contains(&k.as_str()) || pass_env.iter().any(|name| name == k)
            })
            .collect();
        if let Some(user) = &run_as {
            env.retain(|(k, _)| !matches!(k.as_str(), "HOME" | "USER" | "LOGNAME"));
            env.push(("HOME".into(), user.home.to_string_lossy().into_owned()));
            env.push(("USER".into(), user.name.clone()));
            env.push(("LOGNAME".into(), user.name.clone()));
        }
        env.sort();
        Ok(Self { env, run_as })
    }

    /// Sets up `cmd` (not yet spawned) to start with only the allowed
    /// variables and `extra` (the run's own), as the run-as user if any.
    pub fn apply(
        &self,
        cmd: &mut tokio::process::Command,
        extra: impl IntoIterator<Item = (&'static str, String)>,
    ) {
        cmd.env_clear().envs(self.env.iter().cloned()).envs(extra);
        if let Some(user) = &self.run_as {
            if user.home.is_dir() {
                cmd.current_dir(&user.home);
            }
            let (uid, gid, groups) = (user.uid, user.gid, user.groups.clone());
            let switch = move || -> io::Result<()> {
                // Groups first: only root may set them, and after setuid
                // the process is root no more.
                nix::unistd::setgroups(&groups)?;
                nix::unistd::setgid(gid)?;
                nix::unistd::setuid(uid)?;
                Ok(())
            };
            // SAFETY: runs in the forked child before exec; setgroups,
            // setgid and setuid are async-signal-safe system calls, and
            // the closure allocates nothing (the groups were collected
            // before the fork).
            unsafe {
                cmd.pre_exec(switch);
            }
        }
    }
}

impl RunAs {
    fn resolve(name: &str) -> anyhow::Result<Self> {
        if !Uid::effective().is_root() {
            bail!("--run-as {name} needs the executor to run as root, to switch to that user");
        }
        let user = User::from_name(name)
            .with_context(|| format!("cannot look up the --run-as user {name:?}"))?
            .with_context(|| format!("the --run-as user {name:?} does not exist"))?;
        let c_name = std::ffi::CString::new(name)
            .with_context(|| format!("--run-as {name:?} is not a user name"))?;
        let groups = nix::unistd::getgrouplist(&c_name, user.gid)
            .with_context(|| format!("cannot read the groups of --run-as user {name:?}"))?;
        Ok(Self {
            name: user.name,
            uid: user.uid,
            gid: user.gid,
            groups,
            home: user.dir,
        })
    }
}

/// A `--pass-env` name: an environment variable name that is not one of
/// the run's own `CRONMESH_*` (which it could otherwise overwrite).
fn check_env_name(name: &str) -> anyhow::Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 256
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        bail!("--pass-env {name:?} is not an environment variable name (letters, digits, _)");
    }
    if name.starts_with("CRONMESH_") {
        bail!("--pass-env {name:?}: CRONMESH_* variables are the run's own and are never passed from the executor");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;

    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Iterator<Item = (OsString, OsString)> {
        pairs
            .iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v)))
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn only_the_allowlist_and_passed_names_reach_a_run() {
        let sandbox = JobSandbox::from_vars(
            vars(&[
                ("PATH", "/usr/bin:/bin"),
                ("HOME", "/root"),
                ("CRONMESH_SECRET_FILE", "/etc/cronmesh/secret"),
                ("AWS_SECRET_ACCESS_KEY", "hunter2"),
                ("AWS_REGION", "eu-west-1"),
                ("TZ", "Europe/Berlin"),
            ]),
            &["AWS_REGION".to_string()],
            None,
        )
        .unwrap();
        let names: Vec<&str> = sandbox.env.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["AWS_REGION", "HOME", "PATH", "TZ"]);
    }

    #[test]
    fn pass_env_names_are_checked() {
        for bad in [
            "",
            "A=B",
            "1X",
            "CRONMESH_PARAMS",
            "CRONMESH_SECRET_FILE",
            "A B",
        ] {
            let err = JobSandbox::from_vars(vars(&[]), &[bad.to_string()], None).unwrap_err();
            assert!(err.to_string().contains("--pass-env"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn run_as_a_missing_user_or_without_root_fails_at_start() {
        let err = JobSandbox::from_vars(vars(&[]), &[], Some("no-such-user-here")).unwrap_err();
        let text = err.to_string();
        if Uid::effective().is_root() {
            assert!(text.contains("does not exist"), "{text}");
        } else {
            assert!(text.contains("needs the executor to run as root"), "{text}");
        }
    }

    #[test]
    fn run_as_sets_the_users_home_and_names() {
        if !Uid::effective().is_root() {
            eprintln!("skipped: --run-as needs root");
            return;
        }
        let sandbox = JobSandbox::from_vars(
            vars(&[("HOME", "/root"), ("USER", "root")]),
            &[],
            Some("nobody"),
        )
        .unwrap();
        let user = sandbox.run_as.as_ref().unwrap();
        assert_ne!(user.uid, Uid::from_raw(0));
        let home = user.home.to_string_lossy().into_owned();
        assert!(sandbox.env.contains(&("HOME".into(), home)));
        assert!(sandbox.env.contains(&("USER".into(), "nobody".into())));
        assert!(!sandbox.env.contains(&("HOME".into(), "/root".into())));
    }
}
