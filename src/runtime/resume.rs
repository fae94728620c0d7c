//! Resuming a run: what an earlier, interrupted process of the same run
//! recorded, replayed so that no committed artifact is generated again and
//! every recorded attempt counts against its action's retry budget.
//!
//! A run of an action is keyed by its path in the decomposition and its
//! occurrence there (the n-th time that path ran an action: escalation
//! runs a path again).

use std::collections::HashMap;
use std::sync::Mutex;

use super::event::{AttemptRecord, VerdictKind};
use super::value::Value;

/// The feedback recorded for an attempt whose generator call was in
/// flight when the run stopped (killed, power lost, a signal). Such an
/// attempt is made again: it does not use the retry budget and gives the
/// generator no feedback.
pub const INTERRUPTED: &str = "interrupted: the run stopped during this attempt";

/// What the user says happened to a non-`:idempotent` effect that was
/// running when the run stopped (`--effect-ran`, `--effect-failed`,
/// `--effect-did-not-run`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EffectAnswer {
    /// It ran to the end and did what it should: the attempt is accepted
    /// without running the effect again (its guard has no outcome to
    /// judge).
    Ran,
    /// It ran and failed (or did harm): the attempt is a fatal rejection,
    /// as a failed non-idempotent effect is.
    Failed,
    /// It did not run (or was undone): it runs again, from the recorded
    /// command, without a generator call.
    DidNotRun,
}

impl EffectAnswer {
    /// The command-line flag that gives this answer.
    pub fn flag(self) -> &'static str {
        match self {
            EffectAnswer::Ran => "--effect-ran",
            EffectAnswer::Failed => "--effect-failed",
            EffectAnswer::DidNotRun => "--effect-did-not-run",
        }
    }
}

/// A non-`:idempotent` effect that was running when the run stopped: the
/// resume cannot know whether it ran, so it asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingEffect {
    pub path: String,
    pub occurrence: u32,
    pub action: String,
    /// The command the effect was running.
    pub command: String,
}

/// One attempt recorded earlier.
#[derive(Debug, Clone)]
pub struct PriorAttempt {
    /// As it was recorded; `verdict` and `feedback` are meaningful only
    /// when `finished`.
    pub record: AttemptRecord,
    /// Whether its verdict was recorded.
    pub finished: bool,
    /// Whether the generator's answer was recorded (`record.output`):
    /// then the call is not made again.
    pub generated: bool,
    /// The command its effect started to run, if it did.
    pub effect_started: Option<String>,
}

/// One run of an action recorded earlier.
#[derive(Debug, Clone, Default)]
pub struct PriorAction {
    pub action: String,
    /// In order.
    pub attempts: Vec<PriorAttempt>,
    /// The artifact it committed, if it did.
    pub committed: Option<Value>,
}

/// Everything an earlier process of the run recorded.
#[derive(Debug, Default)]
pub struct Resume {
    /// By (path, occurrence); taken as the run reaches them.
    pub actions: Mutex<HashMap<(String, u32), PriorAction>>,
    /// The highest attempt number recorded, by action name: new attempts
    /// go on from there.
    pub attempt_numbers: HashMap<String, u32>,
    /// The attempt numbers of the generator calls a stop cut off (no
    /// answer recorded; each is made again under a new attempt number),
    /// by action name, ascending: [`Resume::uncut`] leaves them out.
    pub cut_calls: HashMap<String, Vec<u32>>,
    /// What the user said of effects that were running when the run
    /// stopped, by (path, occurrence).
    pub answers: HashMap<(String, u32), EffectAnswer>,
    /// Recorded runs of actions found where the workflow now runs
    /// another action: never replayed, still counted.
    pub stray: Mutex<Vec<PriorAction>>,
}

impl Resume {
    /// The recorded run of `action` at `path`, occurrence `occurrence`;
    /// `None` when there is none or it was of another action (the
    /// workflow took another way).
    pub fn take(&self, path: &str, occurrence: u32, action: &str) -> Option<PriorAction> {
        let mut actions = self.actions.lock().unwrap_or_else(|e| e.into_inner());
        let key = (path.to_string(), occurrence);
        let prior = actions.remove(&key)?;
        if prior.action != action {
            // kept, so that its calls still count in the report
            self.stray
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(prior);
            return None;
        }
        Some(prior)
    }
}

impl Resume {
    /// The number an uninterrupted run would have given the call of
    /// attempt `attempt` of `action`: the calls a stop cut off before it
    /// are left out (each was made again under a later number). A call
    /// made again in place of a cut one is numbered as the call it
    /// replaces (`attempt` is then the cut call's). A seeded generator
    /// (`simulate`) draws on it, so a resumed run draws what the run
    /// would have drawn without the stop.
    pub fn uncut(&self, action: &str, attempt: u32) -> u32 {
        let before = self
            .cut_calls
            .get(action)
            .map_or(0, |cut| cut.partition_point(|&n| n < attempt));
        attempt
            .saturating_sub(u32::try_from(before).unwrap_or(u32::MAX))
            .max(1)
    }

    /// The effects that were running when the run stopped, of actions
    /// that `idempotent` says are not `:idempotent`, in path order.
    pub fn pending_effects(&self, idempotent: impl Fn(&str) -> bool) -> Vec<PendingEffect> {
        let actions = self.actions.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<PendingEffect> = actions
            .iter()
            .filter(|(_, p)| p.committed.is_none() && !idempotent(&p.action))
            .flat_map(|((path, occurrence), p)| {
                p.attempts.iter().filter(|a| !a.finished).filter_map(|a| {
                    Some(PendingEffect {
                        path: path.clone(),
                        occurrence: *occurrence,
                        action: p.action.clone(),
                        command: a.effect_started.clone()?,
                    })
                })
            })
            .collect();
        out.sort_by(|a, b| (&a.path, a.occurrence).cmp(&(&b.path, b.occurrence)));
        out
    }

    /// The attempts recorded at actions the run has not reached (yet):
    /// by action name, (calls, repeated calls).
    pub fn unreached_calls(&self) -> HashMap<String, (u64, u64)> {
        let actions = self.actions.lock().unwrap_or_else(|e| e.into_inner());
        let stray = self.stray.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: HashMap<String, (u64, u64)> = HashMap::new();
        for p in actions.values().chain(stray.iter()) {
            for a in &p.attempts {
                let n = out.entry(p.action.clone()).or_default();
                if a.finished && a.record.verdict == VerdictKind::Interrupted {
                    n.1 += 1;
                } else {
                    n.0 += 1;
                }
            }
        }
        out
    }
}

impl PriorAttempt {
    /// Its verdict, or `None` when it was interrupted.
    pub fn verdict_kind(&self) -> Option<VerdictKind> {
        self.finished.then_some(self.record.verdict)
    }
}
