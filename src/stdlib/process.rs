//! Running a program for a guard, a generator or an effect.
//!
//! The workflow author's command line runs with `sh -c`; the artifact is
//! never spliced into it, only passed on stdin, in the environment or in
//! a file. A model's command runs as an argv, with no shell. Every
//! program runs in the sandbox of its [`Policy`] (see
//! [`super::sandbox`]). Each run gets its own process group (and, as
//! root, its own pids cgroup), and the whole group is killed when the run
//! times out, when it is cancelled (its future dropped), and after it
//! ends, so no stray process outlives it.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;
use tokio::time::Instant;

use super::sandbox::{self, Cgroup, Confine, Policy, Prepared, Scratch};
use super::text::shorten;
use crate::runtime::Verdict;

/// After the program itself exited, how long its output pipes may stay
/// open (held by a background child) before the group is killed and the
/// output taken as it is.
pub const EOF_GRACE: Duration = Duration::from_millis(500);

/// What to run.
#[derive(Debug, Clone)]
pub struct Spec {
    /// A command line, run with `sh -c` (the workflow author wrote it);
    /// ignored when `argv` is given.
    pub command: String,
    /// A program and its arguments, run with no shell (a model wrote it).
    pub argv: Option<Vec<String>>,
    /// Written to the program's stdin, which is then closed.
    pub stdin: Vec<u8>,
    /// Added to the sandbox's environment.
    pub env: Vec<(String, String)>,
    /// The working directory.
    pub cwd: PathBuf,
    /// How long the program may run before its process group is killed.
    pub timeout: Duration,
    /// What the program may do; its environment is the whole environment.
    pub sandbox: Policy,
    /// How much of each output stream is kept; the rest is read and
    /// dropped (so the program is never blocked on a full pipe) and
    /// `Output::cut` says so.
    pub max_output: usize,
}

/// What came of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// The exit status; `None` when a signal ended the program (always so
    /// after a timeout).
    pub status: Option<i32>,
    /// Standard output, decoded as lossy UTF-8 (at most `max_output`
    /// bytes of it); after a timeout, what was read until then.
    pub stdout: String,
    /// Standard error, likewise.
    pub stderr: String,
    pub timed_out: bool,
    pub elapsed: Duration,
    /// `Some(n)` when an output stream was longer than the `n` bytes kept.
    pub cut: Option<usize>,
}

impl Output {
    /// `"output cut at N bytes"` when the output was cut, for feedback
    /// and records.
    pub fn cut_note(&self) -> Option<String> {
        self.cut.map(|n| format!("output cut at {n} bytes"))
    }
}

/// Kills the process group with `SIGKILL` when dropped, unless the run
/// finished: dropping the future of [`run`] kills the program and its
/// children.
struct Group {
    pgid: libc::pid_t,
    finished: bool,
    /// The run's pids cgroup (as root): killed and removed when dropped.
    cgroup: Option<Cgroup>,
}

impl Group {
    fn kill(&self) {
        if self.pgid > 0 {
            // SAFETY: killpg has no memory-safety preconditions; a group
            // that is already gone yields ESRCH, which is ignored.
            unsafe {
                libc::killpg(self.pgid, libc::SIGKILL);
            }
        }
        if let Some(cgroup) = &self.cgroup {
            cgroup.kill_all();
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if !self.finished {
            self.kill();
        }
        crate::runtime::children::unregister(self.pgid);
    }
}

/// Reads `from` to its end into `into`, keeping at most `max` bytes; a
/// read error ends the stream. Returns whether more than `max` came.
async fn read_into(from: Option<impl AsyncRead + Unpin>, into: &mut Vec<u8>, max: usize) -> bool {
    let Some(mut from) = from else { return false };
    let mut chunk = vec![0u8; 64 * 1024];
    let mut cut = false;
    loop {
        match from.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = max.saturating_sub(into.len());
                cut |= n > room;
                into.extend_from_slice(&chunk[..n.min(room)]);
            }
        }
    }
    cut
}

/// Runs `spec.argv`, or else `spec.command` with `sh -c`, in the
/// sandbox of `spec.sandbox` and its own process group, writing
/// `spec.stdin` while reading stdout and stderr (no pipe deadlock). After
/// `spec.timeout` (tokio's monotonic clock) the whole group is killed and
/// `timed_out` set. Once the program itself exited, its output is read
/// for at most [`EOF_GRACE`] more (a background child may hold the
/// pipes). The group is also killed when the program ends (to stop
/// background processes it left) and when this future is dropped before
/// it completes. An error means the program could not be started (for
/// example, a missing working directory or program).
pub async fn run(spec: Spec) -> io::Result<Output> {
    let mut prepared = Prepared::new(&spec.sandbox)?;
    let mut command = match &spec.argv {
        Some(argv) => {
            let (program, args) = argv
                .split_first()
                .ok_or_else(|| io::Error::other("an empty command"))?;
            let mut c = Command::new(program);
            c.args(args);
            c
        }
        None => {
            let mut c = Command::new("sh");
            c.arg("-c").arg(&spec.command);
            c
        }
    };
    command
        .env_clear()
        .envs(prepared.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&spec.cwd)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .envs(crate::runtime::children::mark().map(|v| (crate::runtime::children::MARK, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let start = Instant::now();
    let deadline = start
        .checked_add(spec.timeout)
        .unwrap_or_else(|| start + Duration::from_secs(u64::from(u32::MAX)));
    let cgroup = prepared.take_cgroup();
    let prepared = std::sync::Arc::new(prepared);
    let child = {
        let prepared = prepared.clone();
        // SAFETY: `apply` makes async-signal-safe system calls only and
        // allocates nothing
        unsafe {
            command.pre_exec(move || prepared.apply());
        }
        command.spawn()
    };
    // the ruleset and the cgroup's file are closed here
    drop(command);
    drop(prepared);
    let mut child = child?;
    let pgid = child
        .id()
        .and_then(|id| libc::pid_t::try_from(id).ok())
        .unwrap_or(0);
    crate::runtime::children::register(pgid);
    let mut group = Group {
        pgid,
        finished: false,
        cgroup,
    };
    let (stdin, stdout, stderr) = (child.stdin.take(), child.stdout.take(), child.stderr.take());
    let input = spec.stdin;
    let max = spec.max_output;
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut cut = (false, false);
    let work = async {
        let write = async move {
            if let Some(mut pipe) = stdin {
                // the program may exit without reading: EPIPE is fine
                let _ = pipe.write_all(&input).await;
                let _ = pipe.shutdown().await;
            }
        };
        let io = async {
            let (_, a, b) = tokio::join!(
                write,
                read_into(stdout, &mut out, max),
                read_into(stderr, &mut err, max)
            );
            cut = (a, b);
        };
        tokio::pin!(io);
        tokio::select! {
            status = child.wait() => {
                // a background child may keep the pipes open: give the
                // output a moment, then kill the group and take it as is
                if tokio::time::timeout(EOF_GRACE, &mut io).await.is_err() {
                    group.kill();
                    let _ = tokio::time::timeout(EOF_GRACE, &mut io).await;
                }
                status
            }
            () = &mut io => child.wait().await,
        }
    };
    let (status, timed_out) = match tokio::time::timeout_at(deadline, work).await {
        Ok(status) => {
            group.kill();
            (status?, false)
        }
        Err(_) => {
            group.kill();
            (child.wait().await?, true)
        }
    };
    group.finished = true;
    Ok(Output {
        status: if timed_out { None } else { status.code() },
        stdout: String::from_utf8_lossy(&out).into_owned(),
        stderr: String::from_utf8_lossy(&err).into_owned(),
        timed_out,
        elapsed: start.elapsed(),
        cut: (cut.0 || cut.1).then_some(max),
    })
}

/// The end of a program's output for feedback: its last `max_lines`
/// lines, and of those at most the last `max_bytes` bytes (cut at a
/// character boundary), with a leading `…` when anything was left out.
/// Trailing line endings are dropped.
pub fn tail(text: &str, max_lines: usize, max_bytes: usize) -> String {
    let text = text.trim_end_matches(['\n', '\r']);
    if text.is_empty() || max_lines == 0 || max_bytes == 0 {
        return String::new();
    }
    let mut start = text
        .match_indices('\n')
        .rev()
        .nth(max_lines - 1)
        .map_or(0, |(i, _)| i + 1);
    let by_lines = start > 0;
    if text.len() - start > max_bytes {
        start = text.len() - max_bytes;
        while !text.is_char_boundary(start) {
            start += 1;
        }
        return format!("…{}", &text[start..]);
    }
    if by_lines {
        format!("…\n{}", &text[start..])
    } else {
        text.to_string()
    }
}

/// A duration as a workflow would write it: `1500ms`, `2s`.
fn show(d: Duration) -> String {
    if d.subsec_millis() == 0 && d.as_secs() > 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// The end of a run's stderr and stdout, about 40 lines or 4 KB in all.
pub fn output_tail(out: &Output) -> String {
    let (e, o) = (out.stderr.trim_end(), out.stdout.trim_end());
    match (e.is_empty(), o.is_empty()) {
        (true, true) => "(no output)".to_string(),
        (false, true) => tail(e, 40, 4096),
        (true, false) => tail(o, 40, 4096),
        (false, false) => format!(
            "stderr:\n{}\nstdout:\n{}",
            tail(e, 20, 2048),
            tail(o, 20, 2048)
        ),
    }
}

/// The feedback's end: the output cut, and what the sandbox refused
/// (when the output suggests it).
pub fn notes(out: &Output, confine: &Confine) -> String {
    let mut notes = String::new();
    if let Some(cut) = out.cut_note() {
        notes.push_str(&format!("\n({cut})"));
    }
    let all = format!("{}\n{}", out.stderr, out.stdout);
    if let Some(why) = sandbox::refusal_note(&all, confine) {
        notes.push_str(&format!("\n({why})"));
    }
    notes
}

/// The `command` guard: runs `command` (with `sh -c`, in `cwd`, in the
/// sandbox: it reads `cwd`, writes only its own temporary directory) with
/// the artifact in a file of that directory named by
/// `$GUARDFLOW_ARTIFACT` and on stdin. Exit status 0 passes; another
/// status fails with the end of the output; running out of `timeout`
/// fails; a shell that cannot start, or a command that is not found or
/// not executable (status 127 or 126), is fatal.
pub async fn command_guard(
    command: &str,
    artifact: &str,
    timeout: Duration,
    cwd: &Path,
    confine: &Confine,
) -> Verdict {
    command_guard_with_files(command, artifact, timeout, cwd, &[], confine).await
}

/// [`command_guard`] with named values handed over as files (`files:`),
/// written by [`write_files`]; a name that is not a plain file name is
/// fatal.
pub async fn command_guard_with_files(
    command: &str,
    artifact: &str,
    timeout: Duration,
    cwd: &Path,
    files: &[(String, String)],
    confine: &Confine,
) -> Verdict {
    let shown = match command.trim().split_once('\n') {
        Some((first, _)) => format!("{}…", shorten(first, 80)),
        None => shorten(command.trim(), 80),
    };
    let Files {
        dir: files_dir,
        mut env,
    } = match write_files(files) {
        Ok(written) => written,
        Err(e) => return Verdict::fatal(format!("the command guard of `{shown}`: {e}")),
    };
    let mut read_workdir = confine.clone();
    read_workdir.read.push(cwd.to_path_buf());
    if let Some(files_dir) = &files_dir {
        // the program may work in it (`cd "$GUARDFLOW_FILES"`, put the
        // artifact beside the tests): it is the run's own, removed after
        read_workdir.write.push(files_dir.path().to_path_buf());
    }
    let scratch = Scratch::new("guardflow-artifact-", &read_workdir, timeout).and_then(|s| {
        std::fs::write(s.path().join("artifact"), artifact.as_bytes())
            .map_err(|e| e.to_string())?;
        Ok(s)
    });
    let Scratch { dir, policy } = match scratch {
        Ok(s) => s,
        Err(e) => {
            return Verdict::fatal(format!(
                "the command guard could not write the artifact to a temporary file: {e}"
            ))
        }
    };
    env.push((
        "GUARDFLOW_ARTIFACT".to_string(),
        dir.path().join("artifact").to_string_lossy().into_owned(),
    ));
    let spec = Spec {
        command: command.to_string(),
        argv: None,
        stdin: artifact.as_bytes().to_vec(),
        env,
        cwd: cwd.to_path_buf(),
        timeout,
        sandbox: policy,
        max_output: confine.max_output,
    };
    let out = match run(spec).await {
        Ok(out) => out,
        Err(e) => return Verdict::fatal(format!("cannot run `{shown}` in {}: {e}", cwd.display())),
    };
    drop(files_dir);
    drop(dir);
    let notes = notes(&out, confine);
    if out.timed_out {
        let mut feedback = format!(
            "`{shown}` ran out of time: it did not finish within {} and was stopped",
            show(timeout)
        );
        if !(out.stdout.trim().is_empty() && out.stderr.trim().is_empty()) {
            feedback.push_str(&format!("; its last output:\n{}", output_tail(&out)));
        }
        return Verdict::fail(feedback + &notes);
    }
    match out.status {
        Some(0) => Verdict::Pass,
        Some(n @ (126 | 127)) => Verdict::fatal(format!(
            "`{shown}` could not run (status {n}: {}):\n{}{notes}",
            if n == 127 {
                "command not found"
            } else {
                "not executable"
            },
            output_tail(&out)
        )),
        Some(n) => Verdict::fail(format!(
            "`{shown}` exited with status {n}:\n{}{notes}",
            output_tail(&out)
        )),
        None => Verdict::fail(format!(
            "`{shown}` was killed by a signal:\n{}{notes}",
            output_tail(&out)
        )),
    }
}

/// Writes each named value to a file of that name in a fresh temporary
/// directory (removed when the returned handle drops), and gives the
/// program's environment: `GUARDFLOW_FILES` (the directory) and
/// `GUARDFLOW_FILE_<NAME>` (each file's path; [`file_var`]). Nothing is
/// created without files. A name must be a plain file name: not empty,
/// not `.` or `..`, without `/` or NUL, and no two names may share a
/// variable.
pub fn write_files(files: &[(String, String)]) -> Result<Files, String> {
    if files.is_empty() {
        return Ok(Files {
            dir: None,
            env: Vec::new(),
        });
    }
    let mut vars: Vec<(String, &str)> = Vec::with_capacity(files.len());
    for (name, _) in files {
        plain_name(name)?;
        let var = file_var(name);
        if let Some((_, other)) = vars.iter().find(|(v, _)| *v == var) {
            return Err(format!(
                "`{name}` and `{other}` would both be named by `${var}`; rename one"
            ));
        }
        vars.push((var, name));
    }
    let dir = tempfile::Builder::new()
        .prefix("guardflow-files-")
        .tempdir()
        .map_err(|e| format!("cannot create a temporary directory for `files:`: {e}"))?;
    let mut env = vec![(
        "GUARDFLOW_FILES".to_string(),
        dir.path().to_string_lossy().into_owned(),
    )];
    write_named(dir.path(), files)?;
    for ((name, _), (var, _)) in files.iter().zip(vars) {
        env.push((var, dir.path().join(name).to_string_lossy().into_owned()));
    }
    Ok(Files {
        dir: Some(dir),
        env,
    })
}

/// Whether `name` may name a file of `files:`: not empty, not `.` or
/// `..`, without `/` or NUL; the error says why not.
pub fn plain_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
        return Err(format!(
            "`{}` is not a plain file name: a name in `files:` has no `/`, is not `.` \
             or `..`, and is not empty",
            name.escape_debug()
        ));
    }
    Ok(())
}

/// Writes each named value of `files:` as a new file of that name in
/// `dir` (names checked by [`plain_name`]; a name given twice, or one
/// that is already there, is an error).
pub fn write_named(dir: &Path, files: &[(String, String)]) -> Result<(), String> {
    for (name, text) in files {
        plain_name(name)?;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(dir.join(name))
            .and_then(|mut f| io::Write::write_all(&mut f, text.as_bytes()))
            .map_err(|e| format!("cannot write `{name}` for `files:`: {e}"))?;
    }
    Ok(())
}

/// What [`write_files`] wrote: the directory (removed when dropped) and
/// the variables naming it and its files.
#[derive(Debug)]
pub struct Files {
    pub dir: Option<tempfile::TempDir>,
    pub env: Vec<(String, String)>,
}

/// `GUARDFLOW_FILE_` and the name upper-cased, each character other than
/// an ASCII letter or digit as `_`: `tests.py` is `GUARDFLOW_FILE_TESTS_PY`.
pub fn file_var(name: &str) -> String {
    let mut var = String::from("GUARDFLOW_FILE_");
    var.extend(name.chars().map(|c| {
        if c.is_ascii_alphanumeric() {
            c.to_ascii_uppercase()
        } else {
            '_'
        }
    }));
    var
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(command: &str) -> Spec {
        let mut confine = Confine::default();
        confine.write.push(std::env::temp_dir());
        Spec {
            command: command.to_string(),
            argv: None,
            stdin: Vec::new(),
            env: Vec::new(),
            cwd: std::env::temp_dir(),
            timeout: Duration::from_secs(20),
            sandbox: Policy::new(&std::env::temp_dir(), &confine, Duration::from_secs(20)),
            max_output: 64 << 20,
        }
    }

    /// Whether `pid` no longer runs (gone, or a zombie nobody reaped yet).
    fn gone(pid: libc::pid_t) -> bool {
        // SAFETY: signal 0 only checks that the process exists
        if unsafe { libc::kill(pid, 0) } != 0 {
            return true;
        }
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
            let state = stat.rsplit(')').next().unwrap_or("").trim_start();
            state.starts_with('Z') || state.starts_with('X')
        })
    }

    async fn wait_gone(pid: libc::pid_t) -> bool {
        for _ in 0..200 {
            if gone(pid) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }

    fn read_pid(path: &Path) -> libc::pid_t {
        let text = std::fs::read_to_string(path).expect("pid file written");
        text.trim().parse().expect("a pid")
    }

    #[tokio::test]
    async fn runs_with_stdin_env_and_cwd() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = spec("cat; echo \"[$FOO]\"; pwd; printf oops >&2; exit 3");
        s.stdin = b"hello\n".to_vec();
        s.env = vec![("FOO".into(), "a b; $(no)".into())];
        s.cwd = dir.path().to_path_buf();
        let out = run(s).await.expect("runs");
        let cwd = dir.path().canonicalize().expect("canonical");
        assert_eq!(
            out.stdout,
            format!("hello\n[a b; $(no)]\n{}\n", cwd.display())
        );
        assert_eq!(out.stderr, "oops");
        assert_eq!(out.status, Some(3));
        assert!(!out.timed_out);
        assert!(out.elapsed < Duration::from_secs(10));
    }

    #[tokio::test]
    async fn output_is_lossy_utf8() {
        let out = run(spec("printf 'a\\377b'")).await.expect("runs");
        assert_eq!(out.stdout, "a\u{FFFD}b");
    }

    #[tokio::test]
    async fn timeout_kills_the_whole_group() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = spec("sleep 30 & echo $! > \"$D/pid\"; echo started; wait");
        s.env = vec![("D".into(), dir.path().display().to_string())];
        s.timeout = Duration::from_millis(1000);
        let out = run(s).await.expect("runs");
        assert!(out.timed_out);
        assert_eq!(out.status, None);
        assert_eq!(out.stdout, "started\n", "partial output is kept");
        assert!(
            out.elapsed >= Duration::from_millis(1000) && out.elapsed < Duration::from_secs(10)
        );
        let grandchild = read_pid(&dir.path().join("pid"));
        assert!(
            wait_gone(grandchild).await,
            "grandchild {grandchild} survived"
        );
    }

    #[tokio::test]
    async fn dropping_the_future_kills_the_group() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = spec("echo $$ > \"$D/sh\"; sleep 30 & echo $! > \"$D/pid\"; wait");
        s.env = vec![("D".into(), dir.path().display().to_string())];
        s.timeout = Duration::from_secs(60);
        let (sh_file, pid_file) = (dir.path().join("sh"), dir.path().join("pid"));
        let written = |p: &Path| std::fs::read_to_string(p).is_ok_and(|t| t.ends_with('\n'));
        let mut running = Box::pin(run(s));
        for _ in 0..500 {
            tokio::select! {
                out = &mut running => panic!("the run ended: {out:?}"),
                () = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
            if written(&sh_file) && written(&pid_file) {
                break;
            }
        }
        drop(running);
        let (shell, grandchild) = (read_pid(&sh_file), read_pid(&pid_file));
        assert!(
            wait_gone(grandchild).await,
            "grandchild {grandchild} survived"
        );
        assert!(wait_gone(shell).await, "shell {shell} survived");
    }

    #[tokio::test]
    async fn background_leftovers_are_killed_at_the_end() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = spec("sleep 30 >/dev/null 2>&1 & echo $! > \"$D/pid\"");
        s.env = vec![("D".into(), dir.path().display().to_string())];
        let out = run(s).await.expect("runs");
        assert_eq!(out.status, Some(0));
        let leftover = read_pid(&dir.path().join("pid"));
        assert!(wait_gone(leftover).await, "leftover {leftover} survived");
    }

    #[tokio::test]
    async fn large_input_and_output_do_not_deadlock() {
        let input: Vec<u8> = (0..4_000_000u32)
            .map(|i| {
                if i % 80 == 79 {
                    b'\n'
                } else {
                    b'a' + (i % 26) as u8
                }
            })
            .collect();
        let mut s = spec("cat; head -c 3000000 /dev/zero | tr '\\0' e >&2");
        s.stdin = input.clone();
        let out = run(s).await.expect("runs");
        assert_eq!(out.status, Some(0));
        assert_eq!(out.stdout.as_bytes(), &input[..]);
        assert_eq!(out.stderr.len(), 3_000_000);
        // a program that never reads its large stdin
        let mut s = spec("exit 0");
        s.stdin = input;
        assert_eq!(run(s).await.expect("runs").status, Some(0));
    }

    #[tokio::test]
    async fn a_background_child_holding_stdout_does_not_hold_the_result() {
        let mut s = spec("sleep 30 & echo done");
        s.timeout = Duration::from_secs(20);
        let out = run(s).await.expect("runs");
        assert!(!out.timed_out, "{out:?}");
        assert_eq!(out.status, Some(0));
        assert_eq!(out.stdout, "done\n");
    }

    #[tokio::test]
    async fn output_beyond_max_output_is_cut_and_said() {
        let mut s = spec("head -c 100 /dev/zero; head -c 5 /dev/zero >&2");
        s.max_output = 10;
        let out = run(s).await.expect("runs");
        assert_eq!(out.stdout.len(), 10);
        assert_eq!(out.stderr.len(), 5);
        assert_eq!(out.cut, Some(10));
        assert_eq!(out.cut_note().as_deref(), Some("output cut at 10 bytes"));
        let mut s = spec("head -c 10 /dev/zero");
        s.max_output = 10;
        assert_eq!(run(s).await.expect("runs").cut, None);
    }

    #[tokio::test]
    async fn argv_runs_without_a_shell() {
        let mut s = spec("");
        s.argv = Some(vec!["echo".into(), "a; b".into(), "$HOME".into()]);
        let out = run(s).await.expect("runs");
        assert_eq!(out.stdout, "a; b $HOME\n");
    }

    #[tokio::test]
    async fn a_missing_directory_is_an_error() {
        let mut s = spec("true");
        s.cwd = PathBuf::from("/no/such/dir/for/guardflow");
        assert!(run(s).await.is_err());
    }

    #[test]
    fn tails() {
        assert_eq!(tail("", 5, 100), "");
        assert_eq!(tail("a\nb\n", 5, 100), "a\nb");
        assert_eq!(tail("a\nb\nc\nd\n", 2, 100), "…\nc\nd");
        assert_eq!(tail("a\nb\nc", 0, 100), "");
        assert_eq!(tail("abcdef", 5, 3), "…def");
        assert_eq!(tail("xéé", 5, 3), "…é");
        assert_eq!(tail("ééé", 1, 1), "…");
        assert_eq!(show(Duration::from_secs(2)), "2s");
        assert_eq!(show(Duration::from_millis(1500)), "1500ms");
    }

    fn cwd() -> PathBuf {
        std::env::temp_dir()
    }

    #[tokio::test]
    async fn command_guard_passes_and_fails() {
        let t = Duration::from_secs(20);
        let ok = "grep -q needle \"$GUARDFLOW_ARTIFACT\" && grep -q needle";
        assert_eq!(
            command_guard(ok, "a needle here", t, &cwd(), &Confine::default()).await,
            Verdict::Pass
        );
        match command_guard(ok, "nothing", t, &cwd(), &Confine::default()).await {
            Verdict::Fail(f) => assert_eq!(f, format!("`{ok}` exited with status 1:\n(no output)")),
            other => panic!("{other:?}"),
        }
        let noisy = "echo 'line one'; echo 'assertion failed: x == 2' >&2; exit 2";
        match command_guard(noisy, "x", t, &cwd(), &Confine::default()).await {
            Verdict::Fail(f) => {
                assert!(
                    f.starts_with(&format!("`{noisy}` exited with status 2:\n")),
                    "{f}"
                );
                assert!(
                    f.contains("stderr:\nassertion failed: x == 2\nstdout:\nline one"),
                    "{f}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn command_guard_timeouts_and_missing_programs() {
        match command_guard(
            "echo working; sleep 10",
            "x",
            Duration::from_millis(1500),
            &cwd(),
            &Confine::default(),
        )
        .await
        {
            Verdict::Fail(f) => {
                assert!(
                    f.contains("ran out of time: it did not finish within 1500ms"),
                    "{f}"
                );
                assert!(f.contains("last output:\nworking"), "{f}");
            }
            other => panic!("{other:?}"),
        }
        match command_guard(
            "no-such-program-guardflow-x",
            "x",
            Duration::from_secs(20),
            &cwd(),
            &Confine::default(),
        )
        .await
        {
            Verdict::Fatal(f) => assert!(
                f.contains("status 127: command not found") && f.contains("not found"),
                "{f}"
            ),
            other => panic!("{other:?}"),
        }
        let missing = Path::new("/no/such/dir/for/guardflow");
        match command_guard(
            "true",
            "x",
            Duration::from_secs(20),
            missing,
            &Confine::default(),
        )
        .await
        {
            Verdict::Fatal(f) => assert!(f.starts_with("cannot run `true` in /no/such/dir"), "{f}"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn the_artifact_file_is_removed_afterwards() {
        let report = "echo \"$GUARDFLOW_ARTIFACT\" >&2; exit 1";
        let f = command_guard(
            report,
            "secret",
            Duration::from_secs(20),
            &cwd(),
            &Confine::default(),
        )
        .await;
        let path = f.feedback().lines().last().unwrap_or_default().to_string();
        assert!(path.contains("guardflow-artifact-"), "{f:?}");
        assert!(!Path::new(&path).exists());
        // multi-line commands are shown by their first line
        let f = command_guard(
            "false\n# more",
            "x",
            Duration::from_secs(20),
            &cwd(),
            &Confine::default(),
        )
        .await;
        assert!(
            f.feedback().starts_with("`false…` exited with status 1"),
            "{f:?}"
        );
    }
}
