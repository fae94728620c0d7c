//! A person in the loop: the `human` generator reads the artifact from
//! standard input (a pipe here), the `human` guard asks on a terminal,
//! refuses without one, and `--yes` approves everything.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::{bin, run_bounded_input, Ran};

fn write_flow(dir: &Path, generator: &str, guard: &str, props: &str) {
    let source = format!(
        r#"use std.{{contains, human}}
generator g = {generator}
action write(topic: Text) -> Text {{
  :generate g "Write a title about {{topic}}"
  :guard {guard}
  {props}
}}
task main(topic: Text) -> Text {{
  method only {{
    :subtasks (w: write(topic))
    :result w
  }}
}}
"#
    );
    std::fs::write(dir.join("flow.guardflow"), source).expect("writes the flow");
    std::fs::write(
        dir.join("answers.jsonl"),
        "{\"action\": \"write\", \"attempt\": 1, \"output\": \"First title\"}\n{\"action\": \"write\", \"attempt\": 2, \"output\": \"Second title\"}\n",
    )
    .expect("writes the answers");
}

fn run(dir: &Path, extra: &[&str], input: Option<&str>) -> Ran {
    let mut cmd = Command::new(bin());
    cmd.arg("run")
        .arg(dir.join("flow.guardflow"))
        .args(["--input", "topic=rust", "--json"])
        .args(extra);
    run_bounded_input(cmd, input, Duration::from_secs(60))
}

fn result(ran: &Ran) -> serde_json::Value {
    ran.events()
        .into_iter()
        .find(|e| e["event"] == "report")
        .map(|e| e["report"]["result"].clone())
        .unwrap_or_default()
}

#[test]
fn the_human_generator_reads_answers_ending_at_a_single_dot() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_flow(
        dir.path(),
        r#"human(prompt: "You are the writer.")"#,
        r#"contains("ok")"#,
        ":retry 1 :timeout 30s",
    );
    let ran = run(
        dir.path(),
        &[],
        Some("not good\n.\nok, a title\nsecond line\n.\n"),
    );
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    assert_eq!(result(&ran), "ok, a title\nsecond line");
    // the person saw the prompt, and the feedback on the second attempt
    assert!(ran.stderr.contains("You are the writer."), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("Write a title about rust"),
        "{}",
        ran.stderr
    );
    assert!(ran.stderr.contains("write (attempt 2)"), "{}", ran.stderr);
    assert!(ran.stderr.contains("a single `.`"), "{}", ran.stderr);
}

#[test]
fn the_human_generator_fails_clearly_when_input_ends() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_flow(dir.path(), "human()", "true", ":retry 2 :timeout 30s");
    let ran = run(dir.path(), &[], Some(""));
    assert_eq!(ran.code, Some(1), "{}", ran.all());
    assert!(
        ran.all()
            .contains("waits for a person to type the answer, but standard input has ended"),
        "{}",
        ran.all()
    );
}

#[test]
fn the_human_guard_without_a_terminal_or_yes_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_flow(
        dir.path(),
        r#"replay("answers.jsonl")"#,
        r#"human("Ship it?")"#,
        ":retry 1",
    );
    let ran = run(dir.path(), &[], None);
    assert_eq!(ran.code, Some(1), "{}", ran.all());
    assert!(
        ran.all().contains("standard input is not a terminal"),
        "{}",
        ran.all()
    );
    assert!(ran.all().contains("--yes"), "{}", ran.all());
    // fatal: not retried
    assert_eq!(ran.attempts().len(), 1, "{}", ran.all());

    let ran = run(dir.path(), &["--yes"], None);
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    assert_eq!(result(&ran), "First title");
}

/// On a terminal (a pseudo-terminal made by `script`), the guard shows
/// the artifact and takes `n` with feedback, then `y`.
#[test]
fn the_human_guard_asks_on_a_terminal() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_flow(
        dir.path(),
        r#"replay("answers.jsonl")"#,
        r#"human("Ship it?")"#,
        ":retry 1",
    );
    let inner = format!(
        "{} run {} --input topic=rust --json",
        bin().display(),
        dir.path().join("flow.guardflow").display()
    );
    let mut cmd = Command::new("script");
    cmd.args(["-q", "-e", "-c", &inner, "/dev/null"]);
    // typed slowly enough for each question; the pty echoes it
    let ran = run_bounded_input(
        cmd,
        Some("n\nmake it shorter\ny\n"),
        Duration::from_secs(60),
    );
    let all = ran.all();
    assert_eq!(ran.code, Some(0), "{all}");
    assert!(all.contains("First title"), "{all}");
    assert!(all.contains("Ship it? [y/n]"), "{all}");
    assert!(
        all.contains("a person rejected it: make it shorter"),
        "{all}"
    );
    assert!(all.contains("\"result\":\"Second title\""), "{all}");
}
