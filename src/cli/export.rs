//! `guardflow export --sft`: accepted attempts as training pairs.

use crate::cli::output::outln;

use super::EXIT_OK;
use crate::store::Store;

/// Export the accepted attempts of a run as JSON-lines training pairs
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  guardflow export RUN_ID --sft > pairs.jsonl\n  guardflow export --all --sft --store examples/\n\nEach line: {\"messages\": [system (the role, if any), user (the exact prompt, \
with the feedback that led to it), assistant (the accepted output)], \"run\", \"path\", \"action\", \
\"attempt\", \"feedback\" (the rejections before it, in order)}.\n\nExit status: 0 exported, 2 no such run or store."
)]
pub struct Args {
    /// The run (see `guardflow runs`)
    #[arg(value_name = "RUN_ID", required_unless_present = "all")]
    run: Option<String>,
    /// Every run in the store
    #[arg(long, conflicts_with = "run")]
    all: bool,
    /// Supervised fine-tuning pairs (chat messages), the format there is
    #[arg(long, required = true)]
    sft: bool,
    #[command(flatten)]
    store: super::store_arg::StoreArg,
}

pub fn run(args: Args) -> u8 {
    let path = match args.store.locate(args.run.as_deref()) {
        Ok(p) => p,
        Err(e) => return super::fail(e),
    };
    let run = if args.all { None } else { args.run.as_deref() };
    let pairs = match Store::open_read(&path).and_then(|s| s.sft_pairs(run)) {
        Ok(p) => p,
        Err(e) => return super::fail(e),
    };
    let _ = args.sft;
    for p in pairs {
        outln!("{p}");
    }
    EXIT_OK
}
