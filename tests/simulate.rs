//! The `simulate` generator through the engine: 1,000 seeded trials of a
//! one-action workflow, the measured success against the model's
//! prediction (independent and correlated attempts), the same seed giving
//! the same answers, and its files resolving beside the workflow.

use guardflow::engine::{Engine, RunConfig, Workflow};
use guardflow::stats::{wilson, Z95};
use guardflow::stdlib::simulate::predicted_success;

/// A workflow in a fresh directory whose action `solve` is answered by
/// `simulate(pass: "pass.txt", fail: "fail.txt", p, correlation)` and
/// guarded by `contains("DONE")`, with `retries` retries.
fn workflow(p: f64, correlation: f64, retries: u64) -> (tempfile::TempDir, Workflow) {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("pass.txt"), "all DONE\n").expect("write");
    std::fs::write(dir.path().join("fail.txt"), "not yet\n").expect("write");
    let source = format!(
        "use std.{{contains}}\n\
         generator sim = simulate(pass: \"pass.txt\", fail: \"fail.txt\", p: {p:?}, correlation: {correlation:?})\n\
         action solve() -> Text {{\n  :generate sim \"solve it\"\n  :guard contains(\"DONE\")\n  :retry {retries}\n  :timeout 10s\n}}\n\
         task main() -> Text {{\n  method only {{\n    :subtasks ( s: solve() )\n    :result s\n  }}\n}}\n"
    );
    let path = dir.path().join("flow.guardflow");
    std::fs::write(&path, &source).expect("write");
    let workflow = Engine::new().compile_file(&path).expect("checks");
    (dir, workflow)
}

/// Runs `trials` trials seeded as a bench seeded 0 seeds them; the successes and, per trial, the
/// generator calls.
fn trials(workflow: &Workflow, trials: u64) -> (u64, Vec<u64>) {
    let engine = Engine::new();
    let rt = guardflow::engine::runtime().expect("runtime");
    rt.block_on(async {
        let mut successes = 0;
        let mut calls = Vec::new();
        for seed in 0..trials {
            let config = RunConfig {
                task: "main".into(),
                ..RunConfig::default()
            };
            let mut started = engine.start(workflow, &config).expect("starts");
            started.seed(guardflow::stdlib::simulate::trial_seed(0, seed));
            let report = started.execute().await;
            successes += u64::from(report.success);
            calls.push(report.generator_calls);
        }
        (successes, calls)
    })
}

/// The prediction lies in the Wilson 95 % interval of what was measured.
fn assert_predicted(p: f64, correlation: f64, retries: u64) {
    let (_dir, w) = workflow(p, correlation, retries);
    let n = 1000;
    let (successes, calls) = trials(&w, n);
    let (lo, hi) = wilson(successes, n, Z95);
    let predicted = predicted_success(p, correlation, retries);
    assert!(
        lo <= predicted && predicted <= hi,
        "p {p}, correlation {correlation}, R {retries}: measured {successes}/{n} \
         (95 % interval {lo:.4}–{hi:.4}), predicted {predicted:.4}"
    );
    assert!(calls.iter().all(|&c| (1..=retries + 1).contains(&c)));
}

#[test]
fn independent_attempts_succeed_as_predicted() {
    assert_predicted(0.3, 0.0, 3);
    assert_predicted(0.3, 0.0, 0);
}

#[test]
fn correlated_attempts_succeed_as_their_own_prediction() {
    // the independence prediction (0.76) is far outside what is measured
    assert_predicted(0.3, 0.6, 3);
    let (_dir, w) = workflow(0.3, 1.0, 3);
    let (successes, calls) = trials(&w, 1000);
    let (lo, hi) = wilson(successes, 1000, Z95);
    assert!(lo <= 0.3 && 0.3 <= hi, "{successes}");
    // a trial that cannot solve it never does: four calls, all rejected
    let failed = calls.iter().filter(|&&c| c == 4).count() as u64;
    assert_eq!(failed, 1000 - successes);
}

#[test]
fn the_same_seed_gives_the_same_trial() {
    let (_dir, w) = workflow(0.5, 0.0, 5);
    let (a_successes, a) = trials(&w, 50);
    let (b_successes, b) = trials(&w, 50);
    assert_eq!((a_successes, &a), (b_successes, &b));
    // and the seeds do make trials differ
    assert!(a.iter().any(|&c| c != a[0]), "{a:?}");
}

#[test]
fn files_resolve_beside_the_workflow_and_missing_ones_are_said() {
    let (dir, w) = workflow(1.0, 0.0, 0);
    // run from elsewhere: the files are found beside the workflow
    let (successes, _) = trials(&w, 3);
    assert_eq!(successes, 3);
    std::fs::remove_file(dir.path().join("pass.txt")).expect("remove");
    let rt = guardflow::engine::runtime().expect("runtime");
    let report = rt
        .block_on(Engine::new().run(&w, "main", &[]))
        .expect("starts");
    assert!(!report.success);
    let failure = report.failure.unwrap_or_default();
    assert!(
        failure.contains("simulate: cannot read the `pass` file") && failure.contains("pass.txt"),
        "{failure}"
    );
}

#[test]
fn a_probability_out_of_range_is_refused_when_asked() {
    let (_dir, w) = workflow(1.5, 0.0, 0);
    let rt = guardflow::engine::runtime().expect("runtime");
    let report = rt
        .block_on(Engine::new().run(&w, "main", &[]))
        .expect("starts");
    let failure = report.failure.unwrap_or_default();
    assert!(
        failure.contains("`p` is 1.5; it is a probability, from 0 to 1"),
        "{failure}"
    );
}
