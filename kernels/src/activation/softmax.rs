//! SOFTMAX and LOG_SOFTMAX over the last dimension: f32, and int8/uint8 as TFLite's reference
//! kernel (`reference_ops::Softmax` on 8-bit types with `PreprocessSoftmaxScaling`).

use super::fixedpoint::{exp_on_negative_values, get_reciprocal, rdbpot, srdhm};
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
