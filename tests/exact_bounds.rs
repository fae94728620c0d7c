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
        // a bounded list at its bound, so a map over it runs every item
        Ty::List { of, max } => Value::Array(vec![sample(of); max.unwrap_or(1).min(1000) as usize]),
        Ty::Map { of } => Value::Object([("a".to_string(), sample(of))].into_iter().collect()),
        Ty::Record { fields } => {
            Value::Object(fields.iter().map(|(n, t)| (n.clone(), sample(t))).collect())
        }
    }
}

/// A value of `ty` whose data varies with `rng` (Bools, tags, numbers,
/// list lengths, empty text), for tasks whose methods are chosen by typed
/// predicates: the checker's bound is the worst case over all data.
fn varied(ty: &Ty, rng: &mut impl FnMut(usize) -> usize) -> Value {
    match ty {
        Ty::Text | Ty::Code { .. } => Value::String(["pass", ""][rng(2)].into()),
        Ty::Program | Ty::Generator => Value::String("pass".into()),
        Ty::Int | Ty::Duration => Value::from([1u64, 0, 1000][rng(3)]),
        Ty::Float => Value::from([1.0, 0.0, 0.5][rng(3)]),
        Ty::Bool => Value::Bool(rng(2) == 0),
        Ty::Enum { tags } => Value::String(tags[rng(tags.len())].clone()),
        Ty::Json { of } => varied(of, rng),
        Ty::List { of, .. } => Value::Array((0..rng(2)).map(|_| varied(of, rng)).collect()),
        Ty::Map { of } => Value::Object(
            (0..rng(2))
                .map(|_| ("a".to_string(), varied(of, rng)))
                .collect(),
        ),
        Ty::Record { fields } => Value::Object(
            fields
                .iter()
                .map(|(n, t)| (n.clone(), varied(t, rng)))
                .collect(),
        ),
    }
}

/// Whether running task `t` may choose a method (its own or a subtask's)
/// by a typed predicate over data.
fn decided_by_data(program: &guardflow::check::ir::Program, t: usize) -> bool {
    use guardflow::check::ir::{Callee, GuardExpr};
    fn typed(g: &GuardExpr) -> bool {
        match g {
            GuardExpr::Compare { .. } | GuardExpr::Value { .. } => true,
            GuardExpr::Not { expr, .. } => typed(expr),
            GuardExpr::And { exprs, .. }
            | GuardExpr::Or { exprs, .. }
            | GuardExpr::Combinator { exprs, .. } => exprs.iter().any(typed),
            _ => false,
        }
    }
    let mut seen = vec![false; program.tasks.len()];
    let mut todo = vec![t];
    while let Some(t) = todo.pop() {
        if std::mem::replace(&mut seen[t], true) {
            continue;
        }
        for m in &program.tasks[t].methods {
            if m.pre.as_ref().is_some_and(typed) {
                return true;
            }
            for s in &m.subtasks {
                match s.callee {
                    Callee::Task(u) => todo.push(u.index()),
                    Callee::Action(a) => {
                        if program.actions[a.index()].pre.as_ref().is_some_and(typed) {
                            return true;
                        }
                    }
                }
            }
        }
    }
    false
}

struct Oracle {
    /// The choices of this run; calls past the end fail.
    choices: Arc<Mutex<(Vec<bool>, usize)>>,
    engine: Engine,
}

/// `rng`: the answers' data varies (for tasks decided by data).
fn oracle(workflow: &Workflow, mut rng: Option<&mut dyn FnMut(usize) -> usize>) -> Oracle {
    let program = &workflow.program;
    let answers: HashMap<String, String> = program
        .actions
        .iter()
        .map(|a| {
            let v = match rng.as_mut() {
                Some(r) => varied(&a.output, &mut |m| r(m)),
                None => sample(&a.output),
            };
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
    rng: Option<&mut dyn FnMut(usize) -> usize>,
) -> Option<(u64, usize)> {
    let o = oracle(workflow, rng);
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
        let Some((mut most, mut runs)) = explore(workflow, &task.name, &inputs, cap, None) else {
            eprintln!(
                "{label}: `{}`: more than {cap} outcome sequences; skipped",
                task.name
            );
            continue;
        };
        if decided_by_data(&workflow.program, i) {
            // methods chosen by data: the worst case over data, from
            // varied parameters and answers (seeded, so the test is the
            // same each run)
            let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ i as u64;
            let mut rng = move |m: usize| -> usize {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state % m.max(1) as u64) as usize
            };
            for _ in 0..48 {
                let mut inputs = inputs.clone();
                for param in &task.params {
                    inputs.insert(param.name.clone(), varied(&param.ty, &mut rng));
                }
                if let Some((m, r)) = explore(workflow, &task.name, &inputs, cap, Some(&mut rng)) {
                    most = most.max(m);
                    runs += r;
                }
                if most == bound {
                    break;
                }
            }
        }
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
        // a map over a bounded parameter, two items at a time
        "action a(x: Text) -> Text { :generate g \"{x}\" :guard ok :retry 1 }\n\
         task t(xs: [Text; max 3]) { method m { :subtasks (c: for x in xs => a(x) :parallel 2) } }",
        // a plan, then a map over its list, every item running to its end
        "type P = { items: [Text; max 2] }\n\
         action plan() -> Json<P> { :generate g \"p\" :guard ok :retry 1 }\n\
         action a(x: Text) -> Text { :generate g \"{x}\" :guard ok :retry 1 }\n\
         task t() { method m { :subtasks (p: plan(), c: for x in p.items => a(x)) :ordering (p ; c) :on-fail continue } }",
        // a map of tasks, one at a time, falling back to a second method
        "action a(x: Text) -> Text { :generate g \"{x}\" :guard ok :retry 1 }\n\
         task one(x: Text) { method m { :subtasks (y: a(x), z: a(y)) :ordering (y ; z) } }\n\
         task t(xs: [Text; max 2]) { method each { :subtasks (c: for x in xs => one(x) :parallel 1) } method fallback { :subtasks (d: a(\"x\")) } }",
    ];
    for (i, src) in programs.iter().enumerate() {
        let mut engine = Engine::new();
        engine.register_guard("ok", "on Text", |_| Verdict::Pass);
        let src = format!(":default-timeout 10s\ngenerator g = replay(\"unused.jsonl\")\n{src}");
        let w = engine
            .compile("small.guardflow", &src)
            .unwrap_or_else(|e| panic!("program {i}:\n{}", e.render(false)));
        // every task of the program explored (the last calls a helper)
        assert_eq!(
            assert_exact(&w, &format!("program {i}"), 20_000),
            w.program.tasks.len(),
            "program {i}"
        );
    }
}
