//! Context that refines: `{previous}` and `{history}` in prompts, history
//! kept across escalation restarts and method fallback, and the
//! strategies (`repair`, `resample`, `best-of(N)`) with their bounds and
//! resume.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use guardflow::engine::{
    BoxFuture, Engine, GenError, GenRequest, GenResponse, Generator, RunConfig, Verdict,
};
use guardflow::runtime::RunReport;
use guardflow::store::{RunMeta, Store};

/// One generator call as the generator saw it.
#[derive(Debug, Clone)]
struct Call {
    action: String,
    attempt: u32,
    prompt: String,
    role: Option<String>,
    feedback: Option<String>,
}

type Answer = dyn Fn(&GenRequest) -> String + Send + Sync;

/// Answers with `answer`; every request is kept. Call `stop_at` (from 1)
/// never answers and notifies `stopped`, standing for a process that
/// died there.
struct Scripted {
    answer: Box<Answer>,
    calls: Arc<Mutex<Vec<Call>>>,
    count: Arc<AtomicUsize>,
    stop_at: usize,
    stopped: Arc<tokio::sync::Notify>,
    /// Calls of these attempts wait until all of them are in flight.
    together: Option<(BTreeSet<u32>, Arc<tokio::sync::Barrier>)>,
}

impl Generator for Scripted {
    fn generate(&self, r: GenRequest) -> BoxFuture<'_, Result<GenResponse, GenError>> {
        Box::pin(async move {
            let n = self.count.fetch_add(1, AtomicOrdering::SeqCst) + 1;
            self.calls.lock().unwrap().push(Call {
                action: r.action.clone(),
                attempt: r.attempt,
                prompt: r.prompt.clone(),
                role: r.role.clone(),
                feedback: r.feedback.clone(),
            });
            if n == self.stop_at {
                self.stopped.notify_one();
                std::future::pending::<()>().await;
            }
            if let Some((attempts, barrier)) = &self.together {
                if attempts.contains(&r.attempt) {
                    // a bounded wait: made one after another, the samples
                    // would never meet
                    if tokio::time::timeout(Duration::from_secs(30), barrier.wait())
                        .await
                        .is_err()
                    {
                        return Ok(GenResponse::text("bad: the samples did not run together"));
                    }
                }
            }
            Ok(GenResponse::text((self.answer)(&r)))
        })
    }
}

struct Setup {
    engine: Engine,
    calls: Arc<Mutex<Vec<Call>>>,
    count: Arc<AtomicUsize>,
    stopped: Arc<tokio::sync::Notify>,
}

fn setup(
    answer: impl Fn(&GenRequest) -> String + Send + Sync + 'static,
    stop_at: usize,
    together: Option<(BTreeSet<u32>, Arc<tokio::sync::Barrier>)>,
) -> Setup {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let stopped = Arc::new(tokio::sync::Notify::new());
    let mut engine = Engine::bare();
    engine.register_guard("ok", "on Text", |c| {
        if c.text().contains("bad") {
            Verdict::fail("it says bad")
        } else {
            Verdict::Pass
        }
    });
    engine.register_generator(
        "scripted",
        "()",
        Scripted {
            answer: Box::new(answer),
            calls: calls.clone(),
            count: count.clone(),
            stop_at,
            stopped: stopped.clone(),
            together,
        },
    );
    Setup {
        engine,
        calls,
        count,
        stopped,
    }
}

fn run(s: &Setup, source: &str, task: &str) -> RunReport {
    let w = s
        .engine
        .compile("refine.guardflow", source)
        .expect("compiles");
    let rt = guardflow::engine::runtime().expect("runtime");
    let config = RunConfig {
        task: task.into(),
        ..RunConfig::default()
    };
    rt.block_on(s.engine.run_config(&w, config)).expect("runs")
}

fn calls(s: &Setup) -> Vec<Call> {
    s.calls.lock().unwrap().clone()
}

const RETRYING: &str = "generator g = scripted()\n\
    action draft(q: Text) -> Text {\n\
      :generate g \"Q: {q}\\nPrevious: {previous}\\nHistory:\\n{history}\"\n\
      :guard ok :retry 2 :timeout 10s\n\
    }\n\
    action plain(q: Text) -> Text { :generate g \"Q: {q}\" :guard ok :retry 1 :timeout 10s }\n\
    action short(q: Text) -> Text {\n\
      :generate g \"{history}\" :guard ok :retry 2 :timeout 10s :feedback last\n\
    }\n\
    task main() -> Text { method m { :subtasks (d: draft(\"why\")) :result d } }\n\
    task bare() -> Text { method m { :subtasks (p: plain(\"why\")) :result p } }\n\
    task last() -> Text { method m { :subtasks (s: short(\"why\")) :result s } }\n";

fn by_attempt(r: &GenRequest) -> String {
    match r.attempt {
        1 => "bad draft one".into(),
        2 => "bad draft two".into(),
        _ => "good".into(),
    }
}

#[test]
fn a_retry_prompt_contains_the_previous_output_and_the_history() {
    let s = setup(by_attempt, 0, None);
    let report = run(&s, RETRYING, "main");
    assert!(report.success, "{:?}", report.failure);
    let c = calls(&s);
    assert_eq!(c.len(), 3);
    assert!(
        c[0].prompt
            .contains("Previous: (none yet: this is the first attempt)"),
        "{}",
        c[0].prompt
    );
    assert!(
        c[0].prompt.contains("(no earlier attempts)"),
        "{}",
        c[0].prompt
    );
    assert!(
        c[1].prompt.contains("Previous: bad draft one"),
        "{}",
        c[1].prompt
    );
    assert!(
        c[2].prompt.contains("Previous: bad draft two"),
        "{}",
        c[2].prompt
    );
    assert!(
        c[2].prompt.contains(
            "Attempt 1:\nOutput:\nbad draft one\nFeedback:\nok: it says bad\n\n\
             Attempt 2:\nOutput:\nbad draft two\nFeedback:\nok: it says bad"
        ),
        "{}",
        c[2].prompt
    );
    // the generator hears the feedback too
    assert_eq!(c[1].feedback.as_deref(), Some("ok: it says bad"));
}

#[test]
fn a_prompt_without_context_names_gets_the_feedback_and_the_rejected_answer() {
    let s = setup(by_attempt, 0, None);
    let report = run(&s, RETRYING, "bare");
    assert!(!report.success, "two bad drafts");
    let c = calls(&s);
    assert_eq!(
        c[1].prompt,
        "Q: why\n\nYour previous answer was rejected:\nok: it says bad\n\n\
         The rejected answer:\nbad draft one"
    );
}

#[test]
fn feedback_last_bounds_the_history() {
    let s = setup(by_attempt, 0, None);
    let report = run(&s, RETRYING, "last");
    assert!(report.success, "{:?}", report.failure);
    let c = calls(&s);
    assert_eq!(
        c[2].prompt,
        "Attempt 2:\nOutput:\nbad draft two\nFeedback:\nok: it says bad"
    );
}

#[test]
fn a_long_rejected_output_is_cut_and_the_cut_stated() {
    let s = setup(
        |r| match r.attempt {
            1 => format!("bad {}", "x".repeat(10_000)),
            _ => "good".into(),
        },
        0,
        None,
    );
    let report = run(&s, RETRYING, "main");
    assert!(report.success, "{:?}", report.failure);
    let c = calls(&s);
    assert!(
        c[1].prompt.contains("[… cut: 6004 more bytes not shown]"),
        "{}",
        &c[1].prompt[c[1].prompt.len() - 200..]
    );
    assert!(c[1].prompt.len() < 9_000, "{}", c[1].prompt.len());
}

const ESCALATING: &str = "generator g = scripted()\n\
    action spec() -> Text { :generate g \"spec; before: {previous}\" :guard ok :retry 2 :timeout 10s }\n\
    action implement(s: Text) -> Text {\n\
      :generate g \"implement {s}\\n{history}\" :guard ok :retry 3 :timeout 10s :feedback all\n\
    }\n\
    task main() -> Text { method m {\n\
      :subtasks (t: spec(), i: implement(t) :escalate-to t after 2 :max-escalations 1)\n\
      :result i\n\
    } }\n";

fn spec_then_implement(r: &GenRequest) -> String {
    match r.action.as_str() {
        "spec" if r.attempt == 1 => "v1".into(),
        "spec" => "v2".into(),
        _ if r.prompt.starts_with("implement v2") => "good".into(),
        _ => format!("bad {}", r.attempt),
    }
}

#[test]
fn after_an_escalation_the_downstream_history_is_kept() {
    let s = setup(spec_then_implement, 0, None);
    let report = run(&s, ESCALATING, "main");
    assert!(report.success, "{:?}", report.failure);
    let c = calls(&s);
    let names: Vec<&str> = c.iter().map(|c| c.action.as_str()).collect();
    assert_eq!(
        names,
        ["spec", "implement", "implement", "spec", "implement"]
    );
    // the regenerated upstream sees the artifact the later step failed with
    assert!(c[3].prompt.contains("before: v1"), "{}", c[3].prompt);
    // the restarted downstream still sees its attempts, marked
    let again = &c[4].prompt;
    assert!(
        again.contains(
            "Attempt 1 (made against an earlier `t`):\nOutput:\nbad 1\nFeedback:\nok: it says bad"
        ),
        "{again}"
    );
    assert!(
        again.contains("Attempt 2 (made against an earlier `t`):\nOutput:\nbad 2"),
        "{again}"
    );
}

const FALLBACK: &str = "generator g = scripted()\n\
    action small(q: Text) -> Text { :generate g \"small {q}\" :guard ok :retry 1 :timeout 10s }\n\
    action large(q: Text) -> Text {\n\
      :generate g \"large {q}\\nPrevious: {previous}\\n{history}\" :guard ok :retry 1 :timeout 10s\n\
    }\n\
    task main() -> Text {\n\
      method cheap { :subtasks (s: small(\"q\")) :result s }\n\
      method careful { :subtasks (l: large(\"q\")) :result l }\n\
    }\n\
    task fresh() -> Text {\n\
      method cheap { :subtasks (s: small(\"q\")) :result s }\n\
      method careful { :history fresh :subtasks (l: large(\"q\")) :result l }\n\
    }\n";

fn small_fails(r: &GenRequest) -> String {
    match r.action.as_str() {
        "small" => format!("bad small {}", r.attempt),
        _ => "good".into(),
    }
}

#[test]
fn after_method_fallback_the_next_method_sees_the_failed_attempts() {
    let s = setup(small_fails, 0, None);
    let report = run(&s, FALLBACK, "main");
    assert!(report.success, "{:?}", report.failure);
    let c = calls(&s);
    assert_eq!(c.len(), 3);
    let first = &c[2].prompt;
    assert_eq!(c[2].action, "large");
    assert!(first.contains("Previous: bad small 2"), "{first}");
    assert!(
        first.contains(
            "Attempt 1 (by `small` in method `cheap`):\nOutput:\nbad small 1\nFeedback:\nok: it says bad"
        ),
        "{first}"
    );
    assert!(
        first.contains("Attempt 2 (by `small` in method `cheap`)"),
        "{first}"
    );
}

#[test]
fn history_fresh_opts_a_method_out() {
    let s = setup(small_fails, 0, None);
    let report = run(&s, FALLBACK, "fresh");
    assert!(report.success, "{:?}", report.failure);
    let c = calls(&s);
    assert_eq!(
        c[2].prompt,
        "large q\nPrevious: (none yet: this is the first attempt)\n(no earlier attempts)"
    );
}

const RESAMPLE: &str = "generator g = scripted()\n\
    action pick(q: Text) -> Text {\n\
      :generate g \"Pick: {q}\" :role \"You pick.\" :guard ok :retry 2 :timeout 10s\n\
      :strategy resample\n\
    }\n\
    task main() -> Text { method m { :subtasks (p: pick(\"one\")) :result p } }\n";

#[test]
fn resample_sends_no_history() {
    let s = setup(by_attempt, 0, None);
    let report = run(&s, RESAMPLE, "main");
    assert!(report.success, "{:?}", report.failure);
    let c = calls(&s);
    assert_eq!(c.len(), 3);
    for call in &c {
        assert_eq!(call.prompt, "Pick: one", "attempt {}", call.attempt);
        assert_eq!(call.role.as_deref(), Some("You pick."));
        assert_eq!(call.feedback, None, "attempt {}", call.attempt);
    }
}

const BEST_OF: &str = "generator g = scripted()\n\
    action pick(q: Text) -> Text {\n\
      :generate g \"Pick: {q}\" :guard ok :retry 1 :timeout 10s :strategy best-of(3)\n\
    }\n\
    task main() -> Text { method m { :subtasks (p: pick(\"one\")) :result p } }\n";

/// Attempt 1's three samples and the first of attempt 2 are bad.
fn samples(r: &GenRequest) -> String {
    match r.attempt {
        1..=4 => format!("bad {}", r.attempt),
        n => format!("good {n}"),
    }
}

#[test]
fn best_of_makes_n_calls_per_attempt_concurrently_and_the_bound_counts_them() {
    let together = (
        [1, 2, 3].into_iter().collect(),
        Arc::new(tokio::sync::Barrier::new(3)),
    );
    let s = setup(samples, 0, Some(together));
    let w = s
        .engine
        .compile("refine.guardflow", BEST_OF)
        .expect("compiles");
    assert_eq!(w.worst_case_calls[0], Some(6), "2 attempts of 3 samples");
    let report = run(&s, BEST_OF, "main");
    assert!(report.success, "{:?}", report.failure);
    // the first that passes, in sample order
    assert_eq!(report.result, Some("good 5".into()));
    assert_eq!(report.generator_calls, 6);
    assert_eq!(report.guard_runs, 6, "every sample is judged");
    assert_eq!(report.attempts.len(), 6, "every sample is recorded");
    let c = calls(&s);
    let attempts: BTreeSet<u32> = c.iter().map(|c| c.attempt).collect();
    assert_eq!(attempts, (1..=6).collect());
    // the second attempt's samples see the first's rejections
    let second: Vec<&Call> = c.iter().filter(|c| c.attempt > 3).collect();
    assert!(
        second.iter().all(|c| c.prompt.contains("bad 3")),
        "{second:?}"
    );
}

#[test]
fn check_bounds_counts_every_sample() {
    let dir = tempfile::tempdir().expect("tempdir");
    let flow = dir.path().join("best.guardflow");
    std::fs::write(
        &flow,
        "use std.{non_empty}\n\
         generator g = llm(model: \"m\")\n\
         action pick(q: Text) -> Text {\n\
           :generate g \"Pick: {q}\" :guard non_empty :retry 1 :timeout 10s :strategy best-of(3)\n\
         }\n\
         task main() -> Text { method m { :subtasks (p: pick(\"one\")) :result p } }\n",
    )
    .expect("write");
    let o = std::process::Command::new(crate::support::bin())
        .args(["check", "--bounds"])
        .arg(&flow)
        .output()
        .expect("guardflow");
    let out = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{out}");
    let main: Vec<&str> = out
        .lines()
        .find(|l| l.trim_start().starts_with("main "))
        .map(|l| l.split_whitespace().collect())
        .unwrap_or_default();
    assert_eq!(
        main.get(1..3),
        Some(&["6", "6"][..]),
        "calls and guard runs: {out}"
    );
}

/// Resumes run `id`. The list of running programs is the test process's
/// own, shared with the tests running beside this one: while one of
/// theirs runs, a resume is refused; it is asked again, for at most 60 s.
fn resume_when_free(
    db: &std::path::Path,
    id: &str,
) -> (guardflow::runtime::Resume, guardflow::store::Recorder) {
    let mut last = String::new();
    for _ in 0..1200 {
        match Store::open(db).and_then(|st| st.resume_run(id)) {
            Ok((_, resume, recorder)) => return (resume, recorder),
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("resume: {last}");
}

/// A best-of run stopped at each of its calls resumes without losing or
/// counting twice a sample: every counted call was judged, the one in
/// flight is made again outside the budget.
#[test]
fn best_of_resumes_without_losing_or_double_counting_samples() {
    let rt = guardflow::engine::runtime().expect("runtime");
    let config = || RunConfig {
        task: "main".into(),
        ..RunConfig::default()
    };
    for stop_at in 1..=6 {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("runs.db");
        let s = setup(samples, stop_at, None);
        let w = s
            .engine
            .compile("refine.guardflow", BEST_OF)
            .expect("compiles");
        let bound = w.worst_case_calls[0].expect("bounded");
        let mut started = s.engine.start(&w, &config()).expect("starts");
        let mut meta = RunMeta {
            id: String::new(),
            workflow: "refine.guardflow".into(),
            workflow_hash: String::new(),
            task: "main".into(),
            inputs: serde_json::Map::new(),
            replacement: None,
            worst_case_calls: Some(bound),
            started_ms: 0,
            seed: None,
            bench: None,
        };
        let recorder = Store::open(&db)
            .and_then(|st| st.start_run(&mut meta))
            .expect("store");
        started.record_to(Arc::new(recorder));
        let finished = rt.block_on(async {
            tokio::select! {
                r = started.execute() => Some(r),
                _ = s.stopped.notified() => None,
            }
        });
        assert!(finished.is_none(), "stop at {stop_at}: the run ended first");
        drop(started);

        let (resume, recorder) = resume_when_free(&db, &meta.id);
        let count = s.count.clone();
        let again = setup(
            move |r| {
                count.fetch_add(1, AtomicOrdering::SeqCst);
                samples(r)
            },
            0,
            None,
        );
        let mut started = again.engine.start(&w, &config()).expect("starts");
        started.resume(resume);
        started.record_to(Arc::new(recorder));
        let report = rt.block_on(started.execute());
        drop(started);
        assert!(report.success, "stop at {stop_at}: {:?}", report.failure);
        assert!(
            report
                .result
                .as_ref()
                .is_some_and(|r| r.to_string().contains("good")),
            "stop at {stop_at}: {:?}",
            report.result
        );
        assert_eq!(report.repeated_calls, 1, "stop at {stop_at}");
        assert_eq!(report.generator_calls, 6, "stop at {stop_at}");
        assert_eq!(
            report.guard_runs, 6,
            "stop at {stop_at}: every sample judged once"
        );
        let total = s.count.load(AtomicOrdering::SeqCst) as u64;
        assert_eq!(
            total,
            report.generator_calls + report.repeated_calls,
            "stop at {stop_at}: calls made in both processes"
        );
        assert!(report.generator_calls <= bound, "stop at {stop_at}");
    }
}

const WIDE: &str = "generator g = scripted()\n\
    action small(q: Text) -> Text { :generate g \"small {q}\" :guard ok :retry 9 :timeout 10s }\n\
    action large(q: Text) -> Text {\n\
      :generate g \"{history}\" :guard ok :retry 0 :timeout 10s :feedback all\n\
    }\n\
    task main() -> Text {\n\
      method cheap { :subtasks (a: small(\"a\"), b: small(\"b\")) :ordering (a || b) :on-fail continue :result a }\n\
      method careful { :subtasks (l: large(\"q\")) :result l }\n\
    }\n";

/// A failed method's 20 rejections reach the next method's action as the
/// 16 latest: what an action starts with is bounded.
#[test]
fn what_an_action_starts_with_is_the_sixteen_latest() {
    let s = setup(small_fails, 0, None);
    let report = run(&s, WIDE, "main");
    assert!(report.success, "{:?}", report.failure);
    let c = calls(&s);
    assert_eq!(c.len(), 21);
    let prompt = &c[20].prompt;
    assert_eq!(prompt.matches("Output:\n").count(), 16, "{prompt}");
    assert!(
        prompt.starts_with("Attempt 1 (by `small` in method `cheap`)"),
        "{prompt}"
    );
}
