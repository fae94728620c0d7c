//! Training data that is right (issue 18): `export --sft` leaves out an
//! artifact a later escalation blamed; `export --dpo` pairs each refused
//! answer with the accepted one of the same run of an action. A real run
//! through the binary (replayed answers), checked line for line against
//! the exact prompts and outputs its trace recorded.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::{json, Value};

use crate::support::bin;

/// Tests, then an implementation that escalates to the tests after two
/// refusals, then documentation.
const FLOW: &str = r#"use std.{contains}
generator g = llm(model: "m")
action write_tests(spec: Text) -> Text { :generate g "tests for {spec}" :guard contains("def test") :retry 2 }
action implement(spec: Text, tests: Text) -> Text { :generate g "implement {spec} against {tests}" :guard contains("ok") :retry 3 }
action document(code: Text) -> Text { :generate g "document {code}" :guard contains("Docs") :retry 3 }
task main(spec: Text) -> Text {
  method m {
    :subtasks (t: write_tests(spec), i: implement(spec, t) :escalate-to t after 2 :max-escalations 1, d: document(i))
    :ordering (t ; i ; d)
    :result d
  }
}
"#;

/// The answers, by action and attempt number in the run.
const ANSWERS: &[(&str, u32, &str)] = &[
    ("write_tests", 1, "draft"),
    ("write_tests", 2, "def test_v1(): assert f() == 1"),
    ("implement", 1, "wrong one"),
    ("implement", 2, "wrong two"),
    // the escalation: the tests are written again
    ("write_tests", 3, "def test_v2(): assert f() == 2"),
    ("implement", 3, "wrong three"),
    ("implement", 4, "ok: def f(): return 2"),
    ("document", 1, "nothing"),
    ("document", 2, "nothing"),
    ("document", 3, "Docs: f returns 2"),
];

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().to_path_buf();
        std::fs::write(root.join("f.guardflow"), FLOW).expect("flow");
        let lines: String = ANSWERS
            .iter()
            .map(|(action, attempt, output)| {
                format!(
                    "{}\n",
                    json!({"action": action, "attempt": attempt, "output": output})
                )
            })
            .collect();
        std::fs::write(root.join("answers.jsonl"), lines).expect("recording");
        Fixture { _dir: dir, root }
    }

    fn guardflow(&self, args: &[&str]) -> Output {
        Command::new(bin())
            .args(args)
            .current_dir(&self.root)
            .env("NO_COLOR", "1")
            .env_remove("GUARDFLOW_STORE")
            .output()
            .expect("guardflow runs")
    }

    fn lines(&self, args: &[&str]) -> Vec<Value> {
        let o = self.guardflow(args);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    }

    /// Runs the workflow; its id and its judged attempts (from the trace).
    fn run(&self) -> (String, Vec<Value>) {
        let o = self.guardflow(&[
            "run",
            "f.guardflow",
            "-i",
            "spec=f",
            "--replay",
            "answers.jsonl",
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        let runs = self.lines(&["runs", "--format", "json"]);
        let id = runs[0]["id"].as_str().expect("an id").to_string();
        let trace = self.lines(&["trace", &id, "--format", "jsonl"]);
        let attempts = trace
            .into_iter()
            .filter(|e| e["event"] == "attempt")
            .collect();
        (id, attempts)
    }
}

fn text(o: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The recorded attempt of `action` numbered `attempt`.
fn attempt<'a>(attempts: &'a [Value], action: &str, attempt: u32) -> &'a Value {
    attempts
        .iter()
        .find(|a| a["action"] == action && a["attempt"] == attempt)
        .unwrap_or_else(|| panic!("no attempt {attempt} of {action}: {attempts:#?}"))
}

const NO_TEST: &str = "contains: the text does not contain `def test`; it must contain it exactly";
const NO_OK: &str = "contains: the text does not contain `ok`; it must contain it exactly";
const NO_DOCS: &str = "contains: the text does not contain `Docs`; it must contain it exactly";

#[test]
fn sft_leaves_out_the_tests_the_escalation_blamed() {
    let fx = Fixture::new();
    let (id, attempts) = fx.run();
    assert_eq!(attempts.len(), 10, "{attempts:#?}");
    let pair = |action: &str, n: u32, path: &str, feedback: &[&str]| {
        let a = attempt(&attempts, action, n);
        json!({
            "messages": [
                {"role": "user", "content": a["prompt"]},
                {"role": "assistant", "content": a["output"]},
            ],
            "run": id,
            "path": path,
            "action": action,
            "attempt": n,
            "feedback": feedback,
        })
    };
    let want = vec![
        // write_tests attempt 2 passed, then `implement` escalated: left out
        pair("write_tests", 3, "main/m/t", &[]),
        pair("implement", 4, "main/m/i", &[NO_OK]),
        pair("document", 3, "main/m/d", &[NO_DOCS, NO_DOCS]),
    ];
    assert_eq!(fx.lines(&["export", &id, "--sft"]), want);
    assert_eq!(fx.lines(&["export", "--all", "--sft"]), want);
    // the blamed tests are what the second attempt's escalation note named
    assert!(
        attempt(&attempts, "write_tests", 3)["prompt"]
            .as_str()
            .is_some_and(|p| p.contains("def test_v1")),
        "{attempts:#?}"
    );
}

#[test]
fn dpo_pairs_refused_answers_with_the_accepted_one_of_the_same_run_of_an_action() {
    let fx = Fixture::new();
    let (id, attempts) = fx.run();
    let triple = |action: &str,
                  path: &str,
                  occurrence: u32,
                  first: u32,
                  chosen: u32,
                  rejected: u32,
                  feedback: &str| {
        json!({
            "prompt": [{"role": "user", "content": attempt(&attempts, action, first)["prompt"]}],
            "chosen": [{"role": "assistant", "content": attempt(&attempts, action, chosen)["output"]}],
            "rejected": [{"role": "assistant", "content": attempt(&attempts, action, rejected)["output"]}],
            "run": id,
            "path": path,
            "occurrence": occurrence,
            "action": action,
            "chosen_attempt": chosen,
            "rejected_attempt": rejected,
            "rejected_feedback": feedback,
        })
    };
    let want = vec![
        // write_tests' first run: its accepted answer was blamed, so its
        // refused draft has nothing to be paired with; its second run
        // refused nothing. implement's first run accepted nothing (it
        // escalated); its second refused "wrong three".
        triple("implement", "main/m/i", 2, 3, 4, 3, NO_OK),
        // document's second refusal repeats the first answer: one triple
        triple("document", "main/m/d", 1, 1, 3, 1, NO_DOCS),
    ];
    assert_eq!(fx.lines(&["export", &id, "--dpo"]), want);
    // the draft refused before the blamed tests is in no triple
    let all = fx.lines(&["export", "--all", "--dpo"]);
    assert_eq!(all, want);
    assert!(!serde_json::to_string(&all)
        .unwrap_or_default()
        .contains("draft"));
    let _ = NO_TEST;
}

#[test]
fn export_needs_one_kind() {
    let fx = Fixture::new();
    let o = fx.guardflow(&["export", "--all"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = fx.guardflow(&["export", "--all", "--sft", "--dpo"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}
