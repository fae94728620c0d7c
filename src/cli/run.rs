//! `guardflow run`: check, then run a task, showing progress; print the
//! summary and the result.

use crate::cli::output::outln;
use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use super::progress::Progress;
use super::{ColorChoice, EXIT_FINDINGS, EXIT_OK};
use crate::check::ir::{Callee, Program};
use crate::engine::{Engine, Replacement, RunConfig, Workflow};
use crate::runtime::{inputs, text_of, Resume, RunReport, Sink, Value};
use crate::store::{self, Recorder, RunMeta, Store, StoreError};

/// Check a workflow, then run one of its tasks.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  guardflow run examples/planning.guardflow --task prepare \\\n      --input goal=\"move the user database to PostgreSQL 16\" \\\n      --replay examples/fixtures/planning.jsonl\n  guardflow run flow.guardflow --input spec=@spec.md\n  guardflow run flow.guardflow --json | jq -c 'select(.event == \"attempt\")'\n\n--input NAME=VALUE binds a task parameter or a program input of that name; \
=@FILE reads the value from a file. Values are read as the declared type \
(Int, Bool, JSON for records and lists).\n\nExit status: 0 the task succeeded, 1 it failed (or the workflow has errors), 2 usage or I/O error."
)]
pub struct Args {
    /// The workflow file
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// The task to run (or an action on its own); by default the one task
    /// no other task calls
    #[arg(long, short)]
    task: Option<String>,
    /// A task argument or program input: NAME=VALUE, or NAME=@FILE
    #[arg(long = "input", short = 'i', value_name = "NAME=VALUE")]
    inputs: Vec<String>,
    /// Answer every generation from this recording instead of the
    /// workflow's generators (JSON lines: {"action", "attempt", "output"})
    #[arg(long, value_name = "FILE.jsonl")]
    replay: Option<PathBuf>,
    /// Stream every event as a JSON line on stdout instead of the
    /// progress view; the last line is the report
    #[arg(long)]
    json: bool,
    /// Colour the output
    #[arg(long, value_enum, default_value = "auto")]
    color: ColorChoice,
    /// Approve every artifact the `human` guard would ask a person about
    #[arg(long, short = 'y')]
    yes: bool,
    /// Record the run in this store: a file, or a directory meaning its
    /// `.guardflow/runs.db` (default: `.guardflow/runs.db` beside the
    /// workflow)
    #[arg(long, value_name = "PATH")]
    store: Option<PathBuf>,
    /// Do not record the run
    #[arg(long, conflicts_with_all = ["store", "resume"])]
    no_store: bool,
    /// Continue a run that was interrupted (killed, power lost) from what
    /// it committed; its task, inputs and --replay are those it started
    /// with
    #[arg(long, value_name = "RUN_ID", conflicts_with_all = ["task", "inputs", "replay"])]
    resume: Option<String>,
}

/// Another process writes the run (EX_TEMPFAIL): try again later.
pub const EXIT_LOCKED: u8 = 75;

/// A store error as an exit code: 75 when another process holds the run.
fn store_fail(e: StoreError) -> u8 {
    eprintln!("error: {e}");
    match e {
        StoreError::Locked { .. } => EXIT_LOCKED,
        _ => super::EXIT_USAGE,
    }
}

pub fn run(args: Args) -> u8 {
    let mut engine = Engine::new();
    if args.yes {
        crate::stdlib::register_human_guard(&mut engine, true);
    }
    let workflow = match engine.compile_file(&args.file) {
        Ok(w) => w,
        Err(e) => {
            eprint!("{}", e.render(args.color.enabled_on_stderr()));
            return match e {
                crate::engine::CompileError::Io { .. } => super::EXIT_USAGE,
                _ => EXIT_FINDINGS,
            };
        }
    };
    let store_path = match &args.store {
        Some(s) => store::resolve(s),
        None => store::default_path(&args.file),
    };
    let (config, recording) = if let Some(id) = &args.resume {
        match resumed(&args, &store_path, id) {
            Ok((c, r)) => (c, Some(r)),
            Err(code) => return code,
        }
    } else {
        let config = match config(&args, &workflow) {
            Ok(c) => c,
            Err(e) => return super::fail(e),
        };
        (config, None)
    };
    let progress = if args.json {
        engine.on_event(|e| {
            if let Ok(line) = serde_json::to_string(e) {
                outln!("{line}");
            }
        });
        None
    } else if std::io::stderr().is_terminal() && !asks_a_person(&workflow.program, args.yes) {
        let p = Arc::new(Progress::new());
        let q = p.clone();
        engine.on_event(move |e| q.event(e));
        Some(p)
    } else {
        None
    };
    let mut started = match engine.start(&workflow, &config) {
        Ok(s) => s,
        Err(e) => return super::fail(e),
    };
    let recorder = match recording {
        Some((resume, recorder)) => {
            started.resume(resume);
            Some(recorder)
        }
        None if args.no_store => None,
        None => match new_run(&args, &store_path, &config, started.worst_case_calls) {
            Ok(r) => Some(r),
            Err(e) => return store_fail(e),
        },
    };
    if let Some(r) = &recorder {
        started.record_to(r.clone());
        eprintln!("run {} (recorded in {})", r.id(), r.path().display());
    }
    let rt = match crate::engine::runtime() {
        Ok(rt) => rt,
        Err(e) => return super::fail(e),
    };
    let report = rt.block_on(async {
        // the Ctrl-C handler is installed when its branch is first polled:
        // before the run starts anything that a Ctrl-C should cancel
        tokio::select! {
            biased;
            _ = tokio::signal::ctrl_c() => started.cancelled("cancelled by Ctrl-C"),
            report = started.execute() => report,
        }
    });
    if let Some(p) = progress {
        p.finish();
    }
    if args.json {
        if let Ok(line) =
            serde_json::to_string(&serde_json::json!({"event": "report", "report": &report}))
        {
            outln!("{line}");
        }
    } else {
        print_summary(&report, args.color.enabled());
    }
    if let Some(r) = &recorder {
        if let Some(why) = r.failure() {
            eprintln!(
                "error: the run store failed, so the run stopped: {why}\n                   what was committed before is kept; once the store can be written, \
                 continue with `guardflow run {} --resume {}`",
                args.file.display(),
                r.id()
            );
            return super::EXIT_USAGE;
        }
    }
    if report.success {
        EXIT_OK
    } else {
        EXIT_FINDINGS
    }
}

/// Records a new run: what it was started with, for `--resume`.
fn new_run(
    args: &Args,
    store_path: &std::path::Path,
    config: &RunConfig,
    worst_case_calls: Option<u64>,
) -> Result<Arc<Recorder>, StoreError> {
    let (workflow, workflow_hash) = identity(&args.file)?;
    let mut meta = RunMeta {
        id: String::new(),
        workflow,
        workflow_hash,
        task: config.task.clone(),
        inputs: config
            .inputs
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        replacement: config
            .replacement
            .as_ref()
            .map(|r| (r.generator.clone(), r.args.clone())),
        worst_case_calls,
        started_ms: store::now_ms(),
    };
    Ok(Arc::new(Store::open(store_path)?.start_run(&mut meta)?))
}

/// The run `id` taken over to resume it: its configuration, what it
/// recorded, and its recorder. Fails (with the exit code) when the run
/// is unknown, finished, locked, or the workflow changed since.
fn resumed(
    args: &Args,
    store_path: &std::path::Path,
    id: &str,
) -> Result<(RunConfig, (Resume, Arc<Recorder>)), u8> {
    let store = Store::open(store_path).map_err(store_fail)?;
    let meta = store.run_meta(id).map_err(store_fail)?;
    let (_, hash) = identity(&args.file).map_err(store_fail)?;
    if hash != meta.workflow_hash {
        return Err(super::fail(format!(
            "`{}` changed since run {id} started (from `{}`); a run resumes only with the workflow it started with",
            args.file.display(),
            meta.workflow
        )));
    }
    if let Some(success) = store.finished(id).map_err(store_fail)? {
        return Err(super::fail(format!(
            "run {id} has already {}; there is nothing to resume",
            if success { "succeeded" } else { "failed" }
        )));
    }
    let (meta, resume, recorder) = store.resume_run(id).map_err(store_fail)?;
    let config = RunConfig {
        task: meta.task,
        inputs: meta.inputs.into_iter().collect(),
        replacement: meta
            .replacement
            .map(|(generator, args)| Replacement { generator, args }),
    };
    Ok((config, (resume, Arc::new(recorder))))
}

/// A workflow's absolute path and the SHA-256 of its text.
fn identity(file: &std::path::Path) -> Result<(String, String), StoreError> {
    let text =
        crate::check::read_bytes(file, crate::check::MAX_SOURCE_BYTES).map_err(|reason| {
            StoreError::Io {
                path: file.to_path_buf(),
                reason,
            }
        })?;
    let abs = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
    Ok((
        abs.to_string_lossy().into_owned(),
        store::content_hash(&text),
    ))
}

fn config(args: &Args, workflow: &Workflow) -> Result<RunConfig, String> {
    let program = &workflow.program;
    let task = match &args.task {
        Some(t) => t.clone(),
        None => default_task(program)?,
    };
    let mut given = HashMap::new();
    for raw in &args.inputs {
        let (name, value) = raw
            .split_once('=')
            .ok_or_else(|| format!("--input `{raw}`: write NAME=VALUE or NAME=@FILE"))?;
        let text = match value.strip_prefix('@') {
            Some(path) => {
                crate::check::read_text(std::path::Path::new(path), crate::check::MAX_DATA_BYTES)
                    .map_err(|e| format!("--input {name}: cannot read `{path}`: {e}"))?
            }
            None => value.to_string(),
        };
        let ty = program.declared_type(&task, name).ok_or_else(|| {
            format!(
                "--input {name}: `{task}` has no parameter and the program no input named `{name}`"
            )
        })?;
        let v = inputs::parse_as(&ty, &text).map_err(|e| format!("--input {name}: {e}"))?;
        given.insert(name.to_string(), v);
    }
    let replacement = match &args.replay {
        None => None,
        Some(path) => {
            // relative to where the command runs, not to the workflow
            let path = std::path::absolute(path).map_err(|e| format!("--replay: {e}"))?;
            if !path.is_file() {
                return Err(format!("--replay: `{}`: no such file", path.display()));
            }
            Some(Replacement {
                generator: "replay".to_string(),
                args: vec![Value::String(path.to_string_lossy().into_owned())],
            })
        }
    };
    Ok(RunConfig {
        task,
        inputs: given,
        replacement,
    })
}

/// The one task that no other task calls.
fn default_task(program: &Program) -> Result<String, String> {
    let mut called = vec![false; program.tasks.len()];
    for t in &program.tasks {
        for m in &t.methods {
            for s in &m.subtasks {
                if let Callee::Task(c) = s.callee {
                    called[c.index()] = true;
                }
            }
        }
    }
    let roots: Vec<&str> = program
        .tasks
        .iter()
        .zip(&called)
        .filter(|(_, c)| !**c)
        .map(|(t, _)| t.name.as_str())
        .collect();
    match roots.as_slice() {
        [one] => Ok(one.to_string()),
        [] => Err("the workflow has no task; run an action with --task NAME".to_string()),
        many => Err(format!(
            "the workflow has {} top-level tasks; choose one with --task: {}",
            many.len(),
            many.join(", ")
        )),
    }
}

fn print_summary(report: &RunReport, color: bool) {
    let (ok, bad, dim, reset) = if color {
        ("\x1b[32m", "\x1b[31m", "\x1b[2m", "\x1b[0m")
    } else {
        ("", "", "", "")
    };
    let secs = report.elapsed_ms as f64 / 1000.0;
    if report.success {
        eprintln!("{ok}✓{reset} `{}` succeeded in {secs:.2}s", report.task);
    } else {
        eprintln!("{bad}✗{reset} `{}` failed after {secs:.2}s", report.task);
        if let Some(f) = &report.failure {
            eprintln!("  {}", f.replace('\n', "\n  "));
        }
    }
    let width = report.actions.keys().map(|k| k.len()).max().unwrap_or(0);
    for (name, calls) in &report.actions {
        let rejected = report
            .attempts
            .iter()
            .filter(|a| a.action == *name && a.verdict != crate::runtime::VerdictKind::Pass)
            .count();
        eprintln!(
            "  {name:width$}  {} attempt{}{}",
            calls.generator_calls,
            if calls.generator_calls == 1 { "" } else { "s" },
            if rejected > 0 {
                format!(", {rejected} rejected")
            } else {
                String::new()
            }
        );
    }
    let bound = match report.worst_case_calls {
        Some(b) => format!(" (the checker's worst case: {b})"),
        None => String::new(),
    };
    eprintln!(
        "  {dim}generator calls: {}{bound}; guard runs: {}{reset}",
        report.generator_calls, report.guard_runs
    );
    let tokens = |f: fn(&crate::runtime::AttemptRecord) -> Option<u64>| {
        report.attempts.iter().filter_map(f).sum::<u64>()
    };
    let (completion, prompt) = (tokens(|a| a.tokens), tokens(|a| a.prompt_tokens));
    if completion + prompt > 0 {
        eprintln!("  {dim}tokens: {prompt} prompt, {completion} generated{reset}");
    }
    for a in &report.attempts {
        let Some(outcome) = &a.outcome else { continue };
        let field = |k: &str| outcome.get(k).map(|v| text_of(v).into_owned());
        let command = field("command").unwrap_or_default();
        let code = field("exit_code").unwrap_or_default();
        eprintln!("  {}: ran `{command}`, exit status {code}", a.action);
        let out = field("stdout").unwrap_or_default();
        let out = crate::stdlib::process::tail(&out, 10, 2000);
        for line in out.lines().filter(|l| !l.is_empty()) {
            eprintln!("    {dim}{line}{reset}");
        }
    }
    if let Some(result) = &report.result {
        outln!("{}", text_of(result));
    }
}

/// Whether a run may ask a person on the terminal (a `human` generator,
/// or the `human` guard without `--yes`): then the live view, which
/// redraws stderr, stays off so the questions stay readable.
fn asks_a_person(program: &Program, yes: bool) -> bool {
    use crate::check::ir::ExternKind;
    let human = |kind: ExternKind| {
        program
            .externs
            .iter()
            .position(|e| e.kind == kind && e.name == "human")
    };
    if let Some(g) = human(ExternKind::Generator) {
        if program.generators.iter().any(|i| i.kind.index() == g) {
            return true;
        }
    }
    let Some(guard) = human(ExternKind::Guard).filter(|_| !yes) else {
        return false;
    };
    // a guard call refers to it as {"kind": "extern", "id": N}
    let want = serde_json::json!({"kind": "extern", "id": guard});
    fn mentions(v: &serde_json::Value, want: &serde_json::Value) -> bool {
        match v {
            serde_json::Value::Object(m) => {
                (m.get("kind") == want.get("kind") && m.get("id") == want.get("id") && m.len() == 2)
                    || m.values().any(|x| mentions(x, want))
            }
            serde_json::Value::Array(a) => a.iter().any(|x| mentions(x, want)),
            _ => false,
        }
    }
    serde_json::to_value(program).is_ok_and(|v| {
        ["actions", "guards"]
            .iter()
            .any(|k| v.get(*k).is_some_and(|x| mentions(x, &want)))
    })
}

#[cfg(test)]
mod tests {
    use super::asks_a_person;

    fn program(generator: &str, guard: &str) -> crate::check::ir::Program {
        let source = format!(
            "use std.{{human, non_empty}}\ngenerator g = {generator}\n\
             action a() -> Text {{ :generate g \"p\" :guard non_empty && {guard} :retry 0 :timeout 1m }}\n"
        );
        crate::check::check_source("t.guardflow", &source)
            .program
            .expect("checks")
    }

    #[test]
    fn the_live_view_stays_off_when_a_person_may_be_asked() {
        let replay = r#"replay("r.jsonl")"#;
        assert!(!asks_a_person(&program(replay, "true"), false));
        assert!(asks_a_person(&program(replay, "human(\"ok?\")"), false));
        assert!(!asks_a_person(&program(replay, "human(\"ok?\")"), true));
        assert!(asks_a_person(&program("human()", "true"), true));
    }
}
