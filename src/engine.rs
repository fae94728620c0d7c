//! The embedding API: compile a workflow, bind guards and generators
//! written in Rust, run tasks, read the report.
//!
//! ```no_run
//! use guardflow::engine::{Engine, Verdict};
//!
//! let mut engine = Engine::new();
//! engine.register_guard("no_todo", "on Text", |call| {
//!     if call.text().contains("TODO") {
//!         Verdict::fail("remove the TODO")
//!     } else {
//!         Verdict::Pass
//!     }
//! });
//! let workflow = engine.compile_file("flow.guardflow").expect("checks");
//! let report = engine
//!     .run_blocking(&workflow, "main", &[("spec", "a stack".into())])
//!     .expect("runs");
//! println!("{} after {} generator calls", report.success, report.generator_calls);
//! ```
//!
//! The standard library binds itself through these same calls
//! (`crate::stdlib::register`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::check::ir::{Callee, CmpOp, Expectation, ExternKind, Program};
use crate::check::verify::bounds::task_bounds;
use crate::check::{self, FsLoader};
use crate::diagnostics::{self, Diagnostic};
use crate::runtime::eval::{operand, Env};
use crate::runtime::interpreter::{Bindings, Counters, Log, Run};
use crate::runtime::redact;
use crate::runtime::report::ActionCalls;
use crate::runtime::{inputs, Event, Observer, Resume, RunReport, Sink};
use crate::source::SourceMap;

pub use crate::runtime::registry::{
    BoxFuture, EffectCall, EffectImpl, GenError, GenRequest, GenResponse, Generator, GuardCall,
    GuardImpl,
};
pub use crate::runtime::{Value, Verdict};

/// Compiles workflows and runs them with the guards, generators and
/// effects bound to it.
#[derive(Clone, Default)]
pub struct Engine {
    guards: HashMap<String, GuardImpl>,
    generators: HashMap<String, Arc<dyn Generator>>,
    effects: HashMap<String, EffectImpl>,
    /// `extern` declarations of what the host registered.
    declarations: String,
    observer: Option<Observer>,
}

/// A checked program, ready to run.
#[derive(Clone)]
pub struct Workflow {
    pub program: Program,
    pub sources: SourceMap,
    /// Warnings the checker found (a workflow with errors does not
    /// compile).
    pub warnings: Vec<Diagnostic>,
    /// Relative paths (inputs, replay files, programs) resolve here.
    pub workdir: PathBuf,
    /// The checker's worst-case generator calls, by task.
    pub worst_case_calls: Vec<Option<u64>>,
}

/// A workflow that could not be read, or did not check.
#[derive(Debug)]
pub enum CompileError {
    Io {
        path: String,
        reason: String,
    },
    /// Every finding (errors among them), with the sources they point at.
    Findings {
        sources: SourceMap,
        diagnostics: Vec<Diagnostic>,
    },
}

impl CompileError {
    /// As `guardflow check` prints it.
    pub fn render(&self, color: bool) -> String {
        match self {
            CompileError::Io { path, reason } => format!("error: cannot read `{path}`: {reason}\n"),
            CompileError::Findings {
                sources,
                diagnostics,
            } => {
                let renderer = diagnostics::Renderer::new(sources);
                diagnostics
                    .iter()
                    .map(|d| renderer.render(d, color))
                    .collect()
            }
        }
    }
}

impl std::fmt::Display for CompileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.render(false))
    }
}

impl std::error::Error for CompileError {}

/// A run that could not start: an unknown task, a missing input, an
/// extern without an implementation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunError(pub String);

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RunError {}

/// What to run and how.
#[derive(Default)]
pub struct RunConfig {
    /// A task, or an action run on its own.
    pub task: String,
    /// Task arguments and program inputs, by name.
    pub inputs: HashMap<String, Value>,
    /// A generator replacing every generator of the run.
    pub replacement: Option<Replacement>,
}

/// A generator kind and its arguments, standing in for every generator:
/// `replay` with a recording, for offline runs and tests.
#[derive(Debug, Clone)]
pub struct Replacement {
    pub generator: String,
    pub args: Vec<Value>,
}

/// A run ready to start: inputs read, externs bound, arguments bound.
pub struct Started<'w> {
    pub run: Run<'w>,
    callee: Callee,
    args: Vec<Value>,
    /// The task or action run.
    pub name: String,
    pub worst_case_calls: Option<u64>,
}

impl<'w> Started<'w> {
    /// A run ready to start from its parts (a Temporal worker's, from
    /// what the run was started with).
    pub fn from_parts(
        run: Run<'w>,
        callee: Callee,
        args: Vec<Value>,
        name: String,
        worst_case_calls: Option<u64>,
    ) -> Started<'w> {
        Started {
            run,
            callee,
            args,
            name,
            worst_case_calls,
        }
    }

    /// What runs: the task or action.
    pub fn callee(&self) -> Callee {
        self.callee
    }

    /// The root's arguments.
    pub fn args(&self) -> &[Value] {
        &self.args
    }

    /// Runs to the end and reports.
    pub async fn execute(&self) -> RunReport {
        let args = self.args.clone();
        execute(
            &self.run,
            self.callee,
            args,
            self.name.clone(),
            self.worst_case_calls,
        )
        .await
    }

    /// Records the run durably in `sink` (the run store): every event is
    /// recorded before the run goes on, and once recording fails no
    /// further generator is called.
    pub fn record_to(&mut self, sink: Arc<dyn Sink>) {
        self.run.sink = Some(sink);
    }

    /// Continues from what an earlier process of this run recorded:
    /// committed artifacts are reused, recorded attempts count against
    /// their retry budgets, attempt numbers go on from the highest.
    pub fn resume(&mut self, resume: Resume) {
        {
            let mut log = self.run.log();
            for (i, a) in self.run.program.actions.iter().enumerate() {
                if let Some(n) = resume.attempt_numbers.get(&a.name) {
                    log.attempt_numbers[i] = log.attempt_numbers[i].max(*n);
                }
            }
        }
        self.run.resume = Some(resume);
    }

    /// Holds the units of `:shared` resources across processes in `dir`
    /// (one slot file per unit, `flock`ed), as `holder` (the run's id):
    /// every run given the same `dir` shares those pools. Without this,
    /// a `:shared` resource is pooled in this process only.
    pub fn share_resources(&mut self, dir: std::path::PathBuf, holder: String) {
        self.run.shared = Some(crate::runtime::shared::SharedPlace { dir, holder });
    }

    /// Seeds the run: every generator call is given `seed`, so a
    /// generator that draws at random (`simulate`) answers the same
    /// in a run and its resume. Unseeded runs have seed 0.
    pub fn seed(&mut self, seed: u64) {
        self.run.seed = seed;
    }

    /// The report of a run stopped from outside (Ctrl-C): what it did
    /// until then. Drop the [`Started::execute`] future first; that
    /// cancels every branch and kills their programs.
    pub fn cancelled(&self, why: &str) -> RunReport {
        self.run.report(
            self.name.clone(),
            Err(why.to_string()),
            self.worst_case_calls,
        )
    }
}

impl Engine {
    /// An engine with the standard library bound.
    pub fn new() -> Engine {
        let mut engine = Engine::bare();
        crate::stdlib::register(&mut engine);
        engine
    }

    /// An engine with nothing bound.
    pub fn bare() -> Engine {
        Engine::default()
    }

    /// Binds a guard. `signature` declares it to programs, as an `extern
    /// guard` would: `"on Text"`, `"(max: Int) on Code<python>"`; programs
    /// then use it without a `use`. An empty signature binds a guard that
    /// is declared elsewhere (the standard library, or an `extern guard`
    /// in the program). A guard that panics gives a fatal verdict.
    pub fn register_guard(
        &mut self,
        name: &str,
        signature: &str,
        f: impl Fn(&GuardCall) -> Verdict + Send + Sync + 'static,
    ) -> &mut Engine {
        self.declare("guard", name, signature);
        let f = move |call: &GuardCall| redact::scrub_verdict(f(call));
        self.guards
            .insert(name.to_string(), GuardImpl::Sync(Arc::new(f)));
        self
    }

    /// Binds a guard that waits (runs a program, asks a service).
    pub fn register_async_guard(
        &mut self,
        name: &str,
        signature: &str,
        f: impl Fn(GuardCall) -> BoxFuture<'static, Verdict> + Send + Sync + 'static,
    ) -> &mut Engine {
        self.declare("guard", name, signature);
        let f = move |call: GuardCall| -> BoxFuture<'static, Verdict> {
            let verdict = f(call);
            Box::pin(async move { redact::scrub_verdict(verdict.await) })
        };
        self.guards
            .insert(name.to_string(), GuardImpl::Async(Arc::new(f)));
        self
    }

    /// Binds a generator kind; `signature` as for guards, e.g.
    /// `"(model: Text)"`. Programs write `generator g = name(…)`.
    pub fn register_generator(
        &mut self,
        name: &str,
        signature: &str,
        generator: impl Generator + 'static,
    ) -> &mut Engine {
        self.declare("generator", name, signature);
        self.generators
            .insert(name.to_string(), Arc::new(Redacted(generator)));
        self
    }

    /// Binds an effect kind; `signature` as for guards, e.g.
    /// `"(timeout: Duration = 60s) on Command"`.
    pub fn register_effect(
        &mut self,
        name: &str,
        signature: &str,
        effect: EffectImpl,
    ) -> &mut Engine {
        self.declare("effect", name, signature);
        let effect: EffectImpl = Arc::new(move |call| {
            let outcome = effect(call);
            Box::pin(async move {
                outcome
                    .await
                    .map(redact::scrub_value)
                    .map_err(redact::scrub_string)
            })
        });
        self.effects.insert(name.to_string(), effect);
        self
    }

    /// Receives every event of every run, in order.
    pub fn on_event(&mut self, f: impl Fn(&Event) + Send + Sync + 'static) -> &mut Engine {
        self.observer = Some(Arc::new(f));
        self
    }

    fn declare(&mut self, kind: &str, name: &str, signature: &str) {
        if signature.trim().is_empty() {
            return;
        }
        let sep = if signature.trim_start().starts_with('(') {
            ""
        } else {
            " "
        };
        self.declarations
            .push_str(&format!("extern {kind} {name}{sep}{}\n", signature.trim()));
    }

    /// Checks `text` (named `name`; `use "…"` paths are relative to it).
    pub fn compile(&self, name: &str, text: &str) -> Result<Workflow, CompileError> {
        let checked = check::check_with_host(name, text, &mut FsLoader, &self.declarations);
        if checked.has_errors() {
            return Err(CompileError::Findings {
                sources: checked.sources,
                diagnostics: checked.diagnostics,
            });
        }
        let (Some(program), Some(verified)) = (checked.program, checked.verified) else {
            return Err(CompileError::Findings {
                sources: checked.sources,
                diagnostics: checked.diagnostics,
            });
        };
        let worst_case_calls = task_bounds(&program, &verified.graphs, None)
            .into_iter()
            .map(|b| b.cost.map(|c| c.generator_calls))
            .collect();
        let workdir = match Path::new(name).parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Ok(Workflow {
            program,
            sources: checked.sources,
            warnings: checked.diagnostics,
            workdir,
            worst_case_calls,
        })
    }

    /// Reads and checks a file.
    pub fn compile_file(&self, path: impl AsRef<Path>) -> Result<Workflow, CompileError> {
        let path = path.as_ref();
        let name = path.to_string_lossy();
        match check::read_text(path, check::MAX_SOURCE_BYTES) {
            Ok(text) => self.compile(&name, &text),
            Err(reason) => Err(CompileError::Io {
                path: name.into_owned(),
                reason,
            }),
        }
    }

    /// Runs `task` with arguments and inputs given by name.
    pub async fn run(
        &self,
        workflow: &Workflow,
        task: &str,
        inputs: &[(&str, Value)],
    ) -> Result<RunReport, RunError> {
        let config = RunConfig {
            task: task.to_string(),
            inputs: inputs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            replacement: None,
        };
        self.run_config(workflow, config).await
    }

    /// The replacement a program's generator instance stands for (a
    /// test's `:with`).
    pub fn replacement_for(
        &self,
        workflow: &Workflow,
        id: crate::check::ir::GeneratorId,
    ) -> Result<Replacement, RunError> {
        let program = &workflow.program;
        let inst = &program.generators[id.index()];
        let env = Env::new(&[], &[]);
        let args = inst
            .args
            .iter()
            .map(|a| operand(a, &env))
            .collect::<Result<Vec<_>, _>>()
            .map_err(RunError)?;
        Ok(Replacement {
            generator: program.externs[inst.kind.index()].name.clone(),
            args,
        })
    }

    /// [`Engine::run`] on a runtime of its own, for code that is not async.
    pub fn run_blocking(
        &self,
        workflow: &Workflow,
        task: &str,
        inputs: &[(&str, Value)],
    ) -> Result<RunReport, RunError> {
        let rt = runtime().map_err(RunError)?;
        rt.block_on(self.run(workflow, task, inputs))
    }

    /// Runs what `config` says.
    pub async fn run_config(
        &self,
        workflow: &Workflow,
        config: RunConfig,
    ) -> Result<RunReport, RunError> {
        Ok(self.start(workflow, &config)?.execute().await)
    }

    /// Evaluates the guard definition `name` of the workflow on `subject`,
    /// outside any action, as an action's `:guard` would (the REPL's
    /// `:guard`). Program inputs resolve as for a run with none given.
    pub async fn evaluate_guard(
        &self,
        workflow: &Workflow,
        name: &str,
        subject: &Value,
    ) -> Result<Verdict, RunError> {
        let program = &workflow.program;
        let Some(def) = program.guards.iter().find(|g| g.name == name) else {
            return Err(RunError(format!("there is no guard `{name}`")));
        };
        let run = self.prepare(workflow, &RunConfig::default())?;
        let env = Env::new(&[], &run.inputs);
        Ok(crate::runtime::guard::evaluate(&run, &def.body, subject, env).await)
    }

    /// Prepares what `config` says; nothing runs until
    /// [`Started::execute`].
    pub fn start<'w>(
        &self,
        workflow: &'w Workflow,
        config: &RunConfig,
    ) -> Result<Started<'w>, RunError> {
        let program = &workflow.program;
        let callee = match (program.task(&config.task), program.action(&config.task)) {
            (Some(t), _) => Callee::Task(t),
            (None, Some(a)) => Callee::Action(a),
            (None, None) => return Err(RunError(unknown_task(program, &config.task))),
        };
        let run = self.prepare(workflow, config)?;
        let (name, params) = match callee {
            Callee::Task(t) => (
                &program.tasks[t.index()].name,
                &program.tasks[t.index()].params,
            ),
            Callee::Action(a) => (
                &program.actions[a.index()].name,
                &program.actions[a.index()].params,
            ),
        };
        let args = inputs::bind_params(name, params, &config.inputs, program, &run.inputs)
            .map_err(RunError)?;
        let worst = match callee {
            Callee::Task(t) => workflow.worst_case_calls[t.index()],
            Callee::Action(_) => None,
        };
        let mut run = run;
        run.log_hint = worst.map_or(0, |w| w.min(1 << 20) as usize);
        Ok(Started {
            run,
            callee,
            args,
            name: name.clone(),
            worst_case_calls: worst,
        })
    }

    /// Builds a run: inputs read, externs bound, generators' arguments
    /// evaluated. Fails before any call when something is missing.
    fn prepare<'p>(&self, workflow: &'p Workflow, config: &RunConfig) -> Result<Run<'p>, RunError> {
        let inputs = inputs::program_inputs(&workflow.program, &config.inputs, &workflow.workdir)
            .map_err(RunError)?;
        self.prepare_pinned(workflow, inputs, config.replacement.as_ref())
    }

    /// Builds a run from program inputs already read (where the run
    /// started: a Temporal worker's run reads no input file).
    pub fn prepare_pinned<'p>(
        &self,
        workflow: &'p Workflow,
        inputs: Vec<Value>,
        replacement: Option<&Replacement>,
    ) -> Result<Run<'p>, RunError> {
        let program = &workflow.program;
        let mut bindings = Bindings::default();
        for e in &program.externs {
            bindings.guards.push(match e.kind {
                ExternKind::Guard => self.guards.get(&e.name).cloned(),
                _ => None,
            });
            bindings.generators.push(match e.kind {
                ExternKind::Generator => self.generators.get(&e.name).cloned(),
                _ => None,
            });
            bindings.effects.push(match e.kind {
                ExternKind::Effect => self.effects.get(&e.name).cloned(),
                _ => None,
            });
        }
        let env = Env::new(&[], &inputs);
        let generator_args = program
            .generators
            .iter()
            .map(|g| g.args.iter().map(|a| operand(a, &env)).collect())
            .collect::<Result<Vec<Vec<Value>>, String>>()
            .map_err(RunError)?;
        let replacement = match replacement {
            None => None,
            Some(r) => {
                let Some(g) = self.generators.get(&r.generator).cloned() else {
                    return Err(RunError(format!(
                        "the generator `{}` has no implementation in this engine",
                        r.generator
                    )));
                };
                // its own `timeout` parameter, where it declares one
                let timeout = program
                    .externs
                    .iter()
                    .find(|e| e.kind == ExternKind::Generator && e.name == r.generator)
                    .and_then(|e| e.params.iter().position(|p| p.name == "timeout"))
                    .and_then(|i| r.args.get(i))
                    .and_then(Value::as_u64)
                    .map(Duration::from_millis);
                Some((g, r.args.clone(), timeout))
            }
        };
        let n_actions = program.actions.len();
        Ok(Run {
            program,
            inputs,
            bindings,
            generator_args,
            replacement,
            resources: program
                .resources
                .iter()
                .map(|r| tokio::sync::Semaphore::new(r.size.min(u32::MAX as u64 / 2) as usize))
                .collect(),
            workdir: Arc::from(workflow.workdir.as_path()),
            dirs: crate::runtime::paths::file_dirs(program, &workflow.workdir),
            output_types: program
                .actions
                .iter()
                .map(|a| Arc::from(a.output.to_string()))
                .collect(),
            output_schemas: program
                .actions
                .iter()
                .map(|a| match &a.output {
                    crate::check::ir::Ty::Json { .. } => {
                        Some(Arc::new(crate::stdlib::json::schema_of(&a.output)))
                    }
                    _ => None,
                })
                .collect(),
            observer: self.observer.clone(),
            guard_timeout: program.defaults.timeout_ms.map(Duration::from_millis),
            counters: Counters::default(),
            log: Mutex::new(Log {
                calls: vec![ActionCalls::default(); n_actions],
                attempt_numbers: vec![0; n_actions],
                ..Log::default()
            }),
            started: Instant::now(),
            log_hint: 0,
            sink: None,
            resume: None,
            shared: None,
            seed: 0,
            executor: None,
        })
    }
}

/// What a `test` item came to.
#[derive(Debug)]
pub struct TestOutcome {
    pub name: String,
    /// Each expectation that did not hold, in words; empty: it passed.
    pub problems: Vec<String>,
    pub report: Option<RunReport>,
}

impl Engine {
    /// Runs test `index` of the workflow with its `:with` generator in
    /// place of every generator, and checks its expectations.
    pub async fn run_test(&self, workflow: &Workflow, index: usize) -> TestOutcome {
        let test = &workflow.program.tests[index];
        let mut outcome = TestOutcome {
            name: test.name.clone(),
            problems: Vec::new(),
            report: None,
        };
        let started = self.replacement_for(workflow, test.with).and_then(|r| {
            let config = RunConfig {
                task: String::new(),
                inputs: HashMap::new(),
                replacement: Some(r),
            };
            let run = self.prepare(workflow, &config)?;
            let env = Env::new(&[], &run.inputs);
            let args = test
                .args
                .iter()
                .map(|a| operand(a, &env))
                .collect::<Result<Vec<_>, _>>()
                .map_err(RunError)?;
            let (name, worst) = match test.run {
                Callee::Task(t) => (
                    workflow.program.tasks[t.index()].name.clone(),
                    workflow.worst_case_calls[t.index()],
                ),
                Callee::Action(a) => (workflow.program.actions[a.index()].name.clone(), None),
            };
            Ok(Started {
                run,
                callee: test.run,
                args,
                name,
                worst_case_calls: worst,
            })
        });
        let started = match started {
            Ok(s) => s,
            Err(e) => {
                outcome
                    .problems
                    .push(format!("the test could not start: {e}"));
                return outcome;
            }
        };
        let report = started.execute().await;
        for expect in &test.expect {
            if let Some(problem) = expectation(&started.run, expect, &report).await {
                outcome.problems.push(problem);
            }
        }
        outcome.report = Some(report);
        outcome
    }
}

/// Why `expect` does not hold of `report`, or `None` when it does.
async fn expectation(run: &Run<'_>, expect: &Expectation, report: &RunReport) -> Option<String> {
    let why = || match &report.failure {
        Some(f) => format!(": {f}"),
        None => String::new(),
    };
    match expect {
        Expectation::Success if !report.success => {
            Some(format!("expected success, but the run failed{}", why()))
        }
        Expectation::Failure if report.success => {
            Some("expected failure, but the run succeeded".to_string())
        }
        Expectation::Success | Expectation::Failure => None,
        Expectation::Calls { op, value } => {
            let calls = report.generator_calls;
            let holds = match op {
                CmpOp::Le => calls <= *value,
                CmpOp::Lt => calls < *value,
                CmpOp::Eq => calls == *value,
                CmpOp::Ge => calls >= *value,
                CmpOp::Gt => calls > *value,
            };
            let sym = match op {
                CmpOp::Le => "<=",
                CmpOp::Lt => "<",
                CmpOp::Eq => "==",
                CmpOp::Ge => ">=",
                CmpOp::Gt => ">",
            };
            (!holds).then(|| format!("expected calls {sym} {value}, but the run made {calls}"))
        }
        Expectation::Satisfies { guard } => {
            let Some(result) = &report.result else {
                return Some(format!(
                    "expected a result satisfying `{}`, but there is none{}",
                    crate::runtime::guard::describe(run, guard),
                    why()
                ));
            };
            let env = Env::new(&[], &run.inputs);
            match crate::runtime::guard::evaluate(run, guard, result, env).await {
                Verdict::Pass => None,
                v => Some(format!(
                    "the result does not satisfy `{}`: {}",
                    crate::runtime::guard::describe(run, guard),
                    v.feedback()
                )),
            }
        }
    }
}

/// Runs the root and reports.
pub(crate) async fn execute(
    run: &Run<'_>,
    callee: Callee,
    args: Vec<Value>,
    name: String,
    worst: Option<u64>,
) -> RunReport {
    run.emit(|| Event::RunStarted {
        task: name.clone(),
        worst_case_calls: worst,
    });
    let outcome = run.run_root(callee, args).await;
    let report = run.report(name, outcome, worst);
    run.emit_durable(|| Event::RunFinished {
        success: report.success,
        generator_calls: report.generator_calls,
        guard_runs: report.guard_runs,
        elapsed_ms: report.elapsed_ms,
        repeated_calls: report.repeated_calls,
    })
    .await;
    report
}

/// A tokio runtime for one run: one thread drives the workflow; programs
/// and timers use its drivers.
pub fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
}

pub(crate) fn unknown_task(program: &Program, name: &str) -> String {
    let names: Vec<&str> = program.tasks.iter().map(|t| t.name.as_str()).collect();
    let mut msg = format!("there is no task or action `{name}`");
    if let Some(s) = diagnostics::suggest::closest(name, names.iter().copied()) {
        msg.push_str(&format!("; did you mean `{s}`?"));
    }
    if !names.is_empty() {
        msg.push_str(&format!(" (tasks: {})", names.join(", ")));
    }
    msg
}

/// A generator whose answers and errors pass through [`redact`]: every
/// implementation is wrapped so at registration, so no secret it echoes
/// reaches a prompt, an event or the store.
struct Redacted<G>(G);

impl<G: Generator> Generator for Redacted<G> {
    fn generate(&self, request: GenRequest) -> BoxFuture<'_, Result<GenResponse, GenError>> {
        let answer = self.0.generate(request);
        Box::pin(async move {
            match answer.await {
                Ok(mut r) => {
                    r.text = redact::scrub_string(r.text);
                    Ok(r)
                }
                Err(mut e) => {
                    e.message = redact::scrub_string(e.message);
                    Err(e)
                }
            }
        })
    }

    fn times_itself(&self) -> bool {
        self.0.times_itself()
    }
}
