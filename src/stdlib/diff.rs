//! The `diff_paths(allow)` guard: file safety over a unified diff. Every
//! path the diff touches (its `---`/`+++` lines, git's `diff --git`,
//! `rename from/to`, `copy from/to` lines; new and deleted files through
//! `/dev/null`) must be relative, stay inside the tree (no `..`) and
//! match one of the `allow` globs.
//!
//! Hunks are counted from their `@@ -a,b +c,d @@` headers, so a removed
//! line that starts with `-- ` is content, not a header.

use crate::runtime::Verdict;

/// How many offending paths feedback lists.
const MAX_REPORTED: usize = 10;

/// A path the diff touches, with the line that names it (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Touched {
    pub path: String,
    pub line: usize,
}

/// The paths `diff` touches, in order, each once; `/dev/null` left out.
pub fn touched_paths(diff: &str) -> Vec<Touched> {
    let mut out: Vec<Touched> = Vec::new();
    let mut push = |raw: &str, line: usize, strip: Option<&str>| {
        let mut path = unquote(raw);
        if path == "/dev/null" || path.is_empty() {
            return;
        }
        if let Some(prefix) = strip {
            if let Some(rest) = path.strip_prefix(prefix) {
                path = rest.to_string();
            }
        }
        if !out.iter().any(|t| t.path == path) {
            out.push(Touched { path, line });
        }
    };
    let (mut old_left, mut new_left) = (0u64, 0u64);
    for (i, line) in diff.lines().enumerate() {
        let n = i + 1;
        if old_left > 0 || new_left > 0 {
            match line.as_bytes().first() {
                Some(b' ') | None => {
                    old_left = old_left.saturating_sub(1);
                    new_left = new_left.saturating_sub(1);
                    continue;
                }
                Some(b'-') => {
                    old_left = old_left.saturating_sub(1);
                    continue;
                }
                Some(b'+') => {
                    new_left = new_left.saturating_sub(1);
                    continue;
                }
                Some(b'\\') => continue,
                // a short hunk: headers again
                _ => (old_left, new_left) = (0, 0),
            }
        }
        if let Some(rest) = line.strip_prefix("@@ ") {
            (old_left, new_left) = hunk_counts(rest);
        } else if let Some(rest) = line.strip_prefix("--- ") {
            push(header_path(rest), n, Some("a/"));
        } else if let Some(rest) = line.strip_prefix("+++ ") {
            push(header_path(rest), n, Some("b/"));
        } else if let Some(rest) = line.strip_prefix("diff --git ") {
            for (p, prefix) in git_pair(rest) {
                push(&p, n, Some(prefix));
            }
        } else if let Some(rest) = ["rename from ", "rename to ", "copy from ", "copy to "]
            .iter()
            .find_map(|p| line.strip_prefix(p))
        {
            push(rest, n, None);
        }
    }
    out
}

/// `-a,b +c,d @@…`: the old and new line counts (1 when left out).
fn hunk_counts(rest: &str) -> (u64, u64) {
    let mut words = rest.split_whitespace();
    let count = |w: Option<&str>| -> u64 {
        w.and_then(|w| {
            let w = &w[1..];
            match w.split_once(',') {
                Some((_, c)) => c.parse().ok(),
                None => Some(1),
            }
        })
        .unwrap_or(0)
    };
    let old = count(words.next().filter(|w| w.starts_with('-') && w.len() > 1));
    let new = count(words.next().filter(|w| w.starts_with('+') && w.len() > 1));
    (old, new)
}

/// A `---`/`+++` line's path: up to a tab (a timestamp follows it).
fn header_path(rest: &str) -> &str {
    if rest.starts_with('"') {
        return rest;
    }
    rest.split('\t').next().unwrap_or(rest).trim_end()
}

/// `a/X b/Y` of a `diff --git` line (quoted or not); for unquoted paths
/// with spaces, split where the two halves name the same path.
fn git_pair(rest: &str) -> Vec<(String, &'static str)> {
    if rest.starts_with('"') {
        let (first, after) = quoted(rest);
        let second = after.trim_start();
        return vec![(first, "a/"), (unquote(second), "b/")];
    }
    if let Some(b) = rest.find(" \"") {
        return vec![
            (rest[..b].to_string(), "a/"),
            (unquote(&rest[b + 1..]), "b/"),
        ];
    }
    // `a/x y b/x y`: the split whose halves agree after their prefixes
    let splits: Vec<usize> = rest.match_indices(" b/").map(|(i, _)| i).collect();
    let pick = splits
        .iter()
        .copied()
        .find(|&i| rest[..i].strip_prefix("a/") == Some(&rest[i + 3..]))
        .or(splits.first().copied());
    match pick {
        Some(i) => vec![
            (rest[..i].to_string(), "a/"),
            (rest[i + 1..].to_string(), "b/"),
        ],
        None => Vec::new(),
    }
}

/// A C-style quoted path as git writes it (`"a/x\ty"`), or the text.
fn unquote(s: &str) -> String {
    if s.starts_with('"') {
        quoted(s).0
    } else {
        s.to_string()
    }
}

/// The quoted string at the start of `s` and what follows it.
fn quoted(s: &str) -> (String, &str) {
    let mut bytes = Vec::new();
    let mut it = s.char_indices().skip(1).peekable();
    while let Some((i, c)) = it.next() {
        match c {
            '"' => return (String::from_utf8_lossy(&bytes).into_owned(), &s[i + 1..]),
            '\\' => match it.next() {
                Some((_, 'n')) => bytes.push(b'\n'),
                Some((_, 't')) => bytes.push(b'\t'),
                Some((_, d @ '0'..='7')) => {
                    let mut v = d as u32 - '0' as u32;
                    for _ in 0..2 {
                        if let Some(&(_, d @ '0'..='7')) = it.peek() {
                            v = v * 8 + (d as u32 - '0' as u32);
                            it.next();
                        }
                    }
                    bytes.push(v as u8);
                }
                Some((_, c)) => {
                    let mut b = [0; 4];
                    bytes.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
                }
                None => break,
            },
            c => {
                let mut b = [0; 4];
                bytes.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
    }
    (String::from_utf8_lossy(&bytes).into_owned(), "")
}

/// Whether `path` matches `pattern`: `*` any characters but `/`, `?` one
/// character but `/`, `**` as a whole segment any number of segments
/// (`src/**` is everything under `src`, `**/*.py` every Python file), a
/// pattern ending in `/` everything under that directory.
pub fn glob(pattern: &str, path: &str) -> bool {
    let pattern = pattern.trim();
    let pattern = match pattern.strip_suffix('/') {
        Some(dir) => format!("{dir}/**"),
        None => pattern.to_string(),
    };
    let pat: Vec<&str> = pattern
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    let segs: Vec<&str> = path
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    match_segments(&pat, &segs)
}

fn match_segments(pat: &[&str], segs: &[&str]) -> bool {
    // iterative over `**` positions: at most pat.len() * segs.len() states
    let mut reach = vec![false; segs.len() + 1];
    reach[0] = true;
    for p in pat {
        let mut next = vec![false; segs.len() + 1];
        for i in 0..=segs.len() {
            if !reach[i] {
                continue;
            }
            if *p == "**" {
                for slot in next.iter_mut().skip(i) {
                    *slot = true;
                }
            } else if i < segs.len() && match_segment(p.as_bytes(), segs[i].as_bytes()) {
                next[i + 1] = true;
            }
        }
        reach = next;
    }
    reach[segs.len()]
}

/// `*` and `?` within one segment, without backtracking blow-up.
fn match_segment(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

/// Why `path` is refused, if it is.
fn offence(path: &str, allow: &[String]) -> Option<String> {
    if path.starts_with('/') {
        return Some("an absolute path".into());
    }
    if path.split('/').any(|s| s == "..") {
        return Some("`..` leaves the repository".into());
    }
    if path.contains('\0') || path.contains('\n') {
        return Some("a control character in the name".into());
    }
    if allow.iter().any(|p| glob(p, path)) {
        None
    } else {
        Some("not an allowed path".into())
    }
}

/// The `diff_paths` guard.
pub fn diff_paths(diff: &str, allow: &[String]) -> Verdict {
    let touched = touched_paths(diff);
    if touched.is_empty() {
        return Verdict::fail(
            "no file headers found: the artifact is not a unified diff (`--- a/PATH`, \
             `+++ b/PATH`, `@@ … @@` hunks)",
        );
    }
    let bad: Vec<String> = touched
        .iter()
        .filter_map(|t| {
            offence(&t.path, allow)
                .map(|why| format!("line {}: `{}`: {why}", t.line, t.path.escape_debug()))
        })
        .collect();
    if bad.is_empty() {
        return Verdict::Pass;
    }
    let allowed = if allow.is_empty() {
        "no path is allowed".to_string()
    } else {
        format!(
            "allowed: {}",
            allow
                .iter()
                .map(|a| format!("`{}`", a.trim()))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let mut feedback = match bad.len() {
        1 => format!("the diff touches a path it may not ({allowed}):"),
        n => format!("the diff touches {n} paths it may not ({allowed}):"),
    };
    for b in bad.iter().take(MAX_REPORTED) {
        feedback.push_str("\n- ");
        feedback.push_str(b);
    }
    if bad.len() > MAX_REPORTED {
        feedback.push_str(&format!("\n(and {} more)", bad.len() - MAX_REPORTED));
    }
    Verdict::fail(feedback)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(diff: &str) -> Vec<String> {
        touched_paths(diff).into_iter().map(|t| t.path).collect()
    }

    #[test]
    fn globs() {
        assert!(glob("src/**", "src/a/b.py"));
        assert!(glob("src/", "src/a.py"));
        assert!(glob("**/*.py", "a/b/c.py"));
        assert!(glob("**/*.py", "c.py"));
        assert!(glob("src/*.py", "src/a.py"));
        assert!(!glob("src/*.py", "src/a/b.py"));
        assert!(!glob("src/**", "srcx/a.py"));
        assert!(glob("docs/?.md", "docs/a.md"));
        assert!(!glob("docs/?.md", "docs/ab.md"));
        assert!(glob("README.md", "README.md"));
        assert!(!glob("", "README.md"));
        let long = "a".repeat(5000);
        assert!(!glob(&"*a".repeat(200), &format!("{long}b")));
    }

    #[test]
    fn headers_renames_and_dev_null() {
        let d = "diff --git a/src/a.py b/src/a.py\nindex 1..2 100644\n--- a/src/a.py\n+++ b/src/a.py\n@@ -1,2 +1,2 @@\n--- not a header\n+++ nor this\n x\n--- /dev/null\n+++ b/new.txt\t2024-01-01\n@@ -0,0 +1 @@\n+hi\ndiff --git a/old name.py b/new name.py\nsimilarity index 90%\nrename from old name.py\nrename to new name.py\n--- a/gone.py\n+++ /dev/null\n@@ -1 +0,0 @@\n-bye\n";
        assert_eq!(
            paths(d),
            [
                "src/a.py",
                "new.txt",
                "old name.py",
                "new name.py",
                "gone.py"
            ]
        );
        assert_eq!(
            paths("--- \"a/tab\\there\"\n+++ \"b/caf\\303\\251\"\n"),
            ["tab\there", "café"]
        );
    }
}
