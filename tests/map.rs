//! Maps (`c: for item in list => call(item) :parallel K`) through the
//! embedding API: each item at its own path, at most K at a time, results
//! in the order of the items, the first failure cancelling the rest, a
//! list over its bound refused (at the producing action's guard and at the
//! map), the worst case met exactly, and a resumed map not redoing the
//! items it committed.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use guardflow::engine::{
    BoxFuture, Engine, GenError, GenRequest, GenResponse, Generator, RunConfig, Verdict, Workflow,
};
use guardflow::runtime::{RunReport, Value};
use guardflow::store::{RunMeta, Store};

type Answer = dyn Fn(&GenRequest) -> Result<String, GenError> + Send + Sync;

/// Answers with `answer`; counts calls and how many wait at once; on
/// call `stop_at` never answers (a process that died there).
struct Scripted {
    answer: Arc<Answer>,
    delay: Option<Duration>,
    calls: Arc<AtomicUsize>,
    in_flight: Arc<AtomicUsize>,
    max_in_flight: Arc<AtomicUsize>,
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
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_in_flight.fetch_max(now, Ordering::SeqCst);
            match self.delay {
                Some(d) => tokio::time::sleep(d).await,
                None => tokio::task::yield_now().await,
            }
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            (self.answer)(&r).map(GenResponse::text)
        })
    }
}

struct Fixture {
    engine: Engine,
    calls: Arc<AtomicUsize>,
    max_in_flight: Arc<AtomicUsize>,
    stopped: Arc<tokio::sync::Notify>,
    /// The path of every action started, in order.
    paths: Arc<Mutex<Vec<String>>>,
}

fn fixture(
    delay: Option<Duration>,
    stop_at: usize,
    answer: impl Fn(&GenRequest) -> Result<String, GenError> + Send + Sync + 'static,
) -> Fixture {
    let mut engine = Engine::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let max_in_flight = Arc::new(AtomicUsize::new(0));
    let stopped = Arc::new(tokio::sync::Notify::new());
    engine.register_generator(
        "scripted",
        "()",
        Scripted {
            answer: Arc::new(answer),
            delay,
            calls: calls.clone(),
            in_flight: Arc::new(AtomicUsize::new(0)),
            max_in_flight: max_in_flight.clone(),
            stop_at,
            stopped: stopped.clone(),
        },
    );
    engine.register_guard("not_bad", "on Text", |c| {
        if c.text().contains("bad") {
            Verdict::fail("it says bad")
        } else {
            Verdict::Pass
        }
    });
    let paths = Arc::new(Mutex::new(Vec::new()));
    let seen = paths.clone();
    engine.on_event(move |e| {
        let v = serde_json::to_value(e).unwrap();
        if v["event"] == "action_started" {
            seen.lock()
                .unwrap()
                .push(v["path"].as_str().unwrap_or("").to_string());
        }
    });
    Fixture {
        engine,
        calls,
        max_in_flight,
        stopped,
        paths,
    }
}

const HEADER: &str =
    ":default-timeout 30s\nuse std.{non_empty, json_syntax}\ngenerator g = scripted()\n";

fn compile(f: &Fixture, src: &str) -> Workflow {
    match f.engine.compile("t.guardflow", &format!("{HEADER}{src}")) {
        Ok(w) => w,
        Err(e) => panic!("{}", e.render(false)),
    }
}

fn config(task: &str, inputs: &[(&str, Value)]) -> RunConfig {
    RunConfig {
        task: task.into(),
        inputs: inputs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect::<HashMap<_, _>>(),
        ..RunConfig::default()
    }
}

fn run(f: &Fixture, w: &Workflow, config: RunConfig) -> RunReport {
    let rt = guardflow::engine::runtime().unwrap();
    rt.block_on(f.engine.run_config(w, config)).expect("starts")
}

const SAY: &str =
    "action say(line: Text) -> Text { :generate g \"say {line}\" :guard not_bad :retry 0 }\n";

#[test]
fn a_map_runs_each_item_at_its_own_path_k_at_a_time_in_order() {
    let f = fixture(Some(Duration::from_millis(30)), 0, |r| {
        Ok(r.prompt.replace("say ", "said "))
    });
    let w = compile(
        &f,
        &format!(
            "{SAY}task t(lines: [Text; max 6]) -> [Text; max 6] {{ method m {{\n\
             :subtasks (c: for line in lines => say(line) :parallel 2)\n\
             :result c }} }}"
        ),
    );
    let items = serde_json::json!(["a", "b", "c", "d", "e"]);
    let r = run(&f, &w, config("t", &[("lines", items)]));
    assert!(r.success, "{:?}", r.failure);
    assert_eq!(
        r.result,
        Some(serde_json::json!([
            "said a", "said b", "said c", "said d", "said e"
        ]))
    );
    assert_eq!(r.generator_calls, 5, "the real count, not the bound of 6");
    assert_eq!(f.max_in_flight.load(Ordering::SeqCst), 2, ":parallel 2");
    let paths: BTreeSet<String> = f.paths.lock().unwrap().iter().cloned().collect();
    let want: BTreeSet<String> = (0..5).map(|i| format!("t/m/c[{i}]")).collect();
    assert_eq!(paths, want);
}

#[test]
fn without_parallel_every_item_runs_at_once() {
    let f = fixture(Some(Duration::from_millis(30)), 0, |_| Ok("ok".into()));
    let w = compile(
        &f,
        &format!(
            "{SAY}task t(lines: [Text; max 4]) {{ method m {{\n\
             :subtasks (c: for line in lines => say(line)) }} }}"
        ),
    );
    let r = run(
        &f,
        &w,
        config("t", &[("lines", serde_json::json!(["a", "b", "c", "d"]))]),
    );
    assert!(r.success, "{:?}", r.failure);
    assert_eq!(f.max_in_flight.load(Ordering::SeqCst), 4);
}

#[test]
fn a_failing_item_fails_the_map_and_cancels_the_rest() {
    let f = fixture(None, 0, |r| {
        Ok(if r.prompt.contains('b') { "bad" } else { "ok" }.to_string())
    });
    let w = compile(
        &f,
        &format!(
            "{SAY}task t(lines: [Text; max 5]) {{ method m {{\n\
             :subtasks (c: for line in lines => say(line) :parallel 1) }} }}"
        ),
    );
    let items = serde_json::json!(["a", "b", "c", "d", "e"]);
    let r = run(&f, &w, config("t", &[("lines", items)]));
    assert!(!r.success);
    let failure = r.failure.unwrap_or_default();
    assert!(failure.contains("item 1 of `c`"), "{failure}");
    assert_eq!(
        r.generator_calls, 2,
        "items after the failure never started"
    );
}

#[test]
fn on_fail_continue_runs_every_item_and_names_every_failure() {
    let f = fixture(None, 0, |r| {
        Ok(if r.prompt.contains('b') || r.prompt.contains('d') {
            "bad"
        } else {
            "ok"
        }
        .to_string())
    });
    let w = compile(
        &f,
        &format!(
            "{SAY}task t(lines: [Text; max 5]) {{ method m {{\n\
             :subtasks (c: for line in lines => say(line) :parallel 1)\n\
             :on-fail continue }} }}"
        ),
    );
    let items = serde_json::json!(["a", "b", "c", "d", "e"]);
    let r = run(&f, &w, config("t", &[("lines", items)]));
    assert!(!r.success);
    let failure = r.failure.unwrap_or_default();
    assert!(failure.contains("2 items of `c` failed"), "{failure}");
    assert!(failure.contains("item 1 of `c`"), "{failure}");
    assert!(failure.contains("item 3 of `c`"), "{failure}");
    assert_eq!(r.generator_calls, 5);
    assert_eq!(r.actions["say"].committed, 3);
}

#[test]
fn a_written_out_list_fits_a_bound_it_does_not_exceed() {
    let f = fixture(None, 0, |_| Ok("ok".into()));
    let src = |list: &str| {
        format!(
            "{HEADER}{SAY}task t(lines: [Text; max 3]) {{ method m {{\n\
             :subtasks (c: for line in lines => say(line)) }} }}\n\
             task main() {{ method m {{ :subtasks (x: t({list})) }} }}"
        )
    };
    assert!(f
        .engine
        .compile("t.guardflow", &src("[\"a\", \"b\", \"c\"]"))
        .is_ok());
    let e = match f
        .engine
        .compile("t.guardflow", &src("[\"a\", \"b\", \"c\", \"d\"]"))
    {
        Ok(_) => panic!("four items for a bound of three"),
        Err(e) => e.render(false),
    };
    assert!(e.contains("E0202") && e.contains("[Text; max 4]"), "{e}");
}

#[test]
fn a_list_over_its_bound_is_refused_before_any_item_runs() {
    let f = fixture(None, 0, |_| Ok("ok".into()));
    let w = compile(
        &f,
        &format!(
            "{SAY}task t(lines: [Text; max 3]) {{ method m {{\n\
             :subtasks (c: for line in lines => say(line)) }} }}"
        ),
    );
    let r = run(
        &f,
        &w,
        config("t", &[("lines", serde_json::json!(["a", "b", "c", "d"]))]),
    );
    assert!(!r.success);
    let failure = r.failure.unwrap_or_default();
    assert!(
        failure.contains("4 items, more than the list type's bound of 3"),
        "{failure}"
    );
    assert_eq!(f.calls.load(Ordering::SeqCst), 0, "never cut to the bound");
}

const PLAN: &str = "type Plan = { items: [Text; max 2] }\n\
    action plan() -> Json<Plan> { :generate g \"plan {feedback}\" :guard json_syntax :retry 1 }\n\
    action say(line: Text) -> Text { :generate g \"say {line}\" :guard not_bad :retry 0 }\n\
    task t() -> [Text; max 2] { method m {\n\
      :subtasks (p: plan(), c: for item in p.items => say(item))\n\
      :ordering (p ; c)\n\
      :result c } }";

#[test]
fn a_plan_longer_than_its_bound_is_rejected_by_its_own_guard_with_feedback() {
    let prompts = Arc::new(Mutex::new(Vec::new()));
    let seen = prompts.clone();
    let f = fixture(None, 0, move |r| {
        seen.lock().unwrap().push(r.prompt.clone());
        Ok(match r.action.as_str() {
            "plan" if r.attempt == 1 => r#"{"items": ["x", "y", "z"]}"#.to_string(),
            "plan" => r#"{"items": ["x", "y"]}"#.to_string(),
            _ => "done".to_string(),
        })
    });
    let w = compile(&f, PLAN);
    assert_eq!(w.worst_case_calls[0], Some(4), "2 plans, then 2 items");
    let r = run(&f, &w, config("t", &[]));
    assert!(r.success, "{:?}", r.failure);
    assert_eq!(r.result, Some(serde_json::json!(["done", "done"])));
    let prompts = prompts.lock().unwrap();
    // the second plan saw why the first was refused
    assert!(
        prompts[1].contains("maxItems") || prompts[1].contains("more than 2"),
        "{prompts:?}"
    );
    assert_eq!(r.generator_calls, 4);
}

#[test]
fn the_worst_case_of_a_map_is_met_exactly() {
    // every item fails its first attempt and passes its second: 3 items
    // of 2 attempts each, the bound
    let f = fixture(None, 0, |r| {
        Ok(if r.feedback.is_none() { "bad" } else { "ok" }.to_string())
    });
    let w = compile(
        &f,
        "action say(line: Text) -> Text { :generate g \"say {line} {feedback}\" :guard not_bad :retry 1 }\n\
         task t(lines: [Text; max 3]) { method m {\n\
         :subtasks (c: for line in lines => say(line) :parallel 2) } }",
    );
    assert_eq!(w.worst_case_calls[0], Some(6));
    let r = run(
        &f,
        &w,
        config("t", &[("lines", serde_json::json!(["a", "b", "c"]))]),
    );
    assert!(r.success, "{:?}", r.failure);
    assert_eq!(r.generator_calls, 6);
}

#[test]
fn check_bounds_multiplies_by_the_bound_and_counts_waves_for_time() {
    let src = "use std.{non_empty}\ngenerator g = llm(model: \"m\")\n\
        action say(line: Text) -> Text { :generate g \"say {line}\" :guard non_empty :retry 1 :timeout 10s :max-tokens 100 }\n\
        task t(lines: [Text; max 5]) { method m {\n\
        :subtasks (c: for line in lines => say(line) :parallel 2) } }";
    let checked = guardflow::check::check_source("t.guardflow", src);
    let program = checked
        .program
        .clone()
        .unwrap_or_else(|| panic!("{:#?}", checked.diagnostics));
    let graphs = checked.verified.expect("verified").graphs;
    let bounds = guardflow::check::verify::bounds::task_bounds(&program, &graphs, None);
    let cost = bounds[0].cost.expect("bounded");
    assert_eq!(cost.generator_calls, 10, "5 items of 2 attempts");
    assert_eq!(cost.tokens, Some(1000));
    // 3 waves of 2 attempts of 10 s
    assert_eq!(cost.time_ms, Some(60_000));
}

/// A map stopped in its third item resumes without calling the first two
/// items again: each item is at its own path in the store.
#[test]
fn a_resumed_map_does_not_redo_committed_items() {
    let src = format!(
        "{SAY}task t(lines: [Text; max 4]) -> [Text; max 4] {{ method m {{\n\
         :subtasks (c: for line in lines => say(line) :parallel 1)\n\
         :result c }} }}"
    );
    let answer = |r: &GenRequest| Ok(r.prompt.replace("say ", "said "));
    let items = serde_json::json!(["a", "b", "c", "d"]);
    let cfg = || config("t", &[("lines", items.clone())]);
    let rt = guardflow::engine::runtime().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("runs.db");

    let first = fixture(None, 3, answer);
    let w = compile(&first, &src);
    let mut started = first.engine.start(&w, &cfg()).expect("starts");
    let mut meta = RunMeta {
        id: String::new(),
        workflow: "t.guardflow".into(),
        workflow_hash: String::new(),
        task: "t".into(),
        inputs: serde_json::Map::new(),
        replacement: None,
        worst_case_calls: w.worst_case_calls[0],
        started_ms: 0,
        seed: None,
        bench: None,
    };
    let recorder = Store::open(&db)
        .and_then(|s| s.start_run(&mut meta))
        .expect("store");
    started.record_to(Arc::new(recorder));
    let stopped = first.stopped.clone();
    let finished = rt.block_on(async {
        tokio::select! {
            r = started.execute() => Some(r),
            _ = stopped.notified() => None,
        }
    });
    assert!(finished.is_none(), "the run ended before its third call");
    drop(started);

    let second = fixture(None, 0, answer);
    let (_, resume, recorder) = Store::open(&db)
        .and_then(|s| s.resume_run(&meta.id))
        .expect("resume");
    let mut started = second.engine.start(&w, &cfg()).expect("starts");
    started.resume(resume);
    started.record_to(Arc::new(recorder));
    let report = rt.block_on(started.execute());
    drop(started);
    assert!(report.success, "{:?}", report.failure);
    assert_eq!(
        report.result,
        Some(serde_json::json!(["said a", "said b", "said c", "said d"]))
    );
    // the resumed process called only the items not committed: the one
    // in flight when it stopped (c[2]) and c[3]
    assert_eq!(second.calls.load(Ordering::SeqCst), 2);
    let resumed: Vec<String> = second.paths.lock().unwrap().clone();
    assert_eq!(resumed, ["t/m/c[2]", "t/m/c[3]"]);
}
