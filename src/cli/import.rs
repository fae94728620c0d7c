//! `guardflow import`: an atomicguard JSON workflow as a `.guardflow`
//! file, laid out by the formatter and checked before it is written.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::{ColorChoice, EXIT_FINDINGS, EXIT_OK, EXIT_USAGE};
use crate::check::{self, io_reason, MAX_SOURCE_BYTES};
use crate::diagnostics;
use crate::import::{self, Source};

/// Import a workflow from atomicguard's JSON format (workflow.json).
#[derive(clap::Args)]
#[command(
    long_about = "Import a workflow from atomicguard's JSON format (the reference framework of \
\"Managing the Stochastic\"): its action pairs become actions (:generate, :guard, :retry rmax), \
`requires` the task's ordering, prompts with {placeholders} templates, guard types the standard \
library's guards, the model a generator. The result is laid out by `guardflow fmt` and checked \
before it is written. What has no equivalent (a Python guard or generator class, an output_type, \
…) is refused with where and why, and nothing is written.",
    after_help = "Examples:\n  guardflow import workflow.json                     print the .guardflow file\n  guardflow import workflow.json -o stack.guardflow\n  guardflow import benchmarks/workflows.json -o bench.guardflow   a map of workflows: one task each\n  guardflow import workflow.json --prompts prompts.json\n\nPrompt templates come from --prompts, else from a prompts.json beside the workflow, else from\neach action pair's `prompt`. The mapping is in docs/import.md.\n\nExit status: 0 imported, 1 the result does not check (a bug: please report it),\n2 refused (the messages say what and why), usage or I/O error."
)]
pub struct Args {
    /// atomicguard's workflow.json (or a map of workflows, as its
    /// benchmarks/workflows.json)
    #[arg(value_name = "FILE.json")]
    file: PathBuf,
    /// Where to write the .guardflow file (default: standard output)
    #[arg(short, long, value_name = "OUT.guardflow")]
    output: Option<PathBuf>,
    /// atomicguard's prompts.json (default: the one beside FILE, if any)
    #[arg(long, value_name = "PROMPTS.json")]
    prompts: Option<PathBuf>,
    /// Colour the diagnostics
    #[arg(long, value_enum, default_value = "auto")]
    color: ColorChoice,
}

pub fn run(args: Args) -> u8 {
    let name = args.file.to_string_lossy().into_owned();
    let text = match check::read_text(&args.file, MAX_SOURCE_BYTES) {
        Ok(t) => t,
        Err(e) => return super::fail(format!("{name}: {e}")),
    };
    let prompts_path = match &args.prompts {
        Some(p) => Some(p.clone()),
        None => {
            let beside = args
                .file
                .parent()
                .unwrap_or(Path::new(""))
                .join("prompts.json");
            beside.is_file().then_some(beside)
        }
    };
    let prompts = match &prompts_path {
        Some(p) => match check::read_text(p, MAX_SOURCE_BYTES) {
            Ok(t) => Some((p.to_string_lossy().into_owned(), t)),
            Err(e) => return super::fail(format!("{}: {e}", p.display())),
        },
        None => None,
    };
    let imported = match import::import(
        Source {
            name: &name,
            text: &text,
        },
        prompts.as_ref().map(|(n, t)| Source { name: n, text: t }),
    ) {
        Ok(i) => i,
        Err(errors) => {
            for e in &errors {
                eprintln!("error: {e}");
            }
            eprintln!(
                "error: {name}: not imported ({} problem{}); nothing was written",
                errors.len(),
                if errors.len() == 1 { "" } else { "s" }
            );
            return EXIT_USAGE;
        }
    };
    // checked as the file it becomes, so relative paths resolve there
    let as_name = match &args.output {
        Some(o) => o.to_string_lossy().into_owned(),
        None => "imported.guardflow".to_string(),
    };
    let checked = check::check_source(&as_name, &imported.text);
    if !checked.diagnostics.is_empty() {
        let renderer = diagnostics::Renderer::new(&checked.sources);
        let color = args.color.enabled_on_stderr();
        for d in &checked.diagnostics {
            eprint!("{}", renderer.render(d, color));
        }
        eprintln!(
            "error: {name}: the imported workflow does not check cleanly; this is a bug in guardflow import, please report it with the JSON; nothing was written"
        );
        return EXIT_FINDINGS;
    }
    for note in &imported.notes {
        eprintln!("note: {note}");
    }
    match &args.output {
        None => {
            let mut stdout = std::io::stdout().lock();
            if let Err(e) = stdout
                .write_all(imported.text.as_bytes())
                .and_then(|()| stdout.flush())
            {
                return super::fail(format!("standard output: {}", io_reason(&e)));
            }
        }
        Some(out) => {
            if let Err(e) = write_atomically(out, &imported.text) {
                return super::fail(format!("{}: {}", out.display(), io_reason(&e)));
            }
            eprintln!(
                "imported {} workflow{} ({}) from {name} into {}",
                imported.workflows.len(),
                if imported.workflows.len() == 1 {
                    ""
                } else {
                    "s"
                },
                imported.workflows.join(", "),
                out.display()
            );
        }
    }
    EXIT_OK
}

/// Writes a temporary file beside `path`, then renames it over `path`:
/// the file is whole or untouched.
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(text.as_bytes())?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
