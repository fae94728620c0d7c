//! The test-runner guards clean up after generated code: a suite that
//! never ends is killed at its timeout with its whole process group, and
//! children that generated code forks do not outlive the guard.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::{assert_process_ends, bin, run_bounded, wait_for_pid, Ran};

/// Runs an action whose answer is `code`, guarded by `guard`, with
/// `tests` given as the recorded tests.
fn run_guarded(dir: &Path, code: &str, tests: &str, guard: &str) -> Ran {
    let source = format!(
        r#"use std.{{pytest, unittest, python_syntax}}
generator g = replay("answers.jsonl")
action write_tests() -> Code<python> {{
  :generate g "tests"
  :guard python_syntax
  :retry 0
}}
action implement(tests: Code<python>) -> Code<python> {{
  :generate g "code"
  :guard {guard}
  :retry 0
}}
task main() -> Code<python> {{
  method only {{
    :subtasks (t: write_tests(), i: implement(t))
    :ordering (t ; i)
    :result i
  }}
}}
"#
    );
    std::fs::write(dir.join("flow.guardflow"), source).expect("writes the flow");
    let answers = format!(
        "{}\n{}\n",
        serde_json::json!({"action": "write_tests", "attempt": 1, "output": tests}),
        serde_json::json!({"action": "implement", "attempt": 1, "output": code}),
    );
    std::fs::write(dir.join("answers.jsonl"), answers).expect("writes the answers");
    let mut cmd = Command::new(bin());
    cmd.arg("run").arg(dir.join("flow.guardflow")).arg("--json");
    run_bounded(cmd, Duration::from_secs(120))
}

/// Code that starts a long-lived child and writes its pid to `pidfile`
/// (the guard opts in to writing the workflow's directory).
fn forking_code(pidfile: &Path) -> String {
    format!(
        "import subprocess\n\n_child = subprocess.Popen(['sleep', '300'])\nwith open({:?}, 'w') as f:\n    f.write(str(_child.pid) + '\\n')\n\n\ndef add(a, b):\n    return a + b\n",
        pidfile.display().to_string()
    )
}

#[test]
fn a_generated_program_that_forks_leaves_no_child_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pidfile = dir.path().join("child.pid");
    let tests = "from solution import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n";
    let ran = run_guarded(
        dir.path(),
        &forking_code(&pidfile),
        tests,
        "pytest(tests, timeout: 60s, write: [\".\"])",
    );
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    let pid = wait_for_pid(&pidfile).expect("the generated code's child");
    assert_process_ends(&pid, "the generated code's child");
}

#[test]
fn a_suite_that_never_ends_is_killed_with_its_process_group() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pidfile = dir.path().join("child.pid");
    let tests = "import time\nfrom solution import add\n\n\ndef test_add():\n    while True:\n        time.sleep(1)\n";
    let ran = run_guarded(
        dir.path(),
        &forking_code(&pidfile),
        tests,
        "pytest(tests, timeout: 3s, write: [\".\"])",
    );
    assert_eq!(ran.code, Some(1), "{}", ran.all());
    assert!(
        ran.all().contains("did not finish within 3s"),
        "{}",
        ran.all()
    );
    let pid = wait_for_pid(&pidfile).expect("the generated code's child");
    assert_process_ends(&pid, "the generated code's child");
}
