//! The `server` settings of run history retention (see
//! `actors::store::retention`): how many runs of each outcome a job keeps,
//! and how old and how large the history may grow. Every node of a cluster
//! applies the same log with them, so every node needs the same values.

use std::time::Duration;

use actors::store::{retention::HistoryPolicy, DEFAULT_HISTORY_LIMIT};

/// Retention flags, flattened into `cronmesh server`.
#[derive(clap::Args, Debug, Clone)]
pub struct HistoryArgs {
    /// Succeeded runs kept per job, newest first (0 counts as 1). The same
    /// on every node.
    #[arg(long, default_value_t = DEFAULT_HISTORY_LIMIT)]
    pub history_limit: usize,
    /// Runs kept per job that failed, timed out, were killed or were
    /// skipped, newest first (0 counts as 1). The same on every node.
    #[arg(long, default_value_t = DEFAULT_HISTORY_LIMIT)]
    pub history_failed_limit: usize,
    /// Drop finished runs that ended this long before the newest time of a
    /// command about their job (30d, 12h); unset: no age limit. The same on
    /// every node.
    #[arg(long, value_name = "DURATION", value_parser = parse_max_age)]
    pub history_max_age: Option<Duration>,
    /// Most bytes the runs of all jobs take in the store (1073741824, 512MiB,
    /// 2GB), oldest finished runs dropped first; unset: no limit. The same
    /// on every node.
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    pub history_max_bytes: Option<u64>,
}

impl HistoryArgs {
    pub fn policy(&self) -> HistoryPolicy {
        HistoryPolicy {
            succeeded_limit: self.history_limit,
            failed_limit: self.history_failed_limit,
            max_age: self.history_max_age,
            max_bytes: self.history_max_bytes,
        }
    }
}

/// A humantime duration longer than zero (a zero age would drop every run
/// as it ends).
fn parse_max_age(text: &str) -> Result<Duration, String> {
    let age = text.parse::<protocol::HumanDuration>()?.as_duration();
    if age.is_zero() {
        return Err("must be longer than 0; leave it unset for no age limit".into());
    }
    Ok(age)
}

/// Multiples the size units stand for: SI and binary.
const UNITS: [(&str, u64); 9] = [
    ("b", 1),
    ("kb", 1000),
    ("mb", 1000 * 1000),
    ("gb", 1000 * 1000 * 1000),
    ("tb", 1000 * 1000 * 1000 * 1000),
    ("kib", 1 << 10),
    ("mib", 1 << 20),
    ("gib", 1 << 30),
    ("tib", 1 << 40),
];

/// A size in bytes: a whole number, optionally followed by a unit of
/// [`UNITS`] in any case (`512MiB`, `2 GB`), more than zero.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let digits_end = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(digits_end);
    let unit = unit.trim().to_ascii_lowercase();
    let multiple = match unit.as_str() {
        "" => Some(1),
        unit => UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|(_, m)| *m),
    };
    let (Ok(number), Some(multiple)) = (digits.parse::<u64>(), multiple) else {
        return Err(format!(
            "{text:?} is not a size: write a number of bytes, or one with KB, MB, GB, TB, \
             KiB, MiB, GiB or TiB"
        ));
    };
    match number.checked_mul(multiple) {
        Some(0) => Err("must be more than 0; leave it unset for no limit".into()),
        Some(bytes) => Ok(bytes),
        None => Err(format!("{text:?} is more bytes than 2^64")),
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;

    use clap::FromArgMatches;

    use super::*;
    use crate::config::ServerArgs;

    /// The retention policy `cronmesh ARGS` would run with, or the error.
    fn policy(args: &[&str]) -> Result<HistoryPolicy, String> {
        let argv: Vec<OsString> = args.iter().map(OsString::from).collect();
        let command = crate::settings::command(&argv).map_err(|e| e.to_string())?;
        let matches = command
            .try_get_matches_from(&argv)
            .map_err(|e| e.to_string())?;
        let server = matches.subcommand_matches("server").expect("a server");
        let args = ServerArgs::from_arg_matches(server).map_err(|e| e.to_string())?;
        Ok(args.history.policy())
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        file
    }

    const BASE: [&str; 5] = ["cronmesh", "server", "--unsigned", "--data-dir", "/d"];

    /// Flag, variable and file in one test: the variables would reach
    /// any other test of the file reading these settings at the same time.
    #[test]
    fn history_config_comes_from_flags_variables_and_the_file() {
        assert_eq!(policy(&BASE).unwrap(), HistoryPolicy::default());
        let settings = file(
            "history_limit = 5\nhistory_failed_limit = 6\nhistory_max_age = \"30d\"\n\
             history_max_bytes = \"512MiB\"\n",
        );
        let path = settings.path().to_str().unwrap();
        let from_file = [&BASE[..], &["--config", path]].concat();
        let expected = HistoryPolicy {
            succeeded_limit: 5,
            failed_limit: 6,
            max_age: Some(Duration::from_secs(30 * 86_400)),
            max_bytes: Some(512 << 20),
        };
        assert_eq!(policy(&from_file).unwrap(), expected);
        let flags = [
            "--history-limit",
            "7",
            "--history-failed-limit",
            "8",
            "--history-max-age",
            "12h",
            "--history-max-bytes",
            "2000000",
        ];
        let flagged = HistoryPolicy {
            succeeded_limit: 7,
            failed_limit: 8,
            max_age: Some(Duration::from_secs(12 * 3600)),
            max_bytes: Some(2_000_000),
        };
        assert_eq!(policy(&[&BASE[..], &flags].concat()).unwrap(), flagged);

        // The variables beat the file and lose to the flags. (Not
        // CRONMESH_HISTORY_LIMIT: `settings` tests read history_limit.)
        let vars = [
            ("CRONMESH_HISTORY_FAILED_LIMIT", "9"),
            ("CRONMESH_HISTORY_MAX_AGE", "90m"),
            ("CRONMESH_HISTORY_MAX_BYTES", "3 GB"),
        ];
        for (name, value) in vars {
            std::env::set_var(name, value);
        }
        let from_vars = policy(&from_file);
        let over_vars = policy(&[&from_file[..], &flags].concat());
        std::env::set_var("CRONMESH_HISTORY_MAX_AGE", "soon");
        let bad_var = policy(&BASE);
        for (name, _) in vars {
            std::env::remove_var(name);
        }
        assert_eq!(
            from_vars.unwrap(),
            HistoryPolicy {
                succeeded_limit: 5,
                failed_limit: 9,
                max_age: Some(Duration::from_secs(90 * 60)),
                max_bytes: Some(3_000_000_000),
            }
        );
        assert_eq!(over_vars.unwrap(), flagged);
        let error = bad_var.unwrap_err();
        assert!(error.contains("--history-max-age"), "{error}");
    }

    #[test]
    fn bad_history_config_is_refused_naming_the_setting() {
        for (flag, value) in [
            ("--history-limit", "-1"),
            ("--history-failed-limit", "many"),
            ("--history-max-age", "0s"),
            ("--history-max-age", "a week"),
            ("--history-max-bytes", "0"),
            ("--history-max-bytes", "12 parsecs"),
            ("--history-max-bytes", "99999999999TiB"),
        ] {
            let given = format!("{flag}={value}");
            let error = policy(&[&BASE[..], &[given.as_str()]].concat()).unwrap_err();
            assert!(error.contains(flag), "{flag} {value}: {error}");
            let key = flag.trim_start_matches("--").replace('-', "_");
            let toml = match value.parse::<i64>() {
                Ok(n) => format!("{key} = {n}\n"),
                Err(_) => format!("{key} = {value:?}\n"),
            };
            let settings = file(&toml);
            let path = settings.path().to_str().unwrap();
            let error = policy(&[&BASE[..], &["--config", path]].concat()).unwrap_err();
            assert!(error.contains(&format!("`{key}`")), "{toml}: {error}");
        }
    }

    #[test]
    fn sizes_take_si_and_binary_units() {
        assert_eq!(parse_bytes("1024"), Ok(1024));
        assert_eq!(parse_bytes("512MiB"), Ok(512 * 1024 * 1024));
        assert_eq!(parse_bytes("1GiB"), Ok(1 << 30));
        assert_eq!(parse_bytes("2 gb"), Ok(2_000_000_000));
        assert_eq!(parse_bytes("10KB"), Ok(10_000));
        assert!(parse_bytes("1.5GiB").is_err());
        assert!(parse_bytes("MiB").is_err());
        assert!(parse_bytes("-5").is_err());
    }
}
