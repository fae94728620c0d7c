//! The runtime: executes a checked program.
//!
//! - `interpreter`: tasks, methods, orderings, fork-join, escalation;
//! - `action`: the action pair (generate → convert → guard, with retries);
//! - `refine`: rejected attempts kept across escalation restarts and
//!   method fallback;
//! - `guard`: guard expressions;
//! - `convert`: a generator's text to the declared type;
//! - `eval`: operands, prompt templates, feedback policies;
//! - `inputs`: program inputs and task arguments from outside;
//! - `judge`: the generators a judge asks, counted and recorded;
//! - `registry`: the interfaces that guards, generators and effects
//!   implement;
//! - `event`, `report`: what a run tells while it runs and after;
//! - `exec`: the seam where generator, guard and effect calls are made
//!   (here, or as Temporal activities);
//! - `sink`, `resume`: recording a run durably and resuming it;
//! - `children`: the process groups of the programs the process runs;
//! - `shared`: `:shared` resources, pooled across processes with `flock`.
//!
//! [`crate::engine`] is the public way in.

pub mod action;
pub mod children;
pub mod convert;
pub mod eval;
pub mod event;
pub mod exec;
pub mod guard;
pub mod inputs;
pub mod interpreter;
pub mod judge;
pub mod paths;
pub mod predicate;
pub mod redact;
pub mod refine;
pub mod registry;
pub mod report;
pub mod resume;
pub mod shared;
pub mod sink;
pub mod value;

pub use event::{AttemptRecord, Event, JudgeCall, Observer, VerdictKind};
pub use report::{ActionCalls, RunReport};
pub use resume::Resume;
pub use sink::Sink;
pub use value::{text_of, Value, Verdict};
