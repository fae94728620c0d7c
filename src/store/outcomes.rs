//! What the recorded runs of one workflow measured, for
//! `check --bounds --from-runs`: per attempt (passes of judged attempts),
//! per call of an action (did it commit in the end) and per run of a task
//! (did it succeed).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

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

/// The same file, however it was named.
fn same_file(recorded: &str, workflow: &Path) -> bool {
    let want = std::fs::canonicalize(workflow)
        .unwrap_or_else(|_| std::path::absolute(workflow).unwrap_or(workflow.to_path_buf()));
    let got = Path::new(recorded);
    std::fs::canonicalize(got).map_or(got == want, |g| g == want)
}

impl Store {
    /// What the runs of `workflow` (the file they ran, however named)
    /// measured.
    pub fn measure(&self, workflow: &Path) -> Result<Measured, StoreError> {
        let conn = self.connection();
        let err = |e| super::sqlite_error(self.path(), e);
        let runs: Vec<(String, String, String)> = conn
            .prepare("SELECT id, workflow, task FROM runs ORDER BY number")
            .and_then(|mut s| {
                s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect::<rusqlite::Result<_>>()
            })
            .map_err(err)?;
        let mut out = Measured::default();
        for (id, file, task) in runs {
            if !same_file(&file, workflow) {
                continue;
            }
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
