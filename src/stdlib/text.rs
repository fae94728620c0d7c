//! Guards on any artifact's text (`std/text.guardflow`), and the helpers
//! other guards use to point at a place in a text.
//!
//! Every function is pure: it takes the artifact's text form and its
//! arguments and returns a [`Verdict`]. Feedback says what failed, where
//! (1-based line and column, columns counted in characters), and what was
//! expected, so a generator can fix its answer.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use regex::Regex;

use crate::runtime::Verdict;

/// How many characters of a line or a needle feedback quotes.
const QUOTE_CHARS: usize = 120;

/// How many compiled patterns the regex cache keeps before starting over.
const REGEX_CACHE_LIMIT: usize = 256;

/// The 1-based line and column (in characters) of byte offset `byte` in
/// `text`. An offset past the end, or inside a character, is clamped to
/// the nearest preceding character boundary.
pub fn line_col(text: &str, byte: usize) -> (usize, usize) {
    let mut byte = byte.min(text.len());
    while !text.is_char_boundary(byte) {
        byte -= 1;
    }
    let before = &text[..byte];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

/// The text of 1-based line `line` (without its line ending), or `""`
/// past the end.
pub fn line_text(text: &str, line: usize) -> &str {
    text.split('\n')
        .nth(line.saturating_sub(1))
        .map_or("", |l| l.strip_suffix('\r').unwrap_or(l))
}

/// `text` cut to at most `max` characters, with `…` when cut.
pub fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

/// A two-line excerpt pointing at 1-based `line` and `col` of `text`:
/// the line, prefixed with its number, and a caret under the column.
pub fn excerpt(text: &str, line: usize, col: usize) -> String {
    let src = line_text(text, line);
    let shown = shorten(src, QUOTE_CHARS);
    let gutter = format!("{line:>4} | ");
    // tabs stay tabs so the caret lines up in a terminal
    let pad: String = src
        .chars()
        .take(col.saturating_sub(1).min(QUOTE_CHARS))
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    format!("{gutter}{shown}\n{:>4} | {pad}^", "")
}

/// Compiles `pattern`, or takes it from the cache.
fn compiled(pattern: &str) -> Result<Regex, String> {
    static CACHE: OnceLock<Mutex<HashMap<String, Result<Regex, String>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(found) = cache.get(pattern) {
        return found.clone();
    }
    let result = Regex::new(pattern).map_err(|e| e.to_string());
    if cache.len() >= REGEX_CACHE_LIMIT {
        cache.clear();
    }
    cache.insert(pattern.to_string(), result.clone());
    result
}

/// Passes when `subject` matches the regular expression `pattern`
/// anywhere (anchor it with `^…$` to match the whole text). A pattern
/// that does not compile is fatal: retrying cannot fix the workflow.
pub fn regex(subject: &str, pattern: &str) -> Verdict {
    let re = match compiled(pattern) {
        Ok(re) => re,
        Err(e) => {
            return Verdict::fatal(format!(
                "the regular expression `{pattern}` given to the regex guard is invalid:\n{e}"
            ))
        }
    };
    if re.is_match(subject) {
        return Verdict::Pass;
    }
    let lines = subject.lines().count();
    Verdict::fail(format!(
        "the text does not match the regular expression `{pattern}`; \
         no part of its {lines} line(s) matches. Change the text so that it matches the pattern."
    ))
}

/// Passes when `subject` contains `needle`.
pub fn contains(subject: &str, needle: &str) -> Verdict {
    if subject.contains(needle) {
        return Verdict::Pass;
    }
    let quoted = shorten(needle, QUOTE_CHARS);
    let mut feedback = format!("the text does not contain `{quoted}`; it must contain it exactly");
    let (lower_subject, lower_needle) = (subject.to_lowercase(), needle.to_lowercase());
    // lowercasing can change byte lengths; only point at it when it did not
    if lower_subject.len() == subject.len() {
        if let Some(at) = lower_subject.find(&lower_needle) {
            let (line, col) = line_col(subject, at);
            feedback.push_str(&format!(
                " (line {line}, column {col} has it with different upper/lower case)"
            ));
        }
    }
    Verdict::fail(feedback)
}

/// Passes when `subject` does not contain `needle`; the feedback names
/// the line and column of the first occurrence. An empty needle is fatal
/// (every text contains it).
pub fn not_contains(subject: &str, needle: &str) -> Verdict {
    if needle.is_empty() {
        return Verdict::fatal(
            "the not_contains guard was given an empty needle, which every text contains",
        );
    }
    let Some(at) = subject.find(needle) else {
        return Verdict::Pass;
    };
    let count = subject.matches(needle).count();
    let (line, col) = line_col(subject, at);
    let more = match count {
        1 => String::new(),
        n => format!(" ({n} occurrences in all)"),
    };
    Verdict::fail(format!(
        "the text must not contain `{}`, but it does at line {line}, column {col}{more}:\n{}\nRemove every occurrence.",
        shorten(needle, QUOTE_CHARS),
        excerpt(subject, line, col)
    ))
}

/// Passes when `subject` has at least `n` characters.
pub fn min_len(subject: &str, n: u64) -> Verdict {
    let len = subject.chars().count() as u64;
    if len >= n {
        return Verdict::Pass;
    }
    Verdict::fail(format!(
        "the text has {len} characters, but at least {n} are required ({} more needed)",
        n - len
    ))
}

/// Passes when `subject` has at most `n` characters; the feedback names
/// where the limit is crossed.
pub fn max_len(subject: &str, n: u64) -> Verdict {
    let len = subject.chars().count() as u64;
    if len <= n {
        return Verdict::Pass;
    }
    let cut = usize::try_from(n)
        .ok()
        .and_then(|n| subject.char_indices().nth(n))
        .map_or(subject.len(), |(i, _)| i);
    let (line, col) = line_col(subject, cut);
    Verdict::fail(format!(
        "the text has {len} characters, but at most {n} are allowed; shorten it by at least {} \
         (the limit is passed at line {line}, column {col})",
        len - n
    ))
}

/// Passes when `subject` has at most `n` lines (a final line ending does
/// not start another line; an empty text has none).
pub fn max_lines(subject: &str, n: u64) -> Verdict {
    let count = subject.lines().count() as u64;
    if count <= n {
        return Verdict::Pass;
    }
    Verdict::fail(format!(
        "the text has {count} lines, but at most {n} are allowed; remove at least {} lines",
        count - n
    ))
}

/// Passes when `subject` equals `expected`, surrounding whitespace
/// ignored; the feedback shows the first line that differs.
pub fn equals(subject: &str, expected: &str) -> Verdict {
    let (got, want) = (subject.trim(), expected.trim());
    if got == want {
        return Verdict::Pass;
    }
    let (mut got_lines, mut want_lines) = (got.lines(), want.lines());
    let mut line = 0;
    let detail = loop {
        line += 1;
        match (got_lines.next(), want_lines.next()) {
            (Some(g), Some(w)) if g == w => continue,
            (Some(g), Some(w)) => {
                let col = g
                    .chars()
                    .zip(w.chars())
                    .take_while(|(a, b)| a == b)
                    .count()
                    + 1;
                break format!(
                    "line {line} differs from column {col}:\n  expected: `{}`\n  found:    `{}`",
                    shorten(w, QUOTE_CHARS),
                    shorten(g, QUOTE_CHARS)
                );
            }
            (None, Some(w)) => {
                break format!(
                    "the text ends after line {}; expected line {line} to be `{}`",
                    line - 1,
                    shorten(w, QUOTE_CHARS)
                )
            }
            (Some(g), None) => {
                break format!(
                    "the text has extra lines from line {line}: `{}`; the expected text ends after line {}",
                    shorten(g, QUOTE_CHARS),
                    line - 1
                )
            }
            (None, None) => {
                break "the lines are the same, but the line endings differ (expected `\\n`)"
                    .to_string()
            }
        }
    };
    Verdict::fail(format!(
        "the text is not the expected text (surrounding whitespace is ignored): {detail}"
    ))
}

/// Passes when `subject` has a character other than whitespace.
pub fn non_empty(subject: &str) -> Verdict {
    if !subject.trim().is_empty() {
        Verdict::Pass
    } else if subject.is_empty() {
        Verdict::fail("the text is empty; an answer with content is required")
    } else {
        Verdict::fail("the text contains only whitespace; an answer with content is required")
    }
}

/// One kind of secret: its name, its pattern, and whether the captured
/// group 1 must look random (high entropy) to count.
struct SecretPattern {
    kind: &'static str,
    regex: Regex,
    random: bool,
}

fn secret_patterns() -> &'static [SecretPattern] {
    static PATTERNS: OnceLock<Vec<SecretPattern>> = OnceLock::new();
    PATTERNS.get_or_init(|| {
        let table: [(&str, &str, bool); 11] = [
            ("AWS access key ID", r"\b((?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16})\b", false),
            ("GitHub token", r"\b(gh[pousr]_[A-Za-z0-9]{36,})\b", false),
            ("GitHub fine-grained token", r"\b(github_pat_[A-Za-z0-9_]{22,})", false),
            ("OpenAI-style API key", r"\b(sk-(?:[A-Za-z0-9]+-)?[A-Za-z0-9_\-]{20,})", true),
            ("Slack token", r"\b(xox[abposre]-[A-Za-z0-9\-]{10,})", false),
            ("Google API key", r"\b(AIza[0-9A-Za-z_\-]{35})", false),
            ("Stripe secret key", r"\b((?:sk|rk)_live_[0-9A-Za-z]{20,})", false),
            (
                "JSON web token",
                r"\b(eyJ[A-Za-z0-9_\-]{10,}\.eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,})",
                false,
            ),
            (
                "private key",
                r"(-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----)",
                false,
            ),
            (
                "hard-coded credential",
                r#"(?i)\b[a-z0-9_.\-]*(?:api[_\-]?key|secret|token|passw(?:or)?d|access[_\-]?key|auth[_\-]?key|credentials?)[a-z0-9_.\-]*["']?\s*(?::=|=>|[:=])\s*[bfru]?["']([^"'\s]{16,})["']"#,
                true,
            ),
            (
                "hard-coded credential",
                r"(?m)^\s*(?:export\s+)?[A-Z0-9_]*(?:API_KEY|SECRET|TOKEN|PASSWORD|ACCESS_KEY)[A-Z0-9_]*\s*=\s*([^\s\x22'#]{16,})",
                true,
            ),
        ];
        table
            .into_iter()
            .map(|(kind, pattern, random)| SecretPattern {
                kind,
                // constant patterns, covered by the tests
                regex: Regex::new(pattern).expect("secret pattern compiles"),
                random,
            })
            .collect()
    })
}

/// Shannon entropy of `s` in bits per character.
fn entropy(s: &str) -> f64 {
    let mut counts: HashMap<char, usize> = HashMap::new();
    for c in s.chars() {
        *counts.entry(c).or_default() += 1;
    }
    let n = s.chars().count() as f64;
    counts
        .values()
        .map(|&k| {
            let p = k as f64 / n;
            -p * p.log2()
        })
        .sum()
}

/// Whether `value` looks like a real random secret rather than a
/// placeholder, an identifier or a reference to the environment.
fn looks_random(value: &str) -> bool {
    let lower = value.to_lowercase();
    let placeholder = [
        "your",
        "xxxx",
        "example",
        "placeholder",
        "changeme",
        "dummy",
        "<",
        "${",
        "{{",
        "env",
    ]
    .iter()
    .any(|p| lower.contains(p));
    let has_digit = value.chars().any(|c| c.is_ascii_digit());
    let has_alpha = value.chars().any(|c| c.is_ascii_alphabetic());
    !placeholder && has_digit && has_alpha && entropy(value) >= 3.5
}

/// Passes when `subject` contains no API keys, tokens or private keys.
/// The feedback names each kind and its line and column, never the
/// secret itself.
pub fn no_secrets(subject: &str) -> Verdict {
    let mut found: Vec<(usize, &str)> = Vec::new();
    for pattern in secret_patterns() {
        for caps in pattern.regex.captures_iter(subject) {
            let Some(secret) = caps.get(1) else { continue };
            if pattern.random && !looks_random(secret.as_str()) {
                continue;
            }
            if !found.iter().any(|&(at, _)| at == secret.start()) {
                found.push((secret.start(), pattern.kind));
            }
        }
    }
    if found.is_empty() {
        return Verdict::Pass;
    }
    found.sort();
    let total = found.len();
    let mut feedback = format!(
        "the text contains {} that look{} like a secret:",
        if total == 1 {
            "1 value".to_string()
        } else {
            format!("{total} values")
        },
        if total == 1 { "s" } else { "" }
    );
    for (at, kind) in found.iter().take(5) {
        let (line, col) = line_col(subject, *at);
        feedback.push_str(&format!("\n- a {kind} at line {line}, column {col}"));
    }
    if total > 5 {
        feedback.push_str(&format!("\n- and {} more", total - 5));
    }
    feedback.push_str(
        "\nRemove them: read secrets from the environment or a configuration file instead, \
         or use an obvious placeholder such as `YOUR_API_KEY`.",
    );
    Verdict::fail(feedback)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::runtime::value::expect_fail as fail;

    #[test]
    fn positions() {
        let t = "ab\ncdé\r\nf";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 3), (2, 1));
        assert_eq!(line_col(t, 5), (2, 3));
        assert_eq!(line_col(t, 6), (2, 3)); // inside `é`
        assert_eq!(line_col(t, 999), (3, 2));
        assert_eq!(line_text(t, 2), "cdé");
        assert_eq!(line_text(t, 9), "");
        assert_eq!(shorten("héllo", 2), "hé…");
        assert_eq!(shorten("hé", 2), "hé");
        assert_eq!(excerpt("x = 1\n\tyz", 2, 2), "   2 | \tyz\n     | \t^");
    }

    #[test]
    fn regex_guard() {
        assert_eq!(regex("order 42", r"\d+"), Verdict::Pass);
        assert_eq!(regex("abc", "^abc$"), Verdict::Pass);
        let f = fail(regex("no digits\nhere", r"^\d+$"));
        assert!(f.contains(r"`^\d+$`") && f.contains("2 line(s)"), "{f}");
        // the cache returns the same answer twice
        assert_eq!(regex("x1", r"\d"), Verdict::Pass);
        assert_eq!(regex("x1", r"\d"), Verdict::Pass);
        match regex("x", "(unclosed") {
            Verdict::Fatal(f) => assert!(f.contains("`(unclosed`") && f.contains("invalid"), "{f}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(regex("x", "(unclosed"), Verdict::Fatal(_)));
    }

    #[test]
    fn contains_guard() {
        assert_eq!(contains("fn main() {}", "main"), Verdict::Pass);
        assert_eq!(contains("anything", ""), Verdict::Pass);
        let f = fail(contains("hello", "world"));
        assert_eq!(
            f,
            "the text does not contain `world`; it must contain it exactly"
        );
        let f = fail(contains("a\nSELECT x", "select"));
        assert!(
            f.contains("line 2, column 1 has it with different upper/lower case"),
            "{f}"
        );
    }

    #[test]
    fn not_contains_guard() {
        assert_eq!(not_contains("clean code", "TODO"), Verdict::Pass);
        let f = fail(not_contains("fn a() {}\n  // TODO x\n// TODO y", "TODO"));
        assert!(
            f.contains("at line 2, column 6 (2 occurrences in all)"),
            "{f}"
        );
        assert!(f.contains("   2 |   // TODO x\n     |      ^"), "{f}");
        assert!(matches!(not_contains("x", ""), Verdict::Fatal(_)));
    }

    #[test]
    fn lengths() {
        assert_eq!(min_len("héllo", 5), Verdict::Pass);
        assert_eq!(
            fail(min_len("héllo", 8)),
            "the text has 5 characters, but at least 8 are required (3 more needed)"
        );
        assert_eq!(max_len("héllo", 5), Verdict::Pass);
        assert_eq!(max_len("", 0), Verdict::Pass);
        let f = fail(max_len("ab\ncdef", 4));
        assert!(
            f.contains("has 7 characters, but at most 4") && f.contains("by at least 3"),
            "{f}"
        );
        assert!(f.contains("line 2, column 2"), "{f}");
        assert_eq!(max_len("x", u64::MAX), Verdict::Pass);
    }

    #[test]
    fn lines() {
        assert_eq!(max_lines("", 0), Verdict::Pass);
        assert_eq!(max_lines("a\nb\n", 2), Verdict::Pass);
        assert_eq!(
            fail(max_lines("a\nb\nc", 1)),
            "the text has 3 lines, but at most 1 are allowed; remove at least 2 lines"
        );
    }

    #[test]
    fn equals_guard() {
        assert_eq!(equals("  42\n", "42"), Verdict::Pass);
        let f = fail(equals("a\nbcX\nd", "a\nbcd\nd"));
        assert!(f.contains("line 2 differs from column 3"), "{f}");
        assert!(
            f.contains("expected: `bcd`") && f.contains("found:    `bcX`"),
            "{f}"
        );
        let f = fail(equals("a", "a\nb"));
        assert!(
            f.contains("ends after line 1; expected line 2 to be `b`"),
            "{f}"
        );
        let f = fail(equals("a\nb", "a"));
        assert!(f.contains("extra lines from line 2: `b`"), "{f}");
        let f = fail(equals("a\r\nb", "a\nb"));
        assert!(f.contains("line endings differ"), "{f}");
    }

    #[test]
    fn non_empty_guard() {
        assert_eq!(non_empty(" x "), Verdict::Pass);
        assert!(fail(non_empty("")).contains("is empty"));
        assert!(fail(non_empty(" \n\t")).contains("only whitespace"));
    }

    #[test]
    fn secrets_found_without_echo() {
        let cases = [
            (
                "key = AKIAIOSFODNN7EXAMPLE",
                "AWS access key ID",
                "AKIAIOSFODNN7EXAMPLE",
            ),
            (
                "t: ghp_abcdefghijklmnopqrstuvwxyz0123456789",
                "GitHub token",
                "ghp_abcdef",
            ),
            (
                "github_pat_11ABCDEFG0123456789_abcdefghijklmnop",
                "GitHub fine-grained",
                "github_pat_11",
            ),
            (
                "OPENAI = sk-proj-4fG7hK2mQ9xZ1pL8vB3nR6tY",
                "OpenAI-style",
                "sk-proj-4f",
            ),
            (
                "slack xoxb-123456789012-abcdefABCDEF",
                "Slack token",
                "xoxb-1234",
            ),
            (
                "maps = AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q",
                "Google API key",
                "AIzaSyA1b2",
            ),
            (
                "stripe.api_key = sk_live_4eC39HqLyjWDarjtT1zdp7dc",
                "Stripe secret key",
                "sk_live_4eC",
            ),
            (
                "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
                "JSON web token",
                "eyJhbGciOi",
            ),
            (
                "-----BEGIN RSA PRIVATE KEY-----\nMIIE",
                "private key",
                "MIIE",
            ),
            (
                "-----BEGIN PRIVATE KEY-----",
                "private key",
                "BEGIN PRIVATE",
            ),
            (
                "api_key = \"a8F3kQ9zX2mP7vL4wR6t\"",
                "hard-coded credential",
                "a8F3kQ9z",
            ),
            (
                "headers = {'Auth-Token': 'Zk39fj2LqP0xW8mN5vB7'}",
                "hard-coded credential",
                "Zk39fj",
            ),
            (
                "export DB_PASSWORD=h7Gk2LmQ9pX4rT1vZ8",
                "hard-coded credential",
                "h7Gk2L",
            ),
        ];
        for (text, kind, secret) in cases {
            let f = fail(no_secrets(text));
            assert!(f.contains(kind), "{text}: {f}");
            assert!(f.contains("line 1, column"), "{text}: {f}");
            assert!(!f.contains(secret), "{text} echoed: {f}");
        }
        let f = fail(no_secrets(
            "x\n  token = \"Q2w9E8r7T6y5U4i3O1p0\"\nAKIAIOSFODNN7EXAMPLE",
        ));
        assert!(
            f.contains("2 values")
                && f.contains("line 2, column 12")
                && f.contains("line 3, column 1"),
            "{f}"
        );
    }

    #[test]
    fn secrets_not_flagged() {
        for text in [
            "api_key = os.environ[\"OPENAI_API_KEY\"]",
            "api_key = \"YOUR_API_KEY_GOES_HERE_1\"",
            "token = \"aaaaaaaaaaaaaaaaaaaa1\"",
            "password = \"short1\"",
            "sk-xxxxxxxxxxxxxxxxxxxxxxxx",
            "the task-based scheduler uses disk-backed queues",
            "TOKEN_URL=https://example.com/oauth/token",
            "def get_token(): return compute_token_value()",
            "",
        ] {
            assert_eq!(no_secrets(text), Verdict::Pass, "{text}");
        }
    }

    #[test]
    fn never_panics_on_odd_input() {
        let odd = "\u{0}é\u{10FFFF}\r\n\r\n  \t";
        for v in [
            regex(odd, "."),
            contains(odd, "é"),
            not_contains(odd, "\u{10FFFF}"),
            min_len(odd, 100),
            max_len(odd, 1),
            max_lines(odd, 0),
            equals(odd, "é"),
            non_empty(odd),
            no_secrets(odd),
        ] {
            let _ = v.feedback();
        }
        assert_eq!(entropy("aaaa"), 0.0);
    }
}
