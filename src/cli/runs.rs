//! `guardflow runs`: the runs a store recorded.

use crate::cli::output::outln;

use super::{Format, EXIT_OK};
use crate::store::{self, Store};

/// List the recorded runs: status, duration, generator calls
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  guardflow runs\n  guardflow runs --store examples/\n  guardflow runs --format json | jq -r 'select(.status == \"interrupted\") | .id'\n\nStatus: succeeded, failed, running (a process holds it), interrupted (resume it with \
`guardflow run FILE --resume ID`).\n\nExit status: 0 listed, 2 no store or an unreadable one."
)]
pub struct Args {
    #[command(flatten)]
    store: super::store_arg::StoreArg,
    /// A table, or one JSON object per run
    #[arg(long, value_enum, default_value = "human")]
    format: Format,
}

pub fn run(args: Args) -> u8 {
    let path = match args.store.locate(None) {
        Ok(p) => p,
        Err(e) => return super::fail(e),
    };
    let runs = match Store::open_read(&path).and_then(|s| s.runs()) {
        Ok(r) => r,
        Err(e) => return super::fail(e),
    };
    if args.format == Format::Json {
        for r in &runs {
            if let Ok(line) = serde_json::to_string(r) {
                outln!("{line}");
            }
        }
        return EXIT_OK;
    }
    let unlisted: Vec<String> = crate::runtime::shared::held(&store::resources_dir(&path))
        .into_iter()
        .filter(|h| !runs.iter().any(|r| r.id == h.run))
        .map(|h| format!("{} (pid {}, not recorded)", h.resource, h.pid))
        .collect();
    if runs.is_empty() {
        outln!("{}: no runs", path.display());
    }
    if !unlisted.is_empty() {
        outln!("shared resources held now: {}", unlisted.join(", "));
    }
    if runs.is_empty() {
        return EXIT_OK;
    }
    let mut rows = vec![[
        "run".to_string(),
        "started (UTC)".to_string(),
        "task".to_string(),
        "status".to_string(),
        "duration".to_string(),
        "calls".to_string(),
        "workflow".to_string(),
    ]];
    for r in &runs {
        let mut calls = match r.worst_case_calls {
            Some(w) => format!("{} / {w}", r.calls),
            None => r.calls.to_string(),
        };
        if r.repeated_calls > 0 {
            calls.push_str(&format!(" +{} repeated", r.repeated_calls));
        }
        let mut status = if r.sessions > 1 {
            format!("{} (resumed {}×)", r.status, r.sessions - 1)
        } else {
            r.status.clone()
        };
        if !r.holds.is_empty() {
            status.push_str(&format!(", holds {}", r.holds.join(", ")));
        }
        rows.push([
            r.id.clone(),
            store::utc_time(r.started_ms),
            r.task.clone(),
            status,
            super::bounds::duration(r.duration_ms.max(0) as u64),
            calls,
            r.workflow.clone(),
        ]);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        outln!("{}", cells.join("  ").trim_end());
    }
    EXIT_OK
}
