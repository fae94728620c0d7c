//! The sandbox every program guardflow runs for a guard, a generator or
//! an effect goes through: the one seam between text a model wrote and
//! the machine.
//!
//! A [`Policy`] says what the program may do: the directories it may
//! write (its own temporary directory; for effects also the workspace),
//! the paths it may read (system directories, the interpreter's prefix,
//! `PATH`'s directories, what it may write; not the home directory nor
//! the rest of the repository), whether it may use the network, its
//! environment (an allow-list, never an inherited secret) and its limits
//! (CPU time, address space, file size, number of processes).
//!
//! [`Prepared`] is a policy made ready in guardflow's own process (the
//! Landlock ruleset built, the pids cgroup made, every string formatted)
//! and [`Prepared::apply`] enforces it in the child between `fork` and
//! `exec`, with async-signal-safe system calls only: the parent-death
//! signal, the cgroup, the rlimits, a fresh network namespace, the
//! capability bounding set emptied, `no_new_privs` and Landlock.
//!
//! What the kernel cannot do is said once per process on stderr, and the
//! strongest mechanism that works is used; nothing runs unconfined
//! without that line.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use landlock::{
    Access, AccessFs, AccessNet, PathBeneath, PathFd, Ruleset, RulesetAttr, RulesetCreatedAttr,
    Scope, ABI,
};

use crate::runtime::Value;

/// The output a runner keeps of each stream by default (`max_output`).
pub const DEFAULT_MAX_OUTPUT: usize = 1 << 20;

/// The variables every sandboxed program sees (when set in guardflow's
/// environment); `HOME` and `TMPDIR` are the program's own temporary
/// directory. Everything else is cleared unless named by `env: [...]`.
pub const ENV_ALLOW: [&str; 7] = ["PATH", "LANG", "LC_ALL", "LC_CTYPE", "TERM", "TZ", "USER"];

/// The processes (and threads) a sandboxed program may have at once.
pub const MAX_PROCESSES: u64 = 256;
/// The address space of each sandboxed process.
pub const MAX_ADDRESS_SPACE: u64 = 8 << 30;
/// The largest file a sandboxed program may write.
pub const MAX_FILE_SIZE: u64 = 1 << 30;

/// The Landlock ABI guardflow's rules are written for; a newer kernel
/// is used at this level, an older one at its own (best effort).
const LANDLOCK_ABI: ABI = ABI::V7;

/// Entries of `/etc` a sandboxed program never reads (password hashes,
/// host keys, sudo rules, private TLS keys).
const ETC_DENY: [&str; 9] = [
    "shadow",
    "shadow-",
    "gshadow",
    "gshadow-",
    "ssh",
    "sudoers",
    "sudoers.d",
    "ssl",
    "security",
];

/// The per-guard, per-generator and per-effect opt-ins, as declared in
/// `stdlib/*.guardflow`: `network`, `env`, `read`, `write`, `max_output`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confine {
    /// Keep the network (no fresh network namespace, no Landlock TCP rule).
    pub network: bool,
    /// Names of variables passed through from guardflow's environment.
    pub env: Vec<String>,
    /// Extra readable paths (absolute, or relative to the workflow).
    pub read: Vec<PathBuf>,
    /// Extra writable paths.
    pub write: Vec<PathBuf>,
    /// Bytes kept of each output stream; more is read and dropped, and
    /// the cut is stated.
    pub max_output: usize,
}

impl Default for Confine {
    fn default() -> Confine {
        Confine {
            network: false,
            env: Vec::new(),
            read: Vec::new(),
            write: Vec::new(),
            max_output: DEFAULT_MAX_OUTPUT,
        }
    }
}

impl Confine {
    /// Reads `network, env, read, write, max_output` from `args[start..]`
    /// (the order every runner declares them in); relative paths are
    /// taken from `workdir`, `~/…` from `$HOME`.
    pub fn from_args(args: &[Value], start: usize, workdir: &Path) -> Confine {
        let list = |i: usize| -> Vec<String> {
            args.get(start + i)
                .and_then(Value::as_array)
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        let path = |p: String| -> PathBuf {
            match p.strip_prefix("~/") {
                Some(rest) => std::env::var_os("HOME")
                    .map_or_else(|| workdir.join(&p), |h| PathBuf::from(h).join(rest)),
                None => workdir.join(p),
            }
        };
        Confine {
            network: args.get(start).and_then(Value::as_bool).unwrap_or(false),
            env: list(1),
            read: list(2).into_iter().map(path).collect(),
            write: list(3).into_iter().map(path).collect(),
            max_output: args
                .get(start + 4)
                .and_then(Value::as_u64)
                .map_or(DEFAULT_MAX_OUTPUT, |n| {
                    usize::try_from(n).unwrap_or(usize::MAX)
                }),
        }
    }
}

/// What one program may do.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Readable (and executable) paths.
    pub read: Vec<PathBuf>,
    /// Writable paths (readable too).
    pub write: Vec<PathBuf>,
    /// Paths beneath a writable directory that stay read-only: the
    /// workflow's sources, its run store and `.git` (see
    /// [`protected_beneath`]); bind-mounted read-only in the program's own
    /// mount namespace.
    pub protect: Vec<PathBuf>,
    pub network: bool,
    /// The program's whole environment.
    pub env: Vec<(String, String)>,
    /// CPU seconds per process.
    pub cpu_seconds: u64,
    pub address_space: u64,
    pub file_size: u64,
    pub processes: u64,
}

impl Policy {
    /// The policy of a program whose own directory is `temp` (writable,
    /// its `HOME` and `TMPDIR`) with the opt-ins of `confine`, that may
    /// run for `timeout`.
    pub fn new(temp: &Path, confine: &Confine, timeout: Duration) -> Policy {
        let mut read = system_read();
        read.extend(confine.read.iter().cloned());
        let mut write = vec![temp.to_path_buf()];
        write.extend(confine.write.iter().cloned());
        // writing these harms nothing, and programs expect to
        write.extend(["/dev/null", "/dev/zero", "/dev/full"].map(PathBuf::from));
        let temp_s = temp.to_string_lossy().into_owned();
        let mut env: Vec<(String, String)> = Vec::new();
        for name in ENV_ALLOW {
            if let Some(v) = std::env::var_os(name) {
                env.push((name.to_string(), v.to_string_lossy().into_owned()));
            }
        }
        if let Some(python) = &python().bin {
            // `python3` is the interpreter itself, not a shim that needs
            // its manager's files under the home directory
            let path = env.iter_mut().find(|(k, _)| k == "PATH");
            let bin = python.to_string_lossy().into_owned();
            match path {
                Some((_, p)) => *p = format!("{bin}:{p}"),
                None => env.push(("PATH".into(), format!("{bin}:/usr/bin:/bin"))),
            }
        }
        env.push(("HOME".into(), temp_s.clone()));
        env.push(("TMPDIR".into(), temp_s));
        for name in &confine.env {
            if let Some(v) = std::env::var_os(name) {
                env.retain(|(k, _)| k != name);
                env.push((name.clone(), v.to_string_lossy().into_owned()));
            }
        }
        let protect = protected_beneath(&confine.write);
        Policy {
            read,
            write,
            protect,
            network: confine.network,
            env,
            cpu_seconds: timeout.as_secs().saturating_add(2),
            address_space: MAX_ADDRESS_SPACE,
            file_size: MAX_FILE_SIZE,
            processes: MAX_PROCESSES,
        }
    }

    /// Sets (or replaces) variable `name`.
    pub fn set_env(&mut self, name: &str, value: impl Into<String>) {
        self.env.retain(|(k, _)| k != name);
        self.env.push((name.to_string(), value.into()));
    }
}

/// How deep below a writable directory sources and stores are looked for.
const PROTECT_DEPTH: usize = 3;
/// How many directory entries that search reads at most.
const PROTECT_ENTRIES: usize = 4000;

/// What must stay read-only beneath the writable directories `write`,
/// whatever the program does: `.git` (its hooks and config run code
/// later), `.guardflow` directories (run stores) and `*.guardflow` files
/// (workflow sources), at most [`PROTECT_DEPTH`] levels down. A path the
/// author named in `write: [...]` itself (or something beneath it) is
/// not protected: that is the opt-in. Symbolic links are neither
/// followed nor protected.
pub fn protected_beneath(write: &[PathBuf]) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = Vec::new();
    let mut budget = PROTECT_ENTRIES;
    // absolute, as the child mounts them after it changed directory
    let write: Vec<PathBuf> = write.iter().filter_map(|w| w.canonicalize().ok()).collect();
    for dir in &write {
        if !dir.is_dir() {
            continue;
        }
        let mut queue = vec![(dir.clone(), 0usize)];
        while let Some((current, depth)) = queue.pop() {
            let Ok(entries) = std::fs::read_dir(&current) else {
                continue;
            };
            for entry in entries.flatten() {
                if budget == 0 {
                    break;
                }
                budget -= 1;
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                let name = entry.file_name();
                let name = name.to_string_lossy();
                let path = entry.path();
                if kind.is_symlink() {
                    continue;
                }
                if name == ".git"
                    || (kind.is_dir() && name == ".guardflow")
                    || (kind.is_file() && name.ends_with(".guardflow"))
                {
                    found.push(path);
                } else if kind.is_dir()
                    && depth + 1 < PROTECT_DEPTH
                    && !name.starts_with('.')
                    && name != "target"
                    && name != "node_modules"
                {
                    queue.push((path, depth + 1));
                }
            }
        }
    }
    found.retain(|p| !write.iter().any(|w| w.starts_with(p)));
    found.sort();
    found.dedup();
    found
}

/// A program's own temporary directory (writable, its `HOME` and
/// `TMPDIR`; removed when dropped) and the [`Policy`] that confines the
/// program to it with the opt-ins of `confine`: where every runner
/// (guards, generators, effects) starts.
#[derive(Debug)]
pub struct Scratch {
    pub dir: tempfile::TempDir,
    pub policy: Policy,
}

impl Scratch {
    /// A fresh directory named `prefix…` under the system's temporary
    /// directory and its policy for a program that may run for
    /// `timeout`; the error says the directory could not be made.
    pub fn new(prefix: &str, confine: &Confine, timeout: Duration) -> Result<Scratch, String> {
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .map_err(|e| format!("cannot make a temporary directory: {e}"))?;
        let policy = Policy::new(dir.path(), confine, timeout);
        Ok(Scratch { dir, policy })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// What the sandbox most likely refused, judged from a program's output
/// (the kernel's own error messages), to end its feedback with; `None`
/// when the output shows no refusal.
pub fn refusal_note(output: &str, confine: &Confine) -> Option<String> {
    let any = |words: &[&str]| words.iter().any(|w| output.contains(w));
    let lower = output.to_lowercase();
    let mut notes = Vec::new();
    let denied = any(&[
        "Permission denied",
        "Operation not permitted",
        "PermissionError",
    ]);
    // a denied connection is EACCES (Landlock) or ENETUNREACH (the empty
    // network namespace); the program's message names the socket
    let network = !confine.network
        && (denied
            && ["connect", "socket", "urlopen", "could not resolve"]
                .iter()
                .any(|w| lower.contains(w))
            || any(&[
                "Network is unreachable",
                "Temporary failure in name resolution",
                "Name or service not known",
                "Could not resolve host",
                "Errno 101",
            ]));
    if denied && !network {
        notes.push(
            "the sandbox refused a file access: a program may read only system directories, \
             the workflow's directory and the paths in `read: [...]`, and write only its own \
             temporary directory ($TMPDIR), for effects the workspace, and the paths in \
             `write: [...]`"
                .to_string(),
        );
    }
    if network {
        notes.push("the sandbox has no network: give `network: true` to allow it".to_string());
    }
    if any(&[
        "Read-only file system",
        "Device or resource busy",
        "Errno 30",
    ]) {
        notes.push(
            "the workflow's sources (`*.guardflow`), its run store (`.guardflow/`) and `.git` \
             are read-only for every program, also inside a writable directory; name one in \
             `write: [...]` to allow it"
                .to_string(),
        );
    }
    if any(&[
        "Resource temporarily unavailable",
        "fork: retry",
        "Cannot fork",
        "can't fork",
        "BlockingIOError",
        "Cannot allocate memory",
        "MemoryError",
        "File size limit exceeded",
    ]) {
        notes.push(format!(
            "the sandbox limits a program to {MAX_PROCESSES} processes, {} GiB of address space \
             per process and files of {} MiB",
            MAX_ADDRESS_SPACE >> 30,
            MAX_FILE_SIZE >> 20
        ));
    }
    (!notes.is_empty()).then(|| notes.join("; "))
}

/// What the running kernel offers, found once per process; each missing
/// mechanism is reported once on stderr.
#[derive(Debug)]
struct Support {
    /// The Landlock ABI version (0: none).
    landlock: i32,
    /// `unshare(CLONE_NEWNET)` works (with `CLONE_NEWUSER` when not root).
    netns: bool,
    /// A child can make its own mount namespace and bind-mount a path
    /// read-only in it (with `CLONE_NEWUSER` when not root).
    mountns: bool,
    /// As root: one empty network namespace made once, which children
    /// enter with `setns` (making one per child takes milliseconds, and
    /// a forked child holds guardflow's descriptors until it execs).
    shared_netns: Option<OwnedFd>,
    root: bool,
    /// The pids cgroup guardflow's runs' cgroups are made in (as root).
    cgroup: Option<PathBuf>,
}

fn support() -> &'static Support {
    static SUPPORT: OnceLock<Support> = OnceLock::new();
    SUPPORT.get_or_init(|| {
        // SAFETY: geteuid has no preconditions
        let root = unsafe { libc::geteuid() } == 0;
        // SAFETY: LANDLOCK_CREATE_RULESET_VERSION with a null attribute
        // only asks for the version
        let landlock = unsafe {
            libc::syscall(
                libc::SYS_landlock_create_ruleset,
                std::ptr::null::<u8>(),
                0usize,
                1u32,
            )
        };
        let landlock = i32::try_from(landlock).unwrap_or(0).max(0);
        let netns = probe_netns(root);
        let mountns = probe_mountns(root);
        let s = Support {
            landlock,
            netns,
            mountns,
            shared_netns: if root && netns { empty_netns() } else { None },
            root,
            cgroup: if root { pids_cgroup_base() } else { None },
        };
        if s.landlock == 0 {
            warn("Landlock is not available on this kernel: programs run for guards, generators and effects are NOT confined to their directories (they can read and write what the user can)");
        } else if s.landlock < 4 {
            warn(&format!("Landlock ABI {} has no network rules: the network is closed by a network namespace only", s.landlock));
        }
        if !s.netns {
            warn(if s.landlock >= 4 {
                "network namespaces are not available: TCP is closed by Landlock only (UDP and other protocols stay open)"
            } else {
                "network namespaces are not available: programs run for guards, generators and effects can use the network"
            });
        }
        if !s.mountns {
            warn("mount namespaces are not available: a program that may write a directory (an effect's workspace, `write: [...]`) can also change the workflow's sources, its run store and .git beneath it");
        }
        if root && s.cgroup.is_none() {
            warn("no pids cgroup could be made: running as root, a program's number of processes is NOT limited (root is exempt from RLIMIT_NPROC); the timeout still stops it");
        }
        s
    })
}

fn warn(message: &str) {
    eprintln!("guardflow: warning: sandbox: {message}");
}

/// A new, empty network namespace, made by a short-lived thread (a
/// thread's namespaces are its own), kept open by its descriptor.
fn empty_netns() -> Option<OwnedFd> {
    std::thread::Builder::new()
        .name("guardflow-netns".into())
        .spawn(|| {
            // SAFETY: unshare affects only this thread, which ends here
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                return None;
            }
            std::fs::File::open("/proc/thread-self/ns/net")
                .ok()
                .map(OwnedFd::from)
        })
        .ok()?
        .join()
        .ok()
        .flatten()
}

/// Whether a child can make its own mount namespace and bind-mount a
/// directory read-only in it, here.
fn probe_mountns(root: bool) -> bool {
    use std::os::unix::process::CommandExt;
    let Ok(dir) = tempfile::tempdir() else {
        return false;
    };
    let Some(program) = ["/bin/true", "/usr/bin/true"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        return false;
    };
    let Ok(target) = CString::new(dir.path().as_os_str().as_bytes()) else {
        return false;
    };
    let mut flags = libc::CLONE_NEWNS;
    if !root {
        flags |= libc::CLONE_NEWUSER;
    }
    let maps = id_maps_now();
    let paths = vec![(target, locked_flags(dir.path()))];
    let slash = c"/";
    let mut command = std::process::Command::new(program);
    // SAFETY: async-signal-safe system calls on data made before the fork
    unsafe {
        command.pre_exec(move || {
            if libc::unshare(flags) != 0 {
                return Err(io::Error::last_os_error());
            }
            if !root {
                write_id_maps(&maps)?;
            }
            protect_paths(slash, &paths)
        });
    }
    command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The `uid_map`, `gid_map` and `setgroups` writes that map this user to
/// itself in a new user namespace.
fn id_maps_now() -> Vec<(CString, Vec<u8>)> {
    // SAFETY: getuid and getgid have no preconditions
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let c = |p: &str| CString::new(p).unwrap_or_default();
    vec![
        (c("/proc/self/setgroups"), b"deny".to_vec()),
        (
            c("/proc/self/uid_map"),
            format!("{uid} {uid} 1").into_bytes(),
        ),
        (
            c("/proc/self/gid_map"),
            format!("{gid} {gid} 1").into_bytes(),
        ),
    ]
}

/// Writes `maps` (see [`id_maps_now`]); between fork and exec.
///
/// # Safety
///
/// Async-signal-safe system calls only.
unsafe fn write_id_maps(maps: &[(CString, Vec<u8>)]) -> io::Result<()> {
    for (path, contents) in maps {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = libc::write(fd, contents.as_ptr().cast(), contents.len());
        libc::close(fd);
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The mount flags of the file system holding `path` that a remount in a
/// user namespace must keep (the kernel locks them).
fn locked_flags(path: &Path) -> libc::c_ulong {
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
        return 0;
    };
    // SAFETY: statvfs writes into the struct it is given
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid path and a valid struct
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return 0;
    }
    let f = st.f_flag;
    let mut out = 0;
    for (st_flag, ms_flag) in [
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (libc::ST_RELATIME, libc::MS_RELATIME),
    ] {
        if f & st_flag != 0 {
            out |= ms_flag;
        }
    }
    out
}

/// In the calling process's own mount namespace: stops mounts
/// propagating back, then makes each of `paths` a read-only bind mount of
/// itself (`flags`: the locked flags to keep).
///
/// # Safety
///
/// Between fork and exec: async-signal-safe system calls only, no
/// allocation.
unsafe fn protect_paths(slash: &CStr, paths: &[(CString, libc::c_ulong)]) -> io::Result<()> {
    mount(None, slash, libc::MS_REC | libc::MS_PRIVATE)?;
    for (path, flags) in paths {
        mount(Some(path), path, libc::MS_BIND | libc::MS_REC)?;
        mount(
            None,
            path,
            libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | flags,
        )?;
    }
    Ok(())
}

/// `mount(2)` with no file system type and no data.
///
/// # Safety
///
/// As [`protect_paths`].
unsafe fn mount(source: Option<&CStr>, target: &CStr, flags: libc::c_ulong) -> io::Result<()> {
    let none = std::ptr::null::<libc::c_char>();
    let source = source.map_or(none, CStr::as_ptr);
    if libc::mount(source, target.as_ptr(), none, flags, std::ptr::null()) != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether a child can enter a fresh network namespace here.
fn probe_netns(root: bool) -> bool {
    use std::os::unix::process::CommandExt;
    let flags = if root {
        libc::CLONE_NEWNET
    } else {
        libc::CLONE_NEWNET | libc::CLONE_NEWUSER
    };
    let Some(program) = ["/bin/true", "/usr/bin/true"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        return false;
    };
    let mut command = std::process::Command::new(program);
    // SAFETY: unshare is async-signal-safe
    unsafe {
        command.pre_exec(move || {
            if libc::unshare(flags) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The pids cgroup this process is in (v2, or v1's `pids` hierarchy),
/// if this process may make cgroups with a limit in it: each run's
/// cgroup is made there and removed after the run, so nothing is left.
fn pids_cgroup_base() -> Option<PathBuf> {
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let mut dir = None;
    for line in own.lines() {
        let mut parts = line.splitn(3, ':');
        let (id, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let rel = path.trim_start_matches('/');
        if controllers.split(',').any(|c| c == "pids") {
            dir = Some(Path::new("/sys/fs/cgroup/pids").join(rel));
            break;
        }
        if id == "0" && controllers.is_empty() {
            let v2 = Path::new("/sys/fs/cgroup").join(rel);
            let has = std::fs::read_to_string(v2.join("cgroup.subtree_control"))
                .is_ok_and(|c| c.split_whitespace().any(|c| c == "pids"));
            if has {
                dir = Some(v2);
            }
        }
    }
    let base = dir?;
    // a test run: a child cgroup with a limit
    let probe = base.join(format!("guardflow-{}-probe", std::process::id()));
    let ok =
        std::fs::create_dir(&probe).is_ok() && std::fs::write(probe.join("pids.max"), "1").is_ok();
    let _ = std::fs::remove_dir(&probe);
    if ok {
        sweep(&base);
    }
    ok.then_some(base)
}

/// Removes the cgroups of guardflow processes that are gone (killed
/// before they could remove them), killing what still runs in them.
fn sweep(base: &Path) {
    for e in std::fs::read_dir(base).into_iter().flatten().flatten() {
        let name = e.file_name();
        let Some(owner) = name
            .to_str()
            .and_then(|n| n.strip_prefix("guardflow-"))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if Path::new(&format!("/proc/{owner}")).exists() {
            continue;
        }
        let stale = Cgroup { dir: e.path() };
        stale.kill_all();
        if std::fs::remove_dir(&stale.dir).is_err() {
            // its processes are not reaped yet: the next sweep
        }
        std::mem::forget(stale);
    }
}

/// One run's pids cgroup: every process of the run is in it, so all of
/// them are counted (root too) and all are killed at the end, even those
/// that left the process group.
#[derive(Debug)]
pub struct Cgroup {
    dir: PathBuf,
}

impl Cgroup {
    fn make(base: &Path, max: u64) -> Option<(Cgroup, OwnedFd)> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = base.join(format!(
            "guardflow-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir(&dir).ok()?;
        let group = Cgroup { dir };
        std::fs::write(group.dir.join("pids.max"), max.to_string()).ok()?;
        let procs = std::fs::OpenOptions::new()
            .write(true)
            .open(group.dir.join("cgroup.procs"))
            .ok()?;
        Some((group, procs.into()))
    }

    /// Kills every process in the cgroup until none is left (a bounded
    /// number of rounds: the pids limit bounds how many can appear).
    pub fn kill_all(&self) {
        let _ = std::fs::write(self.dir.join("cgroup.kill"), "1");
        for _ in 0..1000 {
            let Ok(procs) = std::fs::read_to_string(self.dir.join("cgroup.procs")) else {
                return;
            };
            let pids: Vec<libc::pid_t> = procs
                .lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect();
            if pids.is_empty() {
                return;
            }
            for pid in pids {
                // SAFETY: kill has no memory-safety preconditions
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
            std::thread::yield_now();
        }
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        self.kill_all();
        // killed processes leave the cgroup once their parent reaped
        // them: wait a little here, then retry a while off this thread
        for _ in 0..20 {
            if std::fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
            self.kill_all();
        }
        let dir = self.dir.clone();
        let _ = std::thread::Builder::new()
            .name("guardflow-cgroup".into())
            .spawn(move || {
                for _ in 0..100 {
                    std::thread::sleep(Duration::from_millis(50));
                    let group = Cgroup { dir: dir.clone() };
                    group.kill_all();
                    std::mem::forget(group);
                    if std::fs::remove_dir(&dir).is_ok() {
                        return;
                    }
                }
            });
    }
}

/// The interpreter `python3` resolves to, found once (it is the workflow
/// author's own, trusted program): its `bin` directory goes first on the
/// sandbox's `PATH`, its prefixes are readable.
struct Python {
    bin: Option<PathBuf>,
    prefixes: Vec<PathBuf>,
}

fn python() -> &'static Python {
    static PYTHON: OnceLock<Python> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let script = "import sys\nfor p in (sys.executable, sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix): print(p)";
        let out = std::process::Command::new("python3")
            .arg("-c")
            .arg(script)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output();
        let Ok(out) = out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()) else {
            return Python {
                bin: None,
                prefixes: Vec::new(),
            };
        };
        let mut lines = out.lines().filter(|l| l.starts_with('/'));
        let exe = lines.next().map(PathBuf::from);
        // `sys.executable` is the interpreter itself, never a shim; in a
        // virtual environment it is the environment's `bin/python3` (a
        // link), which must stay first on PATH so the environment's
        // packages are the ones found
        let bin = exe.as_ref().and_then(|e| e.parent().map(Path::to_path_buf));
        let real = exe
            .as_ref()
            .and_then(|e| e.canonicalize().ok())
            .and_then(|e| e.parent().map(Path::to_path_buf));
        let mut prefixes: Vec<PathBuf> = lines.map(PathBuf::from).collect();
        prefixes.extend(bin.clone());
        prefixes.extend(real);
        prefixes.sort();
        prefixes.dedup();
        Python { bin, prefixes }
    })
}

/// The readable system paths: `/usr`, `/lib*`, `/bin`, `/sbin`, `/opt`,
/// `/etc` (but for [`ETC_DENY`]), a few devices, `/proc`, the
/// interpreter's prefixes and `PATH`'s directories (not the home
/// directory itself, nor `/`).
fn system_read() -> Vec<PathBuf> {
    static READ: OnceLock<Vec<PathBuf>> = OnceLock::new();
    READ.get_or_init(|| {
        let mut read: Vec<PathBuf> = [
            "/usr",
            "/lib",
            "/lib32",
            "/lib64",
            "/libx32",
            "/bin",
            "/sbin",
            "/opt",
            "/proc",
            "/dev/random",
            "/dev/urandom",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        if let Ok(entries) = std::fs::read_dir("/etc") {
            for e in entries.flatten() {
                let name = e.file_name();
                if !ETC_DENY.iter().any(|d| name.as_bytes() == d.as_bytes()) {
                    read.push(e.path());
                }
            }
        }
        read.extend(python().prefixes.iter().cloned());
        let home = std::env::var_os("HOME").map(PathBuf::from);
        if let Some(path) = std::env::var_os("PATH") {
            for dir in std::env::split_paths(&path) {
                let too_wide = !dir.is_absolute()
                    || dir == Path::new("/")
                    || home.as_ref().is_some_and(|h| h.starts_with(&dir));
                if !too_wide {
                    read.push(dir);
                }
            }
        }
        read
    })
    .clone()
}

/// A policy made ready for one spawn: the system calls [`Prepared::apply`]
/// makes in the child need nothing but these.
pub struct Prepared {
    ruleset: Option<OwnedFd>,
    cgroup: Option<Cgroup>,
    /// The cgroup's `cgroup.procs`, open for writing.
    cgroup_procs: Option<OwnedFd>,
    /// The shared empty network namespace to enter (as root).
    netns: Option<libc::c_int>,
    unshare: libc::c_int,
    /// `(path, contents)` written after a user namespace is made.
    id_maps: Vec<(CString, Vec<u8>)>,
    /// The paths made read-only in the child's own mount namespace, with
    /// the locked flags of each one's file system.
    protect: Vec<(CString, libc::c_ulong)>,
    limits: Vec<(libc::__rlimit_resource_t, u64)>,
    /// guardflow's own descriptors (the run store, its lock, …), closed
    /// first thing in the child: a child that the kernel keeps a while
    /// (joining a cgroup waits for the kernel) must not hold the run's
    /// lock after guardflow died.
    inherited: Vec<libc::c_int>,
    drop_caps: bool,
    parent: libc::pid_t,
    pub env: Vec<(String, String)>,
}

impl Prepared {
    /// Builds everything `policy` needs in this process. An error means a
    /// mechanism that the kernel offers could not be set up (then
    /// nothing runs).
    pub fn new(policy: &Policy) -> io::Result<Prepared> {
        let s = support();
        let ruleset = if s.landlock > 0 {
            landlock_ruleset(policy)
                .map_err(|e| io::Error::other(format!("cannot build the Landlock rules: {e}")))?
        } else {
            None
        };
        let (cgroup, cgroup_procs) = match s
            .cgroup
            .as_deref()
            .and_then(|base| Cgroup::make(base, policy.processes))
        {
            Some((g, fd)) => (Some(g), Some(fd)),
            None => (None, None),
        };
        let mut unshare = 0;
        let mut id_maps = Vec::new();
        let netns = match &s.shared_netns {
            Some(fd) if !policy.network => Some(fd.as_raw_fd()),
            _ => None,
        };
        if !policy.network && s.netns && netns.is_none() {
            unshare = libc::CLONE_NEWNET;
        }
        let protect: Vec<(CString, libc::c_ulong)> = if s.mountns {
            policy
                .protect
                .iter()
                .filter_map(|p| {
                    let c = CString::new(p.as_os_str().as_bytes()).ok()?;
                    Some((c, locked_flags(p)))
                })
                .collect()
        } else {
            Vec::new()
        };
        if !protect.is_empty() {
            unshare |= libc::CLONE_NEWNS;
        }
        if unshare != 0 && !s.root {
            unshare |= libc::CLONE_NEWUSER;
            id_maps = id_maps_now();
        }
        let mut limits = vec![
            (libc::RLIMIT_CPU, policy.cpu_seconds),
            (libc::RLIMIT_AS, policy.address_space),
            (libc::RLIMIT_FSIZE, policy.file_size),
            (libc::RLIMIT_CORE, 0),
        ];
        if !s.root {
            // RLIMIT_NPROC counts every process of the user: allow this
            // many more than it has now
            limits.push((
                libc::RLIMIT_NPROC,
                own_processes().saturating_add(policy.processes),
            ));
        }
        let ours: Vec<libc::c_int> = [&ruleset, &cgroup_procs, &s.shared_netns]
            .into_iter()
            .flatten()
            .map(|fd| fd.as_raw_fd())
            .collect();
        let listed: Vec<libc::c_int> = std::fs::read_dir("/proc/self/fd")
            .map(|entries| {
                entries
                    .flatten()
                    .filter_map(|e| e.file_name().to_str()?.parse::<libc::c_int>().ok())
                    .filter(|fd| *fd > 2 && !ours.contains(fd))
                    .collect()
            })
            .unwrap_or_default();
        // not the listing's own descriptor, now closed (its number is
        // free for the spawn's pipes)
        let inherited = listed
            .into_iter()
            // SAFETY: F_GETFD only asks whether the descriptor is open
            .filter(|&fd| unsafe { libc::fcntl(fd, libc::F_GETFD) } != -1)
            .collect();
        Ok(Prepared {
            inherited,
            ruleset,
            cgroup,
            cgroup_procs,
            netns,
            unshare,
            id_maps,
            protect,
            limits,
            drop_caps: s.root,
            // SAFETY: getpid has no preconditions
            parent: unsafe { libc::getpid() },
            env: policy.env.clone(),
        })
    }

    /// The run's cgroup, kept by the caller until every process of the
    /// run is gone.
    pub fn take_cgroup(&mut self) -> Option<Cgroup> {
        self.cgroup.take()
    }

    /// Enforces the policy on the calling process. Call only in a child
    /// between `fork` and `exec`: it makes async-signal-safe system
    /// calls only, and allocates nothing.
    ///
    /// # Safety
    ///
    /// Must be called in a freshly forked, single-threaded child.
    pub unsafe fn apply(&self) -> io::Result<()> {
        let err = || Err(io::Error::last_os_error());
        for &fd in &self.inherited {
            libc::close(fd);
        }
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
            return err();
        }
        // guardflow died before the signal was armed
        if libc::getppid() != self.parent {
            // no allocation between fork and exec: a raw error
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        if let Some(procs) = &self.cgroup_procs {
            let mut buf = [0u8; 24];
            let n = format_pid(libc::getpid(), &mut buf);
            if libc::write(procs.as_raw_fd(), buf.as_ptr().cast(), n) < 0 {
                return err();
            }
        }
        for &(resource, value) in &self.limits {
            let limit = libc::rlimit {
                rlim_cur: value,
                rlim_max: value,
            };
            if libc::setrlimit(resource, &limit) != 0 {
                return err();
            }
        }
        if let Some(fd) = self.netns {
            if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                return err();
            }
        }
        if self.unshare != 0 {
            if libc::unshare(self.unshare) != 0 {
                return err();
            }
            write_id_maps(&self.id_maps)?;
        }
        if !self.protect.is_empty() {
            protect_paths(c"/", &self.protect)?;
        }
        if self.drop_caps {
            // root keeps no capability across exec: no reboot, no module
            // loading, no reading past file permissions
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_CLEAR_ALL,
                0,
                0,
                0,
            );
            for cap in 0..64 {
                if libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) != 0
                    && io::Error::last_os_error().raw_os_error() != Some(libc::EINVAL)
                {
                    return err();
                }
            }
        }
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return err();
        }
        if let Some(ruleset) = &self.ruleset {
            if libc::syscall(libc::SYS_landlock_restrict_self, ruleset.as_raw_fd(), 0u32) != 0 {
                return err();
            }
        }
        // no descriptor guardflow inherited from its own parent reaches
        // the program (best effort: close_range is Linux 5.11)
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        );
        Ok(())
    }
}

/// Writes `pid` in decimal into `buf`; returns its length.
fn format_pid(pid: libc::pid_t, buf: &mut [u8; 24]) -> usize {
    let mut digits = [0u8; 24];
    let mut n = 0;
    let mut v = i64::from(pid).unsigned_abs();
    loop {
        digits[n] = b'0' + (v % 10) as u8;
        n += 1;
        v /= 10;
        if v == 0 || n == digits.len() {
            break;
        }
    }
    for i in 0..n {
        buf[i] = digits[n - 1 - i];
    }
    n
}

/// How many processes this user has now (for `RLIMIT_NPROC`).
fn own_processes() -> u64 {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: getuid has no preconditions
    let uid = unsafe { libc::getuid() };
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 1024;
    };
    let mut n = 0u64;
    for e in entries.flatten() {
        let is_pid = e.file_name().as_bytes().iter().all(u8::is_ascii_digit);
        if is_pid && e.metadata().is_ok_and(|m| m.uid() == uid) {
            n += 1;
        }
    }
    n
}

/// The Landlock ruleset of `policy`: reads beneath `read`, everything
/// beneath `write`, nothing else; TCP bind and connect refused without
/// `network`; signals and abstract Unix sockets scoped to the sandbox.
fn landlock_ruleset(policy: &Policy) -> Result<Option<OwnedFd>, landlock::RulesetError> {
    let abi = LANDLOCK_ABI;
    let mut ruleset = Ruleset::default().handle_access(AccessFs::from_all(abi))?;
    if !policy.network {
        ruleset = ruleset.handle_access(AccessNet::from_all(abi))?;
    }
    let mut created = ruleset.scope(Scope::from_all(abi))?.create()?;
    let rules = [
        (&policy.read, AccessFs::from_read(abi)),
        (&policy.write, AccessFs::from_all(abi)),
    ];
    for (paths, access) in rules {
        for path in paths {
            let Ok(meta) = std::fs::metadata(path) else {
                continue;
            };
            let Ok(fd) = PathFd::new(path) else { continue };
            let access = if meta.is_dir() {
                access
            } else {
                access & AccessFs::from_file(abi)
            };
            created = created.add_rule(PathBeneath::new(fd, access))?;
        }
    }
    Ok(created.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_stores_and_git_beneath_a_writable_directory_are_protected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().canonicalize().expect("canonical");
        for sub in [".git/hooks", ".guardflow", "lib/deeper/deepest", "target/x"] {
            std::fs::create_dir_all(d.join(sub)).expect("mkdir");
        }
        for file in [
            "flow.guardflow",
            "lib/shared.guardflow",
            "lib/deeper/deepest/far.guardflow",
            "target/x/built.guardflow",
            "notes.txt",
        ] {
            std::fs::write(d.join(file), "x").expect("write");
        }
        std::os::unix::fs::symlink(d.join("notes.txt"), d.join("link.guardflow")).expect("link");
        let found = protected_beneath(std::slice::from_ref(&d));
        assert_eq!(
            found,
            [
                d.join(".git"),
                d.join(".guardflow"),
                d.join("flow.guardflow"),
                d.join("lib/shared.guardflow"),
            ]
        );
        // naming `.git` in `write: [...]` is the opt-in
        let found = protected_beneath(&[d.clone(), d.join(".git")]);
        assert!(!found.contains(&d.join(".git")), "{found:?}");
        // a file is not walked; a missing path is skipped
        assert!(protected_beneath(&[d.join("notes.txt"), d.join("gone")]).is_empty());
    }

    #[test]
    fn pids_are_formatted_without_allocating() {
        let mut buf = [0u8; 24];
        let n = format_pid(4711, &mut buf);
        assert_eq!(&buf[..n], b"4711");
        let n = format_pid(0, &mut buf);
        assert_eq!(&buf[..n], b"0");
    }

    #[test]
    fn opt_ins_are_read_from_the_arguments() {
        let args = vec![
            serde_json::json!(60000),
            serde_json::json!(true),
            serde_json::json!(["X", "Y"]),
            serde_json::json!(["data", "/abs"]),
            serde_json::json!(["out"]),
            serde_json::json!(100),
        ];
        let c = Confine::from_args(&args, 1, Path::new("/ws"));
        assert!(c.network);
        assert_eq!(c.env, ["X", "Y"]);
        assert_eq!(c.read, [PathBuf::from("/ws/data"), PathBuf::from("/abs")]);
        assert_eq!(c.write, [PathBuf::from("/ws/out")]);
        assert_eq!(c.max_output, 100);
        assert_eq!(
            Confine::from_args(&[], 1, Path::new("/ws")),
            Confine::default()
        );
    }

    #[test]
    fn refusals_are_named_from_the_kernels_messages() {
        let c = Confine::default();
        let file = refusal_note("cat: ../x: Permission denied", &c).expect("a note");
        assert!(file.contains("refused a file access"), "{file}");
        let net =
            refusal_note("sock.connect(sa)\nPermissionError: [Errno 13]", &c).expect("a note");
        assert!(
            net.contains("no network") && !net.contains("file access"),
            "{net}"
        );
        let net = refusal_note("curl: (6) Could not resolve host: x", &c).expect("a note");
        assert!(net.contains("no network"), "{net}");
        let open = Confine {
            network: true,
            ..Confine::default()
        };
        assert_eq!(refusal_note("Network is unreachable", &open), None);
        let fork = refusal_note("sh: 1: Cannot fork", &c).expect("a note");
        assert!(fork.contains("256 processes"), "{fork}");
        assert_eq!(
            refusal_note("FAILED test_connect - assert 1 == 2", &c),
            None
        );
    }

    #[test]
    fn the_environment_is_an_allow_list() {
        let temp = Path::new("/tmp/guardflow-x");
        let p = Policy::new(temp, &Confine::default(), Duration::from_secs(1));
        for (k, _) in &p.env {
            assert!(
                ENV_ALLOW.contains(&k.as_str()) || k == "HOME" || k == "TMPDIR",
                "{k}"
            );
        }
        assert!(p.env.contains(&("HOME".into(), "/tmp/guardflow-x".into())));
        assert!(!p.read.iter().any(|r| r == Path::new("/etc/shadow")));
        assert!(p.read.iter().any(|r| r == Path::new("/usr")));
        assert_eq!(p.write[0], temp);
        assert!(
            p.write[1..].iter().all(|w| w.starts_with("/dev")),
            "{:?}",
            p.write
        );
    }
}
