//! Opening a store: a file that is not ours is refused before anything is
//! written to it; a new store gets its tables, all append-only.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::StoreError;

/// `PRAGMA application_id`: "GFlw".
pub const APPLICATION_ID: i64 = 0x4746_6c77;
/// `PRAGMA user_version`: the format of the tables.
pub const VERSION: i64 = 1;

const TABLES: &[&str] = &[
    "runs", "sessions", "events", "attempts", "verdicts", "commits", "finishes",
];

const SCHEMA: &str = "
CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    workflow TEXT NOT NULL,
    workflow_hash TEXT NOT NULL,
    task TEXT NOT NULL,
    config TEXT NOT NULL,
    worst_case_calls INTEGER,
    started_ms INTEGER NOT NULL
);
CREATE TABLE sessions (
    run_id TEXT NOT NULL,
    session INTEGER NOT NULL,
    pid INTEGER NOT NULL,
    started_ms INTEGER NOT NULL,
    PRIMARY KEY (run_id, session)
);
CREATE TABLE events (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    session INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    kind TEXT NOT NULL,
    path TEXT,
    body TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
CREATE TABLE attempts (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    session INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    path TEXT NOT NULL,
    occurrence INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    action TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    prompt TEXT NOT NULL,
    role TEXT,
    PRIMARY KEY (run_id, path, occurrence, idx)
) WITHOUT ROWID;
CREATE TABLE verdicts (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    session INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    path TEXT NOT NULL,
    occurrence INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    output TEXT,
    output_hash TEXT,
    verdict TEXT NOT NULL,
    feedback TEXT NOT NULL,
    tokens INTEGER,
    prompt_tokens INTEGER,
    outcome TEXT,
    generate_ms INTEGER NOT NULL,
    guard_ms INTEGER NOT NULL,
    PRIMARY KEY (run_id, path, occurrence, idx)
) WITHOUT ROWID;
CREATE TABLE commits (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    session INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    path TEXT NOT NULL,
    occurrence INTEGER NOT NULL,
    action TEXT NOT NULL,
    artifact TEXT NOT NULL,
    artifact_hash TEXT NOT NULL,
    PRIMARY KEY (run_id, path, occurrence)
) WITHOUT ROWID;
CREATE TABLE finishes (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    session INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    success INTEGER NOT NULL,
    generator_calls INTEGER NOT NULL,
    guard_runs INTEGER NOT NULL,
    elapsed_ms INTEGER NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
";

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
    if fresh {
        // small pages: each commit appends whole pages to the log, and a
        // commit of an attempt changes a few rows
        conn.execute_batch("PRAGMA page_size = 1024")
            .map_err(|e| writable(path, e))?;
    }
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
        ddl.push_str(SCHEMA);
        for t in TABLES {
            ddl.push_str(&format!(
                "CREATE TRIGGER {t}_append_only_update BEFORE UPDATE ON {t} \
                 BEGIN SELECT RAISE(ABORT, 'the run store is append-only'); END;\n\
                 CREATE TRIGGER {t}_append_only_delete BEFORE DELETE ON {t} \
                 BEGIN SELECT RAISE(ABORT, 'the run store is append-only'); END;\n"
            ));
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
    Ok(conn)
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
                Some(rusqlite::ErrorCode::DatabaseCorrupt) => StoreError::Sqlite {
                    path: path.to_path_buf(),
                    reason: format!("the file is corrupt ({e}); it is left untouched"),
                },
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
