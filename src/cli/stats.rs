//! `guardflow stats`: measured success per attempt, per action, over the
//! runs a filter lets through (`store::outcomes::RunFilter`).

use std::path::PathBuf;

use crate::cli::output::outln;

use super::{Format, EXIT_OK};
use crate::store::outcomes::{RunFilter, SelectedRun};
use crate::store::Store;

/// Per action, across the recorded runs (all of them, or those of one
/// workflow, one bench, the latest): the measured probability that one
/// attempt passes its guard
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  guardflow stats\n  guardflow stats --workflow flow.guardflow --last 20\n  \
guardflow stats --bench probe-probe --arm guarded --model weak\n  \
guardflow stats --store examples/ --since 2h --format json\n  \
guardflow check flow.guardflow --bounds --from-runs     the bounds with these numbers\n\n\
Without a filter every run in the store is pooled, and actions of different workflows that share \
a name are counted together: the first line says what was pooled (\"42 runs of 3 workflows\"). \
--workflow keeps the runs of that file (however it was named when run), as check --from-runs \
does; --bench the trials of one bench (guardflow bench --name), narrowed by --arm and --model; \
--since and --last keep the recent runs. Filters combine.\n\n\
Interrupted attempts (the run was killed during them) are not counted.\n\n\
Exit status: 0 printed, 2 no store, an unreadable one, or no bench of that name."
)]
pub struct Args {
    #[command(flatten)]
    store: super::store_arg::StoreArg,
    /// Only the runs of this workflow file
    #[arg(long, value_name = "FILE")]
    workflow: Option<PathBuf>,
    /// Only the trials of this bench (its --name)
    #[arg(long, value_name = "NAME")]
    bench: Option<String>,
    /// With --bench: only the trials of this arm
    #[arg(long, value_name = "NAME", requires = "bench")]
    arm: Option<String>,
    /// With --bench: only the trials of this model (the generator bound
    /// to every action)
    #[arg(long, value_name = "NAME", requires = "bench")]
    model: Option<String>,
    /// Only the runs started within this long before now: 30m, 2h, 7d
    #[arg(long, value_name = "AGE", value_parser = age_ms)]
    since: Option<i64>,
    /// Only the latest N runs (of those the other filters keep)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    last: Option<u64>,
    /// A table, or one JSON object per action
    #[arg(long, value_enum, default_value = "human")]
    format: Format,
}

/// `30s`, `30m`, `2h`, `7d` in milliseconds.
fn age_ms(text: &str) -> Result<i64, String> {
    let bad = || format!("`{text}`: an age is a whole number with s, m, h or d, such as 2h or 7d");
    let t = text.trim();
    let unit = t.chars().last().ok_or_else(bad)?;
    let per: i64 = match unit {
        's' => 1_000,
        'm' => 60_000,
        'h' => 3_600_000,
        'd' => 86_400_000,
        _ => return Err(bad()),
    };
    let n: i64 = t[..t.len() - 1].parse().map_err(|_| bad())?;
    n.checked_mul(per).filter(|ms| *ms >= 0).ok_or_else(bad)
}

pub fn run(args: Args) -> u8 {
    let path = match args.store.locate(None) {
        Ok(p) => p,
        Err(e) => return super::fail(e),
    };
    let filter = RunFilter {
        workflow: args.workflow.clone(),
        bench: args.bench.clone(),
        arm: args.arm.clone(),
        model: args.model.clone(),
        since_ms: args
            .since
            .map(|age| crate::store::now_ms().saturating_sub(age)),
        last: args.last,
    };
    let store = match Store::open_read(&path) {
        Ok(s) => s,
        Err(e) => return super::fail(e),
    };
    if let Some(bench) = &args.bench {
        match store.benches() {
            Ok(known) if !known.contains(bench) => {
                return super::fail(format!(
                    "the run store `{}` has no bench `{bench}`{}",
                    path.display(),
                    if known.is_empty() {
                        String::new()
                    } else {
                        format!(" (it has: {})", known.join(", "))
                    }
                ))
            }
            Ok(_) => {}
            Err(e) => return super::fail(e),
        }
    }
    let runs = match store.select_runs(&filter) {
        Ok(r) => r,
        Err(e) => return super::fail(e),
    };
    let stats = match store.stats_of(&runs) {
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
    outln!("{}: {}", path.display(), pooled(&args, &runs));
    if stats.is_empty() {
        outln!("no finished attempts");
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

/// What was pooled, in words: `42 runs of 3 workflows`, `12 runs of
/// flow.guardflow (2 runs of another text)`, `50 runs of bench `b` (arm
/// `guarded`)`, with `, the latest 10` and `, started in the last 2h`.
fn pooled(args: &Args, runs: &[SelectedRun]) -> String {
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let mut of = Vec::new();
    if let Some(file) = &args.workflow {
        let mut text = file.display().to_string();
        // runs of the file as it was before a change (a bench trial's
        // hash is of the text with the bench's own generators: not told)
        if let Ok((_, now)) = super::run::identity(file) {
            let other = runs
                .iter()
                .filter(|r| !r.bench && r.workflow_hash != now)
                .count();
            if other > 0 {
                text.push_str(&format!(
                    " ({} of another text)",
                    plural(other, "run", "runs")
                ));
            }
        }
        of.push(text);
    }
    if let Some(bench) = &args.bench {
        let mut narrowed = Vec::new();
        if let Some(arm) = &args.arm {
            narrowed.push(format!("arm `{arm}`"));
        }
        if let Some(model) = &args.model {
            narrowed.push(format!("model `{model}`"));
        }
        let mut text = format!("bench `{bench}`");
        if !narrowed.is_empty() {
            text.push_str(&format!(" ({})", narrowed.join(", ")));
        }
        of.push(text);
    }
    if of.is_empty() {
        let workflows: std::collections::BTreeSet<&str> =
            runs.iter().map(|r| r.workflow.as_str()).collect();
        of.push(plural(workflows.len(), "workflow", "workflows"));
    }
    let mut text = format!("{} of {}", plural(runs.len(), "run", "runs"), of.join(", "));
    if let Some(last) = args.last {
        text.push_str(&format!(", the latest {last}"));
    }
    if let Some(since) = args.since {
        text.push_str(&format!(", started in the last {}", age_text(since)));
    }
    text
}

/// An age in the largest unit that divides it.
fn age_text(ms: i64) -> String {
    for (per, unit) in [(86_400_000, "d"), (3_600_000, "h"), (60_000, "m")] {
        if ms >= per && ms % per == 0 {
            return format!("{}{unit}", ms / per);
        }
    }
    format!("{}s", ms / 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_and_print_back() {
        assert_eq!(age_ms("90s"), Ok(90_000));
        assert_eq!(age_ms("2h"), Ok(7_200_000));
        assert_eq!(age_ms("7d"), Ok(604_800_000));
        for bad in ["", "h", "2", "2w", "-1h", "1.5h", "99999999999999999d"] {
            assert!(age_ms(bad).is_err(), "{bad}");
        }
        assert_eq!(age_text(7_200_000), "2h");
        assert_eq!(age_text(90_000), "90s");
        assert_eq!(age_text(604_800_000), "7d");
    }
}
