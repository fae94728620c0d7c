//! Honest bounds (issue 18): `check --bounds` states what its
//! probabilities assume; `--from-runs` measures the runs' own success
//! (Wilson 95 % lower bound) beside the independence prediction and says
//! when attempts were correlated; bounds per action. The runs are real:
//! recorded by the runtime into a real store, with replayed answers that
//! are correlated per run (a run can solve the task, or cannot).

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Arc;

use guardflow::engine::{Engine, Replacement, RunConfig, Value};
use guardflow::store::{RunMeta, Store};

use crate::support::bin;

/// One action, four attempts (`:retry 3`); `:p 0.6` is what the author
/// believed before measuring.
const FLOW: &str = r#"use std.{contains}
generator g = llm(model: "m")
action solve(q: Text) -> Text { :generate g "solve {q}" :guard contains("good") :retry 3 :p 0.6 :max-tokens 100 }
task main(q: Text) -> Text { method m { :subtasks (s: solve(q)) :result s } }
"#;

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().to_path_buf();
        std::fs::write(root.join("f.guardflow"), FLOW).expect("flow");
        // a run that can solve it passes at once; one that cannot is
        // refused four times: attempts correlated within a run
        std::fs::write(
            root.join("solvable.jsonl"),
            "{\"action\": \"solve\", \"attempt\": 1, \"output\": \"good\"}\n",
        )
        .expect("recording");
        let bad: String = (1..=4)
            .map(|a| {
                format!("{{\"action\": \"solve\", \"attempt\": {a}, \"output\": \"bad {a}\"}}\n")
            })
            .collect();
        std::fs::write(root.join("unsolvable.jsonl"), bad).expect("recording");
        Fixture { _dir: dir, root }
    }

    fn flow(&self) -> PathBuf {
        self.root.join("f.guardflow")
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

    fn recording(&self, solvable: bool) -> &'static str {
        if solvable {
            "solvable.jsonl"
        } else {
            "unsolvable.jsonl"
        }
    }

    /// A trial through the binary: `guardflow run --replay`.
    fn run_binary(&self, solvable: bool) {
        let o = self.guardflow(&[
            "run",
            "f.guardflow",
            "-i",
            "q=x",
            "--replay",
            self.recording(solvable),
        ]);
        let want = if solvable { 0 } else { 1 };
        assert_eq!(o.status.code(), Some(want), "{}", text(&o));
    }

    /// Trials in this process: the same runtime and recorder, faster.
    fn run_in_process(&self, outcomes: &[bool]) {
        let engine = Engine::new();
        let workflow = engine.compile_file(self.flow()).expect("compiles");
        let rt = guardflow::engine::runtime().expect("runtime");
        let db = self.root.join(".guardflow").join("runs.db");
        std::fs::create_dir_all(db.parent().expect("dir")).expect("store dir");
        for &solvable in outcomes {
            let recording = self.root.join(self.recording(solvable));
            let config = RunConfig {
                task: "main".into(),
                inputs: [("q".to_string(), Value::from("x"))].into_iter().collect(),
                replacement: Some(Replacement {
                    generator: "replay".into(),
                    args: vec![Value::from(recording.to_string_lossy().into_owned())],
                }),
            };
            let mut started = engine.start(&workflow, &config).expect("starts");
            let mut meta = RunMeta {
                id: String::new(),
                workflow: self.flow().to_string_lossy().into_owned(),
                workflow_hash: String::new(),
                task: "main".into(),
                inputs: serde_json::Map::new(),
                replacement: None,
                worst_case_calls: Some(4),
                started_ms: 0,
                seed: None,
                bench: None,
            };
            let recorder = Store::open(&db)
                .and_then(|s| s.start_run(&mut meta))
                .expect("store");
            started.record_to(Arc::new(recorder));
            let report = rt.block_on(started.execute());
            assert_eq!(report.success, solvable, "{:?}", report.failure);
        }
    }

    fn check(&self, extra: &[&str]) -> String {
        let mut args = vec!["check", "f.guardflow", "--bounds"];
        args.extend(extra);
        let o = self.guardflow(&args);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
}

fn text(o: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The cells of the table row that starts with `name` (cells are two or
/// more spaces apart).
fn row(out: &str, name: &str) -> Vec<String> {
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no row `{name}`:\n{out}"));
    line.trim()
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(String::from)
        .collect()
}

fn json_lines(out: &str) -> Vec<serde_json::Value> {
    out.lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

fn close(v: &serde_json::Value, want: f64) -> bool {
    v.as_f64().is_some_and(|x| (x - want).abs() < 5e-5)
}

/// Without runs, each probability says what it assumes, in both formats.
#[test]
fn bounds_state_the_independence_assumption() {
    let fx = Fixture::new();
    let out = fx.check(&[]);
    // 1 − 0.4^4
    assert_eq!(
        row(&out, "main").last().map(String::as_str),
        Some("0.9744 if independent"),
        "{out}"
    );
    assert!(
        out.contains("P(success) ≥ … if independent: assumes independent attempts, each passing with its action's probability p per attempt"),
        "{out}"
    );
    let json = json_lines(&fx.check(&["--format", "json"]));
    assert_eq!(json.len(), 1);
    assert!(close(&json[0]["p_success"], 0.9744), "{}", json[0]);
    assert_eq!(
        json[0]["p_assumption"],
        "independent attempts, each passing with probability p per attempt"
    );
    assert_eq!(json[0]["p_source"], "p");
}

/// The issue's case: 20 runs, 9 succeed (a run solves it at once or not
/// at all). Pooling attempts, p = 9/53 per attempt, and independence
/// predicts 1 − (44/53)^4 = 0.5250, which the old output printed as
/// `P(success) ≥ 0.5250`. Now that number is a prediction, and the only
/// lower bound printed is the Wilson bound of 9/20.
#[test]
fn from_runs_never_prints_the_independence_prediction_as_a_lower_bound() {
    let fx = Fixture::new();
    for i in 0..20 {
        fx.run_binary(i % 20 < 9);
    }
    let out = fx.check(&["--from-runs"]);
    assert!(
        out.contains("20 runs of this file in `")
            && out.contains("(20 finished); success per attempt: solve 0.170 (9/53)"),
        "{out}"
    );
    assert!(!out.contains("≥ 0.5250"), "{out}");
    assert_eq!(
        row(&out, "main")[5..],
        ["0.5250", "20", "9 (0.450)", "0.2582"],
        "{out}"
    );
    let header = row(&out, "task");
    assert_eq!(
        header[5..],
        ["if independent", "runs", "succeeded", "P(success) ≥ (95 %)"],
        "{out}"
    );
    assert!(
        out.contains("  main: measured success 0.450 (9 of 20 runs) is below the independence prediction 0.5250 but within its 95 % interval [0.258, 0.658]: too few runs to tell whether the attempts are correlated; the runs support P(success) ≥ 0.2582 (95 %)"),
        "{out}"
    );

    let json = json_lines(&fx.check(&["--from-runs", "--format", "json"]));
    assert_eq!(json.len(), 1, "{json:?}");
    let b = &json[0];
    assert!(close(&b["p_success"], 0.2582), "{b}");
    assert!(close(&b["predicted_if_independent"], 0.5250), "{b}");
    assert_eq!(b["p_source"], "runs");
    assert_eq!(b["measured"]["runs"], 20);
    assert_eq!(b["measured"]["succeeded"], 9);
    assert_eq!(b["below_prediction"], "within_interval");
    assert_eq!(
        b["p_assumption"],
        "Wilson 95 % lower bound on the success measured in 20 finished runs"
    );

    // per action: the same calls, measured; `:p 0.6` replaced by 9/53
    let out = fx.check(&["--from-runs", "--action", "solve"]);
    assert_eq!(
        row(&out, "solve")[1..],
        [
            "4",
            "4",
            "4",
            "400",
            "8m",
            "0.170 (9/53)",
            "0.5250",
            "20",
            "9 (0.450)",
            "0.2582"
        ],
        "{out}"
    );
}

/// With enough runs the gap is out of the interval, and said plainly:
/// 100 runs, 70 succeed at once, 30 are refused four times. Per attempt
/// 70/190; independence predicts 1 − (120/190)^4 = 0.8409; the runs
/// measured 0.700, interval [0.604, 0.781].
#[test]
fn from_runs_says_when_correlated_attempts_make_the_prediction_overstate() {
    let fx = Fixture::new();
    let outcomes: Vec<bool> = (0..100).map(|i| i % 10 < 7).collect();
    fx.run_in_process(&outcomes);
    let out = fx.check(&["--from-runs", "--actions"]);
    assert_eq!(
        row(&out, "main")[5..],
        ["0.8409", "100", "70 (0.700)", "0.6042"],
        "{out}"
    );
    for (name, of) in [("main", "runs"), ("solve", "calls")] {
        let finding = format!(
            "  {name}: measured success 0.700 (70 of 100 {of}) is below the independence prediction 0.8409, outside its 95 % interval [0.604, 0.781]: the attempts are correlated (after one fails, the next fails more often than p says), so the independence prediction overstates; the runs support P(success) ≥ 0.6042 (95 %)"
        );
        assert!(out.contains(&finding), "{out}");
    }
    let json = json_lines(&fx.check(&["--from-runs", "--actions", "--format", "json"]));
    let action = json
        .iter()
        .find(|j| j["type"] == "action_bounds")
        .expect("the action's line");
    assert_eq!(action["action"], "solve");
    assert_eq!(action["attempts"], 4);
    assert_eq!(action["attempts_judged"], 190);
    assert_eq!(action["attempts_passed"], 70);
    assert_eq!(action["below_prediction"], "outside_interval");
    assert!(close(&action["p_success"], 0.6042), "{action}");
    assert!(
        close(&action["predicted_if_independent"], 0.8409),
        "{action}"
    );
}

/// Per action without runs: attempts, costs, `:p` and its probability
/// under the assumption; an unknown name is refused.
#[test]
fn bounds_per_action() {
    let fx = Fixture::new();
    let out = fx.check(&["--action", "solve"]);
    assert!(
        out.contains("f.guardflow: per action (one call, no escalation)"),
        "{out}"
    );
    assert_eq!(
        row(&out, "solve")[1..],
        ["4", "4", "4", "400", "8m", "0.600", "0.9744 if independent"],
        "{out}"
    );
    let o = fx.guardflow(&["check", "f.guardflow", "--bounds", "--action", "solv"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("error: --action: no action `solv` in the file"),
        "{}",
        text(&o)
    );
}

/// Runs of another file in the same store are not this file's runs.
#[test]
fn from_runs_counts_only_this_files_runs() {
    let fx = Fixture::new();
    fx.run_binary(true);
    std::fs::copy(fx.flow(), fx.root.join("g.guardflow")).expect("copy");
    let o = fx.guardflow(&[
        "run",
        "g.guardflow",
        "-i",
        "q=x",
        "--replay",
        "unsolvable.jsonl",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = fx.check(&["--from-runs"]);
    assert_eq!(
        row(&out, "main")[5..],
        ["1.0000", "1", "1 (1.000)", "0.2065"],
        "{out}"
    );
}
