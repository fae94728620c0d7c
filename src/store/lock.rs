//! One writer per run: an exclusive POSIX record lock (`fcntl`) on one
//! byte of the store's lock file `runs.db.locks/runs.lock`, at an offset
//! the run's id names (the first 62 bits of its SHA-256). The kernel
//! releases a process's record locks when it ends, however it ends, so a
//! killed run can be resumed at once; and a child never inherits them,
//! so a program a writer was starting (between fork and exec) does not
//! keep a dead writer's run taken. One file for every run: taking a run
//! creates no file (a file per run cost a bench a third of its time in
//! inode allocation).
//!
//! Record locks belong to the process, not to a descriptor, and closing
//! *any* descriptor of the file lets go of all of them. So this module
//! opens each lock file once per process and never closes it, and keeps
//! the set of runs this process holds itself (the kernel does not make a
//! process's own locks conflict with each other).

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use sha2::{Digest, Sha256};

use super::StoreError;

/// Held while a process writes a run.
#[derive(Debug)]
pub struct RunLock {
    key: Key,
}

/// A lock file (its device and inode) and a run's byte in it.
type Key = (u64, u64, i64);

/// The lock files this process has opened (by the path it named them
/// with; never closed) and the runs it holds.
struct Locks {
    files: HashMap<PathBuf, Opened>,
    /// Descriptors replaced by writable ones, kept open: closing one would
    /// let go of every lock this process holds in that file.
    kept: Vec<File>,
    held: HashSet<Key>,
}

struct Opened {
    file: File,
    writable: bool,
    inode: (u64, u64),
}

static LOCKS: Mutex<Option<Locks>> = Mutex::new(None);

fn locks() -> MutexGuard<'static, Option<Locks>> {
    LOCKS.lock().unwrap_or_else(|e| e.into_inner())
}

/// The directory beside the store at `db` that holds its lock file and
/// the runs' lists of programs.
fn locks_dir(db: &Path) -> PathBuf {
    let mut dir = db.as_os_str().to_os_string();
    dir.push(".locks");
    PathBuf::from(dir)
}

/// The lock file of the store at `db`.
pub fn lock_path(db: &Path) -> PathBuf {
    locks_dir(db).join("runs.lock")
}

/// Where the runs of the store at `db` hold the units of `:shared`
/// resources: `runs.db.resources/NAME.SLOT.lock`.
pub fn resources_dir(db: &Path) -> PathBuf {
    let mut dir = db.as_os_str().to_os_string();
    dir.push(".resources");
    PathBuf::from(dir)
}

/// The file beside the store's lock file that lists run `id`'s writer's
/// pid and the process groups of the programs it runs (see
/// `runtime::children`).
pub fn children_path(db: &Path, id: &str) -> PathBuf {
    locks_dir(db).join(format!("{id}.children"))
}

/// Run `id`'s byte in the lock file: 62 bits of its SHA-256, so offsets
/// stay far below the largest an `fcntl` lock takes and two runs share
/// one with a chance of 2^-62.
fn offset(id: &str) -> i64 {
    let digest = Sha256::digest(id.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) >> 2) as i64
}

/// An `fcntl` request on one byte at `start`.
fn one_byte(kind: libc::c_int, start: i64) -> libc::flock {
    // SAFETY: `flock` is plain data; all-zero is a valid value.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = start as libc::off_t;
    fl.l_len = 1;
    fl
}

/// The pid of another process that holds byte `start` of `file`, `Some(0)`
/// when the kernel does not say (another pid namespace), `None` when no
/// other process holds it.
fn holder(fd: RawFd, start: i64) -> std::io::Result<Option<libc::pid_t>> {
    let mut fl = one_byte(libc::F_WRLCK, start);
    // SAFETY: F_GETLK fills `fl`, which lives through the call.
    if unsafe { libc::fcntl(fd, libc::F_GETLK, &mut fl) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((fl.l_type != libc::F_UNLCK as libc::c_short).then_some(fl.l_pid.max(0)))
}

impl Locks {
    fn new() -> Locks {
        Locks {
            files: HashMap::new(),
            kept: Vec::new(),
            held: HashSet::new(),
        }
    }

    /// The lock file at `path` (its inode and descriptor), opened once:
    /// for writing when `write` (and created), else as it can be. `None`
    /// when it does not exist and need not.
    fn file(&mut self, path: &Path, write: bool) -> std::io::Result<Option<((u64, u64), RawFd)>> {
        match self.files.get(path) {
            Some(o) if o.writable || !write => return Ok(Some((o.inode, o.file.as_raw_fd()))),
            _ => {}
        }
        let Some(opened) = open(path, write)? else {
            return Ok(None);
        };
        let found = (opened.inode, opened.file.as_raw_fd());
        if let Some(old) = self.files.insert(path.to_path_buf(), opened) {
            self.kept.push(old.file);
        }
        Ok(Some(found))
    }
}

/// Opens the lock file at `path`: for writing, created with its directory,
/// when `create`; else for writing if it can, for reading if not, and
/// `None` when it does not exist.
fn open(path: &Path, create: bool) -> std::io::Result<Option<Opened>> {
    use std::io::ErrorKind::NotFound;
    if create {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
    }
    let writable = OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .truncate(false)
        .open(path);
    let (file, writable) = match writable {
        Ok(file) => (file, true),
        Err(e) if e.kind() == NotFound => return Ok(None),
        Err(e) if create => return Err(e),
        Err(_) => match File::open(path) {
            Ok(file) => (file, false),
            Err(e) if e.kind() == NotFound => return Ok(None),
            Err(e) => return Err(e),
        },
    };
    Ok(Some(Opened {
        inode: inode(&file)?,
        file,
        writable,
    }))
}

fn inode(file: &File) -> std::io::Result<(u64, u64)> {
    let meta = file.metadata()?;
    Ok((meta.dev(), meta.ino()))
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let mut guard = locks();
        let Some(locks) = guard.as_mut() else {
            return;
        };
        locks.held.remove(&self.key);
        let (dev, ino, start) = self.key;
        if let Some(opened) = locks.files.values().find(|o| o.inode == (dev, ino)) {
            let fl = one_byte(libc::F_UNLCK, start);
            // SAFETY: F_SETLK reads `fl`, which lives through the call.
            unsafe { libc::fcntl(opened.file.as_raw_fd(), libc::F_SETLK, &fl) };
        }
    }
}

impl RunLock {
    /// Takes the lock of run `id` in the store at `db`, or says who holds it.
    pub fn acquire(db: &Path, id: &str) -> Result<RunLock, StoreError> {
        let path = lock_path(db);
        let io = |what: &str, e: std::io::Error| StoreError::Io {
            path: path.clone(),
            reason: format!("{what}: {}", crate::check::io_reason(&e)),
        };
        let start = offset(id);
        let locked = |pid: libc::pid_t| StoreError::Locked {
            run: id.to_string(),
            holder: match pid {
                0 => "its lock is held".to_string(),
                pid => format!("pid {pid}"),
            },
        };
        let mut guard = locks();
        let locks = guard.get_or_insert_with(Locks::new);
        let cannot_open = "cannot open the store's lock file";
        let (inode, fd) = locks
            .file(&path, true)
            .map_err(|e| io(cannot_open, e))?
            .ok_or_else(|| io(cannot_open, std::io::ErrorKind::NotFound.into()))?;
        let key = (inode.0, inode.1, start);
        if locks.held.contains(&key) {
            return Err(locked(std::process::id() as libc::pid_t));
        }
        let fl = one_byte(libc::F_WRLCK, start);
        // SAFETY: F_SETLK reads `fl`, which lives through the call.
        if unsafe { libc::fcntl(fd, libc::F_SETLK, &fl) } != 0 {
            let e = std::io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::EACCES) => {
                    Err(locked(holder(fd, start).ok().flatten().unwrap_or(0)))
                }
                _ => Err(io("cannot lock the run in the store's lock file", e)),
            };
        }
        locks.held.insert(key);
        Ok(RunLock { key })
    }

    /// Whether some process (this one included) holds the lock of run
    /// `id` now.
    pub fn held(db: &Path, id: &str) -> bool {
        let start = offset(id);
        let mut guard = locks();
        let locks = guard.get_or_insert_with(Locks::new);
        let Ok(Some((inode, fd))) = locks.file(&lock_path(db), false) else {
            return false;
        };
        locks.held.contains(&(inode.0, inode.1, start)) || matches!(holder(fd, start), Ok(Some(_)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Another process's lock, from a real child process (`flock(1)`
    /// cannot take a record lock, so the child is Python's `fcntl.lockf`).
    fn held_elsewhere(db: &Path, id: &str) -> std::process::Child {
        let path = lock_path(db);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let script = format!(
            "import fcntl, os, sys\n\
             f = open({path:?}, 'a+')\n\
             fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, {start}, os.SEEK_SET)\n\
             print('held', flush=True)\n\
             sys.stdin.read()\n",
            path = path.display().to_string(),
            start = offset(id)
        );
        let mut child = std::process::Command::new("python3")
            .args(["-c", &script])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(line.trim(), "held");
        child
    }

    /// A live writer's lock is refused at once, naming it; when it ends,
    /// the run can be taken at once.
    #[test]
    fn another_writers_lock_is_refused_naming_it_and_free_when_it_ends() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("runs.db");
        let mut other = held_elsewhere(&db, "r");
        assert!(RunLock::held(&db, "r"));
        assert!(!RunLock::held(&db, "s"));
        match RunLock::acquire(&db, "r") {
            Err(StoreError::Locked { holder, .. }) => {
                assert_eq!(holder, format!("pid {}", other.id()))
            }
            other => panic!("{other:?}"),
        }
        // another run of the same store is free
        let _s = RunLock::acquire(&db, "s").expect("another run");
        other.kill().unwrap();
        other.wait().unwrap();
        assert!(!RunLock::held(&db, "r"));
        assert!(RunLock::acquire(&db, "r").is_ok());
    }

    /// In one process a run is taken once; letting it go frees it, and
    /// leaves the process's other runs held.
    #[test]
    fn a_run_is_taken_once_in_a_process_and_let_go_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("runs.db");
        assert!(!RunLock::held(&db, "a"), "no lock file yet");
        let a = RunLock::acquire(&db, "a").expect("a");
        let b = RunLock::acquire(&db, "b").expect("b");
        match RunLock::acquire(&db, "a") {
            Err(StoreError::Locked { holder, .. }) => {
                assert_eq!(holder, format!("pid {}", std::process::id()))
            }
            other => panic!("{other:?}"),
        }
        // the same file named another way
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(dir.path(), &link).unwrap();
        assert!(RunLock::acquire(&link.join("runs.db"), "a").is_err());
        drop(a);
        assert!(!RunLock::held(&db, "a"));
        assert!(RunLock::held(&db, "b"));
        // and seen from another process: b is still held
        let out = std::process::Command::new("python3")
            .args([
                "-c",
                &format!(
                    "import fcntl, os\nf = open({:?}, 'a+')\n\
                     for start in ({}, {}):\n    \
                     try:\n        fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, start, os.SEEK_SET); print('free')\n    \
                     except OSError:\n        print('held')\n",
                    lock_path(&db).display().to_string(),
                    offset("a"),
                    offset("b")
                ),
            ])
            .output()
            .expect("python3");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "free\nheld\n");
        drop(b);
    }

    /// A program this process starts does not hold its runs: record locks
    /// are not inherited, so a writer that lets a run go (or is killed)
    /// while a child it forked has not yet exec'd leaves the run free.
    #[test]
    fn a_forked_child_does_not_hold_the_runs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("runs.db");
        let lock = RunLock::acquire(&db, "r").expect("r");
        // SAFETY: the child only sleeps and exits (async-signal-safe).
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: as above.
            unsafe {
                libc::sleep(5);
                libc::_exit(0)
            }
        }
        assert!(pid > 0);
        drop(lock);
        let mut probe = held_elsewhere(&db, "r");
        probe.kill().unwrap();
        probe.wait().unwrap();
        // SAFETY: the child forked above, killed and reaped once.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
    }
}
