//! Reading back what a run recorded, for the runtime to resume it.

use std::collections::HashMap;

use rusqlite::Connection;

use super::journal;

use crate::runtime::resume::{PriorAction, PriorAttempt, INTERRUPTED};
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
    let mut actions: HashMap<(String, u32), PriorAction> = HashMap::new();
    let mut attempt_numbers: HashMap<String, u32> = HashMap::new();
    let mut current: HashMap<String, (u32, u32)> = HashMap::new();
    // each attempt's place in its action's list, by (path, occurrence, index)
    let mut started: HashMap<(String, i64, i64), usize> = HashMap::new();
    let number = |n: Option<i64>| n.unwrap_or(0).clamp(0, i64::from(u32::MAX)) as u32;
    let count = |n: Option<i64>| n.map(|t| t.max(0) as u64);
    journal::for_each(conn, Some(id), |e| {
        next_seq = next_seq.max(e.seq + 1);
        match e.kind.as_str() {
            "attempt_started" => {
                let key = e.attempt_key();
                let (occurrence, index) = (number(e.occurrence), number(e.idx));
                let record = AttemptRecord {
                    path: key.0.clone(),
                    action: e.action.unwrap_or_default(),
                    attempt: number(e.attempt),
                    prompt: e.prompt.unwrap_or_default(),
                    role: e.role,
                    output: None,
                    verdict: VerdictKind::Fail,
                    feedback: String::new(),
                    tokens: None,
                    prompt_tokens: None,
                    outcome: None,
                    guarded: false,
                    generate_ms: 0,
                    guard_ms: 0,
                    provider: None,
                };
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
                started.insert(key, prior.attempts.len());
                prior.attempts.push(PriorAttempt {
                    record,
                    finished: false,
                    generated: false,
                    effect_started: None,
                });
            }
            "generated" | "effect_started" => {
                let key = e.attempt_key();
                let Some(at) = actions
                    .get_mut(&(key.0.clone(), number(e.occurrence)))
                    .and_then(|prior| started.get(&key).and_then(|&i| prior.attempts.get_mut(i)))
                else {
                    return Ok(());
                };
                if e.kind == "generated" {
                    let r = &mut at.record;
                    r.output = e.output;
                    r.tokens = count(e.tokens);
                    r.prompt_tokens = count(e.prompt_tokens);
                    r.generate_ms = count(e.generate_ms).unwrap_or(0);
                    at.generated = true;
                } else {
                    let body: serde_json::Value = e
                        .body
                        .as_deref()
                        .and_then(|b| serde_json::from_str(b).ok())
                        .unwrap_or_default();
                    let command = body.get("command").and_then(|c| c.as_str()).unwrap_or("");
                    at.effect_started = Some(command.to_string());
                }
            }
            "attempt" => {
                let key = e.attempt_key();
                let Some(prior) = actions.get_mut(&(key.0.clone(), number(e.occurrence))) else {
                    return Ok(());
                };
                let Some(at) = started.get(&key).and_then(|&i| prior.attempts.get_mut(i)) else {
                    return Ok(());
                };
                let r = &mut at.record;
                if e.output.is_some() {
                    r.output = e.output.clone();
                }
                r.verdict = match e.verdict.as_deref() {
                    Some("pass") => VerdictKind::Pass,
                    Some("fatal") => VerdictKind::Fatal,
                    Some("interrupted") => VerdictKind::Interrupted,
                    // how format 3 stores recorded an interruption
                    _ if e.feedback.as_deref() == Some(INTERRUPTED) && e.output.is_none() => {
                        VerdictKind::Interrupted
                    }
                    _ => VerdictKind::Fail,
                };
                r.feedback = e.feedback.unwrap_or_default();
                r.tokens = count(e.tokens);
                r.prompt_tokens = count(e.prompt_tokens);
                r.generate_ms = count(e.generate_ms).unwrap_or(0);
                r.guard_ms = count(e.guard_ms).unwrap_or(0);
                r.outcome = e.outcome.and_then(|o| serde_json::from_str(&o).ok());
                r.guarded = e.guarded.unwrap_or(false);
                at.finished = true;
            }
            "committed" => {
                let artifact = e.artifact.unwrap_or_default();
                let value =
                    serde_json::from_str(&artifact).unwrap_or(serde_json::Value::String(artifact));
                actions
                    .entry((e.path.unwrap_or_default(), number(e.occurrence)))
                    .or_insert_with(|| PriorAction {
                        action: e.action.unwrap_or_default(),
                        ..PriorAction::default()
                    })
                    .committed = Some(value);
            }
            _ => {}
        }
        Ok(())
    })?;
    // a call with no answer recorded, interrupted then or since, is made
    // again
    let mut cut_calls: HashMap<String, Vec<u32>> = HashMap::new();
    for prior in actions.values() {
        let cut = prior.attempts.iter().filter(|a| match a.finished {
            true => a.record.verdict == VerdictKind::Interrupted,
            false => !a.generated,
        });
        for a in cut {
            cut_calls
                .entry(prior.action.clone())
                .or_default()
                .push(a.record.attempt);
        }
    }
    for numbers in cut_calls.values_mut() {
        numbers.sort_unstable();
    }
    Ok(Prior {
        resume: Resume {
            actions: std::sync::Mutex::new(actions),
            attempt_numbers,
            cut_calls,
            ..Resume::default()
        },
        sessions,
        next_seq,
        current,
    })
}
