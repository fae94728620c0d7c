//! Running checked workflows on Temporal (`--features temporal`,
//! docs/temporal.md).
//!
//! The interpreter runs as Temporal *workflow* code, replayed from
//! history: it decides only from verdicts, and every call it cannot
//! decide itself (a provider's generator call, a host guard, an effect)
//! goes through the execution seam (`runtime::exec`) to an *activity*.
//!
//! - `spec`: what a run is started with (the versioned IR, the pinned
//!   inputs, the root's arguments) and what it ends with;
//! - `blob`: payloads over the inline limit kept content-addressed
//!   outside the history;
//! - `workflow`: the workflow (the shared interpreter with a remote
//!   executor) and the activity options;
//! - `units`: `:shared` resources across runs, a unit held by a running
//!   child workflow;
//! - `chain`: continue-as-new, a long run's chain resumed from events;
//! - `activities`: the activities, each a call made as a local run
//!   makes it;
//! - `client`: starting a run, following it, mirroring its events into
//!   the local store; the worker; replaying histories.

pub mod activities;
pub mod blob;
pub mod chain;
pub mod client;
pub mod spec;
pub mod units;
pub mod workflow;

pub use client::{replay_history, run_worker, start_run, Target, WorkerConfig};
pub use spec::{Outcome, RunSpec};
