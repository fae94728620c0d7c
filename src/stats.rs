//! Statistics for measured outcomes: proportions with their confidence
//! intervals, the test and the effect size that compare two of them, and
//! the summary of a sample. Used by `check --bounds --from-runs` and by
//! `guardflow bench`. Plain functions over counts; no input panics (an
//! empty sample or a zero count gives the widest honest answer).

/// The normal quantile for a two-sided 95 % interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// The Wilson score interval of `successes` out of `n` at quantile `z`
/// (use [`Z95`] for 95 %). With no trials the interval is `(0, 1)`: nothing
/// is known. `successes` above `n` is read as `n`.
pub fn wilson(successes: u64, n: u64, z: f64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let n_f = n as f64;
    let p = successes.min(n) as f64 / n_f;
    let z2 = z * z;
    let denominator = 1.0 + z2 / n_f;
    let centre = (p + z2 / (2.0 * n_f)) / denominator;
    let half = z / denominator * (p * (1.0 - p) / n_f + z2 / (4.0 * n_f * n_f)).sqrt();
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// Fisher's exact test, two-sided, for the 2×2 table `[[a, b], [c, d]]`
/// (rows: the two groups; columns: success, failure). The p-value sums the
/// probabilities of every table with the same margins that is no more
/// likely than the one observed.
pub fn fisher_exact_two_sided(a: u64, b: u64, c: u64, d: u64) -> f64 {
    let row1 = a + b;
    let row2 = c + d;
    let col1 = a + c;
    let n = row1 + row2;
    if n == 0 {
        return 1.0;
    }
    let ln_fact = LnFactorials::up_to(n);
    // ln P(table with top-left x) under the hypergeometric distribution
    let ln_p = |x: u64| -> f64 {
        ln_fact.get(row1) + ln_fact.get(row2) + ln_fact.get(col1) + ln_fact.get(n - col1)
            - ln_fact.get(n)
            - ln_fact.get(x)
            - ln_fact.get(row1 - x)
            - ln_fact.get(col1 - x)
            - ln_fact.get(row2 + x - col1)
    };
    let low = col1.saturating_sub(row2);
    let high = row1.min(col1);
    let observed = ln_p(a);
    // a relative tolerance, so tables exactly as likely count despite rounding
    let threshold = observed + 1e-7_f64.ln_1p();
    let total: f64 = (low..=high)
        .map(ln_p)
        .filter(|&lp| lp <= threshold)
        .map(f64::exp)
        .sum();
    total.clamp(0.0, 1.0)
}

/// Cohen's h, the effect size between two proportions:
/// `2·asin(√p1) − 2·asin(√p2)`. Positive when `p1` is the larger;
/// proportions outside `[0, 1]` are clamped.
pub fn cohens_h(p1: f64, p2: f64) -> f64 {
    let phi = |p: f64| 2.0 * p.clamp(0.0, 1.0).sqrt().asin();
    phi(p1) - phi(p2)
}

/// The mean of a sample, `None` when it is empty.
pub fn mean(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        None
    } else {
        Some(values.iter().sum::<f64>() / values.len() as f64)
    }
}

/// The summary of a sample: its size, mean, sample standard deviation,
/// extremes and median.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Summary {
    pub n: usize,
    pub mean: f64,
    /// The sample standard deviation (n − 1); 0 for a single value.
    pub sd: f64,
    pub min: f64,
    pub max: f64,
    pub median: f64,
}

impl Summary {
    /// `None` for an empty sample; values that are not numbers are left out.
    pub fn of(values: &[f64]) -> Option<Summary> {
        let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let mean = sorted.iter().sum::<f64>() / n as f64;
        let sd = if n > 1 {
            (sorted.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
        } else {
            0.0
        };
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        Some(Summary {
            n,
            mean,
            sd,
            min: sorted[0],
            max: sorted[n - 1],
            median,
        })
    }
}

/// `ln k!` for every k up to a bound, computed once by summing logarithms.
struct LnFactorials(Vec<f64>);

impl LnFactorials {
    fn up_to(n: u64) -> LnFactorials {
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        let mut table = Vec::with_capacity(n.saturating_add(1).min(1 << 24));
        let mut acc = 0.0;
        table.push(0.0);
        for k in 1..=n {
            acc += (k as f64).ln();
            table.push(acc);
        }
        LnFactorials(table)
    }

    fn get(&self, k: u64) -> f64 {
        usize::try_from(k)
            .ok()
            .and_then(|k| self.0.get(k))
            .copied()
            .unwrap_or(f64::NAN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tolerance: f64) -> bool {
        (a - b).abs() <= tolerance
    }

    #[test]
    fn wilson_matches_textbook_intervals() {
        // 5 of 10 at 95 %: 0.2366 to 0.7634
        let (lo, hi) = wilson(5, 10, Z95);
        assert!(
            close(lo, 0.2366, 1e-4) && close(hi, 0.7634, 1e-4),
            "{lo} {hi}"
        );
        // 0 of 10: the lower end is 0, the upper 0.2775
        let (lo, hi) = wilson(0, 10, Z95);
        assert!(
            close(lo, 0.0, 1e-12) && close(hi, 0.2775, 1e-4),
            "{lo} {hi}"
        );
        // 9 of 20 (the correlated case): 0.2582 to 0.6579
        let (lo, hi) = wilson(9, 20, Z95);
        assert!(
            close(lo, 0.2582, 1e-4) && close(hi, 0.6579, 1e-4),
            "{lo} {hi}"
        );
        assert_eq!(wilson(0, 0, Z95), (0.0, 1.0));
        assert_eq!(wilson(3, 2, Z95), wilson(2, 2, Z95));
    }

    #[test]
    fn fisher_matches_textbook_p_values() {
        // the lady tasting tea: [[3, 1], [1, 3]], two-sided p = 34/70
        assert!(close(fisher_exact_two_sided(3, 1, 1, 3), 34.0 / 70.0, 1e-9));
        // [[1, 9], [11, 3]]: p = 0.002759
        assert!(close(fisher_exact_two_sided(1, 9, 11, 3), 0.002759, 1e-6));
        // identical groups: p = 1
        assert!(close(fisher_exact_two_sided(5, 5, 5, 5), 1.0, 1e-9));
        assert_eq!(fisher_exact_two_sided(0, 0, 0, 0), 1.0);
        // the paper's scale: 50 trials per arm
        let p = fisher_exact_two_sided(45, 5, 20, 30);
        assert!(p > 0.0 && p < 1e-6, "{p}");
    }

    #[test]
    fn cohens_h_matches_textbook_values() {
        // 2·asin(√0.5) − 2·asin(√0.25) = π/2 − π/3 ≈ 0.5236
        let sixth = std::f64::consts::FRAC_PI_6;
        assert!(close(cohens_h(0.5, 0.25), sixth, 1e-12));
        assert!(close(cohens_h(0.25, 0.5), -sixth, 1e-12));
        assert!(close(cohens_h(1.0, 0.0), std::f64::consts::PI, 1e-12));
        assert_eq!(cohens_h(0.3, 0.3), 0.0);
    }

    #[test]
    fn summary_of_a_sample() {
        let s = Summary::of(&[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!(
            (s.n, s.mean, s.min, s.max, s.median),
            (4, 2.5, 1.0, 4.0, 2.5)
        );
        assert!(close(s.sd, 1.290_994, 1e-6));
        assert_eq!(Summary::of(&[]), None);
        assert_eq!(mean(&[]), None);
        assert_eq!(mean(&[2.0, 4.0]), Some(3.0));
    }
}
