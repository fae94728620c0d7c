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
    };
    let mut value = base.ok_or_else(|| format!("internal error: no value for {op:?}"))?;
    for f in fields {
        value = value
            .get(f.as_str())
            .ok_or_else(|| format!("the artifact has no field `{f}`"))?;
    }
    Ok(value.clone())
}

/// Renders a template. `feedback` is the rejection history under the
/// action's policy; when the template does not say `{feedback}` and
/// there is some, it is appended.
pub fn render(t: &Template, env: &Env<'_>, feedback: Option<&str>) -> Result<String, String> {
    let mut out = String::new();
    let mut used_feedback = false;
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
                used_feedback = true;
                out.push_str(feedback.unwrap_or("(none yet)"));
            }
        }
    }
    if let (false, Some(f)) = (used_feedback, feedback) {
        out.push_str("\n\nYour previous answer was rejected:\n");
        out.push_str(f);
    }
    Ok(out)
}

/// The rejection history an attempt sees, under `policy`; `None` when
/// there is none.
pub fn feedback_text(history: &[String], policy: FeedbackPolicy) -> Option<String> {
    if history.is_empty() {
        return None;
    }
    let keep = match policy {
        FeedbackPolicy::Last => 1,
        FeedbackPolicy::All => history.len(),
        FeedbackPolicy::LastN(n) => n as usize,
    };
    let start = history.len().saturating_sub(keep);
    if keep == 1 || history.len() == 1 {
        return history.last().cloned();
    }
    let parts: Vec<String> = history[start..]
        .iter()
        .enumerate()
        .map(|(i, f)| format!("Attempt {}: {f}", start + i + 1))
        .collect();
    Some(parts.join("\n"))
}
