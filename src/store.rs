//! The run store: every run recorded in an embedded SQLite database,
//! append-only, so a killed run can be resumed and every attempt studied
//! afterwards.
//!
//! - `schema`: opening a store (refusing foreign or newer files), the
//!   tables;
//! - `writer`: the [`Writer`], one connection recording many runs with
//!   group commits, and the [`Recorder`], a run's sink on it: each event
//!   committed before the run goes on;
//! - `journal`: the journal's rows read back, in order;
//! - `resume`: what an interrupted run recorded, for the runtime;
//! - `read`: listing runs, one run's events, training pairs, statistics;
//! - `lock`: one writer per run;
//! - `wal`: the log beside a store checked to be its own before SQLite
//!   may apply it;
//! - `pins`: the files a run started with, compared when it resumes;
//! - `bench`: a bench's trials read back (`guardflow bench`).
//!
//! See docs/store.md.

pub mod bench;
mod journal;
mod lock;
pub mod outcomes;
pub mod pins;
pub mod read;
mod resume;
mod schema;
mod training;
mod wal;
mod writer;

use std::path::{Path, PathBuf};

use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::runtime::{Resume, Value};

pub use lock::{children_path, resources_dir, RunLock};
pub use schema::VERSION as FORMAT_VERSION;
pub use writer::{Recorder, Writer};

/// Where a workflow's runs are recorded unless told otherwise: beside it.
pub fn default_path(workflow: &Path) -> PathBuf {
    let dir = match workflow.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    dir.join(".guardflow").join("runs.db")
}

/// A `--store` argument: a directory means its `.guardflow/runs.db`, a
/// workflow file the store beside it, anything else the database file.
pub fn resolve(arg: &Path) -> PathBuf {
    if arg.is_dir() {
        arg.join(".guardflow").join("runs.db")
    } else if arg.extension().is_some_and(|e| e == "guardflow") {
        default_path(arg)
    } else {
        arg.to_path_buf()
    }
}

/// Why the store cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// The file or its directory cannot be created, opened or written.
    Io {
        path: PathBuf,
        reason: String,
    },
    /// The file is not a guardflow run store; it is left as it is.
    Foreign {
        path: PathBuf,
        reason: String,
    },
    /// Written by a newer guardflow.
    Newer {
        path: PathBuf,
        version: i64,
    },
    /// SQLite failed (a corrupt file, a full disk).
    Sqlite {
        path: PathBuf,
        reason: String,
    },
    /// Another process writes this run.
    Locked {
        run: String,
        holder: String,
    },
    NoSuchRun {
        path: PathBuf,
        run: String,
    },
    /// A write-ahead log beside the store that is not its own (another
    /// database's, an older copy's, or not a log): never applied.
    ForeignLog {
        path: PathBuf,
        /// Where it was moved, or `None` when it could not be.
        moved: Option<PathBuf>,
        reason: String,
    },
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Io { path, reason } => {
                write!(f, "the run store `{}`: {reason}", path.display())
            }
            StoreError::Foreign { path, reason } => write!(
                f,
                "`{}` is not a guardflow run store ({reason}); it is left untouched: \
                 choose another file with --store",
                path.display()
            ),
            StoreError::Newer { path, version } => write!(
                f,
                "the run store `{}` has format version {version}, newer than this guardflow \
                 reads ({}); upgrade guardflow or choose another file with --store",
                path.display(),
                schema::VERSION
            ),
            StoreError::Sqlite { path, reason } => {
                write!(f, "the run store `{}`: {reason}", path.display())
            }
            StoreError::Locked { run, holder } => write!(
                f,
                "run {run} is being written by another process ({holder}); \
                 wait for it to finish or stop it first"
            ),
            StoreError::ForeignLog {
                path,
                moved: Some(moved),
                reason,
            } => write!(
                f,
                "the run store `{}`: the write-ahead log beside it is not its own ({reason}); \
                 it was not applied: it was moved aside to `{}` (not deleted), and the store \
                 is as it was without it; run the command again",
                path.display(),
                moved.display()
            ),
            StoreError::ForeignLog {
                path,
                moved: None,
                reason,
            } => write!(
                f,
                "the run store `{}`: the write-ahead log beside it is not its own ({reason}); \
                 it was not applied and every file is left untouched: move `{}` away, then \
                 run the command again",
                path.display(),
                wal::sibling(path, "-wal").display()
            ),
            StoreError::NoSuchRun { path, run } => write!(
                f,
                "the run store `{}` has no run `{run}` (list them with `guardflow runs`)",
                path.display()
            ),
        }
    }
}

impl std::error::Error for StoreError {}

/// What a run was started with, so that it can be resumed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunMeta {
    pub id: String,
    /// The workflow file, absolute.
    pub workflow: String,
    /// SHA-256 of the workflow's text when the run started.
    pub workflow_hash: String,
    pub task: String,
    pub inputs: serde_json::Map<String, Value>,
    /// A generator replacing every generator (`--replay`): its kind and
    /// arguments.
    pub replacement: Option<(String, Vec<Value>)>,
    pub worst_case_calls: Option<u64>,
    /// Milliseconds since the Unix epoch.
    pub started_ms: i64,
    /// The seed every generator call was given (`run --seed`, a bench
    /// trial's); absent in runs recorded before seeds were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// The bench trial this run is (`guardflow bench`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bench: Option<BenchTag>,
}

/// A run that is one trial of a bench: which bench, arm, model and trial.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BenchTag {
    /// The bench's id (its name).
    pub id: String,
    pub arm: String,
    /// The generator every action was bound to, or `""` for the
    /// workflow's own bindings.
    pub model: String,
    /// 0-based, per arm and model.
    pub trial: u64,
    /// The arm's overrides as written (`retry=3, strategy=resample`).
    pub overrides: String,
}

/// An open store.
pub struct Store {
    path: PathBuf,
    conn: Connection,
    /// The checked view a reader reads (see `wal`), removed with it.
    _scratch: Option<wal::Scratch>,
}

impl Store {
    /// Opens the store at `path` for writing, creating it (and its
    /// directory) when there is none.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let conn = schema::open_write(path)?;
        Ok(Store {
            path: path.to_path_buf(),
            conn,
            _scratch: None,
        })
    }

    /// Opens an existing store for reading, without writing to any of
    /// its files: a read-only directory, a read-only mount or another
    /// user's store reads as well. An empty file reads as no runs.
    pub fn open_read(path: &Path) -> Result<Store, StoreError> {
        let read = schema::open_read(path)?;
        Ok(Store {
            path: path.to_path_buf(),
            conn: read.conn,
            _scratch: read.scratch,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    fn sqlite(&self, e: rusqlite::Error) -> StoreError {
        sqlite_error(&self.path, e)
    }

    /// The store as a writer that records any number of runs at once
    /// on this connection (see `writer`).
    pub fn writer(self) -> Writer {
        Writer::new(self.path, self.conn)
    }

    /// Records a new run and returns its recorder; `meta.id` is filled in.
    pub fn start_run(self, meta: &mut RunMeta) -> Result<Recorder, StoreError> {
        self.start_pinned_run(meta, &pins::Pinned::default())
    }

    /// Records a new run, with the files it starts with (see `pins`), and
    /// returns its recorder (on a writer of its own); `meta.id` is filled
    /// in.
    pub fn start_pinned_run(
        self,
        meta: &mut RunMeta,
        pinned: &pins::Pinned,
    ) -> Result<Recorder, StoreError> {
        self.writer().start_pinned_run(meta, pinned)
    }

    /// The run `id` as it was started.
    pub fn run_meta(&self, id: &str) -> Result<RunMeta, StoreError> {
        run_meta(&self.conn, &self.path, id)
    }

    /// Takes over run `id` to resume it: locks it, reads what it recorded
    /// and returns the recorder that goes on writing it.
    pub fn resume_run(self, id: &str) -> Result<(RunMeta, Resume, Recorder), StoreError> {
        self.resume_run_with(id, None, |_| Ok::<(), std::convert::Infallible>(()))?
            .map_err(|never| match never {})
    }

    /// Like [`Store::resume_run`], but `check` sees what the run recorded
    /// (and may add to it, such as answers about effects) while the run's
    /// lock is held and before the resume writes anything: its error
    /// leaves the store as it was. With `accepted`: the files the run goes
    /// on with although they changed (`--accept-changes`), and the
    /// changes, recorded for this session once `check` passed.
    pub fn resume_run_with<E>(
        self,
        id: &str,
        accepted: Option<(&pins::Pinned, &[String])>,
        check: impl FnOnce(&mut Resume) -> Result<(), E>,
    ) -> Result<Result<(RunMeta, Resume, Recorder), E>, StoreError> {
        self.writer().resume_run_with(id, accepted, check)
    }

    /// Takes over run `id` to record what another process runs for it (a
    /// run on Temporal, mirrored by `guardflow follow`): locks it and
    /// returns the recorder that appends to it in its latest session.
    pub fn continue_run(self, id: &str) -> Result<Recorder, StoreError> {
        self.writer().continue_run(id)
    }

    /// Whether run `id` has finished, and how.
    pub fn finished(&self, id: &str) -> Result<Option<bool>, StoreError> {
        self.conn
            .query_row(
                "SELECT success FROM finishes WHERE run_id = ?1 ORDER BY seq DESC LIMIT 1",
                [id],
                |r| r.get::<_, bool>(0),
            )
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(e),
            })
            .map_err(|e| self.sqlite(e))
    }
}

/// The run `id` as it was started, read on `conn`.
fn run_meta(conn: &Connection, path: &Path, id: &str) -> Result<RunMeta, StoreError> {
    let config: Option<String> = conn
        .query_row("SELECT config FROM runs WHERE id = ?1", [id], |r| r.get(0))
        .map(Some)
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            e => Err(e),
        })
        .map_err(|e| sqlite_error(path, e))?;
    let Some(config) = config else {
        return Err(StoreError::NoSuchRun {
            path: path.to_path_buf(),
            run: id.to_string(),
        });
    };
    serde_json::from_str(&config).map_err(|e| StoreError::Sqlite {
        path: path.to_path_buf(),
        reason: format!("run {id}: its recorded configuration is unreadable: {e}"),
    })
}

impl Writer {
    /// Records a new run, with the files it starts with (see `pins`) and
    /// its first session, and returns its recorder; `meta.id` is filled
    /// in. The run's rows are committed before this returns, with what
    /// the writer's other runs recorded meanwhile (one commit).
    pub fn start_pinned_run(
        &self,
        meta: &mut RunMeta,
        pinned: &pins::Pinned,
    ) -> Result<Recorder, StoreError> {
        self.start(meta, pinned, true)
    }

    /// As [`Writer::start_pinned_run`], but the run's rows are committed
    /// with its first event that must be durable (its first generator
    /// call or effect), in the writer's thread, not before this returns:
    /// a bench starts its trials without a commit each. A run stopped
    /// before then leaves nothing in the store, and had done nothing
    /// outside the process.
    pub fn begin_pinned_run(
        &self,
        meta: &mut RunMeta,
        pinned: &pins::Pinned,
    ) -> Result<Recorder, StoreError> {
        self.start(meta, pinned, false)
    }

    fn start(
        &self,
        meta: &mut RunMeta,
        pinned: &pins::Pinned,
        commit: bool,
    ) -> Result<Recorder, StoreError> {
        let path = self.path().to_path_buf();
        self.with_open(commit, |inner| {
            for salt in 0..8u32 {
                meta.id = new_run_id(salt);
                let lock = match RunLock::acquire(&path, &meta.id) {
                    Ok(lock) => lock,
                    // (a run of that id being written elsewhere: another id)
                    Err(StoreError::Locked { .. }) => continue,
                    Err(e) => return Ok(Err(e)),
                };
                let conn = &inner.conn;
                let inserted = conn
                    .prepare_cached(
                        "INSERT OR IGNORE INTO runs (id, number, workflow, workflow_hash, task, config, worst_case_calls, started_ms)
                         VALUES (?1, (SELECT coalesce(max(number), 0) + 1 FROM runs), ?2, ?3, ?4, ?5, ?6, ?7)",
                    )?
                    .execute(rusqlite::params![
                        meta.id,
                        meta.workflow,
                        meta.workflow_hash,
                        meta.task,
                        serde_json::to_string(&meta).unwrap_or_default(),
                        meta.worst_case_calls.map(|w| w.min(i64::MAX as u64) as i64),
                        meta.started_ms
                    ])?;
                if inserted != 1 {
                    continue;
                }
                pins::record(conn, &meta.id, 1, pinned)?;
                let number = inner.session_row(&meta.id, 1)?;
                return Ok(Ok(Some((meta.id.clone(), number, lock))));
            }
            Ok(Ok(None))
        })??
        .map(|(id, number, lock)| {
            self.with_inner(|inner| self.recorder(inner, &id, number, lock, (1, 1, Default::default())))
        })
        .ok_or_else(|| StoreError::Sqlite {
            path: path.clone(),
            reason: "could not choose a fresh run id".to_string(),
        })
    }

    /// Takes over run `id` to record what another process runs for it,
    /// as [`Store::continue_run`] says, on this writer.
    pub fn continue_run(&self, id: &str) -> Result<Recorder, StoreError> {
        let path = self.path().to_path_buf();
        self.with_conn(|inner| {
            run_meta(&inner.conn, &path, id)?;
            let lock = RunLock::acquire(&path, id)?;
            let prior = resume::load(&inner.conn, id).map_err(|e| sqlite_error(&path, e))?;
            self.continued(inner, id, lock, &prior)
        })
    }

    /// Takes over run `id` to resume it, as [`Store::resume_run_with`]
    /// says, recording it on this writer.
    pub fn resume_run_with<E>(
        &self,
        id: &str,
        accepted: Option<(&pins::Pinned, &[String])>,
        check: impl FnOnce(&mut Resume) -> Result<(), E>,
    ) -> Result<Result<(RunMeta, Resume, Recorder), E>, StoreError> {
        let path = self.path().to_path_buf();
        self.with_conn(|inner| {
            let sqlite = |e| sqlite_error(&path, e);
            let meta = run_meta(&inner.conn, &path, id)?;
            let lock = RunLock::acquire(&path, id)?;
            let mut prior = resume::load(&inner.conn, id).map_err(sqlite)?;
            if let Err(e) = check(&mut prior.resume) {
                return Ok(Err(e));
            }
            if let Some((pinned, changes)) = accepted {
                let session = prior.sessions + 1;
                let conn = &inner.conn;
                (|| {
                    conn.execute_batch("BEGIN IMMEDIATE")?;
                    pins::record(conn, id, session, pinned)?;
                    pins::record_accepted(conn, id, session, changes)?;
                    conn.execute_batch("COMMIT")
                })()
                .map_err(|e| {
                    let _ = conn.execute_batch("ROLLBACK");
                    sqlite(e)
                })?;
            }
            let recorder = self.resumed(inner, id, lock, &prior)?;
            Ok(Ok((meta, prior.resume, recorder)))
        })
    }
}

/// SHA-256, in hex.
pub fn content_hash(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(bytes);
    let mut s = String::with_capacity(64);
    for b in digest.iter() {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 0xf)] as char);
    }
    s
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn sqlite_error(path: &Path, e: rusqlite::Error) -> StoreError {
    StoreError::Sqlite {
        path: path.to_path_buf(),
        reason: match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseCorrupt) => corrupt(&e),
            _ => e.to_string(),
        },
    }
}

/// What a corrupt store is told as when it is found before anything is
/// written (opening; reading commands write nothing).
fn corrupt(e: &rusqlite::Error) -> String {
    corrupt_text(&e.to_string())
}

fn corrupt_text(e: &str) -> String {
    format!("the file is corrupt ({e}); it is left untouched")
}

/// `20261127-081503-3fa2`: the UTC time the run started and four hex
/// digits from the process and the clock.
fn new_run_id(salt: u32) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let mix = (now.subsec_nanos() ^ std::process::id().rotate_left(16) ^ salt.wrapping_mul(0x9e37))
        & 0xffff;
    format!("{}-{mix:04x}", utc_stamp(now.as_secs() as i64))
}

/// `YYYYMMDD-HHMMSS` in UTC.
pub fn utc_stamp(secs: i64) -> String {
    let (y, m, d, h, min, s) = utc_parts(secs);
    format!("{y:04}{m:02}{d:02}-{h:02}{min:02}{s:02}")
}

/// `YYYY-MM-DD HH:MM:SS` in UTC, from milliseconds.
pub fn utc_time(ms: i64) -> String {
    let (y, m, d, h, min, s) = utc_parts(ms.div_euclid(1000));
    format!("{y:04}-{m:02}-{d:02} {h:02}:{min:02}:{s:02}")
}

/// Year, month, day, hour, minute and second in UTC of a Unix time.
fn utc_parts(secs: i64) -> (i64, u32, u32, i64, i64, i64) {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    (y, m, d, rem / 3600, (rem % 3600) / 60, rem % 60)
}

/// Howard Hinnant's days-to-civil.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(utc_stamp(0), "19700101-000000");
        assert_eq!(utc_time(1_795_737_600_000), "2026-11-27 00:00:00");
        assert_eq!(utc_stamp(951_782_400 + 3661), "20000229-010101");
    }

    #[test]
    fn hashes() {
        assert_eq!(
            content_hash(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
