//! `guardflow fmt`: the layout keeps the meaning and every comment, is
//! idempotent, refuses files with syntax errors, and `--check` lists what
//! would change.
//!
//! Round trips run on every example, every clean test program, the
//! standard library and every failing test program that parses; the
//! property test re-spaces those files at random (spaces, line breaks,
//! blank lines, `//` comments between any two tokens) and formats that.

use std::path::{Path, PathBuf};
use std::process::Command;

use guardflow::fmt::{self, verify, FormatError};
use guardflow::source::FileId;
use guardflow::syntax::{self, lexer};
use proptest::prelude::*;
use proptest::strategy::ValueTree;

use crate::support::{bin, guardflow_files};

fn format(src: &str) -> String {
    match fmt::format("test.guardflow", src) {
        Ok(out) => out,
        Err(FormatError::Syntax { diagnostics, .. }) => {
            panic!("syntax errors: {diagnostics:#?}\n{src}")
        }
        Err(FormatError::Internal(e)) => panic!("formatter failed: {e}\n{src}"),
    }
}

/// Formats `src` and checks the result: same tree and comments, and
/// formatting it again changes nothing.
fn round_trip(src: &str) -> String {
    let once = format(src);
    verify::same_meaning(src, &once)
        .unwrap_or_else(|e| panic!("{e}\n--- in\n{src}\n--- out\n{once}"));
    let twice = format(&once);
    assert_eq!(once, twice, "not idempotent:\n--- in\n{src}");
    once
}

fn parses(src: &str) -> bool {
    syntax::parse(FileId(0), src).1.is_empty()
}

/// Every file the round trips run on.
fn corpus() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in [
        "examples",
        "tests/pass",
        "tests/pass/lib",
        "stdlib",
        "tests/ui",
    ] {
        files.extend(guardflow_files(dir));
    }
    files.into_iter().filter(|p| parses(&read(p))).collect()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_program_keeps_its_meaning_and_formats_idempotently() {
    let files = corpus();
    assert!(files.len() > 40, "only {} files", files.len());
    for path in files {
        let src = read(&path);
        let out = round_trip(&src);
        assert!(!out.contains(" \n"), "{}: trailing blanks", path.display());
    }
}

#[test]
fn the_examples_are_formatted() {
    for path in guardflow_files("examples") {
        let src = read(&path);
        assert_eq!(format(&src), src, "{} is not formatted", path.display());
    }
}

const MESSY: &str = r#"// a header comment

use std.{python_syntax,pytest ,contains}   // trailing after use
/// The tests.
type Tests=Code<python>
type Plan = {summary:Text,steps:[Text]}
type Level = Low|Medium|High


generator coder=llm(model:"m",temperature:0.2)
guard long_enough(n:Int=3) on Text=max_len(n)&&!contains("x")||(python_syntax)
action write_tests(spec:Text)->Tests{
:generate coder """
    Tests for {spec}.
    """
  // why three
       :retry 3 :guard python_syntax&&contains("def test_")
:uses (gpu*2)
  :feedback last(2)
   // at the end of the body
}
task tdd(spec:Text)->Tests :max-depth 2{
  /// The only method.
  method m{:subtasks(t:write_tests(spec),u:write_tests(spec) :escalate-to t after 2)
  :ordering(t;u)
  :result u}
}
resource gpu:2
:default-retry 2
test "tdd" {:run tdd(spec:"x") :with replay("f.jsonl") :expect success,calls<=4}
// the end
"#;

#[test]
fn a_messy_file_gets_the_canonical_layout() {
    let out = round_trip(MESSY);
    insta::with_settings!({
        snapshot_path => "fmt/snapshots",
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_snapshot!("messy", out);
    });
}

#[test]
fn long_lists_break_one_item_a_line_with_a_trailing_comma() {
    let src = "generator hosted = llm(model: \"gpt-4o\", base_url: \"https://api.openai.com/v1\", api_key_env: \"OPENAI_API_KEY\")\nguard g(tests: Code<python>, limit: Int = 20_000) = python_syntax && pytest(tests, timeout: 60s) && contains(\"def test_\") && max_len(limit)\n";
    let out = round_trip(src);
    insta::with_settings!({
        snapshot_path => "fmt/snapshots",
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_snapshot!("long_lists", out);
    });
}

#[test]
fn strategies_and_history_get_the_canonical_layout() {
    let src = "action a(x: Text) -> Text { :generate g \"{x} {previous}\" :guard ok :retry 1 :strategy   best-of( 3 ) }\n\
               action b(x: Text) -> Text { :generate g \"{history}\" :guard ok :retry 1 :strategy resample }\n\
               task t(x: Text) -> Text {\n  method m { :history   fresh :subtasks (s: a(x)) :result s }\n}\n";
    let out = round_trip(src);
    assert_eq!(
        out,
        "action a(x: Text) -> Text {\n  :generate g \"{x} {previous}\"\n  :guard ok\n  :retry 1\n  :strategy best-of(3)\n}\n\
         action b(x: Text) -> Text {\n  :generate g \"{history}\"\n  :guard ok\n  :retry 1\n  :strategy resample\n}\n\
         task t(x: Text) -> Text {\n  method m {\n    :history fresh\n    :subtasks (s: a(x))\n    :result s\n  }\n}\n"
    );
}

#[test]
fn maps_are_spaced_and_break_one_entry_a_line() {
    let src = "input m: Map<Text> = {\"a\":\"b\" , }\nguard g(t: Text, s: Text) = command(\"python3 check.py --strict --verbose\", files: {\"tests.py\": t, // the tests\n\"spec.md\":s})\n";
    let out = round_trip(src);
    assert_eq!(
        out,
        "input m: Map<Text> = { \"a\": \"b\" }\n\
         guard g(t: Text, s: Text) =\n  \
         command(\n    \
         \"python3 check.py --strict --verbose\",\n    \
         files: {\n      \
         \"tests.py\": t, // the tests\n      \
         \"spec.md\": s,\n    \
         },\n  \
         )\n"
    );
}

#[test]
fn comments_stay_between_the_same_tokens() {
    // a comment in every kind of gap
    let src = "action /* */ a(x: Text) -> Text {\n  :generate g // after the generator\n    \"p\"\n  :guard f(x, // after an argument\n    y) && // after an operator\n    h\n}\n";
    // `/* */` is not a comment in guardflow: use only `//`
    let src = src.replace("/* */ ", "");
    let out = round_trip(&src);
    assert_eq!(
        verify::comments(&out),
        [
            "// after the generator",
            "// after an argument",
            "// after an operator"
        ]
    );
    // trailing comments stay trailing
    assert!(out.contains("x, // after an argument\n"), "{out}");
}

#[test]
fn blank_lines_between_items_are_kept_and_collapsed() {
    let src = "type A = Text\ntype B = Text\n\n\n\ntype C = Text\n";
    assert_eq!(
        round_trip(src),
        "type A = Text\ntype B = Text\n\ntype C = Text\n"
    );
}

#[test]
fn a_file_of_comments_only_is_kept() {
    assert_eq!(round_trip("// one\n\n\n// two   \n"), "// one\n\n// two\n");
    assert_eq!(format(""), "");
}

#[test]
fn a_file_with_syntax_errors_is_refused_with_its_diagnostics() {
    match fmt::format("bad.guardflow", "action a( -> T {}\n") {
        Err(FormatError::Syntax { diagnostics, .. }) => assert!(!diagnostics.is_empty()),
        other => panic!("expected syntax errors, got {other:?}"),
    }
}

// ─── the command ─────────────────────────────────────────────────────────

#[test]
fn fmt_rewrites_files_and_check_lists_what_would_change() {
    let dir = tempfile::tempdir().expect("tempdir");
    let messy = dir.path().join("messy.guardflow");
    let clean = dir.path().join("clean.guardflow");
    std::fs::write(&messy, "type   A=Text\n").expect("write");
    std::fs::write(&clean, "type A = Text\n").expect("write");

    let o = Command::new(bin())
        .args(["fmt", "--check"])
        .arg(dir.path())
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(1));
    let listed = String::from_utf8_lossy(&o.stdout);
    assert!(
        listed.contains("messy.guardflow") && !listed.contains("clean.guardflow"),
        "{listed}"
    );
    assert_eq!(read(&messy), "type   A=Text\n", "--check changed a file");

    let o = Command::new(bin())
        .arg("fmt")
        .arg(dir.path())
        .output()
        .expect("run");
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(read(&messy), "type A = Text\n");

    let o = Command::new(bin())
        .args(["fmt", "--check"])
        .arg(dir.path())
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(0));
}

#[test]
fn fmt_leaves_a_file_with_syntax_errors_unchanged_and_exits_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.guardflow");
    let text = "type   A=Text\naction a( -> T {}\n";
    std::fs::write(&bad, text).expect("write");
    let o = Command::new(bin())
        .args(["fmt", "--color", "never"])
        .arg(&bad)
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("E0001") && err.contains("syntax errors"),
        "{err}"
    );
    assert_eq!(read(&bad), text);
}

#[test]
fn fmt_dash_formats_standard_input() {
    use std::io::Write;
    let mut child = Command::new(bin())
        .args(["fmt", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"input x:Text\n")
        .expect("write");
    let o = child.wait_with_output().expect("wait");
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "input x: Text\n");
}

// ─── generated layouts ───────────────────────────────────────────────────

/// What goes between two tokens: at least one blank of some kind, maybe a
/// comment (which always ends its line).
const GAPS: &[&str] = &[
    " ",
    "\n",
    "  \t",
    "\n\n\n",
    " // c\n",
    "\n// c ( { \" é 😀\n",
    "\n\n   //// four slashes\n  ",
    "\r\n",
];

/// The tokens of a file, with what separated them dropped. A code
/// literal (`python"…"`: a name touching a string) stays one token: a gap
/// would make it a name and a string.
fn tokens(src: &str) -> Vec<(lexer::Token, String)> {
    let mut out: Vec<(lexer::Token, String)> = Vec::new();
    let mut last_end = usize::MAX;
    for (t, r) in lexer::tokens(src) {
        let string = matches!(t, lexer::Token::String | lexer::Token::TripleString);
        let glued = string
            && r.start == last_end
            && out
                .last()
                .is_some_and(|(p, _)| *p == lexer::Token::Ident || p.is_keyword());
        last_end = r.end;
        if glued {
            if let Some(last) = out.last_mut() {
                last.0 = t;
                last.1.push_str(&src[r]);
            }
            continue;
        }
        out.push((t, src[r].to_string()));
    }
    out
}

/// The tokens of the corpus files, one list a file.
fn token_corpus() -> &'static [Vec<(lexer::Token, String)>] {
    static CORPUS: std::sync::OnceLock<Vec<Vec<(lexer::Token, String)>>> =
        std::sync::OnceLock::new();
    CORPUS.get_or_init(|| corpus().iter().map(|p| tokens(&read(p))).collect())
}

/// A file's tokens joined by the chosen gaps (a comment token is always
/// followed by a line break).
fn respace(toks: &[(lexer::Token, String)], gaps: &[usize]) -> String {
    let mut out = String::new();
    for (i, (tok, text)) in toks.iter().enumerate() {
        out.push_str(text);
        if matches!(tok, lexer::Token::Comment | lexer::Token::DocComment) {
            out.push('\n');
        } else {
            out.push_str(GAPS[gaps.get(i).copied().unwrap_or(0) % GAPS.len()]);
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn respaced_and_commented_programs_format_to_the_same_meaning(
        file in 0..token_corpus().len(),
        gaps in prop::collection::vec(0..GAPS.len() * 3, 1..2000),
    ) {
        let toks = &token_corpus()[file];
        let src = respace(toks, &gaps);
        prop_assume!(parses(&src));
        round_trip(&src);
    }
}

#[test]
fn respacing_keeps_programs_parsing() {
    // the property above only means something if respaced files parse
    let corpus = token_corpus();
    let gaps: Vec<usize> = (0..5000).map(|i| (i * 7 + 3) % GAPS.len()).collect();
    let parsing = corpus
        .iter()
        .filter(|toks| parses(&respace(toks, &gaps)))
        .count();
    assert_eq!(parsing, corpus.len());
}

/// Pieces of guardflow, put together at random: mostly not programs.
const SOUP: &[&str] = &[
    "action",
    "task",
    "method",
    "type",
    "guard",
    "use",
    "std",
    ".",
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ":",
    ",",
    ";",
    "||",
    "&&",
    "!",
    "<",
    ">",
    "=",
    "->",
    "|",
    "*",
    "a",
    "b",
    "T",
    "Text",
    "\"s\"",
    "\"\"\"x\n\"\"\"",
    "3",
    "2s",
    ":retry",
    ":guard",
    ":generate",
    ":subtasks",
    ":ordering",
    "// c\n",
    "/// d\n",
    " ",
    "\n",
    "é",
    "😀",
];

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn formatting_any_text_returns_a_result_and_never_panics(
        pieces in prop::collection::vec(0..SOUP.len(), 0..80),
        raw in ".{0,200}",
    ) {
        for src in [pieces.iter().map(|&i| SOUP[i]).collect::<String>(), raw] {
            match fmt::format("soup.guardflow", &src) {
                Ok(out) => {
                    // whatever parses is formatted faithfully and stably
                    verify::same_meaning(&src, &out).expect("same meaning");
                    prop_assert_eq!(format(&out), out);
                }
                Err(FormatError::Syntax { .. }) => prop_assert!(!parses(&src)),
                Err(FormatError::Internal(e)) => prop_assert!(false, "internal: {}", e),
            }
        }
    }
}

// ─── generated programs ──────────────────────────────────────────────────

fn guard_expr() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("python_syntax".to_string()),
        Just("g()".to_string()),
        Just("true".to_string()),
        Just("contains(x, \"def test_\", 3)".to_string()),
        Just(
            "a_rather_long_guard_name_that_forces_lines_to_break(limit: 20_000, timeout: 60s)"
                .to_string()
        ),
        Just("h(a: [1, 2.5, \"s\"], b: f(y))".to_string()),
        Just(
            "command(\"true\", files: {\"tests.py\": x, \"a b\": [1, {}], \"\": {\"k\": y}})"
                .to_string()
        ),
        Just("k({})".to_string()),
    ];
    leaf.prop_recursive(5, 48, 3, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} && {b}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} || {b}")),
            inner.clone().prop_map(|a| format!("!{a}")),
            inner.clone().prop_map(|a| format!("({a})")),
            prop::collection::vec(inner, 1..4).prop_map(|v| format!("all({})", v.join(", "))),
        ]
    })
}

fn type_expr() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("Text".to_string()),
        Just("Code<python>".to_string()),
        Just("Low | Medium | High".to_string()),
    ];
    leaf.prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            inner.clone().prop_map(|t| format!("[{t}]")),
            inner.clone().prop_map(|t| format!("Json<{t}>")),
            prop::collection::vec(inner, 0..4).prop_map(|fields| {
                let fields: Vec<String> = fields
                    .iter()
                    .enumerate()
                    .map(|(i, t)| format!("field_number_{i}: {t}"))
                    .collect();
                format!("{{{}}}", fields.join(", "))
            }),
        ]
    })
}

fn ordering() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("a".to_string()),
        Just("b".to_string()),
        Just("c".to_string())
    ];
    let partial = Just("(a < b < c, a < c)".to_string());
    prop_oneof![
        partial,
        leaf.prop_recursive(4, 24, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 2..4)
                    .prop_map(|v| format!("({})", v.join(" ; "))),
                prop::collection::vec(inner.clone(), 2..4)
                    .prop_map(|v| format!("({})", v.join(" || "))),
                inner.prop_map(|o| format!("({o})")),
            ]
        })
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn generated_programs_format_to_the_same_meaning(
        ty in type_expr(),
        out in type_expr(),
        body in guard_expr(),
        guard in guard_expr(),
        order in ordering(),
        comment in any::<bool>(),
    ) {
        let note = if comment { "// a note\n" } else { "" };
        let src = format!(
            "type T = {ty}\n{note}guard g0(x: Text) = {body}\n\
             action act(x: {ty}) -> {out} {{\n{note}:generate gen \"p {{x}}\"\n:guard {guard}\n}}\n\
             task t(x: Text) {{\nmethod m {{\n:subtasks (a: act(x), b: act(x), c: act(x))\n{note}:ordering {order}\n}}\n}}\n"
        );
        prop_assume!(parses(&src));
        round_trip(&src);
    }
}

#[test]
fn generated_programs_parse() {
    // the property above only means something if its programs parse
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = (type_expr(), guard_expr(), ordering());
    let mut parsing = 0;
    for _ in 0..50 {
        let (ty, g, o) = strategy.new_tree(&mut runner).expect("value").current();
        let src = format!(
            "type T = {ty}\nguard g0 = {g}\ntask t() {{\nmethod m {{\n:subtasks (a: x(), b: x(), c: x())\n:ordering {o}\n}}\n}}\n"
        );
        if parses(&src) {
            parsing += 1;
        }
    }
    assert!(parsing >= 45, "only {parsing} of 50 parse");
}

#[test]
fn triple_quoted_strings_move_with_their_line_and_keep_their_value() {
    let src = "action a() -> Text {\n      :generate g \"\"\"\n          Write {x}.\n\n            indented more\n          \"\"\"\n      :guard true\n}\n";
    let out = round_trip(src);
    assert_eq!(
        out,
        "action a() -> Text {\n  :generate g \"\"\"\n      Write {x}.\n\n        indented more\n      \"\"\"\n  :guard true\n}\n"
    );
    // a line left of where the string would move stays as it is
    let src =
        "action a() -> Text {\n      :generate g \"\"\"\n  a\n      \"\"\"\n      :guard true\n}\n";
    let out = round_trip(src);
    assert!(out.contains("\"\"\"\n  a\n      \"\"\""), "{out}");
}
