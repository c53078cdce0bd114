//! FULLY_CONNECTED: `out[r, o] = sum_i x[r, i] * w[o, i] + bias[o]`, weights [O, I].

use std::ops::Range;

use sparq_kernels::gemm::{gemm_i8_acc, ActQuant, PackedI8, Q8};
use sparq_kernels::requant::{activation_range, Activation as KAct};
use sparq_schema::{Activation, DType, OpOptions};

use super::conv::Geometry;
use super::quant::per_tensor;
use super::{boxed, elements, Ctx, Exec, Inputs, OpEval, Prepared};
use crate::Result;

pub(crate) fn prepare(ctx: &Ctx<'_, '_>) -> Result<Prepared> {
    ctx.expect_inputs(2, 3)?;
    let OpOptions::FullyConnected {
        activation,
        keep_num_dims,
        asymmetric_quantize_inputs,
    } = *ctx.options
    else {
        return Err(ctx.err("options are not FullyConnected options"));
    };
    let x = ctx.input(0)?;
    let (w, _) = ctx.const_input(1)?;
    let ws = ctx.expect_rank(w, 2)?;
    let (oc, ic) = (ws[0], ws[1]);
    let xs = ctx.shape(x);
    let n = elements(xs);
    if ic == 0 || !n.is_multiple_of(ic) {
        return Err(ctx.err(format!(
            "input {xs:?} is not a whole number of rows of {ic}"
        )));
    }
    let rows = n / ic;
    let shape = if keep_num_dims {
        if xs.last() != Some(&ic) {
            return Err(ctx.err(format!(
                "keep_num_dims with input {xs:?} and weights {ws:?}"
            )));
        }
        let mut s = xs.to_vec();
        *s.last_mut().unwrap() = oc;
        s
    } else {
        vec![rows, oc]
    };
    let g = Geometry {
        n: rows,
        ih: 1,
        iw: 1,
        ic,
        oh: 1,
        ow: 1,
        oc,
        kh: 1,
        kw: 1,
        sh: 1,
        sw: 1,
        dh: 1,
        dw: 1,
        pad_t: 0,
        pad_l: 0,
    };
    if matches!(ctx.dtype(x), DType::I8 | DType::U8) {
        return prepare_int8(ctx, rows, ic, oc, activation, shape);
    }
    let op = super::gemm::prepare(ctx, g, activation, asymmetric_quantize_inputs)?;
    Ok(op.into_prepared(shape, ctx.dtype(x)))
}

/// int8 / uint8 FULLY_CONNECTED. TFLite's reference kernel rescales its accumulators in f64
/// (`round(acc · in_scale · w_scale[c] / out_scale)`, half away from zero), not with the
/// fixed-point multiplier its other integer kernels use: the packed int8 GEMM computes the
/// int32 accumulators and this operator applies that f64 epilogue.
fn prepare_int8(
    ctx: &Ctx<'_, '_>,
    rows: usize,
    ic: usize,
    oc: usize,
    act: Activation,
    shape: Vec<usize>,
) -> Result<Prepared> {
    let x = ctx.input(0)?;
    let (w, wbytes) = ctx.const_input(1)?;
    let wq = ctx
        .quant(w)
        .ok_or_else(|| ctx.tensor_err(w, "has no quantization"))?;
    if wq.scales.len() != oc && wq.scales.len() != 1 {
        return Err(ctx.tensor_err(w, format!("needs 1 or {oc} scales")));
    }
    if wbytes.len() != oc * ic {
        return Err(ctx.tensor_err(w, format!("weights are not {oc} × {ic}")));
    }
    ctx.charge(w, super::gemm::packed_bytes(oc, ic, 1))?;
    let (in_scale, in_zp) = per_tensor(ctx, x)?;
    let (out_scale, out_zp) = per_tensor(ctx, ctx.output())?;
    let unsigned = ctx.dtype(x) == DType::U8;
    let kact = match act {
        Activation::None => KAct::None,
        Activation::Relu => KAct::Relu,
        Activation::Relu6 => KAct::Relu6,
        Activation::ReluN1To1 => KAct::ReluN1To1,
        Activation::Tanh => return Err(ctx.unsupported("fused tanh on an integer output")),
    };
    let (qmin, qmax) = if unsigned { (0, 255) } else { (-128, 127) };
    let (lo, hi) = activation_range(kact, out_scale, out_zp, qmin, qmax);
    let bias = super::gemm::bias_i32(ctx, 2, oc)?;
    let aq = if unsigned {
        ActQuant::u8(in_zp)
    } else {
        ActQuant::i8(in_zp)
    };
    // Weights with a zero point: symmetric int8 (0) or legacy uint8 (per-tensor).
    let packed = match ctx.dtype(w) {
        DType::I8 if wq.zero_points.iter().all(|&z| z == 0) => {
            PackedI8::new(bytemuck::cast_slice(wbytes), oc, ic, bias.as_deref(), aq)
        }
        DType::U8 if wq.zero_points.len() == 1 => PackedI8::new_u8(
            wbytes,
            wq.zero_points[0] as i32,
            oc,
            ic,
            bias.as_deref(),
            aq,
        ),
        d => return Err(ctx.unsupported(format!("{d} weights with these zero points"))),
    }
    .map_err(|e| ctx.err(e.to_string()))?;
    let scales: Vec<f64> = (0..oc)
        .map(|c| {
            let s = wq.scales[if wq.scales.len() == 1 { 0 } else { c }];
            in_scale as f64 * s as f64 / out_scale as f64
        })
        .collect();
    let eval = FcInt8 {
        rows,
        ic,
        oc,
        packed,
        scales,
        out_zp,
        lo,
        hi,
        unsigned,
    };
    Ok(Prepared {
        eval: boxed(eval),
        shape,
        dtype: ctx.dtype(x),
        scratch: 0,
    })
}

struct FcInt8 {
    rows: usize,
    ic: usize,
    oc: usize,
    packed: PackedI8,
    /// `in_scale · w_scale[c] / out_scale` per output channel.
    scales: Vec<f64>,
    out_zp: i32,
    lo: i32,
    hi: i32,
    unsigned: bool,
}

/// `f64::round` (half away from zero) of `v` as i64, saturating: the truncation is exact and so
/// is `v − trunc(v)`, so comparing that fraction with ±0.5 rounds exactly.
#[inline(always)]
fn round_half_away(v: f64) -> i64 {
    let t = v as i64;
    let frac = v - t as f64;
    t.saturating_add(i64::from(frac >= 0.5) - i64::from(frac <= -0.5))
}

impl FcInt8 {
    /// Output block `rows × cols`: `out` holds exactly that block, row-major (`cols.len()`
    /// bytes per row).
    fn block<T: Q8>(&self, x: &[T], out: &mut [u8], rows: Range<usize>, cols: Range<usize>) {
        let (stride, c_base, r_base) = (cols.len(), cols.start, rows.start);
        let (zp, lo, hi) = (self.out_zp as i64, self.lo as i64, self.hi as i64);
        gemm_i8_acc(x, self.ic, &self.packed, rows, cols, |r, c0, acc| {
            let o = (r - r_base) * stride + (c0 - c_base);
            let dst = &mut out[o..o + acc.len()];
            let sc = &self.scales[c0..c0 + acc.len()];
            for ((d, &a), &s) in dst.iter_mut().zip(acc).zip(sc) {
                let v = round_half_away(a as f64 * s)
                    .saturating_add(zp)
                    .clamp(lo, hi);
                *d = v as u8;
            }
        });
    }

    fn run<T: Q8>(&self, x: &[T], out: &mut [u8], exec: &Exec) {
        let (rows, oc) = (self.rows, self.oc);
        let work = rows * oc * self.ic;
        if rows >= 2 * exec.threads() {
            // Many rows: each task a block of whole rows.
            exec.rows(out, oc, work, &|r0, o| {
                let n = o.len() / oc;
                self.block(x, o, r0..r0 + n, 0..oc)
            });
        } else {
            // A classifier head: one row at a time, split over column blocks of whole tiles.
            let nr = self.packed.kernel().nr;
            for (r, o) in out.chunks_mut(oc).enumerate() {
                exec.rows(o, nr, work / rows, &|t0, o| {
                    let c0 = t0 * nr;
                    self.block(x, o, r..r + 1, c0..c0 + o.len())
                });
            }
        }
    }
}

impl OpEval for FcInt8 {
    fn eval(&self, ins: &Inputs<'_>, out: &mut [u8], _scratch: &mut [u8], exec: &Exec) {
        if self.unsigned {
            self.run::<u8>(ins.bytes(0), out, exec);
        } else {
            let x: &[i8] = bytemuck::cast_slice(ins.bytes(0));
            self.run::<i8>(x, out, exec);
        }
    }
}
