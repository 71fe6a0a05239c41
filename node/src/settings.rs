//! Where the settings of `server`, `dev` and `executor` come from, highest
//! first: command-line flags, `CRONMESH_*` environment variables, the TOML
//! file given by `--config` (or `CRONMESH_CONFIG`), then built-in defaults.
//!
//! One rule names every setting: the flag `--raft-tick-ms` is the file key
//! `raft_tick_ms` (or `raft-tick-ms`) and the variable
//! `CRONMESH_RAFT_TICK_MS`. The file's values become the flags' defaults
//! before the command line is read, so a file value is checked by the same
//! parser as the flag, and an error names the setting.

use std::{ffi::OsString, fmt::Write as _, path::PathBuf};

use clap::{
    builder::Resettable, parser::ValueSource, ArgMatches, Command, CommandFactory, FromArgMatches,
};

use crate::cli::Cli;

/// The subcommands that read a configuration file.
pub const CONFIGURABLE: [&str; 3] = ["server", "dev", "executor"];
/// Settings that are never taken from a file or the environment by the
/// naming rule: the file's own path, and help.
const NOT_SETTINGS: [&str; 3] = ["config", "help", "version"];

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read the configuration file {path}: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

/// The environment variable of a flag: `CRONMESH_` and its long name.
pub fn env_name(long: &str) -> String {
    format!("CRONMESH_{}", long.replace('-', "_").to_uppercase())
}

/// The file key of a flag: its long name with underscores.
pub fn file_key(long: &str) -> String {
    long.replace('-', "_")
}

/// The `--config` path on the command line, else `CRONMESH_CONFIG`.
fn config_path(argv: &[OsString]) -> Option<PathBuf> {
    let mut args = argv.iter().map(|a| a.to_string_lossy());
    while let Some(arg) = args.next() {
        if arg == "--config" {
            return args.next().map(|p| PathBuf::from(p.as_ref()));
        }
        if let Some(path) = arg.strip_prefix("--config=") {
            return Some(PathBuf::from(path));
        }
    }
    std::env::var_os("CRONMESH_CONFIG").map(PathBuf::from)
}

/// The subcommand being run, when it is one that reads a file.
fn configurable_subcommand(argv: &[OsString]) -> Option<&'static str> {
    argv.iter()
        .skip(1)
        .find_map(|a| CONFIGURABLE.into_iter().find(|c| a == c))
}

/// Reads a TOML file of settings.
pub fn read_file(path: &std::path::Path) -> Result<toml::Table, SettingsError> {
    let text = std::fs::read_to_string(path).map_err(|e| SettingsError::Unreadable {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    parse_text(&text, path)
}

/// Parses the text of a settings file read from `path` (named in errors);
/// apart from [`read_file`] so the fuzz target needs no file.
pub fn parse_text(text: &str, path: &std::path::Path) -> Result<toml::Table, SettingsError> {
    text.parse::<toml::Table>()
        .map_err(|e| SettingsError::Invalid {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
}

/// Gives every setting of `command` its environment variable.
fn with_env(command: Command) -> Command {
    let ids: Vec<(String, String)> = command
        .get_arguments()
        .filter(|a| a.get_env().is_none())
        .filter_map(|a| Some((a.get_id().to_string(), a.get_long()?.to_string())))
        .filter(|(id, _)| !NOT_SETTINGS.contains(&id.as_str()))
        .collect();
    ids.into_iter().fold(command, |command, (id, long)| {
        command.mut_arg(id, |arg| arg.env(env_name(&long)))
    })
}

/// A TOML value as the flag text(s) it stands for.
fn flag_texts(key: &str, value: &toml::Value) -> Result<Vec<String>, String> {
    match value {
        toml::Value::String(s) => Ok(vec![s.clone()]),
        toml::Value::Integer(i) => Ok(vec![i.to_string()]),
        toml::Value::Float(f) => Ok(vec![f.to_string()]),
        toml::Value::Boolean(b) => Ok(vec![b.to_string()]),
        toml::Value::Array(items) => items
            .iter()
            .map(|item| match flag_texts(key, item)?.as_slice() {
                [one] => Ok(one.clone()),
                _ => Err(format!("`{key}` holds a list inside a list")),
            })
            .collect(),
        toml::Value::Datetime(d) => Ok(vec![d.to_string()]),
        toml::Value::Table(_) => Err(format!(
            "`{key}` is a table; settings are plain keys (see docs/CONFIGURATION.md)"
        )),
    }
}

/// Makes the file's values the defaults of `command`'s flags. Public for
/// the fuzz target, which feeds it tables from arbitrary text.
pub fn with_file(
    command: Command,
    table: &toml::Table,
    path: &std::path::Path,
) -> Result<Command, SettingsError> {
    let invalid = |reason: String| SettingsError::Invalid {
        path: path.to_path_buf(),
        reason,
    };
    let settings: Vec<(String, String)> = command
        .get_arguments()
        .filter(|a| !NOT_SETTINGS.contains(&a.get_id().as_str()))
        .filter_map(|a| Some((file_key(a.get_long()?), a.get_id().to_string())))
        .collect();
    let mut command = command;
    for (key, value) in table {
        let wanted = file_key(key);
        let Some((_, id)) = settings.iter().find(|(k, _)| *k == wanted) else {
            let known: Vec<&str> = settings.iter().map(|(k, _)| k.as_str()).collect();
            return Err(invalid(format!(
                "unknown setting `{key}` for `cronmesh {}`; the settings are: {}",
                command.get_name(),
                known.join(", ")
            )));
        };
        let texts = flag_texts(key, value).map_err(invalid)?;
        // Checked here by the flag's own parser, so the error names the file.
        if let Some(arg) = command.get_arguments().find(|a| a.get_id() == id.as_str()) {
            let alone = Command::new("file").arg(alone(arg));
            let flag = format!("--{}", arg.get_long().unwrap_or(id));
            // A switch takes no value on the command line: check it as a bool.
            let switch = matches!(arg.get_action(), clap::ArgAction::SetTrue);
            for text in texts.iter().filter(|_| switch) {
                if text != "true" && text != "false" {
                    return Err(invalid(format!("`{key}` = {text:?}: write true or false")));
                }
            }
            for text in texts.iter().filter(|_| !switch) {
                alone
                    .clone()
                    .try_get_matches_from(["file", flag.as_str(), text.as_str()])
                    .map_err(|e| {
                        let why = e.to_string();
                        let why = why.lines().next().unwrap_or_default();
                        let why = why.strip_prefix("error: ").unwrap_or(why);
                        invalid(format!("`{key}` = {text:?}: {why}"))
                    })?;
            }
        }
        // A value from the file satisfies a setting the command requires.
        command = command.mut_arg(id, |arg| arg.default_values(texts).required(false));
    }
    Ok(command)
}

/// A copy of `arg` that can stand in a command of its own, to check one
/// value with the flag's parser: not required, no variable, and none of
/// its relations to other flags (`conflicts_with`, `requires`, ...), which
/// would name flags missing from that command (clap panics on those in a
/// debug build: `admin_token_file` or `tls_cert` in a file did).
fn alone(arg: &clap::Arg) -> clap::Arg {
    arg.clone()
        .required(false)
        .env(None::<&str>)
        .requires(Resettable::Reset)
        .conflicts_with(Resettable::Reset)
        .overrides_with(Resettable::Reset)
        .required_unless_present(Resettable::Reset)
        .group(Resettable::Reset)
}

/// The whole command line with each configurable subcommand's environment
/// variables, and the file's values for the one being run.
pub fn command(argv: &[OsString]) -> Result<Command, SettingsError> {
    let mut command = Cli::command();
    for name in CONFIGURABLE {
        command = command.mut_subcommand(name, with_env);
    }
    if let (Some(path), Some(name)) = (config_path(argv), configurable_subcommand(argv)) {
        let table = read_file(&path)?;
        let mut failed = None;
        command = command.mut_subcommand(name, |sub| match with_file(sub.clone(), &table, &path) {
            Ok(sub) => sub,
            Err(e) => {
                failed = Some(e);
                sub
            }
        });
        if let Some(e) = failed {
            return Err(e);
        }
    }
    Ok(command)
}

/// Parses the command line with all its sources; exits with clap's usage
/// error (code 2) when they do not make a valid command.
pub fn parse(argv: Vec<OsString>) -> Result<(Cli, ArgMatches), SettingsError> {
    let matches = command(&argv)?.get_matches_from(argv);
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    Ok((cli, matches))
}

/// The effective settings of `subcommand` as TOML, each with its source;
/// secrets are not printed.
pub fn effective(command: &Command, matches: &ArgMatches, file: Option<&toml::Table>) -> String {
    let mut out = String::new();
    let mut lines = Vec::new();
    for arg in command.get_arguments() {
        let id = arg.get_id().as_str();
        let Some(long) = arg.get_long() else { continue };
        if NOT_SETTINGS.contains(&id) {
            continue;
        }
        let key = file_key(long);
        let values: Vec<String> = matches
            .get_raw(id)
            .map(|v| v.map(|s| s.to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        let source = match matches.value_source(id) {
            Some(ValueSource::DefaultValue)
                if file.is_some_and(|f| f.keys().any(|k| file_key(k) == key)) =>
            {
                "file"
            }
            Some(ValueSource::DefaultValue) => "default",
            Some(ValueSource::CommandLine) => "flag",
            Some(ValueSource::EnvVariable) => "environment",
            _ => "unset",
        };
        let quoted = |v: &String| {
            if v.parse::<f64>().is_ok() || v == "true" || v == "false" {
                v.clone()
            } else {
                format!("{v:?}")
            }
        };
        let line = if values.is_empty() {
            format!("# {key} =  (not set)")
        } else if key.contains("token") && !key.ends_with("file") {
            format!("{key} = \"(hidden)\"  # {source}")
        } else if matches!(arg.get_action(), clap::ArgAction::Append)
            || arg.get_value_delimiter().is_some()
        {
            let items: Vec<String> = values.iter().map(quoted).collect();
            format!("{key} = [{}]  # {source}", items.join(", "))
        } else {
            format!("{key} = {}  # {source}", quoted(&values.join(",")))
        };
        lines.push((key, line));
    }
    lines.sort();
    for (_, line) in lines {
        let _ = writeln!(out, "{line}");
    }
    out
}

/// `cronmesh config check FILE --role ROLE`: the effective settings as
/// TOML on success; the reason on failure.
pub fn check(file: &std::path::Path, role: &str) -> Result<String, String> {
    let argv: Vec<OsString> = ["cronmesh", role, "--config"]
        .into_iter()
        .map(OsString::from)
        .chain([file.as_os_str().to_owned()])
        .collect();
    let table = read_file(file).map_err(|e| e.to_string())?;
    let command = command(&argv).map_err(|e| e.to_string())?;
    let matches = command
        .clone()
        .try_get_matches_from(&argv)
        .map_err(|e| e.render().to_string())?;
    let (Some(sub), Some(sub_matches)) = (
        command.find_subcommand(role),
        matches.subcommand_matches(role),
    ) else {
        return Err(format!("no command {role}"));
    };
    // What the command would make of it, beyond what each flag checks.
    match role {
        "server" => crate::config::ServerArgs::from_arg_matches(sub_matches)
            .map_err(|e| e.to_string())?
            .into_config()
            .map(drop)
            .map_err(|e| format!("{e:#}"))?,
        "dev" => crate::config::DevArgs::from_arg_matches(sub_matches)
            .map_err(|e| e.to_string())?
            .into_config()
            .map(drop)
            .map_err(|e| format!("{e:#}"))?,
        _ => crate::executor::ExecutorArgs::from_arg_matches(sub_matches)
            .map_err(|e| e.to_string())
            .and_then(|args| {
                crate::executor::ExecutorConfig::try_from(args).map_err(|e| format!("{e:#}"))
            })
            .map(drop)?,
    }
    Ok(effective(sub, sub_matches, Some(&table)))
}

/// The settings of every configurable command as Markdown tables: what
/// docs/CONFIGURATION.md holds between its markers (a test keeps the two
/// equal; `cronmesh config reference` prints it).
pub fn reference() -> String {
    let root = Cli::command();
    let mut out = String::new();
    for name in CONFIGURABLE {
        let Some(sub) = root.find_subcommand(name) else {
            continue;
        };
        let sub = with_env(sub.clone());
        let _ = writeln!(out, "### `cronmesh {name}`\n");
        let _ = writeln!(
            out,
            "| file key | flag | environment | default | what it sets |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|");
        let mut rows: Vec<(String, String)> = Vec::new();
        for arg in sub.get_arguments() {
            let (Some(long), false) = (
                arg.get_long(),
                NOT_SETTINGS.contains(&arg.get_id().as_str()),
            ) else {
                continue;
            };
            let defaults: Vec<String> = arg
                .get_default_values()
                .iter()
                .map(|v| v.to_string_lossy().into_owned())
                .collect();
            let default = match (defaults.is_empty(), arg.is_required_set()) {
                (false, _) => format!("`{}`", defaults.join(",")),
                (true, true) => "required".to_string(),
                (true, false) => "not set".to_string(),
            };
            let help = arg
                .get_help()
                .map(|h| h.to_string().replace('\n', " ").replace('|', "\\|"))
                .unwrap_or_default();
            let key = file_key(long);
            let row = format!(
                "| `{key}` | `--{long}` | `{}` | {default} | {help} |",
                env_name(long)
            );
            rows.push((key, row));
        }
        rows.sort();
        for (_, row) in rows {
            let _ = writeln!(out, "{row}");
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(args: &[&str], file: &str) -> ArgMatches {
        let table: toml::Table = file.parse().unwrap();
        let sub = Cli::command().find_subcommand("server").cloned().unwrap();
        let sub = with_file(with_env(sub), &table, std::path::Path::new("test.toml")).unwrap();
        let mut argv = vec!["server"];
        argv.extend_from_slice(args);
        sub.try_get_matches_from(argv).unwrap()
    }

    #[test]
    fn a_flag_beats_the_file_and_the_file_beats_the_default() {
        let from_file = server(
            &["--data-dir", "/d"],
            "history_limit = 5\nraft-tick-ms = 20",
        );
        assert_eq!(from_file.get_one::<usize>("history_limit"), Some(&5));
        assert_eq!(from_file.get_one::<u64>("raft_tick_ms"), Some(&20));
        assert_eq!(
            from_file.get_one::<u64>("raft_compact_after"),
            Some(&10_000)
        );
        let flagged = server(
            &["--data-dir", "/d", "--history-limit", "9"],
            "history_limit = 5",
        );
        assert_eq!(flagged.get_one::<usize>("history_limit"), Some(&9));
    }

    #[test]
    fn a_file_may_give_settings_that_conflict_with_or_require_others() {
        // Each is checked alone first; their relations must not come along.
        let m = server(
            &["--data-dir", "/d"],
            "admin_token_file = \"/etc/t\"\ntls_cert = \"/etc/c.pem\"\ntls_key = \"/etc/k.pem\"",
        );
        assert_eq!(
            m.get_one::<PathBuf>("admin_token_file"),
            Some(&PathBuf::from("/etc/t"))
        );
        assert_eq!(
            m.get_one::<PathBuf>("tls_key"),
            Some(&PathBuf::from("/etc/k.pem"))
        );
    }

    #[test]
    fn a_file_may_give_required_settings_and_lists() {
        let m = server(
            &[],
            "data_dir = \"/var/lib/cronmesh\"\nseeds = [\"a:1\", \"b:2\"]",
        );
        assert_eq!(
            m.get_one::<PathBuf>("data_dir"),
            Some(&PathBuf::from("/var/lib/cronmesh"))
        );
        let seeds: Vec<&String> = m.get_many::<String>("seeds").unwrap().collect();
        assert_eq!(seeds, ["a:1", "b:2"]);
    }

    #[test]
    fn an_unknown_key_is_named_with_the_known_ones() {
        let table: toml::Table = "histroy_limit = 5".parse().unwrap();
        let sub = Cli::command().find_subcommand("server").cloned().unwrap();
        let err = with_file(sub, &table, std::path::Path::new("c.toml")).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("unknown setting `histroy_limit`"), "{text}");
        assert!(text.contains("history_limit"), "{text}");
    }

    #[test]
    fn docs_configuration_lists_every_setting_as_the_binary_does() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/CONFIGURATION.md");
        let doc = std::fs::read_to_string(path).unwrap();
        let (_, rest) = doc.split_once("<!-- settings:start -->\n").unwrap();
        let (listed, _) = rest.split_once("<!-- settings:end -->").unwrap();
        assert!(
            listed == reference(),
            "docs/CONFIGURATION.md is out of date: replace its settings section \
             with the output of `cronmesh config reference`"
        );
        for line in listed.lines().filter(|l| l.starts_with("| `")) {
            assert!(
                !line.ends_with("|  |"),
                "a setting without a description: {line}"
            );
        }
    }

    #[test]
    fn every_setting_has_its_variable() {
        let sub = with_env(Cli::command().find_subcommand("server").cloned().unwrap());
        for arg in sub.get_arguments() {
            if NOT_SETTINGS.contains(&arg.get_id().as_str()) {
                continue;
            }
            let long = arg.get_long().unwrap();
            let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
            assert_eq!(env, Some(env_name(long)), "--{long}");
        }
    }
}
