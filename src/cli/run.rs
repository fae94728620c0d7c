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
use crate::store::pins::Pinned;
use crate::store::{self, Recorder, RunMeta, Store, StoreError};

/// Check a workflow, then run one of its tasks.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  guardflow run examples/planning.guardflow --task prepare \\\n      --input goal=\"move the user database to PostgreSQL 16\" \\\n      --replay examples/fixtures/planning.jsonl\n  guardflow run flow.guardflow --input spec=@spec.md\n  guardflow run flow.guardflow --json | jq -c 'select(.event == \"attempt\")'\n  guardflow run flow.guardflow --otlp http://localhost:4318   # traces to a collector\n\n--input NAME=VALUE binds a task parameter or a program input of that name; \
=@FILE reads the value from a file. Values are read as the declared type \
(Int, Bool, JSON for records and lists).\n\nWith --resume, a run that stopped while a non-idempotent effect ran asks whether it ran: \
answer with --effect-ran, --effect-failed or --effect-did-not-run ACTION (see docs/store.md).\n\n\
Exit status: 0 the task succeeded, 1 it failed (or the workflow has errors), 2 usage or I/O error, \
3 a resume needs an answer about an effect, 75 the run is being written by another process or \
programs it started still run, 130/143/129 stopped by SIGINT/SIGTERM/SIGHUP (resumable)."
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
    /// The seed every generator call is given (a `simulate` generator
    /// draws from it); by default a random one, recorded with the run
    /// so that a resume draws the same
    #[arg(long, value_name = "N", conflicts_with = "resume")]
    seed: Option<u64>,
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
    /// `.guardflow/runs.db` (default: $GUARDFLOW_STORE, else
    /// `.guardflow/runs.db` beside the workflow)
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
    /// With --resume: go on although the workflow, a file it uses, the
    /// standard library or an input's files changed since the run
    /// started (the new files are used, and the change is recorded)
    #[arg(long, requires = "resume")]
    accept_changes: bool,
    /// With --resume: the effect of ACTION (a name, or a path such as
    /// main/m/deploy), which was running when the run stopped, ran to the
    /// end and did what it should; its attempt is accepted
    #[arg(long, value_name = "ACTION", requires = "resume")]
    effect_ran: Vec<String>,
    /// With --resume: the effect of ACTION ran and failed; its action
    /// fails as a failed effect does
    #[arg(long, value_name = "ACTION", requires = "resume")]
    effect_failed: Vec<String>,
    /// With --resume: the effect of ACTION did not run (or was undone);
    /// it runs again, with the command it had
    #[arg(long, value_name = "ACTION", requires = "resume")]
    effect_did_not_run: Vec<String>,
    /// Send the run's spans (run → task → method → action → attempt →
    /// generate/guard/effect) to this OpenTelemetry collector, OTLP/HTTP
    /// (e.g. http://localhost:4318); default: $OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
    /// else $OTEL_EXPORTER_OTLP_ENDPOINT. A failed export never fails
    /// the run (see docs/otel.md)
    #[arg(long, value_name = "URL")]
    otlp: Option<String>,
    /// With an OTLP endpoint: put prompts, outputs, feedback and commands
    /// in the spans (by default only their sizes and SHA-256)
    #[arg(long)]
    otlp_content: bool,
    #[command(flatten)]
    remote: super::worker::RunOpts,
}

/// Another process writes the run (EX_TEMPFAIL): try again later.
pub const EXIT_LOCKED: u8 = 75;

/// A resume needs an answer: an effect that is not `:idempotent` was
/// running when the run stopped (`--effect-ran`, `--effect-failed`,
/// `--effect-did-not-run`).
pub const EXIT_QUESTION: u8 = 3;

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
    let store_path = match args.store.clone().or_else(super::store_arg::from_env) {
        Some(s) => store::resolve(&s),
        None => store::default_path(&args.file),
    };
    let (config, recording, seed) = if let Some(id) = &args.resume {
        match resumed(&args, &store_path, id, &workflow) {
            Ok((c, r, seed)) => (c, Some(r), seed),
            Err(code) => return code,
        }
    } else {
        let config = match config(&args, &workflow) {
            Ok(c) => c,
            Err(e) => return super::fail(e),
        };
        (config, None, args.seed.unwrap_or_else(random_seed))
    };
    let otel = match otel(&args, &workflow, &config) {
        Ok(o) => o,
        Err(e) => return super::fail(e),
    };
    let progress = if args.json {
        observe(&mut engine, &otel, |e| {
            if let Ok(line) = serde_json::to_string(e) {
                outln!("{line}");
            }
        });
        None
    } else if std::io::stderr().is_terminal() && !asks_a_person(&workflow.program, args.yes) {
        let p = Arc::new(Progress::new());
        let q = p.clone();
        observe(&mut engine, &otel, move |e| q.event(e));
        Some(p)
    } else {
        // no view: still say what a call waits for
        observe(&mut engine, &otel, |e| {
            if let Some(line) = super::progress::notice(e) {
                eprintln!("{line}");
            }
        });
        None
    };
    let mut started = match engine.start(&workflow, &config) {
        Ok(s) => s,
        Err(e) => return super::fail(e),
    };
    started.seed(seed);
    let recorder = match recording {
        Some((resume, recorder)) => {
            started.resume(resume);
            Some(recorder)
        }
        None if args.no_store => None,
        None => match new_run(
            &args,
            &store_path,
            &config,
            started.worst_case_calls,
            &workflow,
            seed,
        ) {
            Ok(r) => Some(r),
            Err(e) => return store_fail(e),
        },
    };
    if let (Some(o), Some(r)) = (&otel, &recorder) {
        o.identify(r.id(), args.resume.is_some());
    }
    if let Some(r) = &recorder {
        started.record_to(r.clone());
        eprintln!("run {} (recorded in {})", r.id(), r.path().display());
        // the programs it runs, for a resume after a hard stop
        crate::runtime::children::record_to(Some(store::children_path(r.path(), r.id())));
    }
    // `:shared` resources are pooled with every run of the store (also
    // when this run is not recorded)
    let holder = match &recorder {
        Some(r) => r.id().to_string(),
        None => format!("unrecorded-{}", std::process::id()),
    };
    started.share_resources(store::resources_dir(&store_path), holder);
    let rt = match crate::engine::runtime() {
        Ok(rt) => rt,
        Err(e) => return super::fail(e),
    };
    let remote = args.remote.temporal.is_some().then(|| {
        let id = recorder.as_ref().map(|r| r.id().to_string());
        let replacement = config.replacement.as_ref();
        super::worker::run_remote(
            &args.remote,
            &started,
            &workflow,
            replacement,
            &store_path,
            id.as_deref(),
        )
    });
    let (report, signal) = match remote {
        Some(super::worker::Remote::Report(report)) => (*report, None),
        Some(super::worker::Remote::Exit(code)) => return code,
        None => rt.block_on(async {
            // the handlers are installed before the run starts anything a
            // signal should stop
            let stop = super::stop::signals();
            // dropping the run's future cancels every branch and kills the
            // programs they run
            tokio::select! {
                biased;
                stop = stop => (started.cancelled(stop.reason), Some(stop)),
                report = started.execute() => (report, None),
            }
        }),
    };
    // whatever a cancelled branch left behind, gone before this process
    // is: a resume started right after must not run beside it
    crate::runtime::children::kill_all();
    let all_gone = crate::runtime::children::wait_gone(std::time::Duration::from_secs(5));
    if let Some(p) = progress {
        p.finish();
    }
    if let Some(o) = &otel {
        o.finish();
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
        // every program it ran has ended; else the list stays, and a
        // resume waits for what is left
        if all_gone {
            crate::runtime::children::record_to(None);
        }
        if let (Some(stop), None) = (signal, r.failure()) {
            eprintln!(
                "run {} stopped by {}; continue it with `guardflow run {} --resume {}`",
                r.id(),
                stop.name,
                args.file.display(),
                r.id()
            );
        }
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
    if let Some(stop) = signal {
        return stop.exit;
    }
    if report.success {
        EXIT_OK
    } else {
        EXIT_FINDINGS
    }
}

/// The live OpenTelemetry export, when `--otlp` or the standard
/// variables name an endpoint.
fn otel(
    args: &Args,
    workflow: &Workflow,
    config: &RunConfig,
) -> Result<Option<Arc<crate::otel::Live>>, String> {
    let Some(endpoint) = crate::otel::endpoint(args.otlp.as_deref())? else {
        return Ok(None);
    };
    let replacement = config
        .replacement
        .as_ref()
        .map(|r| (r.generator.clone(), r.args.clone()));
    let models = crate::otel::map::Models::of(&workflow.program, replacement.as_ref());
    Ok(Some(Arc::new(crate::otel::Live::start(
        endpoint,
        models,
        args.otlp_content,
    ))))
}

/// `view` as the run's observer, and the OpenTelemetry export beside it.
fn observe(
    engine: &mut Engine,
    otel: &Option<Arc<crate::otel::Live>>,
    view: impl Fn(&crate::runtime::Event) + Send + Sync + 'static,
) {
    match otel.clone() {
        Some(o) => engine.on_event(move |e| {
            view(e);
            o.event(e);
        }),
        None => engine.on_event(view),
    };
}

/// Records a new run: what it was started with, for `--resume`.
fn new_run(
    args: &Args,
    store_path: &std::path::Path,
    config: &RunConfig,
    worst_case_calls: Option<u64>,
    loaded: &Workflow,
    seed: u64,
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
        seed: Some(seed),
        bench: None,
    };
    let pinned = pinned(loaded, &config.inputs);
    Ok(Arc::new(
        Store::open(store_path)?.start_pinned_run(&mut meta, &pinned)?,
    ))
}

/// What a run starts with: the workflow and every file it `use`s (as
/// read when it was checked), the standard library, and the files of the
/// program inputs not given with --input.
pub(crate) fn pinned(workflow: &Workflow, given: &HashMap<String, Value>) -> Pinned {
    let mut p = Pinned::default();
    let mut kind = "workflow";
    for (id, file) in workflow.sources.files() {
        if (id.0 as usize) < crate::stdlib::FILES.len() || file.name == crate::stdlib::HOST_PRELUDE
        {
            continue;
        }
        let path = std::fs::canonicalize(&file.name)
            .or_else(|_| std::path::absolute(&file.name))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|_| file.name.clone());
        p.add(kind, &path, &path, file.text.as_bytes());
        kind = "import";
    }
    // the standard library's hash, made once (a bench pins it per trial)
    static STD_HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let std_hash = STD_HASH.get_or_init(|| {
        let mut std_text = Vec::new();
        for (name, text) in crate::stdlib::FILES {
            for part in [name.as_bytes(), b"\0", text.as_bytes(), b"\0"] {
                std_text.extend_from_slice(part);
            }
        }
        store::content_hash(&std_text)
    });
    p.pins.push(crate::store::pins::Pin {
        kind: "stdlib".to_string(),
        name: env!("CARGO_PKG_VERSION").to_string(),
        path: "std".to_string(),
        hash: std_hash.clone(),
    });
    for (name, files) in inputs::input_files(&workflow.program, given, &workflow.workdir) {
        for (path, content) in files {
            p.add("input", &name, &path, &content);
        }
    }
    p
}

/// A run taken over: its configuration, what it recorded and its
/// recorder, and its seed.
type Resumed = (RunConfig, (Resume, Arc<Recorder>), u64);

/// The run `id` taken over to resume it: its configuration, what it
/// recorded, and its recorder. Fails (with the exit code) when the run
/// is unknown, finished, locked, or the workflow changed since.
fn resumed(
    args: &Args,
    store_path: &std::path::Path,
    id: &str,
    workflow: &Workflow,
) -> Result<Resumed, u8> {
    let store = Store::open(store_path).map_err(store_fail)?;
    let meta = store.run_meta(id).map_err(store_fail)?;
    let recorded = store.pins(id).map_err(store_fail)?;
    let given: HashMap<String, Value> = meta.inputs.clone().into_iter().collect();
    let Repinned {
        now,
        changes,
        inputs,
    } = repin(&store, id, &recorded, workflow, given, args.accept_changes).map_err(super::fail)?;
    let (_, hash) = identity(&args.file).map_err(store_fail)?;
    let changes = if !recorded.is_empty() {
        changes
    } else if hash != meta.workflow_hash {
        // a run recorded before format 4 pinned only the workflow
        let short = |h: &str| h.chars().take(12).collect::<String>();
        vec![format!(
            "workflow {}: {} → {}",
            meta.workflow,
            short(&meta.workflow_hash),
            short(&hash)
        )]
    } else {
        Vec::new()
    };
    if !recorded.is_empty() && !changes.is_empty() && !args.accept_changes {
        let mut message = format!(
            "run {id} started with other files than these, and a run resumes only with what it started with:"
        );
        for c in &changes {
            message.push_str(&format!("\n  {c}"));
        }
        message.push_str(
            "\nput them back, or resume with the files as they are now with --accept-changes \
             (the change is recorded in the run)",
        );
        return Err(super::fail(message));
    }
    if recorded.is_empty() && !changes.is_empty() && !args.accept_changes {
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
    let accepted = (args.accept_changes && !changes.is_empty()).then(|| {
        eprintln!(
            "warning: run {id} resumes with files changed since it started \
             (--accept-changes; recorded in the run):"
        );
        for c in &changes {
            eprintln!("  {c}");
        }
        (&now, changes.as_slice())
    });
    let (meta, resume, recorder) = store
        .resume_run_with(id, accepted, |resume| {
            survivors(store_path, id)?;
            answer_effects(args, id, &workflow.program, resume)
        })
        .map_err(store_fail)??;
    let config = RunConfig {
        task: meta.task,
        inputs,
        replacement: meta
            .replacement
            .map(|(generator, args)| Replacement { generator, args }),
    };
    // a run recorded before seeds were had seed 0
    Ok((config, (resume, Arc::new(recorder)), meta.seed.unwrap_or(0)))
}

/// What a resume of run `id` starts from, against `workflow` and its
/// files as they are now.
pub(crate) struct Repinned {
    /// The files as they are now (an input whose files are gone: as the
    /// run recorded them).
    pub now: Pinned,
    /// Each change from what the run started with, one line each; empty
    /// when it recorded no files (before format 4).
    pub changes: Vec<String>,
    /// The run's inputs: `given`, and the inputs' files as the run read
    /// them (with `accept_changes`: only those now gone; the others as
    /// they are now).
    pub inputs: HashMap<String, Value>,
}

/// Run `id`'s pins (`recorded`) against `workflow` now, and its inputs
/// from the store: what `run --resume` and a bench's resumed trial go on
/// with. The caller refuses the resume on `changes` unless told to
/// accept them.
pub(crate) fn repin(
    store: &Store,
    id: &str,
    recorded: &[crate::store::pins::Pin],
    workflow: &Workflow,
    given: HashMap<String, Value>,
    accept_changes: bool,
) -> Result<Repinned, String> {
    let mut now = pinned(workflow, &given);
    // an input whose files are gone is read from the store, as it was
    let gone: Vec<_> = recorded
        .iter()
        .filter(|p| {
            p.kind == "input"
                && !now
                    .pins
                    .iter()
                    .any(|n| n.kind == "input" && n.name == p.name)
        })
        .cloned()
        .collect();
    let gone_names: std::collections::HashSet<String> =
        gone.iter().map(|p| p.name.clone()).collect();
    now.pins.extend(gone);
    let changes = if recorded.is_empty() {
        Vec::new()
    } else {
        now.changes_from(recorded)
    };
    let mut inputs: HashMap<String, Value> = given;
    // the inputs' files as the run read them, not as they are now
    // (unless changes are accepted, or they are gone)
    let mut files: Vec<(&str, Vec<Vec<u8>>)> = Vec::new();
    let pinned_inputs = recorded
        .iter()
        .filter(|p| p.kind == "input" && (!accept_changes || gone_names.contains(&p.name)));
    for pin in pinned_inputs {
        let content = store
            .blob(&pin.hash)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| {
                format!(
                    "run {id}: the recorded content of `{}` (input `{}`) is missing from the store",
                    pin.path, pin.name
                )
            })?;
        match files.last_mut() {
            Some((name, list)) if *name == pin.name => list.push(content),
            _ => files.push((&pin.name, vec![content])),
        }
    }
    for (name, contents) in files {
        let v = inputs::input_value(&workflow.program, name, contents)
            .map_err(|e| format!("run {id}: {e}"))?;
        inputs.insert(name.to_string(), v);
    }
    Ok(Repinned {
        now,
        changes,
        inputs,
    })
}

/// Fails (exit 75) while a program the run started before it stopped
/// still runs: a resume would overlap with it.
fn survivors(store_path: &std::path::Path, id: &str) -> Result<(), u8> {
    let alive = crate::runtime::children::survivors(&store::children_path(store_path, id));
    if alive.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = alive
        .iter()
        .map(|s| match &s.command {
            Some(c) => format!("process group {} (`{c}`)", s.pgid),
            None => format!("process group {}", s.pgid),
        })
        .collect();
    let kill: Vec<String> = alive.iter().map(|s| format!("-{}", s.pgid)).collect();
    eprintln!(
        "error: programs that run {id} started before it stopped are still running: {}\n  \
         a resume now would run alongside them; wait for them to end, or stop them \
         (`kill -- {}`), then resume",
        list.join(", "),
        kill.join(" ")
    );
    Err(EXIT_LOCKED)
}

/// Applies `--effect-ran`, `--effect-failed` and `--effect-did-not-run`
/// to the effects that were running when the run stopped; fails (with
/// the exit code) when one of them is not answered, or an answer names
/// none of them.
fn answer_effects(args: &Args, id: &str, program: &Program, resume: &mut Resume) -> Result<(), u8> {
    use crate::runtime::resume::EffectAnswer;
    let idempotent = |name: &str| {
        program
            .actions
            .iter()
            .any(|a| a.name == name && a.idempotent)
    };
    let pending = resume.pending_effects(idempotent);
    let given = [
        (EffectAnswer::Ran, &args.effect_ran),
        (EffectAnswer::Failed, &args.effect_failed),
        (EffectAnswer::DidNotRun, &args.effect_did_not_run),
    ];
    for (answer, names) in given {
        for name in names {
            let matching: Vec<_> = pending
                .iter()
                .filter(|p| p.action == *name || p.path == *name)
                .collect();
            match matching.as_slice() {
                [] => {
                    let listed = pending
                        .iter()
                        .map(|p| format!("`{}` ({})", p.action, p.path))
                        .collect::<Vec<_>>();
                    eprintln!(
                        "error: {} {name}: no effect of `{name}` was running when run {id} stopped{}",
                        answer.flag(),
                        if listed.is_empty() {
                            String::new()
                        } else {
                            format!("; these were: {}", listed.join(", "))
                        }
                    );
                    return Err(super::EXIT_USAGE);
                }
                [one] => {
                    let key = (one.path.clone(), one.occurrence);
                    if let Some(before) = resume.answers.insert(key, answer) {
                        if before != answer {
                            eprintln!(
                                "error: `{name}` is given two answers: {} and {}",
                                before.flag(),
                                answer.flag()
                            );
                            return Err(super::EXIT_USAGE);
                        }
                    }
                }
                many => {
                    let paths: Vec<&str> = many.iter().map(|p| p.path.as_str()).collect();
                    eprintln!(
                        "error: {} {name}: the effects of `{name}` at {} were running when run {id} stopped; \
                         answer for each by its path",
                        answer.flag(),
                        paths.join(" and ")
                    );
                    return Err(super::EXIT_USAGE);
                }
            }
        }
    }
    let open: Vec<_> = pending
        .iter()
        .filter(|p| !resume.answers.contains_key(&(p.path.clone(), p.occurrence)))
        .collect();
    if open.is_empty() {
        return Ok(());
    }
    let file = args.file.display();
    for p in &open {
        eprintln!(
            "error: run {id} stopped while the effect of `{}` ({}) was running:\n  {}\n\
             whether it ran to the end is not known, and `{}` is not `:idempotent`, so it is not run \
             again by itself.\n\
             Check what it did, then resume with one of:\n  \
             guardflow run {file} --resume {id} --effect-ran {}          # it ran and succeeded: accept it\n  \
             guardflow run {file} --resume {id} --effect-failed {}       # it ran and failed: the action fails\n  \
             guardflow run {file} --resume {id} --effect-did-not-run {}  # it did not run: run it again",
            p.action, p.path, p.command, p.action, p.path, p.path, p.path
        );
    }
    Err(EXIT_QUESTION)
}

/// A seed for a run not given one: from the clock and the process id.
pub(crate) fn random_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    crate::stdlib::simulate::mix(nanos ^ (u64::from(std::process::id()) << 32))
}

/// A workflow's absolute path and the SHA-256 of its text.
pub(crate) fn identity(file: &std::path::Path) -> Result<(String, String), StoreError> {
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
    if program.task(&task).is_none() && program.action(&task).is_none() {
        // the unknown task first: its inputs cannot be judged without it
        return Err(crate::engine::unknown_task(program, &task));
    }
    let given = parse_inputs(program, &task, &args.inputs)?;
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

/// `--input NAME=VALUE` and `NAME=@FILE` arguments, each read as the
/// declared type of the task's parameter or program input `NAME`.
pub(crate) fn parse_inputs(
    program: &Program,
    task: &str,
    raw_inputs: &[String],
) -> Result<HashMap<String, Value>, String> {
    let mut given = HashMap::new();
    for raw in raw_inputs {
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
        let ty = program
            .declared_type(task, name)
            .ok_or_else(|| unknown_input(program, task, name))?;
        let v = inputs::parse_as(&ty, &text).map_err(|e| format!("--input {name}: {e}"))?;
        given.insert(name.to_string(), v);
    }
    Ok(given)
}

/// `--input NAME=…` where `NAME` is neither a parameter of the task nor
/// an input of the program: what it can be, and the closest name.
fn unknown_input(program: &Program, task: &str, name: &str) -> String {
    let params = match (program.task(task), program.action(task)) {
        (Some(t), _) => &program.tasks[t.index()].params,
        (None, Some(a)) => &program.actions[a.index()].params,
        _ => return crate::engine::unknown_task(program, task),
    };
    let names: Vec<&str> = params
        .iter()
        .map(|p| p.name.as_str())
        .chain(program.inputs.iter().map(|i| i.name.as_str()))
        .collect();
    let mut msg = format!("--input {name}: `{task}` takes no input `{name}`");
    if let Some(s) = crate::diagnostics::suggest::closest(name, names.iter().copied()) {
        msg.push_str(&format!("; did you mean `{s}`?"));
    }
    if names.is_empty() {
        msg.push_str(" (it takes none)");
    } else {
        msg.push_str(&format!(" (it takes: {})", names.join(", ")));
    }
    msg
}

/// The one task that no other task calls.
pub(crate) fn default_task(program: &Program) -> Result<String, String> {
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

pub(super) fn print_summary(report: &RunReport, color: bool) {
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
            .filter(|a| {
                a.action == *name
                    && !matches!(
                        a.verdict,
                        crate::runtime::VerdictKind::Pass
                            | crate::runtime::VerdictKind::Interrupted
                    )
            })
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
    if !report.judge_calls.is_empty() {
        eprintln!(
            "  {dim}of which judges asked: {}{reset}",
            report.judge_calls.len()
        );
    }
    if report.repeated_calls > 0 {
        let n = report.repeated_calls;
        eprintln!(
            "  {dim}repeated calls: {n} (in flight when the run stopped, so made again; not counted above){reset}"
        );
    }
    print_providers(report);
    let tokens = |f: fn(&crate::runtime::AttemptRecord) -> Option<u64>| {
        report.attempts.iter().filter_map(f).sum::<u64>()
    };
    let (mut completion, mut prompt) = (tokens(|a| a.tokens), tokens(|a| a.prompt_tokens));
    // a judge's calls are generator calls too
    for j in &report.judge_calls {
        completion += j.tokens.unwrap_or(0);
        prompt += j.prompt_tokens.unwrap_or(0);
    }
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

/// Which providers served the attempts, per action, when more than one
/// did in the run (a `fallback(…)` moved attempts).
fn print_providers(report: &RunReport) {
    let served: std::collections::BTreeSet<&str> = report
        .attempts
        .iter()
        .filter_map(|a| a.provider.as_deref())
        .collect();
    if served.len() < 2 {
        return;
    }
    for name in report.actions.keys() {
        let mut counts: std::collections::BTreeMap<&str, u64> = Default::default();
        for a in report.attempts.iter().filter(|a| a.action == *name) {
            if let Some(p) = &a.provider {
                *counts.entry(p).or_default() += 1;
            }
        }
        if counts.is_empty() {
            continue;
        }
        let list: Vec<String> = counts.iter().map(|(p, n)| format!("`{p}` {n}")).collect();
        eprintln!("  {name}: attempts served by {}", list.join(", "));
    }
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
