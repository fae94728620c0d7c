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
