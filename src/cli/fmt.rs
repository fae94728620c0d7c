//! `guardflow fmt`: rewrite files in the canonical layout, or with
//! `--check` list the files that are not.

use crate::cli::output::outln;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::{files, ColorChoice, EXIT_FINDINGS, EXIT_OK};
use crate::check::io_reason;
use crate::diagnostics;
use crate::fmt::{self, FormatError};

/// Format workflows in the canonical layout, keeping every comment.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  guardflow fmt flow.guardflow\n  guardflow fmt examples/              every .guardflow file below\n  guardflow fmt --check examples/      list files that are not formatted\n  guardflow fmt - < flow.guardflow     standard input to standard output\n\nA file with syntax errors is left unchanged and its errors are printed.\n\nExit status: 0 done (with --check: every file is formatted), 1 a file has syntax\nerrors (with --check: or would change), 2 usage or I/O error."
)]
pub struct Args {
    /// Files or directories (every .guardflow file below a directory); `-`
    /// reads standard input and writes the result to standard output
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Change nothing; list the files whose layout would change
    #[arg(long)]
    check: bool,
    /// Colour the diagnostics
    #[arg(long, value_enum, default_value = "auto")]
    color: ColorChoice,
}

pub fn run(args: Args) -> u8 {
    let color = args.color.enabled_on_stderr();
    if args.paths.len() == 1 && args.paths[0] == Path::new("-") {
        let mut text = String::new();
        let cap = crate::check::MAX_SOURCE_BYTES;
        if let Err(e) = std::io::stdin().take(cap + 1).read_to_string(&mut text) {
            return super::fail(format!("standard input: {}", io_reason(&e)));
        }
        if text.len() as u64 > cap {
            return super::fail(format!(
                "standard input: more than the limit of {} MiB for a source",
                cap >> 20
            ));
        }
        return match format_one("<stdin>", &text, color) {
            Some(out) if args.check => {
                if out != text {
                    outln!("<stdin>");
                    EXIT_FINDINGS
                } else {
                    EXIT_OK
                }
            }
            Some(out) => {
                let mut stdout = std::io::stdout().lock();
                match stdout.write_all(out.as_bytes()) {
                    Ok(()) => EXIT_OK,
                    Err(e) => super::fail(format!("standard output: {}", io_reason(&e))),
                }
            }
            None => EXIT_FINDINGS,
        };
    }
    let paths = match files::expand(&args.paths) {
        Ok(p) => p,
        Err(e) => return super::fail(e),
    };
    let mut failed = false;
    for path in &paths {
        let text = match files::read_text(path) {
            Ok(t) => t,
            Err(e) => return super::fail(e),
        };
        let Some(out) = format_one(&path.to_string_lossy(), &text, color) else {
            failed = true;
            continue;
        };
        if out == text {
            continue;
        }
        if args.check {
            outln!("{}", path.display());
            failed = true;
        } else if let Err(e) = std::fs::write(path, out) {
            return super::fail(format!("{}: {}", path.display(), io_reason(&e)));
        }
    }
    if failed {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    }
}

/// The formatted text, or `None` after printing why there is none.
fn format_one(name: &str, text: &str, color: bool) -> Option<String> {
    match fmt::format(name, text) {
        Ok(out) => Some(out),
        Err(FormatError::Syntax {
            diagnostics,
            sources,
        }) => {
            let renderer = diagnostics::Renderer::new(&sources);
            for d in &diagnostics {
                eprint!("{}", renderer.render(d, color));
            }
            eprintln!("error: {name}: not formatted: the file has syntax errors");
            None
        }
        Err(FormatError::Internal(reason)) => {
            eprintln!("error: {name}: not formatted: the formatter cannot keep this file's meaning ({reason}); please report it");
            None
        }
    }
}
