//! FULLY_CONNECTED: `out[r, o] = sum_i x[r, i] * w[o, i] + bias[o]`, weights [O, I].

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
/// fixed-point multiplier its other integer kernels use, so this path has its own loop.
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
    ctx.charge(w, oc.checked_mul(ic).and_then(|v| v.checked_mul(2)))?;
    // Weights with their zero point removed (symmetric int8: 0; legacy uint8: per-tensor).
    let weights: Vec<i16> = match ctx.dtype(w) {
        DType::I8 if wq.zero_points.iter().all(|&z| z == 0) => {
            bytemuck::cast_slice::<u8, i8>(wbytes)
                .iter()
                .map(|&v| v as i16)
                .collect()
        }
        DType::U8 if wq.zero_points.len() == 1 => {
            let zp = wq.zero_points[0] as i16;
            wbytes.iter().map(|&v| v as i16 - zp).collect()
        }
        d => return Err(ctx.unsupported(format!("{d} weights with these zero points"))),
    };
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
    let mut bias = super::gemm::bias_i32(ctx, 2, oc)?.unwrap_or_else(|| vec![0; oc]);
    // Fold the input zero point: Σ (x − zp)·w = Σ x·w − zp·Σ w.
    for (o, b) in bias.iter_mut().enumerate() {
        let sum: i32 = weights[o * ic..(o + 1) * ic]
            .iter()
            .map(|&v| v as i32)
            .sum();
        *b = b.wrapping_sub(in_zp.wrapping_mul(sum));
    }
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
        weights,
        bias,
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
    weights: Vec<i16>,
    bias: Vec<i32>,
    scales: Vec<f64>,
    out_zp: i32,
    lo: i32,
    hi: i32,
    unsigned: bool,
}

impl FcInt8 {
    fn run<T: Copy + Into<i32> + Sync>(&self, x: &[T], out: &mut [u8], exec: &Exec) {
        // Output element `i` is row `i / oc`, channel `i % oc`: blocks of elements split the
        // work evenly whether there is one row (a classifier head) or many.
        const BLOCK: usize = 32;
        let work = self.rows * self.oc * self.ic;
        exec.rows(out, BLOCK, work, &|b0, o| {
            for (j, dst) in o.iter_mut().enumerate() {
                let i = b0 * BLOCK + j;
                let (r, c) = (i / self.oc, i % self.oc);
                let xr = &x[r * self.ic..(r + 1) * self.ic];
                let wr = &self.weights[c * self.ic..(c + 1) * self.ic];
                let dot: i32 = xr.iter().zip(wr).map(|(&a, &b)| a.into() * b as i32).sum();
                let acc = dot.wrapping_add(self.bias[c]);
                let scaled = (acc as f64 * self.scales[c]).round() as i32;
                let v = scaled.saturating_add(self.out_zp).clamp(self.lo, self.hi);
                *dst = v as u8;
            }
        });
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
