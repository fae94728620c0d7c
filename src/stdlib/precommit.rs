//! The `precommit(path, hooks)` guard: a pre-commit style gate. The
//! workspace's repository is checked out at `HEAD` into a temporary git
//! worktree, the artifact is written there at `path` (confined as
//! `write_file` confines it) and staged, and each hook command runs in
//! the worktree, in the sandbox, in order; the guard passes when every
//! hook exits 0 (with no hooks given, the repository's own executable
//! `.git/hooks/pre-commit`). Feedback is the first failing hook's output.
//! The worktree is removed afterwards; the workspace itself is never
//! touched.
//!
//! Hooks read and write the worktree and their own temporary directory;
//! they read the repository's git directory but cannot write it, so
//! nothing the artifact makes a hook do reaches the repository.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::apply::{apply, confined_components, git, repository};
use super::process::{self, notes, output_tail};
use super::sandbox::{Confine, Scratch};
use super::text::shorten;
use crate::runtime::Verdict;

/// A temporary worktree, removed from the repository when done (and its
/// directory with the `TempDir` in any case).
struct Worktree {
    top: PathBuf,
    git_dirs: Vec<PathBuf>,
    dir: tempfile::TempDir,
}

impl Worktree {
    fn tree(&self) -> PathBuf {
        self.dir.path().join("tree")
    }

    async fn remove(self, timeout: Duration) {
        let tree = self.tree().to_string_lossy().into_owned();
        let mut write = self.git_dirs.clone();
        write.push(self.dir.path().to_path_buf());
        let _ = git(
            &self.top,
            &["worktree", "remove", "--force", &tree],
            &write,
            timeout,
        )
        .await;
        drop(self.dir);
        let _ = git(&self.top, &["worktree", "prune"], &self.git_dirs, timeout).await;
    }
}

pub async fn precommit(
    workdir: &Path,
    path: &str,
    hooks: &[String],
    artifact: &str,
    timeout: Duration,
    confine: &Confine,
) -> Verdict {
    let workspace = match workdir.canonicalize() {
        Ok(w) => w,
        Err(e) => return Verdict::fatal(format!("the workspace cannot be used: {e}")),
    };
    if let Err(e) = confined_components(path, &workspace) {
        return Verdict::fatal(format!("precommit's path: {e}"));
    }
    let Some((top, git_dirs)) = repository(&workspace) else {
        return Verdict::fatal(format!(
            "precommit needs a git repository, and the workspace `{}` is in none",
            workspace.display()
        ));
    };
    let own_hook;
    let hooks = if hooks.iter().all(|h| h.trim().is_empty()) {
        // the repository's own hook, as `git commit` would run it
        let common = git_dirs.last().cloned().unwrap_or_default();
        let hook = common.join("hooks").join("pre-commit");
        let executable = std::fs::metadata(&hook).is_ok_and(|m| {
            use std::os::unix::fs::PermissionsExt;
            m.is_file() && m.permissions().mode() & 0o111 != 0
        });
        if !executable {
            return Verdict::fatal(format!(
                "precommit names no hook, and the repository has no executable `{}`",
                hook.display()
            ));
        }
        own_hook = [format!(
            "'{}'",
            hook.to_string_lossy().replace('\'', "'\\''")
        )];
        &own_hook[..]
    } else {
        hooks
    };
    let dir = match tempfile::Builder::new()
        .prefix("guardflow-precommit-")
        .tempdir()
    {
        Ok(d) => d,
        Err(e) => return Verdict::fatal(format!("cannot make a temporary directory: {e}")),
    };
    let wt = Worktree {
        top: top.clone(),
        git_dirs: git_dirs.clone(),
        dir,
    };
    let verdict = run_in(&wt, &workspace, path, hooks, artifact, timeout, confine).await;
    wt.remove(timeout).await;
    verdict
}

async fn run_in(
    wt: &Worktree,
    workspace: &Path,
    path: &str,
    hooks: &[String],
    artifact: &str,
    timeout: Duration,
    confine: &Confine,
) -> Verdict {
    let tree = wt.tree();
    let mut write = wt.git_dirs.clone();
    write.push(wt.dir.path().to_path_buf());
    let tree_s = tree.to_string_lossy().into_owned();
    let args = ["worktree", "add", "--detach", "--quiet", &tree_s, "HEAD"];
    match git(&wt.top, &args, &write, timeout).await {
        Ok(out) if out.status == Some(0) => {}
        Ok(out) => {
            return Verdict::fatal(format!(
                "precommit could not make a worktree of `{}` at HEAD (a repository needs a \
                 first commit):\n{}",
                wt.top.display(),
                output_tail(&out)
            ))
        }
        Err(e) => return Verdict::fatal(format!("precommit: {e}")),
    }
    let under = workspace.strip_prefix(&wt.top).unwrap_or(Path::new(""));
    let rel = match confined_components(path, workspace) {
        Ok(parts) => under.join(parts.join("/")),
        Err(e) => return Verdict::fatal(format!("precommit's path: {e}")),
    };
    let rel_s = rel.to_string_lossy().into_owned();
    let (t, r, a) = (tree.clone(), rel_s.clone(), artifact.as_bytes().to_vec());
    match tokio::task::spawn_blocking(move || apply(&t, &r, &a)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Verdict::fatal(format!("precommit: {e}")),
        Err(e) => return Verdict::fatal(format!("precommit: the write stopped: {e}")),
    }
    match git(&tree, &["add", "--", &rel_s], &write, timeout).await {
        Ok(out) if out.status == Some(0) => {}
        Ok(out) => {
            return Verdict::fatal(format!(
                "precommit could not stage `{rel_s}`:\n{}",
                output_tail(&out)
            ))
        }
        Err(e) => return Verdict::fatal(format!("precommit: {e}")),
    }
    let mut allowed = confine.clone();
    allowed.write.push(tree.clone());
    allowed.read.extend(wt.git_dirs.iter().cloned());
    let cwd = tree.join(under);
    for hook in hooks.iter().map(|h| h.trim()).filter(|h| !h.is_empty()) {
        let shown = match hook.split_once('\n') {
            Some((first, _)) => format!("{}…", shorten(first, 80)),
            None => shorten(hook, 80),
        };
        let scratch = match Scratch::new("guardflow-hook-", &allowed, timeout) {
            Ok(s) => s,
            Err(e) => return Verdict::fatal(e),
        };
        let spec = process::Spec {
            command: hook.to_string(),
            argv: None,
            stdin: Vec::new(),
            env: vec![
                ("GUARDFLOW_PATH".into(), rel_s.clone()),
                (
                    "GUARDFLOW_ARTIFACT".into(),
                    tree.join(&rel).to_string_lossy().into_owned(),
                ),
                ("GIT_TERMINAL_PROMPT".into(), "0".into()),
            ],
            cwd: cwd.clone(),
            timeout,
            sandbox: scratch.policy,
            max_output: confine.max_output,
        };
        let out = match process::run(spec).await {
            Ok(o) => o,
            Err(e) => return Verdict::fatal(format!("cannot run the hook `{shown}`: {e}")),
        };
        let notes = notes(&out, confine);
        if out.timed_out {
            return Verdict::fail(format!(
                "the hook `{shown}` did not finish within {}:\n{}{notes}",
                crate::runtime::guard::show_duration(timeout),
                output_tail(&out)
            ));
        }
        match out.status {
            Some(0) => {}
            Some(n @ (126 | 127)) => {
                return Verdict::fatal(format!(
                    "the hook `{shown}` could not run (status {n}):\n{}{notes}",
                    output_tail(&out)
                ))
            }
            Some(n) => {
                return Verdict::fail(format!(
                    "the hook `{shown}` failed (status {n}) on `{rel_s}`:\n{}{notes}",
                    output_tail(&out)
                ))
            }
            None => {
                return Verdict::fail(format!(
                    "the hook `{shown}` was killed by a signal:\n{}{notes}",
                    output_tail(&out)
                ))
            }
        }
    }
    Verdict::Pass
}
