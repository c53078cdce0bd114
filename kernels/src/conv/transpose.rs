//! TRANSPOSE_CONV (NHWC), f32 and int8 / uint8, with TFLite's semantics.
//!
//! TFLite defines it as a scatter: input pixel `(iy, ix)` adds `x · w[oc, ky, kx, ic]` to output
//! `(iy·s − pad + ky, ix·s − pad + kx)`, with the padding computed as for a forward convolution
//! from the *output* size (`ComputePaddingHeightWidth(stride, 1, out_h, out_w, kh, kw)`); then
//! bias, then (8-bit) `requant` per output channel and the activation clamp. Here each output
//! pixel gathers instead — the taps with `oy + pad − ky` divisible by the stride — which gives
//! the same sums (exactly for integers), needs no scratch and lets threads split output rows.
//! Weights are TFLite's `[out_c, kh, kw, in_c]`.

use crate::gemm::Q8;
use crate::requant::Requant;
use crate::window::{Axis, Padding, WindowError};
use std::ops::Range;

/// Geometry of a transposed convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransposeGeom {
    /// Batch.
    pub batch: usize,
    /// Input height, width, channels.
    pub in_h: usize,
    /// Input width.
    pub in_w: usize,
    /// Input channels.
    pub in_c: usize,
    /// Output height (the op's `output_shape`).
    pub out_h: usize,
    /// Output width.
    pub out_w: usize,
    /// Output channels.
    pub out_c: usize,
    /// Kernel height.
    pub k_h: usize,
    /// Kernel width.
    pub k_w: usize,
    /// Stride height.
    pub stride_h: usize,
    /// Stride width.
    pub stride_w: usize,
    /// Padding above (TFLite's `padding_values.height`).
    pub pad_top: usize,
    /// Padding left.
    pub pad_left: usize,
}

impl TransposeGeom {
    /// Validates sizes and computes TFLite's padding from the output size.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        batch: usize,
        (in_h, in_w, in_c): (usize, usize, usize),
        (out_h, out_w, out_c): (usize, usize, usize),
        (k_h, k_w): (usize, usize),
        (stride_h, stride_w): (usize, usize),
        padding: Padding,
    ) -> Result<TransposeGeom, WindowError> {
        for (v, field) in [
            (batch, "batch"),
            (in_h, "input height"),
            (in_w, "input width"),
            (in_c, "input channels"),
            (out_c, "output channels"),
        ] {
            if v == 0 {
                return Err(WindowError::Zero { field });
            }
        }
        let h = Axis::new("height", padding, out_h, k_h, stride_h, 1)?;
        let w = Axis::new("width", padding, out_w, k_w, stride_w, 1)?;
        let fits = |d: &[usize]| {
            d.iter()
                .try_fold(1usize, |a, &x| a.checked_mul(x))
                .is_some_and(|n| n <= i32::MAX as usize)
        };
        if !fits(&[batch, in_h, in_w, in_c]) {
            return Err(WindowError::Overflow {
                what: "input element count",
            });
        }
        if !fits(&[batch, out_h, out_w, out_c]) {
            return Err(WindowError::Overflow {
                what: "output element count",
            });
        }
        if !fits(&[out_c, k_h, k_w, in_c]) {
            return Err(WindowError::Overflow {
                what: "weight element count",
            });
        }
        Ok(TransposeGeom {
            batch,
            in_h,
            in_w,
            in_c,
            out_h,
            out_w,
            out_c,
            k_h,
            k_w,
            stride_h,
            stride_w,
            pad_top: h.pad_before,
            pad_left: w.pad_before,
        })
    }

    /// Input elements.
    pub fn input_len(&self) -> usize {
        self.batch * self.in_h * self.in_w * self.in_c
    }

    /// Output elements.
    pub fn output_len(&self) -> usize {
        self.batch * self.out_h * self.out_w * self.out_c
    }

    /// Weight elements.
    pub fn weights_len(&self) -> usize {
        self.out_c * self.k_h * self.k_w * self.in_c
    }

    /// Output rows (`batch · out_h`), the unit of work splitting.
    pub fn output_rows(&self) -> usize {
        self.batch * self.out_h
    }

    /// The input coordinate reached by tap `k` from output `o` on one axis, if any.
    #[inline(always)]
    fn source(o: usize, k: usize, stride: usize, pad: usize, size: usize) -> Option<usize> {
        let v = (o + pad).checked_sub(k)?;
        if v % stride != 0 {
            return None;
        }
        let i = v / stride;
        (i < size).then_some(i)
    }

    /// Calls `f(ky, kx, input_pixel_offset)` for each tap reaching output `(row, ox)`.
    #[inline(always)]
    fn for_taps(&self, row: usize, ox: usize, mut f: impl FnMut(usize, usize, usize)) {
        let (b, oy) = (row / self.out_h, row % self.out_h);
        for ky in 0..self.k_h {
            let Some(iy) = Self::source(oy, ky, self.stride_h, self.pad_top, self.in_h) else {
                continue;
            };
            for kx in 0..self.k_w {
                let Some(ix) = Self::source(ox, kx, self.stride_w, self.pad_left, self.in_w) else {
                    continue;
                };
                f(ky, kx, ((b * self.in_h + iy) * self.in_w + ix) * self.in_c);
            }
        }
    }

    fn check<T, U>(&self, input: &[T], output: &[U], rows: &Range<usize>) {
        assert!(
            input.len() >= self.input_len(),
            "transpose conv input too short"
        );
        assert!(
            output.len() >= self.output_len(),
            "transpose conv output too short"
        );
        assert!(
            rows.start <= rows.end && rows.end <= self.output_rows(),
            "rows {rows:?}"
        );
    }
}

/// Why a transposed convolution cannot be prepared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransposeError {
    /// A parameter has the wrong length (what, expected, found).
    Length {
        /// `"weights"`, `"bias"`, `"requant"`.
        what: &'static str,
        /// Expected.
        expected: usize,
        /// Found.
        found: usize,
    },
    /// A zero point outside its type's range.
    ZeroPoint {
        /// `"input"` or `"weight"`.
        what: &'static str,
        /// The value.
        value: i32,
    },
}

impl std::fmt::Display for TransposeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TransposeError::Length {
                what,
                expected,
                found,
            } => {
                write!(
                    f,
                    "transpose conv: {what} has {found} elements, expected {expected}"
                )
            }
            TransposeError::ZeroPoint { what, value } => {
                write!(f, "transpose conv: {what} zero point {value} out of range")
            }
        }
    }
}

impl std::error::Error for TransposeError {}

fn check_len(what: &'static str, expected: usize, found: usize) -> Result<(), TransposeError> {
    if expected != found {
        return Err(TransposeError::Length {
            what,
            expected,
            found,
        });
    }
    Ok(())
}

/// Dot product with 8 independent partial sums (so the compiler can vectorize it).
#[inline(always)]
fn dot_f32(x: &[f32], w: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (xc, wc) = (x.chunks_exact(8), w.chunks_exact(8));
    let (xr, wr) = (xc.remainder(), wc.remainder());
    for (a, b) in xc.zip(wc) {
        for i in 0..8 {
            acc[i] += a[i] * b[i];
        }
    }
    let mut s = acc.iter().sum::<f32>();
    for (a, b) in xr.iter().zip(wr) {
        s += a * b;
    }
    s
}

/// A prepared f32 transposed convolution.
#[derive(Clone, Debug)]
pub struct TransposeConvF32 {
    geom: TransposeGeom,
    weights: Vec<f32>,
    bias: Vec<f32>,
    min: f32,
    max: f32,
}

impl TransposeConvF32 {
    /// Prepares from weights `[out_c·kh·kw·in_c]`, an optional bias and the activation clamp.
    pub fn new(
        geom: TransposeGeom,
        weights: &[f32],
        bias: Option<&[f32]>,
        min: f32,
        max: f32,
    ) -> Result<TransposeConvF32, TransposeError> {
        check_len("weights", geom.weights_len(), weights.len())?;
        let bias = match bias {
            Some(b) => {
                check_len("bias", geom.out_c, b.len())?;
                b.to_vec()
            }
            None => vec![0.0; geom.out_c],
        };
        Ok(TransposeConvF32 {
            geom,
            weights: weights.to_vec(),
            bias,
            min,
            max,
        })
    }

    /// The geometry.
    pub fn geom(&self) -> &TransposeGeom {
        &self.geom
    }

    /// Computes output rows `rows` (of `batch · out_h`). Allocates nothing.
    pub fn run(&self, input: &[f32], output: &mut [f32], rows: Range<usize>) {
        let g = &self.geom;
        g.check(input, output, &rows);
        let (ic, oc) = (g.in_c, g.out_c);
        for row in rows {
            for ox in 0..g.out_w {
                let out = &mut output[(row * g.out_w + ox) * oc..][..oc];
                out.fill(0.0);
                g.for_taps(row, ox, |ky, kx, off| {
                    let x = &input[off..off + ic];
                    for (o, dst) in out.iter_mut().enumerate() {
                        let w = &self.weights[((o * g.k_h + ky) * g.k_w + kx) * ic..][..ic];
                        *dst += dot_f32(x, w);
                    }
                });
                for (dst, &b) in out.iter_mut().zip(&self.bias) {
                    let v = *dst + b;
                    let v = if v < self.min { self.min } else { v };
                    *dst = if self.max < v { self.max } else { v };
                }
            }
        }
    }
}

/// A prepared 8-bit transposed convolution.
#[derive(Clone, Debug)]
pub struct TransposeConvQ {
    geom: TransposeGeom,
    /// `w − zw` as i16.
    weights: Vec<i16>,
    bias: Vec<i32>,
    in_zp: i32,
    rq: Requant,
}

impl TransposeConvQ {
    /// Prepares int8 weights (zero point 0).
    pub fn new(
        geom: TransposeGeom,
        weights: &[i8],
        bias: Option<&[i32]>,
        in_zp: i32,
        rq: Requant,
    ) -> Result<TransposeConvQ, TransposeError> {
        let w = weights.iter().map(|&v| v as i16).collect();
        TransposeConvQ::build(geom, w, weights.len(), bias, in_zp, rq)
    }

    /// Prepares legacy uint8 weights with a per-tensor zero point.
    pub fn new_u8(
        geom: TransposeGeom,
        weights: &[u8],
        w_zp: i32,
        bias: Option<&[i32]>,
        in_zp: i32,
        rq: Requant,
    ) -> Result<TransposeConvQ, TransposeError> {
        if !(0..=255).contains(&w_zp) {
            return Err(TransposeError::ZeroPoint {
                what: "weight",
                value: w_zp,
            });
        }
        let w = weights.iter().map(|&v| (v as i32 - w_zp) as i16).collect();
        TransposeConvQ::build(geom, w, weights.len(), bias, in_zp, rq)
    }

    fn build(
        geom: TransposeGeom,
        weights: Vec<i16>,
        n: usize,
        bias: Option<&[i32]>,
        in_zp: i32,
        rq: Requant,
    ) -> Result<TransposeConvQ, TransposeError> {
        check_len("weights", geom.weights_len(), n)?;
        if !(-128..=255).contains(&in_zp) {
            return Err(TransposeError::ZeroPoint {
                what: "input",
                value: in_zp,
            });
        }
        if !rq.is_per_tensor() {
            check_len("requant", geom.out_c, rq.channels())?;
        }
        let bias = match bias {
            Some(b) => {
                check_len("bias", geom.out_c, b.len())?;
                b.to_vec()
            }
            None => vec![0; geom.out_c],
        };
        Ok(TransposeConvQ {
            geom,
            weights,
            bias,
            in_zp,
            rq,
        })
    }

    /// The geometry.
    pub fn geom(&self) -> &TransposeGeom {
        &self.geom
    }

    /// Computes output rows `rows` (of `batch · out_h`); `T` is the activation type.
    pub fn run<T: Q8>(&self, input: &[T], output: &mut [T], rows: Range<usize>) {
        const BLOCK: usize = 64;
        let g = &self.geom;
        g.check(input, output, &rows);
        let (ic, oc) = (g.in_c, g.out_c);
        let zp = self.in_zp;
        for row in rows {
            for ox in 0..g.out_w {
                let out = &mut output[(row * g.out_w + ox) * oc..][..oc];
                let mut o0 = 0;
                while o0 < oc {
                    let n = BLOCK.min(oc - o0);
                    let mut acc = [0i32; BLOCK];
                    acc[..n].copy_from_slice(&self.bias[o0..o0 + n]);
                    g.for_taps(row, ox, |ky, kx, off| {
                        let x = &input[off..off + ic];
                        for (j, a) in acc[..n].iter_mut().enumerate() {
                            let o = o0 + j;
                            let w = &self.weights[((o * g.k_h + ky) * g.k_w + kx) * ic..][..ic];
                            let mut s = 0i32;
                            for (&xv, &wv) in x.iter().zip(w) {
                                s += (xv.to_i32() - zp) * wv as i32;
                            }
                            *a += s;
                        }
                    });
                    self.rq.apply_row(&acc[..n], o0, &mut out[o0..o0 + n]);
                    o0 += n;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::conv as r;
    use crate::testutil::*;

    fn cases() -> Vec<TransposeGeom> {
        let mut rng = Rng::new(41);
        let mut v = Vec::new();
        // (in, k, s, padding) per axis, plus random ones.
        let fixed = [
            (4, 3, 2, Padding::Same),
            (3, 2, 2, Padding::Valid),
            (1, 3, 1, Padding::Same),
            (5, 4, 2, Padding::Same),
            (2, 3, 3, Padding::Valid),
            (3, 1, 2, Padding::Valid),
        ];
        for _ in 0..30 {
            let pick = |rng: &mut Rng| {
                if rng.range(0, 2) == 0 {
                    fixed[rng.usize(0, fixed.len() - 1)]
                } else {
                    let p = if rng.range(0, 1) == 0 {
                        Padding::Same
                    } else {
                        Padding::Valid
                    };
                    (rng.usize(1, 6), rng.usize(1, 4), rng.usize(1, 3), p)
                }
            };
            let (ih, kh, sh, p) = pick(&mut rng);
            let (iw, kw, sw, _) = pick(&mut rng);
            // TFLite's output size for this input: SAME in·s; VALID (in−1)·s + k.
            let out = |i: usize, k: usize, s: usize| match p {
                Padding::Same => i * s,
                Padding::Valid => (i - 1) * s + k,
            };
            let g = TransposeGeom::new(
                rng.usize(1, 2),
                (ih, iw, rng.usize(1, 20)),
                (out(ih, kh, sh), out(iw, kw, sw), rng.usize(1, 70)),
                (kh, kw),
                (sh, sw),
                p,
            )
            .unwrap();
            v.push(g);
        }
        v
    }

    fn scatter<A: Copy + std::ops::Add<Output = A>>(
        g: &TransposeGeom,
        x: &[A],
        w: &[A],
        zero: A,
        mul: impl Fn(A, A) -> A,
    ) -> Vec<A> {
        r::transpose_conv_acc(
            (g.batch, g.in_h, g.in_w, g.in_c),
            (g.out_h, g.out_w, g.out_c),
            (g.k_h, g.k_w, g.stride_h, g.stride_w, g.pad_top, g.pad_left),
            x,
            w,
            zero,
            mul,
        )
    }

    #[test]
    fn f32_matches_scatter_reference() {
        let mut rng = Rng::new(42);
        for g in cases() {
            let x = rng.vec_f32(g.input_len());
            let w = rng.vec_f32(g.weights_len());
            let bias = rng.vec_f32(g.out_c);
            let acc = scatter(&g, &x, &w, 0.0f32, |a, b| a * b);
            let want: Vec<f32> = acc
                .iter()
                .enumerate()
                .map(|(i, &a)| (a + bias[i % g.out_c]).clamp(-1.0, 1.0))
                .collect();
            let t = TransposeConvF32::new(g, &w, Some(&bias), -1.0, 1.0).unwrap();
            let mut got = vec![f32::NAN; g.output_len()];
            let mid = g.output_rows() / 2;
            t.run(&x, &mut got, 0..mid);
            t.run(&x, &mut got, mid..g.output_rows());
            assert_close(&got, &want, 1e-5, &format!("transpose conv f32 {g:?}"));
        }
    }

    #[test]
    fn int8_and_uint8_match_scatter_reference_exactly() {
        let mut rng = Rng::new(43);
        for g in cases() {
            for unsigned in [false, true] {
                let in_zp = rng.range(-20, 20) as i32 + if unsigned { 128 } else { 0 };
                let w_zp = if unsigned {
                    rng.range(0, 255) as i32
                } else {
                    0
                };
                let xi: Vec<i32> = (0..g.input_len())
                    .map(|_| if unsigned { rng.range(0, 255) } else { rng.range(-128, 127) } as i32)
                    .collect();
                let wi: Vec<i32> = (0..g.weights_len())
                    .map(|_| if unsigned { rng.range(0, 255) } else { rng.range(-127, 127) } as i32)
                    .collect();
                let bias: Vec<i32> = (0..g.out_c)
                    .map(|_| rng.range(-9000, 9000) as i32)
                    .collect();
                let reals: Vec<f64> = if unsigned {
                    vec![0.003]
                } else {
                    (0..g.out_c)
                        .map(|_| 0.0005 + rng.f32().abs() as f64 * 0.005)
                        .collect()
                };
                let out_zp = rng.range(-10, 10) as i32 + if unsigned { 128 } else { 0 };
                let (lo, hi) = if unsigned { (0, 255) } else { (-128, 100) };
                let rq = Requant::from_real(&reals, out_zp, lo, hi).unwrap();
                let xz: Vec<i32> = xi.iter().map(|&v| v - in_zp).collect();
                let wz: Vec<i32> = wi.iter().map(|&v| v - w_zp).collect();
                let acc = scatter(&g, &xz, &wz, 0i32, |a, b| a * b);
                let want: Vec<i32> = acc
                    .iter()
                    .enumerate()
                    .map(|(i, &a)| rq.apply(a + bias[i % g.out_c], i % g.out_c))
                    .collect();
                let got: Vec<i32> = if unsigned {
                    let x: Vec<u8> = xi.iter().map(|&v| v as u8).collect();
                    let w: Vec<u8> = wi.iter().map(|&v| v as u8).collect();
                    let t = TransposeConvQ::new_u8(g, &w, w_zp, Some(&bias), in_zp, rq).unwrap();
                    let mut out = vec![0u8; g.output_len()];
                    t.run(&x, &mut out, 0..g.output_rows());
                    out.iter().map(|&v| v as i32).collect()
                } else {
                    let x: Vec<i8> = xi.iter().map(|&v| v as i8).collect();
                    let w: Vec<i8> = wi.iter().map(|&v| v as i8).collect();
                    let t = TransposeConvQ::new(g, &w, Some(&bias), in_zp, rq).unwrap();
                    let mut out = vec![0i8; g.output_len()];
                    t.run(&x, &mut out, 0..g.output_rows());
                    out.iter().map(|&v| v as i32).collect()
                };
                if let Some((i, a, b)) = first_diff(&got, &want) {
                    panic!("transpose conv u8={unsigned} {g:?}: first difference at {i}: got {a}, want {b}");
                }
            }
        }
    }
}
