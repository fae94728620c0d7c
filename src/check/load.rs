//! Loading a program: the root file, every file it `use`s (transitively),
//! and the standard library, each parsed once.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::error::CheckError;
use crate::source::{FileId, SourceMap};
use crate::stdlib;
use crate::syntax::{self, ast, SyntaxError};

/// Where the text of `use "…"` files comes from.
pub trait Loader {
    /// Reads `path`; the error says why it cannot be read.
    fn read(&mut self, path: &Path) -> Result<String, String>;
}

/// Reads files from the file system.
pub struct FsLoader;

impl Loader for FsLoader {
    fn read(&mut self, path: &Path) -> Result<String, String> {
        read_text(path, MAX_SOURCE_BYTES)
    }
}

/// The largest source file read (a root, a `use`d file, `:load`, `fmt`):
/// 8 MiB, far beyond any hand-written workflow.
pub const MAX_SOURCE_BYTES: u64 = 8 << 20;

/// The largest data file read (a `file()`/`folder()` input, `--input
/// NAME=@FILE`, a replay recording): 64 MiB.
pub const MAX_DATA_BYTES: u64 = 64 << 20;

/// Reads a file as UTF-8 text, at most `cap` bytes. Only a regular file
/// is read: a directory, device (`/dev/zero`), named pipe or socket is
/// refused before anything is read, so no input can hang the reader or
/// grow it without bound. The error is the reason in words.
pub fn read_text(path: &Path, cap: u64) -> Result<String, String> {
    let bytes = read_bytes(path, cap)?;
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "the file is not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })
}

/// [`read_text`] without the UTF-8 check.
pub fn read_bytes(path: &Path, cap: u64) -> Result<Vec<u8>, String> {
    use std::io::Read;
    // the kind is looked at before opening: opening a FIFO for reading
    // waits for a writer
    let meta = std::fs::metadata(path).map_err(|e| io_reason(&e))?;
    not_regular(&meta.file_type()).map_or(Ok(()), Err)?;
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // should the path have been replaced by a FIFO since: do not wait
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path).map_err(|e| io_reason(&e))?;
    // what was opened is what is read: checked again on the handle
    let meta = file.metadata().map_err(|e| io_reason(&e))?;
    not_regular(&meta.file_type()).map_or(Ok(()), Err)?;
    let too_big = |len: u64| {
        format!(
            "the file is {} bytes, more than the limit of {} MiB",
            len,
            cap >> 20
        )
    };
    if meta.len() > cap {
        return Err(too_big(meta.len()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // a file that grows while it is read stops at the limit
    file.take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| io_reason(&e))?;
    if bytes.len() as u64 > cap {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes)
}

/// Why a file of this kind is not read, or `None` for a regular file.
fn not_regular(kind: &std::fs::FileType) -> Option<String> {
    if kind.is_file() {
        return None;
    }
    let what = if kind.is_dir() {
        "a directory"
    } else {
        kind_name(kind)
    };
    Some(format!("it is {what}, not a regular file"))
}

#[cfg(unix)]
fn kind_name(kind: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_fifo() {
        "a named pipe (FIFO)"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else {
        "a special file"
    }
}

#[cfg(not(unix))]
fn kind_name(_: &std::fs::FileType) -> &'static str {
    "a special file"
}

/// An I/O error in words, without the OS error number.
pub fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => {
            let s = e.to_string();
            match s.find(" (os error") {
                Some(i) => s[..i].to_string(),
                None => s,
            }
        }
    }
}

/// Every parsed file of one program.
pub struct Loaded {
    pub sources: SourceMap,
    /// (file, its AST, whether it is part of the standard library)
    pub files: Vec<(FileId, ast::File, bool)>,
    pub syntax_errors: Vec<SyntaxError>,
    pub load_errors: Vec<CheckError>,
}

/// Loads the root (already read) and what it uses. `host` holds the
/// `extern` declarations of what an embedding host registered; like the
/// prelude, they need no `use`.
pub fn load(root_name: &str, root_text: &str, loader: &mut dyn Loader, host: &str) -> Loaded {
    let mut loaded = Loaded {
        sources: SourceMap::new(),
        files: Vec::new(),
        syntax_errors: Vec::new(),
        load_errors: Vec::new(),
    };
    // the standard library is parsed once per process; its files always
    // take the first file ids, so the cached spans stay valid
    for (i, (name, text)) in stdlib::FILES.iter().enumerate() {
        let id = loaded.sources.add(*name, *text);
        debug_assert_eq!(id, FileId(i as u32));
        let (file, errors) = &std_asts()[i];
        loaded.syntax_errors.extend(errors.iter().cloned());
        loaded.files.push((id, file.clone(), true));
    }
    if !host.is_empty() {
        let id = loaded.sources.add(stdlib::HOST_PRELUDE, host);
        let (file, errors) = syntax::parse(id, host);
        loaded.syntax_errors.extend(errors);
        loaded.files.push((id, file, true));
    }
    let mut seen: HashMap<PathBuf, FileId> = HashMap::new();
    let root_path = PathBuf::from(root_name);
    let root = loaded.sources.add(root_name, root_text);
    seen.insert(normalize(&root_path), root);
    let mut queue = vec![(root, root_path)];
    while let Some((id, path)) = queue.pop() {
        let text = loaded.sources.get(id).text.clone();
        let (file, errors) = syntax::parse(id, &text);
        loaded.syntax_errors.extend(errors);
        for item in &file.items {
            let ast::ItemKind::Use(ast::Use::File(lit)) = &item.kind else {
                continue;
            };
            let Some(rel) = lit.as_plain() else { continue };
            let target = path.parent().unwrap_or(Path::new("")).join(&rel);
            let key = normalize(&target);
            if seen.contains_key(&key) {
                continue;
            }
            match loader.read(&target) {
                Ok(text) => {
                    let new = loaded.sources.add(target.to_string_lossy(), text);
                    seen.insert(key, new);
                    queue.push((new, target));
                }
                Err(reason) => loaded.load_errors.push(CheckError::ImportUnreadable {
                    path: rel,
                    span: lit.span,
                    reason,
                }),
            }
        }
        loaded.files.push((id, file, false));
    }
    loaded
}

fn std_asts() -> &'static [(ast::File, Vec<SyntaxError>)] {
    static ASTS: std::sync::OnceLock<Vec<(ast::File, Vec<SyntaxError>)>> =
        std::sync::OnceLock::new();
    ASTS.get_or_init(|| {
        stdlib::FILES
            .iter()
            .enumerate()
            .map(|(i, (_, text))| syntax::parse(FileId(i as u32), text))
            .collect()
    })
}

/// A path with `.` and `a/..` removed, so one file is loaded once.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_within_the_cap_are_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("a.guardflow");
        std::fs::write(&file, "type T = Text\n").expect("write");
        assert_eq!(read_text(&file, 100).as_deref(), Ok("type T = Text\n"));
        let e = read_text(&file, 4).unwrap_err();
        assert!(e.contains("14 bytes, more than the limit"), "{e}");
        let e = read_text(dir.path(), MAX_SOURCE_BYTES).unwrap_err();
        assert_eq!(e, "it is a directory, not a regular file");
        let e = read_text(Path::new("/dev/zero"), MAX_SOURCE_BYTES).unwrap_err();
        assert_eq!(e, "it is a device, not a regular file");
        let socket = dir.path().join("s.guardflow");
        let _listener = std::os::unix::net::UnixListener::bind(&socket).expect("bind");
        let e = read_text(&socket, MAX_SOURCE_BYTES).unwrap_err();
        assert_eq!(e, "it is a socket, not a regular file");
        let e = read_text(&dir.path().join("missing"), MAX_SOURCE_BYTES).unwrap_err();
        assert_eq!(e, "no such file");
        std::fs::write(&file, [b'a', 0xff]).expect("write");
        let e = read_text(&file, 100).unwrap_err();
        assert!(e.contains("not UTF-8"), "{e}");
    }
}
