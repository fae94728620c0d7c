//! Helpers shared by the test modules.

use std::path::{Path, PathBuf};

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
