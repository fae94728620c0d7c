//! Which run store a reading command (`runs`, `show`, `trace`, `export`,
//! `stats`) uses.
//!
//! `guardflow run FILE` records beside the workflow, in
//! `.guardflow/runs.db` of FILE's directory. A reading command given no
//! `--store` finds that store the way a user expects:
//!
//! 0. `$GUARDFLOW_STORE`, when set;
//! 1. the nearest `.guardflow/runs.db` in this directory or above it (as
//!    git finds `.git`);
//! 2. otherwise the stores below this directory (a bounded walk that skips
//!    hidden directories, `target` and `node_modules`): the one that holds
//!    the run asked for, or the only one there is, named on stderr;
//! 3. otherwise an error that says where runs go and how to name a store.

use std::path::{Path, PathBuf};

use crate::store::{self, Store};

/// The `--store` option of the reading commands.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct StoreArg {
    /// The run store: a file, a workflow (its store), or a directory (its
    /// `.guardflow/runs.db`). Default: $GUARDFLOW_STORE, else the nearest
    /// `.guardflow/runs.db` here or above, else the one below here that
    /// has the run
    #[arg(long, value_name = "PATH")]
    pub store: Option<PathBuf>,
}

/// `$GUARDFLOW_STORE`, when set and not empty: the store every command
/// uses when given no `--store` (a CI job, a test suite, one place for all
/// runs).
pub fn from_env() -> Option<PathBuf> {
    std::env::var_os("GUARDFLOW_STORE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// How deep below the working directory stores are looked for.
const MAX_DEPTH: usize = 4;
/// How many directories the walk below looks into at most.
const MAX_DIRS: usize = 4000;
/// Directories never walked into.
const SKIP: &[&str] = &["target", "node_modules"];

impl StoreArg {
    /// The store to read, for `run` when a command is about one run.
    pub fn locate(&self, run: Option<&str>) -> Result<PathBuf, String> {
        if let Some(arg) = self.store.clone().or_else(from_env) {
            return Ok(store::resolve(&arg));
        }
        let cwd = std::env::current_dir()
            .map_err(|e| format!("the working directory cannot be read: {e}"))?;
        locate_from(&cwd, run)
    }
}

/// [`StoreArg::locate`] from `dir`, with no `--store`.
pub fn locate_from(dir: &Path, run: Option<&str>) -> Result<PathBuf, String> {
    let nearest = nearest_above(dir);
    if let (Some(near), None) = (&nearest, run) {
        return Ok(relative(dir, near));
    }
    if let (Some(near), Some(id)) = (&nearest, run) {
        if has_run(near, id) {
            return Ok(relative(dir, near));
        }
    }
    let below = stores_below(dir);
    if let Some(id) = run {
        let holding: Vec<&PathBuf> = below.iter().filter(|p| has_run(p, id)).collect();
        if let [only] = holding.as_slice() {
            let shown = relative(dir, only);
            eprintln!(
                "note: reading {} (the store below here that holds run {id})",
                shown.display()
            );
            return Ok(shown);
        }
    }
    if let Some(near) = nearest {
        // the command reports the missing run against the nearest store
        return Ok(relative(dir, &near));
    }
    match below.as_slice() {
        [] => Err(format!(
            "no run store in {} or above it, nor below it.\n  \
             `guardflow run FILE` records its runs beside FILE, in .guardflow/runs.db of FILE's directory;\n  \
             name a store with --store PATH (a directory, a workflow file or a runs.db file)",
            dir.display()
        )),
        [only] => {
            let shown = relative(dir, only);
            eprintln!(
                "note: reading {} (the only run store below here)",
                shown.display()
            );
            Ok(shown)
        }
        several => {
            let list: Vec<String> = several
                .iter()
                .map(|p| format!("  --store {}", relative(dir, p).display()))
                .collect();
            Err(format!(
                "no run store in {} or above it, and {} below it; name one:\n{}",
                dir.display(),
                several.len(),
                list.join("\n")
            ))
        }
    }
}

fn nearest_above(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .map(|a| a.join(".guardflow").join("runs.db"))
        .find(|p| p.is_file())
}

fn has_run(path: &Path, id: &str) -> bool {
    Store::open_read(path).and_then(|s| s.run_meta(id)).is_ok()
}

/// `path` relative to `dir` when it is below it, for messages.
fn relative(dir: &Path, path: &Path) -> PathBuf {
    match path.strip_prefix(dir) {
        Ok(rest) => rest.to_path_buf(),
        Err(_) => path.to_path_buf(),
    }
}

/// Every `.guardflow/runs.db` below `dir` (not `dir`'s own), sorted; the
/// walk is bounded in depth and in directories visited.
pub fn stores_below(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut queue = std::collections::VecDeque::from([(dir.to_path_buf(), 0usize)]);
    let mut visited = 0usize;
    while let Some((current, depth)) = queue.pop_front() {
        visited += 1;
        if visited > MAX_DIRS {
            break;
        }
        let Ok(entries) = std::fs::read_dir(&current) else {
            continue;
        };
        let mut subdirs: Vec<PathBuf> = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            // a symbolic link is not followed: no loops, no walking out
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if !kind.is_dir() {
                continue;
            }
            if name == ".guardflow" {
                if depth > 0 {
                    let db = entry.path().join("runs.db");
                    if db.is_file() {
                        found.push(db);
                    }
                }
                continue;
            }
            if name.starts_with('.') || SKIP.contains(&name.as_ref()) {
                continue;
            }
            if depth < MAX_DEPTH {
                subdirs.push(entry.path());
            }
        }
        subdirs.sort();
        queue.extend(subdirs.into_iter().map(|d| (d, depth + 1)));
    }
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn make_store(dir: &Path) -> PathBuf {
        let path = dir.join(".guardflow").join("runs.db");
        Store::open(&path).expect("store");
        path
    }

    #[test]
    fn the_nearest_store_above_wins() {
        let tmp = tempfile::tempdir().unwrap();
        make_store(tmp.path());
        let deep = tmp.path().join("a").join("b");
        std::fs::create_dir_all(&deep).unwrap();
        let found = locate_from(&deep, None).unwrap();
        assert_eq!(found, tmp.path().join(".guardflow").join("runs.db"));
    }

    #[test]
    fn the_only_store_below_is_used() {
        let tmp = tempfile::tempdir().unwrap();
        let examples = tmp.path().join("examples");
        std::fs::create_dir_all(&examples).unwrap();
        make_store(&examples);
        let found = locate_from(tmp.path(), None).unwrap();
        assert_eq!(found, Path::new("examples/.guardflow/runs.db"));
    }

    #[test]
    fn several_stores_below_are_listed() {
        let tmp = tempfile::tempdir().unwrap();
        for d in ["a", "b"] {
            let dir = tmp.path().join(d);
            std::fs::create_dir_all(&dir).unwrap();
            make_store(&dir);
        }
        let err = locate_from(tmp.path(), None).unwrap_err();
        assert!(err.contains("--store a/.guardflow/runs.db"), "{err}");
        assert!(err.contains("--store b/.guardflow/runs.db"), "{err}");
    }

    #[test]
    fn no_store_says_where_runs_go() {
        let tmp = tempfile::tempdir().unwrap();
        let err = locate_from(tmp.path(), None).unwrap_err();
        assert!(err.contains("records its runs beside FILE"), "{err}");
    }

    #[test]
    fn hidden_and_build_directories_are_not_walked() {
        let tmp = tempfile::tempdir().unwrap();
        for d in ["target/x", ".hidden", "node_modules/y"] {
            let dir = tmp.path().join(d);
            std::fs::create_dir_all(&dir).unwrap();
            make_store(&dir);
        }
        assert!(stores_below(tmp.path()).is_empty());
    }
}
