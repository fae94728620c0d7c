//! `guardflow test`: run the `test` items of workflows offline and
//! report like a test runner.

use crate::cli::output::outln;
use std::path::PathBuf;

use super::{files, ColorChoice, EXIT_FINDINGS, EXIT_OK};
use crate::engine::{Engine, TestOutcome};

/// Run the `test` items of workflows, each with its `:with` generator.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  guardflow test examples/\n  guardflow test flow.guardflow --filter recovers\n\nEach test runs its task with the `:with` generator (usually a `replay` recording) in place of \
every generator, then checks its `:expect` list: success or failure, bounds on generator calls, and \
guards the result must satisfy.\n\nExit status: 0 every test passed, 1 a test failed (or a workflow has errors), 2 usage or I/O error."
)]
pub struct Args {
    /// Files or directories (every .guardflow file below a directory)
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Run only the tests whose name contains this text
    #[arg(long, value_name = "TEXT")]
    filter: Option<String>,
    /// Colour the output
    #[arg(long, value_enum, default_value = "auto")]
    color: ColorChoice,
}

pub fn run(args: Args) -> u8 {
    let paths = match files::expand(&args.paths) {
        Ok(p) => p,
        Err(e) => return super::fail(e),
    };
    let color = args.color.enabled();
    let (ok, bad, reset) = if color {
        ("\x1b[32m", "\x1b[31m", "\x1b[0m")
    } else {
        ("", "", "")
    };
    let engine = Engine::new();
    let rt = match crate::engine::runtime() {
        Ok(rt) => rt,
        Err(e) => return super::fail(e),
    };
    let (mut passed, mut failed) = (0usize, 0usize);
    let mut failures: Vec<(String, Vec<String>)> = Vec::new();
    for path in &paths {
        let workflow = match engine.compile_file(path) {
            Ok(w) => w,
            Err(e) => {
                eprint!("{}", e.render(color));
                failed += 1;
                failures.push((
                    path.display().to_string(),
                    vec!["the workflow does not check".into()],
                ));
                continue;
            }
        };
        for (i, test) in workflow.program.tests.iter().enumerate() {
            if let Some(f) = &args.filter {
                if !test.name.contains(f.as_str()) {
                    continue;
                }
            }
            let label = format!("{} :: {}", path.display(), test.name);
            let outcome: TestOutcome = rt.block_on(engine.run_test(&workflow, i));
            if outcome.problems.is_empty() {
                passed += 1;
                outln!("test {label} ... {ok}ok{reset}");
            } else {
                failed += 1;
                outln!("test {label} ... {bad}FAILED{reset}");
                failures.push((label, outcome.problems));
            }
        }
    }
    if !failures.is_empty() {
        outln!("\nfailures:");
        for (label, problems) in &failures {
            outln!("\n---- {label} ----");
            for p in problems {
                outln!("  {}", p.replace('\n', "\n  "));
            }
        }
    }
    outln!();
    outln!("{passed} passed, {failed} failed");
    if failed == 0 {
        EXIT_OK
    } else {
        EXIT_FINDINGS
    }
}
