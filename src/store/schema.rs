//! Opening a store: a file that is not ours is refused before anything is
//! written to it; a new store gets its tables, all append-only.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::StoreError;

/// `PRAGMA application_id`: "GFlw".
pub const APPLICATION_ID: i64 = 0x4746_6c77;
/// `PRAGMA user_version`: the format of the tables. Version 1 had a
/// table per kind of event; version 2 one journal, and views of the same
/// names and columns; version 3 adds the journal's `guarded` column. An
/// older store is moved to this version when it is first opened, and
/// read as it is then.
pub const VERSION: i64 = 3;

/// The tables of a new store; all append-only.
const TABLES: &[&str] = &["runs", "sessions", "journal"];

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

/// The triggers that make `table` append-only.
fn append_only(table: &str) -> String {
    format!(
        "CREATE TRIGGER {table}_append_only_update BEFORE UPDATE ON {table} \
         BEGIN SELECT RAISE(ABORT, 'the run store is append-only'); END;\n\
         CREATE TRIGGER {table}_append_only_delete BEFORE DELETE ON {table} \
         BEGIN SELECT RAISE(ABORT, 'the run store is append-only'); END;\n"
    )
}

/// Opens (or creates) a store for writing.
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
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| io(format!("cannot open it: {e}")))?;
    let fresh = identify(&conn, path)?;
    let sqlite = |e: rusqlite::Error| super::sqlite_error(path, e);
    conn.busy_timeout(Duration::from_secs(30)).map_err(sqlite)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(|e| writable(path, e))?;
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
            _ => format!("{FROM_VERSION_2}{VIEWS}"),
        };
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

/// Opens an existing store for reading.
pub fn open_read(path: &Path) -> Result<Connection, StoreError> {
    if !path.is_file() {
        return Err(StoreError::Io {
            path: path.to_path_buf(),
            reason: "there is no run store here (runs are recorded by `guardflow run`; \
                     choose one with --store)"
                .to_string(),
        });
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| StoreError::Io {
        path: path.to_path_buf(),
        reason: format!("cannot open it: {e}"),
    })?;
    if identify(&conn, path)? {
        return Err(StoreError::Foreign {
            path: path.to_path_buf(),
            reason: "it is empty".to_string(),
        });
    }
    conn.busy_timeout(Duration::from_secs(30))
        .map_err(|e| super::sqlite_error(path, e))?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| super::sqlite_error(path, e))?;
    if version < VERSION {
        // an older format is read once it is moved to this one
        drop(conn);
        drop(open_write(path)?);
        return open_read(path);
    }
    Ok(conn)
}

/// Whether `conn` is a new, empty database (`true`) or one of ours
/// (`false`); anything else is refused.
fn identify(conn: &Connection, path: &Path) -> Result<bool, StoreError> {
    let foreign = |reason: String| StoreError::Foreign {
        path: path.to_path_buf(),
        reason,
    };
    let read = |sql: &str| {
        conn.query_row(sql, [], |r| r.get::<_, i64>(0))
            .map_err(|e| match e.sqlite_error_code() {
                Some(rusqlite::ErrorCode::DatabaseCorrupt) => super::sqlite_error(path, e),
                Some(rusqlite::ErrorCode::NotADatabase) => {
                    foreign("not an SQLite database".to_string())
                }
                _ => foreign(e.to_string()),
            })
    };
    let app = read("PRAGMA application_id")?;
    let version = read("PRAGMA user_version")?;
    let objects = read("SELECT count(*) FROM sqlite_master")?;
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
