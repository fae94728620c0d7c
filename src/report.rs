//! A run as one self-contained HTML page (`guardflow report`, and each
//! run's page of `guardflow serve`): a timeline of every attempt, the
//! decomposition tree with the path the run took, every attempt's prompt,
//! output, verdict, feedback and diff against the attempt before it, the
//! workflow graph with the run's path, and the checker's bounds against
//! what the run used.
//!
//! Built from the store's events (what `show` and `trace` read). The page
//! loads nothing: its CSS, script and pictures (SVG) are inline, and a
//! Content-Security-Policy forbids everything else. Everything the run
//! recorded is escaped (a model's output is untrusted); the per-attempt
//! texts travel as JSON in a data block and are shown with `textContent`
//! when an attempt is opened. The page stays small for large runs: the
//! texts share a budget (`TEXT_BUDGET`), each cut stated where it is cut.
//!
//! - `model`: the events as attempts and a tree of tasks, methods and
//!   actions;
//! - `html`: escaping and the page;
//! - `timeline`: the Gantt chart (SVG);
//! - `graph`: the workflow graph laid out as SVG;
//! - `diff`: the line diff between consecutive attempts' outputs;
//! - `bench`: a bench's page (results table, success with intervals,
//!   attempts histograms, its trials).

pub mod bench;
pub mod diff;
mod graph;
mod html;
mod model;
mod timeline;

use serde_json::Value;

use crate::check::ir::Program;
use crate::check::verify::bounds::{self, TaskBounds};
use crate::check::verify::graph::MethodGraph;
use crate::store::{RunMeta, Store, StoreError};

pub use bench::{url_segment, BenchOptions, BenchServed};
pub use html::{escape, CSP, CSP_SERVED, CSS};

/// Everything a report shows of one run.
pub struct RunData {
    pub meta: RunMeta,
    /// `succeeded`, `failed`, `running` or `interrupted` (see
    /// `guardflow runs`).
    pub status: String,
    /// The run's events, as `Store::events` reads them.
    pub events: Vec<Value>,
    /// The workflow as it is now, checked; why not, when it cannot be.
    pub workflow: Result<WorkflowView, String>,
}

/// The checked workflow of a run, for its graph and bounds.
pub struct WorkflowView {
    pub program: Program,
    pub graphs: Vec<Vec<MethodGraph>>,
    pub bounds: Vec<TaskBounds>,
    /// The file changed since the run started (its SHA-256 differs).
    pub changed: bool,
}

/// How the page is served.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Served by `guardflow serve`: the server's paths, so the page links
    /// back to the list and follows a running run's events.
    pub served: Option<Served>,
}

#[derive(Debug, Clone)]
pub struct Served {
    /// The runs list.
    pub list_url: String,
    /// The run's server-sent events, when it is running.
    pub events_url: Option<String>,
}

/// Reads run `id` from `store`: its configuration, status, events, and
/// its workflow checked again from the file it names.
pub fn load(store: &Store, id: &str) -> Result<RunData, StoreError> {
    let meta = store.run_meta(id)?;
    let events = store.events(id)?;
    let status = store
        .runs()?
        .into_iter()
        .find(|r| r.id == id)
        .map_or_else(|| "interrupted".to_string(), |r| r.status);
    let workflow = workflow_view(&meta);
    Ok(RunData {
        meta,
        status,
        events,
        workflow,
    })
}

/// The workflow a run names, read and checked as it is now.
pub fn workflow_view(meta: &RunMeta) -> Result<WorkflowView, String> {
    let path = std::path::Path::new(&meta.workflow);
    let text = crate::check::read_text(path, crate::check::MAX_SOURCE_BYTES)
        .map_err(|e| format!("`{}` cannot be read: {e}", meta.workflow))?;
    let changed = crate::store::content_hash(text.as_bytes()) != meta.workflow_hash;
    let checked = crate::check::check_source(&meta.workflow, &text);
    let (Some(program), Some(verified)) = (checked.program, checked.verified) else {
        return Err(format!(
            "`{}` no longer checks (run `guardflow check` on it)",
            meta.workflow
        ));
    };
    let bounds = bounds::task_bounds(&program, &verified.graphs, None);
    Ok(WorkflowView {
        program,
        graphs: verified.graphs,
        bounds,
        changed,
    })
}

/// The page.
pub fn render(data: &RunData, options: &Options) -> String {
    let model = model::Model::build(data);
    html::page(data, &model, options)
}

/// A bench as its page shows it.
pub struct BenchData {
    pub report: crate::bench::Report,
    pub trials: Vec<crate::store::bench::Trial>,
    /// Trials running now.
    pub running: u64,
}

/// Reads bench `name` from `store`: its trials, the report
/// `guardflow bench --report` prints (`crate::bench::report`), the
/// trials running now; `None` when the store has no such bench.
pub fn load_bench(store: &Store, name: &str) -> Result<Option<BenchData>, StoreError> {
    let trials = store.bench_trials(name)?;
    if trials.is_empty() {
        return Ok(None);
    }
    let running = store.bench_progress(name)?.running;
    Ok(Some(BenchData {
        report: crate::bench::report(name, &trials),
        trials,
        running,
    }))
}

/// The bench's page.
pub fn render_bench(data: &BenchData, options: &BenchOptions) -> String {
    let options = BenchOptions {
        running: data.running,
        ..options.clone()
    };
    bench::page(&data.report, &data.trials, &options)
}
