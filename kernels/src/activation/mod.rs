//! Activations: RELU, RELU6, RELU_N1_TO_1, LEAKY_RELU, PRELU, HARD_SWISH, LOGISTIC, TANH,
//! SOFTMAX, LOG_SOFTMAX in f32, and in int8/uint8 bit-exact with TFLite's reference kernels.
//!
//! Every quantized unary activation maps 256 input codes to 256 output codes, so `prepare_*`
//! evaluates TFLite's reference arithmetic (`reference_*`, written from TFLite's
//! `reference_ops` / `reference_integer_ops` and the `Prepare` of `activations.cc`) once per code
//! into a [`Lut8`], and eval is a table lookup — equal to the reference by construction.
//! LOGISTIC and TANH use TFLite 2.x's own approach for int8/uint8 (its `LUTPopulate`: f32
//! dequantize → `expf`/`tanhf` → round), which its reference kernel also uses. Int8 SOFTMAX is
//! the reference fixed-point algorithm (`PreprocessSoftmaxScaling`, gemmlowp
//! `exp_on_negative_values`, `GetReciprocal`), with the 256 possible exponentials tabulated at
//! prepare.

pub mod fixedpoint;
mod softmax;

pub use softmax::{
    log_softmax_f32, log_softmax_q, prepare_log_softmax_q, prepare_softmax_q, reference_softmax_q,
    softmax_f32, softmax_q, LogSoftmaxQ, SoftmaxQ,
};

use crate::elementwise::{apply_run, BroadcastPlan, ParamError, QInt, QParams};
use crate::requant::{multiply_by_quantized_multiplier, quantize_multiplier};
use fixedpoint::{rdbpot16, sdhm16, srdhm16};

// ---------------------------------------------------------------------------------------------
// f32

/// The f32 unary activations.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UnaryF32 {
    Relu,
    Relu6,
    ReluN1To1,
    /// `x` if `x ≥ 0`, else `alpha · x`.
    LeakyRelu(f32),
    HardSwish,
    Logistic,
    Tanh,
}

/// The scalar definition of each f32 activation (TFLite's reference formulas).
#[inline(always)]
pub fn reference_unary_f32(op: UnaryF32, x: f32) -> f32 {
    match op {
        UnaryF32::Relu => {
            if x < 0.0 {
                0.0
            } else {
                x
            }
        }
        UnaryF32::Relu6 => {
            let x = if x < 0.0 { 0.0 } else { x };
            if 6.0 < x {
                6.0
            } else {
                x
            }
        }
        UnaryF32::ReluN1To1 => {
            let x = if x < -1.0 { -1.0 } else { x };
            if 1.0 < x {
                1.0
            } else {
                x
            }
        }
        UnaryF32::LeakyRelu(alpha) => {
            if x > 0.0 {
                x
            } else {
                x * alpha
            }
        }
        UnaryF32::HardSwish => {
            let r = x + 3.0;
            let r = if r < 0.0 { 0.0 } else { r };
            let r = if 6.0 < r { 6.0 } else { r };
            x * r / 6.0
        }
        UnaryF32::Logistic => {
            // reference_ops::Logistic's cut-offs.
            if x > 16.619_047 {
                1.0
            } else if x < -9.0 {
                x.exp()
            } else {
                1.0 / (1.0 + (-x).exp())
            }
        }
        UnaryF32::Tanh => x.tanh(),
    }
}

/// `exp(x)` in f32 without branches (Cephes `expf`: range reduction by ln 2, degree-6
/// polynomial; within 2 ulp on [−87, 88], clamped outside), so loops over it vectorise.
#[inline(always)]
#[allow(clippy::excessive_precision)] // Cephes' published coefficients
pub fn exp_f32_fast(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = if x > 88.0 { 88.0 } else { x };
    let x = if x < -87.0 { -87.0 } else { x };
    let fx = (x * LOG2E + 0.5).floor();
    let r = x - fx * LN2_HI - fx * LN2_LO;
    let z = r * r;
    let mut y = 1.987_569_1e-4f32;
    y = y * r + 1.398_199_9e-3;
    y = y * r + 8.333_452e-3;
    y = y * r + 4.166_579_6e-2;
    y = y * r + 1.666_666_5e-1;
    y = y * r + 5.000_000_1e-1;
    let y = y * z + r + 1.0;
    y * f32::from_bits(((fx as i32 + 127) as u32) << 23)
}

/// The logistic function via [`exp_f32_fast`] (the kernel's arithmetic; within a few 1e-7 of
/// [`reference_unary_f32`]).
#[inline(always)]
pub fn logistic_f32_fast(x: f32) -> f32 {
    // reference_ops::Logistic's cut-offs, with one exponential.
    let low = x < -9.0;
    let e = exp_f32_fast(if low { x } else { -x });
    let r = if low { e } else { 1.0 / (1.0 + e) };
    if x > 16.619_047 {
        1.0
    } else {
        r
    }
}

/// tanh via an odd polynomial near 0 (Cephes `tanhf`) and `1 − 2/(e^{2|x|} + 1)` elsewhere,
/// both computed and selected without branches.
#[inline(always)]
#[allow(clippy::excessive_precision)] // Cephes' published coefficients
pub fn tanh_f32_fast(x: f32) -> f32 {
    let a = x.abs();
    let z = x * x;
    let p = ((((-5.704_988_7e-3f32 * z + 2.063_908_9e-2) * z - 5.373_971_6e-2) * z
        + 1.333_144_2e-1)
        * z
        - 3.333_328_2e-1)
        * z
        * x
        + x;
    let e = 1.0 - 2.0 / (exp_f32_fast(2.0 * a) + 1.0);
    let e = if x < 0.0 { -e } else { e };
    if a < 0.625 {
        p
    } else {
        e
    }
}

/// The kernels' arithmetic per element: [`reference_unary_f32`] except LOGISTIC and TANH, which
/// use the vectorisable approximations.
#[inline(always)]
fn kernel_unary_f32(op: UnaryF32, x: f32) -> f32 {
    match op {
        UnaryF32::Logistic => logistic_f32_fast(x),
        UnaryF32::Tanh => tanh_f32_fast(x),
        _ => reference_unary_f32(op, x),
    }
}

#[inline(always)]
fn unary_f32_body(op: UnaryF32, x: &[f32], out: &mut [f32]) {
    macro_rules! go {
        ($op:expr) => {
            for (o, &v) in out.iter_mut().zip(x) {
                *o = kernel_unary_f32($op, v);
            }
        };
    }
    // One loop per op so each vectorises.
    match op {
        UnaryF32::Relu => go!(UnaryF32::Relu),
        UnaryF32::Relu6 => go!(UnaryF32::Relu6),
        UnaryF32::ReluN1To1 => go!(UnaryF32::ReluN1To1),
        UnaryF32::LeakyRelu(a) => go!(UnaryF32::LeakyRelu(a)),
        UnaryF32::HardSwish => go!(UnaryF32::HardSwish),
        UnaryF32::Logistic => go!(UnaryF32::Logistic),
        UnaryF32::Tanh => go!(UnaryF32::Tanh),
    }
}

/// The portable path of [`unary_f32`] (for tests comparing paths).
pub fn unary_f32_scalar(op: UnaryF32, x: &[f32], out: &mut [f32]) {
    assert_eq!(
        x.len(),
        out.len(),
        "unary_f32: input and output lengths differ"
    );
    unary_f32_body(op, x, out)
}

#[cfg(target_arch = "x86_64")]
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn unary_f32_avx2(op: UnaryF32, x: &[f32], out: &mut [f32]) {
    unary_f32_body(op, x, out)
}

#[cfg(target_arch = "x86_64")]
/// # Safety
/// The CPU must support AVX-512F.
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn unary_f32_avx512(op: UnaryF32, x: &[f32], out: &mut [f32]) {
    unary_f32_body(op, x, out)
}

/// `out[i] = op(x[i])` (`x` and `out` of equal length; any sub-range of a tensor).
pub fn unary_f32(op: UnaryF32, x: &[f32], out: &mut [f32]) {
    assert_eq!(
        x.len(),
        out.len(),
        "unary_f32: input and output lengths differ"
    );
    #[cfg(target_arch = "x86_64")]
    {
        if crate::Isa::Avx512Vnni.enabled() {
            // SAFETY: `enabled()` holds only when AVX-512 F/BW/DQ/VL, AVX2 and FMA were
            // detected at run time.
            return unsafe { unary_f32_avx512(op, x, out) };
        }
        if crate::Isa::Avx2.enabled() {
            // SAFETY: `enabled()` holds only when AVX2 and FMA were detected at run time.
            return unsafe { unary_f32_avx2(op, x, out) };
        }
    }
    unary_f32_body(op, x, out)
}

/// PRELU in f32: `x ≥ 0 ? x : x · alpha`, `alpha` broadcast against `x` by `plan`
/// (`plan = BroadcastPlan::new("PRELU", x_shape, alpha_shape)`), output elements
/// `start .. start + out.len()`.
pub fn prelu_f32(plan: &BroadcastPlan, x: &[f32], alpha: &[f32], out: &mut [f32], start: usize) {
    plan.for_each_run(start, start + out.len(), |ao, sa, bo, sb, o, n| {
        apply_run(
            x,
            ao,
            sa,
            alpha,
            bo,
            sb,
            &mut out[o..o + n],
            |v: f32, a: f32| {
                if v >= 0.0 {
                    v
                } else {
                    v * a
                }
            },
        )
    })
}

// ---------------------------------------------------------------------------------------------
// int8 / uint8: tables

/// A 256-entry table from input code (of type `I`) to output code (of type `O`), indexed by
/// the input's bit pattern. Built at prepare; eval is a lookup.
#[derive(Clone, Debug, PartialEq)]
pub struct Lut8<I: QInt, O: QInt = I> {
    table: [O; 256],
    _input: std::marker::PhantomData<I>,
}

impl<I: QInt, O: QInt> Lut8<I, O> {
    /// Tabulates `f(q)` (saturated to `O`'s range) for every input code `q`.
    pub fn from_fn(f: impl Fn(i32) -> i32) -> Self {
        let mut table = [O::from_i32(0); 256];
        for q in I::MIN..=I::MAX {
            table[I::from_i32(q).index()] = O::from_i32(f(q));
        }
        Lut8 {
            table,
            _input: std::marker::PhantomData,
        }
    }

    /// The output code for input code `x`.
    #[inline(always)]
    pub fn get(&self, x: I) -> O {
        self.table[x.index()]
    }

    /// `out[i] = table[x[i]]`.
    pub fn apply(&self, x: &[I], out: &mut [O]) {
        assert_eq!(
            x.len(),
            out.len(),
            "Lut8::apply: input and output lengths differ"
        );
        let table: &[u8; 256] = bytemuck::cast_ref(&self.table);
        (crate::elementwise::ElementwiseKernels::get().lut8.1)(
            table,
            bytemuck::cast_slice(x),
            bytemuck::cast_slice_mut(out),
        )
    }
}

/// The clamped-linear activations RELU, RELU6 and RELU_N1_TO_1 (their quantized form).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReluKind {
    Relu,
    Relu6,
    ReluN1To1,
}

/// TFLite's quantized ReLU parameters (`ReluPrepare` + `QuantizedReluX`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReluQ {
    pub input_offset: i32,
    pub output_offset: i32,
    pub output_multiplier: i32,
    pub output_shift: i32,
    pub act_min: i32,
    pub act_max: i32,
}

/// Computes [`ReluQ`] for `T` from the tensors' quantization.
pub fn relu_q_params<T: QInt>(
    kind: ReluKind,
    input: QParams,
    output: QParams,
) -> Result<ReluQ, ParamError> {
    let op = match kind {
        ReluKind::Relu => "RELU",
        ReluKind::Relu6 => "RELU6",
        ReluKind::ReluN1To1 => "RELU_N1_TO_1",
    };
    let input = input.validate::<T>(op, "input quantization")?;
    let output = output.validate::<T>(op, "output quantization")?;
    // `double real_multiplier = input->params.scale / output->params.scale;` (f32 division).
    let (output_multiplier, output_shift) =
        quantize_multiplier((input.scale / output.scale) as f64);
    let (lo, hi) = match kind {
        ReluKind::Relu => (0.0f32, f32::INFINITY),
        ReluKind::Relu6 => (0.0, 6.0),
        ReluKind::ReluN1To1 => (-1.0, 1.0),
    };
    let q = |f: f32| {
        output
            .zero_point
            .saturating_add((f / output.scale).round() as i32)
    };
    Ok(ReluQ {
        input_offset: input.zero_point,
        output_offset: output.zero_point,
        output_multiplier,
        output_shift,
        act_min: T::MIN.max(q(lo)),
        act_max: if hi == f32::INFINITY {
            T::MAX
        } else {
            T::MAX.min(q(hi))
        },
    })
}

/// TFLite's `ReluX` on one raw value.
pub fn reference_relu_q(p: &ReluQ, x: i32) -> i32 {
    let v = p.output_offset
        + multiply_by_quantized_multiplier(x - p.input_offset, p.output_multiplier, p.output_shift);
    v.max(p.act_min).min(p.act_max)
}

/// The table of a quantized RELU / RELU6 / RELU_N1_TO_1.
pub fn prepare_relu_q<T: QInt>(
    kind: ReluKind,
    input: QParams,
    output: QParams,
) -> Result<Lut8<T>, ParamError> {
    let p = relu_q_params::<T>(kind, input, output)?;
    Ok(Lut8::from_fn(|x| reference_relu_q(&p, x)))
}

/// TFLite's quantized LEAKY_RELU parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeakyReluQ {
    pub input_offset: i32,
    pub output_offset: i32,
    pub multiplier_identity: i32,
    pub shift_identity: i32,
    pub multiplier_alpha: i32,
    pub shift_alpha: i32,
}

/// Computes [`LeakyReluQ`] (`LeakyReluPrepare`: both ratios formed in f32, then widened).
pub fn leaky_relu_q_params<T: QInt>(
    alpha: f32,
    input: QParams,
    output: QParams,
) -> Result<LeakyReluQ, ParamError> {
    let input = input.validate::<T>("LEAKY_RELU", "input quantization")?;
    let output = output.validate::<T>("LEAKY_RELU", "output quantization")?;
    if !alpha.is_finite() {
        return Err(ParamError::Quant {
            op: "LEAKY_RELU",
            what: "alpha",
            value: alpha as f64,
        });
    }
    let (multiplier_alpha, shift_alpha) =
        quantize_multiplier((input.scale * alpha / output.scale) as f64);
    let (multiplier_identity, shift_identity) =
        quantize_multiplier((input.scale / output.scale) as f64);
    Ok(LeakyReluQ {
        input_offset: input.zero_point,
        output_offset: output.zero_point,
        multiplier_identity,
        shift_identity,
        multiplier_alpha,
        shift_alpha,
    })
}

/// TFLite's `QuantizeLeakyRelu` on one raw value (clamped to `[lo, hi]`, the type's range).
pub fn reference_leaky_relu_q(p: &LeakyReluQ, x: i32, lo: i32, hi: i32) -> i32 {
    let v = x - p.input_offset;
    let out = if v >= 0 {
        p.output_offset
            + multiply_by_quantized_multiplier(v, p.multiplier_identity, p.shift_identity)
    } else {
        p.output_offset + multiply_by_quantized_multiplier(v, p.multiplier_alpha, p.shift_alpha)
    };
    out.clamp(lo, hi)
}

/// The table of a quantized LEAKY_RELU.
pub fn prepare_leaky_relu_q<T: QInt>(
    alpha: f32,
    input: QParams,
    output: QParams,
) -> Result<Lut8<T>, ParamError> {
    let p = leaky_relu_q_params::<T>(alpha, input, output)?;
    Ok(Lut8::from_fn(|x| {
        reference_leaky_relu_q(&p, x, T::MIN, T::MAX)
    }))
}

/// TFLite's `HardSwishParams`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HardSwishQ {
    pub input_zero_point: i32,
    pub output_zero_point: i32,
    pub reluish_multiplier_fixedpoint_int16: i16,
    pub reluish_multiplier_exponent: i32,
    pub output_multiplier_fixedpoint_int16: i16,
    pub output_multiplier_exponent: i32,
}

/// TFLite's `DownScaleInt32ToInt16Multiplier`.
fn downscale_multiplier_to_i16(m: i32) -> i16 {
    const ROUNDING: i32 = 1 << 15;
    if m >= i32::MAX - ROUNDING {
        return i16::MAX;
    }
    ((m + ROUNDING) >> 16) as i16
}

/// Computes [`HardSwishQ`] (`HardSwishPrepare`, in f32 as TFLite does).
pub fn hard_swish_q_params<T: QInt>(
    input: QParams,
    output: QParams,
) -> Result<HardSwishQ, ParamError> {
    let input = input.validate::<T>("HARD_SWISH", "input quantization")?;
    let output = output.validate::<T>("HARD_SWISH", "output quantization")?;
    let hires_input_scale = (1.0f32 / 128.0) * input.scale;
    let reluish_scale = 3.0f32 / 32768.0;
    let (om, oe) = quantize_multiplier((hires_input_scale / output.scale) as f64);
    if oe > 0 {
        return Err(ParamError::Quant {
            op: "HARD_SWISH",
            what: "output multiplier (input scale / output scale ≥ 128)",
            value: (input.scale / output.scale) as f64,
        });
    }
    let (rm, re) = quantize_multiplier((hires_input_scale / reluish_scale) as f64);
    Ok(HardSwishQ {
        input_zero_point: input.zero_point,
        output_zero_point: output.zero_point,
        reluish_multiplier_fixedpoint_int16: downscale_multiplier_to_i16(rm),
        reluish_multiplier_exponent: re,
        output_multiplier_fixedpoint_int16: downscale_multiplier_to_i16(om),
        output_multiplier_exponent: oe,
    })
}

/// TFLite's `SaturatingLeftShift` on int16.
fn saturating_left_shift16(v: i16, amount: i32) -> i16 {
    let r = (v as i64) << amount.clamp(0, 40);
    r.clamp(i16::MIN as i64, i16::MAX as i64) as i16
}

/// TFLite's reference quantized `HardSwish` on one raw value, clamped to `[lo, hi]`.
pub fn reference_hard_swish_q(p: &HardSwishQ, x: i32, lo: i32, hi: i32) -> i32 {
    let input_value = (x - p.input_zero_point) as i16;
    let hires = input_value.wrapping_mul(1 << 7);
    let preshift_output = srdhm16(hires, p.output_multiplier_fixedpoint_int16);
    let mut reluish = hires;
    if p.reluish_multiplier_exponent > 0 {
        reluish = saturating_left_shift16(reluish, p.reluish_multiplier_exponent - 1);
    }
    reluish = srdhm16(reluish, p.reluish_multiplier_fixedpoint_int16);
    if p.reluish_multiplier_exponent > 0 {
        reluish = saturating_left_shift16(reluish, 1);
    }
    if p.reluish_multiplier_exponent < 0 {
        reluish = rdbpot16(reluish, -p.reluish_multiplier_exponent);
    }
    let reluish = ((reluish as i32 + (1 << 15)) >> 1) as i16;
    let preshift = sdhm16(reluish, preshift_output);
    let out = rdbpot16(preshift, -p.output_multiplier_exponent) as i32 + p.output_zero_point;
    // `output_value` is an int16_t in TFLite: the sum wraps to 16 bits before clamping.
    (out as i16 as i32).clamp(lo, hi)
}

/// The table of a quantized HARD_SWISH.
pub fn prepare_hard_swish_q<T: QInt>(
    input: QParams,
    output: QParams,
) -> Result<Lut8<T>, ParamError> {
    let p = hard_swish_q_params::<T>(input, output)?;
    Ok(Lut8::from_fn(|x| {
        reference_hard_swish_q(&p, x, T::MIN, T::MAX)
    }))
}

/// TFLite's `LUTPopulate` for 8-bit types: dequantize in f32, transform, `round(y / out_scale)`
/// (half away from zero) plus the zero point, in f32, then clamp.
pub fn lut_populate<T: QInt>(input: QParams, output: QParams, f: impl Fn(f32) -> f32) -> Lut8<T> {
    let inverse_scale = 1.0f32 / output.scale;
    Lut8::from_fn(|q| {
        let dequantized = input.scale * (q - input.zero_point) as f32;
        let rescaled = (f(dequantized) * inverse_scale).round();
        (rescaled + output.zero_point as f32) as i32
    })
}

fn check_sigmoid_output(op: &'static str, output: QParams) -> Result<(), ParamError> {
    if output.scale != 1.0 / 256.0 {
        return Err(ParamError::Quant {
            op,
            what: "output scale (must be 1/256)",
            value: output.scale as f64,
        });
    }
    Ok(())
}

/// The table of a quantized LOGISTIC (TFLite requires an output scale of 1/256).
pub fn prepare_logistic_q<T: QInt>(input: QParams, output: QParams) -> Result<Lut8<T>, ParamError> {
    let input = input.validate::<T>("LOGISTIC", "input quantization")?;
    let output = output.validate::<T>("LOGISTIC", "output quantization")?;
    check_sigmoid_output("LOGISTIC", output)?;
    Ok(lut_populate(input, output, |v| 1.0 / (1.0 + (-v).exp())))
}

/// The table of a quantized TANH.
pub fn prepare_tanh_q<T: QInt>(input: QParams, output: QParams) -> Result<Lut8<T>, ParamError> {
    let input = input.validate::<T>("TANH", "input quantization")?;
    let output = output.validate::<T>("TANH", "output quantization")?;
    Ok(lut_populate(input, output, |v| v.tanh()))
}

// ---------------------------------------------------------------------------------------------
// PRELU, quantized

/// TFLite's quantized PRELU parameters (`PreluPrepare`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PreluQ {
    pub input_offset: i32,
    pub alpha_offset: i32,
    pub output_offset: i32,
    pub output_multiplier_1: i32,
    pub output_shift_1: i32,
    pub output_multiplier_2: i32,
    pub output_shift_2: i32,
}

/// Computes [`PreluQ`] from the input, alpha and output quantization.
pub fn prepare_prelu_q<T: QInt>(
    input: QParams,
    alpha: QParams,
    output: QParams,
) -> Result<PreluQ, ParamError> {
    let input = input.validate::<T>("PRELU", "input quantization")?;
    let alpha = alpha.validate::<T>("PRELU", "alpha quantization")?;
    let output = output.validate::<T>("PRELU", "output quantization")?;
    let (m1, s1) = quantize_multiplier((input.scale / output.scale) as f64);
    let (m2, s2) = quantize_multiplier((input.scale * alpha.scale / output.scale) as f64);
    Ok(PreluQ {
        input_offset: -input.zero_point,
        alpha_offset: -alpha.zero_point,
        output_offset: output.zero_point,
        output_multiplier_1: m1,
        output_shift_1: s1,
        output_multiplier_2: m2,
        output_shift_2: s2,
    })
}

/// TFLite's reference quantized PRELU on one input value and its alpha, clamped to `[lo, hi]`.
#[inline(always)]
pub fn reference_prelu_q(p: &PreluQ, x: i32, a: i32, lo: i32, hi: i32) -> i32 {
    let v = p.input_offset + x;
    let out = if v >= 0 {
        multiply_by_quantized_multiplier(v, p.output_multiplier_1, p.output_shift_1)
    } else {
        multiply_by_quantized_multiplier(
            v * (p.alpha_offset + a),
            p.output_multiplier_2,
            p.output_shift_2,
        )
    };
    (out + p.output_offset).clamp(lo, hi)
}

/// Quantized PRELU over output elements `start .. start + out.len()` (see [`prelu_f32`]).
pub fn prelu_q<T: QInt>(
    p: &PreluQ,
    plan: &BroadcastPlan,
    x: &[T],
    alpha: &[T],
    out: &mut [T],
    start: usize,
) {
    let p = *p;
    plan.for_each_run(start, start + out.len(), |ao, sa, bo, sb, o, n| {
        apply_run(
            x,
            ao,
            sa,
            alpha,
            bo,
            sb,
            &mut out[o..o + n],
            |v: T, a: T| {
                T::from_i32(reference_prelu_q(
                    &p,
                    v.to_i32(),
                    a.to_i32(),
                    T::MIN,
                    T::MAX,
                ))
            },
        )
    })
}

#[cfg(test)]
mod tests;
