//! gemmlowp's fixed-point primitives, as TFLite's reference kernels use them (softmax, hard-swish).
//!
//! Each function mirrors the gemmlowp primitive of the same name bit for bit; where gemmlowp
//! relies on two's-complement wrap-around we use `wrapping_*`, and where its behaviour is
//! undefined (a shift by 32 or more) we return the mathematically rounded value instead.

/// `SaturatingRoundingDoublingHighMul` (NEON `VQRDMULH`): round(a·b / 2^31), saturating the one
/// overflowing case (`MIN · MIN`).
#[inline(always)]
pub fn srdhm(a: i32, b: i32) -> i32 {
    if a == i32::MIN && b == i32::MIN {
        return i32::MAX;
    }
    let ab = a as i64 * b as i64;
    let nudge = if ab >= 0 {
        1i64 << 30
    } else {
        1 - (1i64 << 30)
    };
    ((ab + nudge) / (1i64 << 31)) as i32
}

/// `RoundingDivideByPOT`: x / 2^e rounded to nearest, ties away from zero.
#[inline(always)]
pub fn rdbpot(x: i32, e: i32) -> i32 {
    if e <= 0 {
        return x;
    }
    if e >= 32 {
        // Outside gemmlowp's domain (it asserts e ≤ 31); the exact rounded quotient.
        let d = 1i64 << e.min(62);
        let x = x as i64;
        let q = if x >= 0 {
            (x + d / 2) / d
        } else {
            -((-x + d / 2 - 1) / d)
        };
        return q as i32;
    }
    let mask = ((1i64 << e) - 1) as i32;
    let rem = x & mask;
    let thr = (mask >> 1) + i32::from(x < 0);
    (x >> e) + i32::from(rem > thr)
}

/// `SaturatingRoundingMultiplyByPOT<e>` for e > 0: a saturating left shift.
#[inline(always)]
pub fn sat_shl(x: i32, e: u32) -> i32 {
    let r = (x as i64) << e;
    r.clamp(i32::MIN as i64, i32::MAX as i64) as i32
}

/// 16-bit `SaturatingRoundingDoublingHighMul`.
#[inline(always)]
pub fn srdhm16(a: i16, b: i16) -> i16 {
    if a == i16::MIN && b == i16::MIN {
        return i16::MAX;
    }
    let ab = a as i32 * b as i32;
    let nudge = if ab >= 0 { 1 << 14 } else { 1 - (1 << 14) };
    ((ab + nudge) / (1 << 15)) as i16
}

/// 16-bit `SaturatingDoublingHighMul` (NEON `SQDMULH`): like [`srdhm16`] but truncating.
#[inline(always)]
pub fn sdhm16(a: i16, b: i16) -> i16 {
    if a == i16::MIN && b == i16::MIN {
        return i16::MAX;
    }
    ((a as i32 * b as i32) / (1 << 15)) as i16
}

/// 16-bit `RoundingDivideByPOT`.
#[inline(always)]
pub fn rdbpot16(x: i16, e: i32) -> i16 {
    rdbpot(x as i32, e.min(31)) as i16
}

/// `exp` on [-1/4, 0) in Q0.31 (gemmlowp `exp_on_interval_between_negative_one_quarter_and_0_excl`).
fn exp_on_interval_neg_quarter_0(a: i32) -> i32 {
    const CONSTANT_TERM: i32 = 1895147668; // exp(-1/8)
    const ONE_THIRD: i32 = 715827883;
    let x = a.wrapping_add(1 << 28);
    let x2 = srdhm(x, x);
    let x3 = srdhm(x2, x);
    let x4 = srdhm(x2, x2);
    let x4_over_4 = rdbpot(x4, 2);
    let poly = rdbpot(
        srdhm(x4_over_4.wrapping_add(x3), ONE_THIRD).wrapping_add(x2),
        1,
    );
    CONSTANT_TERM.wrapping_add(srdhm(CONSTANT_TERM, x.wrapping_add(poly)))
}

/// gemmlowp `exp_on_negative_values`: `a` is a non-positive value with `integer_bits` integer
/// bits (Q`integer_bits`.`31−integer_bits`); the result is Q0.31.
pub fn exp_on_negative_values(a: i32, integer_bits: u32) -> i32 {
    debug_assert!(integer_bits <= 26);
    let frac = 31 - integer_bits as i32;
    let one_quarter = 1i32 << (frac - 2);
    let mask = one_quarter - 1;
    let a_mod_quarter_minus_quarter = (a & mask).wrapping_sub(one_quarter);
    let mut result =
        exp_on_interval_neg_quarter_0(sat_shl(a_mod_quarter_minus_quarter, integer_bits));
    let remainder = a_mod_quarter_minus_quarter.wrapping_sub(a);
    const BARREL: [(i32, i32); 7] = [
        (-2, 1672461947),
        (-1, 1302514674),
        (0, 790015084),
        (1, 290630308),
        (2, 39332535),
        (3, 720401),
        (4, 242),
    ];
    for (exponent, multiplier) in BARREL {
        if integer_bits as i32 > exponent {
            let shift = frac + exponent;
            if remainder & (1i32 << shift) != 0 {
                result = srdhm(result, multiplier);
            }
        }
    }
    if integer_bits > 5 {
        let clamp = -(1i32 << (36 - integer_bits));
        if a < clamp {
            result = 0;
        }
    }
    if a == 0 {
        result = i32::MAX;
    }
    result
}

/// gemmlowp `RoundingHalfSum` for int32.
fn rounding_half_sum(a: i32, b: i32) -> i32 {
    let sum = a as i64 + b as i64;
    let sign = if sum >= 0 { 1 } else { -1 };
    ((sum + sign) / 2) as i32
}

/// gemmlowp `one_over_one_plus_x_for_x_in_0_1`: Q0.31 in, Q0.31 out.
pub fn one_over_one_plus_x_for_x_in_0_1(a: i32) -> i32 {
    let half_denominator = rounding_half_sum(a, i32::MAX);
    const C48_17: i32 = 1515870810; // 48/17 in Q2.29
    const CNEG32_17: i32 = -1010580540; // −32/17 in Q2.29
    let mut x = C48_17.wrapping_add(srdhm(half_denominator, CNEG32_17));
    for _ in 0..3 {
        let half_denominator_times_x = srdhm(half_denominator, x);
        let one_minus = (1i32 << 29).wrapping_sub(half_denominator_times_x);
        x = x.wrapping_add(sat_shl(srdhm(x, one_minus), 2));
    }
    sat_shl(x, 1)
}

/// TFLite `GetReciprocal`: for `x` > 0 with `x_integer_digits` integer bits, returns the Q0.31
/// reciprocal scaled into [0.5, 1) and the number of bits it was shifted by.
pub fn get_reciprocal(x: i32, x_integer_digits: i32) -> (i32, i32) {
    let headroom_plus_one = (x as u32).leading_zeros();
    let num_bits_over_unit = x_integer_digits - headroom_plus_one as i32;
    let shifted = (x as u32).checked_shl(headroom_plus_one).unwrap_or(0);
    let shifted_sum_minus_one = shifted.wrapping_sub(1u32 << 31) as i32;
    (
        one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one),
        num_bits_over_unit,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_divide() {
        assert_eq!(rdbpot(5, 1), 3);
        assert_eq!(rdbpot(-5, 1), -3);
        assert_eq!(rdbpot(-4, 1), -2);
        assert_eq!(rdbpot(7, 2), 2);
        assert_eq!(rdbpot(i32::MAX, 31), 1);
        assert_eq!(rdbpot(1 << 20, 33), 0);
        assert_eq!(rdbpot(3 << 30, 33), 0);
        assert_eq!(srdhm(i32::MIN, i32::MIN), i32::MAX);
        assert_eq!(srdhm(1 << 30, 1 << 30), 1 << 29);
    }

    #[test]
    fn exp_matches_float() {
        // Q5.26 inputs over [-31, 0]: gemmlowp's exp is accurate to a few 1e-9.
        for i in 0..2000 {
            let x = -(i as f64) * 31.0 / 2000.0;
            let raw = (x * (1i64 << 26) as f64).round() as i32;
            let got = exp_on_negative_values(raw, 5) as f64 / 2f64.powi(31);
            let want = (raw as f64 / 2f64.powi(26)).exp();
            assert!((got - want).abs() < 1e-6, "exp({x}) = {got}, want {want}");
        }
    }

    #[test]
    fn reciprocal_matches_float() {
        for i in 1..500 {
            let x = i * 1_000_003; // Q12.19
            let (r, bits) = get_reciprocal(x, 12);
            let got = r as f64 / 2f64.powi(31) / 2f64.powi(bits);
            let want = 1.0 / (x as f64 / 2f64.powi(19));
            assert!((got - want).abs() / want < 1e-6, "1/{x}: {got} vs {want}");
        }
    }
}
