//! The writer and its recorders. A [`Writer`] is one connection to the
//! store that records any number of runs at once (the trials of a bench,
//! or one run); a [`Recorder`] is one run's sink on it. Each event is
//! written into the writer's open transaction as it happens; the
//! transaction, with every run's events in it, is committed before a run
//! reaches out of the process (an attempt starts: its generator is
//! called; an effect starts), when a generator's answer is in (before it
//! is judged) and when a run ends, so one commit makes the events of many
//! runs durable (a group commit). The writer's one thread commits
//! whatever else waits longer than [`FLUSH_AFTER`], and copies the log
//! into the database.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use rusqlite::{params, Connection};

use super::journal;
use super::lock::RunLock;
use super::resume::Prior;
use super::schema::{first_key, MAX_SEQ};
use super::{content_hash, now_ms, StoreError};
use crate::runtime::{Event, Sink, VerdictKind};

/// The longest an event waits in the open transaction when no attempt
/// starts after it (a branch committed while another waits for its
/// generator).
pub const FLUSH_AFTER: Duration = Duration::from_millis(20);

/// How often the log is copied into the database (a checkpoint, the only
/// write that waits for the disk).
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// One connection writing runs into the store, shared by their
/// recorders; cloning it shares it. Made by `Store::writer`.
#[derive(Clone)]
pub struct Writer {
    core: Arc<Core>,
}

/// The writer's state; when the last recorder and handle are gone, what
/// waits is committed and the thread stops after a last checkpoint.
struct Core {
    path: PathBuf,
    shared: Arc<Shared>,
    background: Mutex<Option<Background>>,
}

/// Records one run into the store, through a writer.
pub struct Recorder {
    id: String,
    /// The run's place in the writer's `Inner::runs`.
    slot: u64,
    core: Arc<Core>,
}

/// What the runs' threads and the writer's thread share.
struct Shared {
    inner: Mutex<Inner>,
    /// The first failure: the writer's transaction holds every run's
    /// events, so a failure stops them all.
    failure: OnceLock<String>,
}

pub(super) struct Inner {
    pub(super) conn: Connection,
    /// The runs being recorded, by slot.
    runs: HashMap<u64, RunState>,
    next_slot: u64,
    /// When the open transaction began, if one is open.
    open_since: Option<Instant>,
    /// What the open transaction holds, in order: given again when the
    /// disk filled (see `rescue`).
    pending: Vec<(u64, Event)>,
}

/// One run being recorded.
struct RunState {
    session: i64,
    /// The key of the run's event 0 in the journal.
    first_key: i64,
    seq: i64,
    /// `seq` when the open transaction began (`rescue` goes back to it).
    pending_from: i64,
    /// The (occurrence, index) of the latest attempt at each path.
    current: HashMap<String, (u32, u32)>,
    _lock: RunLock,
}

/// The writer's thread: commits what waits too long, and checkpoints on
/// a connection of its own, so that no run waits for the disk.
struct Background {
    stop: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Background {
    fn start(shared: Arc<Shared>, path: PathBuf) -> Option<Background> {
        let checkpoints = Connection::open_with_flags(
            &path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .ok();
        if let Some(c) = &checkpoints {
            let _ = c.busy_timeout(Duration::from_secs(5));
        }
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("guardflow-store".into())
            .spawn(move || {
                use std::sync::mpsc::RecvTimeoutError;
                let mut checkpointed = Instant::now();
                loop {
                    let done = !matches!(
                        stopped.recv_timeout(FLUSH_AFTER / 2),
                        Err(RecvTimeoutError::Timeout)
                    );
                    if done {
                        break;
                    }
                    shared.flush(&path, FLUSH_AFTER);
                    if checkpointed.elapsed() >= CHECKPOINT_EVERY {
                        checkpointed = Instant::now();
                        // a failed checkpoint loses nothing: the log keeps it all;
                        // the writer is held meanwhile, so no frame is added
                        // while the log is copied: copied whole, it is written
                        // again from its start instead of growing (a store
                        // written without pause would grow its log forever)
                        if let Some(c) = &checkpoints {
                            let _writer = shared.lock();
                            let _ = c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                        }
                    }
                }
                if let Some(c) = &checkpoints {
                    let _ = c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                }
            })
            .ok()?;
        Some(Background { stop, thread })
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Commits the open transaction if it is at least `age` old.
    fn flush(&self, path: &Path, age: Duration) {
        let mut inner = self.lock();
        if inner.open_since.is_some_and(|t| t.elapsed() >= age) {
            if let Err(e) = inner.commit() {
                inner.rescue(path, &e);
                self.fail(&mut inner, path, &e);
            }
        }
    }

    /// Keeps the first failure; what was not committed is rolled back.
    fn fail(&self, inner: &mut Inner, path: &Path, e: &rusqlite::Error) {
        if inner.open_since.take().is_some() {
            let _ = inner.conn.execute_batch("ROLLBACK");
        }
        let _ = self
            .failure
            .set(format!("`{}`: {}", path.display(), explain(e)));
    }
}

impl Inner {
    fn begin(&mut self) -> rusqlite::Result<()> {
        if self.open_since.is_none() {
            self.conn.execute_batch("BEGIN IMMEDIATE")?;
            self.open_since = Some(Instant::now());
            self.pending.clear();
            for run in self.runs.values_mut() {
                run.pending_from = run.seq;
            }
        }
        Ok(())
    }

    /// The disk is full and what the open transaction held is lost: gives
    /// the store's reserve back to the file system and commits it again,
    /// but an attempt's start (its generator is not called: the runs
    /// stop). So a verdict and a commit a run has acted on are not lost
    /// with the next attempt's start.
    fn rescue(&mut self, path: &Path, e: &rusqlite::Error) {
        if e.sqlite_error_code() != Some(rusqlite::ErrorCode::DiskFull) || self.pending.is_empty() {
            return;
        }
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        self.open_since = None;
        super::schema::release_reserve(path);
        let mut events = std::mem::take(&mut self.pending);
        // (only the last event can be one whose commit failed)
        if matches!(events.last(), Some((_, Event::AttemptStarted { .. }))) {
            events.pop();
        }
        for run in self.runs.values_mut() {
            run.seq = run.pending_from;
        }
        let saved = events
            .iter()
            .try_for_each(|(slot, e)| Recorder::write(self, *slot, e))
            .and_then(|()| self.commit());
        if saved.is_err() && !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }

    fn commit(&mut self) -> rusqlite::Result<()> {
        if self.open_since.is_some() {
            self.conn.execute_batch("COMMIT")?;
            self.open_since = None;
            self.pending.clear();
        }
        Ok(())
    }

    /// Writes run `id`'s session row, in the open transaction or in one of
    /// its own, and returns the run's number.
    pub(super) fn session_row(&mut self, id: &str, session: i64) -> rusqlite::Result<i64> {
        self.conn
            .prepare_cached(
                "INSERT INTO sessions (run_id, session, pid, started_ms) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![id, session, std::process::id(), now_ms()])?;
        journal::run_number(&self.conn, id)?.ok_or(rusqlite::Error::QueryReturnedNoRows)
    }

    /// Adds a run (number `number`, locked by `lock`) to the runs
    /// recorded; returns its slot.
    fn add_run(
        &mut self,
        number: i64,
        lock: RunLock,
        session: i64,
        seq: i64,
        current: HashMap<String, (u32, u32)>,
    ) -> u64 {
        let slot = self.next_slot;
        self.next_slot += 1;
        self.runs.insert(
            slot,
            RunState {
                session,
                first_key: first_key(number),
                seq,
                pending_from: seq,
                current,
                _lock: lock,
            },
        );
        slot
    }
}

impl Writer {
    pub(super) fn new(path: PathBuf, conn: Connection) -> Writer {
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                conn,
                runs: HashMap::new(),
                next_slot: 0,
                open_since: None,
                pending: Vec::new(),
            }),
            failure: OnceLock::new(),
        });
        let background = Background::start(shared.clone(), path.clone());
        Writer {
            core: Arc::new(Core {
                path,
                shared,
                background: Mutex::new(background),
            }),
        }
    }

    /// The store's file.
    pub fn path(&self) -> &Path {
        &self.core.path
    }

    /// Why the writer failed, once it has (every run it records stops).
    pub fn failure(&self) -> Option<String> {
        self.core.shared.failure.get().cloned()
    }

    /// `f` writes into the open transaction (begun if none is), which is
    /// then committed with everything in it. A failed write fails the
    /// writer, as a failed event does (see `Inner::rescue`).
    pub(super) fn with_open<T>(
        &self,
        f: impl FnOnce(&mut Inner) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let shared = &self.core.shared;
        let path = &self.core.path;
        let mut inner = shared.lock();
        if let Some(why) = shared.failure.get() {
            return Err(StoreError::Sqlite {
                path: path.clone(),
                reason: format!("the store failed earlier: {why}"),
            });
        }
        let written = inner
            .begin()
            .and_then(|()| f(&mut inner))
            .and_then(|t| inner.commit().map(|()| t));
        written.map_err(|e| {
            inner.rescue(path, &e);
            shared.fail(&mut inner, path, &e);
            super::sqlite_error(path, e)
        })
    }

    /// `f` on the writer's state, nothing committed.
    pub(super) fn with_inner<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self.core.shared.lock())
    }

    /// The connection, with what waits committed first, for `f`: a store
    /// error from `f` is returned as it is.
    pub(super) fn with_conn<T>(
        &self,
        f: impl FnOnce(&mut Inner) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut inner = self.core.shared.lock();
        if let Some(why) = self.core.shared.failure.get() {
            return Err(StoreError::Sqlite {
                path: self.core.path.clone(),
                reason: format!("the store failed earlier: {why}"),
            });
        }
        if let Err(e) = inner.commit() {
            inner.rescue(&self.core.path, &e);
            self.core.shared.fail(&mut inner, &self.core.path, &e);
            return Err(super::sqlite_error(&self.core.path, e));
        }
        f(&mut inner)
    }

    /// A recorder for run `id` (number `number`, locked by `lock`):
    /// session `session`, its next event `seq`. Its session row is
    /// written already.
    pub(super) fn recorder(
        &self,
        inner: &mut Inner,
        id: &str,
        number: i64,
        lock: RunLock,
        (session, seq, current): (i64, i64, HashMap<String, (u32, u32)>),
    ) -> Recorder {
        let slot = inner.add_run(number, lock, session, seq, current);
        Recorder {
            id: id.to_string(),
            slot,
            core: self.core.clone(),
        }
    }

    /// A recorder that goes on writing run `id` in its latest session:
    /// the events of a run another process makes (a run on Temporal,
    /// mirrored by `guardflow follow`), which are one session wherever
    /// they are recorded from. A run with no session yet gets its first.
    pub(super) fn continued(
        &self,
        inner: &mut Inner,
        id: &str,
        lock: RunLock,
        prior: &Prior,
    ) -> Result<Recorder, StoreError> {
        self.goes_on(inner, id, lock, prior, prior.sessions == 0)
    }

    /// A recorder for a resumed run (see `Store::resume_run_with`): a
    /// new session.
    pub(super) fn resumed(
        &self,
        inner: &mut Inner,
        id: &str,
        lock: RunLock,
        prior: &Prior,
    ) -> Result<Recorder, StoreError> {
        self.goes_on(inner, id, lock, prior, true)
    }

    /// A recorder for run `id` after what it recorded (`prior`): in a new
    /// session (its row written), or in its latest one.
    fn goes_on(
        &self,
        inner: &mut Inner,
        id: &str,
        lock: RunLock,
        prior: &Prior,
        new_session: bool,
    ) -> Result<Recorder, StoreError> {
        let sqlite = |e| super::sqlite_error(&self.core.path, e);
        let (session, number) = if new_session {
            let session = prior.sessions + 1;
            (session, inner.session_row(id, session).map_err(sqlite)?)
        } else {
            let number = journal::run_number(&inner.conn, id)
                .map_err(sqlite)?
                .ok_or_else(|| StoreError::NoSuchRun {
                    path: self.core.path.clone(),
                    run: id.to_string(),
                })?;
            (prior.sessions, number)
        };
        Ok(self.recorder(
            inner,
            id,
            number,
            lock,
            (session, prior.next_seq, prior.current.clone()),
        ))
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        self.shared.flush(&self.path, Duration::ZERO);
        let background = self
            .background
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(b) = background {
            drop(b.stop);
            let _ = b.thread.join();
        }
    }
}

impl Recorder {
    /// The run's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The store's file.
    pub fn path(&self) -> &Path {
        &self.core.path
    }

    fn write(inner: &mut Inner, slot: u64, event: &Event) -> rusqlite::Result<()> {
        let Some(run) = inner.runs.get(&slot) else {
            return Ok(());
        };
        let seq = run.seq;
        if seq > MAX_SEQ {
            return Err(rusqlite::Error::ToSqlConversionFailure(
                format!("a run records at most {MAX_SEQ} events").into(),
            ));
        }
        // (a transaction begins at this event: `rescue` gives it again from here)
        inner.begin()?;
        let Some(run) = inner.runs.get_mut(&slot) else {
            return Ok(());
        };
        run.seq += 1;
        let (key, session, at) = (run.first_key + seq, run.session, now_ms());
        let (conn, current) = (&inner.conn, &mut run.current);
        match event {
            Event::AttemptStarted {
                path,
                action,
                occurrence,
                index,
                attempt,
                prompt,
                role,
            } => {
                conn.prepare_cached(
                    "INSERT INTO journal (kind, key, seq, session, at_ms, path, occurrence, idx, action, attempt, prompt, role)
                     VALUES ('attempt_started', ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                )?
                .execute(params![
                    key, seq, session, at, path, occurrence, index, action, attempt, prompt, role
                ])?;
                current.insert(path.clone(), (*occurrence, *index));
            }
            Event::Attempt(a) => {
                let (occurrence, index) = current.get(&a.path).copied().unwrap_or((0, 0));
                let hash = a.output.as_deref().map(|o| content_hash(o.as_bytes()));
                conn.prepare_cached(
                    "INSERT INTO journal (kind, key, seq, session, at_ms, path, occurrence, idx, output, output_hash, verdict, feedback, tokens, prompt_tokens, outcome, generate_ms, guard_ms, guarded)
                     VALUES ('attempt', ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
                )?
                .execute(params![
                    key,
                    seq,
                    session,
                    at,
                    a.path,
                    occurrence,
                    index,
                    a.output,
                    hash,
                    verdict_name(a.verdict),
                    a.feedback,
                    a.tokens.map(|t| t.min(i64::MAX as u64) as i64),
                    a.prompt_tokens.map(|t| t.min(i64::MAX as u64) as i64),
                    a.outcome.as_ref().map(|o| o.to_string()),
                    a.generate_ms.min(i64::MAX as u64) as i64,
                    a.guard_ms.min(i64::MAX as u64) as i64,
                    a.guarded,
                ])?;
            }
            Event::Generated {
                path,
                output,
                tokens,
                prompt_tokens,
                generate_ms,
                ..
            } => {
                let (occurrence, index) = current.get(path).copied().unwrap_or((0, 0));
                conn.prepare_cached(
                    "INSERT INTO journal (kind, key, seq, session, at_ms, path, occurrence, idx, output, output_hash, tokens, prompt_tokens, generate_ms)
                     VALUES ('generated', ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                )?
                .execute(params![
                    key,
                    seq,
                    session,
                    at,
                    path,
                    occurrence,
                    index,
                    output,
                    content_hash(output.as_bytes()),
                    tokens.map(|t| t.min(i64::MAX as u64) as i64),
                    prompt_tokens.map(|t| t.min(i64::MAX as u64) as i64),
                    (*generate_ms).min(i64::MAX as u64) as i64,
                ])?;
            }
            Event::EffectStarted { path, .. } => {
                let (occurrence, index) = current.get(path).copied().unwrap_or((0, 0));
                let body = serde_json::to_string(event).unwrap_or_default();
                conn.prepare_cached(
                    "INSERT INTO journal (kind, key, seq, session, at_ms, path, occurrence, idx, body)
                     VALUES ('effect_started', ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?
                .execute(params![key, seq, session, at, path, occurrence, index, body])?;
            }
            Event::Committed {
                path,
                action,
                artifact,
            } => {
                let (occurrence, _) = current.get(path).copied().unwrap_or((0, 0));
                let text = artifact.to_string();
                conn.prepare_cached(
                    "INSERT INTO journal (kind, key, seq, session, at_ms, path, occurrence, action, artifact, artifact_hash)
                     VALUES ('committed', ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )?
                .execute(params![
                    key,
                    seq,
                    session,
                    at,
                    path,
                    occurrence,
                    action,
                    text,
                    content_hash(text.as_bytes())
                ])?;
            }
            Event::RunFinished {
                success,
                generator_calls,
                guard_runs,
                elapsed_ms,
                ..
            } => {
                conn.prepare_cached(
                    "INSERT INTO journal (kind, key, seq, session, at_ms, success, generator_calls, guard_runs, elapsed_ms)
                     VALUES ('run_finished', ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?
                .execute(params![
                    key,
                    seq,
                    session,
                    at,
                    success,
                    (*generator_calls).min(i64::MAX as u64) as i64,
                    (*guard_runs).min(i64::MAX as u64) as i64,
                    (*elapsed_ms).min(i64::MAX as u64) as i64,
                ])?;
            }
            other => {
                let body = serde_json::to_string(other).unwrap_or_default();
                let (kind, path) = describe(other);
                conn.prepare_cached(
                    "INSERT INTO journal (key, seq, session, at_ms, kind, path, body)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?
                .execute(params![key, seq, session, at, kind, path, body])?;
            }
        }
        inner.pending.push((slot, event.clone()));
        // the run reaches out of the process next (a generator, an
        // effect), a generator's answer must not be asked for again, or
        // the run ends: what it did so far must be on disk first
        if matches!(
            event,
            Event::AttemptStarted { .. }
                | Event::Generated { .. }
                | Event::EffectStarted { .. }
                | Event::RunFinished { .. }
        ) {
            inner.commit()?;
        }
        Ok(())
    }
}

impl Sink for Recorder {
    fn record(&self, event: &Event) {
        let shared = &self.core.shared;
        if shared.failure.get().is_some() {
            return;
        }
        let mut inner = shared.lock();
        if let Err(e) = Recorder::write(&mut inner, self.slot, event) {
            inner.rescue(&self.core.path, &e);
            shared.fail(&mut inner, &self.core.path, &e);
        }
    }

    fn failure(&self) -> Option<String> {
        self.core.shared.failure.get().cloned()
    }
}

impl Drop for Recorder {
    /// What the run recorded is committed before its lock is let go.
    fn drop(&mut self) {
        let shared = &self.core.shared;
        let mut inner = shared.lock();
        if let Err(e) = inner.commit() {
            inner.rescue(&self.core.path, &e);
            shared.fail(&mut inner, &self.core.path, &e);
        }
        inner.runs.remove(&self.slot);
    }
}

fn explain(e: &rusqlite::Error) -> String {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DiskFull) => format!("the disk is full ({e})"),
        Some(rusqlite::ErrorCode::ReadOnly) => format!("it cannot be written ({e})"),
        Some(rusqlite::ErrorCode::DatabaseCorrupt) => {
            format!("the store is corrupt ({e}); nothing more is written to it")
        }
        _ => e.to_string(),
    }
}

pub(super) fn verdict_name(v: VerdictKind) -> &'static str {
    match v {
        VerdictKind::Pass => "pass",
        VerdictKind::Fail => "fail",
        VerdictKind::Fatal => "fatal",
        VerdictKind::Interrupted => "interrupted",
    }
}

/// An event's kind and path.
fn describe(e: &Event) -> (&'static str, Option<&str>) {
    match e {
        Event::RunStarted { .. } => ("run_started", None),
        Event::TaskStarted { path, .. } => ("task_started", Some(path)),
        Event::MethodStarted { path, .. } => ("method_started", Some(path)),
        Event::MethodSkipped { path, .. } => ("method_skipped", Some(path)),
        Event::MethodFailed { path, .. } => ("method_failed", Some(path)),
        Event::ActionStarted { path, .. } => ("action_started", Some(path)),
        Event::AttemptStarted { path, .. } => ("attempt_started", Some(path)),
        Event::Generated { path, .. } => ("generated", Some(path)),
        Event::EffectStarted { path, .. } => ("effect_started", Some(path)),
        Event::Waiting { path, .. } => ("waiting", Some(path)),
        Event::Served { path, .. } => ("served", Some(path)),
        Event::Attempt(a) => ("attempt", Some(&a.path)),
        Event::JudgeCall(j) => ("judge_call", Some(&j.path)),
        Event::Escalated { path, .. } => ("escalated", Some(path)),
        Event::Committed { path, .. } => ("committed", Some(path)),
        Event::ActionFailed { path, .. } => ("action_failed", Some(path)),
        Event::TaskFinished { path, .. } => ("task_finished", Some(path)),
        Event::RunFinished { .. } => ("run_finished", None),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::engine::{
        BoxFuture, Engine, GenError, GenRequest, GenResponse, Generator, RunConfig,
    };
    use crate::runtime::{Sink, Verdict};
    use crate::store::{RunMeta, Store};

    struct Echo;

    fn meta() -> RunMeta {
        RunMeta {
            id: String::new(),
            workflow: "f.guardflow".into(),
            workflow_hash: String::new(),
            task: "main".into(),
            inputs: serde_json::Map::new(),
            replacement: None,
            worst_case_calls: None,
            started_ms: 0,
            seed: None,
            bench: None,
        }
    }

    impl Generator for Echo {
        fn generate(&self, r: GenRequest) -> BoxFuture<'_, Result<GenResponse, GenError>> {
            Box::pin(async move {
                Ok(GenResponse::text(format!(
                    "{}{}",
                    r.prompt,
                    "x".repeat(2000)
                )))
            })
        }
    }

    /// A full disk, made real by SQLite's page limit: the run stops with
    /// the store's error, calls no generator after it, and what was
    /// committed before stays readable.
    #[test]
    fn a_full_disk_stops_the_run_and_keeps_what_was_committed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("runs.db");
        let mut engine = Engine::bare();
        engine.register_guard("ok", "on Text", |_| Verdict::Pass);
        engine.register_generator("echo", "()", Echo);
        let mut src = String::from(
            "generator g = echo()\naction step() -> Text { :generate g \"go\" :guard ok :retry 0 :timeout 10s }\n\
             task main() {\n  method m {\n    :subtasks (",
        );
        let labels: Vec<String> = (0..200).map(|i| format!("s{i}: step()")).collect();
        src.push_str(&labels.join(", "));
        src.push_str(")\n  }\n}\n");
        let workflow = engine.compile("f.guardflow", &src).expect("compiles");
        let config = RunConfig {
            task: "main".into(),
            ..RunConfig::default()
        };
        let mut started = engine.start(&workflow, &config).expect("starts");
        let mut meta = meta();
        let recorder = Store::open(&db)
            .expect("open")
            .start_run(&mut meta)
            .expect("run");
        {
            let inner = recorder.core.shared.lock();
            let pages: i64 = inner
                .conn
                .query_row("PRAGMA page_count", [], |r| r.get(0))
                .expect("pages");
            inner
                .conn
                .pragma_update(None, "max_page_count", pages + 8)
                .expect("limit");
        }
        let recorder = Arc::new(recorder);
        started.record_to(recorder.clone());
        let rt = crate::engine::runtime().expect("runtime");
        let report = rt.block_on(started.execute());
        let why = recorder.failure().expect("the store failed");
        assert!(why.contains("the disk is full"), "{why}");
        assert!(!report.success);
        assert!(
            report
                .failure
                .as_deref()
                .unwrap_or("")
                .contains("the run store failed"),
            "{:?}",
            report.failure
        );
        // the attempt that found the store full was its last
        assert!(report.generator_calls < 200, "{}", report.generator_calls);
        drop(recorder);
        let store = Store::open_read(&db).expect("reopen");
        let committed: i64 = store
            .connection()
            .query_row("SELECT count(*) FROM commits", [], |r| r.get(0))
            .expect("count");
        assert!(committed >= 1, "{committed}");
        // the write that failed was of the last call or two
        let calls = report.generator_calls as i64;
        assert!(
            committed < calls && calls <= committed + 2,
            "{committed} of {calls}"
        );
        let events = store.events(&meta.id).expect("events");
        assert!(events.iter().any(|e| e["event"] == "committed"));
    }

    /// An event after which no attempt starts (a branch committed while
    /// another waits for its generator) is on disk within moments, not
    /// only when the run reaches out again.
    #[test]
    fn the_recorder_thread_commits_what_waits() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("runs.db");
        let mut meta = meta();
        let recorder = Store::open(&db)
            .expect("open")
            .start_run(&mut meta)
            .expect("run");
        recorder.record(&crate::runtime::Event::Committed {
            path: "main/m/a".into(),
            action: "a".into(),
            artifact: serde_json::json!("done"),
        });
        assert!(
            recorder.core.shared.lock().open_since.is_some(),
            "not yet committed"
        );
        let reader = Store::open_read(&db).expect("reader");
        let committed = || -> i64 {
            reader
                .connection()
                .query_row("SELECT count(*) FROM commits", [], |r| r.get(0))
                .expect("count")
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while committed() == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the commit never reached the store"
            );
            std::thread::sleep(super::FLUSH_AFTER);
        }
        assert!(recorder.core.shared.lock().open_since.is_none());
        assert!(recorder.failure().is_none());
    }

    /// A continued run (`guardflow follow`) goes on in its latest session,
    /// from the next event; a resumed one starts a new session.
    #[test]
    fn a_continued_run_goes_on_in_its_session_a_resumed_one_in_a_new_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("runs.db");
        let task = |path: &str| crate::runtime::Event::TaskStarted {
            path: path.to_string(),
            task: "main".to_string(),
        };
        let mut meta = meta();
        let recorder = Store::open(&db)
            .expect("open")
            .start_run(&mut meta)
            .expect("run");
        recorder.record(&task("a"));
        drop(recorder);
        let recorder = Store::open(&db)
            .expect("open")
            .continue_run(&meta.id)
            .expect("continued");
        recorder.record(&task("b"));
        drop(recorder);
        let sessions = |db: &std::path::Path| -> Vec<(String, i64, i64)> {
            Store::open_read(db)
                .expect("read")
                .events(&meta.id)
                .expect("events")
                .iter()
                .map(|e| {
                    (
                        e["path"].as_str().unwrap_or_default().to_string(),
                        e["seq"].as_i64().unwrap_or(0),
                        e["session"].as_i64().unwrap_or(0),
                    )
                })
                .collect()
        };
        assert_eq!(
            sessions(&db),
            [("a".to_string(), 1, 1), ("b".to_string(), 2, 1)]
        );
        let (_, _, recorder) = Store::open(&db)
            .expect("open")
            .resume_run(&meta.id)
            .expect("resumed");
        recorder.record(&task("c"));
        drop(recorder);
        assert_eq!(sessions(&db)[2], ("c".to_string(), 3, 2));
    }

    fn committed(path: &str) -> crate::runtime::Event {
        crate::runtime::Event::Committed {
            path: path.into(),
            action: "a".into(),
            artifact: serde_json::json!(path),
        }
    }

    /// The runs of one writer (a bench's trials): their events interleave
    /// in one transaction, one run's commit makes the others' durable
    /// with it (a group commit), each run's events read back as its own,
    /// in order, and a run resumed on the same writer goes on after them.
    #[test]
    fn one_writer_records_many_runs_each_in_order() {
        use crate::store::RunLock;
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("runs.db");
        let writer = Store::open(&db).expect("open").writer();
        let (mut m1, mut m2) = (meta(), meta());
        let pinned = crate::store::pins::Pinned::default();
        let r1 = writer.start_pinned_run(&mut m1, &pinned).expect("run 1");
        let r2 = writer.start_pinned_run(&mut m2, &pinned).expect("run 2");
        assert_ne!(m1.id, m2.id);
        for i in 0..5 {
            r1.record(&committed(&format!("a{i}")));
            r2.record(&committed(&format!("b{i}")));
        }
        // an attempt of run 2 starts: what run 1 recorded is committed with it
        r2.record(&crate::runtime::Event::AttemptStarted {
            path: "main/m/b".into(),
            action: "b".into(),
            occurrence: 1,
            index: 0,
            attempt: 1,
            prompt: "go".into(),
            role: None,
        });
        assert!(writer.core.shared.lock().open_since.is_none());
        // (the paths committed, each run's in its own order)
        let commits = |id: &str| -> Vec<String> {
            let reader = Store::open_read(&db).expect("reader");
            let mut stmt = reader
                .connection()
                .prepare("SELECT seq, path FROM commits WHERE run_id = ?1 ORDER BY seq")
                .expect("query");
            let rows = stmt
                .query_map([id], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
                .expect("rows")
                .collect::<Result<Vec<_>, _>>()
                .expect("read");
            assert!(rows.windows(2).all(|w| w[0].0 < w[1].0), "{rows:?}");
            rows.into_iter().map(|(_, p)| p).collect()
        };
        let want = |p: &str, n: i64| -> Vec<String> { (0..n).map(|i| format!("{p}{i}")).collect() };
        assert_eq!(commits(&m1.id), want("a", 5));
        assert_eq!(commits(&m2.id), want("b", 5));
        // each run is locked while it is recorded, and let go when its
        // recorder is gone
        assert!(RunLock::held(&db, &m1.id) && RunLock::held(&db, &m2.id));
        drop(r1);
        assert!(!RunLock::held(&db, &m1.id));
        assert!(RunLock::held(&db, &m2.id));
        // run 1 resumed on the same writer, beside run 2
        let (_, _, again) = writer
            .resume_run_with(&m1.id, None, |_| Ok::<(), ()>(()))
            .expect("resumes")
            .expect("checked");
        again.record(&committed("a5"));
        r2.record(&committed("b5"));
        drop(again);
        assert_eq!(commits(&m1.id), want("a", 6));
        drop(r2);
        drop(writer);
        assert_eq!(commits(&m2.id), want("b", 6));
        let store = Store::open_read(&db).expect("reader");
        let sessions: i64 = store
            .connection()
            .query_row(
                "SELECT max(session) FROM sessions WHERE run_id = ?1",
                [&m1.id],
                |r| r.get(0),
            )
            .expect("sessions");
        assert_eq!(sessions, 2);
        let events = store.events(&m1.id).expect("events");
        assert_eq!(events.len(), 6, "{events:?}");
    }
}
