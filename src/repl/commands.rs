//! The REPL's commands, and items typed at the prompt: each input gives a
//! [`Reply`], which says whether it was an error.

use crate::cli::output::outln;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use super::describe;
use super::session::{Built, Session};
use crate::check::ir::{GeneratorId, Program, TaskId, Ty};
use crate::check::verify::bounds::task_bounds;
use crate::check::Checked;
use crate::diagnostics::{self, suggest};
use crate::engine::{Engine, Replacement, RunConfig, Workflow};
use crate::runtime::{inputs, RunReport, Value, Verdict};
use crate::syntax::lexer::{tokens, Token};

/// A REPL command: its name, its arguments, what it does.
pub struct Command {
    pub name: &'static str,
    pub args: &'static str,
    pub help: &'static str,
}

pub const COMMANDS: &[Command] = &[
    Command {
        name: ":load",
        args: "FILE...",
        help: "add workflow files to the session",
    },
    Command {
        name: ":reload",
        args: "",
        help: "read the loaded files again",
    },
    Command {
        name: ":check",
        args: "",
        help: "every finding of the session, as `guardflow check` prints them",
    },
    Command {
        name: ":type",
        args: "EXPR",
        help: "the type of a name, a literal or a guard expression",
    },
    Command {
        name: ":items",
        args: "",
        help: "the session's items and their signatures",
    },
    Command {
        name: ":show",
        args: "NAME",
        help: "an item's definition, doc comment and signature",
    },
    Command {
        name: ":graph",
        args: "TASK [--dot]",
        help: "a task's decomposition and orderings (text, or Graphviz)",
    },
    Command {
        name: ":bounds",
        args: "TASK",
        help: "a task's worst case: generator calls, guard runs, tokens, time",
    },
    Command {
        name: ":guard",
        args: "EXPR <<< TEXT | \"…\" | @FILE",
        help: "evaluate a guard on an artifact: the verdict and feedback",
    },
    Command {
        name: ":run",
        args:
            "TASK [NAME=VALUE | NAME=@FILE]... [--replay FILE | --cmd PROGRAM | --with GENERATOR]",
        help: "run a task (Ctrl-C cancels it)",
    },
    Command {
        name: ":trace",
        args: "",
        help: "the last run's attempts: outputs, verdicts, feedback",
    },
    Command {
        name: ":help",
        args: "",
        help: "this list",
    },
    Command {
        name: ":quit",
        args: "",
        help: "leave (also Ctrl-D)",
    },
];

pub fn is_command(word: &str) -> bool {
    word == ":q" || COMMANDS.iter().any(|c| c.name == word)
}

/// What one input came to.
#[derive(Default)]
pub struct Reply {
    /// For standard output.
    pub out: String,
    /// An error, for standard error; the input failed.
    pub error: Option<String>,
    pub quit: bool,
}

impl Reply {
    fn out(out: impl Into<String>) -> Reply {
        Reply {
            out: out.into(),
            ..Reply::default()
        }
    }

    fn error(e: impl Into<String>) -> Reply {
        Reply {
            error: Some(e.into()),
            ..Reply::default()
        }
    }

    pub fn failed(&self) -> bool {
        self.error.is_some()
    }
}

/// The names the checker gives the temporary items of `:type` and
/// `:guard`.
const TYPE_GUARD: &str = "__repl_type";
const GUARD: &str = "__repl_guard";
const ARTIFACT: &str = "__repl_artifact";

/// A session with an engine to run it.
pub struct Repl {
    pub session: Session,
    engine: Engine,
    rt: tokio::runtime::Runtime,
    last: Option<RunReport>,
    pub color: bool,
}

impl Repl {
    pub fn new(color: bool) -> Result<Repl, String> {
        let mut engine = Engine::new();
        engine.on_event(|e| {
            if let Some(line) = event_line(e) {
                outln!("{line}");
            }
        });
        Ok(Repl {
            session: Session::default(),
            engine,
            rt: crate::engine::runtime()?,
            last: None,
            color,
        })
    }

    /// Makes Ctrl-C an event the REPL handles from now on, instead of the
    /// end of the process.
    pub fn catch_ctrl_c(&self) {
        self.rt.block_on(async {
            drop(on_interrupt());
        });
    }

    /// Handles one complete input: a command, or items to define.
    pub fn handle(&mut self, input: &str) -> Reply {
        let text = input.trim();
        if text.is_empty() {
            return Reply::default();
        }
        let Some(rest) = text.strip_prefix(':') else {
            return self.define(text);
        };
        let name_len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .unwrap_or(rest.len());
        let name = &text[..name_len + 1];
        let args = text[name_len + 1..].trim();
        match name {
            ":load" => self.load(args),
            ":reload" => self.reload(),
            ":check" => self.check(),
            ":type" => self.type_of(args),
            ":items" => self.items(),
            ":show" => self.show(args),
            ":graph" => self.graph(args),
            ":bounds" => self.bounds(args),
            ":guard" => self.guard(args),
            ":run" => self.run(args),
            ":trace" => self.trace(),
            ":help" => Reply::out(help()),
            ":quit" | ":q" => Reply {
                quit: true,
                ..Reply::default()
            },
            _ if name.starts_with(":default-") => self.define(text),
            _ => {
                let names = COMMANDS.iter().map(|c| c.name);
                let hint = suggest::closest(name, names)
                    .map_or(String::new(), |s| format!("; did you mean `{s}`?"));
                Reply::error(format!(
                    "unknown command `{name}`{hint} (`:help` lists the commands)"
                ))
            }
        }
    }

    fn render_errors(&self, checked: &Checked) -> String {
        let renderer = diagnostics::Renderer::new(&checked.sources);
        checked
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .map(|d| renderer.render(d, self.color))
            .collect()
    }

    /// The session checked; with errors, the rendered errors.
    fn built(&self, extra: Option<&str>) -> Result<Built, Reply> {
        let built = self.session.build(extra);
        if built.checked.has_errors() {
            let mut reply = Reply::out(self.render_errors(&built.checked));
            reply.error = Some(match extra {
                Some(_) => "the expression does not check (in this session)".into(),
                None => {
                    "the session has errors; fix them (or redefine the item) and try again".into()
                }
            });
            return Err(reply);
        }
        Ok(built)
    }

    fn define(&mut self, text: &str) -> Reply {
        let defined = match self.session.define(text, self.color) {
            Ok(d) => d,
            Err(rendered) => {
                let mut r = Reply::out(rendered);
                r.error = Some("the input has syntax errors; nothing was defined".into());
                return r;
            }
        };
        if defined.is_empty() {
            return Reply::default();
        }
        let mut out = String::new();
        for d in &defined {
            let verb = if d.replaced { "replaced" } else { "defined" };
            let _ = writeln!(out, "{verb} {}", d.what);
        }
        self.after_change(out)
    }

    /// Re-checks the session after a change: the errors, if any.
    fn after_change(&self, mut out: String) -> Reply {
        let built = self.session.build(None);
        if built.checked.has_errors() {
            out.push_str(&self.render_errors(&built.checked));
            let n = built
                .checked
                .diagnostics
                .iter()
                .filter(|d| d.is_error())
                .count();
            let mut r = Reply::out(out);
            r.error = Some(format!(
                "the session has {n} error{}",
                if n == 1 { "" } else { "s" }
            ));
            return r;
        }
        Reply::out(out)
    }

    fn load(&mut self, args: &str) -> Reply {
        let paths = match split_words(args) {
            Ok(p) if !p.is_empty() => p,
            Ok(_) => return Reply::error("`:load FILE...`: which file?"),
            Err(e) => return Reply::error(e),
        };
        let mut out = String::new();
        for p in &paths {
            match self.session.load(Path::new(p)) {
                Ok(n) => {
                    let _ = writeln!(out, "loaded {p}: {n} item{}", if n == 1 { "" } else { "s" });
                }
                Err(e) => {
                    let mut r = Reply::out(out);
                    r.error = Some(e);
                    return r;
                }
            }
        }
        self.after_change(out)
    }

    fn reload(&mut self) -> Reply {
        if self.session.files.is_empty() {
            return Reply::error("no file is loaded; `:load FILE` loads one");
        }
        match self.session.reload() {
            Ok(n) => self.after_change(format!(
                "reloaded {n} file{}\n",
                if n == 1 { "" } else { "s" }
            )),
            Err(e) => Reply::error(e),
        }
    }

    fn check(&self) -> Reply {
        let built = self.session.build(None);
        let c = &built.checked;
        let renderer = diagnostics::Renderer::new(&c.sources);
        let mut out: String = c
            .diagnostics
            .iter()
            .map(|d| renderer.render(d, self.color))
            .collect();
        let errors = c.diagnostics.iter().filter(|d| d.is_error()).count();
        let warnings = c.diagnostics.len() - errors;
        if errors + warnings == 0 {
            out.push_str("no problems found\n");
        } else {
            let _ = writeln!(
                out,
                "{errors} error{}, {warnings} warning{}",
                if errors == 1 { "" } else { "s" },
                if warnings == 1 { "" } else { "s" }
            );
        }
        let mut r = Reply::out(out);
        if errors > 0 {
            r.error = Some("the session does not check".into());
        }
        r
    }

    fn type_of(&self, expr: &str) -> Reply {
        if expr.is_empty() {
            return Reply::error("`:type EXPR`: the type of what?");
        }
        let toks: Vec<(Token, std::ops::Range<usize>)> = tokens(expr).collect();
        if let [(tok, _)] = toks.as_slice() {
            let literal = match tok {
                Token::String | Token::TripleString => Some("Text"),
                Token::Bool => Some("Bool"),
                Token::Number if expr.ends_with(|c: char| c.is_ascii_alphabetic()) => {
                    Some("Duration")
                }
                Token::Number if expr.contains('.') => Some("Float"),
                Token::Number => Some("Int"),
                _ => None,
            };
            if let Some(ty) = literal {
                return Reply::out(format!("{expr} : {ty}\n"));
            }
            if *tok == Token::Ident {
                let built = match self.built(None) {
                    Ok(b) => b,
                    Err(r) => return r,
                };
                let program = built.checked.program.as_ref();
                let sigs = program.map_or(Vec::new(), |p| describe::signatures(p, expr));
                if !sigs.is_empty() {
                    return Reply::out(sigs.join("\n") + "\n");
                }
            }
        }
        // a guard expression: its subject type, as the checker infers it
        let extra = format!("guard {TYPE_GUARD} = {expr}");
        let built = match self.built(Some(&extra)) {
            Ok(b) => b,
            Err(r) => return r,
        };
        match guard_subject(built.checked.program.as_ref(), TYPE_GUARD) {
            Some(ty) => Reply::out(format!("{expr} : guard on {ty}\n")),
            None => Reply::error(format!(
                "`{expr}` is not a name, a literal or a guard expression"
            )),
        }
    }

    fn items(&self) -> Reply {
        let built = self.session.build(None);
        let program = built.checked.program.as_ref();
        let line = |what: &str, name: Option<&str>| {
            let sig = match (program, name) {
                (Some(p), Some(n)) => {
                    let sigs = describe::signatures(p, n);
                    let kind = what.split(' ').next().unwrap_or("");
                    sigs.iter()
                        .find(|s| s.starts_with(kind))
                        .or(sigs.first())
                        .cloned()
                }
                _ => None,
            };
            format!("  {}\n", sig.unwrap_or_else(|| what.to_string()))
        };
        let mut out = String::new();
        for f in &self.session.files {
            let _ = writeln!(out, "{}:", f.path.display());
            for (what, name) in f.items() {
                out.push_str(&line(what, name));
            }
        }
        if !self.session.entries.is_empty() {
            let _ = writeln!(out, "typed at the prompt:");
            for e in &self.session.entries {
                out.push_str(&line(&e.what, e.name()));
            }
        }
        if out.is_empty() {
            out = "the session is empty: `:load FILE` or type an item\n".into();
        }
        if program.is_none() {
            out.push_str("(the session has errors: `:check` shows them)\n");
        }
        Reply::out(out)
    }

    fn show(&self, name: &str) -> Reply {
        if name.is_empty() {
            return Reply::error("`:show NAME`: which item?");
        }
        let built = self.session.build(None);
        let program = built.checked.program.as_ref();
        let mut out = String::new();
        let defs = self.session.definitions(name);
        for (place, text) in &defs {
            let _ = writeln!(out, "// {place}");
            let _ = writeln!(out, "{text}");
        }
        if let Some(p) = program {
            let sigs = describe::signatures(p, name);
            let externs: Vec<_> = p.externs.iter().filter(|e| e.name == name).collect();
            if defs.is_empty() && !externs.is_empty() {
                // the standard library's: its doc and signature
                let _ = writeln!(out, "// the standard library");
                for e in externs {
                    for l in e.doc.iter().flat_map(|d| d.lines()) {
                        let _ = writeln!(out, "/// {l}");
                    }
                }
                for s in &sigs {
                    let _ = writeln!(out, "{s}");
                }
            } else if !defs.is_empty() && !sigs.is_empty() {
                let _ = writeln!(out, "signature: {}", sigs.join("; "));
            }
        }
        if out.is_empty() {
            let mut all: Vec<String> = self.session.names().into_iter().map(|(n, _)| n).collect();
            if let Some(p) = program {
                all.extend(p.externs.iter().map(|e| e.name.clone()));
            }
            let hint = suggest::closest(name, all.iter().map(String::as_str))
                .map_or(String::new(), |s| format!("; did you mean `{s}`?"));
            return Reply::error(format!("nothing is named `{name}`{hint}"));
        }
        Reply::out(out)
    }

    fn task(&self, program: &Program, name: &str) -> Result<TaskId, Reply> {
        if name.is_empty() {
            return Err(Reply::error("which task?"));
        }
        program.task(name).ok_or_else(|| {
            let names = program.tasks.iter().map(|t| t.name.as_str());
            let hint = suggest::closest(name, names)
                .map_or(String::new(), |s| format!("; did you mean `{s}`?"));
            let all: Vec<&str> = program.tasks.iter().map(|t| t.name.as_str()).collect();
            Reply::error(format!(
                "there is no task `{name}`{hint} (tasks: {})",
                if all.is_empty() {
                    "none".to_string()
                } else {
                    all.join(", ")
                }
            ))
        })
    }

    fn graph(&self, args: &str) -> Reply {
        let words: Vec<&str> = args.split_whitespace().collect();
        let dot = words.contains(&"--dot");
        let names: Vec<&str> = words.iter().copied().filter(|w| *w != "--dot").collect();
        if names.len() != 1 {
            return Reply::error("`:graph TASK [--dot]`: name one task");
        }
        let built = match self.built(None) {
            Ok(b) => b,
            Err(r) => return r,
        };
        let (Some(program), Some(verified)) = (&built.checked.program, &built.checked.verified)
        else {
            return Reply::error("the session has errors");
        };
        let task = match self.task(program, names[0]) {
            Ok(t) => t,
            Err(r) => return r,
        };
        if dot {
            Reply::out(crate::cli::graph::dot(program, &verified.graphs, task))
        } else {
            Reply::out(describe::graph(program, task))
        }
    }

    fn bounds(&self, name: &str) -> Reply {
        let built = match self.built(None) {
            Ok(b) => b,
            Err(r) => return r,
        };
        let (Some(program), Some(verified)) = (&built.checked.program, &built.checked.verified)
        else {
            return Reply::error("the session has errors");
        };
        let task = match self.task(program, name) {
            Ok(t) => t,
            Err(r) => return r,
        };
        let all = task_bounds(program, &verified.graphs, None);
        let mine: Vec<_> = all
            .into_iter()
            .filter(|b| b.task == program.tasks[task.index()].name)
            .collect();
        Reply::out(crate::cli::bounds::table(name, &mine, None))
    }

    fn guard(&mut self, args: &str) -> Reply {
        let Some((expr, artifact)) = split_heredoc(args) else {
            return Reply::error("`:guard EXPR <<< TEXT`: give the artifact after `<<<` (text, a \"string\" or @FILE)");
        };
        if expr.is_empty() {
            return Reply::error("`:guard EXPR <<< TEXT`: which guard expression?");
        }
        let mut extra = format!("guard {GUARD} = {expr}");
        let mut text = None;
        if let Some(path) = artifact.strip_prefix('@') {
            match crate::check::read_text(Path::new(path.trim()), crate::check::MAX_DATA_BYTES) {
                Ok(t) => text = Some(t),
                Err(e) => return Reply::error(format!("cannot read `{}`: {e}", path.trim())),
            }
        } else if artifact.starts_with('"') {
            // read by the language's own string rules
            let _ = write!(extra, "\ninput {ARTIFACT}: Text = {artifact}");
        } else {
            text = Some(artifact.to_string());
        }
        let built = match self.built(Some(&extra)) {
            Ok(b) => b,
            Err(r) => return r,
        };
        let workflow = match self.workflow(built) {
            Ok(w) => w,
            Err(r) => return r,
        };
        let program = &workflow.program;
        let text = match text {
            Some(t) => t,
            None => match program
                .inputs
                .iter()
                .find(|i| i.name == ARTIFACT)
                .map(|i| &i.source)
            {
                Some(Some(crate::check::ir::InputSource::Value {
                    value: crate::check::ir::Value::Text(t),
                })) => t.clone(),
                _ => return Reply::error("the artifact is not a plain string"),
            },
        };
        let Some(ty) = guard_subject(Some(program), GUARD) else {
            return Reply::error("the guard did not check");
        };
        let subject = match inputs::parse_as(&ty, &text) {
            Ok(v) => v,
            Err(e) => {
                return Reply::error(format!(
                    "the guard is on {ty}, and the artifact is not one: {e}"
                ))
            }
        };
        let verdict = self.rt.block_on(async {
            let interrupted = on_interrupt();
            tokio::select! {
                v = self.engine.evaluate_guard(&workflow, GUARD, &subject) => Some(v),
                _ = interrupted => None,
            }
        });
        match verdict {
            None => Reply::error("cancelled by Ctrl-C"),
            Some(Err(e)) => Reply::error(e.to_string()),
            Some(Ok(Verdict::Pass)) => Reply::out(format!("pass ({expr} on {ty})\n")),
            Some(Ok(Verdict::Fail(f))) => {
                let mut r = Reply::out(format!("fail: {}\n", f.trim_end()));
                r.error = Some(format!("the artifact does not satisfy `{expr}`"));
                r
            }
            Some(Ok(Verdict::Fatal(f))) => {
                let mut r = Reply::out(format!("fatal: {}\n", f.trim_end()));
                r.error = Some(format!("`{expr}` could not judge the artifact"));
                r
            }
        }
    }

    /// The checked session as a workflow to run.
    fn workflow(&self, built: Built) -> Result<Workflow, Reply> {
        let checked = built.checked;
        let (Some(program), Some(verified)) = (checked.program, checked.verified) else {
            return Err(Reply::error("the session has errors"));
        };
        let worst_case_calls = task_bounds(&program, &verified.graphs, None)
            .into_iter()
            .map(|b| b.cost.map(|c| c.generator_calls))
            .collect();
        Ok(Workflow {
            program,
            sources: checked.sources,
            warnings: checked.diagnostics,
            workdir: self.session.workdir(),
            worst_case_calls,
        })
    }

    fn run(&mut self, args: &str) -> Reply {
        let words = match split_words(args) {
            Ok(w) => w,
            Err(e) => return Reply::error(e),
        };
        let built = match self.built(None) {
            Ok(b) => b,
            Err(r) => return r,
        };
        let workflow = match self.workflow(built) {
            Ok(w) => w,
            Err(r) => return r,
        };
        let config = match run_config(&words, &workflow, &self.engine) {
            Ok(c) => c,
            Err(e) => return Reply::error(e),
        };
        let started = match self.engine.start(&workflow, &config) {
            Ok(s) => s,
            // said for the command line; here inputs are NAME=VALUE
            Err(e) => return Reply::error(e.to_string().replace("--input ", "")),
        };
        let report = self.rt.block_on(async {
            let interrupted = on_interrupt();
            tokio::select! {
                report = started.execute() => report,
                _ = interrupted => started.cancelled("cancelled by Ctrl-C"),
            }
        });
        let mut r = Reply::out(describe::summary(&report));
        if !report.success {
            r.error = Some(format!("`{}` failed", report.task));
        }
        self.last = Some(report);
        r
    }

    fn trace(&self) -> Reply {
        match &self.last {
            Some(report) => Reply::out(describe::trace(report)),
            None => Reply::error("nothing has run yet; `:run TASK` runs one"),
        }
    }
}

/// Ends at the next Ctrl-C (SIGINT). Listens from the call on, not from
/// the first poll: call it before starting what it may cancel, so a
/// Ctrl-C right after a program starts is not lost. Call it inside the
/// runtime.
fn on_interrupt() -> impl std::future::Future<Output = ()> {
    let signal = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt());
    async move {
        match signal {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    }
}

/// One line for a run event worth seeing as it happens.
fn event_line(e: &crate::runtime::Event) -> Option<String> {
    use crate::runtime::{Event, VerdictKind};
    match e {
        Event::Attempt(a) => {
            let first = a.feedback.lines().next().unwrap_or("");
            Some(match a.verdict {
                VerdictKind::Pass => format!("  {} attempt {}: pass", a.action, a.attempt),
                VerdictKind::Fail => format!("  {} attempt {}: fail: {first}", a.action, a.attempt),
                VerdictKind::Fatal => {
                    format!("  {} attempt {}: fatal: {first}", a.action, a.attempt)
                }
                VerdictKind::Interrupted => {
                    format!("  {} attempt {}: interrupted", a.action, a.attempt)
                }
            })
        }
        Event::MethodSkipped { method, reason, .. } => {
            Some(format!("  method {method} skipped: {reason}"))
        }
        Event::MethodFailed { method, reason, .. } => {
            Some(format!("  method {method} failed: {reason}"))
        }
        Event::Escalated { target, .. } => Some(format!("  escalated to {target}")),
        _ => None,
    }
}

fn guard_subject(program: Option<&Program>, name: &str) -> Option<Ty> {
    program?
        .guards
        .iter()
        .find(|g| g.name == name)
        .map(|g| g.subject.clone())
}

/// `EXPR <<< TEXT`, split at the first `<<<` outside a string.
fn split_heredoc(args: &str) -> Option<(&str, &str)> {
    let toks: Vec<(Token, std::ops::Range<usize>)> = tokens(args).collect();
    for w in toks.windows(3) {
        if w.iter().all(|(t, _)| *t == Token::Less)
            && w[0].1.end == w[1].1.start
            && w[1].1.end == w[2].1.start
        {
            let artifact = &args[w[2].1.end..];
            let artifact = artifact.strip_prefix(' ').unwrap_or(artifact);
            let artifact = artifact.strip_prefix('\n').unwrap_or(artifact);
            return Some((args[..w[0].1.start].trim(), artifact));
        }
    }
    None
}

/// Words as a shell splits them: whitespace between, `"…"` and `'…'`
/// quoting.
pub fn split_words(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some(q) if q == c => break,
                        Some('\\') if c == '"' => match chars.next() {
                            Some(e) => cur.push(e),
                            None => return Err("a `\\` at the end of the line".into()),
                        },
                        Some(x) => cur.push(x),
                        None => return Err(format!("an unclosed {c}")),
                    }
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// `TASK [NAME=VALUE]... [--replay FILE | --cmd PROGRAM | --with GEN]`.
fn run_config(words: &[String], workflow: &Workflow, engine: &Engine) -> Result<RunConfig, String> {
    let program = &workflow.program;
    let mut task = None;
    let mut given = HashMap::new();
    let mut replacement = None;
    let mut i = 0;
    let usage = "`:run TASK [NAME=VALUE]... [--replay FILE | --cmd PROGRAM | --with GENERATOR]`";
    while i < words.len() {
        let w = &words[i];
        let next = || {
            words
                .get(i + 1)
                .cloned()
                .ok_or_else(|| format!("`{w}` needs a value: {usage}"))
        };
        match w.as_str() {
            "--replay" => {
                let given = next()?;
                let path = std::path::absolute(&given).map_err(|e| format!("--replay: {e}"))?;
                if !path.is_file() {
                    return Err(format!("--replay: `{given}`: no such file"));
                }
                replacement = Some(Replacement {
                    generator: "replay".into(),
                    args: vec![Value::String(path.to_string_lossy().into_owned())],
                });
                i += 2;
            }
            "--cmd" => {
                replacement = Some(Replacement {
                    generator: "cmd".into(),
                    args: vec![Value::String(next()?)],
                });
                i += 2;
            }
            "--with" => {
                let name = next()?;
                let Some(g) = program.generators.iter().position(|g| g.name == name) else {
                    let names = program.generators.iter().map(|g| g.name.as_str());
                    let hint = suggest::closest(&name, names)
                        .map_or(String::new(), |s| format!("; did you mean `{s}`?"));
                    return Err(format!("there is no generator `{name}`{hint}"));
                };
                replacement = Some(
                    engine
                        .replacement_for(workflow, GeneratorId(g as u32))
                        .map_err(|e| e.to_string())?,
                );
                i += 2;
            }
            flag if flag.starts_with("--") => {
                return Err(format!("unknown option `{flag}`: {usage}"))
            }
            _ => {
                match w.split_once('=') {
                    Some((name, value)) => {
                        given.insert(name.to_string(), value.to_string());
                    }
                    None if task.is_none() => task = Some(w.clone()),
                    None => return Err(format!("`{w}`: write NAME=VALUE; {usage}")),
                }
                i += 1;
            }
        }
    }
    let task = task.ok_or_else(|| format!("which task? {usage}"))?;
    let mut inputs_given = HashMap::new();
    for (name, value) in given {
        let text = match value.strip_prefix('@') {
            Some(path) => crate::check::read_text(Path::new(path), crate::check::MAX_DATA_BYTES)
                .map_err(|e| format!("{name}: cannot read `{path}`: {e}"))?,
            None => value,
        };
        let ty = program.declared_type(&task, &name).ok_or_else(|| {
            format!("`{task}` has no parameter and the program no input named `{name}`")
        })?;
        let v = inputs::parse_as(&ty, &text).map_err(|e| format!("{name}: {e}"))?;
        inputs_given.insert(name, v);
    }
    Ok(RunConfig {
        task,
        inputs: inputs_given,
        replacement,
    })
}

fn help() -> String {
    let mut out = String::from(
        "Type items (`action`, `task`, `guard`, `type`, `use std.{…}`, …) to add them to the\n\
         session; an item of the same name is replaced. An open bracket or string continues\n\
         on the next line. Commands:\n",
    );
    let width = COMMANDS
        .iter()
        .map(|c| c.name.len() + 1 + c.args.len())
        .filter(|w| *w < 30)
        .max()
        .unwrap_or(0);
    for c in COMMANDS {
        let head = if c.args.is_empty() {
            c.name.to_string()
        } else {
            format!("{} {}", c.name, c.args)
        };
        if head.len() > width {
            let _ = writeln!(out, "  {head}\n  {:width$}  {}", "", c.help);
        } else {
            let _ = writeln!(out, "  {head:width$}  {}", c.help);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_like_a_shell() {
        assert_eq!(
            split_words(r#"a "b c" 'd"e' f=\x"#).unwrap(),
            ["a", "b c", "d\"e", "f=\\x"]
        );
        assert!(split_words("\"open").is_err());
    }

    #[test]
    fn heredoc_split_outside_strings() {
        assert_eq!(
            split_heredoc(r#"contains("<<<") <<< hello"#),
            Some((r#"contains("<<<")"#, "hello"))
        );
        assert_eq!(split_heredoc("a < < < b"), None);
    }
}
