//! Helpers shared by the test modules.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use guardflow::check::{self, Checked};
use guardflow::diagnostics;

/// Every `.guardflow` file directly in `dir`, sorted.
pub fn guardflow_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "guardflow"))
        .collect();
    files.sort();
    files
}

/// Checks a file from disk, named by its path relative to the crate.
pub fn check_path(path: &Path) -> Checked {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    check::check_source(&path.to_string_lossy(), &text)
}

/// Every finding rendered without colour, as `guardflow check` prints it.
pub fn render_all(checked: &Checked) -> String {
    checked
        .diagnostics
        .iter()
        .map(|d| diagnostics::render(d, &checked.sources, false))
        .collect()
}

/// The path of the built `guardflow` binary.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_guardflow"))
}

/// The binary, with its runs recorded in a fresh store under the target
/// directory: a test never writes into the repository's stores (such as
/// `examples/.guardflow`).
pub fn guardflow() -> std::process::Command {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let store = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("runs-{}-{n}", std::process::id()))
        .join("runs.db");
    let mut cmd = std::process::Command::new(bin());
    cmd.env("GUARDFLOW_STORE", store);
    cmd
}

/// The pid a program wrote (`echo $$ > FILE`), once the line is complete;
/// waits up to 10 s for it.
pub fn wait_for_pid(file: &Path) -> Option<String> {
    for _ in 0..1000 {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        if text.ends_with('\n') {
            return Some(text.trim().to_string());
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    None
}

/// The pid of a process whose command line is `argv`; waits up to 10 s
/// for it.
pub fn wait_for_process(argv: &[&str]) -> Option<String> {
    let want: Vec<u8> = argv.iter().flat_map(|a| a.bytes().chain([0])).collect();
    for _ in 0..1000 {
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            if std::fs::read(e.path().join("cmdline")).is_ok_and(|c| c == want) {
                return Some(e.file_name().to_string_lossy().into_owned());
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    None
}

/// Fails unless process `pid` ends (or is a zombie nobody reaped yet)
/// within 5 s: SIGKILL lands asynchronously.
pub fn assert_process_ends(pid: &str, what: &str) {
    let mut stat = String::new();
    for _ in 0..500 {
        stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat.rsplit(") ").next().and_then(|s| s.chars().next());
        if matches!(state, None | Some('Z') | Some('X')) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("{what} {pid} still runs: {stat}");
}

/// A scripted model server on loopback.
pub mod model_server;

/// A real headless browser (Chromium over the DevTools protocol).
pub mod browser;

/// What a run printed.
pub struct Ran {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// The `attempt` events of a `--json` run.
    pub fn attempts(&self) -> Vec<serde_json::Value> {
        self.events()
            .into_iter()
            .filter(|e| e["event"] == "attempt")
            .collect()
    }

    pub fn events(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

/// Runs `cmd` to its end, killing it (and failing) after `limit`.
pub fn run_bounded(cmd: Command, limit: Duration) -> Ran {
    run_bounded_input(cmd, None, limit)
}

/// Like [`run_bounded`], with `input` piped to standard input (then
/// closed); `None` gives no standard input at all.
pub fn run_bounded_input(mut cmd: Command, input: Option<&str>, limit: Duration) -> Ran {
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawns guardflow");
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        let text = text.to_string();
        std::thread::spawn(move || {
            use std::io::Write;
            let _ = stdin.write_all(text.as_bytes());
        });
    }
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let o = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let e = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("waits") {
            break s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("guardflow still ran after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ran {
        code: status.code(),
        stdout: o.join().unwrap_or_default(),
        stderr: e.join().unwrap_or_default(),
    }
}

/// Resumes run `id` (a lock this process let go while a program of
/// another test held a copy of it is waited for by the store).
pub fn resume_run(
    db: &std::path::Path,
    id: &str,
) -> (
    guardflow::store::RunMeta,
    guardflow::runtime::Resume,
    guardflow::store::Recorder,
) {
    guardflow::store::Store::open(db)
        .and_then(|s| s.resume_run(id))
        .unwrap_or_else(|e| panic!("resume: {e}"))
}
