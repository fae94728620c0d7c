//! Opening a store: a file that is not ours, a corrupt one, or a log
//! beside it that is not its own is refused before anything is written
//! (see `wal`); a new store gets its tables, all append-only. Reading
//! commands open a store without writing to its files at all.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

use super::{wal, StoreError};

/// `PRAGMA application_id`: "GFlw".
pub const APPLICATION_ID: i64 = 0x4746_6c77;
/// `PRAGMA user_version`: the format of the tables. Version 1 had a
/// table per kind of event; version 2 one journal, and views of the same
/// names and columns; version 3 adds the journal's `guarded` column;
/// version 4 the files each run was started (or resumed) with, `pins`,
/// and their contents, `blobs`. An older store is moved to this version
/// when it is first opened, and read as it is then.
pub const VERSION: i64 = 4;

/// The tables of a new store; all append-only.
const TABLES: &[&str] = &["runs", "sessions", "journal", "pins", "blobs"];

/// What each run was started with: the workflow, every file it `use`s,
/// the standard library, the files of its `file()`/`folder()` inputs
/// (session 1), and what a resume with `--accept-changes` went on with
/// (its session). The contents of inputs are in `blobs`, once each.
const PINS: &str = "
CREATE TABLE pins (
    run_id TEXT NOT NULL,
    session INTEGER NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    path TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX pins_run ON pins (run_id, session);
CREATE TABLE blobs (
    hash TEXT PRIMARY KEY,
    content BLOB NOT NULL
);
";

/// The columns of the journal that some kind of event fills; the views
/// show each kind's own.
/// The runs, numbered in the order they started.
const RUNS: &str = "
CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    number INTEGER NOT NULL UNIQUE,
    workflow TEXT NOT NULL,
    workflow_hash TEXT NOT NULL,
    task TEXT NOT NULL,
    config TEXT NOT NULL,
    worst_case_calls INTEGER,
    started_ms INTEGER NOT NULL
);
";

/// The tables besides the journal.
const SCHEMA: &str = "
CREATE TABLE sessions (
    run_id TEXT NOT NULL,
    session INTEGER NOT NULL,
    pid INTEGER NOT NULL,
    started_ms INTEGER NOT NULL,
    PRIMARY KEY (run_id, session)
);
";

/// One row per event. Its key is the run's number times 2^32 plus the
/// event's `seq`: a run's events are one range of keys, and a commit
/// appends to the last page of one tree.
const JOURNAL: &str = "
CREATE TABLE journal (
    key INTEGER PRIMARY KEY,
    seq INTEGER NOT NULL,
    session INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    kind TEXT NOT NULL,
    path TEXT,
    occurrence INTEGER,
    idx INTEGER,
    action TEXT,
    attempt INTEGER,
    prompt TEXT,
    role TEXT,
    output TEXT,
    output_hash TEXT,
    verdict TEXT,
    feedback TEXT,
    tokens INTEGER,
    prompt_tokens INTEGER,
    outcome TEXT,
    generate_ms INTEGER,
    guard_ms INTEGER,
    artifact TEXT,
    artifact_hash TEXT,
    success INTEGER,
    generator_calls INTEGER,
    guard_runs INTEGER,
    elapsed_ms INTEGER,
    body TEXT,
    guarded INTEGER
);
";

/// The views of the journal: one per kind of event, as version 1's
/// tables were.
const VIEWS: &str = "
CREATE VIEW run_journal AS
    SELECT r.id AS run_id, j.* FROM runs r JOIN journal j
    ON j.key BETWEEN r.number * 4294967296 AND r.number * 4294967296 + 4294967295;
CREATE VIEW attempts AS
    SELECT run_id, seq, session, at_ms, path, occurrence, idx, action, attempt, prompt, role
    FROM run_journal WHERE kind = 'attempt_started';
CREATE VIEW verdicts AS
    SELECT run_id, seq, session, at_ms, path, occurrence, idx, output, output_hash, verdict,
           feedback, tokens, prompt_tokens, outcome, guarded, generate_ms, guard_ms
    FROM run_journal WHERE kind = 'attempt';
CREATE VIEW commits AS
    SELECT run_id, seq, session, at_ms, path, occurrence, action, artifact, artifact_hash
    FROM run_journal WHERE kind = 'committed';
CREATE VIEW finishes AS
    SELECT run_id, seq, session, at_ms, success, generator_calls, guard_runs, elapsed_ms
    FROM run_journal WHERE kind = 'run_finished';
CREATE VIEW events AS
    SELECT run_id, seq, session, at_ms, kind, path, body
    FROM run_journal WHERE kind NOT IN ('attempt_started', 'attempt', 'committed', 'run_finished');
";

/// Version 1's tables into the journal: every row kept; runs are
/// numbered in the order they started.
const FROM_VERSION_1: &str = "
ALTER TABLE runs RENAME TO v1_runs;
ALTER TABLE attempts RENAME TO v1_attempts;
ALTER TABLE verdicts RENAME TO v1_verdicts;
ALTER TABLE commits RENAME TO v1_commits;
ALTER TABLE finishes RENAME TO v1_finishes;
ALTER TABLE events RENAME TO v1_events;
{runs}
INSERT INTO runs (id, number, workflow, workflow_hash, task, config, worst_case_calls, started_ms)
    SELECT id, row_number() OVER (ORDER BY started_ms, rowid), workflow, workflow_hash, task,
           config, worst_case_calls, started_ms
    FROM v1_runs;
{journal}
{views}
INSERT INTO journal (key, seq, session, at_ms, kind, path, occurrence, idx, action, attempt, prompt, role)
    SELECT r.number * 4294967296 + t.seq, t.seq, session, at_ms, 'attempt_started', path,
           occurrence, idx, action, attempt, prompt, role
    FROM v1_attempts t JOIN runs r ON r.id = t.run_id;
INSERT INTO journal (key, seq, session, at_ms, kind, path, occurrence, idx, output, output_hash,
                     verdict, feedback, tokens, prompt_tokens, outcome, generate_ms, guard_ms,
                     guarded)
    SELECT r.number * 4294967296 + t.seq, t.seq, session, at_ms, 'attempt', path, occurrence,
           idx, output, output_hash, verdict, feedback, tokens, prompt_tokens, outcome,
           generate_ms, guard_ms, output IS NOT NULL
    FROM v1_verdicts t JOIN runs r ON r.id = t.run_id;
INSERT INTO journal (key, seq, session, at_ms, kind, path, occurrence, action, artifact, artifact_hash)
    SELECT r.number * 4294967296 + t.seq, t.seq, session, at_ms, 'committed', path, occurrence,
           action, artifact, artifact_hash
    FROM v1_commits t JOIN runs r ON r.id = t.run_id;
INSERT INTO journal (key, seq, session, at_ms, kind, success, generator_calls, guard_runs, elapsed_ms)
    SELECT r.number * 4294967296 + t.seq, t.seq, session, at_ms, 'run_finished', success,
           generator_calls, guard_runs, elapsed_ms
    FROM v1_finishes t JOIN runs r ON r.id = t.run_id;
INSERT INTO journal (key, seq, session, at_ms, kind, path, body)
    SELECT r.number * 4294967296 + t.seq, t.seq, session, at_ms, kind, path, body
    FROM v1_events t JOIN runs r ON r.id = t.run_id;
DROP TABLE v1_runs;
DROP TABLE v1_attempts;
DROP TABLE v1_verdicts;
DROP TABLE v1_commits;
DROP TABLE v1_finishes;
DROP TABLE v1_events;
";

/// A run's events have keys from `first_key(number)` on.
pub fn first_key(number: i64) -> i64 {
    number << 32
}

/// The most events one run can record.
pub const MAX_SEQ: i64 = (1 << 32) - 1;

/// Version 2 into version 3: the journal's `guarded` column (unknown,
/// so empty, for what version 2 recorded), and the views again.
const FROM_VERSION_2: &str = "
ALTER TABLE journal ADD COLUMN guarded INTEGER;
DROP VIEW IF EXISTS run_journal;
DROP VIEW IF EXISTS attempts;
DROP VIEW IF EXISTS verdicts;
DROP VIEW IF EXISTS commits;
DROP VIEW IF EXISTS finishes;
DROP VIEW IF EXISTS events;
";

/// Version 3 into version 4: the pins and their blobs.
const FROM_VERSION_3: &str = PINS;

/// The triggers that make `table` append-only.
fn append_only(table: &str) -> String {
    format!(
        "CREATE TRIGGER {table}_append_only_update BEFORE UPDATE ON {table} \
         BEGIN SELECT RAISE(ABORT, 'the run store is append-only'); END;\n\
         CREATE TRIGGER {table}_append_only_delete BEFORE DELETE ON {table} \
         BEGIN SELECT RAISE(ABORT, 'the run store is append-only'); END;\n"
    )
}

/// Opens (or creates) a store for writing. Before anything is written:
/// the log beside it is checked to be its own (`wal::check`), and the
/// database (with that log) is identified and checked whole
/// (`PRAGMA quick_check`) from a read-only view that writes no file.
pub fn open_write(path: &Path) -> Result<Connection, StoreError> {
    let io = |reason: String| StoreError::Io {
        path: path.to_path_buf(),
        reason,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            io(format!(
                "cannot create the directory `{}`: {}",
                dir.display(),
                crate::check::io_reason(&e)
            ))
        })?;
    }
    if path.is_dir() {
        return Err(io("it is a directory".to_string()));
    }
    if path.is_file() || wal::sibling(path, "-wal").is_file() {
        let view = match wal::check(path)? {
            wal::Checked::Sound(scratch) => Some((scratch.open(), Some(scratch))),
            wal::Checked::NoLog { in_use: false } => Some((open_immutable(path), None)),
            // another process has it open: it checked it
            wal::Checked::NoLog { in_use: true } => None,
        };
        if let Some((conn, _scratch)) = view {
            let conn = conn.map_err(|e| io(format!("cannot open it: {e}")))?;
            if !identify(&conn, path)? {
                if let Some(bad) = wal::quick_check(&conn) {
                    return Err(StoreError::Sqlite {
                        path: path.to_path_buf(),
                        reason: super::corrupt_text(&bad),
                    });
                }
            }
        }
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| io(format!("cannot open it: {e}")))?;
    let fresh = identify(&conn, path)?;
    // SQLite opens a file it may not write read-only without a word
    if conn.is_readonly(rusqlite::MAIN_DB).unwrap_or(false) {
        return Err(io(
            "it cannot be written (a read-only file, directory or mount?)".to_string(),
        ));
    }
    let sqlite = |e: rusqlite::Error| super::sqlite_error(path, e);
    conn.busy_timeout(BUSY_TIMEOUT).map_err(sqlite)?;
    reserve(path)?;
    let mode = wal_mode(&conn).map_err(|e| writable(path, e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(io(format!(
            "it cannot use write-ahead logging (mode {mode})"
        )));
    }
    // checkpoints (the only fsyncs) are the recorder's background thread's
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 0")
        .map_err(sqlite)?;
    if fresh {
        let mut ddl = String::from("BEGIN IMMEDIATE;\n");
        ddl.push_str(RUNS);
        ddl.push_str(SCHEMA);
        ddl.push_str(JOURNAL);
        ddl.push_str(PINS);
        ddl.push_str(VIEWS);
        for t in TABLES {
            ddl.push_str(&append_only(t));
        }
        ddl.push_str(&format!(
            "PRAGMA application_id = {APPLICATION_ID};\nPRAGMA user_version = {VERSION};\nCOMMIT;"
        ));
        if let Err(e) = conn.execute_batch(&ddl) {
            let _ = conn.execute_batch("ROLLBACK");
            // another process may have created it meanwhile
            if identify(&conn, path)? {
                return Err(writable(path, e));
            }
        }
    }
    upgrade(&conn, path)?;
    Ok(conn)
}

/// Puts the store in write-ahead logging, and says the mode it is in.
/// Processes that open a new store at once all switch it: SQLite answers
/// a switch that meets another's "busy" at once, without waiting as the
/// busy timeout says, so a busy switch is tried again for as long.
fn wal_mode(conn: &Connection) -> rusqlite::Result<String> {
    let give_up = Instant::now() + BUSY_TIMEOUT;
    let mut pause = Duration::from_millis(1);
    loop {
        match conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)) {
            Err(e)
                if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
                    && Instant::now() < give_up =>
            {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            done => return done,
        }
    }
}

/// How long a connection waits for another's lock on the store.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// How much room a writer keeps beside its store (`runs.db.reserve`): when
/// the disk fills, the recorder gives it back to commit what it holds.
pub const RESERVE_BYTES: u64 = 1 << 20;

/// `runs.db.reserve`.
pub fn reserve_path(db: &Path) -> std::path::PathBuf {
    wal::sibling(db, ".reserve")
}

/// Makes sure the reserve is there, written (not sparse), before the
/// store is written.
fn reserve(db: &Path) -> Result<(), StoreError> {
    use std::io::Write;
    let path = reserve_path(db);
    if std::fs::metadata(&path).is_ok_and(|m| m.len() >= RESERVE_BYTES) {
        return Ok(());
    }
    let made = (|| {
        let mut f = std::fs::File::create(&path)?;
        let block = vec![0u8; 64 * 1024];
        for _ in 0..RESERVE_BYTES / block.len() as u64 {
            f.write_all(&block)?;
        }
        f.flush()
    })();
    made.map_err(|e| {
        let _ = std::fs::remove_file(&path);
        StoreError::Io {
            path: db.to_path_buf(),
            reason: if e.raw_os_error() == Some(libc::ENOSPC) {
                format!(
                    "the disk is full: a run keeps {} MiB free beside its store (`{}`) to save \
                     its last records when the disk fills; free some space",
                    RESERVE_BYTES >> 20,
                    path.display()
                )
            } else {
                format!(
                    "it cannot be written (a read-only file or directory?): cannot create `{}`: {}",
                    path.display(),
                    crate::check::io_reason(&e)
                )
            },
        }
    })
}

/// Gives the reserve back to the file system (the disk is full); the next
/// writer makes it again.
pub fn release_reserve(db: &Path) -> bool {
    std::fs::remove_file(reserve_path(db)).is_ok()
}

/// Moves an older store to this version, in one transaction: another
/// process may be doing the same, so the version is read again inside it.
fn upgrade(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let version = |c: &Connection| c.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0));
    let sqlite = |e: rusqlite::Error| super::sqlite_error(path, e);
    let from = version(conn).map_err(sqlite)?;
    if from >= VERSION {
        return Ok(());
    }
    conn.execute_batch("BEGIN IMMEDIATE")
        .map_err(|e| writable(path, e))?;
    let moved = (|| {
        if version(conn)? != from {
            return Ok(());
        }
        let mut sql = match from {
            1 => {
                let mut sql = FROM_VERSION_1
                    .replace("{runs}", RUNS)
                    .replace("{journal}", JOURNAL)
                    .replace("{views}", VIEWS);
                sql.push_str(&append_only("runs"));
                sql.push_str(&append_only("journal"));
                sql
            }
            2 => format!("{FROM_VERSION_2}{VIEWS}"),
            _ => String::new(),
        };
        // (a store made by hand from a newer one may have them already)
        let pins = format!(
            "{FROM_VERSION_3}{}{}",
            append_only("pins"),
            append_only("blobs")
        )
        .replace("CREATE TABLE ", "CREATE TABLE IF NOT EXISTS ")
        .replace("CREATE INDEX ", "CREATE INDEX IF NOT EXISTS ")
        .replace("CREATE TRIGGER ", "CREATE TRIGGER IF NOT EXISTS ");
        sql.push_str(&pins);
        sql.push_str(&format!("PRAGMA user_version = {VERSION};"));
        conn.execute_batch(&sql)
    })()
    .and_then(|()| conn.execute_batch("COMMIT"));
    if let Err(e) = moved {
        let _ = conn.execute_batch("ROLLBACK");
        return Err(StoreError::Sqlite {
            path: path.to_path_buf(),
            reason: format!("cannot move the store from format version {from} to {VERSION}: {e}"),
        });
    }
    Ok(())
}

/// An open store for reading, and what must live as long as it.
pub struct ReadOnly {
    pub conn: Connection,
    /// The view of a store whose log was checked (see `wal`).
    pub scratch: Option<wal::Scratch>,
}

/// Opens an existing store for reading, writing no file of it: with no
/// log to apply, the database is opened immutable (no lock, no `-wal` or
/// `-shm` made, so a read-only directory or another user's store reads
/// as well); a log nobody has open is checked and read from a scratch
/// view; a store another process has open is read beside it. An empty
/// file (or an empty database) reads as a store with no runs.
pub fn open_read(path: &Path) -> Result<ReadOnly, StoreError> {
    if !path.is_file() {
        return Err(StoreError::Io {
            path: path.to_path_buf(),
            reason: "there is no run store here (runs are recorded by `guardflow run`; \
                     choose one with --store)"
                .to_string(),
        });
    }
    let (conn, scratch) = view(path)?;
    if identify(&conn, path)? {
        return Ok(ReadOnly {
            conn: empty_store(path)?,
            scratch: None,
        });
    }
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| super::sqlite_error(path, e))?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| super::sqlite_error(path, e))?;
    if version < VERSION {
        // an older format is read once it is moved to this one; a store
        // that cannot be written is read as it is when its views are the
        // same (format 3: only the pins are new)
        drop(conn);
        drop(scratch);
        return match open_write(path) {
            Ok(c) => {
                drop(c);
                open_read(path)
            }
            Err(StoreError::Io { .. }) if version == 3 => {
                let (conn, scratch) = view(path)?;
                Ok(ReadOnly { conn, scratch })
            }
            Err(e) => Err(e),
        };
    }
    Ok(ReadOnly { conn, scratch })
}

/// The store read-only, as `open_read` says.
fn view(path: &Path) -> Result<(Connection, Option<wal::Scratch>), StoreError> {
    let cannot = |e: rusqlite::Error| StoreError::Io {
        path: path.to_path_buf(),
        reason: format!("cannot open it: {e}"),
    };
    Ok(match wal::check(path)? {
        wal::Checked::Sound(scratch) => (scratch.open().map_err(cannot)?, Some(scratch)),
        wal::Checked::NoLog { in_use: false } => (open_immutable(path).map_err(cannot)?, None),
        wal::Checked::NoLog { in_use: true } => (
            Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(cannot)?,
            None,
        ),
    })
}

/// A store with no runs, in memory: what an empty file reads as.
fn empty_store(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_in_memory().map_err(|e| super::sqlite_error(path, e))?;
    let mut ddl = String::new();
    for part in [RUNS, SCHEMA, JOURNAL, PINS, VIEWS] {
        ddl.push_str(part);
    }
    conn.execute_batch(&ddl)
        .map_err(|e| super::sqlite_error(path, e))?;
    Ok(conn)
}

/// The database alone, read-only and immutable: no lock taken, no file
/// made, its log (if any) not read.
fn open_immutable(path: &Path) -> rusqlite::Result<Connection> {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut uri = String::from("file:");
    for b in abs.as_os_str().as_encoded_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'.' | b'_' | b'-' | b'~' => {
                uri.push(*b as char)
            }
            _ => uri.push_str(&format!("%{b:02X}")),
        }
    }
    uri.push_str("?immutable=1");
    Connection::open_with_flags(
        uri,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
}

/// Whether `conn` is a new, empty database (`true`) or one of ours
/// (`false`); anything else is refused.
fn identify(conn: &Connection, path: &Path) -> Result<bool, StoreError> {
    let foreign = |reason: String| StoreError::Foreign {
        path: path.to_path_buf(),
        reason,
    };
    let failed = |e: rusqlite::Error| match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseCorrupt) => super::sqlite_error(path, e),
        Some(rusqlite::ErrorCode::NotADatabase) => foreign("not an SQLite database".to_string()),
        _ => foreign(e.to_string()),
    };
    let read = |sql: &str| {
        conn.query_row(sql, [], |r| r.get::<_, i64>(0))
            .map_err(failed)
    };
    // one statement, so one snapshot: read one at a time, a store another
    // process creates meanwhile could show no id yet and its tables already
    let (app, version, objects) = conn
        .query_row(
            "SELECT (SELECT application_id FROM pragma_application_id),
                    (SELECT user_version FROM pragma_user_version),
                    (SELECT count(*) FROM sqlite_master)",
            [],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            },
        )
        .map_err(failed)?;
    if app == APPLICATION_ID {
        if version > VERSION {
            return Err(StoreError::Newer {
                path: path.to_path_buf(),
                version,
            });
        }
        if version < 1 {
            return Err(foreign("its format version is missing".to_string()));
        }
        // the pages every run reads and writes first: a file broken there
        // is refused before anything (even the journal mode) is written
        read("SELECT count(*) FROM runs")?;
        if version >= 2 {
            read("SELECT coalesce(max(key), 0) FROM journal")?;
        }
        return Ok(false);
    }
    if app == 0 && version == 0 && objects == 0 {
        return Ok(true);
    }
    Err(foreign(if app == 0 {
        format!("an SQLite database of another program, with {objects} tables and indexes")
    } else {
        format!("an SQLite database of another program, application id {app:#x}")
    }))
}

/// A failed first write: a read-only file or directory reads better than
/// SQLite's words.
fn writable(path: &Path, e: rusqlite::Error) -> StoreError {
    let reason = match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::ReadOnly) | Some(rusqlite::ErrorCode::CannotOpen) => {
            format!("it cannot be written (a read-only file or directory?): {e}")
        }
        Some(rusqlite::ErrorCode::DiskFull) => format!("the disk is full: {e}"),
        _ => e.to_string(),
    };
    StoreError::Io {
        path: path.to_path_buf(),
        reason,
    }
}
