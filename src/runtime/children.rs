//! The process groups of the programs this process runs (generators,
//! guards, effects), in one process-wide list: a signal handler kills
//! them all, and a recorded run writes them to a file beside its lock, so
//! that a resume after a hard stop (SIGKILL, power loss of a container)
//! can refuse to start while a program from before the stop still runs.
//!
//! `stdlib::process` registers a group when it spawns it and unregisters
//! it when the group is reaped or killed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

struct State {
    groups: Vec<libc::pid_t>,
    /// Groups killed or ended whose processes may not all be gone yet
    /// (a SIGKILL lands asynchronously): still listed, until they are.
    dying: Vec<libc::pid_t>,
    /// Where the list is written as it changes, if anywhere.
    file: Option<PathBuf>,
}

static STATE: Mutex<State> = Mutex::new(State {
    groups: Vec::new(),
    dying: Vec::new(),
    file: None,
});

fn state() -> std::sync::MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(|e| e.into_inner())
}

/// The environment variable every program of a recorded run gets, naming
/// the run (the stem of its list's file: the run's id): a resume finds a program from before the
/// stop by it even when guardflow was killed between starting the program
/// and listing its group.
pub const MARK: &str = "GUARDFLOW_RUN";

/// The value of [`MARK`] for the programs started now, if the run is
/// recorded.
pub fn mark() -> Option<String> {
    state().file.as_deref().and_then(run_of)
}

/// The run a list of programs belongs to: its file's stem.
fn run_of(file: &Path) -> Option<String> {
    file.file_stem().map(|s| s.to_string_lossy().into_owned())
}

/// A program's process group has started.
pub fn register(pgid: libc::pid_t) {
    if pgid <= 0 {
        return;
    }
    let mut s = state();
    s.dying.retain(|&g| g != pgid && group_alive(g));
    s.groups.push(pgid);
    write(&s);
}

/// A program's process group has ended or was killed.
pub fn unregister(pgid: libc::pid_t) {
    let mut s = state();
    if let Some(i) = s.groups.iter().position(|g| *g == pgid) {
        s.groups.swap_remove(i);
        s.dying.retain(|&g| group_alive(g));
        if group_alive(pgid) {
            s.dying.push(pgid);
        }
        write(&s);
    }
}

/// The live process groups, in no particular order.
pub fn snapshot() -> Vec<libc::pid_t> {
    state().groups.clone()
}

/// Kills every registered process group (SIGKILL), and what is left of
/// those that ended.
pub fn kill_all() {
    let all: Vec<libc::pid_t> = {
        let s = state();
        s.groups.iter().chain(&s.dying).copied().collect()
    };
    for pgid in all {
        // SAFETY: killpg has no memory-safety preconditions; a group that
        // is already gone yields ESRCH, which is ignored.
        unsafe {
            libc::killpg(pgid, libc::SIGKILL);
        }
    }
}

/// Waits, at most `limit`, until no process of any listed group is left
/// (reaping this process's own children among them); true when none is.
/// A process exits a moment after its SIGKILL: a resume started right
/// after a signal must not find the effect it stopped still running.
pub fn wait_gone(limit: std::time::Duration) -> bool {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let left: Vec<libc::pid_t> = {
            let s = state();
            s.groups.iter().chain(&s.dying).copied().collect()
        };
        for &g in &left {
            let mut status = 0;
            // SAFETY: reaps our own child of that pid if it is a zombie;
            // anything else is ECHILD, ignored.
            unsafe { libc::waitpid(g, &mut status, libc::WNOHANG) };
        }
        let alive: Vec<libc::pid_t> = left.into_iter().filter(|&g| group_alive(g)).collect();
        if alive.is_empty() {
            let mut s = state();
            s.dying.clear();
            write(&s);
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// From now on, keeps `file` up to date with this process's pid and the
/// live process groups (`None`: stop, and remove the file).
pub fn record_to(file: Option<PathBuf>) {
    let mut s = state();
    if file.is_none() {
        if let Some(old) = &s.file {
            let _ = std::fs::remove_file(old);
        }
    }
    s.file = file;
    write(&s);
}

/// Writes the list: `guardflow PID`, then `group PGID` per live group;
/// through a temporary file and a rename, so a stop mid-write leaves the
/// previous list.
fn write(s: &State) {
    let Some(file) = &s.file else { return };
    let mut text = format!("guardflow {}\n", std::process::id());
    for g in s.groups.iter().chain(&s.dying) {
        text.push_str(&format!("group {g}\n"));
    }
    let tmp = file.with_extension("children.tmp");
    let written = std::fs::File::create(&tmp).and_then(|mut f| f.write_all(text.as_bytes()));
    if written.is_ok() {
        let _ = std::fs::rename(&tmp, file);
    }
}

/// A process group recorded in `file` that still has a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Survivor {
    pub pgid: libc::pid_t,
    /// The command line of its leader, when it is still there.
    pub command: Option<String>,
}

/// The process groups `file` lists that still have a process (none when
/// there is no file). Only for a file whose writer has ended.
pub fn survivors(file: &Path) -> Vec<Survivor> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let mut groups: Vec<libc::pid_t> = text
        .lines()
        .filter_map(|l| l.strip_prefix("group "))
        .filter_map(|g| g.trim().parse::<libc::pid_t>().ok())
        .collect();
    if let Some(run) = run_of(file) {
        groups.extend(marked(&run));
    }
    groups.sort_unstable();
    groups.dedup();
    groups
        .into_iter()
        .filter(|&g| g > 1 && group_alive(g))
        .map(|pgid| Survivor {
            pgid,
            command: cmdline(pgid).or_else(|| member(pgid).and_then(cmdline)),
        })
        .collect()
}

/// The command line of process `pid`, when it still has one.
fn cmdline(pid: libc::pid_t) -> Option<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .ok()
        .map(|b| {
            String::from_utf8_lossy(&b)
                .split('\0')
                .filter(|p| !p.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|c| !c.is_empty())
}

/// The oldest live process of group `pgid` (its leader may be gone:
/// killed with guardflow by the parent-death signal while its children
/// live on). The oldest is the one that started the others, so the
/// command named is the script, not the `sleep` it is waiting on.
fn member(pgid: libc::pid_t) -> Option<libc::pid_t> {
    let entries = std::fs::read_dir("/proc").ok()?;
    entries
        .flatten()
        .filter_map(|e| {
            let pid: libc::pid_t = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            // `pid (comm) state ppid pgrp … starttime …`: comm may hold spaces
            let fields: Vec<&str> = stat.rsplit_once(") ")?.1.split_whitespace().collect();
            let state = *fields.first()?;
            let pgrp: libc::pid_t = fields.get(2)?.parse().ok()?;
            let started: u64 = fields.get(19)?.parse().ok()?;
            (pgrp == pgid && state != "Z").then_some((started, pid))
        })
        .min()
        .map(|(_, pid)| pid)
}

/// The process groups of the processes (of this user) whose environment
/// has `MARK=value`, but this process's.
fn marked(value: &str) -> Vec<libc::pid_t> {
    let want = format!("{MARK}={value}");
    let me = std::process::id().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name == me || !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(env) = std::fs::read(e.path().join("environ")) else {
            continue;
        };
        if !env.split(|b| *b == 0).any(|v| v == want.as_bytes()) {
            continue;
        }
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        // after the command's `)`: state, ppid, pgrp
        let mut fields = stat.rsplit(") ").next().unwrap_or("").split_whitespace();
        let state = fields.next().unwrap_or("Z");
        if let Some(pgrp) = fields.nth(1).and_then(|p| p.parse::<libc::pid_t>().ok()) {
            if state != "Z" && state != "X" {
                out.push(pgrp);
            }
        }
    }
    out
}

/// Whether a process of group `pgid` exists (one we may not signal
/// exists too).
fn group_alive(pgid: libc::pid_t) -> bool {
    // SAFETY: signal 0 only checks; no memory is involved.
    let rc = unsafe { libc::kill(-pgid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_follows_the_groups_and_survivors_are_found() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("run.children");
        // a real group that lives on: a program leading its own group
        // (spawned directly: a shell's own exec would race the reading of
        // its command line)
        let mut child = std::process::Command::new("sleep");
        std::os::unix::process::CommandExt::process_group(&mut child, 0);
        let mut child = child.arg("30").spawn().expect("spawn");
        let pgid = child.id() as libc::pid_t;
        record_to(Some(file.clone()));
        register(pgid);
        let text = std::fs::read_to_string(&file).expect("written");
        assert!(text.contains(&format!("group {pgid}")), "{text}");
        assert!(text.starts_with(&format!("guardflow {}", std::process::id())));
        let found = survivors(&file);
        assert!(found.iter().any(|s| s.pgid == pgid), "{found:?}");
        // its command line, once the kernel shows it (a bounded wait)
        let mut found = found.into_iter().find(|s| s.pgid == pgid).expect("found");
        for _ in 0..500 {
            if found.command.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
            found = survivors(&file)
                .into_iter()
                .find(|s| s.pgid == pgid)
                .expect("found");
        }
        let state = std::fs::read_to_string(format!("/proc/{pgid}/stat")).unwrap_or_default();
        assert!(
            found.command.as_deref().unwrap_or("").contains("sleep 30"),
            "{found:?} {state}"
        );
        assert!(snapshot().contains(&pgid));
        // not kill_all: other tests of this process have groups too
        // SAFETY: killing the group this test started
        unsafe { libc::killpg(pgid, libc::SIGKILL) };
        let _ = child.wait();
        unregister(pgid);
        assert!(!snapshot().contains(&pgid));
        assert!(survivors(&file).iter().all(|s| s.pgid != pgid));
        let text = std::fs::read_to_string(&file).expect("written");
        assert!(!text.contains(&format!("group {pgid}")), "{text}");
        record_to(None);
        assert!(!file.exists());
    }
}

#[cfg(test)]
mod marked_tests {
    use super::*;

    /// A program of the run that was never listed (guardflow killed
    /// between starting it and writing the list) is found by its
    /// environment.
    #[test]
    fn an_unlisted_program_of_the_run_is_found_by_its_mark() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("20990101-000000-abcd.children");
        let mut child = std::process::Command::new("sleep");
        std::os::unix::process::CommandExt::process_group(&mut child, 0);
        let mut child = child
            .arg("30")
            .env(MARK, "20990101-000000-abcd")
            .spawn()
            .expect("spawn");
        let pgid = child.id() as libc::pid_t;
        // its environment is readable once it has started (bounded wait)
        let mut found = Vec::new();
        for _ in 0..500 {
            found = survivors(&file);
            if !found.is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(found.iter().any(|s| s.pgid == pgid), "{found:?}");
        // SAFETY: killing the group this test started
        unsafe { libc::killpg(pgid, libc::SIGKILL) };
        let _ = child.wait();
        assert!(survivors(&file).iter().all(|s| s.pgid != pgid));
        // another run's program is not this run's
        assert!(survivors(&dir.path().join("other.children")).is_empty());
    }
}
