//! What a Temporal run starts with and ends with.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};

use super::blob::Carried;
use crate::check::ir::{Callee, Program};
use crate::engine::{Engine, Replacement, RunError, Started, Workflow};
use crate::runtime::{Event, RunReport, Value};

/// The format of [`RunSpec`] and [`Outcome`]; a worker refuses another.
pub const SPEC_FORMAT: u32 = 1;

/// Everything a run needs, fixed when it starts: the checked program
/// (the IR, versioned by `IR_VERSION`), the program inputs as they were
/// read where it started, the root's arguments. Paths are absolute, so
/// a worker started anywhere resolves them as the client did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunSpec {
    pub format: u32,
    pub program: Program,
    /// The task or action run.
    pub task: String,
    pub args: Vec<Value>,
    pub inputs: Vec<Value>,
    /// A generator standing in for every generator (`--replay`).
    pub replacement: Option<(String, Vec<Value>)>,
    pub workdir: PathBuf,
    pub worst_case_calls: Option<u64>,
    /// Where payloads over `inline_max` bytes go.
    pub blob_dir: String,
    pub inline_max: usize,
    /// How long an activity may go without a heartbeat before Temporal
    /// counts its worker lost.
    pub heartbeat_ms: u64,
    /// The run's seed, given to every generator call as a local run
    /// gives it (`run --seed`, a bench's trial).
    #[serde(default)]
    pub seed: u64,
    /// History events after which a run of the chain continues as new
    /// (`temporal::chain`); 0: the default.
    #[serde(default)]
    pub continue_after: u64,
}

impl RunSpec {
    /// The spec of a run prepared locally: the program with its files'
    /// paths made absolute.
    pub fn of(
        started: &Started<'_>,
        workflow: &Workflow,
        blob_dir: &Path,
        replacement: Option<&Replacement>,
    ) -> RunSpec {
        let mut program = workflow.program.clone();
        for f in program.files.iter_mut() {
            if !f.starts_with('<') {
                if let Ok(p) = std::path::absolute(&*f) {
                    *f = p.to_string_lossy().into_owned();
                }
            }
        }
        let workdir = std::path::absolute(&workflow.workdir).unwrap_or(workflow.workdir.clone());
        RunSpec {
            format: SPEC_FORMAT,
            program,
            task: started.name.clone(),
            args: started.args().to_vec(),
            inputs: started.run.inputs.clone(),
            replacement: replacement.map(|r| (r.generator.clone(), r.args.clone())),
            workdir,
            worst_case_calls: started.worst_case_calls,
            blob_dir: std::path::absolute(blob_dir)
                .unwrap_or(blob_dir.to_path_buf())
                .to_string_lossy()
                .into_owned(),
            inline_max: super::blob::INLINE_MAX,
            heartbeat_ms: 10_000,
            seed: started.run.seed,
            continue_after: 0,
        }
    }

    /// The program as a workflow to prepare runs of.
    pub fn workflow(&self) -> Workflow {
        Workflow {
            program: self.program.clone(),
            sources: Default::default(),
            warnings: Vec::new(),
            workdir: self.workdir.clone(),
            worst_case_calls: Vec::new(),
        }
    }

    pub fn callee(&self) -> Result<Callee, RunError> {
        match (
            self.program.task(&self.task),
            self.program.action(&self.task),
        ) {
            (Some(t), _) => Ok(Callee::Task(t)),
            (None, Some(a)) => Ok(Callee::Action(a)),
            (None, None) => Err(RunError(format!("there is no task `{}`", self.task))),
        }
    }

    pub fn replacement(&self) -> Option<Replacement> {
        self.replacement.as_ref().map(|(g, a)| Replacement {
            generator: g.clone(),
            args: a.clone(),
        })
    }

    /// A run of this spec in `engine`, ready to start.
    pub fn start<'w>(
        &self,
        engine: &Engine,
        workflow: &'w Workflow,
    ) -> Result<Started<'w>, RunError> {
        if self.format != SPEC_FORMAT {
            return Err(RunError(format!(
                "the run was started by a guardflow whose run format is {}, this worker's is {SPEC_FORMAT}",
                self.format
            )));
        }
        let callee = self.callee()?;
        let replacement = self.replacement();
        let mut run = engine.prepare_pinned(workflow, self.inputs.clone(), replacement.as_ref())?;
        run.seed = self.seed;
        Ok(Started::from_parts(
            run,
            callee,
            self.args.clone(),
            self.task.clone(),
            self.worst_case_calls,
        ))
    }
}

/// The workflow's argument: the spec (inline, or a blob when large) and
/// the blob that activities read it from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StartArg {
    pub spec: Carried,
    pub spec_blob: SpecRef,
    /// A run continued as new: the events of the chain so far
    /// (`temporal::chain`).
    #[serde(default)]
    pub before: Option<Carried>,
    /// A run continued as new: its judges' calls so far, by what their
    /// generator is asked as, so the chain numbers them as one run does.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub judge_numbers: BTreeMap<String, u32>,
    /// A run continued as new: what its judges asked so far (their calls
    /// count in the run's report as a local run's do).
    #[serde(default, skip_serializing_if = "Judged::is_empty")]
    pub judged: Judged,
}

/// Where activities read a run's spec: a blob, cached by hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpecRef {
    pub dir: String,
    pub sha256: String,
}

/// What a run came to: the report and every event, in order (the client
/// mirrors them into the local store).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Outcome {
    pub report: RunReport,
    pub events: Vec<Event>,
}

/// An activity's input: the run's spec and the call.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ActivityIn {
    pub spec: SpecRef,
    pub call: Carried,
    /// A guard's call: the run's judge calls so far, by what a generator
    /// is asked as (`action/guard`), so that a judge's calls go on with
    /// the run's numbers as they do in a local run.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub judge_numbers: BTreeMap<String, u32>,
}

/// An activity's answer and the events it produced where it ran.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ActivityOut<T> {
    pub answer: T,
    pub events: Vec<Event>,
    /// A guard's call: the judge calls it made, by what a generator was
    /// asked as (added to the run's numbers).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub judge_calls: BTreeMap<String, u32>,
    /// A guard's call: what its judges asked, as a local run adds it to
    /// the run's log (calls counted per action, by `ActionId`, and each
    /// call's record).
    #[serde(default, skip_serializing_if = "Judged::is_empty")]
    pub judged: Judged,
}

/// What a guard's judges asked in one evaluation.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Judged {
    pub calls: Vec<(u32, u64)>,
    pub records: Vec<crate::runtime::event::JudgeCall>,
}

impl Judged {
    /// `other` added to this.
    pub fn add(&mut self, other: &Judged) {
        self.calls.extend(other.calls.iter().copied());
        self.records.extend(other.records.iter().cloned());
    }

    pub fn is_empty(&self) -> bool {
        self.calls.is_empty() && self.records.is_empty()
    }

    /// Added to `run`'s log, as `Asking::settle` adds a local judge's.
    pub fn settle(self, run: &crate::runtime::interpreter::Run<'_>) {
        let mut log = run.log();
        for (action, n) in self.calls {
            if let Some(c) = log.calls.get_mut(action as usize) {
                c.generator_calls += n;
                c.judge_calls += n;
            }
        }
        log.judge_calls.extend(self.records);
    }
}

/// A page of a running workflow's events (its `events` query): those
/// from index `from`, at most [`PAGE_BYTES`] of them unless one alone is
/// larger, and how many the workflow has so far.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventsPage {
    pub from: u64,
    pub events: Vec<Event>,
    pub total: u64,
}

/// About how much JSON one page of events holds (a larger page goes to
/// the blob directory as any payload does).
pub const PAGE_BYTES: usize = 1 << 20;

impl EventsPage {
    /// The page of `all` from index `from`.
    pub fn of(all: &[Event], from: u64) -> EventsPage {
        let start = usize::try_from(from).unwrap_or(usize::MAX).min(all.len());
        let mut events = Vec::new();
        let mut bytes = 0usize;
        for e in &all[start..] {
            let size = serde_json::to_vec(e).map_or(0, |v| v.len());
            if !events.is_empty() && bytes + size > PAGE_BYTES {
                break;
            }
            bytes += size;
            events.push(e.clone());
        }
        EventsPage {
            from: start as u64,
            events,
            total: all.len() as u64,
        }
    }
}

static ENGINE: OnceLock<Engine> = OnceLock::new();

/// The engine a worker's workflows and activities bind externs with:
/// the one the worker was started with (the standard library and what a
/// host registered), else the standard library's.
pub fn engine() -> &'static Engine {
    ENGINE.get_or_init(Engine::new)
}

/// Sets the worker's engine (before its first run); false if one was set.
pub fn set_engine(engine: Engine) -> bool {
    ENGINE.set(engine).is_ok()
}

/// Events collected in order, shareable with an observer.
#[derive(Clone, Default)]
pub struct Collected(pub Arc<std::sync::Mutex<Vec<Event>>>);

impl Collected {
    pub fn observer(&self) -> crate::runtime::Observer {
        let c = self.0.clone();
        Arc::new(move |e: &Event| {
            c.lock().unwrap_or_else(|p| p.into_inner()).push(e.clone());
        })
    }

    pub fn push_all(&self, events: Vec<Event>) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(events);
    }

    /// The events so far from index `from` (see [`EventsPage`]), of the
    /// first `upto` of them (0: all).
    pub fn page(&self, from: u64, upto: u64) -> EventsPage {
        let all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let upto = match usize::try_from(upto) {
            Ok(0) | Err(_) => all.len(),
            Ok(n) => n.min(all.len()),
        };
        EventsPage::of(&all[..upto], from)
    }

    pub fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every event so far, kept.
    pub fn all(&self) -> Vec<Event> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn take(&self) -> Vec<Event> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(path: String) -> Event {
        Event::TaskStarted {
            path,
            task: "t".to_string(),
        }
    }

    #[test]
    fn a_page_starts_where_asked_and_holds_about_a_mebibyte() {
        let all: Vec<Event> = (0..5).map(|i| task(format!("p{i}"))).collect();
        let page = EventsPage::of(&all, 2);
        assert_eq!((page.from, page.total, page.events.len()), (2, 5, 3));
        assert!(matches!(&page.events[0], Event::TaskStarted { path, .. } if path == "p2"));
        // past the end: an empty page from the end
        let page = EventsPage::of(&all, 9);
        assert_eq!((page.from, page.events.len()), (5, 0));
        // large events: as many as fit, but always one
        let big: Vec<Event> = (0..3).map(|_| task("x".repeat(PAGE_BYTES / 2))).collect();
        assert_eq!(EventsPage::of(&big, 0).events.len(), 1);
        let huge = vec![task("x".repeat(PAGE_BYTES * 2))];
        assert_eq!(EventsPage::of(&huge, 0).events.len(), 1);
    }
}
