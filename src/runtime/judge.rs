//! The seam between guards and generators: a judge (a guard with a
//! `Generator` parameter) asks the generator it was given through
//! [`Asking`], which the runtime builds for each evaluation from the
//! run's bindings. Every call is a generator call of the action being
//! judged: counted (in the report, against the checker's bound of
//! 1 + `retries` calls per evaluation, past which a call is refused),
//! recorded as a `judge_call` event (prompt, answer, tokens), cut off
//! after the generator's timeout, and made through the same redacting
//! implementation as the action's own calls.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::check::ir::{ActionId, Ty, JUDGE_RETRIES};

use super::event::{Event, JudgeCall, Observer};
use super::guard::show_duration;
use super::interpreter::Run;
use super::registry::{
    AskGenerator, BoxFuture, GenError, GenRequest, GenResponse, Generator, JudgeRequest,
};
use super::sink::Sink;
use super::value::Value;

/// Where a guard is evaluated: the attempt of an action it judges.
#[derive(Debug, Clone)]
pub struct Site {
    pub path: String,
    pub action: ActionId,
    pub attempt: u32,
}

/// A generator a judge was given, bound for this run.
#[derive(Clone)]
struct Bound {
    name: String,
    generator: Arc<dyn Generator>,
    args: Vec<Value>,
    timeout: Option<Duration>,
    /// Where its relative paths resolve (`runtime::paths`).
    workdir: Arc<Path>,
}

/// What one evaluation of a judge may ask, and what it asked.
pub struct Asking {
    guard: String,
    path: String,
    action: String,
    attempt: u32,
    /// By argument index: the generator given there.
    generators: Vec<Option<Bound>>,
    /// The most calls this evaluation may make.
    budget: u64,
    calls: AtomicU64,
    records: Mutex<Vec<JudgeCall>>,
    numbers: Arc<Mutex<std::collections::HashMap<String, u32>>>,
    observer: Option<Observer>,
    sink: Option<Arc<dyn Sink>>,
    seed: u64,
}

impl Asking {
    /// The generators of extern guard `id` called with `args` at `site`:
    /// each `Generator` argument (a generator's name) bound to its
    /// implementation, or to the run's replacement (a test's `:with`,
    /// `--replay`), which stands in for every generator.
    pub fn new(run: &Run<'_>, site: &Site, id: usize, args: &[Value]) -> Result<Asking, String> {
        let ext = &run.program.externs[id];
        let budget = match ext.params.iter().position(|p| p.name == JUDGE_RETRIES) {
            Some(i) => args
                .get(i)
                .and_then(Value::as_u64)
                .unwrap_or(0)
                .saturating_add(1),
            None => 1,
        };
        let mut generators = vec![None; args.len()];
        for i in ext.generator_params() {
            // a generator passed around is its index in the program
            let g = args.get(i).and_then(Value::as_u64).unwrap_or(u64::MAX);
            let Some(inst) = usize::try_from(g)
                .ok()
                .and_then(|g| run.program.generators.get(g))
            else {
                return Err(format!(
                    "argument {} is not a generator of this program",
                    i + 1
                ));
            };
            let (g, name) = (g as usize, inst.name.as_str());
            let bound = match &run.replacement {
                Some((generator, args, timeout)) => Bound {
                    name: name.to_string(),
                    generator: generator.clone(),
                    args: args.clone(),
                    timeout: *timeout,
                    workdir: run.workdir.clone(),
                },
                None => {
                    let inst = &run.program.generators[g];
                    let kind = &run.program.externs[inst.kind.index()];
                    let Some(generator) = run.bindings.generators[inst.kind.index()].clone() else {
                        return Err(format!(
                            "the generator `{}` has no implementation in this engine",
                            kind.name
                        ));
                    };
                    let args = run.generator_args[g].clone();
                    let timeout = kind
                        .params
                        .iter()
                        .position(|p| p.name == "timeout" && p.ty == Ty::Duration)
                        .and_then(|i| args.get(i))
                        .and_then(Value::as_u64)
                        .map(Duration::from_millis);
                    Bound {
                        name: name.to_string(),
                        generator,
                        args,
                        timeout,
                        workdir: super::paths::dir_of(&run.dirs, &run.workdir, inst.span.file),
                    }
                }
            };
            generators[i] = Some(bound);
        }
        Ok(Asking {
            guard: ext.name.clone(),
            path: site.path.clone(),
            action: run.program.actions[site.action.index()].name.clone(),
            attempt: site.attempt,
            generators,
            budget,
            calls: AtomicU64::new(0),
            records: Mutex::new(Vec::new()),
            numbers: run.counters.judge_numbers.clone(),
            observer: run.observer.clone(),
            sink: run.sink.clone(),
            seed: run.seed,
        })
    }

    /// Adds what this evaluation asked to the run's log: its calls count
    /// as generator calls of the action judged.
    pub fn settle(&self, run: &Run<'_>, site: &Site) {
        let calls = self.calls.load(Relaxed);
        let records = std::mem::take(&mut *self.records.lock().unwrap_or_else(|e| e.into_inner()));
        let mut log = run.log();
        if let Some(c) = log.calls.get_mut(site.action.index()) {
            c.generator_calls += calls;
            c.judge_calls += calls;
        }
        log.judge_calls.extend(records);
    }

    fn emit(&self, event: &Event) {
        if let Some(s) = &self.sink {
            s.record(event);
        }
        if let Some(o) = &self.observer {
            o(event);
        }
    }
}

impl AskGenerator for Arc<Asking> {
    fn ask(
        &self,
        arg: usize,
        request: JudgeRequest,
    ) -> BoxFuture<'static, Result<GenResponse, GenError>> {
        let refuse = |message: String| -> BoxFuture<'static, Result<GenResponse, GenError>> {
            Box::pin(std::future::ready(Err(GenError::fatal(message))))
        };
        let Some(bound) = self.generators.get(arg).cloned().flatten() else {
            return refuse(format!(
                "`{}` asked argument {} for a generator; it is not one",
                self.guard,
                arg + 1
            ));
        };
        let call = self.calls.fetch_add(1, Relaxed) + 1;
        if call > self.budget {
            self.calls.fetch_sub(1, Relaxed);
            return refuse(format!(
                "`{}` may ask its generator at most {} times per attempt (1 + `{JUDGE_RETRIES}`)",
                self.guard, self.budget
            ));
        }
        if let Some(why) = self.sink.as_ref().and_then(|s| s.failure()) {
            self.calls.fetch_sub(1, Relaxed);
            return refuse(format!("the run store failed: {why}"));
        }
        // a replay file answers a judge as `action/guard`, numbered in the run
        let asked_as = format!("{}/{}", self.action, self.guard);
        let number = {
            let mut numbers = self.numbers.lock().unwrap_or_else(|e| e.into_inner());
            let n = numbers.entry(asked_as.clone()).or_insert(0);
            *n = n.saturating_add(1);
            *n
        };
        let gen_request = GenRequest {
            action: asked_as,
            attempt: number,
            uncut_attempt: number,
            prompt: request.prompt.clone(),
            role: request.role.clone(),
            feedback: None,
            max_tokens: request.max_tokens,
            args: bound.args.clone(),
            output_type: request.output_type,
            output_schema: request.output_schema,
            timeout: bound.timeout,
            workdir: bound.workdir.clone(),
            // a judge's generator is not a fallback, and its waits are
            // the guard's time
            has_fallback: false,
            notify: Default::default(),
            seed: self.seed,
        };
        let this = self.clone();
        Box::pin(async move {
            let t0 = Instant::now();
            let answer = bound.generator.generate(gen_request);
            let answer = match bound.timeout {
                Some(t) => match tokio::time::timeout(t, answer).await {
                    Ok(a) => a,
                    Err(_) => Err(GenError::retryable(format!(
                        "the generator did not answer within {}",
                        show_duration(t)
                    ))),
                },
                None => answer.await,
            };
            let (output, error, tokens, prompt_tokens) = match &answer {
                Ok(r) => (Some(r.text.clone()), None, r.tokens, r.prompt_tokens),
                Err(e) => (None, Some(e.message.clone()), None, None),
            };
            let record = JudgeCall {
                path: this.path.clone(),
                action: this.action.clone(),
                attempt: this.attempt,
                guard: this.guard.clone(),
                generator: bound.name,
                call: u32::try_from(call).unwrap_or(u32::MAX),
                prompt: request.prompt,
                role: request.role,
                output,
                error,
                tokens,
                prompt_tokens,
                generate_ms: t0.elapsed().as_millis() as u64,
            };
            this.emit(&Event::JudgeCall(Box::new(record.clone())));
            this.records
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(record);
            answer
        })
    }
}
