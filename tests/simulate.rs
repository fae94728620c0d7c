//! The `simulate` generator through the engine: 1,000 seeded trials of a
//! one-action workflow, the measured success against the model's
//! prediction (independent and correlated attempts), the same seed giving
//! the same answers, its files resolving beside the workflow, and a run
//! stopped during any of its calls and resumed drawing as it would have
//! without the stop.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use guardflow::engine::{
    BoxFuture, Engine, GenError, GenRequest, GenResponse, Generator, RunConfig, Workflow,
};
use guardflow::stats::{wilson, Z95};
use guardflow::stdlib::simulate::predicted_success;
use guardflow::store::{RunMeta, Store};

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

/// `simulate` answering as the stdlib's, but call `stop_at` (1-based, in
/// this process) never answers: a process that stopped during that call.
struct Stalling {
    inner: guardflow::stdlib::simulate::Simulate,
    calls: Arc<AtomicUsize>,
    stop_at: usize,
    stopped: Arc<tokio::sync::Notify>,
}

impl Generator for Stalling {
    fn generate(&self, r: GenRequest) -> BoxFuture<'_, Result<GenResponse, GenError>> {
        Box::pin(async move {
            if self.calls.fetch_add(1, Ordering::SeqCst) + 1 == self.stop_at {
                self.stopped.notify_one();
                std::future::pending::<()>().await;
            }
            self.inner.generate(r).await
        })
    }
}

fn stalling(stop_at: usize) -> (Engine, Arc<tokio::sync::Notify>) {
    let stopped = Arc::new(tokio::sync::Notify::new());
    let mut e = Engine::new();
    e.register_generator(
        "stalling",
        "(pass: Text, fail: Text, p: Float = 0.5, correlation: Float = 0.0)",
        Stalling {
            inner: Default::default(),
            calls: Arc::new(AtomicUsize::new(0)),
            stop_at,
            stopped: stopped.clone(),
        },
    );
    (e, stopped)
}

/// Two actions in a row, each answered by a simulated model with
/// independent attempts and four retries.
const TWO_STEPS: &str = "use std.{contains}
generator sim = stalling(pass: \"pass.txt\", fail: \"fail.txt\", p: 0.35)
action draft() -> Text { :generate sim \"draft it\" :guard contains(\"DONE\") :retry 4 :timeout 10s }
action polish(d: Text) -> Text { :generate sim \"polish {d}\" :guard contains(\"DONE\") :retry 4 :timeout 10s }
task main() -> Text {
  method only {
    :subtasks ( d: draft(), p: polish(d) )
    :ordering ( d ; p )
    :result p
  }
}
";

/// What a run ended with: its success and its judged attempts in order
/// (action, verdict), those a stop cut off left out.
fn verdicts(db: &std::path::Path, id: &str) -> (Option<bool>, Vec<(String, String)>) {
    let events = Store::open_read(db)
        .and_then(|s| s.events(id))
        .expect("events");
    let mut success = None;
    let mut judged = Vec::new();
    for e in events {
        match e["event"].as_str() {
            Some("attempt") if e["verdict"] != "interrupted" => judged.push((
                e["action"].as_str().unwrap_or("").to_string(),
                e["verdict"].as_str().unwrap_or("").to_string(),
            )),
            Some("run_finished") => success = e["success"].as_bool(),
            _ => {}
        }
    }
    (success, judged)
}

/// Three samples a round, made concurrently: a round stopped during one
/// of them makes that one again, in its place.
const BEST_OF: &str = "use std.{contains}
generator sim = stalling(pass: \"pass.txt\", fail: \"fail.txt\", p: 0.2)
action pick() -> Text { :generate sim \"pick\" :guard contains(\"DONE\") :strategy best-of(3) :retry 2 :timeout 10s }
task main() -> Text {
  method only {
    :subtasks ( p: pick() )
    :result p
  }
}
";

/// A simulated run stopped during any of its generator calls and resumed
/// draws what the run draws without the stop: the call made again draws
/// as the call that was cut off would have, so the same attempts pass
/// and fail and the run ends alike.
#[test]
fn a_run_stopped_mid_call_and_resumed_draws_as_an_uninterrupted_one() {
    stopped_at_each_call(TWO_STEPS, 5, |v| v);
}

/// The same with `best-of(3)`: the sample made again stands in the round
/// for the one cut off (the round's verdicts alike; their order is the
/// order samples ended in).
#[test]
fn a_best_of_round_stopped_mid_sample_and_resumed_draws_as_an_uninterrupted_one() {
    stopped_at_each_call(BEST_OF, 6, |mut v| {
        v.sort();
        v
    });
}

/// `flow` run whole, then stopped during each of its calls and resumed,
/// with three seeds whose whole runs make at least `min_calls` calls: the
/// same outcome and (`order`ed) verdicts every time.
fn stopped_at_each_call(
    flow_text: &str,
    min_calls: usize,
    order: impl Fn(Vec<(String, String)>) -> Vec<(String, String)>,
) {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("pass.txt"), "all DONE\n").expect("write");
    std::fs::write(dir.path().join("fail.txt"), "not yet\n").expect("write");
    let flow = dir.path().join("flow.guardflow");
    std::fs::write(&flow, flow_text).expect("write");
    let rt = guardflow::engine::runtime().expect("runtime");
    let config = RunConfig {
        task: "main".into(),
        ..RunConfig::default()
    };
    let meta = |seed: u64| RunMeta {
        id: String::new(),
        workflow: flow.to_string_lossy().into_owned(),
        workflow_hash: String::new(),
        task: "main".into(),
        inputs: serde_json::Map::new(),
        replacement: None,
        worst_case_calls: None,
        started_ms: 0,
        seed: Some(seed),
        bench: None,
    };
    let (mut cut, mut seeds) = (0, 0);
    for seed in 0u64..100 {
        if seeds == 3 {
            break;
        }
        let whole_db = dir.path().join(format!("whole-{seed}.db"));
        let whole = {
            let (e, _) = stalling(0);
            let w = e.compile_file(&flow).expect("compiles");
            let mut started = e.start(&w, &config).expect("starts");
            started.seed(seed);
            let mut m = meta(seed);
            let recorder = Store::open(&whole_db)
                .and_then(|s| s.start_run(&mut m))
                .expect("store");
            started.record_to(Arc::new(recorder));
            rt.block_on(started.execute());
            drop(started);
            let (success, judged) = verdicts(&whole_db, &m.id);
            (success, order(judged))
        };
        let calls = whole.1.len();
        // runs with a few rejections
        if calls < min_calls {
            continue;
        }
        seeds += 1;
        for stop_at in 1..=calls {
            let db = dir.path().join(format!("stopped-{seed}-{stop_at}.db"));
            let (e, stopped) = stalling(stop_at);
            let w = e.compile_file(&flow).expect("compiles");
            let mut started = e.start(&w, &config).expect("starts");
            started.seed(seed);
            let mut m = meta(seed);
            let recorder = Store::open(&db)
                .and_then(|s| s.start_run(&mut m))
                .expect("store");
            started.record_to(Arc::new(recorder));
            // a runtime of its own: dropping it drops the stopped run
            // and its lock
            let stopped_rt = guardflow::engine::runtime().expect("runtime");
            let finished = stopped_rt.block_on(async {
                tokio::select! {
                    r = started.execute() => Some(r),
                    _ = stopped.notified() => None,
                }
            });
            assert!(
                finished.is_none(),
                "seed {seed}, stop at {stop_at}: it ended first"
            );
            drop(started);
            drop(stopped_rt);
            drop((e, w));
            let (_, resume, recorder) = crate::support::resume_run(&db, &m.id);
            let (e, _) = stalling(0);
            let w = e.compile_file(&flow).expect("compiles");
            let mut started = e.start(&w, &config).expect("starts");
            started.seed(seed);
            started.resume(resume);
            started.record_to(Arc::new(recorder));
            rt.block_on(started.execute());
            drop(started);
            let (success, judged) = verdicts(&db, &m.id);
            assert_eq!(
                (success, order(judged)),
                (whole.0, whole.1.clone()),
                "seed {seed}, stopped during call {stop_at}"
            );
            cut += 1;
        }
    }
    assert_eq!(seeds, 3, "too few seeds with {min_calls} calls or more");
    assert!(cut >= 3 * min_calls, "{cut}");
}
