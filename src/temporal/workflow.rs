//! The workflow: the shared interpreter, its calls made as activities.
//!
//! The interpreter runs as it does locally (`Started::execute`), with a
//! [`Remote`] executor: each generator, guard or effect call is queued,
//! and the driver, the workflow's one future, starts the queued calls as
//! activities in the order they were made and puts each answer where the
//! interpreter's future waiting for it finds it. The interpreter is
//! polled with a waker of the driver's own (never the SDK's), and polled
//! again whenever an answer came in, so nothing outside the workflow's
//! poll wakes it, and a replay of the history makes the same calls in the
//! same order. The interpreter reads no clock and sleeps nowhere; the
//! timings in events are informative only and never decide anything.
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
//!
//! A `:shared` resource's units are taken by the driver as child
//! workflows (`units`), released when the interpreter drops them. When
//! the history reaches the run's threshold the driver drains (begins no
//! attempt, takes no unit, lets the attempts begun be judged) and
//! continues as new with the events so far (`chain`).

use std::sync::Arc;
use std::time::Duration;

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};

use futures::future::{BoxFuture, FutureExt, LocalBoxFuture};
use temporalio_common::RetryPolicy;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    ActivityOptions, ContinueAsNewOptions, WorkflowContext, WorkflowContextView, WorkflowResult,
};

use super::activities::Activities;
use super::blob::Carried;
use super::chain::{self, Unstarted};
use super::spec::{
    ActivityIn, ActivityOut, Collected, Judged, Outcome, RunSpec, SpecRef, StartArg,
};
use super::units::{self, Ask, Holdings};
use crate::runtime::exec::{
    EffectInvocation, Executor, GenOutcome, GuardInvocation, HeldUnits, ProviderCall, VerdictData,
};
use crate::runtime::{Event, Value};

/// How often a call made again after its worker was lost, at most.
const LOST_WORKER_REPEATS: u32 = 3;

/// Beyond a call's own time limit, how long its activity may take.
const GRACE: Duration = Duration::from_secs(60);

/// With no time limit of its own, how long an activity may take (a lost
/// worker is found by the heartbeat timeout long before).
const NO_LIMIT: Duration = Duration::from_secs(24 * 3600);

/// The guardflow run workflow. Its state is what its `events` query
/// answers: the run's events so far (a client following the run mirrors
/// them as they come), and where a large page of them goes.
#[workflow]
#[derive(Default)]
pub struct GuardflowRun {
    events: Collected,
    /// The run's blob directory and inline limit, once it began.
    blobs: Arc<std::sync::OnceLock<(String, usize)>>,
    /// While the run drains before continuing as new: how many events
    /// the query serves (those after may be left out of the chain);
    /// 0: all of them.
    stable: Arc<AtomicU64>,
}

#[workflow_methods]
impl GuardflowRun {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, arg: StartArg) -> WorkflowResult<Carried> {
        let spec: RunSpec = match arg.spec.open() {
            Ok(s) => s,
            Err(e) => return Err(failure(format!("the run's spec: {e}"))),
        };
        // a run continued as new: the chain's events so far
        let before: Vec<Event> = match &arg.before {
            None => Vec::new(),
            Some(c) => c
                .open()
                .map_err(|e| failure(format!("the events of the run so far: {e}")))?,
        };
        let workflow = spec.workflow();
        let mut started = match spec.start(super::spec::engine(), &workflow) {
            Ok(s) => s,
            Err(e) => return Err(failure(e.0)),
        };
        if !before.is_empty() {
            started.resume(chain::resume_from(&before));
        }
        // the events live in the workflow's state, for its `events` query;
        // a run continued as new starts with the chain's events so far, so
        // the query's indexes run across the chain
        let (events, blobs, stable) =
            ctx.state(|s| (s.events.clone(), s.blobs.clone(), s.stable.clone()));
        let _ = blobs.set((spec.blob_dir.clone(), spec.inline_max));
        let chained = !before.is_empty();
        events.push_all(before);
        let queue = Arc::new(Mutex::new(VecDeque::new()));
        let observer = events.observer();
        started.run.observer = Some(if chained {
            // the chain has begun its run already
            Arc::new(move |e: &Event| {
                if !matches!(e, Event::RunStarted { .. }) {
                    observer(e)
                }
            })
        } else {
            observer
        });
        started.run.sink = None;
        // a judge's calls are numbered in the run, across its guards'
        // activities, as a local run numbers them
        let numbers = started.run.counters.judge_numbers.clone();
        numbers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(arg.judge_numbers.clone());
        started.run.executor = Some(Arc::new(Remote {
            queue: queue.clone(),
            numbers: numbers.clone(),
            keys: AtomicU64::new(0),
        }));
        // what remote judges asked, added to the run's log before the
        // interpreter sees their verdicts
        let settled: Settled = Arc::default();
        // what the chain's judges asked so far: in this run's log, and
        // handed on if it continues as new
        let mut chain_judged = arg.judged.clone();
        arg.judged.clone().settle(&started.run);
        let limits = Limits::of(&spec);
        let spec_blob = arg.spec_blob.clone();
        let holdings = Rc::new(Holdings::default());
        let holder = ctx.workflow_id().to_string();
        let continue_after = match spec.continue_after {
            0 => chain::CONTINUE_AFTER,
            n => n.max(chain::CONTINUE_AFTER_MIN),
        };
        // asked for while draining, never started
        let mut held_back: Vec<Request> = Vec::new();
        let mut answers = 0usize;
        // the driver: the interpreter polled with a waker of its own, its
        // calls started as activities in the order it made them, polled
        // again whenever an answer came in
        let woken = Arc::new(Woken::default());
        let waker = Waker::from(woken.clone());
        let mut execute = std::pin::pin!(started.execute());
        // a plain list, polled in order: `FuturesUnordered` would wake the
        // SDK's waker itself to yield, which the SDK counts as a
        // nondeterministic wake
        let mut pending: Vec<LocalBoxFuture<'static, ()>> = Vec::new();
        let ctx_ref: &WorkflowContext<Self> = ctx;
        let ended = futures::future::poll_fn(|cx| loop {
            let mut own = Context::from_waker(&waker);
            if let Poll::Ready(report) = execute.as_mut().poll(&mut own) {
                return Poll::Ready(Some(report));
            }
            let new: Vec<Request> = queue
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .drain(..)
                .collect();
            let mut started_any = false;
            for r in new {
                match r {
                    Request::Release(key) => holdings.release(key),
                    // draining: no new attempt begins (the calls of those
                    // begun, their guards and effects, go on to their end)
                    r @ (Request::Generate(..) | Request::Units(..)) if holdings.draining.get() => {
                        held_back.push(r)
                    }
                    r => {
                        started_any = true;
                        pending.push(start(
                            ctx_ref,
                            r,
                            &events,
                            (&numbers, &settled),
                            (&spec_blob, &limits),
                            (&holdings, &holder),
                        ));
                    }
                }
            }
            let waiting = pending.len();
            pending.retain_mut(|f| f.as_mut().poll(cx).is_pending());
            for judged in std::mem::take(&mut *settled.lock().unwrap_or_else(|e| e.into_inner())) {
                chain_judged.add(&judged);
                judged.settle(&started.run);
            }
            let answered = pending.len() < waiting;
            answers += waiting - pending.len();
            // a long history: drain, then continue as new (`chain`)
            if !holdings.draining.get()
                && answers > 0
                && (u64::from(ctx_ref.history_length()) >= continue_after
                    || ctx_ref.continue_as_new_suggested())
            {
                holdings.draining.set(true);
                // what the query serves stops here: an attempt begun from
                // now on may be held back, its start left out of the chain
                stable.store(events.len() as u64, Ordering::SeqCst);
            }
            let woke = woken.0.swap(false, Ordering::SeqCst);
            if !answered && !woke && !started_any {
                if holdings.draining.get() && pending.is_empty() {
                    return Poll::Ready(None);
                }
                return Poll::Pending;
            }
        })
        .await;
        let Some(report) = ended else {
            // drained: every call started was answered and recorded
            let never: Vec<Unstarted> = held_back
                .iter()
                .filter_map(|r| match r {
                    Request::Generate(c, _) => Some(Unstarted::Generate(c.path.clone(), c.attempt)),
                    _ => None,
                })
                .collect();
            let so_far = chain::unstarted(events.all(), &never);
            let next = StartArg {
                spec: arg.spec.clone(),
                spec_blob: arg.spec_blob.clone(),
                before: Some(
                    Carried::pack(&so_far, &spec.blob_dir, spec.inline_max).map_err(failure)?,
                ),
                judge_numbers: numbers
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .iter()
                    .map(|(k, n)| (k.clone(), *n))
                    .collect(),
                judged: chain_judged,
            };
            return match ctx.continue_as_new(next, ContinueAsNewOptions::default()) {
                Err(t) => Err(t),
                Ok(never) => match never {},
            };
        };
        // kept in the state: a query after the end still answers
        let outcome = Outcome {
            report,
            events: events.all(),
        };
        Carried::pack(&outcome, &spec.blob_dir, spec.inline_max).map_err(failure)
    }

    /// The run's events from index `from` (one page; see `EventsPage`):
    /// what `run --temporal` and `guardflow follow` mirror into the local
    /// store while the run goes on.
    #[query]
    pub fn events(
        &self,
        _ctx: &WorkflowContextView,
        from: u64,
    ) -> Result<Carried, Box<dyn std::error::Error + Send + Sync>> {
        let page = self.events.page(from, self.stable.load(Ordering::SeqCst));
        match self.blobs.get() {
            Some((dir, inline_max)) => Ok(Carried::pack(&page, dir, *inline_max)?),
            // asked before the run began: an empty page
            None => Ok(Carried::Inline(
                serde_json::to_value(&page).map_err(|e| e.to_string())?,
            )),
        }
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
    Generate(ProviderCall, Answer<GenOutcome>),
    /// With the run's judge numbers when it was asked.
    Guard(GuardInvocation, Answer<VerdictData>, BTreeMap<String, u32>),
    Effect(EffectInvocation, Answer<Result<Value, String>>),
    /// Units of a `:shared` resource, held under a key (`units`).
    Units(Ask, u64, Answer<Result<(), String>>),
    /// The units held under a key are released.
    Release(u64),
}

/// Where an activity's answer is put for the interpreter's future that
/// waits for it, and that future's waker.
type Answer<T> = Arc<Mutex<(Option<T>, Option<Waker>)>>;

fn fill<T>(answer: &Answer<T>, value: T) {
    let waker = {
        let mut a = answer.lock().unwrap_or_else(|e| e.into_inner());
        a.0 = Some(value);
        a.1.take()
    };
    if let Some(w) = waker {
        w.wake();
    }
}

/// The executor of a run on Temporal: each call is queued for the
/// driver, and its future is ready once the driver put the answer in.
/// No channel and no waker of the SDK's is involved: the driver polls
/// the interpreter with a waker of its own and polls it again whenever
/// an answer came in, so every wake happens inside the workflow's poll.
struct Remote {
    queue: Arc<Mutex<VecDeque<Request>>>,
    numbers: Numbers,
    /// The next key of a `:shared` resource's units.
    keys: AtomicU64,
}

/// Units taken across runs: released (their key queued for the driver)
/// when dropped, whether they were taken or the interpreter stopped
/// waiting for them.
struct Release {
    key: u64,
    queue: Arc<Mutex<VecDeque<Request>>>,
}

impl Drop for Release {
    fn drop(&mut self) {
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(Request::Release(self.key));
    }
}

/// The run's judge calls so far, by what a generator is asked as.
type Numbers = Arc<Mutex<std::collections::HashMap<String, u32>>>;

/// What guards' judges asked, for the driver to add to the run's log.
type Settled = Arc<Mutex<Vec<Judged>>>;

impl Remote {
    fn ask<T: Send + 'static>(
        &self,
        make: impl FnOnce(Answer<T>) -> Request,
    ) -> BoxFuture<'static, T> {
        let answer: Answer<T> = Arc::new(Mutex::new((None, None)));
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(make(answer.clone()));
        futures::future::poll_fn(move |cx| {
            let mut a = answer.lock().unwrap_or_else(|e| e.into_inner());
            match a.0.take() {
                Some(v) => Poll::Ready(v),
                None => {
                    a.1 = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .boxed()
    }
}

impl Executor for Remote {
    fn generate(&self, call: ProviderCall) -> BoxFuture<'static, GenOutcome> {
        self.ask(|a| Request::Generate(call, a))
    }

    fn guard(&self, call: GuardInvocation) -> BoxFuture<'static, VerdictData> {
        let numbers = self
            .numbers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, n)| (k.clone(), *n))
            .collect();
        self.ask(|a| Request::Guard(call, a, numbers))
    }

    fn effect(&self, call: EffectInvocation) -> BoxFuture<'static, Result<Value, String>> {
        self.ask(|a| Request::Effect(call, a))
    }

    fn shared_units(
        &self,
        name: &str,
        size: u64,
        amount: u64,
    ) -> Option<BoxFuture<'static, Result<HeldUnits, String>>> {
        let key = self.keys.fetch_add(1, Ordering::SeqCst);
        let release = Release {
            key,
            queue: self.queue.clone(),
        };
        let ask = Ask {
            name: name.to_string(),
            size,
            amount,
        };
        let taken = self.ask(|a| Request::Units(ask, key, a));
        Some(
            async move {
                let r = taken.await;
                r.map(|()| Box::new(release) as HeldUnits)
            }
            .boxed(),
        )
    }
}

/// Wakes of the interpreter's own futures, noted for the driver.
#[derive(Default)]
struct Woken(AtomicBool);

impl std::task::Wake for Woken {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
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

fn start(
    ctx: &WorkflowContext<GuardflowRun>,
    request: Request,
    events: &Collected,
    (numbers, settled): (&Numbers, &Settled),
    (spec, limits): (&SpecRef, &Limits),
    (holdings, holder): (&Rc<Holdings>, &str),
) -> LocalBoxFuture<'static, ()> {
    let (ctx, events, numbers, settled, spec, limits) = (
        ctx.clone(),
        events.clone(),
        numbers.clone(),
        settled.clone(),
        spec.clone(),
        limits.clone(),
    );
    let (holdings, holder) = (holdings.clone(), holder.to_string());
    async move {
        let pack = |call: &dyn erased::Json| -> Result<ActivityIn, String> {
            Ok(ActivityIn {
                spec: spec.clone(),
                call: Carried::pack(&call.json(), &limits.blob_dir, limits.inline_max)?,
                judge_numbers: BTreeMap::new(),
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
                            Ok(ActivityOut {
                                answer, events: e, ..
                            }) => {
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
                fill(&reply, answer);
            }
            Request::Guard(call, reply, judge_numbers) => {
                let mut verdict = VerdictData::Fatal("the guard was not run".to_string());
                match pack(&call) {
                    Err(e) => verdict = VerdictData::Fatal(e),
                    Ok(mut input) => {
                        input.judge_numbers = judge_numbers;
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
                                Ok(ActivityOut {
                                    answer,
                                    events: e,
                                    judge_calls,
                                    judged,
                                }) => {
                                    events.push_all(e);
                                    let mut n = numbers.lock().unwrap_or_else(|e| e.into_inner());
                                    for (k, made) in judge_calls {
                                        let v = n.entry(k).or_insert(0);
                                        *v = v.saturating_add(made);
                                    }
                                    settled
                                        .lock()
                                        .unwrap_or_else(|e| e.into_inner())
                                        .push(judged);
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
                fill(&reply, verdict);
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
                                Ok(ActivityOut {
                                    answer, events: e, ..
                                }) => {
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
                fill(&reply, outcome);
            }
            Request::Units(ask, key, reply) => {
                // nothing is answered when the run drained while waiting:
                // the next run of the chain asks again
                if let Some(r) = units::take(&ctx, &holdings, &ask, key, &holder).await {
                    fill(&reply, r);
                }
            }
            // the driver releases units itself
            Request::Release(key) => holdings.release(key),
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
