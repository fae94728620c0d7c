//! Every diagnostic code has its page, every page its code, and each
//! page's example really produces its code.

use std::collections::BTreeSet;

use guardflow::check;
use guardflow::diagnostics::Code;

#[test]
fn every_code_has_a_page_and_every_page_a_code() {
    let pages: BTreeSet<String> = std::fs::read_dir("docs/errors")
        .expect("docs/errors")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter_map(|n| n.strip_suffix(".md").map(str::to_string))
        .collect();
    let codes: BTreeSet<String> = Code::ALL.iter().map(|c| c.as_str().to_string()).collect();
    assert_eq!(
        pages, codes,
        "docs/errors/*.md and the code registry differ"
    );
}

#[test]
fn every_page_has_what_why_example_fix_and_its_title() {
    for code in Code::ALL {
        let page = code.explanation();
        let title = format!("# {code}: {}", code.title());
        assert!(
            page.starts_with(&title),
            "{code}: page must start with `{title}`"
        );
        for section in ["## What", "## Why", "## Example", "## Fix"] {
            assert!(page.contains(section), "{code}: no `{section}` section");
        }
    }
}

/// The first ```guardflow block after `heading`.
fn block_after<'a>(page: &'a str, heading: &str) -> Option<&'a str> {
    let rest = &page[page.find(heading)?..];
    let start = rest.find("```guardflow\n")? + "```guardflow\n".len();
    let end = rest[start..].find("```")?;
    Some(&rest[start..start + end])
}

#[test]
fn every_page_example_produces_its_code() {
    let mut problems = Vec::new();
    for code in Code::ALL {
        let Some(example) = block_after(code.explanation(), "## Example") else {
            problems.push(format!("{code}: no ```guardflow example"));
            continue;
        };
        let checked = check::check_source(&format!("{code}.guardflow"), example);
        if !checked.diagnostics.iter().any(|d| d.code == *code) {
            let found: Vec<&str> = checked
                .diagnostics
                .iter()
                .map(|d| d.code.as_str())
                .collect();
            problems.push(format!("{code}: the example reports {found:?}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
