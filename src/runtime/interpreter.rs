//! The interpreter: tasks try their methods in order, methods run their
//! subtasks as the ordering says (sequence, fork-join, partial order),
//! actions loop generate → convert → guard.
//!
//! Concurrency: the branches of a fork-join are polled together on the
//! run's task (`FuturesUnordered`), so they overlap whenever they wait on
//! a generator, a guard's program, a timer or a resource; a failed branch
//! cancels its siblings by dropping them, and dropping a future that runs
//! a program kills that program's process group.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::{BoxFuture, FutureExt};
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::check::ir::{Callee, Method, OnFail, Ordering, Program, ResourceUse, Subtask, TaskId};

use super::action::{ActionEnd, ActionOpts};
use super::eval::{operand, Env, Rejected};
use super::event::{AttemptRecord, Event, Observer};
use super::guard;
use super::refine::{keep_latest, Inherited, INHERITED_CAP, KEPT_CAP};
use super::registry::{EffectImpl, Generator, GuardImpl};
use super::report::{ActionCalls, RunReport};
use super::resume::Resume;
use super::shared::{SharedPlace, Units};
use super::sink::Sink;
use super::value::{Value, Verdict};

/// The implementations bound to a program's externs, by `ExternId`.
#[derive(Default, Clone)]
pub struct Bindings {
    pub guards: Vec<Option<GuardImpl>>,
    pub generators: Vec<Option<Arc<dyn Generator>>>,
    pub effects: Vec<Option<EffectImpl>>,
}

/// Guard runs, counted where guards are called (generator calls are
/// counted per action in the log).
#[derive(Default)]
pub struct Counters {
    pub guard_runs: AtomicU64,
    /// Judge calls so far, by what a generator is asked as (`action/guard`).
    pub judge_numbers: Arc<Mutex<std::collections::HashMap<String, u32>>>,
}

/// What a run has recorded so far.
#[derive(Default)]
pub struct Log {
    pub attempts: Vec<AttemptRecord>,
    pub artifacts: Vec<(String, Value)>,
    /// Every call a judge made to its generator.
    pub judge_calls: Vec<super::event::JudgeCall>,
    /// By `ActionId`.
    pub calls: Vec<ActionCalls>,
    /// Attempts started so far, by `ActionId`.
    pub attempt_numbers: Vec<u32>,
    /// Runs of an action so far, by path (kept only when the run is
    /// recorded or resumed).
    pub occurrences: std::collections::HashMap<String, u32>,
}

/// A generator standing in for every other: its implementation, its
/// arguments and its own timeout.
pub type Replacing = (Arc<dyn Generator>, Vec<Value>, Option<Duration>);

/// One run of a program: everything the interpreter's functions share.
pub struct Run<'p> {
    pub program: &'p Program,
    pub inputs: Vec<Value>,
    pub bindings: Bindings,
    /// Each generator instance's evaluated arguments, by `GeneratorId`.
    pub generator_args: Vec<Vec<Value>>,
    /// A generator replacing every generator of the run (a test's
    /// `:with`), with its arguments and timeout.
    pub replacement: Option<Replacing>,
    pub resources: Vec<Semaphore>,
    pub workdir: Arc<Path>,
    /// The directory each source file's relative paths resolve in, by
    /// `FileId` (`runtime::paths`).
    pub dirs: Vec<Arc<Path>>,
    /// Each action's output type in guardflow syntax, by `ActionId`.
    pub output_types: Vec<Arc<str>>,
    /// Per action, the JSON Schema of a `Json<T>` output.
    pub output_schemas: Vec<Option<Arc<Value>>>,
    pub observer: Option<Observer>,
    /// The longest a host guard may take (`:default-timeout`).
    pub guard_timeout: Option<Duration>,
    pub counters: Counters,
    pub log: Mutex<Log>,
    pub started: Instant,
    /// The most attempts the run can record (the checker's worst case):
    /// a long log grows to it at once instead of doubling.
    pub log_hint: usize,
    /// Where the run is recorded durably (the run store).
    pub sink: Option<Arc<dyn Sink>>,
    /// What an earlier process of this run recorded.
    pub resume: Option<Resume>,
    /// Where the units of `:shared` resources are held across processes;
    /// without it they are pooled in this process only.
    pub shared: Option<SharedPlace>,
    /// The run's seed, given to every generator call (`GenRequest::seed`).
    pub seed: u64,
    /// Where generator, guard and effect calls are made (`runtime::exec`):
    /// `None`, in this process.
    pub executor: Option<Arc<dyn super::exec::Executor>>,
}

/// Resource units held, released when dropped.
pub struct Permits<'r> {
    _local: Vec<SemaphorePermit<'r>>,
    _shared: Vec<Units>,
    _remote: Vec<super::exec::HeldUnits>,
}

impl<'p> Run<'p> {
    pub fn emit(&self, make: impl FnOnce() -> Event) {
        match (&self.observer, &self.sink) {
            (None, None) => {}
            (Some(o), None) => o(&make()),
            (o, Some(s)) => {
                let e = make();
                s.record(&e);
                if let Some(o) = o {
                    o(&e);
                }
            }
        }
    }

    /// As [`Run::emit`], for an event the run must not go on before it is
    /// durable: awaits the sink's commit (see [`Sink::record_durable`]).
    pub async fn emit_durable(&self, make: impl FnOnce() -> Event) {
        match &self.sink {
            None => self.emit(make),
            Some(s) => {
                let e = make();
                s.record_durable(&e).await;
                if let Some(o) = &self.observer {
                    o(&e);
                }
            }
        }
    }

    /// Why the sink failed, once it has.
    pub fn sink_failure(&self) -> Option<String> {
        self.sink.as_ref().and_then(|s| s.failure())
    }

    /// The next occurrence of an action at `path`, from 1; 0 when nobody
    /// records or resumes the run.
    pub fn next_occurrence(&self, path: &str) -> u32 {
        if self.sink.is_none() && self.resume.is_none() && self.observer.is_none() {
            return 0;
        }
        let mut log = self.log();
        let n = log.occurrences.entry(path.to_string()).or_insert(0);
        *n += 1;
        *n
    }

    pub fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Acquires every unit `uses` asks for, all at once per resource and
    /// in one global order (by resource id), so holders never wait on
    /// each other in a cycle.
    /// A `:shared` resource's units are also taken from the pool of every
    /// run of the store (`runtime::shared`), after this process's own, or
    /// from the executor's pool across runs when it keeps one (Temporal).
    pub async fn acquire(&self, uses: &[ResourceUse]) -> Result<Permits<'_>, String> {
        // one order for every process: shared pools are matched across
        // runs by name, so they are taken by name (after this run's own),
        // and two workflows never hold one while waiting on the other
        let mut order: Vec<&ResourceUse> = uses.iter().collect();
        order.sort_by_key(|u| {
            let r = &self.program.resources[u.resource.index()];
            (
                r.shared,
                if r.shared { r.name.as_str() } else { "" },
                u.resource,
            )
        });
        let mut permits = Vec::with_capacity(order.len());
        let mut shared = Vec::new();
        let mut remote = Vec::new();
        for u in order {
            let sem = &self.resources[u.resource.index()];
            let n = u32::try_from(u.amount).unwrap_or(u32::MAX);
            // the semaphores are never closed
            if let Ok(p) = sem.acquire_many(n).await {
                permits.push(p);
            }
            let resource = &self.program.resources[u.resource.index()];
            // across runs on Temporal: the executor's pool
            let across = match (&self.executor, resource.shared) {
                (Some(exec), true) => exec.shared_units(&resource.name, resource.size, u.amount),
                _ => None,
            };
            if let Some(units) = across {
                remote.push(units.await?);
            } else if let (true, Some(place)) = (resource.shared, &self.shared) {
                let units =
                    super::shared::acquire(place, &resource.name, resource.size, u.amount).await?;
                shared.push(units);
            }
        }
        Ok(Permits {
            _local: permits,
            _shared: shared,
            _remote: remote,
        })
    }

    /// Runs the root callee: a task, or an action on its own.
    pub async fn run_root(
        &self,
        callee: Callee,
        args: Vec<Value>,
    ) -> Result<Option<Value>, String> {
        match callee {
            Callee::Task(t) => self.run_task(t, args, String::new(), Vec::new()).await,
            Callee::Action(a) => {
                let name = &self.program.actions[a.index()].name;
                match self
                    .run_action(a, args, name.clone(), ActionOpts::default())
                    .await
                {
                    Ok(v) => Ok(Some(v)),
                    Err(ActionEnd::Failed(r) | ActionEnd::Escalate(r)) => Err(r),
                }
            }
        }
    }

    fn run_task(
        &self,
        id: TaskId,
        args: Vec<Value>,
        parent: String,
        stack: Vec<TaskId>,
    ) -> BoxFuture<'_, Result<Option<Value>, String>> {
        async move {
            let task = &self.program.tasks[id.index()];
            let path = join_path(&parent, &task.name);
            if let Some(max) = task.max_depth {
                let depth = stack.iter().filter(|t| **t == id).count() as u64;
                if depth >= max {
                    return Err(format!(
                        "`{}` is already {depth} deep, its `:max-depth`",
                        task.name
                    ));
                }
            }
            self.emit(|| Event::TaskStarted {
                path: path.clone(),
                task: task.name.clone(),
            });
            let mut stack = stack;
            stack.push(id);
            let mut reasons = Vec::new();
            // what failed methods' attempts got wrong, for the next method
            let mut inherited = Inherited::new();
            for method in &task.methods {
                let mpath = join_path(&path, &method.name);
                if method.fresh_history {
                    inherited.clear();
                }
                if let Some(pre) = &method.pre {
                    let env = Env::new(&args, &self.inputs);
                    let verdict = guard::evaluate(self, pre, &Value::Null, env).await;
                    if !verdict.passed() {
                        let reason = format!("its `:pre` does not hold: {}", verdict.feedback());
                        self.emit(|| Event::MethodSkipped {
                            path: mpath.clone(),
                            method: method.name.clone(),
                            reason: reason.clone(),
                        });
                        reasons.push(format!("method `{}`: {reason}", method.name));
                        continue;
                    }
                }
                self.emit(|| Event::MethodStarted {
                    path: mpath.clone(),
                    method: method.name.clone(),
                });
                let mark = self.attempt_mark();
                let outcome = match self.acquire(&method.uses).await {
                    Ok(permits) => {
                        let outcome = self
                            .run_method(method, &args, &mpath, &stack, &inherited)
                            .await;
                        drop(permits);
                        outcome
                    }
                    Err(e) => Err(e),
                };
                match outcome {
                    Ok(v) => {
                        self.emit(|| Event::TaskFinished {
                            path: path.clone(),
                            task: task.name.clone(),
                            success: true,
                        });
                        return Ok(v);
                    }
                    Err(reason) => {
                        self.emit(|| Event::MethodFailed {
                            path: mpath.clone(),
                            method: method.name.clone(),
                            reason: reason.clone(),
                        });
                        inherited.extend(self.left_by_method(mark, method, &mpath));
                        keep_latest(&mut inherited, INHERITED_CAP);
                        reasons.push(format!("method `{}`: {reason}", method.name));
                    }
                }
            }
            self.emit(|| Event::TaskFinished {
                path: path.clone(),
                task: task.name.clone(),
                success: false,
            });
            Err(match reasons.len() {
                1 => format!("`{}` failed: {}", task.name, reasons[0]),
                _ => format!(
                    "every method of `{}` failed:\n  {}",
                    task.name,
                    reasons.join("\n  ").replace('\n', "\n  ")
                ),
            })
        }
        .boxed()
    }

    async fn run_method(
        &self,
        method: &Method,
        params: &[Value],
        path: &str,
        stack: &[TaskId],
        inherited: &Inherited,
    ) -> Result<Option<Value>, String> {
        let scope = Scope {
            method,
            params,
            path,
            stack,
            inherited,
            labels: Mutex::new(vec![None; method.subtasks.len()]),
        };
        self.run_ordering(&scope, &method.ordering).await?;
        let labels = scope.labels.into_inner().unwrap_or_else(|e| e.into_inner());
        if let Some(op) = &method.result_value {
            let env = Env {
                params,
                labels: &labels,
                inputs: &self.inputs,
                item: None,
                site: None,
            };
            return operand(op, &env).map(Some);
        }
        Ok(method
            .result
            .and_then(|i| labels.into_iter().nth(i as usize).flatten()))
    }

    fn run_ordering<'a>(
        &'a self,
        scope: &'a Scope<'a>,
        ordering: &'a Ordering,
    ) -> BoxFuture<'a, Result<(), String>> {
        async move {
            match ordering {
                Ordering::Label { index, .. } => self.run_subtask(scope, *index as usize).await,
                Ordering::Seq { items, .. } => {
                    for item in items {
                        self.run_ordering(scope, item).await?;
                    }
                    Ok(())
                }
                Ordering::Par { items, .. } => {
                    let branches: FuturesUnordered<_> =
                        items.iter().map(|i| self.run_ordering(scope, i)).collect();
                    self.join(scope, branches).await
                }
                Ordering::Partial { chains, .. } => self.run_partial(scope, chains).await,
            }
        }
        .boxed()
    }

    /// Waits for every branch; the first failure cancels the rest unless
    /// the method says `:on-fail continue`.
    async fn join<'a>(
        &'a self,
        scope: &Scope<'a>,
        mut branches: FuturesUnordered<BoxFuture<'a, Result<(), String>>>,
    ) -> Result<(), String> {
        let mut first_error = None;
        while let Some(outcome) = branches.next().await {
            if let Err(e) = outcome {
                if scope.method.on_fail == OnFail::Cancel {
                    // dropping the other branches cancels them
                    return Err(e);
                }
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// A partial order: a subtask starts once every subtask before it in
    /// some chain has finished.
    async fn run_partial<'a>(
        &'a self,
        scope: &'a Scope<'a>,
        chains: &'a [Vec<(u32, crate::source::Span)>],
    ) -> Result<(), String> {
        let mut nodes: Vec<u32> = chains.iter().flatten().map(|(l, _)| *l).collect();
        nodes.sort_unstable();
        nodes.dedup();
        let pos = |l: u32| nodes.binary_search(&l).unwrap_or(0);
        let mut waiting = vec![0usize; nodes.len()];
        let mut next: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
        for chain in chains {
            for w in chain.windows(2) {
                let (a, b) = (pos(w[0].0), pos(w[1].0));
                if !next[a].contains(&b) {
                    next[a].push(b);
                    waiting[b] += 1;
                }
            }
        }
        let start = |i: usize| -> BoxFuture<'a, (usize, Result<(), String>)> {
            let label = nodes[i] as usize;
            async move { (i, self.run_subtask(scope, label).await) }.boxed()
        };
        let mut running: FuturesUnordered<_> = (0..nodes.len())
            .filter(|&i| waiting[i] == 0)
            .map(start)
            .collect();
        let mut first_error = None;
        while let Some((done, outcome)) = running.next().await {
            match outcome {
                Err(e) if scope.method.on_fail == OnFail::Cancel => return Err(e),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
                Ok(()) => {
                    for &n in &next[done] {
                        waiting[n] -= 1;
                        if waiting[n] == 0 {
                            running.push(start(n));
                        }
                    }
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Evaluates a subtask's arguments against the artifacts committed so
    /// far (and a map's current item).
    fn subtask_args(
        &self,
        scope: &Scope<'_>,
        sub: &Subtask,
        item: Option<&Value>,
    ) -> Result<Vec<Value>, String> {
        let labels = scope.labels.lock().unwrap_or_else(|e| e.into_inner());
        let env = Env {
            params: scope.params,
            labels: &labels,
            inputs: &self.inputs,
            item,
            site: None,
        };
        sub.args.iter().map(|a| operand(a, &env)).collect()
    }

    async fn run_subtask(&self, scope: &Scope<'_>, index: usize) -> Result<(), String> {
        let sub = &scope.method.subtasks[index];
        let value = match &sub.each {
            None => {
                let path = join_path(scope.path, &sub.label);
                self.run_one(scope, sub, &path, scope.path, None).await?
            }
            // boxed: a map's state would otherwise size every subtask
            Some(each) => Box::pin(self.run_map(scope, sub, each)).await?,
        };
        let mut labels = scope.labels.lock().unwrap_or_else(|e| e.into_inner());
        labels[index] = Some(value);
        Ok(())
    }

    /// A map: the call once per item of the list, at most `:parallel`
    /// at a time, each item at its own path (`c[3]`), so events, the store
    /// and a resume tell the items apart. The artifact is the outputs in
    /// the order of the items. The first item to fail cancels the others
    /// (dropping them), unless the method says `:on-fail continue`: then
    /// every item runs to its end (each success committed) and the map
    /// fails naming every failed item.
    async fn run_map(
        &self,
        scope: &Scope<'_>,
        sub: &Subtask,
        each: &crate::check::ir::Each,
    ) -> Result<Value, String> {
        let items = {
            let labels = scope.labels.lock().unwrap_or_else(|e| e.into_inner());
            let env = Env {
                params: scope.params,
                labels: &labels,
                inputs: &self.inputs,
                item: None,
                site: None,
            };
            operand(&each.source, &env)?
        };
        let Value::Array(items) = items else {
            return Err(format!(
                "`{}` maps over a value that is not a list: {}",
                sub.label,
                super::value::text_of(&items)
            ));
        };
        // the bound is the type's: a longer list is refused, never cut
        if items.len() as u64 > each.bound {
            return Err(format!(
                "`{}` maps over {} items, more than the list type's bound of {}; no item was run",
                sub.label,
                items.len(),
                each.bound
            ));
        }
        let paths: Vec<String> = (0..items.len())
            .map(|i| join_path(scope.path, &format!("{}[{i}]", sub.label)))
            .collect();
        let width = usize::try_from(each.width()).unwrap_or(usize::MAX).max(1);
        let mut results: Vec<Option<Value>> = vec![None; items.len()];
        let mut failures: Vec<String> = Vec::new();
        let start = |i: usize| -> BoxFuture<'_, (usize, Result<Value, String>)> {
            let (item, path) = (&items[i], &paths[i]);
            async move { (i, self.run_one(scope, sub, path, path, Some(item)).await) }.boxed()
        };
        let mut running = FuturesUnordered::new();
        let mut next = 0;
        while next < items.len() && running.len() < width {
            running.push(start(next));
            next += 1;
        }
        while let Some((i, outcome)) = running.next().await {
            match outcome {
                Ok(v) => results[i] = Some(v),
                Err(e) => {
                    let e = format!("item {i} of `{}`: {e}", sub.label);
                    if scope.method.on_fail == OnFail::Cancel {
                        // dropping the running items cancels them
                        return Err(e);
                    }
                    failures.push(e);
                }
            }
            if next < items.len() {
                running.push(start(next));
                next += 1;
            }
        }
        drop(running);
        match failures.len() {
            0 => Ok(Value::Array(results.into_iter().flatten().collect())),
            1 => Err(failures.remove(0)),
            n => Err(format!(
                "{n} items of `{}` failed:\n  {}",
                sub.label,
                failures.join("\n  ").replace('\n', "\n  ")
            )),
        }
    }

    /// One run of a subtask's call (of one item of a map), with its
    /// escalations; `path` names an action's run, `task_parent` is where a
    /// task's path starts.
    async fn run_one(
        &self,
        scope: &Scope<'_>,
        sub: &Subtask,
        path: &str,
        task_parent: &str,
        item: Option<&Value>,
    ) -> Result<Value, String> {
        let mut escalations = 0u64;
        // an action starts from what the failed methods before got wrong
        // and, after an escalation, from its own attempts before it
        let mut kept = self.inherited_for(sub.callee, scope.inherited);
        loop {
            let args = self.subtask_args(scope, sub, item)?;
            let may_escalate = sub
                .escalation
                .as_ref()
                .filter(|e| escalations < e.max.unwrap_or(0));
            let mark = self.attempt_mark();
            let outcome = match sub.callee {
                Callee::Action(a) => {
                    let opts = ActionOpts {
                        escalate_after: may_escalate.map(|e| e.after),
                        history: kept.clone(),
                    };
                    self.run_action(a, args, path.to_string(), opts).await
                }
                Callee::Task(t) => self
                    .run_task(t, args, task_parent.to_string(), scope.stack.to_vec())
                    .await
                    .map(|v| v.unwrap_or(Value::Null))
                    .map_err(|r| {
                        if may_escalate.is_some() {
                            ActionEnd::Escalate(r)
                        } else {
                            ActionEnd::Failed(r)
                        }
                    }),
            };
            match outcome {
                Ok(v) => return Ok(v),
                Err(ActionEnd::Failed(reason)) => return Err(reason),
                Err(ActionEnd::Escalate(feedback)) => {
                    let Some(esc) = &sub.escalation else {
                        return Err(feedback);
                    };
                    escalations += 1;
                    let target = esc.target as usize;
                    let target_label = &scope.method.subtasks[target].label;
                    kept.extend(self.kept_after_escalation(mark, path, target_label));
                    keep_latest(&mut kept, KEPT_CAP);
                    let target_path = match scope.method.subtasks[target].callee {
                        Callee::Action(_) => join_path(scope.path, target_label),
                        Callee::Task(t) => {
                            join_path(scope.path, &self.program.tasks[t.index()].name)
                        }
                    };
                    self.emit(|| Event::Escalated {
                        path: path.to_string(),
                        target: target_label.clone(),
                        target_path,
                        feedback: feedback.clone(),
                    });
                    let note = format!(
                        "A later step, `{}`, kept failing with your previous answer as its input:\n{feedback}",
                        sub.label
                    );
                    // boxed: escalation is rare, and inline its state would
                    // size every pending branch
                    Box::pin(self.regenerate(scope, target, note)).await?;
                }
            }
        }
    }

    /// Runs subtask `index` again with `note` in its context (upstream
    /// escalation), replacing its committed artifact.
    async fn regenerate(
        &self,
        scope: &Scope<'_>,
        index: usize,
        note: String,
    ) -> Result<(), String> {
        let sub = &scope.method.subtasks[index];
        let path = join_path(scope.path, &sub.label);
        let args = self.subtask_args(scope, sub, None)?;
        // the artifact the later step failed with is the answer to improve
        let old = {
            let labels = scope.labels.lock().unwrap_or_else(|e| e.into_inner());
            labels[index]
                .as_ref()
                .map(|v| super::value::text_of(v).into_owned())
        };
        let value = match sub.callee {
            Callee::Action(a) => {
                let opts = ActionOpts {
                    escalate_after: None,
                    history: vec![Rejected::new(old.as_deref(), &note, None)],
                };
                self.run_action(a, args, path, opts)
                    .await
                    .map_err(|(ActionEnd::Failed(r) | ActionEnd::Escalate(r))| r)?
            }
            Callee::Task(t) => self
                .run_task(t, args, scope.path.to_string(), scope.stack.to_vec())
                .await?
                .unwrap_or(Value::Null),
        };
        let mut labels = scope.labels.lock().unwrap_or_else(|e| e.into_inner());
        labels[index] = Some(value);
        Ok(())
    }

    /// The report of a finished run.
    pub fn report(
        &self,
        task: String,
        outcome: Result<Option<Value>, String>,
        worst_case_calls: Option<u64>,
    ) -> RunReport {
        let mut log = self.log();
        let mut log = std::mem::take(&mut *log);
        // attempts an earlier process recorded where this one did not go
        // (a cancelled branch, another way): calls made all the same
        if let Some(resume) = &self.resume {
            for (name, (calls, repeated)) in resume.unreached_calls() {
                if let Some(i) = self.program.actions.iter().position(|a| a.name == name) {
                    log.calls[i].generator_calls += calls;
                    log.calls[i].repeated_calls += repeated;
                }
            }
        }
        let generator_calls = log.calls.iter().map(|c| c.generator_calls).sum();
        let repeated_calls = log.calls.iter().map(|c| c.repeated_calls).sum();
        let actions = self
            .program
            .actions
            .iter()
            .zip(log.calls)
            .filter(|(_, c)| {
                c.generator_calls > 0 || c.repeated_calls > 0 || c.guard_runs > 0 || c.failed > 0
            })
            .map(|(a, c)| (a.name.clone(), c))
            .collect();
        let (success, failure, result) = match outcome {
            Ok(v) => (true, None, v),
            Err(e) => (false, Some(e), None),
        };
        RunReport {
            task,
            success,
            failure,
            result,
            artifacts: log.artifacts,
            attempts: log.attempts,
            judge_calls: log.judge_calls,
            actions,
            generator_calls,
            repeated_calls,
            guard_runs: self.counters.guard_runs.load(Relaxed),
            elapsed_ms: self.started.elapsed().as_millis() as u64,
            worst_case_calls,
        }
    }
}

/// One method being run: its parameters and committed artifacts.
struct Scope<'a> {
    method: &'a Method,
    params: &'a [Value],
    path: &'a str,
    stack: &'a [TaskId],
    labels: Mutex<Vec<Option<Value>>>,
    /// The rejected attempts of the task's failed methods before this one.
    inherited: &'a Inherited,
}

pub fn join_path(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_string()
    } else {
        let mut s = String::with_capacity(parent.len() + 1 + name.len());
        s.push_str(parent);
        s.push('/');
        s.push_str(name);
        s
    }
}

/// A verdict as the event stream shows it.
pub fn verdict_kind(v: &Verdict) -> super::event::VerdictKind {
    match v {
        Verdict::Pass => super::event::VerdictKind::Pass,
        Verdict::Fail(_) => super::event::VerdictKind::Fail,
        Verdict::Fatal(_) => super::event::VerdictKind::Fatal,
    }
}
