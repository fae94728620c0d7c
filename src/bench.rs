//! `guardflow bench`: a task run N times per model and arm, every trial a
//! normal recorded run, and the report computed from the store.
//!
//! - an **arm** overrides the checked program before it runs (`retry`,
//!   `strategy`, for every action or one); the bounds are verified again
//!   for each arm and model;
//! - a **model** binds every action to one generator declared in the
//!   workflow (an `llm`, a `simulate`, …);
//! - trial `t` gets the seed [`trial_seed`]`(seed, t)` in every arm and
//!   model, so arms are compared on the same draws;
//! - every trial is a run tagged (`RunMeta::bench`) with the bench, arm,
//!   model and trial; a bench started again under the same name runs only
//!   the trials it lacks and resumes those that were interrupted;
//! - [`report`] computes, per task × model × arm, the numbers of
//!   docs/bench.md from the store's trials alone.
//!
//! See docs/bench.md.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::StreamExt;
use serde::Serialize;

use crate::check::ir::{Program, Strategy};
use crate::engine::{Engine, RunConfig, Workflow};
use crate::runtime::{Sink, Value};
use crate::stats;
pub use crate::stdlib::simulate::trial_seed;
use crate::store::bench::Trial;
use crate::store::{self, BenchTag, RunMeta, Store, StoreError, Writer};

/// One arm: a name and the overrides it applies.
#[derive(Debug, Clone, PartialEq)]
pub struct Arm {
    pub name: String,
    pub overrides: Vec<Override>,
}

/// What an arm changes in the checked program.
#[derive(Debug, Clone, PartialEq)]
pub enum Override {
    /// `retry=N` (every action) or `retry.ACTION=N`.
    Retry {
        action: Option<String>,
        retries: u64,
    },
    /// `strategy=repair|resample|best-of(N)`, or `strategy.ACTION=…`.
    Strategy {
        action: Option<String>,
        strategy: Strategy,
    },
}

/// The most retries an arm may give (the checker's bounds stay finite).
pub const MAX_RETRY: u64 = 1000;

impl Arm {
    /// Reads `NAME` or `NAME: key=value, key=value`.
    pub fn parse(text: &str) -> Result<Arm, String> {
        let (name, rest) = match text.split_once(':') {
            Some((n, r)) => (n.trim(), r),
            None => (text.trim(), ""),
        };
        let name_ok = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !name_ok {
            return Err(format!(
                "--arm `{text}`: an arm starts with its name (letters, digits, `_`, `-`, `.`), \
                 e.g. `guarded: retry=3`"
            ));
        }
        let mut overrides = Vec::new();
        for part in rest.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((key, value)) = part.split_once('=') else {
                return Err(format!(
                    "--arm `{text}`: `{part}`: write KEY=VALUE (retry=3, retry.ACTION=3, \
                     strategy=resample, strategy.ACTION=best-of(3))"
                ));
            };
            let (key, value) = (key.trim(), value.trim());
            let (what, action) = match key.split_once('.') {
                Some((w, a)) if !a.is_empty() => (w, Some(a.to_string())),
                _ => (key, None),
            };
            match what {
                "retry" => {
                    let retries = value
                        .parse::<u64>()
                        .ok()
                        .filter(|r| *r <= MAX_RETRY)
                        .ok_or_else(|| {
                            format!(
                                "--arm `{text}`: `{part}`: retry is a whole number from 0 to {MAX_RETRY}"
                            )
                        })?;
                    overrides.push(Override::Retry { action, retries });
                }
                "strategy" => {
                    let strategy = parse_strategy(value).ok_or_else(|| {
                        format!(
                            "--arm `{text}`: `{part}`: a strategy is `repair`, `resample` or \
                             `best-of(N)` with N from 1 to 64"
                        )
                    })?;
                    overrides.push(Override::Strategy { action, strategy });
                }
                other => {
                    return Err(format!(
                        "--arm `{text}`: unknown key `{other}`; an arm sets `retry` and \
                         `strategy` (for every action, or `retry.ACTION` for one)"
                    ))
                }
            }
        }
        Ok(Arm {
            name: name.to_string(),
            overrides,
        })
    }

    /// The overrides as they are written back (`retry=3, strategy=resample`).
    pub fn describe(&self) -> String {
        let list: Vec<String> = self
            .overrides
            .iter()
            .map(|o| {
                let (key, action, value) = match o {
                    Override::Retry { action, retries } => ("retry", action, retries.to_string()),
                    Override::Strategy { action, strategy } => {
                        ("strategy", action, strategy_text(*strategy))
                    }
                };
                match action {
                    Some(a) => format!("{key}.{a}={value}"),
                    None => format!("{key}={value}"),
                }
            })
            .collect();
        if list.is_empty() {
            "as written".to_string()
        } else {
            list.join(", ")
        }
    }
}

fn parse_strategy(text: &str) -> Option<Strategy> {
    match text {
        "repair" => Some(Strategy::Repair),
        "resample" => Some(Strategy::Resample),
        _ => {
            let n = text
                .strip_prefix("best-of(")?
                .strip_suffix(')')?
                .trim()
                .parse::<u64>()
                .ok()?;
            (1..=64).contains(&n).then_some(Strategy::BestOf(n))
        }
    }
}

fn strategy_text(s: Strategy) -> String {
    match s {
        Strategy::Repair => "repair".to_string(),
        Strategy::Resample => "resample".to_string(),
        Strategy::BestOf(n) => format!("best-of({n})"),
    }
}

/// The program with `model` bound to every action (`""`: as written) and
/// the arm's overrides applied.
pub fn apply(program: &Program, arm: &Arm, model: &str) -> Result<Program, String> {
    let mut p = program.clone();
    if !model.is_empty() {
        let Some(g) = p.generators.iter().position(|g| g.name == model) else {
            let names: Vec<&str> = p
                .generators
                .iter()
                .map(|g| g.name.as_str())
                .filter(|n| !n.contains('#'))
                .collect();
            let mut msg =
                format!("--model `{model}`: the workflow declares no generator `{model}`");
            if let Some(s) = crate::diagnostics::suggest::closest(model, names.iter().copied()) {
                msg.push_str(&format!("; did you mean `{s}`?"));
            }
            if !names.is_empty() {
                msg.push_str(&format!(" (it declares: {})", names.join(", ")));
            }
            return Err(msg);
        };
        for a in &mut p.actions {
            a.generator = crate::check::ir::GeneratorId(g as u32);
        }
    }
    for o in &arm.overrides {
        let action = match o {
            Override::Retry { action, .. } | Override::Strategy { action, .. } => action,
        };
        if let Some(name) = action {
            if !p.actions.iter().any(|a| &a.name == name) {
                let names = p.actions.iter().map(|a| a.name.as_str());
                let mut msg = format!("arm `{}`: there is no action `{name}`", arm.name);
                if let Some(s) = crate::diagnostics::suggest::closest(name, names) {
                    msg.push_str(&format!("; did you mean `{s}`?"));
                }
                return Err(msg);
            }
        }
        for a in &mut p.actions {
            if action.as_ref().is_some_and(|n| *n != a.name) {
                continue;
            }
            match o {
                Override::Retry { retries, .. } => a.retry = Some(*retries),
                Override::Strategy { strategy, .. } => a.strategy = *strategy,
            }
        }
    }
    Ok(p)
}

/// The workflow an arm and model run: overridden, verified again, with
/// its own worst-case bounds. Fails with the verifier's findings.
pub fn arm_workflow(base: &Workflow, arm: &Arm, model: &str) -> Result<Workflow, String> {
    let program = apply(&base.program, arm, model)?;
    let verified = crate::check::verify::verify(&program);
    let errors: Vec<String> = verified
        .findings
        .iter()
        .map(|f| f.to_diagnostic())
        .filter(|d| d.is_error())
        .map(|d| format!("[{}] {}", d.code, d.message))
        .collect();
    if !errors.is_empty() {
        return Err(format!(
            "arm `{}`{}: the workflow does not verify with its overrides:\n  {}",
            arm.name,
            if model.is_empty() {
                String::new()
            } else {
                format!(" with model `{model}`")
            },
            errors.join("\n  ")
        ));
    }
    let worst_case_calls =
        crate::check::verify::bounds::task_bounds(&program, &verified.graphs, None)
            .into_iter()
            .map(|b| b.cost.map(|c| c.generator_calls))
            .collect();
    Ok(Workflow {
        program,
        sources: base.sources.clone(),
        warnings: Vec::new(),
        workdir: base.workdir.clone(),
        worst_case_calls,
    })
}

/// What a bench runs.
#[derive(Debug, Clone)]
pub struct Bench {
    /// Its name: a bench started again under it goes on.
    pub id: String,
    /// The workflow file.
    pub file: PathBuf,
    /// Generators declared for the bench beside the workflow's
    /// (`--model 'NAME=simulate(…)'`), as source lines appended to it;
    /// part of the workflow's identity for the bench.
    pub declared: String,
    pub task: String,
    pub inputs: HashMap<String, Value>,
    /// Generators bound to every action in turn; `[""]`: as written.
    pub models: Vec<String>,
    pub arms: Vec<Arm>,
    /// Trials per model and arm.
    pub trials: u64,
    /// The base seed (`trial_seed`).
    pub seed: u64,
    /// Trials running at once.
    pub concurrency: usize,
}

/// One cell of a bench: an arm with a model, ready to run.
pub struct Cell {
    pub model: String,
    pub arm: Arm,
    pub workflow: Workflow,
}

impl Bench {
    /// Every model × arm, overridden and verified; fails on the first
    /// that does not verify.
    pub fn cells(&self, base: &Workflow) -> Result<Vec<Cell>, String> {
        let mut out = Vec::new();
        for model in &self.models {
            for arm in &self.arms {
                out.push(Cell {
                    model: model.clone(),
                    arm: arm.clone(),
                    workflow: arm_workflow(base, arm, model)?,
                });
            }
        }
        Ok(out)
    }
}

/// A trial that ended (or stopped), for a progress view.
pub struct Finished<'a> {
    pub model: &'a str,
    pub arm: &'a str,
    pub trial: u64,
    pub success: bool,
    pub resumed: bool,
}

/// What a run of the bench did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Trials already finished before (not run again).
    pub kept: u64,
    /// Trials resumed from where they stopped.
    pub resumed: u64,
    /// Trials started.
    pub started: u64,
}

enum Unit {
    New {
        cell: usize,
        trial: u64,
    },
    Resume {
        cell: usize,
        trial: u64,
        run: String,
    },
}

/// Runs what `bench` lacks in the store at `store_path`: trials not yet
/// there are started, trials that stopped are resumed, finished ones are
/// kept. `cells` from [`Bench::cells`]. Fails when the store fails, a
/// trial cannot start, or the store's trials of this bench were made
/// with another workflow, seed or arm of the same name.
pub async fn run(
    engine: &Engine,
    bench: &Bench,
    cells: &[Cell],
    store_path: &Path,
    on_finished: &(dyn Fn(&Finished<'_>) + Sync),
) -> Result<Outcome, String> {
    // one connection for the bench: every trial is recorded by its writer
    let held = Store::open(store_path).map_err(|e| e.to_string())?;
    let existing = held.bench_trials(&bench.id).map_err(|e| e.to_string())?;
    let (workflow_path, mut workflow_hash) =
        crate::cli::run::identity(&bench.file).map_err(|e| e.to_string())?;
    if !bench.declared.is_empty() {
        workflow_hash =
            store::content_hash(format!("{workflow_hash}\n{}", bench.declared).as_bytes());
    }
    let mut have: HashMap<(String, String, u64), &Trial> = HashMap::new();
    for t in &existing {
        let Some(tag) = &t.meta.bench else { continue };
        let again = "start it under another --name, or leave it as it was";
        if t.meta.workflow_hash != workflow_hash || t.meta.task != bench.task {
            return Err(format!(
                "bench `{}` was started with another workflow or task (`{}`, task `{}`); {again}",
                bench.id, t.meta.workflow, t.meta.task
            ));
        }
        if let Some(arm) = bench.arms.iter().find(|a| a.name == tag.arm) {
            if arm.describe() != tag.overrides {
                return Err(format!(
                    "bench `{}`: arm `{}` was `{}` when it started, not `{}`; {again}",
                    bench.id,
                    tag.arm,
                    tag.overrides,
                    arm.describe()
                ));
            }
        }
        if t.meta.seed != Some(trial_seed(bench.seed, tag.trial)) {
            return Err(format!(
                "bench `{}` was started with another --seed; {again}",
                bench.id
            ));
        }
        have.insert((tag.model.clone(), tag.arm.clone(), tag.trial), t);
    }
    let mut outcome = Outcome::default();
    let mut units = Vec::new();
    for trial in 0..bench.trials {
        for (i, cell) in cells.iter().enumerate() {
            match have.get(&(cell.model.clone(), cell.arm.name.clone(), trial)) {
                Some(t) if t.success.is_some() => outcome.kept += 1,
                Some(t) => units.push(Unit::Resume {
                    cell: i,
                    trial,
                    run: t.run_id.clone(),
                }),
                None => units.push(Unit::New { cell: i, trial }),
            }
        }
    }
    let writer = held.writer();
    writer.for_trials();
    let ctx = Context {
        engine,
        bench,
        cells,
        store_path,
        writer: &writer,
        workflow_path,
        workflow_hash,
        pinned: cells.iter().map(|_| std::sync::OnceLock::new()).collect(),
    };
    let mut stream = futures::stream::iter(units.into_iter().map(|u| ctx.trial(u)))
        .buffer_unordered(bench.concurrency.max(1));
    while let Some(done) = stream.next().await {
        let (cell, trial, success, resumed) = done?;
        if resumed {
            outcome.resumed += 1;
        } else {
            outcome.started += 1;
        }
        on_finished(&Finished {
            model: &cells[cell].model,
            arm: &cells[cell].arm.name,
            trial,
            success,
            resumed,
        });
    }
    drop(stream);
    if let Some(why) = writer.failure() {
        return Err(stopped(&why));
    }
    Ok(outcome)
}

struct Context<'a> {
    engine: &'a Engine,
    bench: &'a Bench,
    cells: &'a [Cell],
    store_path: &'a Path,
    /// The bench's one writer: its trials' events are committed together.
    writer: &'a Writer,
    workflow_path: String,
    workflow_hash: String,
    /// Each cell's pinned files, read once (its new trials' inputs are the
    /// bench's).
    pinned: Vec<std::sync::OnceLock<crate::store::pins::Pinned>>,
}

impl Context<'_> {
    /// What an interrupted trial goes on with, as `run --resume` does:
    /// the inputs it started with, their files as it read them (from the
    /// store). Refused when the files it started with (the workflow, its
    /// imports, the standard library, its inputs' files) changed since.
    fn resumed_config(&self, run: &str, c: &Cell, trial: u64) -> Result<RunConfig, String> {
        let store = Store::open(self.store_path).map_err(|e| e.to_string())?;
        let meta = store.run_meta(run).map_err(|e| e.to_string())?;
        let recorded = store.pins(run).map_err(|e| e.to_string())?;
        let given = meta.inputs.into_iter().collect();
        let repinned = crate::cli::run::repin(&store, run, &recorded, &c.workflow, given, false)?;
        if !repinned.changes.is_empty() {
            return Err(format!(
                "bench `{}`: trial {trial} of arm `{}`{} (run {run}) started with other files \
                 than these, and a trial resumes only with what it started with:\n  {}\n\
                 put them back, or start the bench under another --name",
                self.bench.id,
                c.arm.name,
                if c.model.is_empty() {
                    String::new()
                } else {
                    format!(" with model `{}`", c.model)
                },
                repinned.changes.join("\n  ")
            ));
        }
        Ok(RunConfig {
            task: meta.task,
            inputs: repinned.inputs,
            replacement: None,
        })
    }

    /// Runs one trial to its end: (cell, trial, success, resumed).
    async fn trial(&self, unit: Unit) -> Result<(usize, u64, bool, bool), String> {
        let store_err = |e: StoreError| e.to_string();
        let (cell, trial) = match &unit {
            Unit::New { cell, trial } | Unit::Resume { cell, trial, .. } => (*cell, *trial),
        };
        let c = &self.cells[cell];
        let config = RunConfig {
            task: self.bench.task.clone(),
            inputs: self.bench.inputs.clone(),
            replacement: None,
        };
        let config = match &unit {
            Unit::Resume { run, .. } => self.resumed_config(run, c, trial)?,
            Unit::New { .. } => config,
        };
        let seed = trial_seed(self.bench.seed, trial);
        let mut started = self
            .engine
            .start(&c.workflow, &config)
            .map_err(|e| e.to_string())?;
        started.seed(seed);
        let resumed = matches!(unit, Unit::Resume { .. });
        let recorder = match unit {
            Unit::New { .. } => {
                let mut meta = RunMeta {
                    id: String::new(),
                    workflow: self.workflow_path.clone(),
                    workflow_hash: self.workflow_hash.clone(),
                    task: self.bench.task.clone(),
                    inputs: config
                        .inputs
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                    replacement: None,
                    worst_case_calls: started.worst_case_calls,
                    started_ms: store::now_ms(),
                    seed: Some(seed),
                    bench: Some(BenchTag {
                        id: self.bench.id.clone(),
                        arm: c.arm.name.clone(),
                        model: c.model.clone(),
                        trial,
                        overrides: c.arm.describe(),
                    }),
                };
                // (a cell's trials start with the same files: pinned once)
                let pinned = self.pinned[cell]
                    .get_or_init(|| crate::cli::run::pinned(&c.workflow, &config.inputs));
                self.writer
                    .begin_pinned_run(&mut meta, pinned)
                    .map_err(store_err)?
            }
            Unit::Resume { run, .. } => {
                let program = &c.workflow.program;
                let idempotent = |name: &str| {
                    program
                        .actions
                        .iter()
                        .any(|a| a.name == name && a.idempotent)
                };
                let (_, resume, recorder) = self
                    .writer
                    .resume_run_with(&run, None, |resume| {
                            match resume.pending_effects(idempotent).first() {
                                Some(p) => Err(format!(
                                    "trial {trial} of arm `{}` (run {run}) stopped while the effect of `{}` ran, \
                                     which is not `:idempotent`; settle it with `guardflow run {} --resume {run} \
                                     --effect-ran|--effect-failed|--effect-did-not-run {}`",
                                    c.arm.name,
                                    p.action,
                                    self.bench.file.display(),
                                    p.path
                                )),
                                None => Ok(()),
                            }
                        })
                    .map_err(store_err)??;
                started.resume(resume);
                recorder
            }
        };
        let recorder = Arc::new(recorder);
        started.record_to(recorder.clone());
        started.share_resources(
            store::resources_dir(self.store_path),
            recorder.id().to_string(),
        );
        let report = started.execute().await;
        if let Some(why) = recorder.failure() {
            return Err(stopped(&why));
        }
        Ok((cell, trial, report.success, resumed))
    }
}

/// The bench's error when the store failed.
fn stopped(why: &str) -> String {
    format!(
        "the run store failed, so the bench stopped: {why}; what was committed is kept, \
         and the same command goes on from there"
    )
}

// ---------------------------------------------------------------- report

/// The numbers of one task × model × arm.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub task: String,
    /// The generator bound to every action; `""`: as written.
    pub model: String,
    pub arm: String,
    pub overrides: String,
    /// Finished trials.
    pub trials: u64,
    pub successes: u64,
    pub success: f64,
    /// Wilson 95 % interval of the success rate.
    pub ci_low: f64,
    pub ci_high: f64,
    /// Against the baseline arm (the first) of the same task and model;
    /// `None` on the baseline itself.
    pub gain_pp: Option<f64>,
    pub fisher_p: Option<f64>,
    pub cohens_h: Option<f64>,
    /// Trials that succeeded with no rejected attempt.
    pub first_attempt: u64,
    pub first_attempt_rate: f64,
    /// Judged attempts per trial: mean and distribution (attempts →
    /// trials).
    pub mean_attempts: f64,
    pub attempts: BTreeMap<u64, u64>,
    /// Tokens (prompt and generated) and generator calls of every trial,
    /// over the successes; `None` without a success.
    pub tokens_per_success: Option<f64>,
    pub calls_per_success: Option<f64>,
    /// Attempts that failed a test an earlier attempt of the same action
    /// passed; `None` when no attempt's feedback named its failing tests.
    pub regressions: Option<u64>,
    /// The checker's worst case of generator calls per trial.
    pub worst_case_calls: Option<u64>,
    /// Trials that stopped before finishing (not counted above).
    pub unfinished: u64,
}

impl Row {
    /// What the row's arm changed, its worst case and its unfinished
    /// trials: the note under the table, in text and in HTML.
    pub fn terms(&self) -> String {
        format!(
            "{}; worst case {} generator call(s) a trial{}",
            if self.overrides.is_empty() {
                "as written"
            } else {
                self.overrides.as_str()
            },
            self.worst_case_calls
                .map_or("unbounded".to_string(), |w| w.to_string()),
            if self.unfinished > 0 {
                format!("; {} unfinished (not counted)", self.unfinished)
            } else {
                String::new()
            }
        )
    }
}

/// The report of bench `id`'s trials.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub bench: String,
    pub rows: Vec<Row>,
}

/// The tests a pytest report names as failing (`FAILED file::test - …`),
/// or `None` when the feedback names none (the tests did not run, or
/// another guard judged).
pub fn failing_tests(feedback: &str) -> Option<Vec<String>> {
    let tests: Vec<String> = feedback
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("FAILED "))
        .filter(|rest| rest.contains("::"))
        .map(|rest| rest.split(" - ").next().unwrap_or(rest).trim().to_string())
        .collect();
    (!tests.is_empty()).then_some(tests)
}

/// Regressions in one trial's attempts and whether any attempt told its
/// failing tests: an attempt regresses when it fails a test that an
/// earlier attempt of the same action, whose failing tests are known,
/// did not fail.
fn regressions(trial: &Trial) -> (u64, bool) {
    let mut known: HashMap<&str, Vec<Vec<String>>> = HashMap::new();
    let (mut count, mut told) = (0, false);
    for a in &trial.attempts {
        let Some(failing) = a.feedback.as_deref().and_then(failing_tests) else {
            continue;
        };
        told = true;
        let earlier = known.entry(a.action.as_str()).or_default();
        if failing
            .iter()
            .any(|t| earlier.iter().any(|before| !before.contains(t)))
        {
            count += 1;
        }
        earlier.push(failing);
    }
    (count, told)
}

/// Computes the report from a bench's trials (`Store::bench_trials`).
/// Rows are in the order of the models and arms of the bench (their
/// first trials' order in the store).
pub fn report(id: &str, trials: &[Trial]) -> Report {
    // the order of first appearance of each (task, model, arm)
    let mut order: Vec<(String, String, String)> = Vec::new();
    let mut by_cell: HashMap<(String, String, String), Vec<&Trial>> = HashMap::new();
    let mut sorted: Vec<&Trial> = trials.iter().filter(|t| t.meta.bench.is_some()).collect();
    sorted.sort_by_key(|t| t.meta.bench.as_ref().map(|b| b.trial).unwrap_or(0));
    for t in sorted {
        let Some(tag) = &t.meta.bench else { continue };
        let key = (t.meta.task.clone(), tag.model.clone(), tag.arm.clone());
        if !by_cell.contains_key(&key) {
            order.push(key.clone());
        }
        by_cell.entry(key).or_default().push(t);
    }
    // the baseline of a task and model: its first arm
    let mut baseline: HashMap<(String, String), String> = HashMap::new();
    for (task, model, arm) in &order {
        baseline
            .entry((task.clone(), model.clone()))
            .or_insert_with(|| arm.clone());
    }
    // rows grouped by task and model, arms in order
    let mut keys = order.clone();
    keys.sort_by_key(|(task, model, _)| {
        order
            .iter()
            .position(|(t, m, _)| t == task && m == model)
            .unwrap_or(0)
    });
    let mut rows: Vec<Row> = keys.iter().map(|key| row(key, &by_cell[key])).collect();
    let counts: HashMap<(String, String, String), (u64, u64)> = rows
        .iter()
        .map(|r| {
            (
                (r.task.clone(), r.model.clone(), r.arm.clone()),
                (r.successes, r.trials),
            )
        })
        .collect();
    for r in &mut rows {
        let base_arm = &baseline[&(r.task.clone(), r.model.clone())];
        if *base_arm == r.arm {
            continue;
        }
        let (bs, bn) = counts[&(r.task.clone(), r.model.clone(), base_arm.clone())];
        if bn == 0 || r.trials == 0 {
            continue;
        }
        let base_rate = bs as f64 / bn as f64;
        r.gain_pp = Some((r.success - base_rate) * 100.0);
        r.fisher_p = Some(stats::fisher_exact_two_sided(
            r.successes,
            r.trials - r.successes,
            bs,
            bn - bs,
        ));
        r.cohens_h = Some(stats::cohens_h(r.success, base_rate));
    }
    Report {
        bench: id.to_string(),
        rows,
    }
}

fn row(key: &(String, String, String), trials: &[&Trial]) -> Row {
    let (task, model, arm) = key;
    let finished: Vec<&&Trial> = trials.iter().filter(|t| t.success.is_some()).collect();
    let n = finished.len() as u64;
    let successes = finished.iter().filter(|t| t.success == Some(true)).count() as u64;
    let (ci_low, ci_high) = stats::wilson(successes, n, stats::Z95);
    let first_attempt = finished
        .iter()
        .filter(|t| t.success == Some(true) && t.attempts.iter().all(|a| a.verdict == "pass"))
        .count() as u64;
    let mut attempts = BTreeMap::new();
    for t in &finished {
        *attempts.entry(t.attempts.len() as u64).or_insert(0) += 1;
    }
    let per_trial: Vec<f64> = finished.iter().map(|t| t.attempts.len() as f64).collect();
    let tokens: u64 = finished
        .iter()
        .flat_map(|t| &t.attempts)
        .map(|a| a.tokens + a.prompt_tokens)
        .sum();
    let calls: u64 = finished.iter().map(|t| t.generator_calls).sum();
    let per_success = |total: u64| (successes > 0).then(|| total as f64 / successes as f64);
    let mut regression_count = 0;
    let mut told = false;
    for t in &finished {
        let (c, k) = regressions(t);
        regression_count += c;
        told |= k;
    }
    let tag = trials.first().and_then(|t| t.meta.bench.as_ref());
    let rate = |k: u64| if n == 0 { 0.0 } else { k as f64 / n as f64 };
    Row {
        task: task.clone(),
        model: model.clone(),
        arm: arm.clone(),
        overrides: tag.map(|b| b.overrides.clone()).unwrap_or_default(),
        trials: n,
        successes,
        success: rate(successes),
        ci_low,
        ci_high,
        gain_pp: None,
        fisher_p: None,
        cohens_h: None,
        first_attempt,
        first_attempt_rate: rate(first_attempt),
        mean_attempts: stats::mean(&per_trial).unwrap_or(0.0),
        attempts,
        tokens_per_success: per_success(tokens),
        calls_per_success: per_success(calls),
        regressions: told.then_some(regression_count),
        worst_case_calls: trials.first().and_then(|t| t.meta.worst_case_calls),
        unfinished: trials.len() as u64 - n,
    }
}

impl Report {
    /// The text table's column headers.
    pub const HEADER: [&'static str; 15] = [
        "task",
        "model",
        "arm",
        "n",
        "success",
        "95% CI",
        "gain pp",
        "Fisher p",
        "h",
        "1st try",
        "attempts",
        "attempts dist",
        "tokens/succ",
        "calls/succ",
        "regress",
    ];

    /// Each row's cells as the text table prints them (under
    /// [`Report::HEADER`]); the HTML bench page shows the same.
    pub fn cells(&self) -> Vec<Vec<String>> {
        self.rows
            .iter()
            .map(|r| {
                vec![
                    r.task.clone(),
                    model_label(&r.model).to_string(),
                    r.arm.clone(),
                    r.trials.to_string(),
                    format!("{:.1}%", r.success * 100.0),
                    format!("{:.1}–{:.1}%", r.ci_low * 100.0, r.ci_high * 100.0),
                    r.gain_pp.map_or("—".into(), |g| format!("{g:+.1}")),
                    r.fisher_p.map_or("—".into(), p_text),
                    r.cohens_h.map_or("—".into(), |h| format!("{h:.2}")),
                    format!("{:.1}%", r.first_attempt_rate * 100.0),
                    format!("{:.2}", r.mean_attempts),
                    dist_text(&r.attempts),
                    r.tokens_per_success
                        .map_or("—".into(), |t| format!("{t:.0}")),
                    r.calls_per_success
                        .map_or("—".into(), |c| format!("{c:.2}")),
                    r.regressions.map_or("n/a".into(), |c| c.to_string()),
                ]
            })
            .collect()
    }

    /// The text table.
    pub fn table(&self) -> String {
        let header = Self::HEADER;
        let mut cells: Vec<Vec<String>> = vec![header.iter().map(|h| h.to_string()).collect()];
        cells.extend(self.cells());
        let widths: Vec<usize> = (0..header.len())
            .map(|i| {
                cells
                    .iter()
                    .map(|r| r[i].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = format!("bench {}\n", self.bench);
        for (k, row) in cells.iter().enumerate() {
            let line: Vec<String> = row
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(i, (c, w))| {
                    let pad = w - c.chars().count();
                    if i < 3 {
                        format!("{c}{}", " ".repeat(pad))
                    } else {
                        format!("{}{c}", " ".repeat(pad))
                    }
                })
                .collect();
            out.push_str(line.join("  ").trim_end());
            out.push('\n');
            if k == 0 {
                let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
                out.push_str(&rule.join("  "));
                out.push('\n');
            }
        }
        let mut notes = Vec::new();
        for r in &self.rows {
            notes.push(format!(
                "  {} / {} / {}: {}",
                r.task,
                model_label(&r.model),
                r.arm,
                r.terms()
            ));
        }
        if let Some(base) = self.rows.first() {
            out.push_str(&format!(
                "gains against the first arm (`{}`) of each task and model; Wilson 95 % intervals; \
                 Fisher's exact test, two-sided; Cohen's h\n",
                base.arm
            ));
        }
        for n in notes {
            out.push_str(&n);
            out.push('\n');
        }
        out
    }

    /// CSV, one line per row, with a header.
    pub fn csv(&self) -> String {
        let mut out = String::from(
            "task,model,arm,overrides,trials,successes,success,ci_low,ci_high,gain_pp,fisher_p,\
             cohens_h,first_attempt,first_attempt_rate,mean_attempts,attempts,tokens_per_success,\
             calls_per_success,regressions,worst_case_calls,unfinished\n",
        );
        let opt = |v: Option<f64>| v.map_or(String::new(), |x| format!("{x}"));
        for r in &self.rows {
            let fields = [
                csv_field(&r.task),
                csv_field(&r.model),
                csv_field(&r.arm),
                csv_field(&r.overrides),
                r.trials.to_string(),
                r.successes.to_string(),
                r.success.to_string(),
                r.ci_low.to_string(),
                r.ci_high.to_string(),
                opt(r.gain_pp),
                opt(r.fisher_p),
                opt(r.cohens_h),
                r.first_attempt.to_string(),
                r.first_attempt_rate.to_string(),
                r.mean_attempts.to_string(),
                csv_field(&dist_text(&r.attempts)),
                opt(r.tokens_per_success),
                opt(r.calls_per_success),
                r.regressions.map_or(String::new(), |c| c.to_string()),
                r.worst_case_calls.map_or(String::new(), |c| c.to_string()),
                r.unfinished.to_string(),
            ];
            out.push_str(&fields.join(","));
            out.push('\n');
        }
        out
    }
}

/// A model as the report names it: `(as written)` for the workflow's own
/// bindings.
pub fn model_label(model: &str) -> &str {
    if model.is_empty() {
        "(as written)"
    } else {
        model
    }
}

fn p_text(p: f64) -> String {
    if p < 0.001 {
        "<0.001".to_string()
    } else {
        format!("{p:.3}")
    }
}

/// `1:30 2:12 4:8`: attempts → trials.
fn dist_text(d: &BTreeMap<u64, u64>) -> String {
    d.iter()
        .map(|(k, v)| format!("{k}:{v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A CSV field, quoted when it holds a comma, a quote or a newline.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arms_read_and_write_back() {
        let a = Arm::parse("guarded: retry=3, strategy.fix=best-of(4)").expect("parses");
        assert_eq!(a.name, "guarded");
        assert_eq!(a.describe(), "retry=3, strategy.fix=best-of(4)");
        assert_eq!(
            Arm::parse("plain").expect("parses").describe(),
            "as written"
        );
        for bad in [
            ": retry=1",
            "a: retry",
            "a: retry=x",
            "a: tries=2",
            "a: strategy=best-of(0)",
        ] {
            assert!(Arm::parse(bad).is_err(), "{bad}");
        }
    }

    fn attempt(
        action: &str,
        n: u32,
        verdict: &str,
        failing: &[&str],
    ) -> crate::store::bench::Attempt {
        let mut feedback = String::from("the tests failed:\n");
        for t in failing {
            feedback.push_str(&format!("FAILED test_solution.py::{t} - assert False\n"));
        }
        crate::store::bench::Attempt {
            action: action.to_string(),
            attempt: n,
            verdict: verdict.to_string(),
            feedback: (!failing.is_empty()).then_some(feedback),
            tokens: 10,
            prompt_tokens: 5,
        }
    }

    #[test]
    fn a_regression_fails_a_test_an_earlier_attempt_passed() {
        let trial = |attempts| Trial {
            run_id: "r".into(),
            meta: RunMeta {
                id: "r".into(),
                workflow: "w".into(),
                workflow_hash: "h".into(),
                task: "t".into(),
                inputs: Default::default(),
                replacement: None,
                worst_case_calls: None,
                started_ms: 0,
                seed: Some(0),
                bench: Some(BenchTag {
                    id: "b".into(),
                    arm: "a".into(),
                    model: String::new(),
                    trial: 0,
                    overrides: String::new(),
                }),
            },
            success: Some(false),
            generator_calls: 3,
            attempts,
        };
        // a, then b (a fixed, b broken: a regression), then a and b (a
        // broken again: another); another action's tests are its own
        let t = trial(vec![
            attempt("fix", 1, "fail", &["test_a"]),
            attempt("other", 1, "fail", &["test_b"]),
            attempt("fix", 2, "fail", &["test_b"]),
            attempt("fix", 3, "fail", &["test_a", "test_b"]),
        ]);
        assert_eq!(regressions(&t), (2, true));
        // the same failure again is no regression; no named tests: unknown
        let same = trial(vec![
            attempt("fix", 1, "fail", &["test_a"]),
            attempt("fix", 2, "fail", &["test_a"]),
        ]);
        assert_eq!(regressions(&same), (0, true));
        let untold = trial(vec![
            attempt("fix", 1, "fail", &[]),
            attempt("fix", 2, "fail", &[]),
        ]);
        assert_eq!(regressions(&untold), (0, false));
        let r = report("b", &[t, untold]);
        assert_eq!(r.rows[0].regressions, Some(2));
        assert_eq!(r.rows[0].trials, 2);
        assert_eq!(r.rows[0].calls_per_success, None);
    }

    #[test]
    fn failing_tests_are_read_from_pytest_feedback() {
        let f = "the tests failed (2 failed, 1 passed):\nFAILED test_solution.py::test_a - assert 1 == 2\nFAILED test_solution.py::test_b\n";
        assert_eq!(
            failing_tests(f),
            Some(vec![
                "test_solution.py::test_a".to_string(),
                "test_solution.py::test_b".to_string()
            ])
        );
        assert_eq!(failing_tests("does not contain `DONE`"), None);
    }
}
