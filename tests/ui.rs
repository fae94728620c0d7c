//! Programs that must fail (tests/ui) and programs that must pass
//! (tests/pass).
//!
//! A failing program says what it expects in comments: `// error[E0102]`
//! at the end of a line expects a finding with that code whose primary
//! label starts on that line; on a line of its own, it refers to the next
//! line that is not a comment. The findings must be exactly those
//! expected, and their rendering matches the insta snapshot
//! `tests/ui/snapshots/<file>.snap`.

use std::collections::BTreeSet;

use guardflow::diagnostics::Code;

use crate::support::{check_path, guardflow_files, render_all};

/// (line, code) pairs a program expects.
fn expectations(text: &str) -> Vec<(usize, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(comment) = line.find("// ").map(|c| &line[c..]) else {
            continue;
        };
        let own_line = line.trim_start().starts_with("//");
        let target = if own_line {
            (i + 1..lines.len())
                .find(|&j| !lines[j].trim_start().starts_with("//"))
                .unwrap_or(i)
        } else {
            i
        };
        let mut rest = comment;
        while let Some(start) = rest.find("error[").or_else(|| rest.find("warning[")) {
            let after = &rest[start..];
            let open = after.find('[').unwrap_or(0);
            let close = after.find(']').unwrap_or(after.len());
            out.push((target + 1, after[open + 1..close].to_string()));
            rest = &after[close.min(after.len())..];
        }
    }
    out.sort();
    out
}

#[test]
fn failing_programs_report_exactly_their_expected_findings() {
    let files = guardflow_files("tests/ui");
    assert!(files.len() >= 40, "only {} failing programs", files.len());
    let mut problems = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).expect("read");
        let expected = expectations(&text);
        assert!(
            !expected.is_empty(),
            "{} expects no finding",
            path.display()
        );
        let checked = check_path(path);
        let root = checked.sources.find(&path.to_string_lossy());
        let mut found: Vec<(usize, String)> = checked
            .diagnostics
            .iter()
            .filter(|d| Some(d.primary.span.file) == root)
            .map(|d| {
                let (line, _) = checked
                    .sources
                    .get(d.primary.span.file)
                    .line_col(d.primary.span.start);
                (line, d.code.as_str().to_string())
            })
            .collect();
        found.sort();
        if found != expected {
            problems.push(format!(
                "{}:\n  expected {expected:?}\n  found    {found:?}\n{}",
                path.display(),
                render_all(&checked)
            ));
        }
        let name = path
            .file_stem()
            .expect("stem")
            .to_string_lossy()
            .into_owned();
        insta::with_settings!({
            snapshot_path => "ui/snapshots",
            prepend_module_to_snapshot => false,
            omit_expression => true,
        }, {
            insta::assert_snapshot!(name, render_all(&checked));
        });
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_code_has_a_failing_program() {
    let mut covered = BTreeSet::new();
    for path in guardflow_files("tests/ui") {
        let text = std::fs::read_to_string(&path).expect("read");
        for (_, code) in expectations(&text) {
            covered.insert(code);
        }
    }
    let missing: Vec<&str> = Code::ALL
        .iter()
        .map(|c| c.as_str())
        .filter(|c| !covered.contains(*c))
        .collect();
    assert!(
        missing.is_empty(),
        "codes without a failing program in tests/ui: {missing:?}"
    );
}

#[test]
fn passing_programs_have_no_findings() {
    let files = guardflow_files("tests/pass");
    assert!(!files.is_empty());
    for path in files {
        let checked = check_path(&path);
        assert!(
            checked.diagnostics.is_empty(),
            "{}:\n{}",
            path.display(),
            render_all(&checked)
        );
        assert!(checked.program.is_some());
    }
}

#[test]
fn expectation_comments_are_read() {
    let text = "a // error[E0101]\n// warning[W0001]\n// more\nb\n";
    assert_eq!(
        expectations(text),
        vec![(1, "E0101".to_string()), (4, "W0001".to_string())]
    );
}
