//! The parser's two paths: the fast path (items read from the lexer's
//! tokens) and pest alone must give the same items and the same errors on
//! every `.guardflow` file in the repository, errors included. The fuzz
//! properties (tests/fuzz.rs) compare them on edited and generated input.

use std::path::{Path, PathBuf};

use guardflow::source::FileId;
use guardflow::syntax;

fn guardflow_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            guardflow_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "guardflow") {
            out.push(path);
        }
    }
}

#[test]
fn both_paths_agree_on_every_file_in_the_repository() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["bench", "examples", "stdlib", "tests"] {
        guardflow_files(&root.join(dir), &mut files);
    }
    assert!(files.len() > 100, "found only {} files", files.len());
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let (fast, fast_errors) = syntax::parse(FileId(0), &text);
        let (pest, pest_errors) = syntax::parse_with_pest_only(FileId(0), &text);
        assert_eq!(fast, pest, "{}", path.display());
        assert_eq!(
            format!("{fast_errors:?}"),
            format!("{pest_errors:?}"),
            "{}",
            path.display()
        );
    }
}

#[test]
fn spans_end_at_the_last_token_not_at_a_trailing_comment() {
    // `input` ends with an optional default: pest reads the comment before
    // trying it; neither path's span may cover it
    let text = "input spec: Text // the spec\n\ntype T = Text\n";
    for (file, errors) in [
        syntax::parse(FileId(0), text),
        syntax::parse_with_pest_only(FileId(0), text),
    ] {
        assert!(errors.is_empty(), "{errors:?}");
        let span = file.items[0].span;
        assert_eq!(
            &text[span.start as usize..span.end as usize],
            "input spec: Text"
        );
        let syntax::ast::ItemKind::Input(input) = &file.items[0].kind else {
            panic!("not an input: {:?}", file.items[0].kind);
        };
        let ty = input.ty.span();
        assert_eq!(&text[ty.start as usize..ty.end as usize], "Text");
    }
}

/// Found by the fuzz properties: the lexer skipped a form feed as
/// whitespace, pest does not, so the fast path read what pest rejects.
#[test]
fn both_paths_agree_where_only_the_lexer_saw_whitespace() {
    for text in [
        "useuseinput\u{c}calls:generate",
        "input x:\u{c}Text\n",
        "type T =\u{c}Text\ntype U = Text\n",
    ] {
        let (fast, fast_errors) = syntax::parse(FileId(0), text);
        let (pest, pest_errors) = syntax::parse_with_pest_only(FileId(0), text);
        assert_eq!(fast, pest, "{text:?}");
        assert_eq!(
            format!("{fast_errors:?}"),
            format!("{pest_errors:?}"),
            "{text:?}"
        );
    }
}

/// Map literals: glued colons (`"a":b` lexes as a string and a property),
/// trailing commas, nesting, triple-quoted keys, comments inside; and the
/// broken ones, which both paths must refuse alike.
#[test]
fn both_paths_agree_on_map_literals() {
    let well_formed = [
        "input m: Map<Text> = {}\n",
        "input m: Map<Text> = {\"a\":b}\n",
        "input m: Map<Text> = {\"a\" : b, \"c\":\"d\",}\n",
        "input m: Map<Map<Int>> = { \"a\": { \"b\": 1 }, \"c\": {} }\n",
        "input m: Map<Text> = {\"\"\"\n  k\n  \"\"\": [1, {\"x\": y}]}\n",
        "input m: Map<Text> = {\n  // first\n  \"a\": b, // after\n  \"{k}\": f(x: {\"n\": 1}),\n}\n",
        "action a() -> Text {\n  :generate g \"p\"\n  :guard command(\"true\", files: {\"t.py\":true})\n  :retry 1\n}\n",
    ];
    let broken = [
        "input m: Map<Text> = {a: b}\n",
        "input m: Map<Text> = {\"a\"}\n",
        "input m: Map<Text> = {\"a\": }\n",
        "input m: Map<Text> = {\"a\": b\n",
        "input m: Map<Text> = {,}\n",
        "input m: Map<Text> = {\"a\": :pre-guard}\n",
        "input m: Map<Text> = {\"a\": b \"c\": d}\n",
        "input m: Map<Text> = {1: b}\n",
    ];
    for (text, ok) in well_formed
        .iter()
        .map(|t| (t, true))
        .chain(broken.iter().map(|t| (t, false)))
    {
        let (fast, fast_errors) = syntax::parse(FileId(0), text);
        let (pest, pest_errors) = syntax::parse_with_pest_only(FileId(0), text);
        assert_eq!(fast, pest, "{text:?}");
        assert_eq!(
            format!("{fast_errors:?}"),
            format!("{pest_errors:?}"),
            "{text:?}"
        );
        assert_eq!(fast_errors.is_empty(), ok, "{text:?}: {fast_errors:?}");
    }
}
