//! `guardflow report`: one run as a self-contained HTML page.

use std::path::PathBuf;

use super::EXIT_OK;
use crate::cli::output::out;
use crate::report;
use crate::store::Store;

/// Write one run as a self-contained HTML page: timeline, decomposition
/// tree, every attempt, the workflow graph and the bounds
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  guardflow report 20261127-081503-3fa2\n  guardflow report RUN_ID -o run.html --store examples/\n  guardflow report RUN_ID -o - > run.html\n\n\
The page needs no network: its style, script and pictures are inline and its Content-Security-Policy \
forbids loading anything. Everything the run recorded is escaped. A large run's texts are cut to keep \
the page under 10 MB, each cut stated; `guardflow trace` has them in full. The workflow graph and \
bounds come from the workflow file as it is now (said when it changed since the run).\n\n\
Exit status: 0 written, 2 no such run or store, or the file cannot be written."
)]
pub struct Args {
    /// The run (see `guardflow runs`)
    #[arg(value_name = "RUN_ID")]
    run: String,
    /// Where to write the page (`-` for standard output); default
    /// `RUN_ID.html` in the working directory
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    #[command(flatten)]
    store: super::store_arg::StoreArg,
}

pub fn run(args: Args) -> u8 {
    let path = match args.store.locate(Some(&args.run)) {
        Ok(p) => p,
        Err(e) => return super::fail(e),
    };
    let data = match Store::open_read(&path).and_then(|s| report::load(&s, &args.run)) {
        Ok(d) => d,
        Err(e) => return super::fail(e),
    };
    let page = report::render(&data, &report::Options::default());
    let out = args
        .output
        .unwrap_or_else(|| PathBuf::from(format!("{}.html", args.run)));
    if out.as_os_str() == "-" {
        out!("{page}");
        return EXIT_OK;
    }
    if let Err(e) = std::fs::write(&out, page.as_bytes()) {
        return super::fail(format!(
            "{}: {}",
            out.display(),
            crate::check::io_reason(&e)
        ));
    }
    eprintln!(
        "wrote {} ({} attempts, {} KiB)",
        out.display(),
        data.events
            .iter()
            .filter(|e| e.get("event").and_then(|v| v.as_str()) == Some("attempt_started"))
            .count(),
        page.len().div_ceil(1024)
    );
    EXIT_OK
}
