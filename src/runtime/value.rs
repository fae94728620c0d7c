//! Run-time values and guard verdicts.

use std::borrow::Cow;

/// A run-time value: a parameter, an input or an artifact. `Text`,
/// `Code<lang>` and enum tags are JSON strings; `Int`, `Float`, `Bool`
/// numbers and booleans; durations milliseconds; lists, records and
/// `Json<T>` artifacts JSON arrays and objects.
pub type Value = serde_json::Value;

/// The text form of a value, as guards on `Text` and prompts see it:
/// strings as they are, everything else as compact JSON.
pub fn text_of(value: &Value) -> Cow<'_, str> {
    match value {
        Value::String(s) => Cow::Borrowed(s),
        other => Cow::Owned(other.to_string()),
    }
}

/// What a guard says of an artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// Rejected; the feedback goes back to the generator.
    Fail(String),
    /// Rejected, and retrying cannot help (a missing tool, a broken
    /// environment): the action fails at once.
    Fatal(String),
}

impl Verdict {
    pub fn fail(feedback: impl Into<String>) -> Verdict {
        Verdict::Fail(feedback.into())
    }

    pub fn fatal(feedback: impl Into<String>) -> Verdict {
        Verdict::Fatal(feedback.into())
    }

    pub fn passed(&self) -> bool {
        matches!(self, Verdict::Pass)
    }

    /// The feedback of a rejection; empty for a pass.
    pub fn feedback(&self) -> &str {
        match self {
            Verdict::Pass => "",
            Verdict::Fail(f) | Verdict::Fatal(f) => f,
        }
    }
}

/// The feedback of a `Fail`, for tests; panics on anything else.
#[cfg(test)]
pub(crate) fn expect_fail(v: Verdict) -> String {
    match v {
        Verdict::Fail(f) => f,
        other => panic!("expected a failure, got {other:?}"),
    }
}
