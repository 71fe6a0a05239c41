//! The repository stands on its own: a clone with nothing beside it builds,
//! tests and explains itself. So no file of it may refer to a path outside
//! it, and none may name the contract document or the sibling folder that
//! once lived beside the repository.
//!
//! The files checked are those git tracks or would track (untracked but not
//! ignored), or, without git, every file but `target/` and `.git/`. Binary
//! files and `Cargo.lock` are skipped. In every other file, each path that
//! goes up with `../` is resolved lexically against the file's directory and
//! against the directory of the nearest `Cargo.toml` above it (the crate's
//! manifest directory); a path starting with `/../` is the tail of a
//! `concat!(env!("CARGO_MANIFEST_DIR"), ...)` and is resolved against the
//! manifest directory alone. A path is reported when it leaves the
//! repository under every reading.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::Command,
};

fn repo_root() -> PathBuf {
    let raw = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    raw.canonicalize().unwrap_or(raw)
}

/// Texts no file may contain, built here so this file does not contain them.
fn needles() -> Vec<String> {
    vec![format!("{}.md", "DESIGN"), format!("{}/", "shared")]
}

/// The repository's files, relative to `root`.
fn repo_files(root: &Path) -> Vec<PathBuf> {
    git_files(root).unwrap_or_else(|| {
        let mut files = Vec::new();
        walk(root, Path::new(""), &mut files);
        files
    })
}

/// What `git ls-files` lists, or `None` when git or the repository is not
/// at hand.
fn git_files(root: &Path) -> Option<Vec<PathBuf>> {
    if !root.join(".git").exists() {
        return None;
    }
    let out = Command::new("git")
        .arg("-C")
        .arg(root)
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let names: BTreeSet<PathBuf> = out
        .stdout
        .split(|b| *b == 0)
        .filter(|name| !name.is_empty())
        .map(|name| PathBuf::from(String::from_utf8_lossy(name).into_owned()))
        .collect();
    Some(names.into_iter().collect())
}

fn walk(root: &Path, dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name == "target" || name == ".git" {
            continue;
        }
        let path = dir.join(&name);
        match entry.file_type() {
            Ok(kind) if kind.is_dir() => walk(root, &path, files),
            Ok(kind) if kind.is_file() => files.push(path),
            _ => {}
        }
    }
}

/// The directory of the nearest `Cargo.toml` at or above `dir` (both
/// relative to `root`); the root when there is none.
fn manifest_dir(root: &Path, dir: &Path) -> PathBuf {
    let mut current = Some(dir);
    while let Some(candidate) = current {
        if root.join(candidate).join("Cargo.toml").is_file() {
            return candidate.to_path_buf();
        }
        current = candidate.parent();
    }
    PathBuf::new()
}

/// Whether `path`, read from `base` (relative to the repository's root),
/// goes above the root at any point.
fn escapes(base: &Path, path: &str) -> bool {
    let mut depth = base
        .components()
        .filter(|c| matches!(c, std::path::Component::Normal(_)))
        .count();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." if depth == 0 => return true,
            ".." => depth -= 1,
            _ => depth += 1,
        }
    }
    false
}

/// The words of a line that may be paths: split at white space, quotes,
/// brackets and the punctuation that surrounds paths in code and prose.
fn words(line: &str) -> impl Iterator<Item = &str> {
    line.split(|c: char| c.is_whitespace() || "\"'`()[]{}<>,;:=|*".contains(c))
        .filter(|word| !word.is_empty())
}

const UP: &str = "../";

/// The problems of one file's text: `(line number, what, the line)`.
fn problems_in(text: &str, file_dir: &Path, manifest: &Path) -> Vec<(usize, String, String)> {
    let needles = needles();
    let mut found = Vec::new();
    for (index, line) in text.lines().enumerate() {
        for needle in &needles {
            if line.contains(needle.as_str()) {
                found.push((index + 1, format!("mentions {needle:?}"), line.to_string()));
            }
        }
        for word in words(line) {
            let outside = if let Some(rest) = word.strip_prefix('/') {
                // `concat!(env!("CARGO_MANIFEST_DIR"), "/../x")`; any other
                // absolute path is not relative to the repository.
                rest.starts_with(UP) && escapes(manifest, rest)
            } else {
                word.contains(UP) && escapes(file_dir, word) && escapes(manifest, word)
            };
            if outside {
                found.push((
                    index + 1,
                    format!("{word:?} leads outside the repository"),
                    line.to_string(),
                ));
            }
        }
    }
    found
}

#[test]
fn no_file_refers_to_a_path_outside_the_repository() {
    let root = repo_root();
    let files = repo_files(&root);
    for expected in ["Cargo.toml", "README.md"] {
        assert!(
            files.iter().any(|f| f == Path::new(expected)),
            "{expected} is not among the {} files found under {}",
            files.len(),
            root.display()
        );
    }
    let mut report = Vec::new();
    for file in &files {
        if file.file_name().is_some_and(|name| name == "Cargo.lock") {
            continue;
        }
        let Ok(bytes) = std::fs::read(root.join(file)) else {
            continue; // listed by git but deleted in the work tree
        };
        if bytes.contains(&0) {
            continue;
        }
        let text = String::from_utf8_lossy(&bytes);
        let dir = file.parent().unwrap_or(Path::new(""));
        let manifest = manifest_dir(&root, dir);
        for (line, what, text) in problems_in(&text, dir, &manifest) {
            let text: String = text.trim().chars().take(200).collect();
            report.push(format!("{}:{line}: {what}\n    {text}", file.display()));
        }
    }
    assert!(
        report.is_empty(),
        "{} reference(s) outside the repository:\n{}",
        report.len(),
        report.join("\n")
    );
}

#[test]
fn the_check_tells_inside_from_outside() {
    let up = |n: usize| [".."; 8][..n].join("/");
    let file_dir = Path::new("node/src/api");
    let manifest = Path::new("node");
    let outside = |line: &str| !problems_in(line, file_dir, manifest).is_empty();

    // Up to the root is inside; one more level is not.
    assert!(!outside(&format!("see {}/docs/API.md", up(3))));
    assert!(outside(&format!("see `{}/elsewhere/x.json`.", up(4))));
    assert!(outside(&format!("[link]({}/x.md)", up(5))));
    // Inside when read from the file's directory, though not from the
    // manifest directory: one reading inside is enough.
    assert!(!outside(&format!("let p = \"{}/etc\";", up(2))));
    // `CARGO_MANIFEST_DIR` tails are read from the manifest directory only.
    assert!(!outside(&format!("\"/{}/docs/API.md\"", up(1))));
    assert!(outside(&format!("\"/{}/vectors/a.json\"", up(2))));
    // Other absolute paths, URLs and ellipses are not relative paths.
    assert!(!outside("/var/lib/cronmesh and http://h/a/b and 1,2,..."));
    // The old names are refused wherever they appear.
    for needle in needles() {
        assert!(outside(&format!("see {needle}")), "{needle}");
    }
}
