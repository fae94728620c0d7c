//! `guardflow compile`: the checked program as versioned JSON.

use crate::cli::output::outln;
use std::path::PathBuf;

use super::{files, ColorChoice, Format, EXIT_FINDINGS, EXIT_OK};
use crate::check;

/// Check a workflow and write the checked program as JSON (see docs/ir.md).
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  guardflow compile flow.guardflow              JSON on standard output\n  guardflow compile flow.guardflow -o flow.json\n\nA program with errors is not written; its findings are printed and the exit status is 1."
)]
pub struct Args {
    /// The workflow file
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Write the JSON here instead of standard output
    #[arg(short, long, value_name = "OUT")]
    output: Option<PathBuf>,
    /// Colour the findings
    #[arg(long, value_enum, default_value = "auto")]
    color: ColorChoice,
}

pub fn run(args: Args) -> u8 {
    let text = match files::read_source(&args.file) {
        Ok(t) => t,
        Err(e) => return super::fail(e),
    };
    let checked = check::check_source(&args.file.to_string_lossy(), &text);
    let (Some(program), false) = (&checked.program, checked.has_errors()) else {
        super::check::print_findings(&checked, Format::Human, args.color.enabled());
        return EXIT_FINDINGS;
    };
    let json = program.to_json();
    match &args.output {
        Some(path) => {
            // write beside the target and rename, so a reader never sees half a file
            let tmp = path.with_extension("json.tmp");
            if let Err(e) =
                std::fs::write(&tmp, json + "\n").and_then(|_| std::fs::rename(&tmp, path))
            {
                let _ = std::fs::remove_file(&tmp);
                return super::fail(format!("{}: {}", path.display(), check::io_reason(&e)));
            }
        }
        None => outln!("{json}"),
    }
    EXIT_OK
}
