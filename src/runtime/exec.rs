//! The execution seam: everything stochastic or external that a run does
//! goes through here, so the same interpreter code runs in this process
//! or as Temporal workflow code (`crate::temporal`).
//!
//! The interpreter (`interpreter.rs`, `action.rs`, `guard.rs`) decides
//! what happens from verdicts only; the three things it cannot decide
//! itself are the calls below: one provider's generator call, one host
//! guard's call and one effect's run. A run without an [`Executor`]
//! makes them here, in this process, exactly as it always has (the
//! functions `*_here`); a run with one hands each call over as plain,
//! serializable data and awaits the answer. Time, timeouts and
//! retries of a call happen where the call is made (the generator's
//! timeout, the guard timeout, transport retries), so the interpreter
//! itself never reads a clock or sleeps to decide anything, and its
//! concurrency (fork-join, maps, `par`, `best-of`) is plain futures
//! polled in a deterministic order.

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::registry::{GenError, GenResponse};
use super::value::{Value, Verdict};

/// One generator call of one provider, at an attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderCall {
    /// The action, by `ActionId`.
    pub action: u32,
    /// The provider, by its place in the action's providers (the
    /// instance, then its `fallback(…)` instances; a test's `:with`).
    pub provider: usize,
    pub path: String,
    pub attempt: u32,
    /// `GenRequest::uncut_attempt`.
    #[serde(default)]
    pub uncut_attempt: u32,
    pub prompt: String,
    pub role: Option<String>,
    pub feedback: Option<String>,
}

/// One host guard's call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuardInvocation {
    /// The guard, by `ExternId`.
    pub guard: u32,
    pub subject: Value,
    pub args: Vec<Value>,
    /// The attempt it judges (a judge asks its generators there).
    pub site: Option<SiteRef>,
    /// The file the call is written in (its relative paths resolve
    /// there), by `FileId`.
    pub file: u32,
}

/// An action's attempt, as a judge's calls are counted at it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiteRef {
    pub path: String,
    pub action: u32,
    pub attempt: u32,
}

/// One effect's run on an accepted artifact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EffectInvocation {
    /// The effect kind, by `ExternId`.
    pub effect: u32,
    pub command: String,
    pub artifact: String,
    pub args: Vec<Value>,
    /// The action, its path and attempt (for the worker's messages).
    pub action: u32,
    pub path: String,
    pub attempt: u32,
}

/// A generator's answer or error, as data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum GenOutcome {
    Answer {
        text: String,
        tokens: Option<u64>,
        prompt_tokens: Option<u64>,
    },
    Error {
        message: String,
        fatal: bool,
        transport: bool,
    },
}

impl From<Result<GenResponse, GenError>> for GenOutcome {
    fn from(r: Result<GenResponse, GenError>) -> GenOutcome {
        match r {
            Ok(a) => GenOutcome::Answer {
                text: a.text,
                tokens: a.tokens,
                prompt_tokens: a.prompt_tokens,
            },
            Err(e) => GenOutcome::Error {
                message: e.message,
                fatal: e.fatal,
                transport: e.transport,
            },
        }
    }
}

impl From<GenOutcome> for Result<GenResponse, GenError> {
    fn from(o: GenOutcome) -> Self {
        match o {
            GenOutcome::Answer {
                text,
                tokens,
                prompt_tokens,
            } => Ok(GenResponse {
                text,
                tokens,
                prompt_tokens,
            }),
            GenOutcome::Error {
                message,
                fatal,
                transport,
            } => Err(GenError {
                message,
                fatal,
                transport,
            }),
        }
    }
}

/// A verdict as data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum VerdictData {
    Pass,
    Fail(String),
    Fatal(String),
}

impl From<Verdict> for VerdictData {
    fn from(v: Verdict) -> VerdictData {
        match v {
            Verdict::Pass => VerdictData::Pass,
            Verdict::Fail(f) => VerdictData::Fail(f),
            Verdict::Fatal(f) => VerdictData::Fatal(f),
        }
    }
}

impl From<VerdictData> for Verdict {
    fn from(v: VerdictData) -> Verdict {
        match v {
            VerdictData::Pass => Verdict::Pass,
            VerdictData::Fail(f) => Verdict::Fail(f),
            VerdictData::Fatal(f) => Verdict::Fatal(f),
        }
    }
}

/// Where a run's calls are made when not in this process. Each method
/// gets the call as data and answers with data; the events the call
/// produced where it ran (a judge's calls, a generator's waits) are the
/// executor's to pass on to the run's observer before it answers.
pub trait Executor: Send + Sync {
    fn generate(&self, call: ProviderCall) -> BoxFuture<'static, GenOutcome>;
    fn guard(&self, call: GuardInvocation) -> BoxFuture<'static, VerdictData>;
    /// `Err`: the effect did not run (a refusal starts with
    /// `registry::REFUSED`) or failed to start.
    fn effect(&self, call: EffectInvocation) -> BoxFuture<'static, Result<Value, String>>;

    /// Takes `amount` units of the `:shared` resource `name` (a pool of
    /// `size`) from a pool the executor keeps across runs (on Temporal:
    /// one unit workflow per unit, `temporal::units`); the units are
    /// released when the returned value is dropped. `None`: the executor
    /// keeps no such pool, and the run takes them as a local run does
    /// (`runtime::shared`).
    fn shared_units(
        &self,
        _name: &str,
        _size: u64,
        _amount: u64,
    ) -> Option<BoxFuture<'static, Result<HeldUnits, String>>> {
        None
    }
}

/// Units of a `:shared` resource an executor took, released when dropped.
pub type HeldUnits = Box<dyn std::any::Any + Send + Sync>;
