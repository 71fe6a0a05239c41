//! Target `config`: the `--config` TOML file of `cronmesh server`, `dev`
//! and `executor`, as node/src/settings.rs reads it: parsed to a table,
//! each value checked by its flag's own parser and made the flag's default
//! (`settings::with_file`), then the command line parsed (with no flags, so
//! the file is all there is) into the command's arguments, and those made
//! into the node's or executor's configuration.
//!
//! Input: the file's text (UTF-8, as `read_to_string` requires), tried
//! for all three commands. The last step reads the files some settings
//! name (secrets, tokens, certificates) and creates the receipts file, so
//! it runs on the table without the settings that name a path (those
//! whose flag takes a `PathBuf`).
//!
//! Invariants: none beyond not panicking. A file whose settings each pass
//! their flag's parser must not make clap panic (clap checks a default
//! value against its argument only in debug builds, by panicking).

use std::{path::Path, sync::OnceLock};

use clap::{builder::ValueHint, Command, CommandFactory, FromArgMatches};
use node::{
    cli::Cli,
    config::{DevArgs, ServerArgs},
    executor::{ExecutorArgs, ExecutorConfig},
    settings,
};

/// The configurable subcommands, built once (building the whole command
/// line takes longer than parsing most files).
fn commands() -> &'static [(&'static str, Command)] {
    static COMMANDS: OnceLock<Vec<(&'static str, Command)>> = OnceLock::new();
    COMMANDS.get_or_init(|| {
        let root = Cli::command();
        settings::CONFIGURABLE
            .into_iter()
            .filter_map(|name| Some((name, root.find_subcommand(name)?.clone())))
            .collect()
    })
}

/// The file keys of `command`'s settings whose flag takes a path.
pub fn path_keys(command: &Command) -> Vec<String> {
    command
        .get_arguments()
        .filter(|arg| arg.get_value_hint() == ValueHint::AnyPath)
        .filter_map(|arg| arg.get_long())
        .map(settings::file_key)
        .collect()
}

pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("fuzz.toml");
    let Ok(table) = settings::parse_text(text, path) else {
        return;
    };
    for (name, command) in commands() {
        parse_args(name, command, &table, path, false);
        let skip = path_keys(command);
        let without_paths: toml::Table = table
            .iter()
            .filter(|(key, _)| !skip.contains(&settings::file_key(key)))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        parse_args(name, command, &without_paths, path, true);
    }
}

/// The file's settings through `name`'s flags into its arguments, and
/// into its configuration when `configure`.
fn parse_args(name: &str, command: &Command, table: &toml::Table, path: &Path, configure: bool) {
    let Ok(command) = settings::with_file(command.clone(), table, path) else {
        return;
    };
    let Ok(matches) = command.try_get_matches_from([name]) else {
        return;
    };
    match name {
        "server" => {
            if let Ok(args) = ServerArgs::from_arg_matches(&matches) {
                if configure {
                    let _ = args.into_config();
                }
            }
        }
        "dev" => {
            if let Ok(args) = DevArgs::from_arg_matches(&matches) {
                if configure {
                    let _ = args.into_config();
                }
            }
        }
        _ => {
            if let Ok(args) = ExecutorArgs::from_arg_matches(&matches) {
                if configure {
                    let _ = ExecutorConfig::try_from(args);
                }
            }
        }
    }
}
