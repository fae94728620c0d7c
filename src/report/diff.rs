//! The line diff between an attempt's output and the output of the
//! attempt before it at the same path: runs of kept, removed and added
//! lines (the `similar` crate's Myers diff, with a deadline so no pair of
//! texts can take long). The page rebuilds the lines from the two texts.

use std::time::Duration;

use similar::{Algorithm, DiffOp, TextDiff};

/// A run of lines: kept (in both), removed (only in the old text), added
/// (only in the new one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Run {
    Same(usize),
    Removed(usize),
    Added(usize),
}

/// The lines of `text` as the diff counts them: each with its newline,
/// the last one without when the text does not end in one.
pub fn lines(text: &str) -> Vec<&str> {
    text.split_inclusive('\n').collect()
}

/// The runs that turn `old` into `new`, line by line.
pub fn line_diff(old: &str, new: &str) -> Vec<Run> {
    let diff = TextDiff::configure()
        .algorithm(Algorithm::Myers)
        .timeout(Duration::from_millis(50))
        .diff_lines(old, new);
    let mut out: Vec<Run> = Vec::new();
    let mut push = |r: Run| {
        let merged = match (out.last_mut(), r) {
            (Some(Run::Same(a)), Run::Same(b))
            | (Some(Run::Removed(a)), Run::Removed(b))
            | (Some(Run::Added(a)), Run::Added(b)) => {
                *a += b;
                true
            }
            _ => false,
        };
        if !merged && !matches!(r, Run::Same(0) | Run::Removed(0) | Run::Added(0)) {
            out.push(r);
        }
    };
    for op in diff.ops() {
        match *op {
            DiffOp::Equal { len, .. } => push(Run::Same(len)),
            DiffOp::Delete { old_len, .. } => push(Run::Removed(old_len)),
            DiffOp::Insert { new_len, .. } => push(Run::Added(new_len)),
            DiffOp::Replace {
                old_len, new_len, ..
            } => {
                push(Run::Removed(old_len));
                push(Run::Added(new_len));
            }
        }
    }
    out
}

/// The diff as text, `  ` kept, `- ` removed, `+ ` added (for tests and
/// for reading without the page's script).
pub fn unified(old: &str, new: &str) -> String {
    let (a, b) = (lines(old), lines(new));
    let (mut i, mut j) = (0, 0);
    let mut out = String::new();
    let mut line = |mark: &str, l: &str| {
        out.push_str(mark);
        out.push_str(l.strip_suffix('\n').unwrap_or(l));
        out.push('\n');
    };
    for run in line_diff(old, new) {
        match run {
            Run::Same(n) => {
                for l in &a[i..(i + n).min(a.len())] {
                    line("  ", l);
                }
                i += n;
                j += n;
            }
            Run::Removed(n) => {
                for l in &a[i..(i + n).min(a.len())] {
                    line("- ", l);
                }
                i += n;
            }
            Run::Added(n) => {
                for l in &b[j..(j + n).min(b.len())] {
                    line("+ ", l);
                }
                j += n;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_lines_are_removed_and_added() {
        let old = "a\nb\nc\n";
        let new = "a\nB\nc\nd\n";
        assert_eq!(
            line_diff(old, new),
            [
                Run::Same(1),
                Run::Removed(1),
                Run::Added(1),
                Run::Same(1),
                Run::Added(1)
            ]
        );
        assert_eq!(unified(old, new), "  a\n- b\n+ B\n  c\n+ d\n");
    }

    #[test]
    fn empty_and_unterminated_texts() {
        assert_eq!(line_diff("", ""), []);
        assert_eq!(line_diff("", "x"), [Run::Added(1)]);
        assert_eq!(line_diff("x\ny", "x\ny"), [Run::Same(2)]);
        assert_eq!(lines("x\ny"), ["x\n", "y"]);
        assert!(lines("").is_empty());
    }
}
