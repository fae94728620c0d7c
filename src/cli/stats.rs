//! `guardflow stats`: measured success per attempt, per action.

use crate::cli::output::outln;

use super::{Format, EXIT_OK};
use crate::store::Store;

/// Per action, across the recorded runs: the measured probability that one
/// attempt passes its guard
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  guardflow stats\n  guardflow stats --store examples/ --format json\n  guardflow check flow.guardflow --bounds --from-runs     the bounds with these numbers\n\n\
Interrupted attempts (the run was killed during them) are not counted.\n\nExit status: 0 printed, 2 no store or an unreadable one."
)]
pub struct Args {
    #[command(flatten)]
    store: super::store_arg::StoreArg,
    /// A table, or one JSON object per action
    #[arg(long, value_enum, default_value = "human")]
    format: Format,
}

pub fn run(args: Args) -> u8 {
    let path = match args.store.locate(None) {
        Ok(p) => p,
        Err(e) => return super::fail(e),
    };
    let stats = match Store::open_read(&path).and_then(|s| s.stats()) {
        Ok(s) => s,
        Err(e) => return super::fail(e),
    };
    if args.format == Format::Json {
        for (action, s) in &stats {
            let line = serde_json::json!({
                "action": action,
                "attempts": s.attempts,
                "passed": s.passed,
                "runs": s.runs,
                "p": s.p(),
            });
            outln!("{line}");
        }
        return EXIT_OK;
    }
    if stats.is_empty() {
        outln!("{}: no finished attempts", path.display());
        return EXIT_OK;
    }
    let width = stats
        .keys()
        .map(|k| k.chars().count())
        .max()
        .unwrap_or(0)
        .max(6);
    outln!(
        "{:width$}  attempts  passed  runs  P(pass per attempt)",
        "action"
    );
    for (action, s) in &stats {
        outln!(
            "{action:width$}  {:>8}  {:>6}  {:>4}  {}",
            s.attempts,
            s.passed,
            s.runs,
            s.p().map_or("-".to_string(), |p| format!("{p:.3}"))
        );
    }
    EXIT_OK
}
