//! What a run gives back: its outcome, the committed artifacts, every
//! attempt and the calls each action made.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::event::{AttemptRecord, JudgeCall};
use super::value::Value;

/// The result of running a task.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunReport {
    pub task: String,
    pub success: bool,
    /// Why the task failed, in words.
    pub failure: Option<String>,
    /// The task's result artifact (its `:result`), when it succeeded.
    pub result: Option<Value>,
    /// Every committed artifact, by path, in commit order.
    pub artifacts: Vec<(String, Value)>,
    /// Every attempt, in the order they finished.
    pub attempts: Vec<AttemptRecord>,
    /// Every call a judge made to its generator, in order (also counted
    /// in `generator_calls`).
    pub judge_calls: Vec<JudgeCall>,
    /// Per action: its generator calls and guard runs.
    pub actions: BTreeMap<String, ActionCalls>,
    /// Generator calls that count against the checker's bound: every
    /// call that answered an attempt, or was still in flight at the end.
    pub generator_calls: u64,
    /// Calls in flight when an earlier process of the run stopped, made
    /// again by the resume (not in `generator_calls`, outside the bound).
    pub repeated_calls: u64,
    pub guard_runs: u64,
    pub elapsed_ms: u64,
    /// The checker's worst-case generator calls for this task, if known.
    pub worst_case_calls: Option<u64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionCalls {
    /// Its generator's calls and its judges' (`judge_calls`).
    pub generator_calls: u64,
    /// Calls its judges made to their generators.
    pub judge_calls: u64,
    /// Calls repeated because the run stopped while they were in flight.
    pub repeated_calls: u64,
    pub guard_runs: u64,
    pub committed: u64,
    pub failed: u64,
}
