//! Reading back what a run recorded, for the runtime to resume it.

use std::collections::HashMap;

use rusqlite::{params, Connection};

use crate::runtime::resume::{PriorAction, PriorAttempt};
use crate::runtime::{AttemptRecord, Resume, VerdictKind};

/// What the recorder and the runtime need to go on with a run.
pub struct Prior {
    pub resume: Resume,
    /// Sessions (processes) so far.
    pub sessions: i64,
    pub next_seq: i64,
    /// The (occurrence, index) of the latest attempt at each path.
    pub current: HashMap<String, (u32, u32)>,
}

pub fn load(conn: &Connection, id: &str) -> rusqlite::Result<Prior> {
    let sessions: i64 = conn.query_row(
        "SELECT coalesce(max(session), 0) FROM sessions WHERE run_id = ?1",
        [id],
        |r| r.get(0),
    )?;
    let mut next_seq = 1i64;
    for table in ["events", "attempts", "verdicts", "commits", "finishes"] {
        let max: i64 = conn.query_row(
            &format!("SELECT coalesce(max(seq), 0) FROM {table} WHERE run_id = ?1"),
            [id],
            |r| r.get(0),
        )?;
        next_seq = next_seq.max(max + 1);
    }
    let mut actions: HashMap<(String, u32), PriorAction> = HashMap::new();
    let mut attempt_numbers: HashMap<String, u32> = HashMap::new();
    let mut current: HashMap<String, (u32, u32)> = HashMap::new();
    let mut stmt = conn.prepare(
        "SELECT a.path, a.occurrence, a.idx, a.action, a.attempt, a.prompt, a.role,
                v.output, v.verdict, v.feedback, v.tokens, v.generate_ms, v.guard_ms,
                v.prompt_tokens, v.outcome
         FROM attempts a LEFT JOIN verdicts v
           ON v.run_id = a.run_id AND v.path = a.path AND v.occurrence = a.occurrence AND v.idx = a.idx
         WHERE a.run_id = ?1
         ORDER BY a.path, a.occurrence, a.idx",
    )?;
    let rows = stmt.query_map(params![id], |r| {
        let verdict: Option<String> = r.get(8)?;
        let record = AttemptRecord {
            path: r.get(0)?,
            action: r.get(3)?,
            attempt: r.get(4)?,
            prompt: r.get(5)?,
            role: r.get(6)?,
            output: r.get(7)?,
            verdict: match verdict.as_deref() {
                Some("pass") => VerdictKind::Pass,
                Some("fatal") => VerdictKind::Fatal,
                _ => VerdictKind::Fail,
            },
            feedback: r.get::<_, Option<String>>(9)?.unwrap_or_default(),
            tokens: r.get::<_, Option<i64>>(10)?.map(|t| t.max(0) as u64),
            generate_ms: r.get::<_, Option<i64>>(11)?.unwrap_or(0).max(0) as u64,
            guard_ms: r.get::<_, Option<i64>>(12)?.unwrap_or(0).max(0) as u64,
            prompt_tokens: r.get::<_, Option<i64>>(13)?.map(|t| t.max(0) as u64),
            outcome: r
                .get::<_, Option<String>>(14)?
                .and_then(|o| serde_json::from_str(&o).ok()),
        };
        let occurrence: u32 = r.get(1)?;
        let index: u32 = r.get(2)?;
        Ok((occurrence, index, record, verdict.is_some()))
    })?;
    for row in rows {
        let (occurrence, index, record, finished) = row?;
        let n = attempt_numbers.entry(record.action.clone()).or_insert(0);
        *n = (*n).max(record.attempt);
        let latest = current.entry(record.path.clone()).or_insert((0, 0));
        if (occurrence, index) > *latest {
            *latest = (occurrence, index);
        }
        let prior = actions
            .entry((record.path.clone(), occurrence))
            .or_insert_with(|| PriorAction {
                action: record.action.clone(),
                ..PriorAction::default()
            });
        prior.attempts.push(PriorAttempt { record, finished });
    }
    let mut stmt =
        conn.prepare("SELECT path, occurrence, action, artifact FROM commits WHERE run_id = ?1")?;
    let rows = stmt.query_map(params![id], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, u32>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
        ))
    })?;
    for row in rows {
        let (path, occurrence, action, artifact) = row?;
        let value = serde_json::from_str(&artifact).unwrap_or(serde_json::Value::String(artifact));
        actions
            .entry((path, occurrence))
            .or_insert_with(|| PriorAction {
                action,
                ..PriorAction::default()
            })
            .committed = Some(value);
    }
    Ok(Prior {
        resume: Resume {
            actions: std::sync::Mutex::new(actions),
            attempt_numbers,
        },
        sessions,
        next_seq,
        current,
    })
}
