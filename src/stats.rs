//! Small statistics for reporting success rates honestly on few problems: the Wilson score interval
//! of a rate and the exact one-sided sign test of a paired comparison.

/// The 95% Wilson score interval for `successes` out of `n` (better than the normal approximation on
/// the small samples and extreme rates typical of agent evaluations). `None` when `n` is 0.
/// `successes` may be a sum of partial scores (the same formula on the mean score: an approximation).
pub fn wilson_95(successes: f64, n: usize) -> Option<(f64, f64)> {
    if n == 0 {
        return None;
    }
    const Z: f64 = 1.959_963_984_540_054;
    let n = n as f64;
    let p = (successes / n).clamp(0.0, 1.0);
    let z2 = Z * Z;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = Z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / (1.0 + z2 / n);
    Some(((centre - half).max(0.0), (centre + half).min(1.0)))
}

/// `, 95% CI 0.118–0.769` (to `decimals` places) for an interval, nothing without one: how every
/// human output appends an interval to a rate.
pub fn ci95_text(ci95: Option<[f64; 2]>, decimals: usize) -> String {
    ci95.map_or(String::new(), |[lo, hi]| format!(", 95% CI {lo:.decimals$}–{hi:.decimals$}"))
}

/// The exact one-sided sign test (McNemar's exact test on the discordant pairs): the probability of
/// at least `wins` wins in `wins + losses` fair coin flips, i.e. of an improvement this large by
/// chance when neither side is better. Ties are left out by the caller; 1 when there is no pair.
pub fn sign_test_one_sided(wins: usize, losses: usize) -> f64 {
    let n = wins + losses;
    // Sum of C(n, k) / 2^n for k ≥ wins, in logs so that large n does not overflow.
    let ln_choose = |k: usize| ln_factorial(n) - ln_factorial(k) - ln_factorial(n - k);
    let half_n = n as f64 * std::f64::consts::LN_2;
    (wins..=n).map(|k| (ln_choose(k) - half_n).exp()).sum::<f64>().min(1.0)
}

fn ln_factorial(n: usize) -> f64 {
    (2..=n).map(|k| (k as f64).ln()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        let (lo, hi) = wilson_95(3.0, 6).unwrap();
        assert!((lo - 0.1876).abs() < 1e-3 && (hi - 0.8124).abs() < 1e-3, "{lo} {hi}");
        let (lo, hi) = wilson_95(6.0, 6).unwrap();
        assert!((lo - 0.6097).abs() < 1e-3 && hi == 1.0, "{lo} {hi}");
        assert_eq!(wilson_95(0.0, 0), None);
    }

    #[test]
    fn sign_test_exact_values() {
        // 5 wins of 5: 1/32; 4 of 5: 6/32; 1 of 1: 1/2; nothing discordant: no evidence.
        assert!((sign_test_one_sided(5, 0) - 1.0 / 32.0).abs() < 1e-12);
        assert!((sign_test_one_sided(4, 1) - 6.0 / 32.0).abs() < 1e-12);
        assert!((sign_test_one_sided(1, 0) - 0.5).abs() < 1e-12);
        assert_eq!(sign_test_one_sided(0, 0), 1.0);
        assert!((sign_test_one_sided(0, 3) - 1.0).abs() < 1e-12);
        // Large n stays finite: 60 of 100 has p ≈ 0.0284.
        assert!((sign_test_one_sided(60, 40) - 0.028_44).abs() < 1e-4);
    }
}
