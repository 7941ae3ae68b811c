//! Totals that do not depend on the order their parts were added in. The read model holds
//! values in the order reports arrived, and districts push concurrently, so two databases with
//! the same reports (or a re-import) hold them in different orders; floating-point addition is
//! not associative, and the same total came out as 2830.3 in one yearly review and
//! 2830.2999999999997 in the next, a year-on-year change as 71.7000000000007 and
//! 71.6999999999971. Rankings of equal totals could even swap. Each aggregate is therefore
//! rounded to a millionth as it leaves polars, before anything is derived from it.
//!
//! What this does not guarantee: two orders give one settled total while the error of adding
//! stays under half a millionth and the exact total is not within that of a half-millionth
//! itself. That holds for a province's sums (thousands of values with a few decimals, totals
//! in the tens of thousands: errors near 10⁻¹¹), not for every conceivable sum: totals near
//! 10⁸ over hundreds of thousands of values, decimals past the sixth (validation does not
//! limit them), and decimal totals of 10⁹ or more stay order-dependent in their last digits.
//! Adding in a fixed order (sorting the values first) would remove the dependence; it costs a
//! sort per query at national size and is not done.

/// Decimal places an aggregate keeps: the catalog's values are counts, money and areas,
/// entered with a few decimals in practice, and a sum of values with at most six decimals has
/// at most six.
const DECIMALS: i32 = 6;

/// Below this, `x × 10⁶` stays well under 2⁵³, where every integer is an f64, so the rounded
/// value is the f64 nearest the six-decimal number. Larger totals (money in đồng) are kept as
/// they are: they are whole numbers as a rule, which f64 adds exactly in any order while under
/// 2⁵³.
const LIMIT: f64 = 1e9;

/// `x` rounded to `DECIMALS` places; unchanged at or past `LIMIT` and for non-finite values.
/// Two sums of the same values in different orders differ by a few units in their last place,
/// about 10⁻¹² for a total near 3,000, so they round to the same millionth.
pub(crate) fn settled(x: f64) -> f64 {
    if !x.is_finite() || x.abs() >= LIMIT {
        return x;
    }
    let scale = 10f64.powi(DECIMALS);
    let rounded = (x * scale).round() / scale;
    // -0.0 and 0.0 print differently; a total that rounds to nothing is 0.
    if rounded == 0.0 { 0.0 } else { rounded }
}

#[cfg(test)]
mod tests {
    use super::settled;

    #[test]
    fn the_same_values_added_in_two_orders_settle_to_one_total() {
        // (0.1 + 0.7) + 0.2 = 1 but (0.2 + 0.7) + 0.1 = 0.9999999999999999 in f64.
        let one_way = 0.1 + 0.7 + 0.2;
        let other_way = 0.2 + 0.7 + 0.1;
        assert_ne!(one_way, other_way);
        assert_eq!(settled(one_way).to_bits(), settled(other_way).to_bits());
        assert_eq!(settled(one_way), 1.0);
        // The monthly total seen in two generations of one review: 2830.3 both times.
        assert_eq!(settled(2830.2999999999997), 2830.3);
        assert_eq!(settled(2830.3), 2830.3);
        // Twelve months of 0.1, 0.2, 0.7 and 320.5, added forwards and backwards, give
        // 3857.9999999999977 and 3857.9999999999973; both are 12 × 321.5 = 3858.
        let months = [0.1, 0.2, 0.7, 320.5];
        let forward: f64 = (0..12).flat_map(|_| months).sum();
        let backward: f64 = (0..12).flat_map(|_| months.into_iter().rev()).sum();
        assert_ne!(forward, backward);
        assert_eq!(settled(forward).to_bits(), settled(backward).to_bits());
        assert_eq!(settled(forward), 3858.0);
    }

    #[test]
    fn what_needs_no_rounding_is_left_as_it_is() {
        // Whole counts and short decimals are already what they are.
        assert_eq!(settled(2600.0), 2600.0);
        assert_eq!(settled(-12.25), -12.25);
        assert_eq!(settled(35_000_000.5), 35_000_000.5);
        // A ratio's seventh decimal goes: 1/3 → 0.333333.
        assert_eq!(settled(1.0 / 3.0), 0.333333);
        // Money past 10⁹ (a province's funds mobilised in đồng) is not touched at all.
        assert_eq!(settled(2_688_000_123.7), 2_688_000_123.7);
        assert_eq!(settled(1e15 + 1.0), 1e15 + 1.0);
        // A total of -0.0000001 rounds to 0, not to -0.
        assert_eq!(settled(-1e-7).to_bits(), 0.0f64.to_bits());
        assert!(settled(f64::NAN).is_nan());
        assert_eq!(settled(f64::INFINITY), f64::INFINITY);
    }
}
