//! The workflow: the shared interpreter, its calls made as activities.
//!
//! The interpreter runs as it does locally (`Started::execute`), with a
//! [`Remote`] executor: each generator, guard or effect call becomes a
//! request on a channel, and the dispatcher, polled beside the run,
//! schedules the activity and answers when it completes. Both are
//! polled on the workflow's one task in a fixed order (`select_biased!`,
//! `FuturesUnordered` woken only by activity resolutions), so a replay
//! of the history makes the same requests in the same order. The
//! interpreter reads no clock and sleeps nowhere; the timings in events
//! are informative only and never decide anything.
//!
//! Retries: a guard attempt is guardflow's (a failed verdict is an
//! answer, never an activity failure), so guard and effect activities
//! have `maximum_attempts: 1`; a generator's transport retries happen
//! inside its activity. An activity whose worker was lost (no heartbeat
//! within the heartbeat timeout) is the one case Temporal reports as a
//! failure: a generator or guard call is then made again, as a local
//! resume makes an interrupted call again, outside the retry budget; an
//! effect that is not `:idempotent` is not (it may have run), and its
//! attempt is fatal.

use std::sync::Arc;
use std::time::Duration;

use futures::channel::{mpsc, oneshot};
use futures::future::{BoxFuture, FutureExt, LocalBoxFuture};
use futures::stream::{FuturesUnordered, StreamExt};
use temporalio_common::RetryPolicy;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{ActivityOptions, WorkflowContext, WorkflowResult};

use super::activities::Activities;
use super::blob::Carried;
use super::spec::{ActivityIn, ActivityOut, Collected, Outcome, RunSpec, SpecRef, StartArg};
use crate::runtime::exec::{
    EffectInvocation, Executor, GenOutcome, GuardInvocation, ProviderCall, VerdictData,
};
use crate::runtime::Value;

/// How often a call made again after its worker was lost, at most.
const LOST_WORKER_REPEATS: u32 = 3;

/// Beyond a call's own time limit, how long its activity may take.
const GRACE: Duration = Duration::from_secs(60);

/// With no time limit of its own, how long an activity may take (a lost
/// worker is found by the heartbeat timeout long before).
const NO_LIMIT: Duration = Duration::from_secs(24 * 3600);

/// The guardflow run workflow.
#[workflow]
#[derive(Default)]
pub struct GuardflowRun;

#[workflow_methods]
impl GuardflowRun {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, arg: StartArg) -> WorkflowResult<Carried> {
        let spec: RunSpec = match arg.spec.open() {
            Ok(s) => s,
            Err(e) => return Err(failure(format!("the run's spec: {e}"))),
        };
        let workflow = spec.workflow();
        let mut started = match spec.start(super::spec::engine(), &workflow) {
            Ok(s) => s,
            Err(e) => return Err(failure(e.0)),
        };
        let events = Collected::default();
        let (tx, rx) = mpsc::unbounded();
        started.run.observer = Some(events.observer());
        started.run.sink = None;
        started.run.executor = Some(Arc::new(Remote { tx }));
        let limits = Limits::of(&spec);
        let dispatcher = dispatch(ctx.clone(), rx, events.clone(), arg.spec_blob, limits);
        let report = futures::select_biased! {
            report = started.execute().fuse() => report,
            () = dispatcher.fuse() => return Err(failure("the dispatcher stopped".to_string())),
        };
        let outcome = Outcome {
            report,
            events: events.take(),
        };
        Carried::pack(&outcome, &spec.blob_dir, spec.inline_max).map_err(failure)
    }
}

fn failure(message: String) -> temporalio_sdk::WorkflowTermination {
    temporalio_sdk::ApplicationFailure::new(anyhow_msg(message)).into()
}

fn anyhow_msg(message: String) -> Box<dyn std::error::Error + Send + Sync> {
    message.into()
}

/// A call the interpreter hands over, and where its answer goes.
enum Request {
    Generate(ProviderCall, oneshot::Sender<GenOutcome>),
    Guard(GuardInvocation, oneshot::Sender<VerdictData>),
    Effect(EffectInvocation, oneshot::Sender<Result<Value, String>>),
}

/// The executor of a run on Temporal: calls become requests to the
/// dispatcher.
struct Remote {
    tx: mpsc::UnboundedSender<Request>,
}

impl Executor for Remote {
    fn generate(&self, call: ProviderCall) -> BoxFuture<'static, GenOutcome> {
        let (tx, rx) = oneshot::channel();
        let _ = self.tx.unbounded_send(Request::Generate(call, tx));
        async move {
            rx.await.unwrap_or(GenOutcome::Error {
                message: "the run stopped before the generator answered".to_string(),
                fatal: true,
                transport: false,
            })
        }
        .boxed()
    }

    fn guard(&self, call: GuardInvocation) -> BoxFuture<'static, VerdictData> {
        let (tx, rx) = oneshot::channel();
        let _ = self.tx.unbounded_send(Request::Guard(call, tx));
        async move {
            rx.await.unwrap_or(VerdictData::Fatal(
                "the run stopped before the guard answered".to_string(),
            ))
        }
        .boxed()
    }

    fn effect(&self, call: EffectInvocation) -> BoxFuture<'static, Result<Value, String>> {
        let (tx, rx) = oneshot::channel();
        let _ = self.tx.unbounded_send(Request::Effect(call, tx));
        async move {
            rx.await
                .unwrap_or(Err("the run stopped before the effect ended".to_string()))
        }
        .boxed()
    }
}

/// The activity options of a run, from its program.
#[derive(Clone)]
pub struct Limits {
    heartbeat: Duration,
    /// By action: its generator's time limit.
    generate: Vec<Duration>,
    guard: Duration,
    /// By action: whether its effect may run again.
    idempotent: Vec<bool>,
    blob_dir: String,
    inline_max: usize,
}

impl Limits {
    pub fn of(spec: &RunSpec) -> Limits {
        let p = &spec.program;
        Limits {
            heartbeat: Duration::from_millis(spec.heartbeat_ms.max(1000)),
            generate: p
                .actions
                .iter()
                .map(|a| {
                    a.timeout_ms
                        .or(p.defaults.timeout_ms)
                        .map_or(NO_LIMIT, |ms| Duration::from_millis(ms) + GRACE)
                })
                .collect(),
            guard: p
                .defaults
                .timeout_ms
                .map_or(NO_LIMIT, |ms| Duration::from_millis(ms) + GRACE),
            idempotent: p.actions.iter().map(|a| a.idempotent).collect(),
            blob_dir: spec.blob_dir.clone(),
            inline_max: spec.inline_max,
        }
    }

    /// A guard's or an effect's activity: never retried by Temporal.
    fn once(&self, limit: Duration) -> ActivityOptions {
        ActivityOptions::with_start_to_close_timeout(limit)
            .heartbeat_timeout(self.heartbeat)
            .retry_policy(RetryPolicy::builder().maximum_attempts(1).build())
            .build()
    }

    /// A generator's activity: its answers and failures are data, so
    /// Temporal retries only a call whose worker was lost.
    fn generator(&self, limit: Duration) -> ActivityOptions {
        ActivityOptions::with_start_to_close_timeout(limit)
            .heartbeat_timeout(self.heartbeat)
            .retry_policy(
                RetryPolicy::builder()
                    .maximum_attempts(LOST_WORKER_REPEATS)
                    .initial_interval(Duration::from_millis(200))
                    .build(),
            )
            .build()
    }
}

/// Schedules each request as an activity and answers it; runs until the
/// workflow's run ends (it is dropped then).
async fn dispatch(
    ctx: WorkflowContext<GuardflowRun>,
    mut rx: mpsc::UnboundedReceiver<Request>,
    events: Collected,
    spec: SpecRef,
    limits: Limits,
) {
    let mut pending: FuturesUnordered<LocalBoxFuture<'static, ()>> = FuturesUnordered::new();
    loop {
        futures::select_biased! {
            request = rx.next() => match request {
                Some(r) => pending.push(start(&ctx, r, &events, &spec, &limits)),
                None => std::future::pending::<()>().await,
            },
            () = pending.select_next_some() => {}
        }
    }
}

fn start(
    ctx: &WorkflowContext<GuardflowRun>,
    request: Request,
    events: &Collected,
    spec: &SpecRef,
    limits: &Limits,
) -> LocalBoxFuture<'static, ()> {
    let (ctx, events, spec, limits) = (ctx.clone(), events.clone(), spec.clone(), limits.clone());
    async move {
        let pack = |call: &dyn erased::Json| -> Result<ActivityIn, String> {
            Ok(ActivityIn {
                spec: spec.clone(),
                call: Carried::pack(&call.json(), &limits.blob_dir, limits.inline_max)?,
            })
        };
        match request {
            Request::Generate(call, reply) => {
                let limit = limits
                    .generate
                    .get(call.action as usize)
                    .copied()
                    .unwrap_or(NO_LIMIT);
                let answer = match pack(&call) {
                    Err(e) => GenOutcome::Error {
                        message: e,
                        fatal: true,
                        transport: false,
                    },
                    Ok(input) => {
                        let done = ctx
                            .execute_activity(Activities::generate, input, limits.generator(limit))
                            .await;
                        match done.map_err(|e| e.to_string()).and_then(|c| opened(&c)) {
                            Ok(ActivityOut { answer, events: e }) => {
                                events.push_all(e);
                                answer
                            }
                            Err(e) => GenOutcome::Error {
                                message: format!(
                                    "the generator's activity failed on every worker that ran it: {e}"
                                ),
                                fatal: true,
                                transport: false,
                            },
                        }
                    }
                };
                let _ = reply.send(answer);
            }
            Request::Guard(call, reply) => {
                let mut verdict = VerdictData::Fatal("the guard was not run".to_string());
                match pack(&call) {
                    Err(e) => verdict = VerdictData::Fatal(e),
                    Ok(input) => {
                        // a lost worker's guard is judged again, as a
                        // resume judges a recorded answer again
                        for _ in 0..LOST_WORKER_REPEATS {
                            let done = ctx
                                .execute_activity(
                                    Activities::guard,
                                    input.clone(),
                                    limits.once(limits.guard),
                                )
                                .await;
                            match done.map_err(|e| e.to_string()).and_then(|c| opened(&c)) {
                                Ok(ActivityOut { answer, events: e }) => {
                                    events.push_all(e);
                                    verdict = answer;
                                    break;
                                }
                                Err(e) => {
                                    verdict = VerdictData::Fatal(format!(
                                        "the guard's activity failed: {e}"
                                    ))
                                }
                            }
                        }
                    }
                }
                let _ = reply.send(verdict);
            }
            Request::Effect(call, reply) => {
                let again = limits
                    .idempotent
                    .get(call.action as usize)
                    .copied()
                    .unwrap_or(false);
                let tries = if again { LOST_WORKER_REPEATS } else { 1 };
                let mut outcome = Err("the effect was not run".to_string());
                match pack(&call) {
                    Err(e) => outcome = Err(e),
                    Ok(input) => {
                        for _ in 0..tries {
                            let done = ctx
                                .execute_activity(
                                    Activities::effect,
                                    input.clone(),
                                    limits.once(NO_LIMIT),
                                )
                                .await;
                            match done.map_err(|e| e.to_string()).and_then(|c| opened(&c)) {
                                Ok(ActivityOut { answer, events: e }) => {
                                    events.push_all(e);
                                    outcome = answer;
                                    break;
                                }
                                Err(e) => {
                                    outcome = Err(format!(
                                        "the effect's activity failed{}: {e}",
                                        if again {
                                            ""
                                        } else {
                                            " (it may have run, and is not `:idempotent`, so it is not run again)"
                                        }
                                    ))
                                }
                            }
                        }
                    }
                }
                let _ = reply.send(outcome);
            }
        }
    }
    .boxed_local()
}

fn opened<T: serde::de::DeserializeOwned>(c: &Carried) -> Result<ActivityOut<T>, String> {
    c.open()
}

/// A call as JSON, whatever its type.
mod erased {
    pub trait Json {
        fn json(&self) -> serde_json::Value;
    }

    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> serde_json::Value {
            serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
        }
    }
}
