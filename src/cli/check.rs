//! `guardflow check`: parse, resolve, type-check and verify, print the
//! findings, and with `--bounds` the worst case of every task.

use crate::cli::output::{out, outln};
use std::path::PathBuf;

use super::{files, ColorChoice, Format, EXIT_FINDINGS, EXIT_OK};
use crate::check::{self, Checked};
use crate::diagnostics::{self, Severity};

/// Check workflows for errors without running them.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  guardflow check flow.guardflow\n  guardflow check examples/            every .guardflow file below\n  guardflow check flow.guardflow --format json | jq .code\n  guardflow check flow.guardflow --bounds --target 0.99\n  guardflow check flow.guardflow --bounds --from-runs --action solve\n\nWhat is verified: names and types; deadlock freedom (orderings, data flow, resources);\ntermination (retries, timeouts, recursion, escalation). See docs/verification.md.\n\nExit status: 0 no errors (warnings allowed), 1 errors found, 2 usage or I/O error.\nExplain a finding with `guardflow explain CODE`."
)]
pub struct Args {
    /// Files or directories (every .guardflow file below a directory)
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Output format
    #[arg(long, value_enum, default_value = "human")]
    format: Format,
    /// Colour the human output
    #[arg(long, value_enum, default_value = "auto")]
    color: ColorChoice,
    /// Treat warnings as errors (exit 1 on any finding)
    #[arg(long)]
    deny_warnings: bool,
    /// Print each task's worst case: generator calls, guard runs, tokens,
    /// time along the critical path, and the probability of success
    #[arg(long)]
    bounds: bool,
    /// With --bounds: the smallest retry bound, the same for every action,
    /// that reaches this probability of success (e.g. 0.99)
    #[arg(long, value_name = "P", requires = "bounds", value_parser = probability)]
    target: Option<f64>,
    /// With --bounds: take each action's success probability per attempt
    /// from the recorded runs (`guardflow stats`) instead of `:p`
    #[arg(long, requires = "bounds")]
    from_runs: bool,
    /// With --from-runs: the run store (default: the one beside each file)
    #[arg(long, value_name = "PATH", requires = "from_runs")]
    store: Option<std::path::PathBuf>,
    /// With --bounds: also the bounds of every action (one call of it)
    #[arg(long, requires = "bounds")]
    actions: bool,
    /// With --bounds: also the bounds of this action (repeatable)
    #[arg(long, value_name = "NAME", requires = "bounds")]
    action: Vec<String>,
}

fn probability(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(p) if p > 0.0 && p < 1.0 => Ok(p),
        _ => Err("a probability between 0 and 1 (exclusive), such as 0.99".to_string()),
    }
}

pub fn run(args: Args) -> u8 {
    let paths = match files::expand(&args.paths) {
        Ok(p) => p,
        Err(e) => return super::fail(e),
    };
    let color = args.color.enabled();
    let (mut errors, mut warnings) = (0usize, 0usize);
    // the actions `--action` named that some file has
    let mut named = std::collections::BTreeSet::new();
    for path in &paths {
        let text = match files::read_source(path) {
            Ok(t) => t,
            Err(e) => return super::fail(e),
        };
        let checked = check::check_source(&path.to_string_lossy(), &text);
        print_findings(&checked, args.format, color);
        if args.bounds {
            match (&checked.program, &checked.verified, checked.has_errors()) {
                (Some(program), Some(verified), false) => {
                    let runs = if args.from_runs {
                        let store = match &args.store {
                            Some(s) => crate::store::resolve(s),
                            None => crate::store::default_path(path),
                        };
                        match super::bounds::measured(program, &store, path) {
                            Ok(r) => {
                                if args.format == Format::Human {
                                    outln!("{}: {}", path.display(), r.note);
                                }
                                Some(r)
                            }
                            Err(e) => return super::fail(e),
                        }
                    } else {
                        None
                    };
                    let program = runs.as_ref().map_or(program, |r| &r.program);
                    let bounds = crate::check::verify::bounds::task_bounds(
                        program,
                        &verified.graphs,
                        args.target,
                    );
                    let file = path.to_string_lossy();
                    super::bounds::print(&file, &bounds, args.format, args.target, runs.as_ref());
                    if args.actions || !args.action.is_empty() {
                        let actions: Vec<_> = crate::check::verify::bounds::action_bounds(program)
                            .into_iter()
                            .filter(|a| args.actions || args.action.contains(&a.action))
                            .collect();
                        for a in &actions {
                            named.insert(a.action.clone());
                        }
                        super::bounds::print_actions(&file, &actions, args.format, runs.as_ref());
                    }
                    if args.format == Format::Human {
                        for note in super::bounds::fallback_notes(program) {
                            outln!("  note: {note}");
                        }
                    }
                }
                _ if args.format == Format::Human => {
                    outln!("{}: no bounds: the program has errors", path.display())
                }
                _ => {}
            }
        }
        for d in &checked.diagnostics {
            match d.severity() {
                Severity::Error => errors += 1,
                Severity::Warning => warnings += 1,
            }
        }
    }
    let missing: Vec<&str> = args
        .action
        .iter()
        .filter(|a| !named.contains(*a))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() && errors == 0 {
        return super::fail(format!(
            "--action: no action `{}` in {}",
            missing.join("`, `"),
            if paths.len() == 1 {
                "the file"
            } else {
                "these files"
            }
        ));
    }
    if args.format == Format::Human {
        let files = format!(
            "{} file{}",
            paths.len(),
            if paths.len() == 1 { "" } else { "s" }
        );
        if errors + warnings == 0 {
            outln!("checked {files}: no problems found");
        } else {
            outln!(
                "checked {files}: {errors} error{}, {warnings} warning{}",
                if errors == 1 { "" } else { "s" },
                if warnings == 1 { "" } else { "s" }
            );
        }
    }
    if errors > 0 || (args.deny_warnings && warnings > 0) {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    }
}

/// Prints a check's findings in the chosen format.
pub fn print_findings(checked: &Checked, format: Format, color: bool) {
    let renderer = diagnostics::Renderer::new(&checked.sources);
    for d in &checked.diagnostics {
        match format {
            Format::Human => out!("{}", renderer.render(d, color)),
            Format::Json => outln!("{}", diagnostics::render_json(d, &checked.sources)),
        }
    }
}
