//! Running a program for a guard or a generator.
//!
//! The workflow author's command line runs with `sh -c`; the artifact is
//! never spliced into it, only passed on stdin, in the environment or in
//! a file. Each run gets its own process group, and the whole group is
//! killed when the run times out, when it is cancelled (its future
//! dropped), and after it ends, so no stray process outlives it.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;
use tokio::time::Instant;

use super::text::shorten;
use crate::runtime::Verdict;

/// How much of each output stream a run keeps; the rest is read and
/// dropped, so the program is never blocked on a full pipe.
pub const MAX_CAPTURE: usize = 64 << 20;

/// What to run.
#[derive(Debug, Clone)]
pub struct Spec {
    /// A command line, run with `sh -c` (the workflow author wrote it).
    pub command: String,
    /// Written to the program's stdin, which is then closed.
    pub stdin: Vec<u8>,
    /// Added to the inherited environment.
    pub env: Vec<(String, String)>,
    /// The working directory.
    pub cwd: PathBuf,
    /// How long the program may run before its process group is killed.
    pub timeout: Duration,
}

/// What came of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// The exit status; `None` when a signal ended the program (always so
    /// after a timeout).
    pub status: Option<i32>,
    /// Standard output, decoded as lossy UTF-8 (at most [`MAX_CAPTURE`]
    /// bytes of it); after a timeout, what was read until then.
    pub stdout: String,
    /// Standard error, likewise.
    pub stderr: String,
    pub timed_out: bool,
    pub elapsed: Duration,
}

/// Kills the process group with `SIGKILL` when dropped, unless the run
/// finished: dropping the future of [`run`] kills the program and its
/// children.
struct Group {
    pgid: libc::pid_t,
    finished: bool,
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

/// Reads `from` to its end into `into`, keeping at most [`MAX_CAPTURE`]
/// bytes; a read error ends the stream.
async fn read_into(from: Option<impl AsyncRead + Unpin>, into: &mut Vec<u8>) {
    let Some(mut from) = from else { return };
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = MAX_CAPTURE.saturating_sub(into.len());
                into.extend_from_slice(&chunk[..n.min(room)]);
            }
        }
    }
}

/// Runs `spec.command` with `sh -c` in its own process group, writing
/// `spec.stdin` while reading stdout and stderr (no pipe deadlock). After
/// `spec.timeout` (tokio's monotonic clock) the whole group is killed and
/// `timed_out` set. The group is also killed when the program ends (to
/// stop background processes it left) and when this future is dropped
/// before it completes. An error means the shell could not be started
/// (for example, a missing working directory).
pub async fn run(spec: Spec) -> io::Result<Output> {
    run_in(spec, None).await
}

/// Like [`run`], but in an environment cleared of everything except the
/// variables named in `keep` (taken from this process's environment) and
/// `spec.env`.
pub async fn run_clean(spec: Spec, keep: &[&str]) -> io::Result<Output> {
    run_in(spec, Some(keep)).await
}

async fn run_in(spec: Spec, keep: Option<&[&str]>) -> io::Result<Output> {
    let mut command = Command::new("sh");
    if let Some(keep) = keep {
        command.env_clear();
        for name in keep {
            if let Some(value) = std::env::var_os(name) {
                command.env(name, value);
            }
        }
    }
    command
        .arg("-c")
        .arg(&spec.command)
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
    let mut child = command.spawn()?;
    let pgid = child
        .id()
        .and_then(|id| libc::pid_t::try_from(id).ok())
        .unwrap_or(0);
    crate::runtime::children::register(pgid);
    let mut group = Group {
        pgid,
        finished: false,
    };
    let (stdin, stdout, stderr) = (child.stdin.take(), child.stdout.take(), child.stderr.take());
    let input = spec.stdin;
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let work = async {
        let write = async move {
            if let Some(mut pipe) = stdin {
                // the program may exit without reading: EPIPE is fine
                let _ = pipe.write_all(&input).await;
                let _ = pipe.shutdown().await;
            }
        };
        let (_, _, _, status) = tokio::join!(
            write,
            read_into(stdout, &mut out),
            read_into(stderr, &mut err),
            child.wait()
        );
        status
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
fn output_tail(out: &Output) -> String {
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

/// The `command` guard: runs `command` (with `sh -c`, in `cwd`) with the
/// artifact in a fresh temporary file named by `$GUARDFLOW_ARTIFACT` and
/// on stdin. Exit status 0 passes; another status fails with the end of
/// the output; running out of `timeout` fails; a shell that cannot start,
/// or a command that is not found or not executable (status 127 or 126),
/// is fatal.
pub async fn command_guard(
    command: &str,
    artifact: &str,
    timeout: Duration,
    cwd: &Path,
) -> Verdict {
    let shown = match command.trim().split_once('\n') {
        Some((first, _)) => format!("{}…", shorten(first, 80)),
        None => shorten(command.trim(), 80),
    };
    let file = tempfile::Builder::new()
        .prefix("guardflow-artifact-")
        .tempfile()
        .and_then(|mut f| {
            io::Write::write_all(&mut f, artifact.as_bytes())?;
            io::Write::flush(&mut f)?;
            Ok(f)
        });
    let file = match file {
        Ok(f) => f,
        Err(e) => {
            return Verdict::fatal(format!(
                "the command guard could not write the artifact to a temporary file: {e}"
            ))
        }
    };
    let spec = Spec {
        command: command.to_string(),
        stdin: artifact.as_bytes().to_vec(),
        env: vec![(
            "GUARDFLOW_ARTIFACT".to_string(),
            file.path().to_string_lossy().into_owned(),
        )],
        cwd: cwd.to_path_buf(),
        timeout,
    };
    let out = match run(spec).await {
        Ok(out) => out,
        Err(e) => return Verdict::fatal(format!("cannot run `{shown}` in {}: {e}", cwd.display())),
    };
    drop(file);
    if out.timed_out {
        let mut feedback = format!(
            "`{shown}` ran out of time: it did not finish within {} and was stopped",
            show(timeout)
        );
        if !(out.stdout.trim().is_empty() && out.stderr.trim().is_empty()) {
            feedback.push_str(&format!("; its last output:\n{}", output_tail(&out)));
        }
        return Verdict::fail(feedback);
    }
    match out.status {
        Some(0) => Verdict::Pass,
        Some(n @ (126 | 127)) => Verdict::fatal(format!(
            "`{shown}` could not run (status {n}: {}):\n{}",
            if n == 127 {
                "command not found"
            } else {
                "not executable"
            },
            output_tail(&out)
        )),
        Some(n) => Verdict::fail(format!(
            "`{shown}` exited with status {n}:\n{}",
            output_tail(&out)
        )),
        None => Verdict::fail(format!(
            "`{shown}` was killed by a signal:\n{}",
            output_tail(&out)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(command: &str) -> Spec {
        Spec {
            command: command.to_string(),
            stdin: Vec::new(),
            env: Vec::new(),
            cwd: std::env::temp_dir(),
            timeout: Duration::from_secs(20),
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
            command_guard(ok, "a needle here", t, &cwd()).await,
            Verdict::Pass
        );
        match command_guard(ok, "nothing", t, &cwd()).await {
            Verdict::Fail(f) => assert_eq!(f, format!("`{ok}` exited with status 1:\n(no output)")),
            other => panic!("{other:?}"),
        }
        let noisy = "echo 'line one'; echo 'assertion failed: x == 2' >&2; exit 2";
        match command_guard(noisy, "x", t, &cwd()).await {
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
        match command_guard("true", "x", Duration::from_secs(20), missing).await {
            Verdict::Fatal(f) => assert!(f.starts_with("cannot run `true` in /no/such/dir"), "{f}"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn the_artifact_file_is_removed_afterwards() {
        let report = "echo \"$GUARDFLOW_ARTIFACT\" >&2; exit 1";
        let f = command_guard(report, "secret", Duration::from_secs(20), &cwd()).await;
        let path = f.feedback().lines().last().unwrap_or_default().to_string();
        assert!(path.contains("guardflow-artifact-"), "{f:?}");
        assert!(!Path::new(&path).exists());
        // multi-line commands are shown by their first line
        let f = command_guard("false\n# more", "x", Duration::from_secs(20), &cwd()).await;
        assert!(
            f.feedback().starts_with("`false…` exited with status 1"),
            "{f:?}"
        );
    }
}
