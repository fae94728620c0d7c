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

#[test]
fn run_reports_a_failed_workflow_with_exit_one_and_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let flow = dir.path().join("f.guardflow");
    std::fs::write(
        &flow,
        "use std.{contains}\ngenerator g = replay(\"r.jsonl\")\n\
         action a(s: Text) -> Text { :generate g \"{s}\" :guard contains(\"yes\") :retry 1 }\n\
         task t(s: Text) { method m { :subtasks (x: a(s)) } }\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("r.jsonl"),
        "{\"action\": \"a\", \"attempt\": 1, \"output\": \"no\"}\n{\"action\": \"a\", \"attempt\": 2, \"output\": \"nope\"}\n",
    )
    .unwrap();
    let f = flow.to_string_lossy();
    let o = run(&["run", &f, "--input", "s=hi"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("all 2 attempts were rejected"),
        "{}",
        stderr(&o)
    );
    // --json: one event per line, the report last
    let o = run(&["run", &f, "--input", "s=hi", "--json"]);
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines[0]["event"], "run_started");
    let report = &lines.last().unwrap()["report"];
    assert_eq!(report["success"], false);
    assert_eq!(report["generator_calls"], 2);
    assert_eq!(
        report["attempts"][1]["prompt"],
        "hi\n\nYour previous answer was rejected:\ncontains: the text does not contain `yes`; it must contain it exactly\n\nThe rejected answer:\nno"
    );
}

/// `follow` follows only runs on Temporal: a local run, an unknown run
/// and a store with neither are refused with exit 2 and why.
#[test]
fn follow_refuses_a_run_that_did_not_run_on_temporal() {
    let dir = tempfile::tempdir().unwrap();
    let flow = dir.path().join("f.guardflow");
    std::fs::write(
        &flow,
        "use std.{contains}\ngenerator g = replay(\"r.jsonl\")\n\
         action a() -> Text { :generate g \"go\" :guard contains(\"yes\") :retry 0 }\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("r.jsonl"),
        "{\"action\": \"a\", \"attempt\": 1, \"output\": \"yes\"}\n",
    )
    .unwrap();
    let f = flow.to_string_lossy();
    let o = run(&["run", &f, "--task", "a"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let id = stderr(&o)
        .split_whitespace()
        .nth(1)
        .expect("the run id")
        .to_string();
    let store = dir.path().join(".guardflow/runs.db");
    let s = store.to_string_lossy();
    let o = run(&["follow", &id, "--store", &s]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("run {id} did not run on Temporal")),
        "{}",
        stderr(&o)
    );
    let o = run(&["follow", "20000101-000000-0000", "--store", &s]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("has no run `20000101-000000-0000`"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn run_usage_errors_exit_two_with_a_clear_message() {
    // the one top-level task is the default
    let o = run(&["run", "examples/planning.guardflow"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("`prepare` needs `goal: Text`: give it with `--input goal=VALUE`"),
        "{}",
        stderr(&o)
    );
    let o = run(&[
        "run",
        "examples/planning.guardflow",
        "--task",
        "prepare",
        "--input",
        "nothing",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("write NAME=VALUE"), "{}", stderr(&o));
    let o = run(&["run", "examples/planning.guardflow", "--task", "prepar"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("did you mean `prepare`?"),
        "{}",
        stderr(&o)
    );
    // a misspelt input: what the task takes, and the closest name
    let o = run(&["run", "examples/planning.guardflow", "--input", "gaol=move"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains(
            "--input gaol: `prepare` takes no input `gaol`; did you mean `goal`? (it takes: goal)"
        ),
        "{}",
        stderr(&o)
    );
    // an unknown task is reported before its inputs
    let o = run(&[
        "run",
        "examples/planning.guardflow",
        "--task",
        "prepar",
        "--input",
        "spec=x",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("there is no task or action `prepar`; did you mean `prepare`?"),
        "{}",
        stderr(&o)
    );
    let o = run(&["run", "no/such.guardflow"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("cannot read `no/such.guardflow`: no such file"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn test_reports_failures_like_a_test_runner() {
    let dir = tempfile::tempdir().unwrap();
    let flow = dir.path().join("f.guardflow");
    std::fs::write(
        &flow,
        "use std.{contains}\ngenerator g = replay(\"r.jsonl\")\n\
         action a() -> Text { :generate g \"p\" :guard contains(\"yes\") :retry 0 }\n\
         test \"passes\" { :run a() :with replay(\"r.jsonl\") :expect success, calls == 1 }\n\
         test \"expects too little\" { :run a() :with replay(\"r.jsonl\") :expect success, calls == 0 }\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("r.jsonl"),
        "{\"action\": \"a\", \"attempt\": 1, \"output\": \"yes\"}\n",
    )
    .unwrap();
    let o = run(&["test", "--color", "never", &flow.to_string_lossy()]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains(":: passes ... ok"), "{out}");
    assert!(out.contains(":: expects too little ... FAILED"), "{out}");
    assert!(
        out.contains("expected calls == 0, but the run made 1"),
        "{out}"
    );
    assert!(out.trim_end().ends_with("1 passed, 1 failed"), "{out}");
}

#[test]
fn ctrl_c_cancels_the_run_kills_its_programs_and_prints_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let flow = dir.path().join("f.guardflow");
    std::fs::write(
        &flow,
        format!(
            "use std.{{non_empty}}\ngenerator g = cmd(\"echo $$ > {}; sleep 60\", timeout: 2m, write: [\".\"])\n\
             action a() -> Text {{ :generate g \"p\" :guard non_empty :retry 0 }}\n\
             task t() {{ method m {{ :subtasks (x: a()) }} }}\n",
            pidfile.display()
        ),
    )
    .unwrap();
    let child = Command::new(bin())
        .args(["run", &flow.to_string_lossy()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = crate::support::wait_for_pid(&pidfile).expect("the generator never started");
    // SAFETY: signalling a child we spawned
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert!(stderr(&o).contains("cancelled by Ctrl-C"), "{}", stderr(&o));
    assert!(stderr(&o).contains("generator calls: 1"), "{}", stderr(&o));
    crate::support::assert_process_ends(&pid, "the generator's program");
}

/// A reader that leaves early (`guardflow compile big.guardflow | head`)
/// ends the command quietly, with its own exit code: no panic, no error.
#[test]
fn a_reader_that_leaves_early_is_not_an_error() {
    use std::io::Read;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("big.guardflow");
    // far more JSON than a pipe holds, so the writer meets the closed pipe
    let labels: Vec<String> = (0..3000).map(|i| format!("s{i}: step(x)")).collect();
    let src = format!(
        "use std.{{non_empty}}\ngenerator g = replay(\"a.jsonl\")\n\
         action step(x: Text) -> Text {{ :generate g \"go {{x}}\" :guard non_empty :retry 0 }}\n\
         task main(x: Text) {{\n  method m {{\n    :subtasks ({})\n  }}\n}}\n",
        labels.join(", ")
    );
    std::fs::write(&file, src).expect("write");
    let mut child = Command::new(bin())
        .args(["compile", &file.to_string_lossy()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut first = [0u8; 64];
    child
        .stdout
        .take()
        .expect("stdout")
        .read_exact(&mut first)
        .expect("read");
    // the pipe's reading end is dropped here
    let o = child.wait_with_output().expect("wait");
    assert!(
        first.starts_with(b"{"),
        "{}",
        String::from_utf8_lossy(&first)
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stderr(&o), "");
}

/// On a terminal, `guardflow run` shows a summary and at most a few
/// running actions, however many run at once, and clears the view before
/// its report.
#[test]
fn the_progress_view_of_a_wide_fork_join_in_a_terminal() {
    use expectrl::{Expect, Session};

    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("gen.sh"),
        "cat > /dev/null\nsleep 1\necho ok\n",
    )
    .expect("gen.sh");
    let labels: Vec<String> = (0..30).map(|i| format!("s{i}")).collect();
    let subtasks: Vec<String> = labels.iter().map(|l| format!("{l}: step()")).collect();
    let src = format!(
        "use std.{{non_empty}}\ngenerator g = cmd(\"sh gen.sh\", timeout: 60s)\n\
         action step() -> Text {{ :generate g \"go\" :guard non_empty :retry 0 }}\n\
         task main() {{\n  method m {{\n    :subtasks ({})\n    :ordering ({})\n  }}\n}}\n",
        subtasks.join(", "),
        labels.join(" || ")
    );
    let file = dir.path().join("wide.guardflow");
    std::fs::write(&file, src).expect("write");
    let mut command = Command::new(bin());
    command
        .args(["run", &file.to_string_lossy(), "--no-store"])
        .current_dir(dir.path())
        .env("TERM", "xterm-256color")
        .env_remove("NO_COLOR");
    let mut p = Session::spawn(command).expect("spawn in a pty");
    p.set_expect_timeout(Some(std::time::Duration::from_secs(60)));
    let shown = p
        .expect(expectrl::Regex(
            "30 running · 0 failed · 0 attempts \\((\\d+) running not shown\\)",
        ))
        .expect("the summary line");
    let hidden: usize = String::from_utf8_lossy(&shown[1]).parse().expect("a count");
    assert_eq!(hidden, 30 - 8, "8 running actions have a line of their own");
    p.expect("succeeded").expect("the report");
    let status = p.get_process().wait().expect("wait");
    assert!(format!("{status:?}").ends_with(", 0)"), "{status:?}");
}

/// `check --bounds` says what to add where it cannot give a number.
#[test]
fn bounds_without_numbers_say_what_to_add() {
    let dir = tempfile::tempdir().unwrap();
    let flow = dir.path().join("f.guardflow");
    std::fs::write(
        &flow,
        "use std.{non_empty}\ngenerator g = llm(model: \"m\")\n\
         action a(x: Text) -> Text {\n  :generate g \"{x}\"\n  :guard non_empty\n  :retry 1\n}\n\
         task main(x: Text) {\n  method m { :subtasks (s: a(x)) }\n}\n",
    )
    .unwrap();
    let o = run(&["check", "--bounds", flow.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("tokens unbounded: an action has no `:max-tokens N`"),
        "{out}"
    );
    assert!(out.contains("P(success) -: an action has no `:p`"), "{out}");
    // with both given, no hint
    std::fs::write(
        &flow,
        "use std.{non_empty}\ngenerator g = llm(model: \"m\")\n\
         action a(x: Text) -> Text {\n  :generate g \"{x}\"\n  :guard non_empty\n  :retry 1\n  :max-tokens 100\n  :p 0.5\n}\n\
         task main(x: Text) {\n  method m { :subtasks (s: a(x)) }\n}\n",
    )
    .unwrap();
    let o = run(&["check", "--bounds", flow.to_str().unwrap()]);
    assert!(!stdout(&o).contains("unbounded:"), "{}", stdout(&o));
    assert!(!stdout(&o).contains("P(success) -:"), "{}", stdout(&o));
}
