//! The interactive prompt: rustyline with highlighting, bracket hints,
//! completion, multi-line input and a persistent history. The only place
//! that knows rustyline.

use crate::cli::output::outln;
use std::borrow::Cow;
use std::path::PathBuf;

use rustyline::completion::{Completer, FilenameCompleter, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::{CmdKind, Highlighter};
use rustyline::hint::{Hint, Hinter};
use rustyline::history::{FileHistory, History};
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{CompletionType, Config, Context, Editor, Helper};

use super::commands::Repl;
use super::complete::{self, Names};
use super::{highlight, input};

const PROMPT: &str = "gf> ";

struct GuardflowHelper {
    names: Names,
    files: FilenameCompleter,
    color: bool,
}

impl Helper for GuardflowHelper {}

impl Completer for GuardflowHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let (start, candidates, files) = complete::complete(line, pos, &self.names);
        if files {
            return self.files.complete(line, pos, ctx);
        }
        let pairs = candidates
            .into_iter()
            .map(|c| Pair {
                display: c.clone(),
                replacement: c,
            })
            .collect();
        Ok((start, pairs))
    }
}

/// The closers the input still needs, shown dimmed after the cursor.
struct Closers(String);

impl Hint for Closers {
    fn display(&self) -> &str {
        &self.0
    }

    fn completion(&self) -> Option<&str> {
        None
    }
}

impl Hinter for GuardflowHelper {
    type Hint = Closers;

    fn hint(&self, line: &str, pos: usize, _ctx: &Context<'_>) -> Option<Closers> {
        if pos < line.len() {
            return None;
        }
        let open = input::open_brackets(line);
        (!open.is_empty()).then(|| Closers(format!(" {}", open.iter().rev().collect::<String>())))
    }
}

impl Highlighter for GuardflowHelper {
    fn highlight<'l>(&self, line: &'l str, pos: usize) -> Cow<'l, str> {
        if self.color {
            Cow::Owned(highlight::highlight(line, Some(pos)))
        } else {
            Cow::Borrowed(line)
        }
    }

    fn highlight_prompt<'b, 's: 'b, 'p: 'b>(
        &'s self,
        prompt: &'p str,
        _default: bool,
    ) -> Cow<'b, str> {
        if self.color {
            Cow::Owned(format!("\x1b[1;32m{}\x1b[0m ", prompt.trim_end()))
        } else {
            Cow::Borrowed(prompt)
        }
    }

    fn highlight_hint<'h>(&self, hint: &'h str) -> Cow<'h, str> {
        if self.color {
            Cow::Owned(format!("\x1b[2m{hint}\x1b[0m"))
        } else {
            Cow::Borrowed(hint)
        }
    }

    fn highlight_char(&self, _line: &str, _pos: usize, _kind: CmdKind) -> bool {
        self.color
    }
}

impl Validator for GuardflowHelper {
    fn validate(&self, ctx: &mut ValidationContext) -> rustyline::Result<ValidationResult> {
        Ok(if input::needs_more(ctx.input()) {
            ValidationResult::Incomplete
        } else {
            ValidationResult::Valid(None)
        })
    }
}

/// Where the history lives: `$XDG_DATA_HOME/guardflow/repl_history`, or
/// `~/.local/share/guardflow/repl_history`.
pub fn history_path() -> Option<PathBuf> {
    let base = match std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".local/share"),
    };
    Some(base.join("guardflow").join("repl_history"))
}

/// Reads, handles and prints until Ctrl-D or `:quit`. Ctrl-C drops the
/// input being typed.
pub fn interactive(repl: &mut Repl) -> u8 {
    let config = Config::builder()
        .completion_type(CompletionType::List)
        .auto_add_history(false)
        .max_history_size(10_000)
        .map(|b| b.build())
        .unwrap_or_default();
    let mut rl: Editor<GuardflowHelper, FileHistory> = match Editor::with_config(config) {
        Ok(rl) => rl,
        Err(e) => return crate::cli::fail(format!("cannot start the line editor: {e}")),
    };
    rl.set_helper(Some(GuardflowHelper {
        names: names(repl),
        files: FilenameCompleter::new(),
        color: repl.color,
    }));
    let history = history_path();
    if let Some(h) = &history {
        let _ = rl.load_history(h);
    }
    let mut warned = false;
    outln!(
        "guardflow {} — :help for the commands, Ctrl-D to leave",
        env!("CARGO_PKG_VERSION")
    );
    loop {
        match rl.readline(PROMPT) {
            Ok(line) => {
                if !line.trim().is_empty() {
                    let _ = rl.add_history_entry(line.as_str());
                    // on disk at once: a REPL that is killed keeps it too
                    append(&mut rl, history.as_ref(), &mut warned);
                }
                let reply = repl.handle(&line);
                super::print_reply(&reply, repl.color);
                if reply.quit {
                    break;
                }
                if let Some(h) = rl.helper_mut() {
                    h.names = names(repl);
                }
            }
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                save(&mut rl, history.as_ref());
                return crate::cli::fail(format!("cannot read the terminal: {e}"));
            }
        }
    }
    save(&mut rl, history.as_ref());
    crate::cli::EXIT_OK
}

/// Appends the entries since the last write to the history file; a
/// failure is told once.
fn append(
    rl: &mut Editor<GuardflowHelper, FileHistory>,
    path: Option<&PathBuf>,
    warned: &mut bool,
) {
    let Some(path) = path else { return };
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Err(e) = rl.append_history(path) {
        if !std::mem::replace(warned, true) {
            eprintln!(
                "warning: cannot save the history to {}: {e}",
                path.display()
            );
        }
    }
}

fn save(rl: &mut Editor<GuardflowHelper, FileHistory>, path: Option<&PathBuf>) {
    let Some(path) = path else { return };
    if rl.history().is_empty() {
        return;
    }
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Err(e) = rl.save_history(path) {
        eprintln!(
            "warning: cannot save the history to {}: {e}",
            path.display()
        );
    }
}

fn names(repl: &Repl) -> Names {
    Names {
        items: repl.session.names(),
        std_guards: super::std_guards(),
    }
}
