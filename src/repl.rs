//! `guardflow repl`: explore workflows interactively.
//!
//! - `session`: the loaded files and typed items, checked as one program;
//! - `commands`: `:load`, `:check`, `:type`, `:run`, … and definitions;
//! - `describe`: signatures, the decomposition as text, run traces;
//! - `input`: when input is complete (multi-line), shared by both modes;
//! - `highlight`, `complete`: colours and tab completion from the lexer;
//! - `editor`: the interactive prompt (the only user of rustyline).
//!
//! On a terminal the REPL is interactive; otherwise it reads a script
//! from standard input, prints only the results, and stops with exit
//! status 1 at the first error (or, with `--keep-going`, at the end).

// standard output goes through `cli::output` (no panic on a closed pipe)
#![deny(clippy::print_stdout)]

mod commands;
mod complete;
mod describe;
mod editor;
mod highlight;
mod input;
mod session;

use crate::cli::output::out;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

pub use commands::{Reply, COMMANDS};

use crate::cli::{EXIT_FINDINGS, EXIT_OK, EXIT_USAGE};

/// How to run the REPL.
pub struct Options {
    /// Files to load first.
    pub files: Vec<PathBuf>,
    pub color: bool,
    /// Read standard input as a script even on a terminal.
    pub script: bool,
    /// Script mode: print each input, `> ` before its first line and
    /// `. ` before the others, ahead of its results (a transcript).
    pub echo: bool,
    /// Script mode: go on after an error; exit 1 at the end if any.
    pub keep_going: bool,
}

/// Runs the REPL; returns the exit status.
pub fn run(options: Options) -> u8 {
    let interactive = !options.script && std::io::stdin().is_terminal();
    let mut repl = match commands::Repl::new(options.color && interactive) {
        Ok(r) => r,
        Err(e) => return crate::cli::fail(e),
    };
    if interactive {
        repl.catch_ctrl_c();
    }
    if !options.files.is_empty() {
        let words: Vec<String> = options
            .files
            .iter()
            .map(|p| quote(&p.to_string_lossy()))
            .collect();
        let reply = repl.handle(&format!(":load {}", words.join(" ")));
        print_reply(&reply, repl.color);
        if reply.failed() && !interactive && !options.keep_going {
            return EXIT_FINDINGS;
        }
    }
    if interactive {
        editor::interactive(&mut repl)
    } else {
        script(&mut repl, &options)
    }
}

/// A word `commands::split_words` reads back as `s`.
fn quote(s: &str) -> String {
    if !s.is_empty() && !s.contains(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '\\')) {
        return s.to_string();
    }
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Results on standard output, an error on standard error.
pub fn print_reply(reply: &Reply, color: bool) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(reply.out.as_bytes());
    let _ = out.flush();
    drop(out);
    if let Some(e) = &reply.error {
        if color {
            eprintln!("\x1b[1;31merror\x1b[0m: {e}");
        } else {
            eprintln!("error: {e}");
        }
    }
}

fn script(repl: &mut commands::Repl, options: &Options) -> u8 {
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    let mut buf = String::new();
    let mut failures = 0usize;
    loop {
        let line = match lines.next() {
            Some(Ok(l)) => Some(l),
            Some(Err(e)) => {
                eprintln!("error: cannot read standard input: {e}");
                return EXIT_USAGE;
            }
            None => None,
        };
        let mut ready = Vec::new();
        match &line {
            Some(l) => {
                if !buf.is_empty() && input::starts_new_input(&buf, l) {
                    ready.push(std::mem::take(&mut buf));
                }
                buf.push_str(l);
                buf.push('\n');
                if !input::needs_more(&buf) {
                    ready.push(std::mem::take(&mut buf));
                }
            }
            None => ready.push(std::mem::take(&mut buf)),
        }
        for text in ready {
            match handle_script_input(repl, options, &text) {
                Step::Go => {}
                Step::Failed => {
                    failures += 1;
                    if !options.keep_going {
                        return EXIT_FINDINGS;
                    }
                }
                Step::Quit => return if failures > 0 { EXIT_FINDINGS } else { EXIT_OK },
            }
        }
        if line.is_none() {
            break;
        }
    }
    if failures > 0 {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    }
}

enum Step {
    Go,
    Failed,
    Quit,
}

fn handle_script_input(repl: &mut commands::Repl, options: &Options, text: &str) -> Step {
    if text.trim().is_empty() {
        return Step::Go;
    }
    if options.echo {
        let mut lines = text.trim_end_matches('\n').lines();
        let mut echo = format!("> {}\n", lines.next().unwrap_or(""));
        for l in lines {
            echo.push_str(&format!(". {l}\n"));
        }
        out!("{echo}");
        let _ = std::io::stdout().flush();
    }
    let reply = repl.handle(text);
    print_reply(&reply, false);
    if reply.failed() {
        Step::Failed
    } else if reply.quit {
        Step::Quit
    } else {
        Step::Go
    }
}

/// The standard library's guards, for completion.
fn std_guards() -> Vec<String> {
    static NAMES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    NAMES
        .get_or_init(|| {
            let mut out = Vec::new();
            for (_, text) in crate::stdlib::FILES {
                let (file, _) = crate::syntax::parse(crate::source::FileId(0), text);
                for item in &file.items {
                    if let crate::syntax::ast::ItemKind::Extern(e) = &item.kind {
                        if e.kind == crate::syntax::ast::ExternKind::Guard {
                            out.push(e.name.name.clone());
                        }
                    }
                }
            }
            out
        })
        .clone()
}
