//! Where a relative path a workflow names resolves: in the directory of
//! the file that names it. A `cmd("sh gen.sh")`, `replay("f.jsonl")`,
//! `command(…)` or `file("spec.md")` written in `lib/shared.guardflow`
//! means `lib/gen.sh`, whichever file `use`s it and wherever the REPL
//! loaded it from. The standard library, the host's declarations and a
//! root without a directory (the REPL's typed items) resolve in the run's
//! working directory (the root workflow's).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::check::ir::Program;
use crate::source::FileId;

/// The directory each file of `program` resolves its paths in, by
/// `FileId`; `workdir` for the standard library, host declarations and
/// names that are not paths (`<repl>`).
pub fn file_dirs(program: &Program, workdir: &Path) -> Vec<Arc<Path>> {
    let root: Arc<Path> = Arc::from(workdir);
    program
        .files
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let library = i < crate::stdlib::FILES.len() || name == crate::stdlib::HOST_PRELUDE;
            if library || name.starts_with('<') {
                return root.clone();
            }
            match Path::new(name).parent() {
                Some(p) if !p.as_os_str().is_empty() => Arc::from(p),
                _ => Arc::from(PathBuf::from(".").as_path()),
            }
        })
        .collect()
}

/// The directory of `file` in `dirs` (the run's working directory for an
/// id it does not know).
pub fn dir_of(dirs: &[Arc<Path>], workdir: &Arc<Path>, file: FileId) -> Arc<Path> {
    dirs.get(file.0 as usize)
        .cloned()
        .unwrap_or_else(|| workdir.clone())
}
