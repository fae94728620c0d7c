//! Training data from the record: `export --sft` (accepted attempts that
//! no later escalation blamed) and `export --dpo` (chosen and rejected
//! answers of one run of an action). The selection rules are documented
//! in docs/store.md ("Training data"); this is the one place that
//! applies them.

use std::collections::{HashMap, HashSet};

use rusqlite::Connection;
use serde_json::{json, Value};

use super::journal::{self, Entry};
use super::{Store, StoreError};

impl Store {
    /// The accepted attempts of run `id` (all runs when `None`) as
    /// training pairs: the role and exact prompt, the accepted output, and
    /// the feedback of the rejected attempts before it. An attempt whose
    /// artifact a later escalation blamed is left out.
    pub fn sft_pairs(&self, id: Option<&str>) -> Result<Vec<Value>, StoreError> {
        if let Some(id) = id {
            self.run_meta(id)?;
        }
        let runs = read(self.connection(), id).map_err(|e| super::sqlite_error(self.path(), e))?;
        Ok(runs.iter().flat_map(Run::sft).collect())
    }

    /// Preference triples of run `id` (all runs when `None`): per run of
    /// an action (same run, path and occurrence, so the same inputs), the
    /// accepted answer against each answer the guard refused, unless a
    /// later escalation blamed the accepted one.
    pub fn dpo_triples(&self, id: Option<&str>) -> Result<Vec<Value>, StoreError> {
        if let Some(id) = id {
            self.run_meta(id)?;
        }
        let runs = read(self.connection(), id).map_err(|e| super::sqlite_error(self.path(), e))?;
        Ok(runs.iter().flat_map(Run::dpo).collect())
    }
}

/// One judged attempt.
#[derive(Debug, Clone)]
struct Judged {
    idx: i64,
    attempt: i64,
    action: String,
    prompt: String,
    role: Option<String>,
    output: Option<String>,
    verdict: String,
    feedback: String,
    guarded: Option<bool>,
}

/// A run of an action: its path and occurrence.
type Context = (String, i64);

/// What one run recorded that training data needs.
#[derive(Default)]
struct Run {
    id: String,
    /// Judged attempts per run of an action, in the order recorded.
    contexts: HashMap<Context, Vec<Judged>>,
    /// The passes, in the order recorded.
    passes: Vec<(Context, usize)>,
    /// Runs of actions whose artifact an escalation blamed.
    blamed: HashSet<Context>,
}

impl Run {
    fn is_blamed(&self, c: &Context) -> bool {
        self.blamed.contains(c)
    }

    fn sft(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for (context, i) in &self.passes {
            if self.is_blamed(context) {
                continue;
            }
            let attempts = &self.contexts[context];
            let pass = &attempts[*i];
            // the rejections before it in this run of the action, since
            // an earlier pass (a best-of round may pass twice)
            let from = attempts[..*i]
                .iter()
                .rposition(|a| a.verdict == "pass")
                .map_or(0, |p| p + 1);
            let before: Vec<&str> = attempts[from..*i]
                .iter()
                .map(|a| a.feedback.as_str())
                .collect();
            let mut messages = Vec::new();
            if let Some(role) = &pass.role {
                messages.push(json!({"role": "system", "content": role}));
            }
            messages.push(json!({"role": "user", "content": pass.prompt}));
            messages.push(
                json!({"role": "assistant", "content": pass.output.clone().unwrap_or_default()}),
            );
            out.push(json!({
                "messages": messages,
                "run": self.id,
                "path": context.0,
                "action": pass.action,
                "attempt": pass.attempt,
                "feedback": before,
            }));
        }
        out
    }

    fn dpo(&self) -> Vec<Value> {
        let mut out = Vec::new();
        let mut seen: HashSet<&Context> = HashSet::new();
        for (context, _) in &self.passes {
            if self.is_blamed(context) || !seen.insert(context) {
                continue;
            }
            let attempts = &self.contexts[context];
            // the accepted answer: the first pass in attempt order (a
            // best-of round's samples are numbered in sample order)
            let Some(chosen) = attempts
                .iter()
                .filter(|a| a.verdict == "pass")
                .min_by_key(|a| a.idx)
            else {
                continue;
            };
            let chosen_text = chosen.output.clone().unwrap_or_default();
            let Some(first) = attempts.iter().min_by_key(|a| a.idx) else {
                continue;
            };
            let mut prompt = Vec::new();
            if let Some(role) = &first.role {
                prompt.push(json!({"role": "system", "content": role}));
            }
            prompt.push(json!({"role": "user", "content": first.prompt}));
            let mut rejected: Vec<&Judged> = attempts
                .iter()
                .filter(|a| {
                    matches!(a.verdict.as_str(), "fail" | "fatal")
                        && a.guarded != Some(false)
                        && a.output.as_ref().is_some_and(|o| *o != chosen_text)
                })
                .collect();
            rejected.sort_by_key(|a| a.idx);
            let mut texts: HashSet<&str> = HashSet::new();
            for r in rejected {
                let text = r.output.as_deref().unwrap_or_default();
                if !texts.insert(text) {
                    continue;
                }
                out.push(json!({
                    "prompt": prompt,
                    "chosen": [{"role": "assistant", "content": chosen_text}],
                    "rejected": [{"role": "assistant", "content": text}],
                    "run": self.id,
                    "path": context.0,
                    "occurrence": context.1,
                    "action": chosen.action,
                    "chosen_attempt": chosen.attempt,
                    "rejected_attempt": r.attempt,
                    "rejected_feedback": r.feedback,
                }));
            }
        }
        out
    }
}

/// Where an escalation's target committed: the path the event names, or
/// (recorded before it did) the target's label beside the escalating
/// subtask.
fn target_path(e: &Entry) -> Option<String> {
    let body: Value = serde_json::from_str(e.body.as_deref()?).ok()?;
    if let Some(p) = body.get("target_path").and_then(Value::as_str) {
        return Some(p.to_string());
    }
    let target = body.get("target").and_then(Value::as_str)?;
    let path = e.path.as_deref()?;
    Some(match path.rsplit_once('/') {
        Some((scope, _)) => format!("{scope}/{target}"),
        None => target.to_string(),
    })
}

/// Is `path` the target's own path or below it (a task's actions)?
fn under(path: &str, target: &str) -> bool {
    path == target
        || path
            .strip_prefix(target)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Every run's judged attempts, passes and blamed artifacts, in run order.
fn read(conn: &Connection, id: Option<&str>) -> rusqlite::Result<Vec<Run>> {
    struct Started {
        action: String,
        attempt: i64,
        prompt: String,
        role: Option<String>,
    }
    let mut runs: Vec<Run> = Vec::new();
    let mut started: HashMap<(String, i64, i64), Started> = HashMap::new();
    let mut committed: Vec<Context> = Vec::new();
    // escalations per escalating path: in this session, and the most any
    // earlier session recorded (a resume replays a run's escalations, and
    // records them again)
    let mut session = i64::MIN;
    let mut escalations: HashMap<String, u32> = HashMap::new();
    let mut earlier: HashMap<String, u32> = HashMap::new();
    journal::for_each(conn, id, |e| {
        if runs.last().is_none_or(|r| r.id != e.run_id) {
            runs.push(Run {
                id: e.run_id.clone(),
                ..Run::default()
            });
            started.clear();
            committed.clear();
            escalations.clear();
            earlier.clear();
            session = e.session;
        }
        if e.session != session {
            session = e.session;
            for (path, n) in escalations.drain() {
                let most = earlier.entry(path).or_default();
                *most = (*most).max(n);
            }
        }
        let Some(run) = runs.last_mut() else {
            return Ok(());
        };
        match e.kind.as_str() {
            "attempt_started" => {
                started.insert(
                    e.attempt_key(),
                    Started {
                        action: e.action.clone().unwrap_or_default(),
                        attempt: e.attempt.unwrap_or(0),
                        prompt: e.prompt.clone().unwrap_or_default(),
                        role: e.role.clone(),
                    },
                );
            }
            "attempt" => {
                let key = e.attempt_key();
                let verdict = e.verdict.clone().unwrap_or_default();
                if verdict == "interrupted"
                    || e.feedback.as_deref() == Some(crate::runtime::resume::INTERRUPTED)
                {
                    return Ok(());
                }
                let Some(s) = started.get(&key) else {
                    return Ok(());
                };
                let context = (key.0.clone(), key.1);
                let attempts = run.contexts.entry(context.clone()).or_default();
                attempts.push(Judged {
                    idx: key.2,
                    attempt: s.attempt,
                    action: s.action.clone(),
                    prompt: s.prompt.clone(),
                    role: s.role.clone(),
                    output: e.output.clone(),
                    verdict: verdict.clone(),
                    feedback: e.feedback.clone().unwrap_or_default(),
                    guarded: e.guarded,
                });
                if verdict == "pass" {
                    run.passes.push((context, attempts.len() - 1));
                }
            }
            "committed" => {
                committed.push((
                    e.path.clone().unwrap_or_default(),
                    e.occurrence.unwrap_or(0),
                ));
            }
            "escalated" => {
                let path = e.path.clone().unwrap_or_default();
                let n = escalations.entry(path.clone()).or_default();
                *n += 1;
                if *n <= earlier.get(&path).copied().unwrap_or(0) {
                    return Ok(()); // a resume replaying an escalation
                }
                if let Some(target) = target_path(&e) {
                    for c in &committed {
                        if under(&c.0, &target) {
                            run.blamed.insert(c.clone());
                        }
                    }
                }
            }
            _ => {}
        }
        Ok(())
    })?;
    Ok(runs)
}
