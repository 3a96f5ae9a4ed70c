//! Statistics that do not flatter small samples, computed deterministically.
//!
//! Results leave as integers (basis points) so that no float ever reaches an entry. The f64
//! arithmetic inside uses only +, −, ×, ÷ and √, which IEEE 754 rounds correctly everywhere,
//! so the same inputs give the same integers on every machine.

/// z for a two-sided 95% interval.
const Z95: f64 = 1.959_963_984_540_054;

/// The Wilson score interval for `successes` out of `n`, at 95%, in basis points: the lower bound
/// rounded down and the upper rounded up (so rounding never makes the result look better).
/// For n = 0 it is the whole range, 0–10000: no data proves nothing.
pub fn wilson_bp(successes: u64, n: u64) -> (u32, u32) {
    if n == 0 {
        return (0, 10_000);
    }
    let n_f = n as f64;
    let p = successes.min(n) as f64 / n_f;
    let z2 = Z95 * Z95;
    let denominator = 1.0 + z2 / n_f;
    let center = p + z2 / (2.0 * n_f);
    let margin = Z95 * (p * (1.0 - p) / n_f + z2 / (4.0 * n_f * n_f)).sqrt();
    let low = ((center - margin) / denominator * 10_000.0)
        .floor()
        .clamp(0.0, 10_000.0);
    let high = ((center + margin) / denominator * 10_000.0)
        .ceil()
        .clamp(0.0, 10_000.0);
    (low as u32, high as u32)
}

/// `part / whole` in basis points, rounded half up; 0 when `whole` is 0.
pub fn rate_bp(part: u64, whole: u64) -> u32 {
    if whole == 0 {
        return 0;
    }
    u32::try_from((u128::from(part) * 20_000 + u128::from(whole)) / (2 * u128::from(whole)))
        .unwrap_or(u32::MAX)
}

/// Basis points as a percentage string: `125` → `1.25%`.
pub fn bp_to_percent(bp: u32) -> String {
    format!("{}.{:02}%", bp / 100, bp % 100)
}

/// Area under the ROC curve of `score` as a predictor of `positive`, in basis points
/// (Mann–Whitney U: ties count half). `None` without at least one positive and one negative.
pub fn auc_bp(samples: &[(u32, bool)]) -> Option<u32> {
    let mut sorted: Vec<(u32, bool)> = samples.to_vec();
    sorted.sort_unstable();
    let positives = sorted.iter().filter(|s| s.1).count() as u128;
    let negatives = sorted.len() as u128 - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    // Twice U: for each positive, 2 × (negatives below) + (negatives tied).
    let mut twice_u: u128 = 0;
    let mut negatives_below: u128 = 0;
    let mut i = 0;
    while i < sorted.len() {
        let score = sorted[i].0;
        let j = sorted[i..]
            .iter()
            .position(|s| s.0 != score)
            .map_or(sorted.len(), |k| i + k);
        let tied_negatives = sorted[i..j].iter().filter(|s| !s.1).count() as u128;
        let tied_positives = (j - i) as u128 - tied_negatives;
        twice_u += tied_positives * (2 * negatives_below + tied_negatives);
        negatives_below += tied_negatives;
        i = j;
    }
    let bp = (twice_u * 10_000 + positives * negatives) / (2 * positives * negatives);
    u32::try_from(bp).ok()
}

/// The value at percentile `pct` (nearest rank) of `values`, which it sorts.
pub fn percentile(values: &mut [i64], pct: u32) -> Option<i64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let rank = (u64::from(pct) * values.len() as u64).div_ceil(100).max(1);
    Some(values[usize::try_from(rank - 1).unwrap_or(0).min(values.len() - 1)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_against_hand_computed_values() {
        // 0 of 400: [0, z²/(n+z²)] = [0, 3.8415/403.8415] = [0, 0.951%].
        assert_eq!(wilson_bp(0, 400), (0, 96));
        // 0 of 10: upper 27.75%: small samples do not look perfect.
        assert_eq!(wilson_bp(0, 10), (0, 2776));
        // 1 of 100: [0.1767%, 5.4488%].
        assert_eq!(wilson_bp(1, 100), (17, 545));
        // 5 of 10: [23.66%, 76.34%].
        assert_eq!(wilson_bp(5, 10), (2365, 7635));
        assert_eq!(wilson_bp(0, 0), (0, 10_000));
        assert_eq!(wilson_bp(10, 10).1, 10_000);
    }

    #[test]
    fn rates_and_percentiles() {
        assert_eq!(rate_bp(1, 3), 3333);
        assert_eq!(rate_bp(2, 3), 6667);
        assert_eq!(rate_bp(0, 0), 0);
        assert_eq!(bp_to_percent(125), "1.25%");
        let mut v = vec![5, 1, 4, 2, 3, 10, 9, 8, 7, 6];
        assert_eq!(percentile(&mut v, 50), Some(5));
        assert_eq!(percentile(&mut v, 90), Some(9));
        assert_eq!(percentile(&mut [], 50), None);
    }

    #[test]
    fn auc_on_a_hand_made_set() {
        // Perfect separation.
        assert_eq!(
            auc_bp(&[(10, false), (20, false), (30, true), (40, true)]),
            Some(10_000)
        );
        // Perfectly wrong.
        assert_eq!(auc_bp(&[(10, true), (40, false)]), Some(0));
        // No signal: every pair tied.
        assert_eq!(auc_bp(&[(5, true), (5, false), (5, false)]), Some(5_000));
        // Positives {30, 10}, negatives {20, 5}: pairs (30>20, 30>5, 10<20, 10>5) = 3 of 4 = 75%.
        assert_eq!(
            auc_bp(&[(30, true), (10, true), (20, false), (5, false)]),
            Some(7_500)
        );
        assert_eq!(auc_bp(&[(1, true)]), None);
    }
}
