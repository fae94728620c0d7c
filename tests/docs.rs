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

/// Every relative link in the docs and the README names a file that
/// exists (an anchor after `#` is not checked).
#[test]
fn every_relative_link_in_the_docs_resolves() {
    let mut pages: Vec<std::path::PathBuf> = vec!["README.md".into(), "ARCHITECTURE.md".into()];
    for entry in std::fs::read_dir("docs").expect("docs/").flatten() {
        if entry.path().extension().is_some_and(|e| e == "md") {
            pages.push(entry.path());
        }
    }
    let mut dead = Vec::new();
    for page in &pages {
        let text = std::fs::read_to_string(page).expect("a page");
        let dir = page.parent().unwrap_or(std::path::Path::new("."));
        let mut rest = text.as_str();
        while let Some(i) = rest.find("](") {
            rest = &rest[i + 2..];
            let end = rest.find(')').unwrap_or(rest.len());
            let target = &rest[..end];
            let file = target.split('#').next().unwrap_or("");
            if file.is_empty() || file.contains("://") || file.starts_with("mailto:") {
                continue;
            }
            if !dir.join(file).exists() {
                dead.push(format!("{}: {target}", page.display()));
            }
        }
    }
    assert!(dead.is_empty(), "dead links:\n{}", dead.join("\n"));
}

/// The table of generator kinds in docs/language.md lists every
/// parameter the prelude declares.
#[test]
fn the_generator_table_lists_every_declared_parameter() {
    let prelude = std::fs::read_to_string("stdlib/prelude.guardflow").expect("prelude");
    let docs = std::fs::read_to_string("docs/language.md").expect("language.md");
    let mut missing = Vec::new();
    for line in prelude.lines() {
        let Some(rest) = line.strip_prefix("extern generator ") else {
            continue;
        };
        let name = rest.split(['(', ' ']).next().unwrap_or("");
        let row = docs
            .lines()
            .find(|l| l.starts_with(&format!("| `{name}` |")))
            .unwrap_or("");
        if row.is_empty() {
            missing.push(format!("`{name}` has no row"));
            continue;
        }
        let params = rest
            .split_once('(')
            .map(|(_, p)| p.trim_end().trim_end_matches(')'))
            .unwrap_or("");
        // top-level commas only: defaults may hold lists
        let mut depth = 0;
        let mut start = 0;
        let mut names = Vec::new();
        for (i, c) in params.char_indices() {
            match c {
                '[' | '(' | '{' | '<' => depth += 1,
                ']' | ')' | '}' | '>' => depth -= 1,
                ',' if depth == 0 => {
                    names.push(params[start..i].trim());
                    start = i + 1;
                }
                _ => {}
            }
        }
        names.push(params[start..].trim());
        for p in names.into_iter().filter(|p| !p.is_empty()) {
            let pname = p.split(':').next().unwrap_or("").trim();
            if !row.contains(&format!("`{pname}:")) {
                missing.push(format!("`{name}`'s `{pname}`"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "docs/language.md's generator table misses: {}",
        missing.join(", ")
    );
}
