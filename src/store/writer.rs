//! The recorder: a run's sink. Each event is written as it happens; the
//! transaction is committed before the run can do anything the store must
//! know of (call a generator, commit an artifact, end). Events that only
//! announce (a task, method or action started) ride along with the next
//! commit.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use rusqlite::{params, Connection};

use super::lock::RunLock;
use super::resume::Prior;
use super::{content_hash, now_ms, StoreError};
use crate::runtime::{Event, Sink, VerdictKind};

/// Records one run into the store.
pub struct Recorder {
    id: String,
    path: PathBuf,
    inner: Mutex<Inner>,
    failure: OnceLock<String>,
    checkpointer: Option<Checkpointer>,
}

/// Copies the write-ahead log into the database on a thread of its own,
/// every quarter second: checkpoints are the only writes that wait for
/// the disk (`fsync`), and the run should not.
struct Checkpointer {
    stop: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Checkpointer {
    fn start(path: &std::path::Path) -> Option<Checkpointer> {
        let conn = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .ok()?;
        let _ = conn.busy_timeout(std::time::Duration::from_secs(5));
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("guardflow-checkpoint".into())
            .spawn(move || {
                use std::sync::mpsc::RecvTimeoutError;
                let interval = std::time::Duration::from_millis(250);
                loop {
                    let done = !matches!(
                        stopped.recv_timeout(interval),
                        Err(RecvTimeoutError::Timeout)
                    );
                    // a failed checkpoint loses nothing: the log keeps it all
                    let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                    if done {
                        break;
                    }
                }
            })
            .ok()?;
        Some(Checkpointer { stop, thread })
    }
}

struct Inner {
    conn: Connection,
    session: i64,
    seq: i64,
    /// The (occurrence, index) of the latest attempt at each path.
    current: HashMap<String, (u32, u32)>,
    in_transaction: bool,
    /// Events that only announce, written with the next event that ends
    /// something, or in batches: a kill may lose the latest of them, never
    /// an attempt, a verdict or a commit.
    announcements: Vec<Announcement>,
    _lock: RunLock,
}

struct Announcement {
    seq: i64,
    at: i64,
    kind: &'static str,
    path: Option<String>,
    body: String,
}

const ANNOUNCEMENTS_PER_WRITE: usize = 32;

impl Inner {
    fn flush_announcements(&mut self, id: &str, session: i64) -> rusqlite::Result<()> {
        if self.announcements.is_empty() {
            return Ok(());
        }
        let mut stmt = self.conn.prepare_cached(
            "INSERT INTO events (run_id, seq, session, at_ms, kind, path, body)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for a in self.announcements.drain(..) {
            stmt.execute(params![id, a.seq, session, a.at, a.kind, a.path, a.body])?;
        }
        Ok(())
    }
}

impl Recorder {
    pub(super) fn new(
        path: PathBuf,
        conn: Connection,
        id: String,
        lock: RunLock,
    ) -> Result<Recorder, StoreError> {
        Recorder::open(path, conn, id, lock, 1, 1, HashMap::new())
    }

    pub(super) fn resumed(
        path: PathBuf,
        conn: Connection,
        id: String,
        lock: RunLock,
        prior: &Prior,
    ) -> Result<Recorder, StoreError> {
        Recorder::open(
            path,
            conn,
            id,
            lock,
            prior.sessions + 1,
            prior.next_seq,
            prior.current.clone(),
        )
    }

    fn open(
        path: PathBuf,
        conn: Connection,
        id: String,
        lock: RunLock,
        session: i64,
        seq: i64,
        current: HashMap<String, (u32, u32)>,
    ) -> Result<Recorder, StoreError> {
        conn.execute(
            "INSERT INTO sessions (run_id, session, pid, started_ms) VALUES (?1, ?2, ?3, ?4)",
            params![id, session, std::process::id(), now_ms()],
        )
        .map_err(|e| super::sqlite_error(&path, e))?;
        let path_for_checkpoints = path.clone();
        Ok(Recorder {
            id,
            path,
            inner: Mutex::new(Inner {
                conn,
                session,
                seq,
                current,
                in_transaction: false,
                announcements: Vec::new(),
                _lock: lock,
            }),
            failure: OnceLock::new(),
            checkpointer: Checkpointer::start(&path_for_checkpoints),
        })
    }

    /// The run's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The store's file.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    fn write(&self, event: &Event) -> rusqlite::Result<()> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let inner = &mut *inner;
        let seq = inner.seq;
        inner.seq += 1;
        let (id, session, at) = (&self.id, inner.session, now_ms());
        let (kind, path, ends) = describe(event);
        let hot = matches!(
            event,
            Event::AttemptStarted { .. } | Event::Attempt(_) | Event::Committed { .. }
        );
        if !hot && !ends {
            inner.announcements.push(Announcement {
                seq,
                at,
                kind,
                path: path.map(str::to_string),
                body: serde_json::to_string(event).unwrap_or_default(),
            });
            if inner.announcements.len() < ANNOUNCEMENTS_PER_WRITE {
                return Ok(());
            }
        }
        if !inner.in_transaction {
            inner.conn.execute_batch("BEGIN IMMEDIATE")?;
            inner.in_transaction = true;
        }
        if !hot || inner.announcements.len() >= ANNOUNCEMENTS_PER_WRITE {
            inner.flush_announcements(id, session)?;
        }
        let conn = &inner.conn;
        let commit = match event {
            _ if !hot && !ends => true,
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
                    "INSERT INTO attempts (run_id, seq, session, at_ms, path, occurrence, idx, action, attempt, prompt, role)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                )?
                .execute(params![
                    id, seq, session, at, path, occurrence, index, action, attempt, prompt, role
                ])?;
                inner.current.insert(path.clone(), (*occurrence, *index));
                true
            }
            Event::Attempt(a) => {
                let (occurrence, index) = inner.current.get(&a.path).copied().unwrap_or((0, 0));
                let hash = a.output.as_deref().map(|o| content_hash(o.as_bytes()));
                conn.prepare_cached(
                    "INSERT INTO verdicts (run_id, seq, session, at_ms, path, occurrence, idx, output, output_hash, verdict, feedback, tokens, prompt_tokens, outcome, generate_ms, guard_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
                )?
                .execute(params![
                    id,
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
                ])?;
                // a pass is followed at once by its commit: one transaction
                a.verdict != VerdictKind::Pass
            }
            Event::Committed {
                path,
                action,
                artifact,
            } => {
                let (occurrence, _) = inner.current.get(path).copied().unwrap_or((0, 0));
                let text = artifact.to_string();
                conn.prepare_cached(
                    "INSERT INTO commits (run_id, seq, session, at_ms, path, occurrence, action, artifact, artifact_hash)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )?
                .execute(params![
                    id,
                    seq,
                    session,
                    at,
                    path,
                    occurrence,
                    action,
                    text,
                    content_hash(text.as_bytes())
                ])?;
                true
            }
            Event::RunFinished {
                success,
                generator_calls,
                guard_runs,
                elapsed_ms,
            } => {
                conn.prepare_cached(
                    "INSERT INTO finishes (run_id, seq, session, at_ms, success, generator_calls, guard_runs, elapsed_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?
                .execute(params![
                    id,
                    seq,
                    session,
                    at,
                    success,
                    (*generator_calls).min(i64::MAX as u64) as i64,
                    (*guard_runs).min(i64::MAX as u64) as i64,
                    (*elapsed_ms).min(i64::MAX as u64) as i64,
                ])?;
                true
            }
            other => {
                let body = serde_json::to_string(other).unwrap_or_default();
                conn.prepare_cached(
                    "INSERT INTO events (run_id, seq, session, at_ms, kind, path, body)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?
                .execute(params![id, seq, session, at, kind, path, body])?;
                true
            }
        };
        if commit {
            inner.conn.execute_batch("COMMIT")?;
            inner.in_transaction = false;
        }
        Ok(())
    }
}

impl Sink for Recorder {
    fn record(&self, event: &Event) {
        if self.failure.get().is_some() {
            return;
        }
        if let Err(e) = self.write(event) {
            let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            if inner.in_transaction {
                let _ = inner.conn.execute_batch("ROLLBACK");
                inner.in_transaction = false;
            }
            let _ = self
                .failure
                .set(format!("`{}`: {}", self.path.display(), explain(&e)));
        }
    }

    fn failure(&self) -> Option<String> {
        self.failure.get().cloned()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        let inner = self.inner.get_mut().unwrap_or_else(|e| e.into_inner());
        if self.failure.get().is_none() && !inner.announcements.is_empty() {
            if !inner.in_transaction && inner.conn.execute_batch("BEGIN IMMEDIATE").is_ok() {
                inner.in_transaction = true;
            }
            let session = inner.session;
            let _ = inner.flush_announcements(&self.id, session);
        }
        if inner.in_transaction {
            let _ = inner.conn.execute_batch("COMMIT");
        }
        if let Some(c) = self.checkpointer.take() {
            drop(c.stop);
            let _ = c.thread.join();
        }
    }
}

fn explain(e: &rusqlite::Error) -> String {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DiskFull) => format!("the disk is full ({e})"),
        Some(rusqlite::ErrorCode::ReadOnly) => format!("it cannot be written ({e})"),
        _ => e.to_string(),
    }
}

pub(super) fn verdict_name(v: VerdictKind) -> &'static str {
    match v {
        VerdictKind::Pass => "pass",
        VerdictKind::Fail => "fail",
        VerdictKind::Fatal => "fatal",
    }
}

/// An event's kind, path, and whether it is committed at once (it ends
/// something) or with the next one (it only announces).
fn describe(e: &Event) -> (&'static str, Option<&str>, bool) {
    match e {
        Event::RunStarted { .. } => ("run_started", None, true),
        Event::TaskStarted { path, .. } => ("task_started", Some(path), false),
        Event::MethodStarted { path, .. } => ("method_started", Some(path), false),
        Event::MethodSkipped { path, .. } => ("method_skipped", Some(path), true),
        Event::MethodFailed { path, .. } => ("method_failed", Some(path), true),
        Event::ActionStarted { path, .. } => ("action_started", Some(path), false),
        Event::AttemptStarted { path, .. } => ("attempt_started", Some(path), true),
        Event::Attempt(a) => ("attempt", Some(&a.path), true),
        Event::Escalated { path, .. } => ("escalated", Some(path), true),
        Event::Committed { path, .. } => ("committed", Some(path), true),
        Event::ActionFailed { path, .. } => ("action_failed", Some(path), true),
        Event::TaskFinished { path, .. } => ("task_finished", Some(path), true),
        Event::RunFinished { .. } => ("run_finished", None, true),
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
        let mut meta = RunMeta {
            id: String::new(),
            workflow: "f.guardflow".into(),
            workflow_hash: String::new(),
            task: "main".into(),
            inputs: serde_json::Map::new(),
            replacement: None,
            worst_case_calls: None,
            started_ms: 0,
        };
        let recorder = Store::open(&db)
            .expect("open")
            .start_run(&mut meta)
            .expect("run");
        {
            let inner = recorder.inner.lock().expect("lock");
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
}
