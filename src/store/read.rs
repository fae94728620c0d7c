//! Reading a store: the runs, one run's events in order, per-action
//! statistics (training pairs: `training.rs`).

use std::collections::{BTreeMap, HashMap, HashSet};

use rusqlite::Connection;
use serde::Serialize;
use serde_json::{json, Value};

use super::journal::{self, Entry};
use super::lock::RunLock;
use super::outcomes::{RunFilter, SelectedRun};
use super::{Store, StoreError};

/// One line of `guardflow runs`.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub id: String,
    pub workflow: String,
    pub task: String,
    pub started_ms: i64,
    /// `succeeded`, `failed`, `running` or `interrupted`.
    pub status: String,
    /// Generator calls recorded (attempts started), but for those made
    /// again because the run stopped while they were in flight.
    pub calls: u64,
    /// Calls in flight when the run stopped, made again by a resume.
    pub repeated_calls: u64,
    pub worst_case_calls: Option<u64>,
    /// From the start to the latest record.
    pub duration_ms: i64,
    /// Processes that wrote the run (more than one: it was resumed).
    pub sessions: u64,
    /// The `:shared` resources it holds now, one entry per unit.
    pub holds: Vec<String>,
}

impl Store {
    fn read_err(&self, e: rusqlite::Error) -> StoreError {
        super::sqlite_error(self.path(), e)
    }

    /// Every run, oldest first.
    pub fn runs(&self) -> Result<Vec<RunSummary>, StoreError> {
        let conn = self.connection();
        let mut stmt = conn
            .prepare(
                // a run's events are the keys from number × 2^32: the
                // latest is the last key, its end (if any) near it
                "SELECT r.id, r.workflow, r.task, r.started_ms, r.worst_case_calls,
                    (SELECT count(*) FROM journal j
                     WHERE j.key BETWEEN r.number * 4294967296 AND r.number * 4294967296 + 4294967295
                       AND j.kind = 'attempt_started'),
                    (SELECT j.success FROM journal j
                     WHERE j.key BETWEEN r.number * 4294967296 AND r.number * 4294967296 + 4294967295
                       AND j.kind = 'run_finished'
                     ORDER BY j.key DESC LIMIT 1),
                    max(r.started_ms, coalesce(
                        (SELECT j.at_ms FROM journal j
                         WHERE j.key BETWEEN r.number * 4294967296 AND r.number * 4294967296 + 4294967295
                         ORDER BY j.key DESC LIMIT 1), 0)),
                    (SELECT count(*) FROM sessions s WHERE s.run_id = r.id),
                    (SELECT count(*) FROM journal j
                     WHERE j.key BETWEEN r.number * 4294967296 AND r.number * 4294967296 + 4294967295
                       AND j.kind = 'attempt' AND j.verdict = 'interrupted')
                 FROM runs r ORDER BY r.started_ms, r.number",
            )
            .map_err(|e| self.read_err(e))?;
        let held = crate::runtime::shared::held(&super::lock::resources_dir(self.path()));
        let rows = stmt
            .query_map([], |r| {
                let id: String = r.get(0)?;
                let finished: Option<bool> = r.get(6)?;
                let (calls, repeated): (i64, i64) = (r.get(5)?, r.get(9)?);
                let (started_ms, last): (i64, i64) = (r.get(3)?, r.get(7)?);
                let worst: Option<i64> = r.get(4)?;
                let sessions: i64 = r.get(8)?;
                let status = match finished {
                    Some(true) => "succeeded",
                    Some(false) => "failed",
                    None if RunLock::held(self.path(), &id) => "running",
                    None => "interrupted",
                };
                Ok(RunSummary {
                    status: status.to_string(),
                    workflow: r.get(1)?,
                    task: r.get(2)?,
                    started_ms,
                    calls: (calls - repeated).max(0) as u64,
                    repeated_calls: repeated.max(0) as u64,
                    worst_case_calls: worst.map(|w| w.max(0) as u64),
                    duration_ms: last - started_ms,
                    sessions: sessions.max(0) as u64,
                    holds: held
                        .iter()
                        .filter(|h| h.run == id)
                        .map(|h| h.resource.clone())
                        .collect(),
                    id,
                })
            })
            .map_err(|e| self.read_err(e))?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row.map_err(|e| self.read_err(e))?);
        }
        Ok(out)
    }

    /// Every event of run `id` in order, as `guardflow run --json` prints
    /// them, with `seq`, `session` and `at_ms` added.
    pub fn events(&self, id: &str) -> Result<Vec<Value>, StoreError> {
        self.run_meta(id)?;
        events(self.connection(), id).map_err(|e| self.read_err(e))
    }

    /// Per action name, across every run: finished attempts and passes.
    pub fn stats(&self) -> Result<BTreeMap<String, ActionStats>, StoreError> {
        let runs = self.select_runs(&RunFilter::default())?;
        stats(self.connection(), &runs).map_err(|e| self.read_err(e))
    }

    /// Per action name, across `runs` (from [`Store::select_runs`]).
    pub fn stats_of(
        &self,
        runs: &[SelectedRun],
    ) -> Result<BTreeMap<String, ActionStats>, StoreError> {
        stats(self.connection(), runs).map_err(|e| self.read_err(e))
    }
}

/// What a verdict row needs of the attempt it judges.
struct Started {
    action: String,
    attempt: i64,
    prompt: String,
    role: Option<String>,
}

impl Started {
    fn of(e: &Entry) -> Started {
        Started {
            action: e.action.clone().unwrap_or_default(),
            attempt: e.attempt.unwrap_or(0),
            prompt: e.prompt.clone().unwrap_or_default(),
            role: e.role.clone(),
        }
    }
}

fn events(conn: &Connection, id: &str) -> rusqlite::Result<Vec<Value>> {
    let mut out = Vec::new();
    let mut repeated = 0u64;
    let mut started: HashMap<(String, i64, i64), Started> = HashMap::new();
    journal::for_each(conn, Some(id), |e| {
        let mut v = match e.kind.as_str() {
            "attempt_started" => {
                let s = Started::of(&e);
                let v = json!({
                    "event": "attempt_started",
                    "path": e.path,
                    "action": s.action,
                    "occurrence": e.occurrence,
                    "index": e.idx,
                    "attempt": s.attempt,
                    "prompt": s.prompt,
                    "role": s.role,
                });
                started.insert(e.attempt_key(), s);
                v
            }
            "generated" => {
                let s = started.get(&e.attempt_key());
                json!({
                    "event": "generated",
                    "path": e.path,
                    "action": s.map(|s| &s.action),
                    "attempt": s.map(|s| s.attempt),
                    "output": e.output,
                    "tokens": e.tokens,
                    "prompt_tokens": e.prompt_tokens,
                    "generate_ms": e.generate_ms,
                })
            }
            "attempt" => {
                let s = started.get(&e.attempt_key());
                repeated += u64::from(e.verdict.as_deref() == Some("interrupted"));
                json!({
                    "event": "attempt",
                    "path": e.path,
                    "action": s.map(|s| &s.action),
                    "attempt": s.map(|s| s.attempt),
                    "prompt": s.map(|s| &s.prompt),
                    "role": s.and_then(|s| s.role.as_ref()),
                    "output": e.output,
                    "verdict": e.verdict,
                    "feedback": e.feedback,
                    "tokens": e.tokens,
                    "prompt_tokens": e.prompt_tokens,
                    "generate_ms": e.generate_ms,
                    "guard_ms": e.guard_ms,
                    "guarded": e.guarded,
                    "outcome": e.outcome.as_deref().map(|o| serde_json::from_str::<Value>(o).unwrap_or(Value::String(o.to_string()))),
                    "output_hash": e.output_hash,
                })
            }
            "committed" => {
                let artifact = e.artifact.unwrap_or_default();
                json!({
                    "event": "committed",
                    "path": e.path,
                    "action": e.action,
                    "artifact": serde_json::from_str::<Value>(&artifact).unwrap_or(Value::String(artifact)),
                    "artifact_hash": e.artifact_hash,
                    "occurrence": e.occurrence,
                })
            }
            "run_finished" => json!({
                "event": "run_finished",
                "success": e.success,
                "generator_calls": e.generator_calls,
                "guard_runs": e.guard_runs,
                "elapsed_ms": e.elapsed_ms,
                "repeated_calls": repeated,
            }),
            _ => {
                let body = e.body.unwrap_or_default();
                serde_json::from_str(&body).unwrap_or(Value::String(body))
            }
        };
        if let Some(o) = v.as_object_mut() {
            o.insert("seq".into(), e.seq.into());
            o.insert("session".into(), e.session.into());
            o.insert("at_ms".into(), e.at_ms.into());
        }
        out.push(v);
        Ok(())
    })?;
    Ok(out)
}

/// What the store knows of one action's success.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct ActionStats {
    /// Attempts with a verdict (interrupted ones are not counted).
    pub attempts: u64,
    pub passed: u64,
    /// Runs of the action that recorded a verdict.
    pub runs: u64,
}

impl ActionStats {
    /// The measured probability that one attempt passes.
    pub fn p(&self) -> Option<f64> {
        (self.attempts > 0).then(|| self.passed as f64 / self.attempts as f64)
    }
}

fn stats(
    conn: &Connection,
    runs: &[SelectedRun],
) -> rusqlite::Result<BTreeMap<String, ActionStats>> {
    let mut out: BTreeMap<String, ActionStats> = BTreeMap::new();
    for run in runs {
        let mut started: HashMap<(String, i64, i64), String> = HashMap::new();
        // the runs of an action that recorded a verdict, in this run
        let mut judged: HashSet<(String, i64)> = HashSet::new();
        journal::for_each(conn, Some(&run.id), |e| {
            match e.kind.as_str() {
                "attempt_started" => {
                    started.insert(e.attempt_key(), e.action.unwrap_or_default());
                }
                "attempt"
                    if e.feedback.as_deref() != Some(crate::runtime::resume::INTERRUPTED)
                        && e.verdict.as_deref() != Some("interrupted") =>
                {
                    let key = e.attempt_key();
                    let Some(action) = started.get(&key) else {
                        return Ok(());
                    };
                    let stats = out.entry(action.clone()).or_default();
                    stats.attempts += 1;
                    stats.passed += u64::from(e.verdict.as_deref() == Some("pass"));
                    if judged.insert((key.0, key.1)) {
                        stats.runs += 1;
                    }
                }
                _ => {}
            }
            Ok(())
        })?;
    }
    Ok(out)
}
