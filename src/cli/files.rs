//! Reading the files named on the command line.

use std::path::{Path, PathBuf};

use crate::check::{io_reason, read_bytes, MAX_SOURCE_BYTES};

/// Expands the paths given: a file stays, a directory becomes every
/// `.guardflow` file below it, sorted.
pub fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path)
            .map_err(|e| format!("{}: {}", path.display(), io_reason(&e)))?;
        if meta.is_dir() {
            let before = out.len();
            walk(path, &mut out).map_err(|e| format!("{}: {}", path.display(), io_reason(&e)))?;
            if out.len() == before {
                return Err(format!(
                    "{}: no .guardflow files in this directory",
                    path.display()
                ));
            }
        } else {
            out.push(path.clone());
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        if entry.file_type()?.is_dir() {
            walk(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "guardflow") {
            out.push(path);
        }
    }
    Ok(())
}

/// Reads a source file as UTF-8 text; the error is a full sentence.
pub fn read_source(path: &Path) -> Result<String, String> {
    let text = read_text(path)?;
    if text.trim().is_empty() {
        return Err(format!(
            "{}: the file is empty; nothing to check",
            path.display()
        ));
    }
    Ok(text)
}

/// Reads a source file as UTF-8 text, empty or not; the error is a full
/// sentence. Only a regular file of at most [`MAX_SOURCE_BYTES`] is read.
pub fn read_text(path: &Path) -> Result<String, String> {
    let bytes = read_bytes(path, MAX_SOURCE_BYTES)
        .map_err(|reason| format!("{}: {reason}", path.display()))?;
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "{}: not UTF-8 text (invalid byte at offset {}); guardflow files are UTF-8",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })
}
