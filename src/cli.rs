//! The command line: one file per subcommand. Exit codes are the same
//! everywhere: 0 success, 1 findings with errors (or a failed run), 2 a
//! usage or I/O error.

// standard output goes through `output` (no panic on a closed pipe)
#![deny(clippy::print_stdout)]

mod bench;
pub(crate) mod bounds;
mod check;
mod compile;
mod deciders;
mod explain;
mod export;
mod files;
mod fmt;
mod follow;
pub(crate) mod graph;
mod import;
mod lsp;
pub(crate) mod output;
mod progress;
mod repl;
mod report;
pub(crate) mod run;
mod runs;
mod serve;
mod show;
mod stats;
mod stop;
mod store_arg;
mod test;
mod trace;
mod worker;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

pub const EXIT_OK: u8 = 0;
pub const EXIT_FINDINGS: u8 = 1;
pub const EXIT_USAGE: u8 = 2;

#[derive(Parser)]
#[command(
    name = "guardflow",
    version,
    about = "A workflow language for LLM work, verified before it runs",
    long_about = "guardflow runs LLM work as workflows of generative actions: a generator \
proposes an artifact, a deterministic guard accepts or rejects it, and rejected \
attempts retry with the guard's feedback, a bounded number of times. Tasks are \
decomposed into methods, tried in order; subtasks run in sequence (a ; b) or \
concurrently (a || b). `guardflow check` proves a workflow well-formed before a \
single model call is made.",
    after_help = "Examples:\n  guardflow check examples/\n  guardflow check flow.guardflow --format json\n  guardflow compile flow.guardflow -o flow.json\n  guardflow explain E0102\n  guardflow graph examples/feature.guardflow --task feature | dot -Tsvg > f.svg\n  guardflow run examples/planning.guardflow --input goal=\"…\" \\\n      --replay examples/fixtures/planning.jsonl\n  guardflow runs; guardflow show RUN_ID\n  guardflow test examples/\n  guardflow fmt --check examples/\n  guardflow import workflow.json -o flow.guardflow\n  guardflow repl examples/planning.guardflow\n  guardflow lsp   (started by an editor)\n\nDocs: docs/language.md, docs/diagnostics.md"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Bench(bench::Args),
    Check(check::Args),
    Compile(compile::Args),
    Deciders(deciders::Args),
    Explain(explain::Args),
    Fmt(fmt::Args),
    Graph(graph::Args),
    Import(import::Args),
    Lsp(lsp::Args),
    Repl(repl::Args),
    Run(Box<run::Args>),
    Test(test::Args),
    Runs(runs::Args),
    Show(show::Args),
    Trace(trace::Args),
    Follow(follow::Args),
    Export(export::Args),
    Stats(stats::Args),
    Report(report::Args),
    Serve(serve::Args),
    Worker(worker::Args),
}

/// How findings are printed.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people: tables, trees, diagnostics with source excerpts.
    Human,
    /// One JSON object per line, for scripts, CI and editors.
    Json,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    /// For output on stderr.
    fn enabled_on_stderr(self) -> bool {
        match self {
            ColorChoice::Auto => {
                std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal()
            }
            other => other.enabled(),
        }
    }

    fn enabled(self) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal()
            }
        }
    }
}

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { EXIT_OK });
        }
    };
    let code = match cli.command {
        Command::Bench(args) => bench::run(args),
        Command::Check(args) => check::run(args),
        Command::Compile(args) => compile::run(args),
        Command::Deciders(args) => deciders::run(args),
        Command::Explain(args) => explain::run(args),
        Command::Fmt(args) => fmt::run(args),
        Command::Graph(args) => graph::run(args),
        Command::Import(args) => import::run(args),
        Command::Lsp(args) => lsp::run(args),
        Command::Repl(args) => repl::run(args),
        Command::Run(args) => run::run(*args),
        Command::Test(args) => test::run(args),
        Command::Runs(args) => runs::run(args),
        Command::Show(args) => show::run(args),
        Command::Trace(args) => trace::run(args),
        Command::Follow(args) => follow::run(args),
        Command::Export(args) => export::run(args),
        Command::Stats(args) => stats::run(args),
        Command::Report(args) => report::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Worker(args) => worker::run(args),
    };
    ExitCode::from(if output::failed() { EXIT_USAGE } else { code })
}

/// Prints a usage or I/O error the same way everywhere.
pub(crate) fn fail(message: impl std::fmt::Display) -> u8 {
    eprintln!("error: {message}");
    EXIT_USAGE
}
