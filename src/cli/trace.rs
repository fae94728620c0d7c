//! `guardflow trace`: every event of a run, one JSON object per line.

use crate::cli::output::outln;

use super::EXIT_OK;
use crate::store::Store;

/// Print every recorded event of a run, in order, one JSON object a line
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  guardflow trace 20261127-081503-3fa2\n  guardflow trace RUN_ID | jq -c 'select(.event == \"attempt\") | {path, verdict, feedback}'\n\nEach line is an event as `guardflow run --json` prints it, with `seq` (its order), \
`session` (the process that wrote it: 2 and up after a resume) and `at_ms` (Unix milliseconds). \
Attempts carry the exact prompt, the raw output and its SHA-256; commits the artifact and its SHA-256.\n\nExit status: 0 printed, 2 no such run or store."
)]
pub struct Args {
    /// The run (see `guardflow runs`)
    #[arg(value_name = "RUN_ID")]
    run: String,
    /// The output format (JSON lines is the one there is)
    #[arg(long, value_enum, default_value = "jsonl")]
    format: TraceFormat,
    #[command(flatten)]
    store: super::store_arg::StoreArg,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum TraceFormat {
    /// One JSON object per line
    Jsonl,
}

pub fn run(args: Args) -> u8 {
    let TraceFormat::Jsonl = args.format;
    let path = match args.store.locate(Some(&args.run)) {
        Ok(p) => p,
        Err(e) => return super::fail(e),
    };
    let events = match Store::open_read(&path).and_then(|s| s.events(&args.run)) {
        Ok(e) => e,
        Err(e) => return super::fail(e),
    };
    for e in events {
        outln!("{e}");
    }
    EXIT_OK
}
