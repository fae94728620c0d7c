//! "Did you mean …?": the closest known name to a misspelt one.

/// Edit distance in characters, an adjacent swap counting as one edit
/// (`gaol` → `goal`), as typing mistakes go.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // three rows: the one before the previous is needed for swaps
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 0..a.len() {
        let mut cur = Vec::with_capacity(b.len() + 1);
        cur.push(i + 1);
        for j in 0..b.len() {
            let cost = usize::from(a[i] != b[j]);
            let mut d = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
            if i > 0 && j > 0 && a[i] == b[j - 1] && a[i - 1] == b[j] {
                d = d.min(before[j - 1] + 1);
            }
            cur.push(d);
        }
        before = std::mem::replace(&mut prev, cur);
    }
    prev[b.len()]
}

/// The closest candidate within a typo's distance of `name` (about one
/// edit per three characters), or an inflection of it (`retries` for
/// `retry`: the name starts with all of the candidate but its last
/// letter), ties broken alphabetically.
pub fn closest<'s>(name: &str, candidates: impl IntoIterator<Item = &'s str>) -> Option<&'s str> {
    let limit = (name.chars().count() / 3).clamp(1, 3);
    candidates
        .into_iter()
        .map(|c| (edit_distance(name, c), c))
        .filter(|&(d, c)| (d <= limit && d < c.chars().count()) || inflection(name, c))
        .min()
        .map(|(_, c)| c)
}

fn inflection(name: &str, candidate: &str) -> bool {
    let stem: Vec<char> = candidate.chars().collect();
    stem.len() >= 4 && name.len() > candidate.len().saturating_sub(1) && {
        let stem: String = stem[..stem.len() - 1].iter().collect();
        name.starts_with(&stem) && name.chars().count() <= candidate.chars().count() + 3
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_typos_not_strangers() {
        assert_eq!(edit_distance("gaurd", "guard"), 1);
        assert_eq!(edit_distance("gaol", "goal"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(closest("gaol", ["goal", "spec"]), Some("goal"));
        assert_eq!(closest("retries", ["retry", "role"]), Some("retry"));
        assert_eq!(closest("timeouts", ["timeout"]), Some("timeout"));
        assert_eq!(
            closest("pytset", ["pytest", "python_syntax"]),
            Some("pytest")
        );
        assert_eq!(closest("zzz", ["pytest"]), None);
    }
}
