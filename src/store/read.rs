//! Reading a store: the runs, one run's events in order, training pairs,
//! per-action statistics.

use std::collections::BTreeMap;

use rusqlite::{params, Connection};
use serde::Serialize;
use serde_json::{json, Value};

use super::lock::RunLock;
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
    /// Generator calls recorded (attempts started).
    pub calls: u64,
    pub worst_case_calls: Option<u64>,
    /// From the start to the latest record.
    pub duration_ms: i64,
    /// Processes that wrote the run (more than one: it was resumed).
    pub sessions: u64,
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
                "SELECT r.id, r.workflow, r.task, r.started_ms, r.worst_case_calls,
                    (SELECT count(*) FROM attempts a WHERE a.run_id = r.id),
                    (SELECT success FROM finishes f WHERE f.run_id = r.id ORDER BY seq DESC LIMIT 1),
                    max(r.started_ms,
                        coalesce((SELECT max(at_ms) FROM events e WHERE e.run_id = r.id), 0),
                        coalesce((SELECT max(at_ms) FROM verdicts v WHERE v.run_id = r.id), 0),
                        coalesce((SELECT max(at_ms) FROM finishes f WHERE f.run_id = r.id), 0)),
                    (SELECT count(*) FROM sessions s WHERE s.run_id = r.id)
                 FROM runs r ORDER BY r.started_ms, r.rowid",
            )
            .map_err(|e| self.read_err(e))?;
        let rows = stmt
            .query_map([], |r| {
                let finished: Option<bool> = r.get(6)?;
                let id: String = r.get(0)?;
                Ok((
                    id,
                    finished,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(7)?,
                    r.get(8)?,
                ))
            })
            .map_err(|e| self.read_err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, finished, workflow, task, started_ms, worst, calls, last, sessions): (
                String,
                Option<bool>,
                String,
                String,
                i64,
                Option<i64>,
                i64,
                i64,
                i64,
            ) = row.map_err(|e| self.read_err(e))?;
            let status = match finished {
                Some(true) => "succeeded",
                Some(false) => "failed",
                None if RunLock::held(self.path(), &id) => "running",
                None => "interrupted",
            };
            out.push(RunSummary {
                status: status.to_string(),
                id,
                workflow,
                task,
                started_ms,
                calls: calls.max(0) as u64,
                worst_case_calls: worst.map(|w| w.max(0) as u64),
                duration_ms: last - started_ms,
                sessions: sessions.max(0) as u64,
            });
        }
        Ok(out)
    }

    /// Every event of run `id` in order, as `guardflow run --json` prints
    /// them, with `seq`, `session` and `at_ms` added.
    pub fn events(&self, id: &str) -> Result<Vec<Value>, StoreError> {
        self.run_meta(id)?;
        events(self.connection(), id).map_err(|e| self.read_err(e))
    }

    /// The accepted attempts of run `id` (all runs when `None`) as
    /// training pairs: the role and exact prompt, the accepted output, and
    /// the feedback of the rejected attempts before it.
    pub fn sft_pairs(&self, id: Option<&str>) -> Result<Vec<Value>, StoreError> {
        if let Some(id) = id {
            self.run_meta(id)?;
        }
        sft_pairs(self.connection(), id).map_err(|e| self.read_err(e))
    }

    /// Per action name, across every run: finished attempts and passes.
    pub fn stats(&self) -> Result<BTreeMap<String, ActionStats>, StoreError> {
        stats(self.connection()).map_err(|e| self.read_err(e))
    }
}

fn events(conn: &Connection, id: &str) -> rusqlite::Result<Vec<Value>> {
    let mut out: Vec<(i64, Value)> = Vec::new();
    let stamp = |mut v: Value, seq: i64, session: i64, at: i64| {
        if let Some(o) = v.as_object_mut() {
            o.insert("seq".into(), seq.into());
            o.insert("session".into(), session.into());
            o.insert("at_ms".into(), at.into());
        }
        (seq, v)
    };
    let mut stmt =
        conn.prepare("SELECT seq, session, at_ms, body FROM events WHERE run_id = ?1")?;
    for row in stmt.query_map([id], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, String>(3)?,
        ))
    })? {
        let (seq, session, at, body) = row?;
        let v = serde_json::from_str(&body).unwrap_or(Value::String(body));
        out.push(stamp(v, seq, session, at));
    }
    let mut stmt = conn.prepare(
        "SELECT seq, session, at_ms, path, action, occurrence, idx, attempt, prompt, role
         FROM attempts WHERE run_id = ?1",
    )?;
    for row in stmt.query_map([id], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
            json!({
                "event": "attempt_started",
                "path": r.get::<_, String>(3)?,
                "action": r.get::<_, String>(4)?,
                "occurrence": r.get::<_, i64>(5)?,
                "index": r.get::<_, i64>(6)?,
                "attempt": r.get::<_, i64>(7)?,
                "prompt": r.get::<_, String>(8)?,
                "role": r.get::<_, Option<String>>(9)?,
            }),
        ))
    })? {
        let (seq, session, at, v) = row?;
        out.push(stamp(v, seq, session, at));
    }
    let mut stmt = conn.prepare(
        "SELECT v.seq, v.session, v.at_ms, v.path, a.action, a.attempt, a.prompt, a.role,
                v.output, v.verdict, v.feedback, v.tokens, v.generate_ms, v.guard_ms, v.output_hash
         FROM verdicts v LEFT JOIN attempts a
           ON a.run_id = v.run_id AND a.path = v.path AND a.occurrence = v.occurrence AND a.idx = v.idx
         WHERE v.run_id = ?1",
    )?;
    for row in stmt.query_map([id], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
            json!({
                "event": "attempt",
                "path": r.get::<_, String>(3)?,
                "action": r.get::<_, Option<String>>(4)?,
                "attempt": r.get::<_, Option<i64>>(5)?,
                "prompt": r.get::<_, Option<String>>(6)?,
                "role": r.get::<_, Option<String>>(7)?,
                "output": r.get::<_, Option<String>>(8)?,
                "verdict": r.get::<_, String>(9)?,
                "feedback": r.get::<_, String>(10)?,
                "tokens": r.get::<_, Option<i64>>(11)?,
                "generate_ms": r.get::<_, i64>(12)?,
                "guard_ms": r.get::<_, i64>(13)?,
                "output_hash": r.get::<_, Option<String>>(14)?,
            }),
        ))
    })? {
        let (seq, session, at, v) = row?;
        out.push(stamp(v, seq, session, at));
    }
    let mut stmt = conn.prepare(
        "SELECT seq, session, at_ms, path, action, artifact, artifact_hash, occurrence
         FROM commits WHERE run_id = ?1",
    )?;
    for row in stmt.query_map([id], |r| {
        let artifact: String = r.get(5)?;
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
            json!({
                "event": "committed",
                "path": r.get::<_, String>(3)?,
                "action": r.get::<_, String>(4)?,
                "artifact": serde_json::from_str::<Value>(&artifact).unwrap_or(Value::String(artifact)),
                "artifact_hash": r.get::<_, String>(6)?,
                "occurrence": r.get::<_, i64>(7)?,
            }),
        ))
    })? {
        let (seq, session, at, v) = row?;
        out.push(stamp(v, seq, session, at));
    }
    let mut stmt = conn.prepare(
        "SELECT seq, session, at_ms, success, generator_calls, guard_runs, elapsed_ms
         FROM finishes WHERE run_id = ?1",
    )?;
    for row in stmt.query_map([id], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
            json!({
                "event": "run_finished",
                "success": r.get::<_, bool>(3)?,
                "generator_calls": r.get::<_, i64>(4)?,
                "guard_runs": r.get::<_, i64>(5)?,
                "elapsed_ms": r.get::<_, i64>(6)?,
            }),
        ))
    })? {
        let (seq, session, at, v) = row?;
        out.push(stamp(v, seq, session, at));
    }
    out.sort_by_key(|(seq, _)| *seq);
    Ok(out.into_iter().map(|(_, v)| v).collect())
}

fn sft_pairs(conn: &Connection, id: Option<&str>) -> rusqlite::Result<Vec<Value>> {
    let mut stmt = conn.prepare(
        "SELECT a.run_id, a.path, a.occurrence, a.idx, a.action, a.attempt, a.prompt, a.role,
                v.output, v.verdict, v.feedback
         FROM attempts a JOIN verdicts v
           ON v.run_id = a.run_id AND v.path = a.path AND v.occurrence = a.occurrence AND v.idx = a.idx
         WHERE ?1 IS NULL OR a.run_id = ?1
         ORDER BY a.run_id, v.seq",
    )?;
    let rows = stmt.query_map(params![id], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, String>(4)?,
            r.get::<_, i64>(5)?,
            r.get::<_, String>(6)?,
            r.get::<_, Option<String>>(7)?,
            r.get::<_, Option<String>>(8)?,
            r.get::<_, String>(9)?,
            r.get::<_, String>(10)?,
        ))
    })?;
    // rejected feedback so far, per run of an action
    let mut feedback: BTreeMap<(String, String, i64), Vec<String>> = BTreeMap::new();
    let mut out = Vec::new();
    for row in rows {
        let (run, path, occurrence, action, attempt, prompt, role, output, verdict, fb) = row?;
        let key = (run.clone(), path.clone(), occurrence);
        if verdict != "pass" {
            if fb != crate::runtime::resume::INTERRUPTED {
                feedback.entry(key).or_default().push(fb);
            }
            continue;
        }
        let before = feedback.remove(&key).unwrap_or_default();
        let mut messages = Vec::new();
        if let Some(role) = role {
            messages.push(json!({"role": "system", "content": role}));
        }
        messages.push(json!({"role": "user", "content": prompt}));
        messages.push(json!({"role": "assistant", "content": output.unwrap_or_default()}));
        out.push(json!({
            "messages": messages,
            "run": run,
            "path": path,
            "action": action,
            "attempt": attempt,
            "feedback": before,
        }));
    }
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

fn stats(conn: &Connection) -> rusqlite::Result<BTreeMap<String, ActionStats>> {
    let mut stmt = conn.prepare(
        "SELECT a.action, count(*), sum(v.verdict = 'pass'),
                count(DISTINCT a.run_id || char(0) || a.path || char(0) || a.occurrence)
         FROM attempts a JOIN verdicts v
           ON v.run_id = a.run_id AND v.path = a.path AND v.occurrence = a.occurrence AND v.idx = a.idx
         WHERE v.feedback != ?1
         GROUP BY a.action ORDER BY a.action",
    )?;
    let rows = stmt.query_map([crate::runtime::resume::INTERRUPTED], |r| {
        Ok((
            r.get::<_, String>(0)?,
            ActionStats {
                attempts: r.get::<_, i64>(1)?.max(0) as u64,
                passed: r.get::<_, Option<i64>>(2)?.unwrap_or(0).max(0) as u64,
                runs: r.get::<_, i64>(3)?.max(0) as u64,
            },
        ))
    })?;
    rows.collect()
}
