//! SOFTMAX and LOG_SOFTMAX over the last dimension: f32, and int8/uint8 as TFLite's reference
//! kernel (`reference_ops::Softmax` on 8-bit types with `PreprocessSoftmaxScaling`).

use super::fixedpoint::{exp_on_negative_values, get_reciprocal, rdbpot, sat_shl, srdhm};
use crate::elementwise::{ParamError, QInt, QParams};
use crate::requant::quantize_multiplier;

/// f32 softmax of each row of `depth` elements: `exp(β·(x − max)) / Σ` (TFLite's reference).
/// `x.len()` must be a multiple of `depth`; rows are independent (split them across threads).
pub fn softmax_f32(x: &[f32], out: &mut [f32], depth: usize, beta: f32) {
    assert_eq!(
        x.len(),
        out.len(),
        "softmax_f32: input and output lengths differ"
    );
    if depth == 0 {
        return;
    }
    for (row, orow) in x.chunks_exact(depth).zip(out.chunks_exact_mut(depth)) {
        let max = row.iter().fold(f32::MIN, |m, &v| if m < v { v } else { m });
        let mut sum = 0.0f32;
        for (o, &v) in orow.iter_mut().zip(row) {
            let e = ((v - max) * beta).exp();
            *o = e;
            sum += e;
        }
        for o in orow.iter_mut() {
            *o /= sum;
        }
    }
}

/// f32 log-softmax of each row: `x − max − log Σ exp(x − max)` (TFLite's reference).
pub fn log_softmax_f32(x: &[f32], out: &mut [f32], depth: usize) {
    assert_eq!(
        x.len(),
        out.len(),
        "log_softmax_f32: input and output lengths differ"
    );
    if depth == 0 {
        return;
    }
    for (row, orow) in x.chunks_exact(depth).zip(out.chunks_exact_mut(depth)) {
        let max = row.iter().fold(f32::MIN, |m, &v| if m < v { v } else { m });
        let sum: f32 = row.iter().map(|&v| (v - max).exp()).sum();
        let log_sum = sum.ln();
        for (o, &v) in orow.iter_mut().zip(row) {
            *o = v - max - log_sum;
        }
    }
}

const SCALED_DIFF_INTEGER_BITS: u32 = 5;
const ACCUMULATION_INTEGER_BITS: i32 = 12;

/// Prepared int8/uint8 softmax: TFLite's reference parameters plus the exponential of every
/// possible difference `max − x` (0..=255), so eval does no `exp` work.
#[derive(Clone, Debug, PartialEq)]
pub struct SoftmaxQ {
    /// `input_multiplier`, `input_left_shift`, `diff_min` exactly as TFLite computes them.
    pub input_multiplier: i32,
    pub input_left_shift: i32,
    pub diff_min: i32,
    /// `exp_on_negative_values(rescaled(−d))` in Q0.31 for d = 0..=255.
    exp_q0: [i32; 256],
    /// The same rescaled to Q12.19 (the accumulator format).
    exp_q12: [i32; 256],
}

/// Computes [`SoftmaxQ`] (`SoftmaxPrepare` of the reference kernel). The output must be
/// quantized as TFLite requires: scale 1/256 and zero point `T::MIN` (−128 or 0).
pub fn prepare_softmax_q<T: QInt>(
    beta: f32,
    input: QParams,
    output: QParams,
) -> Result<SoftmaxQ, ParamError> {
    let input = input.validate::<T>("SOFTMAX", "input quantization")?;
    let output = output.validate::<T>("SOFTMAX", "output quantization")?;
    if output.zero_point != T::MIN || (output.scale - 1.0 / 256.0).abs() > 0.001 / 256.0 {
        return Err(ParamError::Quant {
            op: "SOFTMAX",
            what: "output quantization (must be scale 1/256, zero point the type's minimum)",
            value: output.scale as f64,
        });
    }
    // PreprocessSoftmaxScaling (double rounding variant).
    let max_real = ((1i64 << 31) - 1) as f64;
    let real =
        (beta as f64 * input.scale as f64 * (1i64 << (31 - SCALED_DIFF_INTEGER_BITS)) as f64)
            .min(max_real);
    if real.is_nan() || real <= 1.0 {
        // QuantizeMultiplierGreaterThanOne: TFLite aborts here.
        return Err(ParamError::Quant {
            op: "SOFTMAX",
            what: "beta × input scale",
            value: beta as f64 * input.scale as f64,
        });
    }
    let (input_multiplier, input_left_shift) = quantize_multiplier(real);
    // CalculateInputRadius(5, left_shift, 31).
    let max_input_rescaled = ((1i64 << SCALED_DIFF_INTEGER_BITS) - 1) as f64
        * (1i64 << (31 - SCALED_DIFF_INTEGER_BITS)) as f64
        / 2f64.powi(input_left_shift);
    let diff_min = -(max_input_rescaled.floor() as i32);
    let mut exp_q0 = [0i32; 256];
    let mut exp_q12 = [0i32; 256];
    for d in 0..256i32 {
        let diff = -d;
        if diff >= diff_min {
            // MultiplyByQuantizedMultiplierGreaterThanOne.
            let rescaled = srdhm(
                diff.wrapping_mul(1i32.wrapping_shl(input_left_shift as u32)),
                input_multiplier,
            );
            let e = exp_on_negative_values(rescaled, SCALED_DIFF_INTEGER_BITS);
            exp_q0[d as usize] = e;
            exp_q12[d as usize] = rdbpot(e, ACCUMULATION_INTEGER_BITS);
        }
    }
    Ok(SoftmaxQ {
        input_multiplier,
        input_left_shift,
        diff_min,
        exp_q0,
        exp_q12,
    })
}

/// Quantized softmax of each row of `depth` elements (rows independent).
pub fn softmax_q<T: QInt>(p: &SoftmaxQ, x: &[T], out: &mut [T], depth: usize) {
    assert_eq!(
        x.len(),
        out.len(),
        "softmax_q: input and output lengths differ"
    );
    if depth == 0 {
        return;
    }
    let max_d = -p.diff_min;
    let out_bits = 8 * std::mem::size_of::<T>() as i32;
    for (row, orow) in x.chunks_exact(depth).zip(out.chunks_exact_mut(depth)) {
        let max = row.iter().map(|v| v.to_i32()).max().unwrap_or(T::MIN);
        let mut sum = 0i32;
        for v in row {
            let d = max - v.to_i32();
            if d <= max_d {
                sum = sum.wrapping_add(p.exp_q12[d as usize]);
            }
        }
        let (shifted_scale, num_bits_over_unit) = get_reciprocal(sum, ACCUMULATION_INTEGER_BITS);
        let shift = num_bits_over_unit + 31 - out_bits;
        for (o, v) in orow.iter_mut().zip(row) {
            let d = max - v.to_i32();
            *o = if d <= max_d {
                let unsat = rdbpot(srdhm(shifted_scale, p.exp_q0[d as usize]), shift);
                T::from_i32(unsat + T::MIN)
            } else {
                T::from_i32(T::MIN)
            };
        }
    }
}

/// TFLite's reference quantized softmax written out directly (no tables): the definition
/// [`softmax_q`] is tested against.
pub fn reference_softmax_q<T: QInt>(p: &SoftmaxQ, x: &[T], out: &mut [T], depth: usize) {
    let out_bits = 8 * std::mem::size_of::<T>() as i32;
    for (row, orow) in x.chunks_exact(depth).zip(out.chunks_exact_mut(depth)) {
        let max = row.iter().map(|v| v.to_i32()).max().unwrap_or(T::MIN);
        let exp_of = |diff: i32| {
            let rescaled = srdhm(diff * (1 << p.input_left_shift), p.input_multiplier);
            exp_on_negative_values(rescaled, SCALED_DIFF_INTEGER_BITS)
        };
        let mut sum = 0i32;
        for v in row {
            let diff = v.to_i32() - max;
            if diff >= p.diff_min {
                sum = sum.wrapping_add(rdbpot(exp_of(diff), ACCUMULATION_INTEGER_BITS));
            }
        }
        let (scale, bits) = get_reciprocal(sum, ACCUMULATION_INTEGER_BITS);
        for (o, v) in orow.iter_mut().zip(row) {
            let diff = v.to_i32() - max;
            let r = if diff >= p.diff_min {
                rdbpot(srdhm(scale, exp_of(diff)), bits + 31 - out_bits) + T::MIN
            } else {
                T::MIN
            };
            *o = T::from_i32(r.clamp(T::MIN, T::MAX));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// LOG_SOFTMAX, int8 (reference_integer_ops::LogSoftmax)

/// Prepared int8 log-softmax: TFLite's reference parameters (`PreprocessLogSoftmaxScalingExp`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogSoftmaxQ {
    pub input_multiplier: i32,
    pub input_left_shift: i32,
    pub reverse_scaling_divisor: i32,
    pub reverse_scaling_right_shift: i32,
    pub diff_min: i32,
}

/// Computes [`LogSoftmaxQ`] for int8. TFLite requires the output quantized with scale 16/256
/// and zero point 127.
pub fn prepare_log_softmax_q(input: QParams, output: QParams) -> Result<LogSoftmaxQ, ParamError> {
    const OP: &str = "LOG_SOFTMAX";
    let input = input.validate::<i8>(OP, "input quantization")?;
    let output = output.validate::<i8>(OP, "output quantization")?;
    if output.scale != 16.0 / 256.0 || output.zero_point != 127 {
        return Err(ParamError::Quant {
            op: OP,
            what: "output quantization (must be scale 16/256, zero point 127)",
            value: output.scale as f64,
        });
    }
    let max_real = ((1i64 << 31) - 1) as f64;
    let real =
        (input.scale as f64 * (1i64 << (31 - SCALED_DIFF_INTEGER_BITS)) as f64).min(max_real);
    if real.is_nan() || real <= 1.0 {
        return Err(ParamError::Quant {
            op: OP,
            what: "input scale",
            value: input.scale as f64,
        });
    }
    let (input_multiplier, input_left_shift) = quantize_multiplier(real);
    let reverse = (1i64 << (31 - input_left_shift)) as f64 / input_multiplier as f64;
    if !(reverse > 0.0 && reverse < 1.0) {
        return Err(ParamError::Quant {
            op: OP,
            what: "reverse scaling divisor",
            value: reverse,
        });
    }
    let (reverse_scaling_divisor, reverse_left_shift) = quantize_multiplier(reverse);
    let max_input_rescaled = ((1i64 << SCALED_DIFF_INTEGER_BITS) - 1) as f64
        * (1i64 << (31 - SCALED_DIFF_INTEGER_BITS)) as f64
        / 2f64.powi(input_left_shift);
    Ok(LogSoftmaxQ {
        input_multiplier,
        input_left_shift,
        reverse_scaling_divisor,
        reverse_scaling_right_shift: -reverse_left_shift,
        diff_min: -(max_input_rescaled.floor() as i32),
    })
}

/// gemmlowp `SaturatingRoundingMultiplyByPOTParam` for a non-negative exponent.
fn sat_mul_pot_param(x: i32, exponent: i32) -> i32 {
    if exponent <= 0 {
        return x;
    }
    sat_shl(x, exponent.min(31) as u32)
}

/// TFLite `log_x_for_x_greater_than_or_equal_to_1_impl<5, 12>`: ln of a Q12.19 value ≥ 1, as
/// Q5.26.
fn log_x_q12_to_q5(input_raw: i32) -> i32 {
    const OUTPUT_INTEGER_BITS: i32 = 5;
    const INPUT_INTEGER_BITS: i32 = 12;
    const ACCUM_INTEGER_BITS: i32 = OUTPUT_INTEGER_BITS + 1;
    const LOG_2: i32 = 1488522236;
    const SQRT_SQRT_HALF: i32 = 1805811301;
    const SQRT_HALF: i32 = 1518500250;
    const ONE_QUARTER: i32 = 536870912;
    const ALPHA_N: i32 = 117049297;
    const ALPHA_D: i32 = 127690142;
    const ALPHA_I: i32 = 1057819769;
    const ALPHA_F: i32 = 638450708;
    let sat_add =
        |a: i32, b: i32| (a as i64 + b as i64).clamp(i32::MIN as i64, i32::MAX as i64) as i32;
    let sat_sub =
        |a: i32, b: i32| (a as i64 - b as i64).clamp(i32::MIN as i64, i32::MAX as i64) as i32;
    let shifted_quarter = rdbpot(ONE_QUARTER, ACCUM_INTEGER_BITS);
    let z_a = input_raw;
    let z_a_headroom_plus_1 = (z_a as u32).leading_zeros() as i32;
    let r_a_tmp = sat_mul_pot_param(z_a, z_a_headroom_plus_1 - 1);
    let r_a_raw = sat_mul_pot_param(srdhm(r_a_tmp, SQRT_HALF), 1);
    let z_a_pow_2_adj = sat_add(
        sat_mul_pot_param(
            INPUT_INTEGER_BITS - z_a_headroom_plus_1,
            31 - ACCUM_INTEGER_BITS,
        ),
        shifted_quarter,
    );
    let z_b = srdhm(z_a, SQRT_HALF);
    let z_b_headroom = (z_b as u32).leading_zeros() as i32 - 1;
    let r_b_raw = sat_mul_pot_param(z_a, z_b_headroom);
    let z_b_pow_2_adj = sat_sub(
        sat_mul_pot_param(INPUT_INTEGER_BITS - z_b_headroom, 31 - ACCUM_INTEGER_BITS),
        shifted_quarter,
    );
    let r = r_a_raw.min(r_b_raw);
    let z_pow_2_adj = z_a_pow_2_adj.max(z_b_pow_2_adj);
    let p = {
        let sum = r as i64 + SQRT_SQRT_HALF as i64;
        ((sum + if sum >= 0 { 1 } else { -1 }) / 2) as i32
    };
    let q = r.wrapping_sub(SQRT_SQRT_HALF);
    let q = q.wrapping_add(q);
    let common_sq = srdhm(q, q);
    let num = srdhm(q, r).wrapping_add(srdhm(srdhm(q, common_sq), ALPHA_N));
    let denom_minus_one_0 = srdhm(
        p,
        ALPHA_I
            .wrapping_add(q)
            .wrapping_add(srdhm(ALPHA_D, common_sq)),
    )
    .wrapping_add(srdhm(ALPHA_F, q));
    let recip_denom = super::fixedpoint::one_over_one_plus_x_for_x_in_0_1(denom_minus_one_0);
    let num_scaled = rdbpot(num, ACCUM_INTEGER_BITS);
    let sum = srdhm(z_pow_2_adj, LOG_2).wrapping_add(srdhm(num_scaled, recip_denom));
    sat_shl(sum, (ACCUM_INTEGER_BITS - OUTPUT_INTEGER_BITS) as u32)
}

/// Int8 log-softmax of each row of `depth` elements (TFLite's reference integer algorithm).
pub fn log_softmax_q(p: &LogSoftmaxQ, x: &[i8], out: &mut [i8], depth: usize) {
    use crate::requant::multiply_by_quantized_multiplier as mbqm;
    assert_eq!(
        x.len(),
        out.len(),
        "log_softmax_q: input and output lengths differ"
    );
    if depth == 0 {
        return;
    }
    const OUTPUT_ZERO_POINT: i32 = 127;
    for (row, orow) in x.chunks_exact(depth).zip(out.chunks_exact_mut(depth)) {
        let max = row.iter().map(|&v| v as i32).max().unwrap_or(-128);
        let mut sum_q12 = 0i32;
        for &v in row {
            let diff = v as i32 - max;
            if diff >= p.diff_min {
                let d5 = mbqm(diff, p.input_multiplier, p.input_left_shift);
                sum_q12 = sum_q12.wrapping_add(rdbpot(
                    exp_on_negative_values(d5, SCALED_DIFF_INTEGER_BITS),
                    ACCUMULATION_INTEGER_BITS,
                ));
            }
        }
        let log_sum_q5 = log_x_q12_to_q5(sum_q12);
        let shifted_log_sum = log_sum_q5.wrapping_add(i32::MIN);
        let adjusted_diff_min = (p.diff_min - 1).max(mbqm(
            shifted_log_sum,
            p.reverse_scaling_divisor,
            -p.reverse_scaling_right_shift,
        ));
        for (o, &v) in orow.iter_mut().zip(row) {
            let diff = v as i32 - max;
            *o = if diff > adjusted_diff_min {
                let d5 = mbqm(diff, p.input_multiplier, p.input_left_shift);
                let r = rdbpot(d5.wrapping_sub(log_sum_q5), 31 - 5 - 4) + OUTPUT_ZERO_POINT;
                r.clamp(-128, 127) as i8
            } else {
                -128
            };
        }
    }
}
