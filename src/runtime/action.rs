//! The action pair: precondition → generate → convert → guard, retried
//! with the guard's feedback up to `:retry` more times.

use std::time::{Duration, Instant};

use crate::check::ir::{Action, ActionId, Strategy};

use super::convert::convert;
use super::eval::{render, render_prompt, Context, Env, Rejected};
use super::event::{AttemptRecord, Event, VerdictKind};
use super::guard::{self, show_duration};
use super::interpreter::{verdict_kind, Run};
use super::judge::Site;
use super::registry::{EffectCall, GenError, GenRequest, GenResponse, Notifier};
use super::resume::{EffectAnswer, PriorAction, PriorAttempt, INTERRUPTED};
use super::value::{text_of, Value, Verdict};

/// How an action may end short of committing an artifact.
#[derive(Debug)]
pub enum ActionEnd {
    /// Every attempt was rejected, a verdict was fatal, or the
    /// precondition did not hold.
    Failed(String),
    /// `after` consecutive attempts failed and an escalation is allowed:
    /// the latest feedback, for the upstream target.
    Escalate(String),
}

/// How a subtask runs its action.
#[derive(Debug, Default)]
pub struct ActionOpts {
    /// Hand back for upstream escalation after this many failures.
    pub escalate_after: Option<u64>,
    /// Rejected attempts its attempts see from the start: kept across
    /// an escalation restart or a method fallback, or the downstream
    /// failure that made this action run again.
    pub history: Vec<Rejected>,
}

/// A judged sample: what later attempts see of it, its verdict and its
/// artifact.
type Sample = (Rejected, Verdict, Option<Value>);

/// What an attempt's samples came to.
enum Picked {
    Pass(Option<Value>),
    Fatal(String),
    Fail(String),
}

/// The first sample that passed, in sample order; else the first fatal
/// verdict; else a failure, every sample's rejection added to `history`.
fn pick(round: Vec<Sample>, history: &mut Vec<Rejected>) -> Picked {
    let mut fatal = None;
    let mut last = String::new();
    let mut rejected = Vec::with_capacity(round.len());
    for (r, verdict, artifact) in round {
        match verdict {
            Verdict::Pass => return Picked::Pass(artifact),
            Verdict::Fatal(f) => {
                fatal.get_or_insert(f);
            }
            Verdict::Fail(f) => {
                last = f;
                rejected.push(r);
            }
        }
    }
    if let Some(f) = fatal {
        return Picked::Fatal(f);
    }
    history.extend(rejected);
    Picked::Fail(last)
}

impl Run<'_> {
    pub async fn run_action(
        &self,
        id: ActionId,
        params: Vec<Value>,
        path: String,
        opts: ActionOpts,
    ) -> Result<Value, ActionEnd> {
        let action = &self.program.actions[id.index()];
        let occurrence = self.next_occurrence(&path);
        let mut prior = match self.prior(id, &path, occurrence) {
            Ok(attempts) => attempts.into_iter(),
            Err(committed) => return Ok(committed),
        };
        self.emit(|| Event::ActionStarted {
            path: path.clone(),
            action: action.name.clone(),
        });
        let env = Env::new(&params, &self.inputs);
        if let Some(pre) = &action.pre {
            let v = guard::evaluate(self, pre, &Value::Null, env).await;
            if !v.passed() {
                let reason = format!(
                    "`{}`: its `:pre` does not hold: {}",
                    action.name,
                    v.feedback()
                );
                return Err(self.fail(id, &path, reason));
            }
        }
        let _permits = match self.acquire(&action.uses).await {
            Ok(p) => p,
            Err(reason) => return Err(self.fail(id, &path, reason)),
        };
        let retries = action.retry.or(self.program.defaults.retry).unwrap_or(0);
        // what later attempts see: attempts kept from before (an escalation
        // restart, a method that failed), then this run's rejections
        let mut history: Vec<Rejected> = opts.history;
        let mut failures_in_a_row = 0u64;
        // attempts that used the budget; an interrupted call is made again
        // without using it
        let budget = retries.saturating_add(1);
        let (mut used, mut index) = (0u64, 0u32);
        let mut last_feedback = String::new();
        while used < budget {
            let round = self
                .round(
                    id,
                    action,
                    env,
                    (&path, occurrence),
                    &mut index,
                    &mut prior,
                    &history,
                )
                .await
                .map_err(|reason| self.fail(id, &path, reason))?;
            used += 1;
            match pick(round, &mut history) {
                Picked::Pass(value) => {
                    let value = value.unwrap_or(Value::Null);
                    self.emit(|| Event::Committed {
                        path: path.clone(),
                        action: action.name.clone(),
                        artifact: value.clone(),
                    });
                    let mut log = self.log();
                    log.calls[id.index()].committed += 1;
                    log.artifacts.push((path, value.clone()));
                    return Ok(value);
                }
                Picked::Fatal(f) => {
                    let reason = format!("`{}`: a fatal rejection: {f}", action.name);
                    return Err(self.fail(id, &path, reason));
                }
                Picked::Fail(f) => {
                    failures_in_a_row += 1;
                    if opts.escalate_after == Some(failures_in_a_row) {
                        return Err(ActionEnd::Escalate(f));
                    }
                    last_feedback = f;
                }
            }
        }
        let reason = format!(
            "`{}`: all {} attempts were rejected; the last: {last_feedback}",
            action.name,
            retries + 1
        );
        Err(self.fail(id, &path, reason))
    }

    /// One attempt: a sample, or `best-of(N)`'s N samples made
    /// concurrently. Samples an earlier process of the run recorded are
    /// taken first (an interrupted one is recorded and made again, outside
    /// the budget); the rest are made now. Every sample is recorded and
    /// counted, in sample order. `Err` is a generator error that retrying
    /// cannot fix.
    #[allow(clippy::too_many_arguments)]
    async fn round(
        &self,
        id: ActionId,
        action: &Action,
        env: Env<'_>,
        (path, occurrence): (&str, u32),
        index: &mut u32,
        prior: &mut std::vec::IntoIter<PriorAttempt>,
        history: &[Rejected],
    ) -> Result<Vec<Sample>, String> {
        let samples = action.strategy.samples() as usize;
        let mut round: Vec<(AttemptRecord, Verdict, Option<Value>)> = Vec::with_capacity(samples);
        // the attempt numbers of the cut calls the new samples stand for
        let mut redo: Vec<u32> = Vec::new();
        while round.len() < samples {
            // `next` is moved out before the await: a recorded attempt's
            // place would otherwise be in every pending branch's state
            let Some(p) = prior.next() else {
                break;
            };
            *index = index.saturating_add(1);
            // a call this stop cut off: made again below, in its place
            let cut = (!p.finished && !p.generated).then_some(p.record.attempt);
            let sample = if p.finished || !p.generated {
                self.replay(id, action, p)
            } else {
                let key = (path, occurrence);
                let done = Box::pin(self.finish_recorded(id, action, env, key, p)).await;
                self.emit(|| Event::Attempt(Box::new(done.0.clone())));
                done
            };
            if sample.0.verdict == VerdictKind::Interrupted {
                redo.extend(cut);
                self.record(sample.0);
                continue;
            }
            round.push(sample);
        }
        let missing = samples - round.len();
        if missing > 0 {
            let context = Context::of(
                history,
                action.feedback,
                action.strategy == Strategy::Resample,
            );
            let first = *index;
            *index = index.saturating_add(missing as u32);
            // polled in order: the samples are numbered and started in
            // sample order
            let made = futures::future::join_all((0..missing).map(|k| {
                let index = first.saturating_add(k as u32 + 1);
                let at = (path, occurrence, index, redo.get(k).copied());
                let context = &context;
                async move {
                    let done = self.attempt(id, action, env, at, context).await;
                    if let Ok(d) = &done {
                        self.emit(|| Event::Attempt(Box::new(d.0.clone())));
                    }
                    done
                }
            }))
            .await;
            let mut failure = None;
            for m in made {
                match m {
                    Ok(sample) => round.push(sample),
                    Err(reason) => {
                        failure.get_or_insert(reason);
                    }
                }
            }
            if let Some(reason) = failure {
                for (record, ..) in round {
                    self.record(record);
                }
                return Err(reason);
            }
        }
        Ok(round
            .into_iter()
            .map(|(record, verdict, artifact)| {
                let rejected = Rejected::new(record.output.as_deref(), verdict.feedback(), None);
                self.record(record);
                (rejected, verdict, artifact)
            })
            .collect())
    }

    /// What an earlier process of the run recorded at this action: its
    /// attempts to replay, or (`Err`) the artifact it committed, reused.
    fn prior(&self, id: ActionId, path: &str, occurrence: u32) -> Result<Vec<PriorAttempt>, Value> {
        let name = &self.program.actions[id.index()].name;
        match self
            .resume
            .as_ref()
            .and_then(|r| r.take(path, occurrence, name))
        {
            Some(p) if p.committed.is_some() => Err(self.reuse(id, path.to_string(), p)),
            Some(p) => Ok(p.attempts),
            None => Ok(Vec::new()),
        }
    }

    /// An action whose artifact an earlier process of the run committed:
    /// its attempts go into the log, its artifact is used as it is, and no
    /// generator or guard is called.
    fn reuse(&self, id: ActionId, path: String, prior: PriorAction) -> Value {
        let value = prior.committed.unwrap_or(Value::Null);
        for p in prior.attempts {
            let mut log = self.log();
            if p.record.verdict == VerdictKind::Interrupted {
                log.calls[id.index()].repeated_calls += 1;
            } else {
                log.calls[id.index()].generator_calls += 1;
            }
            log.calls[id.index()].guard_runs += u64::from(p.record.guarded);
            drop(log);
            self.count_replayed_guard(&p.record);
            self.record(p.record);
        }
        let mut log = self.log();
        log.calls[id.index()].committed += 1;
        log.artifacts.push((path, value.clone()));
        value
    }

    /// A recorded attempt that its guard judged counts as one guard run
    /// in the report (the record does not say how many host guards a
    /// combined guard called).
    fn count_replayed_guard(&self, record: &AttemptRecord) {
        if record.guarded {
            self.counters
                .guard_runs
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// An attempt an earlier process of the run recorded, taken as it
    /// was. One whose generator call was in flight when the run stopped
    /// is recorded now as interrupted: the caller makes the call again,
    /// outside the budget. A pass whose commit was not recorded commits
    /// now.
    fn replay(
        &self,
        id: ActionId,
        action: &Action,
        prior: PriorAttempt,
    ) -> (AttemptRecord, Verdict, Option<Value>) {
        let kind = prior.verdict_kind();
        {
            let mut log = self.log();
            let calls = &mut log.calls[id.index()];
            match kind {
                None | Some(VerdictKind::Interrupted) => calls.repeated_calls += 1,
                Some(_) => calls.generator_calls += 1,
            }
            calls.guard_runs += u64::from(prior.record.guarded);
        }
        self.count_replayed_guard(&prior.record);
        let mut record = prior.record;
        let verdict = match kind {
            Some(VerdictKind::Pass) => {
                let text = record.output.as_deref().unwrap_or("");
                match convert(text, &action.output) {
                    Ok(v) => return (record, Verdict::Pass, Some(v)),
                    Err(f) => Verdict::Fail(f),
                }
            }
            Some(VerdictKind::Fail) => Verdict::Fail(record.feedback.clone()),
            Some(VerdictKind::Fatal) => Verdict::Fatal(record.feedback.clone()),
            Some(VerdictKind::Interrupted) => Verdict::Fail(INTERRUPTED.to_string()),
            None => {
                record.verdict = VerdictKind::Interrupted;
                record.feedback = INTERRUPTED.to_string();
                self.emit(|| Event::Attempt(Box::new(record.clone())));
                Verdict::Fail(INTERRUPTED.to_string())
            }
        };
        (record, verdict, None)
    }

    /// An attempt whose generator answered before the run stopped, but
    /// which was not judged: it is judged now from the recorded answer,
    /// without calling the generator. An effect that had started and is
    /// not `:idempotent` runs again only if the user said it did not run.
    async fn finish_recorded(
        &self,
        id: ActionId,
        action: &Action,
        env: Env<'_>,
        (path, occurrence): (&str, u32),
        prior: PriorAttempt,
    ) -> (AttemptRecord, Verdict, Option<Value>) {
        self.log().calls[id.index()].generator_calls += 1;
        let answer = match (&prior.effect_started, &action.effect) {
            (Some(_), Some(_)) if !action.idempotent => Some(
                self.resume
                    .as_ref()
                    .and_then(|r| r.answers.get(&(path.to_string(), occurrence)).copied()),
            ),
            _ => None,
        };
        let mut record = prior.record;
        let text = record.output.clone().unwrap_or_default();
        let t1 = Instant::now();
        let judged = match answer {
            None | Some(Some(EffectAnswer::DidNotRun)) => {
                Box::pin(self.judge(action, env, (&record.path, record.attempt), &text)).await
            }
            Some(Some(EffectAnswer::Ran)) => Judgement {
                verdict: Verdict::Pass,
                artifact: convert(&text, &action.output).ok(),
                outcome: None,
                guarded: false,
            },
            Some(Some(EffectAnswer::Failed)) => Judgement::unguarded(Verdict::Fatal(
                "its effect failed, as `--effect-failed` said after the run stopped while it ran"
                    .to_string(),
            )),
            Some(None) => Judgement::unguarded(Verdict::Fatal(format!(
                "the run stopped while its effect ran `{}`; it is not `:idempotent`, so it is not \
                 run again without being told whether it ran (`--effect-ran`, \
                 `--effect-failed` or `--effect-did-not-run {path}`)",
                prior.effect_started.as_deref().unwrap_or("")
            ))),
        };
        if judged.guarded {
            self.log().calls[id.index()].guard_runs += 1;
        }
        let verdict = judged.verdict;
        record.verdict = verdict_kind(&verdict);
        record.feedback = match (answer, &verdict) {
            (Some(Some(EffectAnswer::Ran)), _) => {
                "accepted: `--effect-ran` said its effect ran after the run stopped".to_string()
            }
            _ => verdict.feedback().to_string(),
        };
        record.outcome = judged.outcome;
        record.guarded = judged.guarded;
        record.guard_ms = t1.elapsed().as_millis() as u64;
        (record, verdict, judged.artifact)
    }

    /// Appends to the attempt log. Past 1,024 records a full log grows
    /// straight to the worst case, so long runs move their records once
    /// rather than at every doubling.
    fn record(&self, record: AttemptRecord) {
        let mut log = self.log();
        let (len, cap) = (log.attempts.len(), log.attempts.capacity());
        if len == cap && len >= 1024 && self.log_hint > len {
            log.attempts.reserve_exact(self.log_hint - len);
            let committed = log.artifacts.len();
            log.artifacts
                .reserve_exact(self.log_hint.saturating_sub(committed));
        }
        log.attempts.push(record);
    }

    fn fail(&self, id: ActionId, path: &str, reason: String) -> ActionEnd {
        self.log().calls[id.index()].failed += 1;
        self.emit(|| Event::ActionFailed {
            path: path.to_string(),
            action: self.program.actions[id.index()].name.clone(),
            reason: reason.clone(),
        });
        ActionEnd::Failed(reason)
    }

    /// One attempt: generate, convert, guard. `Err` is a generator error
    /// that retrying cannot fix.
    async fn attempt(
        &self,
        id: ActionId,
        action: &Action,
        env: Env<'_>,
        (path, occurrence, index, replaces): (&str, u32, u32, Option<u32>),
        context: &Context,
    ) -> Result<(AttemptRecord, Verdict, Option<Value>), String> {
        let attempt = {
            let mut log = self.log();
            log.attempt_numbers[id.index()] += 1;
            log.calls[id.index()].generator_calls += 1;
            log.attempt_numbers[id.index()]
        };
        // the number an uninterrupted run gives this call: the cut call's
        // it replaces, or its own, less the cut calls before
        let uncut = self.resume.as_ref().map_or(attempt, |r| {
            r.uncut(&action.name, replaces.unwrap_or(attempt))
        });
        let prompt = render_prompt(&action.prompt, &env, context)?;
        let role = match &action.role {
            Some(t) => Some(render(t, &env, Some(context))?),
            None => None,
        };
        // `resample`: the generator hears nothing of earlier attempts
        let feedback = context.feedback.clone();
        // durable before the call: a resume knows the call may have been made
        self.emit_durable(|| Event::AttemptStarted {
            path: path.to_string(),
            action: action.name.clone(),
            occurrence,
            index,
            attempt,
            prompt: prompt.clone(),
            role: role.clone(),
        })
        .await;
        if let Some(why) = self.sink_failure() {
            return Err(format!("`{}`: the run store failed: {why}", action.name));
        }
        let t0 = Instant::now();
        let generated = self
            .generate(
                id,
                action,
                (path, (attempt, uncut), &prompt, role.as_deref()),
                feedback,
            )
            .await;
        let generate_ms = t0.elapsed().as_millis() as u64;
        // records are made after the awaits: a pending branch holds only
        // the prompt
        let record =
            |feedback: String, output: Option<String>, verdict: VerdictKind| AttemptRecord {
                path: path.to_string(),
                action: action.name.clone(),
                attempt,
                prompt,
                role,
                output,
                verdict,
                feedback,
                tokens: None,
                prompt_tokens: None,
                outcome: None,
                guarded: false,
                generate_ms,
                guard_ms: 0,
                provider: None,
            };
        let (response, provider) = match generated {
            Ok(Served {
                response: r,
                provider,
                skipped,
                fallback,
            }) => {
                if fallback {
                    self.emit(|| Event::Served {
                        path: path.to_string(),
                        action: action.name.clone(),
                        attempt,
                        provider: provider.clone(),
                        skipped,
                    });
                }
                // durable before it is judged: a stop from here on never
                // calls the generator again for this attempt
                self.emit_durable(|| Event::Generated {
                    path: path.to_string(),
                    action: action.name.clone(),
                    attempt,
                    output: r.text.clone(),
                    tokens: r.tokens,
                    prompt_tokens: r.prompt_tokens,
                    generate_ms,
                })
                .await;
                (r, provider)
            }
            Err(GenFailure::Fatal(message)) => {
                return Err(format!(
                    "`{}`: the generator failed: {message}",
                    action.name
                ))
            }
            Err(GenFailure::Transport(message)) => {
                return Err(format!(
                    "`{}`: no provider could serve the attempt (transport failures are \
                     not the model's; no guard attempt was used): {message}",
                    action.name
                ))
            }
            Err(GenFailure::Retry(message)) => {
                let record = record(message.clone(), None, VerdictKind::Fail);
                return Ok((record, Verdict::Fail(message), None));
            }
        };
        let t1 = Instant::now();
        // boxed: inline, the guards' state would size every pending branch
        let judged = Box::pin(self.judge(action, env, (path, attempt), &response.text)).await;
        if judged.guarded {
            self.log().calls[id.index()].guard_runs += 1;
        }
        let verdict = judged.verdict;
        let artifact = judged.artifact;
        let mut record = record(
            verdict.feedback().to_string(),
            Some(response.text),
            verdict_kind(&verdict),
        );
        record.tokens = response.tokens;
        record.prompt_tokens = response.prompt_tokens;
        record.provider = Some(provider);
        record.outcome = judged.outcome;
        record.guarded = judged.guarded;
        record.guard_ms = t1.elapsed().as_millis() as u64;
        Ok((record, verdict, artifact))
    }

    /// Converts the answer to the declared type and applies the guards;
    /// for an effect, checks the command, runs it and guards the outcome.
    async fn judge(
        &self,
        action: &Action,
        env: Env<'_>,
        (path, attempt): (&str, u32),
        text: &str,
    ) -> Judgement {
        let artifact = match convert(text, &action.output) {
            Ok(v) => v,
            Err(feedback) => return Judgement::unguarded(Verdict::Fail(feedback)),
        };
        // where a judge's generator calls are counted and recorded
        let site = Site {
            path: path.to_string(),
            action: self.program.action(&action.name).unwrap_or(ActionId(0)),
            attempt,
        };
        let env = env.at(&site);
        let Some(effect) = &action.effect else {
            let verdict = guard::evaluate(self, &action.guard, &artifact, env).await;
            return Judgement {
                verdict,
                artifact: Some(artifact),
                outcome: None,
                guarded: true,
            };
        };
        if let Some(pre) = &action.pre_guard {
            let v = guard::evaluate(self, pre, &artifact, env).await;
            if !v.passed() {
                return Judgement::unguarded(v);
            }
        }
        let name = &self.program.externs[effect.effect.index()].name;
        let Some(imp) = self.bindings.effects[effect.effect.index()].clone() else {
            let msg = format!("the effect `{name}` has no implementation in this engine");
            return Judgement::unguarded(Verdict::Fatal(msg));
        };
        let args = match effect
            .args
            .iter()
            .map(|a| super::eval::operand(a, &env))
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(a) => a,
            Err(e) => return Judgement::unguarded(Verdict::Fatal(e)),
        };
        let call = EffectCall {
            command: text_of(&artifact).trim().to_string(),
            artifact: text_of(&artifact).into_owned(),
            args,
            workdir: self.workdir.clone(),
        };
        self.emit(|| Event::EffectStarted {
            path: path.to_string(),
            action: action.name.clone(),
            attempt,
            command: call.command.clone(),
        });
        if let Some(why) = self.sink_failure() {
            let msg = format!("the run store failed before the effect ran: {why}");
            return Judgement::unguarded(Verdict::Fatal(msg));
        }
        let ran = match &self.executor {
            Some(exec) => {
                let inv = super::exec::EffectInvocation {
                    effect: effect.effect.0,
                    command: call.command,
                    artifact: call.artifact,
                    args: call.args,
                    action: id_of(self, action),
                    path: path.to_string(),
                    attempt,
                };
                exec.effect(inv).await
            }
            None => imp(call).await,
        };
        let outcome = match ran {
            Ok(o) => o,
            // nothing ran: the model may propose again
            Err(e) => match e.strip_prefix(crate::runtime::registry::REFUSED) {
                Some(why) => return Judgement::unguarded(Verdict::Fail(why.to_string())),
                None => return Judgement::unguarded(Verdict::Fatal(format!("{name}: {e}"))),
            },
        };
        let v = guard::evaluate(self, &action.guard, &outcome, env).await;
        // an effect that ran is never run again unless `:idempotent`
        let v = match v {
            Verdict::Fail(f) if !action.idempotent => Verdict::Fatal(format!(
                "{f} (the effect ran and is not `:idempotent`, so it is not retried)"
            )),
            v => v,
        };
        Judgement {
            verdict: v,
            artifact: Some(artifact),
            outcome: Some(outcome),
            guarded: true,
        }
    }

    async fn generate(
        &self,
        id: ActionId,
        action: &Action,
        (path, (attempt, uncut), prompt, role): (&str, (u32, u32), &str, Option<&str>),
        feedback: Option<String>,
    ) -> Result<Served, GenFailure> {
        let providers = self.providers(action)?;
        let timeout = action
            .timeout_ms
            .or(self.program.defaults.timeout_ms)
            .map(Duration::from_millis);
        let mut skipped: Vec<String> = Vec::new();
        let last = providers.len().saturating_sub(1);
        for (i, provider) in providers.into_iter().enumerate() {
            let name = provider.0.clone();
            let answer = match &self.executor {
                Some(exec) => {
                    let call = super::exec::ProviderCall {
                        action: id.0,
                        provider: i,
                        path: path.to_string(),
                        attempt,
                        uncut_attempt: uncut,
                        prompt: prompt.to_string(),
                        role: role.map(str::to_string),
                        feedback: feedback.clone(),
                    };
                    exec.generate(call).await.into()
                }
                None => {
                    let at = (path, (attempt, uncut), prompt, role);
                    self.call_provider(
                        id,
                        action,
                        at,
                        feedback.clone(),
                        timeout,
                        provider,
                        i < last,
                    )
                    .await
                }
            };
            match answer {
                Ok(response) => {
                    return Ok(Served {
                        response,
                        provider: name,
                        skipped,
                        fallback: last > 0,
                    })
                }
                Err(e) if e.transport => skipped.push(format!("{name}: {}", e.message)),
                Err(e) if e.fatal => return Err(GenFailure::Fatal(e.message)),
                Err(e) => return Err(GenFailure::Retry(e.message)),
            }
        }
        Err(GenFailure::Transport(skipped.join("; ")))
    }

    /// One provider's call, in this process: the request as the
    /// generator sees it, cut off after the action's timeout (else the
    /// provider's own).
    #[allow(clippy::too_many_arguments)]
    async fn call_provider(
        &self,
        id: ActionId,
        action: &Action,
        (path, (attempt, uncut), prompt, role): (&str, (u32, u32), &str, Option<&str>),
        feedback: Option<String>,
        timeout: Option<Duration>,
        (name, generator, args, own_timeout, dir): Provider,
        has_fallback: bool,
    ) -> Result<GenResponse, GenError> {
        let timeout = timeout.or(own_timeout);
        let request = GenRequest {
            action: action.name.clone(),
            attempt,
            uncut_attempt: uncut,
            prompt: prompt.to_string(),
            role: role.map(str::to_string),
            feedback,
            max_tokens: action.max_tokens.or(self.program.defaults.max_tokens),
            args,
            output_type: self.output_types[id.index()].clone(),
            output_schema: self.output_schemas[id.index()].clone(),
            timeout,
            workdir: dir,
            has_fallback,
            notify: self.notifier(path, &action.name, attempt, &name),
            seed: self.seed,
        };
        call_generator(generator.as_ref(), request, timeout).await
    }

    /// A provider's call handed over by an executor (`runtime::exec`),
    /// made here as [`Run::generate`] would make it.
    pub async fn provider_call_here(
        &self,
        call: super::exec::ProviderCall,
    ) -> Result<GenResponse, GenError> {
        let id = ActionId(call.action);
        let Some(action) = self.program.actions.get(id.index()) else {
            return Err(GenError::fatal(format!(
                "there is no action #{}",
                call.action
            )));
        };
        let providers = match self.providers(action) {
            Ok(p) => p,
            Err(GenFailure::Fatal(m) | GenFailure::Retry(m) | GenFailure::Transport(m)) => {
                return Err(GenError::fatal(m))
            }
        };
        let last = providers.len().saturating_sub(1);
        let Some(provider) = providers.into_iter().nth(call.provider) else {
            return Err(GenError::fatal(format!(
                "`{}` has no provider #{}",
                action.name, call.provider
            )));
        };
        let timeout = action
            .timeout_ms
            .or(self.program.defaults.timeout_ms)
            .map(Duration::from_millis);
        // an older caller's call (no number given): its attempt's own
        let uncut = match call.uncut_attempt {
            0 => call.attempt,
            n => n,
        };
        let at = (
            call.path.as_str(),
            (call.attempt, uncut),
            call.prompt.as_str(),
            call.role.as_deref(),
        );
        self.call_provider(
            id,
            action,
            at,
            call.feedback,
            timeout,
            provider,
            call.provider < last,
        )
        .await
    }

    /// An effect's run handed over by an executor (`runtime::exec`).
    pub async fn effect_here(&self, inv: super::exec::EffectInvocation) -> Result<Value, String> {
        let Some(Some(imp)) = self.bindings.effects.get(inv.effect as usize).cloned() else {
            return Err(format!(
                "the effect #{} has no implementation in this worker",
                inv.effect
            ));
        };
        imp(EffectCall {
            command: inv.command,
            artifact: inv.artifact,
            args: inv.args,
            workdir: self.workdir.clone(),
        })
        .await
    }

    /// The providers of an action's generator, in the order they are
    /// tried: the instance, then its `fallback(…)` instances; a test's
    /// `:with` replaces them all.
    fn providers(&self, action: &Action) -> Result<Vec<Provider>, GenFailure> {
        if let Some((g, args, t)) = &self.replacement {
            return Ok(vec![(
                "with".to_string(),
                g.clone(),
                args.clone(),
                *t,
                self.workdir.clone(),
            )]);
        }
        let first = &self.program.generators[action.generator.index()];
        let ids = match first.providers.as_slice() {
            [] => vec![action.generator],
            some => some.to_vec(),
        };
        ids.into_iter()
            .map(|gid| {
                let inst = &self.program.generators[gid.index()];
                let kind = &self.program.externs[inst.kind.index()];
                let Some(g) = self.bindings.generators[inst.kind.index()].clone() else {
                    return Err(GenFailure::Fatal(format!(
                        "the generator `{}` has no implementation in this engine",
                        kind.name
                    )));
                };
                let args = self.generator_args[gid.index()].clone();
                let t = kind
                    .params
                    .iter()
                    .position(|p| p.name == "timeout")
                    .and_then(|i| args.get(i))
                    .and_then(Value::as_u64)
                    .map(Duration::from_millis);
                // its relative paths are the file's that defines it
                let dir = super::paths::dir_of(&self.dirs, &self.workdir, inst.span.file);
                Ok((inst.name.clone(), g, args, t, dir))
            })
            .collect()
    }

    /// Where a call of `provider` says what it waits for: a `Waiting`
    /// event to the run's observer and sink.
    fn notifier(&self, path: &str, action: &str, attempt: u32, provider: &str) -> Notifier {
        let (observer, sink) = (self.observer.clone(), self.sink.clone());
        if observer.is_none() && sink.is_none() {
            return Notifier::default();
        }
        let (path, action, provider) = (path.to_string(), action.to_string(), provider.to_string());
        Notifier::new(move |what| {
            let e = Event::Waiting {
                path: path.clone(),
                action: action.clone(),
                attempt,
                provider: provider.clone(),
                what: super::redact::scrub_string(what.to_string()),
            };
            if let Some(s) = &sink {
                s.record(&e);
            }
            if let Some(o) = &observer {
                o(&e);
            }
        })
    }
}

/// An action's id, from its place in the program.
fn id_of(run: &Run<'_>, action: &Action) -> u32 {
    run.program.action(&action.name).map_or(0, |a| a.0)
}

/// A provider: its name (the generator instance), implementation,
/// arguments and own timeout.
type Provider = (
    String,
    std::sync::Arc<dyn crate::runtime::registry::Generator>,
    Vec<Value>,
    Option<Duration>,
    std::sync::Arc<std::path::Path>,
);

/// One generator call, cut off after `timeout` (unless the generator
/// times itself, from when its request leaves). The runtime's cut-off is
/// the action's budget for an answer, so it is a failed attempt, not a
/// transport failure (a generator that retries its transport stops
/// before it and says so itself).
async fn call_generator(
    generator: &dyn crate::runtime::registry::Generator,
    request: GenRequest,
    timeout: Option<Duration>,
) -> Result<GenResponse, GenError> {
    let timeout = timeout.filter(|_| !generator.times_itself());
    let call = generator.generate(request);
    match timeout {
        Some(t) => match tokio::time::timeout(t, call).await {
            Ok(a) => a,
            Err(_) => Err(GenError::retryable(format!(
                "the generator did not answer within {}",
                show_duration(t)
            ))),
        },
        None => call.await,
    }
}

/// A generator's answer and the provider that gave it.
struct Served {
    response: GenResponse,
    provider: String,
    /// Providers tried before it, each with its transport failure.
    skipped: Vec<String>,
    /// The generator has more than one provider (a `fallback(…)`).
    fallback: bool,
}

/// What judging an answer came to.
struct Judgement {
    verdict: Verdict,
    /// The converted answer, when it converted.
    artifact: Option<Value>,
    /// An effect's outcome, when the effect ran.
    outcome: Option<Value>,
    /// Whether the action's guard ran (not when the answer did not
    /// convert, or a precondition or the effect stopped it first).
    guarded: bool,
}

impl Judgement {
    fn unguarded(verdict: Verdict) -> Judgement {
        Judgement {
            verdict,
            artifact: None,
            outcome: None,
            guarded: false,
        }
    }
}

enum GenFailure {
    Fatal(String),
    /// The answer failed (its text is feedback for the next attempt).
    Retry(String),
    /// Every provider failed in transport: the action fails; nothing of
    /// it reaches a prompt and no guard attempt is used.
    Transport(String),
}
