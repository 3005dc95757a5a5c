//! Small statistics for reporting success rates honestly on few problems.

/// The 95% Wilson score interval for `successes` out of `n` (better than the normal approximation on
/// the small samples and extreme rates typical of agent evaluations). `None` when `n` is 0.
pub fn wilson_95(successes: usize, n: usize) -> Option<(f64, f64)> {
    if n == 0 {
        return None;
    }
    const Z: f64 = 1.959_963_984_540_054;
    let n = n as f64;
    let p = successes as f64 / n;
    let z2 = Z * Z;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = Z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / (1.0 + z2 / n);
    Some(((centre - half).max(0.0), (centre + half).min(1.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        let (lo, hi) = wilson_95(3, 6).unwrap();
        assert!((lo - 0.1876).abs() < 1e-3 && (hi - 0.8124).abs() < 1e-3, "{lo} {hi}");
        let (lo, hi) = wilson_95(6, 6).unwrap();
        assert!((lo - 0.6097).abs() < 1e-3 && hi == 1.0, "{lo} {hi}");
        assert_eq!(wilson_95(0, 0), None);
    }
}
