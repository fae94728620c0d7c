//! The writer and its recorders. A [`Writer`] is one connection to the
//! store that records any number of runs at once (the trials of a bench,
//! or one run); a [`Recorder`] is one run's sink on it.
//!
//! A run's events wait in the writer's queue; the writer's committing
//! thread writes what waits into its open transaction and commits it,
//! with every run's events in it (a group commit). Where a run must not go
//! on before an event is durable:
//! - an attempt starts (the run calls its generator next): its start is
//!   written at once and committed after one yield of the run, by
//!   whoever commits first: so the attempts that start in one turn of
//!   the runtime share one commit, made on the runs' thread
//!   ([`Sink::record_durable`]);
//! - an effect starts: [`Sink::record`] writes what waits and the event,
//!   and commits, on the run's thread, so the effect follows the commit
//!   in the same poll;
//! - a generator's answer is in (before it is judged), or the run ends:
//!   the run asks the committing thread and awaits its commit
//!   ([`Sink::record_durable`]), one for all the runs that ask meanwhile;
//!   a bench's trials neither ask nor wait ([`Writer::for_trials`]).
//!
//! The committing thread also commits whatever else waits longer than
//! [`FLUSH_AFTER`]; a checkpointing thread copies the log into the
//! database beside it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
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
/// waits is committed, the threads stop, and the connection's close
/// checkpoints what is left (when it is the store's last).
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
    path: PathBuf,
    inner: Mutex<Inner>,
    /// Events not yet written, in order; taken under `inner`'s lock.
    queue: Mutex<Queue>,
    /// Wakes the writer's committing thread: a commit is asked for, or it
    /// stops.
    wake: std::sync::Condvar,
    /// Wakes the checkpointing thread: the writer stops.
    stopping: std::sync::Condvar,
    /// The latest generation of the queue that is committed (`u64::MAX`
    /// once the writer failed: nothing more will be).
    committed: tokio::sync::watch::Receiver<u64>,
    /// The first failure: the writer's transaction holds every run's
    /// events, so a failure stops them all.
    failure: OnceLock<String>,
    /// See [`HOLD_THE_WRITER_PAST`] (smaller in a test).
    hold_the_writer_past: std::sync::atomic::AtomicU64,
    /// See [`Writer::for_trials`].
    trials: std::sync::atomic::AtomicBool,
}

/// The events waiting to be written, of generation `generation`: each
/// taking of the queue is the next generation.
struct Queue {
    events: Vec<(u64, Event)>,
    generation: u64,
    /// A run awaits the commit of this generation.
    commit_asked: bool,
    /// Finished runs (slots) to forget once what they recorded is
    /// committed, after the events above.
    retiring: Vec<u64>,
    /// The writer's thread is running (else nobody commits what a run
    /// awaits: `record_durable` commits itself).
    thread: bool,
    stop: bool,
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
    /// The latest generation of the queue written into the transaction.
    written: u64,
    /// A run awaits the commit of what was written.
    commit_asked: bool,
    /// Finished runs to forget (their locks let go) at the next commit.
    retiring: Vec<u64>,
    committed: tokio::sync::watch::Sender<u64>,
    /// Commits made so far: an event written when this was `n` is
    /// committed once it is past `n`.
    commits: u64,
}

/// One run being recorded.
struct RunState {
    id: String,
    session: i64,
    /// The key of the run's event 0 in the journal.
    first_key: i64,
    seq: i64,
    /// `seq` when the open transaction began (`rescue` goes back to it).
    pending_from: i64,
    /// The (occurrence, index) of the latest attempt at each path.
    current: HashMap<String, (u32, u32)>,
    /// The (occurrence, index) of each attempt started in this session
    /// and not yet judged, by path and attempt number: the samples of a
    /// `best-of` round are started together, and their answers come in
    /// any order.
    started: HashMap<(String, u32), (u32, u32)>,
    _lock: RunLock,
}

/// The writer's threads: one commits what the runs await and what waits
/// too long; one copies the log into the database (a checkpoint, which
/// waits for the disk) on a connection of its own, beside the commits, so
/// that no run waits for the disk.
struct Background {
    shared: Arc<Shared>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// The size of the log past which a checkpoint holds the writer: copied
/// whole, the log is written again from its start. A checkpoint beside
/// the commits copies most of it, but the log only restarts once every
/// frame is copied, which commits made meanwhile prevent (a store written
/// without pause would grow its log forever).
const HOLD_THE_WRITER_PAST: u64 = 32 << 20;

impl Background {
    fn start(shared: Arc<Shared>) -> Option<Background> {
        let committer = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("guardflow-store".into())
                .spawn(move || {
                    while shared.sleep(&shared.wake, FLUSH_AFTER / 2, |q| q.commit_asked) {
                        // what waits is written (`lock`), and committed when
                        // a run awaits it or it waited long enough
                        shared.flush(FLUSH_AFTER);
                    }
                })
                .ok()?
        };
        let mut threads = vec![committer];
        let checkpoints = Connection::open_with_flags(
            &shared.path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        );
        if let Ok(c) = checkpoints {
            let _ = c.busy_timeout(Duration::from_secs(5));
            let on_thread = shared.clone();
            let checkpointer = std::thread::Builder::new()
                .name("guardflow-checkpoint".into())
                .spawn(move || {
                    let shared = on_thread;
                    let mut log = shared.path.as_os_str().to_os_string();
                    log.push("-wal");
                    let log = PathBuf::from(log);
                    let checkpoint = || {
                        // a failed checkpoint loses nothing: the log keeps it all
                        let _ = c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                    };
                    while shared.sleep(&shared.stopping, CHECKPOINT_EVERY, |_| false) {
                        let size = std::fs::metadata(&log).map_or(0, |m| m.len());
                        let past = shared
                            .hold_the_writer_past
                            .load(std::sync::atomic::Ordering::Relaxed);
                        if size > past {
                            let _writer = shared.lock();
                            checkpoint();
                        } else {
                            checkpoint();
                        }
                    }
                    // (the writer's connection, closing last, checkpoints
                    // what is left: a last checkpoint here would copy it
                    // twice)
                });
            if let Ok(t) = checkpointer {
                threads.push(t);
            }
        }
        shared.queue().thread = true;
        Some(Background { shared, threads })
    }

    fn stop(self) {
        self.shared.queue().stop = true;
        self.shared.wake.notify_all();
        self.shared.stopping.notify_all();
        for t in self.threads {
            let _ = t.join();
        }
    }
}

impl Shared {
    /// The writer's state, with what waits in the queue written into its
    /// open transaction: whoever writes next writes after it.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        self.drain(&mut inner);
        inner
    }

    /// Waits up to `at_most`, or until `until` holds of the queue; false
    /// when the writer stops.
    fn sleep(
        &self,
        on: &std::sync::Condvar,
        at_most: Duration,
        until: impl Fn(&Queue) -> bool,
    ) -> bool {
        let queue = self.queue();
        let (queue, _) = on
            .wait_timeout_while(queue, at_most, |q| !until(q) && !q.stop)
            .unwrap_or_else(|e| e.into_inner());
        !queue.stop
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes what waits in the queue into the open transaction.
    fn drain(&self, inner: &mut Inner) {
        let (events, generation, asked, retiring) = {
            let mut queue = self.queue();
            if queue.events.is_empty() && !queue.commit_asked && queue.retiring.is_empty() {
                return;
            }
            let generation = queue.generation;
            queue.generation += 1;
            (
                std::mem::take(&mut queue.events),
                generation,
                std::mem::take(&mut queue.commit_asked),
                std::mem::take(&mut queue.retiring),
            )
        };
        inner.retiring.extend(retiring);
        if self.failure.get().is_some() {
            return;
        }
        for (slot, event) in &events {
            if let Err(e) = Recorder::write(inner, *slot, event, false) {
                inner.rescue(&self.path, &e);
                self.fail(inner, &e);
                return;
            }
        }
        inner.written = generation;
        inner.commit_asked |= asked || !inner.retiring.is_empty();
    }

    /// Commits the open transaction if a run awaits it or it is at least
    /// `age` old.
    fn flush(&self, age: Duration) {
        let mut inner = self.lock();
        if inner.commit_asked || inner.open_since.is_some_and(|t| t.elapsed() >= age) {
            self.commit(&mut inner);
        }
    }

    /// Commits the open transaction; a failure fails the writer.
    fn commit(&self, inner: &mut Inner) -> bool {
        match inner.commit() {
            Ok(()) => true,
            Err(e) => {
                inner.rescue(&self.path, &e);
                self.fail(inner, &e);
                false
            }
        }
    }

    /// Keeps the first failure; what was not committed is rolled back,
    /// and the runs that await a commit go on (to see the failure).
    fn fail(&self, inner: &mut Inner, e: &rusqlite::Error) {
        if inner.open_since.take().is_some() {
            let _ = inner.conn.execute_batch("ROLLBACK");
        }
        let _ = self
            .failure
            .set(format!("`{}`: {}", self.path.display(), explain(e)));
        inner.committed.send_replace(u64::MAX);
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
    /// but the attempts and effects it starts (a run calls its generator
    /// or starts its effect only once their start is committed: the runs
    /// stop) and the events of runs whose own rows were lost with it (a
    /// bench's trial started in it). So a verdict and a commit a run has
    /// acted on are not lost with the next attempt's start.
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
        let lost: std::collections::HashSet<u64> = self
            .runs
            .iter()
            .filter(|(_, r)| !matches!(journal::run_number(&self.conn, &r.id), Ok(Some(_))))
            .map(|(slot, _)| *slot)
            .collect();
        events.retain(|(slot, e)| {
            !lost.contains(slot)
                && !matches!(
                    e,
                    Event::AttemptStarted { .. } | Event::EffectStarted { .. }
                )
        });
        for run in self.runs.values_mut() {
            run.seq = run.pending_from;
        }
        let saved = events
            .iter()
            .try_for_each(|(slot, e)| Recorder::write(self, *slot, e, false))
            .and_then(|()| self.commit());
        if saved.is_err() && !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }

    fn commit(&mut self) -> rusqlite::Result<()> {
        if self.open_since.is_some() {
            self.conn.execute_batch("COMMIT")?;
            self.commits += 1;
            self.open_since = None;
            self.pending.clear();
        }
        self.commit_asked = false;
        for slot in std::mem::take(&mut self.retiring) {
            self.runs.remove(&slot);
        }
        if *self.committed.borrow() < self.written {
            self.committed.send_replace(self.written);
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
        id: &str,
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
                id: id.to_string(),
                session,
                first_key: first_key(number),
                seq,
                pending_from: seq,
                current,
                started: HashMap::new(),
                _lock: lock,
            },
        );
        slot
    }
}

impl Writer {
    pub(super) fn new(path: PathBuf, conn: Connection) -> Writer {
        let (committed, committed_rx) = tokio::sync::watch::channel(0);
        let shared = Arc::new(Shared {
            path: path.clone(),
            inner: Mutex::new(Inner {
                conn,
                runs: HashMap::new(),
                next_slot: 0,
                open_since: None,
                pending: Vec::new(),
                written: 0,
                commits: 0,
                commit_asked: false,
                retiring: Vec::new(),
                committed,
            }),
            queue: Mutex::new(Queue {
                events: Vec::new(),
                generation: 1,
                commit_asked: false,
                retiring: Vec::new(),
                thread: false,
                stop: false,
            }),
            wake: std::sync::Condvar::new(),
            stopping: std::sync::Condvar::new(),
            committed: committed_rx,
            failure: OnceLock::new(),
            hold_the_writer_past: std::sync::atomic::AtomicU64::new(HOLD_THE_WRITER_PAST),
            trials: std::sync::atomic::AtomicBool::new(false),
        });
        let background = Background::start(shared.clone());
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

    /// Makes this writer record a bench's trials, which need not wait for
    /// the disk where a lone run does: a generator's answer and a run's
    /// end are committed with the next attempts' starts or by the
    /// writer's thread within [`FLUSH_AFTER`], without the run awaiting
    /// or asking for it (the next attempt's start, which is committed
    /// before its generator is called, makes the answer durable in any
    /// case; a trial stopped before its end was committed is finished on
    /// resume from what is), and a finished run's lock is let go at the
    /// commit after its events, not by the run. So a trial waits for the
    /// disk only before it calls a generator or starts an effect.
    pub fn for_trials(&self) {
        self.core
            .shared
            .trials
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Why the writer failed, once it has (every run it records stops).
    pub fn failure(&self) -> Option<String> {
        self.core.shared.failure.get().cloned()
    }

    /// `f` writes into the open transaction (begun if none is), which is
    /// then committed with everything in it when `commit` (else by the
    /// next commit). A failed write fails the writer, as a failed event
    /// does (see `Inner::rescue`).
    pub(super) fn with_open<T>(
        &self,
        commit: bool,
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
            .and_then(|t| match commit {
                true => inner.commit().map(|()| t),
                false => Ok(t),
            });
        written.map_err(|e| {
            inner.rescue(path, &e);
            shared.fail(&mut inner, &e);
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
            self.core.shared.fail(&mut inner, &e);
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
        let slot = inner.add_run(id, number, lock, session, seq, current);
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
        self.shared.flush(Duration::ZERO);
        let background = self
            .background
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(b) = background {
            b.stop();
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

    /// Writes `event` of the run in `slot` into the open transaction, and
    /// when `commit_durable` commits it if the run must not go on before
    /// it is durable (see [`durable`]).
    fn write(
        inner: &mut Inner,
        slot: u64,
        event: &Event,
        commit_durable: bool,
    ) -> rusqlite::Result<()> {
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
        let (conn, current, started) = (&inner.conn, &mut run.current, &mut run.started);
        // an attempt's place: where it started in this session, or the
        // latest at its path (it started in an earlier one)
        let place = |path: &String, attempt: u32| {
            started
                .get(&(path.clone(), attempt))
                .or_else(|| current.get(path))
                .copied()
                .unwrap_or((0, 0))
        };
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
                started.insert((path.clone(), *attempt), (*occurrence, *index));
            }
            Event::Attempt(a) => {
                let (occurrence, index) = place(&a.path, a.attempt);
                started.remove(&(a.path.clone(), a.attempt));
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
                attempt,
                output,
                tokens,
                prompt_tokens,
                generate_ms,
                ..
            } => {
                let (occurrence, index) = place(path, *attempt);
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
            Event::EffectStarted { path, attempt, .. } => {
                let (occurrence, index) = place(path, *attempt);
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
        if commit_durable && durable(event) {
            inner.commit()?;
        }
        Ok(())
    }

    /// Puts `event` in the writer's queue; returns its generation.
    fn enqueue(&self, event: &Event, ask_commit: bool) -> u64 {
        let shared = &self.core.shared;
        let mut queue = shared.queue();
        queue.events.push((self.slot, event.clone()));
        if ask_commit && !queue.commit_asked {
            queue.commit_asked = true;
            shared.wake.notify_one();
        }
        queue.generation
    }

    /// An attempt's start, written into the open transaction at once and
    /// committed after one yield: by whoever commits first (another run
    /// whose start was written meanwhile, the committing thread), or else
    /// by this run. So the runs that start attempts in one turn of the
    /// runtime share one commit, made on the runs' thread. A run stopped
    /// at the yield leaves its start to be committed with the rest: a
    /// resume counts that call as cut off and makes it again, outside the
    /// budget, as after a crash between a start's commit and its call.
    fn record_start(&self, event: &Event) -> BoxFuture<'_, ()> {
        let shared = &self.core.shared;
        let Some(written) = self.write_now(event, false) else {
            return Box::pin(std::future::ready(()));
        };
        Box::pin(async move {
            tokio::task::yield_now().await;
            let mut inner = shared.lock();
            // (a commit since the start was written holds it)
            if inner.commits == written && shared.failure.get().is_none() {
                shared.commit(&mut inner);
            }
        })
    }

    /// Writes and commits what waits, `event` last, on this thread.
    fn record_now(&self, event: &Event) {
        self.write_now(event, true);
    }

    /// Writes what waits, `event` last, on this thread, and commits it
    /// when `commit`; the writer's commits so far, or `None` when the
    /// writer failed (writing what waited may have failed it, too).
    fn write_now(&self, event: &Event, commit: bool) -> Option<u64> {
        let shared = &self.core.shared;
        let mut inner = shared.lock();
        if shared.failure.get().is_some() {
            return None;
        }
        match Recorder::write(&mut inner, self.slot, event, commit) {
            Ok(()) => Some(inner.commits),
            Err(e) => {
                inner.rescue(&self.core.path, &e);
                shared.fail(&mut inner, &e);
                None
            }
        }
    }
}

/// Whether a run must not go on before `event` is durable: the run
/// reaches out of the process next (a generator, an effect), a
/// generator's answer must not be asked for again, or the run ends.
fn durable(event: &Event) -> bool {
    matches!(
        event,
        Event::AttemptStarted { .. }
            | Event::Generated { .. }
            | Event::EffectStarted { .. }
            | Event::RunFinished { .. }
    )
}

impl Sink for Recorder {
    /// An event that must be durable is written and committed at once
    /// (with what waits before it); another waits in the queue.
    fn record(&self, event: &Event) {
        if self.core.shared.failure.get().is_some() {
            return;
        }
        if durable(event) {
            self.record_now(event);
        } else {
            self.enqueue(event, false);
        }
    }

    /// Queues `event` and awaits the writer thread's next commit; for a
    /// bench's trials ([`Writer::for_trials`]), asks for it only.
    fn record_durable<'a>(&'a self, event: &Event) -> BoxFuture<'a, ()> {
        let shared = &self.core.shared;
        if shared.failure.get().is_some() {
            return Box::pin(std::future::ready(()));
        }
        if !shared.queue().thread {
            self.record_now(event);
            return Box::pin(std::future::ready(()));
        }
        if matches!(event, Event::AttemptStarted { .. }) {
            return self.record_start(event);
        }
        // a trial neither awaits nor hurries the commit: the next start's
        // commit, or the committing thread's within `FLUSH_AFTER`, makes it
        let trials = shared.trials.load(std::sync::atomic::Ordering::Relaxed);
        let generation = self.enqueue(event, !trials);
        if trials {
            return Box::pin(std::future::ready(()));
        }
        let mut committed = shared.committed.clone();
        Box::pin(async move {
            let _ = committed.wait_for(|c| *c >= generation).await;
        })
    }

    fn failure(&self) -> Option<String> {
        self.core.shared.failure.get().cloned()
    }
}

impl Drop for Recorder {
    /// What the run recorded is committed before its lock is let go (a
    /// run that awaited its end's commit has nothing left to commit).
    fn drop(&mut self) {
        let shared = &self.core.shared;
        if shared.trials.load(std::sync::atomic::Ordering::Relaxed) {
            let mut queue = shared.queue();
            if queue.thread {
                // let go at the next commit
                queue.retiring.push(self.slot);
                return;
            }
        }
        let mut inner = shared.lock();
        let uncommitted = inner.open_since.is_some()
            && inner
                .runs
                .get(&self.slot)
                .is_some_and(|r| r.seq > r.pending_from);
        if uncommitted {
            shared.commit(&mut inner);
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
        let (_dir, db, _meta, recorder) = one_run();
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
            let rows = rows(
                &db,
                "SELECT seq, path FROM commits WHERE run_id = ?1 ORDER BY seq",
                [id],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
            );
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

    /// Attempts that start in one turn of the runtime share one commit,
    /// made on the runs' thread (the committing thread is stopped here):
    /// none is on disk before it, all are after.
    #[test]
    fn attempt_starts_in_one_turn_share_one_commit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("runs.db");
        let writer = Store::open(&db).expect("open").writer();
        let pinned = crate::store::pins::Pinned::default();
        let mut metas = [meta(), meta(), meta()];
        let runs: Vec<super::Recorder> = metas
            .iter_mut()
            .map(|m| writer.start_pinned_run(m, &pinned).expect("run"))
            .collect();
        if let Some(b) = writer.core.background.lock().expect("lock").take() {
            b.stop();
        }
        let commits = || writer.core.shared.lock().commits;
        let before = commits();
        let starts_on_disk = || {
            rows(
                &db,
                "SELECT run_id FROM attempts ORDER BY run_id",
                [],
                |r| r.get::<_, String>(0),
            )
        };
        let rt = crate::engine::runtime().expect("runtime");
        rt.block_on(async {
            let within = |f| tokio::time::timeout(std::time::Duration::from_secs(10), f);
            let mut starts = futures::future::join_all(
                runs.iter().map(|r| r.record_durable(&attempt_started(1))),
            );
            // (each start written, each run at its yield)
            assert!(futures::poll!(&mut starts).is_pending());
            assert!(starts_on_disk().is_empty());
            within(starts)
                .await
                .expect("the starts are committed by the runs");
        });
        assert_eq!(commits(), before + 1);
        let mut want: Vec<String> = metas.iter().map(|m| m.id.clone()).collect();
        want.sort();
        assert_eq!(starts_on_disk(), want);
    }

    /// The rows `sql` reads, with `params`, from the store at `db` (on a
    /// reader of its own), each made by `row`.
    fn rows<T>(
        db: &std::path::Path,
        sql: &str,
        params: impl rusqlite::Params,
        row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Vec<T> {
        let reader = Store::open_read(db).expect("reader");
        let mut stmt = reader.connection().prepare(sql).expect("query");
        let rows = stmt
            .query_map(params, row)
            .expect("rows")
            .collect::<Result<Vec<_>, _>>()
            .expect("read");
        rows
    }

    /// A store in a temporary directory with one run started.
    fn one_run() -> (
        tempfile::TempDir,
        std::path::PathBuf,
        RunMeta,
        super::Recorder,
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("runs.db");
        let mut meta = meta();
        let recorder = Store::open(&db)
            .expect("open")
            .start_run(&mut meta)
            .expect("run");
        (dir, db, meta, recorder)
    }

    fn attempt_started(index: u32) -> crate::runtime::Event {
        crate::runtime::Event::AttemptStarted {
            path: "main/m/p".into(),
            action: "p".into(),
            occurrence: 1,
            index,
            attempt: index,
            prompt: "go".into(),
            role: None,
        }
    }

    /// The samples of a `best-of` round start together and are answered
    /// in any order: each answer is recorded at its own attempt's place,
    /// not at the latest started one's.
    #[test]
    fn answers_out_of_order_are_recorded_at_their_own_attempts() {
        let (_dir, db, _meta, recorder) = one_run();
        for i in 1..=3 {
            recorder.record(&attempt_started(i));
        }
        for attempt in [2, 1] {
            recorder.record(&crate::runtime::Event::Generated {
                path: "main/m/p".into(),
                action: "p".into(),
                attempt,
                output: format!("answer {attempt}"),
                tokens: None,
                prompt_tokens: None,
                generate_ms: 1,
            });
        }
        drop(recorder);
        let rows = rows(
            &db,
            "SELECT idx, output FROM journal WHERE kind = 'generated' ORDER BY key",
            [],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
        );
        assert_eq!(
            rows,
            [(2, "answer 2".to_string()), (1, "answer 1".to_string())]
        );
    }

    /// A bench's writer: a trial starts without a commit, its answer and
    /// end do not wait for one (the future is ready at once), and its lock
    /// is let go only once what it recorded is committed.
    #[test]
    fn a_trials_writer_lets_a_run_go_only_after_its_commit() {
        use crate::store::RunLock;
        use futures::FutureExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("runs.db");
        let writer = Store::open(&db).expect("open").writer();
        writer.for_trials();
        let mut m = meta();
        let began = std::time::Instant::now();
        let r = writer
            .begin_pinned_run(&mut m, &crate::store::pins::Pinned::default())
            .expect("run");
        // not committed before it returned: the writer's thread commits
        // it, at the earliest when the open transaction is FLUSH_AFTER old
        let open = writer.core.shared.lock().open_since.is_some();
        assert!(
            open || began.elapsed() >= super::FLUSH_AFTER,
            "committed at once"
        );
        let reader = Store::open_read(&db).expect("reader");
        let count = |sql: &str| -> i64 {
            reader
                .connection()
                .query_row(sql, [&m.id], |r| r.get(0))
                .expect("count")
        };
        for i in 0..50 {
            let end = r.record_durable(&committed(&format!("a{i}")));
            assert!(end.now_or_never().is_some(), "no wait");
        }
        drop(r);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while RunLock::held(&db, &m.id) {
            assert!(std::time::Instant::now() < deadline, "never let go");
            std::thread::yield_now();
        }
        // let go: everything it recorded is in the store
        assert_eq!(count("SELECT count(*) FROM commits WHERE run_id = ?1"), 50);
        assert_eq!(count("SELECT count(*) FROM runs WHERE id = ?1"), 1);
        drop(writer);
    }

    /// A store written without pause keeps a bounded log: past the limit,
    /// a checkpoint holds the writer and the log starts again.
    #[test]
    fn a_store_written_without_pause_keeps_its_log_bounded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("runs.db");
        let writer = Store::open(&db).expect("open").writer();
        let limit = 256 << 10;
        writer
            .core
            .shared
            .hold_the_writer_past
            .store(limit, std::sync::atomic::Ordering::Relaxed);
        let mut m = meta();
        let r = writer
            .start_pinned_run(&mut m, &crate::store::pins::Pinned::default())
            .expect("run");
        let log = dir.path().join("runs.db-wal");
        let size = || std::fs::metadata(&log).map_or(0, |m| m.len());
        let (mut largest, mut i) = (0, 0u32);
        let t0 = std::time::Instant::now();
        while t0.elapsed() < std::time::Duration::from_millis(1500) {
            // a commit each time, with a page's worth of answer
            r.record(&crate::runtime::Event::Generated {
                path: "main/m/p".into(),
                action: "p".into(),
                attempt: i,
                output: "x".repeat(4000),
                tokens: None,
                prompt_tokens: None,
                generate_ms: 1,
            });
            i += 1;
            largest = largest.max(size());
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        drop(r);
        drop(writer);
        assert!(i > 500, "only {i} commits");
        assert!(
            largest < 8 << 20,
            "the log grew to {largest} bytes over {i} commits"
        );
    }
}
