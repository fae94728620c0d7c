//! `guardflow explain`: the page of a diagnostic code.

use super::{EXIT_OK, EXIT_USAGE};
use crate::cli::output::{out, outln};
use crate::diagnostics::Code;

/// Explain a diagnostic code: what it means, why, an example and the fix.
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  guardflow explain E0102\n  guardflow explain --list")]
pub struct Args {
    /// A code such as E0102 or W0001
    #[arg(value_name = "CODE", required_unless_present = "list")]
    code: Option<String>,
    /// List every code with its title
    #[arg(long)]
    list: bool,
}

pub fn run(args: Args) -> u8 {
    if args.list {
        for code in Code::ALL {
            outln!("{code}  {}", code.title());
        }
        return EXIT_OK;
    }
    let given = args.code.unwrap_or_default();
    match Code::parse(&given) {
        Some(code) => {
            out!("{}", code.explanation());
            EXIT_OK
        }
        None => {
            eprintln!("error: `{given}` is not a guardflow diagnostic code");
            eprintln!("help: `guardflow explain --list` shows every code");
            EXIT_USAGE
        }
    }
}
