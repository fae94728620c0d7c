//! The write-ahead log beside a store, checked before SQLite may apply it.
//!
//! SQLite applies whatever valid WAL it finds beside a database: one left
//! by another database, or an older copy of this one's, overwrites pages
//! of the store with pages of something else. So before a store is opened
//! (for reading or writing) a WAL beside it that nobody has open is read
//! here:
//!
//! - its header and frames are checked as SQLite would (magic, version,
//!   page size, salts, the running checksums), which gives the frames a
//!   recovery would apply: those up to the last commit frame;
//! - the database size its last commit gives must be at least the
//!   database file's (a store only grows: a smaller one is an older log,
//!   which would cut off what was committed since), in pages of the
//!   database's size;
//! - when there are any, the database and those frames are opened in a
//!   scratch directory beside the store (a hard link to the database, a
//!   copy of the log; read-only, so the store's own files are not
//!   touched) and must make a store: our application id, and a clean
//!   `PRAGMA quick_check`. The database alone is checked the same way, so
//!   a corrupt database is told from a log that does not belong to it.
//!
//! A log that fails is renamed `runs.db-wal.foreign-<time>` (never
//! applied, never deleted) and the command stops with an error naming it.
//! A log some process has open (its shared memory's "dead man switch"
//! lock is held) is that process's: it is left alone.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use super::StoreError;

const WAL_HEADER: usize = 32;
const FRAME_HEADER: usize = 24;
/// The byte of `-shm` on which every open connection holds a shared lock
/// (SQLite's `UNIX_SHM_DMS`).
const SHM_DMS: i64 = 128;

/// `runs.db-wal`, `runs.db-shm`.
pub fn sibling(db: &Path, suffix: &str) -> PathBuf {
    let mut s = db.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// What a WAL file holds, read as SQLite's recovery reads it.
#[derive(Debug, PartialEq, Eq)]
pub enum Log {
    /// No log, or an empty one.
    Empty,
    /// A valid header and no committed frame: recovery applies nothing.
    NothingCommitted,
    /// `bytes` of the file (header and frames) up to the last commit,
    /// which leaves the database `pages` pages of `page_size` bytes.
    Committed {
        bytes: u64,
        frames: u64,
        pages: u64,
        page_size: u64,
    },
    /// Not a write-ahead log (too short, wrong magic, version or page
    /// size, or a header whose checksum does not match).
    Invalid(String),
}

/// Reads the log at `path`.
pub fn read_log(path: &Path) -> std::io::Result<Log> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Log::Empty),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(Log::Empty);
    }
    let mut header = [0u8; WAL_HEADER];
    if len < WAL_HEADER as u64 {
        return Ok(Log::Invalid(format!("{len} bytes, shorter than a header")));
    }
    file.read_exact(&mut header)?;
    let word = |b: &[u8], i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let magic = word(&header, 0);
    if magic & !1 != 0x377f_0682 {
        return Ok(Log::Invalid(format!("magic number {magic:#010x}")));
    }
    let big_endian = magic & 1 == 1;
    if word(&header, 4) != 3_007_000 {
        return Ok(Log::Invalid(format!("version {}", word(&header, 4))));
    }
    let page = word(&header, 8) as usize;
    if !(512..=65_536).contains(&page) || !page.is_power_of_two() {
        return Ok(Log::Invalid(format!("page size {page}")));
    }
    let (salt1, salt2) = (word(&header, 16), word(&header, 20));
    let mut sum = checksum(big_endian, (0, 0), &header[..24]);
    if sum != (word(&header, 24), word(&header, 28)) {
        return Ok(Log::Invalid(
            "its header's checksum does not match".to_string(),
        ));
    }
    let mut frame = vec![0u8; FRAME_HEADER + page];
    let (mut frames, mut committed, mut committed_frames) = (0u64, 0u64, 0u64);
    let mut pages = 0u64;
    let mut at = WAL_HEADER as u64;
    while at + frame.len() as u64 <= len {
        file.read_exact(&mut frame)?;
        let (number, size) = (word(&frame, 0), word(&frame, 4));
        if number == 0 || word(&frame, 8) != salt1 || word(&frame, 12) != salt2 {
            break;
        }
        sum = checksum(big_endian, sum, &frame[..8]);
        sum = checksum(big_endian, sum, &frame[FRAME_HEADER..]);
        if sum != (word(&frame, 16), word(&frame, 20)) {
            break;
        }
        frames += 1;
        at += frame.len() as u64;
        if size != 0 {
            committed = at;
            committed_frames = frames;
            pages = u64::from(size);
        }
    }
    Ok(if committed_frames == 0 {
        Log::NothingCommitted
    } else {
        Log::Committed {
            bytes: committed,
            frames: committed_frames,
            pages,
            page_size: page as u64,
        }
    })
}

/// SQLite's WAL checksum over `data` (a multiple of 8 bytes), going on
/// from `(s0, s1)`.
fn checksum(big_endian: bool, (mut s0, mut s1): (u32, u32), data: &[u8]) -> (u32, u32) {
    for pair in data.chunks_exact(8) {
        let get = |b: &[u8]| {
            let b = [b[0], b[1], b[2], b[3]];
            if big_endian {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        s0 = s0.wrapping_add(get(&pair[..4])).wrapping_add(s1);
        s1 = s1.wrapping_add(get(&pair[4..])).wrapping_add(s0);
    }
    (s0, s1)
}

/// Whether some connection (of any process, this one too) has the store
/// open: SQLite holds a shared lock on one byte of `-shm` while it does.
/// Read from `/proc/locks`, not by opening `-shm`: closing a descriptor of
/// a file drops every POSIX lock this process holds on it, SQLite's too.
pub fn in_use(db: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(sibling(db, "-shm")) else {
        return false;
    };
    let Ok(locks) = std::fs::read_to_string("/proc/locks") else {
        // no way to tell without opening it: take it for in use, so
        // that a live log is never moved
        return true;
    };
    // by inode only: the device may be shown otherwise (an overlay), and
    // another file taken for this one only makes the check wait its turn
    let inode = format!(":{}", meta.ino());
    locks.lines().filter(|l| !l.contains("->")).any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(at) = fields
            .iter()
            .position(|f| f.ends_with(&inode) && f.matches(':').count() == 2)
        else {
            return false;
        };
        let start = fields.get(at + 1).and_then(|f| f.parse::<i64>().ok());
        let end = fields.get(at + 2).map(|f| {
            if *f == "EOF" {
                Some(i64::MAX)
            } else {
                f.parse::<i64>().ok()
            }
        });
        matches!((start, end), (Some(s), Some(Some(e))) if s <= SHM_DMS && SHM_DMS <= e)
    })
}

/// A directory beside the store (or in the temporary directory when the
/// store's cannot be written) holding a link to the database and a copy
/// of its log, removed when dropped.
pub struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    /// The database and the first `log_bytes` of its log, seen from the
    /// scratch directory.
    fn new(db: &Path, log_bytes: u64) -> std::io::Result<Scratch> {
        let parent = db
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let beside = tempfile::Builder::new()
            .prefix(".guardflow-check-")
            .tempdir_in(parent);
        let (dir, linked) = match beside {
            Ok(dir) => {
                let linked = std::fs::hard_link(db, dir.path().join("db")).is_ok();
                (dir, linked)
            }
            Err(_) => (tempfile::tempdir()?, false),
        };
        if !linked {
            std::fs::copy(db, dir.path().join("db"))?;
        }
        if log_bytes > 0 {
            let mut log = File::open(sibling(db, "-wal"))?.take(log_bytes);
            let mut copy = File::create(dir.path().join("db-wal"))?;
            std::io::copy(&mut log, &mut copy)?;
        }
        Ok(Scratch { dir })
    }

    /// The database as seen from here.
    pub fn db(&self) -> PathBuf {
        self.dir.path().join("db")
    }

    /// Opens it read-only: the log is applied in this directory only.
    pub fn open(&self) -> rusqlite::Result<Connection> {
        Connection::open_with_flags(
            self.db(),
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
    }
}

/// Why a database (as opened) is not a sound store, if it is not.
fn unsound(conn: &Connection) -> Result<Option<String>, rusqlite::Error> {
    let app = match conn.query_row("PRAGMA application_id", [], |r| r.get::<_, i64>(0)) {
        Ok(a) => a,
        Err(e) => return corruption(e).map(Some),
    };
    let objects = conn
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        })
        .unwrap_or(-1);
    if app != super::schema::APPLICATION_ID && !(app == 0 && objects == 0) {
        return Ok(Some(format!(
            "it makes a database of another program (application id {app:#x})"
        )));
    }
    Ok(quick_check(conn))
}

/// An error that says the database is broken, as text; any other error
/// (a full disk, a file that cannot be opened, no memory) says nothing
/// of whose the log is, and is handed on: it must never move a log aside.
fn corruption(e: rusqlite::Error) -> Result<String, rusqlite::Error> {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase) => {
            Ok(e.to_string())
        }
        _ => Err(e),
    }
}

/// `PRAGMA quick_check`: `None` when it finds nothing.
pub fn quick_check(conn: &Connection) -> Option<String> {
    match conn.query_row("PRAGMA quick_check", [], |r| r.get::<_, String>(0)) {
        Ok(s) if s == "ok" => None,
        Ok(s) => Some(format!(
            "database disk image is malformed: {}",
            s.lines().find(|l| !l.starts_with("***")).unwrap_or(&s)
        )),
        Err(e) => Some(e.to_string()),
    }
}

/// What the check found.
pub enum Checked {
    /// No log to apply (none, empty, nothing committed, or in use by an
    /// open connection).
    NoLog { in_use: bool },
    /// A log that belongs to the store: `scratch` shows the store with it
    /// applied.
    Sound(Scratch),
}

/// Checks the log beside `db` (see the module's comment). A log that does
/// not belong is moved aside and reported; a database that is itself
/// corrupt is reported and left untouched.
pub fn check(db: &Path) -> Result<Checked, StoreError> {
    let wal = sibling(db, "-wal");
    if in_use(db) {
        return Ok(Checked::NoLog { in_use: true });
    }
    let io = |e: std::io::Error| StoreError::Io {
        path: wal.clone(),
        reason: format!("cannot read it: {}", crate::check::io_reason(&e)),
    };
    let bytes = match read_log(&wal).map_err(io)? {
        Log::Empty | Log::NothingCommitted => return Ok(Checked::NoLog { in_use: false }),
        Log::Invalid(why) => {
            return Err(move_aside(
                db,
                &format!("it is not a write-ahead log ({why})"),
            ))
        }
        Log::Committed {
            bytes,
            pages,
            page_size,
            ..
        } => {
            if let Some(why) = stale(db, pages, page_size).map_err(io)? {
                return Err(move_aside(db, &why));
            }
            bytes
        }
    };
    // SQLite deletes the log of an empty database; a store's first write
    // puts its header in the database itself, so such a log is not its own
    if std::fs::metadata(db).map(|m| m.len()).unwrap_or(0) == 0 {
        return Err(move_aside(
            db,
            "the database is empty, so the committed transactions in it are not its own",
        ));
    }
    let scratch = Scratch::new(db, bytes).map_err(io)?;
    let cannot = |e: rusqlite::Error| StoreError::Sqlite {
        path: db.to_path_buf(),
        reason: format!("cannot check the log beside it: {e}"),
    };
    let found = match scratch.open() {
        Ok(c) => unsound(&c).map_err(cannot)?,
        Err(e) => Some(corruption(e).map_err(cannot)?),
    };
    let Some(why) = found else {
        return Ok(Checked::Sound(scratch));
    };
    // the database alone: if it is broken too, the database is what is corrupt
    let alone = Scratch::new(db, 0).map_err(io)?;
    let alone_found = match alone.open() {
        Ok(c) => unsound(&c).map_err(cannot)?,
        Err(e) => Some(corruption(e).map_err(cannot)?),
    };
    if let Some(bad) = alone_found {
        return Err(StoreError::Sqlite {
            path: db.to_path_buf(),
            reason: super::corrupt_text(&bad),
        });
    }
    Err(move_aside(
        db,
        &format!("applied to this store {why}: it belongs to another database or an older copy of this one"),
    ))
}

/// Why a log whose last commit leaves the database `pages` pages of
/// `page_size` bytes cannot be the log of `db` as it is: the database's
/// pages are of another size, or it is already larger (a store only
/// grows, and a checkpoint never makes the file larger than the last
/// commit: such a log is older than the database, and applying it would
/// cut off what was committed since).
fn stale(db: &Path, pages: u64, page_size: u64) -> std::io::Result<Option<String>> {
    let mut header = [0u8; 100];
    let len = std::fs::metadata(db)?.len();
    if len < header.len() as u64 {
        return Ok(None);
    }
    File::open(db)?.read_exact(&mut header)?;
    if &header[..16] != b"SQLite format 3\0" {
        return Ok(None);
    }
    let own = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65_536,
        n => u64::from(n),
    };
    if own != page_size {
        return Ok(Some(format!(
            "its pages are of {page_size} bytes, the database's of {own}"
        )));
    }
    let have = len.div_ceil(own);
    Ok((have > pages).then(|| {
        format!(
            "it is older than the database: it would cut the database from {have} pages to {pages}"
        )
    }))
}

/// Renames the log `runs.db-wal.foreign-<time>` and says so; if it cannot
/// be renamed, says that nothing was touched. A log some process opened
/// meanwhile is that process's: it is left where it is.
fn move_aside(db: &Path, why: &str) -> StoreError {
    let wal = sibling(db, "-wal");
    if in_use(db) {
        return StoreError::ForeignLog {
            path: db.to_path_buf(),
            moved: None,
            reason: format!("{why}; another process opened the store meanwhile"),
        };
    }
    let secs = super::now_ms().div_euclid(1000);
    let mut target = sibling(db, &format!("-wal.foreign-{}", super::utc_stamp(secs)));
    let mut n = 1;
    while target.exists() {
        n += 1;
        target = sibling(db, &format!("-wal.foreign-{}-{n}", super::utc_stamp(secs)));
    }
    match std::fs::rename(&wal, &target) {
        Ok(()) => StoreError::ForeignLog {
            path: db.to_path_buf(),
            moved: Some(target),
            reason: why.to_string(),
        },
        Err(e) => StoreError::ForeignLog {
            path: db.to_path_buf(),
            moved: None,
            reason: format!(
                "{why}; it could not be moved aside ({})",
                crate::check::io_reason(&e)
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_follow_sqlite() {
        // two words, little-endian: s0 = 1 + 0, s1 = 2 + 1
        let data = [1u8, 0, 0, 0, 2, 0, 0, 0];
        assert_eq!(checksum(false, (0, 0), &data), (1, 3));
        assert_eq!(checksum(true, (0, 0), &data), (0x0100_0000, 0x0300_0000));
    }

    #[test]
    fn a_real_log_is_read_up_to_its_last_commit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("a.db");
        let conn = Connection::open(&db).expect("open");
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;
             CREATE TABLE t (x); INSERT INTO t VALUES (1); INSERT INTO t VALUES (2);",
        )
        .expect("write");
        let wal = sibling(&db, "-wal");
        let Log::Committed { bytes, frames, .. } = read_log(&wal).expect("read") else {
            panic!("no commit found");
        };
        assert!(frames >= 3, "{frames}");
        assert_eq!(bytes, std::fs::metadata(&wal).expect("meta").len());
        // a torn last frame: the commit before it is the last
        let mut data = std::fs::read(&wal).expect("read");
        let last = data.len() - 10;
        data[last] ^= 0xff;
        let torn = dir.path().join("torn-wal");
        std::fs::write(&torn, &data).expect("write");
        let Log::Committed { bytes: b2, .. } = read_log(&torn).expect("read") else {
            panic!("no commit found");
        };
        assert!(b2 < bytes);
        std::fs::write(&torn, b"not a log at all, not at all, no").expect("write");
        assert!(matches!(read_log(&torn), Ok(Log::Invalid(_))));
        assert!(in_use(&db), "the connection is open");
        drop(conn);
        assert!(!in_use(&db));
    }
}
