//! The checker's worst case is exact for the interpreter: for every task
//! of every example, and for small programs of each shape, the real
//! interpreter is run under every sequence of attempt outcomes (each
//! generator call's answer passes or fails its guard), and the largest
//! number of generator calls any run makes equals the checker's bound.
//!
//! Outcomes come from an oracle generator: the k-th call of a run answers
//! "pass" (a value of the action's type) or "FAIL" as a list of choices
//! says; every guard is rebound to "fails on FAIL". The explorer starts
//! with all failures and branches at each call of a run into the run
//! where that call passes, so each outcome sequence runs exactly once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use guardflow::check::ir::{ExternKind, Ty};
use guardflow::engine::{
    Engine, GenError, GenRequest, GenResponse, Replacement, RunConfig, Verdict, Workflow,
};
use guardflow::runtime::{text_of, Value};

use crate::support::guardflow_files;

/// A value of `ty` that converts without error.
fn sample(ty: &Ty) -> Value {
    match ty {
        Ty::Text | Ty::Code { .. } | Ty::Program => Value::String("pass".into()),
        Ty::Int | Ty::Duration | Ty::Generator => Value::from(1u64),
        Ty::Float => Value::from(1.0),
        Ty::Bool => Value::Bool(true),
        Ty::Enum { tags } => Value::String(tags[0].clone()),
        Ty::Json { of } => sample(of),
        Ty::List { of } => Value::Array(vec![sample(of)]),
        Ty::Map { of } => Value::Object([("a".to_string(), sample(of))].into_iter().collect()),
        Ty::Record { fields } => {
            Value::Object(fields.iter().map(|(n, t)| (n.clone(), sample(t))).collect())
        }
    }
}

struct Oracle {
    /// The choices of this run; calls past the end fail.
    choices: Arc<Mutex<(Vec<bool>, usize)>>,
    engine: Engine,
}

fn oracle(workflow: &Workflow) -> Oracle {
    let program = &workflow.program;
    let answers: HashMap<String, String> = program
        .actions
        .iter()
        .map(|a| {
            let v = sample(&a.output);
            (a.name.clone(), text_of(&v).into_owned())
        })
        .collect();
    let choices = Arc::new(Mutex::new((Vec::new(), 0usize)));
    let state = choices.clone();
    let mut engine = Engine::new();
    engine.register_generator("oracle", "", move |r: &GenRequest| {
        let mut s = state.lock().unwrap();
        let mut choose = || {
            let k = s.1;
            s.1 += 1;
            s.0.get(k).copied().unwrap_or(false)
        };
        let pass = choose();
        // a judge (asked as `action/guard`) answers a malformed verdict
        // or a verdict, which passes or fails: two choices
        if r.action.contains('/') {
            let text = if !pass {
                "FAIL".to_string()
            } else if choose() {
                r#"{"pass": true, "issues": []}"#.to_string()
            } else {
                r#"{"pass": false, "issues": ["FAIL"]}"#.to_string()
            };
            return Ok::<_, GenError>(GenResponse::text(text));
        }
        let text = if pass {
            answers[&r.action].clone()
        } else {
            "FAIL".to_string()
        };
        Ok::<_, GenError>(GenResponse::text(text))
    });
    for e in &program.externs {
        match e.kind {
            // a judge is the real one, asking the oracle
            ExternKind::Guard if e.is_judge() => {}
            ExternKind::Guard => {
                engine.register_guard(&e.name, "", |c| {
                    if c.text().contains("FAIL") {
                        Verdict::fail("FAIL")
                    } else {
                        Verdict::Pass
                    }
                });
            }
            ExternKind::Effect => {
                engine.register_effect(
                    &e.name,
                    "",
                    Arc::new(|call| {
                        Box::pin(async move {
                            Ok(serde_json::json!({
                                "command": call.command,
                                "exit_code": 0,
                                "stdout": "",
                                "stderr": "",
                            }))
                        })
                    }),
                );
            }
            ExternKind::Generator => {}
        }
    }
    Oracle { choices, engine }
}

/// The most generator calls any outcome sequence makes running `task`,
/// and how many runs that took; `None` past `cap` runs.
fn explore(
    workflow: &Workflow,
    task: &str,
    inputs: &HashMap<String, Value>,
    cap: usize,
) -> Option<(u64, usize)> {
    let o = oracle(workflow);
    let rt = guardflow::engine::runtime().unwrap();
    let mut stack: Vec<Vec<bool>> = vec![Vec::new()];
    let (mut most, mut runs) = (0u64, 0usize);
    while let Some(prefix) = stack.pop() {
        runs += 1;
        if runs > cap {
            return None;
        }
        *o.choices.lock().unwrap() = (prefix.clone(), 0);
        let config = RunConfig {
            task: task.to_string(),
            inputs: inputs.clone(),
            replacement: Some(Replacement {
                generator: "oracle".into(),
                args: Vec::new(),
            }),
        };
        let report = rt
            .block_on(o.engine.run_config(workflow, config))
            .unwrap_or_else(|e| panic!("{task}: {e}"));
        let calls = report.generator_calls;
        most = most.max(calls);
        // every choice the run made (a judge's call makes two)
        let made = o.choices.lock().unwrap().1;
        for i in prefix.len()..made {
            let mut next = prefix.clone();
            next.resize(i, false);
            next.push(true);
            stack.push(next);
        }
    }
    Some((most, runs))
}

/// Every parameter of `task` gets a value of its type (text without
/// "FAIL", so preconditions hold).
fn inputs_for(workflow: &Workflow, task: &str) -> HashMap<String, Value> {
    let p = &workflow.program;
    let t = &p.tasks[p.task(task).unwrap().index()];
    let mut out: HashMap<String, Value> = t
        .params
        .iter()
        .map(|param| (param.name.clone(), sample(&param.ty)))
        .collect();
    for input in &p.inputs {
        out.entry(input.name.clone())
            .or_insert_with(|| sample(&input.ty));
    }
    out
}

fn assert_exact(workflow: &Workflow, label: &str, cap: usize) -> usize {
    let mut explored = 0;
    for (i, task) in workflow.program.tasks.iter().enumerate() {
        let Some(bound) = workflow.worst_case_calls[i] else {
            continue;
        };
        let inputs = inputs_for(workflow, &task.name);
        let Some((most, runs)) = explore(workflow, &task.name, &inputs, cap) else {
            eprintln!(
                "{label}: `{}`: more than {cap} outcome sequences; skipped",
                task.name
            );
            continue;
        };
        assert_eq!(
            most, bound,
            "{label}: task `{}`: the interpreter's worst run makes {most} generator calls, the checker says {bound} ({runs} runs explored)",
            task.name
        );
        explored += 1;
    }
    explored
}

#[test]
fn every_examples_worst_case_is_what_the_interpreter_can_reach() {
    let engine = Engine::new();
    let mut tasks = 0;
    for path in guardflow_files("examples") {
        let w = engine
            .compile_file(&path)
            .unwrap_or_else(|e| panic!("{}", e.render(false)));
        tasks += assert_exact(&w, &path.display().to_string(), 20_000);
    }
    assert!(tasks >= 5, "only {tasks} example tasks explored");
}

#[test]
fn small_programs_of_every_shape_meet_their_bound_exactly() {
    let programs = [
        // retries and a fallback method
        "action a() -> Text { :generate g \"p\" :guard ok :retry 2 }\n\
         action b() -> Text { :generate g \"p\" :guard ok :retry 1 }\n\
         task t() { method m1 { :subtasks (x: a(), y: b()) :ordering (x ; y) } method m2 { :subtasks (z: b()) } }",
        // fork-join with on-fail continue
        "action a() -> Text { :generate g \"p\" :guard ok :retry 1 }\n\
         task t() { method m { :subtasks (x: a(), y: a(), z: a()) :ordering (x || (y ; z)) :on-fail continue } }",
        // escalation upstream
        "action up() -> Text { :generate g \"p\" :guard ok :retry 1 }\n\
         action down(u: Text) -> Text { :generate g \"{u}\" :guard ok :retry 2 }\n\
         task t() { method m { :subtasks (u: up(), d: down(u) :escalate-to u after 2 :max-escalations 2) :ordering (u ; d) } }",
        // bounded recursion
        "action a() -> Text { :generate g \"p\" :guard ok :retry 1 }\n\
         task t() :max-depth 2 { method rec { :subtasks (x: a(), y: t()) :ordering (x ; y) } method base { :subtasks (z: a()) } }",
        // a partial order
        "action a() -> Text { :generate g \"p\" :guard ok :retry 1 }\n\
         task t() { method m { :subtasks (p: a(), q: a(), r: a(), s: a()) :ordering (p < q, p < r, q < s, r < s) } }",
    ];
    for (i, src) in programs.iter().enumerate() {
        let mut engine = Engine::new();
        engine.register_guard("ok", "on Text", |_| Verdict::Pass);
        let src = format!(":default-timeout 10s\ngenerator g = replay(\"unused.jsonl\")\n{src}");
        let w = engine
            .compile("small.guardflow", &src)
            .unwrap_or_else(|e| panic!("program {i}:\n{}", e.render(false)));
        assert_eq!(
            assert_exact(&w, &format!("program {i}"), 20_000),
            1,
            "program {i}"
        );
    }
}
