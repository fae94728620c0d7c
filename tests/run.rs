//! The interpreter, through the embedding API: the action pair, retries
//! and feedback, fatal verdicts, backtracking, fork-join concurrency and
//! cancellation, resources, escalation, recursion depth, timeouts, type
//! conversion, and worst-case bounds met exactly.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use guardflow::engine::{
    BoxFuture, Engine, GenError, GenRequest, GenResponse, Generator, RunConfig, Verdict, Workflow,
};
use guardflow::runtime::{RunReport, Value, VerdictKind};

/// Answers from a script: `answer(action, attempt)`; may wait first.
struct Scripted<F> {
    answer: F,
    delay: Option<Duration>,
    in_flight: Arc<AtomicUsize>,
    max_in_flight: Arc<AtomicUsize>,
}

impl<F> Generator for Scripted<F>
where
    F: Fn(&GenRequest) -> Result<String, GenError> + Send + Sync,
{
    fn generate(&self, r: GenRequest) -> BoxFuture<'_, Result<GenResponse, GenError>> {
        Box::pin(async move {
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_in_flight.fetch_max(now, Ordering::SeqCst);
            if let Some(d) = self.delay {
                tokio::time::sleep(d).await;
            } else {
                tokio::task::yield_now().await;
            }
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            (self.answer)(&r).map(GenResponse::text)
        })
    }
}

struct Fixture {
    engine: Engine,
    max_in_flight: Arc<AtomicUsize>,
    prompts: Arc<Mutex<Vec<String>>>,
}

/// An engine whose generator `scripted()` answers with `answer`, and
/// whose guard `is(expected)` passes on that exact text.
fn fixture(
    delay: Option<Duration>,
    answer: impl Fn(&GenRequest) -> Result<String, GenError> + Send + Sync + 'static,
) -> Fixture {
    let mut engine = Engine::new();
    let max_in_flight = Arc::new(AtomicUsize::new(0));
    let prompts = Arc::new(Mutex::new(Vec::new()));
    let seen = prompts.clone();
    engine.register_generator(
        "scripted",
        "()",
        Scripted {
            answer: move |r: &GenRequest| {
                seen.lock().unwrap().push(r.prompt.clone());
                answer(r)
            },
            delay,
            in_flight: Arc::new(AtomicUsize::new(0)),
            max_in_flight: max_in_flight.clone(),
        },
    );
    engine.register_guard("is", "(expected: Text) on Text", |c| {
        if c.text().trim() == c.str_arg(0) {
            Verdict::Pass
        } else {
            Verdict::fail(format!(
                "expected `{}`, got `{}`",
                c.str_arg(0),
                c.text().trim()
            ))
        }
    });
    engine.register_guard("fatal_on", "(bad: Text) on Text", |c| {
        if c.text().trim() == c.str_arg(0) {
            Verdict::fatal("the tool is missing")
        } else {
            Verdict::Pass
        }
    });
    engine.register_guard("explodes", "on Text", |_| panic!("guard bug"));
    Fixture {
        engine,
        max_in_flight,
        prompts,
    }
}

fn compile(f: &Fixture, src: &str) -> Workflow {
    let src =
        format!(":default-timeout 30s\nuse std.{{non_empty}}\ngenerator g = scripted()\n{src}");
    match f.engine.compile("t.guardflow", &src) {
        Ok(w) => w,
        Err(e) => panic!("{}", e.render(false)),
    }
}

fn run(f: &Fixture, w: &Workflow, task: &str) -> RunReport {
    f.engine.run_blocking(w, task, &[]).expect("starts")
}

#[test]
fn a_rejected_attempt_retries_with_the_feedback_in_the_prompt() {
    let f = fixture(None, |r| {
        Ok(if r.attempt < 3 { "no" } else { "yes" }.to_string())
    });
    let w = compile(
        &f,
        "action a() -> Text { :generate g \"say yes\" :guard is(\"yes\") :retry 3 :feedback all }\n\
         task t() -> Text { method m { :subtasks (x: a()) :result x } }",
    );
    let r = run(&f, &w, "t");
    assert!(r.success, "{:?}", r.failure);
    assert_eq!(r.generator_calls, 3);
    assert_eq!(r.result, Some(Value::String("yes".into())));
    let verdicts: Vec<VerdictKind> = r.attempts.iter().map(|a| a.verdict).collect();
    assert_eq!(
        verdicts,
        [VerdictKind::Fail, VerdictKind::Fail, VerdictKind::Pass]
    );
    // the exact prompt of each attempt is recorded; feedback is appended
    assert_eq!(r.attempts[0].prompt, "say yes");
    assert!(
        r.attempts[1].prompt.contains("expected `yes`, got `no`"),
        "{}",
        r.attempts[1].prompt
    );
    assert!(
        r.attempts[2].prompt.contains("Attempt 1: is: expected"),
        "{}",
        r.attempts[2].prompt
    );
    assert!(r.attempts[2].prompt.contains("Attempt 2: is: expected"));
    assert_eq!(f.prompts.lock().unwrap().len(), 3);
}

#[test]
fn exhausted_retries_fail_the_action_and_the_task() {
    let f = fixture(None, |_| Ok("no".into()));
    let w = compile(
        &f,
        "action a() -> Text { :generate g \"p\" :guard is(\"yes\") :retry 2 }\n\
         task t() { method m { :subtasks (x: a()) } }",
    );
    let r = run(&f, &w, "t");
    assert!(!r.success);
    assert_eq!(r.generator_calls, 3, "retry 2 is 3 attempts");
    assert_eq!(r.worst_case_calls, Some(3));
    let why = r.failure.unwrap();
    assert!(why.contains("all 3 attempts were rejected"), "{why}");
}

#[test]
fn a_fatal_verdict_skips_the_remaining_retries() {
    let f = fixture(None, |_| Ok("bad".into()));
    let w = compile(
        &f,
        "action a() -> Text { :generate g \"p\" :guard fatal_on(\"bad\") :retry 5 }\n\
         task t() { method m { :subtasks (x: a()) } }",
    );
    let r = run(&f, &w, "t");
    assert!(!r.success);
    assert_eq!(r.generator_calls, 1);
    assert!(r.failure.unwrap().contains("the tool is missing"));
}

#[test]
fn a_panicking_guard_is_a_fatal_verdict_not_a_crash() {
    let f = fixture(None, |_| Ok("x".into()));
    let w = compile(
        &f,
        "action a() -> Text { :generate g \"p\" :guard explodes :retry 3 }\n\
         task t() { method m { :subtasks (x: a()) } }",
    );
    let r = run(&f, &w, "t");
    assert!(!r.success);
    assert_eq!(r.generator_calls, 1);
    let why = r.failure.unwrap();
    assert!(why.contains("crashed: guard bug"), "{why}");
}

#[test]
fn a_failed_method_hands_over_to_the_next_keeping_other_artifacts() {
    let f = fixture(None, |r| {
        Ok(match r.action.as_str() {
            "weak" => "no",
            _ => "yes",
        }
        .to_string())
    });
    let w = compile(
        &f,
        "action weak() -> Text { :generate g \"w\" :guard is(\"yes\") :retry 1 }\n\
         action strong() -> Text { :generate g \"s\" :guard is(\"yes\") :retry 1 }\n\
         task t() -> Text {\n\
           method small { :subtasks (x: weak()) :result x }\n\
           method large { :subtasks (y: strong()) :result y }\n\
         }",
    );
    let r = run(&f, &w, "t");
    assert!(r.success, "{:?}", r.failure);
    assert_eq!(r.generator_calls, 3);
    assert_eq!(r.actions["weak"].failed, 1);
    assert_eq!(r.actions["strong"].committed, 1);
    assert_eq!(r.artifacts.len(), 1);
    assert_eq!(r.artifacts[0].0, "t/large/y");
}

#[test]
fn a_method_whose_precondition_fails_is_skipped_without_a_call() {
    let f = fixture(None, |_| Ok("yes".into()));
    let w = compile(
        &f,
        "action a(s: Text) -> Text { :generate g \"{s}\" :guard is(\"yes\") :retry 0 }\n\
         task t(s: Text) -> Text {\n\
           method first { :pre is(s, \"go\") :subtasks (x: a(s)) :result x }\n\
           method second { :subtasks (y: a(s)) :result y }\n\
         }",
    );
    let r = f
        .engine
        .run_blocking(&w, "t", &[("s", "stop".into())])
        .unwrap();
    assert!(r.success);
    assert_eq!(r.generator_calls, 1);
    assert_eq!(r.artifacts[0].0, "t/second/y");
}

#[test]
fn fork_join_branches_run_concurrently() {
    let f = fixture(Some(Duration::from_millis(50)), |_| Ok("yes".into()));
    let w = compile(
        &f,
        "action a() -> Text { :generate g \"p\" :guard is(\"yes\") :retry 0 }\n\
         task t() { method m { :subtasks (x: a(), y: a(), z: a()) :ordering (x || y || z) } }",
    );
    let r = run(&f, &w, "t");
    assert!(r.success);
    assert_eq!(
        f.max_in_flight.load(Ordering::SeqCst),
        3,
        "all three waited at once"
    );
}

#[test]
fn a_sequence_runs_one_at_a_time_in_order() {
    let f = fixture(Some(Duration::from_millis(5)), |r| Ok(r.prompt.clone()));
    let w = compile(
        &f,
        "action a(s: Text) -> Text { :generate g \"{s}\" :guard non_empty :retry 0 }\n\
         task t() { method m { :subtasks (x: a(\"1\"), y: a(\"2\"), z: a(\"3\")) :ordering (z ; (y ; x)) } }",
    );
    let r = run(&f, &w, "t");
    assert!(r.success, "{:?}", r.failure);
    assert_eq!(f.max_in_flight.load(Ordering::SeqCst), 1);
    assert_eq!(*f.prompts.lock().unwrap(), ["3", "2", "1"]);
}

#[test]
fn a_failing_branch_cancels_its_siblings_and_kills_their_programs() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let seen = pidfile.clone();
    // `fails` answers once the sibling's program is running
    let f = fixture(None, move |_| {
        crate::support::wait_for_pid(&seen);
        Ok("no".into())
    });
    // `slow` runs a program that would sleep a minute
    let w = compile(
        &f,
        &format!(
            "generator slow_gen = cmd(\"echo $$ > {}; sleep 60; echo done\", write: [\"{}\"])\n\
             action slow() -> Text {{ :generate slow_gen \"p\" :guard non_empty :retry 0 :timeout 2m }}\n\
             action fails() -> Text {{ :generate g \"p\" :guard is(\"yes\") :retry 0 }}\n\
             task t() {{ method m {{ :subtasks (a: slow(), b: fails()) :ordering (a || b) }} }}",
            pidfile.display(),
            pidfile.parent().map(|p| p.display().to_string()).unwrap_or_default()
        ),
    );
    let r = run(&f, &w, "t");
    assert!(!r.success);
    // the sleeping branch never finished an attempt: it was dropped ...
    assert!(r.attempts.iter().all(|a| a.action != "slow"));
    // ... and its program killed (gone, or a zombie nobody reaped yet)
    let pid = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .to_string();
    // (SIGKILL lands asynchronously: allow it a moment to take effect)
    crate::support::assert_process_ends(&pid, "the sibling's program");
}

#[test]
fn on_fail_continue_lets_siblings_finish() {
    let f = fixture(Some(Duration::from_millis(20)), |r| {
        Ok(if r.action == "good" { "yes" } else { "no" }.to_string())
    });
    let w = compile(
        &f,
        "action good() -> Text { :generate g \"p\" :guard is(\"yes\") :retry 0 }\n\
         action bad() -> Text { :generate g \"p\" :guard is(\"yes\") :retry 0 }\n\
         task t() { method m { :subtasks (a: good(), b: bad()) :ordering (a || b) :on-fail continue } }",
    );
    let r = run(&f, &w, "t");
    assert!(!r.success);
    assert_eq!(r.actions["good"].committed, 1);
}

#[test]
fn an_exclusive_resource_serialises_parallel_branches() {
    let f = fixture(Some(Duration::from_millis(20)), |_| Ok("yes".into()));
    let w = compile(
        &f,
        "resource gpu: 1\n\
         action a() -> Text { :generate g \"p\" :guard is(\"yes\") :retry 0 :uses gpu }\n\
         task t() { method m { :subtasks (x: a(), y: a(), z: a()) :ordering (x || y || z) } }",
    );
    let r = run(&f, &w, "t");
    assert!(r.success);
    assert_eq!(f.max_in_flight.load(Ordering::SeqCst), 1);
}

#[test]
fn upstream_escalation_regenerates_the_target_with_downstream_feedback() {
    // `tests` is wrong at first; `impl` fails against it twice, escalates,
    // and passes once `tests` is regenerated (`code` answers its prompt's
    // first line: the prompt after it holds the kept feedback)
    let f = fixture(None, |r| {
        Ok(match (r.action.as_str(), r.attempt) {
            ("tests", 1) => "wrong".to_string(),
            ("tests", _) => "right".to_string(),
            ("code", _) => r.prompt.lines().next().unwrap_or("").to_string(),
            _ => String::new(),
        })
    });
    let w = compile(
        &f,
        "action tests() -> Text { :generate g \"t\" :guard non_empty :retry 0 }\n\
         action code(t: Text) -> Text { :generate g \"{t}\" :guard is(\"right\") :retry 3 }\n\
         task t() -> Text { method m {\n\
           :subtasks (a: tests(), b: code(a) :escalate-to a after 2 :max-escalations 1)\n\
           :ordering (a ; b) :result b } }",
    );
    let r = run(&f, &w, "t");
    assert!(r.success, "{:?}", r.failure);
    assert_eq!(r.result, Some(Value::String("right".into())));
    // tests 1, code 2 (fail), tests 2 (with feedback), code 1 (pass)
    assert_eq!(r.generator_calls, 5);
    let regen = r
        .attempts
        .iter()
        .find(|a| a.action == "tests" && a.attempt == 2)
        .unwrap();
    assert!(
        regen.prompt.contains("A later step, `b`, kept failing"),
        "{}",
        regen.prompt
    );
    // the restarted `code` still sees its attempts against the old tests
    let restarted = r
        .attempts
        .iter()
        .find(|a| a.action == "code" && a.attempt == 3)
        .unwrap();
    assert!(
        restarted
            .prompt
            .contains("Attempt 1 (made against an earlier `a`): is: expected `right`, got `wrong`"),
        "{}",
        restarted.prompt
    );
    assert!(r.generator_calls <= r.worst_case_calls.unwrap());
}

#[test]
fn recursion_stops_at_max_depth() {
    // `step` passes, `base` fails: each level recurses until the depth
    // runs out, then every level falls back to `base`, which fails
    let f = fixture(None, |r| {
        Ok(if r.action == "step" { "yes" } else { "no" }.to_string())
    });
    let w = compile(
        &f,
        "action step() -> Text { :generate g \"p\" :guard is(\"yes\") :retry 0 }\n\
         action base() -> Text { :generate g \"p\" :guard is(\"yes\") :retry 0 }\n\
         task t() :max-depth 3 {\n\
           method recurse { :subtasks (x: step(), y: t()) :ordering (x ; y) }\n\
           method fallback { :subtasks (z: base()) }\n\
         }",
    );
    let r = run(&f, &w, "t");
    assert!(!r.success);
    assert_eq!(r.actions["step"].generator_calls, 3, "three levels");
    assert_eq!(
        r.actions["base"].generator_calls, 3,
        "each level falls back"
    );
    // the checker's worst case is met exactly
    assert_eq!(Some(r.generator_calls), r.worst_case_calls);
}

#[test]
fn a_generator_that_does_not_answer_in_time_is_a_failed_attempt() {
    let f = fixture(Some(Duration::from_secs(30)), |_| Ok("yes".into()));
    let w = compile(
        &f,
        "action a() -> Text { :generate g \"p\" :guard is(\"yes\") :retry 1 :timeout 50ms }\n\
         task t() { method m { :subtasks (x: a()) } }",
    );
    let r = run(&f, &w, "t");
    assert!(!r.success);
    assert_eq!(r.generator_calls, 2);
    assert!(
        r.attempts[0]
            .feedback
            .contains("did not answer within 50ms"),
        "{}",
        r.attempts[0].feedback
    );
}

#[test]
fn json_artifacts_are_validated_against_their_type() {
    let f = fixture(None, |r| {
        Ok(if r.attempt == 1 {
            "{\"steps\": [\"a\"], \"risk\": \"Extreme\"}".to_string()
        } else {
            "```json\n{\"steps\": [\"a\", \"b\"], \"risk\": \"Low\"}\n```".to_string()
        })
    });
    let w = compile(
        &f,
        "type Plan = { steps: [Text], risk: Low | High }\n\
         action plan() -> Json<Plan> { :generate g \"p\" :guard non_empty :retry 1 }\n\
         action use_it(p: Json<Plan>) -> Text { :generate g \"{p.risk}: {p.steps}\" :guard non_empty :retry 0 }\n\
         task t() -> Text { method m { :subtasks (p: plan(), u: use_it(p)) :result u } }",
    );
    let r = run(&f, &w, "t");
    assert!(r.success, "{:?}", r.failure);
    assert_eq!(r.generator_calls, 3);
    assert!(
        r.attempts[0].feedback.contains("risk"),
        "{}",
        r.attempts[0].feedback
    );
    assert_eq!(r.attempts[2].prompt, "Low: - a\n- b");
}

#[test]
fn a_missing_input_is_an_error_before_any_call() {
    let f = fixture(None, |_| Ok("yes".into()));
    let w = compile(
        &f,
        "action a(s: Text) -> Text { :generate g \"{s}\" :guard is(\"yes\") :retry 0 }\n\
         task t(s: Text) { method m { :subtasks (x: a(s)) } }",
    );
    let e = f.engine.run_blocking(&w, "t", &[]).unwrap_err();
    assert!(e.0.contains("`t` needs `s: Text`"), "{e}");
    assert!(f.prompts.lock().unwrap().is_empty());
    let e = f.engine.run_blocking(&w, "tt", &[]).unwrap_err();
    assert!(
        e.0.contains("there is no task or action `tt` (tasks: t)"),
        "{e}"
    );
}

#[test]
fn every_event_is_observed_in_order() {
    let mut f = fixture(None, |r| {
        Ok(if r.attempt == 1 { "no" } else { "yes" }.to_string())
    });
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    f.engine.on_event(move |e| {
        let v = serde_json::to_value(e).unwrap();
        sink.lock()
            .unwrap()
            .push(v["event"].as_str().unwrap().to_string());
    });
    let w = compile(
        &f,
        "action a() -> Text { :generate g \"p\" :guard is(\"yes\") :retry 1 }\n\
         task t() { method m { :subtasks (x: a()) } }",
    );
    let r = f.engine.run_config(
        &w,
        RunConfig {
            task: "t".into(),
            ..RunConfig::default()
        },
    );
    let r = guardflow::engine::runtime().unwrap().block_on(r).unwrap();
    assert!(r.success);
    assert_eq!(
        *events.lock().unwrap(),
        [
            "run_started",
            "task_started",
            "method_started",
            "action_started",
            "attempt_started",
            "generated",
            "attempt",
            "attempt_started",
            "generated",
            "attempt",
            "committed",
            "task_finished",
            "run_finished"
        ]
    );
}
