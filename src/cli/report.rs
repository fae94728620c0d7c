//! `guardflow report`: one run, or one bench (`--bench`), as a
//! self-contained HTML page.

use std::path::PathBuf;

use super::EXIT_OK;
use crate::cli::output::out;
use crate::report;
use crate::store::Store;

/// Write one run as a self-contained HTML page: timeline, decomposition
/// tree, every attempt, the workflow graph and the bounds; or, with
/// --bench, a bench's results with charts
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  guardflow report 20261127-081503-3fa2\n  guardflow report RUN_ID -o run.html --store examples/\n  guardflow report RUN_ID -o - > run.html\n  guardflow report --bench probe-probe -o bench.html\n\n\
The page needs no network: its style, script and pictures are inline and its Content-Security-Policy \
forbids loading anything. Everything the run recorded is escaped. A large run's texts are cut to keep \
the page under 10 MB, each cut stated; `guardflow trace` has them in full. The workflow graph and \
bounds come from the workflow file as it is now (said when it changed since the run).\n\n\
With --bench NAME the page is the bench's (see `guardflow bench`): the results table with the numbers \
`guardflow bench --report NAME` prints, success with its Wilson 95 % interval per model and arm, an \
attempts histogram per model and arm, and every trial with its run id.\n\n\
Exit status: 0 written, 2 no such run, bench or store, or the file cannot be written."
)]
pub struct Args {
    /// The run (see `guardflow runs`)
    #[arg(value_name = "RUN_ID", required_unless_present = "bench")]
    run: Option<String>,
    /// The page of this bench instead (its name, as `guardflow bench
    /// --report` takes it)
    #[arg(long, value_name = "NAME", conflicts_with = "run")]
    bench: Option<String>,
    /// Where to write the page (`-` for standard output); default
    /// `RUN_ID.html` (`bench-NAME.html`) in the working directory
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    #[command(flatten)]
    store: super::store_arg::StoreArg,
}

pub fn run(args: Args) -> u8 {
    let run = match (&args.run, &args.bench) {
        (Some(run), None) => run.clone(),
        (None, Some(bench)) => return bench_page(&args, bench),
        _ => return super::fail("give a RUN_ID or --bench NAME"),
    };
    let path = match args.store.locate(Some(&run)) {
        Ok(p) => p,
        Err(e) => return super::fail(e),
    };
    let data = match Store::open_read(&path).and_then(|s| report::load(&s, &run)) {
        Ok(d) => d,
        Err(e) => return super::fail(e),
    };
    let page = report::render(&data, &report::Options::default());
    let out = args
        .output
        .unwrap_or_else(|| PathBuf::from(format!("{run}.html")));
    match write_page(&out, &page) {
        Ok(false) => return EXIT_OK,
        Ok(true) => {}
        Err(code) => return code,
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

/// `--bench NAME`: the bench's page.
fn bench_page(args: &Args, name: &str) -> u8 {
    let path = match args.store.locate(None) {
        Ok(p) => p,
        Err(e) => return super::fail(e),
    };
    let store = match Store::open_read(&path) {
        Ok(s) => s,
        Err(e) => return super::fail(e),
    };
    let data = match report::load_bench(&store, name) {
        Ok(Some(d)) => d,
        Ok(None) => {
            let known = store.benches().unwrap_or_default();
            return super::fail(format!(
                "the run store `{}` has no bench `{name}`{}",
                path.display(),
                if known.is_empty() {
                    String::new()
                } else {
                    format!(" (it has: {})", known.join(", "))
                }
            ));
        }
        Err(e) => return super::fail(e),
    };
    let page = report::render_bench(&data, &report::BenchOptions::default());
    // the default file: the name with anything but letters, digits, `-`,
    // `_` and `.` as `_` (a name may hold a `/`)
    let out = args.output.clone().unwrap_or_else(|| {
        let safe: String = name
            .chars()
            .map(|c| {
                if c.is_alphanumeric() || matches!(c, '-' | '_' | '.') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        PathBuf::from(format!("bench-{safe}.html"))
    });
    match write_page(&out, &page) {
        Ok(false) => return EXIT_OK,
        Ok(true) => {}
        Err(code) => return code,
    }
    eprintln!(
        "wrote {} ({} trials, {} KiB)",
        out.display(),
        data.trials.len(),
        page.len().div_ceil(1024)
    );
    EXIT_OK
}

/// Writes `page` to `out`, or to stdout for `-`: whether it went to a
/// file (which is then announced), or the exit code of a failed write.
fn write_page(out: &std::path::Path, page: &str) -> Result<bool, u8> {
    if out.as_os_str() == "-" {
        out!("{page}");
        return Ok(false);
    }
    std::fs::write(out, page.as_bytes())
        .map(|()| true)
        .map_err(|e| {
            super::fail(format!(
                "{}: {}",
                out.display(),
                crate::check::io_reason(&e)
            ))
        })
}
