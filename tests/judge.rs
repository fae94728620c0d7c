//! The `judge` guard against real HTTP servers on loopback: the solver
//! and the critic are two scripted model servers, so every request each
//! model saw can be read back. A judge that passes, one that fails with
//! issues (which are exactly the next prompt's feedback), one whose
//! verdicts are malformed (asked again, then a fatal rejection, never a
//! pass); its calls in the bounds, the report's calls and tokens, and
//! `show`/`trace`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::support::model_server::{ModelServer, Reply};
use crate::support::{bin, run_bounded, Ran};

/// A solver checked by a judge: `retry` retries of the action, `retries`
/// of the judge.
fn flow(solver: &str, critic: &str, retry: u32, retries: u32) -> String {
    format!(
        r#"use std.{{judge}}

generator coder = llm(model: "coder", base_url: "{solver}")
generator critic = llm(model: "critic", base_url: "{critic}", temperature: 0.0)

action solve(spec: Text) -> Text {{
  :generate coder "Solve: {{spec}}"
  :guard judge(critic, "Does the answer meet the spec: {{spec}}?", retries: {retries})
  :retry {retry}
  :max-tokens 64
}}

task main(spec: Text) -> Text {{
  method only {{
    :subtasks (s: solve(spec))
    :result s
  }}
}}
"#
    )
}

/// The models' key: never in any output, event or record.
const KEY: &str = "sk-test-5e4d3c2b1a09-judge-never-print-me";

fn guardflow(dir: &Path, args: &[&str]) -> Ran {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .current_dir(dir)
        .env("GUARDFLOW_LLM_API_KEY", KEY)
        .env("NO_COLOR", "1")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env_remove("ALL_PROXY")
        .env_remove("all_proxy");
    let ran = run_bounded(cmd, Duration::from_secs(120));
    assert!(!ran.all().contains("never-print-me"), "{}", ran.all());
    ran
}

struct Judged {
    dir: tempfile::TempDir,
    ran: Ran,
    solver: ModelServer,
    critic: ModelServer,
}

impl Judged {
    fn report(&self) -> Value {
        self.ran
            .events()
            .into_iter()
            .find(|e| e["event"] == "report")
            .map(|e| e["report"].clone())
            .unwrap_or_else(|| panic!("no report:\n{}", self.ran.all()))
    }

    /// The prompt of each request a server saw (the user message).
    fn prompts(server: &ModelServer) -> Vec<String> {
        server
            .requests()
            .iter()
            .map(|r| {
                let body = r.json();
                let messages = body["messages"].as_array().cloned().unwrap_or_default();
                messages
                    .last()
                    .map(|m| m["content"].clone())
                    .unwrap_or_default()
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            })
            .collect()
    }

    fn run_id(&self) -> String {
        let line = self
            .ran
            .stderr
            .lines()
            .find(|l| l.starts_with("run ") && l.contains("(recorded in"))
            .unwrap_or_else(|| panic!("no run id:\n{}", self.ran.all()));
        line.split_whitespace().nth(1).unwrap_or("").to_string()
    }
}

fn judged(solver: Vec<Reply>, critic: Vec<Reply>, retry: u32, retries: u32) -> Judged {
    judged_as(solver, critic, retry, retries, &["--json"])
}

fn judged_as(
    solver: Vec<Reply>,
    critic: Vec<Reply>,
    retry: u32,
    retries: u32,
    extra: &[&str],
) -> Judged {
    let (solver, critic) = (ModelServer::start(solver), ModelServer::start(critic));
    let dir = tempfile::tempdir().expect("tempdir");
    let source = flow(&solver.url(), &critic.url(), retry, retries);
    std::fs::write(dir.path().join("flow.guardflow"), source).expect("writes");
    let mut args = vec!["run", "flow.guardflow", "--input", "spec=add two numbers"];
    args.extend_from_slice(extra);
    let ran = guardflow(dir.path(), &args);
    Judged {
        dir,
        ran,
        solver,
        critic,
    }
}

fn verdict(pass: bool, issues: &[&str]) -> Reply {
    Reply::chat(&serde_json::json!({ "pass": pass, "issues": issues }).to_string())
}

#[test]
fn a_judge_that_passes_commits_and_its_call_is_a_generator_call() {
    let j = judged(
        vec![Reply::chat("def add(a, b): return a + b")],
        vec![verdict(true, &[])],
        2,
        1,
    );
    assert_eq!(j.ran.code, Some(0), "{}", j.ran.all());
    // the critic was asked once, with the question (the action's
    // parameter interpolated), the artifact and the verdict's schema
    let seen = j.critic.requests();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let body = seen[0].json();
    assert_eq!(body["model"], "critic");
    let prompt = body["messages"][1]["content"].as_str().unwrap_or("");
    assert!(
        prompt.starts_with("Does the answer meet the spec: add two numbers?"),
        "{prompt}"
    );
    assert!(
        prompt.contains("<artifact>\ndef add(a, b): return a + b\n</artifact>"),
        "{prompt}"
    );
    let schema = &body["response_format"]["json_schema"]["schema"];
    assert_eq!(schema["properties"]["pass"]["type"], "boolean", "{body}");
    assert_eq!(schema["properties"]["issues"]["items"]["type"], "string");
    assert_eq!(body["max_tokens"], 1024, "{body}");
    // the report counts the judge's call and its tokens
    let report = j.report();
    assert_eq!(report["generator_calls"], 2, "{report}");
    assert_eq!(report["actions"]["solve"]["judge_calls"], 1, "{report}");
    let calls = report["judge_calls"].as_array().expect("judge calls");
    assert_eq!(calls.len(), 1, "{report}");
    assert_eq!(calls[0]["generator"], "critic");
    assert_eq!(calls[0]["tokens"], 7);
    assert_eq!(calls[0]["prompt_tokens"], 11);
    assert_eq!(calls[0]["prompt"], prompt);
    // 3 attempts of 1 call and 2 of the judge's at most
    assert_eq!(report["worst_case_calls"], 9, "{report}");
}

#[test]
fn the_run_summary_counts_the_judges_calls_and_tokens() {
    let j = judged_as(
        vec![Reply::chat("def add(a, b): return a + b")],
        vec![Reply::chat("no verdict"), verdict(true, &[])],
        2,
        1,
        &[],
    );
    assert_eq!(j.ran.code, Some(0), "{}", j.ran.all());
    let err = &j.ran.stderr;
    assert!(
        err.contains("generator calls: 3 (the checker's worst case: 9)"),
        "{err}"
    );
    assert!(err.contains("of which judges asked: 2"), "{err}");
    // 11 prompt and 7 generated tokens a call
    assert!(err.contains("tokens: 33 prompt, 21 generated"), "{err}");
}

#[test]
fn a_judge_that_fails_gives_exactly_its_issues_as_the_next_feedback() {
    let j = judged(
        vec![
            Reply::chat("def add(a, b): return a - b"),
            Reply::chat("def add(a, b): return a + b"),
        ],
        vec![
            verdict(false, &["it subtracts instead of adding", "no docstring"]),
            verdict(true, &[]),
        ],
        2,
        1,
    );
    assert_eq!(j.ran.code, Some(0), "{}", j.ran.all());
    let attempts = j.ran.attempts();
    assert_eq!(attempts.len(), 2, "{}", j.ran.all());
    let feedback = attempts[0]["feedback"].as_str().unwrap_or("");
    assert_eq!(
        feedback,
        "judge: 2 issues to fix:\n- it subtracts instead of adding\n- no docstring"
    );
    let prompts = Judged::prompts(&j.solver);
    assert_eq!(prompts.len(), 2, "{prompts:?}");
    assert_eq!(
        prompts[1],
        // the issues, then (repair, the default) the answer they are about
        format!(
            "Solve: add two numbers\n\nYour previous answer was rejected:\n{feedback}\n\n\
             The rejected answer:\ndef add(a, b): return a - b"
        )
    );
    assert_eq!(j.report()["generator_calls"], 4);
}

#[test]
fn malformed_verdicts_are_asked_again_then_fail_never_pass() {
    let j = judged(
        vec![Reply::chat("def add(a, b): return a + b")],
        vec![Reply::chat("Looks fine to me!")],
        2,
        1,
    );
    // asked 1 + retries times, then a fatal rejection: the action fails
    // at once, without a second attempt
    assert_ne!(j.ran.code, Some(0), "{}", j.ran.all());
    let prompts = Judged::prompts(&j.critic);
    assert_eq!(prompts.len(), 2, "{prompts:?}");
    assert!(
        prompts[1].contains("Your previous answer was not a verdict"),
        "{}",
        prompts[1]
    );
    let attempts = j.ran.attempts();
    assert_eq!(attempts.len(), 1, "{}", j.ran.all());
    assert_eq!(attempts[0]["verdict"], "fatal");
    let feedback = attempts[0]["feedback"].as_str().unwrap_or("");
    assert!(
        feedback.starts_with("judge: no verdict in 2 answers"),
        "{feedback}"
    );
    let report = j.report();
    assert_eq!(report["success"], false);
    assert_eq!(report["generator_calls"], 3, "{report}");
    assert_eq!(j.solver.requests().len(), 1);
}

#[test]
fn a_malformed_verdict_then_a_good_one_is_judged_by_the_good_one() {
    let j = judged(
        vec![Reply::chat("def add(a, b): return a + b")],
        vec![Reply::chat("yes"), verdict(true, &[])],
        0,
        2,
    );
    assert_eq!(j.ran.code, Some(0), "{}", j.ran.all());
    assert_eq!(j.critic.requests().len(), 2);
    assert_eq!(j.report()["generator_calls"], 3);
}

#[test]
fn show_and_trace_give_the_judges_prompt_and_answer() {
    let j = judged_as(
        vec![
            Reply::chat("def add(a, b): return a - b"),
            Reply::chat("ok"),
        ],
        vec![verdict(false, &["it subtracts"]), verdict(true, &[])],
        1,
        0,
        &[],
    );
    assert_eq!(j.ran.code, Some(0), "{}", j.ran.all());
    let id = j.run_id();
    let trace = guardflow(j.dir.path(), &["trace", &id]);
    assert_eq!(trace.code, Some(0), "{}", trace.all());
    let calls: Vec<Value> = trace
        .events()
        .into_iter()
        .filter(|e| e["event"] == "judge_call")
        .collect();
    assert_eq!(calls.len(), 2, "{}", trace.stdout);
    assert_eq!(calls[0]["path"], "main/only/s");
    assert_eq!(calls[0]["attempt"], 1);
    assert_eq!(calls[0]["guard"], "judge");
    assert_eq!(calls[0]["generator"], "critic");
    assert_eq!(
        calls[0]["output"],
        r#"{"issues":["it subtracts"],"pass":false}"#
    );
    let prompt = calls[0]["prompt"].as_str().unwrap_or("");
    assert!(prompt.contains("<artifact>\ndef add(a, b): return a - b\n</artifact>"));
    assert_eq!(calls[1]["attempt"], 2);
    let show = guardflow(j.dir.path(), &["show", &id, "--prompts"]);
    assert_eq!(show.code, Some(0), "{}", show.all());
    let out = &show.stdout;
    assert!(
        out.contains(
            r#"attempt 1: `judge` asked `critic` (call 1): {"issues":["it subtracts"],"pass":false}"#
        ),
        "{out}"
    );
    assert!(out.contains("judge prompt of attempt 1, call 1:"), "{out}");
    assert!(
        out.contains("    Does the answer meet the spec: add two numbers?"),
        "{out}"
    );
    assert!(out.contains("judge answer of attempt 2, call 1:"), "{out}");
}

#[test]
fn a_critic_that_echoes_the_key_has_it_redacted_in_the_record() {
    let j = judged_as(
        vec![Reply::chat("def add(a, b): return a + b")],
        vec![
            verdict(false, &[&format!("it should not print {KEY}")]),
            Reply::status(401, "").echoing_auth(),
        ],
        1,
        0,
        &[],
    );
    assert_eq!(j.ran.code, Some(1), "{}", j.ran.all());
    let trace = guardflow(j.dir.path(), &["trace", &j.run_id()]);
    let calls: Vec<Value> = trace
        .events()
        .into_iter()
        .filter(|e| e["event"] == "judge_call")
        .collect();
    assert_eq!(calls.len(), 2, "{}", trace.stdout);
    // the answer that names the key, and the error that echoes it
    let answer = calls[0]["output"].as_str().unwrap_or("");
    assert!(answer.contains("[redacted]"), "{answer}");
    let error = calls[1]["error"].as_str().unwrap_or("");
    assert!(error.contains("[redacted]"), "{error}");
    // the redacted issue is the solver's next feedback
    let prompts = Judged::prompts(&j.solver);
    assert!(
        prompts[1].contains("it should not print [redacted]"),
        "{}",
        prompts[1]
    );
    let db = std::fs::read(j.dir.path().join(".guardflow/runs.db")).unwrap_or_default();
    let wal = std::fs::read(j.dir.path().join(".guardflow/runs.db-wal")).unwrap_or_default();
    for bytes in [db, wal] {
        assert!(
            !String::from_utf8_lossy(&bytes).contains("never-print-me"),
            "the key is in the store"
        );
    }
}

#[test]
fn the_bounds_count_every_call_a_judge_may_make() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = flow("http://127.0.0.1:9", "http://127.0.0.1:9", 3, 2);
    std::fs::write(dir.path().join("flow.guardflow"), source).expect("writes");
    let ran = guardflow(dir.path(), &["check", "flow.guardflow", "--bounds"]);
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    // 4 attempts × (1 call + 3 of the judge)
    let row = ran
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("main "))
        .unwrap_or_else(|| panic!("{}", ran.all()));
    let calls = row.split_whitespace().nth(1);
    assert_eq!(calls, Some("16"), "{}", ran.all());
}

/// A workflow with every kind of decider: a judge through a guard
/// definition, a judge whose question a parser answers, a person
/// approving an effect, a person writing an artifact, a person choosing
/// a method.
const DECIDERS: &str = r#"use std.{judge, human, python_syntax, allowed_commands, exit_code}

generator coder = llm(model: "coder")
generator critic = llm(model: "critic", temperature: 0.0)

guard meets(by: Generator, spec: Text) on Text =
  judge(by, "Does this meet the spec: {spec}?", retries: 1)

action solve(spec: Text) -> Code<python> {
  :generate coder "Write: {spec}"
  :guard python_syntax && meets(critic, spec)
  :retry 2
}

action config(spec: Text) -> Text {
  :generate coder "Write the JSON config for {spec}"
  :guard judge(critic, "Is this valid JSON?", retries: 0)
  :retry 1
}

action note(spec: Text) -> Text {
  :generate human "Describe {spec}"
  :guard true
  :retry 0
  :timeout 10m
}

action deploy(spec: Text) -> Command {
  :generate coder "The command that deploys {spec}"
  :effect shell()
  :pre-guard allowed_commands(["make deploy"]) && human("Run it?")
  :guard exit_code(0)
  :retry 0
}

task main(spec: Text) {
  method by_hand {
    :pre human(spec, "Deploy by hand?")
    :subtasks (n: note(spec))
  }
  method automated {
    :subtasks (s: solve(spec), c: config(spec), d: deploy(spec))
    :ordering (s ; c ; d)
  }
}
"#;

fn deciders(format: &str) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("flow.guardflow"), DECIDERS).expect("writes");
    let ran = guardflow(
        dir.path(),
        &["deciders", "flow.guardflow", "--format", format],
    );
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    ran.stdout
}

#[test]
fn deciders_lists_every_model_and_person_that_decides_as_text() {
    insta::with_settings!({ snapshot_path => "snapshots", prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!("deciders_text", deciders("text"));
    });
}

#[test]
fn deciders_lists_them_as_stable_json() {
    let out = deciders("json");
    let doc: Value = serde_json::from_str(&out).expect("one JSON document");
    assert_eq!(doc["deciders"].as_array().map(Vec::len), Some(5), "{out}");
    insta::with_settings!({ snapshot_path => "snapshots", prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!("deciders_json", out);
    });
}
