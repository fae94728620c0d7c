//! `guardflow repl`: the session on a terminal, or a script on stdin.

use std::path::PathBuf;

use super::ColorChoice;

/// Explore workflows interactively: define items, check, graph, run.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  guardflow repl examples/planning.guardflow\n  guardflow repl < session.txt                 run a script; exit 1 at the first error\n  guardflow repl --echo --keep-going < s.txt   a transcript of every input and result\n\nIn the REPL, :help lists the commands. History is kept in\n$XDG_DATA_HOME/guardflow/repl_history (~/.local/share/guardflow/repl_history)."
)]
pub struct Args {
    /// Workflow files to load first
    #[arg(value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Read standard input as a script even on a terminal
    #[arg(long)]
    script: bool,
    /// Script mode: print each input (`> ` first line, `. ` the others)
    /// before its results
    #[arg(long)]
    echo: bool,
    /// Script mode: go on after an error (exit 1 at the end)
    #[arg(long)]
    keep_going: bool,
    /// Colour the prompt, the input and the findings
    #[arg(long, value_enum, default_value = "auto")]
    color: ColorChoice,
}

pub fn run(args: Args) -> u8 {
    crate::repl::run(crate::repl::Options {
        files: args.files,
        color: args.color.enabled(),
        script: args.script,
        echo: args.echo,
        keep_going: args.keep_going,
    })
}
