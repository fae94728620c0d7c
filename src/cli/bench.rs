//! `guardflow bench`: run a task N times per model and arm, every trial
//! a recorded run, then print the report (`crate::bench`).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use super::output::out;
use super::{EXIT_OK, EXIT_USAGE};
use crate::bench::{self, Arm, Bench};
use crate::engine::Engine;
use crate::store::{self, Store};

/// Run a task many times per model and arm, and report success with
/// intervals, gains with Fisher's exact p and Cohen's h, attempts, cost
/// and regressions.
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  \
# the paper's experiment: one-shot against guarded, 50 trials per model\n  \
guardflow bench probes/lru.guardflow --model qwen --model llama \\\n      \
--arm 'baseline: retry=0' --arm 'guarded: retry=3' --trials 50 --concurrency 16\n  \
# strategies against each other\n  \
guardflow bench flow.guardflow --arm 'repair: retry=3' \\\n      \
--arm 'resample: retry=3, strategy=resample' --arm 'best-of: retry=0, strategy=best-of(4)'\n  \
# offline, with simulated models declared on the command line\n  \
guardflow bench bench/suite/lru/task.guardflow \\\n      \
--model 'weak=simulate(pass: \"reference.py\", fail: \"broken.py\", p: 0.3, correlation: 0.5)' \\\n      \
--arm 'baseline: retry=0' --arm 'guarded: retry=3'\n  \
guardflow bench --report lru-main --format csv > lru.csv\n  \
guardflow bench --list\n\n\
An arm is NAME or NAME: KEY=VALUE, …; the keys are retry=N and strategy=repair|resample|best-of(N), \
for every action, or for one with retry.ACTION=N and strategy.ACTION=…. The first arm is the \
baseline the others' gains are measured against. Each arm is applied to the checked workflow and \
its bounds are verified again.\n\n\
--model G binds every action to the generator G declared in the workflow (an llm, a simulate, …); \
each model runs every arm. Without --model the workflow's own bindings run.\n\n\
Trial t has the seed derived from --seed and t, the same in every arm and model. Every trial is a \
run in the store, tagged with the bench (its --name), arm, model and trial. Started again with the \
same --name, a bench keeps the trials it finished, resumes those that were interrupted and runs \
only what it lacks (a larger --trials adds trials).\n\nSee docs/bench.md.")]
pub struct Args {
    /// The workflow file (with --report or --list: optional, to find the
    /// store)
    #[arg(value_name = "FILE", required_unless_present_any = ["report", "list"])]
    file: Option<PathBuf>,
    /// The task to run (or an action on its own); by default the one task
    /// no other task calls
    #[arg(long, short)]
    task: Option<String>,
    /// A task argument or program input for every trial: NAME=VALUE, or
    /// NAME=@FILE
    #[arg(long = "input", short = 'i', value_name = "NAME=VALUE")]
    inputs: Vec<String>,
    /// Bind every action to this generator of the workflow, or to one
    /// declared here: NAME=GENERATOR(…), e.g.
    /// 'weak=simulate(pass: "reference.py", fail: "broken.py", p: 0.3)';
    /// repeat for several models (each runs every arm)
    #[arg(long = "model", short = 'm', value_name = "GENERATOR")]
    models: Vec<String>,
    /// An arm: NAME or 'NAME: retry=N, strategy=resample, retry.ACTION=N';
    /// repeat; the first is the baseline (default: one arm, as written)
    #[arg(long = "arm", short = 'a', value_name = "SPEC")]
    arms: Vec<String>,
    /// Trials per model and arm
    #[arg(long, short = 'n', default_value_t = 10, value_name = "N")]
    trials: u64,
    /// Trials running at once (generators' own limits apply within)
    #[arg(long, short = 'j', default_value_t = 8, value_name = "N")]
    concurrency: usize,
    /// The base seed of the trials' seeds
    #[arg(long, default_value_t = 0, value_name = "N")]
    seed: u64,
    /// The bench's name (default: the workflow's file stem and the task);
    /// a bench started again under its name goes on where it stopped
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Only print the report of the bench NAME from the store
    #[arg(long, value_name = "NAME", conflicts_with_all = ["task", "inputs", "models", "arms", "name"])]
    report: Option<String>,
    /// Only list the benches in the store: workflow, task, arms, models,
    /// trials finished and unfinished
    #[arg(long, conflicts_with_all = ["report", "task", "inputs", "models", "arms", "name", "csv"])]
    list: bool,
    /// The run store: a file, or a directory meaning its
    /// `.guardflow/runs.db` (default: $GUARDFLOW_STORE, else beside the
    /// workflow)
    #[arg(long, value_name = "PATH")]
    store: Option<PathBuf>,
    /// How the report is printed
    #[arg(long, value_enum, default_value = "text")]
    format: ReportFormat,
    /// Also write the report as CSV to this file
    #[arg(long, value_name = "FILE")]
    csv: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// A table
    Text,
    /// One JSON object
    Json,
    /// Comma-separated values with a header
    Csv,
}

/// The largest bench: trials per model and arm, and trials at once.
const MAX_TRIALS: u64 = 1_000_000;
const MAX_CONCURRENCY: usize = 10_000;

pub fn run(args: Args) -> u8 {
    let store_path = match (&args.store, super::store_arg::from_env(), &args.file) {
        (Some(s), _, _) => store::resolve(s),
        (None, Some(s), _) => store::resolve(&s),
        (None, None, Some(f)) => store::default_path(f),
        // as the reading commands find theirs: here or above, else below
        (None, None, None) => match super::store_arg::StoreArg::default().locate(None) {
            Ok(p) => p,
            Err(e) => return super::fail(e),
        },
    };
    if args.list {
        return print_list(&args, &store_path);
    }
    if let Some(id) = &args.report {
        return print_report(&args, &store_path, id);
    }
    let Some(file) = args.file.clone() else {
        return super::fail("give the workflow FILE");
    };
    if args.trials == 0 || args.trials > MAX_TRIALS {
        return super::fail(format!("--trials: from 1 to {MAX_TRIALS}"));
    }
    if args.concurrency == 0 || args.concurrency > MAX_CONCURRENCY {
        return super::fail(format!("--concurrency: from 1 to {MAX_CONCURRENCY}"));
    }
    let engine = Engine::new();
    // `--model NAME=GENERATOR(…)`: a generator declared for the bench
    let mut declared = String::new();
    let mut models = Vec::new();
    for m in &args.models {
        match m.split_once('=') {
            Some((name, def)) if def.contains('(') => {
                declared.push_str(&format!("generator {} = {}\n", name.trim(), def.trim()));
                models.push(name.trim().to_string());
            }
            _ => models.push(m.trim().to_string()),
        }
    }
    let compiled = if declared.is_empty() {
        engine.compile_file(&file)
    } else {
        match crate::check::read_text(&file, crate::check::MAX_SOURCE_BYTES) {
            Ok(text) => engine.compile(
                &file.to_string_lossy(),
                &format!("{text}\n// declared by `guardflow bench --model`\n{declared}"),
            ),
            Err(reason) => Err(crate::engine::CompileError::Io {
                path: file.display().to_string(),
                reason,
            }),
        }
    };
    let workflow = match compiled {
        Ok(w) => w,
        Err(e) => {
            eprint!("{}", e.render(super::ColorChoice::Auto.enabled_on_stderr()));
            return match e {
                crate::engine::CompileError::Io { .. } => EXIT_USAGE,
                _ => super::EXIT_FINDINGS,
            };
        }
    };
    let program = &workflow.program;
    let task = match &args.task {
        Some(t) => t.clone(),
        None => match super::run::default_task(program) {
            Ok(t) => t,
            Err(e) => return super::fail(e),
        },
    };
    if program.task(&task).is_none() && program.action(&task).is_none() {
        return super::fail(crate::engine::unknown_task(program, &task));
    }
    let inputs = match super::run::parse_inputs(program, &task, &args.inputs) {
        Ok(i) => i,
        Err(e) => return super::fail(e),
    };
    let mut arms = Vec::new();
    for text in &args.arms {
        match Arm::parse(text) {
            Ok(a) if arms.iter().any(|b: &Arm| b.name == a.name) => {
                return super::fail(format!("--arm: two arms are named `{}`", a.name))
            }
            Ok(a) => arms.push(a),
            Err(e) => return super::fail(e),
        }
    }
    if arms.is_empty() {
        arms.push(Arm {
            name: "as-written".to_string(),
            overrides: Vec::new(),
        });
    }
    models.dedup();
    if models.is_empty() {
        models.push(String::new());
    }
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "bench".to_string());
    let bench = Bench {
        id: args
            .name
            .clone()
            .unwrap_or_else(|| format!("{stem}-{task}")),
        file: file.clone(),
        declared,
        task,
        inputs,
        models,
        arms,
        trials: args.trials,
        seed: args.seed,
        concurrency: args.concurrency,
    };
    let cells = match bench.cells(&workflow) {
        Ok(c) => c,
        Err(e) => return super::fail(e),
    };
    let total = bench.trials * cells.len() as u64;
    eprintln!(
        "bench {}: {} trial{} of `{}` ({} model{} × {} arm{} × {}), {} at once; recorded in {}",
        bench.id,
        total,
        if total == 1 { "" } else { "s" },
        bench.task,
        bench.models.len(),
        if bench.models.len() == 1 { "" } else { "s" },
        bench.arms.len(),
        if bench.arms.len() == 1 { "" } else { "s" },
        bench.trials,
        bench.concurrency,
        store_path.display()
    );
    for c in &cells {
        let worst = c
            .workflow
            .program
            .task(&bench.task)
            .and_then(|t| c.workflow.worst_case_calls[t.index()]);
        eprintln!(
            "  {}{}: {}; worst case {} generator call(s) a trial",
            c.arm.name,
            if c.model.is_empty() {
                String::new()
            } else {
                format!(" with {}", c.model)
            },
            c.arm.describe(),
            worst.map_or("unbounded".to_string(), |w| w.to_string())
        );
    }
    let rt = match crate::engine::runtime() {
        Ok(rt) => rt,
        Err(e) => return super::fail(e),
    };
    let done = AtomicU64::new(0);
    let tty = std::io::stderr().is_terminal();
    let on_finished = |_: &bench::Finished<'_>| {
        let n = done.fetch_add(1, Ordering::Relaxed) + 1;
        if tty {
            eprint!("\r  {n} trials run this time");
        }
    };
    let outcome = rt.block_on(async {
        let stop = super::stop::signals();
        // dropping the bench's future cancels every trial: each stays
        // unfinished in the store, and is resumed next time
        tokio::select! {
            biased;
            stop = stop => Err((stop.exit, stop.name.to_string())),
            r = bench::run(&engine, &bench, &cells, &store_path, &on_finished) => r.map_err(|e| (EXIT_USAGE, e)),
        }
    });
    crate::runtime::children::kill_all();
    crate::runtime::children::wait_gone(std::time::Duration::from_secs(5));
    if tty {
        eprintln!();
    }
    let again = format!("the same command goes on from there (bench `{}`)", bench.id);
    match outcome {
        Ok(o) => {
            if o.kept > 0 || o.resumed > 0 {
                eprintln!(
                    "  {} trials were already finished, {} resumed, {} started",
                    o.kept, o.resumed, o.started
                );
            }
        }
        Err((code, why)) if code == EXIT_USAGE => {
            eprintln!("error: {why}");
            return EXIT_USAGE;
        }
        Err((code, why)) => {
            eprintln!("bench `{}` stopped by {why}; {again}", bench.id);
            return code;
        }
    }
    print_report(&args, &store_path, &bench.id)
}

/// `--list`: the benches in the store, one line each (or one JSON
/// object).
fn print_list(args: &Args, store_path: &std::path::Path) -> u8 {
    let benches = match Store::open_read(store_path).and_then(|s| s.bench_summaries()) {
        Ok(b) => b,
        Err(e) => return super::fail(e),
    };
    match args.format {
        ReportFormat::Json => match serde_json::to_string_pretty(&benches) {
            Ok(j) => out!("{j}\n"),
            Err(e) => return super::fail(e),
        },
        ReportFormat::Csv => {
            out!("bench,workflow,task,arms,models,trials,finished,unfinished,succeeded\n");
            for b in &benches {
                let fields = [
                    b.id.clone(),
                    b.workflow.clone(),
                    b.task.clone(),
                    b.arms.join(" "),
                    b.models.join(" "),
                ]
                .map(|f| crate::bench::csv_field(&f));
                out!(
                    "{},{},{},{},{}\n",
                    fields.join(","),
                    b.trials,
                    b.finished,
                    b.trials - b.finished,
                    b.succeeded
                );
            }
        }
        ReportFormat::Text if benches.is_empty() => {
            out!("{}: no benches\n", store_path.display());
        }
        ReportFormat::Text => {
            for b in &benches {
                let models: Vec<&str> = b
                    .models
                    .iter()
                    .map(|m| if m.is_empty() { "(as written)" } else { m })
                    .collect();
                out!(
                    "{}  {} trial{}: {} finished ({} succeeded), {} unfinished\n  \
                     {} task {}; arms {}; models {}\n",
                    b.id,
                    b.trials,
                    if b.trials == 1 { "" } else { "s" },
                    b.finished,
                    b.succeeded,
                    b.trials - b.finished,
                    b.workflow,
                    b.task,
                    b.arms.join(", "),
                    models.join(", ")
                );
            }
        }
    }
    EXIT_OK
}

fn print_report(args: &Args, store_path: &std::path::Path, id: &str) -> u8 {
    let store = match Store::open_read(store_path) {
        Ok(s) => s,
        Err(e) => return super::fail(e),
    };
    let trials = match store.bench_trials(id) {
        Ok(t) => t,
        Err(e) => return super::fail(e),
    };
    if trials.is_empty() {
        let known = store.benches().unwrap_or_default();
        return super::fail(format!(
            "the run store `{}` has no bench `{id}`{}",
            store_path.display(),
            if known.is_empty() {
                String::new()
            } else {
                format!(" (it has: {})", known.join(", "))
            }
        ));
    }
    let report = bench::report(id, &trials);
    if let Some(path) = &args.csv {
        if let Err(e) = std::fs::write(path, report.csv()) {
            return super::fail(format!(
                "--csv: cannot write `{}`: {}",
                path.display(),
                crate::check::io_reason(&e)
            ));
        }
    }
    match args.format {
        ReportFormat::Text => out!("{}", report.table()),
        ReportFormat::Json => match serde_json::to_string_pretty(&report) {
            Ok(j) => out!("{j}\n"),
            Err(e) => return super::fail(e),
        },
        ReportFormat::Csv => out!("{}", report.csv()),
    }
    EXIT_OK
}
