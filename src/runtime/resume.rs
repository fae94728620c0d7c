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

/// The feedback recorded for an attempt the run stopped in the middle of
/// (killed, power lost). Such an attempt counts against the budget but
/// gives the generator no feedback.
pub const INTERRUPTED: &str = "interrupted: the run stopped during this attempt";

/// One attempt recorded earlier.
#[derive(Debug, Clone)]
pub struct PriorAttempt {
    /// As it was recorded; `verdict` and `feedback` are meaningful only
    /// when `finished`.
    pub record: AttemptRecord,
    /// Whether its verdict was recorded.
    pub finished: bool,
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
}

impl Resume {
    /// The recorded run of `action` at `path`, occurrence `occurrence`;
    /// `None` when there is none or it was of another action (the
    /// workflow took another way).
    pub fn take(&self, path: &str, occurrence: u32, action: &str) -> Option<PriorAction> {
        let mut actions = self.actions.lock().unwrap_or_else(|e| e.into_inner());
        let prior = actions.remove(&(path.to_string(), occurrence))?;
        (prior.action == action).then_some(prior)
    }
}

impl PriorAttempt {
    /// Its verdict, or `None` when it was interrupted.
    pub fn verdict_kind(&self) -> Option<VerdictKind> {
        self.finished.then_some(self.record.verdict)
    }
}
