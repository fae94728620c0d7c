//! From a generator's text (or a command-line value) to a value of the
//! declared type.

use crate::check::ir::Ty;
use crate::stdlib::json;

use super::value::Value;

/// The generator's text as an artifact of type `ty`; `Err` is feedback.
pub fn convert(text: &str, ty: &Ty) -> Result<Value, String> {
    match ty {
        Ty::Text | Ty::Program => Ok(Value::String(text.to_string())),
        Ty::Code { lang } => json::extract_code(text, lang).map(Value::String),
        Ty::Json { of } => json::convert_json(text, of),
        Ty::Enum { tags } => {
            let t = text
                .trim()
                .trim_matches(|c| c == '"' || c == '`' || c == '\'');
            if tags.iter().any(|tag| tag == t) {
                Ok(Value::String(t.to_string()))
            } else {
                Err(format!(
                    "expected exactly one of {}, not `{}`",
                    tags.join(", "),
                    abbreviate(text.trim())
                ))
            }
        }
        Ty::Int | Ty::Duration => text
            .trim()
            .parse::<u64>()
            .map(Value::from)
            .map_err(|_| format!("expected a whole number, not `{}`", abbreviate(text.trim()))),
        Ty::Float => text
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| format!("expected a number, not `{}`", abbreviate(text.trim()))),
        Ty::Bool => match text.trim() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            other => Err(format!(
                "expected `true` or `false`, not `{}`",
                abbreviate(other)
            )),
        },
        Ty::List { .. } | Ty::Record { .. } | Ty::Map { .. } => json::convert_json(text, ty),
        // only a parameter's type (E0234): never an answer
        Ty::Generator => Err("a generator is not an answer".to_string()),
    }
}

fn abbreviate(text: &str) -> String {
    match text.char_indices().nth(60) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}
