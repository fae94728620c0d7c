//! `:shared` resources: one pool for every run that records in the same
//! store, whatever process runs it. A pool of `N` units is `N` slot files,
//! `DIR/NAME.1.lock` … `DIR/NAME.N.lock`; a unit is held by an exclusive
//! `flock` on one of them, which the kernel releases when the process
//! ends, however it ends. A holder writes `PID RUN` into each slot it
//! holds, so `guardflow runs` can say who holds what.
//!
//! Units are taken all at once or not at all (never holding some while
//! waiting for the rest), polling every [`POLL`] while they are busy:
//! waiting is cancelled by dropping it, like everything in a run.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How often a waiting run tries again.
pub const POLL: Duration = Duration::from_millis(20);

/// Where the slots of the run's `:shared` resources are, and who holds
/// them (the run's id).
#[derive(Debug, Clone)]
pub struct SharedPlace {
    pub dir: PathBuf,
    pub holder: String,
}

/// Units of a `:shared` resource, held until dropped.
#[derive(Debug)]
pub struct Units {
    _files: Vec<File>,
}

/// The slot file `slot` (from 1) of resource `name`.
pub fn slot_path(dir: &Path, name: &str, slot: u64) -> PathBuf {
    dir.join(format!("{name}.{slot}.lock"))
}

fn try_lock(path: &Path) -> std::io::Result<Option<File>> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    // SAFETY: flock on a descriptor this function owns.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    Ok((rc == 0).then_some(file))
}

/// Takes `amount` units of the pool `name` of `size` units, waiting while
/// other holders have them. An error means the slot files cannot be made
/// (the run then fails: holding nothing would break the promise).
pub async fn acquire(
    place: &SharedPlace,
    name: &str,
    size: u64,
    amount: u64,
) -> Result<Units, String> {
    std::fs::create_dir_all(&place.dir).map_err(|e| {
        format!(
            "the shared resource `{name}`: cannot create `{}`: {}",
            place.dir.display(),
            crate::check::io_reason(&e)
        )
    })?;
    loop {
        let mut files = Vec::new();
        for slot in 1..=size {
            if files.len() as u64 == amount {
                break;
            }
            let path = slot_path(&place.dir, name, slot);
            match try_lock(&path) {
                Ok(Some(f)) => files.push(f),
                Ok(None) => {}
                Err(e) => {
                    return Err(format!(
                        "the shared resource `{name}`: cannot open `{}`: {}",
                        path.display(),
                        crate::check::io_reason(&e)
                    ))
                }
            }
        }
        if files.len() as u64 >= amount {
            for f in &mut files {
                let _ = f.set_len(0);
                let _ = f.rewind();
                let _ = writeln!(f, "{} {}", std::process::id(), place.holder);
            }
            return Ok(Units { _files: files });
        }
        // none kept while waiting: two waiters never hold part each
        drop(files);
        tokio::time::sleep(POLL).await;
    }
}

/// One unit held now: the resource, the slot, the holder's pid and run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Held {
    pub resource: String,
    pub slot: u64,
    pub pid: u32,
    pub run: String,
}

/// The units held now in `dir`, by resource and slot.
pub fn held(dir: &Path) -> Vec<Held> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".lock") else {
            continue;
        };
        let Some((resource, slot)) = stem.rsplit_once('.') else {
            continue;
        };
        let Ok(slot) = slot.parse::<u64>() else {
            continue;
        };
        let Ok(mut file) = File::open(entry.path()) else {
            continue;
        };
        // SAFETY: flock on a descriptor this function owns.
        let free = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) } == 0;
        if free {
            continue;
        }
        let mut text = String::new();
        let _ = file.read_to_string(&mut text);
        let mut words = text.split_whitespace();
        let pid = words.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        let run = words.next().unwrap_or("").to_string();
        out.push(Held {
            resource: resource.to_string(),
            slot,
            pid,
            run,
        });
    }
    out.sort_by(|a, b| (&a.resource, a.slot).cmp(&(&b.resource, b.slot)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_taken_all_or_nothing_and_released_when_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let place = SharedPlace {
            dir: dir.path().join("res"),
            holder: "run-a".into(),
        };
        let rt = crate::engine::runtime().expect("runtime");
        let two = rt
            .block_on(acquire(&place, "gpu", 3, 2))
            .expect("two of three");
        let held_now = held(&place.dir);
        assert_eq!(held_now.len(), 2, "{held_now:?}");
        assert!(held_now
            .iter()
            .all(|h| h.run == "run-a" && h.pid == std::process::id() && h.resource == "gpu"));
        // two more do not fit: the waiter holds nothing meanwhile
        let waiting = rt
            .block_on(async { tokio::time::timeout(POLL * 5, acquire(&place, "gpu", 3, 2)).await });
        assert!(waiting.is_err(), "two more units were taken");
        assert_eq!(held(&place.dir).len(), 2);
        drop(two);
        assert!(held(&place.dir).is_empty());
        let again = rt
            .block_on(acquire(&place, "gpu", 3, 2))
            .expect("free again");
        assert_eq!(held(&place.dir).len(), 2);
        drop(again);
    }
}
