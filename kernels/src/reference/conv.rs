//! Plain reference loops for CONV_2D, DEPTHWISE_CONV_2D and TRANSPOSE_CONV, written from
//! TFLite's reference kernels (`reference_ops::Conv`, `reference_integer_ops::ConvPerChannel`,
//! `DepthwiseConvPerChannel`, `TransposeConv`). 8-bit variants take values widened to i32 with
//! the weight zero point already subtracted, and per-channel (or one) multipliers and shifts.

use crate::requant::multiply_by_quantized_multiplier;
use crate::window::Window2d;

/// Output quantization for the integer references.
#[derive(Clone, Debug)]
pub struct QOut {
    /// Input zero point (subtracted from every input value read).
    pub in_zp: i32,
    /// Q31 multipliers (one, or one per output channel).
    pub mult: Vec<i32>,
    /// Shifts (TFLite exponent convention), same length as `mult`.
    pub shift: Vec<i32>,
    /// Output zero point.
    pub out_zp: i32,
    /// Clamp.
    pub lo: i32,
    /// Clamp.
    pub hi: i32,
}

impl QOut {
    /// Requantizes the accumulator of output channel `oc`.
    pub fn apply(&self, acc: i32, oc: usize) -> i32 {
        let i = if self.mult.len() == 1 { 0 } else { oc };
        let v = multiply_by_quantized_multiplier(acc, self.mult[i], self.shift[i]);
        (v + self.out_zp).clamp(self.lo, self.hi)
    }
}

/// Input coordinate of tap `f` for output `o`, or None when outside (TFLite's
/// `in_origin + dilation * f` with the `is_point_inside_image` check).
fn at(o: usize, f: usize, stride: usize, dil: usize, pad: usize, size: usize) -> Option<usize> {
    let v = (o * stride) as isize - pad as isize + (dil * f) as isize;
    (v >= 0 && (v as usize) < size).then_some(v as usize)
}

/// Generic depthwise accumulation; `f(acc, x, w)` accumulates one product.
fn depthwise<A: Copy, X: Copy, W: Copy>(
    w: &Window2d,
    input: &[X],
    weights: &[W],
    init: impl Fn(usize) -> A,
    f: impl Fn(A, X, W) -> A,
    mut out: impl FnMut(usize, usize, A),
) {
    let dm = w.out_c / w.in_c;
    for b in 0..w.batch {
        for oy in 0..w.h.output {
            for ox in 0..w.w.output {
                for ic in 0..w.in_c {
                    for m in 0..dm {
                        let oc = m + ic * dm;
                        let mut acc = init(oc);
                        for fy in 0..w.h.kernel {
                            let Some(iy) =
                                at(oy, fy, w.h.stride, w.h.dilation, w.h.pad_before, w.h.input)
                            else {
                                continue;
                            };
                            for fx in 0..w.w.kernel {
                                let Some(ix) =
                                    at(ox, fx, w.w.stride, w.w.dilation, w.w.pad_before, w.w.input)
                                else {
                                    continue;
                                };
                                let xi = ((b * w.h.input + iy) * w.w.input + ix) * w.in_c + ic;
                                let wi = (fy * w.w.kernel + fx) * w.out_c + oc;
                                acc = f(acc, input[xi], weights[wi]);
                            }
                        }
                        let o = ((b * w.h.output + oy) * w.w.output + ox) * w.out_c + oc;
                        out(o, oc, acc);
                    }
                }
            }
        }
    }
}

/// f32 depthwise convolution; weights `[kh][kw][out_c]`.
pub fn depthwise_f32(
    w: &Window2d,
    input: &[f32],
    weights: &[f32],
    bias: Option<&[f32]>,
    lo: f32,
    hi: f32,
) -> Vec<f32> {
    let mut out = vec![0.0; w.output_len()];
    depthwise(
        w,
        input,
        weights,
        |_| 0.0f32,
        |a, x, k| a + x * k,
        |o, oc, a| out[o] = (a + bias.map_or(0.0, |b| b[oc])).max(lo).min(hi),
    );
    out
}

/// 8-bit depthwise convolution on widened values; weights `[kh][kw][out_c]` minus their zero
/// point.
pub fn depthwise_q(
    w: &Window2d,
    input: &[i32],
    weights: &[i32],
    bias: Option<&[i32]>,
    q: &QOut,
) -> Vec<i32> {
    let mut out = vec![0; w.output_len()];
    depthwise(
        w,
        input,
        weights,
        |_| 0i32,
        |a, x, k| a + (x - q.in_zp) * k,
        |o, oc, a| out[o] = q.apply(a + bias.map_or(0, |b| b[oc]), oc),
    );
    out
}

/// Generic convolution accumulation, weights `[out_c][kh][kw][in_c]`.
fn conv<A: Copy, X: Copy, W: Copy>(
    w: &Window2d,
    input: &[X],
    weights: &[W],
    zero: A,
    f: impl Fn(A, X, W) -> A,
    mut out: impl FnMut(usize, usize, A),
) {
    for b in 0..w.batch {
        for oy in 0..w.h.output {
            for ox in 0..w.w.output {
                for oc in 0..w.out_c {
                    let mut acc = zero;
                    for fy in 0..w.h.kernel {
                        let Some(iy) =
                            at(oy, fy, w.h.stride, w.h.dilation, w.h.pad_before, w.h.input)
                        else {
                            continue;
                        };
                        for fx in 0..w.w.kernel {
                            let Some(ix) =
                                at(ox, fx, w.w.stride, w.w.dilation, w.w.pad_before, w.w.input)
                            else {
                                continue;
                            };
                            for ic in 0..w.in_c {
                                let xi = ((b * w.h.input + iy) * w.w.input + ix) * w.in_c + ic;
                                let wi = ((oc * w.h.kernel + fy) * w.w.kernel + fx) * w.in_c + ic;
                                acc = f(acc, input[xi], weights[wi]);
                            }
                        }
                    }
                    let o = ((b * w.h.output + oy) * w.w.output + ox) * w.out_c + oc;
                    out(o, oc, acc);
                }
            }
        }
    }
}

/// f32 convolution; weights `[out_c][kh][kw][in_c]`.
pub fn conv_f32(
    w: &Window2d,
    input: &[f32],
    weights: &[f32],
    bias: Option<&[f32]>,
    lo: f32,
    hi: f32,
) -> Vec<f32> {
    let mut out = vec![0.0; w.output_len()];
    conv(
        w,
        input,
        weights,
        0.0f32,
        |a, x, k| a + x * k,
        |o, oc, a| out[o] = (a + bias.map_or(0.0, |b| b[oc])).max(lo).min(hi),
    );
    out
}

/// 8-bit convolution on widened values; weights minus their zero point.
pub fn conv_q(
    w: &Window2d,
    input: &[i32],
    weights: &[i32],
    bias: Option<&[i32]>,
    q: &QOut,
) -> Vec<i32> {
    let mut out = vec![0; w.output_len()];
    conv(
        w,
        input,
        weights,
        0i32,
        |a, x, k| a + (x - q.in_zp) * k,
        |o, oc, a| out[o] = q.apply(a + bias.map_or(0, |b| b[oc]), oc),
    );
    out
}

/// Transposed convolution (TFLite's `TransposeConv`): scatter each input pixel through the
/// kernel into the output. Weights `[out_c][kh][kw][in_c]`; `(kh, kw, sh, sw, pad_top,
/// pad_left)`. Returns the accumulators before bias and activation.
#[allow(clippy::type_complexity)]
pub fn transpose_conv_acc<A: Copy + std::ops::Add<Output = A>>(
    (batch, in_h, in_w, in_c): (usize, usize, usize, usize),
    (out_h, out_w, out_c): (usize, usize, usize),
    (kh, kw, sh, sw, pad_t, pad_l): (usize, usize, usize, usize, usize, usize),
    input: &[A],
    weights: &[A],
    zero: A,
    mul: impl Fn(A, A) -> A,
) -> Vec<A> {
    let mut out = vec![zero; batch * out_h * out_w * out_c];
    for b in 0..batch {
        for iy in 0..in_h {
            for ix in 0..in_w {
                for ic in 0..in_c {
                    let oy0 = (iy * sh) as isize - pad_t as isize;
                    let ox0 = (ix * sw) as isize - pad_l as isize;
                    let x = input[((b * in_h + iy) * in_w + ix) * in_c + ic];
                    for fy in 0..kh {
                        for fx in 0..kw {
                            for oc in 0..out_c {
                                let oy = oy0 + fy as isize;
                                let ox = ox0 + fx as isize;
                                if oy < 0 || ox < 0 || oy as usize >= out_h || ox as usize >= out_w
                                {
                                    continue;
                                }
                                let wv = weights[((oc * kh + fy) * kw + fx) * in_c + ic];
                                let o =
                                    ((b * out_h + oy as usize) * out_w + ox as usize) * out_c + oc;
                                out[o] = out[o] + mul(x, wv);
                            }
                        }
                    }
                }
            }
        }
    }
    out
}
