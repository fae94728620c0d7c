//! The `shell` effect: runs an accepted command in the workspace (the
//! workflow's directory), with a timeout, in the sandbox, and reports the
//! `Outcome`.
//!
//! There is no shell between the model and the machine: the command is
//! split into words as a shell splits them (quotes and backslashes
//! honoured) and the program is executed with those arguments. Shell
//! syntax (`;`, `&`, `|`, `&&`, `||`, redirections, `$…`, backquotes,
//! globs, `~`, comments, newlines, `eval`) would have no meaning, so a
//! proposal that uses it is refused with feedback saying what and why.
//! Confinement does not come from reading the line: the sandbox lets the
//! program write only the workspace and its own temporary directory,
//! read only those and the system's directories, with no network.

use std::time::Duration;

use serde_json::json;

use super::process;
use super::sandbox::{Confine, Scratch};
use crate::runtime::registry::{EffectCall, REFUSED};
use crate::runtime::Value;

/// The exit code an `Outcome` reports when the command ran out of time
/// (as `timeout(1)` does).
pub const TIMED_OUT: i64 = 124;

/// Runs `call.command` and reports `{ command, exit_code, stdout, stderr }`.
/// An `Err` means nothing ran: the command was refused (the message
/// starts with [`REFUSED`]), or the workspace cannot be used.
pub async fn shell(call: EffectCall) -> Result<Value, String> {
    let timeout = call
        .args
        .first()
        .and_then(Value::as_u64)
        .map(Duration::from_millis)
        .unwrap_or(Duration::from_secs(60));
    let confine = Confine::from_args(&call.args, 1, &call.workdir);
    let workspace = call.workdir.canonicalize().map_err(|e| {
        format!(
            "the workspace `{}` cannot be used: {}",
            call.workdir.display(),
            crate::check::io_reason(&e)
        )
    })?;
    let argv = argv(&call.command).map_err(|e| format!("{REFUSED}{e}"))?;
    let mut allowed = confine.clone();
    allowed.write.push(workspace.clone());
    // the directory lives until the program has ended
    let Scratch { dir: _temp, policy } = Scratch::new("guardflow-shell-", &allowed, timeout)?;
    let spec = process::Spec {
        command: String::new(),
        argv: Some(argv.clone()),
        stdin: Vec::new(),
        env: vec![("PWD".into(), workspace.to_string_lossy().into_owned())],
        cwd: workspace,
        timeout,
        sandbox: policy,
        max_output: confine.max_output,
    };
    let out = match process::run(spec).await {
        Ok(out) => out,
        // as a shell reports a program it cannot run
        Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound) => {
            return Ok(outcome(&call.command, 127, "", &not_run(&argv[0], &e)))
        }
        Err(e) if matches!(e.kind(), std::io::ErrorKind::PermissionDenied) => {
            return Ok(outcome(&call.command, 126, "", &not_run(&argv[0], &e)))
        }
        Err(e) => return Err(format!("cannot start `{}`: {e}", argv[0])),
    };
    let mut stderr = out.stderr.clone();
    let mut say = |line: String| {
        if !stderr.is_empty() && !stderr.ends_with('\n') {
            stderr.push('\n');
        }
        stderr.push_str(&format!("guardflow: {line}\n"));
    };
    if let Some(cut) = out.cut_note() {
        say(cut);
    }
    if let Some(why) =
        super::sandbox::refusal_note(&format!("{}\n{}", out.stderr, out.stdout), &confine)
    {
        say(why);
    }
    let exit_code = if out.timed_out {
        say(format!(
            "killed after {}",
            crate::runtime::guard::show_duration(timeout)
        ));
        TIMED_OUT
    } else {
        out.status.map_or(-1, i64::from)
    };
    Ok(outcome(&call.command, exit_code, &out.stdout, &stderr))
}

fn not_run(program: &str, e: &std::io::Error) -> String {
    format!(
        "guardflow: `{program}`: {}\n",
        if e.kind() == std::io::ErrorKind::NotFound {
            "command not found".to_string()
        } else {
            crate::check::io_reason(e)
        }
    )
}

fn outcome(command: &str, exit_code: i64, stdout: &str, stderr: &str) -> Value {
    json!({
        "command": command,
        "exit_code": exit_code,
        "stdout": stdout,
        "stderr": stderr,
    })
}

/// Refuses `command` for `what`, shell syntax that would have no effect.
fn refuse(command: &str, what: &str, why: &str) -> String {
    format!(
        "`{command}` is refused: {what} is shell syntax ({why}), and commands run without a \
         shell: propose one program and its arguments, and quote the character ('…') when it \
         is meant literally"
    )
}

/// Splits `command` into an argv as a shell splits words: blanks
/// separate words, `'…'` is literal, `"…"` is literal but for `\"`,
/// `\\`, `\$` and `` \` ``, a backslash outside quotes makes the next
/// character literal. Any unquoted shell syntax is refused, as are `$`
/// and backquotes inside double quotes, and an empty command or `eval`.
pub fn argv(command: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = command.chars().peekable();
    let r = |what: &str, why: &str| Err(refuse(command, what, why));
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\n' | '\r' => return r("a line break", "it starts another command"),
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(ch) => word.push(ch),
                        None => return Err(format!("`{command}` is refused: an unclosed `'`")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('$') => return r("`$` inside double quotes", "expansion"),
                        Some('`') => return r("a backquote", "command substitution"),
                        Some('\\') => match chars.next() {
                            Some(ch @ ('"' | '\\' | '$' | '`')) => word.push(ch),
                            Some('\n') => {}
                            Some(ch) => {
                                word.push('\\');
                                word.push(ch);
                            }
                            None => {
                                return Err(format!("`{command}` is refused: an unclosed `\"`"))
                            }
                        },
                        Some(ch) => word.push(ch),
                        None => return Err(format!("`{command}` is refused: an unclosed `\"`")),
                    }
                }
            }
            '\\' => match chars.next() {
                Some('\n') => return r("a line break", "it starts another command"),
                Some(ch) => {
                    in_word = true;
                    word.push(ch);
                }
                None => return r("a trailing `\\`", "a line continuation"),
            },
            ';' => return r("`;`", "it runs a second command"),
            '&' if chars.peek() == Some(&'&') => {
                return r("`&&`", "it runs a second command when the first succeeds")
            }
            '&' => return r("`&`", "it runs a command in the background and another one"),
            '|' if chars.peek() == Some(&'|') => {
                return r("`||`", "it runs a second command when the first fails")
            }
            '|' => return r("`|`", "a pipeline into a second command"),
            '<' if chars.peek() == Some(&'<') => return r("`<<`", "a here-document redirection"),
            '<' => return r("`<`", "an input redirection"),
            '>' if chars.peek() == Some(&'>') => {
                return r("`>>`", "an output redirection that appends")
            }
            '>' => return r("`>`", "an output redirection"),
            '(' | ')' => return r(&format!("`{c}`"), "a subshell or a function"),
            '$' if chars.peek() == Some(&'(') => return r("`$(`", "command substitution"),
            '$' if chars.peek() == Some(&'{') => return r("`${`", "variable expansion"),
            '$' => return r("`$`", "variable expansion"),
            '`' => return r("a backquote", "command substitution"),
            '*' | '?' | '[' => return r(&format!("`{c}`"), "a glob, which lists files by pattern"),
            '~' if !in_word => return r("`~`", "the home directory"),
            '#' if !in_word => return r("`#`", "a comment"),
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    match words.first().map(String::as_str) {
        None => Err(format!("`{command}` is refused: it is empty")),
        Some("eval") => Err(format!(
            "`{command}` is refused: `eval` runs its arguments as shell code, and commands run \
             without a shell"
        )),
        Some(b @ ("cd" | "exec" | "source" | "." | "export" | "set" | "alias")) => Err(format!(
            "`{command}` is refused: `{b}` is a shell builtin, and commands run without a \
             shell; each command starts in the workspace"
        )),
        Some(_) => Ok(words),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(c: &str) -> Vec<String> {
        argv(c).unwrap_or_else(|e| panic!("{c}: {e}"))
    }

    #[test]
    fn commands_are_split_as_a_shell_splits_words() {
        assert_eq!(
            words(r#"grep -c 'a b' "c\"d" e\ f"#),
            ["grep", "-c", "a b", "c\"d", "e f"]
        );
        assert_eq!(
            words("echo '$HOME;*' \"a*b?\""),
            ["echo", "$HOME;*", "a*b?"]
        );
        assert_eq!(words("echo \"a\\nb\""), ["echo", "a\\nb"]);
        assert_eq!(words("echo a=b x~y c#d"), ["echo", "a=b", "x~y", "c#d"]);
        assert_eq!(words("  ls  \t -la  "), ["ls", "-la"]);
        assert_eq!(words("echo ''"), ["echo", ""]);
        assert_eq!(words("/usr/bin/env"), ["/usr/bin/env"]);
    }

    #[test]
    fn shell_syntax_is_refused_with_what_and_why() {
        for (bad, what) in [
            (
                "grep -c ERROR log.txt & rm -f victim.txt",
                "`&` is shell syntax",
            ),
            ("ls; rm x", "`;`"),
            ("cd .. && cat secret.txt", "`&&`"),
            ("false || rm x", "`||`"),
            ("cat x | sh", "`|`"),
            ("echo $(id)", "`$(`"),
            ("echo ${HOME}", "`${`"),
            ("echo $HOME", "`$` is shell syntax"),
            ("echo \"$HOME\"", "inside double quotes"),
            ("echo `id`", "backquote"),
            ("echo \"`id`\"", "backquote"),
            ("cat .?/secret.txt", "`?`"),
            ("cat *", "`*`"),
            ("cat [a]x", "`[`"),
            ("echo hi > out", "`>`"),
            ("echo hi >> out", "`>>`"),
            ("cat < x", "`<`"),
            ("cat << EOF", "`<<`"),
            ("ls ~", "`~`"),
            ("ls ~/x", "`~`"),
            ("ls # x", "`#`"),
            ("ls\nrm x", "line break"),
            ("(ls)", "subshell"),
            ("eval 'cat ../secret.txt'", "`eval` runs"),
            ("cd ..", "builtin"),
            ("echo 'open", "unclosed"),
            ("echo \"open", "unclosed"),
            ("ls \\", "trailing"),
            ("   ", "empty"),
        ] {
            let e = argv(bad).expect_err(bad);
            assert!(e.contains(what), "{bad}: {e}");
            assert!(e.starts_with(&format!("`{bad}` is refused: ")), "{e}");
        }
    }
}
