//! `cronmesh restore --data-dir DIR FILE`: a new node's data directory
//! made from a backup, to start with `cronmesh server --data-dir DIR` (or
//! `dev`). It refuses a directory that already holds a store.

use std::path::{Path, PathBuf};

use actors::store::{backup::Restored, retention::HistoryPolicy, StateMachine};
use anyhow::{bail, Context};

#[derive(clap::Args, Debug, Clone)]
pub struct RestoreArgs {
    /// The new node's data directory: missing or empty.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// A file written by `cronmesh backup`.
    pub file: PathBuf,
}

pub fn restore(args: &RestoreArgs) -> anyhow::Result<Restored> {
    let backup = std::fs::File::open(&args.file)
        .with_context(|| format!("cannot read the backup {}", args.file.display()))?;
    let backup = std::io::BufReader::with_capacity(1024 * 1024, backup);
    let store_dir = args.data_dir.join("state");
    if is_in_use(&store_dir) {
        bail!(
            "{} already holds a node's store; restore into a new, empty data directory",
            args.data_dir.display()
        );
    }
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create {}", args.data_dir.display()))?;
    let db = crate::node::open_database(&store_dir)
        .with_context(|| format!("cannot create the store in {}", store_dir.display()))?;
    let store = StateMachine::with_db(db, HistoryPolicy::default())
        .with_context(|| format!("cannot create the store in {}", store_dir.display()))?;
    let restored = store
        .restore_backup(backup)
        .with_context(|| format!("cannot restore {}", args.file.display()))?;
    Ok(restored)
}

fn is_in_use(store_dir: &Path) -> bool {
    std::fs::read_dir(store_dir).is_ok_and(|mut entries| entries.next().is_some())
}

/// What `restore` tells the operator: what it wrote and how to start it.
pub fn summary(restored: &Restored, data_dir: &Path) -> String {
    let dir = data_dir.display();
    let jobs = match restored.jobs {
        1 => "1 job".to_string(),
        n => format!("{n} jobs"),
    };
    format!(
        "restored {jobs} (applied index {index} of the source) into {dir}.\n\
         Start it as a single node: cronmesh server --data-dir {dir} ...\n\
         or as the first node of a new Raft cluster, the only voter in --peers \
         (--node-id 1 --raft ADDR --peers 1=ADDR), then start the others with --join",
        index = restored.source_index,
    )
}
