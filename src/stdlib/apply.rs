//! The `write_file` effect: applies an accepted artifact to a file of the
//! workspace (the workflow's directory), atomically, confined to the
//! workspace, idempotently, with its SHA-256 in the `Outcome` (so in the
//! run store), and optionally commits that one path with git.
//!
//! Confinement does not trust the path's text nor the file system's
//! state: the path is fixed text the workflow's author wrote (`Program`),
//! checked lexically (relative, no `..`, not inside `.git` or
//! `.guardflow`), and then resolved one component at a time from a
//! descriptor of the workspace with `openat(…, O_NOFOLLOW | O_DIRECTORY)`,
//! so a symbolic link anywhere on the way, placed there before or swapped
//! in while guardflow works, is refused instead of followed. The file is
//! written to a new temporary file in its directory (`O_EXCL |
//! O_NOFOLLOW`), flushed with `fsync`, renamed over the target with
//! `renameat` (which replaces a name, never follows one) and the
//! directory is flushed: a reader sees the old content or the new, never
//! a part. A target that already holds the content is left untouched.
//!
//! The commit runs `git` through the sandbox (`process::run`), which may
//! write only the workspace and the repository's git directories.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use serde_json::json;

use super::process;
use super::sandbox::{Confine, Scratch};
use crate::runtime::registry::EffectCall;
use crate::runtime::Value;

/// The largest existing file compared with the artifact before writing
/// (a larger one differs from any artifact guardflow holds anyway).
const MAX_COMPARE: u64 = 1 << 30;

/// Names a path may not pass through: the repository's and guardflow's
/// own records.
const RESERVED: [&str; 2] = [".git", ".guardflow"];

/// What [`apply`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The path written, relative to the workspace, `/`-separated.
    pub path: String,
    /// The content's SHA-256 (hex).
    pub sha256: String,
    pub bytes: usize,
    /// False when the file already held exactly this content.
    pub changed: bool,
}

/// Checks `path` lexically and gives its components: relative to the
/// workspace (an absolute path only when it lies inside `workspace`,
/// the canonical workspace), no `..`, no NUL, not empty, not a
/// directory, not through `.git` or `.guardflow`.
pub fn confined_components(path: &str, workspace: &Path) -> Result<Vec<String>, String> {
    let shown = path.escape_debug().to_string();
    if path.trim().is_empty() {
        return Err("the path is empty".into());
    }
    if path.contains('\0') {
        return Err(format!("`{shown}` contains a NUL byte"));
    }
    if path.ends_with('/') {
        return Err(format!("`{shown}` names a directory, not a file"));
    }
    let p = Path::new(path);
    let relative = if p.is_absolute() {
        p.strip_prefix(workspace).map_err(|_| {
            format!(
                "`{shown}` is outside the workspace `{}`; guardflow writes only inside it",
                workspace.display()
            )
        })?
    } else {
        p
    };
    let mut parts = Vec::new();
    for c in relative.components() {
        match c {
            Component::CurDir => {}
            Component::Normal(s) => {
                let s = s.to_string_lossy().into_owned();
                if RESERVED.contains(&s.as_str()) {
                    return Err(format!(
                        "`{shown}` is inside `{s}`, which guardflow does not write"
                    ));
                }
                parts.push(s);
            }
            Component::ParentDir => {
                return Err(format!(
                    "`{shown}` goes up with `..`; the path must stay inside the workspace"
                ))
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!("`{shown}` is not a path inside the workspace"))
            }
        }
    }
    if parts.is_empty() {
        return Err(format!("`{shown}` names the workspace, not a file in it"));
    }
    Ok(parts)
}

fn cstring(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL byte"))
}

fn last_error<T>(r: libc::c_int) -> io::Result<T>
where
    T: Default,
{
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(T::default())
    }
}

/// `openat(dir, name, flags, mode)` as an owned descriptor.
fn open_at(
    dir: &OwnedFd,
    name: &str,
    flags: libc::c_int,
    mode: libc::mode_t,
) -> io::Result<OwnedFd> {
    let c = cstring(name)?;
    // SAFETY: `c` is a valid NUL-terminated string and `dir` an open
    // descriptor; the result is checked before it is owned.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            c.as_ptr(),
            flags | libc::O_CLOEXEC,
            libc::c_uint::from(mode),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)`; `None` when it does not exist.
fn stat_at(dir: &OwnedFd, name: &str) -> io::Result<Option<libc::stat>> {
    let c = cstring(name)?;
    // SAFETY: an all-zero `stat` is a valid value of the plain C struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid descriptor, string and out-pointer.
    let r = unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            c.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if r < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::NotFound {
            Ok(None)
        } else {
            Err(e)
        };
    }
    Ok(Some(st))
}

fn kind_of(st: &libc::stat) -> libc::mode_t {
    st.st_mode & libc::S_IFMT
}

/// Opens directory `name` under `dir` without following a link, creating
/// it when it does not exist.
fn enter(dir: &OwnedFd, name: &str, shown: &str) -> Result<OwnedFd, String> {
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW;
    match open_at(dir, name, flags, 0) {
        Ok(fd) => return Ok(fd),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(refusal(dir, name, shown, &e)),
    }
    let c = cstring(name).map_err(|e| e.to_string())?;
    // SAFETY: valid descriptor and string.
    let r = unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), 0o777) };
    if let Err(e) = last_error::<()>(r) {
        if e.kind() != io::ErrorKind::AlreadyExists {
            return Err(format!(
                "cannot create the directory `{name}` of `{shown}`: {e}"
            ));
        }
    }
    open_at(dir, name, flags, 0).map_err(|e| refusal(dir, name, shown, &e))
}

/// Why component `name` of `shown` could not be opened as a directory.
fn refusal(dir: &OwnedFd, name: &str, shown: &str, e: &io::Error) -> String {
    let link = stat_at(dir, name)
        .ok()
        .flatten()
        .is_some_and(|st| kind_of(&st) == libc::S_IFLNK);
    if link {
        format!(
            "`{shown}` passes through `{name}`, a symbolic link; guardflow does not follow links \
             when it writes, so it cannot be led outside the workspace"
        )
    } else if e.raw_os_error() == Some(libc::ENOTDIR) {
        format!("`{shown}` passes through `{name}`, which is not a directory")
    } else {
        format!(
            "cannot open `{name}` of `{shown}`: {}",
            crate::check::io_reason(e)
        )
    }
}

/// Whether regular file `name` under `dir` holds exactly `content`.
fn same_content(dir: &OwnedFd, name: &str, content: &[u8], size: u64) -> bool {
    if size != content.len() as u64 || size > MAX_COMPARE {
        return false;
    }
    let Ok(fd) = open_at(dir, name, libc::O_RDONLY | libc::O_NOFOLLOW, 0) else {
        return false;
    };
    let mut file = std::fs::File::from(fd);
    let mut existing = Vec::with_capacity(content.len());
    let read = io::Read::read_to_end(
        &mut io::Read::take(&mut file, content.len() as u64 + 1),
        &mut existing,
    );
    read.is_ok() && existing == content
}

/// Writes `content` to `path` inside `workspace` as described in the
/// module's comment; an `Err` says why nothing was written.
pub fn apply(workspace: &Path, path: &str, content: &[u8]) -> Result<Applied, String> {
    let root = workspace.canonicalize().map_err(|e| {
        format!(
            "the workspace `{}` cannot be used: {}",
            workspace.display(),
            crate::check::io_reason(&e)
        )
    })?;
    let parts = confined_components(path, &root)?;
    let shown = parts.join("/");
    let root_c = CString::new(root.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
    // SAFETY: a valid NUL-terminated path; the result is checked.
    let fd = unsafe {
        libc::open(
            root_c.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(format!(
            "the workspace `{}` cannot be opened: {}",
            root.display(),
            io::Error::last_os_error()
        ));
    }
    // SAFETY: just opened, owned by nobody else.
    let mut dir = unsafe { OwnedFd::from_raw_fd(fd) };
    let (name, dirs) = parts.split_last().ok_or("the path is empty")?;
    for d in dirs {
        dir = enter(&dir, d, &shown)?;
    }
    let sha256 = crate::store::content_hash(content);
    let mut mode: libc::mode_t = 0o666;
    match stat_at(&dir, name).map_err(|e| format!("cannot look at `{shown}`: {e}"))? {
        None => {}
        Some(st) => match kind_of(&st) {
            libc::S_IFREG => {
                if same_content(&dir, name, content, st.st_size as u64) {
                    return Ok(Applied {
                        path: shown,
                        sha256,
                        bytes: content.len(),
                        changed: false,
                    });
                }
                mode = st.st_mode & 0o7777;
            }
            libc::S_IFLNK => {
                return Err(format!(
                    "`{shown}` is a symbolic link; guardflow does not write through links, so it \
                     cannot be led outside the workspace"
                ))
            }
            libc::S_IFDIR => return Err(format!("`{shown}` is a directory")),
            _ => return Err(format!("`{shown}` is not a regular file")),
        },
    }
    let tmp = format!(
        ".{name}.guardflow-{}-{:x}",
        std::process::id(),
        rand_suffix()
    );
    let written = (|| -> io::Result<()> {
        let fd = open_at(
            &dir,
            &tmp,
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW,
            mode,
        )?;
        let mut file = std::fs::File::from(fd);
        io::Write::write_all(&mut file, content)?;
        file.sync_all()?;
        let (t, n) = (cstring(&tmp)?, cstring(name)?);
        // SAFETY: valid descriptors and strings.
        let r = unsafe { libc::renameat(dir.as_raw_fd(), t.as_ptr(), dir.as_raw_fd(), n.as_ptr()) };
        last_error::<()>(r)?;
        // SAFETY: a valid descriptor.
        last_error::<()>(unsafe { libc::fsync(dir.as_raw_fd()) })
    })();
    if let Err(e) = written {
        if let Ok(t) = cstring(&tmp) {
            // SAFETY: valid descriptor and string; a missing file is fine.
            unsafe { libc::unlinkat(dir.as_raw_fd(), t.as_ptr(), 0) };
        }
        return Err(format!(
            "cannot write `{shown}`: {}",
            crate::check::io_reason(&e)
        ));
    }
    Ok(Applied {
        path: shown,
        sha256,
        bytes: content.len(),
        changed: true,
    })
}

/// A suffix that makes two temporary names of one process differ.
fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64);
    (t << 16) ^ NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The repository around `dir`: its top-level directory and the git
/// directories a commit writes (the `.git` directory, or for a linked
/// worktree its own and the common one).
pub fn repository(dir: &Path) -> Option<(PathBuf, Vec<PathBuf>)> {
    let mut at = Some(dir);
    while let Some(d) = at {
        let dot = d.join(".git");
        let meta = std::fs::symlink_metadata(&dot).ok();
        if meta.as_ref().is_some_and(|m| m.is_dir()) {
            return Some((d.to_path_buf(), vec![dot]));
        }
        if meta.as_ref().is_some_and(|m| m.is_file()) {
            let text = crate::check::read_text(&dot, 4096).ok()?;
            let gitdir = text.lines().find_map(|l| l.strip_prefix("gitdir:"))?.trim();
            let gitdir = d.join(gitdir);
            let mut dirs = vec![gitdir.clone()];
            // capped and regular files only, as every file guardflow reads
            if let Ok(common) = crate::check::read_text(&gitdir.join("commondir"), 4096) {
                dirs.push(gitdir.join(common.trim()));
            }
            return Some((d.to_path_buf(), dirs));
        }
        at = d.parent();
    }
    None
}

/// Runs `git ARGS` in `cwd` through the sandbox, writing only `write`.
pub async fn git(
    cwd: &Path,
    args: &[&str],
    write: &[PathBuf],
    timeout: Duration,
) -> Result<process::Output, String> {
    let mut confine = Confine {
        env: [
            "GIT_AUTHOR_NAME",
            "GIT_AUTHOR_EMAIL",
            "GIT_COMMITTER_NAME",
            "GIT_COMMITTER_EMAIL",
        ]
        .map(String::from)
        .to_vec(),
        ..Confine::default()
    };
    confine.write.extend(write.iter().cloned());
    // git reads the repository's files (it is not a model's program)
    confine.read.push(cwd.to_path_buf());
    let scratch = Scratch::new("guardflow-git-", &confine, timeout)?;
    let mut argv: Vec<String> = [
        "git",
        "-c",
        "user.name=guardflow",
        "-c",
        "user.email=guardflow@localhost",
        "-c",
        "commit.gpgsign=false",
    ]
    .map(String::from)
    .to_vec();
    argv.extend(args.iter().map(|a| a.to_string()));
    let spec = process::Spec {
        command: String::new(),
        argv: Some(argv),
        stdin: Vec::new(),
        env: vec![("GIT_TERMINAL_PROMPT".into(), "0".into())],
        cwd: cwd.to_path_buf(),
        timeout,
        sandbox: scratch.policy,
        max_output: confine.max_output,
    };
    let out = process::run(spec).await.map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            "`git` was not found on PATH".to_string()
        } else {
            format!("cannot start `git`: {e}")
        }
    })?;
    if out.timed_out {
        return Err(format!(
            "`git {}` did not finish within {}",
            args.first().copied().unwrap_or(""),
            crate::runtime::guard::show_duration(timeout)
        ));
    }
    Ok(out)
}

/// Commits `rel` (relative to the repository's top level) alone: staged,
/// and committed with `--only` so nothing else staged goes with it.
/// `Ok(None)` when the path has no change to commit.
async fn commit(
    top: &Path,
    git_dirs: &[PathBuf],
    workspace: &Path,
    rel: &str,
    message: &str,
    timeout: Duration,
) -> Result<Result<Option<String>, process::Output>, String> {
    let mut write = git_dirs.to_vec();
    write.push(workspace.to_path_buf());
    let add = git(top, &["add", "--", rel], &write, timeout).await?;
    if add.status != Some(0) {
        return Ok(Err(add));
    }
    let diff = git(
        top,
        &["diff", "--cached", "--quiet", "--", rel],
        &write,
        timeout,
    )
    .await?;
    if diff.status == Some(0) {
        return Ok(Ok(None));
    }
    let args = ["commit", "--quiet", "--only", "-m", message, "--", rel];
    let done = git(top, &args, &write, timeout).await?;
    if done.status != Some(0) {
        return Ok(Err(done));
    }
    let head = git(top, &["rev-parse", "HEAD"], &write, timeout).await?;
    Ok(Ok(Some(head.stdout.trim().to_string())))
}

/// The `write_file(path, commit, timeout)` effect: writes the artifact
/// (with a final line break when it has none) to `path` and, when `commit` is not empty, commits that path with
/// `commit` as the message. The outcome is an `Outcome` (`command`,
/// `exit_code`, `stdout`, `stderr`) with `path`, `sha256`, `bytes`,
/// `changed` and `commit` (the new commit's hash, or empty).
pub async fn write_file(call: EffectCall) -> Result<Value, String> {
    let path = call.args.first().and_then(Value::as_str).unwrap_or("");
    let message = call
        .args
        .get(1)
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim();
    let timeout = call
        .args
        .get(2)
        .and_then(Value::as_u64)
        .map_or(Duration::from_secs(60), Duration::from_millis);
    let workdir = call.workdir.to_path_buf();
    let mut text = call.artifact.clone();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    let (p, content) = (path.to_string(), text.into_bytes());
    let applied = tokio::task::spawn_blocking(move || apply(&workdir, &p, &content))
        .await
        .map_err(|e| format!("the write stopped: {e}"))??;
    let command = format!("write_file {}", applied.path);
    let mut stdout = if applied.changed {
        format!(
            "wrote {} ({} bytes, sha256 {})\n",
            applied.path, applied.bytes, applied.sha256
        )
    } else {
        format!(
            "{} unchanged ({} bytes, sha256 {})\n",
            applied.path, applied.bytes, applied.sha256
        )
    };
    let (mut exit_code, mut stderr, mut hash) = (0i64, String::new(), String::new());
    if !message.is_empty() {
        let workspace = call
            .workdir
            .canonicalize()
            .map_err(|e| format!("the workspace cannot be used: {e}"))?;
        let Some((top, git_dirs)) = repository(&workspace) else {
            return Err(format!(
                "`commit:` asks for a git commit, but the workspace `{}` is in no git repository",
                workspace.display()
            ));
        };
        let under = workspace.strip_prefix(&top).unwrap_or(Path::new(""));
        let rel = under.join(&applied.path).to_string_lossy().into_owned();
        match commit(&top, &git_dirs, &workspace, &rel, message, timeout).await? {
            Ok(Some(h)) => {
                stdout.push_str(&format!("committed {} as {h}\n", applied.path));
                hash = h;
            }
            Ok(None) => stdout.push_str(&format!("{} has nothing to commit\n", applied.path)),
            Err(out) => {
                exit_code = out.status.map_or(-1, i64::from);
                stderr = format!(
                    "guardflow: git could not commit {}:\n{}{}",
                    applied.path, out.stderr, out.stdout
                );
            }
        }
    }
    Ok(json!({
        "command": command,
        "exit_code": exit_code,
        "stdout": stdout,
        "stderr": stderr,
        "path": applied.path,
        "sha256": applied.sha256,
        "bytes": applied.bytes,
        "changed": applied.changed,
        "commit": hash,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn refused(dir: &Path, path: &str) -> String {
        apply(dir, path, b"x").expect_err(path)
    }

    #[test]
    fn paths_are_checked_before_anything_is_opened() {
        let ws = Path::new("/work/ws");
        assert_eq!(
            confined_components("./src/./a.py", ws).expect("ok"),
            ["src", "a.py"]
        );
        assert_eq!(
            confined_components("/work/ws/a.py", ws).expect("ok"),
            ["a.py"]
        );
        for (bad, why) in [
            ("../x", "goes up with `..`"),
            ("src/../../x", "goes up"),
            ("/etc/x", "outside the workspace"),
            ("/work/wsx/a", "outside the workspace"),
            ("", "empty"),
            (".", "names the workspace"),
            ("src/", "names a directory"),
            (".git/hooks/pre-commit", "inside `.git`"),
            ("a/.guardflow/runs.db", "inside `.guardflow`"),
            ("a\0b", "NUL"),
        ] {
            let e = confined_components(bad, ws).expect_err(bad);
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn writes_atomically_and_leaves_equal_content_untouched() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = apply(dir.path(), "src/pkg/a.py", b"print(1)\n").expect("writes");
        assert!(a.changed);
        assert_eq!(a.path, "src/pkg/a.py");
        assert_eq!(a.sha256, crate::store::content_hash(b"print(1)\n"));
        let file = dir.path().join("src/pkg/a.py");
        assert_eq!(std::fs::read(&file).expect("reads"), b"print(1)\n");
        let ino = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&file).expect("meta"));
        let again = apply(dir.path(), "src/pkg/a.py", b"print(1)\n").expect("again");
        assert!(!again.changed);
        let ino2 = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&file).expect("meta"));
        assert_eq!(ino, ino2, "an unchanged file was rewritten");
        let b = apply(dir.path(), "src/pkg/a.py", b"print(2)\n").expect("rewrites");
        assert!(b.changed);
        assert_eq!(std::fs::read(&file).expect("reads"), b"print(2)\n");
        // no temporary file is left beside it
        let names: Vec<_> = std::fs::read_dir(dir.path().join("src/pkg"))
            .expect("lists")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["a.py"]);
    }

    #[test]
    fn links_are_refused_wherever_they_are() {
        let outside = tempfile::tempdir().expect("tempdir");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(outside.path().join("target"), "keep").expect("writes");
        symlink(outside.path().join("target"), dir.path().join("link.txt")).expect("link");
        symlink(outside.path(), dir.path().join("out")).expect("link");
        let e = refused(dir.path(), "link.txt");
        assert!(e.contains("is a symbolic link"), "{e}");
        let e = refused(dir.path(), "out/new.txt");
        assert!(e.contains("passes through `out`, a symbolic link"), "{e}");
        assert_eq!(
            std::fs::read_to_string(outside.path().join("target")).expect("reads"),
            "keep"
        );
        assert!(!outside.path().join("new.txt").exists());
        std::fs::write(dir.path().join("plain"), "").expect("writes");
        let e = refused(dir.path(), "plain/x");
        assert!(e.contains("not a directory"), "{e}");
        std::fs::create_dir(dir.path().join("d")).expect("mkdir");
        let e = refused(dir.path(), "d");
        assert!(e.contains("is a directory"), "{e}");
    }
}
