//! What the recorded runs of one workflow measured, for
//! `check --bounds --from-runs`: per attempt (passes of judged attempts),
//! per call of an action (did it commit in the end) and per run of a task
//! (did it succeed). Which runs a reading counts ([`RunFilter`]): those of
//! one workflow file, of one bench (arm, model), the latest; also
//! `guardflow stats`'s.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::journal;
use super::{Store, StoreError};

/// Successes among outcomes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Outcomes {
    pub n: u64,
    pub succeeded: u64,
}

impl Outcomes {
    fn add(&mut self, success: bool) {
        self.n += 1;
        self.succeeded += u64::from(success);
    }

    /// The measured success, `succeeded / n`.
    pub fn rate(&self) -> Option<f64> {
        (self.n > 0).then(|| self.succeeded as f64 / self.n as f64)
    }
}

/// One action, measured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ActionMeasure {
    /// Judged attempts (interrupted ones not counted) and their passes,
    /// in every run of the workflow.
    pub attempts: u64,
    pub passed: u64,
    /// Calls of the action (one place of one finished run, with every
    /// run of it there: retries, escalations) that ended: committed in the
    /// end, or failed.
    pub calls: Outcomes,
}

impl ActionMeasure {
    /// The measured probability that one attempt passes.
    pub fn p(&self) -> Option<f64> {
        (self.attempts > 0).then(|| self.passed as f64 / self.attempts as f64)
    }
}

/// What the runs of one workflow measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Measured {
    /// Runs of the workflow in the store, and those that finished.
    pub runs: u64,
    pub finished: u64,
    /// Per task run: finished runs and successes.
    pub tasks: BTreeMap<String, Outcomes>,
    pub actions: BTreeMap<String, ActionMeasure>,
}

/// Where an action was called in one run: how its latest run there ended.
struct Place {
    action: String,
    /// Some attempt there was judged.
    judged: bool,
    /// `Some(true)` committed, `Some(false)` failed or escalated, `None`
    /// running (or cancelled: not counted).
    last: Option<bool>,
    occurrence: i64,
}

/// Which runs a reading counts; every run by default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunFilter {
    /// Only runs of this workflow file, however it was named (the file
    /// the run recorded, compared as a canonical path).
    pub workflow: Option<PathBuf>,
    /// Only the trials of this bench (`RunMeta::bench`)…
    pub bench: Option<String>,
    /// …of this arm…
    pub arm: Option<String>,
    /// …with this model (`""`: the workflow's own bindings).
    pub model: Option<String>,
    /// Only runs started at or after this time (ms since the Unix epoch).
    pub since_ms: Option<i64>,
    /// Only the latest this many runs of those the rest lets through.
    pub last: Option<u64>,
}

/// A run a filter let through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectedRun {
    pub id: String,
    /// The workflow file, as the run recorded it.
    pub workflow: String,
    /// SHA-256 of the workflow's text when the run started (a bench
    /// trial's: of the text with the generators the bench declared).
    pub workflow_hash: String,
    pub task: String,
    /// Whether it is a bench's trial.
    pub bench: bool,
}

/// The same file, however it was named.
pub fn same_file(recorded: &str, workflow: &Path) -> bool {
    let want = std::fs::canonicalize(workflow)
        .unwrap_or_else(|_| std::path::absolute(workflow).unwrap_or(workflow.to_path_buf()));
    let got = Path::new(recorded);
    std::fs::canonicalize(got).map_or(got == want, |g| g == want)
}

impl RunFilter {
    /// The runs of `workflow`.
    pub fn workflow(workflow: &Path) -> RunFilter {
        RunFilter {
            workflow: Some(workflow.to_path_buf()),
            ..RunFilter::default()
        }
    }

    /// Whether a run (its file, start and configuration) passes every
    /// filter but `last`.
    fn admits(&self, file: &str, started_ms: i64, config: &str) -> bool {
        if self.since_ms.is_some_and(|since| started_ms < since) {
            return false;
        }
        if self
            .workflow
            .as_deref()
            .is_some_and(|w| !same_file(file, w))
        {
            return false;
        }
        if self.bench.is_none() && self.arm.is_none() && self.model.is_none() {
            return true;
        }
        // a configuration this guardflow cannot read is no trial of it
        let Some(tag) = serde_json::from_str::<super::RunMeta>(config)
            .ok()
            .and_then(|m| m.bench)
        else {
            return false;
        };
        let is = |want: &Option<String>, got: &str| want.as_deref().is_none_or(|w| w == got);
        is(&self.bench, &tag.id) && is(&self.arm, &tag.arm) && is(&self.model, &tag.model)
    }
}

impl Store {
    /// The runs `filter` lets through, in the order they started.
    pub fn select_runs(&self, filter: &RunFilter) -> Result<Vec<SelectedRun>, StoreError> {
        let err = |e| super::sqlite_error(self.path(), e);
        let mut out: Vec<SelectedRun> = Vec::new();
        let mut stmt = self
            .connection()
            .prepare(
                "SELECT id, workflow, task, started_ms, config, \
                 coalesce(json_extract(config, '$.workflow_hash'), ''), \
                 json_extract(config, '$.bench.id') IS NOT NULL FROM runs ORDER BY number",
            )
            .map_err(err)?;
        let mut rows = stmt.query([]).map_err(err)?;
        while let Some(r) = rows.next().map_err(err)? {
            let (file, started_ms, config): (String, i64, String) = (
                r.get(1).map_err(err)?,
                r.get(3).map_err(err)?,
                r.get(4).map_err(err)?,
            );
            if !filter.admits(&file, started_ms, &config) {
                continue;
            }
            out.push(SelectedRun {
                id: r.get(0).map_err(err)?,
                workflow: file,
                workflow_hash: r.get(5).map_err(err)?,
                task: r.get(2).map_err(err)?,
                bench: r.get(6).map_err(err)?,
            });
        }
        if let Some(last) = filter.last {
            let keep = usize::try_from(last).unwrap_or(usize::MAX);
            let from = out.len().saturating_sub(keep);
            out.drain(..from);
        }
        Ok(out)
    }

    /// What the runs of `workflow` (the file they ran, however named)
    /// measured.
    pub fn measure(&self, workflow: &Path) -> Result<Measured, StoreError> {
        self.measure_runs(&RunFilter::workflow(workflow))
    }

    /// What the runs `filter` lets through measured.
    pub fn measure_runs(&self, filter: &RunFilter) -> Result<Measured, StoreError> {
        let conn = self.connection();
        let err = |e| super::sqlite_error(self.path(), e);
        let mut out = Measured::default();
        for SelectedRun { id, task, .. } in self.select_runs(filter)? {
            out.runs += 1;
            let mut started: HashMap<(String, i64, i64), String> = HashMap::new();
            let mut places: HashMap<String, Place> = HashMap::new();
            let mut finished: Option<bool> = None;
            journal::for_each(conn, Some(&id), |e| {
                let path = e.path.clone().unwrap_or_default();
                match e.kind.as_str() {
                    "attempt_started" => {
                        let action = e.action.clone().unwrap_or_default();
                        let occurrence = e.occurrence.unwrap_or(0);
                        let place = places.entry(path).or_insert(Place {
                            action: action.clone(),
                            judged: false,
                            last: None,
                            occurrence,
                        });
                        if occurrence > place.occurrence {
                            place.occurrence = occurrence;
                            place.last = None;
                        }
                        started.insert(e.attempt_key(), action);
                    }
                    "attempt" => {
                        if e.verdict.as_deref() == Some("interrupted")
                            || e.feedback.as_deref() == Some(crate::runtime::resume::INTERRUPTED)
                        {
                            return Ok(());
                        }
                        let Some(action) = started.get(&e.attempt_key()) else {
                            return Ok(());
                        };
                        let m = out.actions.entry(action.clone()).or_default();
                        m.attempts += 1;
                        m.passed += u64::from(e.verdict.as_deref() == Some("pass"));
                        if let Some(place) = places.get_mut(&path) {
                            place.judged = true;
                        }
                    }
                    "committed" => {
                        if let Some(place) = places.get_mut(&path) {
                            place.last = Some(true);
                        }
                    }
                    "action_failed" | "escalated" => {
                        if let Some(place) = places.get_mut(&path) {
                            place.last = Some(false);
                        }
                    }
                    "run_finished" => finished = e.success,
                    _ => {}
                }
                Ok(())
            })
            .map_err(err)?;
            let Some(success) = finished else {
                continue; // running or interrupted: no outcome
            };
            out.finished += 1;
            out.tasks.entry(task).or_default().add(success);
            for place in places.into_values() {
                if let (true, Some(ok)) = (place.judged, place.last) {
                    out.actions.entry(place.action).or_default().calls.add(ok);
                }
            }
        }
        Ok(out)
    }
}
