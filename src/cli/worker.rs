//! `guardflow worker --temporal HOST:PORT`: a Temporal worker hosting the
//! interpreter as a workflow and the generators, guards and effects as
//! activities; and `guardflow run --temporal`'s side (start, follow,
//! mirror into the local store). Built with `--features temporal`
//! (docs/temporal.md); without it both say how to get it.

use std::path::Path;

use crate::engine::{Replacement, Started, Workflow};
use crate::runtime::RunReport;

/// Run a worker for runs on Temporal (`guardflow run --temporal`).
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  temporal server start-dev --headless --ip 127.0.0.1 --port 7233\n  guardflow worker --temporal 127.0.0.1:7233\n  guardflow run flow.guardflow --temporal 127.0.0.1:7233\n\n\
Workers on one task queue share its runs; each must see the workflow's files, the inputs' \
directories and the blob directory (.guardflow/blobs beside the store) at the same paths. \
See docs/temporal.md.\n\nExit status: 0 stopped by SIGINT/SIGTERM, 2 the server cannot be \
reached or this guardflow was built without Temporal."
)]
pub struct Args {
    /// The Temporal server (its frontend): HOST:PORT
    #[arg(long, value_name = "HOST:PORT")]
    temporal: String,
    #[command(flatten)]
    place: Place,
    /// Calls (generators, guards, effects) this worker makes at once, at
    /// most
    #[arg(long, value_name = "N", default_value_t = 100)]
    max_activities: usize,
    /// Approve every artifact the `human` guard would ask a person about
    #[arg(long, short = 'y')]
    yes: bool,
}

/// Where on the server runs go.
#[derive(clap::Args, Clone)]
pub struct Place {
    /// The Temporal namespace
    #[arg(long, value_name = "NAME", default_value = "default")]
    pub namespace: String,
    /// The task queue the workers of these runs poll
    #[arg(long, value_name = "QUEUE", default_value = "guardflow")]
    pub task_queue: String,
}

#[cfg(not(feature = "temporal"))]
const NOT_BUILT: &str = "this guardflow was built without Temporal support; build it with \
`cargo build --release --features temporal` (see docs/temporal.md)";

#[cfg(not(feature = "temporal"))]
pub fn run(_args: Args) -> u8 {
    eprintln!("error: {NOT_BUILT}");
    super::EXIT_USAGE
}

#[cfg(feature = "temporal")]
pub fn run(args: Args) -> u8 {
    use crate::temporal::{Target, WorkerConfig};
    let mut engine = crate::engine::Engine::new();
    if args.yes {
        crate::stdlib::register_human_guard(&mut engine, true);
    }
    let config = WorkerConfig {
        target: Target {
            address: args.temporal.clone(),
            namespace: args.place.namespace.clone(),
            task_queue: args.place.task_queue.clone(),
        },
        max_activities: args.max_activities,
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return super::fail(format!("cannot start the runtime: {e}")),
    };
    let outcome = rt.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).ok();
        let term = async {
            match term.as_mut() {
                Some(s) => s.recv().await,
                None => std::future::pending().await,
            }
        };
        eprintln!(
            "worker on {} (namespace {}, task queue {})",
            config.target.address, config.target.namespace, config.target.task_queue
        );
        tokio::select! {
            r = crate::temporal::run_worker(engine, &config) => r.map(|()| None),
            _ = tokio::signal::ctrl_c() => Ok(Some("SIGINT")),
            _ = term => Ok(Some("SIGTERM")),
        }
    });
    // the programs of the calls it was making
    crate::runtime::children::kill_all();
    drop(rt);
    match outcome {
        Ok(Some(signal)) => {
            eprintln!("worker stopped by {signal}; its calls in flight go to other workers");
            super::EXIT_OK
        }
        Ok(None) => super::EXIT_OK,
        Err(e) => super::fail(e),
    }
}

/// `guardflow run --temporal`'s options.
#[derive(clap::Args, Clone)]
pub struct RunOpts {
    /// Run on this Temporal server (HOST:PORT) instead of in this
    /// process: checked here, run by `guardflow worker`s (docs/temporal.md)
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "resume")]
    pub temporal: Option<String>,
    #[command(flatten)]
    pub place: Place,
    /// With --temporal: print the workflow id and return once the run
    /// started; it is recorded in the local store, and `guardflow follow
    /// RUN_ID` brings the store up to date
    #[arg(long, requires = "temporal")]
    pub detach: bool,
    /// With --temporal: continue the run as new once its history has
    /// this many events (default 5000; see docs/temporal.md)
    #[arg(long, value_name = "EVENTS", requires = "temporal")]
    pub continue_after: Option<u64>,
}

/// What a run on Temporal came to: its report, or the exit code when
/// there is none (detached, or the server failed).
pub enum Remote {
    #[cfg_attr(not(feature = "temporal"), allow(dead_code))]
    Report(Box<RunReport>),
    Exit(u8),
}

/// Runs `started` on Temporal: starts the workflow with the run's spec,
/// follows it, and replays its events into the run's observer and store,
/// so the progress view, `--json`, `runs`, `show` and `trace` see it as
/// a local run.
#[cfg(not(feature = "temporal"))]
pub fn run_remote(
    _opts: &RunOpts,
    _started: &Started<'_>,
    _workflow: &Workflow,
    _replacement: Option<&Replacement>,
    _store: &Path,
    _run_id: Option<&str>,
) -> Remote {
    eprintln!("error: {NOT_BUILT}");
    Remote::Exit(super::EXIT_USAGE)
}

#[cfg(feature = "temporal")]
pub fn run_remote(
    opts: &RunOpts,
    started: &Started<'_>,
    workflow: &Workflow,
    replacement: Option<&Replacement>,
    store: &Path,
    run_id: Option<&str>,
) -> Remote {
    use crate::temporal::{RunSpec, Target};
    let target = Target {
        address: opts.temporal.clone().unwrap_or_default(),
        namespace: opts.place.namespace.clone(),
        task_queue: opts.place.task_queue.clone(),
    };
    let blobs = blob_dir(store);
    let mut spec = RunSpec::of(started, workflow, &blobs, replacement);
    spec.continue_after = opts.continue_after.unwrap_or(0);
    let workflow_id = match run_id {
        Some(id) => format!("guardflow-{id}"),
        None => format!(
            "guardflow-{}",
            &crate::store::content_hash(
                format!("{}-{}", std::process::id(), crate::store::now_ms()).as_bytes()
            )[..16]
        ),
    };
    // where the recorded run runs, for `guardflow follow`
    if let Some(id) = run_id {
        let place = TemporalPlace {
            address: target.address.clone(),
            namespace: target.namespace.clone(),
            task_queue: target.task_queue.clone(),
            workflow_id: workflow_id.clone(),
        };
        if let Err(e) = place.write(store, id) {
            return Remote::Exit(super::fail(e));
        }
    }
    let rt = match crate::engine::runtime() {
        Ok(rt) => rt,
        Err(e) => return Remote::Exit(super::fail(e)),
    };
    let again = match run_id {
        Some(id) => format!("; follow it again with `guardflow follow {id}`"),
        None => String::new(),
    };
    let outcome = rt.block_on(async {
        let client = target.connect().await?;
        crate::temporal::start_run(&client, &target, &spec, &workflow_id).await?;
        if opts.detach {
            return Ok(None);
        }
        eprintln!(
            "run on Temporal as workflow {workflow_id} (task queue {})",
            target.task_queue
        );
        // what the run does, as a local run tells it, as it happens
        let mirror = |e: crate::runtime::Event| started.run.emit(|| e);
        tokio::select! {
            o = crate::temporal::client::follow_live(&client, &workflow_id, 0, mirror) => o.map(Some),
            _ = tokio::signal::ctrl_c() => Err(format!(
                "stopped following; the run goes on on Temporal as workflow {workflow_id}{again}"
            )),
        }
    });
    match outcome {
        Err(e) => Remote::Exit(super::fail(e)),
        Ok(None) => {
            crate::cli::output::outln!("{workflow_id}");
            if let Some(id) = run_id {
                eprintln!("run {id} goes on on Temporal; `guardflow follow {id}` follows it");
            }
            Remote::Exit(super::EXIT_OK)
        }
        Ok(Some(outcome)) => Remote::Report(Box::new(outcome.report)),
    }
}

/// Where a recorded run runs on Temporal: a file beside the store
/// (`temporal/RUN_ID.json`), written when the run starts, read by
/// `guardflow follow`.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct TemporalPlace {
    pub address: String,
    pub namespace: String,
    pub task_queue: String,
    pub workflow_id: String,
}

impl TemporalPlace {
    fn path(store: &Path, run_id: &str) -> std::path::PathBuf {
        store
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .join("temporal")
            .join(format!("{run_id}.json"))
    }

    /// Written whole (a temporary file renamed into place).
    #[cfg_attr(not(feature = "temporal"), allow(dead_code))]
    fn write(&self, store: &Path, run_id: &str) -> Result<(), String> {
        let path = TemporalPlace::path(store, run_id);
        let dir = path.parent().unwrap_or(Path::new("."));
        let text = serde_json::to_vec_pretty(self).map_err(|e| e.to_string())?;
        std::fs::create_dir_all(dir)
            .and_then(|()| {
                let tmp = dir.join(format!(".{run_id}.json.{}", std::process::id()));
                std::fs::write(&tmp, &text)?;
                std::fs::rename(&tmp, &path)
            })
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    /// The place of run `run_id` of `store`, if it ran on Temporal.
    pub fn read(store: &Path, run_id: &str) -> Result<Option<TemporalPlace>, String> {
        let path = TemporalPlace::path(store, run_id);
        if !path.exists() {
            return Ok(None);
        }
        let text = crate::check::read_text(&path, 1 << 20)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| format!("{} is not a run's place on Temporal: {e}", path.display()))
    }
}

/// Follows run `run_id` of `store`, which runs on `place`, from where the
/// store is (`seen` events recorded) to its end: its events recorded by
/// `recorder` and shown by `view` as they come. Its report.
#[cfg(feature = "temporal")]
pub fn follow_recorded(
    place: &TemporalPlace,
    run_id: &str,
    seen: u64,
    recorder: &dyn crate::runtime::Sink,
    view: &dyn Fn(&crate::runtime::Event),
) -> Result<RunReport, String> {
    use crate::temporal::Target;
    let target = Target {
        address: place.address.clone(),
        namespace: place.namespace.clone(),
        task_queue: place.task_queue.clone(),
    };
    let rt = crate::engine::runtime()?;
    rt.block_on(async {
        let client = target.connect().await?;
        let mirror = |e: crate::runtime::Event| {
            recorder.record(&e);
            view(&e);
        };
        let id = &place.workflow_id;
        tokio::select! {
            o = crate::temporal::client::follow_live(&client, id, seen, mirror) => o.map(|o| o.report),
            _ = tokio::signal::ctrl_c() => Err(format!(
                "stopped following; the run goes on on Temporal as workflow {id}; \
                 follow it again with `guardflow follow {run_id}`"
            )),
        }
    })
}

#[cfg(not(feature = "temporal"))]
pub fn follow_recorded(
    _place: &TemporalPlace,
    _run_id: &str,
    _seen: u64,
    _recorder: &dyn crate::runtime::Sink,
    _view: &dyn Fn(&crate::runtime::Event),
) -> Result<RunReport, String> {
    Err(NOT_BUILT.to_string())
}

/// Where runs on Temporal keep large payloads: beside the store.
#[cfg(feature = "temporal")]
fn blob_dir(store: &Path) -> std::path::PathBuf {
    store
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .join("blobs")
}
