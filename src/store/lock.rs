//! One writer per run: an exclusive `flock` on a lock file per run beside
//! the store, holding the writer's pid. The kernel releases it when the
//! process ends, however it ends, so a killed run can be resumed at once.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use super::StoreError;

/// Held while a process writes a run.
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
    _file: File,
}

/// The run locks this process holds (their files). A lock held under
/// this process's pid that is not among them is held by a program this
/// process is starting: the child, between fork and exec, has a copy of
/// the descriptor, which exec closes a moment later.
static HELD_HERE: std::sync::Mutex<std::collections::BTreeSet<PathBuf>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

fn held_here() -> std::sync::MutexGuard<'static, std::collections::BTreeSet<PathBuf>> {
    HELD_HERE.lock().unwrap_or_else(|e| e.into_inner())
}

impl Drop for RunLock {
    fn drop(&mut self) {
        held_here().remove(&self.path);
    }
}

/// The lock file of run `id` in the store at `db`.
pub fn lock_path(db: &Path, id: &str) -> PathBuf {
    let mut dir = db.as_os_str().to_os_string();
    dir.push(".locks");
    PathBuf::from(dir).join(format!("{id}.lock"))
}

/// Where the runs of the store at `db` hold the units of `:shared`
/// resources: `runs.db.resources/NAME.SLOT.lock`.
pub fn resources_dir(db: &Path) -> PathBuf {
    let mut dir = db.as_os_str().to_os_string();
    dir.push(".resources");
    PathBuf::from(dir)
}

/// The file beside run `id`'s lock that lists the writer's pid and the
/// process groups of the programs it runs (see `runtime::children`).
pub fn children_path(db: &Path, id: &str) -> PathBuf {
    lock_path(db, id).with_extension("children")
}

/// How long a lock whose writer is dead may stay held by a program that
/// writer was starting.
const RELEASE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Whether process `pid` exists (a zombie counts: its parent has not
/// reaped it, so it may still be a writer's).
fn alive(pid: libc::pid_t) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    pid > 0
        && (unsafe { libc::kill(pid, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM))
}

impl RunLock {
    /// Takes the lock of run `id`, or says who holds it.
    pub fn acquire(db: &Path, id: &str) -> Result<RunLock, StoreError> {
        let path = lock_path(db, id);
        let io = |what: &str, e: std::io::Error| StoreError::Io {
            path: path.clone(),
            reason: format!("{what}: {}", crate::check::io_reason(&e)),
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| io("cannot create its directory", e))?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io("cannot open the run's lock file", e))?;
        let waited = std::time::Instant::now();
        loop {
            // SAFETY: flock on a descriptor this function owns.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if rc == 0 {
                break;
            }
            let mut holder = String::new();
            let _ = file.rewind();
            let _ = file.read_to_string(&mut holder);
            let pid = holder.trim().parse::<libc::pid_t>().ok();
            // A writer killed while it was starting a program: the child,
            // between fork and exec, still holds the lock's descriptor (it
            // is closed at exec, or when the parent-death signal ends the
            // child). The writer is gone, so the lock is about to be free.
            // The same when this process let the lock go while a program
            // it was starting still held the copy.
            let ours =
                pid == Some(std::process::id() as libc::pid_t) && !held_here().contains(&path);
            if (ours || pid.is_some_and(|p| !alive(p))) && waited.elapsed() < RELEASE_WAIT {
                std::thread::sleep(std::time::Duration::from_millis(10));
                continue;
            }
            let holder = match pid {
                None => "its lock is held".to_string(),
                Some(pid) => format!("pid {pid}"),
            };
            return Err(StoreError::Locked {
                run: id.to_string(),
                holder,
            });
        }
        let _ = file.set_len(0);
        let _ = file.rewind();
        let _ = writeln!(file, "{}", std::process::id());
        held_here().insert(path.clone());
        Ok(RunLock { path, _file: file })
    }

    /// Whether some process holds the lock of run `id` now.
    pub fn held(db: &Path, id: &str) -> bool {
        let Ok(file) = File::open(lock_path(db, id)) else {
            return false;
        };
        // SAFETY: flock on a descriptor this function owns.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) };
        rc != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The race of issue 17: a writer killed while a program it started
    /// still held the lock's descriptor (between fork and exec). The
    /// resume waits for it instead of calling the run taken.
    #[test]
    fn a_lock_held_after_its_writer_died_is_waited_for() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("runs.db");
        let path = lock_path(&db, "r");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        // a dead writer's pid in the file
        let mut dead = std::process::Command::new("true").spawn().expect("true");
        let pid = dead.id();
        dead.wait().expect("reaped");
        std::fs::write(&path, format!("{pid}\n")).unwrap();
        // its descriptor, still held elsewhere for a moment
        let held = File::open(&path).unwrap();
        // SAFETY: flock on a descriptor this test owns.
        assert_eq!(unsafe { libc::flock(held.as_raw_fd(), libc::LOCK_EX) }, 0);
        let release = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(200));
            drop(held);
        });
        let lock = RunLock::acquire(&db, "r");
        release.join().unwrap();
        assert!(lock.is_ok(), "{lock:?}");
    }

    /// A live writer's lock is refused at once, naming it.
    #[test]
    fn a_live_writers_lock_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("runs.db");
        let _mine = RunLock::acquire(&db, "r").expect("first");
        let second = File::open(lock_path(&db, "r")).unwrap();
        // SAFETY: flock on a descriptor this test owns.
        let rc = unsafe { libc::flock(second.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        assert_ne!(rc, 0, "held");
        match RunLock::acquire(&db, "r") {
            Err(StoreError::Locked { holder, .. }) => {
                assert_eq!(holder, format!("pid {}", std::process::id()))
            }
            other => panic!("{other:?}"),
        }
    }

    /// The race of the closing note: this process let a run's lock go
    /// while a program it was starting (between fork and exec) still held
    /// a copy of the descriptor. Taking the lock again in this process
    /// waits for the copy to close instead of calling the run taken.
    #[test]
    fn a_lock_this_process_let_go_is_waited_for_while_a_child_holds_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("runs.db");
        let lock = RunLock::acquire(&db, "r").expect("first");
        // the child's copy: the same open file description
        // SAFETY: dup of a descriptor the lock owns; closed below.
        let copy = unsafe { libc::dup(lock._file.as_raw_fd()) };
        assert!(copy >= 0);
        drop(lock);
        let release = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(200));
            // SAFETY: the copy made above, closed once.
            unsafe { libc::close(copy) };
        });
        let again = RunLock::acquire(&db, "r");
        release.join().unwrap();
        assert!(again.is_ok(), "{again:?}");
    }
}
