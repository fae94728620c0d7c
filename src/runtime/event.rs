//! The event stream: everything a run does, in order, for the progress
//! view, `--json`, the run store and embedding hosts.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::value::Value;

/// A guard verdict, as events and reports show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictKind {
    Pass,
    Fail,
    Fatal,
    /// The process stopped while the attempt's generator call was in
    /// flight: a resume records it so and calls the generator again,
    /// without using the retry budget.
    Interrupted,
}

/// One event of a run. `path` names the place in the decomposition:
/// `task/method/label/…`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    RunStarted {
        task: String,
        /// The checker's worst case, when it is known.
        worst_case_calls: Option<u64>,
    },
    TaskStarted {
        path: String,
        task: String,
    },
    MethodStarted {
        path: String,
        method: String,
    },
    /// A method's precondition did not hold; the next one is tried.
    MethodSkipped {
        path: String,
        method: String,
        reason: String,
    },
    MethodFailed {
        path: String,
        method: String,
        reason: String,
    },
    ActionStarted {
        path: String,
        action: String,
    },
    /// An attempt is about to call its generator. `occurrence` counts
    /// the runs of an action at `path` (escalation runs a path again);
    /// `index` is the attempt within that run, from 1; `attempt` the
    /// action's attempt number in the whole run.
    AttemptStarted {
        path: String,
        action: String,
        occurrence: u32,
        index: u32,
        attempt: u32,
        prompt: String,
        role: Option<String>,
    },
    /// The generator answered an attempt: recorded durably before the
    /// answer is converted and judged, so a stop after this point never
    /// calls the generator again for this attempt.
    Generated {
        path: String,
        action: String,
        attempt: u32,
        output: String,
        tokens: Option<u64>,
        prompt_tokens: Option<u64>,
        generate_ms: u64,
    },
    /// A generator call waits for something other than the model: its
    /// transport retries, a rate limit or a circuit breaker. Said once
    /// per wait, so nothing waits silently.
    Waiting {
        path: String,
        action: String,
        attempt: u32,
        /// The generator instance (provider) that waits.
        provider: String,
        what: String,
    },
    /// Which provider (generator instance) of a `fallback(…)` served an
    /// attempt; `skipped` the providers tried before it, each with its
    /// transport failure. Recorded before `Generated`; only for
    /// generators with more than one provider (the attempt's record
    /// names the provider in every case).
    Served {
        path: String,
        action: String,
        attempt: u32,
        provider: String,
        skipped: Vec<String>,
    },
    /// An effect action's effect is about to run `command`: recorded
    /// durably first, so a resume knows the effect may have run.
    EffectStarted {
        path: String,
        action: String,
        attempt: u32,
        command: String,
    },
    Attempt(Box<AttemptRecord>),
    /// A judge (a guard given a generator) asked its generator while it
    /// judged an attempt: the exact prompt and the answer or error.
    JudgeCall(Box<JudgeCall>),
    /// After `after` failed attempts, an upstream artifact is regenerated.
    /// `target` is the subtask's label; `target_path` the path its
    /// artifacts were committed at (the action's, or the task's that the
    /// subtask calls): what the escalation blames.
    Escalated {
        path: String,
        target: String,
        target_path: String,
        feedback: String,
    },
    /// An artifact was committed: its guard holds (the workflow state).
    Committed {
        path: String,
        action: String,
        artifact: Value,
    },
    ActionFailed {
        path: String,
        action: String,
        reason: String,
    },
    TaskFinished {
        path: String,
        task: String,
        success: bool,
    },
    RunFinished {
        success: bool,
        generator_calls: u64,
        guard_runs: u64,
        elapsed_ms: u64,
        /// Generator calls that were in flight when an earlier process of
        /// the run stopped, and were made again (not in `generator_calls`).
        repeated_calls: u64,
    },
}

/// One attempt of an action: exactly what was asked and what came of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptRecord {
    pub path: String,
    pub action: String,
    /// 1-based, per action in the run.
    pub attempt: u32,
    pub prompt: String,
    pub role: Option<String>,
    /// The generator's raw answer; `None` when it gave none.
    pub output: Option<String>,
    pub verdict: VerdictKind,
    pub feedback: String,
    /// Tokens generated (the completion), when the generator reports it.
    pub tokens: Option<u64>,
    /// Tokens of the prompt, when the generator reports it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<u64>,
    /// What an effect action's effect reported (its `Outcome`), when it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Value>,
    /// Whether the guard judged the answer (not when the generator gave
    /// none, the answer did not convert, or a precondition or the effect
    /// stopped it first).
    pub guarded: bool,
    pub generate_ms: u64,
    pub guard_ms: u64,
    /// The provider (generator instance) that answered, when one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
}

/// One call a judge made to its generator, as it judged an attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgeCall {
    /// The attempt judged: its action's path, action and number.
    pub path: String,
    pub action: String,
    pub attempt: u32,
    /// The judging guard and the generator it asked.
    pub guard: String,
    pub generator: String,
    /// 1-based, within this evaluation of the guard (1 + its retries at
    /// most).
    pub call: u32,
    pub prompt: String,
    pub role: Option<String>,
    /// The raw answer; `None` when the generator gave none.
    pub output: Option<String>,
    /// Why the generator gave no answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<u64>,
    pub generate_ms: u64,
}

/// Receives every event, in order, on the thread that caused it.
pub type Observer = Arc<dyn Fn(&Event) + Send + Sync>;
