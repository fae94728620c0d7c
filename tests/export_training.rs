//! Training data that is right (issue 18): `export --sft` leaves out an
//! artifact a later escalation blamed; `export --dpo` pairs each refused
//! answer with the accepted one of the same run of an action. A real run
//! through the binary (replayed answers), checked line for line against
//! the exact prompts and outputs its trace recorded.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use guardflow::engine::{
    BoxFuture, Engine, GenError, GenRequest, GenResponse, Generator, RunConfig,
};
use guardflow::store::{RunMeta, Store};
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

/// The same, with the tests written by a task: the escalation blames
/// what the task's action committed below the task's path.
const FLOW_TASK: &str = r#"use std.{contains}
generator g = llm(model: "m")
action write_tests(spec: Text) -> Text { :generate g "tests for {spec}" :guard contains("def test") :retry 2 }
action implement(spec: Text, tests: Text) -> Text { :generate g "implement {spec} against {tests}" :guard contains("ok") :retry 3 }
action document(code: Text) -> Text { :generate g "document {code}" :guard contains("Docs") :retry 3 }
task tests(spec: Text) -> Text { method tm { :subtasks (w: write_tests(spec)) :result w } }
task main(spec: Text) -> Text {
  method m {
    :subtasks (t: tests(spec), i: implement(spec, t) :escalate-to t after 2 :max-escalations 1, d: document(i))
    :ordering (t ; i ; d)
    :result d
  }
}
"#;

impl Fixture {
    fn new() -> Fixture {
        Fixture::with(FLOW)
    }

    fn with(flow: &str) -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().to_path_buf();
        std::fs::write(root.join("f.guardflow"), flow).expect("flow");
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
    assert!(
        all.iter()
            .all(|t| t["rejected_feedback"] != NO_TEST && t["rejected"][0]["content"] != "draft"),
        "{all:#?}"
    );
}

#[test]
fn export_needs_one_kind() {
    let fx = Fixture::new();
    let o = fx.guardflow(&["export", "--all"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("<--sft|--dpo|--otlp <URL>>"),
        "{}",
        text(&o)
    );
    let o = fx.guardflow(&["export", "--all", "--sft", "--dpo"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("the argument '--sft' cannot be used with '--dpo'"),
        "{}",
        text(&o)
    );
}

/// A task as the escalation's target: its action's artifact, committed
/// below the task's path, is the one blamed.
#[test]
fn sft_leaves_out_what_a_task_target_committed_before_the_escalation() {
    let fx = Fixture::with(FLOW_TASK);
    let (id, attempts) = fx.run();
    let got = fx.lines(&["export", &id, "--sft"]);
    let keys: Vec<(String, String, u64)> = got
        .iter()
        .map(|p| {
            (
                p["path"].as_str().unwrap_or("").to_string(),
                p["messages"][1]["content"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                p["attempt"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        keys,
        [
            (
                "main/m/tests/tm/w".to_string(),
                "def test_v2(): assert f() == 2".to_string(),
                3
            ),
            (
                "main/m/i".to_string(),
                "ok: def f(): return 2".to_string(),
                4
            ),
            ("main/m/d".to_string(), "Docs: f returns 2".to_string(), 3),
        ],
        "{got:#?}"
    );
    let trace = fx.lines(&["trace", &id, "--format", "jsonl"]);
    let escalated = trace
        .iter()
        .find(|e| e["event"] == "escalated")
        .expect("an escalation");
    assert_eq!(escalated["target"], "t");
    assert_eq!(escalated["target_path"], "main/m/tests");
    assert_eq!(attempts.len(), 10);
}

/// Answers from [`ANSWERS`] by action and attempt; call `stop_at` never
/// answers, standing for a process that died there.
struct Scripted {
    calls: Arc<AtomicUsize>,
    stop_at: usize,
    stopped: Arc<tokio::sync::Notify>,
}

impl Generator for Scripted {
    fn generate(&self, r: GenRequest) -> BoxFuture<'_, Result<GenResponse, GenError>> {
        Box::pin(async move {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            if n == self.stop_at {
                self.stopped.notify_one();
                std::future::pending::<()>().await;
            }
            // by the prompt, not the attempt number: a resume makes the
            // interrupted call again under a new number
            let p = r.prompt.as_str();
            let text = match r.action.as_str() {
                "write_tests" if p.contains("A later step") => "def test_v2(): assert f() == 2",
                "write_tests" if p.contains("draft") => "def test_v1(): assert f() == 1",
                "write_tests" => "draft",
                "implement" if p.contains("test_v2") && p.contains("wrong three") => {
                    "ok: def f(): return 2"
                }
                "implement" if p.contains("test_v2") => "wrong three",
                "implement" if p.contains("wrong one") => "wrong two",
                "implement" => "wrong one",
                _ if p.contains("Attempt ") => "Docs: f returns 2",
                _ => "nothing",
            };
            Ok(GenResponse::text(text))
        })
    }
}

fn scripted(stop_at: usize) -> (Engine, Arc<tokio::sync::Notify>) {
    let stopped = Arc::new(tokio::sync::Notify::new());
    let mut e = Engine::new();
    e.register_generator(
        "scripted",
        "()",
        Scripted {
            calls: Arc::new(AtomicUsize::new(0)),
            stop_at,
            stopped: stopped.clone(),
        },
    );
    (e, stopped)
}

/// What an export says, without the run's id and attempt numbers (a
/// resume numbers the call it makes again anew).
fn normalized(lines: Vec<Value>) -> Vec<Value> {
    lines
        .into_iter()
        .map(|mut l| {
            if let Some(o) = l.as_object_mut() {
                for key in ["run", "attempt", "chosen_attempt", "rejected_attempt"] {
                    o.remove(key);
                }
            }
            l
        })
        .collect()
}

/// A run stopped at any of its ten calls and resumed exports exactly
/// what the run made in one go: the escalation its resume replays (and
/// records again) blames nothing more, and the interrupted call is in no
/// pair.
#[test]
fn a_resumed_run_exports_what_an_uninterrupted_one_does() {
    let source = FLOW.replace(
        "generator g = llm(model: \"m\")",
        ":default-timeout 10s\ngenerator g = scripted()",
    );
    let rt = guardflow::engine::runtime().expect("runtime");
    let config = RunConfig {
        task: "main".into(),
        inputs: [("spec".to_string(), Value::from("f"))]
            .into_iter()
            .collect(),
        replacement: None,
    };
    let meta = || RunMeta {
        id: String::new(),
        workflow: "f.guardflow".into(),
        workflow_hash: String::new(),
        task: "main".into(),
        inputs: serde_json::Map::new(),
        replacement: None,
        worst_case_calls: None,
        started_ms: 0,
        seed: None,
        bench: None,
    };
    let exports = |db: &std::path::Path| {
        let store = Store::open_read(db).expect("store");
        (
            normalized(store.sft_pairs(None).expect("sft")),
            normalized(store.dpo_triples(None).expect("dpo")),
        )
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let whole = {
        let db = dir.path().join("whole.db");
        let (e, _) = scripted(0);
        let w = e.compile("f.guardflow", &source).expect("compiles");
        let mut started = e.start(&w, &config).expect("starts");
        let mut m = meta();
        let recorder = Store::open(&db)
            .and_then(|s| s.start_run(&mut m))
            .expect("store");
        started.record_to(Arc::new(recorder));
        let report = rt.block_on(started.execute());
        assert!(report.success, "{:?}", report.failure);
        drop(started);
        exports(&db)
    };
    assert_eq!(whole.0.len(), 3, "{:#?}", whole.0);
    assert_eq!(whole.1.len(), 2, "{:#?}", whole.1);
    for stop_at in 1..=10 {
        let db = dir.path().join(format!("stopped-{stop_at}.db"));
        let (e, stopped) = scripted(stop_at);
        let w = e.compile("f.guardflow", &source).expect("compiles");
        let mut started = e.start(&w, &config).expect("starts");
        let mut m = meta();
        let recorder = Store::open(&db)
            .and_then(|s| s.start_run(&mut m))
            .expect("store");
        started.record_to(Arc::new(recorder));
        // a runtime of its own: dropping it drops every task of the
        // stopped run, and with them the run's lock
        let stopped_rt = guardflow::engine::runtime().expect("runtime");
        let finished = stopped_rt.block_on(async {
            tokio::select! {
                r = started.execute() => Some(r),
                _ = stopped.notified() => None,
            }
        });
        assert!(finished.is_none(), "stop at {stop_at}: the run ended first");
        drop(started);
        drop(stopped_rt);
        drop((e, w));
        let (_, resume, recorder) = resume_run(&db, &m.id);
        let (e, _) = scripted(0);
        let w = e.compile("f.guardflow", &source).expect("compiles");
        let mut started = e.start(&w, &config).expect("starts");
        started.resume(resume);
        started.record_to(Arc::new(recorder));
        let report = rt.block_on(started.execute());
        drop(started);
        assert!(report.success, "stop at {stop_at}: {:?}", report.failure);
        assert_eq!(exports(&db), whole, "stop at {stop_at}");
    }
}

/// Resumes run `id` (a lock this process let go while a program of
/// another test held a copy of it is waited for by the store).
fn resume_run(
    db: &std::path::Path,
    id: &str,
) -> (
    RunMeta,
    guardflow::runtime::Resume,
    guardflow::store::Recorder,
) {
    Store::open(db)
        .and_then(|s| s.resume_run(id))
        .unwrap_or_else(|e| panic!("resume: {e}"))
}
