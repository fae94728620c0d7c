//! `:shared` resources across runs on Temporal: one pool per namespace
//! and resource name, whatever run, worker or machine takes from it.
//!
//! Unit `k` of resource `NAME` is held by a running *unit workflow*
//! ([`GuardflowUnit`]) with the id `guardflow-unit-NAME-k`. Temporal lets
//! at most one running workflow have an id in a namespace, so starting it
//! is taking the unit, and a start refused because that id runs means
//! the unit is busy. A run starts its units as *child* workflows with
//! the parent-close policy `Terminate`: the server ends them whenever
//! the run ends, however it ends (completed, failed, cancelled,
//! terminated, timed out, continued as new), so a unit is never held by
//! a run that is gone. A run releases a unit by cancelling its child;
//! the unit workflow then completes.
//!
//! As locally, a `:uses` takes its units of a resource all at once or
//! none: units started while others are busy are released again, and the
//! run waits on a durable timer (from [`FIRST_WAIT`], doubling to
//! [`LONGEST_WAIT`]) before it tries again. All of it is workflow code:
//! child starts and timers are commands in the run's history, so a
//! replay takes the same units in the same order.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    ChildWorkflowCancellationType, ChildWorkflowOptions, ParentClosePolicy, StartedChildWorkflow,
    WorkflowContext, WorkflowResult,
};

use super::workflow::GuardflowRun;

/// The first wait before trying busy units again.
pub const FIRST_WAIT: Duration = Duration::from_millis(500);

/// The longest wait between tries.
pub const LONGEST_WAIT: Duration = Duration::from_secs(8);

/// The workflow id of unit `slot` (from 1) of the `:shared` resource
/// `name`.
pub fn unit_id(name: &str, slot: u64) -> String {
    format!("guardflow-unit-{name}-{slot}")
}

/// What a unit workflow is started with: which unit, and who holds it
/// (shown by `temporal workflow describe`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UnitArg {
    pub resource: String,
    pub slot: u64,
    /// The holding run's workflow id.
    pub holder: String,
}

/// A held unit of a `:shared` resource: runs until its holder cancels it
/// (releasing it) or the server ends it with its holder.
#[workflow]
#[derive(Default)]
pub struct GuardflowUnit;

#[workflow_methods]
impl GuardflowUnit {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, arg: UnitArg) -> WorkflowResult<UnitArg> {
        ctx.cancelled().await;
        Ok(arg)
    }
}

/// Units a run asks for: `amount` of the pool `name` of `size` units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ask {
    pub name: String,
    pub size: u64,
    pub amount: u64,
}

/// The units a run holds, by the key its interpreter's request got; keys
/// released before their units were taken.
#[derive(Default)]
pub struct Holdings {
    held: RefCell<HashMap<u64, Vec<StartedChildWorkflow<guardflow_unit::Run>>>>,
    released: RefCell<HashSet<u64>>,
    /// Set while the run drains before continuing as new: a waiting
    /// acquisition gives up (the next run of the chain asks again).
    pub draining: Cell<bool>,
}

impl Holdings {
    /// Releases the units held under `key` (now, or as soon as they are
    /// taken).
    pub fn release(&self, key: u64) {
        match self.held.borrow_mut().remove(&key) {
            Some(units) => cancel_all(units),
            None => {
                self.released.borrow_mut().insert(key);
            }
        }
    }
}

fn cancel_all(units: Vec<StartedChildWorkflow<guardflow_unit::Run>>) {
    for u in units {
        u.cancel("released".to_string());
    }
}

/// Takes `ask`'s units for the run `holder` under `key`: `Some(Ok)` once
/// held, `Some(Err)` when a unit cannot be started for another reason
/// than being busy, `None` when the run began draining while waiting.
pub async fn take(
    ctx: &WorkflowContext<GuardflowRun>,
    holdings: &Rc<Holdings>,
    ask: &Ask,
    key: u64,
    holder: &str,
) -> Option<Result<(), String>> {
    let mut wait = FIRST_WAIT;
    loop {
        if holdings.draining.get() {
            return None;
        }
        let mut got = Vec::new();
        for slot in 1..=ask.size {
            if got.len() as u64 >= ask.amount {
                break;
            }
            let options = ChildWorkflowOptions::builder()
                .workflow_id(unit_id(&ask.name, slot))
                .parent_close_policy(ParentClosePolicy::Terminate)
                .cancel_type(ChildWorkflowCancellationType::TryCancel)
                .build();
            let arg = UnitArg {
                resource: ask.name.clone(),
                slot,
                holder: holder.to_string(),
            };
            match ctx
                .start_child_workflow(GuardflowUnit::run, arg, options)
                .await
            {
                Ok(started) => got.push(started),
                // held by another run
                Err(temporalio_sdk::ChildWorkflowStartError::StartFailed { .. }) => {}
                Err(e) => {
                    cancel_all(got);
                    return Some(Err(format!(
                        "the shared resource `{}`: cannot take unit {slot}: {e}",
                        ask.name
                    )));
                }
            }
        }
        if got.len() as u64 >= ask.amount {
            if holdings.released.borrow_mut().remove(&key) {
                cancel_all(got);
            } else {
                holdings.held.borrow_mut().insert(key, got);
            }
            return Some(Ok(()));
        }
        // none kept while waiting: two waiters never hold part each
        cancel_all(got);
        let _ = ctx.timer(wait).await;
        wait = (wait * 2).min(LONGEST_WAIT);
    }
}
