//! `guardflow export --sft | --dpo`: training data from the record;
//! `--otlp`: a run as OpenTelemetry spans.

use crate::cli::output::outln;

use super::EXIT_OK;
use crate::store::Store;

/// Export training data from recorded runs as JSON lines
#[derive(clap::Args)]
#[command(
    group = clap::ArgGroup::new("kind").required(true).args(["sft", "dpo", "otlp"]),
    after_help = "Examples:\n  guardflow export RUN_ID --sft > pairs.jsonl\n  guardflow export --all --sft --store examples/\n  guardflow export --all --dpo > preferences.jsonl\n  guardflow export RUN_ID --otlp http://localhost:4318\n\n\
--sft, each line: {\"messages\": [system (the role, if any), user (the exact prompt, \
with the feedback that led to it), assistant (the accepted output)], \"run\", \"path\", \"action\", \
\"attempt\", \"feedback\" (the rejections before it, in order)}. An accepted attempt whose artifact a \
later escalation blamed (regenerated it because a later step kept failing with it) is left out.\n\n\
--dpo, each line: {\"prompt\": [system?, user (the first attempt's exact prompt)], \"chosen\": \
[assistant (the accepted output)], \"rejected\": [assistant (an output the guard refused)], \"run\", \
\"path\", \"occurrence\", \"action\", \"chosen_attempt\", \"rejected_attempt\", \"rejected_feedback\"}: \
one per refused answer of the same run of an action (same run, path and occurrence, so the same \
inputs), none where the accepted answer was blamed. See docs/store.md.\n\n\
--otlp sends the run as OpenTelemetry spans, the ones `run --otlp` sends (docs/otel.md).\n\n\
Exit status: 0 exported, 2 no such run or store, or the collector did not take the spans."
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
    /// Send the run as OpenTelemetry spans to this collector (OTLP/HTTP,
    /// e.g. http://localhost:4318), as `run --otlp` would have (see
    /// docs/otel.md)
    #[arg(long, value_name = "URL", conflicts_with = "all")]
    otlp: Option<String>,
    /// With --otlp: put prompts, outputs, feedback and commands in the
    /// spans (by default only their sizes and SHA-256)
    #[arg(long, requires = "otlp")]
    otlp_content: bool,
    #[command(flatten)]
    store: super::store_arg::StoreArg,
}

pub fn run(args: Args) -> u8 {
    let path = match args.store.locate(args.run.as_deref()) {
        Ok(p) => p,
        Err(e) => return super::fail(e),
    };
    if let (Some(url), Some(run)) = (&args.otlp, &args.run) {
        return send_otlp(&path, run, url, args.otlp_content);
    }
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

/// `export RUN --otlp URL`: the run's spans, as a live run sends them,
/// with the times the store recorded. The models come from the workflow
/// when it is as the run started; else the spans name none.
fn send_otlp(store: &std::path::Path, run: &str, url: &str, content: bool) -> u8 {
    let endpoint = match crate::otel::endpoint(Some(url)) {
        Ok(Some(e)) => e,
        Ok(None) => return EXIT_OK,
        Err(e) => return super::fail(e),
    };
    let (meta, events) =
        match Store::open_read(store).and_then(|s| Ok((s.run_meta(run)?, s.events(run)?))) {
            Ok(x) => x,
            Err(e) => return super::fail(e),
        };
    let file = std::path::Path::new(&meta.workflow);
    let same = crate::check::read_bytes(file, crate::check::MAX_SOURCE_BYTES)
        .is_ok_and(|text| crate::store::content_hash(&text) == meta.workflow_hash);
    let models = match same.then(|| crate::engine::Engine::new().compile_file(file)) {
        Some(Ok(w)) => crate::otel::map::Models::of(&w.program, meta.replacement.as_ref()),
        _ => {
            eprintln!(
                "note: `{}` is not as run {run} started, so the spans name no models",
                meta.workflow
            );
            crate::otel::map::Models::default()
        }
    };
    let exporter = match crate::otel::Exporter::new(&endpoint.url, endpoint.timeout) {
        Ok(x) => x,
        Err(e) => return super::fail(e),
    };
    match crate::otel::send_run(&exporter, run, &events, models, content) {
        Ok(n) => {
            eprintln!("sent {n} spans of run {run} to {}", endpoint.url);
            EXIT_OK
        }
        Err(e) => super::fail(format!("cannot send spans to {}: {e}", endpoint.url)),
    }
}
