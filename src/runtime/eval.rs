//! Operands and prompt templates: from the IR's references to values and
//! text.

use crate::check::ir::{FeedbackPolicy, Operand, Template, TemplatePart, Value as Const};

use super::value::{text_of, Value};

/// Where an operand's names point: the enclosing parameters, the method's
/// committed artifacts and the program's inputs.
#[derive(Clone, Copy)]
pub struct Env<'a> {
    pub params: &'a [Value],
    pub labels: &'a [Option<Value>],
    pub inputs: &'a [Value],
    /// The current item of a map subtask.
    pub item: Option<&'a Value>,
    /// The attempt a guard judges, when it judges one: where a judge's
    /// generator calls are counted and recorded.
    pub site: Option<&'a super::judge::Site>,
}

impl<'a> Env<'a> {
    pub fn new(params: &'a [Value], inputs: &'a [Value]) -> Env<'a> {
        Env {
            params,
            labels: &[],
            inputs,
            item: None,
            site: None,
        }
    }

    /// This environment, judging the attempt at `site`.
    pub fn at(self, site: &'a super::judge::Site) -> Env<'a> {
        Env {
            site: Some(site),
            ..self
        }
    }
}

/// A constant of the IR as a run-time value.
pub fn constant(c: &Const) -> Value {
    match c {
        Const::Text(s) => Value::String(s.clone()),
        Const::Int(i) | Const::Duration(i) => Value::from(*i),
        Const::Float(f) => serde_json::Number::from_f64(*f)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        Const::Bool(b) => Value::Bool(*b),
        Const::List(items) => Value::Array(items.iter().map(constant).collect()),
        Const::Map(entries) => Value::Object(
            entries
                .iter()
                .map(|(k, v)| (k.clone(), constant(v)))
                .collect(),
        ),
    }
}

/// The value of `op`. The checker resolved every name, so a missing one
/// is an internal error reported as such, not a panic.
pub fn operand(op: &Operand, env: &Env<'_>) -> Result<Value, String> {
    let (base, fields) = match op {
        Operand::Const { value } => return Ok(constant(value)),
        Operand::Template { template } => return Ok(Value::String(render(template, env, None)?)),
        Operand::List { items } => {
            return items
                .iter()
                .map(|i| operand(i, env))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array)
        }
        Operand::Map { entries } => {
            return entries
                .iter()
                .map(|(k, v)| Ok((k.clone(), operand(v, env)?)))
                .collect::<Result<serde_json::Map<_, _>, String>>()
                .map(Value::Object)
        }
        Operand::Generator { generator } => {
            // a generator passed around is its index in the program
            return Ok(Value::from(generator.0));
        }
        Operand::Param { index, fields } => (env.params.get(*index as usize), fields),
        Operand::Input { input, fields } => (env.inputs.get(input.index()), fields),
        Operand::Label { index, fields } => (
            env.labels.get(*index as usize).and_then(Option::as_ref),
            fields,
        ),
        Operand::Item { fields } => (env.item, fields),
    };
    let base = base.ok_or_else(|| format!("internal error: no value for {op:?}"))?;
    let mut value = std::borrow::Cow::Borrowed(base);
    for f in fields {
        // a `Json<T>` value kept as its text (an input given as text)
        // is read as the JSON it holds
        let next = match value.as_ref() {
            Value::String(s) => serde_json::from_str::<Value>(s)
                .ok()
                .and_then(|v| v.get(f.as_str()).cloned()),
            v => v.get(f.as_str()).cloned(),
        };
        value =
            std::borrow::Cow::Owned(next.ok_or_else(|| format!("the value has no field `{f}`"))?);
    }
    Ok(value.into_owned())
}

/// The most of one rejected output a prompt shows (`{previous}`,
/// `{history}`); the rest is cut, and the cut is stated.
pub const OUTPUT_CAP: usize = 4_000;

/// What `{previous}` says on an action's first attempt.
pub const NO_PREVIOUS: &str = "(none yet: this is the first attempt)";

/// What `{history}` says when nothing was rejected yet.
pub const NO_HISTORY: &str = "(no earlier attempts)";

/// A rejected attempt that later attempts see: its output (cut at
/// [`OUTPUT_CAP`]) and feedback, and where it was made when that was not
/// this run of the action.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    pub output: Option<String>,
    pub feedback: String,
    /// "made against an earlier `plan`", "by `solve` in method `small`".
    pub origin: Option<String>,
}

impl Rejected {
    pub fn new(output: Option<&str>, feedback: &str, origin: Option<String>) -> Rejected {
        Rejected {
            output: output.map(cut_output),
            feedback: feedback.to_string(),
            origin,
        }
    }
}

/// `text` cut at [`OUTPUT_CAP`] bytes (on a character boundary), with the
/// cut stated.
pub fn cut_output(text: &str) -> String {
    if text.len() <= OUTPUT_CAP {
        return text.to_string();
    }
    let mut end = OUTPUT_CAP;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}\n[… cut: {} more bytes not shown]",
        &text[..end],
        text.len() - end
    )
}

/// What an attempt knows of the attempts before it, as its prompt shows
/// it: each `None` renders as the "nothing yet" text, and `resample`
/// renders all three as nothing.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub feedback: Option<String>,
    pub previous: Option<String>,
    pub history: Option<String>,
    /// `:strategy resample`: no history at all.
    pub resample: bool,
}

impl Context {
    /// The context of the next attempt after `history`, under `policy`.
    pub fn of(history: &[Rejected], policy: FeedbackPolicy, resample: bool) -> Context {
        if resample {
            return Context {
                resample: true,
                ..Context::default()
            };
        }
        Context {
            feedback: feedback_text(history, policy),
            previous: history.iter().rev().find_map(|r| r.output.clone()),
            history: history_text(history, policy),
            resample: false,
        }
    }
}

/// Renders a template outside an attempt (an operand, a guard's
/// argument): no attempt context.
pub fn render(t: &Template, env: &Env<'_>, ctx: Option<&Context>) -> Result<String, String> {
    render_parts(t, env, ctx).map(|(out, _)| out)
}

/// Renders an action's prompt. When the prompt names none of
/// `{feedback}`, `{previous}` and `{history}` and an attempt was
/// rejected, the feedback and the rejected answer are appended
/// (`:strategy repair`).
pub fn render_prompt(t: &Template, env: &Env<'_>, ctx: &Context) -> Result<String, String> {
    let (mut out, named) = render_parts(t, env, Some(ctx))?;
    if let (false, Some(f)) = (named, &ctx.feedback) {
        out.push_str("\n\nYour previous answer was rejected:\n");
        out.push_str(f);
        if let Some(p) = &ctx.previous {
            out.push_str("\n\nThe rejected answer:\n");
            out.push_str(p);
        }
    }
    Ok(out)
}

/// The text, and whether it named the attempt context.
fn render_parts(
    t: &Template,
    env: &Env<'_>,
    ctx: Option<&Context>,
) -> Result<(String, bool), String> {
    let mut out = String::new();
    let mut named = false;
    let resample = ctx.is_some_and(|c| c.resample);
    let pick = |f: fn(&Context) -> &Option<String>, none: &'static str| -> String {
        match ctx {
            _ if resample => String::new(),
            Some(c) => f(c).clone().unwrap_or_else(|| none.to_string()),
            None => none.to_string(),
        }
    };
    for part in &t.parts {
        match part {
            TemplatePart::Text { text } => out.push_str(text),
            TemplatePart::Value { operand: op } => {
                let v = operand(op, env)?;
                match &v {
                    // a list reads as one item per line
                    Value::Array(items) => {
                        let lines: Vec<String> =
                            items.iter().map(|i| format!("- {}", text_of(i))).collect();
                        out.push_str(&lines.join("\n"));
                    }
                    _ => out.push_str(&text_of(&v)),
                }
            }
            TemplatePart::Feedback => {
                named = true;
                out.push_str(&pick(|c| &c.feedback, "(none yet)"));
            }
            TemplatePart::Previous => {
                named = true;
                out.push_str(&pick(|c| &c.previous, NO_PREVIOUS));
            }
            TemplatePart::History => {
                named = true;
                out.push_str(&pick(|c| &c.history, NO_HISTORY));
            }
        }
    }
    Ok((out, named))
}

/// How many of the latest rejections `policy` keeps.
fn kept(history: &[Rejected], policy: FeedbackPolicy) -> usize {
    let keep = match policy {
        FeedbackPolicy::Last => 1,
        FeedbackPolicy::All => history.len(),
        FeedbackPolicy::LastN(n) => usize::try_from(n).unwrap_or(usize::MAX),
    };
    history.len().saturating_sub(keep)
}

/// The rejection history an attempt sees, under `policy`; `None` when
/// there is none.
pub fn feedback_text(history: &[Rejected], policy: FeedbackPolicy) -> Option<String> {
    let last = history.last()?;
    let start = kept(history, policy);
    if start + 1 == history.len() && last.origin.is_none() {
        return Some(last.feedback.clone());
    }
    let parts: Vec<String> = history[start..]
        .iter()
        .enumerate()
        .map(|(i, r)| match &r.origin {
            Some(o) => format!("Attempt {} ({o}): {}", start + i + 1, r.feedback),
            None => format!("Attempt {}: {}", start + i + 1, r.feedback),
        })
        .collect();
    Some(parts.join("\n"))
}

/// `{history}`: the kept rejected attempts, each with its number, where
/// it was made, its output and its feedback; `None` when there is none.
pub fn history_text(history: &[Rejected], policy: FeedbackPolicy) -> Option<String> {
    if history.is_empty() {
        return None;
    }
    let start = kept(history, policy);
    let parts: Vec<String> = history[start..]
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let origin = r
                .origin
                .as_ref()
                .map(|o| format!(" ({o})"))
                .unwrap_or_default();
            let output = r.output.as_deref().unwrap_or("(no output)");
            format!(
                "Attempt {}{origin}:\nOutput:\n{output}\nFeedback:\n{}",
                start + i + 1,
                r.feedback
            )
        })
        .collect();
    Some(parts.join("\n\n"))
}
