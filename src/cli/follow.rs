//! `guardflow follow RUN`: a run on Temporal (`run --temporal`, with or
//! without `--detach`) brought up to date in the local store and
//! followed to its end like a local run (progress view or `--json`,
//! summary, exit code).

use std::io::IsTerminal;
use std::sync::Arc;

use super::progress::Progress;
use super::worker::TemporalPlace;
use super::{ColorChoice, EXIT_FINDINGS, EXIT_OK};
use crate::cli::output::outln;
use crate::runtime::Event;
use crate::store::{Store, StoreError};

/// Follow a run on Temporal to its end, mirroring it into the local store
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  guardflow run flow.guardflow --temporal 127.0.0.1:7233 --detach\n  guardflow follow 20261127-081503-3fa2\n  guardflow follow RUN_ID --json | jq -c 'select(.event == \"attempt\")'\n\n\
The run's events the local store does not have yet are recorded as they come (from the \
workflow's `events` query while it runs, from its result once it ended), so `runs`, \
`show`, `trace` and `export` see it as a local run. Stopping `follow` stops only the \
following: the run goes on on Temporal. See docs/temporal.md.\n\n\
Exit status: 0 the task succeeded, 1 it failed, 2 usage or I/O error (no such run, a \
run that did not run on Temporal, the server cannot be reached), 75 another process \
follows or writes the run."
)]
pub struct Args {
    /// The run (see `guardflow runs`)
    #[arg(value_name = "RUN_ID")]
    run: String,
    /// Stream every event as a JSON line on stdout instead of the
    /// progress view; the last line is the report
    #[arg(long)]
    json: bool,
    /// Colour the output
    #[arg(long, value_enum, default_value = "auto")]
    color: ColorChoice,
    #[command(flatten)]
    store: super::store_arg::StoreArg,
}

pub fn run(args: Args) -> u8 {
    let path = match args.store.locate(Some(&args.run)) {
        Ok(p) => p,
        Err(e) => return super::fail(e),
    };
    if let Err(e) = Store::open_read(&path).and_then(|s| s.run_meta(&args.run)) {
        return store_fail(e);
    }
    let place = match TemporalPlace::read(&path, &args.run) {
        Ok(Some(p)) => p,
        Ok(None) => {
            return super::fail(format!(
                "run {} did not run on Temporal (it was not started with `run --temporal` \
                 and this store); there is nothing to follow",
                args.run
            ))
        }
        Err(e) => return super::fail(e),
    };
    let recorder = match Store::open(&path).and_then(|s| s.continue_run(&args.run)) {
        Ok(r) => r,
        Err(e) => return store_fail(e),
    };
    // read while the run is locked: nothing else writes it now
    let (seen, finished) = match Store::open(&path).and_then(|s| {
        let seen = s.events(&args.run)?.len() as u64;
        Ok((seen, s.finished(&args.run)?))
    }) {
        Ok(x) => x,
        Err(e) => return store_fail(e),
    };
    if let Some(success) = finished {
        eprintln!(
            "run {} has ended and is in the store (`guardflow show {}`)",
            args.run, args.run
        );
        return if success { EXIT_OK } else { EXIT_FINDINGS };
    }
    eprintln!(
        "following run {} on Temporal as workflow {} ({} events recorded before)",
        args.run, place.workflow_id, seen
    );
    let progress =
        (!args.json && std::io::stderr().is_terminal()).then(|| Arc::new(Progress::new()));
    let json = args.json;
    let shown = progress.clone();
    let view = move |e: &Event| {
        if json {
            if let Ok(line) = serde_json::to_string(e) {
                outln!("{line}");
            }
        } else if let Some(p) = &shown {
            p.event(e);
        } else if let Some(line) = super::progress::notice(e) {
            eprintln!("{line}");
        }
    };
    let outcome = super::worker::follow_recorded(&place, &args.run, seen, &recorder, &view);
    if let Some(p) = progress {
        p.finish();
    }
    let failure = crate::runtime::Sink::failure(&recorder);
    drop(recorder);
    let report = match outcome {
        Ok(r) => r,
        Err(e) => return super::fail(e),
    };
    if args.json {
        if let Ok(line) =
            serde_json::to_string(&serde_json::json!({"event": "report", "report": &report}))
        {
            outln!("{line}");
        }
    } else {
        super::run::print_summary(&report, args.color.enabled());
    }
    if let Some(why) = failure {
        return super::fail(format!(
            "the run store failed while following: {why}; once it can be written, \
             `guardflow follow {}` records the rest",
            args.run
        ));
    }
    if report.success {
        EXIT_OK
    } else {
        EXIT_FINDINGS
    }
}

fn store_fail(e: StoreError) -> u8 {
    eprintln!("error: {e}");
    match e {
        StoreError::Locked { .. } => super::run::EXIT_LOCKED,
        _ => super::EXIT_USAGE,
    }
}
