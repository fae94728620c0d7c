//! The `write_file` effect through the binary: an accepted artifact is
//! written atomically into the workspace, a rerun with the same content
//! leaves it untouched, the content's SHA-256 is in the run store, an
//! optional commit touches only that path, and every way out of the
//! workspace is refused.

use std::os::unix::fs::{symlink, MetadataExt};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::support::{bin, run_bounded, Ran};

const CALC: &str = "def add(a, b):\n    return a + b\n";

/// Writes `flow.guardflow` with one action whose artifact (the replayed
/// `content`) goes through `:effect EFFECT`, and runs it with `--json`.
fn run_write(dir: &Path, effect: &str, content: &str) -> Ran {
    let source = format!(
        r#"use std.{{exit_code}}
generator g = replay("answers.jsonl")
action write() -> Text {{
  :generate g "Write the module"
  :effect {effect}
  :guard exit_code(0)
  :retry 1
  :idempotent
}}
task main() {{
  method only {{
    :subtasks (w: write())
  }}
}}
"#
    );
    std::fs::write(dir.join("flow.guardflow"), source).expect("writes the flow");
    let answer = serde_json::json!({"action": "write", "attempt": 1, "output": content});
    std::fs::write(dir.join("answers.jsonl"), format!("{answer}\n")).expect("writes answers");
    let mut cmd = Command::new(bin());
    cmd.arg("run").arg(dir.join("flow.guardflow")).arg("--json");
    run_bounded(cmd, Duration::from_secs(60))
}

fn outcome(ran: &Ran) -> serde_json::Value {
    ran.attempts()
        .into_iter()
        .find_map(|a| a.get("outcome").cloned().filter(|o| !o.is_null()))
        .unwrap_or_else(|| panic!("no outcome:\n{}", ran.all()))
}

fn sha256(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn an_artifact_is_written_exactly_and_a_rerun_leaves_it_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ran = run_write(dir.path(), r#"write_file("src/calc.py")"#, CALC);
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    let file = dir.path().join("src/calc.py");
    // exactly the artifact, its last line end included
    assert_eq!(std::fs::read_to_string(&file).expect("reads"), CALC);
    let o = outcome(&ran);
    assert_eq!(o["sha256"], sha256(CALC), "{o}");
    assert_eq!(o["changed"], true, "{o}");
    assert_eq!(o["path"], "src/calc.py", "{o}");
    assert_eq!(
        o["stdout"],
        format!("wrote src/calc.py (32 bytes, sha256 {})\n", sha256(CALC))
    );
    let inode = std::fs::metadata(&file).expect("meta").ino();
    let mtime = std::fs::metadata(&file).expect("meta").mtime_nsec();

    let again = run_write(dir.path(), r#"write_file("src/calc.py")"#, CALC);
    assert_eq!(again.code, Some(0), "{}", again.all());
    let o = outcome(&again);
    assert_eq!(o["changed"], false, "{o}");
    assert_eq!(
        o["stdout"],
        format!(
            "src/calc.py unchanged (32 bytes, sha256 {})\n",
            sha256(CALC)
        )
    );
    let meta = std::fs::metadata(&file).expect("meta");
    assert_eq!((meta.ino(), meta.mtime_nsec()), (inode, mtime), "rewritten");

    // new content replaces the file by a rename: a new inode, no leftovers
    let ran = run_write(dir.path(), r#"write_file("src/calc.py")"#, "x = 1\n");
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    assert_eq!(std::fs::read_to_string(&file).expect("reads"), "x = 1\n");
    assert_ne!(std::fs::metadata(&file).expect("meta").ino(), inode);
    let names: Vec<_> = std::fs::read_dir(dir.path().join("src"))
        .expect("lists")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, ["calc.py"]);
}

#[test]
fn the_content_hash_is_recorded_in_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ran = run_write(dir.path(), r#"write_file("calc.py")"#, CALC);
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    let db = rusqlite::Connection::open_with_flags(
        dir.path().join(".guardflow/runs.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("opens the store");
    let recorded: String = db
        .query_row(
            "SELECT outcome FROM verdicts WHERE outcome IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .expect("an outcome row");
    let recorded: serde_json::Value = serde_json::from_str(&recorded).expect("json");
    assert_eq!(recorded["sha256"], sha256(CALC), "{recorded}");
    assert_eq!(recorded["path"], "calc.py", "{recorded}");
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("runs git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_commit_touches_only_that_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = dir.path();
    git(repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("README"), "hi\n").expect("writes");
    git(repo, &["add", "README"]);
    git(repo, &["commit", "-qm", "init"]);
    // something else staged and something else changed: neither committed
    std::fs::write(repo.join("staged.txt"), "staged\n").expect("writes");
    git(repo, &["add", "staged.txt"]);
    std::fs::write(repo.join("README"), "changed\n").expect("writes");
    // the workflow lives in a subdirectory of the repository
    let ws = repo.join("work");
    std::fs::create_dir(&ws).expect("mkdir");
    let effect = r#"write_file("src/calc.py", commit: "Add calc")"#;
    let ran = run_write(&ws, effect, CALC);
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    let o = outcome(&ran);
    let head = git(repo, &["rev-parse", "HEAD"]).trim().to_string();
    assert_eq!(o["commit"], head, "{o}");
    assert!(
        o["stdout"]
            .as_str()
            .unwrap_or("")
            .contains(&format!("committed src/calc.py as {head}")),
        "{o}"
    );
    assert_eq!(
        git(repo, &["show", "--name-only", "--format=%s", "HEAD"]),
        "Add calc\n\nwork/src/calc.py\n"
    );
    assert_eq!(git(repo, &["show", "HEAD:work/src/calc.py"]), CALC);
    let status = git(repo, &["status", "--porcelain"]);
    assert!(status.contains("A  staged.txt"), "{status}");
    assert!(status.contains(" M README"), "{status}");

    // the same content again: no new commit
    let ran = run_write(&ws, effect, CALC);
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    let o = outcome(&ran);
    assert_eq!(o["commit"], "", "{o}");
    assert_eq!(o["changed"], false, "{o}");
    assert_eq!(git(repo, &["rev-parse", "HEAD"]).trim(), head);
}

#[test]
fn a_commit_outside_a_repository_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ran = run_write(dir.path(), r#"write_file("a.py", commit: "x")"#, CALC);
    assert_ne!(ran.code, Some(0), "{}", ran.all());
    assert!(
        ran.all().contains("is in no git repository"),
        "{}",
        ran.all()
    );
}

/// Runs a write to `path` that must be refused with `why`.
fn refused(dir: &Path, path: &str, why: &str) {
    let ran = run_write(dir, &format!("write_file({path:?})"), "owned\n");
    assert_ne!(ran.code, Some(0), "{path}: {}", ran.all());
    assert!(ran.all().contains(why), "{path}: {}", ran.all());
}

#[test]
fn every_way_out_of_the_workspace_is_refused() {
    let outside = tempfile::tempdir().expect("tempdir");
    let root = tempfile::tempdir().expect("tempdir");
    let ws = root.path().join("ws");
    std::fs::create_dir(&ws).expect("mkdir");
    std::fs::write(outside.path().join("victim"), "keep\n").expect("writes");

    refused(&ws, "../escaped", "goes up with `..`");
    assert!(!root.path().join("escaped").exists());
    refused(&ws, "/tmp/guardflow-escaped", "outside the workspace");
    assert!(!Path::new("/tmp/guardflow-escaped").exists());
    refused(&ws, ".git/hooks/pre-commit", "inside `.git`");
    refused(&ws, ".guardflow/runs.db", "inside `.guardflow`");

    // a link in the workspace pointing out, as a directory and as the file
    symlink(outside.path(), ws.join("out")).expect("link");
    refused(&ws, "out/victim", "passes through `out`, a symbolic link");
    symlink(outside.path().join("victim"), ws.join("victim")).expect("link");
    refused(&ws, "victim", "`victim` is a symbolic link");
    assert_eq!(
        std::fs::read_to_string(outside.path().join("victim")).expect("reads"),
        "keep\n"
    );

    // a directory written once, then swapped for a link out
    let ran = run_write(&ws, r#"write_file("sub/a.txt")"#, "first\n");
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    std::fs::remove_dir_all(ws.join("sub")).expect("removes");
    symlink(outside.path(), ws.join("sub")).expect("link");
    refused(&ws, "sub/a.txt", "passes through `sub`, a symbolic link");
    assert!(!outside.path().join("a.txt").exists());
    let names: Vec<_> = std::fs::read_dir(outside.path())
        .expect("lists")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, ["victim"]);
}
