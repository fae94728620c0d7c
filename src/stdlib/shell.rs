//! The `shell` effect: runs an accepted command with `sh -c` in the
//! workspace (the workflow's directory), with a timeout, in an
//! environment cleared but for [`ENV_ALLOW`], and reports the `Outcome`.
//!
//! Before anything runs, the command is read as a shell would split it
//! and refused when it could reach outside the workspace: absolute paths
//! and `~`, `..` components, `cd` without a directory, variable and
//! command expansion (`$…`, backquotes), and paths through symlinks that
//! lead out of the workspace. This is a check of the command line, not a
//! sandbox: a program the command starts can still do what its user may.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use serde_json::json;

use super::process;
use crate::runtime::registry::EffectCall;
use crate::runtime::Value;

/// The variables a `shell` command sees (when set); everything else is
/// cleared.
pub const ENV_ALLOW: [&str; 9] = [
    "PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TERM", "TZ", "USER", "TMPDIR",
];

/// The exit code an `Outcome` reports when the command ran out of time
/// (as `timeout(1)` does).
pub const TIMED_OUT: i64 = 124;

/// Runs `call.command` and reports `{ command, exit_code, stdout, stderr }`.
/// An `Err` means nothing ran: the command was refused, or the shell
/// could not start.
pub async fn shell(call: EffectCall) -> Result<Value, String> {
    let timeout = call
        .args
        .first()
        .and_then(Value::as_u64)
        .map(Duration::from_millis)
        .unwrap_or(Duration::from_secs(60));
    let workspace = call.workdir.canonicalize().map_err(|e| {
        format!(
            "the workspace `{}` cannot be used: {}",
            call.workdir.display(),
            crate::check::io_reason(&e)
        )
    })?;
    confined(&call.command, &workspace)?;
    let spec = process::Spec {
        command: call.command.clone(),
        stdin: Vec::new(),
        env: vec![("PWD".into(), workspace.to_string_lossy().into_owned())],
        cwd: workspace,
        timeout,
    };
    let out = process::run_clean(spec, &ENV_ALLOW)
        .await
        .map_err(|e| format!("cannot start `sh`: {e}"))?;
    let mut stderr = out.stderr;
    let exit_code = if out.timed_out {
        if !stderr.is_empty() && !stderr.ends_with('\n') {
            stderr.push('\n');
        }
        stderr.push_str(&format!(
            "guardflow: killed after {}\n",
            crate::runtime::guard::show_duration(timeout)
        ));
        TIMED_OUT
    } else {
        out.status.map_or(-1, i64::from)
    };
    Ok(json!({
        "command": call.command,
        "exit_code": exit_code,
        "stdout": out.stdout,
        "stderr": stderr,
    }))
}

/// A token of a command line: a word (quotes removed) or an operator.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Op(char),
}

/// Splits a command line as `sh` would, far enough to see its words.
/// Refuses expansions (`$`, backquotes) outside single quotes.
fn tokens(command: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = command.chars().peekable();
    let expansion = || {
        Err("`$` and backquotes (variable and command expansion) are not allowed: they could name a path outside the workspace".to_string())
    };
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(ch) => word.push(ch),
                        None => return Err("an unclosed `'`".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('$' | '`') => return expansion(),
                        Some('\\') => {
                            if let Some(ch) = chars.next() {
                                word.push(ch);
                            }
                        }
                        Some(ch) => word.push(ch),
                        None => return Err("an unclosed `\"`".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(ch) = chars.next() {
                    word.push(ch);
                }
            }
            '$' | '`' => return expansion(),
            c if c.is_whitespace() || ";&|<>()".contains(c) => {
                if in_word {
                    out.push(Token::Word(std::mem::take(&mut word)));
                    in_word = false;
                }
                if !c.is_whitespace() {
                    out.push(Token::Op(c));
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        out.push(Token::Word(word));
    }
    Ok(out)
}

/// `Ok` when `command` names nothing outside `workspace` (canonical).
pub fn confined(command: &str, workspace: &Path) -> Result<(), String> {
    let tokens = tokens(command).map_err(|e| format!("`{command}` is refused: {e}"))?;
    let refuse = |word: &str, why: &str| Err(format!("`{command}` is refused: `{word}` {why}"));
    for (i, t) in tokens.iter().enumerate() {
        let Token::Word(word) = t else { continue };
        if word == "cd" && !matches!(tokens.get(i + 1), Some(Token::Word(_))) {
            return refuse(
                word,
                "without a directory goes to $HOME, outside the workspace",
            );
        }
        // a path may follow `=` in an option: --out=/tmp/x
        for part in std::iter::once(word.as_str()).chain(word.split('=').skip(1)) {
            if part.starts_with('/') {
                return refuse(word, "is an absolute path; name paths inside the workspace");
            }
            if part.starts_with('~') {
                return refuse(word, "names a home directory, outside the workspace");
            }
            if Path::new(part)
                .components()
                .any(|c| c == Component::ParentDir)
            {
                return refuse(word, "climbs out with `..`");
            }
            if let Some(link) = escaping_link(part, workspace) {
                return refuse(
                    word,
                    &format!(
                        "goes through the symlink `{}`, which leads outside the workspace",
                        link.display()
                    ),
                );
            }
        }
    }
    Ok(())
}

/// The first symlink on relative path `part` (or, for a glob, in the
/// directory it lists) that resolves outside `workspace`.
fn escaping_link(part: &str, workspace: &Path) -> Option<PathBuf> {
    let glob = part.find(['*', '?', '[']);
    let literal = match glob {
        Some(g) => &part[..part[..g].rfind('/').map_or(0, |s| s + 1)],
        None => part,
    };
    let mut at = workspace.to_path_buf();
    for c in Path::new(literal).components() {
        let Component::Normal(name) = c else { continue };
        at.push(name);
        if leaves(&at, workspace) {
            return Some(at.strip_prefix(workspace).unwrap_or(&at).to_path_buf());
        }
    }
    if glob.is_some() {
        for entry in std::fs::read_dir(&at).ok()?.flatten() {
            let p = entry.path();
            if leaves(&p, workspace) {
                return Some(p.strip_prefix(workspace).unwrap_or(&p).to_path_buf());
            }
        }
    }
    None
}

/// `path` is a symlink that leads outside `workspace` (or nowhere).
fn leaves(path: &Path, workspace: &Path) -> bool {
    let is_link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    is_link
        && path
            .canonicalize()
            .map_or(true, |real| !real.starts_with(workspace))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_split_as_a_shell_would() {
        assert_eq!(
            tokens("echo 'a b' \"c\"d>out;ls").expect("splits"),
            vec![
                Token::Word("echo".into()),
                Token::Word("a b".into()),
                Token::Word("cd".into()),
                Token::Op('>'),
                Token::Word("out".into()),
                Token::Op(';'),
                Token::Word("ls".into()),
            ]
        );
        assert!(tokens("echo '$HOME'").is_ok());
        assert!(tokens("echo \"$HOME\"").is_err());
        assert!(tokens("echo `id`").is_err());
        assert!(tokens("echo 'open").is_err());
    }

    #[test]
    fn paths_outside_the_workspace_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ws = dir.path().canonicalize().expect("canonical");
        std::fs::create_dir(ws.join("sub")).expect("mkdir");
        std::os::unix::fs::symlink("/etc", ws.join("out")).expect("symlink");
        std::os::unix::fs::symlink("sub", ws.join("in")).expect("symlink");
        for ok in [
            "echo hi > sub/x.txt",
            "ls in/",
            "cd sub && ls",
            "curl http://localhost:8080/health",
            "echo '$HOME'",
            "./deploy.sh 1.2",
        ] {
            assert_eq!(confined(ok, &ws), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("cat /etc/passwd", "absolute path"),
            ("cd .. && touch x", "`..`"),
            ("ls sub/../..", "`..`"),
            ("cd", "$HOME"),
            ("cd; ls", "$HOME"),
            ("ls ~", "home directory"),
            ("cat out/passwd", "symlink `out`"),
            ("ls *", "symlink `out`"),
            ("tar --directory=/tmp -x", "absolute path"),
            ("echo $HOME", "expansion"),
            ("echo hi >/tmp/x", "absolute path"),
        ] {
            let e = confined(bad, &ws).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
