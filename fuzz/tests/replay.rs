//! Replays every checked-in input of every fuzz target through its body:
//! the seed and minimized corpus (`fuzz/corpus/TARGET/`) and every crash or
//! slow input found (`fuzz/regressions/TARGET/`). A body panics when the
//! code under test panics or breaks the target's invariants, so this runs
//! on stable Rust in CI what libFuzzer found on nightly. It asserts no
//! durations (machines differ); the libFuzzer builds hold the time budget.

use std::{
    fs,
    panic::{catch_unwind, AssertUnwindSafe},
    path::{Path, PathBuf},
};

use cronmesh_fuzz::TARGETS;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// The files of `dir` (none when it does not exist), sorted.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

/// Runs every input of `folder/TARGET` through `body`; the failures, named.
fn replay(folder: &str, target: &str, body: cronmesh_fuzz::Body) -> (usize, Vec<String>) {
    let files = inputs(&root().join(folder).join(target));
    let mut failures = Vec::new();
    for file in &files {
        let data = fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| body(&data))) {
            let why = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!("{}: {why}", file.display()));
        }
    }
    (files.len(), failures)
}

#[test]
fn every_target_has_a_seed_corpus() {
    for (target, _) in TARGETS {
        let seeds = inputs(&root().join("corpus").join(target));
        assert!(
            seeds.len() >= 5,
            "fuzz/corpus/{target} holds {} inputs",
            seeds.len()
        );
    }
}

#[test]
fn corpus_and_regressions_replay_without_a_panic() {
    let mut failures = Vec::new();
    for (target, body) in TARGETS {
        for folder in ["corpus", "regressions"] {
            let (count, failed) = replay(folder, target, body);
            eprintln!("{folder}/{target}: {count} inputs");
            failures.extend(failed);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
