//! The `shell` effect, for real: the `:pre-guard` decides before anything
//! runs; commands run in the workspace with a timeout and a cleared
//! environment, as a program and its arguments (no shell), in the
//! sandbox: they cannot write outside the workspace; a failed outcome is
//! retried only when the action is `:idempotent`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::{assert_process_ends, bin, run_bounded, wait_for_pid, Ran};

/// Writes `flow.guardflow` (one effect action `act` in task `main`) and
/// the replay file with `commands` as attempts 1, 2, … into `dir`, and
/// runs it with `--json`.
fn run_effect(dir: &Path, props: &str, commands: &[&str]) -> Ran {
    let source = format!(
        r#"use std.{{allowed_commands, exit_code, max_lines}}
generator g = replay("answers.jsonl")
action act() -> Command {{
  :generate g "Propose a command"
  :effect shell(timeout: 2s)
  :guard exit_code(0)
  {props}
}}
task main() {{
  method only {{
    :subtasks (a: act())
  }}
}}
"#
    );
    std::fs::write(dir.join("flow.guardflow"), source).expect("writes the flow");
    let answers: String = commands
        .iter()
        .enumerate()
        .map(|(i, c)| {
            format!(
                "{}\n",
                serde_json::json!({"action": "act", "attempt": i + 1, "output": c})
            )
        })
        .collect();
    std::fs::write(dir.join("answers.jsonl"), answers).expect("writes the answers");
    let mut cmd = Command::new(bin());
    cmd.arg("run")
        .arg(dir.join("flow.guardflow"))
        .arg("--json")
        .env("GF_TEST_SECRET_TOKEN", "do-not-leak-4711");
    run_bounded(cmd, Duration::from_secs(60))
}

fn outcomes(ran: &Ran) -> Vec<serde_json::Value> {
    ran.attempts()
        .into_iter()
        .filter_map(|a| a.get("outcome").cloned())
        .collect()
}

#[test]
fn the_pre_guard_refuses_a_proposal_before_it_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ran = run_effect(
        dir.path(),
        r#":pre-guard allowed_commands(["touch done.txt"]) && max_lines(1)
  :retry 1
  :idempotent"#,
        &["touch marker", "touch done.txt"],
    );
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    assert!(
        !dir.path().join("marker").exists(),
        "the refused command ran"
    );
    // the accepted one ran in the workspace
    assert!(dir.path().join("done.txt").exists(), "{}", ran.all());
    let attempts = ran.attempts();
    assert_eq!(attempts.len(), 2, "{}", ran.all());
    assert!(
        attempts[0]["feedback"]
            .as_str()
            .unwrap_or("")
            .contains("`touch marker` is not allowed"),
        "{}",
        attempts[0]
    );
    assert!(attempts[0].get("outcome").is_none(), "{}", attempts[0]);
    assert_eq!(attempts[1]["outcome"]["exit_code"], 0, "{}", attempts[1]);
    assert_eq!(attempts[1]["outcome"]["command"], "touch done.txt");
}

#[test]
fn commands_cannot_reach_outside_the_workspace() {
    let outside = tempfile::tempdir().expect("outside");
    let parent = tempfile::tempdir().expect("parent");
    let ws = parent.path().join("ws");
    std::fs::create_dir(&ws).expect("mkdir ws");
    std::os::unix::fs::symlink(outside.path(), ws.join("link")).expect("symlink");
    let abs = outside.path().join("abs");
    let attempts = [
        "cd .. && touch escaped".to_string(),
        format!("touch {}", abs.display()),
        "touch link/through".to_string(),
        "touch ../sibling".to_string(),
        "cd; touch home".to_string(),
        "touch \"$HOME/x\"".to_string(),
    ];
    for command in &attempts {
        let ran = run_effect(&ws, ":retry 0", &[command]);
        assert_eq!(ran.code, Some(1), "{command}: {}", ran.all());
        let failure = ran
            .events()
            .into_iter()
            .find(|e| e["event"] == "report")
            .map(|e| e["report"]["failure"].as_str().unwrap_or("").to_string())
            .unwrap_or_default();
        // refused as shell syntax, or run and stopped by the sandbox
        assert!(
            failure.contains("is refused") || failure.contains("Permission denied"),
            "{command}: {failure}"
        );
    }
    assert!(!parent.path().join("escaped").exists());
    assert!(!parent.path().join("sibling").exists());
    assert!(!abs.exists());
    assert!(!outside.path().join("through").exists());
    assert_eq!(
        std::fs::read_dir(outside.path()).expect("lists").count(),
        0,
        "something was written outside"
    );
}

#[test]
fn the_environment_is_cleared_but_for_the_allow_list() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ran = run_effect(dir.path(), ":retry 0", &["env"]);
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    let out = outcomes(&ran);
    let env = out[0]["stdout"].as_str().unwrap_or("");
    assert!(env.lines().any(|l| l.starts_with("PATH=")), "{env}");
    assert!(!env.contains("GF_TEST_SECRET_TOKEN"), "{env}");
    assert!(!ran.all().contains("do-not-leak-4711"), "{}", ran.all());
    let pwd = env
        .lines()
        .find_map(|l| l.strip_prefix("PWD="))
        .unwrap_or("");
    let ws = dir.path().canonicalize().expect("canonical");
    assert_eq!(Path::new(pwd), ws, "{env}");
}

#[test]
fn a_command_that_runs_too_long_is_killed_with_its_children() {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("slow.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\nsleep 300 &\necho $! > child.pid\nsleep 300\n",
    )
    .expect("writes");
    let mut perms = std::fs::metadata(&script).expect("meta").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&script, perms).expect("chmod");
    let ran = run_effect(dir.path(), ":retry 0", &["./slow.sh"]);
    assert_eq!(ran.code, Some(1), "{}", ran.all());
    let out = outcomes(&ran);
    assert_eq!(out[0]["exit_code"], 124, "{}", ran.all());
    assert!(
        out[0]["stderr"]
            .as_str()
            .unwrap_or("")
            .contains("killed after 2s"),
        "{}",
        out[0]
    );
    let pid = wait_for_pid(&dir.path().join("child.pid")).expect("the child's pid");
    assert_process_ends(&pid, "the command's background child");
}

#[test]
fn a_failed_outcome_is_retried_only_when_idempotent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ran = run_effect(dir.path(), ":retry 1\n  :idempotent", &["false", "true"]);
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    let out = outcomes(&ran);
    assert_eq!(out.len(), 2, "{}", ran.all());
    assert_eq!(out[0]["exit_code"], 1);
    assert_eq!(out[1]["exit_code"], 0);

    let dir = tempfile::tempdir().expect("tempdir");
    let ran = run_effect(
        dir.path(),
        ":retry 0",
        &["sh -c 'echo run >> count.txt; false'"],
    );
    assert_eq!(ran.code, Some(1), "{}", ran.all());
    let count = std::fs::read_to_string(dir.path().join("count.txt")).expect("ran once");
    assert_eq!(count, "run\n");
    assert!(ran.all().contains("not `:idempotent`"), "{}", ran.all());
}
