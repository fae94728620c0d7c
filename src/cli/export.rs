//! `guardflow export --sft | --dpo`: training data from the record.

use crate::cli::output::outln;

use super::EXIT_OK;
use crate::store::Store;

/// Export training data from recorded runs as JSON lines
#[derive(clap::Args)]
#[command(
    group = clap::ArgGroup::new("kind").required(true).args(["sft", "dpo"]),
    after_help = "Examples:\n  guardflow export RUN_ID --sft > pairs.jsonl\n  guardflow export --all --sft --store examples/\n  guardflow export --all --dpo > preferences.jsonl\n\n\
--sft, each line: {\"messages\": [system (the role, if any), user (the exact prompt, \
with the feedback that led to it), assistant (the accepted output)], \"run\", \"path\", \"action\", \
\"attempt\", \"feedback\" (the rejections before it, in order)}. An accepted attempt whose artifact a \
later escalation blamed (regenerated it because a later step kept failing with it) is left out.\n\n\
--dpo, each line: {\"prompt\": [system?, user (the first attempt's exact prompt)], \"chosen\": \
[assistant (the accepted output)], \"rejected\": [assistant (an output the guard refused)], \"run\", \
\"path\", \"occurrence\", \"action\", \"chosen_attempt\", \"rejected_attempt\", \"rejected_feedback\"}: \
one per refused answer of the same run of an action (same run, path and occurrence, so the same \
inputs), none where the accepted answer was blamed. See docs/store.md.\n\n\
Exit status: 0 exported, 2 no such run or store."
)]
pub struct Args {
    /// The run (see `guardflow runs`)
    #[arg(value_name = "RUN_ID", required_unless_present = "all")]
    run: Option<String>,
    /// Every run in the store
    #[arg(long, conflicts_with = "run")]
    all: bool,
    /// Supervised fine-tuning pairs (chat messages): the accepted attempts
    #[arg(long)]
    sft: bool,
    /// Preference triples (prompt, chosen, rejected): each refused answer
    /// against the accepted one of the same run of an action
    #[arg(long)]
    dpo: bool,
    #[command(flatten)]
    store: super::store_arg::StoreArg,
}

pub fn run(args: Args) -> u8 {
    let path = match args.store.locate(args.run.as_deref()) {
        Ok(p) => p,
        Err(e) => return super::fail(e),
    };
    let run = if args.all { None } else { args.run.as_deref() };
    let lines = Store::open_read(&path).and_then(|s| {
        if args.dpo {
            s.dpo_triples(run)
        } else {
            s.sft_pairs(run)
        }
    });
    let lines = match lines {
        Ok(l) => l,
        Err(e) => return super::fail(e),
    };
    for l in lines {
        outln!("{l}");
    }
    EXIT_OK
}
