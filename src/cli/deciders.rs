//! `guardflow deciders`: every place where a model or a person, not a
//! deterministic check, decides whether a workflow moves on.

use std::path::PathBuf;

use clap::ValueEnum;

use super::{files, ColorChoice, Format, EXIT_FINDINGS, EXIT_OK};
use crate::check::deciders::{deciders, Decider, Who};
use crate::check::{self};
use crate::cli::output::out;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DecidersFormat {
    /// A list for people
    Text,
    /// One JSON document: stable, for a CI job to diff
    Json,
}

/// List where a model or a person decides whether the workflow moves on
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  guardflow deciders examples/clma.guardflow\n  guardflow deciders flow.guardflow --format json > deciders.json && git diff --exit-code deciders.json\n\n\
Lists every judge (a guard that asks a generator), every `human` guard and every action a person \
writes, by action (its `:guard`, `:pre-guard` and `:pre`) and method (`:pre`), in the order of \
the file. A judge whose question a deterministic guard answers (syntax, JSON, a schema, imports, \
secrets, length, tests) is flagged with that guard.\n\nExit status: 0 listed, 1 the program has \
errors, 2 it cannot be read."
)]
pub struct Args {
    /// The workflow file
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Output format
    #[arg(long, value_enum, default_value = "text")]
    format: DecidersFormat,
    /// Colour the findings, if the program does not check
    #[arg(long, value_enum, default_value = "auto")]
    color: ColorChoice,
}

pub fn run(args: Args) -> u8 {
    let text = match files::read_source(&args.file) {
        Ok(t) => t,
        Err(e) => return super::fail(e),
    };
    let name = args.file.to_string_lossy().into_owned();
    let checked = check::check_source(&name, &text);
    let Some(program) = &checked.program else {
        super::check::print_findings(&checked, Format::Human, args.color.enabled());
        eprintln!("error: the program has errors; nothing to list");
        return EXIT_FINDINGS;
    };
    let list = deciders(program);
    match args.format {
        DecidersFormat::Text => out!("{}", text_list(&name, &list)),
        DecidersFormat::Json => {
            let doc = serde_json::json!({ "file": name, "deciders": list });
            out!(
                "{}\n",
                serde_json::to_string_pretty(&doc).unwrap_or_default()
            );
        }
    }
    EXIT_OK
}

/// The list for people: by action or method, one line a decider, a
/// second for a deterministic guard that could decide instead.
pub fn text_list(file: &str, list: &[Decider]) -> String {
    let mut s = String::new();
    let (models, people) = (
        list.iter().filter(|d| d.who == Who::Model).count(),
        list.iter().filter(|d| d.who == Who::Person).count(),
    );
    let replaceable = list.iter().filter(|d| d.replace_with.is_some()).count();
    s.push_str(&format!(
        "{file}: {} where a model decides, {} where a person does{}\n",
        plural(models, "place"),
        people,
        if replaceable > 0 {
            format!("; {replaceable} a deterministic guard could decide")
        } else {
            String::new()
        }
    ));
    let mut last = "";
    for d in list {
        if d.at != last {
            s.push_str(&format!("  {}\n", d.at));
            last = &d.at;
        }
        let who = match d.who {
            Who::Model => "model",
            Who::Person => "person",
        };
        let via = if d.via.is_empty() {
            String::new()
        } else {
            format!("{} → ", d.via.join(" → "))
        };
        let by = d
            .generator
            .as_ref()
            .map_or(String::new(), |g| format!(" asks `{g}`"));
        let question = d
            .question
            .as_ref()
            .map_or(String::new(), |q| format!(": \"{}\"", one_line(q, 72)));
        let calls = d.calls.map_or(String::new(), |n| {
            format!(" ({} per attempt at most)", plural(n as usize, "call"))
        });
        let what = if d.place == "generate" {
            "a person writes the artifact".to_string()
        } else {
            format!("{via}{}{by}{question}{calls}", d.name)
        };
        s.push_str(&format!("    [{who}] :{} {what}\n", d.place));
        if let Some(r) = &d.replace_with {
            s.push_str(&format!(
                "      deterministic instead: `{}`: {}\n",
                r.guard, r.why
            ));
        }
    }
    s
}

/// `text` on one line (whitespace runs as one space), cut at `max`
/// characters.
fn one_line(text: &str, max: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &flat[..i]),
        None => flat,
    }
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}
