//! `guardflow graph`: a task's decomposition and orderings as Graphviz DOT
//! or Mermaid, with deadlock witnesses marked.

use crate::cli::output::out;
use std::fmt::Write as _;
use std::path::PathBuf;

use clap::ValueEnum;

use super::{files, ColorChoice, Format, EXIT_FINDINGS, EXIT_OK};
use crate::check::ir::{Callee, Program, TaskId};
use crate::check::verify::graph::{MethodGraph, Order};
use crate::check::{self, Checked};

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    /// Graphviz: render with `dot -Tsvg`
    Dot,
    /// Mermaid: paste into Markdown that renders it
    Mermaid,
}

/// Draw a task's methods, subtasks, orderings and data flow.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  guardflow graph examples/feature.guardflow --task feature | dot -Tsvg > feature.svg\n  guardflow graph examples/tdd.guardflow --task tdd --format mermaid\n\nSolid arrows are orderings (finish before start), dashed arrows data (an artifact read).\nArrows in red are the witness of a deadlock: a read the ordering cannot satisfy, or an\nordering cycle. Tasks called as subtasks are drawn inside, once each."
)]
pub struct Args {
    /// The workflow file
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// The task to draw (default: as for `run`, the one task no other task
    /// calls)
    #[arg(long, value_name = "TASK")]
    task: Option<String>,
    /// Output format
    #[arg(long, value_enum, default_value = "dot")]
    format: GraphFormat,
    /// Colour the findings, if the program does not check
    #[arg(long, value_enum, default_value = "auto")]
    color: ColorChoice,
}

pub fn run(args: Args) -> u8 {
    let text = match files::read_source(&args.file) {
        Ok(t) => t,
        Err(e) => return super::fail(e),
    };
    let checked = check::check_source(&args.file.to_string_lossy(), &text);
    let (Some(program), Some(verified)) = (&checked.program, &checked.verified) else {
        super::check::print_findings(&checked, Format::Human, args.color.enabled());
        eprintln!("error: the program has name or type errors; nothing to draw");
        return EXIT_FINDINGS;
    };
    // the same rule as `run`: the one task no other task calls
    let name = match &args.task {
        Some(name) => name.clone(),
        None => match super::run::default_task(program) {
            Ok(name) => name,
            Err(e) => return super::fail(format!("{}: {e}", args.file.display())),
        },
    };
    let Some(task) = program.task(&name) else {
        return super::fail(format!(
            "{}: {}",
            args.file.display(),
            crate::engine::unknown_task(program, &name)
        ));
    };
    let out = match args.format {
        GraphFormat::Dot => dot(program, &verified.graphs, task),
        GraphFormat::Mermaid => mermaid(program, &verified.graphs, task),
    };
    out!("{out}");
    report_errors(&checked)
}

fn report_errors(checked: &Checked) -> u8 {
    if checked.has_errors() {
        eprintln!("note: the program has findings; run `guardflow check` for them");
        EXIT_FINDINGS
    } else {
        EXIT_OK
    }
}

/// One method's edges: (from, to, is_data, is_witness).
pub(crate) fn edges(graph: &MethodGraph) -> Vec<(u32, u32, bool, bool)> {
    let mut out: Vec<(u32, u32, bool, bool)> = graph
        .ordering_edges()
        .into_iter()
        .map(|(a, b)| (a, b, false, graph.order(b, a) == Order::Before))
        .collect();
    for e in &graph.data {
        out.push((
            e.from,
            e.to,
            true,
            graph.order(e.from, e.to) != Order::Before,
        ));
    }
    out
}

/// Tasks drawn, in order, starting from `root`: each once.
pub(crate) fn tasks_below(program: &Program, root: TaskId) -> Vec<TaskId> {
    let mut order = vec![root];
    let mut i = 0;
    while i < order.len() {
        let t = &program.tasks[order[i].index()];
        for m in &t.methods {
            for s in &m.subtasks {
                if let Callee::Task(u) = s.callee {
                    if !order.contains(&u) {
                        order.push(u);
                    }
                }
            }
        }
        i += 1;
    }
    order
}

pub(crate) fn callee_name(program: &Program, c: Callee) -> &str {
    match c {
        Callee::Action(a) => &program.actions[a.index()].name,
        Callee::Task(t) => &program.tasks[t.index()].name,
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

pub(crate) fn dot(program: &Program, graphs: &[Vec<MethodGraph>], root: TaskId) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "digraph \"{}\" {{",
        escape(&program.tasks[root.index()].name)
    );
    let _ = writeln!(
        out,
        "  rankdir=LR; compound=true; node [shape=box, fontname=\"Helvetica\"];"
    );
    for t in tasks_below(program, root) {
        let task = &program.tasks[t.index()];
        let _ = writeln!(out, "  subgraph \"cluster_t{}\" {{", t.0);
        let _ = writeln!(
            out,
            "    label=\"task {}\"; style=rounded;",
            escape(&task.name)
        );
        for (m, method) in task.methods.iter().enumerate() {
            let _ = writeln!(out, "    subgraph \"cluster_t{}_m{m}\" {{", t.0);
            let _ = writeln!(
                out,
                "      label=\"{}. method {}\"; style=dashed;",
                m + 1,
                escape(&method.name)
            );
            for (i, s) in method.subtasks.iter().enumerate() {
                // a map is drawn as a stack: one call per item
                let shape = match (s.callee, &s.each) {
                    (_, Some(_)) => ", shape=box3d",
                    (Callee::Task(_), None) => ", shape=folder",
                    (Callee::Action(_), None) => "",
                };
                let _ = writeln!(
                    out,
                    "      \"t{}_m{m}_s{i}\" [label=\"{}: {}{}\"{shape}];",
                    t.0,
                    escape(&s.label),
                    escape(callee_name(program, s.callee)),
                    map_suffix(s)
                );
            }
            for (a, b, data, witness) in edges(&graphs[t.index()][m]) {
                let mut attrs = Vec::new();
                if data {
                    attrs.push("style=dashed");
                }
                if witness {
                    attrs.push("color=red, penwidth=2");
                }
                let _ = writeln!(
                    out,
                    "      \"t{}_m{m}_s{a}\" -> \"t{}_m{m}_s{b}\" [{}];",
                    t.0,
                    t.0,
                    attrs.join(", ")
                );
            }
            let _ = writeln!(out, "    }}");
        }
        let _ = writeln!(out, "  }}");
    }
    let _ = writeln!(out, "}}");
    out
}

/// ` × ≤12 (4 at a time)` after a map's callee; nothing for a plain call.
pub(crate) fn map_suffix(s: &crate::check::ir::Subtask) -> String {
    s.each.as_ref().map_or(String::new(), |e| {
        let k = e
            .parallel
            .map_or(String::new(), |k| format!(" ({k} at a time)"));
        format!(" × ≤{}{k}", e.bound)
    })
}

fn mermaid(program: &Program, graphs: &[Vec<MethodGraph>], root: TaskId) -> String {
    let mut out = String::from("flowchart LR\n");
    let mut link = 0usize;
    let mut red = Vec::new();
    for t in tasks_below(program, root) {
        let task = &program.tasks[t.index()];
        let _ = writeln!(
            out,
            "  subgraph t{}[\"task {}\"]",
            t.0,
            task.name.replace('"', "'")
        );
        for (m, method) in task.methods.iter().enumerate() {
            let _ = writeln!(
                out,
                "    subgraph t{}_m{m}[\"{}. method {}\"]",
                t.0,
                m + 1,
                method.name.replace('"', "'")
            );
            for (i, s) in method.subtasks.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "      t{}_m{m}_s{i}[\"{}: {}{}\"]",
                    t.0,
                    s.label.replace('"', "'"),
                    callee_name(program, s.callee).replace('"', "'"),
                    map_suffix(s)
                );
            }
            for (a, b, data, witness) in edges(&graphs[t.index()][m]) {
                let arrow = if data { "-.->" } else { "-->" };
                let _ = writeln!(out, "      t{}_m{m}_s{a} {arrow} t{}_m{m}_s{b}", t.0, t.0);
                if witness {
                    red.push(link);
                }
                link += 1;
            }
            let _ = writeln!(out, "    end");
        }
        let _ = writeln!(out, "  end");
    }
    for l in red {
        let _ = writeln!(out, "  linkStyle {l} stroke:red,stroke-width:3px");
    }
    out
}
