//! A bench's trials read back (`guardflow bench`): the runs tagged with
//! the bench's id (`RunMeta::bench`), how each ended and its attempts.

use std::collections::HashMap;

use rusqlite::Connection;

use super::{journal, BenchTag, RunLock, RunMeta, Store, StoreError};

/// One trial as the store has it.
#[derive(Debug, Clone)]
pub struct Trial {
    pub run_id: String,
    /// What the run was started with; `bench` is set.
    pub meta: RunMeta,
    /// `Some(success)` once the run finished; `None` while it has not
    /// (interrupted: a bench started again resumes it).
    pub success: Option<bool>,
    /// Generator calls of the run, judges' included (its finish).
    pub generator_calls: u64,
    /// Its judged attempts, in the order they were judged (attempts
    /// interrupted by a stop and made again are left out).
    pub attempts: Vec<Attempt>,
}

/// One judged attempt of an action.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub action: String,
    /// 1-based, per action in the run.
    pub attempt: u32,
    /// `pass`, `fail` or `fatal`.
    pub verdict: String,
    pub feedback: Option<String>,
    pub tokens: u64,
    pub prompt_tokens: u64,
}

impl Store {
    /// Every trial of bench `id`, in the order the runs started; empty
    /// when there is no such bench.
    pub fn bench_trials(&self, id: &str) -> Result<Vec<Trial>, StoreError> {
        trials(self.connection(), id).map_err(|e| super::sqlite_error(self.path(), e))
    }

    /// The ids of the benches in the store, each once, in the order they
    /// started.
    pub fn benches(&self) -> Result<Vec<String>, StoreError> {
        (|| {
            let mut stmt = self.connection().prepare(
                "SELECT json_extract(config, '$.bench.id') AS b FROM runs \
                 WHERE b IS NOT NULL GROUP BY b ORDER BY min(number)",
            )?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            rows.collect::<rusqlite::Result<Vec<String>>>()
        })()
        .map_err(|e| super::sqlite_error(self.path(), e))
    }
}

/// How far a bench has come: its trials (runs), how many finished, and
/// how many are running now (unfinished, their writer alive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    pub trials: u64,
    pub finished: u64,
    pub running: u64,
}

impl Store {
    /// Bench `id`'s [`Progress`], without reading the trials' events
    /// (what `guardflow serve` polls while a bench runs).
    pub fn bench_progress(&self, id: &str) -> Result<Progress, StoreError> {
        (|| {
            let mut stmt = self.connection().prepare(
                "SELECT r.id, EXISTS(SELECT 1 FROM journal j \
                   WHERE j.key BETWEEN r.number * 4294967296 AND r.number * 4294967296 + 4294967295 \
                   AND j.kind = 'run_finished') \
                 FROM runs r WHERE json_extract(r.config, '$.bench.id') = ?1",
            )?;
            let rows = stmt.query_map([id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, bool>(1)?)))?;
            let mut p = Progress::default();
            for row in rows {
                let (run, finished) = row?;
                p.trials += 1;
                if finished {
                    p.finished += 1;
                } else if RunLock::held(self.path(), &run) {
                    p.running += 1;
                }
            }
            Ok(p)
        })()
        .map_err(|e: rusqlite::Error| super::sqlite_error(self.path(), e))
    }

    /// The bench tag of every run that has one, by run id (the runs list
    /// of `guardflow serve`).
    pub fn bench_tags(&self) -> Result<HashMap<String, BenchTag>, StoreError> {
        (|| {
            let mut stmt = self.connection().prepare(
                "SELECT id, json_extract(config, '$.bench') FROM runs \
                 WHERE json_extract(config, '$.bench.id') IS NOT NULL",
            )?;
            let rows =
                stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
            let mut out = HashMap::new();
            for row in rows {
                let (run, tag) = row?;
                // a tag this guardflow cannot read is left out
                if let Ok(tag) = serde_json::from_str::<BenchTag>(&tag) {
                    out.insert(run, tag);
                }
            }
            Ok(out)
        })()
        .map_err(|e: rusqlite::Error| super::sqlite_error(self.path(), e))
    }
}

/// One bench in a store, for `guardflow bench --list`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct BenchSummary {
    pub id: String,
    /// The workflow file its first trial ran, and the task.
    pub workflow: String,
    pub task: String,
    /// Its arms and models, in the order their first trials started.
    pub arms: Vec<String>,
    pub models: Vec<String>,
    /// Trials recorded, those that finished, and those that succeeded.
    pub trials: u64,
    pub finished: u64,
    pub succeeded: u64,
}

impl Store {
    /// Every bench in the store with its trial counts, in the order the
    /// benches started.
    pub fn bench_summaries(&self) -> Result<Vec<BenchSummary>, StoreError> {
        summaries(self.connection()).map_err(|e| super::sqlite_error(self.path(), e))
    }
}

fn summaries(conn: &Connection) -> rusqlite::Result<Vec<BenchSummary>> {
    let mut stmt = conn.prepare(
        // a run's events are the keys from number × 2^32: its end (if
        // any) is near the last
        "SELECT json_extract(r.config, '$.bench.id') AS b, \
                coalesce(json_extract(r.config, '$.bench.arm'), ''), \
                coalesce(json_extract(r.config, '$.bench.model'), ''), \
                r.workflow, r.task, \
                (SELECT j.success FROM journal j \
                 WHERE j.key BETWEEN r.number * 4294967296 AND r.number * 4294967296 + 4294967295 \
                   AND j.kind = 'run_finished' ORDER BY j.key DESC LIMIT 1) \
         FROM runs r WHERE b IS NOT NULL ORDER BY r.number",
    )?;
    let mut rows = stmt.query([])?;
    let mut out: Vec<BenchSummary> = Vec::new();
    while let Some(r) = rows.next()? {
        let id: String = r.get(0)?;
        let (arm, model): (String, String) = (r.get(1)?, r.get(2)?);
        let finished: Option<bool> = r.get(5)?;
        let at = match out.iter().position(|b| b.id == id) {
            Some(i) => i,
            None => {
                out.push(BenchSummary {
                    id,
                    workflow: r.get(3)?,
                    task: r.get(4)?,
                    ..BenchSummary::default()
                });
                out.len() - 1
            }
        };
        let b = &mut out[at];
        if !b.arms.contains(&arm) {
            b.arms.push(arm);
        }
        if !b.models.contains(&model) {
            b.models.push(model);
        }
        b.trials += 1;
        b.finished += u64::from(finished.is_some());
        b.succeeded += u64::from(finished == Some(true));
    }
    Ok(out)
}

fn trials(conn: &Connection, id: &str) -> rusqlite::Result<Vec<Trial>> {
    let mut stmt = conn.prepare(
        "SELECT id, config FROM runs WHERE json_extract(config, '$.bench.id') = ?1 \
         ORDER BY number",
    )?;
    let runs: Vec<(String, String)> = stmt
        .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut out = Vec::with_capacity(runs.len());
    for (run_id, config) in runs {
        // a configuration this guardflow cannot read is not a trial of it
        let Ok(meta) = serde_json::from_str::<RunMeta>(&config) else {
            continue;
        };
        let mut trial = Trial {
            run_id: run_id.clone(),
            meta,
            success: None,
            generator_calls: 0,
            attempts: Vec::new(),
        };
        let mut started: HashMap<(String, i64, i64), (String, u32)> = HashMap::new();
        journal::for_each(conn, Some(&run_id), |e| {
            match e.kind.as_str() {
                "attempt_started" => {
                    let attempt = e.attempt.unwrap_or(0).clamp(0, i64::from(u32::MAX)) as u32;
                    started.insert(
                        e.attempt_key(),
                        (e.action.clone().unwrap_or_default(), attempt),
                    );
                }
                "attempt" if e.verdict.as_deref() != Some("interrupted") => {
                    let (action, attempt) =
                        started.get(&e.attempt_key()).cloned().unwrap_or_default();
                    trial.attempts.push(Attempt {
                        action,
                        attempt,
                        verdict: e.verdict.clone().unwrap_or_default(),
                        feedback: e.feedback.clone(),
                        tokens: e.tokens.unwrap_or(0).max(0) as u64,
                        prompt_tokens: e.prompt_tokens.unwrap_or(0).max(0) as u64,
                    });
                }
                "run_finished" => {
                    trial.success = e.success;
                    trial.generator_calls = e.generator_calls.unwrap_or(0).max(0) as u64;
                }
                _ => {}
            }
            Ok(())
        })?;
        out.push(trial);
    }
    Ok(out)
}
