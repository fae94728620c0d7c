//! Numbers, durations and escapes: text to values.

use crate::syntax::ast::Duration;

/// A number literal, classified.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Number {
    Int(u64),
    Float(f64),
    Duration(Duration),
    /// Too large, or otherwise not a value.
    Invalid,
}

pub(super) fn number(text: &str) -> Number {
    let clean: std::borrow::Cow<str> = if text.contains('_') {
        text.chars()
            .filter(|&c| c != '_')
            .collect::<String>()
            .into()
    } else {
        text.into()
    };
    let unit_start = clean
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(clean.len());
    let (digits, unit) = clean.split_at(unit_start);
    if unit.is_empty() {
        if digits.contains('.') {
            return match digits.parse::<f64>() {
                Ok(f) if f.is_finite() => Number::Float(f),
                _ => Number::Invalid,
            };
        }
        return digits.parse().map_or(Number::Invalid, Number::Int);
    }
    let scale: f64 = match unit {
        "ms" => 1.0,
        "s" => 1_000.0,
        "m" => 60_000.0,
        "h" => 3_600_000.0,
        _ => return Number::Invalid,
    };
    match digits.parse::<f64>() {
        Ok(v) if (v * scale).is_finite() && v * scale < 1e15 => {
            Number::Duration(Duration((v * scale).round() as u64))
        }
        _ => Number::Invalid,
    }
}

/// Decodes the text of one `\x` escape; `None` when it is not one we know.
pub(super) fn escape(text: &str) -> Option<char> {
    Some(match text {
        "\\n" => '\n',
        "\\t" => '\t',
        "\\r" => '\r',
        "\\\"" => '"',
        "\\\\" => '\\',
        "\\{" => '{',
        "\\}" => '}',
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_durations() {
        assert_eq!(number("3"), Number::Int(3));
        assert_eq!(number("1_000"), Number::Int(1000));
        assert_eq!(number("0.6"), Number::Float(0.6));
        assert_eq!(number("500ms"), Number::Duration(Duration(500)));
        assert_eq!(number("1.5s"), Number::Duration(Duration(1500)));
        assert_eq!(number("5m"), Number::Duration(Duration(300_000)));
        assert_eq!(number("99999999999999999999999"), Number::Invalid);
        assert_eq!(number("9999999999999h"), Number::Invalid);
    }
}
