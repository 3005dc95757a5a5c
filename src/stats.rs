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

/// The mean of `xs` and its 95% Student-t interval (`None` for the interval below two values).
pub fn mean_ci95(xs: &[f64]) -> Option<(f64, Option<(f64, f64)>)> {
    if xs.is_empty() {
        return None;
    }
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    if xs.len() < 2 {
        return Some((mean, None));
    }
    let variance = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    let half = t_975(xs.len() - 1) * (variance / n).sqrt();
    Some((mean, Some((mean - half, mean + half))))
}

/// The 0.975 quantile of Student's t with `df` degrees of freedom: exact to three places from a table
/// up to 30, then the Cornish-Fisher expansion around the normal quantile.
fn t_975(df: usize) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
        2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
        2.045, 2.042,
    ];
    if (1..=30).contains(&df) {
        return TABLE[df - 1];
    }
    let z: f64 = 1.959_963_984_540_054;
    let d = df.max(1) as f64;
    z + (z.powi(3) + z) / (4.0 * d) + (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / (96.0 * d * d)
}

/// The median of `xs` and its distribution-free 95% interval from order statistics (the widest pair
/// `x(k)`, `x(n+1-k)` whose binomial coverage is at least 95%; `None` below six values, where no
/// such pair exists).
pub fn median_ci95(xs: &[f64]) -> Option<(f64, Option<(f64, f64)>)> {
    if xs.is_empty() {
        return None;
    }
    let mut sorted = xs.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let median = if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0 };
    // The lower rank k is the largest with P(Binomial(n, 1/2) < k) ≤ 2.5%: the chance that the
    // median lies below x(k). The probabilities are summed term by term, in logs (2^-n underflows).
    let mut ln_term = -(n as f64) * std::f64::consts::LN_2;
    let mut below = 0.0;
    let mut k = None;
    for rank in 1..=n / 2 {
        below += ln_term.exp();
        if below > 0.025 {
            break;
        }
        k = Some(rank);
        ln_term += ((n - rank + 1) as f64).ln() - (rank as f64).ln();
    }
    Some((median, k.map(|k| (sorted[k - 1], sorted[n - k]))))
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

    #[test]
    fn mean_interval_is_student_t() {
        let (mean, ci) = mean_ci95(&[1.0, 2.0, 3.0]).unwrap();
        // s = 1, n = 3: 2 ± 4.303 / sqrt(3).
        let (lo, hi) = ci.unwrap();
        assert!(
            (mean - 2.0).abs() < 1e-12
                && (hi - 2.0 - 4.303 / 3f64.sqrt()).abs() < 1e-9
                && (lo + hi - 4.0).abs() < 1e-9
        );
        assert_eq!(mean_ci95(&[5.0]), Some((5.0, None)));
        assert_eq!(mean_ci95(&[]), None);
        assert!((t_975(31) - 2.040).abs() < 2e-3 && (t_975(1000) - 1.962).abs() < 1e-3);
    }

    #[test]
    fn median_interval_comes_from_order_statistics() {
        assert_eq!(median_ci95(&[3.0, 1.0, 2.0]), Some((2.0, None)));
        assert_eq!(median_ci95(&[4.0, 1.0, 3.0, 2.0]).unwrap().0, 2.5);
        // n = 6: P(X < 1) = 1/64 ≤ 0.025, P(X < 2) = 7/64 > 0.025, so x(1)..x(6).
        let six = [6.0, 5.0, 4.0, 3.0, 2.0, 1.0];
        assert_eq!(median_ci95(&six), Some((3.5, Some((1.0, 6.0)))));
        // n = 20: the textbook ranks are 6 and 15.
        let twenty: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(median_ci95(&twenty).unwrap().1, Some((6.0, 15.0)));
    }
}
