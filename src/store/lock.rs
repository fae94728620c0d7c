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
    _file: File,
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
        // SAFETY: flock on a descriptor this function owns.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = match holder.trim() {
                "" => "its lock is held".to_string(),
                pid => format!("pid {pid}"),
            };
            return Err(StoreError::Locked {
                run: id.to_string(),
                holder,
            });
        }
        let _ = file.set_len(0);
        let _ = file.rewind();
        let _ = writeln!(file, "{}", std::process::id());
        Ok(RunLock { _file: file })
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
