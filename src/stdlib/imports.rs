//! The `imports_allowed(lang, allow, deny)` guard: architecture
//! boundaries by import. The imports come from the tree-sitter tree
//! (`syntax::imports`); this module judges them.
//!
//! A pattern matches a module and everything under it: `os` matches `os`
//! and `os.path` (Python), `fs` matches `fs`, `node:fs` and `fs/promises`
//! (JavaScript), `std::process` matches `std::process::Command`
//! (Rust). Every import that matches `deny` is rejected. When `allow` is
//! not empty, every import must match it, except the package's own
//! relative imports (`.x`, `./x`, `crate::`, `self::`, `super::`).

use super::syntax::{imports, Import};
use crate::runtime::Verdict;

/// How many offending imports feedback lists.
const MAX_REPORTED: usize = 5;

pub fn imports_allowed(lang: &str, source: &str, allow: &[String], deny: &[String]) -> Verdict {
    let found = match imports(lang, source) {
        Ok(f) => f,
        Err(e) => return Verdict::fatal(e),
    };
    let sep = separator(lang);
    let mut problems = Vec::new();
    for import in &found {
        if let Some(p) = deny.iter().find(|p| matches(&import.module, p, sep)) {
            problems.push(describe(
                import,
                &format!("which is denied (`{}` in deny)", p.trim()),
            ));
        } else if !allow.is_empty()
            && !relative(&import.module)
            && !allow.iter().any(|p| matches(&import.module, p, sep))
        {
            problems.push(describe(
                import,
                &format!(
                    "which is not allowed (allowed: {})",
                    allow
                        .iter()
                        .map(|a| format!("`{}`", a.trim()))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
    if problems.is_empty() {
        return Verdict::Pass;
    }
    let total = problems.len();
    let mut feedback = if total == 1 {
        "an import crosses a boundary:".to_string()
    } else {
        format!("{total} imports cross a boundary:")
    };
    for p in problems.iter().take(MAX_REPORTED) {
        feedback.push_str("\n- ");
        feedback.push_str(p);
    }
    if total > MAX_REPORTED {
        feedback.push_str(&format!("\n(and {} more)", total - MAX_REPORTED));
    }
    Verdict::fail(feedback)
}

fn describe(import: &Import, why: &str) -> String {
    format!(
        "line {}: `{}` imports `{}`, {why}",
        import.line, import.statement, import.module
    )
}

fn separator(lang: &str) -> &'static str {
    match super::syntax::canonical(lang) {
        Some("rust") => "::",
        Some("javascript" | "typescript") => "/",
        _ => ".",
    }
}

fn relative(module: &str) -> bool {
    module.starts_with('.')
        || ["crate::", "self::", "super::"]
            .iter()
            .any(|p| module.starts_with(p))
        || matches!(module, "crate" | "self" | "super")
}

/// `module` is `pattern` or lies under it.
fn matches(module: &str, pattern: &str, sep: &str) -> bool {
    let pattern = pattern.trim();
    if pattern.is_empty() {
        return false;
    }
    let module = module.strip_prefix("node:").unwrap_or(module);
    let pattern = pattern.strip_prefix("node:").unwrap_or(pattern);
    module == pattern
        || module
            .strip_prefix(pattern)
            .is_some_and(|rest| rest.starts_with(sep) || (sep == "::" && rest.starts_with("::{")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::value::expect_fail as fail;

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn python_imports_are_found_with_their_lines() {
        let src = "import os.path, json as j\nfrom collections import deque\nfrom . import sibling\nx = __import__('subprocess')\n";
        let found: Vec<(String, usize)> = imports("python", src)
            .expect("parses")
            .into_iter()
            .map(|i| (i.module, i.line))
            .collect();
        assert_eq!(
            found,
            vec![
                ("os.path".into(), 1),
                ("json".into(), 1),
                ("collections".into(), 2),
                (".".into(), 3),
                ("subprocess".into(), 4),
            ]
        );
    }

    #[test]
    fn deny_names_the_offending_import_and_line() {
        let src = "import json\nimport subprocess\n";
        let f = fail(imports_allowed(
            "python",
            src,
            &[],
            &list(&["subprocess", "os"]),
        ));
        assert!(
            f.contains("line 2: `import subprocess` imports `subprocess`, which is denied (`subprocess` in deny)"),
            "{f}"
        );
        assert!(!f.contains("json"), "{f}");
        assert_eq!(
            imports_allowed("python", "import osmosis\n", &[], &list(&["os"])),
            Verdict::Pass
        );
        let f = fail(imports_allowed(
            "python",
            "from os.path import join\n",
            &[],
            &list(&["os"]),
        ));
        assert!(f.contains("line 1"), "{f}");
    }

    #[test]
    fn allow_lists_admit_only_what_they_name_and_relative_imports() {
        let allow = list(&["json", "math"]);
        assert_eq!(
            imports_allowed(
                "py",
                "import json\nfrom . import x\nimport math\n",
                &allow,
                &[]
            ),
            Verdict::Pass
        );
        let f = fail(imports_allowed(
            "py",
            "import json\nimport requests\n",
            &allow,
            &[],
        ));
        assert!(
            f.contains("line 2: `import requests` imports `requests`, which is not allowed (allowed: `json`, `math`)"),
            "{f}"
        );
    }

    #[test]
    fn javascript_typescript_and_rust_imports() {
        let js = "import fs from 'node:fs';\nconst cp = require(\"child_process\");\nexport { a } from './a.js';\nconst m = await import('lodash');\n";
        let f = fail(imports_allowed(
            "js",
            js,
            &[],
            &list(&["fs", "child_process", "lodash"]),
        ));
        assert!(f.starts_with("3 imports cross a boundary:"), "{f}");
        assert!(f.contains("line 1: "), "{f}");
        assert!(f.contains("line 2: "), "{f}");
        assert!(f.contains("line 4: "), "{f}");
        let ts = "import { x } from 'axios';\nimport fs = require('fs');\n";
        let f = fail(imports_allowed("typescript", ts, &list(&["react"]), &[]));
        assert!(f.contains("`axios`") && f.contains("`fs`"), "{f}");
        let rs = "use std::collections::HashMap;\nuse std::process::{Command, Stdio};\nuse crate::db;\nextern crate libc;\n";
        let f = fail(imports_allowed(
            "rust",
            rs,
            &[],
            &list(&["std::process", "libc"]),
        ));
        assert!(
            f.contains("line 2: `use std::process::{Command, Stdio};`"),
            "{f}"
        );
        assert!(f.contains("line 4: "), "{f}");
        assert!(!f.contains("line 1"), "{f}");
        let f = fail(imports_allowed(
            "rust",
            rs,
            &list(&["std::collections"]),
            &[],
        ));
        assert!(
            f.contains("std::process") && !f.contains("crate::db"),
            "{f}"
        );
        assert!(matches!(
            imports_allowed("cobol", "", &[], &[]),
            Verdict::Fatal(_)
        ));
    }
}
