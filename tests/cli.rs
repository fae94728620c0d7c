//! The `guardflow` binary: exit codes, formats and bad input.

use std::process::{Command, Output};

use crate::support::bin;

fn run(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .output()
        .expect("run guardflow")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn check_examples_exits_zero() {
    let o = run(&["check", "examples"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("no problems found"));
}

#[test]
fn check_with_errors_exits_one_and_renders_codes() {
    let o = run(&["check", "--color", "never", "tests/ui"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("[E0102] Error"), "{}", stdout(&o));
}

#[test]
fn json_format_emits_one_object_per_finding() {
    let o = run(&["check", "--format", "json", "tests/ui"]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.len() >= 40);
    for line in lines {
        let v: serde_json::Value = serde_json::from_str(line).expect("each line is JSON");
        for key in [
            "code", "severity", "message", "file", "start", "end", "label",
        ] {
            assert!(v.get(key).is_some(), "no `{key}` in {line}");
        }
        assert!(v["start"]["line"].as_u64().expect("line") >= 1);
        assert!(v["start"]["column"].as_u64().expect("column") >= 1);
    }
}

#[test]
fn bad_paths_and_files_exit_two_with_a_message() {
    let dir = std::env::temp_dir().join(format!("guardflow-cli-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("empty_dir")).expect("mkdir");
    let binary = dir.join("binary.guardflow");
    std::fs::write(&binary, [0x61, 0xff, 0xfe, 0x0a]).expect("write");
    let empty = dir.join("empty.guardflow");
    std::fs::write(&empty, "  \n").expect("write");
    let cases: [(String, &str); 4] = [
        (
            dir.join("missing.guardflow").to_string_lossy().into_owned(),
            "no such file",
        ),
        (binary.to_string_lossy().into_owned(), "not UTF-8"),
        (empty.to_string_lossy().into_owned(), "empty"),
        (
            dir.join("empty_dir").to_string_lossy().into_owned(),
            "no .guardflow files",
        ),
    ];
    for (path, words) in cases {
        let o = run(&["check", &path]);
        assert_eq!(o.status.code(), Some(2), "{path}");
        assert!(stderr(&o).contains(words), "{path}: {}", stderr(&o));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn usage_errors_exit_two() {
    assert_eq!(run(&["check"]).status.code(), Some(2));
    assert_eq!(run(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(
        run(&["check", "--format", "xml", "examples"]).status.code(),
        Some(2)
    );
}

#[test]
fn help_teaches_with_examples() {
    let o = run(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("Examples:"));
    for sub in ["check", "compile", "explain"] {
        let o = run(&[sub, "--help"]);
        assert_eq!(o.status.code(), Some(0), "{sub}");
        assert!(
            stdout(&o).contains("Examples:"),
            "{sub} --help has no examples"
        );
    }
}

#[test]
fn explain_prints_the_page_and_refuses_unknown_codes() {
    let o = run(&["explain", "e0102"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).starts_with("# E0102: unknown guard"));
    let o = run(&["explain", "E9999"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--list"));
    let o = run(&["explain", "--list"]);
    assert!(stdout(&o).lines().count() >= 40);
}

#[test]
fn compile_writes_json_that_reads_back() {
    let out = std::env::temp_dir().join(format!("guardflow-compile-{}.json", std::process::id()));
    let o = run(&[
        "compile",
        "examples/tdd.guardflow",
        "-o",
        &out.to_string_lossy(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let json = std::fs::read_to_string(&out).expect("written");
    let program = guardflow::check::ir::Program::from_json(&json).expect("reads back");
    assert!(program.task("tdd").is_some());
    let _ = std::fs::remove_file(&out);
    let o = run(&["compile", "tests/ui/E0102_unknown_guard.guardflow"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty() || !stdout(&o).trim_start().starts_with('{'));
}
