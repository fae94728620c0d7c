//! Robustness: any text given to `check` yields diagnostics, never a
//! panic, a hang or a stack overflow, and every diagnostic renders.
//!
//! Properties (proptest) over
//! - the examples, mutated: byte ranges deleted, duplicated, swapped,
//!   tokens of the language inserted, the text truncated (also inside a
//!   multi-byte character; the bytes are then made valid UTF-8 again);
//! - random sequences of the language's tokens;
//! - arbitrary strings and arbitrary bytes;
//! - deep nesting (up to 100 000 levels) of every kind of bracket, of
//!   `!`, of quotes, in every kind of item;
//! - `fmt` on mutated examples and random text: a result keeps the
//!   meaning, or the file is refused, never a panic or a hang;
//! - the language server's answers on mutated examples and random text.
//!
//! Each diagnostic's spans must lie inside its file and on character
//! boundaries, and `render` (with and without colour) and `render_json`
//! must succeed (the JSON must parse).
//!
//! Every property runs in a forked child process (proptest `fork`), so a
//! stack overflow (which aborts a process) or a hang (the per-case
//! `timeout`) fails that property with the input, shrunk, instead of
//! taking the whole test binary down. Deep inputs run on a thread with
//! the default stack size of a spawned thread (2 MiB unless
//! `RUST_MIN_STACK` says otherwise): no bigger stack is asked for, since
//! users run `guardflow` on an ordinary main thread.
//!
//! Cost: the case counts below keep this module under a minute in a debug
//! build on two cores (the deep-nesting children, one after the other,
//! take most of it). `GUARDFLOW_FUZZ_CASES=N` runs N cases per property
//! instead (e.g. `GUARDFLOW_FUZZ_CASES=5000 cargo test --test main fuzz::`).
//! `fuzz/` holds a cargo-fuzz target for longer runs (nightly only).

use std::process::Command;
use std::time::{Duration, Instant};

use guardflow::check::{self, Checked};
use guardflow::diagnostics::{self, Code, Diagnostic};
use guardflow::source::{SourceMap, Span};
use guardflow::syntax::lexer::MAX_DEPTH;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::Config as ProptestConfig;

use crate::support::guardflow_files;

// ─── configuration ───────────────────────────────────────────────────────

/// The environment variable that replaces every property's case count.
const CASES_ENV: &str = "GUARDFLOW_FUZZ_CASES";

/// A case that runs longer than this is a hang (debug build, loaded CI
/// machine: the slowest case takes well under a second).
const CASE_TIMEOUT_MS: u32 = 30_000;

/// `cases` cases (or `GUARDFLOW_FUZZ_CASES`), each in a forked child with
/// a timeout; no regression files are written into the source tree.
fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var(CASES_ENV)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        fork: true,
        timeout: CASE_TIMEOUT_MS,
        failure_persistence: None,
        // shrinking a crash restarts the child each time; keep it bounded
        max_shrink_time: 120_000,
        ..ProptestConfig::default()
    }
}

// ─── the check under test ────────────────────────────────────────────────

/// How many of the first and of the last diagnostics of one input are
/// rendered; the spans of all are checked. Rendering one report takes
/// time in proportion to the sources (ariadne indexes every file, and
/// draws the whole line of a label), so rendering all of the thousands of
/// findings some deep inputs give (a bad escape thousands of times in one
/// string) would take minutes, and a line of 100 000 unknown guards hours.
const RENDERED: usize = 16;

/// Checks `text`, then checks the invariants of every diagnostic and
/// renders it both ways (the first and last [`RENDERED`]). Panics (so the
/// property fails) on any violation.
fn check_and_render(name: &str, text: &str) -> Checked {
    let checked = check::check_source(name, text);
    let n = checked.diagnostics.len();
    for (i, d) in checked.diagnostics.iter().enumerate() {
        assert_span_ok(&checked.sources, d.primary.span, "primary", d);
        for label in &d.secondary {
            assert_span_ok(&checked.sources, label.span, "secondary", d);
        }
        if i >= RENDERED && i + RENDERED < n {
            continue;
        }
        let plain = diagnostics::render(d, &checked.sources, false);
        assert!(
            plain.contains(d.code.as_str()),
            "rendering of {} lacks its code:\n{plain}",
            d.code
        );
        let _ = diagnostics::render(d, &checked.sources, true);
        let json = diagnostics::render_json(d, &checked.sources);
        if let Err(e) = serde_json::from_str::<serde_json::Value>(&json) {
            panic!("render_json gave invalid JSON ({e}): {json}");
        }
    }
    checked
}

/// The fast path and pest alone read `text` the same: the same items and
/// the same errors (the fast path never decides what is an error).
fn same_parse(text: &str) {
    let file = guardflow::source::FileId(0);
    let (fast, fast_errors) = guardflow::syntax::parse(file, text);
    let (pest, pest_errors) = guardflow::syntax::parse_with_pest_only(file, text);
    assert_eq!(fast, pest, "the two parsers disagree on:\n{text}");
    assert_eq!(
        format!("{fast_errors:?}"),
        format!("{pest_errors:?}"),
        "the two parsers report different errors on:\n{text}"
    );
}

/// A span lies inside its file, in order, on character boundaries.
fn assert_span_ok(sources: &SourceMap, span: Span, which: &str, d: &Diagnostic) {
    let files = sources.files().count();
    assert!(
        (span.file.0 as usize) < files,
        "{which} span of {} names file {} of {files}: {d:?}",
        d.code,
        span.file.0
    );
    let text = &sources.get(span.file).text;
    let (start, end) = (span.start as usize, span.end as usize);
    assert!(
        start <= end && end <= text.len(),
        "{which} span {start}..{end} of {} is outside its file ({} bytes): {d:?}",
        d.code,
        text.len()
    );
    assert!(
        text.is_char_boundary(start) && text.is_char_boundary(end),
        "{which} span {start}..{end} of {} splits a character: {d:?}",
        d.code
    );
}

// ─── the language's tokens ───────────────────────────────────────────────

/// Tokens and near-tokens of guardflow: keywords, property names, names
/// the standard library defines, punctuation, strings (good, bad,
/// unterminated), numbers and durations (good and bad), comments,
/// whitespace and non-ASCII text.
const VOCABULARY: &[&str] = &[
    // keywords
    "use",
    "std",
    "input",
    "type",
    "generator",
    "guard",
    "extern",
    "effect",
    "action",
    "task",
    "method",
    "resource",
    "test",
    "on",
    "after",
    "true",
    "false",
    // property names, known and not
    ":generate",
    ":role",
    ":guard",
    ":retry",
    ":pre-guard",
    ":pre",
    ":effect",
    ":idempotent",
    ":timeout",
    ":uses",
    ":feedback",
    ":max-tokens",
    ":p",
    ":subtasks",
    ":ordering",
    ":result",
    ":on-fail",
    ":escalate-to",
    ":max-escalations",
    ":max-depth",
    ":run",
    ":with",
    ":expect",
    ":default-retry",
    ":default-timeout",
    ":default-p",
    ":default-max-tokens",
    ":frobnicate",
    ":",
    "::",
    // contextual words and names
    "calls",
    "satisfies",
    "last",
    "all",
    "any",
    "majority",
    "par",
    "continue",
    "a",
    "b",
    "x",
    "spec",
    "code",
    "Text",
    "Int",
    "Bool",
    "Code",
    "python",
    "Json",
    "Command",
    "Plan",
    "llm",
    "human",
    "shell",
    "file",
    "python_syntax",
    "contains",
    "not_contains",
    "pytest",
    "max_len",
    "exit_code",
    "_",
    "A1",
    // punctuation
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    "<",
    ">",
    "<=",
    ">=",
    "==",
    "->",
    "=",
    ",",
    ".",
    ";",
    "||",
    "&&",
    "!",
    "|",
    "*",
    "-",
    "\\",
    "#",
    "@",
    // strings
    "\"",
    "\"\"\"",
    "\"\"",
    "\"text\"",
    "\"{spec}\"",
    "\"{x.y}\"",
    "\"{1}\"",
    "\"{\"",
    "\"}\"",
    "\"\\{\"",
    "\"\\n\"",
    "\"\\q\"",
    "\"a\\",
    "\"\"\"\n  {spec}\n  \"\"\"",
    "{x}",
    "{x.y}",
    // field paths, typed predicates, code literals
    "p.items",
    "v.ok",
    "len",
    "len(x)",
    "len(p.items) == 0",
    "v.score >= 0.8",
    "v.severity != High",
    "!=",
    "High",
    "python\"x = {1: 2}\"",
    "python\"\"\"\n  def f():\n      return 1\n  \"\"\"",
    "python\"a\\\"",
    "js\"",
    // map literals and the types of `files:`
    "{\"tests.py\": x}",
    "\"k\":",
    "Map<Text>",
    "Program",
    "files:",
    "\"examples/ops.guardflow\"",
    "\"..\"",
    "\"no/such/file.guardflow\"",
    "\"é→🦀\"",
    // numbers and durations
    "0",
    "1",
    "3",
    "42",
    "0.6",
    "1.5",
    "1_000",
    "500ms",
    "30s",
    "5m",
    "2h",
    "7d",
    "1x",
    "99999999999999999999999",
    "0.",
    "1.2.3",
    "1e9",
    "0.0000001",
    // comments and whitespace
    "//",
    "// comment\n",
    "///",
    "/// doc\n",
    "////",
    "\n",
    "\n\n",
    " ",
    "  ",
    "\t",
    "\r\n",
    "\r",
    "\u{c}",
    // non-ASCII
    "é",
    "→",
    "🦀",
    "ß",
    "日本",
    "\u{200b}",
    "\u{feff}",
    "\u{0}",
    "\u{301}",
    "\u{fffd}",
];

fn token() -> impl Strategy<Value = &'static str> {
    prop::sample::select(VOCABULARY)
}

fn tokens(max: usize) -> impl Strategy<Value = Vec<&'static str>> {
    prop::collection::vec(token(), 0..max)
}

/// Joins tokens with a separator chosen per gap (none, space, newline).
fn join(tokens: &[&str], gaps: &[u8]) -> String {
    let mut out = String::new();
    for (i, t) in tokens.iter().enumerate() {
        if i > 0 {
            out.push_str(match gaps.get(i).copied().unwrap_or(1) % 4 {
                0 => "",
                1 | 2 => " ",
                _ => "\n",
            });
        }
        out.push_str(t);
    }
    out
}

// ─── mutated examples ────────────────────────────────────────────────────

/// The examples' texts, read once per process.
fn examples() -> &'static [(String, String)] {
    static EXAMPLES: std::sync::OnceLock<Vec<(String, String)>> = std::sync::OnceLock::new();
    EXAMPLES.get_or_init(|| {
        let files: Vec<(String, String)> = guardflow_files("examples")
            .into_iter()
            .map(|p| {
                let text =
                    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                (p.to_string_lossy().into_owned(), text)
            })
            .collect();
        assert!(!files.is_empty(), "no examples to mutate");
        files
    })
}

/// One edit of a text's bytes. Positions are fractions of the current
/// length, so a mutation applies to any text.
#[derive(Debug, Clone)]
enum Mutation {
    Delete(Index, Index),
    /// copy `a..b` to `at`
    Duplicate(Index, Index, Index),
    Insert(Index, Vec<&'static str>),
    /// exchange two disjoint ranges
    Swap([Index; 4]),
    Truncate(Index),
    /// overwrite one byte (may break a character)
    Overwrite(Index, u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::Delete(a, b)),
        2 => (any::<Index>(), any::<Index>(), any::<Index>())
            .prop_map(|(a, b, at)| Mutation::Duplicate(a, b, at)),
        4 => (any::<Index>(), prop::collection::vec(token(), 1..6))
            .prop_map(|(at, t)| Mutation::Insert(at, t)),
        2 => any::<[Index; 4]>().prop_map(Mutation::Swap),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        1 => (any::<Index>(), any::<u8>()).prop_map(|(at, b)| Mutation::Overwrite(at, b)),
    ]
}

/// A position in `0..=len`.
fn pos(i: &Index, len: usize) -> usize {
    i.index(len + 1)
}

fn range(a: &Index, b: &Index, len: usize) -> (usize, usize) {
    let (a, b) = (pos(a, len), pos(b, len));
    (a.min(b), a.max(b))
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let len = bytes.len();
    match m {
        Mutation::Delete(a, b) => {
            let (a, b) = range(a, b, len);
            bytes.drain(a..b);
        }
        Mutation::Duplicate(a, b, at) => {
            let (a, b) = range(a, b, len);
            let copy = bytes[a..b].to_vec();
            let at = pos(at, len);
            bytes.splice(at..at, copy);
        }
        Mutation::Insert(at, tokens) => {
            let at = pos(at, len);
            let text = tokens.join(" ");
            bytes.splice(at..at, text.bytes());
        }
        Mutation::Swap(points) => {
            let mut p: Vec<usize> = points.iter().map(|i| pos(i, len)).collect();
            p.sort_unstable();
            let mut out = Vec::with_capacity(len);
            out.extend_from_slice(&bytes[..p[0]]);
            out.extend_from_slice(&bytes[p[2]..p[3]]);
            out.extend_from_slice(&bytes[p[1]..p[2]]);
            out.extend_from_slice(&bytes[p[0]..p[1]]);
            out.extend_from_slice(&bytes[p[3]..]);
            *bytes = out;
        }
        Mutation::Truncate(at) => bytes.truncate(pos(at, len)),
        Mutation::Overwrite(at, b) => {
            if len > 0 {
                bytes[at.index(len)] = *b;
            }
        }
    }
}

/// Bytes back to text: cut characters become U+FFFD, or are dropped.
fn repair(bytes: &[u8], lossy: bool) -> String {
    if lossy {
        String::from_utf8_lossy(bytes).into_owned()
    } else {
        bytes.utf8_chunks().map(|c| c.valid()).collect()
    }
}

// ─── properties over flat input ──────────────────────────────────────────

proptest! {
    #![proptest_config(config(160))]

    /// The examples, edited up to eight times.
    #[test]
    fn mutated_examples_check_without_panic(
        example in any::<Index>(),
        mutations in prop::collection::vec(mutation(), 1..8),
        lossy in any::<bool>(),
    ) {
        let (name, text) = &examples()[example.index(examples().len())];
        let mut bytes = text.clone().into_bytes();
        for m in &mutations {
            apply(&mut bytes, m);
        }
        let text = repair(&bytes, lossy);
        same_parse(&text);
        check_and_render(name, &text);
    }
}

proptest! {
    #![proptest_config(config(400))]

    /// Random sequences of the language's tokens.
    #[test]
    fn token_sequences_check_without_panic(
        tokens in tokens(120),
        gaps in prop::collection::vec(any::<u8>(), 120),
    ) {
        let text = join(&tokens, &gaps);
        same_parse(&text);
        check_and_render("fuzz.guardflow", &text);
    }

    /// An item keyword, then random tokens: gets past the item dispatch
    /// far more often than a random start does.
    #[test]
    fn items_of_random_tokens_check_without_panic(
        items in prop::collection::vec(
            (prop::sample::select(&[
                "use std.{", "use ", "input x: ", "type T = ", "generator g = ",
                "guard g(a: Text) on Text = ", "extern guard g on Text",
                "resource r: ", "action a(x: Text) -> Text {\n  :generate g ",
                "action a(x: Text) -> Text {\n  :guard ",
                "task t(x: Text) -> Text {\n  method m {\n    :subtasks (",
                "task t(x: Text) {\n  method m {\n    :ordering (",
                "test \"t\" {\n  :expect ", ":default-retry ", "/// doc\n",
            ][..]), tokens(24)),
            1..6,
        ),
        gaps in prop::collection::vec(any::<u8>(), 24),
    ) {
        let text: String = items
            .iter()
            .map(|(start, body)| format!("{start}{}\n", join(body, &gaps)))
            .collect();
        same_parse(&text);
        check_and_render("fuzz.guardflow", &text);
    }

    /// Any string at all.
    #[test]
    fn arbitrary_strings_check_without_panic(text in any::<String>()) {
        check_and_render("fuzz.guardflow", &text);
    }

    /// Any printable text, longer.
    #[test]
    fn arbitrary_printable_text_checks_without_panic(text in "\\PC{0,400}") {
        check_and_render("fuzz.guardflow", &text);
    }

    /// Any bytes, made valid UTF-8 one way or the other.
    #[test]
    fn arbitrary_bytes_check_without_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..600),
        lossy in any::<bool>(),
    ) {
        check_and_render("fuzz.guardflow", &repair(&bytes, lossy));
    }
}

// ─── fmt and the language server ─────────────────────────────────────────

/// Formats `text`: a result must keep the meaning (the formatter checks
/// that itself; checked again here) and be stable; otherwise an error,
/// never a panic.
fn format_checked(text: &str) {
    match guardflow::fmt::format("fuzz.guardflow", text) {
        Ok(out) => {
            if let Err(e) = guardflow::fmt::verify::same_meaning(text, &out) {
                panic!("formatted text changed meaning: {e}\n--- in\n{text}\n--- out\n{out}");
            }
            assert!(
                out.len() <= 4 * text.len() + 64,
                "output grew: {} → {}",
                text.len(),
                out.len()
            );
        }
        Err(guardflow::fmt::FormatError::Syntax { diagnostics, .. }) => {
            assert!(
                !diagnostics.is_empty(),
                "a syntax refusal without a diagnostic"
            );
        }
        // the formatter refuses what it cannot lay out faithfully: allowed
        Err(guardflow::fmt::FormatError::Internal(_)) => {}
    }
}

proptest! {
    #![proptest_config(config(120))]

    /// fmt on the examples, edited (also with a byte order mark).
    #[test]
    fn fmt_of_mutated_examples_keeps_meaning_or_refuses(
        example in any::<Index>(),
        mutations in prop::collection::vec(mutation(), 0..6),
        lossy in any::<bool>(),
        bom in any::<bool>(),
    ) {
        let (_, text) = &examples()[example.index(examples().len())];
        let mut bytes = text.clone().into_bytes();
        for m in &mutations {
            apply(&mut bytes, m);
        }
        let mut text = repair(&bytes, lossy);
        if bom {
            text.insert(0, '\u{feff}');
        }
        format_checked(&text);
    }

    /// fmt on random tokens and arbitrary text.
    #[test]
    fn fmt_of_random_text_keeps_meaning_or_refuses(
        tokens in tokens(80),
        gaps in prop::collection::vec(any::<u8>(), 80),
        text in "\\PC{0,200}",
    ) {
        format_checked(&join(&tokens, &gaps));
        format_checked(&text);
    }

    /// The language server's answers (diagnostics, symbols, formatting,
    /// hover, definition, references, completion at random places) on
    /// edited examples.
    #[test]
    fn lsp_answers_on_mutated_examples_without_panic(
        example in any::<Index>(),
        mutations in prop::collection::vec(mutation(), 0..6),
        lossy in any::<bool>(),
        offsets in prop::collection::vec(any::<Index>(), 1..12),
    ) {
        let (_, text) = &examples()[example.index(examples().len())];
        let mut bytes = text.clone().into_bytes();
        for m in &mutations {
            apply(&mut bytes, m);
        }
        let text = repair(&bytes, lossy);
        let offsets: Vec<usize> = offsets.iter().map(|i| i.index(text.len() + 2)).collect();
        guardflow::lsp::answer_everything(&text, &offsets);
    }

    /// The same on random tokens and arbitrary strings.
    #[test]
    fn lsp_answers_on_random_text_without_panic(
        tokens in tokens(80),
        gaps in prop::collection::vec(any::<u8>(), 80),
        text in any::<String>(),
        offsets in prop::collection::vec(any::<Index>(), 1..12),
    ) {
        for text in [join(&tokens, &gaps), text] {
            let offsets: Vec<usize> = offsets.iter().map(|i| i.index(text.len() + 2)).collect();
            guardflow::lsp::answer_everything(&text, &offsets);
        }
    }
}

// ─── deep nesting ────────────────────────────────────────────────────────

/// A way to nest deeply: `prefix`, `open`×N, `middle`, `close`×N,
/// `suffix`. `bracket`: the nesting is of brackets (or `Json<`, or `!`),
/// so more than `MAX_DEPTH` levels must give E0006.
#[derive(Debug, Clone, Copy)]
struct Shape {
    name: &'static str,
    prefix: &'static str,
    open: &'static str,
    middle: &'static str,
    close: &'static str,
    suffix: &'static str,
    bracket: bool,
}

const ACTION: &str = "action a(x: Text) -> Text {\n  :generate g \"p\"\n  :guard ";
const ACTION_END: &str = "\n}\n";
/// [`ACTION`] with `non_empty` imported, for guards that resolve.
const ACTION_NON_EMPTY: &str =
    "use std.{non_empty}\naction a(x: Text) -> Text {\n  :generate g \"p\"\n  :guard ";
const TASK: &str =
    "task t(x: Text) -> Text {\n  method m {\n    :subtasks (s: f(x))\n    :ordering ";
const TASK_END: &str = "\n    :result s\n  }\n}\n";

const fn shape(
    name: &'static str,
    prefix: &'static str,
    open: &'static str,
    middle: &'static str,
    close: &'static str,
    suffix: &'static str,
    bracket: bool,
) -> Shape {
    Shape {
        name,
        prefix,
        open,
        middle,
        close,
        suffix,
        bracket,
    }
}

const SHAPES: &[Shape] = &[
    // types
    shape("type [", "type T = ", "[", "Text", "]", "\n", true),
    shape("type {a:", "type T = ", "{a: ", "Text", "}", "\n", true),
    shape("type Json<", "type T = ", "Json<", "Text", ">", "\n", true),
    shape(
        "type Json < (spaced)",
        "type T = ",
        "Json <",
        "Text",
        "> ",
        "\n",
        true,
    ),
    shape(
        "type on< (keyword name)",
        "type T = ",
        "on<",
        "Text",
        ">",
        "\n",
        true,
    ),
    shape("type (", "type T = ", "(", "Text", ")", "\n", true),
    shape(
        "type mixed [{Json<",
        "type T = ",
        "[{a: Json<",
        "Text",
        ">}]",
        "\n",
        true,
    ),
    shape(
        "input default list [",
        "input i: Text = ",
        "[",
        "\"a\"",
        "]",
        "\n",
        true,
    ),
    shape(
        "input default map {",
        "input i: Map<Text> = ",
        "{\"k\": ",
        "\"a\"",
        "}",
        "\n",
        true,
    ),
    shape(
        "map in a guard argument",
        ACTION,
        "command(\"true\", files: {\"k\": [",
        "x",
        "]})",
        ACTION_END,
        true,
    ),
    // guard expressions in an action
    shape(
        "guard (",
        ACTION,
        "(",
        "python_syntax",
        ")",
        ACTION_END,
        true,
    ),
    shape(
        "guard all(",
        ACTION,
        "all(",
        "python_syntax",
        ")",
        ACTION_END,
        true,
    ),
    shape("guard call f(", ACTION, "f(", "1", ")", ACTION_END, true),
    shape(
        "guard list f([",
        ACTION,
        "max_len([",
        "1",
        "])",
        ACTION_END,
        true,
    ),
    shape(
        "guard !",
        ACTION,
        "!",
        "python_syntax",
        "",
        ACTION_END,
        true,
    ),
    shape(
        "guard ! (spaced)",
        ACTION,
        "! ",
        "python_syntax",
        "",
        ACTION_END,
        true,
    ),
    shape(
        "guard !(",
        ACTION,
        "!(",
        "python_syntax",
        ")",
        ACTION_END,
        true,
    ),
    // guards that resolve: an unknown one 100 000 times on one line is
    // 100 000 findings, each a report drawing that whole line
    shape(
        "guard && chain",
        ACTION_NON_EMPTY,
        "non_empty && ",
        "true",
        "",
        ACTION_END,
        false,
    ),
    shape(
        "guard string continued by \\⏎ hides `)` from the lexer",
        ACTION,
        "f(\"\\\n)\", ",
        "1",
        ")",
        ACTION_END,
        true,
    ),
    // other items and properties
    shape(
        "guard item (",
        "guard g = ",
        "(",
        "python_syntax",
        ")",
        "\n",
        true,
    ),
    shape(
        "unknown property (",
        "action a() -> Text {\n  :frob ",
        "(",
        "x",
        ")",
        ACTION_END,
        true,
    ),
    shape(
        "action body {",
        "action a() -> Text ",
        "{",
        "",
        "}",
        "\n",
        true,
    ),
    shape("ordering (", TASK, "(", "s", ")", TASK_END, true),
    shape(
        "subtask call f(",
        "task t() {\n  method m {\n    :subtasks (s: ",
        "f(",
        "1",
        ")",
        ")\n  }\n}\n",
        true,
    ),
    shape(
        "test satisfies (",
        "test \"t\" {\n  :run f()\n  :expect satisfies ",
        "(",
        "true",
        ")",
        "\n}\n",
        true,
    ),
    shape("use std.{", "use std.", "{", "a", "}", "\n", true),
    shape(
        "mixed ([{",
        "action a() -> Text {\n  :frob ",
        "([{",
        "",
        "}])",
        ACTION_END,
        true,
    ),
    // not nesting for the parser: must simply not break
    shape("quotes \"", ACTION, "\"", "", "", ACTION_END, false),
    shape(
        "triple quotes \"\"\"",
        "action a() -> Text {\n  :generate g ",
        "\"\"\"",
        "",
        "",
        ACTION_END,
        false,
    ),
    shape(
        "braces in a string",
        "action a() -> Text {\n  :generate g \"",
        "{",
        "x",
        "}",
        "\"\n}\n",
        false,
    ),
    shape("brackets in a comment", "// ", "(", "", ")", "\n", false),
    shape(
        "brackets in a doc comment",
        "/// ",
        "([{",
        "",
        "}])",
        "\ntype T = Text\n",
        false,
    ),
    shape(
        "brackets in a triple string",
        "action a() -> Text {\n  :generate g \"\"\"",
        "([{",
        "",
        "}])",
        "\"\"\"\n}\n",
        false,
    ),
];

fn nested(shape: &Shape, n: usize, closed: bool) -> String {
    let close = if closed {
        shape.close.repeat(n)
    } else {
        String::new()
    };
    format!(
        "{}{}{}{close}{}",
        shape.prefix,
        shape.open.repeat(n),
        shape.middle,
        shape.suffix
    )
}

/// Checks `text` on a new thread with the default stack size (a stack
/// overflow there aborts the process, which the caller sees).
fn check_on_default_stack(name: &str, text: String) -> Vec<Code> {
    let name = name.to_string();
    std::thread::Builder::new()
        .name(format!("deep: {name}"))
        .spawn(move || {
            check_and_render("deep.guardflow", &text)
                .diagnostics
                .iter()
                .map(|d| d.code)
                .collect()
        })
        .expect("spawn")
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

fn check_deep(shape: &Shape, n: usize, closed: bool) {
    let label = format!(
        "{} ×{n}{}",
        shape.name,
        if closed { "" } else { " (unclosed)" }
    );
    let codes = check_on_default_stack(&label, nested(shape, n, closed));
    if shape.bracket && n > MAX_DEPTH {
        assert!(
            codes.contains(&Code::E0006),
            "{label}: no E0006 (nesting too deep) among {codes:?}"
        );
    }
}

/// Set in a child process: the deep cases to run, `shape:n:closed;…`.
const DEEP_CHILD_ENV: &str = "GUARDFLOW_FUZZ_DEEP_CASES";
const DEEP_CHILD_TIMEOUT: Duration = Duration::from_secs(120);
/// How [`run_deep_child`] reports a child that timed out.
const HANG: &str = "hang";
const DEEP: usize = 100_000;

type DeepCase = (usize, usize, bool);

/// Runs deep cases in a child process (this test, filtered): `Err` holds
/// what the child said when it failed, crashed or hung.
fn run_deep_child(cases: &[DeepCase]) -> Result<(), String> {
    let spec: Vec<String> = cases
        .iter()
        .map(|(s, n, c)| format!("{s}:{n}:{c}"))
        .collect();
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "fuzz::deep_nesting_never_overflows_the_stack",
            "--nocapture",
            "--test-threads=1",
            "-q",
        ])
        .env(DEEP_CHILD_ENV, spec.join(";"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn: {e}"))?;
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if start.elapsed() > DEEP_CHILD_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{HANG}: no result after {DEEP_CHILD_TIMEOUT:?}"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("wait: {e}")),
        }
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("output: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let said: Vec<&str> = stderr
        .lines()
        .chain(stdout.lines())
        .filter(|l| {
            l.contains("overflow")
                || l.contains("panicked")
                || l.contains("E0006")
                || l.contains("fatal")
        })
        .take(6)
        .collect();
    Err(format!("{} — {}", out.status, said.join(" | ")))
}

/// Every shape, closed and unclosed, just past the limit and at 100 000
/// levels. Each shape runs in a child process, so one overflow does not
/// end the others; a crashing case is then narrowed to the smallest
/// failing depth (a hang is reported as it is).
#[test]
fn deep_nesting_never_overflows_the_stack() {
    if let Ok(spec) = std::env::var(DEEP_CHILD_ENV) {
        // the child: run what the parent asked for
        for case in spec.split(';').filter(|c| !c.is_empty()) {
            let mut parts = case.split(':');
            let mut next = || parts.next().expect("shape:n:closed");
            let shape = next().parse::<usize>().expect("shape");
            let n = next().parse::<usize>().expect("n");
            let closed = next().parse::<bool>().expect("closed");
            check_deep(&SHAPES[shape], n, closed);
        }
        return;
    }
    let mut failures = Vec::new();
    for (i, shape) in SHAPES.iter().enumerate() {
        let cases: Vec<DeepCase> = [(MAX_DEPTH + 1, true), (DEEP, true), (DEEP, false)]
            .iter()
            .map(|&(n, closed)| (i, n, closed))
            .collect();
        if run_deep_child(&cases).is_ok() {
            continue;
        }
        for &(_, n, closed) in &cases {
            let Err(first) = run_deep_child(&[(i, n, closed)]) else {
                continue;
            };
            if first.starts_with(HANG) {
                // each step of a search would wait out the timeout again
                failures.push(format!(
                    "{}{} ×{n}: {first}",
                    shape.name,
                    if closed { "" } else { " (unclosed)" },
                ));
                continue;
            }
            // the smallest failing depth, assuming failure grows with depth
            let (mut lo, mut hi, mut why) = (0usize, n, first);
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                match run_deep_child(&[(i, mid, closed)]) {
                    Ok(()) => lo = mid,
                    Err(e) => (hi, why) = (mid, e),
                }
            }
            failures.push(format!(
                "{}{}: fails from depth {hi} (tried up to {n}): {why}\n    minimal input: {:?}",
                shape.name,
                if closed { "" } else { " (unclosed)" },
                abbreviate(&nested(shape, hi, closed)),
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} deep-nesting case(s) fail:\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}

fn abbreviate(text: &str) -> String {
    if text.len() <= 300 {
        return text.to_string();
    }
    let mut head = 150;
    while !text.is_char_boundary(head) {
        head -= 1;
    }
    let mut tail = text.len() - 150;
    while !text.is_char_boundary(tail) {
        tail += 1;
    }
    format!(
        "{}…[{} bytes]…{}",
        &text[..head],
        tail - head,
        &text[tail..]
    )
}

/// Openers mixed at random, repeated to a random depth up to 100 000, in
/// a random shape's context, closed or not.
fn mixed_nesting() -> impl Strategy<Value = (usize, Vec<&'static str>, usize, bool)> {
    (
        0..SHAPES.len(),
        prop::collection::vec(
            prop::sample::select(
                &[
                    "(", "[", "{", "Json<", "Json <", "on<", "!", "\"", "\"\"\"", "f(", "all(",
                    "{a: ", "x ", ",", "<", "||", "\\\n",
                ][..],
            ),
            1..12,
        ),
        prop_oneof![Just(DEEP), 1..=DEEP, 1..=(4 * MAX_DEPTH)],
        any::<bool>(),
    )
}

fn closer(open: &str) -> &'static str {
    match open {
        "(" | "f(" | "all(" => ")",
        "[" => "]",
        "{" | "{a: " => "}",
        "Json<" | "Json <" | "on<" => ">",
        "\"" => "\"",
        "\"\"\"" => "\"\"\"",
        _ => "",
    }
}

proptest! {
    #![proptest_config(config(24))]

    /// Mixed openers, to a random depth up to 100 000.
    #[test]
    fn deep_mixed_nesting_never_overflows(
        (shape, pattern, n, closed) in mixed_nesting()
    ) {
        let shape = &SHAPES[shape];
        let unit: String = pattern.concat();
        let repeats = (n / pattern.len()).max(1);
        let mut text = String::with_capacity((unit.len() + 2) * repeats + 200);
        text.push_str(shape.prefix);
        for _ in 0..repeats {
            text.push_str(&unit);
        }
        text.push_str(shape.middle);
        if closed {
            let close: String = pattern.iter().rev().map(|o| closer(o)).collect();
            for _ in 0..repeats {
                text.push_str(&close);
            }
        }
        text.push_str(shape.suffix);
        check_on_default_stack(shape.name, text);
    }
}
