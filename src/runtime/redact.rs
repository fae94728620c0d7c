//! Secrets kept out of everything a run writes.
//!
//! A secret is the value of an environment variable whose name says it is
//! one (`*_KEY`, `*_TOKEN`, `*_SECRET`, `*_PASSWORD`, …, and the `llm`
//! generator's key variables), or a value an implementation registers
//! with [`register`] (the key an `api_key_env` names). Every text that a
//! guard, generator or effect hands back to the runtime passes through
//! [`scrub`] at the registry's boundary (`Engine::register_*`), so a
//! secret never reaches feedback, a prompt, an event, the run store or
//! the terminal. Each secret is looked for in the encodings a program or
//! a server is likely to echo it in:
//!
//! - as it is;
//! - JSON-escaped (`"` `\` and control characters escaped, and `/` as
//!   `\/`, which some encoders write);
//! - URL-encoded (percent-encoding with upper- or lower-case hex);
//! - base64, standard and URL-safe alphabets, at each of the three byte
//!   alignments it can have inside a longer encoded text (`Basic
//!   base64(user:key)`): the characters that depend only on the secret's
//!   bytes are matched, so at most a few bits next to it stay visible.
//!
//! Matching is one Aho–Corasick pass over the text, leftmost-longest.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock, RwLock};

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine as _;

use super::value::{Value, Verdict};

/// What a secret is replaced by.
pub const REDACTED: &str = "[redacted]";

/// Secrets shorter than this, found by a variable's name, are not
/// treated as secrets: a value like `1` or `true` would redact every
/// digit of every output.
const MIN_ENV_SECRET: usize = 8;
/// A registered secret shorter than this is refused (same reason).
const MIN_SECRET: usize = 4;
/// Encoded forms shorter than this are not matched (base64 cores of a
/// short secret would match ordinary words).
const MIN_FORM: usize = 6;

/// The name endings that make a variable's value a secret.
const SECRET_SUFFIXES: [&str; 7] = [
    "_KEY",
    "_TOKEN",
    "_SECRET",
    "_PASSWORD",
    "_PASSWD",
    "_CREDENTIALS",
    "_API_KEY",
];

/// Variables that hold secrets whatever their names end with.
const SECRET_NAMES: [&str; 6] = [
    "GUARDFLOW_LLM_API_KEY",
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "HF_TOKEN",
];

/// Whether an environment variable's name marks its value as a secret.
pub fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SECRET_NAMES.contains(&upper.as_str())
        || SECRET_SUFFIXES.iter().any(|s| upper.ends_with(s))
        || upper.starts_with("GUARDFLOW_LLM_") && (upper.contains("KEY") || upper.contains("TOKEN"))
}

struct Matcher {
    secrets: Vec<String>,
    automaton: Option<AhoCorasick>,
}

impl Matcher {
    fn new(secrets: Vec<String>) -> Matcher {
        let mut forms: Vec<String> = secrets.iter().flat_map(|s| forms(s)).collect();
        forms.sort();
        forms.dedup();
        let automaton = if forms.is_empty() {
            None
        } else {
            AhoCorasickBuilder::new()
                .match_kind(MatchKind::LeftmostLongest)
                .build(&forms)
                .ok()
        };
        Matcher { secrets, automaton }
    }
}

fn matcher() -> &'static RwLock<Arc<Matcher>> {
    static MATCHER: OnceLock<RwLock<Arc<Matcher>>> = OnceLock::new();
    MATCHER.get_or_init(|| {
        let secrets = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .filter(|(k, v)| is_secret_name(k) && v.trim().len() >= MIN_ENV_SECRET)
            .map(|(_, v)| v.trim().to_string())
            .collect();
        RwLock::new(Arc::new(Matcher::new(secrets)))
    })
}

fn current() -> Arc<Matcher> {
    matcher().read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Treats `secret` as a secret from now on (the key a generator read from
/// a variable the workflow named). Short values are ignored.
pub fn register(secret: &str) {
    let secret = secret.trim();
    if secret.len() < MIN_SECRET || current().secrets.iter().any(|s| s == secret) {
        return;
    }
    let mut guard = matcher().write().unwrap_or_else(|e| e.into_inner());
    if guard.secrets.iter().any(|s| s == secret) {
        return;
    }
    let mut secrets = guard.secrets.clone();
    secrets.push(secret.to_string());
    *guard = Arc::new(Matcher::new(secrets));
}

/// `text` with every known secret, in every encoding above, replaced by
/// [`REDACTED`].
pub fn scrub(text: &str) -> Cow<'_, str> {
    let m = current();
    match &m.automaton {
        Some(ac) if ac.is_match(text) => {
            Cow::Owned(ac.replace_all(text, &[REDACTED].repeat(ac.patterns_len())))
        }
        _ => Cow::Borrowed(text),
    }
}

/// `text` scrubbed in place, without copying when nothing matches.
pub fn scrub_string(text: String) -> String {
    match scrub(&text) {
        Cow::Borrowed(_) => text,
        Cow::Owned(s) => s,
    }
}

/// Every string inside `value` scrubbed (keys of objects too).
pub fn scrub_value(value: Value) -> Value {
    match value {
        Value::String(s) => Value::String(scrub_string(s)),
        Value::Array(items) => Value::Array(items.into_iter().map(scrub_value).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (scrub_string(k), scrub_value(v)))
                .collect(),
        ),
        other => other,
    }
}

/// A verdict with its feedback scrubbed.
pub fn scrub_verdict(verdict: Verdict) -> Verdict {
    match verdict {
        Verdict::Pass => Verdict::Pass,
        Verdict::Fail(f) => Verdict::Fail(scrub_string(f)),
        Verdict::Fatal(f) => Verdict::Fatal(scrub_string(f)),
    }
}

/// The encodings `secret` is looked for in.
pub fn forms(secret: &str) -> Vec<String> {
    let mut out = vec![secret.to_string()];
    // JSON: what serde writes, and `/` written as `\/`.
    let json = serde_json::to_string(secret).unwrap_or_default();
    let json = json[1..json.len().saturating_sub(1).max(1)].to_string();
    out.push(json.replace('/', "\\/"));
    out.push(json);
    // URL encoding: every byte but the unreserved ones as %XX.
    let mut upper = String::new();
    let mut lower = String::new();
    let mut plus = String::new();
    for b in secret.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            upper.push(b as char);
            lower.push(b as char);
            plus.push(b as char);
        } else {
            upper.push_str(&format!("%{b:02X}"));
            lower.push_str(&format!("%{b:02x}"));
            if b == b' ' {
                plus.push('+');
            } else {
                plus.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out.extend([upper, lower, plus]);
    // base64 at each alignment: encode behind 0, 1 or 2 filler bytes and
    // keep the characters made only of the secret's bits.
    let bytes = secret.as_bytes();
    for offset in 0..3usize {
        let mut buf = vec![0u8; offset];
        buf.extend_from_slice(bytes);
        let first = (8 * offset).div_ceil(6);
        let bits_end = 8 * (offset + bytes.len());
        let last = bits_end / 6; // exclusive: chars fully inside the secret
        for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
            let enc = engine.encode(&buf);
            if let Some(core) = enc.get(first..last.min(enc.len())) {
                out.push(core.to_string());
            }
        }
    }
    out.retain(|f| f.len() >= MIN_FORM.min(secret.len()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "sk-test/abc+DEF=ghi\"jk";

    fn with_key() {
        register(KEY);
    }

    #[test]
    fn names_that_mark_secrets() {
        for n in [
            "OPENAI_API_KEY",
            "GUARDFLOW_LLM_API_KEY",
            "MY_SERVICE_TOKEN",
            "db_password",
            "AWS_SECRET",
        ] {
            assert!(is_secret_name(n), "{n}");
        }
        for n in ["PATH", "HOME", "KEYBOARD", "TOKENIZERS_PARALLELISM", "LANG"] {
            assert!(!is_secret_name(n), "{n}");
        }
    }

    #[test]
    fn the_exact_key_is_redacted() {
        with_key();
        let s = scrub(&format!("key={KEY}!")).into_owned();
        assert_eq!(s, "key=[redacted]!");
    }

    #[test]
    fn the_json_escaped_key_is_redacted() {
        with_key();
        let plain = serde_json::json!({ "k": KEY }).to_string();
        assert!(!scrub(&plain).contains("abc+DEF"), "{plain}");
        let slashed = plain.replace('/', "\\/");
        assert!(slashed.contains("\\/abc+DEF="), "{slashed}");
        assert!(!scrub(&slashed).contains("abc+DEF"), "{}", scrub(&slashed));
    }

    #[test]
    fn the_url_encoded_key_is_redacted() {
        with_key();
        let upper = "q=sk-test%2Fabc%2BDEF%3Dghi%22jk&x=1";
        let lower = "q=sk-test%2fabc%2bDEF%3dghi%22jk&x=1";
        assert_eq!(scrub(upper), "q=[redacted]&x=1");
        assert_eq!(scrub(lower), "q=[redacted]&x=1");
    }

    #[test]
    fn the_base64_key_is_redacted_at_every_alignment() {
        with_key();
        for prefix in ["", "u", "us", "user:", "ab:"] {
            for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
                let raw = format!("{prefix}{KEY}");
                let enc = engine.encode(raw.as_bytes());
                let out = scrub(&format!("Authorization: Basic {enc}")).into_owned();
                assert!(out.contains(REDACTED), "{prefix:?}: {out}");
                // what is left of the encoding cannot give the key back
                let left: String = out
                    .trim_start_matches("Authorization: Basic ")
                    .replace(REDACTED, "");
                assert!(left.len() <= 8 + prefix.len() * 2, "{prefix:?}: {out}");
            }
        }
    }

    #[test]
    fn values_and_verdicts_are_scrubbed() {
        with_key();
        let v = serde_json::json!({ "stdout": format!("x {KEY}"), "n": 1, "l": [KEY] });
        let s = scrub_value(v).to_string();
        assert!(!s.contains("abc+DEF"), "{s}");
        let f = scrub_verdict(Verdict::fail(format!("saw {KEY}")));
        assert_eq!(f.feedback(), "saw [redacted]");
    }

    #[test]
    fn text_without_secrets_is_not_copied() {
        with_key();
        assert!(matches!(scrub("nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn short_values_are_not_secrets() {
        register("ab");
        assert_eq!(scrub("a cab ab"), "a cab ab");
    }
}
