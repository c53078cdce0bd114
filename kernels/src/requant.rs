//! Requantization: TFLite's fixed-point scheme, normative for every kernel of this crate.
//!
//! A real multiplier `r` (input scale × weight scale / output scale) becomes a Q31 multiplier `m`
//! and a power-of-two exponent `shift` with `r ≈ m · 2^(shift − 31)` ([`quantize_multiplier`],
//! TFLite's `QuantizeMultiplier`). An int32 accumulator `x` is scaled by
//! [`multiply_by_quantized_multiplier`] exactly as TFLite's reference
//! `MultiplyByQuantizedMultiplier` (the default double-rounding variant): left shift (wrapping, as
//! the C code does in practice), [`saturating_rounding_doubling_high_mul`] (= NEON `VQRDMULH`), then
//! [`rounding_divide_by_pot`] (= gemmlowp's `RoundingDivideByPOT`). The output zero point is added
//! (wrapping) and the result clamped to `[min, max]`, into which a fused activation is folded
//! ([`activation_range`]).
//!
//! Every vectorized requantization in this crate equals [`Requant::apply`] bit for bit.

use std::fmt;

/// Converts a real multiplier to (Q31 multiplier, shift), exactly as TFLite's `QuantizeMultiplier`.
///
/// `shift` is a left shift when positive and a right shift when negative. Zero maps to (0, 0);
/// multipliers so small that `shift < −31` map to (0, 0) too (every product would round to 0 or
/// −0). The multiplier is in `[2^30, 2^31)` for positive inputs (negative for negative inputs).
/// Non-finite inputs are not meaningful; they map to (0, 0).
pub fn quantize_multiplier(real: f64) -> (i32, i32) {
    if real == 0.0 || !real.is_finite() {
        return (0, 0);
    }
    let (q, mut shift) = frexp(real);
    // TfLiteRound is std::round: half away from zero, as f64::round.
    let mut q_fixed = (q * (1u64 << 31) as f64).round() as i64;
    debug_assert!(q_fixed.abs() <= 1i64 << 31);
    if q_fixed == 1i64 << 31 {
        q_fixed /= 2;
        shift += 1;
    }
    if shift < -31 {
        return (0, 0);
    }
    (q_fixed as i32, shift)
}

/// `frexp`: `x = q · 2^e` with `0.5 ≤ |q| < 1` for finite nonzero `x`.
fn frexp(x: f64) -> (f64, i32) {
    let bits = x.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i32;
    if exp == 0 {
        // Subnormal: scale into the normal range first.
        let (q, e) = frexp(x * f64::from_bits(0x4350_0000_0000_0000)); // 2^54
        return (q, e - 54);
    }
    let e = exp - 1022;
    let q = f64::from_bits((bits & !(0x7ff << 52)) | (1022 << 52));
    (q, e)
}

/// gemmlowp's `SaturatingRoundingDoublingHighMul` (NEON `VQRDMULH`): the high 32 bits of `2·a·b`,
/// rounded half up; the single overflowing case `a = b = i32::MIN` saturates to `i32::MAX`.
#[inline(always)]
pub fn saturating_rounding_doubling_high_mul(a: i32, b: i32) -> i32 {
    if a == i32::MIN && b == i32::MIN {
        return i32::MAX;
    }
    let ab = a as i64 * b as i64;
    let nudge: i64 = if ab >= 0 { 1 << 30 } else { 1 - (1 << 30) };
    // C's division truncates toward zero; so does Rust's.
    ((ab + nudge) / (1i64 << 31)) as i32
}

/// gemmlowp's `RoundingDivideByPOT`: `x / 2^exponent` rounded to nearest, ties away from zero.
/// `exponent` must be in `0..=31`.
#[inline(always)]
pub fn rounding_divide_by_pot(x: i32, exponent: i32) -> i32 {
    debug_assert!((0..=31).contains(&exponent));
    let mask = ((1i64 << exponent) - 1) as i32;
    let remainder = x & mask;
    let threshold = (mask >> 1) + (x < 0) as i32;
    (x >> exponent) + (remainder > threshold) as i32
}

/// TFLite's reference `MultiplyByQuantizedMultiplier(x, m, shift)`: `x · m · 2^(shift − 31)`,
/// rounded as TFLite rounds. `shift` must be in `−31..=31`; the left shift wraps on overflow (the
/// C code's `x * (1 << left_shift)` in two's complement).
#[inline(always)]
pub fn multiply_by_quantized_multiplier(x: i32, m: i32, shift: i32) -> i32 {
    debug_assert!((-31..=31).contains(&shift));
    let left = shift.max(0);
    let right = (-shift).max(0);
    rounding_divide_by_pot(
        saturating_rounding_doubling_high_mul(x.wrapping_mul(1i32.wrapping_shl(left as u32)), m),
        right,
    )
}

/// A fused activation, folded into the output clamp by [`activation_range`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// No activation: the whole range of the output type.
    None,
    /// max(0, x).
    Relu,
    /// min(max(−1, x), 1).
    ReluN1To1,
    /// min(max(0, x), 6).
    Relu6,
}

/// The quantized clamp range of a fused activation, as TFLite's
/// `CalculateActivationRangeQuantized`: `[qmin, qmax]` intersected with the activation's range
/// quantized with `scale` and `zero_point` (`zero_point + round(f / scale)` in f32).
pub fn activation_range(
    act: Activation,
    scale: f32,
    zero_point: i32,
    qmin: i32,
    qmax: i32,
) -> (i32, i32) {
    let q = |f: f32| zero_point.saturating_add((f / scale).round() as i32);
    match act {
        Activation::None => (qmin, qmax),
        Activation::Relu => (qmin.max(q(0.0)), qmax),
        Activation::Relu6 => (qmin.max(q(0.0)), qmax.min(q(6.0))),
        Activation::ReluN1To1 => (qmin.max(q(-1.0)), qmax.min(q(1.0))),
    }
}

/// Why a [`Requant`] could not be built.
#[derive(Clone, Debug, PartialEq)]
pub enum RequantError {
    /// Multipliers and shifts have different lengths, or none were given.
    Lengths { multipliers: usize, shifts: usize },
    /// A shift outside `−31..=30` (index, value).
    Shift { channel: usize, shift: i32 },
    /// A real multiplier that is negative, NaN or infinite (index, value).
    Multiplier { channel: usize, value: f64 },
    /// `min > max`.
    Clamp { min: i32, max: i32 },
}

impl fmt::Display for RequantError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequantError::Lengths {
                multipliers,
                shifts,
            } => write!(
                f,
                "requantization needs as many shifts as multipliers (at least one): {multipliers} \
                 multipliers, {shifts} shifts"
            ),
            RequantError::Shift { channel, shift } => {
                write!(
                    f,
                    "requantization shift {shift} of channel {channel} outside -31..=30"
                )
            }
            RequantError::Multiplier { channel, value } => write!(
                f,
                "requantization multiplier {value} of channel {channel} is not a finite \
                 non-negative number"
            ),
            RequantError::Clamp { min, max } => {
                write!(
                    f,
                    "requantization clamp range is empty: min {min} > max {max}"
                )
            }
        }
    }
}

impl std::error::Error for RequantError {}

/// How int32 accumulators become 8-bit outputs: per-tensor (one multiplier) or per-channel (one
/// per output channel) fixed-point multipliers, the output zero point and the clamp range (the
/// output type's range intersected with the fused activation's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requant {
    multipliers: Vec<i32>,
    shifts: Vec<i32>,
    zero_point: i32,
    min: i32,
    max: i32,
}

impl Requant {
    /// From already quantized multipliers and shifts (one each: per-tensor; else per-channel).
    pub fn new(
        multipliers: Vec<i32>,
        shifts: Vec<i32>,
        zero_point: i32,
        min: i32,
        max: i32,
    ) -> Result<Requant, RequantError> {
        if multipliers.len() != shifts.len() || multipliers.is_empty() {
            return Err(RequantError::Lengths {
                multipliers: multipliers.len(),
                shifts: shifts.len(),
            });
        }
        if let Some((channel, &shift)) = shifts
            .iter()
            .enumerate()
            .find(|(_, s)| !(-31..=30).contains(*s))
        {
            return Err(RequantError::Shift { channel, shift });
        }
        if min > max {
            return Err(RequantError::Clamp { min, max });
        }
        Ok(Requant {
            multipliers,
            shifts,
            zero_point,
            min,
            max,
        })
    }

    /// From real multipliers (one: per-tensor; else per-channel), through [`quantize_multiplier`].
    pub fn from_real(
        reals: &[f64],
        zero_point: i32,
        min: i32,
        max: i32,
    ) -> Result<Requant, RequantError> {
        let mut multipliers = Vec::with_capacity(reals.len());
        let mut shifts = Vec::with_capacity(reals.len());
        for (channel, &value) in reals.iter().enumerate() {
            if !(value.is_finite() && value >= 0.0) {
                return Err(RequantError::Multiplier { channel, value });
            }
            let (m, s) = quantize_multiplier(value);
            multipliers.push(m);
            shifts.push(s);
        }
        Requant::new(multipliers, shifts, zero_point, min, max)
    }

    /// One multiplier for every channel?
    pub fn is_per_tensor(&self) -> bool {
        self.multipliers.len() == 1
    }

    /// Number of per-channel multipliers (1 when per-tensor).
    pub fn channels(&self) -> usize {
        self.multipliers.len()
    }

    /// The (Q31 multiplier, shift) of output channel `n` (any `n` when per-tensor).
    #[inline(always)]
    pub fn channel(&self, n: usize) -> (i32, i32) {
        if self.is_per_tensor() {
            (self.multipliers[0], self.shifts[0])
        } else {
            (self.multipliers[n], self.shifts[n])
        }
    }

    /// The Q31 multipliers and shifts (one each when per-tensor).
    pub fn parts(&self) -> (&[i32], &[i32]) {
        (&self.multipliers, &self.shifts)
    }

    /// Output zero point.
    pub fn zero_point(&self) -> i32 {
        self.zero_point
    }

    /// Lower clamp bound (in the output's quantized domain).
    pub fn min(&self) -> i32 {
        self.min
    }

    /// Upper clamp bound.
    pub fn max(&self) -> i32 {
        self.max
    }

    /// Requantizes one accumulator of output channel `n`: the normative scalar formula.
    #[inline(always)]
    pub fn apply(&self, acc: i32, n: usize) -> i32 {
        let (m, s) = self.channel(n);
        multiply_by_quantized_multiplier(acc, m, s)
            .wrapping_add(self.zero_point)
            .clamp(self.min, self.max)
    }

    /// Requantizes `acc[i]` (channel `first_channel + i`) into `out[i]`, through the dispatched
    /// (vectorized where available) path. Equal to [`Requant::apply`] element by element.
    ///
    /// Panics if the lengths differ, if a per-channel `Requant` has fewer than
    /// `first_channel + acc.len()` channels, or if `[min, max]` does not fit `O`.
    pub fn apply_row<O: crate::gemm::Q8>(&self, acc: &[i32], first_channel: usize, out: &mut [O]) {
        assert_eq!(
            acc.len(),
            out.len(),
            "requant row: accumulator and output lengths differ"
        );
        assert!(
            self.is_per_tensor() || first_channel + acc.len() <= self.channels(),
            "requant row: channels {}..{} beyond the {} per-channel multipliers",
            first_channel,
            first_channel + acc.len(),
            self.channels()
        );
        assert!(
            self.min >= O::MIN && self.max <= O::MAX,
            "requant row: clamp [{}, {}] does not fit the output type",
            self.min,
            self.max
        );
        let f = crate::dispatch::kernels().requant.row;
        // SAFETY: lengths checked equal above, channels in range, and `O` is a one-byte type
        // whose every bit pattern is valid (i8 or u8); the kernel writes `acc.len()` bytes.
        unsafe { f(acc, first_channel, self, out.as_mut_ptr() as *mut u8) }
    }
}

/// The scalar requantization of a row (the floor of the `requant.row` slot).
///
/// # Safety
/// `out` is valid for `acc.len()` byte writes; `self` has the channels `first_channel..` (or is
/// per-tensor).
pub(crate) unsafe fn requant_row_scalar(acc: &[i32], first: usize, rq: &Requant, out: *mut u8) {
    for (i, &x) in acc.iter().enumerate() {
        let v = rq.apply(x, first + i);
        // SAFETY: i < acc.len(), and `out` is valid for that many bytes (caller contract).
        unsafe { *out.add(i) = v as u8 };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// TFLite's `QuantizeMultiplier` transcribed with libm's frexp semantics via log2, as an
    /// independent check of the bit-twiddled `frexp` above.
    fn frexp_slow(x: f64) -> (f64, i32) {
        let mut e = x.abs().log2().floor() as i32 + 1;
        let mut q = x / 2f64.powi(e);
        // Correct the floating log2 at exact powers of two.
        while q.abs() >= 1.0 {
            q /= 2.0;
            e += 1;
        }
        while q.abs() < 0.5 {
            q *= 2.0;
            e -= 1;
        }
        (q, e)
    }

    #[test]
    fn frexp_matches() {
        for &x in &[
            1.0,
            0.5,
            0.75,
            3.0,
            1e-10,
            2f64.powi(-31),
            0.999_999_999,
            1234.5,
            -0.3,
        ] {
            assert_eq!(frexp(x), frexp_slow(x), "frexp({x})");
        }
        let sub = f64::from_bits(1);
        let (q, e) = frexp(sub);
        assert_eq!((q, e), (0.5, -1073));
    }

    #[test]
    fn quantize_multiplier_known_values() {
        assert_eq!(quantize_multiplier(0.0), (0, 0));
        assert_eq!(quantize_multiplier(0.5), (1 << 30, 0));
        assert_eq!(quantize_multiplier(1.0), (1 << 30, 1));
        assert_eq!(quantize_multiplier(0.25), (1 << 30, -1));
        // Rounds up to 2^31: the fixup halves it and bumps the shift.
        assert_eq!(quantize_multiplier(1.0 - 1e-12), (1 << 30, 1));
        assert_eq!(quantize_multiplier(0.75), (0x6000_0000, 0));
        // 2^-31 = 0.5 · 2^-30: kept. 2^-32 = 0.5 · 2^-31: kept. 2^-33: shift −32 → zero.
        assert_eq!(quantize_multiplier(2f64.powi(-31)), (1 << 30, -30));
        assert_eq!(quantize_multiplier(2f64.powi(-32)), (1 << 30, -31));
        assert_eq!(quantize_multiplier(2f64.powi(-33)), (0, 0));
        assert_eq!(quantize_multiplier(100.0), (0x6400_0000, 7));
        let (m, s) = quantize_multiplier(-0.75);
        assert_eq!((m, s), (-0x6000_0000, 0));
    }

    /// gemmlowp transcribed literally (64-bit product, nudge, truncating division).
    fn srdhm_literal(a: i32, b: i32) -> i32 {
        let overflow = a == b && a == i32::MIN;
        let ab_64 = a as i64 * b as i64;
        let nudge = if ab_64 >= 0 {
            1i64 << 30
        } else {
            1 - (1i64 << 30)
        };
        let ab_x2_high32 = ((ab_64 + nudge) / (1i64 << 31)) as i32;
        if overflow {
            i32::MAX
        } else {
            ab_x2_high32
        }
    }

    /// Exact rational reference: round-half-away-from-zero of x / 2^e, via i128.
    fn rdbpot_exact(x: i32, e: i32) -> i32 {
        let d = 1i128 << e;
        let x = x as i128;
        let q = if x >= 0 {
            (2 * x + d) / (2 * d)
        } else {
            -((-2 * x + d) / (2 * d))
        };
        q as i32
    }

    #[test]
    fn srdhm_and_rdbpot_edges() {
        let vals = [
            i32::MIN,
            i32::MIN + 1,
            -(1 << 30),
            -3,
            -1,
            0,
            1,
            2,
            3,
            (1 << 30) - 1,
            1 << 30,
            i32::MAX - 1,
            i32::MAX,
            0x4000_0001,
            -0x4000_0001,
            123_456_789,
            -987_654_321,
        ];
        for &a in &vals {
            for &b in &vals {
                assert_eq!(
                    saturating_rounding_doubling_high_mul(a, b),
                    srdhm_literal(a, b),
                    "srdhm({a}, {b})"
                );
            }
            for e in 0..=31 {
                assert_eq!(
                    rounding_divide_by_pot(a, e),
                    rdbpot_exact(a, e),
                    "rdbpot({a}, {e})"
                );
            }
        }
        assert_eq!(
            saturating_rounding_doubling_high_mul(i32::MIN, i32::MIN),
            i32::MAX
        );
        // Ties: 0.5 → 1 (away from zero), −0.5 → −1, 1.5 → 2, −1.5 → −2 for divide-by-POT.
        assert_eq!(rounding_divide_by_pot(1, 1), 1);
        assert_eq!(rounding_divide_by_pot(-1, 1), -1);
        assert_eq!(rounding_divide_by_pot(3, 1), 2);
        assert_eq!(rounding_divide_by_pot(-3, 1), -2);
        assert_eq!(rounding_divide_by_pot(-5, 2), -1);
        // SRDHM rounds half up: 2·a·b/2^32 = −0.5 → 0, +0.5 → 1.
        assert_eq!(
            saturating_rounding_doubling_high_mul(-(1 << 15), 1 << 15),
            0
        );
        assert_eq!(saturating_rounding_doubling_high_mul(1 << 15, 1 << 15), 1);
    }

    /// `MultiplyByQuantizedMultiplier` against exact rational arithmetic where no saturation or
    /// wrap happens: the result is round(round_half_up(x·2^l·m / 2^31) / 2^r).
    #[test]
    fn mbqm_matches_formula() {
        let xs = [
            i32::MIN,
            i32::MIN + 1,
            -65536,
            -1000,
            -255,
            -2,
            -1,
            0,
            1,
            2,
            127,
            255,
            1000,
            65535,
            1 << 20,
            i32::MAX - 1,
            i32::MAX,
        ];
        let reals = [
            2f64.powi(-31),
            2f64.powi(-32),
            1e-9,
            0.000_123,
            0.003_921_568_6,
            0.25,
            0.5,
            0.499_999_999,
            0.75,
            0.999_999_9,
            1.0,
            1.000_000_1,
            1.5,
            2.0,
            7.999,
            100.0,
            127.9,
        ];
        for &r in &reals {
            let (m, s) = quantize_multiplier(r);
            assert!((-31..=7).contains(&s), "shift {s} for {r}");
            for &x in &xs {
                let got = multiply_by_quantized_multiplier(x, m, s);
                let l = s.max(0);
                let rr = (-s).max(0);
                let shifted = (x as i64) << l;
                let want = if shifted == shifted as i32 as i64 {
                    let ab = shifted as i128 * m as i128;
                    let hi = if m == i32::MIN && shifted == i32::MIN as i64 {
                        i32::MAX as i128
                    } else {
                        (ab + (1i128 << 30)).div_euclid(1i128 << 31)
                    };
                    rdbpot_exact(hi as i32, rr)
                } else {
                    // The left shift wraps, as TFLite's C does on two's complement hardware.
                    let w = x.wrapping_mul(1 << l);
                    rdbpot_exact(srdhm_literal(w, m), rr)
                };
                assert_eq!(got, want, "mbqm(x={x}, real={r}, m={m}, shift={s})");
            }
        }
        // Every shift from −31 to +7 with a mid multiplier, at ties of the final division.
        for s in -31..=7 {
            for &x in &xs {
                let got = multiply_by_quantized_multiplier(x, 1 << 30, s);
                let w = x.wrapping_mul(1i32.wrapping_shl(s.max(0) as u32));
                let want = rdbpot_exact(srdhm_literal(w, 1 << 30), (-s).max(0));
                assert_eq!(got, want, "mbqm(x={x}, m=2^30, shift={s})");
            }
        }
    }

    #[test]
    fn requant_apply_and_range() {
        let rq = Requant::from_real(&[0.5], -3, -128, 127).unwrap();
        assert_eq!(rq.apply(10, 0), 5 - 3);
        assert_eq!(rq.apply(11, 7), 6 - 3); // 5.5 rounds away from zero
        assert_eq!(rq.apply(-11, 0), -5 - 3); // the doubling high multiply rounds ties up
        assert_eq!(rq.apply(i32::MAX, 0), 127);
        assert_eq!(rq.apply(i32::MIN, 0), -128);
        assert_eq!(
            activation_range(Activation::Relu6, 0.05, -10, -128, 127),
            (-10, 110)
        );
        assert_eq!(
            activation_range(Activation::Relu, 0.05, -10, -128, 127),
            (-10, 127)
        );
        assert_eq!(
            activation_range(Activation::ReluN1To1, 0.5, 0, -128, 127),
            (-2, 2)
        );
        assert_eq!(activation_range(Activation::None, 0.5, 0, 0, 255), (0, 255));
        assert!(matches!(
            Requant::new(vec![1], vec![31], 0, 0, 1),
            Err(RequantError::Shift {
                channel: 0,
                shift: 31
            })
        ));
        assert!(Requant::new(vec![1, 2], vec![0], 0, 0, 1).is_err());
        assert!(Requant::new(vec![1], vec![0], 0, 2, 1).is_err());
        assert!(Requant::from_real(&[f64::NAN], 0, 0, 1).is_err());
    }
}
