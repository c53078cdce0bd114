//! QUANTIZE (f32 → int8/uint8 with TFLite's rounding; int8 ↔ uint8 and int8 → int8
//! requantization) and DEQUANTIZE (int8/uint8/f16 → f32), plus f16 → f32 widening helpers.
//!
//! Requantization and dequantization of 8-bit codes are tabulated at prepare (256 entries, the
//! reference formula per code), so eval is a lookup.

use crate::activation::Lut8;
use crate::elementwise::{ParamError, QInt, QParams};
use crate::requant::{multiply_by_quantized_multiplier, quantize_multiplier};
use half::f16;

/// TFLite's reference `AffineQuantize` of one value: `round(x / scale) + zero_point` (f32
/// division, rounding half away from zero), saturated to `T`.
#[inline(always)]
pub fn quantize_one<T: QInt>(q: QParams, x: f32) -> T {
    let r = (x / q.scale).round() as i32; // `as` saturates; NaN becomes 0
    T::from_i32(r.saturating_add(q.zero_point))
}

#[inline(always)]
fn quantize_body<T: QInt>(q: QParams, x: &[f32], out: &mut [T]) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = quantize_one(q, v);
    }
}

#[cfg(target_arch = "x86_64")]
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2,fma")]
unsafe fn quantize_avx2<T: QInt>(q: QParams, x: &[f32], out: &mut [T]) {
    quantize_body(q, x, out)
}

/// QUANTIZE f32 → `T` (int8 or uint8): `out[i] = quantize_one(q, x[i])`.
pub fn quantize_f32<T: QInt>(q: QParams, x: &[f32], out: &mut [T]) {
    assert_eq!(
        x.len(),
        out.len(),
        "quantize_f32: input and output lengths differ"
    );
    #[cfg(target_arch = "x86_64")]
    if crate::Isa::Avx2.enabled() {
        // SAFETY: `Isa::Avx2.enabled()` holds only when AVX2 and FMA were detected at run time.
        return unsafe { quantize_avx2(q, x, out) };
    }
    quantize_body(q, x, out)
}

/// Validates the output quantization of a QUANTIZE from f32.
pub fn prepare_quantize<T: QInt>(output: QParams) -> Result<QParams, ParamError> {
    output.validate::<T>("QUANTIZE", "output quantization")
}

/// TFLite's reference `Requantize` parameters (quantize.cc: `effective_scale = in / out` in
/// double).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequantizeQ {
    pub input_zero_point: i32,
    pub output_zero_point: i32,
    pub multiplier: i32,
    pub shift: i32,
}

/// Computes [`RequantizeQ`] for an `I` → `O` QUANTIZE (int8 → int8, int8 ↔ uint8).
pub fn requantize_params<I: QInt, O: QInt>(
    input: QParams,
    output: QParams,
) -> Result<RequantizeQ, ParamError> {
    let input = input.validate::<I>("QUANTIZE", "input quantization")?;
    let output = output.validate::<O>("QUANTIZE", "output quantization")?;
    let (multiplier, shift) = quantize_multiplier(input.scale as f64 / output.scale as f64);
    if !(-31..=30).contains(&shift) {
        return Err(ParamError::Quant {
            op: "QUANTIZE",
            what: "input scale / output scale",
            value: input.scale as f64 / output.scale as f64,
        });
    }
    Ok(RequantizeQ {
        input_zero_point: input.zero_point,
        output_zero_point: output.zero_point,
        multiplier,
        shift,
    })
}

/// TFLite's reference `Requantize` of one code, saturated to `[lo, hi]`.
pub fn reference_requantize(p: &RequantizeQ, x: i32, lo: i32, hi: i32) -> i32 {
    (multiply_by_quantized_multiplier(x - p.input_zero_point, p.multiplier, p.shift)
        + p.output_zero_point)
        .clamp(lo, hi)
}

/// The table of an `I` → `O` requantizing QUANTIZE.
pub fn prepare_requantize<I: QInt, O: QInt>(
    input: QParams,
    output: QParams,
) -> Result<Lut8<I, O>, ParamError> {
    let p = requantize_params::<I, O>(input, output)?;
    Ok(Lut8::from_fn(|x| {
        reference_requantize(&p, x, O::MIN, O::MAX)
    }))
}

/// A prepared DEQUANTIZE of 8-bit codes: `f32(scale · (q − zero_point))` computed in f64 as
/// TFLite's reference does, tabulated per code.
#[derive(Clone, Debug, PartialEq)]
pub struct Dequantize8<T: QInt> {
    table: [f32; 256],
    _t: std::marker::PhantomData<T>,
}

impl<T: QInt> Dequantize8<T> {
    /// Prepares DEQUANTIZE for codes of type `T` with quantization `q`.
    pub fn new(q: QParams) -> Result<Self, ParamError> {
        let q = q.validate::<T>("DEQUANTIZE", "input quantization")?;
        let mut table = [0.0f32; 256];
        for v in T::MIN..=T::MAX {
            table[T::from_i32(v).index()] = reference_dequantize(q, v);
        }
        Ok(Dequantize8 {
            table,
            _t: std::marker::PhantomData,
        })
    }

    /// `out[i] = dequantize(x[i])`.
    pub fn apply(&self, x: &[T], out: &mut [f32]) {
        assert_eq!(
            x.len(),
            out.len(),
            "dequantize: input and output lengths differ"
        );
        for (o, &v) in out.iter_mut().zip(x) {
            *o = self.table[v.index()];
        }
    }
}

/// TFLite's reference `Dequantize` of one code (the scale widened to f64).
pub fn reference_dequantize(q: QParams, v: i32) -> f32 {
    (q.scale as f64 * (v - q.zero_point) as f64) as f32
}

/// DEQUANTIZE f16 → f32 (and the widening of f16 weights): exact.
pub fn f16_to_f32(x: &[f16], out: &mut [f32]) {
    use half::slice::HalfFloatSliceExt;
    assert_eq!(
        x.len(),
        out.len(),
        "f16_to_f32: input and output lengths differ"
    );
    x.convert_to_f32_slice(out);
}

/// f16 given as raw little-endian bit patterns (as stored in a model file) → f32.
pub fn f16_bits_to_f32(bits: &[u16], out: &mut [f32]) {
    assert_eq!(
        bits.len(),
        out.len(),
        "f16_bits_to_f32: input and output lengths differ"
    );
    f16_to_f32(bytemuck::cast_slice(bits), out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantize_rounds_half_away_from_zero() {
        let q = QParams::new(0.5, -3);
        let x = [
            0.25f32,
            -0.25,
            0.75,
            -0.75,
            1000.0,
            -1000.0,
            0.0,
            f32::NAN,
            63.0,
        ];
        let mut out = [0i8; 9];
        quantize_f32(q, &x, &mut out);
        assert_eq!(out, [-2, -4, -1, -5, 127, -128, -3, -3, 123]);
        let mut u = [0u8; 3];
        quantize_f32(QParams::new(0.1, 128), &[0.05, -0.05, 20.0], &mut u);
        assert_eq!(u, [129, 127, 255]);
        // SIMD and scalar agree on long inputs with remainders.
        let x: Vec<f32> = (0..1003)
            .map(|i| (i as f32 - 500.0) * 0.137 + 0.25)
            .collect();
        let mut a = vec![0i8; x.len()];
        quantize_f32(QParams::new(0.3, 7), &x, &mut a);
        for (i, &v) in x.iter().enumerate() {
            assert_eq!(
                a[i],
                quantize_one::<i8>(QParams::new(0.3, 7), v),
                "element {i}"
            );
        }
    }

    #[test]
    fn requantize_matches_reference() {
        let cases = [
            (QParams::new(0.05, 10), QParams::new(0.05, 138)),
            (QParams::new(0.05, -3), QParams::new(0.11, 20)),
            (QParams::new(0.7, 0), QParams::new(0.01, 100)),
        ];
        for (i, o) in cases {
            let lut = prepare_requantize::<i8, u8>(i, o).unwrap();
            let lut2 =
                prepare_requantize::<i8, i8>(i, QParams::new(o.scale, o.zero_point - 128)).unwrap();
            let (m, s) = quantize_multiplier(i.scale as f64 / o.scale as f64);
            for v in -128..128 {
                let want = (multiply_by_quantized_multiplier(v - i.zero_point, m, s)
                    + o.zero_point)
                    .clamp(0, 255);
                assert_eq!(lut.get(v as i8) as i32, want, "{i:?}->{o:?} at {v}");
                let want8 =
                    (multiply_by_quantized_multiplier(v - i.zero_point, m, s) + o.zero_point - 128)
                        .clamp(-128, 127);
                assert_eq!(lut2.get(v as i8) as i32, want8, "int8 {i:?}->{o:?} at {v}");
            }
        }
        // Equal scales, zero points 128 apart: a pure offset.
        let lut =
            prepare_requantize::<u8, i8>(QParams::new(0.02, 128), QParams::new(0.02, 0)).unwrap();
        for v in 0..256 {
            assert_eq!(lut.get(v as u8) as i32, v - 128);
        }
        assert!(prepare_requantize::<i8, i8>(QParams::new(0.0, 0), QParams::new(1.0, 0)).is_err());
    }

    #[test]
    fn dequantize_and_f16() {
        let d = Dequantize8::<u8>::new(QParams::new(0.1, 128)).unwrap();
        let mut out = [0.0f32; 3];
        d.apply(&[128, 0, 255], &mut out);
        assert_eq!(
            out,
            [
                0.0,
                (0.1f32 as f64 * -128.0) as f32,
                (0.1f32 as f64 * 127.0) as f32
            ]
        );
        let h: Vec<f16> = [0.5f32, -2.0, 65504.0, 1e-7]
            .iter()
            .map(|&v| f16::from_f32(v))
            .collect();
        let mut f = vec![0.0; 4];
        f16_to_f32(&h, &mut f);
        assert_eq!(&f[..3], &[0.5, -2.0, 65504.0]);
        let bits: Vec<u16> = h.iter().map(|v| v.to_bits()).collect();
        let mut g = vec![0.0; 4];
        f16_bits_to_f32(&bits, &mut g);
        assert_eq!(f, g);
    }
}
