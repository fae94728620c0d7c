//! Every example checks clean.

use crate::support::{check_path, guardflow_files, render_all};

#[test]
fn every_example_checks_without_findings() {
    let files = guardflow_files("examples");
    assert!(files.len() >= 4, "examples/ has {} workflows", files.len());
    for path in files {
        let checked = check_path(&path);
        assert!(
            checked.diagnostics.is_empty(),
            "{}:\n{}",
            path.display(),
            render_all(&checked)
        );
    }
}

/// README's first command: the planning example, end to end, offline.
#[test]
fn the_planning_example_runs_end_to_end_with_its_recording() {
    let o = std::process::Command::new(crate::support::bin())
        .args([
            "run",
            "examples/planning.guardflow",
            "--task",
            "prepare",
            "--input",
            "goal=move the user database to PostgreSQL 16",
            "--replay",
            "examples/fixtures/planning.jsonl",
        ])
        .output()
        .expect("runs");
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(out.contains("## Rollback"), "{out}");
    assert!(err.contains("`prepare` succeeded"), "{err}");
    // one rejection each, then a pass: 4 calls of at most 6
    assert!(
        err.contains("generator calls: 4 (the checker's worst case: 6)"),
        "{err}"
    );
}

/// The examples' own `test` items pass (`guardflow test examples/`).
#[test]
fn the_examples_tests_pass() {
    let o = std::process::Command::new(crate::support::bin())
        .args(["test", "--color", "never", "examples"])
        .output()
        .expect("runs");
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains("test examples/tdd.guardflow :: tdd succeeds on the recorded run ... ok"),
        "{out}"
    );
    assert!(out.trim_end().ends_with("3 passed, 0 failed"), "{out}");
}

/// `examples/embed.rs`, built by `cargo test`, runs and succeeds.
#[test]
fn the_embedding_example_runs() {
    let exe = std::env::current_exe().expect("test binary");
    // target/debug/deps/main-… → target/debug/examples/embed
    let embed = exe
        .parent()
        .and_then(|d| d.parent())
        .map(|d| d.join("examples").join("embed"))
        .expect("target dir");
    if !embed.exists() {
        // `cargo test` builds examples; a filtered run may not have
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let built = std::process::Command::new(cargo)
            .args(["build", "--quiet", "--example", "embed"])
            .status()
            .expect("cargo");
        assert!(
            built.success() && embed.exists(),
            "{} was not built",
            embed.display()
        );
    }
    let o = std::process::Command::new(&embed).output().expect("runs");
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(out.contains("success: true, generator calls: 2"), "{out}");
    assert!(out.contains("def add(a: int, b: int) -> int:"), "{out}");
    assert!(err.contains("write_function attempt 1: Fail typed_defs: line 1: `def add(a: int, b: int):` has no return type annotation"), "{err}");
}
