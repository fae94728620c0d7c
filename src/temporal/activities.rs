//! The activities: a provider's generator call, a host guard's call and
//! an effect's run, each made exactly as a local run makes it
//! (`Run::provider_call_here`, `guard::call_extern_here`,
//! `Run::effect_here`), in a run prepared from the spec (read once per
//! worker from its blob and cached by hash). A verdict, a generator's
//! error and an effect's refusal are answers, never activity failures,
//! so Temporal retries nothing guardflow decides. While a call runs the
//! activity heartbeats, so a lost worker is found within the heartbeat
//! timeout; when Temporal cancels the activity, the call's future is
//! dropped, which kills the programs it runs.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

use super::blob::{self, Carried};
use super::spec::{ActivityIn, ActivityOut, Collected, Judged, RunSpec, SpecRef};
use crate::check::ir::ActionId;
use crate::engine::{Engine, Workflow};
use crate::runtime::exec::{
    EffectInvocation, GenOutcome, GuardInvocation, ProviderCall, VerdictData,
};
use crate::runtime::judge::Site;
use crate::runtime::Value;
use crate::source::FileId;

/// How often a running call heartbeats.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(2);

/// The activities of one worker, with the engine it binds externs with.
pub struct Activities {
    engine: Engine,
    specs: Mutex<HashMap<String, Arc<Loaded>>>,
}

/// A run's spec, read from its blob.
struct Loaded {
    spec: RunSpec,
    workflow: Workflow,
}

impl Activities {
    pub fn new(engine: Engine) -> Activities {
        Activities {
            engine,
            specs: Mutex::new(HashMap::new()),
        }
    }

    fn load(&self, r: &SpecRef) -> Result<Arc<Loaded>, ActivityError> {
        if let Some(l) = self
            .specs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&r.sha256)
        {
            return Ok(l.clone());
        }
        let bytes = blob::get(std::path::Path::new(&r.dir), &r.sha256).map_err(err)?;
        let spec: RunSpec = serde_json::from_slice(&bytes)
            .map_err(|e| err(format!("the run's spec does not read: {e}")))?;
        let workflow = spec.workflow();
        let loaded = Arc::new(Loaded { spec, workflow });
        let mut specs = self.specs.lock().unwrap_or_else(|e| e.into_inner());
        // a worker serves a bounded number of runs' specs at once
        if specs.len() >= 64 {
            specs.clear();
        }
        specs.insert(r.sha256.clone(), loaded.clone());
        Ok(loaded)
    }

    /// Runs `call` in a run of the spec, heartbeating; its answer and the
    /// events it produced.
    async fn with_run<C, T, F>(
        &self,
        ctx: &ActivityContext,
        input: ActivityIn,
        call: F,
    ) -> Result<Carried, ActivityError>
    where
        C: serde::de::DeserializeOwned,
        T: serde::Serialize,
        F: for<'r> FnOnce(
            &'r crate::runtime::interpreter::Run<'r>,
            C,
        ) -> futures::future::BoxFuture<'r, T>,
    {
        let loaded = self.load(&input.spec)?;
        let c: C = input.call.open().map_err(err)?;
        let replacement = loaded.spec.replacement();
        let mut run = self
            .engine
            .prepare_pinned(
                &loaded.workflow,
                loaded.spec.inputs.clone(),
                replacement.as_ref(),
            )
            .map_err(|e| err(e.0))?;
        run.seed = loaded.spec.seed;
        // a judge numbers its calls on from the run's numbers so far
        let before = input.judge_numbers;
        *run.counters
            .judge_numbers
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = before.clone().into_iter().collect();
        let events = Collected::default();
        run.observer = Some(events.observer());
        let answer = heartbeating(ctx, call(&run, c)).await?;
        let judge_calls = run
            .counters
            .judge_numbers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter_map(|(k, n)| {
                let made = n.saturating_sub(before.get(k).copied().unwrap_or(0));
                (made > 0).then(|| (k.clone(), made))
            })
            .collect();
        // what its judges asked, from this call's own run
        let judged = {
            let log = run.log();
            Judged {
                calls: log
                    .calls
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| c.judge_calls > 0)
                    .map(|(i, c)| (i as u32, c.judge_calls))
                    .collect(),
                records: log.judge_calls.clone(),
            }
        };
        let out = ActivityOut {
            answer,
            events: events.take(),
            judge_calls,
            judged,
        };
        Carried::pack(&out, &loaded.spec.blob_dir, loaded.spec.inline_max).map_err(err)
    }
}

#[activities]
impl Activities {
    /// One provider's generator call (transport retries inside).
    #[activity]
    pub async fn generate(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: ActivityIn,
    ) -> Result<Carried, ActivityError> {
        self.with_run(&ctx, input, |run, call: ProviderCall| {
            Box::pin(async move { GenOutcome::from(run.provider_call_here(call).await) })
        })
        .await
    }

    /// One host guard's call.
    #[activity]
    pub async fn guard(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: ActivityIn,
    ) -> Result<Carried, ActivityError> {
        self.with_run(&ctx, input, |run, call: GuardInvocation| {
            Box::pin(async move {
                let site = call.site.map(|s| Site {
                    path: s.path,
                    action: ActionId(s.action),
                    attempt: s.attempt,
                });
                if call.guard as usize >= run.program.externs.len() {
                    return VerdictData::Fatal(format!("there is no guard #{}", call.guard));
                }
                let verdict = crate::runtime::guard::call_extern_here(
                    run,
                    call.guard as usize,
                    call.subject,
                    call.args,
                    site.as_ref(),
                    FileId(call.file),
                )
                .await;
                VerdictData::from(verdict)
            })
        })
        .await
    }

    /// One effect's run.
    #[activity]
    pub async fn effect(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: ActivityIn,
    ) -> Result<Carried, ActivityError> {
        self.with_run(&ctx, input, |run, call: EffectInvocation| {
            Box::pin(async move {
                let outcome: Result<Value, String> = run.effect_here(call).await;
                outcome
            })
        })
        .await
    }
}

/// Runs `f`, heartbeating every few seconds; dropped (and so stopped)
/// when Temporal cancels the activity.
async fn heartbeating<T>(
    ctx: &ActivityContext,
    f: impl Future<Output = T>,
) -> Result<T, ActivityError> {
    let mut f = std::pin::pin!(f);
    loop {
        tokio::select! {
            out = &mut f => return Ok(out),
            () = ctx.cancelled() => return Err(ActivityError::cancelled()),
            () = tokio::time::sleep(HEARTBEAT_EVERY) => {
                let _ = ctx.record_heartbeat(()).await;
            }
        }
    }
}

fn err(message: String) -> ActivityError {
    ActivityError::from(anyhow_error(message))
}

fn anyhow_error(message: String) -> std::io::Error {
    std::io::Error::other(message)
}
